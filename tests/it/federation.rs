//! Trust across platforms (DC-5, GB-6.4c, GB-6.4d, AY-6, GB-5.2): three tongzheng instances in
//! one process, national <- province <- city, each with its own store and keys, on their own
//! loopback addresses (so a browser keeps their cookies apart), talking over HTTP.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{Pkce, hidden};
use crate::support::receiver::Receivers;
use crate::support::server::*;

per_backend!(silent_login_and_logout_both_ways, trust_loop_does_not_ping_pong, disabled_trust_stops_at_once);

/// An RP's redirect URI: nothing listens there; the test reads the code off the redirect.
fn rp_redirect(platform: &str) -> String {
    format!("http://127.0.0.1:9400/{platform}/cb")
}

pub async fn admin(s: &TestServer) -> String {
    crate::support::flow::admin_token(s).await
}

async fn post_json(s: &TestServer, token: &str, path: &str, body: Value) -> Value {
    let r = s.http.post(s.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// `lower` trusts `upper`: a client for `lower` at `upper` (code flow back to `lower`, back-channel
/// logout to `lower`), the downstream trust at `upper`, the upstream trust at `lower`.
pub async fn trust(upper: &TestServer, upper_id: &str, lower: &TestServer, lower_id: &str) {
    let (ua, la) = (admin(upper).await, admin(lower).await);
    let client_id = format!("{lower_id}-platform");
    let client = post_json(
        upper,
        &ua,
        "/admin/v1/clients",
        json!({
            "client_id": client_id, "client_name": format!("{lower_id} platform"),
            "redirect_uris": [lower.url("/federation/callback")], "grant_types": ["authorization_code"],
            "scope": "openid profile", "backchannel_logout_uri": lower.url("/federation/backchannel-logout"),
            "backchannel_logout_session_required": true
        }),
    )
    .await;
    let secret = client["client_secret"].as_str().unwrap();
    post_json(
        upper,
        &ua,
        "/admin/v1/trusts",
        json!({"id": format!("{lower_id}-dn"), "role": "downstream", "issuer": lower.base, "name": lower_id, "client_id": client_id}),
    )
    .await;
    post_json(
        lower,
        &la,
        "/admin/v1/trusts",
        json!({"id": upper_id, "role": "upstream", "issuer": upper.base, "name": format!("{upper_id} 平台"),
               "name_en": upper_id, "client_id": client_id, "client_secret": secret, "create_accounts": true,
               "accept_claims": ["name"], "min_acr": "1"}),
    )
    .await;
}

/// A relying party at `s` whose back-channel logouts land at receiver `name`.
pub async fn rp(s: &TestServer, name: &str, rx: &Receivers) {
    let a = admin(s).await;
    post_json(
        s,
        &a,
        "/admin/v1/clients",
        json!({"client_id": "web-rp", "redirect_uris": [rp_redirect(name)], "grant_types": ["authorization_code"],
               "token_endpoint_auth_method": "none", "scope": "openid profile",
               "backchannel_logout_uri": rx.uri(name), "backchannel_logout_session_required": true}),
    )
    .await;
}

/// Where a walk through the redirects ended.
#[derive(Debug)]
pub enum Landed {
    /// A login form at this URL.
    Form { url: String, html: String },
    /// Back at the relying party with these parameters.
    Rp(HashMap<String, String>),
}

/// Follows redirects across platforms like a browser (at most 20 hops, so a loop fails).
pub async fn walk(browser: &reqwest::Client, start: &str) -> (Landed, Vec<String>) {
    let mut url = url::Url::parse(start).unwrap();
    let mut hops = vec![url.to_string()];
    for _ in 0..20 {
        let r = browser.get(url.clone()).send().await.unwrap();
        if r.status() == StatusCode::SEE_OTHER || r.status() == StatusCode::FOUND {
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            url = url.join(&loc).unwrap();
            hops.push(url.to_string());
            if url.port() == Some(9400) {
                let q = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                return (Landed::Rp(q), hops);
            }
            continue;
        }
        let status = r.status();
        let html = r.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{url}: {html}");
        return (Landed::Form { url: url.to_string(), html }, hops);
    }
    panic!("more than 20 redirects: {hops:#?}");
}

/// An authorization request of the public RP at `s`.
pub fn authorize_url(s: &TestServer, platform: &str, extra: &[(&str, &str)]) -> String {
    let pkce = Pkce::new();
    let mut u = url::Url::parse(&s.url("/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "web-rp")
        .append_pair("redirect_uri", &rp_redirect(platform))
        .append_pair("scope", "openid profile")
        .append_pair("state", platform)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.into()
}

/// Submits the password form found by [`walk`] and walks on.
pub async fn submit(browser: &reqwest::Client, form_url: &str, html: &str) -> (Landed, Vec<String>) {
    let action = url::Url::parse(form_url).unwrap().join("/login").unwrap();
    let form = [
        ("req", hidden(html, "req")),
        ("csrf", hidden(html, "csrf")),
        ("username", USER.into()),
        ("password", PASSWORD.into()),
    ];
    let r = browser.post(action.clone()).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login at {action}");
    let next = action.join(r.headers()["location"].to_str().unwrap()).unwrap();
    walk(browser, next.as_str()).await
}

/// The "log in with <upstream>" link on a login form.
pub fn upstream_link(form_url: &str, html: &str) -> String {
    let start = html.find("class=\"upstream\" href=\"").unwrap_or_else(|| panic!("no upstream link: {html}")) + 23;
    let end = html[start..].find('"').unwrap() + start;
    url::Url::parse(form_url).unwrap().join(&html[start..end].replace("&amp;", "&")).unwrap().into()
}

/// Logs the browser out at `s` through RP-Initiated Logout's confirmation page; the answer to
/// the confirmation.
async fn log_out_at(browser: &reqwest::Client, s: &TestServer) -> reqwest::Response {
    let (landed, _) = walk(browser, &s.url("/end_session")).await;
    let Landed::Form { url, html } = landed else { panic!("expected the confirmation page at {}", s.base) };
    let confirm = url::Url::parse(&url).unwrap().join("/end_session/confirm").unwrap();
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "logout".to_owned())];
    browser.post(confirm).form(&form).send().await.unwrap()
}

/// A user's live sessions at `s`, through the admin API.
async fn sessions_of(s: &TestServer, admin: &str, sub: &str) -> Value {
    let url = s.url(&format!("/admin/v1/users/{sub}/sessions"));
    s.http.get(url).bearer_auth(admin).send().await.unwrap().json().await.unwrap()
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A logout token the receiver got, checked against the platform's JWKS (Back-Channel Logout
/// s2.4): its issuer, audience, event, sid, no nonce.
async fn valid_logout_token(s: &TestServer, token: &str) -> Value {
    let jwks: tongzheng::jwt::JwkSet = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let parsed = tongzheng::jwt::Unverified::parse(token).unwrap();
    assert_eq!(parsed.header.typ.as_deref(), Some("logout+jwt"));
    let key = jwks
        .keys
        .iter()
        .find(|k| k.kid == parsed.header.kid)
        .and_then(tongzheng::jwt::VerifyKey::from_jwk)
        .expect("the signing key is in the platform's JWKS");
    let claims: Value = parsed.verify(&key).expect("signature");
    assert_eq!(claims["iss"], s.base);
    assert_eq!(claims["aud"], "web-rp");
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims["sid"].is_string() && claims.get("nonce").is_none());
    claims
}

struct Three {
    national: TestServer,
    province: TestServer,
    city: TestServer,
    rx: Receivers,
}

async fn three(b: Backend) -> Three {
    let national = TestServer::start_platform(b, "127.0.0.1", "").await;
    let province = TestServer::start_platform(b, "127.0.0.2", "").await;
    let city = TestServer::start_platform(b, "127.0.0.3", "").await;
    trust(&national, "national", &province, "province").await;
    trust(&province, "province", &city, "city").await;
    let rx = Receivers::start().await;
    for (s, name) in [(&national, "national"), (&province, "province"), (&city, "city")] {
        rp(s, name, &rx).await;
    }
    Three { national, province, city, rx }
}

/// GB-6.4c: one login (at the national platform, reached through the city's and the
/// province's "log in with" links) serves every platform; the next RP gets in silently.
async fn login_everywhere(p: &Three, browser: &reqwest::Client) -> String {
    // The city RP: no session anywhere; the silent chain (city -> province -> national) comes
    // back login_required and the city shows its form, with a link to the province.
    let (landed, hops) = walk(browser, &authorize_url(&p.city, "city", &[])).await;
    let Landed::Form { url, html } = landed else { panic!("expected the city's form: {hops:#?}") };
    assert!(url.starts_with(&p.city.base), "{url}");
    assert!(
        hops.iter().any(|h| h.starts_with(&p.national.base)),
        "the silent try reached the national platform: {hops:#?}"
    );
    assert!(hops.iter().any(|h| h.contains("prompt=none")), "{hops:#?}");
    let (landed, _) = walk(browser, &upstream_link(&url, &html)).await;
    let Landed::Form { url, html } = landed else { panic!("expected the province's form") };
    assert!(url.starts_with(&p.province.base), "{url}");
    let (landed, _) = walk(browser, &upstream_link(&url, &html)).await;
    let Landed::Form { url, html } = landed else { panic!("expected the national form") };
    assert!(url.starts_with(&p.national.base), "{url}");
    let (landed, hops) = submit(browser, &url, &html).await;
    let Landed::Rp(q) = landed else { panic!("expected the city RP: {hops:#?}") };
    assert_eq!(q.get("state").map(String::as_str), Some("city"), "{q:?}");
    assert!(q.contains_key("code"), "{q:?}");
    // The province RP: no form at all (the province has a session now).
    let (landed, hops) = walk(browser, &authorize_url(&p.province, "province", &[])).await;
    let Landed::Rp(q) = landed else { panic!("the province showed a form: {hops:#?}") };
    assert!(q.contains_key("code"), "{q:?}");
    // The national RP: the same.
    let (landed, _) = walk(browser, &authorize_url(&p.national, "national", &[])).await;
    assert!(matches!(landed, Landed::Rp(ref q) if q.contains_key("code")), "{landed:?}");
    q["code"].clone()
}

async fn silent_login_and_logout_both_ways(b: Backend) {
    let p = three(b).await;
    let browser = browser();
    login_everywhere(&p, &browser).await;

    // A second browser at the city RP with prompt=none: no session anywhere -> login_required
    // (only because the upstreams have none either, OIDC Core s3.1.2.6).
    let (landed, hops) =
        walk(&crate::federation::browser(), &authorize_url(&p.city, "city", &[("prompt", "none")])).await;
    let Landed::Rp(q) = landed else { panic!("{hops:#?}") };
    assert_eq!(q.get("error").map(String::as_str), Some("login_required"), "{q:?}");
    // The same browser as the user, prompt=none at a fresh city RP request: a code, no form.
    let (landed, _) = walk(&browser, &authorize_url(&p.city, "city", &[("prompt", "none")])).await;
    assert!(matches!(landed, Landed::Rp(ref q) if q.contains_key("code")), "{landed:?}");

    // GB-6.4d: log out at the province. The province RP, the city RP (down, through the
    // city's back-channel receiver) and the national RP (up, through HL-5.4) are told.
    let r = log_out_at(&browser, &p.province).await;
    assert!(r.status().is_success() || r.status() == StatusCode::SEE_OTHER, "{}", r.status());
    p.rx.wait_for(10, "the three RPs' logout tokens", |r| {
        !r.accepted("province").is_empty() && !r.accepted("city").is_empty() && !r.accepted("national").is_empty()
    })
    .await;
    for (s, name) in [(&p.province, "province"), (&p.city, "city"), (&p.national, "national")] {
        let tokens = p.rx.accepted(name);
        assert_eq!(tokens.len(), 1, "{name} told once");
        valid_logout_token(s, &tokens[0]).await;
    }
    // Everyone is logged out: prompt=none at each platform is login_required.
    for (s, name) in [(&p.city, "city"), (&p.province, "province"), (&p.national, "national")] {
        let (landed, _) = walk(&browser, &authorize_url(s, name, &[("prompt", "none")])).await;
        assert!(
            matches!(landed, Landed::Rp(ref q) if q.get("error").map(String::as_str) == Some("login_required")),
            "{name}: {landed:?}"
        );
    }

    // Log in again, then log out at the city: the province's and national RPs are told (up).
    login_everywhere(&p, &browser).await;
    let before = |n: &str| p.rx.accepted(n).len();
    let (pb, nb, cb) = (before("province"), before("national"), before("city"));
    log_out_at(&browser, &p.city).await;
    p.rx.wait_for(10, "the upstream RPs' logout tokens", |r| {
        r.accepted("province").len() == pb + 1
            && r.accepted("national").len() == nb + 1
            && r.accepted("city").len() == cb + 1
    })
    .await;
    // The tokens name the upstream platforms' own sessions.
    let province_token = valid_logout_token(&p.province, p.rx.accepted("province").last().unwrap()).await;
    let national_token = valid_logout_token(&p.national, p.rx.accepted("national").last().unwrap()).await;
    assert_ne!(province_token["sid"], national_token["sid"]);
    // Audited with the origin platform (the admin API's audit log at the province).
    p.province.state.audit.flush().await;
    let text: String = std::fs::read_dir(&p.province.state.config.audit.dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(
        text.contains("\"kind\":\"federation\"") && text.contains(&format!("platform:{}", p.national.base)),
        "federation events audited with their platform"
    );
}

/// A trusts B and B trusts A: silent login tries each hop once and never comes back; a logout
/// is told to each platform once.
async fn trust_loop_does_not_ping_pong(b: Backend) {
    let a = TestServer::start_platform(b, "127.0.0.4", "").await;
    let bb = TestServer::start_platform(b, "127.0.0.5", "").await;
    trust(&a, "pa", &bb, "pb").await;
    trust(&bb, "pb", &a, "pa").await;
    let rx = Receivers::start().await;
    rp(&a, "a", &rx).await;
    rp(&bb, "b", &rx).await;
    let browser = browser();
    // No session anywhere: A -> B (prompt=none, path A) -> back to A (B does not forward to A)
    // -> A's form. Bounded, no loop.
    let (landed, hops) = walk(&browser, &authorize_url(&a, "a", &[])).await;
    let Landed::Form { url, html } = landed else { panic!("{hops:#?}") };
    assert!(url.starts_with(&a.base), "{url}");
    assert_eq!(hops.iter().filter(|h| h.starts_with(&bb.url("/authorize"))).count(), 1, "B asked once: {hops:#?}");
    // The form at A links to B; log in at B (B's form), come back logged in at A.
    let (landed, _) = walk(&browser, &upstream_link(&url, &html)).await;
    let Landed::Form { url, html } = landed else { panic!("expected B's form") };
    assert!(url.starts_with(&bb.base), "{url}");
    assert!(!html.contains("class=\"upstream\""), "B does not offer A back for a request from A: {html}");
    let (landed, _) = submit(&browser, &url, &html).await;
    assert!(matches!(landed, Landed::Rp(ref q) if q.contains_key("code")), "{landed:?}");
    let (landed, _) = walk(&browser, &authorize_url(&bb, "b", &[])).await;
    assert!(matches!(landed, Landed::Rp(ref q) if q.contains_key("code")), "{landed:?}");
    // Logout at A: B is told once (HL-5.4), B's RP once, A's RP once; nothing comes back.
    log_out_at(&browser, &a).await;
    rx.wait_for(10, "both RPs told", |r| r.accepted("a").len() == 1 && r.accepted("b").len() == 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!((rx.arrivals("a"), rx.arrivals("b")), (1, 1), "each RP told exactly once");
    for s in [&a, &bb] {
        let admin = admin(s).await;
        let users: Value =
            s.http.get(s.url("/admin/v1/users")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        for u in users["users"].as_array().unwrap() {
            let sessions = sessions_of(s, &admin, u["id"].as_str().unwrap()).await;
            assert_eq!(sessions["sessions"], json!([]), "a session survived at {}", s.base);
        }
    }
}

/// Disabling a trust stops silent login and inbound logout at once.
async fn disabled_trust_stops_at_once(b: Backend) {
    let p = three(b).await;
    let ca = admin(&p.city).await;
    let r = p
        .city
        .http
        .put(p.city.url("/admin/v1/trusts/province"))
        .bearer_auth(&ca)
        .json(&json!({"role": "upstream", "issuer": p.province.base, "name": "province", "client_id": "city-platform", "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let trust: Value = r.json().await.unwrap();
    assert_eq!((trust["enabled"].as_bool(), trust["has_client_secret"].as_bool()), (Some(false), Some(true)));
    // No redirect to the province; the city's form without the province link.
    let (landed, hops) = walk(&browser(), &authorize_url(&p.city, "city", &[])).await;
    let Landed::Form { url, html } = landed else { panic!("{hops:#?}") };
    assert!(url.starts_with(&p.city.base) && hops.iter().all(|h| !h.starts_with(&p.province.base)), "{hops:#?}");
    assert!(!html.contains("class=\"upstream\""), "{html}");
    // prompt=none: login_required at once.
    let (landed, hops) = walk(&browser(), &authorize_url(&p.city, "city", &[("prompt", "none")])).await;
    assert!(
        matches!(landed, Landed::Rp(ref q) if q.get("error").map(String::as_str) == Some("login_required")),
        "{hops:#?}"
    );
    assert_eq!(hops.len(), 2, "{hops:#?}");
    // The "log in with" link itself is refused.
    let r = browser().get(p.city.url("/federation/province/login?req=x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An inbound logout token claiming to come from the province is refused (s2.8: 400).
    let r = p
        .city
        .http
        .post(p.city.url("/federation/backchannel-logout"))
        .form(&[("logout_token", "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

// GB-6.4a: a user registered at the city is pushed to the province (no password) and linked;
// when the person later arrives from the province, it is the city's same account.
#[tokio::test]
async fn registration_sync_links_accounts() {
    let province = TestServer::start_platform(Backend::Memory, "127.0.0.6", "").await;
    let city = TestServer::start_platform(Backend::Memory, "127.0.0.7", "").await;
    trust(&province, "province", &city, "city").await;
    let rx = Receivers::start().await;
    rp(&city, "city", &rx).await;
    let (pa, ca) = (admin(&province).await, admin(&city).await);
    // Turn sync on for the city's trust in the province.
    let r = city
        .http
        .put(city.url("/admin/v1/trusts/province"))
        .bearer_auth(&ca)
        .json(&json!({"role": "upstream", "issuer": province.base, "name": "province", "client_id": "city-platform",
                      "create_accounts": true, "sync_registrations": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body =
        json!({"username": "wang.wu", "password": "wang-wu-password-1", "name": "王五", "phone_number": "13700001111"});
    let local = post_json(&city, &ca, "/admin/v1/users", body).await;
    let local_id = local["id"].as_str().unwrap().to_owned();
    // The province gets the account (no password) within the worker's reach.
    let mut upstream = None;
    for _ in 0..200 {
        let users: Value = province
            .http
            .get(province.url("/admin/v1/users"))
            .bearer_auth(&pa)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        upstream = users["users"].as_array().unwrap().iter().find(|u| u["username"] == "wang.wu").cloned();
        if upstream.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let upstream = upstream.expect("the registration reached the province");
    assert_eq!(upstream["name"], "王五");
    assert_eq!(upstream["phone_number"], "137****1111", "sealed and masked there too");
    let up_id = upstream["id"].as_str().unwrap().to_owned();
    // Linked at the city: the province's subject maps to the city's account.
    let linked = tongzheng::federation::links::linked(&city.state.store, "province", &up_id).await.unwrap();
    assert_eq!(linked.map(|u| u.id), Some(local_id.clone()));
    // The person logs in at the province (an admin gave a password there) and arrives at the
    // city through the province: the city's own account, not a new one.
    let r = province
        .http
        .put(province.url(&format!("/admin/v1/users/{up_id}")))
        .bearer_auth(&pa)
        .json(&json!({"password": "province-password-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b = browser();
    let (landed, _) = walk(&b, &authorize_url(&city, "city", &[])).await;
    let Landed::Form { url, html } = landed else { panic!("expected the city's form") };
    let (landed, _) = walk(&b, &upstream_link(&url, &html)).await;
    let Landed::Form { url, html } = landed else { panic!("expected the province's form") };
    let action = url::Url::parse(&url).unwrap().join("/login").unwrap();
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("username", "wang.wu".into()),
        ("password", "province-password-9".into()),
    ];
    let r = b.post(action.clone()).form(&form).send().await.unwrap();
    let next = action.join(r.headers()["location"].to_str().unwrap()).unwrap();
    let (landed, _) = walk(&b, next.as_str()).await;
    assert!(matches!(landed, Landed::Rp(ref q) if q.contains_key("code")), "{landed:?}");
    let sessions = sessions_of(&city, &ca, &local_id).await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1, "the city's own account is logged in: {sessions}");
    // The registration API refuses clients that are not trusted platforms.
    let r = province
        .http
        .post(province.url("/federation/v1/registrations"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .json(&json!({"sub": "x", "username": "intruder", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

// OIDC Core s3.1.2.1: prompt=login asks for a fresh login here; no silent trip upstream.
#[tokio::test]
async fn prompt_login_is_not_answered_upstream() {
    let province = TestServer::start_platform(Backend::Memory, "127.0.0.13", "").await;
    let city = TestServer::start_platform(Backend::Memory, "127.0.0.14", "").await;
    trust(&province, "province", &city, "city").await;
    let rx = Receivers::start().await;
    rp(&city, "city", &rx).await;
    let (landed, hops) = walk(&browser(), &authorize_url(&city, "city", &[("prompt", "login")])).await;
    assert!(matches!(landed, Landed::Form { ref url, .. } if url.starts_with(&city.base)), "{hops:#?}");
    assert!(hops.iter().all(|h| !h.starts_with(&province.base)), "{hops:#?}");
}
