//! Rebuilds the people indexes from the user records (issue 12): users stored before the
//! directory existed, or by a write that died between its record and its index entries, become
//! visible to SCIM lists and filters. Idempotent (additions only), run once per index version.

use std::collections::BTreeSet;

use super::{index, people, tree};
use crate::store::{self, DynStore, IndexChange, StoreError, keys};
use crate::users::User;

/// The version of the people indexes' layout. Bump it when [`index::user_entries`] changes:
/// every store is reindexed once at the next start.
pub const INDEX_VERSION: u64 = 1;

/// Users read and indexed per round trip.
const BATCH: usize = 500;

/// How long one instance holds the reindex before another may take it over (it died).
const LEASE_SECS: i64 = 600;

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The store's indexes were already at [`INDEX_VERSION`].
    Current,
    /// Another instance is reindexing now (its lease runs); this one left it to it.
    Elsewhere,
    /// This instance reindexed `users` user records.
    Done {
        /// User records read and indexed.
        users: usize,
    },
}

/// The index version recorded in the store (0: none, a store older than the directory).
pub async fn stored_version(store: &DynStore) -> Result<u64, StoreError> {
    let v = store.get(keys::DIR_INDEX_VERSION).await?;
    Ok(v.and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok()).unwrap_or(0))
}

/// Reindexes when the store's index version is older than [`INDEX_VERSION`]: takes a lease so
/// two instances starting at once do the work once, indexes every user, then records the
/// version. A run killed midway leaves the version unrecorded and its lease running out; the
/// next run (this instance's seeder, or another's) starts over, which only re-adds entries.
pub async fn ensure(store: &DynStore, now: i64) -> Result<Outcome, StoreError> {
    if stored_version(store).await? >= INDEX_VERSION {
        return Ok(Outcome::Current);
    }
    if !lease(store, now).await? {
        return Ok(Outcome::Elsewhere);
    }
    let users = run(store).await?;
    store.put(keys::DIR_INDEX_VERSION, INDEX_VERSION.to_string().as_bytes(), None).await?;
    // Handed back for whoever bumps the version next: marked run out, and only if it is still
    // ours (compare-and-set), so a lease another instance took over is left alone.
    store.put_if(keys::DIR_REINDEX_LOCK, Some(until_of(now).as_bytes()), b"0").await?;
    tracing::info!(users, version = INDEX_VERSION, "directory people indexes rebuilt");
    Ok(Outcome::Done { users })
}

/// Takes the reindex lease (its value: when it runs out): true when free, or held by an
/// instance whose lease ran out. Compare-and-set, so of two racing instances one wins.
async fn lease(store: &DynStore, now: i64) -> Result<bool, StoreError> {
    let until = until_of(now);
    match store.get(keys::DIR_REINDEX_LOCK).await? {
        None => store.put_new(keys::DIR_REINDEX_LOCK, until.as_bytes(), Some(LEASE_SECS.unsigned_abs())).await,
        Some(held) => {
            let expires: i64 = String::from_utf8_lossy(&held).trim().parse().unwrap_or(0);
            if expires > now {
                return Ok(false);
            }
            store.put_if(keys::DIR_REINDEX_LOCK, Some(&held), until.as_bytes()).await
        }
    }
}

fn until_of(now: i64) -> String {
    now.saturating_add(LEASE_SECS).to_string()
}

/// Adds the index entries of every user record (whatever the version marker says); returns how
/// many records were read. Only additions: an entry already there stays, and an entry the record
/// no longer has is left for the readers, which check candidates against the records.
pub async fn run(store: &DynStore) -> Result<usize, StoreError> {
    let mut ids = store.set_members(keys::USER_INDEX).await?;
    ids.sort();
    let mut done = 0;
    for chunk in ids.chunks(BATCH) {
        done += index_batch(store, chunk).await?;
    }
    Ok(done)
}

/// Indexes one batch of users: their records, directory records and organizations read in two
/// round trips, every entry added in one. A record that does not decode is skipped (and
/// logged by key), so one corrupt user never stops the others or the start of an instance.
async fn index_batch(store: &DynStore, ids: &[String]) -> Result<usize, StoreError> {
    let mut wanted: Vec<String> = ids.iter().map(|id| keys::user(id)).collect();
    wanted.extend(ids.iter().map(|id| keys::dir_person(id)));
    let values = store.get_many(&wanted).await?;
    let (users, persons) = values.split_at(ids.len().min(values.len()));
    let mut found: Vec<(User, Option<String>)> = Vec::with_capacity(ids.len());
    for ((id, u), p) in ids.iter().zip(users).zip(persons) {
        let Some(bytes) = u else { continue };
        let user: User = match store::decode(&keys::user(id), bytes) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "user record skipped by the directory reindex");
                continue;
            }
        };
        let external = p
            .as_ref()
            .and_then(|b| store::decode::<people::Person>(&keys::dir_person(id), b).ok())
            .and_then(|p| p.external_id);
        found.push((user, external));
    }
    let orgs: BTreeSet<String> = found.iter().flat_map(|(u, _)| u.orgs.iter().cloned()).collect();
    let orgs: Vec<String> = orgs.into_iter().collect();
    let records = tree::get_many(store, &orgs).await?;
    let mut adds = Vec::new();
    for (user, external) in &found {
        let paths: Vec<(String, String)> =
            records.iter().filter(|o| user.orgs.contains(&o.id)).map(|o| (o.id.clone(), o.path())).collect();
        adds.extend(index::user_entries(user, &paths).into_iter().map(|(k, m)| IndexChange::add(k, m)));
        if let Some(e) = external {
            adds.push(IndexChange::add(index::key(index::USERS_EXT), index::member(&index::norm(e, true), &user.id)));
        }
    }
    store.index_apply(&adds).await?;
    Ok(found.len())
}
