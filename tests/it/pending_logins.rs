//! Pending logins are capped (issue 9): `/authorize` without a session remembers the request
//! until the login form is sent; a browser keeps at most `security.pending_logins_per_browser`
//! of them and the platform `security.pending_logins_total`, the oldest dropped first.

use reqwest::StatusCode;

use crate::support::flow::{self, Pkce};
use crate::support::server::{Backend, PASSWORD, TestServer, USER, WEB_CLIENT, WEB_REDIRECT};

/// Starts a login in `browser` and returns the login page's path.
async fn start_login(s: &TestServer, browser: &reqwest::Client) -> String {
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid"),
        ("state", "s1"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = browser.get(s.url("/authorize")).query(&params).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = flow::location(&r);
    assert!(loc.starts_with("/login?req="), "{loc}");
    loc
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The login form at `path`, as (req, csrf).
async fn form(s: &TestServer, browser: &reqwest::Client, path: &str) -> (String, String) {
    let r = browser.get(s.url(path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let html = r.text().await.unwrap();
    (flow::hidden(&html, "req"), flow::hidden(&html, "csrf"))
}

async fn post_login(s: &TestServer, browser: &reqwest::Client, (req, csrf): &(String, String)) -> reqwest::Response {
    let f = [("req", req.as_str()), ("csrf", csrf.as_str()), ("username", USER), ("password", PASSWORD)];
    browser.post(s.url("/login")).form(&f).send().await.unwrap()
}

async fn assert_expired_page(r: reqwest::Response) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(html.contains("replaced by newer login requests"), "{html}");
}

// Issue 9: the 17th pending login of one browser drops its 1st; logging in to the 1st then
// fails with a page saying why, the others still work.
async fn per_browser_cap_drops_the_oldest(b: Backend) {
    let s = TestServer::start(b).await;
    let me = browser();
    let first = start_login(&s, &me).await;
    let first_form = form(&s, &me, &first).await;
    let mut others = Vec::new();
    for _ in 0..16 {
        others.push(start_login(&s, &me).await);
    }
    assert_expired_page(me.get(s.url(&first)).send().await.unwrap()).await;
    assert_expired_page(post_login(&s, &me, &first_form).await).await;
    // The second-oldest survived and completes (HL-5.3).
    let second = form(&s, &me, &others[0]).await;
    let r = post_login(&s, &me, &second).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(flow::location(&r).starts_with(WEB_REDIRECT), "{}", flow::location(&r));
    // Another browser's pending logins are its own.
    let other = browser();
    let theirs = start_login(&s, &other).await;
    form(&s, &other, &theirs).await;
    form(&s, &me, others.last().unwrap()).await;
}

// Issue 9: beyond security.pending_logins_total the platform drops its oldest pending logins,
// whichever browser they belong to.
async fn total_cap_drops_the_oldest(b: Backend) {
    let s = TestServer::start_with(b, "[security]\npending_logins_total = 3\n").await;
    let browsers: Vec<reqwest::Client> = (0..4).map(|_| browser()).collect();
    let mut logins = Vec::new();
    for br in &browsers {
        logins.push(start_login(&s, br).await);
        // Creation times are whole seconds: one apart, "oldest" is unambiguous.
        s.clock.advance(1);
    }
    assert_expired_page(browsers[0].get(s.url(&logins[0])).send().await.unwrap()).await;
    for (br, path) in browsers.iter().zip(&logins).skip(1) {
        form(&s, br, path).await;
    }
    // A finished login frees its place: the next one drops nobody.
    let done = form(&s, &browsers[1], &logins[1]).await;
    assert_eq!(post_login(&s, &browsers[1], &done).await.status(), StatusCode::SEE_OTHER);
    let fifth = browser();
    let path = start_login(&s, &fifth).await;
    form(&s, &fifth, &path).await;
    form(&s, &browsers[2], &logins[2]).await;
    form(&s, &browsers[3], &logins[3]).await;
}

per_backend!(per_browser_cap_drops_the_oldest, total_cap_drops_the_oldest);
