//! The admin API under `/admin/v1` (DC-8): applications and their lifecycle, clients, users,
//! the scope catalogue, keys, sessions and the audit log. Authorized by tongzheng's own access
//! tokens: the admin scope for management, the audit scope for the audit log (separation of
//! duties). Every call is rate limited per client (AY-8.3.2.1) and audited, whatever its outcome
//! (AY-8.5.2.1, GB-6.8a); every error is an RFC 7807 problem document; the routes and their
//! OpenAPI 3.1 description come from one table ([`api`]).

pub mod api;
mod apps;
mod audit;
mod clients;
mod legal;
mod scopes;
mod system;
mod trusts;
mod users;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::AppState;
use super::extract::{Meta, bearer};
use crate::audit::{Event, Kind, Outcome};
use crate::error::ErrorCode;
use crate::http::error::{BearerError, Problem};
use crate::tokens::AccessClaims;

/// What the audit middleware learns about a call from its handler: who called, what it was
/// about, and any detail worth keeping. Shared between the middleware and the extractors
/// through the request's extensions.
#[derive(Debug, Default)]
pub(crate) struct Note {
    actor: Option<String>,
    client_id: Option<String>,
    app_id: Option<String>,
    subject: Option<String>,
    kind: Option<Kind>,
    detail: Option<Value>,
}

#[derive(Clone, Default)]
struct NoteSlot(Arc<Mutex<Note>>);

impl NoteSlot {
    fn with(&self, f: impl FnOnce(&mut Note)) {
        match self.0.lock() {
            Ok(mut n) => f(&mut n),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

/// An authenticated admin-API caller.
pub struct Caller {
    /// The token's claims.
    pub claims: AccessClaims,
    /// `client:<id>`.
    actor: String,
    /// Request id and address.
    pub meta: Meta,
    slot: NoteSlot,
}

impl Caller {
    /// `client:<id>`, the actor recorded on transitions and audit events.
    pub fn actor(&self) -> String {
        self.actor.clone()
    }
    /// The application-lifecycle context of this call: acting as this caller, with its
    /// request id.
    pub fn apps_ctx<'a>(&'a self, state: &'a AppState) -> crate::apps::Ctx<'a> {
        state.apps_ctx(&self.actor, self.meta.request_id())
    }
    /// Tells the audit record which application the call was about.
    pub fn about_app(&self, app_id: &str) {
        self.slot.with(|n| n.app_id = Some(app_id.to_owned()));
    }
    /// Tells the audit record which client the call was about.
    pub fn about_client(&self, client_id: &str) {
        self.slot.with(|n| n.client_id = Some(client_id.to_owned()));
    }
    /// Tells the audit record which person the call was about.
    pub fn about_subject(&self, sub: &str) {
        self.slot.with(|n| n.subject = Some(sub.to_owned()));
    }
    /// Records the call as another kind (a lifecycle transition, a secret rotation) with detail.
    pub fn record_as(&self, kind: Kind, detail: Value) {
        self.slot.with(|n| {
            n.kind = Some(kind);
            n.detail = Some(detail);
        });
    }
}

async fn authenticate(parts: &mut Parts, state: &AppState, scope: &str) -> Result<Caller, Problem> {
    let slot = parts.extensions.get::<NoteSlot>().cloned().unwrap_or_default();
    let meta = Meta::of(parts, state.config.server.behind_tls_proxy);
    let token = bearer(&parts.headers, None).map_err(|e| match e {
        BearerError::Missing => Problem::unauthorized(format!("a bearer token with the '{scope}' scope is required")),
        BearerError::Rejected(e) => Problem::from(e),
        BearerError::Limited(l) => Problem::from(l),
    })?;
    let live = state.authority().access(&token, state.clock.now()).await?.map_err(crate::http::oidc::dead_token)?;
    let (claims, client) = (live.claims, live.standing.client);
    slot.with(|n| n.actor = Some(format!("client:{}", claims.client_id)));
    // RFC 9068 s4: the admin API is our resource; a token exchanged for another API is not for it.
    if !claims.is_for(&state.config.issuer) {
        return Err(Problem::unauthorized("the access token is meant for another audience")
            .with_bearer_error(ErrorCode::InvalidToken));
    }
    if !claims.has_scope(scope) {
        return Err(Problem::forbidden(format!("the token lacks the '{scope}' scope"))
            .with_bearer_error(ErrorCode::InsufficientScope));
    }
    state.rate_check(&client)?;
    let actor = format!("client:{}", claims.client_id);
    Ok(Caller { claims, actor, meta, slot })
}

/// A caller holding the admin scope.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        authenticate(parts, state, &state.config.security.admin_scope).await.map(Self)
    }
}

/// A caller holding the audit scope.
pub struct Auditor(pub Caller);

impl FromRequestParts<AppState> for Auditor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        authenticate(parts, state, &state.config.security.audit_scope).await.map(Self)
    }
}

