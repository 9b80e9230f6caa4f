//! `GET /metrics`: the Prometheus text format 0.0.4 parses line by line, requests are counted by
//! route template and status, store calls are timed, logout delivery outcomes are counted, and a
//! configured token guards the scrape.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;
use tongzheng::logout::{Reason, outbox};
use tongzheng::session::Session;

use crate::support::flow;
use crate::support::receiver::{Mode, Receivers};
use crate::support::server::*;

per_backend!(scrape_counts_requests_and_store_calls);

const TOKEN: &str = "metrics-scrape-token-0123456789";

/// Parses one `name{label="value",...}` series name, returning the metric name and labels;
/// panics on anything the text format does not allow.
fn parse_series(series: &str) -> (String, Vec<(String, String)>) {
    let (name, rest) = series.split_once('{').unwrap_or((series, ""));
    assert!(!name.is_empty(), "empty name in {series:?}");
    assert!(
        name.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())),
        "bad metric name {name:?}"
    );
    let mut labels = Vec::new();
    if series.contains('{') {
        let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in {series:?}"));
        let mut chars = body.chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            assert!(!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad label {key:?}");
            assert_eq!(chars.next(), Some('"'), "label value not quoted in {series:?}");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?} in {series:?}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("unterminated value in {series:?}"),
                }
            }
            labels.push((key, value));
            match chars.next() {
                Some(',') | None => {}
                Some(c) => panic!("unexpected {c:?} after a label in {series:?}"),
            }
        }
    }
    (name.to_owned(), labels)
}

/// Checks every line of a scrape and returns the samples by their series text.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut typed: Vec<String> = Vec::new();
    let mut samples = HashMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            match kind {
                Some("TYPE") => {
                    assert!(matches!(rest, Some("counter" | "gauge" | "histogram")), "{line}");
                    typed.push(name.unwrap().to_owned());
                }
                Some("HELP") => assert!(name.is_some() && rest.is_some(), "{line}"),
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, _) = parse_series(series);
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        assert!(typed.iter().any(|t| t == &name || t == family), "{name} has no # TYPE line");
        assert!(samples.insert(series.to_owned(), value).is_none(), "duplicate series {series}");
    }
    samples
}

async fn scrape(s: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut req = s.http.get(s.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn scrape_counts_requests_and_store_calls(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let denied = s
        .http
        .post(s.url("/token"))
        .basic_auth(ADMIN_CLIENT, Some("not-the-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let r = s.http.get(s.url("/admin/v1/clients/no-such-client")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s.http.get(s.url("/no/such/endpoint")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = scrape(&s, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = r.text().await.unwrap();
    let m = parse(&text);
    let at = |series: &str| m.get(series).copied().unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert!(at(r#"tongzheng_http_requests_total{route="/token",method="POST",status="200"}"#) >= 1.0);
    assert!(at(r#"tongzheng_http_requests_total{route="/token",method="POST",status="401"}"#) >= 1.0);
    assert!(at(r#"tongzheng_http_requests_total{route="/admin/v1/clients/{id}",method="GET",status="404"}"#) >= 1.0);
    assert!(at(r#"tongzheng_http_requests_total{route="unmatched",method="GET",status="404"}"#) >= 1.0);
    assert!(!text.contains("no-such-client") && !text.contains("/no/such/endpoint"), "raw paths leaked:\n{text}");
    assert!(at(r#"tongzheng_http_request_duration_seconds_count{route="/token",method="POST"}"#) >= 2.0);
    assert_eq!(
        at(r#"tongzheng_http_request_duration_seconds_bucket{route="/token",method="POST",le="+Inf"}"#),
        at(r#"tongzheng_http_request_duration_seconds_count{route="/token",method="POST"}"#),
    );
    let store_calls: f64 = ["get", "get_many"]
        .iter()
        .filter_map(|op| m.get(&format!("tongzheng_store_operation_duration_seconds_count{{op=\"{op}\"}}")))
        .sum();
    assert!(store_calls > 0.0, "no store reads timed:\n{text}");
    assert_eq!(at("tongzheng_build_info{version=\"0.1.0\"}"), 1.0);
}

#[tokio::test]
async fn token_guards_the_scrape() {
    let s = TestServer::start_with(Backend::Memory, &format!("[metrics]\ntoken = \"{TOKEN}\"\n")).await;
    let r = scrape(&s, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let r = scrape(&s, Some("metrics-scrape-token-wrong-guess")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let r = scrape(&s, Some(TOKEN)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    // The refused scrapes were counted like any request.
    assert!(text.contains(r#"tongzheng_http_requests_total{route="/metrics",method="GET",status="401"} 2"#), "{text}");
}

#[tokio::test]
async fn disabled_endpoint_is_not_found() {
    let s = TestServer::start_with(Backend::Memory, "[metrics]\nenabled = false\n").await;
    assert_eq!(scrape(&s, None).await.status(), StatusCode::NOT_FOUND);
}

/// Polls this instance's metrics until `series` reaches `at_least`; panics after 10 s.
async fn wait_for_sample(s: &TestServer, series: &str, at_least: f64) {
    for _ in 0..200 {
        if parse(&s.state.metrics.render()).get(series).is_some_and(|v| *v >= at_least) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{series} never reached {at_least}:\n{}", s.state.metrics.render());
}

// The outbox worker counts each attempt's outcome: a retry, then the delivery, and a failure
// for a client that no longer exists.
#[tokio::test]
async fn logout_delivery_outcomes_are_counted() {
    let s = TestServer::start(Backend::Memory).await;
    let r = Receivers::start().await;
    r.set("m", Mode::FailOnce);
    let admin = flow::admin_token(&s).await;
    let body = json!({"client_id": "rp-m", "client_name": "m", "redirect_uris": ["http://127.0.0.1:9000/cb/m"],
        "grant_types": ["authorization_code"], "scope": "openid", "backchannel_logout_uri": r.uri("m")});
    let resp = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let now = s.clock.now();
    let session = Session {
        sid: "sid-metrics".into(),
        secret_hash: String::new(),
        sub: "user-metrics".into(),
        auth_time: now,
        acr: "1".into(),
        amr: vec!["pwd".into()],
        last_seen: now,
        expires_at: now + 3600,
        generation: 0,
        upstream: None,
        acting: None,
    };
    outbox::enqueue(&s.state.store, "rp-m", &r.uri("m"), &session, Reason::Admin, now).await.unwrap();
    outbox::enqueue(&s.state.store, "rp-gone", &r.uri("gone"), &session, Reason::Admin, now).await.unwrap();
    s.state.outbox_wake.notify_one();
    wait_for_sample(&s, r#"tongzheng_logout_deliveries_total{outcome="retry"}"#, 1.0).await;
    wait_for_sample(&s, r#"tongzheng_logout_deliveries_total{outcome="failed"}"#, 1.0).await;
    s.clock.advance(5); // past the first backoff
    wait_for_sample(&s, r#"tongzheng_logout_deliveries_total{outcome="delivered"}"#, 1.0).await;
    assert_eq!(r.accepted("m").len(), 1);
}
