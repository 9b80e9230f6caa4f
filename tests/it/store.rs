//! The one store test suite: every case runs, with the same assertions, on the memory backend,
//! on a real redis-server and on a 3-master Redis Cluster (`store::memory::*`, `store::redis::*`,
//! `store::cluster::*`); then Redis-only cases for outages. The queue methods have their own
//! file (`store_queue.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tongzheng::store::{DynStore, Redeemed, StoreError};

use crate::support::redis::{RedisServer, redis_store_at, unique_prefix};

/// Runs `store_op` on `n` concurrent tasks against one store and collects the results.
async fn concurrently<T, F>(store: &DynStore, n: usize, store_op: impl Fn(DynStore, usize) -> F) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..n {
        set.spawn(store_op(store.clone(), i));
    }
    set.join_all().await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn get_put(store: DynStore) {
    assert_eq!(store.get("k").await.unwrap(), None);
    store.put("k", b"one", None).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"one"[..]));
    store.put("k", b"two", Some(60)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"two"[..]), "put replaces");
    // Values are bytes, not text: empty and non-UTF-8 values survive the round trip.
    store.put("empty", b"", None).await.unwrap();
    assert_eq!(store.get("empty").await.unwrap(), Some(Vec::new()));
    let binary = [0u8, 0xff, 0xfe, b'\r', b'\n', 0x80];
    store.put("bin", &binary, Some(60)).await.unwrap();
    assert_eq!(store.get("bin").await.unwrap().as_deref(), Some(&binary[..]));
    // Keys are opaque strings.
    store.put("会话:a b/c", b"x", None).await.unwrap();
    assert_eq!(store.get("会话:a b/c").await.unwrap().as_deref(), Some(&b"x"[..]));
}

async fn get_many_keeps_order(store: DynStore) {
    assert!(store.get_many(&[]).await.unwrap().is_empty());
    store.put("a", b"A", None).await.unwrap();
    store.put("b", b"B", Some(60)).await.unwrap();
    let keys = ["a", "missing", "b", "a"].map(String::from);
    let got = store.get_many(&keys).await.unwrap();
    assert_eq!(got, vec![Some(b"A".to_vec()), None, Some(b"B".to_vec()), Some(b"A".to_vec())]);
    let none = store.get_many(&["x".to_owned(), "y".to_owned()]).await.unwrap();
    assert_eq!(none, vec![None, None]);
}

async fn put_new_only_if_absent(store: DynStore) {
    assert!(store.put_new("k", b"first", Some(60)).await.unwrap());
    assert!(!store.put_new("k", b"second", Some(60)).await.unwrap());
    assert!(!store.put_new("k", b"third", None).await.unwrap());
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"first"[..]), "a losing put_new writes nothing");
    assert!(store.delete("k").await.unwrap());
    assert!(store.put_new("k", b"again", None).await.unwrap());
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"again"[..]));
    // Concurrent put_new: exactly one writer wins.
    let wins =
        concurrently(&store, 32, |s, i| async move { s.put_new("race", i.to_string().as_bytes(), Some(60)).await })
            .await;
    assert_eq!(wins.into_iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
}

