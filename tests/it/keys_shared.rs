//! Keys are shared state (issue 10, SH-7.2): every instance on one store signs with, verifies
//! with and publishes the same key set, opens what another sealed with the data key, and sees a
//! rotation made anywhere (admin API or CLI) within `keys.refresh_secs`.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow;
use crate::support::server::*;

fn kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect();
    kids.sort();
    kids
}

async fn jwks(s: &TestServer) -> Value {
    s.http.get(s.url("/jwks")).send().await.unwrap().json().await.unwrap()
}

fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["kid"].as_str().unwrap().to_owned()
}

async fn introspect(s: &TestServer, token: &str) -> Value {
    s.http
        .post(s.url("/introspect"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `cond` on `s`'s JWKS until it holds (bounded; never a timing assertion).
async fn wait_for_jwks(s: &TestServer, what: &str, cond: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = kids(&jwks(s).await);
        if cond(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: JWKS still {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn rotate(s: &TestServer) -> Vec<String> {
    let admin = flow::admin_token(s).await;
    let r = s.http.post(s.url("/admin/v1/keys/rotate")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["active_kids"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
}

// SH-7.2, RFC 7517 s5: instances started at the same moment on an empty store end up with one
// key set (the first writer wins, the others adopt it), and so does one started later.
async fn instances_started_together_agree(b: Backend) {
    let shared = SharedStore::new(b);
    let (a, c) = tokio::join!(TestServer::start_on_store(&shared, ""), TestServer::start_on_store(&shared, ""));
    let ka = kids(&jwks(&a).await);
    assert_eq!(ka.len(), 3, "one key per algorithm: {ka:?}");
    assert_eq!(ka, kids(&jwks(&c).await), "both instances publish the same keys");
    let later = TestServer::start_on_store(&shared, "").await;
    assert_eq!(ka, kids(&jwks(&later).await));
}

// AY-7.2b, RFC 7662 s2, OIDC Core s5.3, SH-8.2: a token signed by instance A validates at B,
// B's JWKS lists A's keys, and a phone number sealed by A reads at B.
async fn tokens_and_sealed_data_cross_instances(b: Backend) {
    let shared = SharedStore::new(b);
    let a = TestServer::start_on_store(&shared, "").await;
    let c = TestServer::start_on_store(&shared, "").await;
    let admin = flow::admin_token(&a).await;
    assert!(kids(&jwks(&c).await).contains(&kid_of(&admin)), "B publishes the key that signed A's token");
    assert_eq!(introspect(&c, &admin).await["active"], true, "A's token is active at B");
    let (code, pkce) = flow::web_code(&a, "openid profile").await;
    let (status, t) = flow::redeem(&a, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let r = c.http.get(c.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "A's access token at B's /userinfo");
    assert!(kids(&jwks(&c).await).contains(&kid_of(t["id_token"].as_str().unwrap())));

    let r = a
        .http
        .post(a.url("/admin/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "wang.wu", "password": "wang-wu-password", "phone_number": "+86 139 8765 4321"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let admin_b = flow::admin_token(&c).await;
    let got: Value = c
        .http
        .get(c.url(&format!("/admin/v1/users/{id}")))
        .bearer_auth(&admin_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["phone_number"], "+86 *******4321", "B opens the phone number A sealed: {got}");
}

// RFC 7517 s5, SH-7.2: a rotation through A's admin API is published by B within the refresh
// time (1 s here), tokens A signs with the new keys validate at B at once, and the old keys
// stay published.
async fn rotation_is_published_everywhere(b: Backend) {
    let shared = SharedStore::new(b);
    let overlay = "[keys]\nrefresh_secs = 1\n";
    let a = TestServer::start_on_store(&shared, overlay).await;
    let c = TestServer::start_on_store(&shared, overlay).await;
    let before = kids(&jwks(&c).await);
    let new = rotate(&a).await;
    // A token from the new key, presented at B before B's next refresh.
    let fresh = flow::admin_token(&a).await;
    assert!(new.contains(&kid_of(&fresh)));
    assert_eq!(introspect(&c, &fresh).await["active"], true, "B verifies a token signed by A's new key");
    wait_for_jwks(&c, "B publishes the rotated keys", |now| new.iter().chain(&before).all(|k| now.contains(k))).await;
    // B signs with the new keys too.
    let from_b = flow::admin_token(&c).await;
    assert!(new.contains(&kid_of(&from_b)), "B signs with the new active key");
}

per_backend!(
    instances_started_together_agree,
    tokens_and_sealed_data_cross_instances,
    rotation_is_published_everywhere
);
