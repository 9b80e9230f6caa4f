//! Webhook push of the directory change feed (issue 12, SH-6.3.5): a real loopback receiver
//! that first fails then is healthy gets every change in its application's visible scope as a
//! JWT signed with a key of our JWKS, in cursor order, and the admin API shows each event go
//! from pending to delivered; another application's receiver gets nothing out of its scope.
//! Both stores.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode as Code;
use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};

use crate::lifecycle::{application, call};
use crate::scim::{Scim, admin, app_reader, group, user};
use crate::support::flow;
use crate::support::server::{Backend, TestServer};

const TZU: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Loopback webhook receivers: `/hook/{name}`, each failing its first `fail` requests with 500.
#[derive(Clone, Default)]
struct Hooks {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    fail: std::collections::HashMap<String, usize>,
    /// Receivers that never answer.
    hang: std::collections::HashSet<String>,
    /// (receiver, content type, body) of every request answered 200.
    accepted: Vec<(String, String, String)>,
    arrivals: Vec<String>,
}

async fn receive(
    State(h): State<Hooks>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Code {
    let hang = {
        let mut i = h.inner.lock().unwrap();
        i.arrivals.push(name.clone());
        i.hang.contains(&name)
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let mut i = h.inner.lock().unwrap();
    if let Some(n) = i.fail.get_mut(&name).filter(|n| **n > 0) {
        *n -= 1;
        return Code::INTERNAL_SERVER_ERROR;
    }
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    i.accepted.push((name, ct, body));
    Code::OK
}

impl Hooks {
    async fn start() -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let h = Self::default();
        let app = axum::Router::new().route("/hook/{name}", axum::routing::post(receive)).with_state(h.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (h, base)
    }
    fn fail_first(&self, name: &str, n: usize) {
        self.inner.lock().unwrap().fail.insert(name.to_owned(), n);
    }
    fn hang(&self, name: &str) {
        self.inner.lock().unwrap().hang.insert(name.to_owned());
    }
    fn accepted(&self, name: &str) -> Vec<(String, String)> {
        let i = self.inner.lock().unwrap();
        i.accepted.iter().filter(|(n, _, _)| n == name).map(|(_, ct, b)| (ct.clone(), b.clone())).collect()
    }
    fn arrivals(&self, name: &str) -> usize {
        self.inner.lock().unwrap().arrivals.iter().filter(|n| *n == name).count()
    }
}

/// Waits (polling, bounded) until `cond` holds.
async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replaces application `id` (as `app_reader` made it) with `scope` and `webhook`.
async fn put_app(s: &TestServer, token: &str, id: &str, scope: &[&str], webhook: Option<&str>) -> reqwest::Response {
    let mut app = application(id, "office");
    app["visible_scope"] = json!(scope);
    app["grants"]["scopes"] = json!(["tongzheng:directory.read"]);
    app["grants"]["grant_types"] = json!(["client_credentials"]);
    app["grants"]["redirect_uris"] = json!([]);
    if let Some(w) = webhook {
        app["directory_webhook"] = json!(w);
    }
    call(s, token, M::PUT, &format!("/admin/v1/applications/{id}"), Some(app)).await
}

async fn deliveries(s: &TestServer, token: &str, id: &str) -> Value {
    let r = call(s, token, M::GET, &format!("/admin/v1/applications/{id}/webhook/deliveries"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Verifies an event JWT against our published keys; its header and claims.
async fn verify(s: &TestServer, token: &str) -> (Value, Value) {
    let (claims, typ): (Value, _) = s.state.keys.verify(token).expect("signed with one of our keys");
    let header: Value = serde_json::from_slice(
        &tongzheng::crypto::b64_decode(token.split('.').next().unwrap()).expect("base64url header"),
    )
    .unwrap();
    let jwks: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    assert!(
        jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == header["kid"]),
        "the signing key is in the JWKS: {header}"
    );
    assert_eq!(typ.as_deref(), Some("directory-event+jwt"));
    (header, claims)
}

fn seq(cursor: &Value) -> u64 {
    cursor.as_str().unwrap().trim_start_matches('c').parse().unwrap()
}

async fn new_group(a: &Scim<'_>, name: &str, parent: Option<&str>) -> String {
    a.ok(M::POST, "/Groups", Some(group(name, parent, &[])), StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn new_member(a: &Scim<'_>, name: &str, org: &str) -> String {
    let mut u = user(name);
    u[TZU] = json!({"memberships": [{"value": org}]});
    a.ok(M::POST, "/Users", Some(u), StatusCode::CREATED).await["id"].as_str().unwrap().to_owned()
}

async fn rename(a: &Scim<'_>, id: &str, name: &str) {
    let p = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": name}]});
    a.ok(M::PATCH, &format!("/Groups/{id}"), Some(p), StatusCode::OK).await;
}

// SH-6.3.5 (push of the change feed), SH-6.2.4a (visible scope): failing then healthy receiver,
// signed events in cursor order, pending -> delivered, isolation between two applications.
async fn webhook_delivery(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let (hooks, base) = Hooks::start().await;
    let tax = new_group(&a, "税务局", None).await;
    let tax_dept = new_group(&a, "征管科", Some(&tax)).await;
    let health = new_group(&a, "卫健委", None).await;
    flow::catalogue_scope(&s, &a.token, "tongzheng:directory.read").await;
    let tax_app = app_reader(&s, &a.token, "tax-hook", &[&tax]).await;
    let _health_app = app_reader(&s, &a.token, "health-hook", &[&health]).await;
    hooks.fail_first("tax", 1);
    let (tax_url, health_url) = (format!("{base}/hook/tax"), format!("{base}/hook/health"));
    assert_eq!(put_app(&s, &a.token, "tax-hook", &[&tax], Some(&tax_url)).await.status(), StatusCode::OK);
    assert_eq!(put_app(&s, &a.token, "health-hook", &[&health], Some(&health_url)).await.status(), StatusCode::OK);
    let start = tax_app.list("/Changes").await["cursor"].clone();

    // Changes in both scopes, interleaved.
    let clerk = new_member(&a, "tax.clerk", &tax_dept).await;
    let doctor = new_member(&a, "doctor", &health).await;
    rename(&a, &tax_dept, "征管一科").await;
    rename(&a, &health, "卫健委一").await;

    // The first attempt fails (500) and stays pending with its error and next attempt.
    wait_for(20, "the failed first attempt", || hooks.arrivals("tax") >= 1).await;
    let mut status = Value::Null;
    for _ in 0..500 {
        status = deliveries(&s, &a.token, "tax-hook").await;
        if status["deliveries"][0]["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = &status["deliveries"][0];
    assert_eq!(first["state"], "pending", "{status}");
    assert_eq!(first["last_error"], "receiver answered 500 Internal Server Error", "{status}");
    assert!(first["next_attempt_at"].as_i64().unwrap() > s.clock.now(), "{status}");
    assert_eq!(status["webhook"], tax_url.as_str());
    // The receiver is healthy now; the backoff passes.
    s.clock.advance(2);
    wait_for(20, "the tax events", || hooks.accepted("tax").len() >= 2).await;
    wait_for(20, "the health events", || hooks.accepted("health").len() >= 2).await;

    let mut cursors = Vec::new();
    let mut seen_ids = Vec::new();
    for (ct, token) in hooks.accepted("tax") {
        assert_eq!(ct, "application/jwt");
        let (_, c) = verify(&s, &token).await;
        assert_eq!(c["iss"], s.state.config.issuer.as_str());
        assert_eq!(c["aud"], "tax-hook");
        assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()) && c["iat"].is_i64());
        assert!(seq(&c["cursor"]) > seq(&start), "only changes after the webhook was registered");
        cursors.push(seq(&c["cursor"]));
        for ch in c["changes"].as_array().unwrap() {
            assert_eq!(ch["cursor"], c["cursor"]);
            seen_ids.push(ch["id"].as_str().unwrap().to_owned());
        }
    }
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "in cursor order, no repeats: {cursors:?}");
    assert_eq!(seen_ids, [clerk.clone(), tax_dept.clone()], "the tax scope's changes, in order");
    // Isolation: the health receiver got its own changes and nothing of the tax scope.
    let mut health_ids = Vec::new();
    for (_, token) in hooks.accepted("health") {
        let (_, c) = verify(&s, &token).await;
        assert_eq!(c["aud"], "health-hook");
        health_ids.extend(c["changes"].as_array().unwrap().iter().map(|ch| ch["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(health_ids, [doctor.clone(), health.clone()]);

    // The admin API: every event delivered, the failed-once one after 2 attempts; the
    // progress cursor reached the feed's head (for this application's view).
    let mut status = Value::Null;
    for _ in 0..500 {
        status = deliveries(&s, &a.token, "tax-hook").await;
        if status["deliveries"].as_array().unwrap().iter().all(|d| d["state"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let list = status["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{status}");
    assert!(list.iter().all(|d| d["state"] == "delivered" && d.get("next_attempt_at").is_none()), "{status}");
    assert_eq!(list.last().unwrap()["attempts"], 2, "newest first; the oldest was retried: {status}");
    // A receiver that missed events resyncs from the feed after its last cursor: the same
    // changes, by SCIM.
    let resync = tax_app.list(&format!("/Changes?cursor={}", start.as_str().unwrap())).await;
    let ids: Vec<&str> = resync["changes"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [clerk.as_str(), tax_dept.as_str()]);

    // A crash after an event's outcome was recorded but before the progress moved past it:
    // the worker moves on without sending it again, and the next change goes out once.
    let store = &s.state.store;
    let mut p = tongzheng::directory::webhook::progress(store, "tax-hook").await.unwrap().unwrap();
    p.cursor = list[1]["cursor"].as_str().unwrap().to_owned();
    p.current = Some(list[0]["id"].as_str().unwrap().to_owned());
    tongzheng::directory::webhook::save_progress(store, "tax-hook", &p).await.unwrap();
    rename(&a, &tax, "税务局新").await;
    wait_for(20, "the next tax event", || hooks.accepted("tax").len() >= 3).await;
    let mut jtis = Vec::new();
    for (_, token) in hooks.accepted("tax") {
        jtis.push(verify(&s, &token).await.1["jti"].as_str().unwrap().to_owned());
    }
    let (_, c) = verify(&s, &hooks.accepted("tax")[2].1).await;
    assert_eq!(c["changes"][0]["id"], tax.as_str(), "the rename, not the delivered event again");
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "no event sent twice");

    // SH-6.2.4a: a visible scope change is pushed too, to that application only.
    let before = hooks.accepted("tax").len();
    assert_eq!(
        put_app(&s, &a.token, "health-hook", &[&health, &tax_dept], Some(&health_url)).await.status(),
        StatusCode::OK
    );
    wait_for(20, "the scope change event", || hooks.accepted("health").len() >= 3).await;
    let (_, c) = verify(&s, &hooks.accepted("health")[2].1).await;
    assert_eq!(
        c["changes"],
        json!([{"cursor": c["cursor"], "kind": "created", "resource": "Group", "id": tax_dept, "at": c["changes"][0]["at"], "subtree": true, "scope": true}])
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hooks.accepted("tax").len(), before, "the tax app's receiver is not told of another's scope");
}

// Issue 12: the webhook URL follows the outbound (SSRF) rules: https, or http on loopback in
// dev mode; private addresses refused. RFC 7807 problems, never a 5xx.
async fn webhook_url_rules(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    flow::catalogue_scope(&s, &a.token, "tongzheng:directory.read").await;
    let _app = app_reader(&s, &a.token, "url-hook", &[]).await;
    for bad in ["http://example.com/hook", "https://10.0.0.7/hook", "ftp://127.0.0.1/x", "not a url"] {
        let r = put_app(&s, &a.token, "url-hook", &[], Some(bad)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(v["detail"].as_str().unwrap().contains("directory_webhook"), "{v}");
    }
    let ok = put_app(&s, &a.token, "url-hook", &[], Some("https://hooks.example.gov.cn/tz")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let v = deliveries(&s, &a.token, "url-hook").await;
    assert_eq!(v["webhook"], "https://hooks.example.gov.cn/tz");
    let r = call(&s, &a.token, M::GET, "/admin/v1/applications/nope-app/webhook/deliveries", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // DC-8: the CLI shows the same status.
    let argv = vec![
        "--server",
        s.base.as_str(),
        "--client-id",
        crate::support::server::ADMIN_CLIENT,
        "--client-secret",
        crate::support::server::ADMIN_SECRET,
        "app",
        "webhook",
        "url-hook",
    ];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tongzheng::cli::run(argv, &mut out, &mut err).await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{out}{}", String::from_utf8_lossy(&err));
    assert!(out.contains("webhook: https://hooks.example.gov.cn/tz"), "{out}");
}

// SH-6.3.5: a receiver that never answers does not hold up another application's events; each
// attempt times out, and after the retry horizon the event is marked failed and the next one
// is tried (the receiver resyncs from the feed by cursor).
async fn dead_receiver_gives_up_and_blocks_no_one(b: Backend) {
    let s =
        TestServer::start_with(b, "[directory]\nwebhook_attempt_timeout_ms = 200\nwebhook_retry_horizon = 10\n").await;
    let a = admin(&s).await;
    let (hooks, base) = Hooks::start().await;
    let tax = new_group(&a, "税务局", None).await;
    let health = new_group(&a, "卫健委", None).await;
    flow::catalogue_scope(&s, &a.token, "tongzheng:directory.read").await;
    let _t = app_reader(&s, &a.token, "dead-hook", &[&tax]).await;
    let _h = app_reader(&s, &a.token, "live-hook", &[&health]).await;
    hooks.hang("dead");
    let (dead_url, live_url) = (format!("{base}/hook/dead"), format!("{base}/hook/live"));
    assert_eq!(put_app(&s, &a.token, "dead-hook", &[&tax], Some(&dead_url)).await.status(), StatusCode::OK);
    assert_eq!(put_app(&s, &a.token, "live-hook", &[&health], Some(&live_url)).await.status(), StatusCode::OK);
    rename(&a, &tax, "税务局一").await;
    rename(&a, &tax, "税务局二").await;
    wait_for(20, "the dead receiver reached", || hooks.arrivals("dead") >= 1).await;
    // While the dead receiver hangs, the live one is served.
    rename(&a, &health, "卫健委一").await;
    wait_for(20, "the live event", || hooks.accepted("live").len() == 1).await;
    // Each attempt times out and backs off; past the horizon the first event is failed and
    // the second is attempted.
    let mut status = Value::Null;
    for _ in 0..40 {
        s.clock.advance(3);
        status = deliveries(&s, &a.token, "dead-hook").await;
        if status["deliveries"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let list = status["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{status}");
    let (newest, oldest) = (&list[0], &list[1]);
    assert_eq!(oldest["state"], "failed", "{status}");
    assert!(oldest["attempts"].as_u64().unwrap() >= 2, "{status}");
    let err = oldest["last_error"].as_str().unwrap();
    assert!(err.contains("timed out") && err.contains("gave up"), "{err}");
    assert!(seq(&newest["cursor"]) > seq(&oldest["cursor"]), "{status}");
    assert!(hooks.accepted("dead").is_empty());
}

// SH-6.3.5: a receiver that fell behind the feed's retention is told to resync: one event with
// `resync: true`, no changes and the cursor to continue from (reading the feed from it is not a
// resync); then it is served change by change again.
async fn a_receiver_behind_the_retention_is_told_to_resync(b: Backend) {
    let s = TestServer::start(b).await;
    let a = admin(&s).await;
    let (hooks, base) = Hooks::start().await;
    let tax = new_group(&a, "税务局", None).await;
    flow::catalogue_scope(&s, &a.token, "tongzheng:directory.read").await;
    let tax_app = app_reader(&s, &a.token, "behind-hook", &[&tax]).await;
    hooks.fail_first("behind", usize::MAX);
    let url = format!("{base}/hook/behind");
    assert_eq!(put_app(&s, &a.token, "behind-hook", &[&tax], Some(&url)).await.status(), StatusCode::OK);
    rename(&a, &tax, "税务局一").await;
    rename(&a, &tax, "税务局二").await;
    wait_for(20, "the first failed attempt", || hooks.arrivals("behind") >= 1).await;
    // Past the retention (as a reader of the feed 31 days on would trim it): every entry the
    // receiver has not had is gone. The clock has not moved, so no retry ran meanwhile.
    let retention = s.state.config.directory.feed_retention_days * 86_400;
    let trimmed =
        tongzheng::directory::feed::trim(&s.state.store, s.clock.now() + retention + 86_400, retention).await.unwrap();
    assert!(trimmed >= 2, "both renames trimmed: {trimmed}");
    hooks.fail_first("behind", 0);
    let mut resync = None;
    for _ in 0..100 {
        s.clock.advance(2);
        for (_, token) in hooks.accepted("behind") {
            let (_, c) = verify(&s, &token).await;
            if c["resync"] == json!(true) {
                resync = Some(c);
            }
        }
        if resync.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = resync.expect("a resync event");
    assert_eq!(c["aud"], "behind-hook");
    assert_eq!(c["changes"], json!([]), "a resync names no changes: the receiver reads everything in full");
    let page = tax_app.list(&format!("/Changes?cursor={}", c["cursor"].as_str().unwrap())).await;
    assert_eq!(page["changes"], json!([]), "the cursor given is the head: {page}");
    // After the resync, changes go out one by one again.
    rename(&a, &tax, "税务局三").await;
    wait_for(20, "the next change", || {
        hooks.accepted("behind").iter().any(|(_, t)| {
            let claims = tongzheng::crypto::b64_decode(t.split('.').nth(1).unwrap()).unwrap();
            let c: Value = serde_json::from_slice(&claims).unwrap();
            c["resync"] != json!(true)
                && c["changes"][0]["id"] == tax.as_str()
                && seq(&c["cursor"]) > seq(&page["cursor"])
        })
    })
    .await;
}

per_backend!(
    webhook_delivery,
    webhook_url_rules,
    dead_receiver_gives_up_and_blocks_no_one,
    a_receiver_behind_the_retention_is_told_to_resync
);
