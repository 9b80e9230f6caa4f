//! Screenshots of the citizens' pages of issue 14 in headless Chromium: the landing page, the
//! login page (both tabs), sign-up (person and company), password reset, the 404 page, error
//! pages, the maintenance and suspension pages, the signed-out page, and signed in: the consent
//! page, the account page and the logout confirmation, at
//! 390x844 and 1366x768, in zh-CN and English, left in target/screenshots/ for a person to
//! look at; each page fits the viewport's width.

use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::screenshot_path;
use crate::citizen_pages::{authorize_path, released_app, transition};
use crate::support::flow;
use crate::support::server::{Backend, PASSWORD, TestServer, USER, WEB_CLIENT, WEB_REDIRECT};
use crate::support::webdriver::Browser;

const SIZES: [(u32, u32); 2] = [(390, 844), (1366, 768)];

/// Elements reaching past the right edge of the viewport (none on a page that fits).
const OVERFLOW: &str = "var w = document.documentElement.clientWidth, out = [];\
    if (document.documentElement.scrollWidth > w) out.push('document ' + document.documentElement.scrollWidth);\
    return out;";

// Issue 14 (citizens: screenshots of every page in both languages at 390x844 and 1366x768),
// JM-5.6 (pages in Chromium-based browsers).
#[tokio::test(flavor = "multi_thread")]
async fn citizen_pages_screenshots() {
    let s = TestServer::start_with(
        Backend::Memory,
        "[branding]\nname = \"某省统一身份认证平台\"\nname_en = \"Province Unified Login\"\nhelp_url = \"/help\"",
    )
    .await;
    let admin = flow::admin_token(&s).await;
    released_app(&s, &admin, "down-app").await;
    released_app(&s, &admin, "blocked-app").await;
    let until = s.clock.now() + 3 * 3600;
    let body =
        json!({"to": "temporarily_offline", "reason": "系统升级维护", "until": until, "contact": "服务热线 12345"});
    assert!(transition(&s, &admin, "down-app", body).await.status().is_success());
    let body = json!({"to": "suspended", "reason": "异常调用"});
    assert!(transition(&s, &admin, "blocked-app", body).await.status().is_success());
    let redirect = "http://127.0.0.1:9300/cb";
    let mut browser = Browser::launch().await;
    // A login of the demo website asking for the sensitive `phone` item: its login page, and
    // after signing in, its consent page.
    let wants_phone = authorize_path(WEB_CLIENT, WEB_REDIRECT).replace("scope=openid", "scope=openid+profile+phone");
    browser.navigate(&s.url(&wants_phone)).await;
    let login = browser.current_url().await;
    assert!(login.starts_with(&s.url("/login?req=")), "at {login}");
    let login = login.trim_start_matches(&s.url("")).to_owned();
    let signed_out = [
        ("landing", "/".to_owned()),
        ("login", login.clone()),
        ("login-legal", format!("{login}&kind=legal_person")),
        ("signup", "/signup".to_owned()),
        ("signup-legal", "/signup?kind=legal".to_owned()),
        ("password-reset", "/password/reset".to_owned()),
        ("not-found", "/no/such/page".to_owned()),
        ("error-unknown-client", authorize_path("no-such-client", redirect)),
        ("error-bad-redirect", authorize_path(WEB_CLIENT, "https://evil.example/cb")),
        ("error-expired", "/login?req=gone".to_owned()),
        ("maintenance", authorize_path("down-app", redirect)),
        ("suspended", authorize_path("blocked-app", redirect)),
        ("logged-out", "/end_session".to_owned()),
    ];
    shoot_all(&mut browser, &s, &signed_out).await;

    // Signed in: the consent page (asked again each time: nothing is allowed here), the account
    // page and the logout confirmation (RP-Initiated Logout s2: no hint, so it asks).
    browser.navigate(&s.url(&login)).await;
    browser.send_keys(&browser.find("#person-form input[name=username]").await, USER).await;
    browser.send_keys(&browser.find("#person-form input[name=password]").await, PASSWORD).await;
    browser.click(&browser.find("#person-form button[type=submit]").await).await;
    browser.wait_for("ul.scopes li.sensitive[data-scope=phone]", Duration::from_secs(10)).await;
    let signed_in = [
        ("consent", wants_phone.clone()),
        ("account", "/account".to_owned()),
        ("logout-confirm", "/end_session".to_owned()),
    ];
    shoot_all(&mut browser, &s, &signed_in).await;
    browser.quit().await;
}

/// Every page of `pages` in zh-CN and English at each of [`SIZES`]: in the page's language,
/// no wider than the viewport, a screenshot in target/screenshots/.
async fn shoot_all(browser: &mut Browser, s: &TestServer, pages: &[(&str, String)]) {
    for lang in ["zh-CN", "en"] {
        browser.navigate(&s.url("/")).await;
        browser.execute(&format!("document.cookie = 'tz_lang={lang}; path=/'; return 0;")).await;
        for (w, h) in SIZES {
            browser.set_viewport(w, h).await;
            for (name, path) in pages {
                browser.navigate(&s.url(path)).await;
                // On a loaded machine Chromium can answer for the document before it has one
                // (an empty source, seen in CI): wait until the page's root names a language.
                browser.wait_for("html[lang]", Duration::from_secs(10)).await;
                let source = browser.source().await;
                assert!(source.contains(&format!("lang=\"{lang}\"")), "{name} {lang}: {source}");
                let out = browser.execute(OVERFLOW).await;
                assert_eq!(out, Value::Array(vec![]), "{name} {lang} {w}x{h}: wider than the viewport");
                browser.screenshot(&screenshot_path(&format!("screenshots/citizen-{name}-{lang}-{w}x{h}.png"))).await;
            }
        }
    }
}
