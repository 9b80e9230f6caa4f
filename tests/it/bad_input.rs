//! Malformed requests at every endpoint get the documented error (GB-6.9.3): RFC 6749 s5.2 JSON
//! at the token endpoint, error pages or error redirects at the authorization endpoint
//! (RFC 6749 s4.1.2.1), RFC 6750 s3.1 challenges at protected resources, RFC 7807 problems
//! elsewhere; never a 500, a crash or a hang (JM-5: every answer within 5 s).

use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flow::{self, Pkce, location, query};
use crate::support::server::*;

per_backend!(code_redemption_errors);

const FORM: &str = "application/x-www-form-urlencoded";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client that never follows redirects and gives up after 5 s (JM-5), so a hang fails the test.
fn impatient() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// POSTs raw bytes to /token; returns status, WWW-Authenticate and the JSON body, after checking
/// the RFC 6749 s5.1/s5.2 response headers every token error carries.
async fn token_raw(
    s: &TestServer,
    body: Vec<u8>,
    ctype: Option<&str>,
    auth: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut r = impatient().post(s.url("/token")).body(body);
    if let Some(c) = ctype {
        r = r.header("content-type", c);
    }
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    assert!(header(&resp, "content-type").starts_with("application/json"), "{status}");
    assert_eq!(header(&resp, "cache-control"), "no-store");
    let www = header(&resp, "www-authenticate");
    (status, www, resp.json().await.unwrap_or(Value::Null))
}

/// A form POST to /token: (what, body, Authorization, expected status, expected error).
type TokenCase = (&'static str, String, Option<String>, u16, &'static str);

