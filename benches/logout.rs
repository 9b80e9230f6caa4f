//! Logout broadcast benchmark (issue 3): time from a logout to the last of 100 back-channel
//! receivers acknowledging it, over real HTTP on loopback with the Redis store; and the memory
//! one session record takes in Redis (`MEMORY USAGE`). Needs `redis-server` on PATH.
//! Run: `cargo bench --bench logout` (ROUNDS=N to change the number of logouts).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tongzheng::clients::{self, AuthMethod, Client, GrantType, Origin};
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::jwt::Alg;
use tongzheng::keys::Keys;
use tongzheng::logout::{self, Reason};
use tongzheng::session::{self, Timeouts};
use tongzheng::store::redis::RedisStore;
use tongzheng::store::{DynStore, keys};

const RECEIVERS: usize = 100;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn client(id: String, uri: String) -> Client {
    Client {
        client_id: id.clone(),
        name: id,
        secrets: Vec::new(),
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec!["openid".into()],
        auth_method: AuthMethod::ClientSecretBasic,
        id_token_alg: Alg::ES256,
        jwks: None,
        jwks_uri: None,
        backchannel_logout_uri: Some(uri),
        backchannel_logout_session_required: true,
        frontchannel_logout_uri: None,
        frontchannel_logout_session_required: false,
        consent_required: false,
        enabled: true,
        origin: Origin::Admin,
        registration_token_sealed: None,
        access_token_ttl: None,
        refresh_token_ttl: None,
        app_id: None,
        lifecycle: None,
        rate_limit: None,
        token_exchange: None,
        min_level: None,
        created_at: 0,
        subject_type: tongzheng::clients::SubjectType::Public,
        sector_identifier_uri: None,
        legacy_login: false,
        policy_uri: None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let port = free_port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("redis://127.0.0.1:{port}/");

    // 100 receivers on one loopback server, counting acknowledgements.
    let acks = Arc::new(AtomicUsize::new(0));
    let counter = acks.clone();
    let app = axum::Router::new().route(
        "/bc/{n}",
        axum::routing::post(move || {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let rl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raddr = rl.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(rl, app).await.unwrap() });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let overlay = format!(
        "issuer = \"http://{addr}\"\n[server]\nlisten = \"{addr}\"\n[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"bench:\"\n[logout]\nconcurrency = 128\n"
    );
    let config = Config::from_overlay(&overlay, true).unwrap();
    let store: DynStore = Arc::new(RedisStore::connect(&url, "bench:", Duration::from_secs(2)).unwrap());
    let keys = Keys::ephemeral(Clock::system().now()).unwrap();
    let state = tongzheng::server::build(config, Clock::system(), store.clone(), Some(keys)).await.unwrap();
    let serve_state = state.clone();
    tokio::spawn(async move { tongzheng::server::serve(listener, serve_state, None, std::future::pending()).await });
    for i in 0..RECEIVERS {
        clients::put(&store, &client(format!("rp{i}"), format!("http://{raddr}/bc/{i}"))).await.unwrap();
    }
    let t = Timeouts { idle: 1800, absolute: 43200 };

    // Memory of one session record (and its client set) in Redis.
    let now = Clock::system().now();
    let (s, _) = session::create(&store, login("user-0123456789abcdef"), now, t).await.unwrap();
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let record: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(format!("bench:{}", keys::session(&s.sid)))
        .query_async(&mut conn)
        .await
        .unwrap();
    for i in 0..3 {
        session::add_client(&store, &s, &format!("rp{i}"), now, t).await.unwrap();
    }
    let set3: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(format!("bench:{}", keys::session_clients(&s.sid)))
        .query_async(&mut conn)
        .await
        .unwrap();

    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let now = Clock::system().now();
        let (s, _) = session::create(&store, login("user-bench"), now, t).await.unwrap();
        for i in 0..RECEIVERS {
            session::add_client(&store, &s, &format!("rp{i}"), now, t).await.unwrap();
        }
        acks.store(0, Ordering::SeqCst);
        let started = Instant::now();
        let ended = logout::end_session(state.logout_ctx("user"), &s.sid, Reason::User, None).await.unwrap().unwrap();
        assert_eq!(ended.notified.len(), RECEIVERS);
        while acks.load(Ordering::SeqCst) < RECEIVERS {
            assert!(started.elapsed() < Duration::from_secs(30), "deliveries stalled");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("logout broadcast to {RECEIVERS} back-channel receivers, {rounds} rounds (Redis store, loopback HTTP):");
    println!(
        "  logout -> last ack: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
    println!("  session record in Redis: {record} B (MEMORY USAGE); client set with 3 clients: {set3} B");
    let _ = redis.kill();
    let _ = redis.wait();
}

fn login(sub: &str) -> session::Login {
    session::Login {
        sub: sub.into(),
        generation: 0,
        acr: "1".into(),
        amr: vec!["pwd".into()],
        upstream: None,
        acting: None,
    }
}
