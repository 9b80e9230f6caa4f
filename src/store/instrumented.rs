//! A [`Store`] decorator that times every call and counts failures by kind into [`Metrics`],
//! so both backends report the same `tongzheng_store_*` series without knowing about metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{DynStore, IndexChange, Redeemed, Store, StoreError};
use crate::metrics::Metrics;
use std::ops::Bound;

/// Wraps a store and records each call's latency and error kind.
pub struct Instrumented {
    inner: DynStore,
    metrics: Metrics,
}

impl Instrumented {
    /// `inner`, recording into `metrics`.
    pub fn wrap(inner: DynStore, metrics: Metrics) -> DynStore {
        Arc::new(Self { inner, metrics })
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let result = call.await;
        let kind = result.as_ref().err().map(|e| match e {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Corrupt { .. } => "corrupt",
        });
        self.metrics.store_op(op, start.elapsed().as_secs_f64(), kind);
        result
    }
}

#[async_trait]
impl Store for Instrumented {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.timed("get", self.inner.get(key)).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.timed("get_many", self.inner.get_many(keys)).await
    }
    async fn put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), StoreError> {
        self.timed("put", self.inner.put(key, value, ttl)).await
    }
    async fn put_new(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        self.timed("put_new", self.inner.put_new(key, value, ttl)).await
    }
    async fn put_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        self.timed("put_if", self.inner.put_if(key, expected, value)).await
    }
    async fn put_existing(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        self.timed("put_existing", self.inner.put_existing(key, value, ttl)).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.timed("delete", self.inner.delete(key)).await
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.timed("take", self.inner.take(key)).await
    }
    async fn put_redeemable(&self, key: &str, value: &[u8], ttl: u64) -> Result<(), StoreError> {
        self.timed("put_redeemable", self.inner.put_redeemable(key, value, ttl)).await
    }
    async fn redeem(&self, key: &str, now: i64) -> Result<Option<Redeemed>, StoreError> {
        self.timed("redeem", self.inner.redeem(key, now)).await
    }
    async fn redeem_with(
        &self,
        key: &str,
        now: i64,
        successor: &[u8],
        lean: &[u8],
    ) -> Result<Option<Redeemed>, StoreError> {
        self.timed("redeem", self.inner.redeem_with(key, now, successor, lean)).await
    }
    async fn drop_successor(&self, key: &str) -> Result<(), StoreError> {
        self.timed("drop_successor", self.inner.drop_successor(key)).await
    }
    async fn peek(&self, key: &str) -> Result<Option<Redeemed>, StoreError> {
        self.timed("peek", self.inner.peek(key)).await
    }
    async fn expire(&self, key: &str, ttl: u64) -> Result<bool, StoreError> {
        self.timed("expire", self.inner.expire(key, ttl)).await
    }
    async fn set_add(&self, key: &str, member: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        self.timed("set_add", self.inner.set_add(key, member, ttl)).await
    }
    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, StoreError> {
        self.timed("set_remove", self.inner.set_remove(key, member)).await
    }
    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.timed("set_members", self.inner.set_members(key)).await
    }
    async fn incr(&self, key: &str, ttl: u64) -> Result<i64, StoreError> {
        self.timed("incr", self.inner.incr(key, ttl)).await
    }
    async fn queue_put(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<(), StoreError> {
        self.timed("queue_put", self.inner.queue_put(queue, id, payload, due)).await
    }
    async fn queue_put_new(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<bool, StoreError> {
        self.timed("queue_put_new", self.inner.queue_put_new(queue, id, payload, due)).await
    }
    async fn queue_touch(&self, queue: &str, id: &str, due: i64) -> Result<(), StoreError> {
        self.timed("queue_touch", self.inner.queue_touch(queue, id, due)).await
    }
    async fn queue_claim(
        &self,
        queue: &str,
        now: i64,
        lease: i64,
        max: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.timed("queue_claim", self.inner.queue_claim(queue, now, lease, max)).await
    }
    async fn queue_remove(&self, queue: &str, id: &str) -> Result<bool, StoreError> {
        self.timed("queue_remove", self.inner.queue_remove(queue, id)).await
    }
    async fn queue_len(&self, queue: &str) -> Result<u64, StoreError> {
        self.timed("queue_len", self.inner.queue_len(queue)).await
    }
    async fn queue_release(&self, queue: &str, ids: &[String], now: i64) -> Result<usize, StoreError> {
        self.timed("queue_release", self.inner.queue_release(queue, ids, now)).await
    }
    async fn index_apply(&self, changes: &[IndexChange]) -> Result<(), StoreError> {
        self.timed("index_apply", self.inner.index_apply(changes)).await
    }
    async fn index_range(
        &self,
        key: &str,
        from: Bound<&str>,
        to: Bound<&str>,
        offset: usize,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<String>, StoreError> {
        self.timed("index_range", self.inner.index_range(key, from, to, offset, limit, rev)).await
    }
    async fn index_count(&self, key: &str, from: Bound<&str>, to: Bound<&str>) -> Result<u64, StoreError> {
        self.timed("index_count", self.inner.index_count(key, from, to)).await
    }
    async fn log_append(&self, log: &str, payload: &[u8]) -> Result<u64, StoreError> {
        self.timed("log_append", self.inner.log_append(log, payload)).await
    }
    async fn log_read(&self, log: &str, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.timed("log_read", self.inner.log_read(log, after, max)).await
    }
    async fn log_last(&self, log: &str) -> Result<u64, StoreError> {
        self.timed("log_last", self.inner.log_last(log)).await
    }
    async fn log_trim(&self, log: &str, upto: u64) -> Result<u64, StoreError> {
        self.timed("log_trim", self.inner.log_trim(log, upto)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }
    async fn probe_write(&self, key: &str, now: i64) -> Result<(), StoreError> {
        self.timed("probe_write", self.inner.probe_write(key, now)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn calls_are_timed_and_failures_counted_by_kind() {
        let metrics = Metrics::new(0);
        let store = Instrumented::wrap(Arc::new(MemoryStore::new()), metrics.clone());
        store.put("k", b"not json", None).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"not json"[..]));
        let err = crate::store::get_json::<serde_json::Value>(store.as_ref(), "k").await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        let text = metrics.render();
        assert!(text.contains("tongzheng_store_operation_duration_seconds_count{op=\"put\"} 1\n"), "{text}");
        assert!(text.contains("tongzheng_store_operation_duration_seconds_count{op=\"get\"} 2\n"), "{text}");
        // A decode failure happens above the store: the call itself succeeded.
        assert!(!text.contains("tongzheng_store_errors_total{"), "{text}");
    }

    #[tokio::test]
    async fn unreachable_backend_counts_as_unavailable() {
        let metrics = Metrics::new(0);
        let redis = crate::store::redis::RedisStore::connect("redis://127.0.0.1:1", "t:", Duration::from_millis(300));
        let store = Instrumented::wrap(Arc::new(redis.unwrap()), metrics.clone());
        assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
        let text = metrics.render();
        assert!(text.contains("tongzheng_store_errors_total{op=\"ping\",kind=\"unavailable\"} 1\n"), "{text}");
        assert!(text.contains("tongzheng_store_operation_duration_seconds_count{op=\"ping\"} 1\n"), "{text}");
    }
}
