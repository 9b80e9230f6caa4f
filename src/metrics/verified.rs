//! The verified-signature cache's figures in the text format: entries, capacity, the memory
//! bound they imply, the bytes held, hits, misses and evictions (`tongzheng_verified_cache_*`).

use super::text::{header, sample};
use crate::keys::verified::Stats;

/// Appends the cache's samples.
pub fn render(out: &mut String, s: Stats) {
    let rows: [(&str, &str, &str, u64); 7] = [
        ("tongzheng_verified_cache_entries", "Verified-signature cache: entries held.", "gauge", s.entries),
        ("tongzheng_verified_cache_capacity", "Verified-signature cache: most entries held.", "gauge", s.capacity),
        (
            "tongzheng_verified_cache_memory_bound_bytes",
            "Verified-signature cache: memory its capacity allows, bytes.",
            "gauge",
            s.memory_bound(),
        ),
        (
            "tongzheng_verified_cache_bytes",
            "Verified-signature cache: bytes its entries hold (estimated).",
            "gauge",
            s.bytes,
        ),
        ("tongzheng_verified_cache_hits_total", "Signature verifications skipped.", "counter", s.hits),
        ("tongzheng_verified_cache_misses_total", "Lookups followed by a full verification.", "counter", s.misses),
        ("tongzheng_verified_cache_evictions_total", "Live entries dropped to stay bounded.", "counter", s.evictions),
    ];
    for (name, help, kind, value) in rows {
        header(out, name, help, kind);
        sample(out, name, "", &[], &[], None, &value.to_string());
    }
}
