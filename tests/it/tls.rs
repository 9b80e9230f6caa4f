//! Production mode over HTTPS: rustls with the ring provider, TLS 1.2 and 1.3 (AY-9.2,
//! SH-8.3b), the certificate and key from config, and no dev defaults.

use std::sync::Arc;

use reqwest::StatusCode;
use tokio::net::TcpListener;
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::server;
use tongzheng::store::memory::MemoryStore;

#[tokio::test]
async fn serves_https_with_tls12_and_tls13() {
    let dir = std::env::temp_dir().join(format!("tz-tls-{}", tongzheng::crypto::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = ck.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let secret = "prod-admin-secret-0123456789abcdef";
    let overlay = format!(
        r#"issuer = "https://localhost:{port}"
[server]
listen = "{addr}"
[tls]
cert = "{cert}"
key = "{key}"
[store]
backend = "memory"
allow_memory = true
[keys]
dir = "{keys}"
kek_file = "{kek}"
[[seed.clients]]
client_id = "admin-cli"
client_secret_sha256 = "{hash}"
name = "admin"
grant_types = ["client_credentials"]
scopes = ["tongzheng:admin"]
token_endpoint_auth_method = "client_secret_basic"
"#,
        port = addr.port(),
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
        keys = dir.join("keys").display(),
        kek = dir.join("kek").display(),
        hash = tongzheng::crypto::sha256_hex(secret.as_bytes()),
    );
    // The key-encryption key, provisioned by the operator as a file.
    std::fs::write(dir.join("kek"), format!("{}\n", crate::support::server::TEST_KEK)).unwrap();
    let config = Config::from_overlay(&overlay, false).expect("production config");
    assert!(!config.server.dev);
    let tls = server::tls_config(&config).unwrap().expect("tls configured");
    let state = server::build(config, Clock::system(), Arc::new(MemoryStore::new()), None).await.unwrap();
    tokio::spawn(server::serve(listener, state, Some(tls), std::future::pending()));

    let root = reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    for (min, max) in [
        (reqwest::tls::Version::TLS_1_2, reqwest::tls::Version::TLS_1_2),
        (reqwest::tls::Version::TLS_1_3, reqwest::tls::Version::TLS_1_3),
    ] {
        let client = reqwest::Client::builder()
            .add_root_certificate(root.clone())
            .resolve("localhost", addr)
            .min_tls_version(min)
            .max_tls_version(max)
            .build()
            .unwrap();
        let base = format!("https://localhost:{}", addr.port());
        let r = client.get(format!("{base}/.well-known/openid-configuration")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let meta: serde_json::Value = r.json().await.unwrap();
        assert_eq!(meta["issuer"], base);
        let r = client
            .post(format!("{base}/token"))
            .basic_auth("admin-cli", Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "token over {max:?}");
        // Keys live sealed in the store, not in files beside the server.
        assert!(!dir.join("keys").join("keyset.json").exists());
    }
    // Operators: the served certificate's expiry is a gauge (issue 14), so an alert can fire before
    // it lapses (rcgen's default notAfter is 4096-01-01).
    let client = reqwest::Client::builder().add_root_certificate(root).resolve("localhost", addr).build().unwrap();
    let text =
        client.get(format!("https://localhost:{}/metrics", addr.port())).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("\ntongzheng_tls_certificate_expiry_timestamp_seconds 67090118400\n"), "{text}");
    // Plain HTTP to the TLS port gets nothing useful (no downgrade).
    let plain = reqwest::Client::new().get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);
    std::fs::remove_dir_all(dir).ok();
}
