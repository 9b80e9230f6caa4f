//! Graceful restarts, truthful readiness, bootstrap re-seeding and request ids (SH-7.2: updates
//! without interrupting service; SH-6.2.4d: the health address reports the real state; JM-5).
//! Instances run as child processes of the `tongzheng` binary, signalled as an orchestrator
//! would, on real redis-servers; a tiny balancer stands in front of two of them.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongzheng::store::DynStore;

use crate::support::balancer::Balancer;
use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::process::{ServerProcess as Instance, child_base, free_port, on_redis, temp_dir};
use crate::support::receiver::{Mode, Receivers};
use crate::support::redis::{RedisServer, shared, unique_prefix};
use crate::support::server::*;

/// Reads one HTTP/1.1 response head (through the blank line) from `tcp`.
async fn read_head(tcp: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut byte)).await.unwrap().unwrap();
        assert!(n == 1, "connection closed in a response head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown.

// SH-7.2, JM-5: SIGTERM (what systemd and orchestrators send) stops the instance gracefully:
// /readyz turns 503 at once, a request in flight is answered even after the listener has
// closed, its audit event is on disk when the process has exited, and the exit is clean.
#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_keeps_their_audit_events() {
    let dir = temp_dir("drain");
    let port = free_port();
    let toml = format!("{}[server]\ndrain_grace_ms = 3000\ndrain_secs = 30\n", child_base(&dir, port));
    let mut a = Instance::spawn(&dir, port, &toml);
    a.ready().await;

    // A token request whose body the client holds back: `Expect: 100-continue` makes the server
    // say when the handler has started reading it, so the request is known to be in flight.
    let body = "grant_type=client_credentials";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{WEB_CLIENT}:{WEB_SECRET}"));
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let interim = read_head(&mut tcp).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    a.signal("TERM");
    // Readiness turns 503 while the instance still serves (the pre-drain grace).
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let drained = loop {
        match http.get(a.url("/readyz")).send().await {
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => break r.json::<Value>().await.unwrap(),
            Ok(r) => assert_eq!(r.status(), StatusCode::OK, "readyz before the drain shows"),
            Err(e) => panic!("/readyz unreachable before it said 503 ({e}):\n{}", a.log_text()),
        }
        assert!(Instant::now() < deadline, "readyz never turned 503");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(drained["draining"], true, "{drained}");
    // Then the listener closes (new connections refused) ...
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(Instant::now() < deadline, "the listener never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and the request in flight is still answered.
    tcp.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut raw)).await.unwrap().unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, json) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response: {raw:?}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{raw}");
    let token: Value = serde_json::from_str(json).unwrap();
    assert!(token["access_token"].is_string(), "{token}");
    let request_id = header(head, "x-request-id").expect("X-Request-Id").to_owned();

    let status = a.exit().await;
    assert!(status.success(), "exit after SIGTERM: {status}:\n{}", a.log_text());
    // AY-8.5.2.1: the answered request's audit event was flushed before the exit.
    let audit = dir.join(format!("audit-{port}"));
    let lines: Vec<String> = std::fs::read_dir(&audit)
        .unwrap()
        .flat_map(|f| {
            std::fs::read_to_string(f.unwrap().path()).unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    let event = lines.iter().find(|l| l.contains(&request_id)).unwrap_or_else(|| panic!("no event of {request_id}"));
    assert!(event.contains("token_issued"), "{event}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Config of the outbox test's instances: deliveries leased for an hour, so only a release
/// can hand one over within the test.
fn outbox_config(dir: &Path, port: u16, url: &str, prefix: &str, issuer: &str) -> String {
    format!(
        "issuer = \"{issuer}\"\n{}{}[server]\ndrain_grace_ms = 100\n\
         [logout]\nlease = 3600\nattempt_timeout_ms = 60000\npoll_ms = 100\n",
        child_base(dir, port),
        on_redis(url, prefix)
    )
}

/// A token response's `sid` (from the access token's claims).
fn sid_of(tokens: &Value) -> String {
    let at = tokens["access_token"].as_str().unwrap();
    let part = at.split('.').nth(1).unwrap();
    let c: Value = serde_json::from_slice(&tongzheng::crypto::b64_decode(part).unwrap()).unwrap();
    c["sid"].as_str().unwrap().to_owned()
}

/// The browser logs in at `base` for `client_id` (SSO when it already has a session) and
/// the client redeems the code; returns the token response.
async fn code_flow(browser: &reqwest::Client, base: &str, client_id: &str, secret: &str, redirect: &str) -> Value {
    let params = [("response_type", "code"), ("client_id", client_id), ("redirect_uri", redirect), ("scope", "openid")];
    let r = browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut loc = location(&r);
    if loc.starts_with("/login") {
        let html = browser.get(format!("{base}{loc}")).send().await.unwrap().text().await.unwrap();
        let form = [
            ("req", hidden(&html, "req")),
            ("csrf", hidden(&html, "csrf")),
            ("username", USER.to_owned()),
            ("password", PASSWORD.to_owned()),
        ];
        let r = browser.post(format!("{base}/login")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        loc = location(&r);
    }
    let code = query(&loc).get("code").cloned().unwrap_or_else(|| panic!("no code: {loc}"));
    let r = reqwest::Client::new()
        .post(format!("{base}/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", redirect)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

// Back-Channel Logout 1.0 s2.5-2.8, DC-4: a delivery instance A claimed and is still
// attempting (its receiver hangs) is handed back when A is stopped with SIGTERM, and instance
// B sends it at once instead of after A's lease (an hour here).
#[tokio::test]
async fn sigterm_releases_outbox_leases_to_other_instances() {
    let dir = temp_dir("outbox");
    let (url, prefix) = (shared().url(), unique_prefix());
    let (pa, pb) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{pa}");
    let mut a = Instance::spawn(&dir, pa, &outbox_config(&dir, pa, &url, &prefix, &issuer));
    a.ready().await;
    let receivers = Receivers::start().await;
    receivers.set("rp", Mode::Hang);

    let http = reqwest::Client::new();
    let r = http
        .post(a.url("/token"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let admin = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let rp_redirect = "http://127.0.0.1:9000/cb/rp";
    let r = http
        .post(a.url("/admin/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({
            "client_id": "rp-hang", "client_name": "hanging receiver", "redirect_uris": [rp_redirect],
            "grant_types": ["authorization_code"], "scope": "openid",
            "backchannel_logout_uri": receivers.uri("rp"), "backchannel_logout_session_required": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rp_secret = r.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();

    // The user's session reaches demo-web and rp-hang; demo-web's backend ends it (HL-5.4).
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let web = code_flow(&browser, &a.base, WEB_CLIENT, WEB_SECRET, WEB_REDIRECT).await;
    code_flow(&browser, &a.base, "rp-hang", &rp_secret, rp_redirect).await;
    let r = http
        .post(a.url("/logout"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("sid", sid_of(&web).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A claimed the delivery and is stuck on it.
    receivers.wait_for(20, "A's attempt", |r| r.arrivals("rp") == 1).await;
    receivers.set("rp", Mode::Ok);
    let mut b = Instance::spawn(&dir, pb, &outbox_config(&dir, pb, &url, &prefix, &issuer));
    b.ready().await;

    a.signal("TERM");
    let status = a.exit().await;
    receivers.wait_for(20, "B's delivery of the released lease", |r| r.accepted("rp").len() == 1).await;
    assert!(status.success(), "{status}:\n{}", a.log_text());
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Rolling restart behind a balancer.

/// One user's round: log in (authorize, login page, login post, code redemption), call
/// userinfo, refresh, call userinfo with the new token. Every step may land on either instance.
async fn user_round(lb: &Balancer, api: &reqwest::Client, user: &str) -> Result<(), String> {
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid offline_access"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = lb
        .expect(&browser, "authorize", StatusCode::SEE_OTHER, |c, b| c.get(format!("{b}/authorize")).query(&params))
        .await?;
    let login = location(&r);
    let page = lb.expect(&browser, "login page", StatusCode::OK, |c, b| c.get(format!("{b}{login}"))).await?;
    let html = page.text().await.map_err(|e| format!("login page body: {e}"))?;
    let form = [
        ("req", hidden(&html, "req")),
        ("csrf", hidden(&html, "csrf")),
        ("username", user.to_owned()),
        ("password", format!("{user}-password")),
    ];
    let r =
        lb.expect(&browser, "login", StatusCode::SEE_OTHER, |c, b| c.post(format!("{b}/login")).form(&form)).await?;
    let code = query(&location(&r)).get("code").cloned().ok_or("no code after login")?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEB_REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let r = lb
        .expect(api, "code redemption", StatusCode::OK, |c, b| {
            c.post(format!("{b}/token")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).form(&form)
        })
        .await?;
    let tokens: Value = r.json().await.map_err(|e| format!("token body: {e}"))?;
    let at = tokens["access_token"].as_str().ok_or("no access token")?.to_owned();
    let rt = tokens["refresh_token"].as_str().ok_or("no refresh token")?.to_owned();
    lb.expect(api, "userinfo", StatusCode::OK, |c, b| c.get(format!("{b}/userinfo")).bearer_auth(&at)).await?;
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt.as_str())];
    let r = lb
        .expect(api, "refresh", StatusCode::OK, |c, b| {
            c.post(format!("{b}/token")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).form(&form)
        })
        .await?;
    let tokens: Value = r.json().await.map_err(|e| format!("refresh body: {e}"))?;
    let at = tokens["access_token"].as_str().ok_or("no refreshed access token")?.to_owned();
    lb.expect(api, "userinfo after refresh", StatusCode::OK, |c, b| c.get(format!("{b}/userinfo")).bearer_auth(&at))
        .await?;
    Ok(())
}

/// Users of the rolling restart, one per simulated person (one person's logins are one at a
/// time: the guessing guard refuses concurrent password checks of one account).
const ROLLING_USERS: usize = 3;

fn rolling_config(dir: &Path, port: u16, url: &str, prefix: &str, issuer: &str) -> String {
    let users: String = (0..ROLLING_USERS)
        .map(|k| {
            format!(
                "[[seed.users]]\nusername = \"rolling-{k}\"\npassword = \"rolling-{k}-password\"\nname = \"R{k}\"\n"
            )
        })
        .collect();
    format!(
        "issuer = \"{issuer}\"\n{}{}[server]\ndrain_grace_ms = 1000\ndrain_secs = 30\n{users}",
        child_base(dir, port),
        on_redis(url, prefix)
    )
}

// SH-7.2, JM-5: a rolling restart of two instances on one Redis under continuous login,
// refresh and userinfo traffic fails no request; the only errors the balancer sees are
// refused connections to a closed port, which it retries on the other instance.
#[tokio::test]
async fn rolling_restart_behind_a_health_checking_balancer_fails_no_request() {
    rolling_restart(true).await;
}

// The same behind a balancer that does not poll /readyz and only retries refused connections:
// the drain still fails nothing (responses during the grace close their connections, then the
// closed port refuses).
#[tokio::test]
async fn rolling_restart_behind_a_retrying_balancer_fails_no_request() {
    rolling_restart(false).await;
}

async fn rolling_restart(health_checks: bool) {
    let dir = temp_dir("rolling");
    let (url, prefix) = (shared().url(), unique_prefix());
    let ports = [free_port(), free_port()];
    let issuer = format!("http://127.0.0.1:{}", ports[0]);
    let config = |port: u16| rolling_config(&dir, port, &url, &prefix, &issuer);
    let mut instances = Vec::new();
    for port in ports {
        let mut i = Instance::spawn(&dir, port, &config(port));
        i.ready().await;
        instances.push(i);
    }
    let lb = Balancer::new(instances.iter().map(|i| i.base.clone()).collect(), health_checks);
    let stop = Arc::new(AtomicBool::new(false));
    let health = tokio::spawn(lb.clone().health(stop.clone()));
    let rounds = Arc::new(AtomicUsize::new(0));
    let mut users = Vec::new();
    for k in 0..ROLLING_USERS {
        let (lb, stop, rounds) = (lb.clone(), stop.clone(), rounds.clone());
        users.push(tokio::spawn(async move {
            let api = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let user = format!("rolling-{k}");
            while !stop.load(Ordering::Relaxed) {
                match user_round(&lb, &api, &user).await {
                    Ok(()) => rounds.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        lb.fail(e);
                        0
                    }
                };
            }
        }));
    }
    let mut exits = Vec::new();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for k in 0..instances.len() {
        instances[k].signal("TERM");
        exits.push(instances[k].exit().await);
        instances[k] = Instance::spawn(&dir, ports[k], &config(ports[k]));
        instances[k].ready().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for u in users {
        u.await.unwrap();
    }
    health.await.unwrap();
    let failures = lb.failures.lock().unwrap().clone();
    let (sent, refused, rounds) =
        (lb.sent.load(Ordering::Relaxed), lb.refused.load(Ordering::Relaxed), rounds.load(Ordering::Relaxed));
    eprintln!(
        "rolling restart (readiness polled: {health_checks}): {sent} requests in {rounds} complete user rounds, {} failed, {refused} refused connections retried",
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests during the rolling restart: {failures:#?}");
    assert!(rounds > 0, "no traffic went through");
    for status in exits {
        assert!(status.success(), "an instance did not exit cleanly on SIGTERM: {status}");
    }
    drop(instances);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Readiness and bootstrap seeding.

async fn redis_cmd(url: &str, args: &[&str]) -> ::redis::Value {
    let client = ::redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = ::redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut conn).await.unwrap()
}

async fn readyz(s: &TestServer) -> (StatusCode, Value) {
    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn admin_status(s: &TestServer) -> StatusCode {
    s.http
        .post(s.url("/token"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

/// Polls (bounded) until the bootstrap admin client gets a token.
async fn admin_comes_back(s: &TestServer, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while admin_status(s).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "the bootstrap admin client never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// SH-6.2.4d: an instance whose Redis is a replica (the old master after a Sentinel failover)
// can read and ping but not write: it is not ready.
#[tokio::test]
async fn readyz_is_not_ready_on_a_read_only_replica() {
    let master = RedisServer::dedicated();
    let replica = RedisServer::dedicated();
    let port = master.url().trim_end_matches('/').rsplit(':').next().unwrap().to_owned();
    // The full sync goes over the socket both ways: no RDB file in the working directory.
    redis_cmd(&master.url(), &["CONFIG", "SET", "repl-diskless-sync", "yes"]).await;
    redis_cmd(&master.url(), &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]).await;
    redis_cmd(&replica.url(), &["CONFIG", "SET", "repl-diskless-load", "on-empty-db"]).await;
    redis_cmd(&replica.url(), &["REPLICAOF", "127.0.0.1", &port]).await;
    let prefix = unique_prefix();
    let primary = TestServer::start_on_redis(&master.url(), &prefix, "").await;
    assert_eq!(readyz(&primary).await.0, StatusCode::OK);
    // Wait (bounded) until the replica holds what the master's instance seeded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = redis_cmd(&replica.url(), &["INFO", "replication"]).await;
        let info = match info {
            ::redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
            ::redis::Value::VerbatimString { text, .. } => text,
            other => format!("{other:?}"),
        };
        if info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0") {
            break;
        }
        assert!(Instant::now() < deadline, "replica never synced: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let on_replica = TestServer::start_on_redis(&replica.url(), &prefix, "").await;
    assert_eq!(on_replica.http.get(on_replica.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    let (status, body) = readyz(&on_replica).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["store"], "not_writable", "{body}");
    assert_eq!(readyz(&primary).await.0, StatusCode::OK);
}

// SH-6.2.4d, SH-7.2: Redis restarted without persistence comes back empty: the bootstrap clients
// from config are gone, /readyz says so, and they are written again without restarting
// tongzheng (here: when readiness finds them missing; the periodic check is an hour away).
#[tokio::test]
async fn bootstrap_data_is_reseeded_after_redis_comes_back_empty() {
    let mut redis = RedisServer::dedicated();
    let s = TestServer::start_on_redis(&redis.url(), &unique_prefix(), "[server]\nseed_check_secs = 3600\n").await;
    assert_eq!(admin_status(&s).await, StatusCode::OK);
    assert_eq!(readyz(&s).await.0, StatusCode::OK);
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_missing = false;
    loop {
        let (status, body) = readyz(&s).await;
        if status == StatusCode::OK {
            break;
        }
        saw_missing |= body["seed"] == "missing";
        assert!(Instant::now() < deadline, "never ready again: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_missing, "readiness never reported the missing seed data");
    admin_comes_back(&s, 20).await;
    // The same after a FLUSHALL.
    redis_cmd(&redis.url(), &["FLUSHALL"]).await;
    assert_eq!(admin_status(&s).await, StatusCode::UNAUTHORIZED);
    let (status, body) = readyz(&s).await;
    assert_eq!((status, &body["seed"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("missing")), "{body}");
    admin_comes_back(&s, 20).await;
}

// SH-7.2: tongzheng started before its Redis seeds the bootstrap data once Redis is up, by
// itself (nobody asks /readyz here).
#[tokio::test]
async fn seeding_retries_until_redis_is_reachable() {
    let mut redis = RedisServer::dedicated();
    let url = redis.url();
    redis.stop();
    // The signing keys live in the store, so an instance cannot serve before it reaches it: it
    // waits (its port answers nothing, which balancers read as not ready) and retries.
    let starting = tokio::spawn(async move {
        TestServer::start_on_redis(&url, &unique_prefix(), "[server]\nseed_check_secs = 3600\n").await
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!starting.is_finished(), "an instance without its store cannot have started");
    redis.restart();
    let s = tokio::time::timeout(std::time::Duration::from_secs(30), starting).await.unwrap().unwrap();
    admin_comes_back(&s, 20).await;
    assert_eq!(readyz(&s).await.0, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Request ids.

// Request ids go into the 180-day audit log (AY-8.5.2.1), so they must name one request among
// every instance's: two instances' ids never collide.
#[tokio::test]
async fn request_ids_of_two_instances_never_collide() {
    let dir = temp_dir("ids");
    let mut instances = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let mut i = Instance::spawn(&dir, port, &child_base(&dir, port));
        i.ready().await;
        instances.push(i);
    }
    let mut tasks = Vec::new();
    for i in &instances {
        for _ in 0..4 {
            let url = i.url("/healthz");
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut ids = Vec::new();
                for _ in 0..400 {
                    let r = http.get(&url).send().await.unwrap();
                    ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
                }
                ids
            }));
        }
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id.clone()), "request id {id} was given twice");
        }
    }
    assert_eq!(seen.len(), 2 * 4 * 400);
    drop(instances);
    let _ = std::fs::remove_dir_all(&dir);
}

fn id_of(r: &reqwest::Response) -> String {
    r.headers().get("x-request-id").expect("X-Request-Id").to_str().unwrap().to_owned()
}

// GB-6.9.3 (every failure returns a documented error), JM-5.6: every error body names its
// request id for support: OAuth JSON (RFC 6749 s5.2 allows extra members), RFC 6750 s3 bearer
// errors, RFC 7807 problems (an extension member, s3.2) and HTML error pages. A client's own
// X-Request-Id is not taken unless configured.
async fn request_id_is_in_every_error_body(b: Backend) {
    let s = TestServer::start(b).await;
    let chosen = "support-ticket-42";
    // RFC 6749 s5.2.
    let r = s
        .http
        .post(s.url("/token"))
        .header("x-request-id", chosen)
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("grant_type", "urn:example:nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let id = id_of(&r);
    assert_ne!(id, chosen, "an untrusted X-Request-Id is not taken");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    // RFC 6750 s3.1.
    let r = s.http.get(s.url("/userinfo")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let id = id_of(&r);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    // RFC 7807 (admin API without a token, and an unknown path).
    for path in ["/admin/v1/clients", "/no/such/endpoint"] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert!(r.status().is_client_error());
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let id = id_of(&r);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["request_id"], id.as_str(), "{path}: {body}");
    }
    // RFC 6749 s4.1.2.1: an unknown client gets an HTML page, never a redirect.
    let r = flow::authorize(&s, &[("response_type", "code"), ("client_id", "nobody"), ("redirect_uri", WEB_REDIRECT)])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let id = id_of(&r);
    let html = r.text().await.unwrap();
    assert!(html.contains(&id), "the page shows {id}: {html}");
    // Ids are opaque and fresh per request.
    let a = id_of(&s.http.get(s.url("/healthz")).send().await.unwrap());
    let b2 = id_of(&s.http.get(s.url("/healthz")).send().await.unwrap());
    assert_ne!(a, b2);
}

// `server.trust_request_id`: behind a proxy that sets X-Request-Id, a sane value is kept (in
// the header and the error body, hence in the audit log); an insane one is replaced.
async fn trusted_request_id_is_echoed_when_configured(b: Backend) {
    let s = TestServer::start_with(b, "[server]\ntrust_request_id = true\n").await;
    let send = |id: String| {
        s.http.post(s.url("/token")).header("x-request-id", id).form(&[("grant_type", "urn:example:nope")]).send()
    };
    let chosen = "edge-7f3a.42:b_1";
    let r = send(chosen.to_owned()).await.unwrap();
    assert_eq!(id_of(&r), chosen);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], chosen, "{body}");
    for insane in ["a b".to_owned(), "<script>".to_owned(), "x".repeat(65), String::new()] {
        let r = send(insane.clone()).await.unwrap();
        let id = id_of(&r);
        assert!(id != insane && !id.is_empty(), "{insane:?} was kept");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["request_id"], id.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// Store primitives behind the above, on both backends.

fn store_of(b: Backend) -> DynStore {
    crate::support::server::store_for(b, &crate::support::server::manual_clock()).1
}

// Back-Channel Logout s2.5 (via the outbox): a worker shutting down hands its leased items
// back; they are claimable at once. Items already removed stay removed.
async fn queue_release_hands_leased_items_back(b: Backend) {
    let store = store_of(b);
    let q = "release-test";
    for id in ["a", "b", "c"] {
        store.queue_put(q, id, id.as_bytes(), 100).await.unwrap();
    }
    assert_eq!(store.queue_claim(q, 100, 3600, 10).await.unwrap().len(), 3);
    assert!(store.queue_claim(q, 101, 3600, 10).await.unwrap().is_empty(), "leased");
    assert!(store.queue_remove(q, "c").await.unwrap());
    let ids = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert_eq!(store.queue_release(q, &ids, 101).await.unwrap(), 2, "c was done and is not brought back");
    let mut got: Vec<String> =
        store.queue_claim(q, 101, 3600, 10).await.unwrap().into_iter().map(|(id, _)| id).collect();
    got.sort();
    assert_eq!(got, ["a", "b"]);
    assert_eq!(store.queue_len(q).await.unwrap(), 2);
}

// SH-6.2.4d: the write probe readiness uses succeeds on a writable store.
async fn write_probe_succeeds_on_a_writable_store(b: Backend) {
    let store = store_of(b);
    store.probe_write("probe:test", 1_700_000_000).await.unwrap();
}

per_backend!(
    request_id_is_in_every_error_body,
    trusted_request_id_is_echoed_when_configured,
    queue_release_hands_leased_items_back,
    write_probe_succeeds_on_a_writable_store,
);
