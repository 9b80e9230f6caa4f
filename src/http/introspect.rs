//! `/introspect` (RFC 7662) and `/revoke` (RFC 7009), both for authenticated clients only.
//! A client learns about its own tokens only: another client's token introspects as inactive
//! (RFC 7662 s4 leaves the policy to us; this is the least-privilege one) unless the caller
//! holds the admin scope.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;

use super::AppState;
use super::extract::{Form, Meta};
use super::token::authenticate;
use crate::audit::{Event, Kind, Outcome};
use crate::crypto;
use crate::error::{ErrorCode, JsonError, OAuthError};
use crate::grant::{RefreshRecord, revoke_grant};
use crate::jwt::Audience;
use crate::store::{self, keys};
use crate::tokens::{self, AccessClaims};

/// RFC 7662 s2.2 response.
#[derive(Debug, Default, Serialize)]
pub struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<String>,
    /// RFC 8693 s4.1 (and s2.2.1's pointer to RFC 7662): the acting party of a delegated token.
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<serde_json::Value>,
}

fn json_no_store<T: Serialize>(v: &T) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn introspect(
    State(state): State<AppState>,
    meta: Meta,
    headers: HeaderMap,
    Form(mut form): Form,
) -> Result<Response, JsonError> {
    let caller = authenticate(&state, &meta, &headers, &mut form, &state.urls.introspect).await?;
    state.rate_check(&caller)?;
    let token = form.get("token").cloned().ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let privileged = caller.holds_scope(&state.config.security.admin_scope);
    let now = state.clock.now();
    let mut out = Introspection::default();
    // Access tokens are JWTs (three dot-separated parts); refresh tokens are opaque.
    let looks_jwt = token.bytes().filter(|b| *b == b'.').count() == 2;
    // token_type_hint is only a hint (RFC 7662 s2.1): the token's shape decides.
    if looks_jwt {
        match tokens::validate_access_token(&state.keys, &state.store, &state.config.issuer, &token, now).await {
            // The client it was issued to, or the resource it names by client_id (RFC 8693 aud).
            Ok((c, _)) if privileged || c.client_id == caller.client_id || c.is_for(&caller.client_id) => {
                out = active_access(c);
            }
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::TemporarilyUnavailable => return Err(e.into()),
            Err(_) => {}
        }
    } else {
        let key = keys::refresh_token(&crypto::token_key(&token));
        if let Some(found) = state.store.peek(&key).await? {
            let r: RefreshRecord = store::decode(&key, &found.value)?;
            let rotated = found.first_redeemed_at.is_some();
            let revoked = state.store.get(&keys::revoked_grant(&r.gid)).await?.is_some();
            if !rotated && !revoked && r.family_exp > now && (privileged || r.client_id == caller.client_id) {
                out = Introspection {
                    active: true,
                    scope: Some(r.scope.join(" ")),
                    client_id: Some(r.client_id),
                    token_type: Some("refresh_token"),
                    exp: Some(r.family_exp),
                    sub: Some(r.user.sub),
                    iss: Some(state.config.issuer.clone()),
                    sid: Some(r.user.sid),
                    ..Introspection::default()
                };
            }
        }
    }
    Ok(json_no_store(&out))
}

fn active_access(c: AccessClaims) -> Introspection {
    Introspection {
        active: true,
        scope: Some(c.scope),
        client_id: Some(c.client_id),
        token_type: Some("Bearer"),
        exp: Some(c.exp),
        iat: Some(c.iat),
        sub: Some(c.sub),
        aud: Some(c.aud),
        iss: Some(c.iss),
        jti: Some(c.jti),
        sid: c.sid,
        auth_time: c.auth_time,
        acr: c.acr,
        act: c.act,
    }
}

/// RFC 7009 s2: revokes an access or refresh token of the calling client. Revoking a refresh
/// token revokes its whole grant, so the access tokens it issued stop validating (s2.1).
async fn revoke(
    State(state): State<AppState>,
    meta: Meta,
    headers: HeaderMap,
    Form(mut form): Form,
) -> Result<Response, JsonError> {
    let caller = authenticate(&state, &meta, &headers, &mut form, &state.urls.revoke).await?;
    state.rate_check(&caller)?;
    let token = form.get("token").cloned().ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    match form.get("token_type_hint").map(String::as_str) {
        None | Some("access_token" | "refresh_token") => {}
        Some(_) => {
            return Err(OAuthError::new(ErrorCode::UnsupportedTokenType, "unsupported token_type_hint").into());
        }
    }
    let now = state.clock.now();
    let key = keys::refresh_token(&crypto::token_key(&token));
    let mut revoked = None;
    if let Some(found) = state.store.peek(&key).await? {
        let r: RefreshRecord = store::decode(&key, &found.value)?;
        if r.client_id == caller.client_id {
            revoke_grant(&state.store, &r.gid, r.family_exp.max(now + state.config.tokens.access_token_ttl), now)
                .await?;
            state.store.delete(&key).await?;
            tracing::info!(client_id = %caller.client_id, "refresh token revoked");
            revoked = Some(("refresh_token", r.user.sub));
        }
    } else if let Ok((c, _)) = state.keys.verify::<AccessClaims>(&token) {
        // Only our own, unexpired tokens of this client; anything else is silently ignored (s2.2).
        if c.client_id == caller.client_id && c.iss == state.config.issuer && c.exp > now {
            state.store.put(&keys::revoked_jti(&c.jti), b"1", Some(store::ttl_until(c.exp, now))).await?;
            tracing::info!(client_id = %caller.client_id, "access token revoked");
            revoked = Some(("access_token", c.sub));
        }
    }
    if let Some((kind, sub)) = revoked {
        let event = Event::new(Kind::TokenRevoked, Outcome::Success)
            .actor(format!("client:{}", caller.client_id))
            .client(&caller.client_id)
            .subject(sub)
            .detail(serde_json::json!({"token_type": kind}));
        state.audit.record(meta.apply(event, caller.app_id.as_deref())).await;
    }
    // RFC 7009 s2.2: 200 whether or not the token was valid.
    Ok(StatusCode::OK.into_response())
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/introspect", post(introspect)).route("/revoke", post(revoke))
}
