//! Redis outages and several instances on one Redis: while Redis is down the server answers
//! 503 with an OAuth-shaped error within a second and issues nothing; it recovers by itself.
//! Instances sharing Redis share sessions and codes, so rolling restarts lose nothing (SH-7.2,
//! DC-7, SH-6.2.4d).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flow::{self, location, query};
use crate::support::redis::{RedisServer, unique_prefix};
use crate::support::server::*;

async fn client_credentials(s: &TestServer) -> reqwest::Response {
    s.http
        .post(s.url("/token"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
}

#[tokio::test]
async fn redis_outage_gives_fast_503_and_recovers() {
    let mut redis = RedisServer::dedicated();
    let s = TestServer::start_on_redis(&redis.url(), &unique_prefix(), "").await;
    assert_eq!(client_credentials(&s).await.status(), StatusCode::OK);
    let _ = flow::web_code(&s, "openid").await;
    assert_eq!(s.http.get(s.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);

    redis.stop();
    // Token endpoint: 503 temporarily_unavailable, quickly (bounded; not a performance assertion).
    let started = Instant::now();
    let r = client_credentials(&s).await;
    assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // /authorize with a live session cookie: no code is issued whose state was not stored.
    let r = flow::authorize(
        &s,
        &[("response_type", "code"), ("client_id", WEB_CLIENT), ("redirect_uri", WEB_REDIRECT), ("scope", "openid")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(location(&r).is_empty(), "no redirect with a code");
    // SH-6.2.4d: readiness tells the truth; liveness stays up.
    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["store"], "unreachable");
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);

    redis.restart();
    // The same server, with no restart of its own, recovers: Redis ran without persistence here
    // and came back empty, and the bootstrap clients from config are written again (readiness
    // says not ready until they are).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.http.get(s.url("/readyz")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = client_credentials(&s).await;
    assert_eq!(r.status(), StatusCode::OK, "the bootstrap admin client was seeded again");
}

// SH-7.2: two instances on one Redis; a rolling restart keeps sessions and pending codes.
#[tokio::test]
async fn instances_share_sessions_and_codes() {
    let redis = crate::support::redis::shared();
    let prefix = unique_prefix();
    let issuer = "issuer = \"https://id.example.test\"";
    let a = TestServer::start_on_redis(&redis.url(), &prefix, issuer).await;
    let b = TestServer::start_on_redis(&redis.url(), &prefix, issuer).await;
    // Log in at A; the cookie jar is per host, so use A's browser against B as well.
    let (code, pkce) = flow::web_code(&a, "openid").await;
    // B redeems a code A issued.
    let (status, tok) = flow::redeem(&b, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    // A restarted instance (new process state, same Redis) still knows the SSO session: the
    // same browser (cookies are per host, not per port: RFC 6265 s8.5) gets a code at once.
    let browser = a.browser.clone();
    drop(a);
    let a2 = TestServer::start_on_redis(&redis.url(), &prefix, issuer).await;
    let r = browser
        .get(a2.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert!(query(&location(&r)).contains_key("code"), "SSO survived the restart");
    // Tokens minted by one instance validate at the other.
    let at = tok["access_token"].as_str().unwrap();
    let r = a2.http.get(a2.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
