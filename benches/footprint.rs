//! Footprint figures (issue 10): what a login costs in Redis and what password hashing costs in
//! process memory, measured through the real code paths.
//!
//! - `cargo bench --bench footprint` (default `redis`): starts a redis-server (killed at the
//!   end), serves tongzheng on it, logs USERS (200) distinct people in through `/authorize` and
//!   `/login`, redeems each code at `/token` (a refresh token and its grant family), then
//!   refreshes each once (a rotated record); reports Redis `MEMORY USAGE` per record kind and
//!   `used_memory` per login.
//! - `cargo bench --bench footprint -- hash` / `-- hash-unpooled`: BURSTS bursts (3) of 64
//!   concurrent argon2id hashes on 4 slots through the password pool, or through argon2's own
//!   allocating path (the code before the pool reused arenas); reports the process's RSS.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::crypto::{self, Secret};
use tongzheng::keys::Keys;
use tongzheng::passwords::{HashParams, PasswordPool};
use tongzheng::store::redis::RedisStore;

const PREFIX: &str = "fp:";
const CLIENT: (&str, &str) = ("demo-web", "demo-web-secret-0123456789abcdef");
const ADMIN: (&str, &str) = ("admin-cli", "admin-cli-secret-0123456789abcdef");
const REDIRECT: &str = "http://127.0.0.1:9000/callback";
const VERIFIER: &str = "footprint-verifier-0123456789-0123456789-abcdef";

/// The redis-server, killed when dropped.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mode = std::env::args().skip(1).find(|a| !a.starts_with('-')).unwrap_or_else(|| "redis".into());
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match mode.as_str() {
        "hash" | "hash-unpooled" => rt.block_on(hashing(mode == "hash")),
        _ => rt.block_on(redis_sizes()),
    }
}

