//! Listing and filtering (RFC 7644 s3.4.2): the filter picks its candidates from an index
//! (`eq`, `sw` and ranges on the indexed attributes, `and` of which one side is indexed, `or`
//! of indexed sides, membership), or else from the caller's visible scope; only those
//! candidates are read and matched. A filter no index narrows, over more candidates than
//! `scan_limit`, is refused with `tooMany` rather than reading the whole directory.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::error::{ScimError, ScimType};
use super::filter::{AttrPath, Filter, Op, Value};
use super::schema::{self, Resource};
use crate::directory::index::{self, borrowed};
use crate::directory::{View, tree};
use crate::store::{DynStore, StoreError, keys};

/// Where candidate ids come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A range of a value index (`value \0 id` members) or of an id index (`id` members).
    Range {
        /// Index store key.
        key: String,
        /// Lower bound.
        from: Bound<String>,
        /// Upper bound.
        to: Bound<String>,
        /// How members map to ids.
        decode: Decode,
    },
    /// The organizations of one person.
    OrgsOf(String),
    /// The children of one organization (read from its subtree's range).
    Below(String),
}

/// How an index member maps to an id.
#[derive(Debug, Clone, Copy)]
pub enum Decode {
    /// The member is the id.
    Id,
    /// `value \0 id`.
    Value,
    /// A tree path.
    Path,
}

fn is(p: &AttrPath, uri: Option<&str>, name: &str, sub: Option<&str>) -> bool {
    let uri_ok = match (&p.uri, uri) {
        (None, None) => true,
        (Some(u), None) => u.eq_ignore_ascii_case(schema::USER) || u.eq_ignore_ascii_case(schema::GROUP),
        (Some(u), Some(w)) => u.eq_ignore_ascii_case(w),
        (None, Some(_)) => false,
    };
    uri_ok && p.name == name && p.sub.as_deref() == sub
}

fn range(key: String, op: Op, v: &str, decode: Decode) -> Option<Source> {
    let (from, to) = match (op, decode) {
        (Op::Eq, Decode::Id) => (Bound::Included(v.to_owned()), Bound::Included(v.to_owned())),
        (Op::Eq, _) => index::eq_range(v),
        (Op::Sw, _) => index::prefix_range(v),
        (Op::Gt | Op::Ge, _) => (Bound::Included(v.to_owned()), Bound::Unbounded),
        (Op::Lt | Op::Le, _) => (Bound::Unbounded, Bound::Excluded(format!("{v}\u{1}"))),
        _ => return None,
    };
    Some(Source::Range { key, from, to, decode })
}

/// The index sources that yield a superset of what `f` matches; `None` when no index helps.
pub fn plan(kind: Resource, f: &Filter) -> Option<Vec<Source>> {
    match f {
        Filter::And(a, b) => plan(kind, a).or_else(|| plan(kind, b)),
        Filter::Or(a, b) => {
            let mut x = plan(kind, a)?;
            x.extend(plan(kind, b)?);
            Some(x)
        }
        Filter::ValuePath(p, inner) => match inner.as_ref() {
            Filter::Compare(ip, op, v) if ip.sub.is_none() && ip.uri.is_none() => {
                let flat = AttrPath { uri: p.uri.clone(), name: p.name.clone(), sub: Some(ip.name.clone()) };
                plan(kind, &Filter::Compare(flat, *op, v.clone()))
            }
            Filter::And(a, b) => plan(kind, &Filter::ValuePath(p.clone(), a.clone()))
                .or_else(|| plan(kind, &Filter::ValuePath(p.clone(), b.clone()))),
            _ => None,
        },
        Filter::Compare(p, op, Value::Str(v)) => {
            let k = index::key;
            match kind {
                Resource::User => if is(p, None, "id", None) {
                    range(k(index::USERS), *op, v, Decode::Id)
                } else if is(p, None, "username", None) {
                    range(k(index::USERS_NAME), *op, &index::norm(v, false), Decode::Value)
                } else if is(p, None, "displayname", None) {
                    range(k(index::USERS_DISPLAY), *op, &index::norm(v, false), Decode::Value)
                } else if is(p, None, "externalid", None) {
                    range(k(index::USERS_EXT), *op, &index::norm(v, true), Decode::Value)
                } else if *op == Op::Eq
                    && (is(p, None, "groups", None)
                        || is(p, None, "groups", Some("value"))
                        || is(p, Some(schema::TZ_USER), "memberships", Some("value"))
                        || is(p, Some(schema::TZ_USER), "memberships", None))
                {
                    Some(Source::Range {
                        key: keys::dir_org_members(v),
                        from: Bound::Unbounded,
                        to: Bound::Unbounded,
                        decode: Decode::Id,
                    })
                } else {
                    None
                }
                .map(|s| vec![s]),
                Resource::Group => if is(p, None, "id", None) {
                    range(k(index::ORGS), *op, v, Decode::Id)
                } else if is(p, None, "displayname", None) {
                    range(k(index::ORGS_NAME), *op, &index::norm(v, false), Decode::Value)
                } else if is(p, None, "externalid", None) {
                    range(k(index::ORGS_EXT), *op, &index::norm(v, true), Decode::Value)
                } else if is(p, Some(schema::TZ_GROUP), "code", None) {
                    range(k(index::ORGS_CODE), *op, &index::norm(v, false), Decode::Value)
                } else if *op == Op::Eq && (is(p, None, "members", None) || is(p, None, "members", Some("value"))) {
                    Some(Source::OrgsOf(v.clone()))
                } else if *op == Op::Eq && is(p, Some(schema::TZ_GROUP), "parent", None) {
                    Some(Source::Below(v.clone()))
                } else {
                    None
                }
                .map(|s| vec![s]),
            }
        }
        _ => None,
    }
}

