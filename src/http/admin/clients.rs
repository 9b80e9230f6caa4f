//! `/admin/v1/clients`: OAuth clients, standalone (platform tools, config-seeded clients) or
//! owned by an application (read here, changed through the application), and secret rotation
//! with an overlap window; secrets are shown once and stored only as SHA-256.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::api::{Api, op};
use super::{Admin, Json, json};
use crate::audit::Kind;
use crate::clients::{self, Client, ExchangePolicy, Origin, RateLimit, State as Lifecycle};
use crate::http::AppState;
use crate::http::error::Problem;
use crate::registration::{Metadata, Registrar};

/// A client as the admin API shows it (never its secrets).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ClientView {
    /// client_id.
    pub client_id: String,
    /// Its metadata (RFC 7591 s2 names).
    #[serde(flatten)]
    pub metadata: Metadata,
    /// Whether it may be used at all.
    pub enabled: bool,
    /// config, admin or dynamic.
    pub origin: Origin,
    /// The owning application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The owning application's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Whether users are asked for consent.
    pub consent_required: bool,
    /// Access token lifetime override, seconds.
    pub access_token_ttl: Option<i64>,
    /// Refresh token lifetime override, seconds.
    pub refresh_token_ttl: Option<i64>,
    /// Call control.
    pub rate_limit: Option<RateLimit>,
    /// Token exchange policy (RFC 8693).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<ExchangePolicy>,
    /// Expiry of each live secret (null: no expiry), newest last.
    pub secret_expires_at: Vec<Option<i64>>,
    /// Creation time.
    pub created_at: i64,
    /// JM-B: the legacy direct login `POST /api/auth` is allowed.
    pub legacy_login: bool,
}

/// A client with its new secret, shown this once.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ClientWithSecret {
    /// The client.
    #[serde(flatten)]
    pub client: ClientView,
    /// The secret (only SHA-256 is kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// A list of clients.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ClientList {
    /// The clients, by id.
    pub clients: Vec<ClientView>,
}

/// The view of a stored client.
pub fn view(c: &Client, now: i64) -> ClientView {
    ClientView {
        client_id: c.client_id.clone(),
        metadata: Metadata::of(c),
        enabled: c.enabled,
        origin: c.origin,
        app_id: c.app_id.clone(),
        lifecycle: c.lifecycle,
        consent_required: c.consent_required,
        access_token_ttl: c.access_token_ttl,
        refresh_token_ttl: c.refresh_token_ttl,
        rate_limit: c.rate_limit,
        token_exchange: c.token_exchange.clone(),
        secret_expires_at: c
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
            .map(|s| s.expires_at)
            .collect(),
        created_at: c.created_at,
        legacy_login: c.legacy_login,
    }
}

/// Body of standalone client create and update.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClientBody {
    /// Wanted id (create only; generated when absent).
    #[serde(default)]
    pub client_id: Option<String>,
    /// RFC 7591 metadata.
    #[serde(flatten)]
    pub metadata: Metadata,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Ask users for consent.
    #[serde(default)]
    pub consent_required: Option<bool>,
    /// Access token lifetime, 60..=86400 s.
    #[serde(default)]
    pub access_token_ttl: Option<i64>,
    /// Call control.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Token exchange policy (RFC 8693): the issuers whose tokens the client may exchange
    /// (this platform's issuer included, for local tokens) and the audiences it may ask for.
    /// Kept on update when absent; the client also needs the token-exchange grant type.
    #[serde(default)]
    pub token_exchange: Option<ExchangePolicy>,
    /// JM-B: allow the legacy direct login `POST /api/auth` for this client (off by default;
    /// kept on update when absent).
    #[serde(default)]
    pub legacy_login: Option<bool>,
}

/// The auditor role's scope, which the admin API neither grants nor touches clients holding
/// (AY-8.5.2.1 separation of duties).
fn audit_scope(state: &AppState) -> &str {
    &state.config.security.audit_scope
}

fn check_client_id(id: &str) -> Result<(), Problem> {
    if crate::apps::valid_id(id) {
        Ok(())
    } else {
        Err(Problem::bad_request("client_id must be 3-64 characters of letters, digits, '-', '_' or '.'"))
    }
}

