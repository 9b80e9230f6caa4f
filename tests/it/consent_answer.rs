//! The consent form answers only a request the browser's session may answer as it stands: the
//! login form of a `prompt=login` request carries the same `req` and `csrf`, and posting them to
//! `/consent` must not skip the fresh login the client asked for (OIDC Core s3.1.2.1).

use reqwest::StatusCode;

use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::*;

per_backend!(consent_form_does_not_skip_a_required_login);

async fn consent_form_does_not_skip_a_required_login(b: Backend) {
    // OIDC Core s3.1.2.1 (prompt=login), HL-5.3: a signed-in browser, then a request asking
    // for a fresh login.
    let s = TestServer::start(b).await;
    flow::web_code(&s, "openid").await;
    // A login a while ago (a login in the same clock second would count as fresh).
    s.clock.advance(30);
    let pkce = Pkce::new();
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "st"),
            ("prompt", "login"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let login = location(&r);
    assert!(login.starts_with("/login"), "prompt=login shows the login form: {login}");
    let html = s.browser.get(s.url(&login)).send().await.unwrap().text().await.unwrap();
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "allow".to_owned())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.starts_with("/login?req="), "the old session must not answer it: went to {to}");
    assert!(!to.contains("code="));
    // The login form still works for the same request, and then the code comes.
    let r = flow::submit_login(&s, &to, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.headers());
    assert!(query(&location(&r)).contains_key("code"), "after the fresh login: {}", location(&r));
}
