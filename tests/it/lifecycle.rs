//! An application's whole life over HTTP (AY-8, SH-6.2, SH-7, DC-8): apply, the illegal moves,
//! review with the evidence its category needs, testing with test users, grey release by
//! organization, release, suspension cutting off live tokens in the same second, one extension
//! of the rectification, re-test, maintenance, and offline revoking everything with an archive.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::*;

per_backend!(whole_lifecycle);

const REDIRECT: &str = "http://127.0.0.1:9300/cb";

/// Checks an RFC 7807 problem and returns it.
pub async fn problem(r: reqwest::Response, status: StatusCode, what: &str) -> Value {
    assert_eq!(r.status(), status, "{what}");
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(ct, "application/problem+json", "{what}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], status.as_u16(), "{what}: {v}");
    v
}

/// An admin-API call with the admin token.
pub async fn call(
    s: &TestServer,
    admin: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = s.http.request(method, s.url(path)).bearer_auth(admin);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// A registration the tests submit (SH-6.2.2 fields).
pub fn application(id: &str, category: &str) -> Value {
    json!({
        "id": id,
        "name": "税务协同办公",
        "description": "Tax office collaboration",
        "category": category,
        "industry_theme": "税务",
        "app_type": "web",
        "visible_scope": [],
        "developer": "某某软件有限公司",
        "owning_unit": "市税务局",
        "contact": {"name": "王工", "phone": "+86 139 1234 5678", "email": "wang@tax.example.gov.cn"},
        "grants": {
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "redirect_uris": [REDIRECT],
            "scopes": ["openid", "profile", "tax.read"],
            "access_token_ttl": 600
        },
        "test_users": ["demo"]
    })
}

/// Evidence that satisfies SH-6.2.3 for an office application.
pub fn office_evidence() -> Value {
    json!([
        {"kind": "software_test_report", "reference": "TR-2026-001", "passed": true},
        {"kind": "mlps_assessment", "reference": "DJCP-2026-17", "level": 2, "passed": true},
        {"kind": "crypto_assessment", "reference": "MP-2026-09", "passed": true}
    ])
}

/// A client_credentials request.
pub async fn cc(s: &TestServer, id: &str, secret: &str) -> reqwest::Response {
    s.http
        .post(s.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "tax.read")])
        .send()
        .await
        .unwrap()
}