/// A caller holding the scope that lets a downstream platform forward its audit events.
pub struct Forwarder(pub Caller);

impl FromRequestParts<AppState> for Forwarder {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        authenticate(parts, state, crate::scopes::AUDIT_INGEST).await.map(Self)
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

/// Query parameters whose rejections are problem documents.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Self)
            .map_err(|e| Problem::bad_request(format!("invalid query parameters: {e}")))
    }
}

/// A JSON response with a status.
pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Writes one audit event per admin-API call, after it is answered: success (2xx), denied
/// (401/403) or failure, with the caller, the route, the status and what the handler noted.
async fn audit_calls(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let slot = NoteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let (parts, body) = req.into_parts();
    let meta = Meta::of(&parts, state.config.server.behind_tls_proxy);
    let route = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = parts.method.clone();
    let resp = next.run(Request::from_parts(parts, body)).await;
    let status = resp.status();
    let outcome = if status.is_success() {
        Outcome::Success
    } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        Outcome::Denied
    } else {
        Outcome::Failure
    };
    let note = match slot.0.lock() {
        Ok(mut n) => std::mem::take(&mut *n),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    let mut detail = serde_json::json!({
        "method": method.as_str(),
        "route": route.unwrap_or_else(|| "unmatched".into()),
        "status": status.as_u16(),
    });
    if let (Some(extra), Some(obj)) = (note.detail, detail.as_object_mut()) {
        obj.insert("detail".into(), extra);
    }
    let mut e = Event::new(note.kind.unwrap_or(Kind::AdminAction), outcome)
        .actor(note.actor.as_deref().unwrap_or("anonymous"))
        .detail(detail);
    if let Some(c) = &note.client_id {
        e = e.client(c);
    }
    if let Some(a) = &note.app_id {
        e = e.app(a);
    }
    if let Some(s) = &note.subject {
        e = e.subject(s);
    }
    if let Some(ip) = &meta.ip {
        e = e.ip(ip);
    }
    if let Some(id) = meta.request_id() {
        e = e.request_id(id);
    }
    state.audit.record(e).await;
    resp
}

/// The admin API: its routes and its OpenAPI document.
pub fn api() -> api::Api {
    api::Api::new()
        .merge(apps::api())
        .merge(clients::api())
        .merge(users::api())
        .merge(scopes::api())
        .merge(system::api())
        .merge(audit::api())
        .merge(trusts::api())
        .merge(legal::api())
}

/// Routes of this module, including `GET /admin/v1/openapi.json`.
pub fn routes(state: &AppState) -> Router<AppState> {
    let c = &state.config;
    let (router, doc) = api().finish(&c.security.admin_scope, &c.security.audit_scope, &c.issuer);
    let doc = Arc::new(doc);
    router
        .route(
            "/admin/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .layer(middleware::from_fn_with_state(state.clone(), audit_calls))
}
