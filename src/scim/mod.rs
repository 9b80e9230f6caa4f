//! SCIM 2.0 (RFC 7643, RFC 7644) over the directory: people as `User`s (core, enterprise
//! extension, tongzheng's directory extension), organizations as `Group`s (with the tree
//! extension). Domain code only: the HTTP side is `http::scim`.

pub mod bulk;
pub mod changes;
pub mod error;
pub mod eval;
pub mod filter;
pub mod ops;
pub mod patch;
pub mod project;
pub mod query;
pub mod resource;
pub mod schema;

pub use error::{ScimError, ScimType};
pub use ops::{Limits, Query, Service, Written};
