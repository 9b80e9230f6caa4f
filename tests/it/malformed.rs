//! Bad input never gets a panic, a 500 or a hang: every malformed request gets the documented
//! OAuth error (RFC 6749 s5.2, RFC 6750 s3.1) or an RFC 7807 problem (GB-6.9.3).

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flow::{self, location, query};
use crate::support::server::*;

async fn token_raw(s: &TestServer, body: Vec<u8>, ctype: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut r = s.http.post(s.url("/token")).header("content-type", ctype).body(body);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

/// (name, body, content type, Authorization, expected status, expected error).
type Case = (&'static str, Vec<u8>, &'static str, Option<String>, u16, &'static str);

#[tokio::test]
async fn token_endpoint_errors() {
    let s = TestServer::start(Backend::Memory).await;
    let form = "application/x-www-form-urlencoded";
    let web = basic(WEB_CLIENT, WEB_SECRET);
    let cases: Vec<Case> = vec![
        ("no grant_type", b"scope=x".to_vec(), form, Some(web.clone()), 400, "invalid_request"),
        ("unknown grant", b"grant_type=password".to_vec(), form, Some(web.clone()), 400, "unsupported_grant_type"),
        ("repeated parameter (RFC 6749 s3.1)", b"grant_type=client_credentials&scope=a&scope=b".to_vec(), form, Some(web.clone()), 400, "invalid_request"),
        ("JSON body", br#"{"grant_type":"client_credentials"}"#.to_vec(), "application/json", Some(web.clone()), 400, "invalid_request"),
        ("bad Basic base64", b"grant_type=client_credentials".to_vec(), form, Some("Basic %%%".into()), 401, "invalid_client"),
        ("no credentials", b"grant_type=client_credentials".to_vec(), form, None, 401, "invalid_client"),
        ("two auth methods", format!("grant_type=client_credentials&client_id={WEB_CLIENT}&client_secret={WEB_SECRET}").into_bytes(), form, Some(web.clone()), 400, "invalid_request"),
        ("garbage code", b"grant_type=authorization_code&code=%00%ff&redirect_uri=x".to_vec(), form, Some(web.clone()), 400, "invalid_grant"),
        ("no code", b"grant_type=authorization_code".to_vec(), form, Some(web.clone()), 400, "invalid_request"),
        ("garbage refresh token", b"grant_type=refresh_token&refresh_token=abc".to_vec(), form, Some(web.clone()), 400, "invalid_grant"),
        ("bad scope characters", b"grant_type=client_credentials&scope=a%22b".to_vec(), form, Some(web.clone()), 400, "invalid_scope"),
        (
            "malformed client_assertion",
            b"grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=not.a.jwt".to_vec(),
            form,
            None,
            401,
            "invalid_client",
        ),
        ("invalid UTF-8", vec![0x67, 0xff, 0xfe, 0x3d, 0x01], form, Some(web.clone()), 400, "invalid_request"),
    ];
    for (name, body, ctype, auth, status, error) in cases {
        let (got, v) = token_raw(&s, body, ctype, auth.as_deref()).await;
        assert_eq!((got.as_u16(), v["error"].as_str().unwrap_or("")), (status, error), "{name}: {v}");
    }
    // Oversized bodies: 413 with an OAuth-shaped error.
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(70_000));
    let (got, v) = token_raw(&s, big.into_bytes(), form, Some(&web)).await;
    assert_eq!(got, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"], "invalid_request");
}

#[tokio::test]
async fn pkce_and_redirect_binding_errors() {
    let s = TestServer::start(Backend::Memory).await;
    // RFC 9700 s4.8.2: a verifier without a challenge is refused.
    let q = flow::login_for_code(
        &s,
        &[("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")],
    )
    .await;
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &"v".repeat(43)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // Missing redirect_uri at the token endpoint (RFC 6749 s4.1.3).
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn authorize_errors() {
    let s = TestServer::start(Backend::Memory).await;
    let base = [("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("state", "st1")];
    // Errors that must not redirect (RFC 6749 s4.1.2.1): error page, no Location.
    for params in [
        vec![("response_type", "code"), ("client_id", "nope"), ("redirect_uri", WEB_REDIRECT)],
        vec![("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", "https://evil.example/")],
        vec![
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
        ],
        vec![("response_type", "code")],
    ] {
        let r = flow::authorize(&s, &params).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(location(&r).is_empty(), "{params:?}");
        assert!(r.text().await.unwrap().contains("<html"));
    }
    // Errors that go back to the client with state and iss (RFC 9207 s2).
    for (extra, want) in [
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![], "invalid_request"),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "code"), ("code_challenge", "short"), ("code_challenge_method", "S256")],
            "invalid_request",
        ),
        (vec![("response_type", "code"), ("prompt", "none login")], "invalid_request"),
        (vec![("response_type", "code"), ("prompt", "none")], "login_required"),
        (vec![("response_type", "code"), ("scope", "openid tongzheng:admin")], "invalid_scope"),
        (vec![("response_type", "code"), ("max_age", "-1")], "invalid_request"),
        (vec![("response_type", "code"), ("request", "eyJ")], "request_not_supported"),
        (vec![("response_type", "code"), ("response_mode", "fragment")], "invalid_request"),
    ] {
        let mut p = base.to_vec();
        p.extend(extra.iter().copied());
        let r = flow::authorize(&s, &p).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{extra:?}");
        let q = query(&location(&r));
        assert_eq!(q.get("error").map(String::as_str), Some(want), "{extra:?}: {q:?}");
        assert_eq!(q["state"], "st1");
        assert_eq!(q["iss"], s.base);
    }
    // POST /authorize with a non-form body.
    let r =
        s.browser.post(s.url("/authorize")).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn login_form_errors() {
    let s = TestServer::start(Backend::Memory).await;
    let r = flow::authorize(
        &s,
        &[("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")],
    )
    .await;
    let login = location(&r);
    let html = s.browser.get(s.url(&login)).send().await.unwrap().text().await.unwrap();
    let req = flow::hidden(&html, "req");
    // Forged CSRF token: refused.
    let r = s
        .browser
        .post(s.url("/login"))
        .form(&[("req", req.as_str()), ("csrf", "forged"), ("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another browser (no binding cookie) cannot use this pending login.
    let r = s
        .http
        .post(s.url("/login"))
        .form(&[("req", req.as_str()), ("csrf", "x"), ("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s.http.get(s.url(&login)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Expired pending login (10 min).
    s.clock.advance(601);
    let r = s.browser.get(s.url(&login)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn protected_resources_and_fallbacks() {
    let s = TestServer::start(Backend::Memory).await;
    // RFC 6750 s3.1: no token -> bare challenge without an error code.
    let r = s.http.get(s.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let h = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(h.starts_with("Bearer") && !h.contains("error="), "{h}");
    let r = s.http.get(s.url("/userinfo")).bearer_auth("garbage").send().await.unwrap();
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    // A client_credentials token has no user: insufficient_scope (403).
    let admin = flow::admin_token(&s).await;
    let r = s.http.get(s.url("/userinfo")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    // Introspection needs client authentication; revocation of garbage is 200 (RFC 7009 s2.2).
    let r = s.http.post(s.url("/introspect")).form(&[("token", "x")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .http
        .post(s.url("/revoke"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("token", "garbage")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .http
        .post(s.url("/revoke"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("token", "x"), ("token_type_hint", "weird")])
        .send()
        .await
        .unwrap();
    // RFC 7009 s2.1: the hint is only a hint; an unknown one does not stop the search.
    assert_eq!(r.status(), StatusCode::OK);
    // Unknown paths: RFC 7807 problem.
    let r = s.http.get(s.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Random bytes at every endpoint: never a 5xx.
    let junk: Vec<u8> = (0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for path in [
        "/token",
        "/introspect",
        "/revoke",
        "/register",
        "/authorize",
        "/login",
        "/consent",
        "/userinfo",
        "/logout",
        "/end_session",
        "/end_session/confirm",
        "/admin/v1/clients",
        "/admin/v1/users",
    ] {
        for ctype in ["application/x-www-form-urlencoded", "application/json", "text/plain"] {
            let r = s.browser.post(s.url(path)).header("content-type", ctype).body(junk.clone()).send().await.unwrap();
            assert!(r.status().as_u16() < 500, "{path} {ctype}: {}", r.status());
        }
    }
}
