//! The minimal admin API (DC-8): clients and users, authorized by a tongzheng access token
//! with the admin scope, RFC 7807 problems for every error; and key rotation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow;
use crate::support::server::*;

per_backend!(clients_crud, users_crud);
// The admin API on a Redis Cluster too.
on_cluster!(clients_crud, users_crud);

fn is_problem(r: &reqwest::Response) -> bool {
    r.headers().get("content-type").is_some_and(|v| v == "application/problem+json")
}

async fn clients_crud(b: Backend) {
    let s = TestServer::start(b).await;
    let url = s.url("/admin/v1/clients");
    // No token: 401 problem; a token without the admin scope: 403 problem.
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(is_problem(&r));
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let weak = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let r = s.http.get(&url).bearer_auth(&weak).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(is_problem(&r));
    let admin = flow::admin_token(&s).await;
    flow::catalogue_scope(&s, &admin, "api.write").await;
    // Create: the secret is shown once; admin-created clients sign ID tokens with ES256.
    let body = json!({"client_id": "biz-system", "grant_types": ["client_credentials"], "scope": "api.read", "client_name": "业务系统"});
    let r = s.http.post(&url).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "256-bit random secret");
    assert_eq!(created["id_token_signed_response_alg"], "ES256");
    let r = s.http.post(&url).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(is_problem(&r));
    let got: Value = s
        .http
        .get(s.url("/admin/v1/clients/biz-system"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(got.get("client_secret").is_none(), "never shown again");
    assert!(!got.to_string().contains(&secret));
    let list: Value = s.http.get(&url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert!(list["clients"].as_array().unwrap().iter().any(|c| c["client_id"] == "biz-system"));
    // AY-7.1: it holds only what it was granted.
    let cc = |scope: &'static str, secret: String| {
        let http = s.http.clone();
        let url = s.url("/token");
        async move {
            http.post(url)
                .basic_auth("biz-system", Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .unwrap()
        }
    };
    let r = cc("api.read", secret.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let live = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(cc("api.write", secret.clone()).await.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // Update, then disable: its live token stops introspecting active and no new token is issued.
    let r = s
        .http
        .put(s.url("/admin/v1/clients/biz-system"))
        .bearer_auth(&admin)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "api.read api.write"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(cc("api.write", secret.clone()).await.status(), StatusCode::OK);
    let r = s
        .http
        .put(s.url("/admin/v1/clients/biz-system"))
        .bearer_auth(&admin)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "api.read", "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let i: Value = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("token", live.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], false);
    assert_eq!(cc("api.read", secret.clone()).await.status(), StatusCode::UNAUTHORIZED);
    // Bad input is a problem document, not a 500.
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"client_id": "x y", "grant_types": ["client_credentials"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(is_problem(&r));
    let r = s.http.post(&url).bearer_auth(&admin).json(&json!({"grant_types": ["implicit"]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(is_problem(&r));
    // Delete.
    assert_eq!(
        s.http.delete(s.url("/admin/v1/clients/biz-system")).bearer_auth(&admin).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let r = s.http.get(s.url("/admin/v1/clients/biz-system")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(is_problem(&r));
}

async fn users_crud(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let url = s.url("/admin/v1/users");
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"username": "wang.wu", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "weak password");
    let r = s.http.post(&url).bearer_auth(&admin).json(&json!({"username": "wang.wu", "password": "wang-wu-password", "name": "王五", "email": "ww@example.gov.cn"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let u: Value = r.json().await.unwrap();
    assert!(!u.to_string().contains("argon2"), "no password hash in output");
    let id = u["id"].as_str().unwrap().to_owned();
    let r = s
        .http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"username": "WANG.WU", "password": "another-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "usernames are unique case-insensitively");
    // The user logs in through the login page.
    let r = flow::authorize(
        &s,
        &[("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")],
    )
    .await;
    let login = flow::location(&r);
    let r = flow::submit_login(&s, &login, "wang.wu", "wang-wu-password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Disabled: the login fails with the generic message.
    let r = s
        .http
        .put(s.url(&format!("/admin/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("prompt", "login"),
        ],
    )
    .await;
    let login = flow::location(&r);
    let r = flow::submit_login(&s, &login, "wang.wu", "wang-wu-password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let list: Value = s.http.get(&url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert!(list["users"].as_array().unwrap().iter().any(|u| u["username"] == "wang.wu"));
    assert_eq!(
        s.http.delete(s.url(&format!("/admin/v1/users/{id}"))).bearer_auth(&admin).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.http.get(s.url(&format!("/admin/v1/users/{id}"))).bearer_auth(&admin).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

// Keys: rotation adds a new active key; tokens signed before it still validate (old key stays
// in the JWKS until its tokens expire).
#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid() {
    let s = TestServer::start(Backend::Memory).await;
    let admin = flow::admin_token(&s).await;
    let before: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let r = s.http.post(s.url("/admin/v1/keys/rotate")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let new_kids: Vec<String> = r.json::<Value>().await.unwrap()["active_kids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let after: Value = s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = after["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    for k in before["keys"].as_array().unwrap() {
        assert!(kids.contains(&k["kid"].as_str().unwrap()), "old key still published");
    }
    for k in &new_kids {
        assert!(kids.contains(&k.as_str()));
    }
    let i: Value = s
        .http
        .post(s.url("/introspect"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], true, "a token signed before the rotation still validates");
    let fresh = flow::admin_token(&s).await;
    let h: Value =
        serde_json::from_slice(&tongzheng::crypto::b64_decode(fresh.split('.').next().unwrap()).unwrap()).unwrap();
    assert!(new_kids.iter().any(|k| h["kid"] == k.as_str()), "new tokens use the new key");
}
