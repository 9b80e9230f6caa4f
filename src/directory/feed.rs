//! The change feed (SH-6.3.5, SH-A.2 "page organization changes since a point in time"): every
//! change of an organization or a person appended to one log, in the order the changes took
//! effect, read after an opaque cursor. Entries carry the lineages (ancestors and self) of the
//! organizations concerned before and after, so each caller's view is decided per entry: a
//! person or a department leaving a caller's visible scope is a removal for it, one entering it
//! a creation. A change of one application's visible scope is one entry of the same log
//! ([`super::scope_change`]), expanded for that application only. Entries older than the
//! retention are trimmed; a cursor from before the trimmed point must resync in full.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::View;
use crate::store::{self, DynStore, StoreError, keys};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Created (or, for one caller, entered its visible scope).
    Created,
    /// Attributes changed.
    Updated,
    /// Moved in the tree (an organization with its subtree, or a person between organizations).
    Moved,
    /// Deleted (or, for one caller, left its visible scope).
    Deleted,
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum ResourceKind {
    /// A person (SCIM `User`).
    User,
    /// An organization (SCIM `Group`).
    Group,
}

/// One stored change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// To what.
    pub resource: ResourceKind,
    /// Its id.
    pub id: String,
    /// When (unix seconds); `None` when the writer did not know (then it counts as the time of
    /// the next entry that has one, for retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// Organizations (with their ancestors) it was in before.
    #[serde(default)]
    pub before: Vec<String>,
    /// Organizations (with their ancestors) it is in after.
    #[serde(default)]
    pub after: Vec<String>,
    /// An organization's change that applies to its whole subtree (a move, a scope change).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subtree: bool,
}

/// A change as one caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Seen {
    /// Its cursor: reading after it continues after this change.
    pub cursor: String,
    /// What happened, for this caller.
    pub kind: ChangeKind,
    /// To what.
    pub resource: ResourceKind,
    /// Its id.
    pub id: String,
    /// When (unix seconds), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// The change applies to the organization's whole subtree and its people.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subtree: bool,
    /// It is a change of the caller's visible scope (SH-6.2.4a), not of the directory: the
    /// organization entered (`created`) or left (`deleted`) what the caller sees.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scope: bool,
}

/// One stored entry of the log: a directory change, or a change of one application's visible
/// scope (tried first: it has a `scope_of` field a directory change never has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Entry {
    /// A visible scope changed.
    Scope(super::scope_change::ScopeEntry),
    /// An organization or a person changed.
    Change(Change),
}

impl Entry {
    /// When it was written, when known.
    fn at(&self) -> Option<i64> {
        match self {
            Self::Scope(s) => Some(s.at),
            Self::Change(c) => c.at,
        }
    }

    /// How `view`, the view of application `me` (if any), sees this entry at `cursor`: nothing,
    /// one change, or (a scope change of `me`) the organizations that left then those that
    /// entered.
    pub fn seen_by(self, view: &View, me: Option<&str>, cursor: &str) -> Vec<Seen> {
        match self {
            Self::Change(c) => as_seen_by(view, &c)
                .map(|kind| Seen {
                    cursor: cursor.to_owned(),
                    kind,
                    resource: c.resource,
                    id: c.id,
                    at: c.at,
                    subtree: c.subtree,
                    scope: false,
                })
                .into_iter()
                .collect(),
            Self::Scope(s) if me == Some(s.app()) => {
                let one = |kind, id: String| Seen {
                    cursor: cursor.to_owned(),
                    kind,
                    resource: ResourceKind::Group,
                    id,
                    at: Some(s.at),
                    subtree: true,
                    scope: true,
                };
                let left = s.left.iter().map(|id| one(ChangeKind::Deleted, id.clone()));
                let entered = s.entered.iter().map(|id| one(ChangeKind::Created, id.clone()));
                left.chain(entered).collect()
            }
            Self::Scope(_) => Vec::new(),
        }
    }
}

/// One page of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The changes, oldest first.
    pub changes: Vec<Seen>,
    /// Where to continue (also when no change was visible: entries were read past).
    pub cursor: String,
    /// Whether more entries follow right now.
    pub more: bool,
}

/// Why a feed read gives no page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behind {
    /// The cursor is older than the retention (or malformed): resync in full, then continue
    /// from `cursor` (the feed's head when this was answered).
    Resync {
        /// The head to continue from after the full resync.
        cursor: String,
    },
}

/// Formats a sequence number as a cursor.
pub fn cursor(seq: u64) -> String {
    format!("c{seq}")
}

fn parse_cursor(c: &str) -> Option<u64> {
    c.strip_prefix('c').filter(|d| !d.is_empty() && d.len() <= 20).and_then(|d| d.parse().ok())
}

/// Appends a change; returns its sequence number.
pub async fn append(store: &DynStore, change: &Change) -> Result<u64, StoreError> {
    store.log_append(keys::DIR_FEED, &store::encode(change)).await
}

