//! Screenshots of the citizens' pages of issue 14 in headless Chromium: the landing page, the
//! 404 page, error pages, the maintenance and suspension pages and the signed-out page, at
//! 390x844 and 1366x768, in zh-CN and English, left in target/screenshots/ for a person to
//! look at; each page fits the viewport's width.

use serde_json::{Value, json};

use crate::browser::screenshot_path;
use crate::citizen_pages::{authorize_path, released_app, transition};
use crate::support::flow;
use crate::support::server::{Backend, TestServer, WEB_CLIENT};
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
    let pages = [
        ("landing", "/".to_owned()),
        ("not-found", "/no/such/page".to_owned()),
        ("error-unknown-client", authorize_path("no-such-client", redirect)),
        ("error-bad-redirect", authorize_path(WEB_CLIENT, "https://evil.example/cb")),
        ("error-expired", "/login?req=gone".to_owned()),
        ("maintenance", authorize_path("down-app", redirect)),
        ("suspended", authorize_path("blocked-app", redirect)),
        ("logged-out", "/end_session".to_owned()),
    ];
    let mut browser = Browser::launch().await;
    for lang in ["zh-CN", "en"] {
        browser.navigate(&s.url("/")).await;
        browser.execute(&format!("document.cookie = 'tz_lang={lang}; path=/'; return 0;")).await;
        for (w, h) in SIZES {
            browser.set_viewport(w, h).await;
            for (name, path) in &pages {
                browser.navigate(&s.url(path)).await;
                let source = browser.source().await;
                assert!(source.contains(&format!("lang=\"{lang}\"")), "{name} {lang}: {source}");
                let out = browser.execute(OVERFLOW).await;
                assert_eq!(out, Value::Array(vec![]), "{name} {lang} {w}x{h}: wider than the viewport");
                browser.screenshot(&screenshot_path(&format!("screenshots/citizen-{name}-{lang}-{w}x{h}.png"))).await;
            }
        }
    }
    browser.quit().await;
}