// Issue 10 (shared key set): compare-and-set converges concurrent writers on one value.
async fn put_if_compares_and_sets(store: DynStore) {
    assert!(!store.put_if("k", Some(b"x"), b"one").await.unwrap(), "absent is not x");
    assert_eq!(store.get("k").await.unwrap(), None);
    assert!(store.put_if("k", None, b"one").await.unwrap(), "absent as expected");
    assert!(!store.put_if("k", None, b"two").await.unwrap(), "no longer absent");
    assert!(!store.put_if("k", Some(b"on"), b"two").await.unwrap(), "a prefix is not equal");
    assert!(!store.put_if("k", Some(b""), b"two").await.unwrap(), "empty is not equal");
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"one"[..]), "a losing put_if writes nothing");
    let binary = [0u8, 0xff, b'\'', b'\n'];
    assert!(store.put_if("k", Some(b"one"), &binary).await.unwrap());
    assert!(store.put_if("k", Some(&binary), b"").await.unwrap(), "binary values compare exactly");
    assert!(store.put_if("k", Some(b""), b"three").await.unwrap(), "an empty value is not an absent one");
    // A value written with a TTL compares like any other.
    store.put("t", b"old", Some(1)).await.unwrap();
    assert!(store.put_if("t", Some(b"old"), b"new").await.unwrap());
    // Concurrent writers from one version: exactly one wins.
    let wins =
        concurrently(&store, 32, |s, i| async move { s.put_if("k", Some(b"three"), format!("w{i}").as_bytes()).await })
            .await;
    assert_eq!(wins.into_iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
    let wins =
        concurrently(&store, 32, |s, i| async move { s.put_if("fresh", None, format!("w{i}").as_bytes()).await }).await;
    assert_eq!(wins.into_iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
}

// Issue 10: a session refreshed while it is being logged out is never re-created.
async fn put_existing_never_recreates(store: DynStore) {
    assert!(!store.put_existing("k", b"ghost", Some(60)).await.unwrap(), "absent: nothing written");
    assert_eq!(store.get("k").await.unwrap(), None);
    store.put("k", b"one", None).await.unwrap();
    assert!(store.put_existing("k", b"two", Some(60)).await.unwrap());
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert!(store.delete("k").await.unwrap());
    assert!(!store.put_existing("k", b"three", None).await.unwrap());
    assert_eq!(store.get("k").await.unwrap(), None);
}

async fn delete_any_kind(store: DynStore) {
    assert!(!store.delete("nothing").await.unwrap());
    store.put("v", b"x", None).await.unwrap();
    store.set_add("s", "m", None).await.unwrap();
    store.incr("c", 60).await.unwrap();
    store.put_redeemable("r", b"x", 60).await.unwrap();
    for key in ["v", "s", "c", "r"] {
        assert!(store.delete(key).await.unwrap(), "{key} was deleted");
        assert!(!store.delete(key).await.unwrap(), "{key} is gone");
    }
    assert_eq!(store.get("v").await.unwrap(), None);
    assert!(store.set_members("s").await.unwrap().is_empty());
    assert_eq!(store.incr("c", 60).await.unwrap(), 1, "a deleted counter starts over");
    assert_eq!(store.redeem("r", 1).await.unwrap(), None);
}

async fn take_is_single_use(store: DynStore) {
    assert_eq!(store.take("k").await.unwrap(), None);
    store.put("k", b"code", Some(60)).await.unwrap();
    assert_eq!(store.take("k").await.unwrap().as_deref(), Some(&b"code"[..]));
    assert_eq!(store.take("k").await.unwrap(), None);
    assert_eq!(store.get("k").await.unwrap(), None);
}

async fn take_is_atomic(store: DynStore) {
    for round in 0..3 {
        let key = format!("code-{round}");
        store.put(&key, b"secret", Some(60)).await.unwrap();
        let results = concurrently(&store, 32, |s, _| {
            let key = key.clone();
            async move { s.take(&key).await.unwrap() }
        })
        .await;
        let winners: Vec<_> = results.into_iter().flatten().collect();
        assert_eq!(winners, vec![b"secret".to_vec()], "round {round}: exactly one taker gets the value");
    }
}

async fn redeem_records_first_use(store: DynStore) {
    assert_eq!(store.redeem("r", 100).await.unwrap(), None);
    assert_eq!(store.peek("r").await.unwrap(), None);
    store.put_redeemable("r", b"family", 60).await.unwrap();
    let fresh = Redeemed { value: b"family".to_vec(), first_redeemed_at: None, successor: None };
    assert_eq!(store.peek("r").await.unwrap(), Some(fresh.clone()), "peek does not redeem");
    assert_eq!(store.redeem("r", 100).await.unwrap(), Some(fresh.clone()));
    let used = Redeemed { value: b"family".to_vec(), first_redeemed_at: Some(100), successor: None };
    assert_eq!(store.redeem("r", 200).await.unwrap(), Some(used.clone()), "later calls learn the first time");
    assert_eq!(store.redeem("r", 300).await.unwrap(), Some(used.clone()));
    assert_eq!(store.peek("r").await.unwrap(), Some(used));
    // Writing it again starts over.
    store.put_redeemable("r", b"family", 60).await.unwrap();
    assert_eq!(store.peek("r").await.unwrap(), Some(fresh));
    // Negative and large times round-trip (the value is the caller's `now`, opaque to the store).
    store.put_redeemable("t", b"", 60).await.unwrap();
    assert_eq!(store.redeem("t", -5).await.unwrap().map(|r| r.first_redeemed_at), Some(None));
    assert_eq!(store.redeem("t", i64::MAX).await.unwrap().map(|r| r.first_redeemed_at), Some(Some(-5)));
}

// Retry-safe redemption: the first redemption leaves its answer beside the mark; later callers
// get it back until it is dropped; only the first caller's answer is kept.
async fn redeem_keeps_the_first_answer(store: DynStore) {
    store.put_redeemable("r", b"code", 60).await.unwrap();
    let first = store.redeem_with("r", 10, b"answer-1", b"").await.unwrap().unwrap();
    assert_eq!((first.first_redeemed_at, first.successor), (None, None));
    let again = store.redeem_with("r", 11, b"answer-2", b"").await.unwrap().unwrap();
    assert_eq!((again.first_redeemed_at, again.successor.as_deref()), (Some(10), Some(&b"answer-1"[..])));
    assert_eq!(store.peek("r").await.unwrap().unwrap().successor.as_deref(), Some(&b"answer-1"[..]));
    store.drop_successor("r").await.unwrap();
    let later = store.redeem_with("r", 12, b"answer-3", b"").await.unwrap().unwrap();
    assert_eq!((later.first_redeemed_at, later.successor), (Some(10), None), "dropped for good");
    assert_eq!(store.redeem_with("absent", 1, b"x", b"").await.unwrap(), None);
    // The first use may leave a lean value in place of the original; later callers see it.
    store.put_redeemable("s", b"long original value", 60).await.unwrap();
    let first = store.redeem_with("s", 5, b"", b"lean").await.unwrap().unwrap();
    assert_eq!(first.value, b"long original value", "the first caller gets the value as it was");
    let later = store.redeem_with("s", 6, b"", b"other").await.unwrap().unwrap();
    assert_eq!((later.value.as_slice(), later.first_redeemed_at), (&b"lean"[..], Some(5)));
    store.drop_successor("absent").await.unwrap();
}

async fn redeem_is_atomic(store: DynStore) {
    store.put_redeemable("r", b"rt", 60).await.unwrap();
    let results = concurrently(&store, 32, |s, i| async move {
        let now = 1_000 + i64::try_from(i).unwrap();
        (now, s.redeem("r", now).await.unwrap().expect("value present"))
    })
    .await;
    let firsts: Vec<i64> = results.iter().filter(|(_, r)| r.first_redeemed_at.is_none()).map(|(now, _)| *now).collect();
    assert_eq!(firsts.len(), 1, "exactly one first redemption");
    for (_, r) in &results {
        assert_eq!(r.value, b"rt");
        if let Some(at) = r.first_redeemed_at {
            assert_eq!(at, firsts[0], "everyone else learns the winner's time");
        }
    }
}

async fn expire_existing_only(store: DynStore) {
    assert!(!store.expire("missing", 60).await.unwrap());
    store.put("v", b"x", None).await.unwrap();
    assert!(store.expire("v", 60).await.unwrap());
    assert_eq!(store.get("v").await.unwrap().as_deref(), Some(&b"x"[..]), "expire keeps the value");
    store.set_add("s", "m", None).await.unwrap();
    assert!(store.expire("s", 60).await.unwrap());
    store.put_redeemable("r", b"x", 60).await.unwrap();
    assert!(store.expire("r", 120).await.unwrap());
    assert!(store.delete("v").await.unwrap());
    assert!(!store.expire("v", 60).await.unwrap());
}

async fn sets(store: DynStore) {
    assert!(store.set_members("s").await.unwrap().is_empty());
    assert!(!store.set_remove("s", "a").await.unwrap(), "removing from a missing set");
    store.set_add("s", "a", None).await.unwrap();
    store.set_add("s", "b", Some(60)).await.unwrap();
    store.set_add("s", "a", Some(60)).await.unwrap();
    store.set_add("s", "客户端 c", None).await.unwrap();
    assert_eq!(sorted(store.set_members("s").await.unwrap()), ["a", "b", "客户端 c"], "members are unique");
    assert!(store.set_remove("s", "a").await.unwrap());
    assert!(!store.set_remove("s", "a").await.unwrap());
    assert_eq!(sorted(store.set_members("s").await.unwrap()), ["b", "客户端 c"]);
    assert!(store.set_remove("s", "b").await.unwrap());
    assert!(store.set_remove("s", "客户端 c").await.unwrap());
    // An emptied set is gone, as in Redis.
    assert!(store.set_members("s").await.unwrap().is_empty());
    assert!(!store.delete("s").await.unwrap());
    assert!(!store.expire("s", 60).await.unwrap());
    // Concurrent adds lose nothing.
    concurrently(&store, 32, |s, i| async move { s.set_add("many", &format!("m{i}"), Some(60)).await.unwrap() }).await;
    assert_eq!(store.set_members("many").await.unwrap().len(), 32);
}

async fn incr_counts(store: DynStore) {
    assert_eq!(store.incr("c", 60).await.unwrap(), 1);
    assert_eq!(store.incr("c", 60).await.unwrap(), 2);
    assert_eq!(store.incr("c", 60).await.unwrap(), 3);
    assert_eq!(store.incr("other", 60).await.unwrap(), 1, "counters are independent");
    // Concurrent increments are exact: every value from 1 to n is handed out exactly once.
    let mut got = concurrently(&store, 64, |s, _| async move { s.incr("race", 60).await.unwrap() }).await;
    got.sort_unstable();
    assert_eq!(got, (1..=64).collect::<Vec<i64>>());
    assert_eq!(store.incr("race", 60).await.unwrap(), 65);
    // A counter reads as its decimal text, alone or with others (the guessing guard reads its
    // counters in one round trip).
    assert_eq!(store.get("c").await.unwrap(), Some(b"3".to_vec()));
    let many = store.get_many(&["race".to_owned(), "none".to_owned()]).await.unwrap();
    assert_eq!(many, vec![Some(b"65".to_vec()), None]);
}

async fn ping(store: DynStore) {
    store.ping().await.unwrap();
}

/// The only sleeping case: TTLs really expire (and only the ones that were set).
async fn ttls_expire(store: DynStore) {
    store.put("v", b"x", Some(1)).await.unwrap();
    assert!(store.put_new("n", b"x", Some(1)).await.unwrap());
    store.put_redeemable("r", b"x", 1).await.unwrap();
    assert_eq!(store.incr("c", 1).await.unwrap(), 1);
    assert_eq!(store.incr("c", 1).await.unwrap(), 2);
    store.set_add("s", "a", Some(1)).await.unwrap();
    store.set_add("s", "b", None).await.unwrap(); // no TTL given: the set keeps its TTL
    store.put("e", b"x", None).await.unwrap();
    assert!(store.expire("e", 1).await.unwrap());
    // Overwriting with no TTL makes a value permanent; a set without TTL stays.
    store.put("p", b"x", Some(1)).await.unwrap();
    store.put("p", b"kept", None).await.unwrap();
    store.set_add("keep", "a", None).await.unwrap();
    store.put("long", b"x", Some(60)).await.unwrap();

    tokio::time::sleep(Duration::from_millis(1_600)).await;

    assert_eq!(store.get("v").await.unwrap(), None, "put TTL");
    assert_eq!(store.take("v").await.unwrap(), None);
    assert!(store.put_new("n", b"y", None).await.unwrap(), "put_new TTL frees the key");
    assert_eq!(store.redeem("r", 1).await.unwrap(), None, "put_redeemable TTL");
    assert_eq!(store.peek("r").await.unwrap(), None);
    assert_eq!(store.incr("c", 60).await.unwrap(), 1, "incr TTL: the window starts over");
    assert!(store.set_members("s").await.unwrap().is_empty(), "set_add TTL");
    assert!(!store.set_remove("s", "b").await.unwrap());
    assert_eq!(store.get("e").await.unwrap(), None, "expire");
    assert!(!store.expire("e", 60).await.unwrap());
    assert!(!store.delete("e").await.unwrap());
    assert_eq!(store.get_many(&["v".to_owned(), "p".to_owned()]).await.unwrap(), vec![None, Some(b"kept".to_vec())]);
    assert_eq!(store.set_members("keep").await.unwrap(), ["a"]);
    assert_eq!(store.get("long").await.unwrap().as_deref(), Some(&b"x"[..]));
}

/// Declares one test per case on each backend (and on a Redis Cluster), so all run exactly the
/// same assertions.
macro_rules! on_both_backends {
    ($($case:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(tongzheng::store::memory::MemoryStore::new())).await;
                }
            )+
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let prefix = crate::support::redis::unique_prefix();
                    super::$case(std::sync::Arc::new(crate::support::redis::redis_store(&prefix))).await;
                }
            )+
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let prefix = crate::support::redis::unique_prefix();
                    super::$case(crate::support::redis_modes::cluster_store(&prefix).1).await;
                }
            )+
        }
    };
}

