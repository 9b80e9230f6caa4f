//! Secrets never reach the logs (GB-6.8b): run the flows with every log level captured and look
//! for passwords, client secrets, codes, tokens and session cookies in the output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use crate::support::flow;
use crate::support::server::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// One capture for the whole test binary, installed as the global subscriber: a thread-local
/// one misses events whose callsite interest another test's thread cached first.
fn capture() -> &'static Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("tongzheng=trace,info")
            .with_writer(c.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        tracing::callsite::rebuild_interest_cache();
        c
    })
}

#[tokio::test]
async fn no_secrets_in_logs() {
    let capture = capture();
    let s = TestServer::start(Backend::Memory).await;
    // A user of this test's own, so the capture check below is about this test's events.
    let admin = flow::admin_token(&s).await;
    let username = format!("logs-{}", tongzheng::crypto::random_token(6).to_lowercase().replace(['-', '_'], ""));
    let password = format!("Pa55-{}", tongzheng::crypto::random_token(12));
    let created: serde_json::Value = s
        .http
        .post(s.url("/admin/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"username": username, "password": password, "name": "Logs"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sub = created["id"].as_str().expect("user created").to_owned();
    // A failed login with a distinctive wrong password, then the real flow.
    let pkce = flow::Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid offline_access"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = flow::authorize(&s, &params).await;
    let login = flow::location(&r);
    let _ = flow::submit_login(&s, &login, &username, "Wrong-Pa55word-Canary").await;
    let resp = flow::submit_login(&s, &login, &username, &password).await;
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('=').map(|(_, v)| v.to_owned()))
        .collect();
    let code = flow::query(&flow::location(&resp))["code"].clone();
    let (_, tok) = flow::redeem(&s, &code, &pkce).await;
    let rt = tok["refresh_token"].as_str().unwrap().to_owned();
    let at = tok["access_token"].as_str().unwrap().to_owned();
    let _ = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some("wrong-secret-canary"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
        .send()
        .await
        .unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(&format!("sub={sub}")) && logs.contains("login succeeded"), "capture works");
    let mut secrets = vec![
        password,
        "Wrong-Pa55word-Canary".into(),
        WEB_SECRET.into(),
        ADMIN_SECRET.into(),
        "wrong-secret-canary".into(),
        code,
        pkce.verifier,
        rt,
        at,
        admin,
    ];
    secrets.extend(cookies);
    for secret in secrets {
        assert!(!logs.contains(&secret), "a secret reached the logs: {secret}");
    }
}
