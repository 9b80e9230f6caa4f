//! The account page (SH-8.2, HL-5.2): opened without a session it starts a login that comes
//! back to it, instead of an error; withdrawing a consent there ends the tokens the client
//! holds for the person on that consent (its refresh token and access token die at once).

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flow::{Pkce, authorize, hidden, introspect_as_admin, location, query, redeem, submit_login};
use crate::support::server::{Backend, PASSWORD, TestServer, USER, WEB_CLIENT, WEB_REDIRECT, WEB_SECRET};

per_backend!(account_without_session_starts_a_login, revoking_a_consent_ends_the_clients_tokens);

// SH-8.2, HL-5.2: GET /account with no session: 303 to the login page of a login for the
// account page, whose success returns to /account (no application, code or consent).
async fn account_without_session_starts_a_login(b: Backend) {
    let s = TestServer::start(b).await;
    let r = s.browser.get(s.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "not an error page: {}", r.status());
    let login = location(&r);
    assert!(login.starts_with("/login?req="), "{login}");
    let page = s.browser.get(s.url(&login)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("我的账号") || html.contains("My account"), "the login names the account page: {html}");
    // A wrong password keeps the person on the form.
    let r = submit_login(&s, &login, USER, "not-the-password").await;
    assert_ne!(r.status(), StatusCode::SEE_OTHER);
    assert!(!r.headers().contains_key("location"), "no redirect after a wrong password");
    let r = submit_login(&s, &login, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account", "back to the account page after the login");
    let r = s.browser.get(s.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(USER), "the signed-in account page");
    // The login is used up: its page has expired.
    let again = s.browser.get(s.url(&login)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

/// Logs in at WEB_CLIENT (when needed) with the sensitive `phone` scope, allows it on the
/// consent page when `consent` (it must be asked) and redeems the code; the token response.
async fn consented_tokens(s: &TestServer, consent: bool) -> Value {
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid profile phone offline_access"),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let mut r = authorize(s, &params).await;
    if r.status() == StatusCode::SEE_OTHER && location(&r).starts_with("/login?req=") {
        r = submit_login(s, &location(&r), USER, PASSWORD).await;
    }
    if consent {
        assert_eq!(r.status(), StatusCode::OK, "the consent page");
        let html = r.text().await.unwrap();
        assert!(html.contains("data-scope=\"phone\""), "{html}");
        let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "allow".into())];
        r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    }
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query(&location(&r));
    let (status, tokens) = redeem(s, &q["code"], &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn refresh(s: &TestServer, token: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

// SH-8.2 (consent revocable from /account), RFC 7009 s2.1 / RFC 7662 s2.2: withdrawing the
// consent revokes the client's grants for the person: the refresh token is refused and the
// access token introspects inactive right after, while the SSO session and other clients live.
async fn revoking_a_consent_ends_the_clients_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let first = consented_tokens(&s, true).await;
    let (rt, at) = (first["refresh_token"].as_str().unwrap(), first["access_token"].as_str().unwrap());
    assert_eq!(introspect_as_admin(&s, at).await["active"], true);
    // A second grant of the same client (a rotation first): both die.
    let (status, rotated) = refresh(&s, rt).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = consented_tokens(&s, false).await;

    let page = s.browser.get(s.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/account/consents/revoke"), "{page}");
    let form = [("csrf", hidden(&page, "csrf")), ("client_id", WEB_CLIENT.to_owned())];
    let r = s.browser.post(s.url("/account/consents/revoke")).form(&form).send().await.unwrap();
    assert_eq!((r.status(), location(&r).as_str()), (StatusCode::SEE_OTHER, "/account?done=consent_revoked"));

    for tokens in [&rotated, &second] {
        let (status, body) = refresh(&s, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
        let intro = introspect_as_admin(&s, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(intro["active"], false, "{intro}");
    }
    let intro = introspect_as_admin(&s, at).await;
    assert_eq!(intro["active"], false, "{intro}");
    // The consent is gone: the next authorization asks again; the session still lives.
    let third = consented_tokens(&s, true).await;
    assert_eq!(introspect_as_admin(&s, third["access_token"].as_str().unwrap()).await["active"], true);
    // Revoking again (nothing left to revoke on a fresh page) is harmless.
    let r = s.browser.post(s.url("/account/consents/revoke")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
