//! What a standard relying party meets first (issue 9): registration without a `scope` member
//! then a login asking for the usual scopes, narrowing instead of refusing (RFC 6749 s3.3),
//! a client's own update not undoing an administrator's restrictions (RFC 7592 s2.2), and
//! redirect URIs with control characters refused (RFC 3986 s2, RFC 7591 s2).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::*;

per_backend!(registered_without_scope_logs_in_with_standard_scopes, own_update_keeps_admin_restrictions);

const INITIAL_TOKEN: &str = "dev-initial-access-token-change-me";
const REDIRECT: &str = "http://127.0.0.1:9200/cb";

async fn register(s: &TestServer, body: &Value) -> reqwest::Response {
    s.http.post(s.url("/register")).bearer_auth(INITIAL_TOKEN).json(body).send().await.unwrap()
}

/// Authorize for `client_id` with `scope` in the test browser, logging in and consenting as
/// needed; the final redirect's query.
async fn authorize(
    s: &TestServer,
    client_id: &str,
    scope: &str,
    pkce: &Pkce,
) -> std::collections::HashMap<String, String> {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = flow::authorize(s, &params).await;
    let mut r = if r.status() == StatusCode::SEE_OTHER && location(&r).starts_with("/login") {
        flow::submit_login(s, &location(&r), USER, PASSWORD).await
    } else {
        r
    };
    if r.status() == StatusCode::OK {
        // The consent page (self-registered clients ask first).
        let html = r.text().await.unwrap();
        let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "allow".into())];
        r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    }
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    query(&location(&r))
}

async fn redeem(s: &TestServer, id: &str, secret: &str, code: &str, pkce: &Pkce) -> Value {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

// RFC 7591 s2 (the server picks the default `scope`), RFC 6749 s3.3 (it may grant less than
// asked, and says so in the token response's `scope`), AY-7.1 (business scopes stay
// admin-granted): what openid-client and most RP libraries do works at the first login.
async fn registered_without_scope_logs_in_with_standard_scopes(b: Backend) {
    let s = TestServer::start(b).await;
    let r = register(&s, &json!({"redirect_uris": [REDIRECT], "client_name": "oidc rp"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["scope"], "openid profile email phone offline_access");
    let (id, secret) = (c["client_id"].as_str().unwrap(), c["client_secret"].as_str().unwrap());
    let pkce = Pkce::new();
    let q = authorize(&s, id, "openid profile email offline_access", &pkce).await;
    let code = q.get("code").unwrap_or_else(|| panic!("the first login failed: {q:?}"));
    let t = redeem(&s, id, secret, code, &pkce).await;
    assert_eq!(t["scope"], "openid profile email offline_access");
    assert!(t["refresh_token"].is_null(), "no refresh_token grant type registered");

    // Registered with `openid` only: `profile` is left out, not an error.
    let c: Value = register(&s, &json!({"redirect_uris": [REDIRECT], "scope": "openid"})).await.json().await.unwrap();
    let (id, secret) = (c["client_id"].as_str().unwrap(), c["client_secret"].as_str().unwrap());
    let pkce = Pkce::new();
    let q = authorize(&s, id, "openid profile", &pkce).await;
    let t = redeem(&s, id, secret, q.get("code").unwrap_or_else(|| panic!("{q:?}")), &pkce).await;
    assert_eq!(t["scope"], "openid", "the token response names what was granted");
    // A business scope it was never granted is still refused (AY-7.1).
    let q = authorize(&s, id, "openid api.read", &Pkce::new()).await;
    assert_eq!(q.get("error").map(String::as_str), Some("invalid_scope"), "{q:?}");
}

// RFC 7592 s2.2: the server may replace requested values; a client's own update never undoes
// what an administrator restricted (scopes, rate limit, standing).
async fn own_update_keeps_admin_restrictions(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let c: Value = register(&s, &json!({"redirect_uris": [REDIRECT]})).await.json().await.unwrap();
    let id = c["client_id"].as_str().unwrap().to_owned();
    let rat = c["registration_access_token"].as_str().unwrap().to_owned();
    // The admin narrows the client and puts it under call control.
    let restricted =
        json!({"redirect_uris": [REDIRECT], "scope": "openid", "rate_limit": {"per_second": 1.0, "burst": 2}});
    let r = s
        .http
        .put(s.url(&format!("/admin/v1/clients/{id}")))
        .bearer_auth(&admin)
        .json(&restricted)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The client asks for everything back.
    let mine = json!({"client_id": id, "redirect_uris": [REDIRECT], "scope": "openid profile email phone offline_access",
        "grant_types": ["authorization_code", "refresh_token"]});
    let r = s.http.put(s.url(&format!("/register/{id}"))).bearer_auth(&rat).json(&mine).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["scope"], "openid", "RFC 7592 s2.2: the response names what was kept");
    assert_eq!(answer["grant_types"], json!(["authorization_code"]), "no grant type the client did not hold");
    let shown: Value = s
        .http
        .get(s.url(&format!("/admin/v1/clients/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["scope"], "openid", "{shown}");
    assert_eq!(shown["rate_limit"]["per_second"], 1.0, "the rate limit survives the client's update: {shown}");
}

// RFC 3986 s2, RFC 7591 s2: a redirect URI with CR, LF or other control characters is refused
// at registration (the URL parser would drop them; exact matching and headers would not).
#[tokio::test]
async fn redirect_uris_with_control_characters_are_refused() {
    let s = TestServer::start(Backend::Memory).await;
    for uri in
        ["http://127.0.0.1:9200/cb\r\nSet-Cookie: x=1", "http://127.0.0.1:9200/c\tb", "http://127.0.0.1:9200/cb\n"]
    {
        let r = register(&s, &json!({"redirect_uris": [uri]})).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uri:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_redirect_uri", "{uri:?}");
    }
}
