//! The main protocol flows over real HTTP, once per store backend: the HL-5.3 code-for-token
//! sequence with PKCE, SSO, prompt handling, code replay, refresh rotation and reuse detection,
//! client credentials, userinfo, introspection and revocation.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flow::{self, Pkce, location, query};
use crate::support::server::*;

per_backend!(
    code_flow_end_to_end,
    sso_returns_code_without_form,
    prompt_none_and_login,
    max_age_forces_login,
    code_replay_revokes_first_tokens,
    code_bound_to_client_and_redirect,
    refresh_rotation_and_reuse_detection,
    refresh_grace_window_allows_concurrent_retry,
    refresh_scope_narrowing,
    client_credentials_least_privilege,
    public_client_pkce,
    introspection_and_revocation,
    expired_tokens_fail,
    form_post_response_mode,
);
// The main flows on a Redis Cluster too (issue 10: keys hash-tagged, scripts in one slot).
on_cluster!(
    code_flow_end_to_end,
    refresh_rotation_and_reuse_detection,
    public_client_pkce,
    introspection_and_revocation
);

fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("jwt part");
    serde_json::from_slice(&tongzheng::crypto::b64_decode(part).expect("b64")).expect("json")
}

async fn userinfo(s: &TestServer, at: &str) -> reqwest::Response {
    s.http.get(s.url("/userinfo")).bearer_auth(at).send().await.expect("userinfo")
}

async fn introspect(s: &TestServer, token: &str) -> Value {
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

async fn refresh(s: &TestServer, rt: &str, scope: Option<&str>) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    let r =
        s.http.post(s.url("/token")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).form(&form).send().await.expect("token");
    (r.status(), r.json().await.expect("json"))
}

