//! The directory's indexes: lexicographic sorted sets whose members are `value \0 id` (so an
//! `eq`, a prefix or a range of values is one range read) or a tree path (so a subtree is one
//! range). Which entries a record has is computed here, in one place, from the record.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::store::{IndexChange, keys};

/// All organizations, by id.
pub const ORGS: &str = "orgs";
/// Organizations by lower-cased name.
pub const ORGS_NAME: &str = "orgs:name";
/// Organizations by external id.
pub const ORGS_EXT: &str = "orgs:ext";
/// Organizations by lower-cased code.
pub const ORGS_CODE: &str = "orgs:code";
/// Organizations by tree path (a subtree is a range).
pub const ORGS_TREE: &str = "orgs:tree";
/// All people, by id.
pub const USERS: &str = "users";
/// People by lower-cased user name.
pub const USERS_NAME: &str = "users:name";
/// People by lower-cased display name.
pub const USERS_DISPLAY: &str = "users:display";
/// People by lower-cased e-mail.
pub const USERS_EMAIL: &str = "users:email";
/// People by external id.
pub const USERS_EXT: &str = "users:ext";
/// People by the tree path of each organization they belong to, then id.
pub const PEOPLE_TREE: &str = "people:tree";

/// An index entry: the index's store key and the member.
pub type Entry = (String, String);

/// `value \0 id`: the member of a value index.
pub fn member(value: &str, id: &str) -> String {
    format!("{value}\u{0}{id}")
}

/// The id at the end of a member (after the last NUL, or the whole member).
pub fn id_of(member: &str) -> &str {
    member.rsplit('\u{0}').next().unwrap_or(member)
}

/// The last id of a tree path.
pub fn id_of_path(path: &str) -> &str {
    path.rsplit('\u{1}').next().unwrap_or(path)
}

/// A value as indexed: control characters dropped (they separate members), lower-cased unless
/// the attribute is case-exact.
pub fn norm(value: &str, case_exact: bool) -> String {
    let clean: String = value.chars().filter(|c| !c.is_control()).collect();
    if case_exact { clean } else { clean.to_lowercase() }
}

/// A value safe to show in an error message (truncated, no control characters).
pub fn shown(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The range of members whose value is exactly `value`.
pub fn eq_range(value: &str) -> (Bound<String>, Bound<String>) {
    (Bound::Included(format!("{value}\u{0}")), Bound::Excluded(format!("{value}\u{1}")))
}

/// The range of members whose value starts with `prefix`.
pub fn prefix_range(prefix: &str) -> (Bound<String>, Bound<String>) {
    (Bound::Included(prefix.to_owned()), Bound::Excluded(format!("{prefix}{}", char::MAX)))
}

/// The range of paths in the subtree whose root has path `path` (itself included). Children's
/// paths continue with `\x01`; people entries continue with `\0`; both sort below `\x02`.
pub fn subtree_range(path: &str) -> (Bound<String>, Bound<String>) {
    (Bound::Included(path.to_owned()), Bound::Excluded(format!("{path}\u{2}")))
}

/// Borrowed bounds for a store call.
pub fn borrowed(b: &Bound<String>) -> Bound<&str> {
    match b {
        Bound::Included(s) => Bound::Included(s.as_str()),
        Bound::Excluded(s) => Bound::Excluded(s.as_str()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The store key of a named index.
pub fn key(name: &str) -> String {
    keys::dir_index(name)
}

/// The entries of an organization.
pub fn org_entries(org: &super::Org) -> BTreeSet<Entry> {
    let mut out = BTreeSet::from([
        (key(ORGS), org.id.clone()),
        (key(ORGS_NAME), member(&norm(&org.name, false), &org.id)),
        (key(ORGS_TREE), org.path()),
    ]);
    if let Some(e) = &org.external_id {
        out.insert((key(ORGS_EXT), member(&norm(e, true), &org.id)));
    }
    if let Some(c) = &org.code {
        out.insert((key(ORGS_CODE), member(&norm(c, false), &org.id)));
    }
    out
}

/// The entries of a person: `paths` are the tree paths of the organizations they belong to.
pub fn user_entries(user: &crate::users::User, paths: &[(String, String)]) -> BTreeSet<Entry> {
    let mut out = BTreeSet::from([
        (key(USERS), user.id.clone()),
        (key(USERS_NAME), member(&norm(&user.username, false), &user.id)),
        (key(USERS_DISPLAY), member(&norm(&user.name, false), &user.id)),
    ]);
    if let Some(e) = &user.email {
        out.insert((key(USERS_EMAIL), member(&norm(e, false), &user.id)));
    }
    for (org, path) in paths {
        out.insert((keys::dir_org_members(org), user.id.clone()));
        out.insert((key(PEOPLE_TREE), member(path, &user.id)));
    }
    out
}

/// The changes from `old` entries to `new` ones: additions (made before the record is written,
/// so an index never misses a record) and removals (made after).
pub fn diff(old: &BTreeSet<Entry>, new: &BTreeSet<Entry>) -> (Vec<IndexChange>, Vec<IndexChange>) {
    let adds = new.difference(old).map(|(k, m)| IndexChange::add(k.clone(), m.clone())).collect();
    let removes = old.difference(new).map(|(k, m)| IndexChange::remove(k.clone(), m.clone())).collect();
    (adds, removes)
}
