//! Token exchange (RFC 8693) at `/token`: a local user token exchanged for a named API, with
//! least-privilege scope (AY-7.1) and the client's policy deciding targets (s2.2.2); delegation
//! with nested `act` (s4.1); and across platforms: platform B exchanges a token platform A
//! signed for B, mapping A's user to B's linked account, as long as B trusts A (DC-5).

use reqwest::StatusCode;
use serde_json::{Value, json};
use tongzheng::federation::links;
use tongzheng::users;

use crate::support::flow;
use crate::support::server::*;

per_backend!(local_exchange, cross_platform_exchange);

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID: &str = "urn:ietf:params:oauth:token-type:id_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TAX: &str = "https://api.tax.example.gov.cn";

/// Creates a client through the admin API; returns its secret.
async fn new_client(s: &TestServer, admin: &str, body: Value) -> String {
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["client_secret"].as_str().unwrap().to_owned()
}

/// POST /token as `id` with `form`; the status and JSON body.
async fn token(s: &TestServer, id: &str, secret: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = s.http.post(s.url("/token")).basic_auth(id, Some(secret)).form(form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

/// A token exchange of `subject` (an access token) for `audience`, plus `extra` parameters.
async fn exchange(
    s: &TestServer,
    id: &str,
    secret: &str,
    subject: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", EXCHANGE), ("subject_token", subject), ("subject_token_type", AT)];
    form.extend_from_slice(extra);
    token(s, id, secret, &form).await
}

/// Asserts an RFC 6749 s5.2 error with `code`.
fn refused(r: &(StatusCode, Value), code: &str, what: &str) {
    assert_eq!((r.0, r.1["error"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{what}: {}", r.1);
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&tongzheng::crypto::b64_decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// The demo user's tokens at `s` through the code flow (demo-web).
async fn user_tokens(s: &TestServer, scope: &str) -> Value {
    let (code, pkce) = flow::web_code(s, scope).await;
    let (status, body) = flow::redeem(s, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn local_exchange(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    flow::catalogue_scope(&s, &admin, "api.read").await;
    flow::catalogue_scope(&s, &admin, "api.write").await;
    // RFC 8693 s2.1 grant type in RFC 7591 metadata, and the policy (admin only).
    let policy = json!({"issuers": [s.base], "audiences": [TAX, "tax-api"]});
    let body = json!({"client_id": "gateway", "grant_types": [EXCHANGE, "client_credentials"],
                      "scope": "openid api.read api.write", "token_exchange": policy});
    let gw = new_client(&s, &admin, body).await;
    let body = json!({"client_id": "tax-api", "grant_types": [EXCHANGE, "client_credentials"], "scope": "api.read",
                      "token_exchange": {"issuers": [s.base], "audiences": ["https://payroll.example.gov.cn"]}});
    let tax = new_client(&s, &admin, body).await;
    // The policy is validated.
    let bad = json!({"client_id": "bad-policy", "grant_types": [EXCHANGE], "token_exchange": {"audiences": ["a b"]}});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let user = user_tokens(&s, "openid profile api.read").await;
    let subject = user["access_token"].as_str().unwrap();
    let subject_claims = claims(subject);

    // RFC 8693 s2.2.1: one access token for the audience, no refresh or ID token; scope is the
    // subject's scope the client also holds (profile is not granted to the gateway).
    let (status, v) = exchange(&s, "gateway", &gw, subject, &[("audience", TAX)]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["issued_token_type"], AT);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "openid api.read");
    assert!(v.get("refresh_token").is_none() && v.get("id_token").is_none(), "{v}");
    let exp_in = v["expires_in"].as_i64().unwrap();
    assert!(exp_in > 0 && exp_in <= subject_claims["exp"].as_i64().unwrap() - subject_claims["iat"].as_i64().unwrap());
    let new = v["access_token"].as_str().unwrap();
    // RFC 9068: signed with this platform's keys (its JWKS), typ at+jwt.
    let (c, typ): (Value, _) = s.state.keys.verify(new).unwrap();
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    assert_eq!((c["iss"].as_str(), c["aud"].as_str()), (Some(s.base.as_str()), Some(TAX)));
    assert_eq!((&c["sub"], c["client_id"].as_str()), (&subject_claims["sub"], Some("gateway")));
    assert!(c.get("act").is_none(), "no actor token, no act (s4.1): {c}");
    // The API named by client_id may introspect it; our UserInfo is not its audience (RFC 9068 s4).
    let r = s.http.post(s.url("/introspect")).basic_auth("gateway", Some(&gw)).form(&[("token", new)]).send().await;
    let intro: Value = r.unwrap().json().await.unwrap();
    assert_eq!((intro["active"].as_bool(), intro["aud"].as_str()), (Some(true), Some(TAX)), "{intro}");
    let r = s.http.get(s.url("/userinfo")).bearer_auth(new).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // s2.1 requested_token_type jwt: the same RFC 9068 JWT, usable as a bearer token.
    let (status, v) = exchange(&s, "gateway", &gw, subject, &[("audience", TAX), ("requested_token_type", JWT)]).await;
    assert_eq!(
        (status, v["issued_token_type"].as_str(), v["token_type"].as_str()),
        (StatusCode::OK, Some(JWT), Some("Bearer"))
    );

    // s2.2.2: a target outside the policy is invalid_target; scope beyond the client's grant
    // or beyond the subject token is invalid_scope (AY-7.1).
    let r = exchange(&s, "gateway", &gw, subject, &[("audience", "https://payroll.example.gov.cn")]).await;
    refused(&r, "invalid_target", "audience outside the policy");
    let r = exchange(&s, "gateway", &gw, subject, &[("resource", "https://api.tax.example.gov.cn/#x")]).await;
    refused(&r, "invalid_target", "RFC 8707 s2 resource with a fragment");
    let r = exchange(&s, "gateway", &gw, subject, &[("audience", TAX), ("scope", "profile")]).await;
    refused(&r, "invalid_scope", "scope never granted to the client");
    let r = exchange(&s, "gateway", &gw, subject, &[("audience", TAX), ("scope", "api.write")]).await;
    refused(&r, "invalid_scope", "scope beyond the subject token");
    let r = exchange(&s, "gateway", &gw, subject, &[]).await;
    refused(&r, "invalid_request", "no audience or resource");
    // s2.2.2: an invalid subject token (here: an ID token issued to another client, and
    // garbage) is invalid_request, as the RFC requires.
    let id_token = user["id_token"].as_str().unwrap();
    let form = [("grant_type", EXCHANGE), ("subject_token", id_token), ("subject_token_type", ID), ("audience", TAX)];
    refused(&token(&s, "gateway", &gw, &form).await, "invalid_request", "ID token of another client");
    refused(&exchange(&s, "gateway", &gw, "a.b.c", &[("audience", TAX)]).await, "invalid_request", "not a JWT");
    // A client without the grant type is unauthorized_client (RFC 6749 s5.2).
    let r = exchange(&s, WEB_CLIENT, WEB_SECRET, subject, &[("audience", TAX)]).await;
    refused(&r, "unauthorized_client", "client without the grant");

    // s4.1 delegation: the gateway acts for the user towards tax-api; tax-api then acts for the
    // user towards payroll, and the gateway is nested as the prior actor.
    let (_, cc) = token(&s, "gateway", &gw, &[("grant_type", "client_credentials"), ("scope", "api.read")]).await;
    let actor = cc["access_token"].as_str().unwrap();
    let extra = [("audience", "tax-api"), ("actor_token", actor), ("actor_token_type", AT)];
    let (status, v) = exchange(&s, "gateway", &gw, subject, &extra).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let delegated = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&delegated)["act"], json!({"sub": "gateway"}));
    let (_, cc) = token(&s, "tax-api", &tax, &[("grant_type", "client_credentials")]).await;
    let actor = cc["access_token"].as_str().unwrap();
    let extra = [("audience", "https://payroll.example.gov.cn"), ("actor_token", actor), ("actor_token_type", AT)];
    let (status, v) = exchange(&s, "tax-api", &tax, &delegated, &extra).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let chained = claims(v["access_token"].as_str().unwrap());
    assert_eq!(chained["act"], json!({"sub": "tax-api", "act": {"sub": "gateway"}}));
    assert_eq!((&chained["sub"], chained["scope"].as_str()), (&subject_claims["sub"], Some("api.read")));

    // An exchanged token belongs to its origin's grant: revoking the user's refresh token
    // (RFC 7009 s2.1) ends it too.
    let form = [("token", user["refresh_token"].as_str().unwrap())];
    let r = s.http.post(s.url("/revoke")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.http.post(s.url("/introspect")).basic_auth("gateway", Some(&gw)).form(&[("token", new)]).send().await;
    assert_eq!(r.unwrap().json::<Value>().await.unwrap()["active"], false);
}

// A local ID token (OIDC Core s2) is exchanged by the client it was issued to, as `openid`.
#[tokio::test]
async fn local_id_token_for_its_own_client() {
    let s = TestServer::start(Backend::Memory).await;
    let admin = flow::admin_token(&s).await;
    let body = json!({"redirect_uris": [WEB_REDIRECT], "grant_types": ["authorization_code", "refresh_token", EXCHANGE],
                      "scope": "openid profile email phone offline_access api.read",
                      "token_exchange": {"issuers": [s.base], "audiences": [TAX]}});
    let r = s.http.put(s.url(&format!("/admin/v1/clients/{WEB_CLIENT}"))).bearer_auth(&admin).json(&body).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::OK);
    let user = user_tokens(&s, "openid profile").await;
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", user["id_token"].as_str().unwrap()),
        ("subject_token_type", ID),
        ("audience", TAX),
    ];
    let (status, v) = token(&s, WEB_CLIENT, WEB_SECRET, &form).await;
    assert_eq!((status, v["scope"].as_str()), (StatusCode::OK, Some("openid")), "{v}");
    // The declared type must match the token (RFC 9068 s2.1 typ): an ID token is no access token.
    let form = [form[0], form[1], ("subject_token_type", AT), form[3]];
    refused(&token(&s, WEB_CLIENT, WEB_SECRET, &form).await, "invalid_request", "ID token as access token");
}

#[tokio::test]
async fn discovery_lists_the_grant() {
    // RFC 8414 s2 grant_types_supported.
    let s = TestServer::start(Backend::Memory).await;
    let d: Value = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(d["grant_types_supported"].as_array().unwrap().iter().any(|g| g == EXCHANGE), "{d}");
}

/// Adds (or replaces) B's trust in A as an upstream.
async fn trust(b: &TestServer, admin: &str, a: &TestServer, enabled: bool, create: bool) {
    let body = json!({"id": "plat-a", "role": "upstream", "issuer": a.base, "name": "A", "client_id": "b-at-a",
                      "client_secret": "b-at-a-secret-0123456789", "enabled": enabled});
    let r = if create {
        b.http.post(b.url("/admin/v1/trusts")).bearer_auth(admin).json(&body).send().await.unwrap()
    } else {
        b.http.put(b.url("/admin/v1/trusts/plat-a")).bearer_auth(admin).json(&body).send().await.unwrap()
    };
    assert!(r.status().is_success(), "trust: {}", r.text().await.unwrap());
}

async fn cross_platform_exchange(backend: Backend) {
    let (a, b, c) =
        (TestServer::start(backend).await, TestServer::start(backend).await, TestServer::start(Backend::Memory).await);
    // At A: the user logs in, and A's client exchanges the token for one meant for B.
    let admin_a = flow::admin_token(&a).await;
    flow::catalogue_scope(&a, &admin_a, "api.read").await;
    let body = json!({"client_id": "to-b", "grant_types": [EXCHANGE], "scope": "openid api.read",
                      "token_exchange": {"issuers": [a.base], "audiences": [b.base]}});
    let to_b = new_client(&a, &admin_a, body).await;
    let at_a = user_tokens(&a, "openid api.read").await;
    let at_a = at_a["access_token"].as_str().unwrap();
    let (status, v) = exchange(&a, "to-b", &to_b, at_a, &[("audience", b.base.as_str())]).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let for_b = v["access_token"].as_str().unwrap().to_owned();
    let sub_at_a = claims(&for_b)["sub"].as_str().unwrap().to_owned();

    // At B: trust A, and a portal allowed to exchange A's (and C's) tokens for the tax API.
    let admin_b = flow::admin_token(&b).await;
    flow::catalogue_scope(&b, &admin_b, "api.read").await;
    trust(&b, &admin_b, &a, true, true).await;
    let body = json!({"client_id": "portal", "grant_types": [EXCHANGE], "scope": "openid api.read",
                      "token_exchange": {"issuers": [a.base, c.base], "audiences": [TAX]}});
    let portal = new_client(&b, &admin_b, body).await;
    let to_tax = [("audience", TAX)];

    // Not linked yet: the subject is not known here (s2.2.2 invalid_request).
    let r = exchange(&b, "portal", &portal, &for_b, &to_tax).await;
    refused(&r, "invalid_request", "unlinked subject");
    assert!(r.1["error_description"].as_str().unwrap().contains("not known here"), "{}", r.1);
    let local = users::by_username(&b.state.store, USER).await.unwrap().unwrap();
    links::link(&b.state.store, "plat-a", &sub_at_a, &local.id).await.unwrap();

    // RFC 8693 s2.1/s2.2.1: verified with A's JWKS, issued by B about B's linked user.
    let (status, v) = exchange(&b, "portal", &portal, &for_b, &to_tax).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (issued, _): (Value, _) = b.state.keys.verify(v["access_token"].as_str().unwrap()).unwrap();
    assert_eq!((issued["iss"].as_str(), issued["sub"].as_str()), (Some(b.base.as_str()), Some(local.id.as_str())));
    assert_eq!((issued["aud"].as_str(), issued["client_id"].as_str()), (Some(TAX), Some("portal")));
    assert_eq!(v["scope"], "openid api.read");
    b.state.audit.flush().await;
    let auditor = token(&b, AUDITOR_CLIENT, AUDITOR_SECRET, &[("grant_type", "client_credentials")]).await.1;
    let q = b.url("/admin/v1/audit/events?kind=token_exchanged&outcome=success");
    let r = b.http.get(q).bearer_auth(auditor["access_token"].as_str().unwrap()).send().await.unwrap();
    let events: Value = r.json().await.unwrap();
    let detail = &events["events"][0]["detail"];
    assert_eq!(
        (detail["subject_issuer"].as_str(), detail["audience"].as_str()),
        (Some(a.base.as_str()), Some(TAX)),
        "{events}"
    );

    // A's own token is for A, not for B (aud rule): refused.
    refused(&exchange(&b, "portal", &portal, at_a, &to_tax).await, "invalid_request", "aud names A only");
    // A platform B does not trust (C) is refused even when the client's policy lists it.
    let from_c = flow::admin_token(&c).await;
    let r = exchange(&b, "portal", &portal, &from_c, &to_tax).await;
    refused(&r, "invalid_request", "untrusted issuer");
    assert!(r.1["error_description"].as_str().unwrap().contains("not a trusted platform"), "{}", r.1);

    // DC-5: disabling the trust stops exchange at once; enabling it restores it.
    trust(&b, &admin_b, &a, false, false).await;
    refused(&exchange(&b, "portal", &portal, &for_b, &to_tax).await, "invalid_request", "disabled trust");
    trust(&b, &admin_b, &a, true, false).await;
    assert_eq!(exchange(&b, "portal", &portal, &for_b, &to_tax).await.0, StatusCode::OK);

    // Expired at A (past the clock leeway): refused at B.
    a.clock.advance(3 * 3600);
    b.clock.advance(3 * 3600);
    let r = exchange(&b, "portal", &portal, &for_b, &to_tax).await;
    refused(&r, "invalid_request", "expired subject token");
    assert!(r.1["error_description"].as_str().unwrap().contains("expired"), "{}", r.1);
}

// Back-Channel Logout 1.0 s2.4, RFC 8693 s2.2.2: a trusted platform's logout token says that a
// session ended; it never stands for the user, with or without its `logout+jwt` typ.
#[tokio::test]
async fn a_peer_logout_token_is_not_a_subject_token() {
    let (a, b) = (TestServer::start(Backend::Memory).await, TestServer::start(Backend::Memory).await);
    let admin_b = flow::admin_token(&b).await;
    flow::catalogue_scope(&b, &admin_b, "api.read").await;
    trust(&b, &admin_b, &a, true, true).await;
    let body = json!({"client_id": "portal", "grant_types": [EXCHANGE], "scope": "openid api.read",
                      "token_exchange": {"issuers": [a.base], "audiences": [TAX]}});
    let portal = new_client(&b, &admin_b, body).await;
    let local = users::by_username(&b.state.store, USER).await.unwrap().unwrap();
    links::link(&b.state.store, "plat-a", "user-at-a", &local.id).await.unwrap();
    let now = a.clock.now();
    let logout = json!({"iss": a.base, "sub": "user-at-a", "aud": b.base, "iat": now, "exp": now + 120,
        "jti": "lt-1", "sid": "sid-at-a", "events": {"http://schemas.openid.net/event/backchannel-logout": {}}});
    // The same claims as an ID-token-shaped JWT is what a subject token looks like: accepted.
    let mut id_like = logout.clone();
    id_like.as_object_mut().unwrap().remove("events");
    let id_like = a.state.keys.sign(tongzheng::jwt::Alg::ES256, "JWT", &id_like).unwrap();
    let ok = token(
        &b,
        "portal",
        &portal,
        &[("grant_type", EXCHANGE), ("subject_token", &id_like), ("subject_token_type", JWT), ("audience", TAX)],
    )
    .await;
    assert_eq!(ok.0, StatusCode::OK, "the control case: {}", ok.1);
    for typ in ["logout+jwt", "JWT"] {
        let t = a.state.keys.sign(tongzheng::jwt::Alg::ES256, typ, &logout).unwrap();
        for ty in [JWT, ID] {
            let r = token(
                &b,
                "portal",
                &portal,
                &[("grant_type", EXCHANGE), ("subject_token", &t), ("subject_token_type", ty), ("audience", TAX)],
            )
            .await;
            refused(&r, "invalid_request", &format!("logout token (typ {typ}) as {ty}"));
            assert!(r.1["error_description"].as_str().unwrap().contains("logout token"), "{}", r.1);
        }
    }
}
