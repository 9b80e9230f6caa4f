//! Single logout (DC-4, GB-6.4d, HL-5.4): RP-initiated logout, the durable back-channel
//! broadcast with retries, front-channel iframes, the server-to-server logout API, admin and
//! account-change logouts, expiry broadcast, and token revocation when a session ends.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{self, location, query};
use crate::support::receiver::{Mode, Receivers};
use crate::support::server::*;

struct Rp {
    id: String,
    secret: String,
    redirect: String,
}

async fn add_rp(s: &TestServer, admin: &str, name: &str, r: &Receivers, frontchannel: bool) -> Rp {
    let id = format!("rp-{name}");
    let redirect = format!("http://127.0.0.1:9000/cb/{name}");
    let mut body = json!({
        "client_id": id, "client_name": name, "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"], "scope": "openid offline_access",
        "backchannel_logout_uri": r.uri(name), "backchannel_logout_session_required": true,
        "post_logout_redirect_uris": [format!("http://127.0.0.1:9000/bye/{name}")],
    });
    if frontchannel {
        body["frontchannel_logout_uri"] = json!(format!("http://127.0.0.1:9000/fc/{name}"));
        body["frontchannel_logout_session_required"] = json!(true);
    }
    let resp = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    Rp { id, secret: v["client_secret"].as_str().unwrap().to_owned(), redirect }
}

