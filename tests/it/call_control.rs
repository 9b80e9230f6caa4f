//! Call control and least privilege (AY-7.1, AY-8.3.2.1): the scope catalogue, per-client rate
//! limits at the token endpoint and tongzheng's own APIs (429 with Retry-After), and client
//! secret rotation with an overlap window (secrets shown once, stored as SHA-256).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::lifecycle::problem;
use crate::support::flow;
use crate::support::server::*;

per_backend!(rate_limits_per_client, secret_rotation_overlap, scope_catalogue_rules);

async fn new_client(s: &TestServer, admin: &str, body: Value) -> String {
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["client_secret"].as_str().unwrap().to_owned()
}

async fn cc(s: &TestServer, id: &str, secret: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    s.http.post(s.url("/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap()
}

// AY-8.3.2.1: a client's own limit, 429 with Retry-After in the endpoint's format, recovery.
async fn rate_limits_per_client(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    flow::catalogue_scope(&s, &admin, "api.read").await;
    let body = json!({"client_id": "busy-system", "grant_types": ["client_credentials"], "scope": "api.read",
                      "rate_limit": {"per_second": 1, "burst": 2}});
    let secret = new_client(&s, &admin, body).await;
    // The manual clock stands still: the first request and a burst of two pass, then 429.
    for i in 0..3 {
        assert_eq!(cc(&s, "busy-system", &secret, None).await.status(), StatusCode::OK, "request {i}");
    }
    let r = cc(&s, "busy-system", &secret, None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "temporarily_unavailable");
    assert!(e["error_description"].as_str().unwrap().contains("rate limit"), "{e}");
    // Other clients are not affected.
    assert_eq!(cc(&s, WEB_CLIENT, WEB_SECRET, None).await.status(), StatusCode::OK);
    // The introspection endpoint counts against the same limit.
    let r = s
        .http
        .post(s.url("/introspect"))
        .basic_auth("busy-system", Some(secret.as_str()))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Time heals.
    s.clock.advance(2);
    assert_eq!(cc(&s, "busy-system", &secret, None).await.status(), StatusCode::OK);
    // The refusal is counted.
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tongzheng_rate_limited_total{client_id=\"busy-system\"}"), "{metrics}");
}

// AY-8.3.2.1 on tongzheng's own APIs: the platform default applies to the admin API too, as
// RFC 7807 problems with Retry-After.
#[tokio::test]
async fn admin_api_is_rate_limited() {
    let s = TestServer::start_with(Backend::Memory, "[rate_limit]\ndefault_per_second = 1\ndefault_burst = 1\n").await;
    let admin = flow::admin_token(&s).await;
    let r = s.http.get(s.url("/admin/v1/scopes")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.http.get(s.url("/admin/v1/scopes")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS, "admin over its limit").await;
    assert_eq!(p["type"], "urn:tongzheng:problem:rate-limited");
    s.clock.advance(1);
    let r = s.http.get(s.url("/admin/v1/scopes")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

// Secrets: shown once, SHA-256 at rest, rotated with an overlap so a fleet can switch.
async fn secret_rotation_overlap(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let old =
        new_client(&s, &admin, json!({"client_id": "rotating", "grant_types": ["client_credentials"], "scope": ""}))
            .await;
    let stored = s.state.store.get(&tongzheng::store::keys::client("rotating")).await.unwrap().unwrap();
    let stored = String::from_utf8_lossy(&stored).into_owned();
    assert!(!stored.contains(&old) && stored.contains(&tongzheng::crypto::sha256_hex(old.as_bytes())));
    let rotate = |overlap: Option<i64>| {
        let req = s.http.post(s.url("/admin/v1/clients/rotating/secret")).bearer_auth(&admin);
        let req = match overlap {
            Some(o) => req.json(&json!({"overlap_seconds": o})),
            None => req,
        };
        async move { req.send().await.unwrap() }
    };
    let r = rotate(Some(3600)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let new = v["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(v["previous_secrets_expire_at"], s.clock.now() + 3600);
    // Both work during the overlap; the view lists two expiries and no secret.
    assert_eq!(cc(&s, "rotating", &old, None).await.status(), StatusCode::OK);
    assert_eq!(cc(&s, "rotating", &new, None).await.status(), StatusCode::OK);
    let view: Value =
        s.http.get(s.url("/admin/v1/clients/rotating")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(view["secret_expires_at"], json!([s.clock.now() + 3600, null]));
    assert!(!view.to_string().contains(&new));
    // After it, only the new one.
    s.clock.advance(3601);
    let admin = flow::admin_token(&s).await;
    assert_eq!(cc(&s, "rotating", &old, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cc(&s, "rotating", &new, None).await.status(), StatusCode::OK);
    // Overlap 0: the old secret stops at once. No body: the configured overlap (1 day).
    let r = s
        .http
        .post(s.url("/admin/v1/clients/rotating/secret"))
        .bearer_auth(&admin)
        .json(&json!({"overlap_seconds": 0}))
        .send()
        .await
        .unwrap();
    let newest = r.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(cc(&s, "rotating", &new, None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cc(&s, "rotating", &newest, None).await.status(), StatusCode::OK);
    let r = s.http.post(s.url("/admin/v1/clients/rotating/secret")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["previous_secrets_expire_at"], s.clock.now() + 86_400);
    // Bad input and public clients are refused as problems.
    let r = s
        .http
        .post(s.url("/admin/v1/clients/rotating/secret"))
        .bearer_auth(&admin)
        .json(&json!({"overlap_seconds": -1}))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST, "negative overlap").await;
    let r =
        s.http.post(s.url(&format!("/admin/v1/clients/{SPA_CLIENT}/secret"))).bearer_auth(&admin).send().await.unwrap();
    problem(r, StatusCode::CONFLICT, "public client").await;
    let r = s.http.post(s.url("/admin/v1/clients/nobody/secret")).bearer_auth(&admin).send().await.unwrap();
    problem(r, StatusCode::NOT_FOUND, "unknown client").await;
    // Audited as a rotation, without the secret.
    s.state.audit.flush().await;
    let text: String = std::fs::read_dir(&s.state.config.audit.dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(text.contains("\"kind\":\"secret_rotated\""));
    assert!(!text.contains(&newest));
}

// AY-7.1: the catalogue names every grantable scope; tokens carry only granted scopes.
async fn scope_catalogue_rules(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let list: Value =
        s.http.get(s.url("/admin/v1/scopes")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let names: Vec<&str> = list["scopes"].as_array().unwrap().iter().filter_map(|d| d["name"].as_str()).collect();
    for built_in in ["openid", "phone", "tongzheng:admin", "tongzheng:audit", "api.read"] {
        assert!(names.contains(&built_in), "{built_in} in {names:?}");
    }
    let post = |body: Value| {
        let req = s.http.post(s.url("/admin/v1/scopes")).bearer_auth(&admin).json(&body);
        async move { req.send().await.unwrap() }
    };
    assert_eq!(post(json!({"name": "org.read", "description": "读取组织机构"})).await.status(), StatusCode::CREATED);
    problem(post(json!({"name": "org.read", "description": "again"})).await, StatusCode::CONFLICT, "duplicate").await;
    problem(post(json!({"name": "bad scope", "description": "x"})).await, StatusCode::BAD_REQUEST, "space").await;
    problem(post(json!({"name": "openid", "description": "x"})).await, StatusCode::CONFLICT, "built-in").await;
    let r = s.http.delete(s.url("/admin/v1/scopes/openid")).bearer_auth(&admin).send().await.unwrap();
    problem(r, StatusCode::CONFLICT, "remove built-in").await;
    // A client may only be granted catalogue scopes.
    let r = s
        .http
        .post(s.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({"client_id": "reader", "grant_types": ["client_credentials"], "scope": "org.read org.write"}))
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::BAD_REQUEST, "uncatalogued").await;
    assert!(p["detail"].as_str().unwrap().contains("org.write"), "{p}");
    let secret = new_client(
        &s,
        &admin,
        json!({"client_id": "reader", "grant_types": ["client_credentials"], "scope": "org.read"}),
    )
    .await;
    // A held scope cannot be removed.
    let r = s.http.delete(s.url("/admin/v1/scopes/org.read")).bearer_auth(&admin).send().await.unwrap();
    let p = problem(r, StatusCode::CONFLICT, "held").await;
    assert_eq!(p["holders"], json!(["client reader"]));
    // RFC 6749 s5.2 / AY-7.1: asking beyond the grant is invalid_scope; the token carries
    // exactly the grant.
    let r = cc(&s, "reader", &secret, Some("org.read api.read")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let t: Value = cc(&s, "reader", &secret, None).await.json().await.unwrap();
    assert_eq!(t["scope"], "org.read");
    // tongzheng's own APIs check their scope: this token cannot administer.
    let r =
        s.http.get(s.url("/admin/v1/scopes")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"tongzheng\", error=\"insufficient_scope\"");
    problem(r, StatusCode::FORBIDDEN, "reader administers").await;
    // Unused scopes can go.
    let r = s.http.delete(s.url("/admin/v1/clients/reader")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.http.delete(s.url("/admin/v1/scopes/org.read")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}