fn apply_extras(c: &mut Client, b: &ClientBody) -> Result<(), Problem> {
    if let Some(e) = b.enabled {
        c.enabled = e;
    }
    if let Some(cr) = b.consent_required {
        c.consent_required = cr;
    }
    if let Some(ttl) = b.access_token_ttl {
        if !(60..=crate::keys::MAX_CLIENT_ACCESS_TOKEN_TTL).contains(&ttl) {
            return Err(Problem::bad_request("access_token_ttl must be 60..=86400 seconds"));
        }
        c.access_token_ttl = Some(ttl);
    }
    if let Some(rl) = b.rate_limit {
        rl.validate().map_err(Problem::bad_request)?;
        c.rate_limit = Some(rl);
    }
    if let Some(on) = b.legacy_login {
        c.legacy_login = on;
    }
    if let Some(policy) = &b.token_exchange {
        policy.validate().map_err(Problem::bad_request)?;
        c.token_exchange = Some(policy.clone());
    }
    Ok(())
}

/// AY-7.1: a client may only be granted catalogue scopes.
async fn check_catalogue(state: &AppState, c: &Client) -> Result<(), Problem> {
    let unknown = crate::scopes::unknown(&state.store, &state.builtin_scopes, &c.scopes).await?;
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Problem::bad_request(format!("scopes not in the catalogue: {}", unknown.join(", "))))
    }
}

async fn create(
    State(state): State<AppState>,
    Admin(who): Admin,
    Json(body): Json<ClientBody>,
) -> Result<Response, Problem> {
    let id = body.client_id.clone().unwrap_or_else(|| crate::crypto::random_token(12));
    check_client_id(&id)?;
    who.about_client(&id);
    let now = state.clock.now();
    let mut client = body.metadata.clone().into_client(id, Registrar::Admin, state.config.server.dev, now)?;
    crate::outbound::check_client(&state.outbound, &client)?;
    crate::identity::subject::check_sector_uri(&state.http, &state.outbound, &client).await?;
    clients::managed_by_admin(None, &client.scopes, audit_scope(&state))?;
    client.consent_required = false;
    apply_extras(&mut client, &body)?;
    check_catalogue(&state, &client).await?;
    let secret = clients::secrets::issue_first(&mut client);
    if crate::apps::get(&state.store, &client.client_id).await?.is_some()
        || !clients::create(&state.store, &client).await?
    {
        return Err(Problem::conflict(format!("client '{}' already exists", client.client_id)));
    }
    let body = ClientWithSecret { client: view(&client, now), client_secret: secret.map(|s| s.expose().to_owned()) };
    Ok(json(StatusCode::CREATED, &body))
}

async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let now = state.clock.now();
    let clients = clients::list(&state.store).await?.iter().map(|c| view(c, now)).collect();
    Ok(json(StatusCode::OK, &ClientList { clients }))
}

async fn load(state: &AppState, id: &str) -> Result<Client, Problem> {
    clients::get(&state.store, id).await?.ok_or_else(|| Problem::not_found(format!("no client '{id}'")))
}

async fn read(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_client(&id);
    let c = load(&state, &id).await?;
    Ok(json(StatusCode::OK, &view(&c, state.clock.now())))
}

fn standalone(c: &Client) -> Result<(), Problem> {
    match &c.app_id {
        Some(app) => Err(Problem::conflict(format!(
            "client '{}' belongs to application '{app}'; change it through /admin/v1/applications/{app}",
            c.client_id
        ))),
        None => Ok(()),
    }
}

