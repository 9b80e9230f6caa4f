//! `/admin/v1/trusts`: the trusted platforms (DC-5) at run time: list, add, change, disable
//! (every federation path reads the record when it runs, so a disabled trust stops at once).
//! An upstream's client secret is accepted here, sealed, and never shown again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use super::api::{Api, op};
use super::{Admin, Json, json};
use crate::federation::{self, Trust, TrustInput};
use crate::http::AppState;
use crate::http::error::Problem;

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

fn view(t: &Trust) -> TrustView {
    let has_client_secret = t.client_secret_sealed.is_some();
    TrustView { trust: Trust { client_secret_sealed: None, ..t.clone() }, has_client_secret }
}

fn build(state: &AppState, id: String, b: TrustInput, old: Option<&Trust>) -> Result<Trust, Problem> {
    b.into_trust(id, state.keys.data(), state.config.server.dev, state.clock.now(), old).map_err(Problem::bad_request)
}

async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let trusts = federation::list(&state.store).await?.iter().map(view).collect();
    Ok(json(StatusCode::OK, &TrustList { trusts }))
}

async fn create(State(state): State<AppState>, _: Admin, Json(b): Json<TrustInput>) -> Result<Response, Problem> {
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
    Json(b): Json<TrustInput>,
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
                .body::<TrustInput>()
                .ok::<TrustView>(201)
                .errors(&[409, 413]),
        )
        .get("/admin/v1/trusts/{id}", read, op("getTrust", "One trust", tag).ok::<TrustView>(200).errors(&[404]))
        .put(
            "/admin/v1/trusts/{id}",
            update,
            op("updateTrust", "Change or disable a trust; takes effect on the next request", tag)
                .body::<TrustInput>()
                .ok::<TrustView>(200)
                .errors(&[404, 413]),
        )
        .delete("/admin/v1/trusts/{id}", remove, op("deleteTrust", "Remove a trust", tag).no_content().errors(&[404]))
}
