//! Changes of an application's visible scope in the change feed (SH-6.2.4a, SH-6.3.5): the
//! organizations that entered the scope appear to that application as created, those that
//! left as deleted (each with its subtree and people), in order with the other changes. An
//! intent is written before the application, and the feed entry appended after it, at most
//! once (the intent's id is looked for after the feed head it recorded); a crash in between is
//! finished by the next change of the application or by [`recover`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::feed::Entry;
use crate::crypto;
use crate::store::{self, DynStore, StoreError, keys};

/// Seconds the writer has to finish its own change before recovery may step in.
pub const GRACE: i64 = 5;

/// The feed entry of a visible scope change: decided when written, from the tree as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeEntry {
    /// The application whose scope changed (only its clients see the entry).
    pub scope_of: String,
    /// The intent that wrote it (appended at most once).
    pub intent: String,
    /// When (unix seconds).
    pub at: i64,
    /// Organizations whose subtrees entered the scope.
    #[serde(default)]
    pub entered: Vec<String>,
    /// Organizations whose subtrees left it.
    #[serde(default)]
    pub left: Vec<String>,
}

impl ScopeEntry {
    /// The application (alias of `scope_of`).
    pub fn app(&self) -> &str {
        &self.scope_of
    }
}

/// A visible scope change on its way to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The entry to append.
    pub entry: ScopeEntry,
    /// The scope after the change (the change took effect iff the application has it).
    pub after: Vec<String>,
    /// The feed head before the change: the entry, if appended, lies after it.
    pub head: u64,
}

/// The lineage (ancestors and self) of each id; an id that is no organization is its own.
async fn lineages(store: &DynStore, ids: &BTreeSet<String>) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let list: Vec<String> = ids.iter().cloned().collect();
    let orgs = super::tree::get_many(store, &list).await?;
    Ok(list
        .into_iter()
        .map(|id| {
            let lineage = orgs.iter().find(|o| o.id == id).map_or_else(|| vec![id.clone()], super::Org::lineage);
            (id, lineage)
        })
        .collect())
}

/// The topmost of `picked`: those with no other picked one among their ancestors.
fn topmost(picked: Vec<(String, Vec<String>)>) -> Vec<String> {
    let ids: BTreeSet<&String> = picked.iter().map(|(id, _)| id).collect();
    picked
        .iter()
        .filter(|(id, lineage)| !lineage.iter().any(|a| a != id && ids.contains(a)))
        .map(|(id, _)| id.clone())
        .collect()
}

/// What entered and left when the scope goes from `before` to `after`: a `before` root none of
/// whose lineage is in `after` left (its whole subtree); then every `after` root whose lineage
/// holds none of the roots kept entered. Left roots are told first, so a department kept out
/// of a unit that left is re-created after the unit's removal.
pub async fn diff(
    store: &DynStore,
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let (b, a) = (lineages(store, before).await?, lineages(store, after).await?);
    let (left, kept): (Vec<_>, Vec<_>) = b.into_iter().partition(|(_, l)| !l.iter().any(|o| after.contains(o)));
    let kept: BTreeSet<String> = kept.into_iter().map(|(id, _)| id).collect();
    let entered: Vec<_> = a.into_iter().filter(|(_, l)| !l.iter().any(|o| kept.contains(o))).collect();
    Ok((topmost(entered), topmost(left)))
}

/// Records the intent of changing `app`'s scope from `before` to `after` at `now`; `None`
/// when the scope does not change (nothing to announce).
pub async fn begin(
    store: &DynStore,
    app: &str,
    before: &[String],
    after: &[String],
    now: i64,
) -> Result<Option<Intent>, StoreError> {
    let (b, a): (BTreeSet<String>, BTreeSet<String>) =
        (before.iter().cloned().collect(), after.iter().cloned().collect());
    if a == b {
        return Ok(None);
    }
    let (entered, left) = diff(store, &b, &a).await?;
    let intent = Intent {
        entry: ScopeEntry { scope_of: app.to_owned(), intent: crypto::random_token(12), at: now, entered, left },
        after: a.into_iter().collect(),
        head: store.log_last(keys::DIR_FEED).await?,
    };
    // Listed first: a listed app without an intent is dropped by recovery, an unlisted intent
    // would never be found.
    store.set_add(keys::DIR_SCOPE_INTENTS, app, None).await?;
    store::put_json(store.as_ref(), &keys::dir_scope_intent(app), &intent, None).await?;
    Ok(Some(intent))
}

/// Finishes `intent` given the application's stored scope `now_scope`: appends its entry if the
/// change took effect and the entry is not in the feed yet, then drops the intent. Idempotent.
pub async fn finish(store: &DynStore, intent: &Intent, now_scope: &[String]) -> Result<bool, StoreError> {
    let applied = now_scope.iter().collect::<BTreeSet<_>>() == intent.after.iter().collect::<BTreeSet<_>>();
    let appended = applied && !already_appended(store, intent).await?;
    if appended {
        store.log_append(keys::DIR_FEED, &store::encode(&Entry::Scope(intent.entry.clone()))).await?;
    }
    store.delete(&keys::dir_scope_intent(&intent.entry.scope_of)).await?;
    store.set_remove(keys::DIR_SCOPE_INTENTS, &intent.entry.scope_of).await?;
    Ok(appended)
}

async fn already_appended(store: &DynStore, intent: &Intent) -> Result<bool, StoreError> {
    let mut pos = intent.head;
    loop {
        let batch = store.log_read(keys::DIR_FEED, pos, 500).await?;
        let Some((last, _)) = batch.last() else { return Ok(false) };
        pos = *last;
        for (_, payload) in batch {
            if let Ok(Entry::Scope(s)) = store::decode::<Entry>(keys::DIR_FEED, &payload)
                && s.intent == intent.entry.intent
            {
                return Ok(true);
            }
        }
    }
}

/// The intent outstanding for `app`, if any.
pub async fn pending(store: &DynStore, app: &str) -> Result<Option<Intent>, StoreError> {
    store::get_json(store.as_ref(), &keys::dir_scope_intent(app)).await
}

/// Finishes the outstanding intent of `app` (if any) against its stored scope; the caller
/// holds the application's change lock.
pub async fn settle(store: &DynStore, app: &str, now_scope: &[String]) -> Result<(), StoreError> {
    if let Some(intent) = pending(store, app).await? {
        finish(store, &intent, now_scope).await?;
    }
    Ok(())
}

/// Finishes intents older than [`GRACE`] whose writer died (any instance may run it); how
/// many it finished. Each is finished under its application's change lock, and skipped while
/// another holds it.
pub async fn recover(store: &DynStore, now: i64) -> Result<usize, StoreError> {
    let mut done = 0;
    for app_id in store.set_members(keys::DIR_SCOPE_INTENTS).await? {
        let Ok(lock) = crate::apps::Lock::take(store, &app_id).await else { continue };
        let result = recover_one(store, &app_id, now).await;
        lock.release().await?;
        if result? {
            done += 1;
        }
    }
    Ok(done)
}

async fn recover_one(store: &DynStore, app_id: &str, now: i64) -> Result<bool, StoreError> {
    let Some(intent) = pending(store, app_id).await? else {
        store.set_remove(keys::DIR_SCOPE_INTENTS, app_id).await?;
        return Ok(false);
    };
    if now < intent.entry.at + GRACE {
        return Ok(false);
    }
    let scope = crate::apps::get(store, app_id).await?.map(|a| a.registration.visible_scope).unwrap_or_default();
    finish(store, &intent, &scope).await?;
    Ok(true)
}
