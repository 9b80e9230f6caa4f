//! Per-receiver fairness of the outbox worker (issue 10): at most a few attempts in flight per
//! receiver, and a local waiting line for the claimed deliveries of a receiver that has no room,
//! whose leases the worker keeps renewing. A receiver that hangs then holds only its share of
//! the worker's slots, and a busy but healthy receiver is served as fast as its share allows.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Attempts in flight per receiver (its back-channel URI, or the upstream issuer).
#[derive(Default)]
pub struct Shares(Mutex<HashMap<String, usize>>);

/// One attempt's hold on its receiver's share; released when dropped (also on abort).
pub struct Share {
    of: Arc<Shares>,
    receiver: String,
}

impl Shares {
    /// Takes a share of `receiver` unless it already has `max` attempts in flight.
    pub fn take(self: &Arc<Self>, receiver: &str, max: usize) -> Option<Share> {
        let mut map = self.0.lock().ok()?;
        let n = map.entry(receiver.to_owned()).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Share { of: self.clone(), receiver: receiver.to_owned() })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if let Ok(mut map) = self.of.0.lock()
            && let Some(n) = map.get_mut(&self.receiver)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.receiver);
            }
        }
    }
}

/// Where a queued delivery goes (its receiver key); empty when undecodable.
pub fn receiver_of(payload: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Target {
        uri: String,
    }
    serde_json::from_slice::<Target>(payload).map(|t| t.uri).unwrap_or_default()
}

/// A claimed delivery waiting for its receiver to have room; this instance holds its lease.
pub struct Held {
    /// Queue item id.
    pub id: String,
    /// Queued payload.
    pub payload: Vec<u8>,
    renewed: Instant,
}

/// The local waiting line, bounded per receiver and in all.
pub struct Waiting {
    by_receiver: HashMap<String, VecDeque<Held>>,
    len: usize,
    per_receiver: usize,
    total: usize,
}

impl Waiting {
    /// An empty line holding at most `per_receiver` deliveries of one receiver, `total` in all.
    pub fn new(per_receiver: usize, total: usize) -> Self {
        Self { by_receiver: HashMap::new(), len: 0, per_receiver, total }
    }

    /// Keeps a claimed delivery until its receiver has room; gives it back when the line is full.
    pub fn push(&mut self, receiver: String, id: String, payload: Vec<u8>) -> Result<(), String> {
        let line = self.by_receiver.entry(receiver).or_default();
        if line.len() >= self.per_receiver || self.len >= self.total {
            return Err(id);
        }
        line.push_back(Held { id, payload, renewed: Instant::now() });
        self.len += 1;
        Ok(())
    }

    /// The next waiting delivery whose receiver has room, with the share it takes.
    pub fn next_ready(&mut self, shares: &Arc<Shares>, max: usize) -> Option<(Held, Share)> {
        let mut found = None;
        for (receiver, line) in &mut self.by_receiver {
            if line.is_empty() {
                continue;
            }
            if let Some(share) = shares.take(receiver, max) {
                found = line.pop_front().map(|h| (h, share));
                break;
            }
        }
        self.by_receiver.retain(|_, line| !line.is_empty());
        if found.is_some() {
            self.len = self.len.saturating_sub(1);
        }
        found
    }

    /// Empties the line (shutdown): the ids of every waiting delivery, to hand back.
    pub fn drain(&mut self) -> Vec<String> {
        self.len = 0;
        self.by_receiver.drain().flat_map(|(_, line)| line.into_iter().map(|h| h.id)).collect()
    }

    /// Ids of waiting deliveries whose lease was last renewed more than `every` ago; they count
    /// as renewed from now.
    pub fn to_renew(&mut self, every: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut out = Vec::new();
        for h in self.by_receiver.values_mut().flatten() {
            if now.duration_since(h.renewed) >= every {
                h.renewed = now;
                out.push(h.id.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_bound_each_receiver_and_come_back_when_dropped() {
        let shares = Arc::new(Shares::default());
        let a1 = shares.take("a", 2).unwrap();
        let _a2 = shares.take("a", 2).unwrap();
        assert!(shares.take("a", 2).is_none(), "a is full");
        assert!(shares.take("b", 2).is_some(), "b is not held up by a");
        drop(a1);
        assert!(shares.take("a", 2).is_some());
    }

    #[test]
    fn waiting_line_is_bounded_and_served_when_room_frees() {
        let shares = Arc::new(Shares::default());
        let mut w = Waiting::new(2, 3);
        assert!(w.push("a".into(), "1".into(), Vec::new()).is_ok());
        assert!(w.push("a".into(), "2".into(), Vec::new()).is_ok());
        assert_eq!(w.push("a".into(), "3".into(), Vec::new()), Err("3".into()), "per receiver bound");
        assert!(w.push("b".into(), "4".into(), Vec::new()).is_ok());
        assert_eq!(w.push("c".into(), "5".into(), Vec::new()), Err("5".into()), "total bound");
        let busy = shares.take("a", 1).unwrap();
        let (h, _b) = w.next_ready(&shares, 1).unwrap();
        assert_eq!(h.id, "4", "a has no room, b is served");
        assert!(w.next_ready(&shares, 1).is_none());
        drop(busy);
        assert_eq!(w.next_ready(&shares, 1).unwrap().0.id, "1", "first come, first served");
        assert_eq!(w.to_renew(Duration::ZERO), vec!["2".to_owned()]);
    }
}
