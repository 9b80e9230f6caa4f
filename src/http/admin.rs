//! Admin API, minimal for now (grown by the lifecycle issue): clients and users under
//! `/admin/v1`, and key rotation. Authorized by a tongzheng access token carrying the admin
//! scope (DC-8); every error is an RFC 7807 problem document.

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppState;
use super::extract::bearer;
use crate::clients::{self, Client};
use crate::crypto::Secret;
use crate::error::{BearerError, Problem};
use crate::registration::{Metadata, Registrar};
use crate::tokens::{self, AccessClaims};
use crate::users::{self, User};

/// Proof that the caller holds the admin scope.
pub struct Admin(pub AccessClaims);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = bearer(&parts.headers, None).map_err(|e| match e {
            BearerError::Missing => Problem::unauthorized("a bearer token with the admin scope is required"),
            BearerError::Rejected(e) => Problem::from(e),
        })?;
        let (claims, _) =
            tokens::validate_access_token(&state.keys, &state.store, &state.config.issuer, &token, state.clock.now())
                .await?;
        if !claims.has_scope(&state.config.security.admin_scope) {
            let detail = format!("the token lacks the '{}' scope", state.config.security.admin_scope);
            return Err(Problem::forbidden(detail).with_bearer_error(crate::error::ErrorCode::InsufficientScope));
        }
        Ok(Self(claims))
    }
}

/// A JSON body whose rejections are problem documents.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "urn:tongzheng:problem:too-large",
                "Body too large",
                "request body too large",
            )),
            Err(rej) if rej.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "urn:tongzheng:problem:media-type",
                "Unsupported media type",
                "Content-Type must be application/json",
            )),
            Err(rej) => Err(Problem::bad_request(rej.body_text())),
        }
    }
}

fn client_view(c: &Client) -> Value {
    let mut v = serde_json::to_value(Metadata::of(c)).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("client_id".into(), json!(c.client_id));
        o.insert("enabled".into(), json!(c.enabled));
        o.insert("origin".into(), json!(c.origin));
        o.insert("created_at".into(), json!(c.created_at));
        o.insert("consent_required".into(), json!(c.consent_required));
        o.insert("access_token_ttl".into(), json!(c.access_token_ttl));
    }
    v
}

/// Body of client create/update.
#[derive(Deserialize)]
struct ClientBody {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(flatten)]
    metadata: Metadata,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    consent_required: Option<bool>,
    #[serde(default)]
    access_token_ttl: Option<i64>,
}

fn check_client_id(id: &str) -> Result<(), Problem> {
    let ok = (3..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
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
        if !(60..=86_400).contains(&ttl) {
            return Err(Problem::bad_request("access_token_ttl must be 60..=86400 seconds"));
        }
        c.access_token_ttl = Some(ttl);
    }
    Ok(())
}

async fn create_client(
    State(state): State<AppState>,
    _: Admin,
    Json(body): Json<ClientBody>,
) -> Result<Response, Problem> {
    let id = body.client_id.clone().unwrap_or_else(|| crate::crypto::random_token(12));
    check_client_id(&id)?;
    let mut client =
        body.metadata.clone().into_client(id, Registrar::Admin, state.config.server.dev, state.clock.now())?;
    client.consent_required = false;
    apply_extras(&mut client, &body)?;
    let secret = if client.auth_method.uses_secret() {
        let (secret, stored) = clients::new_secret(None);
        client.secrets.push(stored);
        Some(secret)
    } else {
        None
    };
    if !clients::create(&state.store, &client).await? {
        return Err(Problem::conflict(format!("client '{}' already exists", client.client_id)));
    }
    tracing::info!(client_id = %client.client_id, "admin created client");
    let mut view = client_view(&client);
    if let (Some(o), Some(s)) = (view.as_object_mut(), secret) {
        // Shown once; only its SHA-256 is kept.
        o.insert("client_secret".into(), json!(s.expose()));
    }
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

async fn list_clients(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let list: Vec<Value> = clients::list(&state.store).await?.iter().map(client_view).collect();
    Ok(axum::Json(json!({ "clients": list })).into_response())
}

async fn get_client(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    let c = clients::get(&state.store, &id).await?.ok_or_else(|| Problem::not_found(format!("no client '{id}'")))?;
    Ok(axum::Json(client_view(&c)).into_response())
}

async fn update_client(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Json(body): Json<ClientBody>,
) -> Result<Response, Problem> {
    let old = clients::get(&state.store, &id).await?.ok_or_else(|| Problem::not_found(format!("no client '{id}'")))?;
    if body.client_id.as_ref().is_some_and(|b| *b != id) {
        return Err(Problem::bad_request("client_id cannot be changed"));
    }
    let mut c = body.metadata.clone().into_client(id, Registrar::Admin, state.config.server.dev, old.created_at)?;
    c.secrets = old.secrets;
    c.origin = old.origin;
    c.registration_token_sealed = old.registration_token_sealed;
    c.enabled = old.enabled;
    c.consent_required = old.consent_required;
    c.access_token_ttl = old.access_token_ttl;
    if c.auth_method.uses_secret() && c.secrets.is_empty() {
        return Err(Problem::bad_request("switching to a secret method needs a secret; create a new client"));
    }
    apply_extras(&mut c, &body)?;
    clients::put(&state.store, &c).await?;
    Ok(axum::Json(client_view(&c)).into_response())
}

async fn delete_client(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    if clients::delete(&state.store, &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found(format!("no client '{id}'")))
    }
}