on_both_backends!(
    get_put,
    get_many_keeps_order,
    put_new_only_if_absent,
    put_if_compares_and_sets,
    put_existing_never_recreates,
    delete_any_kind,
    take_is_single_use,
    take_is_atomic,
    redeem_records_first_use,
    redeem_keeps_the_first_answer,
    redeem_is_atomic,
    expire_existing_only,
    sets,
    incr_counts,
    ping,
    ttls_expire,
);

/// Asserts `call` fails with `Unavailable` within the hang guard (not a performance bound).
async fn assert_unavailable<T: std::fmt::Debug>(what: &str, call: impl Future<Output = Result<T, StoreError>>) {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{what}: expected Unavailable, got {result:?}");
    assert!(took < Duration::from_secs(3), "{what}: took {took:?}");
}

/// Every kind of call (plain command, pipeline, Lua script) on a store whose Redis is gone.
async fn assert_all_unavailable(store: &DynStore) {
    assert_unavailable("ping", store.ping()).await;
    assert_unavailable("get", store.get("k")).await;
    assert_unavailable("put", store.put("k", b"x", Some(60))).await;
    assert_unavailable("take", store.take("k")).await;
    assert_unavailable("put_redeemable", store.put_redeemable("r", b"x", 60)).await;
    assert_unavailable("redeem", store.redeem("r", 1)).await;
    assert_unavailable("incr", store.incr("c", 60)).await;
    assert_unavailable("set_add", store.set_add("s", "m", None)).await;
    assert_unavailable("put_if", store.put_if("k", None, b"x")).await;
}

