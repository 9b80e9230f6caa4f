//! The embedded in-memory backend: the zero-setup default for `serve --dev` and unit tests.
//! Sixteen mutex-guarded maps, a key's shard chosen by its hash (issue 13: one map behind one
//! mutex was a global lock on every request, and growing or sweeping it stalled every request
//! at once: code redemption's slowest request took 28-65 ms, 11-17 ms with the shards). Each
//! entry carries its own deadline (monotonic), swept lazily on access and periodically by a
//! sweep of its shard on writes. Operations on several keys lock their shards in ascending
//! order, so they stay atomic, as Redis's are, and cannot deadlock. Built on a manual
//! [`Clock`], its TTLs follow that clock too, so tests can let stored values expire without
//! sleeping.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{IndexChange, PROBE_TTL, Redeemed, Store, StoreError};
use crate::clock::Clock;
use crate::fastmap;

#[derive(Debug)]
enum Value {
    Bytes(Vec<u8>),
    Redeemable { value: Vec<u8>, first: Option<i64>, successor: Option<Vec<u8>> },
    Set(HashSet<String>),
    Counter(i64),
    Queue(HashMap<String, (i64, Vec<u8>)>),
    Index(BTreeSet<String>),
    Log { last: u64, entries: BTreeMap<u64, Vec<u8>> },
}

#[derive(Debug)]
struct Entry {
    value: Value,
    deadline: Option<Instant>,
}

/// What `get` reads: bytes as stored, and a counter as its decimal text (as Redis answers
/// `GET` on an `INCR` key).
fn readable(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.clone()),
        Value::Counter(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// Whether a lexicographic range can hold anything (`BTreeSet::range` panics on an inverted
/// one; Redis answers it with nothing).
fn lex_nonempty(from: Bound<&str>, to: Bound<&str>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b)) | (Bound::Excluded(a), Bound::Included(b)) => {
            a < b
        }
        _ => true,
    }
}

impl Entry {
    fn live(&self, at: Instant) -> bool {
        self.deadline.is_none_or(|d| d > at)
    }
}

/// Shards of the key space.
const SHARDS: usize = 16;

/// Each shard's lock, or none, by shard number.
type Locked<'a> = [Option<MutexGuard<'a, Inner>>; SHARDS];

/// In-process store; all data is lost when the process exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    shards: [Mutex<Inner>; SHARDS],
    /// Picks a key's shard.
    route: fastmap::Router,
    /// A manual clock and its reading at construction: time moved on it moves TTLs too.
    clock: Option<(Clock, i64)>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Hashed with foldhash ([`crate::fastmap`], which says why that is safe here).
    entries: fastmap::Map<String, Entry>,
    /// Writes left before the next sweep.
    sweep_in: u64,
}

fn deadline(at: Instant, ttl: Option<u64>) -> Option<Instant> {
    // Redis treats our TTLs as at least one second; so does the memory store.
    ttl.map(|s| at + Duration::from_secs(s.max(1)))
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose TTLs also count the time moved on `clock` (a manual clock in tests).
    pub fn with_clock(clock: Clock) -> Self {
        let start = clock.now();
        Self { clock: Some((clock, start)), ..Self::default() }
    }

    fn now(&self) -> Instant {
        let real = Instant::now();
        match &self.clock {
            Some((c, start)) => real + Duration::from_secs(u64::try_from(c.now() - start).unwrap_or(0)),
            None => real,
        }
    }

    fn shard_of(&self, key: &str) -> usize {
        self.route.shard(key, SHARDS)
    }

    fn lock(&self, shard: usize) -> Result<MutexGuard<'_, Inner>, StoreError> {
        let poisoned = || StoreError::Unavailable("memory store lock poisoned".into());
        self.shards.get(shard).ok_or_else(poisoned)?.lock().map_err(|_| poisoned())
    }

    /// Runs `f` on the shard of `key`, under its lock.
    fn with<R>(&self, key: &str, f: impl FnOnce(&mut Inner, Instant) -> R) -> Result<R, StoreError> {
        let at = self.now();
        let mut inner = self.lock(self.shard_of(key))?;
        Ok(f(&mut inner, at))
    }

    /// Locks the shards of `keys`, in ascending order (so two callers cannot deadlock).
    fn lock_all<'k>(&self, keys: impl Iterator<Item = &'k str>) -> Result<Locked<'_>, StoreError> {
        let mut wanted = [false; SHARDS];
        for k in keys {
            if let Some(w) = wanted.get_mut(self.shard_of(k)) {
                *w = true;
            }
        }
        let mut locked: Locked<'_> = Default::default();
        for (i, (slot, w)) in locked.iter_mut().zip(wanted).enumerate() {
            if w {
                *slot = Some(self.lock(i)?);
            }
        }
        Ok(locked)
    }

    /// The locked shard of `key` among `locked` (from [`MemoryStore::lock_all`] over it).
    fn shard_in<'l>(&self, locked: &'l mut Locked<'_>, key: &str) -> Option<&'l mut Inner> {
        locked.get_mut(self.shard_of(key)).and_then(Option::as_mut).map(|g| &mut **g)
    }
}

