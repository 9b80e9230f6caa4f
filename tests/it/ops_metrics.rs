//! Operator gauges at `GET /metrics` (issue 14): SSO sessions, pending logout deliveries, the
//! audit queue and its counter, signing-key age and next rotation, the process figures; they
//! appear in the scrape and move with what happens (AY-8.5.2.1 calls monitored, DC-4).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::metrics::parse;
use crate::support::flow::{self, Pkce};
use crate::support::server::*;

per_backend!(gauges_appear_and_move);

/// A confidential client whose back-channel logout URI points at a closed port (every delivery
/// fails and is retried), and a session that reached it; returns (client_id, receiver, sid).
pub(crate) async fn session_with_dead_receiver(s: &TestServer) -> (String, String, String) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = format!("http://{}/backchannel-logout", closed.local_addr().unwrap());
    drop(closed);
    let client_id = format!("dead-rp-{}", tongzheng::crypto::random_token(4).to_lowercase().replace(['-', '_'], ""));
    let redirect = "http://127.0.0.1:9000/cb/dead";
    let admin = flow::admin_token(s).await;
    let body = json!({"client_id": client_id, "redirect_uris": [redirect], "grant_types": ["authorization_code"],
        "scope": "openid", "token_endpoint_auth_method": "client_secret_basic",
        "backchannel_logout_uri": receiver, "backchannel_logout_session_required": true});
    let resp = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let secret = resp.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let q = flow::login_for_code(
        s,
        &[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", redirect),
            ("scope", "openid"),
            ("nonce", "n"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = crate::browser::jwt_claims(id_token)["sid"].as_str().unwrap().to_owned();
    (client_id, receiver, sid)
}

async fn scrape(s: &TestServer) -> (String, std::collections::HashMap<String, f64>) {
    let text = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let m = parse(&text);
    (text, m)
}

fn sum_of(m: &std::collections::HashMap<String, f64>, family: &str) -> f64 {
    m.iter().filter(|(k, _)| k.starts_with(family)).map(|(_, v)| v).sum()
}

// Issue 14 (operators), AY-8.5.2.1, DC-4: each gauge is in the scrape (which stays valid text
// format 0.0.4) and follows the platform's state.
async fn gauges_appear_and_move(b: Backend) {
    let s = TestServer::start(b).await;
    let (text, before) = scrape(&s).await;
    let at = |m: &std::collections::HashMap<String, f64>, series: &str, text: &str| {
        m.get(series).copied().unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(at(&before, "tongzheng_sso_sessions", &text), 0.0);
    assert_eq!(at(&before, "tongzheng_logout_deliveries_pending", &text), 0.0);
    assert!(at(&before, "tongzheng_audit_queue_depth", &text) >= 0.0);
    assert!(at(&before, "process_resident_memory_bytes", &text) > 0.0);
    assert!(at(&before, "process_open_fds", &text) > 0.0);
    assert!(before.contains_key("process_cpu_seconds_total"), "{text}");
    // Signing keys: one age and one due date per active algorithm, due 90 days after creation.
    let now = s.clock.now() as f64;
    for alg in ["ES256", "RS256", "EdDSA"] {
        let age = before.iter().find(|(k, _)| k.starts_with("tongzheng_signing_key_age_seconds{") && k.contains(alg));
        let (_, age) = age.unwrap_or_else(|| panic!("no key age for {alg} in\n{text}"));
        let due = before
            .iter()
            .find(|(k, _)| k.starts_with("tongzheng_signing_key_next_rotation_timestamp_seconds{") && k.contains(alg))
            .map(|(_, v)| *v)
            .unwrap();
        assert!((due - (now - age + 90.0 * 86_400.0)).abs() < 2.0, "{alg}: due {due}, age {age}, now {now}");
    }
    // No TLS on a test server: no certificate expiry gauge (it is only there when serving TLS).
    assert!(!text.contains("tongzheng_tls_certificate_expiry_timestamp_seconds"), "{text}");
    let audited = sum_of(&before, "tongzheng_audit_events_total{");

    // A login: one session, and audit events counted.
    let (_, receiver, sid) = session_with_dead_receiver(&s).await;
    let (text, m) = scrape(&s).await;
    assert_eq!(at(&m, "tongzheng_sso_sessions", &text), 1.0);
    assert!(sum_of(&m, "tongzheng_audit_events_total{") > audited, "the audit counter moves:\n{text}");
    assert!(at(&m, r#"tongzheng_audit_events_total{kind="login_success"}"#, &text) >= 1.0, "{text}");

    // The session ends; its delivery to the dead receiver stays pending (retried).
    let admin = flow::admin_token(&s).await;
    let resp = s.http.delete(s.url(&format!("/admin/v1/sessions/{sid}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (text, m) = scrape(&s).await;
    assert_eq!(at(&m, "tongzheng_sso_sessions", &text), 0.0);
    assert_eq!(at(&m, "tongzheng_logout_deliveries_pending", &text), 1.0, "delivery to {receiver} pending");
}
