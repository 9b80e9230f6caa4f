//! The only reader of the wall clock. Domain code takes `now` (unix seconds) from here, so
//! tests can run a server on a manual clock and move time forward without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Source of the current time, in whole unix seconds.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start` until moved with [`Clock::advance`].
    pub fn manual(start: i64) -> Self {
        Self { manual: Some(Arc::new(AtomicI64::new(start))) }
    }

    /// Current unix time in seconds.
    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed),
            None => system_now(),
        }
    }

    /// Current unix time in milliseconds (request ids); a manual clock's seconds times 1000.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::Relaxed).saturating_mul(1000),
            None => system_now_ms(),
        }
    }

    /// A monotonic reading in nanoseconds, for rates (the rate limiter): process-relative on
    /// the system clock, the manual time in nanoseconds on a manual clock.
    pub fn monotonic_ns(&self) -> u64 {
        match &self.manual {
            Some(t) => u64::try_from(t.load(Ordering::Relaxed)).unwrap_or(0).saturating_mul(1_000_000_000),
            None => {
                static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
                let start = *START.get_or_init(std::time::Instant::now);
                // Offset by a day so the first readings are not near zero.
                u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX).saturating_add(86_400_000_000_000)
            }
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, seconds: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(seconds, Ordering::Relaxed);
        }
    }
}

#[allow(clippy::disallowed_methods)]
fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[allow(clippy::disallowed_methods)]
fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(61);
        assert_eq!(c.now(), 1_061);
        assert!(Clock::system().now() > 1_700_000_000);
    }
}