impl Inner {
    /// The entry under `key`, unless it has expired. An expired entry is left for the next
    /// sweep or write to drop: removing it here would hash the key a second time on every
    /// read (issue 13: half the memory store's cost on the token endpoints' reads).
    fn live(&mut self, key: &str, at: Instant) -> Option<&mut Entry> {
        self.entries.get_mut(key).filter(|e| e.live(at))
    }

    fn insert(&mut self, key: &str, entry: Entry, at: Instant) {
        // Drop expired entries so an idle key space does not grow forever: a sweep visits every
        // entry, so the next one waits for as many writes as half the entries it kept (at least
        // 1024): a write pays for two visits at most, however large the map (issue 13: a
        // sweep of a large map every 1024 writes was a measurable part of each write).
        self.sweep_in = self.sweep_in.saturating_sub(1);
        if self.sweep_in == 0 {
            self.entries.retain(|_, e| e.live(at));
            self.sweep_in = (self.entries.len() as u64 / 2).max(1024);
        }
        self.entries.insert(key.to_owned(), entry);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(key, |m, at| m.live(key, at).and_then(|e| readable(&e.value)))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let at = self.now();
        let mut locked = self.lock_all(keys.iter().map(String::as_str))?;
        Ok(keys
            .iter()
            .map(|k| self.shard_in(&mut locked, k).and_then(|m| m.live(k, at)).and_then(|e| readable(&e.value)))
            .collect())
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), StoreError> {
        self.with(key, |m, at| {
            let entry = Entry { value: Value::Bytes(value.to_vec()), deadline: deadline(at, ttl) };
            m.insert(key, entry, at);
        })
    }

    async fn put_new(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        self.with(key, |m, at| {
            if m.live(key, at).is_some() {
                return false;
            }
            let entry = Entry { value: Value::Bytes(value.to_vec()), deadline: deadline(at, ttl) };
            m.insert(key, entry, at);
            true
        })
    }

