//! `/admin/v1/trusts`: the trusted platforms (DC-5) at run time: list, add, change, disable
//! (every federation path reads the record when it runs, so a disabled trust stops at once).
//! An upstream's client secret is accepted here, sealed, and never shown again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::api::{Api, op};
use super::{Admin, Json, json};
use crate::error::Problem;
use crate::federation::{self, LinkBy, Role, Trust};
use crate::http::AppState;

/// A trust as shown (no secret).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrustView {
    /// The trust.
    #[serde(flatten)]
    pub trust: Trust,
    /// Whether a client secret for the upstream is on record.
    pub has_client_secret: bool,
}

/// The trusts.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrustList {
    /// By id.
    pub trusts: Vec<TrustView>,
}

/// A trust to add or replace. Absent optional fields take their defaults (a replacement
/// keeps the stored secret when none is sent).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustBody {
    /// Short id (add only; 2-32 of a-z, 0-9, '-').
    #[serde(default)]
    pub id: Option<String>,
    /// Upstream or downstream.
    pub role: Role,
    /// The peer's issuer.
    pub issuer: String,
    /// Display name (zh-CN).
    pub name: String,
    /// Display name (en).
    #[serde(default)]
    pub name_en: String,
    /// Upstream: our client_id there. Downstream: its client_id here.
    pub client_id: String,
    /// Upstream: our client secret there (sealed; never shown again).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Scopes asked of the upstream.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Claims copied into local accounts.
    #[serde(default)]
    pub accept_claims: Option<Vec<String>>,
    /// How upstream subjects are matched.
    #[serde(default)]
    pub link_by: Option<LinkBy>,
    /// Create local accounts on first arrival.
    #[serde(default)]
    pub create_accounts: bool,
    /// Lowest `acr` accepted.
    #[serde(default)]
    pub min_acr: Option<String>,
    /// Try silently with `prompt=none`.
    #[serde(default = "yes")]
    pub silent_login: bool,
    /// Push registrations upstream (GB-6.4a).
    #[serde(default)]
    pub sync_registrations: bool,
    /// In force.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn view(t: &Trust) -> TrustView {
    let has_client_secret = t.client_secret_sealed.is_some();
    TrustView { trust: Trust { client_secret_sealed: None, ..t.clone() }, has_client_secret }
}

fn build(state: &AppState, id: String, b: TrustBody, old: Option<&Trust>) -> Result<Trust, Problem> {
    let now = state.clock.now();
    let mut t = Trust {
        id,
        role: b.role,
        issuer: b.issuer,
        name: b.name,
        name_en: b.name_en,
        client_id: b.client_id,
        client_secret_sealed: None,
        scopes: b.scopes.unwrap_or_else(|| vec!["openid".into(), "profile".into()]),
        accept_claims: b.accept_claims.unwrap_or_else(|| vec!["name".into()]),
        link_by: b.link_by.unwrap_or(LinkBy::Subject),
        create_accounts: b.create_accounts,
        min_acr: b.min_acr,
        silent_login: b.silent_login,
        sync_registrations: b.sync_registrations,
        enabled: b.enabled,
        created_at: old.map_or(now, |o| o.created_at),
        updated_at: now,
    };
    match (&b.client_secret, old) {
        (Some(s), _) => t.set_secret(state.keys.data(), Some(s)),
        // The seal is bound to the trust id, which does not change.
        (None, Some(o)) => t.client_secret_sealed.clone_from(&o.client_secret_sealed),
        (None, None) => {}
    }
    federation::validate(&t, state.config.server.dev).map_err(Problem::bad_request)?;
    if t.role == Role::Upstream && t.client_secret_sealed.is_none() {
        return Err(Problem::bad_request("an upstream trust needs client_secret (our secret at that platform)"));
    }
    Ok(t)
}

async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let trusts = federation::list(&state.store).await?.iter().map(view).collect();
    Ok(json(StatusCode::OK, &TrustList { trusts }))
}

async fn create(State(state): State<AppState>, _: Admin, Json(b): Json<TrustBody>) -> Result<Response, Problem> {
    let id = b.id.clone().ok_or_else(|| Problem::bad_request("id is required"))?;
    if federation::get(&state.store, &id).await?.is_some() {
        return Err(Problem::conflict(format!("trust '{id}' already exists")));
    }
    let t = build(&state, id, b, None)?;
    federation::put(&state.store, &t).await?;
    Ok(json(StatusCode::CREATED, &view(&t)))
}

async fn load(state: &AppState, id: &str) -> Result<Trust, Problem> {
    federation::get(&state.store, id).await?.ok_or_else(|| Problem::not_found(format!("no trust '{id}'")))
}

async fn read(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    Ok(json(StatusCode::OK, &view(&load(&state, &id).await?)))
}

async fn update(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Json(b): Json<TrustBody>,
) -> Result<Response, Problem> {
    let old = load(&state, &id).await?;
    if b.id.as_ref().is_some_and(|i| *i != id) {
        return Err(Problem::bad_request("id cannot be changed"));
    }
    let t = build(&state, id, b, Some(&old))?;
    federation::put(&state.store, &t).await?;
    Ok(json(StatusCode::OK, &view(&t)))
}

async fn remove(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    if federation::delete(&state.store, &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found(format!("no trust '{id}'")))
    }
}

/// This module's routes.
pub fn api() -> Api {
    let tag = "federation";
    Api::new()
        .get("/admin/v1/trusts", list, op("listTrusts", "Trusted platforms", tag).ok::<TrustList>(200))
        .post(
            "/admin/v1/trusts",
            create,
            op("createTrust", "Trust a platform (upstream or downstream)", tag)
                .body::<TrustBody>()
                .ok::<TrustView>(201)
                .errors(&[409, 413]),
        )
        .get("/admin/v1/trusts/{id}", read, op("getTrust", "One trust", tag).ok::<TrustView>(200).errors(&[404]))
        .put(
            "/admin/v1/trusts/{id}",
            update,
            op("updateTrust", "Change or disable a trust; takes effect on the next request", tag)
                .body::<TrustBody>()
                .ok::<TrustView>(200)
                .errors(&[404, 413]),
        )
        .delete("/admin/v1/trusts/{id}", remove, op("deleteTrust", "Remove a trust", tag).no_content().errors(&[404]))
}
