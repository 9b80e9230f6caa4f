//! The directory's store primitives (issue 12): lexicographic indexes and append-only logs,
//! with the same assertions on the memory backend, a real redis-server and a Redis Cluster.

use std::ops::Bound::{Excluded, Included, Unbounded};

use tongzheng::store::{DynStore, IndexChange};

use crate::support::redis::unique_prefix;

fn add(key: &str, member: &str) -> IndexChange {
    IndexChange::add(key.to_owned(), member.to_owned())
}

// SH-6.2.4a: a page or a filter of the directory reads a range of an index, never everything.
async fn index_ranges(store: DynStore) {
    let none = store.index_range("i", Unbounded, Unbounded, 0, 10, false).await.unwrap();
    assert!(none.is_empty());
    let members = ["b\u{0}2", "a\u{0}1", "c\u{0}3", "ab\u{0}4", "张三\u{0}5"];
    let changes: Vec<IndexChange> = members.iter().map(|m| add("i", m)).chain([add("j", "x")]).collect();
    store.index_apply(&changes).await.unwrap();
    store.index_apply(&changes).await.unwrap(); // idempotent
    let all = store.index_range("i", Unbounded, Unbounded, 0, 100, false).await.unwrap();
    assert_eq!(all, ["a\u{0}1", "ab\u{0}4", "b\u{0}2", "c\u{0}3", "张三\u{0}5"], "bytewise order");
    assert_eq!(store.index_count("i", Unbounded, Unbounded).await.unwrap(), 5);
    // Prefix range: members starting with "a" ("a" <= m < "b").
    let a = store.index_range("i", Included("a"), Excluded("b"), 0, 100, false).await.unwrap();
    assert_eq!(a, ["a\u{0}1", "ab\u{0}4"]);
    assert_eq!(store.index_count("i", Included("a"), Excluded("b")).await.unwrap(), 2);
    // Paging and reverse order.
    let page = store.index_range("i", Unbounded, Unbounded, 1, 2, false).await.unwrap();
    assert_eq!(page, ["ab\u{0}4", "b\u{0}2"]);
    let rev = store.index_range("i", Unbounded, Unbounded, 0, 2, true).await.unwrap();
    assert_eq!(rev, ["张三\u{0}5", "c\u{0}3"]);
    let rev_a = store.index_range("i", Included("a"), Excluded("b"), 0, 10, true).await.unwrap();
    assert_eq!(rev_a, ["ab\u{0}4", "a\u{0}1"]);
    // Exclusive lower bound, inverted and empty ranges answer nothing (never an error).
    let after = store.index_range("i", Excluded("b\u{0}2"), Unbounded, 0, 10, false).await.unwrap();
    assert_eq!(after, ["c\u{0}3", "张三\u{0}5"]);
    assert!(store.index_range("i", Included("z"), Excluded("a"), 0, 10, false).await.unwrap().is_empty());
    assert!(store.index_range("i", Excluded("b"), Excluded("b"), 0, 10, false).await.unwrap().is_empty());
    assert_eq!(store.index_count("i", Included("z"), Included("a")).await.unwrap(), 0);
    assert!(store.index_range("i", Unbounded, Unbounded, 0, 0, false).await.unwrap().is_empty());
    // Removal, of present and absent members; an emptied index is gone.
    store
        .index_apply(&[
            IndexChange::remove("i".into(), "a\u{0}1".into()),
            IndexChange::remove("i".into(), "nope".into()),
        ])
        .await
        .unwrap();
    assert_eq!(store.index_count("i", Unbounded, Unbounded).await.unwrap(), 4);
    store.index_apply(&[IndexChange::remove("j".into(), "x".into())]).await.unwrap();
    assert_eq!(store.index_count("j", Unbounded, Unbounded).await.unwrap(), 0);
    store.index_apply(&[]).await.unwrap();
    assert!(store.delete("i").await.unwrap());
    assert_eq!(store.index_count("i", Unbounded, Unbounded).await.unwrap(), 0);
}

// SH-6.3.5: the change feed is an append-only log read after a cursor, in append order.
async fn logs_append_read_trim(store: DynStore) {
    assert!(store.log_read("feed", 0, 10).await.unwrap().is_empty());
    assert_eq!(store.log_last("feed").await.unwrap(), 0);
    for i in 1..=5u64 {
        let payload = format!("e{i}:with:colons\u{0}");
        assert_eq!(store.log_append("feed", payload.as_bytes()).await.unwrap(), i);
    }
    // Identical payloads are distinct entries.
    assert_eq!(store.log_append("feed", b"same").await.unwrap(), 6);
    assert_eq!(store.log_append("feed", b"same").await.unwrap(), 7);
    let got = store.log_read("feed", 0, 3).await.unwrap();
    assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(got[0].1, b"e1:with:colons\0");
    let rest = store.log_read("feed", 3, 100).await.unwrap();
    assert_eq!(rest.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert_eq!(rest[2].1, b"same");
    assert!(store.log_read("feed", 7, 10).await.unwrap().is_empty());
    assert!(store.log_read("feed", 0, 0).await.unwrap().is_empty());
    // Trimming drops the oldest; numbering continues.
    assert_eq!(store.log_trim("feed", 4).await.unwrap(), 4);
    assert_eq!(store.log_trim("feed", 4).await.unwrap(), 0);
    assert_eq!(store.log_read("feed", 0, 1).await.unwrap()[0].0, 5);
    assert_eq!(store.log_trim("feed", 100).await.unwrap(), 3);
    assert_eq!(store.log_append("feed", b"next").await.unwrap(), 8);
    assert_eq!(store.log_last("feed").await.unwrap(), 8, "trimming keeps the numbering");
    assert_eq!(store.log_last("never").await.unwrap(), 0);
    // Concurrent appends get distinct, gapless numbers.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let s = store.clone();
        set.spawn(async move { s.log_append("race", i.to_string().as_bytes()).await.unwrap() });
    }
    let mut seqs = set.join_all().await;
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
}

macro_rules! on_every_store {
    ($($case:ident),+ $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(std::sync::Arc::new(tongzheng::store::memory::MemoryStore::new())).await; })+
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(std::sync::Arc::new(crate::support::redis::redis_store(&super::unique_prefix()))).await; })+
        }
        mod cluster {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(crate::support::redis_modes::cluster_store(&super::unique_prefix()).1).await; })+
        }
    };
}

on_every_store!(index_ranges, logs_append_read_trim);
