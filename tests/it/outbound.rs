//! The server's own requests (OWASP SSRF Prevention Cheat Sheet, RFC 7591 s5): production
//! refuses non-public destinations at registration and again at connect time on the resolved
//! address, the allow list admits internal peers, a JWKS body is read only up to its limit, and
//! a failing jwks_uri is fetched once per negative-cache window, not on every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tongzheng::crypto::{b64, random_token};

use crate::support::flow;
use crate::support::server::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the test JWKS endpoint answers.
#[derive(Clone, Copy)]
enum Serve {
    /// 200 with an empty JWK Set.
    Empty,
    /// 500.
    Fail,
    /// 200 with a chunked body of up to 256 MB, written as fast as the reader takes it.
    Endless,
}

/// A JWKS endpoint on 127.0.0.1: counts the requests it gets and the body bytes it wrote.
struct Endpoint {
    port: u16,
    hits: Arc<AtomicUsize>,
    written: Arc<AtomicUsize>,
    done: tokio::sync::mpsc::UnboundedReceiver<()>,
}

async fn endpoint(serve: Serve) -> Endpoint {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // Small kernel buffers, so the bytes written are close to the bytes the server read.
    socket.set_send_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener: TcpListener = socket.listen(16).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (hits, written) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (tx, done) = tokio::sync::mpsc::unbounded_channel();
    let (h, w) = (hits.clone(), written.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (h, w, tx) = (h.clone(), w.clone(), tx.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|x| x == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                match serve {
                    Serve::Empty => {
                        let body = r#"{"keys":[]}"#;
                        let r = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(r.as_bytes()).await;
                    }
                    Serve::Fail => {
                        let _ = s
                            .write_all(
                                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            )
                            .await;
                    }
                    Serve::Endless => {
                        let head =
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                        if s.write_all(head.as_bytes()).await.is_ok() {
                            let chunk = [b' '; 16 * 1024];
                            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                            frame.extend_from_slice(&chunk);
                            frame.extend_from_slice(b"\r\n");
                            while w.load(Ordering::SeqCst) < 256 << 20 {
                                if s.write_all(&frame).await.is_err() {
                                    break;
                                }
                                w.fetch_add(chunk.len(), Ordering::SeqCst);
                            }
                            let _ = s.write_all(b"0\r\n\r\n").await;
                        }
                    }
                }
                let _ = tx.send(());
            });
        }
    });
    Endpoint { port, hits, written, done }
}

/// A private_key_jwt client whose stored `jwks_uri` is `jwks_uri`: registered with a public
/// one (registration would refuse the other), then changed in the store, as a record from
/// before the policy or a host name rebound later would be.
async fn key_client(s: &TestServer, jwks_uri: &str) -> String {
    let id = format!("pk-{}", random_token(6).to_lowercase());
    let admin = flow::admin_token(s).await;
    let body = json!({"client_id": id, "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://rp.example.gov.cn/jwks"});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let mut c = tongzheng::clients::get(&s.state.store, &id).await.unwrap().unwrap();
    c.jwks_uri = Some(jwks_uri.to_owned());
    tongzheng::clients::put(&s.state.store, &c).await.unwrap();
    id
}

/// A well-formed client assertion (RFC 7523 s3) whose signature verifies with no key: enough
/// to make the server look for the client's keys.
fn assertion(s: &TestServer, id: &str) -> String {
    let now = s.clock.now();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "k1"});
    let claims = json!({"iss": id, "sub": id, "aud": s.state.config.issuer, "iat": now, "exp": now + 60,
        "jti": random_token(12)});
    format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()), b64(&[7u8; 64]))
}

