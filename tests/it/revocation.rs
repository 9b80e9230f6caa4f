//! Tokens that should be dead stay dead (issue 9): every logout path, every account change and
//! every application block, against every token kind (access, refresh, offline_access refresh)
//! at every endpoint that accepts it (`/token`, `/introspect`, `/userinfo`). One authority
//! decides (src/tokens/validity.rs); these tests hold it to DC-3, DC-4, AY-8.5.3.2, AY-8.6.3,
//! RFC 7009 s2.1, RFC 7662 s2.2, RFC 9700 s4.14.2 and OIDC Core s11.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::lifecycle::{call, office_evidence};
use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::*;

per_backend!(
    logout_paths_kill_session_tokens,
    expiry_kills_session_tokens_with_or_without_broadcast,
    account_changes_kill_every_token,
    application_block_kills_every_token,
    revocation_outlives_a_long_refresh_lifetime,
    refresh_reuse_revokes_the_family_in_the_same_second,
    grace_window_returns_the_same_successor,
    code_replay_revokes_what_the_code_issued,
    revoke_finds_tokens_whatever_the_hint,
);

/// A relying party: which client gets the tokens.
#[derive(Clone, Copy)]
struct Rp<'a> {
    id: &'a str,
    secret: &'a str,
    redirect: &'a str,
}

const WEB: Rp<'static> = Rp { id: WEB_CLIENT, secret: WEB_SECRET, redirect: WEB_REDIRECT };

/// The tokens one browser login produced for one client: a session-bound pair and an
/// `offline_access` pair (OIDC Core s11), all under the same SSO session.
struct Issued {
    browser: reqwest::Client,
    access: String,
    refresh: String,
    id_token: String,
    offline_access: String,
    offline_refresh: String,
    sid: String,
    sub: String,
}

/// Logs `user` in through a fresh browser and redeems two codes: one for `openid profile`,
/// one for `openid offline_access` (the second without logging in again: same session).
async fn issue(s: &TestServer, rp: Rp<'_>, user: &str, password: &str) -> Issued {
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let online = code_flow(s, &browser, rp, "openid profile", Some((user, password))).await;
    let offline = code_flow(s, &browser, rp, "openid offline_access", None).await;
    let claims = jwt_claims(online["access_token"].as_str().unwrap());
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")).to_owned();
    Issued {
        access: text(&online, "access_token"),
        refresh: text(&online, "refresh_token"),
        id_token: text(&online, "id_token"),
        offline_access: text(&offline, "access_token"),
        offline_refresh: text(&offline, "refresh_token"),
        sid: claims["sid"].as_str().unwrap().to_owned(),
        sub: claims["sub"].as_str().unwrap().to_owned(),
        browser,
    }
}

