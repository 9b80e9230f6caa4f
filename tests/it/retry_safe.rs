//! Retry-safe redemption (issue 10): a code or refresh redemption whose answer is lost inside
//! the server after the single-use mark (the store applied the write, the reply timed out) can be
//! retried with the same input and gets the same answer; a replay after the answer was given is
//! still a replay (RFC 6749 s4.1.2, RFC 9700 s4.14.2).

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flaky::Flaky;
use crate::support::flow;
use crate::support::server::*;

per_backend!(
    a_code_redemption_lost_inside_the_server_can_be_retried,
    a_code_redemption_failing_before_its_mark_can_be_retried,
    a_refresh_lost_inside_the_server_can_be_retried
);

async fn server(b: Backend) -> (TestServer, Arc<Flaky>) {
    let clock = manual_clock();
    let (_, inner) = store_for(b, &clock);
    let flaky = Flaky::new(inner);
    (TestServer::start_on_custom_store(flaky.clone(), clock, "").await, flaky)
}

async fn active(s: &TestServer, token: &str) -> bool {
    flow::introspect_as_admin(s, token).await["active"] == true
}

async fn refresh(s: &TestServer, rt: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

// RFC 6749 s4.1.3 with a lost reply: 503, then the retry gets the very same tokens, and a third
// presentation is a replay that revokes them (s4.1.2).
async fn a_code_redemption_lost_inside_the_server_can_be_retried(b: Backend) {
    let (s, flaky) = server(b).await;
    let (code, pkce) = flow::web_code(&s, "openid offline_access").await;
    flaky.arm();
    let (status, e) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable")));
    let (status, first) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "the retry: {first}");
    assert!(active(&s, first["access_token"].as_str().unwrap()).await);
    let (status, again) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "a replay");
    assert!(!active(&s, first["access_token"].as_str().unwrap()).await, "the replay revoked what the code issued");
}

// RFC 6749 s4.1.3 when the store fails before the code is marked (after its family and tokens
// were written): the retry adopts that work and succeeds; the code is not burned.
async fn a_code_redemption_failing_before_its_mark_can_be_retried(b: Backend) {
    let (s, flaky) = server(b).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    flaky.refuse_next();
    let (status, _) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, tokens) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "the retry: {tokens}");
    assert!(active(&s, tokens["access_token"].as_str().unwrap()).await);
    let (status, _) = flow::redeem(&s, &code, &pkce).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "then a replay");
    assert!(!active(&s, tokens["access_token"].as_str().unwrap()).await);
}

// RFC 9700 s4.14.2 with a lost reply (default grace 0): 503, then the retry gets the same
// successor; the successor works; the rotated token presented after that is reuse.
async fn a_refresh_lost_inside_the_server_can_be_retried(b: Backend) {
    let (s, flaky) = server(b).await;
    let (code, pkce) = flow::web_code(&s, "openid").await;
    let rt = flow::redeem(&s, &code, &pkce).await.1["refresh_token"].as_str().unwrap().to_owned();
    flaky.arm();
    let (status, e) = refresh(&s, &rt).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable")));
    let (status, retried) = refresh(&s, &rt).await;
    assert_eq!(status, StatusCode::OK, "the retry: {retried}");
    let next = retried["refresh_token"].as_str().unwrap().to_owned();
    assert!(active(&s, &next).await, "the successor is alive");
    let (status, _) = refresh(&s, &rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "after the answer was given, a replay is reuse");
    assert!(!active(&s, &next).await, "reuse revoked the family");
}

// JM-5 (every function answers within 5 s): with the store answering each call slowly, every
// kind of endpoint still answers 503 with Retry-After within the configured deadline, each in
// its own error format.
#[tokio::test]
async fn a_slow_store_never_holds_a_request_past_its_deadline() {
    let clock = manual_clock();
    let flaky = Flaky::new(Arc::new(tongzheng::store::memory::MemoryStore::with_clock(clock.clone())));
    let s = TestServer::start_on_custom_store(flaky.clone(), clock, "[server]\nrequest_deadline_ms = 300\n").await;
    let admin = flow::admin_token(&s).await;
    flaky.stall(std::time::Duration::from_secs(3));
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "temporarily_unavailable", "RFC 6749 s5.2 JSON");
    let r = s.http.get(s.url("/admin/v1/users")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["content-type"], "application/problem+json", "RFC 7807 for the admin API");
    let r = s.http.get(s.url("/authorize")).query(&[("client_id", WEB_CLIENT)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "a page for the browser");
    // Without the deadline each of these would have waited for the store and then succeeded: a
    // 503 is only ever the deadline's answer here.
    flaky.stall(std::time::Duration::ZERO);
}
