//! Organization tree operations: create, change, move (a department moves with its subtree and
//! the people in it; cycles refused), delete (refused while departments or people remain,
//! unless cascading). Index additions are written before a record and removals after, and a
//! move rewrites the descendants before the moved organization itself, so a retry after a crash
//! finishes the job.

use std::collections::{BTreeSet, HashMap};

use super::feed::{self, Change, ChangeKind, ResourceKind};
use super::index::{self, borrowed};
use super::org::MAX_DEPTH;
use super::{Ctx, DirError, Org};
use crate::sealing::DataKey;
use crate::store::{self, DynStore, IndexChange, StoreError, keys};
use crate::users;

/// Reads an organization.
pub async fn get(store: &DynStore, id: &str) -> Result<Option<Org>, StoreError> {
    if !super::valid_id(id) {
        return Ok(None);
    }
    store::get_json(store.as_ref(), &keys::dir_org(id)).await
}

/// Reads organizations, in the order given, skipping missing ones.
pub async fn get_many(store: &DynStore, ids: &[String]) -> Result<Vec<Org>, StoreError> {
    let keys: Vec<String> = ids.iter().filter(|i| super::valid_id(i)).map(|id| keys::dir_org(id)).collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(keys.len());
    for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            out.push(store::decode(k, &bytes)?);
        }
    }
    Ok(out)
}

/// Claims a unique value for `id` (`store::claim`: taken over only from a holder that is gone).
pub async fn claim(store: &DynStore, key: &str, id: &str, record_key: fn(&str) -> String) -> Result<bool, StoreError> {
    store::claim::claim(store, key, id, record_key).await
}

/// Frees a claim if `id` still holds it.
pub async fn release(store: &DynStore, key: &str, id: &str) -> Result<(), StoreError> {
    store::claim::release(store, key, id).await
}

fn claims(org: &Org) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    if let Some(e) = &org.external_id {
        out.push((keys::dir_claim("org-ext", e), "externalId"));
    }
    if let Some(c) = &org.code {
        out.push((keys::dir_claim("org-code", &c.to_uppercase()), "code"));
    }
    out
}

async fn claim_all(store: &DynStore, org: &Org, old: Option<&Org>) -> Result<(), DirError> {
    let held: Vec<String> = old.map(|o| claims(o).into_iter().map(|(k, _)| k).collect()).unwrap_or_default();
    for (k, what) in claims(org) {
        if !held.contains(&k) && !claim(store, &k, &org.id, keys::dir_org).await? {
            return Err(DirError::Taken(format!("another organization has this {what}")));
        }
    }
    Ok(())
}

async fn release_stale(store: &DynStore, old: &Org, new: Option<&Org>) -> Result<(), StoreError> {
    let keep: Vec<String> = new.map(|n| claims(n).into_iter().map(|(k, _)| k).collect()).unwrap_or_default();
    for (k, _) in claims(old) {
        if !keep.contains(&k) {
            release(store, &k, &old.id).await?;
        }
    }
    Ok(())
}

/// Where `org` would sit under `parent`: its ancestors, checked for depth.
async fn place(store: &DynStore, org: &Org) -> Result<Vec<String>, DirError> {
    let Some(pid) = &org.parent else { return Ok(Vec::new()) };
    let parent = get(store, pid)
        .await?
        .ok_or_else(|| DirError::NotFound(format!("parent organization '{}'", index::shown(pid))))?;
    if parent.id == org.id || parent.ancestors.contains(&org.id) {
        return Err(DirError::Cycle);
    }
    let ancestors = parent.lineage();
    if ancestors.len() >= MAX_DEPTH {
        return Err(DirError::Invalid(format!("the tree may be at most {MAX_DEPTH} levels deep")));
    }
    Ok(ancestors)
}

/// Creates an organization (its `ancestors` are computed from its parent).
pub async fn create(ctx: Ctx<'_>, mut org: Org) -> Result<Org, DirError> {
    org.check()?;
    org.ancestors = place(ctx.store, &org).await?;
    org.created_at = ctx.now;
    org.updated_at = ctx.now;
    if get(ctx.store, &org.id).await?.is_some() {
        return Err(DirError::Taken("an organization with this id exists".into()));
    }
    store::claim::begin(ctx.store, &org.id).await?;
    if let Err(e) = claim_all(ctx.store, &org, None).await {
        // Given up: what was claimed is free again at once.
        release_stale(ctx.store, &org, None).await?;
        store::claim::end(ctx.store, &org.id).await?;
        return Err(e);
    }
    let (adds, _) = index::diff(&BTreeSet::new(), &index::org_entries(&org));
    ctx.store.index_apply(&adds).await?;
    let change = Change {
        kind: ChangeKind::Created,
        resource: ResourceKind::Group,
        id: org.id.clone(),
        at: Some(ctx.now),
        before: Vec::new(),
        after: org.lineage(),
        subtree: false,
    };
    feed::append(ctx.store, &change).await?;
    store::put_json(ctx.store.as_ref(), &keys::dir_org(&org.id), &org, None).await?;
    store::claim::end(ctx.store, &org.id).await?;
    Ok(org)
}

