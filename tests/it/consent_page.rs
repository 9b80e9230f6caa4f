//! The consent page as a person meets it (issue 14, SH-8.2): who is signed in, with "not you?"
//! that ends this browser's session and lets someone else sign in for the same request; the
//! application's privacy policy (RFC 7591 s2 `policy_uri`); and the account page naming the
//! consented items by their descriptions, never by scope tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::lifecycle::{application, call, problem};
use crate::support::flow::{self, Pkce, authorize, hidden, location, query, submit_login};
use crate::support::server::{Backend, PASSWORD, TestServer, USER};

per_backend!(not_you_switches_the_account_and_keeps_the_request, privacy_policy_is_linked_and_checked);

/// The RFC 7591 initial access token of config/dev.toml.
const INITIAL_TOKEN: &str = "dev-initial-access-token-change-me";
/// A loopback redirect URI (http is allowed on loopback in dev mode).
const RP_REDIRECT: &str = "http://127.0.0.1:9100/cb";
/// The seeded demo user's name (config/dev.toml).
const USER_NAME: &str = "演示用户";

/// RFC 7591 s3: registers a client (consent is required for self-registered clients).
async fn register(s: &TestServer, body: &Value) -> reqwest::Response {
    s.http.post(s.url("/register")).bearer_auth(INITIAL_TOKEN).json(body).send().await.unwrap()
}

