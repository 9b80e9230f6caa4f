//! Keys are shared state (issue 10, SH-7.2): every instance on one store signs with, verifies
//! with and publishes the same key set, opens what another sealed with the data key, and sees a
//! rotation made anywhere (admin API or CLI) within `keys.refresh_secs`.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow;
use crate::support::server::*;

fn kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    kids.sort();
    kids
}

async fn jwks(s: &TestServer) -> Value {
    s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap()
}

fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["kid"].as_str().unwrap().to_owned()
}

async fn introspect(s: &TestServer, token: &str) -> Value {
    s.http
        .post(s.url("/introspect"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `cond` on `s`'s JWKS until it holds (bounded; never a timing assertion).
async fn wait_for_jwks(s: &TestServer, what: &str, cond: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = kids(&jwks(s).await);
        if cond(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: JWKS still {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rotate(s: &TestServer) -> Vec<String> {
    let admin = flow::admin_token(s).await;
    let r = s.http.post(s.url("/admin/v1/keys/rotate")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["active_kids"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
}

// SH-7.2, RFC 7517 s5: instances started at the same moment on an empty store end up with one
// key set (the first writer wins, the others adopt it), and so does one started later.
async fn instances_started_together_agree(b: Backend) {
    let shared = SharedStore::new(b);
    let (a, c) = tokio::join!(TestServer::start_on_store(&shared, ""), TestServer::start_on_store(&shared, ""));
    let ka = kids(&jwks(&a).await);
    assert_eq!(ka.len(), 3, "one key per algorithm: {ka:?}");
    assert_eq!(ka, kids(&jwks(&c).await), "both instances publish the same keys");
    let later = TestServer::start_on_store(&shared, "").await;
    assert_eq!(ka, kids(&jwks(&later).await));
}

// AY-7.2b, RFC 7662 s2, OIDC Core s5.3, SH-8.2: a token signed by instance A validates at B,
// B's JWKS lists A's keys, and a phone number sealed by A reads at B.
async fn tokens_and_sealed_data_cross_instances(b: Backend) {
    let shared = SharedStore::new(b);
    let a = TestServer::start_on_store(&shared, "").await;
    let c = TestServer::start_on_store(&shared, "").await;
    let admin = flow::admin_token(&a).await;
    assert!(kids(&jwks(&c).await).contains(&kid_of(&admin)), "B publishes the key that signed A's token");
    assert_eq!(introspect(&c, &admin).await["active"], true, "A's token is active at B");
    let (code, pkce) = flow::web_code(&a, "openid profile").await;
    let (status, t) = flow::redeem(&a, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let r = c.http.get(c.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "A's access token at B's /userinfo");
    assert!(kids(&jwks(&c).await).contains(&kid_of(t["id_token"].as_str().unwrap())));

    let r = a
        .http
        .post(a.url("/admin/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "wang.wu", "password": "wang-wu-password", "phone_number": "+86 139 8765 4321"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let admin_b = flow::admin_token(&c).await;
    let got: Value = c
        .http
        .get(c.url(&format!("/admin/v1/users/{id}")))
        .bearer_auth(&admin_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["phone_number"], "139****4321", "B opens the phone number A sealed: {got}");
}

// RFC 7517 s5, SH-7.2: a rotation through A's admin API is published by B within the refresh
// time (1 s here), tokens A signs with the new keys validate at B at once, and the old keys
// stay published.
async fn rotation_is_published_everywhere(b: Backend) {
    let shared = SharedStore::new(b);
    let overlay = "[keys]\nrefresh_secs = 1\n";
    let a = TestServer::start_on_store(&shared, overlay).await;
    let c = TestServer::start_on_store(&shared, overlay).await;
    let before = kids(&jwks(&c).await);
    let new = rotate(&a).await;
    // A token from the new key, presented at B before B's next refresh.
    let fresh = flow::admin_token(&a).await;
    assert!(new.contains(&kid_of(&fresh)));
    assert_eq!(introspect(&c, &fresh).await["active"], true, "B verifies a token signed by A's new key");
    wait_for_jwks(&c, "B publishes the rotated keys", |now| new.iter().chain(&before).all(|k| now.contains(k))).await;
    // B signs with the new keys too.
    let from_b = flow::admin_token(&c).await;
    assert!(new.contains(&kid_of(&from_b)), "B signs with the new active key");
}

// SH-7.2: `tongzheng keys rotate` acts on the shared store (the library function the CLI
// calls, on a store handle of its own as the CLI process opens), and running instances pick the
// rotation up within the refresh time; the rotation keeps the old keys published.
async fn cli_rotation_reaches_running_instances(b: Backend) {
    let shared = SharedStore::new(b);
    let overlay = "[keys]\nrefresh_secs = 1\n";
    let a = TestServer::start_on_store(&shared, overlay).await;
    let c = TestServer::start_on_store(&shared, overlay).await;
    let before = kids(&jwks(&a).await);
    let old_token = flow::admin_token(&a).await;
    let config = a.state.config.clone();
    let new = tongzheng::keys::shared::rotate_in_store(&config, &shared.handle(), a.clock.now()).await.unwrap();
    assert_eq!(new.len(), 3);
    for s in [&a, &c] {
        wait_for_jwks(s, "the CLI's rotation is published", |now| new.iter().chain(&before).all(|k| now.contains(k)))
            .await;
    }
    let fresh = flow::admin_token(&a).await;
    assert!(new.contains(&kid_of(&fresh)), "A signs with the key the CLI made");
    assert_eq!(introspect(&c, &old_token).await["active"], true, "tokens from before stay valid");
}

/// Runs the `tongzheng` binary with `args`, a production config file for `shared` and the KEK
/// in the environment; returns its exit success and its output.
async fn tongzheng_bin(shared: &SharedStore, args: &[&str]) -> (bool, String) {
    let store = match shared {
        SharedStore::Redis { url, prefix } => {
            format!("[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n")
        }
        SharedStore::Memory(_) => "[store]\nbackend = \"memory\"\nallow_memory = true\n".into(),
    };
    let dir = std::env::temp_dir().join(format!("tz-test-cli-{}", tongzheng::crypto::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    let config = format!(
        "issuer = \"{SHARED_ISSUER}\"\n[server]\nbehind_tls_proxy = true\n{store}[keys]\ndir = \"{d}/keys\"\n\
         [audit]\ndir = \"{d}/audit\"\n[apps]\narchive_dir = \"{d}/archive\"\n",
        d = dir.display()
    );
    std::fs::write(&file, config).unwrap();
    let out = tokio::process::Command::new(crate::support::binary())
        .args(args)
        .arg("--config")
        .arg(&file)
        .env("TONGZHENG_KEYS__KEK", TEST_KEK)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out).await.expect("the CLI finishes").unwrap();
    std::fs::remove_dir_all(dir).ok();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

// SH-7.2: the real `tongzheng keys rotate` process rotates the shared set, and a running
// instance publishes the new keys; with the memory store (inside the server process) the CLI
// says to use the admin API instead.
#[tokio::test]
async fn cli_binary_rotates_the_shared_set() {
    let shared = SharedStore::new(Backend::Redis);
    let a = TestServer::start_on_store(&shared, "[keys]\nrefresh_secs = 1\n").await;
    let before = kids(&jwks(&a).await);
    let (ok, out) = tongzheng_bin(&shared, &["keys", "rotate"]).await;
    assert!(ok, "{out}");
    let new: Vec<String> = out
        .lines()
        .find_map(|l| l.strip_prefix("new active keys: "))
        .expect("the new kids")
        .split(", ")
        .map(str::to_owned)
        .collect();
    assert!(new.iter().all(|k| !before.contains(k)));
    wait_for_jwks(&a, "the CLI's rotation is published", |now| new.iter().chain(&before).all(|k| now.contains(k)))
        .await;
    let (ok, out) = tongzheng_bin(&SharedStore::new(Backend::Memory), &["keys", "rotate"]).await;
    assert!(!ok && out.contains("/admin/v1/keys/rotate"), "{out}");
}

/// The raw key set record of a shared store, as text.
async fn raw_record(shared: &SharedStore) -> String {
    let raw = shared.handle().get(tongzheng::store::keys::KEYSET).await.unwrap().expect("a key set in the store");
    String::from_utf8(raw).unwrap()
}

async fn phone_at(s: &TestServer, id: &str) -> Value {
    let admin = flow::admin_token(s).await;
    let got: Value = s
        .http
        .get(s.url(&format!("/admin/v1/users/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    got["phone_number"].clone()
}

// Issue 10, SH-8.2: the key-encryption key can be rotated: the set is re-sealed under the new
// KEK, an instance that knows only the new KEK opens it (same keys, same data key), and one that
// knows only the old KEK is refused with a message naming the setting.
async fn kek_rotation_keeps_everything_readable(b: Backend) {
    const NEW_KEK: &str = "bmV3IGtleS1lbmNyeXB0aW9uIGtleSwgMzIgYnl0ZXM=";
    let shared = SharedStore::new(b);
    let a = TestServer::start_on_store(&shared, "").await;
    let admin = flow::admin_token(&a).await;
    let r = a
        .http
        .post(a.url("/admin/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "zhao.qi", "password": "zhao-qi-password", "phone_number": "+86 139 1234 5678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let sealed_before: Value = serde_json::from_str(&raw_record(&shared).await).unwrap();

    // The operator lists the new KEK first, the old one after it, and runs `keys rotate-kek`.
    let mut config = a.state.config.clone();
    config.keys.kek = format!("{NEW_KEK},{TEST_KEK}");
    let done = tongzheng::keys::shared::rotate_kek_in_store(&config, &shared.handle(), a.clock.now()).await.unwrap();
    assert_ne!(done.from, done.to);
    assert_eq!(done.from, sealed_before["kek"].as_str().unwrap());
    let sealed_after: Value = serde_json::from_str(&raw_record(&shared).await).unwrap();
    assert_eq!(sealed_after["kek"], done.to.as_str());
    assert_ne!(sealed_after["data_key"], sealed_before["data_key"], "re-sealed");

    // An instance with both KEKs, and one with the new KEK alone, agree with A.
    let both = format!("[keys]\nkek = \"{NEW_KEK},{TEST_KEK}\"\n");
    let with_both = TestServer::start_on_store(&shared, &both).await;
    let new_only = TestServer::start_on_store(&shared, &format!("[keys]\nkek = \"{NEW_KEK}\"\n")).await;
    for s in [&with_both, &new_only] {
        assert_eq!(kids(&jwks(s).await), kids(&jwks(&a).await));
        assert_eq!(introspect(s, &admin).await["active"], true);
        assert_eq!(phone_at(s, &id).await, "139****5678", "the data key survives the KEK rotation");
    }

    // Only the old KEK: the start fails, naming the KEK it needs and the setting.
    let mut old_only = a.state.config.clone();
    old_only.keys.dir = std::env::temp_dir().join(format!("tz-test-keys-{}", tongzheng::crypto::random_token(6)));
    let e = tongzheng::server::build(old_only, a.clock.clone(), shared.handle(), None).await.err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains(&done.to) && msg.contains("keys.kek"), "{msg}");
}

// Issue 10, SH-8.2: keys are never stored unsealed: the raw record in the store holds no
// private key (PKCS#8) nor the data key, in any encoding, and no private JWK member.
async fn keys_are_sealed_at_rest(b: Backend) {
    let shared = SharedStore::new(b);
    let a = TestServer::start_on_store(&shared, "").await;
    rotate(&a).await;
    let raw = raw_record(&shared).await;
    let plain = a.state.keys.material();
    assert_eq!(plain.keys.len(), 6, "three active and three retired keys");
    let standard = base64::engine::general_purpose::STANDARD;
    for secret in plain.secrets_b64() {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&secret).unwrap();
        assert!(!raw.contains(&secret), "a secret in base64url");
        assert!(!raw.contains(&standard.encode(&bytes)), "a secret in base64");
        assert!(!raw.contains(&hex(&bytes)), "a secret in hex");
    }
    let record: Value = serde_json::from_str(&raw).unwrap();
    for k in record["keys"].as_array().unwrap() {
        assert!(k["private"].as_str().unwrap().starts_with("v1."), "sealed: {k}");
        for member in ["d", "p", "q", "pkcs8"] {
            assert!(k.get(member).is_none(), "no private member {member}: {k}");
        }
    }
    assert!(record["data_key"].as_str().unwrap().starts_with("v1."));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Issue 10: production refuses to start without a key-encryption key, naming the settings.
#[test]
fn production_without_a_kek_is_refused() {
    let prod = "issuer = \"https://id.example.gov.cn\"\n[server]\nbehind_tls_proxy = true\n\
                [store]\nbackend = \"memory\"\nallow_memory = true\n";
    let e = tongzheng::config::Config::from_overlay(prod, false).unwrap_err().to_string();
    assert!(e.contains("keys.kek") && e.contains("keys.kek_file") && e.contains("TONGZHENG_KEYS__KEK"), "{e}");
}

per_backend!(
    instances_started_together_agree,
    tokens_and_sealed_data_cross_instances,
    rotation_is_published_everywhere,
    cli_rotation_reaches_running_instances,
    kek_rotation_keeps_everything_readable,
    keys_are_sealed_at_rest,
);