/// Holds the tree lock for one move or delete (released when the guard's `release` runs;
/// a crashed holder's lock expires).
async fn lock(store: &DynStore, now: i64) -> Result<(), DirError> {
    if store.put_new(keys::DIR_TREE_LOCK, now.to_string().as_bytes(), Some(30)).await? {
        Ok(())
    } else {
        Err(DirError::Busy)
    }
}

/// Replaces an organization's attributes; a new parent moves it with its subtree and people.
pub async fn update(ctx: Ctx<'_>, old: &Org, mut new: Org) -> Result<Org, DirError> {
    new.id.clone_from(&old.id);
    new.created_at = old.created_at;
    new.updated_at = ctx.now;
    new.check()?;
    let moved = new.parent != old.parent;
    if !moved {
        new.ancestors.clone_from(&old.ancestors);
        return write(ctx, old, new, ChangeKind::Updated).await;
    }
    lock(ctx.store, ctx.now).await?;
    let result = move_subtree(ctx, old, new).await;
    ctx.store.delete(keys::DIR_TREE_LOCK).await?;
    result
}

async fn write(ctx: Ctx<'_>, old: &Org, new: Org, kind: ChangeKind) -> Result<Org, DirError> {
    claim_all(ctx.store, &new, Some(old)).await?;
    let (adds, removes) = index::diff(&index::org_entries(old), &index::org_entries(&new));
    ctx.store.index_apply(&adds).await?;
    let change = Change {
        kind,
        resource: ResourceKind::Group,
        id: new.id.clone(),
        at: Some(ctx.now),
        before: old.lineage(),
        after: new.lineage(),
        subtree: kind == ChangeKind::Moved,
    };
    feed::append(ctx.store, &change).await?;
    store::put_json(ctx.store.as_ref(), &keys::dir_org(&new.id), &new, None).await?;
    ctx.store.index_apply(&removes).await?;
    release_stale(ctx.store, old, Some(&new)).await?;
    Ok(new)
}

/// Every organization of the subtree under `root` (itself excluded), read from the tree index.
pub async fn descendants(store: &DynStore, root: &Org) -> Result<Vec<Org>, StoreError> {
    let (from, to) = index::subtree_range(&root.path());
    let mut ids = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .index_range(&index::key(index::ORGS_TREE), borrowed(&from), borrowed(&to), offset, 1000, false)
            .await?;
        let n = page.len();
        ids.extend(page.iter().map(|p| index::id_of_path(p).to_owned()).filter(|id| *id != root.id));
        if n < 1000 {
            break;
        }
        offset += n;
    }
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        // Entries left by an interrupted move may point elsewhere: keep the true descendants.
        out.extend(get_many(store, chunk).await?.into_iter().filter(|o| o.ancestors.contains(&root.id)));
    }
    Ok(out)
}

async fn move_subtree(ctx: Ctx<'_>, old: &Org, mut new: Org) -> Result<Org, DirError> {
    new.ancestors = place(ctx.store, &new).await?;
    let below = descendants(ctx.store, old).await?;
    let height = below.iter().map(|d| d.ancestors.len() - old.ancestors.len()).max().unwrap_or(0);
    if new.ancestors.len() + 1 + height > MAX_DEPTH {
        return Err(DirError::Invalid(format!("the tree may be at most {MAX_DEPTH} levels deep")));
    }
    // Descendants first (deepest last does not matter: each is rewritten from its own record).
    for d in &below {
        let Some(pos) = d.ancestors.iter().position(|a| *a == old.id) else { continue };
        let mut moved = d.clone();
        moved.ancestors = new.ancestors.iter().cloned().chain(d.ancestors.iter().skip(pos).cloned()).collect();
        reindex_org(ctx.store, d, &moved).await?;
    }
    reindex_members(ctx.store, &old.id, &old.path(), &new.path()).await?;
    write(ctx, old, new, ChangeKind::Moved).await
}

