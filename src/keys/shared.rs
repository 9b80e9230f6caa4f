//! The key set as shared state: one sealed record in the store that every instance reads, written
//! only by compare-and-set on the whole record, so instances that start or rotate at the same
//! moment converge on one set (the first writer wins; the others re-read and adopt or re-apply).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::kek::KekRing;
use super::material::{self, Material, PlainKey};
use super::record::{self, Opened};
use super::{KeyError, Keys, keep_retired};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::{DynStore, Store};

/// The store key of the sealed key set.
pub const KEYSET: &str = crate::store::keys::KEYSET;

/// How many times a write is re-applied after losing a race before giving up.
const MAX_ATTEMPTS: usize = 16;

/// Reads and opens the stored set; `None` when the store holds none.
pub async fn read(store: &dyn Store, ring: &KekRing) -> Result<Option<(Vec<u8>, Opened)>, KeyError> {
    match store.get(KEYSET).await? {
        Some(raw) => {
            let opened = record::open(&raw, ring)?;
            Ok(Some((raw, opened)))
        }
        None => Ok(None),
    }
}

/// Publishes `m` as the set when the store holds none. Returns what the store holds afterwards
/// (ours, or the set another instance published first) and whether ours was written.
pub async fn publish_if_absent(
    store: &dyn Store,
    ring: &KekRing,
    m: &Material,
    now: i64,
) -> Result<(Vec<u8>, Opened, bool), KeyError> {
    for _ in 0..MAX_ATTEMPTS {
        let raw = record::seal(m, 1, ring, now);
        if store.put_if(KEYSET, None, &raw).await? {
            let opened = Opened { material: m.clone(), version: 1, kek: ring.sealing().id().to_owned() };
            return Ok((raw, opened, true));
        }
        if let Some((raw, opened)) = read(store, ring).await? {
            return Ok((raw, opened, false));
        }
    }
    Err(KeyError::Contended)
}

/// Applies `change` to the stored set and writes the result with compare-and-set, re-reading
/// and re-applying after a concurrent write; `change` returns false to write nothing. Every
/// write seals under the ring's first KEK.
pub async fn update(
    store: &dyn Store,
    ring: &KekRing,
    now: i64,
    mut change: impl FnMut(&mut Material) -> bool,
) -> Result<(Vec<u8>, Opened), KeyError> {
    for _ in 0..MAX_ATTEMPTS {
        let (raw, mut opened) = read(store, ring).await?.ok_or(KeyError::NoSet)?;
        if !change(&mut opened.material) {
            return Ok((raw, opened));
        }
        opened.version = opened.version.saturating_add(1);
        let new = record::seal(&opened.material, opened.version, ring, now);
        if store.put_if(KEYSET, Some(&raw), &new).await? {
            opened.kek = ring.sealing().id().to_owned();
            return Ok((new, opened));
        }
    }
    Err(KeyError::Contended)
}

/// Generates new keys away from the async workers (RSA generation takes a while).
async fn generate<T: Send + 'static>(
    make: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    tokio::task::spawn_blocking(make).await.map_err(|e| KeyError::Generate(e.to_string()))?
}

/// The set in the store, or the one this instance publishes when there is none: `seed`, else
/// the pre-store `dir/keyset.json` (migration), else new keys.
pub async fn load_or_create(
    store: &dyn Store,
    ring: &KekRing,
    dir: &Path,
    seed: Option<Material>,
    now: i64,
) -> Result<(Vec<u8>, Opened), KeyError> {
    if let Some(found) = read(store, ring).await? {
        return Ok(found);
    }
    let (m, source) = match seed {
        Some(m) => (m, "given"),
        None => match Material::read_legacy(dir, now)? {
            Some(m) => (m, "imported from keys.dir/keyset.json"),
            None => (generate(move || Material::generate(now)).await?, "generated"),
        },
    };
    let (raw, opened, won) = publish_if_absent(store, ring, &m, now).await?;
    if won {
        tracing::info!(source, kek = %opened.kek, "key set published to the store");
    } else {
        tracing::info!("adopted the key set another instance published first");
    }
    Ok((raw, opened))
}

/// One new active key per algorithm, generated away from the async workers.
pub async fn fresh_keys(now: i64) -> Result<Vec<PlainKey>, KeyError> {
    generate(move || material::fresh_keys(now)).await
}

/// Rotation in the store: `fresh` become the active keys; the old ones retire and stay until
/// `keep` seconds after their retirement.
pub async fn rotate(
    store: &dyn Store,
    ring: &KekRing,
    now: i64,
    keep: i64,
    fresh: Vec<PlainKey>,
) -> Result<(Vec<u8>, Opened), KeyError> {
    update(store, ring, now, |m| {
        m.rotate(fresh.clone(), now, keep);
        true
    })
    .await
}

/// What `tongzheng keys rotate-kek` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRotated {
    /// Id of the KEK the set was sealed under.
    pub from: String,
    /// Id of the KEK it is sealed under now.
    pub to: String,
}

/// `tongzheng keys rotate`: rotates the set in the configured store; running instances use the
/// new keys within `keys.refresh_secs`. Returns the new active kids.
pub async fn rotate_in_store(config: &Config, store: &DynStore, now: i64) -> Result<Vec<String>, KeyError> {
    let ring = KekRing::from_config(&config.keys, config.server.dev)?;
    let fresh = fresh_keys(now).await?;
    let (_, opened) = rotate(store.as_ref(), &ring, now, keep_retired(&config.tokens), fresh).await?;
    Ok(opened.material.keys.iter().filter(|k| k.retired_at.is_none()).map(|k| k.kid.clone()).collect())
}

/// `tongzheng keys rotate-kek`: re-seals the set under the first configured KEK, opening it with
/// whichever configured KEK sealed it.
pub async fn rotate_kek_in_store(config: &Config, store: &DynStore, now: i64) -> Result<KekRotated, KeyError> {
    let ring = KekRing::from_config(&config.keys, config.server.dev)?;
    let from = store.get(KEYSET).await?.and_then(|raw| record::peek(&raw)).map(|(_, kek)| kek).unwrap_or_default();
    let (_, opened) = update(store.as_ref(), &ring, now, |_| true).await?;
    Ok(KekRotated { from, to: opened.kek })
}

/// Refreshes `keys` from the store every `every` until `stop` turns true.
pub async fn refresher(keys: Arc<Keys>, clock: Clock, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(every) => {}
        }
        if *stop.borrow() {
            return;
        }
        if let Err(e) = keys.refresh(clock.now()).await {
            tracing::warn!(error = %e, "key set not refreshed");
        }
    }
}
