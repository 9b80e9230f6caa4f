//! A grant, or token family: the record behind every token one authorization produced (the
//! access tokens carry its id as `gid`, the refresh tokens name it). A token of a family is
//! alive only while the family's record exists and is not revoked, so revocation cannot
//! expire before what it revokes: the record lives exactly as long as the family may issue or
//! hold live tokens ([`Family::exp`] bounds every token's `exp`), and a revoked family is kept
//! as a tombstone for that same time. No record means no live token (fail closed).

use serde::{Deserialize, Serialize};

use crate::identity::acting::Acting;
use crate::store::{self, DynStore, StoreError, keys};

/// A stored family. Field names are short: there is one per authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    /// The client it was granted to.
    #[serde(rename = "c")]
    pub client_id: String,
    /// The user.
    #[serde(rename = "u")]
    pub sub: String,
    /// The SSO session it came from.
    #[serde(rename = "s")]
    pub sid: String,
    /// The user's token generation when it was granted ([`crate::users::User::generation`]).
    #[serde(rename = "g", default)]
    pub generation: u32,
    /// `offline_access` was granted: the family outlives its SSO session (OIDC Core s11).
    #[serde(rename = "o", default)]
    pub offline: bool,
    /// No token of the family lives past this (unix seconds).
    #[serde(rename = "x")]
    pub exp: i64,
    /// Revoked: every token of the family is dead (RFC 7009 s2.1, RFC 9700 s4.14.2).
    #[serde(rename = "r", default)]
    pub revoked: bool,
    /// The legal person the user (an agent) acts for in this grant (HL-5.1): its tokens die
    /// when the agent is removed from it or it is disabled or deleted.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub acting: Option<Acting>,
}

impl Family {
    /// Whether the family may still hold live tokens at `now`.
    pub fn live(&self, now: i64) -> bool {
        !self.revoked && now < self.exp
    }
}

/// Starts a family under `gid`. False when the id is already taken, which happens only when
/// a replayed authorization code revoked it first (its tombstone): the grant must be refused.
pub async fn start(store: &DynStore, gid: &str, f: &Family, now: i64) -> Result<bool, StoreError> {
    store.put_new(&keys::family(gid), &store::encode(f), Some(store::ttl_until(f.exp, now))).await
}

/// Reads a family.
pub async fn get(store: &DynStore, gid: &str) -> Result<Option<Family>, StoreError> {
    store::get_json(store.as_ref(), &keys::family(gid)).await
}

/// Revokes family `gid`: a tombstone replaces the record for as long as the record would have
/// lived, or until `at_least` when the family is not stored (yet): a replayed code may race
/// the redemption that starts it, and [`start`] then fails on the tombstone.
pub async fn revoke(store: &DynStore, gid: &str, at_least: i64, now: i64) -> Result<(), StoreError> {
    let tombstone = match get(store, gid).await? {
        Some(mut f) => {
            f.revoked = true;
            f.exp = f.exp.max(at_least);
            f
        }
        None => Family {
            client_id: String::new(),
            sub: String::new(),
            sid: String::new(),
            generation: 0,
            offline: false,
            exp: at_least,
            revoked: true,
            acting: None,
        },
    };
    store::put_json(store.as_ref(), &keys::family(gid), &tombstone, Some(store::ttl_until(tombstone.exp, now))).await
}
