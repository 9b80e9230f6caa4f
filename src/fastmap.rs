//! Hash maps for the request path, hashed with foldhash instead of std's SipHash-1-3 (issue 13:
//! SipHash was 2,500 to 4,000 instructions of every token request, about 5 % of a seen
//! introspection's own work, over the memory store, the decoded-client cache, the rate limiter,
//! the signing keys by `kid` and the metrics' label hashes).
//!
//! foldhash is seeded at random per map builder, as `std`'s `RandomState` is, and is what
//! hashbrown itself defaults to. It is not a keyed PRF: its defence against colliding keys is
//! that nobody outside knows a map's seed. So it is used where no client can aim keys at a map
//! it can observe over time:
//! - the memory store's keys are mostly our own (random ids, SHA-256 digests of tokens and
//!   names, addresses); the few that carry a name someone chose (a username at signup, a peer
//!   platform's subject) grow only as fast as accounts are made, each a password hash, and the
//!   memory store is the development and single-instance backend (a production configuration
//!   refuses it unless `store.allow_memory` says otherwise);
//! - the client cache and the rate limiter are keyed by registered client ids, and only after
//!   the client exists;
//! - the signing keys and metric label sets are ours, and label values are bounded by the
//!   family's series cap;
//! - a request's parameters are the client's names, but each request's map has a fresh seed
//!   and lives for that request only: there is no second look at it to learn from.
//!
//! Maps that outlive a request and take keys a client chooses keep std's SipHash.

use std::collections::HashMap;
use std::hash::BuildHasher;

/// The hasher builder: randomly seeded, one seed per builder.
pub type Fast = foldhash::fast::RandomState;

/// A `HashMap` hashed with [`Fast`]; make one with `Map::default()`.
pub type Map<K, V> = HashMap<K, V, Fast>;

/// Picks which of a fixed number of shards (each its own lock and map) holds a key, by a hash
/// seeded per router, so nobody can aim many keys at one shard's lock. The one way the memory
/// store, the client cache and the rate limiter split their keys.
#[derive(Debug, Default, Clone)]
pub struct Router(Fast);

impl Router {
    /// The shard of `key` among `shards`.
    pub fn shard(&self, key: &str, shards: usize) -> usize {
        usize::try_from(self.0.hash_one(key) % (shards.max(1) as u64)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn seeded_per_builder_and_usable_as_a_map() {
        let (a, b) = (Fast::default(), Fast::default());
        // Two builders hash one key differently (a fixed seed would let inputs be ground offline).
        let differ = (0..8u64).any(|i| a.hash_one(i) != b.hash_one(i));
        assert!(differ);
        let mut m: Map<String, u32> = Map::default();
        m.insert("k".into(), 1);
        assert_eq!(m.get("k"), Some(&1));
    }
}