/// A user as the admin API shows it: the phone number masked (SH-8.2).
fn user_view(state: &AppState, u: &User) -> Value {
    json!({
        "id": u.id, "username": u.username, "name": u.name, "email": u.email, "email_verified": u.email_verified,
        "phone_number": u.phone_masked(state.keys.data()), "enabled": u.enabled, "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn hash(state: &AppState, password: String) -> Result<String, Problem> {
    users::check_password_policy(&password).map_err(Problem::bad_request)?;
    state.passwords.hash(Secret(password)).await.map_err(|e| {
        tracing::warn!(error = %e, "password hashing unavailable");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "urn:tongzheng:problem:unavailable",
            "Service unavailable",
            "password hashing is busy, retry",
        )
    })
}

async fn create_user(State(state): State<AppState>, _: Admin, Json(b): Json<UserBody>) -> Result<Response, Problem> {
    let username = b.username.ok_or_else(|| Problem::bad_request("username is required"))?;
    users::check_username(&username).map_err(Problem::bad_request)?;
    let password = b.password.ok_or_else(|| Problem::bad_request("password is required"))?;
    let now = state.clock.now();
    let mut user = User {
        id: users::new_id(),
        name: b.name.unwrap_or_else(|| username.clone()),
        username,
        password_hash: hash(&state, password).await?,
        email: b.email,
        email_verified: b.email_verified.unwrap_or(false),
        phone_sealed: None,
        enabled: b.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    user.set_phone(state.keys.data(), b.phone_number.as_deref());
    if !users::create(&state.store, &user).await? {
        return Err(Problem::conflict(format!("username '{}' is taken", user.username)));
    }
    Ok((StatusCode::CREATED, axum::Json(user_view(&state, &user))).into_response())
}

async fn list_users(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let list: Vec<Value> = users::list(&state.store).await?.iter().map(|u| user_view(&state, u)).collect();
    Ok(axum::Json(json!({ "users": list })).into_response())
}

async fn get_user(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    let u = users::get(&state.store, &id).await?.ok_or_else(|| Problem::not_found(format!("no user '{id}'")))?;
    Ok(axum::Json(user_view(&state, &u)).into_response())
}

async fn update_user(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Json(b): Json<UserBody>,
) -> Result<Response, Problem> {
    let mut u = users::get(&state.store, &id).await?.ok_or_else(|| Problem::not_found(format!("no user '{id}'")))?;
    if b.username.as_ref().is_some_and(|n| *n != u.username) {
        return Err(Problem::bad_request("username cannot be changed"));
    }
    let password_changed = b.password.is_some();
    if let Some(p) = b.password {
        u.password_hash = hash(&state, p).await?;
    }
    if let Some(n) = b.name {
        u.name = n;
    }
    if b.email.is_some() {
        u.email = b.email;
    }
    if let Some(v) = b.email_verified {
        u.email_verified = v;
    }
    if let Some(p) = &b.phone_number {
        u.set_phone(state.keys.data(), Some(p));
    }
    if let Some(e) = b.enabled {
        u.enabled = e;
    }
    u.updated_at = state.clock.now();
    users::update(&state.store, &u).await?;
    // A changed password or a disabled account ends every login of the user (DC-4).
    if password_changed || !u.enabled {
        crate::logout::end_user_sessions(state.logout_ctx(), &u.id, crate::logout::Reason::AccountChanged, None, None)
            .await?;
    }
    Ok(axum::Json(user_view(&state, &u)).into_response())
}

async fn delete_user(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    if users::delete(&state.store, &id).await? {
        crate::logout::end_user_sessions(state.logout_ctx(), &id, crate::logout::Reason::AccountChanged, None, None)
            .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found(format!("no user '{id}'")))
    }
}

async fn user_sessions(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    let now = state.clock.now();
    let mut out = Vec::new();
    for sid in crate::session::of_user(&state.store, &id).await? {
        if let Some(s) = crate::session::get(&state.store, &sid).await?.filter(|s| s.live(now, state.timeouts())) {
            let clients = crate::session::clients(&state.store, &sid).await?;
            out.push(json!({"sid": s.sid, "auth_time": s.auth_time, "last_seen": s.last_seen, "expires_at": s.ends_at(state.timeouts()), "acr": s.acr, "amr": s.amr, "clients": clients}));
        }
    }
    Ok(axum::Json(json!({ "sessions": out })).into_response())
}

/// Admin logout of one session (DC-4): broadcast like any other logout.
async fn end_session(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(sid): Path<String>,
) -> Result<Response, Problem> {
    match crate::logout::end_session(state.logout_ctx(), &sid, crate::logout::Reason::Admin, None).await? {
        Some(ended) => {
            tracing::info!(admin = %by.client_id, sid = %sid, "admin ended a session");
            Ok(axum::Json(ended).into_response())
        }
        None => Err(Problem::not_found(format!("no session '{sid}'"))),
    }
}

/// Admin logout of every session of a user.
async fn logout_user(
    State(state): State<AppState>,
    Admin(by): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let ended =
        crate::logout::end_user_sessions(state.logout_ctx(), &id, crate::logout::Reason::Admin, None, None).await?;
    tracing::info!(admin = %by.client_id, sub = %id, sessions = ended.len(), "admin logged a user out");
    Ok(axum::Json(json!({ "sessions_ended": ended })).into_response())
}

#[derive(Deserialize)]
struct DeliveryQuery {
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// Back-channel delivery status (pending, delivered, failed with the last error, attempts).
async fn deliveries(
    State(state): State<AppState>,
    _: Admin,
    q: axum::extract::Query<DeliveryQuery>,
) -> Result<Response, Problem> {
    let index = match (&q.sid, &q.client_id) {
        (Some(sid), None) => crate::store::keys::session_deliveries(sid),
        (None, Some(c)) => crate::store::keys::client_deliveries(c),
        _ => return Err(Problem::bad_request("give exactly one of sid or client_id")),
    };
    let list = crate::logout::outbox::list(&state.store, &index).await?;
    Ok(axum::Json(json!({ "deliveries": list })).into_response())
}

async fn delivery(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Response, Problem> {
    let d = crate::logout::outbox::get(&state.store, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no delivery '{id}'")))?;
    Ok(axum::Json(d).into_response())
}

async fn rotate_keys(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    let keep = state.config.tokens.access_token_ttl.max(state.config.tokens.id_token_ttl) + 3600;
    let kids = state.keys.rotate(state.clock.now(), keep).map_err(|e| {
        tracing::error!(error = %e, "key rotation failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "urn:tongzheng:problem:internal",
            "Internal error",
            "key rotation failed",
        )
    })?;
    Ok(axum::Json(json!({ "active_kids": kids })).into_response())
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/clients", get(list_clients).post(create_client))
        .route("/admin/v1/clients/{id}", get(get_client).put(update_client).delete(delete_client))
        .route("/admin/v1/users", get(list_users).post(create_user))
        .route("/admin/v1/users/{id}", get(get_user).put(update_user).delete(delete_user))
        .route("/admin/v1/keys/rotate", post(rotate_keys))
        .route("/admin/v1/users/{id}/sessions", get(user_sessions))
        .route("/admin/v1/users/{id}/logout", post(logout_user))
        .route("/admin/v1/sessions/{sid}", axum::routing::delete(end_session))
        .route("/admin/v1/logout/deliveries", get(deliveries))
        .route("/admin/v1/logout/deliveries/{id}", get(delivery))
}
