//! The login pages in a real browser: headless Chromium (Debian's package, driven over W3C
//! WebDriver) walks the authorization code flow (RFC 6749 s4.1) through the server-rendered
//! login page (HL-5.3, DC-6) to a relying party listening on loopback. JM-5.6: the pages must
//! work in Chromium. Needs /usr/bin/chromium and /usr/bin/chromedriver (tests/run.sh installs
//! them); without them this test fails, it does not skip.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Html;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tongzheng::http::pages::esc;

use crate::support::flow::{self, Pkce};
use crate::support::server::{Backend, PASSWORD, TestServer, USER};
use crate::support::webdriver::Browser;

const RP_CLIENT: &str = "browser-rp";

pub(crate) type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// The relying party's redirect target: a real page echoing what it got, recording each query.
async fn callback(State(seen): State<Seen>, Query(q): Query<HashMap<String, String>>) -> Html<String> {
    let mut rows: Vec<_> =
        q.iter().map(|(k, v)| format!("<li><b>{}</b> = <code>{}</code></li>", esc(k), esc(v))).collect();
    rows.sort();
    seen.lock().unwrap().push(q);
    Html(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>RP callback</title></head>\
         <body><h1>RP callback</h1><ul id=\"params\">{}</ul></body></html>",
        rows.concat()
    ))
}

/// Starts the RP on a free loopback port; returns its redirect URI and what it has seen.
pub(crate) async fn start_rp() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect = format!("http://{}/callback", listener.local_addr().unwrap());
    let seen = Seen::default();
    let app = axum::Router::new().route("/callback", axum::routing::get(callback)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (redirect, seen)
}

/// Registers the RP through the admin API; returns its client_secret.
async fn register_rp(s: &TestServer, redirect: &str) -> String {
    let admin = flow::admin_token(s).await;
    let body = json!({
        "client_id": RP_CLIENT,
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code"],
        "scope": "openid profile",
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let resp = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "register {RP_CLIENT}");
    let v: Value = resp.json().await.unwrap();
    v["client_secret"].as_str().expect("client_secret in the admin response").to_owned()
}

pub(crate) fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    target.join(name)
}

pub(crate) fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// HL-5.3 / DC-6 / JM-5.6, RFC 6749 s4.1: Chromium -> /authorize -> login page (zh-CN) -> wrong
/// password shows the generic error -> right password -> back at the RP with a code -> the RP
/// redeems it (PKCE, RFC 7636) for an access token and an ID token.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_logs_in_through_the_login_page() {
    let started = Instant::now();
    let s = TestServer::start(Backend::Memory).await;
    let (redirect, seen) = start_rp().await;
    let secret = register_rp(&s, &redirect).await;
    let mut browser = Browser::launch().await;
    let launched = started.elapsed();

    // RFC 6749 s4.1.1 authorization request, with PKCE S256 and OIDC nonce / ui_locales.
    let pkce = Pkce::new();
    let (state, nonce) = ("browser-st-1", "browser-n-1");
    let mut authorize = url::Url::parse(&s.url("/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", RP_CLIENT)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("ui_locales", "zh-CN");
    browser.navigate(authorize.as_str()).await;

    // HL-5.3: no session, so the browser was redirected to the login page, in zh-CN (DC-6).
    let at = browser.current_url().await;
    assert!(at.starts_with(&s.url("/login?req=")), "expected the login page, at {at}");
    assert_eq!(browser.title().await, "统一身份认证登录");
    assert_eq!(browser.attribute(&browser.find("html").await, "lang").await.as_deref(), Some("zh-CN"));
    assert_eq!(browser.text(&browser.find("h1").await).await, "统一身份认证登录");
    let form = browser.find("form").await;
    assert_eq!(browser.attribute(&form, "action").await.as_deref(), Some("/login"));
    assert_eq!(browser.attribute(&form, "method").await.as_deref(), Some("post"));
    // The fields are named username and password (what password managers and HL-5.3 expect).
    let user = browser.find("form input[name=username]").await;
    assert_eq!(browser.attribute(&user, "type").await.as_deref(), Some("text"));
    let pass = browser.find("form input[name=password]").await;
    assert_eq!(browser.attribute(&pass, "type").await.as_deref(), Some("password"));
    assert_eq!(browser.text(&browser.find("form button[type=submit]").await).await, "登录");
    assert_eq!(browser.count(".error").await, 0, "no error before a submit");
    let shot = screenshot_path("browser-login.png");
    browser.screenshot(&shot).await;

    // A wrong password: the same form again with the generic message, no redirect to the RP.
    browser.send_keys(&user, USER).await;
    browser.send_keys(&pass, "not-the-password").await;
    browser.click(&browser.find("form button[type=submit]").await).await;
    // The click returns before the POST's answer (password hashing) has loaded: wait for it.
    let error = browser.wait_for(".error[role=alert]", Duration::from_secs(10)).await;
    // NIST SP 800-63B s5.2.2: the attempts left before a lockout are shown.
    assert_eq!(browser.text(&error).await, "用户名或密码错误。还可尝试 9 次。");
    let at = browser.current_url().await;
    assert!(at.starts_with(&s.base), "a failed login stays on the server, at {at}");
    assert!(seen.lock().unwrap().is_empty(), "the RP got a request after a wrong password");
    browser.screenshot(&screenshot_path("browser-login-error.png")).await;

    // The right password. The form came back with the username filled in: clear it first.
    let user = browser.find("form input[name=username]").await;
    assert_eq!(browser.attribute(&user, "value").await.as_deref(), Some(USER), "username kept after a failure");
    browser.clear(&user).await;
    browser.send_keys(&user, USER).await;
    browser.send_keys(&browser.find("form input[name=password]").await, PASSWORD).await;
    browser.click(&browser.find("form button[type=submit]").await).await;

    // RFC 6749 s4.1.2: the browser lands on the RP's redirect URI with code and state.
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u.starts_with(&redirect)).await;
    assert!(at.starts_with(&redirect), "expected the RP callback within 10 s, at {at}: {}", browser.source().await);
    let q = flow::query(&at);
    let code = q.get("code").unwrap_or_else(|| panic!("no code in {at}")).clone();
    assert_eq!(q.get("state").map(String::as_str), Some(state));
    assert_eq!(q.get("iss"), Some(&s.base), "RFC 9207 iss");
    assert!(browser.source().await.contains(&code), "the RP page shows what it got");
    assert_eq!(seen.lock().unwrap().as_slice(), std::slice::from_ref(&q), "the RP got exactly the one redirect");

    // RFC 6749 s4.1.3: the RP redeems the code with its credentials and the PKCE verifier.
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(RP_CLIENT, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    assert!(tokens["access_token"].as_str().is_some_and(|t| !t.is_empty()), "access_token in {tokens}");
    assert!(tokens["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")), "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("id_token in {tokens}"));
    let claims = jwt_claims(id_token);
    assert_eq!(claims["iss"], json!(s.base));
    assert_eq!(claims["aud"], json!(RP_CLIENT), "{claims}");
    assert_eq!(claims["nonce"], json!(nonce));
    assert!(claims["sub"].as_str().is_some_and(|v| !v.is_empty()), "{claims}");

    browser.quit().await;
    eprintln!(
        "browser test: {:.1} s in all ({:.1} s to start the server and Chromium); login page screenshot at {}",
        started.elapsed().as_secs_f64(),
        launched.as_secs_f64(),
        shot.display()
    );
}
