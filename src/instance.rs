//! This process among the instances that share a store: a random id chosen at start (in request
//! ids, the key of the store's write probe, the logs), whether it is draining for a shutdown, and
//! the wake-up of its bootstrap seeder. One per `AppState`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::sync::Notify;

/// Bits of the random instance id carried in every request id.
const ID_BITS: u32 = 42;

/// One running instance.
#[derive(Debug)]
pub struct Instance {
    id: u64,
    text: String,
    counter: AtomicU32,
    draining: Arc<AtomicBool>,
    reseed: Notify,
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

impl Instance {
    /// A new instance with a fresh random id.
    pub fn new() -> Self {
        let id = crate::crypto::random_u64() & ((1 << ID_BITS) - 1);
        Self {
            id,
            text: format!("{id:011x}"),
            counter: AtomicU32::new(0),
            draining: Arc::new(AtomicBool::new(false)),
            reseed: Notify::new(),
        }
    }

    /// The instance id: 11 hex digits, random at every start.
    pub fn id(&self) -> &str {
        &self.text
    }

    /// A new request id: a UUIDv7 (RFC 9562 s5.7) of `now_ms`, this instance's random id and a
    /// per-instance counter, so ids are time-ordered, never repeat within an instance, and
    /// differ between instances and restarts (42 random bits) without any coordination.
    pub fn request_id(&self, now_ms: i64) -> [u8; 36] {
        let n = u128::from(self.counter.fetch_add(1, Ordering::Relaxed));
        let ms = u128::from(u64::try_from(now_ms).unwrap_or(0)) & 0xFFFF_FFFF_FFFF;
        let id = u128::from(self.id);
        let v = (ms << 80) | (0x7 << 76) | ((id >> 30) << 64) | (0b10 << 62) | ((id & 0x3FFF_FFFF) << 32) | n;
        // 8-4-4-4-12 hex digits, written in place: this runs per request, and the caller keeps
        // the id inline rather than in a string of its own (issue 13). Each half is one u64,
        // its digits taken from the bottom up.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let halves =
            [(u64::try_from(v >> 64).unwrap_or(0), [0..8, 9..13, 14..18]), (v as u64, [19..23, 24..36, 36..36])];
        for (mut half, groups) in halves {
            for range in groups.into_iter().rev() {
                for slot in out.get_mut(range).unwrap_or_default().iter_mut().rev() {
                    *slot = HEX.get((half & 0xF) as usize).copied().unwrap_or(b'0');
                    half >>= 4;
                }
            }
        }
        out
    }

    /// Starts the drain of a shutdown: from now on readiness says no.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether a shutdown has started.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The draining flag, for the connection loop (it closes HTTP/1.1 connections after each
    /// response while draining).
    pub fn draining_flag(&self) -> Arc<AtomicBool> {
        self.draining.clone()
    }

    /// Asks the seeder to check the bootstrap data now (readiness found it missing).
    pub fn wake_seeder(&self) {
        self.reseed.notify_one();
    }

    /// Resolves when [`Instance::wake_seeder`] was called.
    pub async fn seeder_woken(&self) {
        self.reseed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v7_unique_and_time_ordered() {
        let a = Instance::new();
        let b = Instance::new();
        let text = |b: [u8; 36]| String::from_utf8(b.to_vec()).unwrap();
        let x = text(a.request_id(1_700_000_000_123));
        assert_eq!(x.len(), 36);
        assert_eq!(x.as_bytes()[14], b'7', "version 7: {x}");
        assert!(matches!(x.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "RFC 9562 variant: {x}");
        assert!(x.starts_with("018bcfe5-687b-7"), "{x}");
        let y = text(a.request_id(1_700_000_000_123));
        assert_ne!(x, y, "same millisecond, same instance");
        assert_ne!(a.request_id(5), b.request_id(5), "two instances");
        assert!(text(a.request_id(1_700_000_000_124)) > y, "time-ordered");
        assert_eq!(a.id().len(), 11);
    }

    #[test]
    fn draining_is_shared_with_the_connection_loop() {
        let i = Instance::new();
        let flag = i.draining_flag();
        assert!(!i.draining() && !flag.load(Ordering::Acquire));
        i.start_draining();
        assert!(i.draining() && flag.load(Ordering::Acquire));
    }
}
