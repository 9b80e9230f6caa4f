//! `/admin/v1/scopes`: the scope catalogue (AY-7.1). Clients and applications may only be
//! granted scopes listed here; a scope still granted to anyone cannot be removed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::api::{Api, op};
use super::{Admin, Json, json};
use crate::http::AppState;
use crate::http::error::Problem;
use crate::scopes::{self, ScopeDef};

/// The catalogue.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScopeList {
    /// Built-in scopes first, then the others by name.
    pub scopes: Vec<ScopeDef>,
}

/// A new or changed catalogue entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    /// The scope token (create only; RFC 6749 s3.3 characters, at most 128).
    #[serde(default)]
    pub name: Option<String>,
    /// What it allows.
    pub description: String,
    /// What it allows in Simplified Chinese, shown on the consent page (empty: `description`).
    #[serde(default)]
    pub description_zh: String,
    /// What it allows in English, shown on the consent page (empty: `description`).
    #[serde(default)]
    pub description_en: String,
    /// Whether it releases sensitive personal data (SH-8.2).
    #[serde(default)]
    pub sensitive: bool,
}

/// AY-8.5.2.1: the auditor role's scopes are configuration, not catalogue entries the admin edits.
fn not_reserved(state: &AppState, name: &str) -> Result<(), Problem> {
    if scopes::reserved_for_auditor(name, &state.config.security.audit_scope) {
        return Err(Problem::forbidden(format!(
            "'{name}' belongs to the auditor role; the admin API does not manage it (separation of duties, AY-8.5.2.1)"
        )));
    }
    Ok(())
}

fn check_description(b: &ScopeBody) -> Result<(), Problem> {
    if b.description.trim().is_empty() || b.description.chars().count() > 500 {
        return Err(Problem::bad_request("description: 1-500 characters"));
    }
    for (field, v) in [("description_zh", &b.description_zh), ("description_en", &b.description_en)] {
        if v.chars().count() > 500 || v.chars().any(char::is_control) {
            return Err(Problem::bad_request(format!("{field}: at most 500 characters, no control characters")));
        }
    }
    Ok(())
}

async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let scopes = scopes::list(&state.store, &state.builtin_scopes).await?;
    Ok(json(StatusCode::OK, &ScopeList { scopes }))
}

async fn create(State(state): State<AppState>, _: Admin, Json(b): Json<ScopeBody>) -> Result<Response, Problem> {
    let name = b.name.clone().ok_or_else(|| Problem::bad_request("name is required"))?;
    not_reserved(&state, &name)?;
    if !scopes::valid_name(&name) {
        return Err(Problem::bad_request("name must be 1-128 scope-token characters (RFC 6749 s3.3)"));
    }
    check_description(&b)?;
    let def = ScopeDef {
        name: name.clone(),
        description: b.description,
        description_zh: b.description_zh.trim().to_owned(),
        description_en: b.description_en.trim().to_owned(),
        sensitive: b.sensitive,
        built_in: false,
        created_at: state.clock.now(),
    };
    if !scopes::create(&state.store, &state.builtin_scopes, &def).await? {
        return Err(Problem::conflict(format!("scope '{name}' already exists")));
    }
    Ok(json(StatusCode::CREATED, &def))
}

async fn load(state: &AppState, name: &str) -> Result<ScopeDef, Problem> {
    scopes::get(&state.store, &state.builtin_scopes, name)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no scope '{name}' in the catalogue")))
}

async fn read(State(state): State<AppState>, _: Admin, Path(name): Path<String>) -> Result<Response, Problem> {
    Ok(json(StatusCode::OK, &load(&state, &name).await?))
}

async fn update(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    Json(b): Json<ScopeBody>,
) -> Result<Response, Problem> {
    not_reserved(&state, &name)?;
    let mut def = load(&state, &name).await?;
    if def.built_in {
        return Err(Problem::conflict(format!("'{name}' is built in and cannot be changed")));
    }
    if b.name.as_ref().is_some_and(|n| *n != name) {
        return Err(Problem::bad_request("a scope cannot be renamed"));
    }
    check_description(&b)?;
    def.description = b.description;
    def.description_zh = b.description_zh.trim().to_owned();
    def.description_en = b.description_en.trim().to_owned();
    def.sensitive = b.sensitive;
    scopes::update(&state.store, &def).await?;
    Ok(json(StatusCode::OK, &def))
}

async fn remove(State(state): State<AppState>, _: Admin, Path(name): Path<String>) -> Result<Response, Problem> {
    not_reserved(&state, &name)?;
    let def = load(&state, &name).await?;
    if def.built_in {
        return Err(Problem::conflict(format!("'{name}' is built in and cannot be removed")));
    }
    let mut holders: Vec<String> = crate::clients::list(&state.store)
        .await?
        .into_iter()
        .filter(|c| c.holds_scope(&name))
        .map(|c| format!("client {}", c.client_id))
        .collect();
    holders.extend(
        crate::apps::list(&state.store, None)
            .await?
            .into_iter()
            .filter(|a| a.state != crate::apps::State::Offline && a.grants.scopes.contains(&name))
            .map(|a| format!("application {}", a.id)),
    );
    if !holders.is_empty() {
        return Err(Problem::conflict(format!("'{name}' is still granted to: {}", holders.join(", ")))
            .with("holders", holders.into()));
    }
    scopes::delete(&state.store, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// This module's routes.
pub fn api() -> Api {
    let tag = "scopes";
    Api::new()
        .get("/admin/v1/scopes", list, op("listScopes", "The scope catalogue", tag).ok::<ScopeList>(200))
        .post(
            "/admin/v1/scopes",
            create,
            op("createScope", "Add a scope to the catalogue", tag)
                .body::<ScopeBody>()
                .ok::<ScopeDef>(201)
                .errors(&[409]),
        )
        .get("/admin/v1/scopes/{name}", read, op("getScope", "Read a scope", tag).ok::<ScopeDef>(200).errors(&[404]))
        .put(
            "/admin/v1/scopes/{name}",
            update,
            op("updateScope", "Change a scope's descriptions or sensitivity", tag)
                .body::<ScopeBody>()
                .ok::<ScopeDef>(200)
                .errors(&[404, 409]),
        )
        .delete(
            "/admin/v1/scopes/{name}",
            remove,
            op("deleteScope", "Remove a scope no client or application holds", tag).no_content().errors(&[404, 409]),
        )
}