async fn token(s: &TestServer, id: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(s, id)),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn admin_create(s: &TestServer, meta: Value) -> (StatusCode, Value) {
    let admin = flow::admin_token(s).await;
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&meta).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn production_refuses_internal_uris_at_registration(b: Backend) {
    // RFC 7591 s5, OWASP SSRF: loopback, metadata, odd spellings and mapped IPv6 are refused.
    let s = TestServer::start_production(b, "[security]\ninitial_access_token = \"prod-initial-access-token-0123\"\n")
        .await;
    for uri in [
        "https://127.0.0.1/jwks",
        "https://169.254.169.254/latest/meta-data/",
        "https://2130706433/jwks",
        "https://0x7f.1/jwks",
        "https://[::ffff:127.0.0.1]/jwks",
        "https://10.0.0.8/jwks",
        "https://localhost/jwks",
    ] {
        let (status, e) = admin_create(
            &s,
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": uri}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {e}");
        assert!(e["detail"].as_str().unwrap().contains("jwks_uri"), "{uri}: {e}");
        let r = s
            .http
            .post(s.url("/register"))
            .bearer_auth("prod-initial-access-token-0123")
            .json(&json!({"redirect_uris": ["https://rp.example.gov.cn/cb"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client_metadata", "{uri}");
    }
    // The back-channel logout URI is posted to by the server: the same rule.
    let (status, e) = admin_create(
        &s,
        json!({"redirect_uris": ["https://rp.example.gov.cn/cb"],
            "backchannel_logout_uri": "https://169.254.169.254/logout"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    // A public host name passes; it is judged again when resolved.
    let (status, e) = admin_create(
        &s,
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://rp.example.gov.cn/jwks"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
}

async fn production_never_connects_to_loopback(b: Backend) {
    // OWASP SSRF: checked at connect time on the resolved address, literals and names alike.
    let s = TestServer::start_production(b, "").await;
    let ep = endpoint(Serve::Empty).await;
    let p = ep.port;
    for uri in [
        format!("http://127.0.0.1:{p}/jwks"),
        format!("http://2130706433:{p}/jwks"),
        format!("http://0x7f.1:{p}/jwks"),
        format!("http://[::ffff:127.0.0.1]:{p}/jwks"),
        format!("http://localhost:{p}/jwks"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let id = key_client(&s, &uri).await;
        let (status, e) = token(&s, &id).await;
        assert_eq!((status, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{uri}");
    }
    assert_eq!(ep.hits.load(Ordering::SeqCst), 0, "the server connected to a loopback jwks_uri");
}

async fn the_allow_list_admits_an_internal_peer(b: Backend) {
    // OWASP SSRF: a configured internal peer is reached, by block or by host name.
    for allow in ["127.0.0.0/8", "localhost"] {
        let s = TestServer::start_production(b, &format!("[outbound]\nallow = [\"{allow}\"]\n")).await;
        let ep = endpoint(Serve::Empty).await;
        let host = if allow == "localhost" { "localhost" } else { "127.0.0.1" };
        let id = key_client(&s, &format!("http://{host}:{}/jwks", ep.port)).await;
        let (status, _) = token(&s, &id).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an empty JWKS verifies nothing");
        assert_eq!(ep.hits.load(Ordering::SeqCst), 1, "allow = {allow}");
        // The list also admits the peer at registration.
        let (status, e) = admin_create(
            &s,
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": format!("https://{host}/jwks")}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{allow}: {e}");
    }
}

async fn a_huge_jwks_body_is_read_only_to_the_limit(b: Backend) {
    // OWASP SSRF (resource exhaustion): the 64 KB JWKS limit holds while reading.
    let s = TestServer::start(b).await;
    let mut ep = endpoint(Serve::Endless).await;
    let id = key_client(&s, &format!("http://127.0.0.1:{}/jwks", ep.port)).await;
    let (status, e) = token(&s, &id).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    tokio::time::timeout(Duration::from_secs(30), ep.done.recv()).await.expect("the server kept reading");
    let written = ep.written.load(Ordering::SeqCst);
    assert!(written < 16 << 20, "the server read {written} bytes of a 256 MB body");
}

async fn a_failing_jwks_uri_is_fetched_once(b: Backend) {
    // OWASP SSRF: one fetch per request at most, and failures are remembered (negative cache).
    let s = TestServer::start(b).await;
    let ep = endpoint(Serve::Fail).await;
    let id = key_client(&s, &format!("http://127.0.0.1:{}/jwks", ep.port)).await;
    let (status, _) = token(&s, &id).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ep.hits.load(Ordering::SeqCst), 1, "one request fetched the jwks_uri more than once");
    for _ in 0..4 {
        assert_eq!(token(&s, &id).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(ep.hits.load(Ordering::SeqCst), 1, "a failed fetch was retried within the window");
}

async fn a_failing_peer_discovery_is_fetched_once(b: Backend) {
    // OWASP SSRF: anyone may post a logout token naming a trusted upstream (Back-Channel Logout
    // s2.6 has us fetch its metadata); a failed discovery is remembered, not refetched per post.
    let s = TestServer::start(b).await;
    let ep = endpoint(Serve::Fail).await;
    let issuer = format!("http://127.0.0.1:{}", ep.port);
    let admin = flow::admin_token(&s).await;
    let trust = json!({"id": "up", "role": "upstream", "issuer": issuer, "name": "上级平台",
        "client_id": "city", "client_secret": "city-secret"});
    let r = s.http.post(s.url("/admin/v1/trusts")).bearer_auth(admin).json(&trust).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let claims = json!({"iss": issuer, "aud": "city", "iat": s.clock.now(), "jti": random_token(8), "sid": "x",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}});
    let logout_token = format!(
        "{}.{}.{}",
        b64(br#"{"alg":"ES256","typ":"logout+jwt"}"#),
        b64(claims.to_string().as_bytes()),
        b64(&[1; 64])
    );
    for _ in 0..3 {
        let r = s
            .http
            .post(s.url("/federation/backchannel-logout"))
            .form(&[("logout_token", logout_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(ep.hits.load(Ordering::SeqCst), 1, "the upstream's discovery was fetched on every post");
}

per_backend!(
    a_failing_peer_discovery_is_fetched_once,
    production_refuses_internal_uris_at_registration,
    production_never_connects_to_loopback,
    the_allow_list_admits_an_internal_peer,
    a_huge_jwks_body_is_read_only_to_the_limit,
    a_failing_jwks_uri_is_fetched_once,
);
