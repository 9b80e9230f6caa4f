//! A cache of fetched documents (JWK Sets, peer metadata) keyed by URL: a success lives `ttl`,
//! a failure `failure_ttl`, so a client whose `jwks_uri` fails or hangs cannot make the server
//! fetch on every request; concurrent callers for one URL share the fetch in flight.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// Past this many entries, expired ones are dropped before a new one is added.
const PRUNE_AT: usize = 4096;

struct Fetched<T, E> {
    at: Instant,
    result: Result<T, E>,
}

type Slot<T, E> = Arc<OnceCell<Fetched<T, E>>>;

/// How long results are kept.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// A success is served this long.
    pub ttl: Duration,
    /// A failure is served this long; zero keeps none.
    pub failure_ttl: Duration,
    /// A forced refresh refetches a success at least this old.
    pub min_refresh: Duration,
}

/// The cache; `T` is the document, `E` the failure, both handed out as clones.
pub struct FetchCache<T, E> {
    life: Lifetimes,
    slots: Mutex<HashMap<String, Slot<T, E>>>,
}

impl<T, E> fmt::Debug for FetchCache<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchCache").field("life", &self.life).finish_non_exhaustive()
    }
}

impl<T: Clone, E: Clone> FetchCache<T, E> {
    /// An empty cache.
    pub fn new(life: Lifetimes) -> Self {
        Self { life, slots: Mutex::new(HashMap::new()) }
    }

    /// The result for `key`: the kept one while it lives, else the one `fetch` gives, shared
    /// with every caller that asks meanwhile. `refresh` (an unknown `kid`) asks for a refetch
    /// of a success older than `min_refresh`; a kept failure is never refetched early.
    pub async fn get<F, Fut>(&self, key: &str, refresh: bool, fetch: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let slot = self.slot(key, refresh);
        let fetched = slot
            .get_or_init(|| async {
                let result = fetch().await;
                Fetched { at: Instant::now(), result }
            })
            .await;
        fetched.result.clone()
    }

    fn live(&self, f: &Fetched<T, E>, now: Instant, refresh: bool) -> bool {
        let age = now.saturating_duration_since(f.at);
        match f.result {
            Ok(_) => age < self.life.ttl && (!refresh || age < self.life.min_refresh),
            Err(_) => age < self.life.failure_ttl,
        }
    }

    /// The slot to wait on: the kept or in-flight one, or a new empty one in its place.
    fn slot(&self, key: &str, refresh: bool) -> Slot<T, E> {
        let now = Instant::now();
        let Ok(mut slots) = self.slots.lock() else { return Arc::new(OnceCell::new()) };
        if let Some(slot) = slots.get(key)
            && slot.get().is_none_or(|f| self.live(f, now, refresh))
        {
            return slot.clone();
        }
        if slots.len() >= PRUNE_AT {
            slots.retain(|_, s| s.get().is_none_or(|f| self.live(f, now, false)));
        }
        let slot = Arc::new(OnceCell::new());
        slots.insert(key.to_owned(), slot.clone());
        slot
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn cache(failure_secs: u64) -> FetchCache<u32, String> {
        FetchCache::new(Lifetimes {
            ttl: Duration::from_secs(300),
            failure_ttl: Duration::from_secs(failure_secs),
            min_refresh: Duration::from_secs(10),
        })
    }

    #[tokio::test]
    async fn failures_are_kept_and_not_refetched_by_refresh() {
        let c = cache(30);
        let calls = AtomicUsize::new(0);
        let fail = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<u32, _>("down".to_owned())
        };
        for refresh in [false, true, false] {
            assert_eq!(c.get("u", refresh, fail).await, Err("down".to_owned()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Without a failure lifetime every call fetches.
        let c = cache(0);
        for _ in 0..2 {
            let _ = c.get("u", false, fail).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn successes_are_kept_and_a_young_one_survives_refresh() {
        let c = cache(30);
        let calls = AtomicUsize::new(0);
        let ok = || async { Ok::<_, String>(calls.fetch_add(1, Ordering::SeqCst) as u32) };
        assert_eq!(c.get("a", false, ok).await, Ok(0));
        assert_eq!(c.get("a", true, ok).await, Ok(0));
        assert_eq!(c.get("b", false, ok).await, Ok(1));
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let c = cache(30);
        let calls = AtomicUsize::new(0);
        let (tx, rx) = tokio::sync::watch::channel(false);
        let slow = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut rx = rx.clone();
            let _ = rx.wait_for(|go| *go).await;
            Ok::<u32, String>(7)
        };
        let all = futures_join(&c, slow, &tx).await;
        assert_eq!(all, vec![Ok(7); 3]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    async fn futures_join<F, Fut>(
        c: &FetchCache<u32, String>,
        f: F,
        go: &tokio::sync::watch::Sender<bool>,
    ) -> Vec<Result<u32, String>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<u32, String>>,
    {
        let (a, b, d, ()) = tokio::join!(c.get("k", false, f), c.get("k", false, f), c.get("k", false, f), async {
            tokio::task::yield_now().await;
            let _ = go.send(true);
        });
        vec![a, b, d]
    }
}
