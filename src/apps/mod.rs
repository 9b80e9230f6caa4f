//! Applications: the business systems that use the platform, each owning one or more OAuth
//! clients, and their life from application to offline (AY-8, SH-6.2, SH-7, JM-A.2). The
//! state machine is in [`state`], the records in [`model`], the operations admins perform in
//! [`ops`], who may log in to an application in [`gate`], and the offline archive in
//! [`archive`].

pub mod archive;
pub mod gate;
pub mod model;
pub mod ops;
pub mod state;

pub use model::*;
pub use state::State;

use crate::calendar::Calendar;
use crate::config::AppsConfig;
use crate::keys::Keys;
use crate::scopes::ScopeDef;
use crate::store::{self, DynStore, StoreError, keys};

/// Why an application operation failed. Mapped to RFC 7807 problems in `error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such application (or client of it).
    #[error("{0}")]
    NotFound(String),
    /// The input is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A review approved without the evidence its category needs (SH-6.2.3).
    #[error("{0}")]
    MissingEvidence(String),
    /// The state machine has no such move.
    #[error("an application cannot go from {from} to {to}", from = from.as_str(), to = to.as_str())]
    IllegalTransition {
        /// Current state.
        from: State,
        /// Requested state.
        to: State,
    },
    /// The move exists but a rule forbids it now (a second extension, a failed re-test).
    #[error("{0}")]
    Conflict(String),
    /// The change touches the auditor role's scopes (AY-8.5.2.1 separation of duties).
    #[error(transparent)]
    Reserved(#[from] crate::clients::Reserved),
    /// Another admin request is changing the same application.
    #[error("another change to this application is in progress; retry")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log could not be read (the call records of an archive).
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// Everything an operation needs besides its input. Time is passed in.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// Keys (the data key seals contact phones).
    pub keys: &'a Keys,
    /// Working days.
    pub calendar: &'a Calendar,
    /// `[apps]`.
    pub config: &'a AppsConfig,
    /// The scope catalogue's built-in entries.
    pub builtin_scopes: &'a [ScopeDef],
    /// The auditor role's scope (`security.audit_scope`), which the admin API never grants.
    pub audit_scope: &'a str,
    /// Dev mode (http redirect URIs on loopback).
    pub dev: bool,
    /// Where the server's own requests may go (a client's back-channel logout URI).
    pub outbound: &'a crate::outbound::Policy,
    /// Current time.
    pub now: i64,
    /// Who is acting (`client:<id>`, plus the person when the request names one).
    pub actor: &'a str,
    /// The request id, recorded on transitions.
    pub request_id: Option<&'a str>,
}

/// Reads an application.
pub async fn get(store: &DynStore, id: &str) -> Result<Option<Application>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    store::get_json(store.as_ref(), &keys::app(id)).await
}

/// Reads an application or fails with `NotFound`.
pub async fn must_get(store: &DynStore, id: &str) -> Result<Application, AppError> {
    get(store, id).await?.ok_or_else(|| AppError::NotFound(format!("no application '{id}'")))
}

/// Writes an application.
pub async fn put(store: &DynStore, app: &Application) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::app(&app.id), app, None).await
}

/// Lists applications, by id, optionally only those in `state`.
pub async fn list(store: &DynStore, state: Option<State>) -> Result<Vec<Application>, StoreError> {
    let mut ids = store.set_members(keys::APP_INDEX).await?;
    ids.sort();
    let keys: Vec<String> = ids.iter().map(|id| keys::app(id)).collect();
    let mut out = Vec::with_capacity(keys.len());
    for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            let app: Application = store::decode(k, &bytes)?;
            if state.is_none_or(|s| s == app.state) {
                out.push(app);
            }
        }
    }
    Ok(out)
}

/// The review records of an application, oldest first.
pub async fn reviews(store: &DynStore, id: &str) -> Result<Vec<Review>, StoreError> {
    Ok(store::get_json(store.as_ref(), &keys::app_reviews(id)).await?.unwrap_or_default())
}

/// The transitions of an application, oldest first.
pub async fn transitions(store: &DynStore, id: &str) -> Result<Vec<Transition>, StoreError> {
    Ok(store::get_json(store.as_ref(), &keys::app_transitions(id)).await?.unwrap_or_default())
}

/// Application ids: 3-64 of letters, digits, '-', '_', '.'.
pub fn valid_id(id: &str) -> bool {
    (3..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// How long the per-application change lock lives if its holder dies, seconds.
const LOCK_TTL: u64 = 30;

/// Holds the change lock of one application for the duration of an operation.
pub(crate) struct Lock<'a> {
    store: &'a DynStore,
    key: String,
}

impl<'a> Lock<'a> {
    /// Takes the lock or fails with `Busy`.
    pub(crate) async fn take(store: &'a DynStore, id: &str) -> Result<Lock<'a>, AppError> {
        let key = keys::app_lock(id);
        if store.put_new(&key, b"1", Some(LOCK_TTL)).await? { Ok(Self { store, key }) } else { Err(AppError::Busy) }
    }

    /// Releases the lock.
    pub(crate) async fn release(self) -> Result<(), StoreError> {
        self.store.delete(&self.key).await.map(|_| ())
    }
}
