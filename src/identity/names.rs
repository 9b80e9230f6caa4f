//! The name search index of natural and legal persons (HL-5.1): each normalised name prefix of
//! [`MIN_PREFIX`] to [`MAX_PREFIX`] characters maps to the set of ids whose name starts with it,
//! so an admin search by name or name prefix reads one set instead of every record. Natural
//! persons' prefixes are keyed hashes (names are personal data); legal persons' plain SHA-256.
//! The sets are hints, added before a record is written and pruned after: the records decide.

use std::collections::BTreeSet;

use crate::crypto;
use crate::sealing::DataKey;
use crate::store::{DynStore, StoreError, keys};

/// The shortest prefix indexed (and searched): one character names a surname's millions.
pub const MIN_PREFIX: usize = 2;
/// The longest prefix indexed; longer queries read this prefix's set and filter.
pub const MAX_PREFIX: usize = 16;

/// Whose names an index holds.
#[derive(Clone, Copy)]
pub enum Realm<'a> {
    /// Natural persons; prefixes hashed with the data key.
    Users(&'a DataKey),
    /// Legal persons.
    Legal,
}

impl Realm<'_> {
    fn key(self, prefix: &str) -> String {
        match self {
            Self::Users(data) => keys::name_index("user", &data.derive(&format!("name:{prefix}"))),
            Self::Legal => keys::name_index("legal", &crypto::sha256_hex(format!("legal-name:{prefix}").as_bytes())),
        }
    }
}

/// A name as compared: whitespace removed, lower-cased (`Zhang San` and `zhangsan` are one).
pub fn normalise(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// Whether `name` matches the search `query` (a prefix, after normalising both).
pub fn matches(name: &str, query: &str) -> bool {
    let q = normalise(query);
    !q.is_empty() && normalise(name).starts_with(&q)
}

/// The indexed prefixes of a name: every one from [`MIN_PREFIX`] (or the whole name, when
/// shorter) to [`MAX_PREFIX`] characters.
fn prefixes(name: &str) -> BTreeSet<String> {
    let chars: Vec<char> = normalise(name).chars().collect();
    let top = chars.len().min(MAX_PREFIX);
    (MIN_PREFIX.min(top).max(1)..=top).map(|n| chars.iter().take(n).collect()).collect()
}

/// Adds `id` under every prefix of `name` (before the record is written).
pub async fn add(store: &DynStore, realm: Realm<'_>, id: &str, name: &str) -> Result<(), StoreError> {
    for p in prefixes(name) {
        store.set_add(&realm.key(&p), id, None).await?;
    }
    Ok(())
}

/// Removes `id` from the prefixes of `old` that `keep` (the new name) does not have (after
/// the record is written or deleted).
pub async fn remove(
    store: &DynStore,
    realm: Realm<'_>,
    id: &str,
    old: &str,
    keep: Option<&str>,
) -> Result<(), StoreError> {
    let kept = keep.map(prefixes).unwrap_or_default();
    for p in prefixes(old).difference(&kept) {
        store.set_remove(&realm.key(p), id).await?;
    }
    Ok(())
}

/// The ids that may have a name starting with `query`, sorted; `None` when the query is
/// shorter than [`MIN_PREFIX`] characters after normalising (too broad to serve from the index).
pub async fn candidates(store: &DynStore, realm: Realm<'_>, query: &str) -> Result<Option<Vec<String>>, StoreError> {
    let q: Vec<char> = normalise(query).chars().collect();
    if q.len() < MIN_PREFIX {
        return Ok(None);
    }
    let prefix: String = q.iter().take(MAX_PREFIX).collect();
    let mut ids = store.set_members(&realm.key(&prefix)).await?;
    ids.sort();
    ids.dedup();
    Ok(Some(ids))
}

/// Adds every natural and legal person to the name index (records written before the index
/// existed); idempotent, safe while other writers run. Returns how many of each it read.
pub async fn rebuild(store: &DynStore, data: &DataKey) -> Result<(usize, usize), StoreError> {
    let users = crate::users::list(store).await?;
    for u in &users {
        add(store, Realm::Users(data), &u.id, &u.name).await?;
    }
    let legal = super::legal::list(store).await?;
    for lp in &legal {
        add(store, Realm::Legal, &lp.id, &lp.name).await?;
    }
    Ok((users.len(), legal.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_matching() {
        assert_eq!(prefixes("张三丰").into_iter().collect::<Vec<_>>(), vec!["张三", "张三丰"]);
        assert_eq!(prefixes("王").into_iter().collect::<Vec<_>>(), vec!["王"]);
        assert_eq!(prefixes("").len(), 0);
        assert_eq!(prefixes(&"长".repeat(40)).len(), MAX_PREFIX - MIN_PREFIX + 1);
        assert_eq!(prefixes("Zhang San").into_iter().next().as_deref(), Some("zh"));
        assert!(matches("Zhang San", "zhangs"));
        assert!(matches("北京某某科技有限公司", "北京某某"));
        assert!(!matches("北京某某科技有限公司", "某某"));
        assert!(!matches("张三", " "));
    }
}
