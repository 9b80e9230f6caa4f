//! Issue 11 part B: claims released by scope (SH-8.2), agents acting for legal persons (HL-5.1,
//! RFC 8693 s4.1) and their tokens' validity, pairwise subjects (OIDC Core s8.1, s8.1.1), and
//! the JM-B legacy direct login.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tongzheng::crypto::{self, Secret};
use tongzheng::identity::legal::{self, Agent, AgentRole, LegalPerson, OrgKind};
use tongzheng::identity::{IdType, PrincipalKind};
use tongzheng::users::{self, User};

use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::{Backend, TestServer};

const PASSWORD: &str = "agent-password-1";
const REDIRECT: &str = "http://127.0.0.1:9000/callback";
const REDIRECT_B: &str = "http://localhost:9000/callback";

async fn make_user(s: &TestServer, username: &str) -> User {
    let hash = s.state.passwords.hash(Secret(PASSWORD.to_owned())).await.unwrap();
    let mut u = User::new(username.to_owned(), format!("{username} name"), hash, s.clock.now());
    let digits: String = crypto::sha256_hex(username.as_bytes()).chars().filter(char::is_ascii_digit).take(8).collect();
    u.set_phone(s.state.keys.data(), Some(&format!("+86139{digits:0>8}")));
    u.id_type = Some(IdType::ResidentIdCard);
    u.set_id_number(s.state.keys.data(), Some(&format!("11010519491231{}", &crypto::random_token(3)[..3])));
    users::create(&s.state.store, s.state.keys.data(), &u).await.unwrap();
    u
}

async fn make_lp(s: &TestServer, name: &str, agents: &[&User]) -> LegalPerson {
    let now = s.clock.now();
    let lp = LegalPerson {
        id: crypto::random_token(16),
        name: name.to_owned(),
        uscc: format!("91350100M{}", crypto::random_token(9).to_uppercase()),
        kind: OrgKind::Enterprise,
        legal_representative: "Li Si".into(),
        agents: agents.iter().map(|u| Agent { user_id: u.id.clone(), role: AgentRole::Agent, since: now }).collect(),
        verification: None,
        enabled: true,
        generation: 0,
        created_at: now,
        updated_at: now,
    };
    legal::create(&s.state.store, &lp).await.unwrap();
    lp
}

