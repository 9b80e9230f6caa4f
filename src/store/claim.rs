//! Unique values (a username, a phone number's blind index, a USCC, an organization's code or
//! external id): a claim key names the one record holding the value. A write creating a record
//! first marks its id as in flight ([`begin`]), then claims, then writes the record. A claim is
//! taken over only from a holder that is gone: released, or with neither a record nor a write in
//! flight (a crashed create, whose mark runs out after [`IN_FLIGHT_SECS`]). Without the mark, a
//! second writer could take over a claim between the first one's claim and its record, and both
//! records would hold the value.

use super::{DynStore, StoreError, keys};

/// How long a create in flight keeps its claims from being taken over. A create takes
/// milliseconds; this only bounds how long a crashed create's claims stay blocked.
pub const IN_FLIGHT_SECS: u64 = 60;

/// Marks `id` as being created: call before its first [`claim`].
pub async fn begin(store: &DynStore, id: &str) -> Result<(), StoreError> {
    store.put(&keys::in_flight(id), b"1", Some(IN_FLIGHT_SECS)).await
}

/// Ends `id`'s create (done, or given up after releasing what it claimed): its claims are then
/// held by its record alone, or free to take over when it has none.
pub async fn end(store: &DynStore, id: &str) -> Result<(), StoreError> {
    store.delete(&keys::in_flight(id)).await.map(|_| ())
}

/// Claims `key` for `id`: true when it is free (absent or released), already ours, or held by an
/// id whose record (`record_key`) does not exist and whose create is not in flight. Every change
/// is a compare-and-set, so of two claimants one wins.
pub async fn claim(store: &DynStore, key: &str, id: &str, record_key: fn(&str) -> String) -> Result<bool, StoreError> {
    for _ in 0..3 {
        match store.get(key).await? {
            None => {
                if store.put_new(key, id.as_bytes(), None).await? {
                    return Ok(true);
                }
            }
            Some(h) if h == id.as_bytes() => return Ok(true),
            Some(h) => {
                let holder = String::from_utf8_lossy(&h).into_owned();
                if !holder.is_empty() {
                    let held = store.get_many(&[record_key(&holder), keys::in_flight(&holder)]).await?;
                    if held.iter().any(Option::is_some) {
                        return Ok(false);
                    }
                }
                if store.put_if(key, Some(&h), id.as_bytes()).await? {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Frees a claim if `id` still holds it (released, not deleted: a compare-and-set can only
/// replace, and a delete could remove a claim another id took over meanwhile).
pub async fn release(store: &DynStore, key: &str, id: &str) -> Result<(), StoreError> {
    store.put_if(key, Some(id.as_bytes()), b"").await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    // A claim whose holder's record is not written yet is not taken over while the holder's
    // create is in flight (the race two concurrent creates of one username lost before), and is
    // once the holder is known to be gone.
    #[tokio::test]
    async fn a_claim_in_flight_is_not_taken_over() {
        let store: DynStore = Arc::new(MemoryStore::new());
        begin(&store, "a").await.unwrap();
        assert!(claim(&store, "username:li", "a", keys::user).await.unwrap());
        begin(&store, "b").await.unwrap();
        assert!(!claim(&store, "username:li", "b", keys::user).await.unwrap(), "a is still writing its record");
        store.delete(&keys::in_flight("a")).await.unwrap();
        assert!(claim(&store, "username:li", "b", keys::user).await.unwrap(), "a crashed: no record, no write");
        store.put(&keys::user("b"), b"{}", None).await.unwrap();
        store.delete(&keys::in_flight("b")).await.unwrap();
        assert!(!claim(&store, "username:li", "c", keys::user).await.unwrap(), "b's record holds it");
        release(&store, "username:li", "b").await.unwrap();
        assert!(claim(&store, "username:li", "c", keys::user).await.unwrap(), "released");
    }
}