fn b64url(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

// RFC 6749 s5.2 (error codes), s3.1 (parameters at most once), s2.3 (one auth method), s3.2
// (form-encoded POST), s4.4 (confidential clients only); RFC 7523 s3.1 (assertions).
#[tokio::test]
async fn token_request_errors() {
    let s = TestServer::start(Backend::Memory).await;
    let web = || Some(basic(WEB_CLIENT, WEB_SECRET));
    let std64 = |b: &[u8]| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(b));
    let cc = "grant_type=client_credentials";
    let jwt_bearer = format!("{cc}&client_assertion_type={ASSERTION_TYPE}&client_assertion=");
    let unsigned = format!(
        "{}.{}.",
        b64url(r#"{"alg":"none"}"#),
        b64url(&format!(r#"{{"iss":"{WEB_CLIENT}","sub":"{WEB_CLIENT}","aud":"x","exp":9999999999}}"#))
    );
    let (bad_req, bad_client, bad_grant) = ("invalid_request", "invalid_client", "invalid_grant");
    let cases: Vec<TokenCase> = vec![
        ("no grant_type", "scope=api.read".into(), web(), 400, bad_req),
        ("empty body", String::new(), web(), 400, bad_req),
        ("empty grant_type", "grant_type=".into(), web(), 400, bad_req),
        ("password grant", "grant_type=password&username=demo&password=x".into(), web(), 400, "unsupported_grant_type"),
        ("implicit as a grant", "grant_type=implicit".into(), web(), 400, "unsupported_grant_type"),
        (
            "device grant",
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code".into(),
            web(),
            400,
            "unsupported_grant_type",
        ),
        ("unsupported grant, no credentials", "grant_type=foo".into(), None, 400, "unsupported_grant_type"),
        ("repeated grant_type", format!("{cc}&grant_type=client_credentials"), web(), 400, bad_req),
        ("repeated scope", format!("{cc}&scope=api.read&scope=api.read"), web(), 400, bad_req),
        ("bad Basic base64", cc.into(), Some("Basic %%%not-base64%%%".into()), 401, bad_client),
        ("Basic without a colon", cc.into(), Some(std64(WEB_CLIENT.as_bytes())), 401, bad_client),
        ("Basic that is not UTF-8", cc.into(), Some(std64(&[0xff, 0xfe, b':', 0xff])), 401, bad_client),
        ("wrong secret", cc.into(), Some(basic(WEB_CLIENT, "wrong")), 401, bad_client),
        ("unknown client", cc.into(), Some(basic("no-such-client", "x")), 401, bad_client),
        ("no credentials", cc.into(), None, 401, bad_client),
        ("public client, client_credentials", format!("{cc}&client_id={SPA_CLIENT}"), None, 400, "unauthorized_client"),
        (
            "Basic + client_secret_post",
            format!("{cc}&client_id={WEB_CLIENT}&client_secret={WEB_SECRET}"),
            web(),
            400,
            bad_req,
        ),
        (
            "client_secret_post + client_assertion",
            format!("{jwt_bearer}a.b.c&client_id={WEB_CLIENT}&client_secret={WEB_SECRET}"),
            None,
            400,
            bad_req,
        ),
        ("Basic client differs from client_id", format!("{cc}&client_id={SPA_CLIENT}"), web(), 400, bad_req),
        ("malformed client_assertion", format!("{jwt_bearer}not-a-jwt"), None, 401, bad_client),
        ("garbage client_assertion", format!("{jwt_bearer}%25%25.%00%01.%ff"), None, 401, bad_client),
        ("unsigned client_assertion (alg none)", format!("{jwt_bearer}{unsigned}"), None, 401, bad_client),
        (
            "wrong assertion type",
            format!("{cc}&client_assertion_type=urn%3Ax&client_assertion=a.b.c"),
            None,
            400,
            bad_req,
        ),
        ("code grant without code", "grant_type=authorization_code".into(), web(), 400, bad_req),
        (
            "garbage code",
            format!("grant_type=authorization_code&code=%00%ff&redirect_uri={WEB_REDIRECT}"),
            web(),
            400,
            bad_grant,
        ),
        ("refresh without token", "grant_type=refresh_token".into(), web(), 400, bad_req),
        ("garbage refresh token", "grant_type=refresh_token&refresh_token=abc".into(), web(), 400, bad_grant),
        ("scope with forbidden characters (s3.3)", format!("{cc}&scope=a%22b"), web(), 400, "invalid_scope"),
        ("percent-encoded invalid UTF-8", "g%00=%ff%fe".into(), web(), 400, bad_req),
    ];
    for (what, body, auth, status, error) in cases {
        let (got, www, v) = token_raw(&s, body.into_bytes(), Some(FORM), auth.as_deref()).await;
        assert_eq!((got.as_u16(), v["error"].as_str().unwrap_or("")), (status, error), "{what}: {v}");
        if got == StatusCode::UNAUTHORIZED {
            // RFC 6749 s5.2: a 401 carries a WWW-Authenticate challenge.
            assert!(!www.is_empty(), "{what}: no WWW-Authenticate");
        }
    }
    // RFC 6749 s3.2: the body is application/x-www-form-urlencoded, nothing else.
    let json = r#"{"grant_type":"client_credentials"}"#;
    for (ctype, body) in [(Some("application/json"), json), (None, cc), (Some("multipart/form-data; boundary=x"), cc)] {
        let (got, _, v) = token_raw(&s, body.as_bytes().to_vec(), ctype, web().as_deref()).await;
        assert_eq!((got.as_u16(), v["error"].as_str()), (400, Some(bad_req)), "{ctype:?}: {v}");
    }
    // Raw bytes that are not UTF-8 at all.
    let (got, _, v) = token_raw(&s, vec![0x67, 0xff, 0xfe, 0x3d, 0x01], Some(FORM), web().as_deref()).await;
    assert_eq!((got.as_u16(), v["error"].as_str()), (400, Some(bad_req)), "raw bytes: {v}");
    // Oversized bodies (> 64 KiB): 413 with a JSON error, not axum's plain text.
    let big = format!("{cc}&pad={}", "a".repeat(70 * 1024));
    let (got, _, v) = token_raw(&s, big.into_bytes(), Some(FORM), web().as_deref()).await;
    assert_eq!(got, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"], bad_req);
    // A body just under the limit is read (an unknown parameter is ignored, RFC 6749 s3.2).
    let near = format!("{cc}&pad={}", "a".repeat(60 * 1024));
    let (got, _, _) = token_raw(&s, near.into_bytes(), Some(FORM), web().as_deref()).await;
    assert_eq!(got, StatusCode::OK);
}

/// Runs the code flow for the web client and returns the code, with PKCE when `pkce` is given.
async fn web_code_with(s: &TestServer, pkce: Option<&Pkce>) -> String {
    let mut params =
        vec![("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")];
    if let Some(p) = pkce {
        params.push(("code_challenge", p.challenge.as_str()));
        params.push(("code_challenge_method", "S256"));
    }
    let q = flow::login_for_code(s, &params).await;
    q.get("code").cloned().unwrap_or_else(|| panic!("no code: {q:?}"))
}

async fn redeem_form(s: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = s.http.post(s.url("/token")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).form(form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

// RFC 6749 s4.1.3 (redirect_uri binding), RFC 7636 s4.6 (verifier check), RFC 9700 s4.8.2
// (verifier without challenge): each is invalid_grant. The codes live in the store.
async fn code_redemption_errors(b: Backend) {
    let s = TestServer::start(b).await;
    // A wrong verifier (well-formed, but not the one behind the challenge).
    let pkce = Pkce::new();
    let code = web_code_with(&s, Some(&pkce)).await;
    let other = Pkce::new();
    let (st, v) = redeem_form(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &other.verifier),
        ],
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "wrong verifier: {v}");
    // A malformed verifier (RFC 7636 s4.1: 43-128 unreserved characters).
    let code = web_code_with(&s, Some(&pkce)).await;
    let (st, v) = redeem_form(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", "short"),
        ],
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "short verifier: {v}");
    // No verifier for a code that had a challenge (RFC 7636 s4.5).
    let code = web_code_with(&s, Some(&pkce)).await;
    let (st, v) =
        redeem_form(&s, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", WEB_REDIRECT)]).await;
    assert_eq!((st, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "no verifier: {v}");
    // A verifier for a code issued without a challenge (RFC 9700 s4.8.2).
    let code = web_code_with(&s, None).await;
    let (st, v) = redeem_form(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "verifier, no challenge: {v}"
    );
    // No redirect_uri at the token endpoint though the request named one (RFC 6749 s4.1.3).
    let code = web_code_with(&s, Some(&pkce)).await;
    let (st, v) =
        redeem_form(&s, &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &pkce.verifier)])
            .await;
    assert_eq!((st, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "no redirect_uri: {v}");
    // Another registered redirect_uri than the one the request named.
    let code = web_code_with(&s, Some(&pkce)).await;
    let (st, v) = redeem_form(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9000/callback"),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "other redirect_uri: {v}");
    // The happy path still works after all that.
    let code = web_code_with(&s, Some(&pkce)).await;
    let (st, v) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// An authorization request that errs back to the client: (what, extra parameters, error).
type RedirectCase = (&'static str, Vec<(&'static str, &'static str)>, &'static str);

/// Asserts an authorization-endpoint error that must not redirect (RFC 6749 s4.1.2.1): 400,
/// an HTML page naming the error, and no Location header.
async fn assert_error_page(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
    assert!(r.headers().get("location").is_none(), "{what}: must not redirect");
    assert!(header(&r, "content-type").starts_with("text/html"), "{what}");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<html") && (html.contains("invalid_request") || html.contains("invalid_client")),
        "{what}: {html}"
    );
}

/// Asserts an error redirect to `redirect` with `error`, the request's `state`, and `iss`
/// (RFC 6749 s4.1.2.1, RFC 9207 s2).
fn assert_error_redirect(s: &TestServer, r: &reqwest::Response, redirect: &str, error: &str, state: &str, what: &str) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{what}");
    let loc = location(r);
    assert!(loc.starts_with(redirect), "{what}: {loc}");
    let q = query(&loc);
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{what}: {q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some(state), "{what}: {q:?}");
    assert_eq!(q.get("iss"), Some(&s.base), "{what}: {q:?}");
    assert!(!q.contains_key("code"), "{what}: {q:?}");
}

// RFC 6749 s4.1.2.1, s3.1; RFC 7636 s4.3; OIDC Core s3.1.2.1, s3.1.2.6; RFC 9207 s2; DC-1.
#[tokio::test]
async fn authorize_errors() {
    let s = TestServer::start(Backend::Memory).await;
    // Bad client or redirect URI: an error page, never a redirect.
    let pages: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "unknown client",
            vec![("response_type", "code"), ("client_id", "no-such-client"), ("redirect_uri", WEB_REDIRECT)],
        ),
        (
            "unregistered redirect_uri",
            vec![("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", "https://evil.example/cb")],
        ),
        (
            "redirect_uri differing by a trailing slash (exact match, RFC 9700 s4.1.3)",
            vec![
                ("response_type", "code"),
                ("client_id", WEB_CLIENT),
                ("redirect_uri", "http://127.0.0.1:9000/callback/"),
            ],
        ),
        (
            "repeated client_id",
            vec![
                ("response_type", "code"),
                ("client_id", WEB_CLIENT),
                ("client_id", WEB_CLIENT),
                ("redirect_uri", WEB_REDIRECT),
            ],
        ),
        (
            "repeated redirect_uri",
            vec![
                ("response_type", "code"),
                ("client_id", WEB_CLIENT),
                ("redirect_uri", WEB_REDIRECT),
                ("redirect_uri", WEB_REDIRECT),
            ],
        ),
        ("no client_id", vec![("response_type", "code"), ("redirect_uri", WEB_REDIRECT)]),
        (
            "no redirect_uri with openid and two registered (OIDC Core s3.1.2.1)",
            vec![("response_type", "code"), ("client_id", WEB_CLIENT), ("scope", "openid")],
        ),
        ("nothing at all", vec![]),
    ];
    for (what, params) in pages {
        assert_error_page(flow::authorize(&s, &params).await, what).await;
    }
    // Errors with a good client and redirect URI go back to the client.
    let web = [("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("state", "xyz"), ("scope", "openid")];
    let redirects: Vec<RedirectCase> = vec![
        ("response_type=token", vec![("response_type", "token")], "unsupported_response_type"),
        ("response_type=id_token", vec![("response_type", "id_token")], "unsupported_response_type"),
        ("no response_type", vec![], "invalid_request"),
        (
            "code_challenge_method=plain (RFC 7636 s4.3, RFC 9700 s2.1.1)",
            vec![
                ("response_type", "code"),
                ("code_challenge", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            "code_challenge without a method (defaults to plain)",
            vec![("response_type", "code"), ("code_challenge", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")],
            "invalid_request",
        ),
        (
            "prompt=none login (OIDC Core s3.1.2.1)",
            vec![("response_type", "code"), ("prompt", "none login")],
            "invalid_request",
        ),
        ("unknown prompt", vec![("response_type", "code"), ("prompt", "bogus")], "invalid_request"),
        (
            "prompt=none without a session (OIDC Core s3.1.2.6)",
            vec![("response_type", "code"), ("prompt", "none")],
            "login_required",
        ),
        (
            "ungranted scope (AY-7.1)",
            vec![("response_type", "code"), ("scope", "openid tongzheng:admin")],
            "invalid_scope",
        ),
        (
            "request object",
            vec![("response_type", "code"), ("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
    ];
    for (what, extra, error) in redirects {
        let mut p = web.to_vec();
        // An explicit scope in `extra` replaces the default one.
        if extra.iter().any(|(k, _)| *k == "scope") {
            p.retain(|(k, _)| *k != "scope");
        }
        p.extend(extra);
        let r = flow::authorize(&s, &p).await;
        assert_error_redirect(&s, &r, WEB_REDIRECT, error, "xyz", what);
    }
    // DC-1, RFC 9700 s2.1.1: a public client must use PKCE.
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", SPA_CLIENT),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", "openid"),
            ("state", "spa"),
        ],
    )
    .await;
    assert_error_redirect(&s, &r, SPA_REDIRECT, "invalid_request", "spa", "public client without PKCE");
    // A client that may not use the code grant is unauthorized_client (RFC 6749 s4.1.2.1).
    // (The admin client registered no redirect URI, so there is nowhere to send it: a page.)
    let r = flow::authorize(&s, &[("response_type", "code"), ("client_id", ADMIN_CLIENT), ("state", "adm")]).await;
    assert_error_page(r, "client without redirect URIs").await;
    // POST /authorize (OIDC Core s3.1.2.1) must be form-encoded.
    let r =
        s.browser.post(s.url("/authorize")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_error_page(r, "JSON POST").await;
    // POST with the same errors behaves like GET.
    let r = s
        .browser
        .post(s.url("/authorize"))
        .form(&[("response_type", "code"), ("client_id", "no-such-client"), ("redirect_uri", WEB_REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_error_page(r, "POST unknown client").await;
}

// RFC 9110 s8.3.1: media type names are case-insensitive, so a form whose Content-Type is
// spelled in capitals is still a form: at /token, at /authorize (OIDC Core s3.1.2.1 allows
// POST) and at /userinfo (RFC 6750 s2.2 form-encoded body parameter).
#[tokio::test]
async fn form_media_type_is_case_insensitive() {
    let s = TestServer::start(Backend::Memory).await;
    let shouting = "Application/X-WWW-Form-URLEncoded; charset=UTF-8";
    let mut wrong = Vec::new();
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .header("content-type", shouting)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    if r.status() != StatusCode::OK {
        wrong.push(format!("/token: {}", r.status()));
    }
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let (st, t) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(st, StatusCode::OK);
    let at = t["access_token"].as_str().unwrap();
    let r = s
        .http
        .post(s.url("/userinfo"))
        .header("content-type", shouting)
        .body(format!("access_token={at}"))
        .send()
        .await
        .unwrap();
    if r.status() != StatusCode::OK {
        wrong.push(format!("/userinfo: {} {}", r.status(), header(&r, "www-authenticate")));
    }
    let body = format!("response_type=code&client_id={WEB_CLIENT}&redirect_uri={WEB_REDIRECT}&scope=openid&state=cap");
    let r = impatient().post(s.url("/authorize")).header("content-type", shouting).body(body).send().await.unwrap();
    if r.status() != StatusCode::SEE_OTHER || !location(&r).starts_with("/login?req=") {
        wrong.push(format!("/authorize: {} {:?}", r.status(), location(&r)));
    }
    assert!(wrong.is_empty(), "a capitalised form media type was refused:\n{}", wrong.join("\n"));
}

// GB-6.9.3, STYLE 8: a body over the limit (64 KiB) is a 413 in the endpoint's own error
// format (RFC 6749 s5.2 JSON, RFC 7591 s3.2.2 JSON, RFC 7807), never axum's plain text.
#[tokio::test]
async fn oversized_bodies_get_our_error_format() {
    let s = TestServer::start(Backend::Memory).await;
    let admin = flow::admin_token(&s).await;
    let big_form = format!("grant_type=client_credentials&pad={}", "a".repeat(70 * 1024));
    let big_json = format!("{{\"redirect_uris\":[\"{}\"]}}", "a".repeat(70 * 1024));
    let cases: [(&str, &str, &str, String, Option<&str>); 6] = [
        ("/token", FORM, "application/json", big_form.clone(), None),
        ("/introspect", FORM, "application/json", big_form.clone(), None),
        (
            "/register",
            "application/json",
            "application/json",
            big_json.clone(),
            Some("dev-initial-access-token-change-me"),
        ),
        ("/userinfo", FORM, "application/json", big_form.clone(), None),
        ("/admin/v1/clients", "application/json", "application/problem+json", big_json.clone(), Some(admin.as_str())),
        ("/admin/v1/users", "application/json", "application/problem+json", big_json, Some(admin.as_str())),
    ];
    let mut wrong = Vec::new();
    for (path, ctype, want_type, body, bearer) in cases {
        let mut r = impatient().post(s.url(path)).header("content-type", ctype).body(body);
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        if path == "/token" || path == "/introspect" {
            r = r.basic_auth(WEB_CLIENT, Some(WEB_SECRET));
        }
        let r = r.send().await.unwrap();
        let (status, got_type) = (r.status(), header(&r, "content-type"));
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let shaped = v["error"].is_string() || v["type"].is_string();
        if status != StatusCode::PAYLOAD_TOO_LARGE || got_type != want_type || !shaped {
            wrong.push(format!("{path}: {status} {got_type} {v}"));
        }
    }
    assert!(wrong.is_empty(), "want 413 in the endpoint's error format:\n{}", wrong.join("\n"));
}

// RFC 6750 s3.1 at /userinfo; RFC 7662 s2.1 and RFC 7009 s2.1-2.2 client authentication.
#[tokio::test]
async fn protected_resource_errors() {
    let s = TestServer::start(Backend::Memory).await;
    // No token: 401 with a bare challenge (a realm, no error code).
    let r = s.http.get(s.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let h = header(&r, "www-authenticate");
    assert!(h.starts_with("Bearer realm=") && !h.contains("error="), "{h}");
    // An Authorization header of another scheme counts as no token.
    let r = s.http.get(s.url("/userinfo")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!header(&r, "www-authenticate").contains("error="));
    // A garbage token: 401 invalid_token.
    for bad in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "Bearer"] {
        let r = s.http.get(s.url("/userinfo")).bearer_auth(bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        let h = header(&r, "www-authenticate");
        assert!(h.starts_with("Bearer realm=") && h.contains("error=\"invalid_token\""), "{bad}: {h}");
    }
    // A client_credentials token has no user and no openid scope: 403 insufficient_scope.
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let cc = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let r = s.http.get(s.url("/userinfo")).bearer_auth(&cc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(header(&r, "www-authenticate").contains("error=\"insufficient_scope\""));
    // RFC 6750 s2: the token in the header and the body at once is invalid_request.
    let r =
        s.http.post(s.url("/userinfo")).bearer_auth(&cc).form(&[("access_token", cc.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(header(&r, "www-authenticate").contains("error=\"invalid_request\""));
    // Introspection needs client authentication (RFC 7662 s2.1) and a token parameter.
    let r = s.http.post(s.url("/introspect")).form(&[("token", cc.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = s.http.post(s.url("/introspect")).bearer_auth(&cc).form(&[("token", cc.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a bearer token is not client authentication");
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Garbage introspects as inactive (RFC 7662 s2.2), never as an error.
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("token", "x.y.z")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], false);
    // RFC 7009 s2.2: revoking a garbage token is a 200; unauthenticated revocation is a 401.
    for token in ["garbage", "a.b.c", "%00"] {
        let r = s
            .http
            .post(s.url("/revoke"))
            .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{token}");
    }
    let r = s.http.post(s.url("/revoke")).form(&[("token", "garbage")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = s
        .http
        .post(s.url("/revoke"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

// HL-5.3 login form and consent form: a forged, foreign or expired form is refused with a page.
#[tokio::test]
async fn login_and_consent_form_errors() {
    let s = TestServer::start(Backend::Memory).await;
    let r = flow::authorize(
        &s,
        &[("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")],
    )
    .await;
    let login = location(&r);
    let html = s.browser.get(s.url(&login)).send().await.unwrap().text().await.unwrap();
    let req = flow::hidden(&html, "req");
    let csrf = flow::hidden(&html, "csrf");
    // A bad CSRF token: 403 page, no login.
    for bad in ["forged", ""] {
        let r = s
            .browser
            .post(s.url("/login"))
            .form(&[("req", req.as_str()), ("csrf", bad), ("username", USER), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "csrf {bad:?}");
        assert!(location(&r).is_empty());
        assert!(header(&r, "set-cookie").is_empty(), "no session cookie for a forged form");
        assert!(r.text().await.unwrap().contains("<html"));
    }
    // Without the browser-binding cookie (another browser): an error page, not a crash.
    let r = s
        .http
        .post(s.url("/login"))
        .form(&[("req", req.as_str()), ("csrf", csrf.as_str()), ("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(location(&r).is_empty());
    assert!(r.text().await.unwrap().contains("<html"));
    // Missing or unknown request ids, with and without a cookie.
    for client in [&s.http, &s.browser] {
        for body in ["", "req=", "req=nope&csrf=x", "username=demo&password=demo-password"] {
            let r = client.post(s.url("/login")).header("content-type", FORM).body(body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "POST /login {body:?}");
            assert!(location(&r).is_empty());
        }
        for q in ["", "?req=", "?req=nope", &format!("?req={}", "x".repeat(5000))] {
            let r = client.get(s.url(&format!("/login{q}"))).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "GET /login{q}");
        }
        let r = client.post(s.url("/consent")).form(&[("req", "nope"), ("decision", "allow")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "POST /consent");
        assert!(location(&r).is_empty());
    }
    // The real form still works afterwards.
    let r = flow::submit_login(&s, &login, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(query(&location(&r)).contains_key("code"));
}

// GB-6.9.3: unknown paths are RFC 7807 problems; RFC 9110 s15.5.6: a 405 names the allowed methods.
#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = TestServer::start(Backend::Memory).await;
    for path in ["/no/such/thing", "/admin/v2/clients", "/token/extra", "/%ff%00", "/.well-known/nope"] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&r, "content-type"), "application/problem+json", "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], 404, "{path}: {v}");
        assert!(v["type"].is_string() && v["title"].is_string(), "{path}: {v}");
    }
    let r = s.http.get(s.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(header(&r, "allow").contains("POST"), "{:?}", r.headers());
}

/// Deterministic pseudo-random bytes (no extra dependency, same input every run).
fn junk(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

// GB-6.9.3, JM-5: random bytes at every endpoint, as bodies, queries, path segments and
// credentials, get an answer below 500 within 5 s.
#[tokio::test]
async fn random_garbage_never_fails_the_server() {
    let s = TestServer::start(Backend::Memory).await;
    let http = impatient();
    let admin = flow::admin_token(&s).await;
    let posts = [
        "/token",
        "/introspect",
        "/revoke",
        "/register",
        "/register/demo-web",
        "/authorize",
        "/login",
        "/consent",
        "/userinfo",
        "/end_session",
        "/end_session/confirm",
        "/admin/v1/clients",
        "/admin/v1/users",
        "/admin/v1/users/x/logout",
    ];
    let gets = [
        "/authorize",
        "/login",
        "/userinfo",
        "/jwks",
        "/.well-known/openid-configuration",
        "/end_session",
        "/admin/v1/clients",
        "/admin/v1/logout/deliveries",
    ];
    let ctypes = [FORM, "application/json", "text/plain", "multipart/form-data; boundary=zz", "application/jwt"];
    for (i, path) in posts.iter().enumerate() {
        for (j, ctype) in ctypes.iter().enumerate() {
            let seed = u32::try_from(i * 10 + j).unwrap();
            for (len, auth) in [(0, None), (3, None), (2048, None), (512, Some(admin.as_str()))] {
                let mut r = http.post(s.url(path)).header("content-type", *ctype).body(junk(len, seed));
                if let Some(a) = auth {
                    r = r.bearer_auth(a);
                }
                let r = r.send().await.unwrap_or_else(|e| panic!("POST {path} {ctype}: {e}"));
                assert!(r.status().as_u16() < 500, "POST {path} {ctype} {len}: {}", r.status());
            }
        }
    }
    // Garbage query strings, percent-encoded so they reach the parser.
    let encode = |b: &[u8]| b.iter().map(|c| format!("%{c:02X}")).collect::<String>();
    for (i, path) in gets.iter().enumerate() {
        for n in 0..4u32 {
            let raw = junk(200, u32::try_from(i).unwrap() * 7 + n);
            for q in
                [encode(&raw), format!("client_id={}&redirect_uri={}", encode(&raw), encode(&raw)), "&&==&=&".into()]
            {
                let r = http.get(s.url(&format!("{path}?{q}"))).send().await.unwrap();
                assert!(r.status().as_u16() < 500, "GET {path}?{q}: {}", r.status());
            }
        }
    }
    // Garbage path segments and credentials.
    let long = "a".repeat(4096);
    for seg in ["%00", "%ff%fe", "..%2f..%2fetc%2fpasswd", long.as_str(), "%E4%B8%AD"] {
        for path in ["/register", "/admin/v1/clients", "/admin/v1/users", "/admin/v1/logout/deliveries"] {
            let url = s.url(&format!("{path}/{seg}"));
            let r = http.get(&url).bearer_auth(&admin).send().await.unwrap();
            assert!(r.status().as_u16() < 500, "GET {path}/{seg}: {}", r.status());
            let r = http.delete(&url).bearer_auth(&admin).send().await.unwrap();
            assert!(r.status().as_u16() < 500, "DELETE {path}/{seg}: {}", r.status());
        }
    }
    for auth in [
        "Bearer ".to_owned(),
        "Basic".to_owned(),
        format!("Bearer {}", "x".repeat(10_000)),
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(junk(64, 9))),
        "Negotiate abc".to_owned(),
    ] {
        for path in ["/token", "/introspect", "/revoke", "/userinfo", "/register", "/admin/v1/clients"] {
            let r = http
                .post(s.url(path))
                .header("authorization", auth.as_str())
                .header("content-type", FORM)
                .body("grant_type=client_credentials&token=x")
                .send()
                .await
                .unwrap();
            assert!(r.status().as_u16() < 500, "{path} with {}: {}", &auth[..auth.len().min(20)], r.status());
        }
    }
    // Non-UTF-8 bytes in a header value.
    let raw = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\x80").unwrap();
    for path in ["/userinfo", "/admin/v1/clients"] {
        let r = http.get(s.url(path)).header("authorization", raw.clone()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // The server is still healthy.
    let r = flow::admin_token(&s).await;
    assert!(!r.is_empty());
}