/// Rewrites one descendant of a moved organization: its record, its tree entry, its people's.
async fn reindex_org(store: &DynStore, old: &Org, new: &Org) -> Result<(), StoreError> {
    let (adds, removes) = index::diff(&index::org_entries(old), &index::org_entries(new));
    store.index_apply(&adds).await?;
    reindex_members(store, &old.id, &old.path(), &new.path()).await?;
    store::put_json(store.as_ref(), &keys::dir_org(&new.id), new, None).await?;
    store.index_apply(&removes).await
}

/// Moves the people-tree entries of the direct members of `org` from `old_path` to `new_path`.
async fn reindex_members(store: &DynStore, org: &str, old_path: &str, new_path: &str) -> Result<(), StoreError> {
    if old_path == new_path {
        return Ok(());
    }
    let members = member_ids(store, org).await?;
    let tree = index::key(index::PEOPLE_TREE);
    let adds: Vec<IndexChange> =
        members.iter().map(|u| IndexChange::add(tree.clone(), index::member(new_path, u))).collect();
    let removes: Vec<IndexChange> =
        members.iter().map(|u| IndexChange::remove(tree.clone(), index::member(old_path, u))).collect();
    for chunk in adds.chunks(1000) {
        store.index_apply(chunk).await?;
    }
    for chunk in removes.chunks(1000) {
        store.index_apply(chunk).await?;
    }
    Ok(())
}

/// The ids of the direct members of an organization.
pub async fn member_ids(store: &DynStore, org: &str) -> Result<Vec<String>, StoreError> {
    let key = keys::dir_org_members(org);
    let mut out = Vec::new();
    loop {
        let page = store
            .index_range(&key, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, out.len(), 1000, false)
            .await?;
        let n = page.len();
        out.extend(page);
        if n < 1000 {
            return Ok(out);
        }
    }
}

/// Deletes an organization. Without `cascade`, refused while it has departments or people; with
/// it, the departments go too (deepest first) and their people lose those memberships (the
/// people themselves stay).
pub async fn delete(ctx: Ctx<'_>, data: &DataKey, id: &str, cascade: bool) -> Result<(), DirError> {
    let org = get(ctx.store, id).await?.ok_or_else(|| DirError::NotFound("organization".into()))?;
    let below = descendants(ctx.store, &org).await?;
    if !cascade {
        if !below.is_empty() {
            return Err(DirError::NotEmpty("departments"));
        }
        if !live_members(ctx.store, &org.id).await?.is_empty() {
            return Err(DirError::NotEmpty("people"));
        }
    }
    lock(ctx.store, ctx.now).await?;
    let result = delete_all(ctx, data, org, below).await;
    ctx.store.delete(keys::DIR_TREE_LOCK).await?;
    result
}

/// Members whose user record still lists the organization.
async fn live_members(store: &DynStore, org: &str) -> Result<Vec<users::User>, StoreError> {
    let ids = member_ids(store, org).await?;
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        for u in super::people::users_many(store, chunk).await? {
            if u.orgs.iter().any(|o| o == org) {
                out.push(u);
            }
        }
    }
    Ok(out)
}

async fn delete_all(ctx: Ctx<'_>, data: &DataKey, org: Org, mut below: Vec<Org>) -> Result<(), DirError> {
    below.sort_by_key(|o| std::cmp::Reverse(o.ancestors.len()));
    below.push(org);
    let gone: HashMap<String, ()> = below.iter().map(|o| (o.id.clone(), ())).collect();
    for o in &below {
        for user in live_members(ctx.store, &o.id).await? {
            let mut changed = user.clone();
            changed.orgs.retain(|x| !gone.contains_key(x));
            changed.updated_at = ctx.now;
            users::update(ctx.store, data, &user, &mut changed).await?;
        }
        let change = Change {
            kind: ChangeKind::Deleted,
            resource: ResourceKind::Group,
            id: o.id.clone(),
            at: Some(ctx.now),
            before: o.lineage(),
            after: Vec::new(),
            subtree: false,
        };
        feed::append(ctx.store, &change).await?;
        ctx.store.delete(&keys::dir_org(&o.id)).await?;
        let (_, removes) = index::diff(&index::org_entries(o), &BTreeSet::new());
        ctx.store.index_apply(&removes).await?;
        ctx.store.delete(&keys::dir_org_members(&o.id)).await?;
        release_stale(ctx.store, o, None).await?;
    }
    Ok(())
}
