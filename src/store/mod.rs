//! One storage interface, two backends. The interface is a small key-value vocabulary (values,
//! single-use redemption, sets, counters) that both the embedded memory backend and Redis
//! implement identically; `keys` names every stored type's key so nothing builds keys by hand.

pub mod claim;
pub mod instrumented;
pub mod keys;
pub mod memory;
pub mod redis;

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded (schema drift or corruption).
    #[error("stored value for {key} is corrupt: {reason}")]
    Corrupt {
        /// The key whose value failed to decode.
        key: String,
        /// The decoder's message.
        reason: String,
    },
}

/// Result of [`Store::redeem`]: the stored value and when it was first redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    /// The value as stored by [`Store::put_redeemable`].
    pub value: Vec<u8>,
    /// `None` when this call was the first redemption, else the `now` passed by the first one.
    pub first_redeemed_at: Option<i64>,
    /// What the first redemption left for retries of it ([`Store::redeem_with`]), while kept;
    /// `None` for the first redemption itself.
    pub successor: Option<Vec<u8>>,
}

/// The storage interface every backend implements. TTLs are whole seconds; `None` keeps the
/// value until deleted. Expiry here is garbage collection only: records carry their own expiry
/// and domain code checks it against the clock.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads a value.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads several values in one round trip, in the order given.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Writes a value, replacing any old one.
    async fn put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), StoreError>;
    /// Writes a value only if the key is absent; true when written.
    async fn put_new(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError>;
    /// Compare-and-set: writes `value` (no TTL) only if the key's current value is exactly
    /// `expected` (`None`: the key is absent); true when written. Two writers that read the same
    /// value and race converge on one winner; the loser re-reads (the shared key set).
    async fn put_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError>;
    /// Replaces a value only if the key exists (never re-creates a deleted record); true when
    /// written.
    async fn put_existing(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError>;
    /// Deletes a key of any kind; true when something was deleted.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Reads and deletes a value atomically: exactly one caller gets it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes a value that is later read only through [`Store::redeem`].
    async fn put_redeemable(&self, key: &str, value: &[u8], ttl: u64) -> Result<(), StoreError>;
    /// Reads a redeemable value and atomically records the first redemption time, so exactly
    /// one caller sees `first_redeemed_at == None` and later callers learn when that was.
    async fn redeem(&self, key: &str, now: i64) -> Result<Option<Redeemed>, StoreError>;
    /// As [`Store::redeem`], and the first redemption atomically leaves `successor` beside the
    /// value (the answer it gave, for a retry of it: later callers get it back in
    /// [`Redeemed::successor`] until [`Store::drop_successor`]) and, when `lean` is not empty,
    /// replaces the value by it (what a used credential still needs to be recognised: less).
    async fn redeem_with(
        &self,
        key: &str,
        now: i64,
        successor: &[u8],
        lean: &[u8],
    ) -> Result<Option<Redeemed>, StoreError>;
    /// Forgets the successor left by [`Store::redeem_with`] (the redemption is complete).
    async fn drop_successor(&self, key: &str) -> Result<(), StoreError>;
    /// Reads a redeemable value without redeeming it (introspection of refresh tokens).
    async fn peek(&self, key: &str) -> Result<Option<Redeemed>, StoreError>;
    /// Sets a new TTL on an existing key; false when the key does not exist.
    async fn expire(&self, key: &str, ttl: u64) -> Result<bool, StoreError>;
    /// Adds a member to a set, and (re)sets the set's TTL when one is given.
    async fn set_add(&self, key: &str, member: &str, ttl: Option<u64>) -> Result<(), StoreError>;
    /// Removes a member from a set; true when it was there.
    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, StoreError>;
    /// All members of a set, in no particular order.
    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Increments a counter, creating it with `ttl` when new; returns the new value.
    async fn incr(&self, key: &str, ttl: u64) -> Result<i64, StoreError>;
    /// Adds or reschedules a queue item: it becomes claimable at `due` (unix seconds).
    async fn queue_put(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<(), StoreError>;
    /// Adds a queue item only if `id` is not queued yet (leased items count as queued); true
    /// when added. Re-running a step that queues work then never resets a lease in flight.
    async fn queue_put_new(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<bool, StoreError>;
    /// Moves a queued item's due time (extends a lease, or hands a claimed item back for
    /// later) without touching its payload; nothing happens when the item is gone.
    async fn queue_touch(&self, queue: &str, id: &str, due: i64) -> Result<(), StoreError>;
    /// Claims up to `max` items due at `now`, oldest first, hiding each until `now + lease` so a
    /// worker that dies mid-item loses it to another worker once the lease runs out.
    async fn queue_claim(
        &self,
        queue: &str,
        now: i64,
        lease: i64,
        max: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Removes a queue item for good; true when it was there.
    async fn queue_remove(&self, queue: &str, id: &str) -> Result<bool, StoreError>;
    /// Number of items in a queue, due or leased.
    async fn queue_len(&self, queue: &str) -> Result<u64, StoreError>;
    /// Hands leased items back: those of `ids` still in the queue become claimable at `now`
    /// (a worker shutting down releases what it holds); removed ones stay removed. Returns how
    /// many were moved (an item already due at `now` is not counted).
    async fn queue_release(&self, queue: &str, ids: &[String], now: i64) -> Result<usize, StoreError>;
    /// Adds and removes members of lexicographic indexes (sorted sets whose members are ordered
    /// bytewise) in one round trip; each change is idempotent, the batch is not atomic.
    async fn index_apply(&self, changes: &[IndexChange]) -> Result<(), StoreError>;
    /// Up to `limit` members of an index between `from` and `to` (bytewise), skipping `offset`,
    /// ascending, or descending when `rev`.
    async fn index_range(
        &self,
        key: &str,
        from: Bound<&str>,
        to: Bound<&str>,
        offset: usize,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<String>, StoreError>;
    /// How many members of an index lie between `from` and `to`.
    async fn index_count(&self, key: &str, from: Bound<&str>, to: Bound<&str>) -> Result<u64, StoreError>;
    /// Appends an entry to an append-only log and returns its sequence number: 1, 2, 3... in
    /// the order the appends took effect, across every instance (a log's cursor never skips an
    /// entry that lands later with a smaller number).
    async fn log_append(&self, log: &str, payload: &[u8]) -> Result<u64, StoreError>;
    /// Up to `max` entries of a log after sequence number `after`, oldest first.
    async fn log_read(&self, log: &str, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The sequence number of a log's last appended entry (0: none yet), trimmed or not.
    async fn log_last(&self, log: &str) -> Result<u64, StoreError>;
    /// Drops a log's entries up to and including `upto`; returns how many went. Numbering
    /// continues after the last appended entry.
    async fn log_trim(&self, log: &str, upto: u64) -> Result<u64, StoreError>;
    /// Checks that the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Checks that the backend accepts writes now by writing `now` under `key` for a minute: a
    /// Redis replica (the old master after a failover), a read-only or a full Redis fails.
    async fn probe_write(&self, key: &str, now: i64) -> Result<(), StoreError>;
}

/// One change of [`Store::index_apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexChange {
    /// The index.
    pub key: String,
    /// The member.
    pub member: String,
    /// Add (true) or remove (false).
    pub add: bool,
}

impl IndexChange {
    /// Adds `member` to `key`.
    pub fn add(key: String, member: String) -> Self {
        Self { key, member, add: true }
    }
    /// Removes `member` from `key`.
    pub fn remove(key: String, member: String) -> Self {
        Self { key, member, add: false }
    }
}

/// Seconds a [`Store::probe_write`] key lives (it is rewritten at every readiness check).
pub const PROBE_TTL: u64 = 60;

/// A shared handle to whichever backend the config chose.
pub type DynStore = Arc<dyn Store>;

/// Encodes a record for storage.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain structs to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).unwrap_or_default()
}

/// Decodes a stored record, naming the key on failure.
pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { key: key.to_owned(), reason: e.to_string() })
}

/// Reads and decodes a JSON record.
pub async fn get_json<T: DeserializeOwned>(store: &dyn Store, key: &str) -> Result<Option<T>, StoreError> {
    match store.get(key).await? {
        Some(bytes) => decode(key, &bytes).map(Some),
        None => Ok(None),
    }
}

/// Encodes and writes a JSON record.
pub async fn put_json<T: Serialize>(
    store: &dyn Store,
    key: &str,
    value: &T,
    ttl: Option<u64>,
) -> Result<(), StoreError> {
    store.put(key, &encode(value), ttl).await
}

/// A TTL in seconds from an absolute expiry, never zero (zero would mean "expire now" to Redis).
pub fn ttl_until(exp: i64, now: i64) -> u64 {
    u64::try_from(exp.saturating_sub(now)).unwrap_or(0).max(1)
}