/// How a change looks to `view`: `None` when it is outside the view before and after.
pub fn as_seen_by(view: &View, c: &Change) -> Option<ChangeKind> {
    let (was, is) = (view.sees_lineage(c.before.iter()), view.sees_lineage(c.after.iter()));
    // A created or deleted thing has no "before" or "after"; its visibility is the other side.
    let (was, is) = match c.kind {
        ChangeKind::Created => (is, is),
        ChangeKind::Deleted => (was, was),
        _ => (was, is),
    };
    match (was, is) {
        (true, true) => Some(c.kind),
        (false, true) => Some(ChangeKind::Created),
        (true, false) => Some(ChangeKind::Deleted),
        (false, false) => None,
    }
}

/// The feed's head: the cursor after the last change.
pub async fn head(store: &DynStore) -> Result<String, StoreError> {
    Ok(cursor(store.log_last(keys::DIR_FEED).await?))
}

/// Reads up to `max` changes visible to `view` after `after` (`None`: from the beginning).
/// At most `max * 20` entries are read per call; the page's cursor moves past them all.
pub async fn read(
    store: &DynStore,
    view: &View,
    after: Option<&str>,
    max: usize,
) -> Result<Result<Page, Behind>, StoreError> {
    read_for(store, view, None, after, max).await
}

/// As [`read`], for a client of application `me`: its own visible scope changes are expanded
/// (one entry's changes all land in one page, so a page may hold a few more than `max`).
pub async fn read_for(
    store: &DynStore,
    view: &View,
    me: Option<&str>,
    after: Option<&str>,
    max: usize,
) -> Result<Result<Page, Behind>, StoreError> {
    let trimmed = trimmed_upto(store).await?;
    let from = match after {
        None if trimmed == 0 => 0,
        None => return Ok(Err(Behind::Resync { cursor: head(store).await? })),
        Some(c) => match parse_cursor(c) {
            Some(n) if n >= trimmed => n,
            _ => return Ok(Err(Behind::Resync { cursor: head(store).await? })),
        },
    };
    let max = max.clamp(1, 1000);
    let mut changes = Vec::new();
    let mut pos = from;
    let mut budget = max.saturating_mul(20);
    let mut more = false;
    while changes.len() < max && budget > 0 {
        // What the page still needs and one more (to know there is more), not a fixed 500.
        let want = max.saturating_sub(changes.len()).saturating_add(1).min(budget).min(500);
        let batch = store.log_read(keys::DIR_FEED, pos, want).await?;
        if batch.is_empty() {
            break;
        }
        for (seq, payload) in batch {
            if changes.len() >= max || budget == 0 {
                more = true;
                break;
            }
            budget -= 1;
            pos = seq;
            let e: Entry = store::decode(keys::DIR_FEED, &payload)?;
            changes.extend(e.seen_by(view, me, &cursor(seq)));
        }
    }
    if !more {
        more = !store.log_read(keys::DIR_FEED, pos, 1).await?.is_empty();
    }
    Ok(Ok(Page { changes, cursor: cursor(pos), more }))
}

async fn trimmed_upto(store: &DynStore) -> Result<u64, StoreError> {
    Ok(store.get(keys::DIR_FEED_TRIMMED).await?.and_then(|b| String::from_utf8(b).ok()?.parse().ok()).unwrap_or(0))
}

/// Drops the entries older than `retention` seconds (tombstones included); returns how many.
/// The trimmed point is recorded before anything is dropped, so a reader never misses an entry
/// silently: it is either read or told to resync.
pub async fn trim(store: &DynStore, now: i64, retention: i64) -> Result<u64, StoreError> {
    let cutoff = now.saturating_sub(retention);
    let mut last_old = None;
    let mut pos = trimmed_upto(store).await?;
    // Small reads first: nearly always the oldest entry is young enough and one read says so.
    let mut step = 8;
    'scan: loop {
        let batch = store.log_read(keys::DIR_FEED, pos, step).await?;
        step = (step * 4).min(500);
        if batch.is_empty() {
            break;
        }
        for (seq, payload) in batch {
            pos = seq;
            let e: Entry = store::decode(keys::DIR_FEED, &payload)?;
            match e.at() {
                // Untimed entries go with the next timed one.
                None => {}
                Some(at) if at < cutoff => last_old = Some(seq),
                Some(_) => break 'scan,
            }
        }
    }
    let Some(upto) = last_old else { return Ok(0) };
    let old = trimmed_upto(store).await?;
    if upto > old {
        store.put(keys::DIR_FEED_TRIMMED, upto.to_string().as_bytes(), None).await?;
    }
    store.log_trim(keys::DIR_FEED, upto).await
}

/// The lineage set of organizations (ancestors and self of each), sorted, without repeats.
pub fn lineages<'a>(orgs: impl Iterator<Item = &'a super::Org>) -> Vec<String> {
    let set: BTreeSet<String> = orgs.flat_map(super::Org::lineage).collect();
    set.into_iter().collect()
}