/// One authorization-code round trip in `browser`; logs in when `login` is given.
async fn code_flow(
    s: &TestServer,
    browser: &reqwest::Client,
    rp: Rp<'_>,
    scope: &str,
    login: Option<(&str, &str)>,
) -> Value {
    let (code, pkce) = authorization_code(s, browser, rp, scope, login).await;
    let (status, body) = redeem(s, rp, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Authorize (and log in when `login` is given) in `browser`; the code and its PKCE verifier.
async fn authorization_code(
    s: &TestServer,
    browser: &reqwest::Client,
    rp: Rp<'_>,
    scope: &str,
    login: Option<(&str, &str)>,
) -> (String, Pkce) {
    let pkce = Pkce::new();
    let r = browser
        .get(s.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", rp.id),
            ("redirect_uri", rp.redirect),
            ("scope", scope),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut loc = location(&r);
    if let Some((user, password)) = login {
        assert!(loc.starts_with("/login"), "expected the login page, got {loc}");
        let html = browser.get(s.url(&loc)).send().await.unwrap().text().await.unwrap();
        let form = [
            ("req", hidden(&html, "req")),
            ("csrf", hidden(&html, "csrf")),
            ("username", user.to_owned()),
            ("password", password.to_owned()),
        ];
        let r = browser.post(s.url("/login")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login");
        loc = location(&r);
    }
    let code = query(&loc).get("code").cloned().unwrap_or_else(|| panic!("no code in {loc}"));
    (code, pkce)
}

/// Redeems a code at /token (RFC 6749 s4.1.3).
async fn redeem(s: &TestServer, rp: Rp<'_>, code: &str, pkce: &Pkce) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(rp.id, Some(rp.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", rp.redirect),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

fn jwt_claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&tongzheng::crypto::b64_decode(part).unwrap()).unwrap()
}

/// RFC 7662 s2.2 `active`, asked by the admin client (it sees every token, and is never the
/// client being blocked).
async fn active(s: &TestServer, token: &str) -> bool {
    flow::introspect_as_admin(s, token).await["active"].as_bool().unwrap()
}

async fn userinfo(s: &TestServer, access: &str) -> StatusCode {
    s.http.get(s.url("/userinfo")).bearer_auth(access).send().await.unwrap().status()
}

/// The refresh grant (RFC 6749 s6); the body is the token response or the error.
async fn refresh(s: &TestServer, rp: Rp<'_>, token: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(rp.id, Some(rp.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// An access token is dead at every endpoint that takes it.
async fn access_dead(s: &TestServer, token: &str, what: &str) {
    assert!(!active(s, token).await, "{what}: access token introspects active");
    assert_eq!(userinfo(s, token).await, StatusCode::UNAUTHORIZED, "{what}: userinfo accepts the access token");
}

/// A refresh token is dead at every endpoint that takes it (introspection first: the grant
/// would consume a live one). The refresh grant answers `invalid_grant` (RFC 6749 s5.2); a
/// blocked application's client is stopped before that, with `unauthorized_client`
/// (suspended, AY-8.5.3.2) or `invalid_client` (offline: its secrets are revoked, AY-8.6.3).
async fn refresh_dead(s: &TestServer, rp: Rp<'_>, token: &str, what: &str) {
    assert!(!active(s, token).await, "{what}: refresh token introspects active");
    refresh_refused(s, rp, token, what).await;
}

/// The refresh grant refuses the token.
async fn refresh_refused(s: &TestServer, rp: Rp<'_>, token: &str, what: &str) {
    let (status, body) = refresh(s, rp, token).await;
    let refused = matches!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant" | "unauthorized_client"))
            | (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(refused, "{what}: the refresh grant answered {status} {body}");
}

/// The offline_access pair lives on: its access token works, and its refresh token mints a
/// new pair whose access token works too.
async fn offline_alive(s: &TestServer, rp: Rp<'_>, t: &Issued, what: &str) {
    assert!(active(s, &t.offline_access).await, "{what}: the offline access token died");
    assert!(active(s, &t.offline_refresh).await, "{what}: the offline refresh token introspects inactive");
    let (status, body) = refresh(s, rp, &t.offline_refresh).await;
    assert_eq!(status, StatusCode::OK, "{what}: offline refresh refused: {body}");
    let fresh = body["access_token"].as_str().unwrap();
    assert_eq!(userinfo(s, fresh).await, StatusCode::OK, "{what}: the offline grant's new access token");
}

/// Everything the login produced is dead, offline_access included.
async fn all_dead(s: &TestServer, rp: Rp<'_>, t: &Issued, what: &str) {
    access_dead(s, &t.access, what).await;
    access_dead(s, &t.offline_access, what).await;
    refresh_dead(s, rp, &t.refresh, what).await;
    refresh_dead(s, rp, &t.offline_refresh, what).await;
}

/// Before anything happens, every token works (so "dead" below is caused by the path).
async fn all_alive(s: &TestServer, t: &Issued) {
    for token in [&t.access, &t.offline_access, &t.refresh, &t.offline_refresh] {
        assert!(active(s, token).await, "a fresh token introspects inactive");
    }
    assert_eq!(userinfo(s, &t.access).await, StatusCode::OK);
}

// DC-4, HL-5.4, OIDC Core s11, RFC 7662 s2.2: after every logout path the session's access
// and refresh tokens are dead at /introspect, /userinfo and /token; offline_access lives on.
async fn logout_paths_kill_session_tokens(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    for path in ["end_session", "backend_logout", "admin_session_delete", "admin_user_logout"] {
        let t = issue(&s, WEB, USER, PASSWORD).await;
        all_alive(&s, &t).await;
        match path {
            // RP-Initiated Logout 1.0 s2 with a matching id_token_hint: no confirmation.
            "end_session" => {
                let r = t
                    .browser
                    .get(s.url("/end_session"))
                    .query(&[("id_token_hint", t.id_token.as_str())])
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success() || r.status().is_redirection(), "{path}: {}", r.status());
            }
            // HL-5.4: the application's backend calls the platform's logout.
            "backend_logout" => {
                let r = s
                    .http
                    .post(s.url("/logout"))
                    .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
                    .form(&[("sid", t.sid.as_str())])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{path}");
            }
            "admin_session_delete" => {
                let r = call(&s, &admin, reqwest::Method::DELETE, &format!("/admin/v1/sessions/{}", t.sid), None).await;
                assert!(r.status().is_success(), "{path}: {}", r.status());
            }
            _ => {
                let r =
                    call(&s, &admin, reqwest::Method::POST, &format!("/admin/v1/users/{}/logout", t.sub), None).await;
                assert!(r.status().is_success(), "{path}: {}", r.status());
            }
        }
        access_dead(&s, &t.access, path).await;
        refresh_dead(&s, WEB, &t.refresh, path).await;
        offline_alive(&s, WEB, &t, path).await;
    }
}

// DC-4, SH-6.2.4d: a session that times out takes its tokens with it, whether or not the
// expiry is broadcast (`logout.broadcast_on_expiry`), and before the sweeper gets to it.
async fn expiry_kills_session_tokens_with_or_without_broadcast(b: Backend) {
    for broadcast in [true, false] {
        let overlay = format!("[logout]\nbroadcast_on_expiry = {broadcast}\n[tokens]\naccess_token_ttl = 86400\n");
        let s = TestServer::start_with(b, &overlay).await;
        let t = issue(&s, WEB, USER, PASSWORD).await;
        all_alive(&s, &t).await;
        // Past the idle timeout (1800 s in config/dev.toml), well within every token's life.
        s.clock.advance(1801);
        let what = format!("session expired, broadcast_on_expiry = {broadcast}");
        access_dead(&s, &t.access, &what).await;
        refresh_dead(&s, WEB, &t.refresh, &what).await;
        offline_alive(&s, WEB, &t, &what).await;
    }
}

// DC-4: disabling, deleting or changing the password of a user kills all of the user's tokens,
// offline_access ones included; re-enabling does not bring them back.
async fn account_changes_kill_every_token(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let r = call(
        &s,
        &admin,
        reqwest::Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "wang.wu", "password": "wang-wu-password-1"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let user_url = format!("/admin/v1/users/{id}");
    let put = |body: Value| call(&s, &admin, reqwest::Method::PUT, &user_url, Some(body));

    let t = issue(&s, WEB, "wang.wu", "wang-wu-password-1").await;
    all_alive(&s, &t).await;
    assert_eq!(put(json!({"password": "wang-wu-password-2"})).await.status(), StatusCode::OK);
    all_dead(&s, WEB, &t, "password changed").await;
    // A login with the new password in the same clock second works.
    let t = issue(&s, WEB, "wang.wu", "wang-wu-password-2").await;
    all_alive(&s, &t).await;

    assert_eq!(put(json!({"enabled": false})).await.status(), StatusCode::OK);
    all_dead(&s, WEB, &t, "user disabled").await;
    assert_eq!(put(json!({"enabled": true})).await.status(), StatusCode::OK);
    all_dead(&s, WEB, &t, "user disabled, then enabled again").await;

    let t = issue(&s, WEB, "wang.wu", "wang-wu-password-2").await;
    all_alive(&s, &t).await;
    assert_eq!(call(&s, &admin, reqwest::Method::DELETE, &user_url, None).await.status(), StatusCode::NO_CONTENT);
    all_dead(&s, WEB, &t, "user deleted").await;
}

/// Creates an application through its review (test user `demo`), with a refresh lifetime of
/// `refresh_ttl`, and returns its client credentials.
async fn approved_app(s: &TestServer, admin: &str, id: &str, refresh_ttl: i64) -> (String, String) {
    const REDIRECT: &str = "http://127.0.0.1:9300/cb";
    flow::catalogue_scope(s, admin, "tax.read").await;
    let mut app = crate::lifecycle::application(id, "office");
    app["grants"]["scopes"] = json!(["openid", "profile", "offline_access"]);
    app["grants"]["refresh_token_ttl"] = json!(refresh_ttl);
    app["grants"]["redirect_uris"] = json!([REDIRECT]);
    let r = call(s, admin, reqwest::Method::POST, "/admin/v1/applications", Some(app)).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    let approve = json!({"reviewer": "李审核", "decision": "approve", "evidence": office_evidence()});
    let r = call(s, admin, reqwest::Method::POST, &format!("/admin/v1/applications/{id}/reviews"), Some(approve)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let done: Value = r.json().await.unwrap();
    let secret = done["credentials"]["client_secret"].as_str().unwrap().to_owned();
    (done["credentials"]["client_id"].as_str().unwrap().to_owned(), secret)
}

async fn transition(s: &TestServer, admin: &str, id: &str, body: Value) {
    let r =
        call(s, admin, reqwest::Method::POST, &format!("/admin/v1/applications/{id}/transitions"), Some(body)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

// AY-8.5.3.2, AY-8.6.3: a suspended application's tokens, refresh and offline ones included,
// are dead at once, and its client cannot even authenticate at /introspect or /revoke;
// going offline revokes them for good.
async fn application_block_kills_every_token(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let (id, secret) = approved_app(&s, &admin, "blocked-app", 3600).await;
    let rp = Rp { id: &id, secret: &secret, redirect: "http://127.0.0.1:9300/cb" };
    let t = issue(&s, rp, USER, PASSWORD).await;
    all_alive(&s, &t).await;
    transition(&s, &admin, &id, json!({"to": "pre_release", "audience": {"users": [USER]}})).await;
    transition(&s, &admin, &id, json!({"to": "suspended", "reason": "异常调用"})).await;
    all_dead(&s, rp, &t, "application suspended").await;
    // RFC 7662 s2.1: introspection requires an authorized caller; a blocked one is not.
    for endpoint in ["/introspect", "/revoke"] {
        let r = s
            .http
            .post(s.url(endpoint))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", &t.access)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{endpoint}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client", "{endpoint}: {e}");
        assert!(e["error_description"].as_str().unwrap().contains("suspended"), "{endpoint}: {e}");
    }
    transition(&s, &admin, &id, json!({"to": "offline", "reason": "下线"})).await;
    all_dead(&s, rp, &t, "application offline").await;
}

// Issue 9 item 4: revocation must outlive what it revokes. An application's refresh lifetime
// (90 days) is longer than the platform's (30 days): after a logout its refresh token stays
// dead past the platform lifetime, on the injected clock (the memory store's TTLs follow it;
// on Redis the family record's own TTL is checked instead).
async fn revocation_outlives_a_long_refresh_lifetime(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let (id, secret) = approved_app(&s, &admin, "long-lived", 90 * 86400).await;
    let rp = Rp { id: &id, secret: &secret, redirect: "http://127.0.0.1:9300/cb" };
    let t = issue(&s, rp, USER, PASSWORD).await;
    let r = s.http.post(s.url("/revoke")).basic_auth(&id, Some(&secret)).form(&[("token", &t.offline_refresh)]);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
    let r = call(&s, &admin, reqwest::Method::DELETE, &format!("/admin/v1/sessions/{}", t.sid), None).await;
    assert!(r.status().is_success());
    // 45 days on: past the platform refresh lifetime and any marker tied to it.
    for _ in 0..45 {
        s.clock.advance(86400);
    }
    // The grant first: it once refused these only while a 30-day marker lived.
    refresh_refused(&s, rp, &t.refresh, "45 days after the logout").await;
    refresh_refused(&s, rp, &t.offline_refresh, "45 days after revocation").await;
    refresh_dead(&s, rp, &t.refresh, "45 days after the logout").await;
    refresh_dead(&s, rp, &t.offline_refresh, "45 days after revocation").await;
    if b == Backend::Redis {
        // Real time does not move on Redis: its record must be kept for the family's whole life.
        let gid = jwt_claims(&t.offline_access)["gid"].as_str().unwrap().to_owned();
        let family = tongzheng::store::keys::family(&gid);
        let client = ::redis::Client::open(crate::support::redis::shared().url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let prefix = s.state.config.store.prefix.clone();
        let ttl: i64 = ::redis::cmd("TTL").arg(format!("{prefix}{family}")).query_async(&mut conn).await.unwrap();
        assert!(ttl > 89 * 86400, "the revoked family's record expires before its tokens: TTL {ttl}");
    }
}

// RFC 9700 s4.14.2, DC-3: with the default grace window of 0, a rotated refresh token used
// again, even within the same second, mints nothing and revokes the family.
async fn refresh_reuse_revokes_the_family_in_the_same_second(b: Backend) {
    let s = TestServer::start(b).await;
    let t = issue(&s, WEB, USER, PASSWORD).await;
    let (status, next) = refresh(&s, WEB, &t.refresh).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = refresh(&s, WEB, &t.refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    refresh_dead(&s, WEB, next["refresh_token"].as_str().unwrap(), "successor after reuse").await;
    access_dead(&s, next["access_token"].as_str().unwrap(), "successor's access token after reuse").await;
    access_dead(&s, &t.access, "original access token after reuse").await;
    // Another family of the same session is untouched.
    assert!(active(&s, &t.offline_refresh).await);
}

// RFC 9700 s4.14.2: with a grace window enabled, a replay inside it is an idempotent retry: it
// returns the very successor the first use issued; after the window it is reuse.
async fn grace_window_returns_the_same_successor(b: Backend) {
    let s = TestServer::start_with(b, "[tokens]\nrefresh_grace = 30\n").await;
    let t = issue(&s, WEB, USER, PASSWORD).await;
    let (_, first) = refresh(&s, WEB, &t.refresh).await;
    s.clock.advance(10);
    let (status, retry) = refresh(&s, WEB, &t.refresh).await;
    assert_eq!(status, StatusCode::OK, "{retry}");
    assert_eq!(first["refresh_token"], retry["refresh_token"], "a retry must not branch the family");
    assert_eq!(first["access_token"], retry["access_token"]);
    assert_eq!(retry["expires_in"].as_i64().unwrap(), first["expires_in"].as_i64().unwrap() - 10);
    s.clock.advance(30);
    let (status, _) = refresh(&s, WEB, &t.refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "after the window a replay is reuse");
    refresh_dead(&s, WEB, first["refresh_token"].as_str().unwrap(), "after reuse outside the window").await;
}

// RFC 6749 s4.1.2, RFC 9700 s4.5: a replayed code is refused and revokes what the first
// redemption issued, for as long as that can live: here an application whose refresh lifetime
// (90 days) is longer than the platform's (30 days).
async fn code_replay_revokes_what_the_code_issued(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let (id, secret) = approved_app(&s, &admin, "replayed", 90 * 86400).await;
    let rp = Rp { id: &id, secret: &secret, redirect: "http://127.0.0.1:9300/cb" };
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (code, pkce) = authorization_code(&s, &browser, rp, "openid offline_access", Some((USER, PASSWORD))).await;
    let (status, tokens) = redeem(&s, rp, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = redeem(&s, rp, &code, &pkce).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let rt = tokens["refresh_token"].as_str().unwrap();
    access_dead(&s, tokens["access_token"].as_str().unwrap(), "after code replay").await;
    // Introspection only: a refused refresh grant would mark the token used, and that mark
    // would refuse it later for another reason.
    assert!(!active(&s, rt).await, "after code replay: the refresh token introspects active");
    // 45 days on: past the platform refresh lifetime, within the application's.
    for _ in 0..45 {
        s.clock.advance(86400);
    }
    refresh_refused(&s, rp, rt, "45 days after code replay").await;
}

// RFC 7009 s2.1: the hint is only a hint. Whatever it says, the token is found and revoked.
async fn revoke_finds_tokens_whatever_the_hint(b: Backend) {
    let s = TestServer::start(b).await;
    for hint in ["refresh_token", "access_token", "no_such_type"] {
        let t = issue(&s, WEB, USER, PASSWORD).await;
        for token in [&t.access, &t.refresh] {
            let r = s
                .http
                .post(s.url("/revoke"))
                .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
                .form(&[("token", token.as_str()), ("token_type_hint", hint)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "hint {hint}");
            assert!(!active(&s, token).await, "hint {hint}: the token is still active");
        }
    }
}
