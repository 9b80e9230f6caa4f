//! The integrator's reference application (`src/example_rp/`) driven end to end in headless
//! Chromium against a real server: HL-5.3 login to a protected page, back-channel logout by an
//! admin (OpenID Back-Channel Logout 1.0), and the HL-5.4 logout button.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tongzheng::example_rp::{self, Settings};

use crate::browser::screenshot_path;
use crate::support::flow;
use crate::support::server::{Backend, PASSWORD, TestServer, USER};
use crate::support::webdriver::Browser;

const CLIENT: &str = "example-rp";

/// Starts the example application on a free loopback port, registered at `s` through the admin
/// API with its redirect and back-channel logout URIs (as an integrator would register it).
async fn start_example(s: &TestServer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let admin = flow::admin_token(s).await;
    let body = json!({
        "client_id": CLIENT,
        "redirect_uris": [format!("{base}/callback")],
        "backchannel_logout_uri": format!("{base}/backchannel-logout"),
        "backchannel_logout_session_required": true,
        "grant_types": ["authorization_code"],
        "scope": "openid profile email",
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let resp = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "register {CLIENT}");
    let v: Value = resp.json().await.unwrap();
    let settings = Settings {
        issuer: s.base.clone(),
        client_id: CLIENT.into(),
        client_secret: v["client_secret"].as_str().unwrap().into(),
        base: base.clone(),
    };
    tokio::spawn(example_rp::run(listener, settings, std::future::pending()));
    base
}

/// Fills in the login page the browser is on and waits to be back on `rp`'s protected page.
async fn log_in(browser: &Browser, s: &TestServer, rp: &str) {
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u.starts_with(&s.url("/login"))).await;
    assert!(at.starts_with(&s.url("/login")), "expected the platform's login page, at {at}");
    browser.send_keys(&browser.find("form input[name=username]").await, USER).await;
    browser.send_keys(&browser.find("form input[name=password]").await, PASSWORD).await;
    browser.click(&browser.find("form button[type=submit]").await).await;
    let protected = format!("{rp}/protected");
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u == protected).await;
    assert_eq!(at, protected, "HL-5.3: back on the remembered page: {}", browser.source().await);
}

/// HL-5.3, HL-5.4, DC-4; OIDC Core s3.1 (code flow), RFC 7636 (PKCE), Back-Channel Logout 1.0
/// s2.6: protected page -> platform login -> back on the protected page with the user's name ->
/// an admin ends the platform session and the back-channel logout ends the application's session
/// -> log in again -> the logout button ends both sessions.
#[tokio::test(flavor = "multi_thread")]
async fn example_application_logs_in_and_out() {
    let started = Instant::now();
    let s = TestServer::start(Backend::Memory).await;
    let rp = start_example(&s).await;
    let mut browser = Browser::launch().await;

    // HL-5.3: the home page offers the protected page; opening it without a login sends the
    // browser to the platform, which shows its login page.
    browser.navigate(&rp).await;
    assert_eq!(browser.count("#anonymous").await, 1, "not logged in yet");
    browser.click(&browser.find("#protected-link").await).await;
    log_in(&browser, &s, &rp).await;
    assert_eq!(browser.text(&browser.find("#user").await).await, "演示用户", "the user's name from UserInfo");
    let sid = browser.text(&browser.find("#sid").await).await;
    assert!(!sid.is_empty(), "the ID token carries the platform session id");
    browser.screenshot(&screenshot_path("example-rp-protected.png")).await;

    // DC-4: an admin ends the platform session; the back-channel logout token reaches the
    // application, which verifies it and ends its own session.
    let admin = flow::admin_token(&s).await;
    let resp = s.http.delete(s.url(&format!("/admin/v1/sessions/{sid}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "admin ends the session");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        browser.navigate(&rp).await;
        if browser.count("#anonymous").await == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the application's session outlived the back-channel logout");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deliveries: Value = s
        .http
        .get(s.url(&format!("/admin/v1/logout/deliveries?sid={sid}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(deliveries.to_string().contains("delivered"), "the delivery is recorded as delivered: {deliveries}");

    // The platform session is gone too: the protected page needs a new login.
    browser.navigate(&format!("{rp}/protected")).await;
    log_in(&browser, &s, &rp).await;
    let sid2 = browser.text(&browser.find("#sid").await).await;
    assert_ne!(sid2, sid, "a new platform session");

    // HL-5.4: the logout button clears the local session, then the backend calls the
    // platform's /logout, which ends the platform session.
    browser.click(&browser.find("#logout").await).await;
    let home = format!("{rp}/");
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u == home).await;
    assert_eq!(at, home);
    assert_eq!(browser.count("#anonymous").await, 1, "logged out locally");
    let resp = s.http.delete(s.url(&format!("/admin/v1/sessions/{sid2}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the platform session ended with the application's logout");
    browser.navigate(&format!("{rp}/protected")).await;
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u.starts_with(&s.url("/login"))).await;
    assert!(at.starts_with(&s.url("/login")), "no single sign-on left after the logout, at {at}");

    browser.quit().await;
    eprintln!("example application test: {:.1} s", started.elapsed().as_secs_f64());
}

/// Back-Channel Logout 1.0 s2.6 and s2.8: the receiver refuses what is not a valid logout token
/// from its platform with 400 (a forged signature, an ID token, nothing at all).
#[tokio::test]
async fn example_application_refuses_bad_logout_tokens() {
    let s = TestServer::start(Backend::Memory).await;
    let rp = start_example(&s).await;
    let http = reqwest::Client::new();
    let post = |body: Vec<(&'static str, String)>| http.post(format!("{rp}/backchannel-logout")).form(&body).send();
    assert_eq!(post(vec![]).await.unwrap().status(), StatusCode::BAD_REQUEST, "no token");
    let junk = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.".to_owned();
    assert_eq!(post(vec![("logout_token", junk)]).await.unwrap().status(), StatusCode::BAD_REQUEST, "alg none");
    // An ID token is signed by the platform but has a nonce and no logout event.
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let (_, tokens) = flow::redeem(&s, &code, &pkce).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let resp = post(vec![("logout_token", id_token)]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "an ID token is not a logout token");
}
