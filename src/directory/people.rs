//! People in the directory: the [`User`] records that log in, with what the directory adds
//! beside them in a [`Person`] record (each membership's title and order, the external id, the
//! SCIM attributes that have no place on the user record). `User::orgs` stays the one truth of
//! who belongs where; [`on_user_write`] keeps the indexes and the change feed in step with every
//! write of a user, whoever makes it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::feed::{self, Change, ChangeKind, ResourceKind};
use super::index;
use crate::store::{self, DynStore, StoreError, keys};
use crate::users::User;

/// A person's position in one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The organization's id.
    pub org: String,
    /// Position or title there (职务).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// Order among the organization's people (smaller first).
    #[serde(default)]
    pub order: i64,
}

/// What the directory keeps about a person beside the user record.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Person {
    /// The user's id.
    pub id: String,
    /// Id in the system the person came from; unique when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Titles and order per organization (for organizations in `User::orgs`; others ignored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memberships: Vec<Membership>,
    /// Other SCIM attributes, as given (phone numbers sealed).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attrs: Map<String, Value>,
    /// Last change of this record.
    #[serde(default)]
    pub updated_at: i64,
}

impl Person {
    /// The membership details for `org` (defaults when none were recorded).
    pub fn membership(&self, org: &str) -> Membership {
        self.memberships.iter().find(|m| m.org == org).cloned().unwrap_or_else(|| Membership {
            org: org.to_owned(),
            title: String::new(),
            order: 0,
        })
    }
}

/// Reads a person's directory record (an empty one when none was written).
pub async fn person(store: &DynStore, id: &str) -> Result<Person, StoreError> {
    let p: Option<Person> = store::get_json(store.as_ref(), &keys::dir_person(id)).await?;
    Ok(p.unwrap_or_else(|| Person { id: id.to_owned(), ..Person::default() }))
}

/// Reads several users and their directory records, in the order given, skipping missing users.
pub async fn many(store: &DynStore, ids: &[String]) -> Result<Vec<(User, Person)>, StoreError> {
    let mut keys: Vec<String> = ids.iter().map(|id| keys::user(id)).collect();
    keys.extend(ids.iter().map(|id| keys::dir_person(id)));
    let values = store.get_many(&keys).await?;
    let (users, persons) = values.split_at(ids.len().min(values.len()));
    let mut out = Vec::with_capacity(ids.len());
    for ((id, u), p) in ids.iter().zip(users).zip(persons) {
        let Some(bytes) = u else { continue };
        let user: User = store::decode(&keys::user(id), bytes)?;
        let person = match p {
            Some(b) => store::decode(&keys::dir_person(id), b)?,
            None => Person { id: id.clone(), ..Person::default() },
        };
        out.push((user, person));
    }
    Ok(out)
}

/// Reads several users, in the order given, skipping missing ones.
pub async fn users_many(store: &DynStore, ids: &[String]) -> Result<Vec<User>, StoreError> {
    let keys: Vec<String> = ids.iter().map(|id| keys::user(id)).collect();
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

/// Writes a person's directory record.
pub async fn put_person(store: &DynStore, p: &Person) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::dir_person(&p.id), p, None).await
}

/// Keeps the directory in step with a write of a user: called by `users::create`/`update`
/// before the record is written (`after` set) and by `users::delete` after it is gone
/// (`after` `None`). Adds the new index entries, appends the change, and drops the old entries;
/// a crash in between leaves extra entries (checked against the records when read), never
/// missing ones.
pub async fn on_user_write(store: &DynStore, before: Option<&User>, after: Option<&User>) -> Result<(), StoreError> {
    let orgs_of = |u: Option<&User>| u.map(|u| u.orgs.clone()).unwrap_or_default();
    let all: BTreeSet<String> = orgs_of(before).into_iter().chain(orgs_of(after)).collect();
    let all: Vec<String> = all.into_iter().collect();
    let records = super::tree::get_many(store, &all).await?;
    let paths = |u: Option<&User>| -> Vec<(String, String)> {
        let Some(u) = u else { return Vec::new() };
        records.iter().filter(|o| u.orgs.contains(&o.id)).map(|o| (o.id.clone(), o.path())).collect()
    };
    let entries = |u: Option<&User>| u.map(|u| index::user_entries(u, &paths(Some(u)))).unwrap_or_default();
    let (adds, removes) = index::diff(&entries(before), &entries(after));
    store.index_apply(&adds).await?;
    let lineage =
        |u: Option<&User>| feed::lineages(records.iter().filter(|o| u.is_some_and(|u| u.orgs.contains(&o.id))));
    let kind = match (before, after) {
        (None, _) => ChangeKind::Created,
        (_, None) => ChangeKind::Deleted,
        (Some(b), Some(a)) if b.orgs != a.orgs => ChangeKind::Moved,
        _ => ChangeKind::Updated,
    };
    if let Some(id) = after.or(before).map(|u| u.id.clone()) {
        let change = Change {
            kind,
            resource: ResourceKind::User,
            id,
            at: after.map(|u| u.updated_at),
            before: lineage(before),
            after: lineage(after),
            subtree: false,
        };
        feed::append(store, &change).await?;
    }
    if after.is_none() {
        store.index_apply(&removes).await?;
        if let Some(b) = before {
            let p = person(store, &b.id).await?;
            if let Some(e) = &p.external_id {
                let key = keys::dir_claim("user-ext", e);
                super::tree::release(store, &key, &b.id).await?;
                store
                    .index_apply(&[crate::store::IndexChange::remove(
                        index::key(index::USERS_EXT),
                        index::member(e, &b.id),
                    )])
                    .await?;
            }
            store.delete(&keys::dir_person(&b.id)).await?;
        }
    }
    Ok(())
}

/// Drops the index entries a write left behind once the new record is in place (the second half
/// of [`on_user_write`] for creates and updates).
pub async fn after_user_write(store: &DynStore, before: Option<&User>, after: &User) -> Result<(), StoreError> {
    let Some(before) = before else { return Ok(()) };
    let all: Vec<String> = before.orgs.iter().chain(after.orgs.iter()).cloned().collect();
    let records = super::tree::get_many(store, &all).await?;
    let paths = |u: &User| -> Vec<(String, String)> {
        records.iter().filter(|o| u.orgs.contains(&o.id)).map(|o| (o.id.clone(), o.path())).collect()
    };
    let (_, removes) =
        index::diff(&index::user_entries(before, &paths(before)), &index::user_entries(after, &paths(after)));
    store.index_apply(&removes).await
}
