//! `/token` (RFC 6749 s3.2): authenticates the client once, then hands the request to its
//! grant. Success is RFC 6749 s5.1 JSON with `Cache-Control: no-store`; errors are s5.2 JSON.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::AppState;
use super::extract::{Form, credentials};
use crate::clients;
use crate::error::{ErrorCode, JsonError, OAuthError};
use crate::grant::{client_credentials, code, refresh};

/// Authenticates the client of a token-style request (token, introspect, revoke).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &mut super::extract::Params,
    endpoint: &str,
) -> Result<clients::Client, JsonError> {
    let creds = credentials(headers, form)?;
    let audiences = [endpoint, state.config.issuer.as_str(), state.urls.token.as_str()];
    clients::authenticate(&state.store, &state.jwks, creds, &audiences, state.clock.now())
        .await
        .map(|a| a.client)
        .map_err(JsonError::from)
}

async fn token(State(state): State<AppState>, headers: HeaderMap, Form(mut form): Form) -> Result<Response, JsonError> {
    let grant_type =
        form.get("grant_type").cloned().ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    if !matches!(grant_type.as_str(), "authorization_code" | "refresh_token" | "client_credentials") {
        return Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type").into());
    }
    let client = authenticate(&state, &headers, &mut form, &state.urls.token).await?;
    let ctx = state.ctx();
    let get = |k: &str| form.get(k).map(String::as_str);
    let resp = match grant_type.as_str() {
        "authorization_code" => {
            let code = get("code").ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
            let req = code::Redeem { code, redirect_uri: get("redirect_uri"), code_verifier: get("code_verifier") };
            code::redeem(ctx, &client, req).await?
        }
        "refresh_token" => {
            let token = get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
            refresh::grant(ctx, &client, token, get("scope")).await?
        }
        _ => client_credentials::grant(ctx, &client, get("scope")).await?,
    };
    tracing::debug!(client_id = %client.client_id, grant_type = %grant_type, "token issued");
    let mut r = axum::Json(resp).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/token", post(token))
}
