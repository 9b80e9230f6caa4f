//! Browser-less walks through the login sequence (HL-5.3) against a [`TestServer`]: follow the
//! authorize redirect to the login form, post it, and pick the code off the final redirect.

use std::collections::HashMap;

use reqwest::StatusCode;
use tongzheng::crypto;

use super::server::{PASSWORD, TestServer, USER};

/// A PKCE pair (RFC 7636 s4.1, s4.2).
pub struct Pkce {
    /// code_verifier.
    pub verifier: String,
    /// S256 code_challenge.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn new() -> Self {
        let verifier = crypto::random_token(32);
        let challenge = crypto::b64(&crypto::sha256(verifier.as_bytes()));
        Self { verifier, challenge }
    }
}

/// Query parameters of a URL.
pub fn query(url: &str) -> HashMap<String, String> {
    let u = url::Url::parse(url).expect("absolute URL");
    u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The `Location` header of a redirect.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Extracts `name="X" value="..."` from a form.
pub fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).unwrap_or_else(|| panic!("no field {name} in {html}")) + needle.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].replace("&amp;", "&")
}

/// GET /authorize with `params` in the test server's browser.
pub async fn authorize(s: &TestServer, params: &[(&str, &str)]) -> reqwest::Response {
    s.browser.get(s.url("/authorize")).query(params).send().await.expect("authorize")
}

/// Posts the login form found at `login_url`; returns the response to the POST.
pub async fn submit_login(s: &TestServer, login_url: &str, user: &str, password: &str) -> reqwest::Response {
    let page = s.browser.get(s.url(login_url)).send().await.expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("username", user.to_owned()),
        ("password", password.to_owned()),
    ];
    s.browser.post(s.url("/login")).form(&form).send().await.expect("login post")
}

/// Runs authorize -> login (if needed) and returns the final redirect's query parameters.
pub async fn login_for_code(s: &TestServer, params: &[(&str, &str)]) -> HashMap<String, String> {
    let resp = authorize(s, params).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "authorize should redirect");
    let mut loc = location(&resp);
    if loc.starts_with("/login") {
        let resp = submit_login(s, &loc, USER, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login should redirect");
        loc = location(&resp);
    }
    query(&loc)
}

/// The standard web-client code flow; returns `(code, pkce)`.
pub async fn web_code(s: &TestServer, scope: &str) -> (String, Pkce) {
    let pkce = Pkce::new();
    let q = login_for_code(
        s,
        &[
            ("response_type", "code"),
            ("client_id", super::server::WEB_CLIENT),
            ("redirect_uri", super::server::WEB_REDIRECT),
            ("scope", scope),
            ("state", "st"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    (q.get("code").cloned().unwrap_or_else(|| panic!("no code in {q:?}")), pkce)
}

/// Exchanges a web-client code for tokens; returns the JSON body.
pub async fn redeem(s: &TestServer, code: &str, pkce: &Pkce) -> (StatusCode, serde_json::Value) {
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(super::server::WEB_CLIENT, Some(super::server::WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", super::server::WEB_REDIRECT),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .expect("token");
    let status = resp.status();
    (status, resp.json().await.expect("json"))
}

/// The bootstrap admin client's secret on `s` (dev and production servers differ).
pub fn admin_secret(s: &TestServer) -> &'static str {
    if s.state.config.server.dev { super::server::ADMIN_SECRET } else { super::server::PROD_ADMIN_SECRET }
}

/// A client_credentials token for the bootstrap admin client.
pub async fn admin_token(s: &TestServer) -> String {
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(super::server::ADMIN_CLIENT, Some(admin_secret(s)))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), StatusCode::OK);
    let v: serde_json::Value = resp.json().await.expect("json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

/// `prompt=none` for `client_id` in the test server's browser (OIDC Core s3.1.2.1): the final
/// redirect's query, holding a `code` when the browser has a session, else `error`.
pub async fn prompt_none(s: &TestServer, client_id: &str, redirect_uri: &str) -> HashMap<String, String> {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid"),
        ("prompt", "none"),
    ];
    query(&location(&authorize(s, &params).await))
}

/// Adds `name` to the scope catalogue (AY-7.1: only catalogue scopes can be granted).
pub async fn catalogue_scope(s: &TestServer, admin: &str, name: &str) {
    let resp = s
        .http
        .post(s.url("/admin/v1/scopes"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": name, "description": format!("test scope {name}")}))
        .send()
        .await
        .expect("scope");
    assert!(
        resp.status() == StatusCode::CREATED || resp.status() == StatusCode::CONFLICT,
        "catalogue {name}: {}",
        resp.status()
    );
}

/// RFC 7662 introspection by the admin client, which sees every client's tokens.
pub async fn introspect_as_admin(s: &TestServer, token: &str) -> serde_json::Value {
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(super::server::ADMIN_CLIENT, Some(super::server::ADMIN_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}