/// Starts an authorization at `client_id` asking for `phone` (a sensitive scope) and signs in
/// as the demo user when not yet signed in: the consent page's HTML and the request's login
/// URL (empty when the browser was signed in already).
async fn consent_page(s: &TestServer, client_id: &str, pkce: &Pkce) -> (String, String) {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", RP_REDIRECT),
        ("scope", "openid profile phone"),
        ("state", "st-1"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let mut r = authorize(s, &params).await;
    let mut login = String::new();
    if r.status() == StatusCode::SEE_OTHER {
        login = location(&r);
        assert!(login.starts_with("/login?req="), "{login}");
        r = submit_login(s, &login, USER, PASSWORD).await;
    }
    assert_eq!(r.status(), StatusCode::OK, "the consent page");
    (r.text().await.unwrap(), login)
}

fn client_body(extra: Value) -> Value {
    let mut body = json!({"redirect_uris": [RP_REDIRECT], "scope": "openid profile phone", "client_name": "办事通"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

// Issue 14 (consent page: "the signed-in user with 'not you?'"), OIDC Core s3.1.2.4 (the
// consent is the signed-in End-User's), RP-Initiated Logout s2 (ending the session is a
// logout like any other): "not you?" ends the session and returns to the login form of the
// same authorization request, which then completes for whoever signs in.
async fn not_you_switches_the_account_and_keeps_the_request(b: Backend) {
    let s = TestServer::start(b).await;
    let c: Value = register(&s, &client_body(json!({}))).await.json().await.unwrap();
    let id = c["client_id"].as_str().unwrap().to_owned();
    let pkce = Pkce::new();
    let (html, login) = consent_page(&s, &id, &pkce).await;
    assert!(html.contains(&format!("class=\"person\">{USER_NAME}<")), "the signed-in person is named: {html}");
    assert!(html.contains("value=\"switch\""), "a 'not you?' button: {html}");
    assert!(html.contains("不是您"), "zh-CN by default: {html}");

    // A forged form changes nothing: the session lives.
    let forged = [("req", hidden(&html, "req")), ("csrf", "forged".to_owned()), ("decision", "switch".into())];
    let r = s.browser.post(s.url("/consent")).form(&forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s.browser.get(s.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "still signed in after a forged switch");

    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "switch".into())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    let next = if r.status() == StatusCode::SEE_OTHER {
        location(&r)
    } else {
        // Front-channel logout iframes first, then the same place (Front-Channel Logout s3).
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        let at = page.find("id=\"next\"").expect("a way on");
        let href = &page[page[..at].rfind("href=\"").unwrap() + 6..];
        href[..href.find('"').unwrap()].replace("&amp;", "&")
    };
    assert_eq!(next, login, "back to the login form of the same request");
    // The session is over: the account page asks for a login again.
    let r = s.browser.get(s.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the session ended");
    assert!(location(&r).starts_with("/login?req="));

    // The same request completes for whoever signs in now (here the same person again).
    let login_page = s.browser.get(s.url(&login)).send().await.unwrap();
    assert_eq!(login_page.status(), StatusCode::OK, "the request is still pending");
    let r = submit_login(&s, &login, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "consent is asked of the person now signed in");
    let html = r.text().await.unwrap();
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "allow".into())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.starts_with(RP_REDIRECT), "{to}");
    let q = query(&to);
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"), "RFC 6749 s4.1.2: state returned");
    assert!(q.contains_key("code"), "{to}");

    // SH-8.2: the account page lists the consent by the items' descriptions, not scope tokens.
    let page = s.browser.get(s.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("办事通"), "{page}");
    assert!(!page.contains("openid profile phone"), "raw scope tokens on the account page: {page}");
    assert!(!page.contains(">phone<") && !page.contains(" phone<"), "raw scope token: {page}");
}

// RFC 7591 s2 `policy_uri`, issue 14 (consent page: "the application's ... privacy link"): the
// consent page links the client's privacy policy; a value that is not a web address is
// refused as invalid_client_metadata (RFC 7591 s3.2.2), as an application registration's is
// refused by the admin API (RFC 7807).
async fn privacy_policy_is_linked_and_checked(b: Backend) {
    let s = TestServer::start(b).await;
    for bad in ["javascript:alert(1)", "data:text/html,hi", "http://rp.example/privacy", "not a uri"] {
        let r = register(&s, &client_body(json!({"policy_uri": bad}))).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client_metadata", "{bad}: {e}");
        assert!(e["error_description"].as_str().unwrap().contains("policy_uri"), "{e}");
    }
    let policy = "https://rp.example/privacy?lang=zh&v=2";
    let r = register(&s, &client_body(json!({"policy_uri": policy}))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["policy_uri"], policy, "RFC 7591 s3.2.1: registered metadata returned");
    let pkce = Pkce::new();
    let (html, _) = consent_page(&s, c["client_id"].as_str().unwrap(), &pkce).await;
    assert!(html.contains("href=\"https://rp.example/privacy?lang=zh&amp;v=2\""), "the policy is linked: {html}");
    assert!(html.contains("隐私政策"), "{html}");

    // A client without one: no link (the platform's own privacy link stays in the footer).
    let c: Value = register(&s, &client_body(json!({}))).await.json().await.unwrap();
    assert!(c.get("policy_uri").is_none(), "{c}");
    let (html, _) = consent_page(&s, c["client_id"].as_str().unwrap(), &Pkce::new()).await;
    assert!(!html.contains("class=\"policy\""), "{html}");

    // An application's registration carries its policy for the clients it makes; the admin
    // API refuses one that is not a web address with a problem naming the field.
    let admin = flow::admin_token(&s).await;
    flow::catalogue_scope(&s, &admin, "tax.read").await;
    let mut app = application("policy-app", "office");
    app["policy_uri"] = json!("javascript:alert(1)");
    let r = call(&s, &admin, reqwest::Method::POST, "/admin/v1/applications", Some(app.clone())).await;
    let p = problem(r, StatusCode::BAD_REQUEST, "a script as privacy policy").await;
    assert!(p["detail"].as_str().unwrap_or_default().contains("policy_uri"), "{p}");
    app["policy_uri"] = json!("https://policy-app.example/privacy");
    let r = call(&s, &admin, reqwest::Method::POST, "/admin/v1/applications", Some(app)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let r = call(&s, &admin, reqwest::Method::GET, "/admin/v1/applications/policy-app", None).await;
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["policy_uri"], "https://policy-app.example/privacy", "{got}");
}
