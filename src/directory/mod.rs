//! The directory (SH-6.2.4a): organizations as a tree (units and their departments, any depth)
//! and the people in them, who are the same [`crate::users::User`] records that log in. Every
//! list and filter reads a range of an index kept in the store, never the whole directory.

pub mod feed;
pub mod index;
pub mod org;
pub mod people;
pub mod reindex;
pub mod scope;
pub mod scope_change;
pub mod tree;
pub mod webhook;

use crate::store::{DynStore, StoreError};

pub use org::{Org, OrgKind, OrgStatus};
pub use people::{Membership, Person};
pub use scope::View;

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// No such organization or person (or not visible to the caller).
    #[error("{0} not found")]
    NotFound(String),
    /// A value is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// A unique value (external id, code, user name, phone, ID number) is taken.
    #[error("{0}")]
    Taken(String),
    /// Moving an organization under itself or one of its descendants.
    #[error("an organization cannot be moved under itself or one of its descendants")]
    Cycle,
    /// Deleting an organization that still has departments or people, without cascade.
    #[error("the organization still has {0}; move or delete them first, or delete with cascade")]
    NotEmpty(&'static str),
    /// Another change of the tree is in progress; retry.
    #[error("another change of the organization tree is in progress; retry")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::users::WriteError> for DirError {
    fn from(e: crate::users::WriteError) -> Self {
        match e {
            crate::users::WriteError::Store(s) => Self::Store(s),
            other => Self::Taken(other.to_string()),
        }
    }
}

/// What directory writes need: the store and the time.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// Now (unix seconds).
    pub now: i64,
}

/// Whether `id` is shaped like an id of ours (so it can be part of index members and keys).
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