/// The browser (already logged in) visits the RP: SSO returns a code; the RP redeems it.
async fn reach(s: &TestServer, rp: &Rp, scope: &str) -> Value {
    let r = flow::authorize(
        s,
        &[("response_type", "code"), ("client_id", &rp.id), ("redirect_uri", &rp.redirect), ("scope", scope)],
    )
    .await;
    let q = query(&location(&r));
    let code = q.get("code").unwrap_or_else(|| panic!("SSO code for {}: {q:?}", rp.id));
    let resp = s
        .http
        .post(s.url("/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &rp.redirect)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// Back-Channel Logout s2.4 and s2.6: what a receiver must check.
fn check_logout_token(s: &TestServer, token: &str, aud: &str, sid: &str) {
    let (c, typ): (Value, _) = s.state.keys.verify(token).expect("signed with a key in our JWKS");
    assert_eq!(typ.as_deref(), Some("logout+jwt"));
    assert_eq!(c["iss"], s.base);
    assert_eq!(c["aud"], aud);
    assert_eq!(c["sid"], sid);
    assert!(c["sub"].is_string() && c["jti"].is_string() && c["iat"].is_i64() && c["exp"].is_i64());
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(c.get("nonce").is_none(), "s2.4: a logout token never has a nonce");
}

fn sid_of(tokens: &Value) -> String {
    let at = tokens["access_token"].as_str().unwrap();
    let part = at.split('.').nth(1).unwrap();
    let c: Value = serde_json::from_slice(&tongzheng::crypto::b64_decode(part).unwrap()).unwrap();
    c["sid"].as_str().unwrap().to_owned()
}

async fn introspect_active(s: &TestServer, rp: &Rp, token: &str) -> bool {
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["active"] == true
}

async fn refresh_status(s: &TestServer, rp: &Rp, rt: &str) -> StatusCode {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    r.status()
}

per_backend!(
    rp_initiated_logout_reaches_every_client,
    failed_delivery_is_retried,
    hung_receiver_does_not_delay_others,
    backend_logout_hl_5_4
);
// Logout with back-channel delivery through the outbox queue, on a Redis Cluster too.
on_cluster!(rp_initiated_logout_reaches_every_client, backend_logout_hl_5_4);

// RP-Initiated Logout s2-s3 + Back-Channel Logout s2.5: logout at A reaches B and C.
async fn rp_initiated_logout_reaches_every_client(b: Backend) {
    let s = TestServer::start(b).await;
    let r = Receivers::start().await;
    let admin = flow::admin_token(&s).await;
    let (a, bb, c) = (
        add_rp(&s, &admin, "a", &r, false).await,
        add_rp(&s, &admin, "b", &r, false).await,
        add_rp(&s, &admin, "c", &r, true).await,
    );
    let _ = flow::web_code(&s, "openid").await; // log in once
    let ta = reach(&s, &a, "openid").await;
    let tb = reach(&s, &bb, "openid").await;
    let tc_offline = reach(&s, &c, "openid offline_access").await;
    let sid = sid_of(&ta);
    let id_token = ta["id_token"].as_str().unwrap();
    let resp = s
        .browser
        .get(s.url("/end_session"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "http://127.0.0.1:9000/bye/a"),
            ("state", "bye1"),
        ])
        .send()
        .await
        .unwrap();
    // C registered front-channel logout: the page renders its iframe with iss and sid, then continues.
    assert_eq!(resp.status(), StatusCode::OK);
    let cleared = resp.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().starts_with("tz_session=;"));
    assert!(cleared, "session cookie cleared");
    let html = resp.text().await.unwrap();
    assert!(html.contains("http://127.0.0.1:9000/fc/c?iss="), "{html}");
    assert!(
        html.contains(&format!("sid={sid}")) || html.contains(&format!("sid={}", sid.replace('-', "%2D"))),
        "{html}"
    );
    assert!(html.contains("href=\"http://127.0.0.1:9000/bye/a?state=bye1\""), "{html}");
    // Every client the session reached gets a valid logout token.
    r.wait_for(10, "deliveries to a, b and c", |r| ["a", "b", "c"].iter().all(|n| r.accepted(n).len() == 1)).await;
    for (rp, n) in [(&a, "a"), (&bb, "b"), (&c, "c")] {
        check_logout_token(&s, &r.accepted(n)[0], &rp.id, &sid);
    }
    // Tokens issued under the session die with it, except offline_access refresh tokens.
    assert!(!introspect_active(&s, &bb, tb["access_token"].as_str().unwrap()).await);
    assert_eq!(refresh_status(&s, &bb, tb["refresh_token"].as_str().unwrap()).await, StatusCode::BAD_REQUEST);
    let ur = s.http.get(s.url("/userinfo")).bearer_auth(ta["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(ur.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh_status(&s, &c, tc_offline["refresh_token"].as_str().unwrap()).await,
        StatusCode::OK,
        "offline_access survives"
    );
    // prompt=none after logout: login_required for every client.
    for rp in [&a, &bb, &c] {
        let q = flow::prompt_none(&s, &rp.id, &rp.redirect).await;
        assert_eq!(q["error"], "login_required");
    }
    // Delivery status is visible to admins.
    let d: Value = s
        .http
        .get(s.url("/admin/v1/logout/deliveries"))
        .query(&[("sid", &sid)])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = d["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|d| d["state"] == "delivered" && d["attempts"] == 1), "{d}");
}

// Back-Channel Logout s2.5 + DC-4: a receiver that answers 500 then 200 gets a retry.
async fn failed_delivery_is_retried(b: Backend) {
    let s = TestServer::start(b).await;
    let r = Receivers::start().await;
    let admin = flow::admin_token(&s).await;
    let a = add_rp(&s, &admin, "flaky", &r, false).await;
    r.set("flaky", Mode::FailOnce);
    let _ = flow::web_code(&s, "openid").await;
    let t = reach(&s, &a, "openid").await;
    let sid = sid_of(&t);
    let resp = s.http.delete(s.url(&format!("/admin/v1/sessions/{sid}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ended: Value = resp.json().await.unwrap();
    let delivery = ended["notified"][0]["delivery_id"].as_str().unwrap().to_owned();
    r.wait_for(10, "first attempt", |r| r.arrivals("flaky") == 1).await;
    let status = |s: &TestServer| {
        let url = s.url(&format!("/admin/v1/logout/deliveries/{delivery}"));
        let (http, admin) = (s.http.clone(), admin.clone());
        async move { http.get(url).bearer_auth(admin).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Wait until the failure is recorded, then move the clock past the backoff.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let d = status(&s).await;
        if d["attempts"] == 1 {
            assert_eq!(d["state"], "pending");
            assert!(d["last_error"].as_str().unwrap().contains("500"), "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    s.clock.advance(2);
    r.wait_for(10, "the retry", |r| r.accepted("flaky").len() == 1).await;
    check_logout_token(&s, &r.accepted("flaky")[0], &a.id, &sid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status(&s).await["state"] != "delivered" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status(&s).await["attempts"], 2);
}

// One slow or dead application never delays the others: deliveries run concurrently, each
// bounded by the attempt timeout.
async fn hung_receiver_does_not_delay_others(b: Backend) {
    let s = TestServer::start_with(b, "[logout]\nattempt_timeout_ms = 20000\nlease = 60\n").await;
    let r = Receivers::start().await;
    let admin = flow::admin_token(&s).await;
    let slow = add_rp(&s, &admin, "slow", &r, false).await;
    let fast1 = add_rp(&s, &admin, "fast1", &r, false).await;
    let fast2 = add_rp(&s, &admin, "fast2", &r, false).await;
    r.set("slow", Mode::Hang);
    let _ = flow::web_code(&s, "openid").await;
    let t = reach(&s, &slow, "openid").await;
    reach(&s, &fast1, "openid").await;
    reach(&s, &fast2, "openid").await;
    let sid = sid_of(&t);
    s.http.delete(s.url(&format!("/admin/v1/sessions/{sid}"))).bearer_auth(&admin).send().await.unwrap();
    // The fast receivers are served while the slow one is still hanging (its attempt has a
    // 20 s timeout, far longer than this wait could take if the fast ones were queued behind it).
    r.wait_for(10, "the fast receivers", |r| r.accepted("fast1").len() == 1 && r.accepted("fast2").len() == 1).await;
    assert_eq!(r.arrivals("slow"), 1, "the slow receiver was contacted");
    assert!(r.accepted("slow").is_empty(), "and is still hanging");
}

// HL-5.4: an app backend logs the user out; every *other* application is notified.
async fn backend_logout_hl_5_4(b: Backend) {
    let s = TestServer::start(b).await;
    let r = Receivers::start().await;
    let admin = flow::admin_token(&s).await;
    let (a, bb, other) = (
        add_rp(&s, &admin, "ha", &r, false).await,
        add_rp(&s, &admin, "hb", &r, false).await,
        add_rp(&s, &admin, "hx", &r, false).await,
    );
    let _ = flow::web_code(&s, "openid").await;
    let ta = reach(&s, &a, "openid").await;
    reach(&s, &bb, "openid").await;
    let sid = sid_of(&ta);
    // A client the session never reached may not end it.
    let resp = s
        .http
        .post(s.url("/logout"))
        .basic_auth(&other.id, Some(&other.secret))
        .form(&[("sid", sid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "access_denied");
    // Unauthenticated: invalid_client.
    let resp = s.http.post(s.url("/logout")).form(&[("sid", sid.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A's backend logs out by sid.
    let resp = s
        .http
        .post(s.url("/logout"))
        .basic_auth(&a.id, Some(&a.secret))
        .form(&[("sid", sid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["sessions_ended"][0]["sid"], sid);
    let notified: Vec<&str> = v["sessions_ended"][0]["notified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(notified, vec![bb.id.as_str()], "the caller is not notified of its own logout");
    r.wait_for(10, "delivery to hb", |r| r.accepted("hb").len() == 1).await;
    assert!(r.accepted("ha").is_empty());
    // By subject (logout_hint): every session of the user that reached the caller.
    let _ = flow::web_code(&s, "openid").await;
    let t2 = reach(&s, &a, "openid").await;
    let sub = t2["id_token"].as_str().map(|t| {
        let c: Value =
            serde_json::from_slice(&tongzheng::crypto::b64_decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap();
        c["sub"].as_str().unwrap().to_owned()
    });
    let resp = s
        .http
        .post(s.url("/logout"))
        .basic_auth(&a.id, Some(&a.secret))
        .form(&[("logout_hint", sub.unwrap().as_str())])
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["sessions_ended"].as_array().unwrap().len(), 1, "{v}");
    // Exactly one selector.
    let resp = s
        .http
        .post(s.url("/logout"))
        .basic_auth(&a.id, Some(&a.secret))
        .form(&[("sid", "x"), ("logout_hint", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_request");
}

// SH-7.2 + Back-Channel durability: instance A dies with deliveries in flight; B, on the same
// Redis, picks them up when the lease runs out and delivers them all.
#[tokio::test]
async fn pending_deliveries_survive_instance_death() {
    let redis = crate::support::redis::shared();
    let prefix = crate::support::redis::unique_prefix();
    let issuer = "issuer = \"https://id.example.test\"\n[logout]\nattempt_timeout_ms = 20000\nlease = 30\n";
    let a = TestServer::start_on_redis(&redis.url(), &prefix, issuer).await;
    let r = Receivers::start().await;
    let admin = flow::admin_token(&a).await;
    let mut rps = Vec::new();
    for i in 0..5 {
        let name = format!("d{i}");
        r.set(&name, Mode::Hang);
        rps.push(add_rp(&a, &admin, &name, &r, false).await);
    }
    let _ = flow::web_code(&a, "openid").await;
    let mut sid = String::new();
    for rp in &rps {
        sid = sid_of(&reach(&a, rp, "openid").await);
    }
    a.http.delete(a.url(&format!("/admin/v1/sessions/{sid}"))).bearer_auth(&admin).send().await.unwrap();
    r.wait_for(10, "A's attempts in flight", |r| (0..5).all(|i| r.arrivals(&format!("d{i}")) == 1)).await;
    let started_at = a.clock.now();
    drop(a); // the instance dies mid-delivery
    for i in 0..5 {
        r.set(&format!("d{i}"), Mode::Ok);
    }
    let b = TestServer::start_on_redis(&redis.url(), &prefix, issuer).await;
    b.clock.advance(b.clock.now() - started_at + 31); // past A's leases
    r.wait_for(15, "B to deliver every pending logout", |r| (0..5).all(|i| r.accepted(&format!("d{i}")).len() == 1))
        .await;
}

// DC-4: password change, disabling and admin "log out everywhere" broadcast too.
#[tokio::test]
async fn account_changes_end_sessions() {
    let s = TestServer::start(Backend::Memory).await;
    let r = Receivers::start().await;
    let admin = flow::admin_token(&s).await;
    let a = add_rp(&s, &admin, "acct", &r, false).await;
    let _ = flow::web_code(&s, "openid").await;
    let t = reach(&s, &a, "openid").await;
    let sub = {
        let c: Value = serde_json::from_slice(
            &tongzheng::crypto::b64_decode(t["id_token"].as_str().unwrap().split('.').nth(1).unwrap()).unwrap(),
        )
        .unwrap();
        c["sub"].as_str().unwrap().to_owned()
    };
    let sessions: Value = s
        .http
        .get(s.url(&format!("/admin/v1/users/{sub}/sessions")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    let resp = s
        .http
        .put(s.url(&format!("/admin/v1/users/{sub}")))
        .bearer_auth(&admin)
        .json(&json!({"password": "a-new-password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    r.wait_for(10, "logout after password change", |r| r.accepted("acct").len() == 1).await;
    let sessions: Value = s
        .http
        .get(s.url(&format!("/admin/v1/users/{sub}/sessions")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sessions["sessions"].as_array().unwrap().is_empty());
}

// DC-4: a session that times out is a logout as well (broadcast_on_expiry, on by default).
#[tokio::test]
async fn expiry_is_broadcast() {
    let s = TestServer::start_with(Backend::Redis, "[logout]\nsweep_ms = 50\n").await;
    let r = Receivers::start().await;
    let admin = flow::admin_token(&s).await;
    let a = add_rp(&s, &admin, "exp", &r, false).await;
    let _ = flow::web_code(&s, "openid").await;
    let t = reach(&s, &a, "openid").await;
    s.clock.advance(1801); // past the 30 min idle timeout
    r.wait_for(10, "expiry logout", |r| r.accepted("exp").len() == 1).await;
    check_logout_token(&s, &r.accepted("exp")[0], &a.id, &sid_of(&t));
}

// RP-Initiated Logout s2: without a valid hint the user confirms on a CSRF-protected page.
#[tokio::test]
async fn logout_without_hint_asks_first() {
    let s = TestServer::start(Backend::Memory).await;
    let _ = flow::web_code(&s, "openid").await;
    let page = s.browser.get(s.url("/end_session")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let (req, csrf) = (flow::hidden(&html, "req"), flow::hidden(&html, "csrf"));
    // A forged form (wrong csrf) changes nothing.
    let bad = s
        .browser
        .post(s.url("/end_session/confirm"))
        .form(&[("req", req.as_str()), ("csrf", "forged"), ("decision", "logout")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
    let q = flow::prompt_none(&s, WEB_CLIENT, WEB_REDIRECT).await;
    assert!(q.contains_key("code"), "still logged in");
    let ok = s
        .browser
        .post(s.url("/end_session/confirm"))
        .form(&[("req", req.as_str()), ("csrf", csrf.as_str()), ("decision", "logout")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let q = flow::prompt_none(&s, WEB_CLIENT, WEB_REDIRECT).await;
    assert_eq!(q["error"], "login_required");
    // An unregistered post_logout_redirect_uri is never followed (RP-Initiated Logout s3).
    let r = s
        .browser
        .get(s.url("/end_session"))
        .query(&[("client_id", WEB_CLIENT), ("post_logout_redirect_uri", "https://evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(location(&r).is_empty());
}

// RP-Initiated Logout 1.0 s2: an id_token_hint proves the request only for the session it was
// issued in. A hint from an older session of the same user is no proof: the user is asked, and
// the current session lives on until they confirm.
#[tokio::test]
async fn hint_of_an_older_session_asks_first() {
    let s = TestServer::start(Backend::Memory).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let old = flow::redeem(&s, &code, &pkce).await.1["id_token"].as_str().unwrap().to_owned();
    let r = s.browser.get(s.url("/end_session")).query(&[("id_token_hint", old.as_str())]).send().await.unwrap();
    assert!(r.status().is_success(), "the hint of the current session logs out at once");
    assert_eq!(flow::prompt_none(&s, WEB_CLIENT, WEB_REDIRECT).await["error"], "login_required");
    // A new login: a new session. The old session's hint no longer ends anything by itself.
    let _ = flow::web_code(&s, "openid").await;
    let page = s.browser.get(s.url("/end_session")).query(&[("id_token_hint", old.as_str())]).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"csrf\""), "the confirmation page: {html}");
    assert!(flow::prompt_none(&s, WEB_CLIENT, WEB_REDIRECT).await.contains_key("code"), "still logged in");
}
