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

// The default tokio test runtime is single-threaded, so a thread-local subscriber sees the
// server's request handling too.
#[tokio::test]
async fn no_secrets_in_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = TestServer::start(Backend::Memory).await;
    // A failed login with a distinctive wrong password, then the real flow.
    let r = flow::authorize(
        &s,
        &[("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")],
    )
    .await;
    let login = flow::location(&r);
    let _ = flow::submit_login(&s, &login, USER, "Wrong-Pa55word-Canary").await;
    let resp = flow::submit_login(&s, &login, USER, PASSWORD).await;
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('=').map(|(_, v)| v.to_owned()))
        .collect();
    let (code, pkce) = flow::web_code(&s, "openid offline_access").await;
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
    let admin = flow::admin_token(&s).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("login succeeded") && logs.contains("login failed"), "capture works: {logs}");
    let mut secrets = vec![
        PASSWORD.to_owned(),
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
