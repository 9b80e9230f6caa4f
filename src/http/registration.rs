//! Dynamic client registration (RFC 7591) guarded by the initial access token, and client
//! configuration read/update/delete with the registration access token (RFC 7592).

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::AppState;
use super::extract::{bearer, body_bytes};
use crate::clients::{self, Client};
use crate::crypto::{self, ct_eq};
use crate::error::{ErrorCode, OAuthError};
use crate::http::error::{BearerError, JsonError};
use crate::registration::{self, Metadata, Registrar};

fn parse_json(body: &[u8]) -> Result<Metadata, JsonError> {
    serde_json::from_slice(body).map_err(|e| {
        OAuthError::new(ErrorCode::InvalidClientMetadata, format!("the body is not valid client metadata JSON: {e}"))
            .into()
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")))
}

fn response(state: &AppState, c: &Client, secret: Option<&str>, rat: Option<&str>, status: StatusCode) -> Response {
    let mut body = serde_json::to_value(Metadata::of(c)).unwrap_or(Value::Null);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("client_id".into(), json!(c.client_id));
        obj.insert("client_id_issued_at".into(), json!(c.created_at));
        obj.insert("registration_client_uri".into(), json!(format!("{}/{}", state.urls.register, c.client_id)));
        if let Some(s) = secret {
            obj.insert("client_secret".into(), json!(s));
            obj.insert("client_secret_expires_at".into(), json!(0));
        }
        if let Some(t) = rat {
            obj.insert("registration_access_token".into(), json!(t));
        }
    }
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Errors of the registration endpoints: RFC 7591 s3.2.2 JSON, or an RFC 6750 challenge for a
/// bad initial or registration access token.
enum RegError {
    Json(JsonError),
    Bearer(BearerError),
}

impl From<BearerError> for RegError {
    fn from(e: BearerError) -> Self {
        Self::Bearer(e)
    }
}

impl<T: Into<JsonError>> From<T> for RegError {
    fn from(e: T) -> Self {
        Self::Json(e.into())
    }
}

impl IntoResponse for RegError {
    fn into_response(self) -> Response {
        match self {
            Self::Json(e) => e.into_response(),
            Self::Bearer(e) => e.into_response(),
        }
    }
}

fn check_initial_token(state: &AppState, headers: &HeaderMap) -> Result<(), RegError> {
    let expected = &state.config.security.initial_access_token;
    if expected.is_empty() {
        return Err(OAuthError::new(ErrorCode::AccessDenied, "dynamic registration is disabled").into());
    }
    let token = bearer(headers, None)?;
    if !ct_eq(crypto::sha256(token.as_bytes()).as_slice(), crypto::sha256(expected.as_bytes()).as_slice()) {
        return Err(BearerError::Rejected(OAuthError::invalid_token("the initial access token is invalid")).into());
    }
    Ok(())
}

/// POST /register (RFC 7591 s3.1).
async fn register(State(state): State<AppState>, req: Request) -> Result<Response, RegError> {
    let headers = req.headers().clone();
    check_initial_token(&state, &headers)?;
    let body = body_bytes(req, &()).await?;
    if !is_json(&headers) {
        return Err(OAuthError::invalid_request("Content-Type must be application/json").into());
    }
    let meta = parse_json(&body)?;
    let now = state.clock.now();
    let mut client = meta.into_client(crypto::random_token(16), Registrar::Dynamic, state.config.server.dev, now)?;
    crate::outbound::check_client(&state.outbound, &client)?;
    crate::identity::subject::check_sector_uri(&state.http, &state.outbound, &client).await?;
    let secret = clients::secrets::issue_first(&mut client);
    let rat = crypto::random_token(32);
    client.registration_token_sealed = Some(state.keys.data().seal(&rat, &rat_context(&client.client_id)));
    if !clients::create(&state.store, &client).await? {
        return Err(OAuthError::server_error().into());
    }
    tracing::info!(client_id = %client.client_id, "client registered");
    Ok(response(&state, &client, secret.as_ref().map(|s| s.expose()), Some(&rat), StatusCode::CREATED))
}

fn rat_context(client_id: &str) -> String {
    format!("client:{client_id}:registration_access_token")
}

/// Resolves the client a registration access token manages (RFC 7592 s3: 401 on any mismatch,
/// without telling whether the client exists). Returns the client and its token.
async fn managed(state: &AppState, headers: &HeaderMap, client_id: &str) -> Result<(Client, String), RegError> {
    let token = bearer(headers, None)?;
    let deny = || {
        RegError::Bearer(BearerError::Rejected(OAuthError::invalid_token("the registration access token is invalid")))
    };
    let client = clients::get(&state.store, client_id).await?.ok_or_else(deny)?;
    let expected = client
        .registration_token_sealed
        .as_deref()
        .and_then(|s| state.keys.data().open(s, &rat_context(client_id)))
        .ok_or_else(deny)?;
    if !ct_eq(crypto::sha256(expected.as_bytes()).as_slice(), crypto::sha256(token.as_bytes()).as_slice()) {
        return Err(deny());
    }
    Ok((client, expected))
}

/// GET /register/{id} (RFC 7592 s2.1); the response carries the registration access token (s3).
async fn read(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, RegError> {
    let (c, rat) = managed(&state, &headers, &id).await?;
    Ok(response(&state, &c, None, Some(&rat), StatusCode::OK))
}

/// PUT /register/{id} (RFC 7592 s2.2): replaces the metadata; secrets stay.
async fn update(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Result<Response, RegError> {
    let headers = req.headers().clone();
    let (old, rat) = managed(&state, &headers, &id).await?;
    let body = body_bytes(req, &()).await?;
    if !is_json(&headers) {
        return Err(OAuthError::invalid_request("Content-Type must be application/json").into());
    }
    let raw: Value = serde_json::from_slice(&body)
        .map_err(|_| OAuthError::new(ErrorCode::InvalidClientMetadata, "body is not JSON"))?;
    if raw.get("client_id").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(OAuthError::invalid_request("client_id in the body must match the URL (RFC 7592 s2.2)").into());
    }
    let meta = parse_json(&body)?;
    let requested = meta.into_client(id, Registrar::Dynamic, state.config.server.dev, old.created_at)?;
    crate::outbound::check_client(&state.outbound, &requested)?;
    crate::identity::subject::check_sector_uri(&state.http, &state.outbound, &requested).await?;
    let client = registration::apply_update(&old, requested)?;
    clients::put(&state.store, &client).await?;
    Ok(response(&state, &client, None, Some(&rat), StatusCode::OK))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, RegError> {
    managed(&state, &headers, &id).await?;
    clients::delete(&state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/register", post(register)).route("/register/{id}", get(read).put(update).delete(remove))
}