/// Polls `ping` until it succeeds (bounded): the store reconnects by itself.
async fn wait_until_pings(store: &DynStore, within: Duration) {
    let deadline = Instant::now() + within;
    while let Err(e) = store.ping().await {
        assert!(Instant::now() < deadline, "store did not reconnect within {within:?}: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_closed_port_is_unavailable_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store: DynStore = Arc::new(redis_store_at(&format!("redis://127.0.0.1:{port}/"), &unique_prefix()));
    assert_all_unavailable(&store).await;
}

#[tokio::test]
async fn redis_silent_server_is_unavailable_fast() {
    // Accepts connections (the kernel completes the handshake) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", silent.local_addr().unwrap());
    let store: DynStore = Arc::new(redis_store_at(&url, &unique_prefix()));
    assert_unavailable("ping", store.ping()).await;
    assert_unavailable("get", store.get("k")).await;
    assert_unavailable("redeem", store.redeem("r", 1)).await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_then_reconnects() {
    let mut redis = RedisServer::dedicated();
    let prefix = unique_prefix();
    let store: DynStore = Arc::new(redis_store_at(&redis.url(), &prefix));
    store.put("before", b"x", None).await.unwrap();
    store.put_redeemable("r", b"x", 60).await.unwrap();
    assert!(store.redeem("r", 1).await.unwrap().is_some(), "scripts are loaded");

    redis.stop();
    assert_all_unavailable(&store).await;
    // A store built while Redis is down builds fine (lazy connect) and reports Unavailable.
    let late: DynStore = Arc::new(redis_store_at(&redis.url(), &prefix));
    assert_all_unavailable(&late).await;

    redis.restart();
    for s in [&store, &late] {
        wait_until_pings(s, Duration::from_secs(10)).await;
        // The new server is empty (no persistence) and its script cache is too.
        assert_eq!(s.get("before").await.unwrap(), None);
        s.put("after", b"y", Some(60)).await.unwrap();
        assert_eq!(s.get("after").await.unwrap().as_deref(), Some(&b"y"[..]));
        s.put_redeemable("r2", b"z", 60).await.unwrap();
        assert_eq!(s.redeem("r2", 5).await.unwrap().map(|r| r.first_redeemed_at), Some(None));
        assert!(s.incr("c", 60).await.unwrap() >= 1);
        s.set_add("s", "m", Some(60)).await.unwrap();
        assert_eq!(s.take("after").await.unwrap().as_deref(), Some(&b"y"[..]));
    }
}
