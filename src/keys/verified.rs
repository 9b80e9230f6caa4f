//! A bounded cache of tokens whose signature was verified (issue 13): keyed by the SHA-256 of
//! the whole compact JWS, it keeps what that exact token's bytes say once the signature checked
//! out (the decoded claims, `typ`, and the `kid` and algorithm that verified it) until the token
//! expires. The bytes cannot change under the hash, so this is the signature's result and
//! nothing more: it answers nothing about validity, and every state check still runs per request.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::jwt::Alg;
use crate::prehashed::BuildPrehashed;

/// Shards, so concurrent requests rarely share a lock (there is no global one).
const SHARDS: usize = 16;

/// Bytes a configured entry may use on average: [`Stats::memory_bound`] is the capacity times
/// this, and each shard evicts its oldest entries to stay within its share of it.
pub const ENTRY_BUDGET: usize = 1024;

/// An entry larger than this (estimated) is not kept: no token we issue comes near it.
const LARGEST_ENTRY: usize = 4 * ENTRY_BUDGET;

/// What an entry costs beyond its own struct and claims, bytes: the 32-byte key in the map and
/// in the eviction queue, the map's pointer and control byte, the `Arc`'s counts, rounded up.
const OVERHEAD: usize = 96;

/// The figures `/metrics` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries held now.
    pub entries: u64,
    /// Most entries it will ever hold.
    pub capacity: u64,
    /// Estimated bytes the entries hold now.
    pub bytes: u64,
    /// Lookups that skipped a verification.
    pub hits: u64,
    /// Lookups that found nothing usable (then a full verification ran).
    pub misses: u64,
    /// Entries dropped to stay within the capacity (expired ones are not counted).
    pub evictions: u64,
}

impl Stats {
    /// Most bytes the entries may hold: the capacity times [`ENTRY_BUDGET`].
    pub fn memory_bound(&self) -> u64 {
        self.capacity.saturating_mul(ENTRY_BUDGET as u64)
    }
}

/// What a verified token says, as decoded the first time.
pub struct Entry {
    /// When the token expires (unix seconds); the entry goes with it.
    pub exp: i64,
    /// The key that verified it: the entry is trusted only while this key is in the set.
    pub kid: Box<str>,
    /// The algorithm it was verified with.
    pub alg: Alg,
    /// Its header's `typ`.
    pub typ: Option<String>,
    /// Its claims, of the type the first verification asked for.
    claims: Box<dyn Any + Send + Sync>,
    /// Estimated bytes held.
    bytes: usize,
}

impl Entry {
    /// An entry for claims decoded from a payload of `payload_len` bytes.
    pub fn new<T: Any + Send + Sync>(
        exp: i64,
        kid: &str,
        alg: Alg,
        typ: Option<String>,
        claims: T,
        payload_len: usize,
    ) -> Self {
        // Decoded strings are no longer than their JSON; twice the payload also covers the
        // headers of the strings and of any JSON value held.
        let bytes = OVERHEAD
            + size_of::<Self>()
            + size_of::<T>()
            + 2 * payload_len
            + kid.len()
            + typ.as_ref().map_or(0, String::len);
        Self { exp, kid: kid.into(), alg, typ, claims: Box::new(claims), bytes }
    }

    /// The claims, if they were decoded as `T`.
    pub fn claims<T: Any>(&self) -> Option<&T> {
        self.claims.downcast_ref()
    }
}

/// A token's SHA-256: the map hashes its first eight bytes and compares all 32.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u8; 32]);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

#[derive(Default)]
struct Shard {
    /// Token hash -> what it says.
    map: HashMap<Key, Arc<Entry>, BuildPrehashed>,
    /// Insertion order, for first-in first-out eviction.
    order: VecDeque<Key>,
    /// Estimated bytes of the entries in `map`.
    bytes: usize,
}

impl Shard {
    fn remove(&mut self, key: &Key) -> Option<Arc<Entry>> {
        let e = self.map.remove(key)?;
        self.bytes = self.bytes.saturating_sub(e.bytes);
        Some(e)
    }
}

/// The cache of one instance. Zero capacity: disabled (every lookup misses, nothing is kept).
pub struct Verified {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified").field("stats", &self.stats()).finish()
    }
}

