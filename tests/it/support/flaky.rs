//! A store that misbehaves on demand: it loses the answer of its next single-use redemption
//! (the write happens, the caller sees a timeout: Redis applying a command whose reply never
//! arrives), or it stalls every call (a Redis that answers slowly).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tongzheng::store::{DynStore, Redeemed, Store, StoreError};

/// Wraps a store; [`Flaky::arm`] makes the next `redeem_with` apply and then fail.
pub struct Flaky {
    inner: DynStore,
    armed: AtomicBool,
    refuse: AtomicBool,
    stall_ms: AtomicU64,
}

impl Flaky {
    /// Wraps `inner`.
    pub fn new(inner: DynStore) -> Arc<Self> {
        Arc::new(Self {
            inner,
            armed: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            stall_ms: AtomicU64::new(0),
        })
    }
    /// Every call from now on waits `d` first (zero: no more stalls).
    pub fn stall(&self, d: Duration) {
        self.stall_ms.store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
    async fn pause(&self) {
        let ms = self.stall_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
    /// The next redemption applies, then reports a timeout.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
    /// The next redemption fails without being applied (the connection broke on the way).
    pub fn refuse_next(&self) {
        self.refuse.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Store for Flaky {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.pause().await;
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        // Redis answers an empty MGET without a round trip.
        if !keys.is_empty() {
            self.pause().await;
        }
        self.inner.get_many(keys).await
    }
    async fn put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.put(key, value, ttl).await
    }
    async fn put_new(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.put_new(key, value, ttl).await
    }
    async fn put_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.put_if(key, expected, value).await
    }
    async fn put_existing(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.put_existing(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.delete(key).await
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.pause().await;
        self.inner.take(key).await
    }
    async fn put_redeemable(&self, key: &str, value: &[u8], ttl: u64) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.put_redeemable(key, value, ttl).await
    }
    async fn redeem(&self, key: &str, now: i64) -> Result<Option<Redeemed>, StoreError> {
        self.pause().await;
        self.inner.redeem(key, now).await
    }
    async fn redeem_with(
        &self,
        key: &str,
        now: i64,
        successor: &[u8],
        lean: &[u8],
    ) -> Result<Option<Redeemed>, StoreError> {
        self.pause().await;
        if self.refuse.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection lost (test)".into()));
        }
        let applied = self.inner.redeem_with(key, now, successor, lean).await;
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the reply was lost (test)".into()));
        }
        applied
    }
    async fn drop_successor(&self, key: &str) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.drop_successor(key).await
    }
    async fn peek(&self, key: &str) -> Result<Option<Redeemed>, StoreError> {
        self.pause().await;
        self.inner.peek(key).await
    }
    async fn expire(&self, key: &str, ttl: u64) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.expire(key, ttl).await
    }
    async fn set_add(&self, key: &str, member: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.set_add(key, member, ttl).await
    }
    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.set_remove(key, member).await
    }
    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.pause().await;
        self.inner.set_members(key).await
    }
    async fn incr(&self, key: &str, ttl: u64) -> Result<i64, StoreError> {
        self.pause().await;
        self.inner.incr(key, ttl).await
    }
    async fn queue_put(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.queue_put(queue, id, payload, due).await
    }
    async fn queue_claim(
        &self,
        queue: &str,
        now: i64,
        lease: i64,
        max: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.pause().await;
        self.inner.queue_claim(queue, now, lease, max).await
    }
    async fn queue_put_new(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.queue_put_new(queue, id, payload, due).await
    }
    async fn queue_touch(&self, queue: &str, id: &str, due: i64) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.queue_touch(queue, id, due).await
    }
    async fn queue_remove(&self, queue: &str, id: &str) -> Result<bool, StoreError> {
        self.pause().await;
        self.inner.queue_remove(queue, id).await
    }
    async fn queue_len(&self, queue: &str) -> Result<u64, StoreError> {
        self.pause().await;
        self.inner.queue_len(queue).await
    }
    async fn queue_release(&self, queue: &str, ids: &[String], now: i64) -> Result<usize, StoreError> {
        self.pause().await;
        self.inner.queue_release(queue, ids, now).await
    }
    async fn probe_write(&self, key: &str, now: i64) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.probe_write(key, now).await
    }
    async fn index_apply(&self, changes: &[tongzheng::store::IndexChange]) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.index_apply(changes).await
    }
    async fn index_range(
        &self,
        key: &str,
        from: std::ops::Bound<&str>,
        to: std::ops::Bound<&str>,
        offset: usize,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<String>, StoreError> {
        self.pause().await;
        self.inner.index_range(key, from, to, offset, limit, rev).await
    }
    async fn index_count(
        &self,
        key: &str,
        from: std::ops::Bound<&str>,
        to: std::ops::Bound<&str>,
    ) -> Result<u64, StoreError> {
        self.pause().await;
        self.inner.index_count(key, from, to).await
    }
    async fn log_append(&self, log: &str, payload: &[u8]) -> Result<u64, StoreError> {
        self.pause().await;
        self.inner.log_append(log, payload).await
    }
    async fn log_read(&self, log: &str, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.pause().await;
        self.inner.log_read(log, after, max).await
    }
    async fn log_last(&self, log: &str) -> Result<u64, StoreError> {
        self.pause().await;
        self.inner.log_last(log).await
    }
    async fn log_trim(&self, log: &str, upto: u64) -> Result<u64, StoreError> {
        self.pause().await;
        self.inner.log_trim(log, upto).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.pause().await;
        self.inner.ping().await
    }
}