fn decode(member: &str, d: Decode) -> String {
    match d {
        Decode::Id => member.to_owned(),
        Decode::Value => index::id_of(member).to_owned(),
        Decode::Path => index::id_of_path(member).to_owned(),
    }
}

/// The candidate ids of `sources`, at most `limit` (more: `tooMany`), sorted, without repeats.
pub async fn resolve(store: &DynStore, sources: &[Source], limit: usize) -> Result<Vec<String>, ScimError> {
    let mut ids = BTreeSet::new();
    for s in sources {
        match s {
            Source::Range { key, from, to, decode: d } => {
                let page = store.index_range(key, borrowed(from), borrowed(to), 0, limit + 1, false).await?;
                ids.extend(page.iter().map(|m| decode(m, *d)));
            }
            Source::OrgsOf(user) => {
                if let Some(u) = crate::users::get(store, user).await? {
                    ids.extend(u.orgs);
                }
            }
            Source::Below(org) => {
                if let Some(o) = tree::get(store, org).await? {
                    let (from, to) = index::subtree_range(&o.path());
                    let page = store
                        .index_range(&index::key(index::ORGS_TREE), borrowed(&from), borrowed(&to), 0, limit + 2, false)
                        .await?;
                    if page.len() > limit + 1 {
                        // A subtree larger than the scan limit: its children may lie beyond.
                        return Err(too_many(limit));
                    }
                    // Children only: one segment below (`path \x01 id`); deeper ones are not read
                    // as records.
                    let root = o.path();
                    ids.extend(
                        page.iter()
                            .filter(|m| m.get(root.len()..).is_some_and(|rest| rest.matches('\u{1}').count() == 1))
                            .map(|m| decode(m, Decode::Path)),
                    );
                }
            }
        }
        if ids.len() > limit {
            return Err(too_many(limit));
        }
    }
    Ok(ids.into_iter().collect())
}

/// The `tooMany` error.
pub fn too_many(limit: usize) -> ScimError {
    ScimError::bad(
        ScimType::TooMany,
        format!(
            "the filter selects more than {limit} candidates; narrow it with an indexed attribute (id, userName, displayName, externalId, membership)"
        ),
    )
}

/// Every id the view sees, at most `limit` (more: `tooMany`), sorted.
pub async fn in_view(store: &DynStore, kind: Resource, view: &View, limit: usize) -> Result<Vec<String>, ScimError> {
    let roots = match view.roots(store).await? {
        None => {
            let key = index::key(if kind == Resource::User { index::USERS } else { index::ORGS });
            let page = store.index_range(&key, Bound::Unbounded, Bound::Unbounded, 0, limit + 1, false).await?;
            if page.len() > limit {
                return Err(too_many(limit));
            }
            return Ok(page);
        }
        Some(r) => r,
    };
    let mut ids = BTreeSet::new();
    for root in roots {
        let (from, to) = index::subtree_range(&root.path());
        let key = index::key(if kind == Resource::User { index::PEOPLE_TREE } else { index::ORGS_TREE });
        let page =
            store.index_range(&key, borrowed(&from), borrowed(&to), 0, limit.saturating_mul(2) + 1, false).await?;
        ids.extend(page.iter().map(|m| {
            if kind == Resource::User { index::id_of(m).to_owned() } else { index::id_of_path(m).to_owned() }
        }));
        if ids.len() > limit {
            return Err(too_many(limit));
        }
    }
    Ok(ids.into_iter().collect())
}

/// A page straight from a sorted index (no filter, the whole directory): the ids and the total.
pub async fn page_of_index(
    store: &DynStore,
    key: &str,
    decode_value: bool,
    offset: usize,
    count: usize,
    desc: bool,
) -> Result<(Vec<String>, u64), StoreError> {
    let total = store.index_count(key, Bound::Unbounded, Bound::Unbounded).await?;
    let page = store.index_range(key, Bound::Unbounded, Bound::Unbounded, offset, count, desc).await?;
    let ids = page.iter().map(|m| if decode_value { index::id_of(m).to_owned() } else { m.clone() }).collect();
    Ok((ids, total))
}
