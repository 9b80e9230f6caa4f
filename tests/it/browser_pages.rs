//! The login and consent pages in headless Chromium at phone sizes (JM-5.6, SH-D: pages work
//! on phones and in Chromium-based browsers; SH-8.2: the consent page marks sensitive items).
//! Walks both login tabs in both languages by their links (no JavaScript needed), signs in,
//! reaches the consent page, checks that nothing is wider than the viewport, and keeps
//! screenshots at 320x640 and 390x844 in target/ (`pages-*.png`) for a person to look at.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::browser::screenshot_path;
use crate::support::flow::Pkce;
use crate::support::server::{Backend, PASSWORD, TestServer, USER, WEB_CLIENT, WEB_REDIRECT};
use crate::support::webdriver::Browser;

/// A small emblem as an inline SVG logo (the CSP admits `data:` images for it).
const LOGO_SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64' viewBox='0 0 64 64'>\
    <circle cx='32' cy='32' r='30' fill='#b91c1c'/><circle cx='32' cy='32' r='22' fill='none' stroke='#fde68a' stroke-width='3'/>\
    <path d='M32 16l4.7 9.5 10.5 1.5-7.6 7.4 1.8 10.4L32 39.9l-9.4 4.9 1.8-10.4-7.6-7.4 10.5-1.5z' fill='#fde68a'/></svg>";

/// Phone viewports: a small Android phone and an iPhone 12-15.
const SIZES: [(u32, u32); 2] = [(320, 640), (390, 844)];

/// Elements reaching past the right edge of the viewport (none on a page that fits).
const OVERFLOW: &str = "var w = document.documentElement.clientWidth, out = [];\
    if (document.documentElement.scrollWidth > w) out.push('document ' + document.documentElement.scrollWidth);\
    document.querySelectorAll('body *').forEach(function (e) { var r = e.getBoundingClientRect();\
    if (r.width > 0 && r.right > w + 0.5) out.push(e.tagName + '.' + e.className + ' ' + Math.round(r.right)); });\
    return out;";

async fn fits(browser: &Browser, what: &str) {
    let out = browser.execute(OVERFLOW).await;
    assert_eq!(out, Value::Array(vec![]), "{what}: wider than the viewport");
}

async fn shoot(browser: &Browser, name: &str, (w, h): (u32, u32)) {
    fits(browser, name).await;
    browser.screenshot(&screenshot_path(&format!("pages-{name}-{w}x{h}.png"))).await;
}

// JM-5.6, SH-D, SH-8.2: login (个人 and 法人 tabs, zh-CN and en) and consent pages at 320x640 and
// 390x844 in Chromium, fitting the width, tabs switched by plain links.
#[tokio::test(flavor = "multi_thread")]
async fn login_and_consent_pages_at_phone_sizes() {
    let logo = base64::engine::general_purpose::STANDARD.encode(LOGO_SVG);
    let overlay = format!(
        "[branding]\nname = \"某省统一身份认证平台\"\nname_en = \"Province Unified Login\"\n\
         logo_url = \"data:image/svg+xml;base64,{logo}\"\n\
         footer = \"主办单位：某省大数据中心 | 某ICP备00000000号\"\nfooter_en = \"Operated by the provincial big data centre\"\n\
         help_url = \"https://www.example.gov.cn/help\"\n"
    );
    let s = TestServer::start_with(Backend::Memory, &overlay).await;
    let mut browser = Browser::launch().await;
    let pkce = Pkce::new();
    let mut authorize = url::Url::parse(&s.url("/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", WEB_CLIENT)
        .append_pair("redirect_uri", WEB_REDIRECT)
        .append_pair("scope", "openid profile phone")
        .append_pair("state", "st-phone")
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    browser.set_viewport(SIZES[0].0, SIZES[0].1).await;
    browser.navigate(authorize.as_str()).await;
    let login = browser.current_url().await;
    assert!(login.starts_with(&s.url("/login?req=")), "at {login}");

    for size in SIZES {
        browser.set_viewport(size.0, size.1).await;
        browser.navigate(&format!("{login}&lang=zh-CN")).await;
        assert_eq!(browser.text(&browser.find("nav.tabs a[aria-current=page]").await).await, "个人登录");
        assert_eq!(browser.text(&browser.find("header .platform").await).await, "某省统一身份认证平台");
        let logo_width = browser.execute("return document.querySelector('header img').naturalWidth;").await;
        assert!(logo_width.as_u64().is_some_and(|w| w > 0), "the data: logo loads under the CSP: {logo_width}");
        shoot(&browser, "login-person-zh", size).await;
        // The 法人 tab is a link: a click loads it, no script involved.
        browser.click(&browser.find("#tab-legal").await).await;
        let tab = browser.wait_for("#legal-form", Duration::from_secs(10)).await;
        assert_eq!(browser.attribute(&tab, "action").await.as_deref(), Some("/login"));
        let kind = browser.find("#legal-form input[name=account_kind]").await;
        assert_eq!(browser.attribute(&kind, "value").await.as_deref(), Some("legal_person"));
        shoot(&browser, "login-legal-zh", size).await;
        // The language switch, on the 法人 tab.
        browser.click(&browser.find("#lang").await).await;
        browser.wait_for("html[lang=en] #legal-form", Duration::from_secs(10)).await;
        assert_eq!(browser.text(&browser.find("nav.tabs a[aria-current=page]").await).await, "Organization");
        shoot(&browser, "login-legal-en", size).await;
        browser.click(&browser.find("#tab-person").await).await;
        browser.wait_for("html[lang=en] #person-form", Duration::from_secs(10)).await;
        shoot(&browser, "login-person-en", size).await;
    }

    // Back to Chinese, sign in on the 个人 tab: `phone` is sensitive, so the consent page comes.
    browser.set_viewport(SIZES[0].0, SIZES[0].1).await;
    browser.navigate(&format!("{login}&lang=zh-CN")).await;
    browser.send_keys(&browser.find("#person-form input[name=username]").await, USER).await;
    browser.send_keys(&browser.find("#person-form input[name=password]").await, PASSWORD).await;
    browser.click(&browser.find("#person-form button[type=submit]").await).await;
    let item = browser.wait_for("ul.scopes li.sensitive[data-scope=phone]", Duration::from_secs(10)).await;
    assert_eq!(browser.text(&item).await, "敏感信息您的手机号码");
    assert_eq!(browser.title().await, "授权确认");
    for size in SIZES {
        browser.set_viewport(size.0, size.1).await;
        shoot(&browser, "consent-zh", size).await;
    }
    // The same consent page in English (the session is live; prompt=consent shows it again).
    authorize.query_pairs_mut().append_pair("prompt", "consent").append_pair("ui_locales", "en");
    browser.navigate(&format!("{login}&lang=en")).await;
    browser.navigate(authorize.as_str()).await;
    let item =
        browser.wait_for("html[lang=en] ul.scopes li.sensitive[data-scope=phone]", Duration::from_secs(10)).await;
    assert_eq!(browser.text(&item).await, "SensitiveYour mobile phone number");
    for size in SIZES {
        browser.set_viewport(size.0, size.1).await;
        shoot(&browser, "consent-en", size).await;
    }
    browser.quit().await;
    eprintln!("screenshots: {}", screenshot_path("pages-*.png").display());
}
