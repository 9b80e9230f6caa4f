//! Separation of duties between the admin and the auditor (AY-8.5.2.1, GB-6.8, 三员分立;
//! issue 9): the admin API neither grants the auditor's scopes nor touches a client holding
//! them, and events ingested from downstream are marked with their sender and never pass for
//! this platform's own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::lifecycle::{application, call, problem};
use crate::support::flow;
use crate::support::server::{ADMIN_CLIENT, AUDITOR_CLIENT, AUDITOR_SECRET, Backend, TestServer};

/// The dev seed clients plus a downstream platform's forwarder holding the ingest scope, as an
/// upstream's configuration declares it (config is where the auditor's clients live).
pub const WITH_FORWARDER: &str = r#"
[[seed.clients]]
client_id = "admin-cli"
client_secret = "admin-cli-secret-0123456789abcdef"
name = "Bootstrap admin"
grant_types = ["client_credentials"]
scopes = ["tongzheng:admin"]
token_endpoint_auth_method = "client_secret_basic"

[[seed.clients]]
client_id = "auditor-cli"
client_secret = "auditor-cli-secret-0123456789abcdef"
name = "Bootstrap auditor"
grant_types = ["client_credentials"]
scopes = ["tongzheng:audit"]
token_endpoint_auth_method = "client_secret_basic"

[[seed.clients]]
client_id = "county-platform"
client_secret = "county-platform-secret-0123456789"
name = "County platform (audit forwarding)"
grant_types = ["client_credentials"]
scopes = ["tongzheng:audit.ingest"]
token_endpoint_auth_method = "client_secret_basic"
"#;

/// The forwarder of [`WITH_FORWARDER`].
pub const FORWARDER: (&str, &str) = ("county-platform", "county-platform-secret-0123456789");

