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

/// The `key=value` fields of the text-format line holding `needle`, waiting up to 10 s for it.
async fn line_with(capture: &Capture, needle: &str) -> std::collections::HashMap<String, String> {
    for _ in 0..200 {
        let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        if let Some(line) = logs.lines().find(|l| l.contains(needle)) {
            return line
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                .collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    panic!("no log line with {needle} in\n{}", logs.lines().rev().take(15).collect::<Vec<_>>().join("\n"));
}

// Issue 14 (operators), AY-8.5.2.1 (calls logged), GB-6.8b (no tokens in logs): one access line
// per request with method, route template, status, latency, client id and request id.
#[tokio::test]
async fn one_access_line_per_request() {
    let capture = capture();
    let s = TestServer::start(Backend::Memory).await;
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "api.read")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let token = resp.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let line = line_with(capture, &format!("request_id={id}")).await;
    assert_eq!(line.get("method").map(String::as_str), Some("POST"), "{line:?}");
    assert_eq!(line.get("route").map(String::as_str), Some("/token"));
    assert_eq!(line.get("status").map(String::as_str), Some("200"));
    assert_eq!(line.get("client_id").map(String::as_str), Some(WEB_CLIENT), "the authenticated client");
    assert!(line.get("latency_ms").and_then(|v| v.parse::<f64>().ok()).is_some(), "{line:?}");
    // A front-channel request names its client in the query; the route is the template.
    let resp = s
        .browser
        .get(s.url("/authorize"))
        .query(&[("client_id", WEB_CLIENT), ("response_type", "code")])
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let line = line_with(capture, &format!("request_id={id}")).await;
    assert_eq!(line.get("route").map(String::as_str), Some("/authorize"));
    assert_eq!(line.get("client_id").map(String::as_str), Some(WEB_CLIENT));
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let access: Vec<&str> =
        logs.lines().filter(|l| l.contains(&format!("request_id={id}")) && l.contains("access")).collect();
    assert_eq!(access.len(), 1, "one access line per request: {access:?}");
    assert!(!logs.contains(&token) && !logs.contains(WEB_SECRET), "no token or secret in the logs");
}

// Issue 14 (operators), DC-4: a failed back-channel delivery is a WARN naming the receiver and
// the cause, so an operator can tell which application is unreachable and why.
#[tokio::test]
async fn failed_delivery_is_a_warning_with_receiver_and_cause() {
    let capture = capture();
    let s = TestServer::start(Backend::Memory).await;
    let (client_id, receiver, sid) = crate::ops_metrics::session_with_dead_receiver(&s).await;
    let admin = flow::admin_token(&s).await;
    let resp = s.http.delete(s.url(&format!("/admin/v1/sessions/{sid}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let line = line_with(capture, &format!("receiver={receiver}")).await;
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let text = logs.lines().find(|l| l.contains(&format!("receiver={receiver}"))).unwrap();
    assert!(text.contains(" WARN ") && text.contains("logout delivery failed"), "{text}");
    assert_eq!(line.get("client_id"), Some(&client_id));
    // The cause names what went wrong at the connection, not only "error sending request".
    assert!(text.to_lowercase().contains("connect"), "cause in {text}");
}
