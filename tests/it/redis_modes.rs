//! Redis as operators run it (issue 10, SH-7.2, JM-5): `rediss://` with a private CA and client
//! certificates, a master followed across a Sentinel failover, a 3-master Redis Cluster (the
//! main flows also run on it through `on_cluster!` in their own files), and a deadline on every
//! store call in every mode. All Redis processes are started here and stopped on drop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tongzheng::store::redis::RedisStore;
use tongzheng::store::{DynStore, StoreError, keys};

use crate::support::flow;
use crate::support::redis::{STORE_DEADLINE, unique_prefix};
use crate::support::redis_modes::{SentinelSet, TlsRedis, admin, cluster_store, shared_cluster, store_from_toml};
use crate::support::server::{TestServer, WEB_CLIENT, WEB_SECRET};

async fn refresh(s: &TestServer, rt: &str) -> (StatusCode, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let r = s.http.post(s.url("/token")).basic_auth(WEB_CLIENT, Some(WEB_SECRET)).form(&form).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn userinfo(s: &TestServer, at: &str) -> StatusCode {
    s.http.get(s.url("/userinfo")).bearer_auth(at).send().await.unwrap().status()
}

/// Login (code flow with PKCE), redemption, refresh, userinfo, then RP-initiated logout, after
/// which the session's tokens are dead: every step reads and writes the store.
async fn session_round(s: &TestServer) {
    // RFC 6749 s4.1, RFC 7636, RFC 6749 s6
    let (code, pkce) = flow::web_code(s, "openid").await;
    let (status, tok) = flow::redeem(s, &code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    let (status, next) = refresh(s, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let at = next["access_token"].as_str().unwrap();
    assert_eq!(userinfo(s, at).await, StatusCode::OK);
    // OpenID RP-Initiated Logout 1.0 s2: the session ends and its tokens with it.
    let r = s
        .browser
        .get(s.url("/end_session"))
        .query(&[("id_token_hint", tok["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    assert_eq!(userinfo(s, at).await, StatusCode::UNAUTHORIZED, "access token of an ended session");
    assert_eq!(refresh(s, next["refresh_token"].as_str().unwrap()).await.0, StatusCode::BAD_REQUEST);
}

// Issue 10: rediss:// over rustls (ring), a private CA from tls_ca_file and a client certificate
// for a server with tls-auth-clients; code flow, refresh and logout run over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_code_flow_refresh_logout() {
    let redis = TlsRedis::start();
    // The public web PKI roots do not trust the test CA: refused (not hung).
    let untrusted: DynStore = Arc::new(RedisStore::connect(&redis.url(), &unique_prefix(), STORE_DEADLINE).unwrap());
    assert!(matches!(untrusted.ping().await, Err(StoreError::Unavailable(_))));
    // The CA alone is not enough for a server that asks for a client certificate.
    let no_client_cert = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\ntls_ca_file = \"{}\"\n",
        redis.url(),
        redis.dir.file("ca.pem")
    );
    assert!(store_from_toml(&no_client_cert).ping().await.is_err());

    let s = TestServer::start_on_store_config(&redis.store_toml(&unique_prefix()), "").await;
    s.state.store.ping().await.unwrap();
    session_round(&s).await;
}

// Issue 10 + DESIGN "Storage": the Sentinel-managed master is followed across a failover within
// 15 s (the store asks the sentinels every second and after any failed call, such as READONLY
// from a demoted master), writes land on the new master, and the flows work again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_is_followed() {
    let set = SentinelSet::start();
    let prefix = unique_prefix();
    let toml = format!("[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nprefix = \"{prefix}\"\n", set.url());
    let s = TestServer::start_on_store_config(&toml, "").await;
    session_round(&s).await;
    let (old, promoted) = (set.master.port(), set.replica.port());
    assert_eq!(set.reported_master(), old);

    tokio::task::block_in_place(|| set.failover());
    let started = Instant::now();
    // Writes through the instance succeed again and land on the promoted master.
    let key = format!("{prefix}failover-probe");
    let mut n = 0u32;
    loop {
        n += 1;
        let value = format!("v{n}");
        if s.state.store.put("failover-probe", value.as_bytes(), Some(60)).await.is_ok()
            && admin::<Option<String>>(promoted, &["GET", &key]).ok().flatten() == Some(value)
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "instance still not writing to the new master");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("sentinel failover followed {:?} after the sentinels reported the new master", started.elapsed());
    session_round(&s).await;
}

// Issue 10: "after a Sentinel failover the instance kept talking to the old master (now a
// replica): writes failed with 503". With the periodic check off, a write that a demoted master
// refuses (READONLY) is what sends the store back to the sentinels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_readonly_master_is_left() {
    let set = SentinelSet::start();
    let prefix = unique_prefix();
    let toml = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nprefix = \"{prefix}\"\nsentinel_check_ms = 0\n",
        set.url()
    );
    let store = store_from_toml(&toml);
    store.put("k", b"before", Some(60)).await.unwrap();
    let (old, promoted) = (set.master.port(), set.replica.port());
    tokio::task::block_in_place(|| set.failover());
    // Demote the old master now, as the sentinels will within their INFO period.
    let _: () = admin(old, &["REPLICAOF", "127.0.0.1", &promoted.to_string()]).unwrap();
    let key = format!("{prefix}k");
    let started = Instant::now();
    loop {
        if store.put("k", b"after", Some(60)).await.is_ok()
            && admin::<Option<String>>(promoted, &["GET", &key]).ok().flatten().as_deref() == Some("after")
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "store still writing to the demoted master");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// Issue 10: on a Cluster the keys spread over every master, `get_many` reads across slots in
// order (the validity authority's one round trip), and keys that one script or transaction
// touches share a slot (keys.rs: hash tags).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_spreads_keys_and_keeps_tagged_keys_together() {
    let prefix = unique_prefix();
    let (_, store) = cluster_store(&prefix);
    let names: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for k in &names {
        store.put(k, k.as_bytes(), Some(60)).await.unwrap();
    }
    let per_node = shared_cluster().keys_per_node(&prefix);
    assert!(per_node.iter().all(|n| *n > 0), "keys on every master: {per_node:?}");
    let mut wanted = names.clone();
    wanted.insert(3, "missing".into());
    wanted.reverse();
    let expected: Vec<Option<Vec<u8>>> =
        wanted.iter().map(|k| (k != "missing").then(|| k.as_bytes().to_vec())).collect();
    assert_eq!(store.get_many(&wanted).await.unwrap(), expected);

    let port = shared_cluster().nodes.first().unwrap().port();
    let slot = |key: String| admin::<i64>(port, &["CLUSTER", "KEYSLOT", &format!("{prefix}{key}")]).unwrap();
    assert_eq!(slot(keys::session("sid-1")), slot(keys::session_clients("sid-1")));
    for q in [keys::OUTBOX_QUEUE, keys::SESSION_EXPIRY_QUEUE, keys::AUTH_REQUEST_QUEUE] {
        assert_eq!(slot(keys::queue_schedule(q)), slot(keys::queue_payloads(q)), "{q}");
    }
}

/// Asserts `store.ping()` fails as `Unavailable` within the hang guard (not a timing assertion).
async fn assert_unavailable_fast(what: &str, store: DynStore) {
    let started = Instant::now();
    let r = store.ping().await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{what}: {r:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{what}: hung for {:?}", started.elapsed());
    let started = Instant::now();
    assert!(store.put("k", b"v", Some(5)).await.is_err(), "{what}");
    assert!(started.elapsed() < Duration::from_secs(3), "{what}: hung for {:?}", started.elapsed());
}

// JM-5: every request answers within 5 s whatever Redis does: a silent server (accepts, never
// answers) gets every mode a fast Unavailable (503), TLS handshake and Sentinel lookup included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_has_a_deadline() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let prefix = unique_prefix();
    let base = format!("[store]\nbackend = \"redis\"\ntimeout_ms = 500\nprefix = \"{prefix}\"\n");
    for (what, extra) in [
        ("standalone", format!("redis_url = \"redis://{addr}/\"")),
        ("tls", format!("redis_url = \"rediss://{addr}/\"")),
        ("sentinel", format!("redis_url = \"redis+sentinel://{addr}/mymaster\"")),
        ("cluster", format!("mode = \"cluster\"\ncluster_nodes = [\"redis://{addr}\"]")),
    ] {
        assert_unavailable_fast(what, store_from_toml(&format!("{base}{extra}\n"))).await;
    }
    drop(silent);
}
