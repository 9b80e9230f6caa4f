//! SCIM errors (RFC 7644 s3.12): an HTTP status, the `scimType` when one applies, a detail.
//! Mapped to a response in one place (`http/scim`'s error mapping).

use crate::directory::DirError;
use crate::store::StoreError;

/// RFC 7644 s3.12 Table 9: the `scimType` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter syntax was invalid or the attribute and comparison combination unsupported.
    InvalidFilter,
    /// The filter yields many more results than the server is willing to process.
    TooMany,
    /// One or more unique attribute values are in use.
    Uniqueness,
    /// The modification is incompatible with an attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the schema.
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed.
    InvalidPath,
    /// The path did not yield an attribute or value that could be operated on.
    NoTarget,
    /// A required value was missing or the value was not compatible.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI.
    Sensitive,
}

impl ScimType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }
}

/// A SCIM error.
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    /// A client error with its status (400, 401, 403, 404, 409, 412, 413, 501...) and scimType.
    #[error("{detail}")]
    Client {
        /// HTTP status.
        status: u16,
        /// scimType, when one applies.
        scim_type: Option<ScimType>,
        /// Human-readable detail.
        detail: String,
    },
    /// No usable bearer token (401) or a token without the needed scope (403), with the RFC 6750
    /// s3.1 error code for `WWW-Authenticate`.
    #[error("{detail}")]
    Auth {
        /// 401 or 403.
        status: u16,
        /// `invalid_token` / `insufficient_scope`, or none (no token at all).
        bearer_error: Option<&'static str>,
        /// Human-readable detail.
        detail: String,
    },
    /// The caller's rate limit is reached (429, `Retry-After`).
    #[error("too many requests")]
    Limited(u64),
    /// A change-feed cursor older than the retention: resync in full, then continue at `cursor`
    /// (410).
    #[error("the cursor is older than the change feed keeps; resync in full, then continue from the cursor given")]
    Resync {
        /// Where to continue after the resync.
        cursor: String,
    },
    /// The store failed (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ScimError {
    /// A 400 with a scimType.
    pub fn bad(t: ScimType, detail: impl Into<String>) -> Self {
        Self::Client { status: 400, scim_type: Some(t), detail: detail.into() }
    }
    /// A status without a scimType.
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        Self::Client { status, scim_type: None, detail: detail.into() }
    }
    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::status(404, format!("{what} not found"))
    }
    /// 409 uniqueness.
    pub fn taken(detail: impl Into<String>) -> Self {
        Self::Client { status: 409, scim_type: Some(ScimType::Uniqueness), detail: detail.into() }
    }
}

impl From<DirError> for ScimError {
    fn from(e: DirError) -> Self {
        match e {
            DirError::NotFound(w) => Self::bad(ScimType::InvalidValue, format!("{w} not found")),
            DirError::Invalid(d) => Self::bad(ScimType::InvalidValue, d),
            DirError::Taken(d) => Self::taken(d),
            e @ DirError::Cycle => Self::bad(ScimType::InvalidValue, e.to_string()),
            e @ DirError::NotEmpty(_) => Self::status(409, e.to_string()),
            e @ DirError::Busy => Self::status(409, e.to_string()),
            DirError::Store(s) => Self::Store(s),
        }
    }
}
