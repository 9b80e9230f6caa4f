//! Tests of cascade reporting (GB-6.8c) against a real collector on 127.0.0.1:0 that fails
//! the first request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;

use super::tests::{config, start, t0, tmp_dir};
use super::*;

#[derive(Clone, Default)]
struct Collector {
    calls: Arc<AtomicUsize>,
    lines: Arc<Mutex<Vec<String>>>,
    headers: Arc<Mutex<Vec<(String, String)>>>,
}

async fn receive(State(c): State<Collector>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    c.headers.lock().unwrap().push((header("content-type"), header("authorization")));
    if c.calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    c.lines.lock().unwrap().extend(body.lines().map(str::to_owned));
    StatusCode::OK
}

async fn collector() -> (String, Collector) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    let c = Collector::default();
    let app = Router::new().route("/ingest", post(receive)).with_state(c.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, c)
}

fn received(c: &Collector) -> Vec<String> {
    c.lines.lock().unwrap().clone()
}

async fn wait_for(c: &Collector, n: usize) {
    for _ in 0..1000 {
        if received(c).len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the collector got {} of {n} events", received(c).len());
}

#[test]
fn backoff_doubles_up_to_a_minute() {
    let s = Duration::from_secs;
    let got: Vec<_> = (1..=8).map(|n| forward::backoff(s(1), n)).collect();
    assert_eq!(got, [s(1), s(2), s(4), s(8), s(16), s(32), s(60), s(60)]);
    assert_eq!(forward::backoff(s(1), u32::MAX), s(60));
}

// GB-6.8c: cascade reporting delivers every event once, in order, across failures and restarts.
#[tokio::test]
async fn forwarder_retries_then_resumes_without_resending() {
    let dir = tmp_dir("forward");
    let (url, col) = collector().await;
    let clock = Clock::manual(t0() - 30);
    let mut c = config(&dir, "t1");
    c.forward_url = url;
    c.forward_token = "fwd-token".into();
    c.forward_batch = 4;
    c.forward_poll_ms = 20;
    c.forward_retry_ms = 20;
    let (a, stop) = start(&c, &clock);
    // Six events before China midnight, four after: two files.
    for i in 0..10 {
        a.record(Event::new(Kind::TokenIssued, Outcome::Success).detail(json!({"i": i}))).await;
        clock.advance(5);
    }
    a.flush().await;
    wait_for(&col, 10).await;
    // The collector has the lines; the forwarder counts them once its cursor is saved.
    for _ in 0..500 {
        if a.stats().forwarded == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(true).unwrap();
    a.shutdown().await;
    let local: Vec<String> = ["audit-2024-02-29.t1.jsonl", "audit-2024-03-01.t1.jsonl"]
        .iter()
        .flat_map(|f| std::fs::read_to_string(dir.join(f)).unwrap().lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(local.len(), 10);
    assert_eq!(received(&col), local, "every event once, in order, byte for byte");
    assert!(col.calls.load(Ordering::SeqCst) >= 4, "the failed batch was retried");
    assert!(
        col.headers.lock().unwrap().iter().all(|(ct, auth)| ct == "application/x-ndjson" && auth == "Bearer fwd-token")
    );
    assert_eq!(a.stats().forwarded, 10);
    assert!(dir.join(".forward-t1.cursor").exists());

    // A new handle on the same directory resumes from the durable cursor.
    let (b, stop) = start(&c, &clock);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(received(&col).len(), 10, "nothing re-sent after restart");
    b.record(Event::new(Kind::Logout, Outcome::Success)).await;
    b.flush().await;
    wait_for(&col, 11).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = received(&col);
    assert_eq!(got.len(), 11);
    assert!(got[10].contains(r#""kind":"logout""#));
    assert_eq!(b.stats().forwarded, 1);
    stop.send(true).unwrap();
    b.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