async fn update(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    Json(body): Json<ClientBody>,
) -> Result<Response, Problem> {
    who.about_client(&id);
    let old = load(&state, &id).await?;
    clients::managed_by_admin(Some(&old), &[], audit_scope(&state))?;
    standalone(&old)?;
    if body.client_id.as_ref().is_some_and(|b| *b != id) {
        return Err(Problem::bad_request("client_id cannot be changed"));
    }
    let mut c = body.metadata.clone().into_client(id, Registrar::Admin, state.config.server.dev, old.created_at)?;
    crate::outbound::check_client(&state.outbound, &c)?;
    crate::identity::subject::check_sector_uri(&state.http, &state.outbound, &c).await?;
    clients::managed_by_admin(None, &c.scopes, audit_scope(&state))?;
    crate::registration::keep_standing(&old, &mut c);
    if c.auth_method.uses_secret() && c.secrets.is_empty() {
        return Err(Problem::bad_request("switching to a secret method needs a secret; create a new client"));
    }
    apply_extras(&mut c, &body)?;
    check_catalogue(&state, &c).await?;
    clients::put(&state.store, &c).await?;
    Ok(json(StatusCode::OK, &view(&c, state.clock.now())))
}

async fn remove(State(state): State<AppState>, Admin(who): Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    who.about_client(&id);
    let c = load(&state, &id).await?;
    clients::managed_by_admin(Some(&c), &[], audit_scope(&state))?;
    standalone(&c)?;
    clients::delete(&state.store, &id).await?;
    crate::authorize::revoke_consents(&state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A secret rotation request.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// Seconds the previous secrets keep working (0 ..= 2592000); `apps.secret_overlap` when absent.
    #[serde(default)]
    pub overlap_seconds: Option<i64>,
}

/// The new secret, shown this once.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Rotated {
    /// client_id.
    pub client_id: String,
    /// The new secret (only its SHA-256 is kept).
    pub client_secret: String,
    /// When the previous secrets stop working.
    pub previous_secrets_expire_at: i64,
}

/// Rotates a client secret: a new one now, the old ones until the overlap ends, so a fleet of
/// application instances can switch without an outage.
async fn rotate(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    who.about_client(&id);
    // The body is optional: none means the configured overlap.
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))?
    };
    let overlap = body.overlap_seconds.unwrap_or(state.config.apps.secret_overlap);
    if !(0..=30 * 86_400).contains(&overlap) {
        return Err(Problem::bad_request("overlap_seconds must be 0..=2592000"));
    }
    let mut c = load(&state, &id).await?;
    clients::managed_by_admin(Some(&c), &[], audit_scope(&state))?;
    let (secret, until) = clients::secrets::rotate(&mut c, state.clock.now(), overlap)
        .map_err(|e| Problem::conflict(format!("client '{id}': {e}")))?;
    clients::put(&state.store, &c).await?;
    if let Some(app) = &c.app_id {
        who.about_app(app);
    }
    who.record_as(Kind::SecretRotated, serde_json::json!({"previous_secrets_expire_at": until}));
    let body = Rotated { client_id: id, client_secret: secret.expose().to_owned(), previous_secrets_expire_at: until };
    Ok(json(StatusCode::OK, &body))
}

/// This module's routes.
pub fn api() -> Api {
    let tag = "clients";
    Api::new()
        .get("/admin/v1/clients", list, op("listClients", "List all clients", tag).ok::<ClientList>(200))
        .post(
            "/admin/v1/clients",
            create,
            op("createClient", "Create a standalone client; the secret is in this response only", tag)
                .body::<ClientBody>()
                .ok::<ClientWithSecret>(201)
                .errors(&[409, 413]),
        )
        .get("/admin/v1/clients/{id}", read, op("getClient", "Read a client", tag).ok::<ClientView>(200).errors(&[404]))
        .put(
            "/admin/v1/clients/{id}",
            update,
            op("updateClient", "Replace a standalone client's metadata", tag)
                .body::<ClientBody>()
                .ok::<ClientView>(200)
                .errors(&[404, 409, 413]),
        )
        .delete(
            "/admin/v1/clients/{id}",
            remove,
            op("deleteClient", "Delete a standalone client", tag).no_content().errors(&[404, 409]),
        )
        .post(
            "/admin/v1/clients/{id}/secret",
            rotate,
            op("rotateClientSecret", "Issue a new secret; the old ones keep working for the overlap", tag)
                .body::<RotateBody>()
                .ok::<Rotated>(200)
                .errors(&[404, 409]),
        )
}
