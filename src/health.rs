//! Readiness (SH-6.2.4d: the health address reports the real state): the store answers and a
//! signing key of every algorithm is loaded. The HTTP layer only reports what this decides.

use serde::Serialize;

use crate::jwt::Alg;
use crate::keys::Keys;
use crate::store::DynStore;

/// What the instance can do right now.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Readiness {
    /// The store answered.
    pub store: bool,
    /// An active signing key of every algorithm is loaded.
    pub keys: bool,
}

impl Readiness {
    /// Ready to take traffic.
    pub fn ready(&self) -> bool {
        self.store && self.keys
    }
}

/// Checks the instance's dependencies.
pub async fn readiness(store: &DynStore, keys: &Keys) -> Readiness {
    let store = store.ping().await.is_ok();
    let set = keys.current();
    let keys = [Alg::ES256, Alg::RS256, Alg::EdDSA].iter().all(|a| set.active(*a).is_some());
    Readiness { store, keys }
}
