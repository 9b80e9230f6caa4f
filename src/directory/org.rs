//! An organization of the directory: a unit (单位) or one of its departments, placed in the tree
//! by its parent, with a stable id, a code (a unit's USCC or an internal code), a kind, an order
//! among its siblings and a status.

use serde::{Deserialize, Serialize};

use super::{DirError, valid_id};

/// Deepest tree allowed (a root is depth 1).
pub const MAX_DEPTH: usize = 32;
/// Longest name, in characters.
pub const MAX_NAME: usize = 200;
/// Longest code or external id, in bytes.
pub const MAX_CODE: usize = 128;

/// What an organization is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// A unit (单位): an organ, an institution, a company.
    #[default]
    Unit,
    /// A department (部门) of a unit.
    Department,
    /// A working group or team.
    Group,
    /// Anything else.
    Other,
}

impl OrgKind {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unit => "unit",
            Self::Department => "department",
            Self::Group => "group",
            Self::Other => "other",
        }
    }
    /// Parses a wire value.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Unit, Self::Department, Self::Group, Self::Other].into_iter().find(|k| k.as_str() == s)
    }
}

/// Whether an organization is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrgStatus {
    /// In use.
    #[default]
    Active,
    /// Kept for the record, not in use.
    Inactive,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    /// Stable id (never reused).
    pub id: String,
    /// The id in the system it came from (imports are idempotent by it); unique when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Name.
    pub name: String,
    /// Code: a unit's unified social credit code or an internal code; unique when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Kind.
    #[serde(default)]
    pub kind: OrgKind,
    /// Parent organization; `None` for a root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The ancestors' ids, root first (maintained by the tree operations, never set by hand).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<String>,
    /// Order among siblings (smaller first).
    #[serde(default)]
    pub order: i64,
    /// Status.
    #[serde(default)]
    pub status: OrgStatus,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl Org {
    /// A new active root organization.
    pub fn new(name: String, now: i64) -> Self {
        Self {
            id: crate::crypto::random_token(12),
            external_id: None,
            name,
            code: None,
            kind: OrgKind::Unit,
            parent: None,
            ancestors: Vec::new(),
            order: 0,
            status: OrgStatus::Active,
            created_at: now,
            updated_at: now,
        }
    }

    /// The tree path: ancestors then self, each preceded by `\x01` (lower than any id byte, so a
    /// subtree is one lexicographic range, see [`super::index::subtree_range`]).
    pub fn path(&self) -> String {
        self.ancestors.iter().chain([&self.id]).fold(String::new(), |mut p, id| {
            p.push('\u{1}');
            p.push_str(id);
            p
        })
    }

    /// Ancestors and self.
    pub fn lineage(&self) -> Vec<String> {
        self.ancestors.iter().chain([&self.id]).cloned().collect()
    }

    /// Checks the values a caller may set.
    pub fn check(&self) -> Result<(), DirError> {
        if !valid_id(&self.id) {
            return Err(DirError::Invalid("id must be 1-64 letters, digits, '-' or '_'".into()));
        }
        let n = self.name.trim().chars().count();
        if n == 0 || self.name.chars().count() > MAX_NAME || self.name.chars().any(char::is_control) {
            return Err(DirError::Invalid(format!("name must be 1-{MAX_NAME} characters without control characters")));
        }
        for (field, v) in [("code", &self.code), ("externalId", &self.external_id)] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > MAX_CODE || v.chars().any(char::is_control))
            {
                return Err(DirError::Invalid(format!(
                    "{field} must be 1-{MAX_CODE} bytes without control characters"
                )));
            }
        }
        if let Some(p) = &self.parent
            && !valid_id(p)
        {
            return Err(DirError::NotFound(format!("parent organization '{}'", super::index::shown(p))));
        }
        if !(-1_000_000_000..=1_000_000_000).contains(&self.order) {
            return Err(DirError::Invalid("order must be within +-1000000000".into()));
        }
        Ok(())
    }
}
