//! What the admin API and CLI share when they keep records of persons (HL-5.1): the typed
//! errors of every record change (mapped to RFC 7807 problems in one place), field limits, and
//! paging over an id set that loads only the page asked for.

use serde::de::DeserializeOwned;

use super::idnum::IdError;
use super::phone::PhoneError;
use super::uscc::UsccError;
use crate::store::{self, DynStore, StoreError};
use crate::users::WriteError;

/// The longest personal or organization name, in characters.
pub const MAX_NAME: usize = 128;
/// The default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page size.
pub const MAX_LIMIT: usize = 500;

/// Why a record could not be read or changed. Messages never repeat an ID or phone number.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A field is malformed, missing or too long: `(field, what is wrong)`.
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// The ID number fails its document type's checks.
    #[error("id_number: {0}")]
    IdNumber(#[from] IdError),
    /// The unified social credit code fails its checks.
    #[error("uscc: {0}")]
    Uscc(#[from] UsccError),
    /// The phone number is no mainland mobile.
    #[error("phone_number: {0}")]
    Phone(#[from] PhoneError),
    /// What was named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the record's state (a duplicate, a missing prerequisite).
    #[error("{0}")]
    Conflict(String),
    /// Other writers kept changing the record; retry.
    #[error("the record was changed concurrently; retry")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WriteError> for RecordError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Store(s) => Self::Store(s),
            other => Self::Conflict(other.to_string()),
        }
    }
}

/// Checks a required name-like text field: trimmed, 1 to [`MAX_NAME`] characters, no control
/// characters. Returns it trimmed.
pub fn text(field: &'static str, value: &str) -> Result<String, RecordError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(RecordError::Invalid(field, "must not be empty".into()));
    }
    if v.chars().count() > MAX_NAME || v.len() > MAX_NAME * 4 {
        return Err(RecordError::Invalid(field, format!("at most {MAX_NAME} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(RecordError::Invalid(field, "must not contain control characters".into()));
    }
    Ok(v.to_owned())
}

/// Checks an e-mail address: at most 254 characters (RFC 5321 s4.5.3.1.3), one `@`, no
/// whitespace or control characters; empty clears it (`None`).
pub fn email(value: &str) -> Result<Option<String>, RecordError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let ok = v.len() <= 254
        && v.matches('@').count() == 1
        && !v.starts_with('@')
        && !v.ends_with('@')
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(RecordError::Invalid("email", "must be an address of at most 254 characters".into()));
    }
    Ok(Some(v.to_owned()))
}

/// Checks an id given by the caller (a user or legal person id, a cursor).
pub fn id(field: &'static str, value: &str) -> Result<(), RecordError> {
    if value.is_empty() || value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RecordError::Invalid(field, "must be 1-128 printable ASCII characters".into()));
    }
    Ok(())
}

/// Which page: up to `limit` items after the id `after` (the previous page's cursor).
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Page size, 1 to [`MAX_LIMIT`].
    pub limit: usize,
    /// Continue after this id.
    pub after: Option<String>,
}

impl Page {
    /// A checked page: `limit` defaults to [`DEFAULT_LIMIT`].
    pub fn new(limit: Option<usize>, after: Option<String>) -> Result<Self, RecordError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(RecordError::Invalid("limit", format!("must be 1-{MAX_LIMIT}")));
        }
        if let Some(a) = &after {
            id("cursor", a)?;
        }
        Ok(Self { limit, after })
    }
}

/// One page of results and the cursor of the next (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct Paged<T> {
    /// The items, by id.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
    pub next: Option<String>,
}

/// Pages through the records of `ids` (in id order), reading only as many as the page needs,
/// keeping those `keep` accepts (an index is a hint: records that left it or never matched are
/// skipped).
pub async fn scan<T: DeserializeOwned>(
    store: &DynStore,
    mut ids: Vec<String>,
    key: fn(&str) -> String,
    page: &Page,
    keep: impl Fn(&T) -> bool,
) -> Result<Paged<T>, StoreError> {
    ids.sort();
    ids.dedup();
    let start = page.after.as_deref().map_or(0, |a| ids.partition_point(|id| id.as_str() <= a));
    let rest = ids.get(start..).unwrap_or_default();
    let mut items = Vec::new();
    let mut last: Option<&String> = None;
    for chunk in rest.chunks(page.limit.max(1)) {
        let keys: Vec<String> = chunk.iter().map(|i| key(i)).collect();
        let values = store.get_many(&keys).await?;
        for ((id, k), v) in chunk.iter().zip(&keys).zip(values) {
            if items.len() == page.limit {
                return Ok(Paged { items, next: last.cloned() });
            }
            last = Some(id);
            if let Some(bytes) = v {
                let t: T = store::decode(k, &bytes)?;
                if keep(&t) {
                    items.push(t);
                }
            }
        }
    }
    Ok(Paged { items, next: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields() {
        assert_eq!(text("name", "  张三 ").unwrap(), "张三");
        assert!(matches!(text("name", " "), Err(RecordError::Invalid("name", _))));
        assert!(text("name", &"长".repeat(MAX_NAME)).is_ok());
        assert!(text("name", &"长".repeat(MAX_NAME + 1)).is_err());
        assert!(text("name", "a\u{0}b").is_err());
    }

    #[test]
    fn pages() {
        assert_eq!(Page::new(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert!(Page::new(Some(0), None).is_err());
        assert!(Page::new(Some(MAX_LIMIT + 1), None).is_err());
        assert!(Page::new(Some(1), Some("a b".into())).is_err());
    }
}