    async fn put_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        self.with(key, |m, at| {
            let current = m.live(key, at).and_then(|e| readable(&e.value));
            if current.as_deref() != expected {
                return false;
            }
            m.insert(key, Entry { value: Value::Bytes(value.to_vec()), deadline: None }, at);
            true
        })
    }

    async fn put_existing(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        self.with(key, |m, at| {
            if !matches!(m.live(key, at).map(|e| &e.value), Some(Value::Bytes(_))) {
                return false;
            }
            let entry = Entry { value: Value::Bytes(value.to_vec()), deadline: deadline(at, ttl) };
            m.insert(key, entry, at);
            true
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.with(key, |m, at| {
            let was_live = m.live(key, at).is_some();
            m.entries.remove(key);
            was_live
        })
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(key, |m, at| {
            if !matches!(m.live(key, at).map(|e| &e.value), Some(Value::Bytes(_))) {
                return None;
            }
            match m.entries.remove(key).map(|e| e.value) {
                Some(Value::Bytes(b)) => Some(b),
                _ => None,
            }
        })
    }

    async fn put_redeemable(&self, key: &str, value: &[u8], ttl: u64) -> Result<(), StoreError> {
        self.with(key, |m, at| {
            let value = Value::Redeemable { value: value.to_vec(), first: None, successor: None };
            m.insert(key, Entry { value, deadline: deadline(at, Some(ttl)) }, at);
        })
    }

    async fn redeem(&self, key: &str, now: i64) -> Result<Option<Redeemed>, StoreError> {
        self.redeem_with(key, now, b"", b"").await
    }

    async fn redeem_with(&self, key: &str, now: i64, next: &[u8], lean: &[u8]) -> Result<Option<Redeemed>, StoreError> {
        self.with(key, |m, at| match m.live(key, at).map(|e| &mut e.value) {
            Some(Value::Redeemable { value, first, successor }) => {
                let first_redeemed_at = *first;
                if first.is_none() {
                    *first = Some(now);
                    *successor = (!next.is_empty()).then(|| next.to_vec());
                    let was = if lean.is_empty() { value.clone() } else { std::mem::replace(value, lean.to_vec()) };
                    return Some(Redeemed { value: was, first_redeemed_at, successor: None });
                }
                Some(Redeemed { value: value.clone(), first_redeemed_at, successor: successor.clone() })
            }
            _ => None,
        })
    }

    async fn drop_successor(&self, key: &str) -> Result<(), StoreError> {
        self.with(key, |m, at| {
            if let Some(Value::Redeemable { successor, .. }) = m.live(key, at).map(|e| &mut e.value) {
                *successor = None;
            }
        })
    }

    async fn peek(&self, key: &str) -> Result<Option<Redeemed>, StoreError> {
        self.with(key, |m, at| match m.live(key, at).map(|e| &e.value) {
            Some(Value::Redeemable { value, first, successor }) => {
                Some(Redeemed { value: value.clone(), first_redeemed_at: *first, successor: successor.clone() })
            }
            _ => None,
        })
    }

    async fn expire(&self, key: &str, ttl: u64) -> Result<bool, StoreError> {
        self.with(key, |m, at| match m.live(key, at) {
            Some(e) => {
                e.deadline = deadline(at, Some(ttl));
                true
            }
            None => false,
        })
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        self.with(key, |m, at| {
            if let Some(e) = m.live(key, at)
                && let Value::Set(s) = &mut e.value
            {
                s.insert(member.to_owned());
                if ttl.is_some() {
                    e.deadline = deadline(at, ttl);
                }
                return;
            }
            let set = HashSet::from([member.to_owned()]);
            m.insert(key, Entry { value: Value::Set(set), deadline: deadline(at, ttl) }, at);
        })
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, StoreError> {
        self.with(key, |m, at| {
            let Some(e) = m.live(key, at) else {
                return false;
            };
            let Value::Set(s) = &mut e.value else {
                return false;
            };
            let removed = s.remove(member);
            if s.is_empty() {
                m.entries.remove(key);
            }
            removed
        })
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.with(key, |m, at| match m.live(key, at).map(|e| &e.value) {
            Some(Value::Set(s)) => s.iter().cloned().collect(),
            _ => Vec::new(),
        })
    }

    async fn incr(&self, key: &str, ttl: u64) -> Result<i64, StoreError> {
        self.with(key, |m, at| {
            if let Some(e) = m.live(key, at)
                && let Value::Counter(n) = &mut e.value
            {
                *n = n.saturating_add(1);
                return *n;
            }
            m.insert(key, Entry { value: Value::Counter(1), deadline: deadline(at, Some(ttl)) }, at);
            1
        })
    }

    async fn queue_put(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<(), StoreError> {
        self.with(queue, |m, at| {
            if let Some(Entry { value: Value::Queue(q), .. }) = m.live(queue, at) {
                q.insert(id.to_owned(), (due, payload.to_vec()));
                return;
            }
            let q = HashMap::from([(id.to_owned(), (due, payload.to_vec()))]);
            m.insert(queue, Entry { value: Value::Queue(q), deadline: None }, at);
        })
    }

    async fn queue_put_new(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<bool, StoreError> {
        self.with(queue, |m, at| {
            if let Some(Entry { value: Value::Queue(q), .. }) = m.live(queue, at) {
                if q.contains_key(id) {
                    return false;
                }
                q.insert(id.to_owned(), (due, payload.to_vec()));
                return true;
            }
            let q = HashMap::from([(id.to_owned(), (due, payload.to_vec()))]);
            m.insert(queue, Entry { value: Value::Queue(q), deadline: None }, at);
            true
        })
    }

    async fn queue_touch(&self, queue: &str, id: &str, due: i64) -> Result<(), StoreError> {
        self.with(queue, |m, at| {
            if let Some(Entry { value: Value::Queue(q), .. }) = m.live(queue, at)
                && let Some(item) = q.get_mut(id)
            {
                item.0 = due;
            }
        })
    }

    async fn queue_claim(
        &self,
        queue: &str,
        now: i64,
        lease: i64,
        max: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.with(queue, |m, at| {
            let Some(Entry { value: Value::Queue(q), .. }) = m.live(queue, at) else {
                return Vec::new();
            };
            let mut due: Vec<(i64, String)> =
                q.iter().filter(|(_, (d, _))| *d <= now).map(|(id, (d, _))| (*d, id.clone())).collect();
            due.sort();
            due.truncate(max);
            let mut out = Vec::with_capacity(due.len());
            for (_, id) in due {
                if let Some(item) = q.get_mut(&id) {
                    item.0 = now + lease;
                    out.push((id, item.1.clone()));
                }
            }
            out
        })
    }

    async fn queue_remove(&self, queue: &str, id: &str) -> Result<bool, StoreError> {
        self.with(queue, |m, at| match m.live(queue, at) {
            Some(Entry { value: Value::Queue(q), .. }) => q.remove(id).is_some(),
            _ => false,
        })
    }

    async fn queue_len(&self, queue: &str) -> Result<u64, StoreError> {
        self.with(queue, |m, at| match m.live(queue, at) {
            Some(Entry { value: Value::Queue(q), .. }) => q.len() as u64,
            _ => 0,
        })
    }

    async fn queue_release(&self, queue: &str, ids: &[String], now: i64) -> Result<usize, StoreError> {
        self.with(queue, |m, at| match m.live(queue, at) {
            Some(Entry { value: Value::Queue(q), .. }) => {
                let mut moved = 0;
                for id in ids {
                    if let Some(item) = q.get_mut(id)
                        && item.0 != now
                    {
                        item.0 = now;
                        moved += 1;
                    }
                }
                moved
            }
            _ => 0,
        })
    }

    async fn index_apply(&self, changes: &[IndexChange]) -> Result<(), StoreError> {
        let at = self.now();
        let mut locked = self.lock_all(changes.iter().map(|c| c.key.as_str()))?;
        for c in changes {
            let Some(m) = self.shard_in(&mut locked, &c.key) else { continue };
            if let Some(Entry { value: Value::Index(set), .. }) = m.live(&c.key, at) {
                if c.add {
                    set.insert(c.member.clone());
                } else {
                    set.remove(&c.member);
                    if set.is_empty() {
                        m.entries.remove(&c.key);
                    }
                }
            } else if c.add {
                let set = BTreeSet::from([c.member.clone()]);
                m.insert(&c.key, Entry { value: Value::Index(set), deadline: None }, at);
            }
        }
        Ok(())
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
        self.with(key, |m, at| match m.live(key, at).map(|e| &e.value) {
            Some(Value::Index(set)) if lex_nonempty(from, to) => {
                let range = set.range::<str, _>((from, to));
                if rev {
                    range.rev().skip(offset).take(limit).cloned().collect()
                } else {
                    range.skip(offset).take(limit).cloned().collect()
                }
            }
            _ => Vec::new(),
        })
    }

    async fn index_count(&self, key: &str, from: Bound<&str>, to: Bound<&str>) -> Result<u64, StoreError> {
        self.with(key, |m, at| match m.live(key, at).map(|e| &e.value) {
            Some(Value::Index(set)) if lex_nonempty(from, to) => set.range::<str, _>((from, to)).count() as u64,
            _ => 0,
        })
    }

    async fn log_append(&self, log: &str, payload: &[u8]) -> Result<u64, StoreError> {
        self.with(log, |m, at| {
            if let Some(Entry { value: Value::Log { last, entries }, .. }) = m.live(log, at) {
                *last = last.saturating_add(1);
                entries.insert(*last, payload.to_vec());
                return *last;
            }
            let entries = BTreeMap::from([(1, payload.to_vec())]);
            m.insert(log, Entry { value: Value::Log { last: 1, entries }, deadline: None }, at);
            1
        })
    }

    async fn log_read(&self, log: &str, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.with(log, |m, at| match m.live(log, at).map(|e| &e.value) {
            Some(Value::Log { entries, .. }) => entries
                .range((Bound::Excluded(after), Bound::Unbounded))
                .take(max)
                .map(|(n, p)| (*n, p.clone()))
                .collect(),
            _ => Vec::new(),
        })
    }

    async fn log_last(&self, log: &str) -> Result<u64, StoreError> {
        self.with(log, |m, at| match m.live(log, at).map(|e| &e.value) {
            Some(Value::Log { last, .. }) => *last,
            _ => 0,
        })
    }

    async fn log_trim(&self, log: &str, upto: u64) -> Result<u64, StoreError> {
        self.with(log, |m, at| match m.live(log, at).map(|e| &mut e.value) {
            Some(Value::Log { entries, .. }) => {
                let keep = entries.split_off(&upto.saturating_add(1));
                let gone = entries.len() as u64;
                *entries = keep;
                gone
            }
            _ => 0,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        (0..SHARDS).try_for_each(|i| self.lock(i).map(drop))
    }

    async fn probe_write(&self, key: &str, now: i64) -> Result<(), StoreError> {
        self.put(key, now.to_string().as_bytes(), Some(PROBE_TTL)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    // Issue 13: the key space is sharded; reads and writes of many keys still see each key
    // where it was put, in the order asked, across every shard.
    #[tokio::test]
    async fn many_keys_over_every_shard() {
        let s = MemoryStore::new();
        let keys: Vec<String> = (0..200).map(|i| format!("k:{i}")).collect();
        let shards: std::collections::BTreeSet<usize> = keys.iter().map(|k| s.shard_of(k)).collect();
        assert_eq!(shards.len(), SHARDS, "200 keys reach every shard");
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| !i.is_multiple_of(3)) {
            s.put(k, i.to_string().as_bytes(), None).await.unwrap();
        }
        let mut asked = keys.clone();
        asked.reverse();
        let got = s.get_many(&asked).await.unwrap();
        for (k, v) in asked.iter().zip(got) {
            let i: usize = k.trim_start_matches("k:").parse().unwrap();
            assert_eq!(v, (!i.is_multiple_of(3)).then(|| i.to_string().into_bytes()), "{k}");
        }
        let changes: Vec<IndexChange> =
            keys.iter().map(|k| IndexChange::add(k.replace("k:", "ix:"), "m".into())).collect();
        s.index_apply(&changes).await.unwrap();
        for k in &keys {
            let ix = k.replace("k:", "ix:");
            assert_eq!(s.index_count(&ix, Bound::Unbounded, Bound::Unbounded).await.unwrap(), 1, "{ix}");
        }
    }

    // Operations on several keys take their shards' locks in one order: two of them over the
    // same shards, asked in opposite orders, cannot deadlock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_key_operations_do_not_deadlock() {
        let s = Arc::new(MemoryStore::new());
        let keys: Vec<String> = (0..64).map(|i| format!("ix:{i}")).collect();
        let run = |keys: Vec<String>| {
            let s = s.clone();
            tokio::spawn(async move {
                for round in 0..300 {
                    let changes: Vec<IndexChange> =
                        keys.iter().map(|k| IndexChange::add(k.clone(), round.to_string())).collect();
                    s.index_apply(&changes).await.unwrap();
                    s.get_many(&keys).await.unwrap();
                }
            })
        };
        let mut reversed = keys.clone();
        reversed.reverse();
        let (a, b) = (run(keys), run(reversed));
        let both = async { (a.await, b.await) };
        let (a, b) = tokio::time::timeout(Duration::from_secs(20), both).await.expect("no deadlock");
        a.unwrap();
        b.unwrap();
    }
}
