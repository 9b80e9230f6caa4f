//! The store's delayed queue with leases, on both backends (the logout outbox runs on it): items
//! become claimable when due, a claim hides them for the lease, an unacknowledged item comes
//! back after the lease (a dead worker's delivery is picked up by another), removal is final.

use std::sync::Arc;

use tongzheng::store::DynStore;
use tongzheng::store::memory::MemoryStore;

use crate::support::redis::{redis_store, unique_prefix};

async fn queue_semantics(store: DynStore) {
    let q = "outbox-test";
    store.queue_put(q, "a", b"pa", 100).await.unwrap();
    store.queue_put(q, "b", b"pb", 105).await.unwrap();
    store.queue_put(q, "c", b"pc", 200).await.unwrap();
    assert_eq!(store.queue_len(q).await.unwrap(), 3);
    assert!(store.queue_claim(q, 99, 30, 10).await.unwrap().is_empty(), "nothing due yet");
    let got = store.queue_claim(q, 110, 30, 10).await.unwrap();
    assert_eq!(
        got,
        vec![("a".to_owned(), b"pa".to_vec()), ("b".to_owned(), b"pb".to_vec())],
        "due items, oldest first"
    );
    assert!(store.queue_claim(q, 120, 30, 10).await.unwrap().is_empty(), "leased items are hidden");
    // The worker that claimed "a" acknowledges it; "b"'s worker died.
    assert!(store.queue_remove(q, "a").await.unwrap());
    assert!(!store.queue_remove(q, "a").await.unwrap());
    let again = store.queue_claim(q, 141, 30, 10).await.unwrap();
    assert_eq!(again, vec![("b".to_owned(), b"pb".to_vec())], "lease expired: another worker gets it");
    // Rescheduling with a new payload (a retry with backoff).
    store.queue_put(q, "b", b"pb2", 300).await.unwrap();
    let late = store.queue_claim(q, 300, 30, 1).await.unwrap();
    assert_eq!(late, vec![("c".to_owned(), b"pc".to_vec())], "max respected, oldest due first");
    let late = store.queue_claim(q, 300, 30, 5).await.unwrap();
    assert_eq!(late, vec![("b".to_owned(), b"pb2".to_vec())]);
    assert_eq!(store.queue_len(q).await.unwrap(), 2);
}

// Issue 10: re-queueing work after a crash never resets a lease in flight; a lease can be
// extended (heartbeat) or handed back early, and a finished item is never brought back.
async fn add_once_touch_and_extend(store: DynStore) {
    let q = "outbox-once";
    assert!(store.queue_put_new(q, "d", b"first", 100).await.unwrap());
    assert!(!store.queue_put_new(q, "d", b"second", 100).await.unwrap(), "already queued");
    assert_eq!(store.queue_claim(q, 100, 5, 10).await.unwrap(), vec![("d".to_owned(), b"first".to_vec())]);
    assert!(!store.queue_put_new(q, "d", b"third", 100).await.unwrap(), "leased items count as queued");
    assert!(store.queue_claim(q, 104, 5, 10).await.unwrap().is_empty(), "still leased");
    store.queue_touch(q, "d", 110).await.unwrap(); // heartbeat: lease extended
    assert!(store.queue_claim(q, 106, 5, 10).await.unwrap().is_empty(), "the extended lease holds");
    assert_eq!(store.queue_claim(q, 110, 5, 10).await.unwrap().len(), 1, "claimable once it runs out");
    store.queue_touch(q, "d", 111).await.unwrap(); // handed back for later
    assert_eq!(store.queue_claim(q, 111, 5, 10).await.unwrap(), vec![("d".to_owned(), b"first".to_vec())]);
    assert!(store.queue_remove(q, "d").await.unwrap());
    store.queue_touch(q, "d", 200).await.unwrap();
    assert_eq!(store.queue_len(q).await.unwrap(), 0, "touching a removed item does not bring it back");
    assert!(store.queue_put_new(q, "d", b"again", 300).await.unwrap(), "a removed item may be queued anew");
}

async fn concurrent_claims_are_exclusive(store: DynStore) {
    let q = "outbox-race";
    for i in 0..50 {
        store.queue_put(q, &format!("i{i}"), b"x", 1).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.queue_claim(q, 10, 60, 10).await.unwrap() }));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        for (id, _) in t.await.unwrap() {
            assert!(seen.insert(id), "an item was claimed twice");
        }
    }
    assert_eq!(seen.len(), 50);
}

#[tokio::test]
async fn queue_memory() {
    queue_semantics(Arc::new(MemoryStore::new())).await;
    add_once_touch_and_extend(Arc::new(MemoryStore::new())).await;
    concurrent_claims_are_exclusive(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_redis() {
    queue_semantics(Arc::new(redis_store(&unique_prefix()))).await;
    add_once_touch_and_extend(Arc::new(redis_store(&unique_prefix()))).await;
    concurrent_claims_are_exclusive(Arc::new(redis_store(&unique_prefix()))).await;
}

// The queue's two keys share a hash tag, so its script and transactions work on a Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_cluster() {
    queue_semantics(crate::support::redis_modes::cluster_store(&unique_prefix()).1).await;
    concurrent_claims_are_exclusive(crate::support::redis_modes::cluster_store(&unique_prefix()).1).await;
}
