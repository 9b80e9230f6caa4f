//! Registration in a real browser at phone size (HL-5.2, GB-6.4a, JM-5.6): headless Chromium,
//! with a 320 px wide viewport, follows `prompt=create` (OpenID Connect Prompt Create 1.0)
//! to the registration page, asks for an SMS code (read from the dev sender's outbox file, as
//! a person reads their phone), registers and lands back at the relying party with a code;
//! then the organization tab and the account page. Screenshots are kept in target/.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{screenshot_path, start_rp};
use crate::signup::Outbox;
use crate::support::flow::{self, Pkce};
use crate::support::server::{Backend, TestServer};
use crate::support::webdriver::Browser;

const RP: &str = "signup-rp";

/// The page has no horizontal scrolling at the emulated width.
async fn fits(browser: &Browser, what: &str) {
    let v = browser.execute("return [document.documentElement.scrollWidth, window.innerWidth];").await;
    let (scroll, inner) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
    assert!(scroll <= inner, "{what}: {scroll} px of content in a {inner} px wide window");
}

// HL-5.2, GB-6.4a, JM-5.6, SH-8.2; Prompt Create 1.0 s4.1.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_registers_with_an_sms_code_at_phone_size() {
    let started = Instant::now();
    let outbox = Outbox::new_for_browser();
    let s = TestServer::start_with(Backend::Memory, &outbox.overlay()).await;
    let (redirect, seen) = start_rp().await;
    let admin = flow::admin_token(&s).await;
    let body = json!({"client_id": RP, "name": "办事大厅", "redirect_uris": [redirect], "grant_types": ["authorization_code"],
        "scope": "openid profile", "token_endpoint_auth_method": "client_secret_basic"});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut browser = Browser::launch().await;
    browser.set_viewport(320, 640).await;

    let pkce = Pkce::new();
    let mut authorize = url::Url::parse(&s.url("/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", RP)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "reg-st")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "create")
        .append_pair("ui_locales", "zh-CN");
    browser.navigate(authorize.as_str()).await;
    let at = browser.current_url().await;
    assert!(at.starts_with(&s.url("/signup?req=")), "prompt=create lands on the registration page, at {at}");
    assert_eq!(browser.title().await, "注册账号");
    assert_eq!(browser.count("script").await, 0, "no JavaScript on the page");
    fits(&browser, "signup").await;
    browser.screenshot(&screenshot_path("browser-signup-320.png")).await;

    // The code button submits the form without the other fields (formnovalidate).
    browser.send_keys(&browser.find("input[name=phone]").await, "138 0013 8000").await;
    browser.click(&browser.find("button[value=send_code]").await).await;
    let notice = browser.wait_for(".ok[role=status]", Duration::from_secs(10)).await;
    assert!(browser.text(&notice).await.contains("138****8000"));
    let code = outbox.last_code("+8613800138000");
    let phone = browser.find("input[name=phone]").await;
    assert_eq!(browser.attribute(&phone, "value").await.as_deref(), Some("138 0013 8000"), "the phone is kept");
    fits(&browser, "signup after the code").await;
    browser.screenshot(&screenshot_path("browser-signup-code-sent-320.png")).await;
    for (name, value) in
        [("code", code.as_str()), ("username", "zhang.san"), ("name", "张三"), ("password", "zhang-san-password")]
    {
        browser.send_keys(&browser.find(&format!("input[name={name}]")).await, value).await;
    }
    browser.click(&browser.find("button[value=register]").await).await;
    let at = browser.wait_for_url(Duration::from_secs(15), |u| u.starts_with(&redirect)).await;
    assert!(at.starts_with(&redirect), "back at the application within 15 s, at {at}: {}", browser.source().await);
    let q = flow::query(&at);
    assert_eq!(q.get("state").map(String::as_str), Some("reg-st"));
    assert!(q.contains_key("code"), "{q:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);

    // The organization tab, signed in: company data only.
    browser.navigate(&s.url("/signup?kind=legal")).await;
    assert_eq!(browser.count("input[name=phone]").await, 0);
    assert_eq!(browser.count("select[name=org_kind] option").await, 5);
    fits(&browser, "organization").await;
    browser.screenshot(&screenshot_path("browser-signup-legal-320.png")).await;

    // The account page: masked phone, one session.
    browser.navigate(&s.url("/account")).await;
    let source = browser.source().await;
    assert!(source.contains("138****8000") && !source.contains("13800138000"), "SH-8.2");
    fits(&browser, "account").await;
    browser.screenshot(&screenshot_path("browser-account-320.png")).await;
    let v: Value = browser.execute("return document.querySelectorAll('button').length;").await;
    assert!(v.as_u64().unwrap() >= 2);
    browser.quit().await;
    eprintln!("signup browser test: {:.1} s", started.elapsed().as_secs_f64());
}
