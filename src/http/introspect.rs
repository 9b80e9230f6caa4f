//! `/introspect` (RFC 7662) and `/revoke` (RFC 7009), both for authenticated clients only; the
//! rules are in [`crate::tokens::introspection`] and [`crate::tokens::revocation`].

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::AppState;
use super::extract::{Authorization, Form, Meta};
use super::token::{authenticate, authenticate_reading};
use crate::audit::{Event, Kind, Outcome};
use crate::clients::Endpoint;
use crate::error::OAuthError;
use crate::http::error::JsonError;
use crate::tokens::introspection::{self, Introspection};
use crate::tokens::revocation;

/// RFC 7662 s2.2: the JSON answer ([`Introspection::to_json`]), never cached.
fn answer(out: &Introspection) -> Response {
    let json = HeaderValue::from_static("application/json");
    let no_store = HeaderValue::from_static("no-store");
    ([(header::CONTENT_TYPE, json), (header::CACHE_CONTROL, no_store)], out.to_json()).into_response()
}

async fn introspect(
    State(state): State<AppState>,
    meta: Meta,
    authorization: Authorization,
    Form(mut form): Form,
) -> Result<Response, JsonError> {
    let now = state.clock.now();
    let token = form.remove("token");
    // A token this instance verified before: its state records are read in the round trip
    // that authenticates the caller (issue 13: one round trip on the hot path, not two).
    let prefetch = token.as_deref().and_then(|t| state.authority().prefetch(t, now));
    let more = prefetch.as_ref().map_or(&[][..], |p| p.keys());
    let (caller, read) =
        authenticate_reading(&state, &meta, authorization.value(), &mut form, Endpoint::Introspection, more).await?;
    state.rate_check(&caller)?;
    let token = token.ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let privileged = caller.holds_scope(&state.config.security.admin_scope);
    let ready = match prefetch.zip(read) {
        Some(prefetched) => {
            introspection::introspect_prefetched(state.authority(), &caller, privileged, prefetched, now)?
        }
        None => None,
    };
    let out = match ready {
        Some(out) => out,
        None => introspection::introspect(state.authority(), &caller, privileged, &token, now).await?,
    };
    Ok(answer(&out))
}

/// RFC 7009 s2: revokes an access or refresh token of the calling client. Revoking a refresh
/// token revokes its whole grant, so the access tokens it issued stop validating (s2.1).
async fn revoke(
    State(state): State<AppState>,
    meta: Meta,
    authorization: Authorization,
    Form(mut form): Form,
) -> Result<Response, JsonError> {
    let caller = authenticate(&state, &meta, authorization.value(), &mut form, Endpoint::Revocation).await?;
    state.rate_check(&caller)?;
    let token = form.get("token").cloned().ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    // RFC 7009 s2.1: the hint is only a hint; an unknown one does not stop the search.
    let revoked = revocation::revoke(state.authority(), &caller.client_id, &token, state.clock.now()).await?;
    if let Some(r) = revoked {
        let event = Event::new(Kind::TokenRevoked, Outcome::Success)
            .actor(format!("client:{}", caller.client_id))
            .client(&caller.client_id)
            .subject(r.sub)
            .detail(serde_json::json!({"token_type": r.kind}));
        state.audit.record(meta.apply(event, caller.app_id.as_deref())).await;
    }
    // RFC 7009 s2.2: 200 whether or not the token was valid.
    Ok(StatusCode::OK.into_response())
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/introspect", post(introspect)).route("/revoke", post(revoke))
}