/// An admin-created confidential client; returns its secret.
async fn client(s: &TestServer, id: &str, extra: Value) -> String {
    let admin = flow::admin_token(s).await;
    let mut body = json!({"client_id": id, "redirect_uris": [REDIRECT, REDIRECT_B],
        "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile phone idcard legal_person"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["client_secret"].as_str().unwrap_or_default().to_owned()
}

/// authorize -> login form posted with `kind` -> the response to the POST.
async fn login(
    s: &TestServer,
    client_id: &str,
    scope: &str,
    user: &str,
    kind: Option<&str>,
    pkce: &Pkce,
) -> reqwest::Response {
    let r = flow::authorize(
        s,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st"),
            // A fresh login even when the browser has a session (OIDC Core s3.1.2.1).
            ("prompt", "login"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = s.browser.get(s.url(&location(&r))).send().await.unwrap().text().await.unwrap();
    let mut form = vec![
        ("req", hidden(&page, "req")),
        ("csrf", hidden(&page, "csrf")),
        ("username", user.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    if let Some(k) = kind {
        form.push(("account_kind", k.to_owned()));
    }
    let r = s.browser.post(s.url("/login")).form(&form).send().await.unwrap();
    allow_consent(s, r).await
}

/// SH-8.2: a sensitive scope always needs the person's recorded consent; the person allows it.
/// Any other answer (a redirect, the chooser, a refusal) is returned as it is.
async fn allow_consent(s: &TestServer, r: reqwest::Response) -> reqwest::Response {
    if r.status() != StatusCode::OK {
        return r;
    }
    let html = r.text().await.unwrap();
    if !html.contains("action=\"/consent\"") {
        return reqwest::Response::from(axum::http::Response::new(html));
    }
    let form = [("req", hidden(&html, "req")), ("csrf", hidden(&html, "csrf")), ("decision", "allow".to_owned())];
    s.browser.post(s.url("/consent")).form(&form).send().await.unwrap()
}

async fn redeem(s: &TestServer, client_id: &str, secret: &str, code: &str, pkce: &Pkce) -> Value {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn code_of(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "expected the redirect to the client");
    query(&location(r)).get("code").cloned().unwrap_or_else(|| panic!("no code in {}", location(r)))
}

/// The payload of a JWT.
fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&crypto::b64_decode(part).unwrap()).unwrap()
}

async fn userinfo(s: &TestServer, at: &str) -> (StatusCode, Value) {
    let r = s.http.get(s.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn refresh(s: &TestServer, client_id: &str, secret: &str, rt: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// Every path agrees the tokens are dead: introspection, userinfo and refresh.
async fn assert_dead(s: &TestServer, client_id: &str, secret: &str, t: &Value, why: &str) {
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(flow::introspect_as_admin(s, at).await["active"], false, "{why}: /introspect");
    assert_eq!(userinfo(s, at).await.0, StatusCode::UNAUTHORIZED, "{why}: /userinfo");
    let (status, body) = refresh(s, client_id, secret, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{why}: refresh");
}

async fn acting_tokens_and_removed_agent(b: Backend) {
    // HL-5.1, RFC 8693 s4.1: the agent authenticates as themselves; the only legal person
    // listing them is picked; the tokens name it as sub and the agent in act.
    let s = TestServer::start(b).await;
    let secret = client(&s, "gov-app", json!({})).await;
    let agent = make_user(&s, "agent-a").await;
    let lp = make_lp(&s, "通证科技有限公司", &[&agent]).await;
    let pkce = Pkce::new();
    let r = login(&s, "gov-app", "openid profile legal_person idcard", "agent-a", Some("legal_person"), &pkce).await;
    let t = redeem(&s, "gov-app", &secret, &code_of(&r), &pkce).await;
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!(lp.id));
    assert_eq!(id["act"], json!({"sub": agent.id}));
    assert_eq!(id["user_type"], "legal_person");
    let at = claims(t["access_token"].as_str().unwrap());
    assert_eq!(
        (at["sub"].clone(), at["act"].clone(), at["user_type"].clone()),
        (json!(lp.id), json!({"sub": agent.id}), json!("legal_person"))
    );
    // SH-8.2: the legal person's claims come from its record; the agent's ID number never.
    let (status, ui) = userinfo(&s, t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ui["sub"], json!(lp.id));
    assert_eq!(ui["org_name"], json!(lp.name));
    assert_eq!(ui["uscc"], json!(lp.uscc));
    assert_eq!(ui["legal_representative"], "Li Si");
    assert_eq!(ui["act"], json!({"sub": agent.id}));
    assert!(ui.get("id_number").is_none() && ui.get("phone_number").is_none(), "{ui}");
    let intro = flow::introspect_as_admin(&s, t["access_token"].as_str().unwrap()).await;
    assert_eq!((intro["active"].clone(), intro["user_type"].clone()), (json!(true), json!("legal_person")));
    assert_eq!(intro["act"], json!({"sub": agent.id}));
    // Refresh agrees while the agent is authorized (a rotated pair).
    let (status, t2) = refresh(&s, "gov-app", &secret, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    assert_eq!(claims(t2["access_token"].as_str().unwrap())["sub"], json!(lp.id));
    // The agent is removed from the legal person: every token of the grant dies at once.
    let mut changed = lp.clone();
    changed.agents.clear();
    legal::update(&s.state.store, &lp, &mut changed).await.unwrap();
    assert_dead(&s, "gov-app", &secret, &t2, "agent removed").await;
    let intro = flow::introspect_as_admin(&s, t["access_token"].as_str().unwrap()).await;
    assert_eq!(intro["active"], false);
}

async fn chooser_pick_and_refusal(b: Backend) {
    // HL-5.1: several legal persons: the agent is asked; none: a clear refusal.
    let s = TestServer::start(b).await;
    let secret = client(&s, "gov-app", json!({})).await;
    let agent = make_user(&s, "agent-b").await;
    let a = make_lp(&s, "甲公司", &[&agent]).await;
    let bb = make_lp(&s, "乙公司", &[&agent]).await;
    let pkce = Pkce::new();
    let r = login(&s, "gov-app", "openid legal_person", "agent-b", Some("legal_person"), &pkce).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("甲公司") && page.contains("乙公司"), "{page}");
    assert!(!page.contains(&a.uscc), "the credit code is masked on the chooser");
    // A legal person the agent does not act for is refused.
    let stranger = make_lp(&s, "丙公司", &[]).await;
    let form = |lp: &str| {
        vec![("req", hidden(&page, "req")), ("csrf", hidden(&page, "csrf")), ("legal_person", lp.to_owned())]
    };
    let r = s.browser.post(s.url("/act")).form(&form(&stranger.id)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s.browser.post(s.url("/act")).form(&form(&bb.id)).send().await.unwrap();
    let r = allow_consent(&s, r).await;
    let t = redeem(&s, "gov-app", &secret, &code_of(&r), &pkce).await;
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!((id["sub"].clone(), id["act"]["sub"].clone()), (json!(bb.id), json!(agent.id)));
    // A person who acts for nobody (in a browser of their own): refused, in plain words.
    let s2 = TestServer::start(b).await;
    client(&s2, "gov-app", json!({})).await;
    make_user(&s2, "loner").await;
    let r = login(&s2, "gov-app", "openid", "loner", Some("legal_person"), &Pkce::new()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("not-an-agent"));
    // The same person logging in as themselves (个人) is fine and is a natural person.
    let pkce = Pkce::new();
    let r = login(&s2, "gov-app", "openid", "loner", None, &pkce).await;
    assert!(query(&location(&r)).contains_key("code"));
}

async fn disabled_legal_person_and_dead_agent(b: Backend) {
    // HL-5.1: disabling or deleting the legal person, or the agent's own account dying, kills
    // the tokens; re-enabling does not revive them.
    let s = TestServer::start(b).await;
    let secret = client(&s, "gov-app", json!({})).await;
    let agent = make_user(&s, "agent-c").await;
    let lp = make_lp(&s, "丁公司", &[&agent]).await;
    let pkce = Pkce::new();
    let t = redeem(
        &s,
        "gov-app",
        &secret,
        &code_of(&login(&s, "gov-app", "openid", "agent-c", Some("legal_person"), &pkce).await),
        &pkce,
    )
    .await;
    let mut off = lp.clone();
    off.enabled = false;
    legal::update(&s.state.store, &lp, &mut off).await.unwrap();
    let mut on = off.clone();
    on.enabled = true;
    legal::update(&s.state.store, &off, &mut on).await.unwrap();
    assert_dead(&s, "gov-app", &secret, &t, "legal person disabled (then re-enabled)").await;
    // A fresh login acts again; then the legal person is deleted.
    let pkce = Pkce::new();
    let r = login(&s, "gov-app", "openid", "agent-c", Some("legal_person"), &pkce).await;
    let t = redeem(&s, "gov-app", &secret, &code_of(&r), &pkce).await;
    assert_eq!(flow::introspect_as_admin(&s, t["access_token"].as_str().unwrap()).await["active"], true);
    legal::delete(&s.state.store, &lp.id).await.unwrap();
    assert_dead(&s, "gov-app", &secret, &t, "legal person deleted").await;
    // The agent's own account dies (disabled): their acting tokens die with it.
    let lp2 = make_lp(&s, "戊公司", &[&agent]).await;
    let pkce = Pkce::new();
    let r = login(&s, "gov-app", "openid", "agent-c", Some("legal_person"), &pkce).await;
    let t = redeem(&s, "gov-app", &secret, &code_of(&r), &pkce).await;
    assert_eq!(claims(t["access_token"].as_str().unwrap())["sub"], json!(lp2.id));
    let old = users::get(&s.state.store, &agent.id).await.unwrap().unwrap();
    let mut disabled = old.clone();
    disabled.enabled = false;
    users::update(&s.state.store, s.state.keys.data(), &old, &mut disabled).await.unwrap();
    assert_dead(&s, "gov-app", &secret, &t, "agent disabled").await;
}

async fn pairwise_subjects(b: Backend) {
    // OIDC Core s8.1: a pairwise client sees its own sub for the user, the same in the ID
    // token, the access token, /userinfo, introspection and after a refresh; another sector
    // sees another; a public client sees the user's id. SH-8.2: idcard releases the ID number.
    let s = TestServer::start(b).await;
    let disc: Value =
        s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(disc["subject_types_supported"], json!(["public", "pairwise"]));
    assert!(disc["scopes_supported"].as_array().unwrap().contains(&json!("idcard")));
    let sa = client(&s, "pw-a", json!({"subject_type": "pairwise", "redirect_uris": [REDIRECT]})).await;
    // A sector identifier document served by a real local HTTP server (s8.1.1).
    let doc = serve_json(json!([REDIRECT, "https://other.example/cb"])).await;
    let sb = client(
        &s,
        "pw-b",
        json!({"subject_type": "pairwise", "redirect_uris": [REDIRECT], "sector_identifier_uri": doc}),
    )
    .await;
    let sp = client(&s, "pub-c", json!({"scope": "openid profile"})).await;
    let user = make_user(&s, "citizen").await;
    let mut subs = Vec::new();
    for (id, secret) in [("pw-a", &sa), ("pw-b", &sb), ("pub-c", &sp)] {
        let pkce = Pkce::new();
        let scope = if id == "pub-c" { "openid" } else { "openid idcard" };
        let r = login(&s, id, scope, "citizen", None, &pkce).await;
        let t = redeem(&s, id, secret, &code_of(&r), &pkce).await;
        let sub = claims(t["id_token"].as_str().unwrap())["sub"].as_str().unwrap().to_owned();
        assert_eq!(claims(t["access_token"].as_str().unwrap())["sub"], json!(sub), "{id}: access token");
        let (status, ui) = userinfo(&s, t["access_token"].as_str().unwrap()).await;
        assert_eq!((status, ui["sub"].clone()), (StatusCode::OK, json!(sub)), "{id}: userinfo");
        assert_eq!(ui["user_type"], "natural_person");
        if id != "pub-c" {
            assert_eq!(ui["id_number"], json!(user.id_number(s.state.keys.data()).unwrap()), "{id}: idcard scope");
            assert_eq!(ui["id_type"], "resident_id_card");
        } else {
            assert!(ui.get("id_number").is_none(), "no idcard scope, no ID number");
        }
        let intro = flow::introspect_as_admin(&s, t["access_token"].as_str().unwrap()).await;
        assert_eq!((intro["active"].clone(), intro["sub"].clone()), (json!(true), json!(sub)), "{id}: introspection");
        let rt_intro = flow::introspect_as_admin(&s, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(rt_intro["sub"], json!(sub), "{id}: refresh token introspection");
        let (status, t2) = refresh(&s, id, secret, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{t2}");
        assert_eq!(claims(t2["access_token"].as_str().unwrap())["sub"], json!(sub), "{id}: after refresh");
        subs.push(sub);
    }
    assert_ne!(subs[0], user.id, "pairwise is not the internal id");
    assert_ne!(subs[0], subs[1], "two sectors, two subjects");
    assert_eq!(subs[2], user.id, "a public client sees the user's id");
    assert_eq!(PrincipalKind::NaturalPerson.as_str(), "natural_person");
    // s8.1.1: a sector document that does not list the redirect URIs is refused.
    let admin = flow::admin_token(&s).await;
    let bad = serve_json(json!(["https://other.example/cb"])).await;
    let body = json!({"client_id": "pw-bad", "redirect_uris": [REDIRECT], "subject_type": "pairwise",
        "sector_identifier_uri": bad, "grant_types": ["authorization_code"], "scope": "openid"});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // s8.1: pairwise with redirect URIs on two hosts and no sector identifier is refused.
    let body = json!({"client_id": "pw-two", "redirect_uris": [REDIRECT, REDIRECT_B], "subject_type": "pairwise",
        "grant_types": ["authorization_code"], "scope": "openid"});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Serves `body` as JSON at `/sector.json` on a local port; returns its URL.
async fn serve_json(body: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/sector.json", axum::routing::get(move || async move { axum::Json(body) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    // Named `localhost`: its host (the sector) differs from the redirect URIs' 127.0.0.1.
    format!("http://localhost:{}/sector.json", addr.port())
}

async fn api_auth(s: &TestServer, client_id: &str, secret: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = s.http.post(s.url("/api/auth")).basic_auth(client_id, Some(secret)).form(form).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn jmb_legacy_login(b: Backend) {
    // JM-B: off by default; enabled per client by an admin; the token is a normal access
    // token usable as Bearer; failures are {"code":1,"msg":...,"data":null}.
    let s = TestServer::start(b).await;
    let off = client(&s, "legacy-off", json!({"grant_types": ["client_credentials"], "redirect_uris": []})).await;
    let on = client(&s, "legacy-on", json!({"grant_types": ["client_credentials"], "redirect_uris": [], "scope": "openid profile phone", "legacy_login": true})).await;
    let user = make_user(&s, "old-system-user").await;
    use base64::Engine as _;
    let pw = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    let (status, v) = api_auth(&s, "legacy-off", &off, &[("username", "old-system-user"), ("password", &pw)]).await;
    assert_eq!((status, v["code"].clone(), v["data"].clone()), (StatusCode::FORBIDDEN, json!(1), Value::Null), "{v}");
    let (status, v) = api_auth(&s, "legacy-on", &on, &[("username", "old-system-user"), ("password", &pw)]).await;
    assert_eq!((status, v["code"].clone()), (StatusCode::OK, json!(0)), "{v}");
    let token = v["token"].as_str().unwrap();
    let (status, ui) = userinfo(&s, token).await;
    assert_eq!((status, ui["sub"].clone()), (StatusCode::OK, json!(user.id)));
    assert!(ui.get("phone_number").is_none(), "no sensitive scope without consent");
    assert!(claims(token).get("sid").is_none());
    // Wrong password, unknown client secret, garbage base64, a legal-person login: refused.
    let wrong = base64::engine::general_purpose::STANDARD.encode("not-the-password");
    let (status, v) = api_auth(&s, "legacy-on", &on, &[("username", "old-system-user"), ("password", &wrong)]).await;
    assert_eq!(
        (status, v),
        (StatusCode::UNAUTHORIZED, json!({"code": 1, "msg": "wrong username or password", "data": null}))
    );
    let (status, v) =
        api_auth(&s, "legacy-on", "bad-secret", &[("username", "old-system-user"), ("password", &pw)]).await;
    assert_eq!((status, v["code"].clone()), (StatusCode::UNAUTHORIZED, json!(1)));
    let (status, v) = api_auth(&s, "legacy-on", &on, &[("username", "old-system-user"), ("password", "%%%")]).await;
    assert_eq!((status, v["code"].clone()), (StatusCode::BAD_REQUEST, json!(1)));
    let (status, v) = api_auth(
        &s,
        "legacy-on",
        &on,
        &[("username", "old-system-user"), ("password", &pw), ("account_kind", "legal_person")],
    )
    .await;
    assert_eq!((status, v["code"].clone()), (StatusCode::FORBIDDEN, json!(1)));
    let lp = make_lp(&s, "己公司", &[&user]).await;
    let (status, v) = api_auth(&s, "legacy-on", &on, &[("username", &lp.uscc), ("password", &pw)]).await;
    assert_eq!((status, v["code"].clone()), (StatusCode::FORBIDDEN, json!(1)), "a legal person's credit code");
    // The token dies with the account like any other (password change, DC-4).
    let old = users::get(&s.state.store, &user.id).await.unwrap().unwrap();
    let mut changed = old.clone();
    changed.password_hash = s.state.passwords.hash(Secret("another-password".into())).await.unwrap();
    users::update(&s.state.store, s.state.keys.data(), &old, &mut changed).await.unwrap();
    assert_eq!(userinfo(&s, token).await.0, StatusCode::UNAUTHORIZED);
}

per_backend!(
    acting_tokens_and_removed_agent,
    chooser_pick_and_refusal,
    disabled_legal_person_and_dead_agent,
    pairwise_subjects,
    jmb_legacy_login
);
