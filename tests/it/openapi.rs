//! The admin API's OpenAPI 3.1 document (DC-8): generated from the route table, it lists every
//! admin route (each documented operation answers; none falls through to "no such endpoint"),
//! with unique operation ids, the scope each needs, and schemas for the bodies.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flow;
use crate::support::server::*;

async fn token(s: &TestServer, id: &str, secret: &str, scope: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    let r = s.http.post(s.url("/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_admin_route_is_documented() {
    let s = TestServer::start(Backend::Memory).await;
    let r = s.http.get(s.url("/admin/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], s.base);
    let paths = doc["paths"].as_object().unwrap();

    // The lifecycle, catalogue, secret and audit routes are all there.
    for (path, method) in [
        ("/admin/v1/applications", "post"),
        ("/admin/v1/applications/{id}/reviews", "post"),
        ("/admin/v1/applications/{id}/transitions", "post"),
        ("/admin/v1/applications/{id}/suspension/extension", "post"),
        ("/admin/v1/applications/{id}/archive", "get"),
        ("/admin/v1/scopes/{name}", "delete"),
        ("/admin/v1/clients/{id}/secret", "post"),
        ("/admin/v1/audit/events", "get"),
        ("/admin/v1/audit/export", "get"),
        ("/admin/v1/audit/ingest", "post"),
        ("/admin/v1/users/{id}/logout", "post"),
        ("/admin/v1/logout/deliveries", "get"),
        ("/admin/v1/keys/rotate", "post"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in
        ["ApplicationInput", "TransitionInput", "ReviewInput", "ExtensionInput", "State", "ScopeBody", "ProblemDoc"]
    {
        assert!(schemas.contains_key(name), "schema {name} missing: {:?}", schemas.keys().collect::<Vec<_>>());
    }
    // The lifecycle states, each with its description (schemars writes documented variants
    // as oneOf of consts).
    let state = &doc["components"]["schemas"]["State"];
    let states: Vec<&str> = match state["enum"].as_array() {
        Some(list) => list.iter().filter_map(Value::as_str).collect(),
        None => state["oneOf"].as_array().unwrap().iter().filter_map(|v| v["const"].as_str()).collect(),
    };
    assert_eq!(
        states,
        ["applied", "approved", "pre_release", "released", "suspended", "temporarily_offline", "offline"]
    );

    // Every documented operation exists: called with a token of the scope it names, it never
    // lands on the fallback ("no such endpoint") and never gets 405.
    let admin = flow::admin_token(&s).await;
    let auditor = token(&s, AUDITOR_CLIENT, AUDITOR_SECRET, None).await;
    let mut ids = HashSet::new();
    let mut count = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            assert!(op["summary"].is_string() && op["responses"].is_object(), "{id}");
            let scope = op["security"][0]["bearer"][0].as_str().unwrap();
            let bearer = match scope {
                "tongzheng:admin" => admin.clone(),
                "tongzheng:audit" => auditor.clone(),
                // No client holds the ingest scope here: the route must still exist (403).
                _ => admin.clone(),
            };
            let url = s.url(
                &path.replace("{id}", "no-such-thing").replace("{sid}", "no-such-sid").replace("{name}", "no.such"),
            );
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.http.request(m, &url).bearer_auth(&bearer).json(&serde_json::json!({})).send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(body["detail"] != "no such endpoint", "{method} {path} is documented but not routed");
            assert!(status != StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}: {body}");
        }
    }
    assert!(count >= 35, "{count} operations");
}