async fn introspect(s: &TestServer, token: &str) -> Value {
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn transition(s: &TestServer, admin: &str, id: &str, body: Value) -> reqwest::Response {
    call(s, admin, reqwest::Method::POST, &format!("/admin/v1/applications/{id}/transitions"), Some(body)).await
}

/// A browser with its own cookie jar: authorize, log in as `user`, return the final redirect's
/// query (a code, or an error such as access_denied).
async fn login_as(
    s: &TestServer,
    client_id: &str,
    user: &str,
    password: &str,
) -> std::collections::HashMap<String, String> {
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let pkce = Pkce::new();
    let r = browser
        .get(s.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile"),
            ("state", "s1"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "authorize for {user}");
    let login = location(&r);
    let html = browser.get(s.url(&login)).send().await.unwrap().text().await.unwrap();
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("username", user.to_owned()),
        ("password", password.to_owned()),
    ];
    let r = browser.post(s.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {user}");
    query(&location(&r))
}

/// The authorization endpoint's answer for a client, without logging in.
async fn authorize_page(s: &TestServer, client_id: &str) -> (StatusCode, String, String) {
    let pkce = Pkce::new();
    let r = flow::authorize(
        s,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let (status, loc) = (r.status(), location(&r));
    (status, loc, r.text().await.unwrap())
}

async fn whole_lifecycle(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let id = "tax-office";
    let app_url = format!("/admin/v1/applications/{id}");
    use reqwest::Method as M;

    // AY-7.1: a grant may only name catalogue scopes.
    let r = call(&s, &admin, M::POST, "/admin/v1/applications", Some(application(id, "office"))).await;
    let p = problem(r, StatusCode::BAD_REQUEST, "unknown scope").await;
    assert!(p["detail"].as_str().unwrap().contains("tax.read"), "{p}");
    flow::catalogue_scope(&s, &admin, "tax.read").await;

    // SH-6.2.2: apply. The contact phone is sealed at rest and masked when shown (SH-8.2).
    let r = call(&s, &admin, M::POST, "/admin/v1/applications", Some(application(id, "office"))).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let app: Value = r.json().await.unwrap();
    assert_eq!(app["state"], "applied");
    assert_eq!(app["contact"]["phone"], "+86 *******5678");
    assert!(app["review_due"].is_string(), "AY-8.2.2: {app}");
    let stored = s.state.store.get(&tongzheng::store::keys::app(id)).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("1234 5678"));
    let r = call(&s, &admin, M::POST, "/admin/v1/applications", Some(application(id, "office"))).await;
    problem(r, StatusCode::CONFLICT, "same id twice").await;

    // Only legal moves: applied -> released is refused with the allowed ones named.
    let r = transition(&s, &admin, id, json!({"to": "released"})).await;
    let p = problem(r, StatusCode::CONFLICT, "applied -> released").await;
    assert_eq!(p["type"], "urn:tongzheng:problem:illegal-transition");
    assert_eq!((p["from"].as_str(), p["to"].as_str()), (Some("applied"), Some("released")));
    assert_eq!(p["allowed"], json!(["approved", "offline"]));
    let r = transition(&s, &admin, id, json!({"to": "approved"})).await;
    problem(r, StatusCode::CONFLICT, "approval goes through a review").await;
    let r = transition(&s, &admin, id, json!({"to": "flying"})).await;
    problem(r, StatusCode::BAD_REQUEST, "no such state").await;

    // SH-6.2.3: an office application needs a crypto assessment; a rejection keeps it applied.
    let reviews = format!("{app_url}/reviews");
    let weak = json!({"reviewer": "李审核", "decision": "approve", "evidence": [
        {"kind": "software_test_report", "reference": "TR-1", "passed": true},
        {"kind": "security_test_report", "reference": "ST-1", "passed": true}]});
    let p =
        problem(call(&s, &admin, M::POST, &reviews, Some(weak)).await, StatusCode::UNPROCESSABLE_ENTITY, "evidence")
            .await;
    assert!(p["detail"].as_str().unwrap().contains("crypto_assessment"), "{p}");
    let reject = json!({"reviewer": "李审核", "decision": "reject", "comment": "补充密评报告"});
    let r = call(&s, &admin, M::POST, &reviews, Some(reject)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["application"]["state"], "applied");

    // AY-8.2.3: approval allocates credentials, shown once.
    let approve =
        json!({"reviewer": "李审核", "decision": "approve", "evidence": office_evidence(), "comment": "同意接入"});
    let r = call(&s, &admin, M::POST, &reviews, Some(approve)).await;
    let status = r.status();
    let done: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["application"]["state"], "approved");
    let secret = done["credentials"]["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(done["credentials"]["client_id"], id);
    let shown: Value = call(&s, &admin, M::GET, &format!("/admin/v1/clients/{id}"), None).await.json().await.unwrap();
    assert!(shown.get("client_secret").is_none() && !shown.to_string().contains(&secret), "{shown}");
    let listed: Value = call(&s, &admin, M::GET, &reviews, None).await.json().await.unwrap();
    assert_eq!(listed["reviews"].as_array().unwrap().len(), 2);
    // A second review is refused: it is no longer applied.
    let again = json!({"reviewer": "x", "decision": "approve", "evidence": office_evidence()});
    problem(call(&s, &admin, M::POST, &reviews, Some(again)).await, StatusCode::CONFLICT, "second review").await;

    // AY-8.3: while approved only test users log in; the backend's credentials work.
    assert_eq!(cc(&s, id, &secret).await.status(), StatusCode::OK);
    let q = login_as(&s, id, USER, PASSWORD).await;
    assert!(q.contains_key("code"), "test user: {q:?}");
    let r = call(
        &s,
        &admin,
        M::POST,
        "/admin/v1/users",
        Some(json!({"username": "li.si", "password": "li-si-password-2026", "orgs": ["org-health"]})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let li_si = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let q = login_as(&s, id, "li.si", "li-si-password-2026").await;
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"), "not a test user: {q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some("s1"));

    // SH-6.2.7 b: a grey release needs an audience; only it gets in.
    problem(transition(&s, &admin, id, json!({"to": "pre_release"})).await, StatusCode::BAD_REQUEST, "no audience")
        .await;
    let r = transition(&s, &admin, id, json!({"to": "pre_release", "audience": {"orgs": ["org-tax"]}})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let q = login_as(&s, id, "li.si", "li-si-password-2026").await;
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"), "outside the audience: {q:?}");
    let r = call(&s, &admin, M::PUT, &format!("/admin/v1/users/{li_si}"), Some(json!({"orgs": ["org-tax"]}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(login_as(&s, id, "li.si", "li-si-password-2026").await.contains_key("code"), "in the audience now");

    // SH-6.2.7 c: release.
    assert_eq!(transition(&s, &admin, id, json!({"to": "released"})).await.status(), StatusCode::OK);
    let live = cc(&s, id, &secret).await.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&s, &live).await["active"], true);
    let code = login_as(&s, id, USER, PASSWORD).await["code"].clone();
    let _ = code;

    // AY-8.5.3.2: suspension takes effect at once: same clock second, the live token is dead.
    let before = s.clock.now();
    problem(transition(&s, &admin, id, json!({"to": "suspended"})).await, StatusCode::BAD_REQUEST, "needs a reason")
        .await;
    let r = transition(&s, &admin, id, json!({"to": "suspended", "reason": "异常调用：批量导出"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let app: Value = r.json().await.unwrap();
    assert_eq!(s.clock.now(), before, "the manual clock did not move");
    assert_eq!(app["state"], "suspended");
    assert!(app["rectification_due"].as_str().unwrap().ends_with("23:59:59+08:00"), "AY-8.5.4: {app}");
    assert_eq!(app["rectification_overdue"], false);
    assert_eq!(introspect(&s, &live).await["active"], false, "introspects inactive at once");
    let r = s.http.get(s.url("/userinfo")).bearer_auth(&live).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "userinfo refuses it");
    let r = cc(&s, id, &secret).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unauthorized_client");
    assert!(e["error_description"].as_str().unwrap().contains("suspended"), "a clear error: {e}");
    let (status, loc, page) = authorize_page(&s, id).await;
    assert_eq!((status, loc.as_str()), (StatusCode::BAD_REQUEST, ""), "no redirect to a blocked application");
    assert!(page.contains("suspended"), "{page}");

    // AY-8.5.4: one extension of at most 10 working days; a second is refused.
    let ext = format!("{app_url}/suspension/extension");
    let too_long = json!({"working_days": 11, "reason": "需要更多时间"});
    problem(call(&s, &admin, M::POST, &ext, Some(too_long)).await, StatusCode::BAD_REQUEST, "11 days").await;
    let r = call(&s, &admin, M::POST, &ext, Some(json!({"working_days": 5, "reason": "整改延期申请表"}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let extended: Value = r.json().await.unwrap();
    assert_eq!(extended["suspension"]["extension"]["working_days"], 5);
    assert!(extended["suspension"]["extension"]["deadline"].as_i64() > app["suspension"]["deadline"].as_i64());
    let r = call(&s, &admin, M::POST, &ext, Some(json!({"working_days": 1, "reason": "again"}))).await;
    let p = problem(r, StatusCode::CONFLICT, "second extension").await;
    assert!(p["detail"].as_str().unwrap().contains("one extension"), "{p}");

    // AY-8.5.5: back to released only after a passed re-test.
    problem(transition(&s, &admin, id, json!({"to": "released"})).await, StatusCode::BAD_REQUEST, "no retest").await;
    let failed = json!({"to": "released", "retest": {"report": "RT-1", "passed": false}});
    problem(transition(&s, &admin, id, failed).await, StatusCode::CONFLICT, "failed retest").await;
    problem(
        transition(&s, &admin, id, json!({"to": "pre_release", "retest": {"report": "RT-2", "passed": true}})).await,
        StatusCode::CONFLICT,
        "wrong return state",
    )
    .await;
    let passed = json!({"to": "released", "reason": "整改完成", "retest": {"report": "RT-3", "passed": true}});
    let r = transition(&s, &admin, id, passed).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.json::<Value>().await.unwrap().get("suspension").is_none());
    assert_eq!(cc(&s, id, &secret).await.status(), StatusCode::OK);

    // SH-7.3: maintenance: no new logins (a clear page), backends keep working; then back.
    let r = transition(&s, &admin, id, json!({"to": "temporarily_offline", "reason": "系统维护"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (status, loc, page) = authorize_page(&s, id).await;
    // Issue 14: a real maintenance page (503, the admin's reason), no redirect.
    assert_eq!((status, loc.as_str()), (StatusCode::SERVICE_UNAVAILABLE, ""));
    assert!(page.contains("应用正在维护") && page.contains("系统维护"), "{page}");
    assert!(page.contains("temporarily"), "the refusal in the technical details: {page}");
    assert_eq!(cc(&s, id, &secret).await.status(), StatusCode::OK);
    assert_eq!(transition(&s, &admin, id, json!({"to": "released"})).await.status(), StatusCode::OK);

    // AY-8.6.3: offline revokes every grant, token and secret; AY-8.6.4: archived.
    let live = cc(&s, id, &secret).await.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let r = transition(&s, &admin, id, json!({"to": "offline", "reason": "业务下线申请表 XX-01"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let gone: Value = r.json().await.unwrap();
    assert_eq!(gone["state"], "offline");
    let archive_path = gone["archive"].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&archive_path).exists(), "{archive_path}");
    assert_eq!(introspect(&s, &live).await["active"], false);
    let r = cc(&s, id, &secret).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the secret is revoked");
    let client: Value = call(&s, &admin, M::GET, &format!("/admin/v1/clients/{id}"), None).await.json().await.unwrap();
    assert_eq!(client["scope"], "", "no scopes left: {client}");
    assert_eq!(client["secret_expires_at"], json!([]));
    for to in ["released", "approved", "suspended", "temporarily_offline"] {
        problem(transition(&s, &admin, id, json!({"to": to, "reason": "x"})).await, StatusCode::CONFLICT, to).await;
    }
    let r = call(&s, &admin, M::PUT, &app_url, Some(application(id, "office"))).await;
    problem(r, StatusCode::CONFLICT, "offline cannot change").await;

    // The transitions, in order.
    let t: Value = call(&s, &admin, M::GET, &format!("{app_url}/transitions"), None).await.json().await.unwrap();
    let moves: Vec<(String, String)> = t["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["from"].as_str().unwrap().to_owned(), t["to"].as_str().unwrap().to_owned()))
        .collect();
    let want = [
        ("applied", "approved"),
        ("approved", "pre_release"),
        ("pre_release", "released"),
        ("released", "suspended"),
        ("suspended", "released"),
        ("released", "temporarily_offline"),
        ("temporarily_offline", "released"),
        ("released", "offline"),
    ];
    assert_eq!(moves, want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec());
    assert!(t["transitions"][3]["reason"].as_str().unwrap().contains("批量导出"));

    // The archive holds the registration, reviews, transitions, clients and the call records.
    let archive: Value = call(&s, &admin, M::GET, &format!("{app_url}/archive"), None).await.json().await.unwrap();
    assert_eq!(archive["application"]["name"], "税务协同办公");
    assert_eq!(archive["reviews"].as_array().unwrap().len(), 2);
    assert_eq!(archive["transitions"].as_array().unwrap().len(), 8);
    assert_eq!(archive["clients"][0]["client_id"], id);
    let calls = archive["calls"].as_array().unwrap();
    let kinds = |k: &str| calls.iter().filter(|c| c["kind"] == k).count();
    assert!(kinds("token_issued") >= 4, "token calls archived: {}", calls.len());
    // Every move before the archive was written is in the call records (the offline move's own
    // audit record follows the archive; the archive's transitions list has it).
    assert_eq!(kinds("app_transition"), 7, "transitions audited");
    assert!(kinds("login_success") >= 1 && kinds("login_failure") == 0);
    assert!(!archive.to_string().contains(&secret), "no secrets in the archive");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&archive_path).unwrap()).unwrap();
    assert_eq!(on_disk["transitions"], archive["transitions"]);
}