/// A client_credentials token; `None` when the token endpoint refuses.
pub async fn token(s: &TestServer, id: &str, secret: &str, scope: Option<&str>) -> Option<String> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    let r = s.http.post(s.url("/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
    if r.status() != StatusCode::OK {
        return None;
    }
    Some(r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned())
}

fn reserved(p: &Value) {
    assert!(p["detail"].as_str().unwrap().contains("auditor role"), "{p}");
}

// "The admin can create a client holding tongzheng:audit" (issue 9): refused, and so is the
// ingest scope, on a standalone client and through an application's grant.
async fn admin_cannot_create_auditor_clients(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    for scope in ["tongzheng:audit", "tongzheng:audit.ingest", "openid tongzheng:audit"] {
        let body = json!({"client_id": "shadow-auditor", "grant_types": ["client_credentials"], "scope": scope});
        let p = problem(
            call(&s, &admin, Method::POST, "/admin/v1/clients", Some(body)).await,
            StatusCode::FORBIDDEN,
            scope,
        )
        .await;
        reserved(&p);
    }
    let mut app = application("shadow-app", "office");
    app["grants"]["scopes"] = json!(["openid", "tongzheng:audit.ingest"]);
    let r = call(&s, &admin, Method::POST, "/admin/v1/applications", Some(app)).await;
    reserved(&problem(r, StatusCode::FORBIDDEN, "application granted the ingest scope").await);
    let r = call(&s, &admin, Method::GET, "/admin/v1/clients/shadow-auditor", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

// "... add that scope to itself" and "grant itself tongzheng:audit.ingest" (issue 9): refused;
// the admin's own client keeps only its scope.
async fn admin_cannot_grant_itself_audit_scopes(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let path = format!("/admin/v1/clients/{ADMIN_CLIENT}");
    let mut me: Value = call(&s, &admin, Method::GET, &path, None).await.json().await.unwrap();
    for scope in ["tongzheng:admin tongzheng:audit", "tongzheng:admin tongzheng:audit.ingest"] {
        me["scope"] = json!(scope);
        let p =
            problem(call(&s, &admin, Method::PUT, &path, Some(me.clone())).await, StatusCode::FORBIDDEN, scope).await;
        reserved(&p);
    }
    let now: Value = call(&s, &admin, Method::GET, &path, None).await.json().await.unwrap();
    // The dev admin also holds the directory scopes (issue 12), and nothing of the auditor's.
    assert_eq!(now["scope"], "tongzheng:admin tongzheng:directory.write tongzheng:directory.sensitive");
    let secret = crate::support::server::ADMIN_SECRET;
    assert!(token(&s, ADMIN_CLIENT, secret, Some("tongzheng:audit")).await.is_none());
    assert!(token(&s, ADMIN_CLIENT, secret, Some("tongzheng:audit.ingest")).await.is_none());
}

// "... rotate the auditor's secret and read it" (issue 9): the auditor's client is untouchable
// by the admin API: no rotation, no change, no deletion; its secret keeps working.
async fn admin_cannot_touch_the_auditor(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let path = format!("/admin/v1/clients/{AUDITOR_CLIENT}");
    let r = call(&s, &admin, Method::POST, &format!("{path}/secret"), Some(json!({"overlap_seconds": 0}))).await;
    let p = problem(r, StatusCode::FORBIDDEN, "rotate the auditor's secret").await;
    reserved(&p);
    assert!(p.get("client_secret").is_none());
    let mut auditor: Value = call(&s, &admin, Method::GET, &path, None).await.json().await.unwrap();
    auditor["scope"] = json!("tongzheng:audit openid");
    reserved(
        &problem(call(&s, &admin, Method::PUT, &path, Some(auditor)).await, StatusCode::FORBIDDEN, "update").await,
    );
    reserved(&problem(call(&s, &admin, Method::DELETE, &path, None).await, StatusCode::FORBIDDEN, "delete").await);
    assert!(token(&s, AUDITOR_CLIENT, AUDITOR_SECRET, None).await.is_some(), "the auditor's secret still works");
    // Nor may the admin edit the auditor's scopes in the catalogue.
    for name in ["tongzheng:audit", "tongzheng:audit.ingest"] {
        let p = format!("/admin/v1/scopes/{name}");
        let r = call(&s, &admin, Method::PUT, &p, Some(json!({"description": "anything"}))).await;
        reserved(&problem(r, StatusCode::FORBIDDEN, "edit an auditor scope").await);
        reserved(&problem(call(&s, &admin, Method::DELETE, &p, None).await, StatusCode::FORBIDDEN, "remove").await);
    }
}

// "... inject back-dated events in the auditor's name" (issue 9, GB-6.8c): every ingested event
// carries its authenticated sender, and an event claiming this platform's origin is refused.
async fn ingested_events_are_marked_and_cannot_claim_our_origin(b: Backend) {
    let s = TestServer::start_with(b, WITH_FORWARDER).await;
    let forwarder = token(&s, FORWARDER.0, FORWARDER.1, None).await.unwrap();
    let post = |body: String| {
        let req = s
            .http
            .post(s.url("/admin/v1/audit/ingest"))
            .bearer_auth(&forwarder)
            .header("content-type", "application/x-ndjson")
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let back_dated = s.clock.now() - 30 * 86_400;
    let ours = json!({"id": "forged-1", "time": back_dated, "kind": "admin_action", "actor": "client:auditor-cli",
                      "outcome": "success", "origin": s.base});
    let p = problem(post(format!("{ours}\n")).await, StatusCode::BAD_REQUEST, "our origin").await;
    assert!(p["detail"].as_str().unwrap().contains("line 1"), "{p}");
    let theirs = json!({"id": "c-1", "time": back_dated, "kind": "login_success", "actor": "client:auditor-cli",
                        "outcome": "success", "origin": "https://county.example.gov.cn",
                        "ingested_by": "client:auditor-cli"});
    assert_eq!(post(format!("{theirs}\n")).await.status(), StatusCode::OK);
    s.state.audit.flush().await;
    let auditor = token(&s, AUDITOR_CLIENT, AUDITOR_SECRET, None).await.unwrap();
    let q = format!("/admin/v1/audit/events?from={}&to={}", back_dated - 1, back_dated + 1);
    let got: Value = s.http.get(s.url(&q)).bearer_auth(&auditor).send().await.unwrap().json().await.unwrap();
    let events = got["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{got}");
    assert_eq!(events[0]["id"], "c-1");
    assert_eq!(events[0]["ingested_by"], format!("client:{}", FORWARDER.0), "the sender, not what the line said");
}

per_backend!(
    admin_cannot_create_auditor_clients,
    admin_cannot_grant_itself_audit_scopes,
    admin_cannot_touch_the_auditor,
    ingested_events_are_marked_and_cannot_claim_our_origin,
);
