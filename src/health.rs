//! Readiness (SH-6.2.4d: the health address reports the real state): the store answers and
//! takes writes (a replica after a failover answers but refuses writes), the bootstrap data from
//! config is in it, a signing key of every algorithm is loaded, and the instance is not draining
//! for a shutdown. The HTTP layer only reports what this decides.

use serde::Serialize;

use crate::instance::Instance;
use crate::jwt::Alg;
use crate::keys::Keys;
use crate::store::{DynStore, keys as store_keys};

/// What the store can do for this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreState {
    /// It answers and takes writes.
    Ok,
    /// It answers but refused the write probe (a replica, read-only, out of memory).
    NotWritable,
    /// It does not answer.
    Unreachable,
}

impl StoreState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotWritable => "not_writable",
            Self::Unreachable => "unreachable",
        }
    }
}

/// What the instance can do right now.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Readiness {
    /// The store's state.
    pub store: StoreState,
    /// The bootstrap data from `[seed]` is in the store (false while the store is unreachable).
    pub seeded: bool,
    /// An active signing key of every algorithm is loaded.
    pub keys: bool,
    /// A shutdown has started: balancers must stop sending here.
    pub draining: bool,
}

impl Readiness {
    /// Ready to take traffic.
    pub fn ready(&self) -> bool {
        self.store == StoreState::Ok && self.seeded && self.keys && !self.draining
    }
}

/// Checks the instance's dependencies at `now`: a ping, a write of this instance's probe key and
/// a read of the seed marker. Missing seed data on a writable store wakes the seeder, so an
/// emptied store is seeded again as soon as a balancer asks.
pub async fn readiness(store: &DynStore, keys: &Keys, instance: &Instance, now: i64) -> Readiness {
    let state = match store.ping().await {
        Err(_) => StoreState::Unreachable,
        Ok(()) => match store.probe_write(&store_keys::write_probe(instance.id()), now).await {
            Ok(()) => StoreState::Ok,
            Err(_) => StoreState::NotWritable,
        },
    };
    let seeded = state != StoreState::Unreachable && matches!(store.get(store_keys::SEED_MARKER).await, Ok(Some(_)));
    if state == StoreState::Ok && !seeded {
        instance.wake_seeder();
    }
    let set = keys.current();
    let keys = [Alg::ES256, Alg::RS256, Alg::EdDSA].iter().all(|a| set.active(*a).is_some());
    Readiness { store: state, seeded, keys, draining: instance.draining() }
}
