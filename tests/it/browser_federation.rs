//! Platform federation in a real browser (GB-6.4c, GB-6.4d, JM-5.6): headless Chromium logs in
//! once at the province, is logged in silently at the city (no form: only redirects between
//! the platforms), logs out at the city, and is then logged out at the province too.
//! Screenshots are saved under the target directory (`fed-*.png`).

use std::time::Duration;

use crate::browser::{screenshot_path, start_rp};
use crate::federation::trust;
use crate::support::flow::{self, Pkce};
use crate::support::server::{Backend, PASSWORD, TestServer, USER};
use crate::support::webdriver::Browser;

async fn register_rp(s: &TestServer, redirect: &str) {
    let admin = flow::admin_token(s).await;
    let body = serde_json::json!({"client_id": "fed-rp", "redirect_uris": [redirect], "grant_types": ["authorization_code"],
                                  "scope": "openid profile", "token_endpoint_auth_method": "none"});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
}

fn authorize(s: &TestServer, redirect: &str, prompt_none: bool) -> String {
    let pkce = Pkce::new();
    let mut u = url::Url::parse(&s.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "fed-rp")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "fed")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("ui_locales", "zh-CN");
    if prompt_none {
        u.query_pairs_mut().append_pair("prompt", "none");
    }
    u.into()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_silent_login_and_logout_across_platforms() {
    let province = TestServer::start_platform(Backend::Memory, "127.0.0.11", "").await;
    let city = TestServer::start_platform(Backend::Memory, "127.0.0.12", "").await;
    trust(&province, "province", &city, "city").await;
    let (province_rp, province_seen) = start_rp().await;
    let (city_rp, city_seen) = start_rp().await;
    register_rp(&province, &province_rp).await;
    register_rp(&city, &city_rp).await;
    let mut browser = Browser::launch().await;

    // The person logs in at the province, with a form.
    browser.navigate(&authorize(&province, &province_rp, false)).await;
    let at = browser.current_url().await;
    assert!(at.starts_with(&province.url("/login?req=")), "expected the province's login page, at {at}");
    browser.send_keys(&browser.find("form input[name=username]").await, USER).await;
    browser.send_keys(&browser.find("form input[name=password]").await, PASSWORD).await;
    browser.screenshot(&screenshot_path("fed-1-province-login.png")).await;
    browser.click(&browser.find("form button[type=submit]").await).await;
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u.starts_with(&province_rp)).await;
    assert!(flow::query(&at).contains_key("code"), "{at}");

    // GB-6.4c: the city's RP. No form anywhere: the browser goes city -> province -> city ->
    // RP by redirects alone and lands with a code.
    browser.navigate(&authorize(&city, &city_rp, false)).await;
    let at = browser.wait_for_url(Duration::from_secs(10), |u| u.starts_with(&city_rp)).await;
    let q = flow::query(&at);
    assert!(q.contains_key("code"), "silent login at the city: {at} {}", browser.source().await);
    assert_eq!(q.get("iss"), Some(&city.base));
    assert_eq!(city_seen.lock().unwrap().len(), 1);
    browser.screenshot(&screenshot_path("fed-2-city-silent-login.png")).await;

    // GB-6.4d: log out at the city; the province's session ends too.
    browser.navigate(&city.url("/end_session")).await;
    let confirm = browser.wait_for("form button[name=decision][value=logout]", Duration::from_secs(10)).await;
    browser.screenshot(&screenshot_path("fed-3-city-logout-confirm.png")).await;
    browser.click(&confirm).await;
    browser.wait_for("main", Duration::from_secs(10)).await;
    browser.screenshot(&screenshot_path("fed-4-city-logged-out.png")).await;
    // The upstream is told by a durable delivery: poll prompt=none at the province until it
    // answers login_required (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        browser.navigate(&authorize(&province, &province_rp, true)).await;
        let at = browser.wait_for_url(Duration::from_secs(10), |u| u.starts_with(&province_rp)).await;
        let q = flow::query(&at);
        if q.get("error").map(String::as_str) == Some("login_required") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still logged in at the province: {at}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.screenshot(&screenshot_path("fed-5-province-logged-out.png")).await;
    assert!(province_seen.lock().unwrap().len() >= 2);
    browser.quit().await;
}