fn lock(m: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Verified {
    /// A cache of at most `capacity` entries (rounded up to a multiple of the shard count) and
    /// `capacity` times [`ENTRY_BUDGET`] bytes.
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, hash: &[u8; 32]) -> Option<&Mutex<Shard>> {
        self.shards.get(usize::from(hash[0]) % SHARDS)
    }

    /// What the token hashing to `hash` said when it verified, if it has not expired at `now`.
    /// An expired entry is dropped. A hit is counted, and a miss when `count_miss`.
    pub fn get(&self, hash: &[u8; 32], now: i64, count_miss: bool) -> Option<Arc<Entry>> {
        if self.per_shard == 0 {
            return None;
        }
        let key = Key(*hash);
        let hit = self.shard(hash).and_then(|s| {
            let mut s = lock(s);
            match s.map.get(&key) {
                Some(e) if e.exp > now => Some(e.clone()),
                Some(_) => {
                    s.remove(&key);
                    None
                }
                None => None,
            }
        });
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else if count_miss {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Keeps what the token hashing to `hash` said; it is forgotten at its `exp` at the latest.
    /// Past the capacity (entries or bytes) the oldest entries go first (expired ones before
    /// live ones).
    pub fn insert(&self, hash: [u8; 32], entry: Entry, now: i64) {
        if self.per_shard == 0 || entry.exp <= now || entry.bytes > LARGEST_ENTRY {
            return;
        }
        let Some(shard) = self.shard(&hash) else { return };
        let key = Key(hash);
        let budget = self.per_shard.saturating_mul(ENTRY_BUDGET);
        let mut s = lock(shard);
        if s.map.contains_key(&key) {
            return;
        }
        s.bytes += entry.bytes;
        s.map.insert(key, Arc::new(entry));
        s.order.push_back(key);
        while s.order.len() > self.per_shard || s.bytes > budget {
            let Some(old) = s.order.pop_front() else { break };
            if let Some(e) = s.remove(&old)
                && e.exp > now
            {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Entries dropped on lookup leave their key in the queue; keep it from growing with them.
        if s.order.len() > s.map.len().saturating_mul(2).max(64) {
            let Shard { map, order, .. } = &mut *s;
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        let (mut entries, mut bytes) = (0, 0);
        for s in &self.shards {
            let s = lock(s);
            entries += s.map.len() as u64;
            bytes += s.bytes as u64;
        }
        Stats {
            entries,
            capacity: (self.per_shard * SHARDS) as u64,
            bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u32) -> [u8; 32] {
        crate::crypto::sha256(&i.to_be_bytes())
    }

    fn entry(exp: i64) -> Entry {
        Entry::new(exp, "k1", Alg::ES256, Some("at+jwt".into()), exp.to_string(), 200)
    }

    fn seen(c: &Verified, i: u32, now: i64) -> bool {
        c.get(&h(i), now, true).is_some()
    }

    #[test]
    fn remembers_what_the_token_said_until_expiry() {
        let c = Verified::new(64);
        assert!(!seen(&c, 1, 100));
        c.insert(h(1), entry(200), 100);
        let e = c.get(&h(1), 199, true).unwrap();
        assert_eq!((e.exp, &*e.kid, e.alg, e.typ.as_deref()), (200, "k1", Alg::ES256, Some("at+jwt")));
        assert_eq!(e.claims::<String>().map(String::as_str), Some("200"));
        assert!(e.claims::<i64>().is_none(), "claims come back only as the type they were decoded as");
        assert!(!seen(&c, 1, 200), "an entry never outlives its token");
        assert!(!seen(&c, 1, 150), "the expired entry was dropped");
        c.insert(h(2), entry(100), 100);
        assert!(!seen(&c, 2, 99), "an already expired token is not kept");
        let s = c.stats();
        assert_eq!((s.entries, s.bytes), (0, 0), "{s:?}");
    }

    #[test]
    fn bounded_by_entries() {
        let c = Verified::new(160);
        for i in 0..10_000 {
            c.insert(h(i), entry(1_000), 0);
        }
        let s = c.stats();
        assert_eq!(s.capacity, 160);
        assert!(s.entries <= 160, "{s:?}");
        assert!(s.evictions >= 10_000 - 160);
        assert!(s.bytes <= s.memory_bound(), "{s:?}");
        assert!(seen(&c, 9_999, 1), "the newest stays");
        assert!(!seen(&c, 0, 1), "the oldest went first");
    }

    #[test]
    fn bounded_by_bytes() {
        let c = Verified::new(160);
        let big = |exp| Entry::new(exp, "k1", Alg::ES256, None, (), 1_500);
        assert!(big(1_000).bytes > ENTRY_BUDGET && big(1_000).bytes <= LARGEST_ENTRY);
        for i in 0..10_000 {
            c.insert(h(i), big(1_000), 0);
        }
        let s = c.stats();
        assert!(s.bytes <= s.memory_bound(), "{s:?}");
        assert!(s.entries < 160, "large entries fill the budget before the count: {s:?}");
        assert!(seen(&c, 9_999, 1), "the newest stays");
        // Beyond any token we issue: not kept at all.
        c.insert(h(20_000), Entry::new(1_000, "k1", Alg::ES256, None, (), LARGEST_ENTRY), 0);
        assert!(!seen(&c, 20_000, 1));
    }

    #[test]
    fn disabled() {
        let c = Verified::new(0);
        c.insert(h(1), entry(1_000), 0);
        assert!(!seen(&c, 1, 1));
        assert_eq!(c.stats().entries, 0);
    }
}
