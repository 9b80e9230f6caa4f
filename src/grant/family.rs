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
/// The family is also listed under its user and client ([`revoke_of_user_at_client`]), in
/// the same round trip: when the listing fails the start fails, and the retry that adopts the
/// family lists it (a listed id whose family never started is skipped).
pub async fn start(store: &DynStore, gid: &str, f: &Family, now: i64) -> Result<bool, StoreError> {
    let ttl = store::ttl_until(f.exp, now);
    let listed = async {
        if f.sub.is_empty() || f.client_id.is_empty() {
            return Ok(());
        }
        // The listing lives at least as long as the longest family a configuration grants, so
        // a later, shorter family (a JM-B token) cannot cut an earlier one's entry short.
        store.set_add(&keys::user_client_families(&f.sub, &f.client_id), gid, Some(ttl.max(LISTING_FLOOR))).await
    };
    let (key, bytes) = (keys::family(gid), store::encode(f));
    let (_, started) = tokio::try_join!(listed, store.put_new(&key, &bytes, Some(ttl)))?;
    Ok(started)
}

/// The shortest life of a user's listing of families at one client (400 days, seconds).
const LISTING_FLOOR: u64 = 400 * 24 * 3600;

/// Revokes every family of user `sub` at `client_id` (their consent to it was withdrawn,
/// SH-8.2): each of their tokens dies ([`crate::tokens::validity`] reads the family). Idempotent:
/// revoked families stay revoked; an id is unlisted only after its family is revoked, so a
/// crash between the steps leaves it for the next call. Returns how many were live.
pub async fn revoke_of_user_at_client(
    store: &DynStore,
    sub: &str,
    client_id: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let key = keys::user_client_families(sub, client_id);
    let mut live = 0;
    for gid in store.set_members(&key).await? {
        // Never started, expired or not theirs: nothing to end, only the listing.
        if let Some(f) = get(store, &gid).await?
            && f.sub == sub
            && f.client_id == client_id
            && f.live(now)
        {
            revoke(store, &gid, now, now).await?;
            live += 1;
        }
        store.set_remove(&key, &gid).await?;
    }
    Ok(live)
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
