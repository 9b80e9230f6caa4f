//! A bounded cache of signatures already verified (issue 13): keyed by the SHA-256 of the whole
//! compact JWS, it remembers only that this exact token's signature checked out and until when
//! the token lives. It answers nothing about validity: every state check still runs per request.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shards, so concurrent requests rarely share a lock (there is no global one).
const SHARDS: usize = 16;

/// What one entry costs, bytes: the 32-byte key twice (map and eviction queue), the expiry, and
/// the hash map's and queue's own overhead, rounded up. Used for the reported memory bound.
pub const ENTRY_BYTES: usize = 112;

/// The figures `/metrics` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries held now.
    pub entries: u64,
    /// Most entries it will ever hold.
    pub capacity: u64,
    /// Lookups that skipped a verification.
    pub hits: u64,
    /// Lookups that found nothing usable (then a full verification ran).
    pub misses: u64,
    /// Entries dropped to stay within the capacity (expired ones are not counted).
    pub evictions: u64,
}

#[derive(Default)]
struct Shard {
    /// Token hash -> token expiry (unix seconds).
    map: HashMap<[u8; 32], i64>,
    /// Insertion order, for first-in first-out eviction.
    order: VecDeque<[u8; 32]>,
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
    /// A cache of at most `capacity` entries (rounded up to a multiple of the shard count).
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

    /// Whether the token hashing to `hash` was verified and has not expired at `now`. An
    /// expired entry is dropped.
    pub fn seen(&self, hash: &[u8; 32], now: i64) -> bool {
        if self.per_shard == 0 {
            return false;
        }
        let hit = self.shard(hash).is_some_and(|s| {
            let mut s = lock(s);
            match s.map.get(hash) {
                Some(exp) if *exp > now => true,
                Some(_) => {
                    s.map.remove(hash);
                    false
                }
                None => false,
            }
        });
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Remembers that the token hashing to `hash` verified; it is forgotten at `exp` at the
    /// latest. Past the capacity the oldest entries go first (expired ones before live ones).
    pub fn insert(&self, hash: [u8; 32], exp: i64, now: i64) {
        if self.per_shard == 0 || exp <= now {
            return;
        }
        let Some(shard) = self.shard(&hash) else { return };
        let mut s = lock(shard);
        if s.map.insert(hash, exp).is_some() {
            return;
        }
        s.order.push_back(hash);
        while s.order.len() > self.per_shard {
            let Some(old) = s.order.pop_front() else { break };
            if let Some(e) = s.map.remove(&old)
                && e > now
            {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Entries dropped on lookup leave their key in the queue; keep it from growing with them.
        if s.order.len() > s.map.len().saturating_mul(2).max(64) {
            let Shard { map, order } = &mut *s;
            order.retain(|k| map.contains_key(k));
        }
    }

    /// Current figures.
    pub fn stats(&self) -> Stats {
        let entries = self.shards.iter().map(|s| lock(s).map.len() as u64).sum();
        Stats {
            entries,
            capacity: (self.per_shard * SHARDS) as u64,
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

    #[test]
    fn remembers_until_expiry() {
        let c = Verified::new(64);
        assert!(!c.seen(&h(1), 100));
        c.insert(h(1), 200, 100);
        assert!(c.seen(&h(1), 199));
        assert!(!c.seen(&h(1), 200), "an entry never outlives its token");
        assert!(!c.seen(&h(1), 150), "the expired entry was dropped");
        c.insert(h(2), 100, 100);
        assert!(!c.seen(&h(2), 99), "an already expired token is not kept");
    }

    #[test]
    fn bounded() {
        let c = Verified::new(160);
        for i in 0..10_000 {
            c.insert(h(i), 1_000, 0);
        }
        let s = c.stats();
        assert_eq!(s.capacity, 160);
        assert!(s.entries <= 160, "{s:?}");
        assert!(s.evictions >= 10_000 - 160);
        assert!(c.seen(&h(9_999), 1), "the newest stays");
        assert!(!c.seen(&h(0), 1), "the oldest went first");
    }

    #[test]
    fn disabled() {
        let c = Verified::new(0);
        c.insert(h(1), 1_000, 0);
        assert!(!c.seen(&h(1), 1));
        assert_eq!(c.stats().entries, 0);
    }
}
