//! A hasher for keys that already are hashes (issue 13): a keyed hash of metric labels, the
//! SHA-256 of a token. Hashing them again with SipHash, as `HashMap`'s default does, costs a few
//! hundred instructions a lookup and protects nothing here: label hashes are keyed by a random
//! key an attacker does not know, and the verified-token cache inserts only tokens we signed
//! (an attacker may grind a token whose hash lands in a chosen bucket, but a lookup cannot
//! lengthen any probe; only entries can, and those are not the attacker's to choose).

use std::hash::{BuildHasherDefault, Hasher};

/// Passes a `u64` through; a key hashed here writes one `u64` of its own hash.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prehashed(u64);

/// `HashMap<K, V, BuildPrehashed>` for keys that are hashes.
pub type BuildPrehashed = BuildHasherDefault<Prehashed>;

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Keys meant for this hasher write one u64; anything else still spreads over the value.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_u64_passes_through_and_bytes_spread() {
        let b = BuildPrehashed::default();
        assert_eq!(b.hash_one(0xdead_beef_u64), 0xdead_beef);
        let mut h = Prehashed::default();
        h.write(&[1, 2]);
        assert_eq!(h.finish(), 0x0102);
    }
}
