//! Decoded client records kept in process (issue 13). The record is still read from the store on
//! every request (so a suspension, a disabled client or a rotated secret written by any instance
//! counts on the very next request, AY-8.5.3.2); only when its bytes equal the bytes decoded last
//! time is that decode reused instead of parsing the JSON again. Bounded; no global lock.

use std::sync::{Arc, Mutex, PoisonError};

use super::Client;
use crate::fastmap;
use crate::store::{self, StoreError};

const SHARDS: usize = 16;

/// Records kept unless configured otherwise.
pub const DEFAULT_ENTRIES: usize = 4096;

/// One shard: store key -> (the record's bytes, their decode).
type Shard = Mutex<fastmap::Map<String, (Vec<u8>, Arc<Client>)>>;

/// The decoded-record cache of one instance.
#[derive(Debug)]
pub struct ClientCache {
    shards: Vec<Shard>,
    route: fastmap::Router,
    per_shard: usize,
}

impl Default for ClientCache {
    fn default() -> Self {
        Self::new(DEFAULT_ENTRIES)
    }
}

impl ClientCache {
    /// A cache of at most about `capacity` records (0: every record is decoded).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(fastmap::Map::default())).collect(),
            route: fastmap::Router::default(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    /// The client stored under `key` as `raw`: the earlier decode when `raw` is byte for byte
    /// what was decoded then, else a fresh decode (which replaces it).
    /// Shared, not copied (issue 13: a record's many strings were cloned on every request).
    pub fn decode(&self, key: &str, raw: &[u8]) -> Result<Arc<Client>, StoreError> {
        let Some(shard) = self.shards.get(self.route.shard(key, SHARDS)).filter(|_| self.per_shard > 0) else {
            return store::decode(key, raw).map(Arc::new);
        };
        if let Some((bytes, client)) = shard.lock().unwrap_or_else(PoisonError::into_inner).get(key)
            && bytes.as_slice() == raw
        {
            return Ok(Arc::clone(client));
        }
        let client: Arc<Client> = Arc::new(store::decode(key, raw)?);
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.per_shard && !map.contains_key(key) {
            // Past the bound, start the shard over: the hot records come back at their next read.
            map.clear();
        }
        map.insert(key.to_owned(), (raw.to_vec(), Arc::clone(&client)));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(enabled: bool) -> Vec<u8> {
        let c = serde_json::json!({"client_id": "c", "name": "c", "grant_types": ["client_credentials"], "scopes": [],
            "auth_method": "client_secret_basic", "id_token_alg": "ES256", "origin": "admin", "created_at": 0,
            "enabled": enabled});
        serde_json::to_vec(&c).unwrap()
    }

    // AY-8.5.3.2: a changed record is never answered from the cache.
    #[test]
    fn changed_bytes_are_decoded_again() {
        let cache = ClientCache::new(32);
        assert!(cache.decode("client:c", &record(true)).unwrap().enabled);
        assert!(cache.decode("client:c", &record(true)).unwrap().enabled);
        assert!(!cache.decode("client:c", &record(false)).unwrap().enabled);
        assert!(cache.decode("client:c", b"not json").is_err());
    }

    #[test]
    fn bounded() {
        let cache = ClientCache::new(16);
        for i in 0..1000 {
            cache.decode(&format!("client:{i}"), &record(true)).unwrap();
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= 16, "{held}");
    }
}
