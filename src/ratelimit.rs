//! Per-client call control (AY-8.3.2.1): a GCRA limiter (the "generic cell rate algorithm",
//! a token bucket kept as one timestamp per client) in process memory, sharded so concurrent
//! requests of different clients rarely share a lock. A check costs a hash and a short mutex
//! hold, no store round trip; limits are therefore per instance.

use std::sync::Mutex;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A client's limit: a sustained rate and a burst above it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RateLimit {
    /// Sustained requests per second (0 < r <= 1,000,000).
    pub per_second: f64,
    /// Requests that may arrive at once above the sustained rate.
    #[serde(default)]
    pub burst: u32,
}

impl RateLimit {
    /// Checks the numbers are usable.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !self.per_second.is_finite() || self.per_second <= 0.0 || self.per_second > 1e6 {
            return Err("rate_limit.per_second must be > 0 and <= 1000000");
        }
        if self.burst > 1_000_000 {
            return Err("rate_limit.burst must be <= 1000000");
        }
        Ok(())
    }
}

/// A refused request: when the client may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Whole seconds to wait (RFC 9110 s10.2.3 `Retry-After`), at least 1.
    pub retry_after: u64,
}

const SHARDS: usize = 16;
/// Past this many tracked clients in a shard, idle entries are dropped.
const SHARD_SOFT_CAP: usize = 4096;

/// The limiter of one instance.
#[derive(Debug)]
pub struct Limiter {
    shards: [Mutex<crate::fastmap::Map<String, u64>>; SHARDS],
    route: crate::fastmap::Router,
}

impl Default for Limiter {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(crate::fastmap::Map::default())),
            route: crate::fastmap::Router::default(),
        }
    }
}

impl Limiter {
    /// Counts one request of `key` at `now_ns` (a monotonic clock in nanoseconds) against
    /// `limit`. GCRA: each request pushes the key's theoretical arrival time (TAT) forward by
    /// one emission interval; a request arriving more than `burst` intervals before its TAT is
    /// refused and does not count.
    pub fn check(&self, key: &str, limit: RateLimit, now_ns: u64) -> Result<(), Limited> {
        let interval = (1e9 / limit.per_second).max(1.0) as u64;
        let tolerance = interval.saturating_mul(u64::from(limit.burst));
        let Some(shard) = self.shards.get(self.route.shard(key, SHARDS)) else {
            return Ok(());
        };
        let mut map = match shard.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let tat = map.get(key).copied().unwrap_or(now_ns).max(now_ns);
        if tat - now_ns > tolerance {
            let wait_ns = tat - now_ns - tolerance;
            return Err(Limited { retry_after: wait_ns.div_ceil(1_000_000_000).max(1) });
        }
        if let Some(slot) = map.get_mut(key) {
            *slot = tat + interval;
            return Ok(());
        }
        if map.len() >= SHARD_SOFT_CAP {
            // Entries whose TAT has passed hold no debt: forgetting them changes nothing.
            map.retain(|_, t| *t > now_ns);
        }
        map.insert(key.to_owned(), tat + interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    // AY-8.3.2.1: a sustained rate with a burst, then 429 with a Retry-After, then recovery.
    #[test]
    fn burst_then_refusal_then_recovery() {
        let l = Limiter::default();
        let lim = RateLimit { per_second: 2.0, burst: 3 };
        let t0 = 100 * S;
        // The first request plus a burst of three pass at the same instant.
        for i in 0..4 {
            assert!(l.check("a", lim, t0).is_ok(), "request {i}");
        }
        let refused = l.check("a", lim, t0).unwrap_err();
        assert_eq!(refused.retry_after, 1);
        // Other clients are unaffected.
        assert!(l.check("b", lim, t0).is_ok());
        // Half a second later one more interval has been earned.
        assert!(l.check("a", lim, t0 + S / 2).is_ok());
        assert!(l.check("a", lim, t0 + S / 2).is_err());
        // After a long pause the full burst is back.
        for _ in 0..4 {
            assert!(l.check("a", lim, t0 + 10 * S).is_ok());
        }
    }

    #[test]
    fn sustained_rate_is_held() {
        let l = Limiter::default();
        let lim = RateLimit { per_second: 10.0, burst: 0 };
        // 100 requests spread evenly over 10 s all pass; one extra in between does not.
        for i in 0..100 {
            assert!(l.check("c", lim, i * S / 10).is_ok(), "request {i}");
        }
        assert!(l.check("c", lim, 99 * S / 10).is_err());
        assert!(RateLimit { per_second: 0.0, burst: 1 }.validate().is_err());
        assert!(RateLimit { per_second: f64::NAN, burst: 1 }.validate().is_err());
    }

    #[test]
    fn idle_entries_are_forgotten() {
        let l = Limiter::default();
        let lim = RateLimit { per_second: 1000.0, burst: 0 };
        for i in 0..(SHARD_SOFT_CAP * SHARDS * 2) {
            l.check(&format!("client-{i}"), lim, (i as u64) * S).unwrap();
        }
        let tracked: usize = l.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(tracked <= SHARD_SOFT_CAP * SHARDS + SHARDS, "{tracked}");
    }
}