// DC-1, DC-6, HL-5.3: app asks -> login page -> code -> backend exchanges -> userinfo.
async fn code_flow_end_to_end(b: Backend) {
    let s = TestServer::start(b).await;
    // No session: the login page is shown and the original request remembered.
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid profile email phone offline_access"),
        ("state", "af0ifjsldkj"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = flow::authorize(&s, &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login_url = location(&r);
    assert!(login_url.starts_with("/login?req="), "{login_url}");
    // A wrong password gives one generic message and keeps the form.
    let r = flow::submit_login(&s, &login_url, USER, "wrong-password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("用户名或密码错误"));
    let r = flow::submit_login(&s, &login_url, "nobody", "wrong-password").await;
    assert!(r.text().await.unwrap().contains("用户名或密码错误"), "unknown user gets the same message");
    // After a good password the browser continues the original request. SH-8.2: `phone` is
    // sensitive, so the user is asked first even though this client asks for no consent.
    let r = flow::submit_login(&s, &login_url, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "the consent page for the sensitive phone scope");
    let session_cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tz_session="));
    let html = r.text().await.unwrap();
    assert!(html.contains("<li class=\"sensitive\" data-scope=\"phone\">"), "{html}");
    let form =
        [("req", flow::hidden(&html, "req")), ("csrf", flow::hidden(&html, "csrf")), ("decision", "allow".to_owned())];
    let r = s.browser.post(s.url("/consent")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie;
    let cookie = cookie.expect("session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let loc = location(&r);
    assert!(loc.starts_with(WEB_REDIRECT), "{loc}");
    let q = query(&loc);
    // RFC 6749 s4.1.2: state echoed; RFC 9207 s2: iss present.
    assert_eq!(q["state"], "af0ifjsldkj");
    assert_eq!(q["iss"], s.base);
    let (status, tok) = flow::redeem(&s, &q["code"], &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    // RFC 6749 s5.1, AY-7.2a
    assert_eq!(tok["token_type"], "Bearer");
    assert!(tok["expires_in"].as_i64().unwrap() > 0);
    assert!(tok["refresh_token"].is_string());
    let at = tok["access_token"].as_str().unwrap();
    // RFC 9068 s2.1-2.2
    let h = jwt_part(at, 0);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "ES256");
    let c = jwt_part(at, 1);
    for claim in ["iss", "sub", "aud", "client_id", "scope", "jti", "iat", "exp", "sid"] {
        assert!(!c[claim].is_null(), "access token lacks {claim}: {c}");
    }
    // OIDC Core s3.1.3.6: ID token with nonce, at_hash, auth_time, sid, acr; RS256 by default.
    let id = tok["id_token"].as_str().unwrap();
    assert_eq!(jwt_part(id, 0)["alg"], "RS256");
    let idc = jwt_part(id, 1);
    assert_eq!(idc["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(idc["aud"], WEB_CLIENT);
    assert_eq!(idc["iss"], s.base);
    assert_eq!(idc["at_hash"], tongzheng::tokens::at_hash(tongzheng::jwt::Alg::RS256, at));
    assert_eq!(idc["sid"], c["sid"]);
    assert!(idc["auth_time"].is_i64() && idc["acr"].is_string());
    // GB-6.4b, OIDC Core s5.3: userinfo by scope.
    let r = userinfo(&s, at).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["sub"], idc["sub"]);
    assert_eq!(u["preferred_username"], USER);
    assert!(u["email"].is_string() && u["phone_number"].is_string());
    // The session remembers which clients it reached (for logout broadcast).
    let sid = c["sid"].as_str().unwrap();
    let reached = tongzheng::session::clients(&s.state.store, sid).await.unwrap();
    assert_eq!(reached, vec![WEB_CLIENT.to_owned()]);
}

// HL-5.3: "if so, a code is returned at once".
async fn sso_returns_code_without_form(b: Backend) {
    let s = TestServer::start(b).await;
    let _ = flow::web_code(&s, "openid").await;
    let r = flow::authorize(
        &s,
        &[("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query(&location(&r));
    assert!(q.contains_key("code"), "{q:?}");
    // POST /authorize works the same (OIDC Core s3.1.2.1).
    let r = s
        .browser
        .post(s.url("/authorize"))
        .form(&[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert!(query(&location(&r)).contains_key("code"));
}

// OIDC Core s3.1.2.1 prompt, s3.1.2.6 login_required.
async fn prompt_none_and_login(b: Backend) {
    let s = TestServer::start(b).await;
    let base = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid"),
        ("state", "s1"),
    ];
    let mut none = base.to_vec();
    none.push(("prompt", "none"));
    let q = query(&location(&flow::authorize(&s, &none).await));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "s1");
    assert_eq!(q["iss"], s.base);
    let _ = flow::web_code(&s, "openid").await;
    let q = query(&location(&flow::authorize(&s, &none).await));
    assert!(q.contains_key("code"), "prompt=none with a session returns a code: {q:?}");
    let mut login = base.to_vec();
    login.push(("prompt", "login"));
    let r = flow::authorize(&s, &login).await;
    assert!(location(&r).starts_with("/login"), "prompt=login shows the form even with a session");
}

// OIDC Core s3.1.2.1 max_age.
async fn max_age_forces_login(b: Backend) {
    let s = TestServer::start(b).await;
    let _ = flow::web_code(&s, "openid").await;
    s.clock.advance(120);
    let p = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid"),
        ("max_age", "60"),
    ];
    assert!(location(&flow::authorize(&s, &p).await).starts_with("/login"));
    let p = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid"),
        ("max_age", "600"),
    ];
    assert!(query(&location(&flow::authorize(&s, &p).await)).contains_key("code"));
}

// RFC 6749 s4.1.2: a code used twice is refused and what it issued is revoked.
async fn code_replay_revokes_first_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let (code, pkce) = flow::web_code(&s, "openid offline_access").await;
    let (status, tok) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK);
    let at = tok["access_token"].as_str().unwrap();
    let rt = tok["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, at).await.status(), StatusCode::OK);
    let (status, err) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(userinfo(&s, at).await.status(), StatusCode::UNAUTHORIZED, "first redemption's access token revoked");
    assert_eq!(refresh(&s, rt, None).await.1["error"], "invalid_grant", "and its refresh token");
    assert_eq!(introspect(&s, at).await["active"], false);
}

// RFC 6749 s4.1.3: client, redirect_uri and expiry; code lifetime <= 60 s.
async fn code_bound_to_client_and_redirect(b: Backend) {
    let s = TestServer::start(b).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://localhost:9000/callback"),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let (code, pkce) = flow::web_code(&s, "openid").await;
    s.clock.advance(61);
    assert_eq!(flow::redeem(&s, &code, &pkce).await.1["error"], "invalid_grant", "expired after 60 s");
    s.clock.advance(-61);
    let (code, _) = flow::web_code(&s, "openid").await;
    assert_eq!(flow::redeem(&s, &code, &Pkce::new()).await.1["error"], "invalid_grant", "wrong verifier");
    // Another client cannot redeem it.
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    let e: Value = r.json().await.unwrap();
    assert!(e["error"] == "invalid_grant" || e["error"] == "unauthorized_client", "{e}");
}

// DC-3, RFC 6749 s6, RFC 9700 s4.14.2.
async fn refresh_rotation_and_reuse_detection(b: Backend) {
    let s = TestServer::start(b).await;
    let (code, pkce) = flow::web_code(&s, "openid profile").await;
    let tok = flow::redeem(&s, &code, &pkce).await.1;
    let rt1 = tok["refresh_token"].as_str().unwrap().to_owned();
    let (status, t2) = refresh(&s, &rt1, None).await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated on every use");
    let at2 = t2["access_token"].as_str().unwrap().to_owned();
    assert!(t2["id_token"].is_string(), "OIDC Core s12.2");
    assert_eq!(introspect(&s, &rt1).await["active"], false, "a rotated token introspects inactive");
    assert_eq!(introspect(&s, &rt2).await["active"], true);
    // Past the grace window, reuse of rt1 is theft: the whole family dies.
    s.clock.advance(11);
    let (status, e) = refresh(&s, &rt1, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(refresh(&s, &rt2, None).await.1["error"], "invalid_grant", "family revoked");
    assert_eq!(userinfo(&s, &at2).await.status(), StatusCode::UNAUTHORIZED, "family's access tokens revoked");
}

// RFC 9700 s4.14.2: with a grace window enabled, a concurrent retry is not theft, and it gets
// the same successor the first use issued: never a second, independent token pair.
async fn refresh_grace_window_allows_concurrent_retry(b: Backend) {
    let s = TestServer::start_with(b, "[tokens]\nrefresh_grace = 10\n").await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let rt = flow::redeem(&s, &code, &pkce).await.1["refresh_token"].as_str().unwrap().to_owned();
    let (a, b2) = tokio::join!(refresh(&s, &rt, None), refresh(&s, &rt, None));
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(b2.0, StatusCode::OK, "{}", b2.1);
    assert_eq!(a.1["refresh_token"], b2.1["refresh_token"], "one successor, not two branches");
    assert_eq!(a.1["access_token"], b2.1["access_token"]);
    let newest = b2.1["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&s, newest, None).await.0, StatusCode::OK, "family still alive");
}

// RFC 6749 s6: narrower scope allowed, wider refused.
async fn refresh_scope_narrowing(b: Backend) {
    let s = TestServer::start(b).await;
    let (code, pkce) = flow::web_code(&s, "openid profile").await;
    let rt = flow::redeem(&s, &code, &pkce).await.1["refresh_token"].as_str().unwrap().to_owned();
    let (status, e) = refresh(&s, &rt, Some("openid profile email")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "invalid_scope");
    // The refused request did not consume the token: even past the grace window it still works.
    s.clock.advance(60);
    let (status, t) = refresh(&s, &rt, Some("openid")).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["scope"], "openid");
}

// DC-2, AY-7.1, AY-7.2a: client credentials carry only granted scopes.
async fn client_credentials_least_privilege(b: Backend) {
    let s = TestServer::start(b).await;
    let post = |scope: Option<&'static str>, secret: &'static str| {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(sc) = scope {
            form.push(("scope", sc));
        }
        s.http.post(s.url("/token")).basic_auth(WEB_CLIENT, Some(secret)).form(&form).send()
    };
    let r = post(None, WEB_SECRET).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "api.read", "default: every granted non-user scope");
    assert!(t.get("refresh_token").is_none(), "RFC 6749 s4.4.3: no refresh token");
    let c = jwt_part(t["access_token"].as_str().unwrap(), 1);
    assert_eq!(c["sub"], WEB_CLIENT, "RFC 9068 s2.2: sub is the client");
    assert!(c.get("sid").is_none());
    let r = post(Some("tongzheng:admin"), WEB_SECRET).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let r = post(Some("openid"), WEB_SECRET).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let r = post(None, "wrong-secret").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // client_secret_post is refused for a client registered for client_secret_basic (OIDC Core s9).
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", WEB_CLIENT), ("client_secret", WEB_SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

// DC-1, RFC 7636: PKCE required for public clients; no client_credentials for them.
async fn public_client_pkce(b: Backend) {
    let s = TestServer::start(b).await;
    let q = query(&location(
        &flow::authorize(
            &s,
            &[
                ("response_type", "code"),
                ("client_id", SPA_CLIENT),
                ("redirect_uri", SPA_REDIRECT),
                ("scope", "openid"),
            ],
        )
        .await,
    ));
    assert_eq!(q["error"], "invalid_request", "public client without PKCE");
    let pkce = Pkce::new();
    let q = flow::login_for_code(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", SPA_CLIENT),
            ("redirect_uri", SPA_REDIRECT),
            ("scope", "openid offline_access"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA_CLIENT),
            ("code", &q["code"]),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("client_id", SPA_CLIENT), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "public clients refresh with their client_id");
}

// AY-7.2b, RFC 7662 and RFC 7009.
async fn introspection_and_revocation(b: Backend) {
    let s = TestServer::start(b).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let tok = flow::redeem(&s, &code, &pkce).await.1;
    let at = tok["access_token"].as_str().unwrap();
    let rt = tok["refresh_token"].as_str().unwrap();
    let i = introspect(&s, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], WEB_CLIENT);
    assert_eq!(i["token_type"], "Bearer");
    assert_eq!(introspect(&s, rt).await["token_type"], "refresh_token");
    // Another client's token is not this client's business (RFC 7662 s4).
    let admin_at = flow::admin_token(&s).await;
    assert_eq!(introspect(&s, &admin_at).await["active"], false);
    assert_eq!(introspect(&s, "not-a-token").await, serde_json::json!({"active": false}));
    // Revoking the access token (RFC 7009 s2.1).
    let revoke =
        |t: String| s.http.post(s.url("/revoke")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).form(&[("token", t)]).send();
    assert_eq!(revoke(at.to_owned()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(introspect(&s, at).await["active"], false);
    // Revoking the refresh token ends the family: new access tokens from it die too.
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let tok = flow::redeem(&s, &code, &pkce).await.1;
    let (at, rt) = (tok["access_token"].as_str().unwrap(), tok["refresh_token"].as_str().unwrap());
    assert_eq!(revoke(rt.to_owned()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(introspect(&s, at).await["active"], false);
    assert_eq!(introspect(&s, rt).await["active"], false);
    assert_eq!(refresh(&s, rt, None).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&s, at).await.status(), StatusCode::UNAUTHORIZED);
}

// AY-7.2c: an expired token fails; RFC 6750 s3.1.
async fn expired_tokens_fail(b: Backend) {
    let s = TestServer::start(b).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let tok = flow::redeem(&s, &code, &pkce).await.1;
    let at = tok["access_token"].as_str().unwrap();
    s.clock.advance(601);
    let r = userinfo(&s, at).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(introspect(&s, at).await["active"], false);
    // The refresh token still works (lifetime 30 days).
    assert_eq!(refresh(&s, tok["refresh_token"].as_str().unwrap(), None).await.0, StatusCode::OK);
}

// OAuth 2.0 Form Post Response Mode s2.
async fn form_post_response_mode(b: Backend) {
    let s = TestServer::start(b).await;
    let _ = flow::web_code(&s, "openid").await;
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "fp"),
            ("response_mode", "form_post"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{WEB_REDIRECT}\"")), "{html}");
    assert!(!flow::hidden(&html, "code").is_empty());
    assert_eq!(flow::hidden(&html, "state"), "fp");
    assert_eq!(flow::hidden(&html, "iss"), s.base);
}

// OIDC Core s3.1.2.1 ui_locales; the login page is zh-CN by default and en on request.
#[tokio::test]
async fn login_page_locales() {
    let s = TestServer::start(Backend::Memory).await;
    let base =
        [("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")];
    let page = |extra: Vec<(&'static str, &'static str)>, lang: Option<&'static str>| {
        let s = &s;
        async move {
            let mut p = base.to_vec();
            p.extend(extra);
            let login = location(&flow::authorize(s, &p).await);
            let mut req = s.browser.get(s.url(&login));
            if let Some(l) = lang {
                req = req.header("accept-language", l);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            r.text().await.unwrap()
        }
    };
    let zh = page(vec![], None).await;
    assert!(zh.contains("lang=\"zh-CN\"") && zh.contains("统一身份认证登录"));
    assert!(zh.contains("name=\"username\"") && zh.contains("name=\"password\"") && zh.contains("type=\"submit\""));
    let en = page(vec![("ui_locales", "en-US zh-CN")], None).await;
    assert!(en.contains("lang=\"en\"") && en.contains("Sign in"));
    let en = page(vec![], Some("en-GB,en;q=0.8")).await;
    assert!(en.contains("lang=\"en\""));
    // login_hint prefills the username.
    let hinted = page(vec![("login_hint", "zhang.san")], None).await;
    assert!(hinted.contains("value=\"zhang.san\""));
}

// OIDC Core s3.1.2.1 id_token_hint: a hint for another user means this session does not do.
#[tokio::test]
async fn id_token_hint_must_match_session() {
    let s = TestServer::start(Backend::Memory).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let id = flow::redeem(&s, &code, &pkce).await.1["id_token"].as_str().unwrap().to_owned();
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid"),
        ("prompt", "none"),
    ];
    p.push(("id_token_hint", id.as_str()));
    assert!(query(&location(&flow::authorize(&s, &p).await)).contains_key("code"), "hint matches the session");
    // An expired hint is still accepted (it is only a hint), if we signed it.
    s.clock.advance(3_600);
    let q = query(&location(&flow::authorize(&s, &p).await));
    assert!(q.contains_key("code") || q.get("error").is_some_and(|e| e == "login_required"), "{q:?}");
    let forged = format!("{}x", &id[..id.len() - 1]);
    let mut bad = p.clone();
    bad.pop();
    bad.push(("id_token_hint", forged.as_str()));
    assert_eq!(query(&location(&flow::authorize(&s, &bad).await))["error"], "invalid_request");
}

// OIDC Core s3.1.2.1 prompt=login: re-authentication keeps the SSO session (the sid the
// applications hold) and moves auth_time; a different user's login ends the previous session.
#[tokio::test]
async fn relogin_keeps_or_replaces_the_session() {
    let s = TestServer::start(Backend::Memory).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let first = jwt_part(flow::redeem(&s, &code, &pkce).await.1["id_token"].as_str().unwrap(), 1);
    s.clock.advance(100);
    let pkce = Pkce::new();
    let p = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid"),
        ("prompt", "login"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let q = flow::login_for_code(&s, &p).await;
    let again = jwt_part(flow::redeem(&s, &q["code"], &pkce).await.1["id_token"].as_str().unwrap(), 1);
    assert_eq!(again["sid"], first["sid"], "same session");
    assert_eq!(again["auth_time"].as_i64().unwrap(), first["auth_time"].as_i64().unwrap() + 100);
    // Another user logs in in the same browser: the demo user's session ends.
    let admin = flow::admin_token(&s).await;
    let r = s
        .http
        .post(s.url("/admin/v1/users"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"username": "li.si", "password": "li-si-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let login = location(&flow::authorize(&s, &p).await);
    let r = flow::submit_login(&s, &login, "li.si", "li-si-password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let old = tongzheng::session::get(&s.state.store, first["sid"].as_str().unwrap()).await.unwrap();
    assert!(old.is_none(), "the previous user's session was ended");
}