/// RSS around bursts of concurrent hashes.
async fn hashing(pooled: bool) {
    let bursts: usize = std::env::var("BURSTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let slots = 4;
    let pool = PasswordPool::new(slots, Duration::from_secs(600), HashParams::BASELINE).unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(slots));
    println!(
        "{} hashing, {slots} slots, 19 MiB each, bound {} MiB",
        if pooled { "pooled" } else { "unpooled" },
        pool.memory_bound() >> 20
    );
    println!("  start: RSS {} MiB", rss_kib("VmRSS:") >> 10);
    for burst in 1..=bursts {
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (pool, gate) = (pool.clone(), gate.clone());
                tokio::spawn(async move {
                    let password = format!("password {i}");
                    if pooled {
                        pool.hash(Secret(password)).await.unwrap();
                    } else {
                        let _permit = gate.acquire_owned().await.unwrap();
                        tokio::task::spawn_blocking(move || {
                            use argon2::password_hash::{PasswordHasher as _, SaltString};
                            let salt = SaltString::encode_b64(crypto::random_token(16).as_bytes()).unwrap();
                            let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap();
                            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                                .hash_password(password.as_bytes(), &salt)
                                .unwrap()
                                .to_string()
                        })
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!(
            "  after burst {burst} (64 hashes): RSS {} MiB, peak {} MiB, arenas {}",
            rss_kib("VmRSS:") >> 10,
            rss_kib("VmHWM:") >> 10,
            pool.arenas_allocated()
        );
    }
}

/// Per-kind Redis memory of the keys under [`PREFIX`].
#[derive(Default, Debug)]
struct Kind {
    keys: u64,
    bytes: i64,
}

/// Groups a key (prefix removed, hash-tag braces ignored) into a record kind.
fn kind(key: &str) -> &'static str {
    let k: String = key.trim_start_matches(PREFIX).chars().filter(|c| *c != '{' && *c != '}').collect();
    let parts: Vec<&str> = k.split(':').collect();
    match parts.as_slice() {
        ["session", _] => "session record",
        ["session", _, "clients"] => "session client set",
        ["user", _, "sessions"] => "user's session index",
        ["rt", _] => "refresh token record",
        ["rt", _, "next"] => "refresh successor (grace window)",
        ["grant", _] => "grant family record",
        ["queue", "session-expiry"] | ["queue", "session-expiry", "data"] => "session expiry queue (shared)",
        ["authreq", "browser", _] => "browser's pending logins (TTL)",
        ["user", _] => "user record (before the logins)",
        ["username", _] => "username index (before the logins)",
        ["users"] | ["clients"] | ["client", _] | ["scope", _] | ["scopes"] => "config and catalogue",
        ["code", _] => "authorization code (redeemed)",
        ["consent", _, _] => "consent record",
        [first, ..] if first.starts_with("guard") || first.starts_with("rl") => "guessing guard counters",
        _ => "other",
    }
}

/// The key's shape with ids replaced by `*`, for the kinds not named.
fn shape(key: &str) -> String {
    let k = key.trim_start_matches(PREFIX);
    k.split(':').map(|p| if p.len() >= 16 || p.starts_with("fp") { "*" } else { p }).collect::<Vec<_>>().join(":")
}

async fn memory_usage(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query_async(conn).await.unwrap_or(0)
}

async fn keys(conn: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    redis::cmd("KEYS").arg(format!("{PREFIX}*")).query_async(conn).await.unwrap()
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

async fn by_kind(
    conn: &mut redis::aio::MultiplexedConnection,
    only: &dyn Fn(&str) -> bool,
) -> BTreeMap<&'static str, Kind> {
    let mut out: BTreeMap<&'static str, Kind> = BTreeMap::new();
    for key in keys(conn).await {
        if !only(&key) {
            continue;
        }
        let bytes = memory_usage(conn, &key).await;
        let k = out.entry(kind(&key)).or_default();
        k.keys += 1;
        k.bytes += bytes;
    }
    out
}

fn report(title: &str, kinds: &BTreeMap<&'static str, Kind>, per: u64) {
    println!("{title}");
    for (name, k) in kinds {
        if k.keys == 0 {
            continue;
        }
        println!(
            "  {name:<34} {:>6} keys, {:>6} B per key, {:>6} B per login",
            k.keys,
            k.bytes / i64::try_from(k.keys).unwrap(),
            k.bytes / i64::try_from(per).unwrap()
        );
    }
}

/// Logs `user` in through the browser flow and redeems the code: the refresh token.
async fn login(base: &str, http: &reqwest::Client, user: &str) -> String {
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let challenge = crypto::b64(&crypto::sha256(VERIFIER.as_bytes()));
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
        CLIENT.0,
        enc(REDIRECT),
        enc("openid profile")
    );
    let r = browser.get(authorize).send().await.unwrap();
    let login = format!("{base}{}", r.headers()["location"].to_str().unwrap());
    let html = browser.get(login).send().await.unwrap().text().await.unwrap();
    let field = |n: &str| {
        let needle = format!("name=\"{n}\" value=\"");
        let s = html.find(&needle).unwrap() + needle.len();
        html[s..s + html[s..].find('"').unwrap()].to_owned()
    };
    let form = [
        ("req", field("req")),
        ("csrf", field("csrf")),
        ("username", user.into()),
        ("password", "footprint-password".into()),
    ];
    let r = browser.post(format!("{base}/login")).form(&form).send().await.unwrap();
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = to.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap();
    let v: Value = http
        .post(format!("{base}/token"))
        .basic_auth(CLIENT.0, Some(CLIENT.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["refresh_token"].as_str().unwrap_or_else(|| panic!("no refresh token: {v}")).to_owned()
}

async fn redis_sizes() {
    let users: u64 = std::env::var("USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _redis = Redis(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH"),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("redis://127.0.0.1:{port}/");
    let mut conn = redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let version: String = redis::cmd("INFO").arg("server").query_async(&mut conn).await.unwrap();
    let version = version.lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap_or("?").trim().to_owned();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let dir = std::env::temp_dir().join(format!("tz-bench-footprint-{}", std::process::id()));
    let overlay = format!(
        "issuer = \"{base}\"\n[server]\nlisten = \"{addr}\"\n[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{PREFIX}\"\n\
         [audit]\ndir = \"{}\"\n[apps]\narchive_dir = \"{}\"\n[rate_limit]\nenabled = false\n",
        dir.join("audit").display(),
        dir.join("archive").display()
    );
    let config = Config::from_overlay(&overlay, true).unwrap();
    let store = Arc::new(RedisStore::connect(&url, PREFIX, Duration::from_secs(2)).unwrap());
    let keys_now = Keys::ephemeral(Clock::system().now()).unwrap();
    let state = tongzheng::server::build(config, Clock::system(), store, Some(keys_now)).await.unwrap();
    let serve = state.clone();
    tokio::spawn(async move { tongzheng::server::serve(listener, serve, None, std::future::pending()).await });

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let admin: Value = http
        .post(format!("{base}/token"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    for i in 0..users {
        let body = serde_json::json!({"username": format!("fp{i}"), "password": "footprint-password", "name": format!("用户{i}")});
        let r = http.post(format!("{base}/admin/v1/users")).bearer_auth(&admin).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "create user: {}", r.status());
    }

    let before = used_memory(&mut conn).await;
    let mut tokens = Vec::new();
    for i in 0..users {
        tokens.push(login(&base, &http, &format!("fp{i}")).await);
    }
    let after_login = used_memory(&mut conn).await;
    let login_kinds = by_kind(&mut conn, &|_| true).await;
    let mut others: BTreeMap<String, u64> = BTreeMap::new();
    for key in keys(&mut conn).await.into_iter().filter(|k| kind(k) == "other") {
        *others.entry(shape(&key)).or_default() += 1;
    }
    let live: HashSet<String> =
        keys(&mut conn).await.into_iter().filter(|k| kind(k) == "refresh token record").collect();

    for t in &tokens {
        let r = http
            .post(format!("{base}/token"))
            .basic_auth(CLIENT.0, Some(CLIENT.1))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", t.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "refresh: {}", r.status());
    }
    let after_refresh = used_memory(&mut conn).await;
    let rotated = by_kind(&mut conn, &|k| live.contains(k)).await;
    let fresh = by_kind(&mut conn, &|k| kind(k) == "refresh token record" && !live.contains(k)).await;

    println!("Redis {version}, {users} logins of distinct users, client {} (scope openid profile)", CLIENT.0);
    report("after login + code redemption (MEMORY USAGE ... SAMPLES 0):", &login_kinds, users);
    if !others.is_empty() {
        println!("  (other: {others:?})");
    }
    println!(
        "  used_memory: +{} B per login (session, its indexes, refresh token, family)",
        (after_login - before) / i64::try_from(users).unwrap()
    );
    report("after one refresh per family: the presented tokens, now rotated records:", &rotated, users);
    report("  and their successors:", &fresh, users);
    println!("  used_memory: +{} B per rotation", (after_refresh - after_login) / i64::try_from(users).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
