//! OpenID Provider metadata (OIDC Discovery s3, RFC 8414 s2), the JWKS (RFC 7517 s5) and the
//! UserInfo endpoint (OIDC Core s5.3) with claims released by scope (OIDC Core s5.4, SH-8.2).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::AppState;
use super::extract::{Params, bearer, body_bytes, is_form, parse_params};
use crate::error::{ErrorCode, OAuthError};
use crate::http::error::BearerError;
use crate::tokens::Dead;

/// The provider metadata document.
pub fn metadata(state: &AppState) -> Value {
    let issuer = &state.config.issuer;
    let u = &state.urls;
    let mut m = json!({
        "issuer": issuer,
        "authorization_endpoint": u.authorize,
        "token_endpoint": u.token,
        "userinfo_endpoint": u.userinfo,
        "jwks_uri": u.jwks,
        "introspection_endpoint": u.introspect,
        "revocation_endpoint": u.revoke,
        "end_session_endpoint": format!("{issuer}/end_session"),
        // tongzheng's server-to-server logout (HL-5.4), used by trusting platforms (GB-6.4d).
        "platform_logout_endpoint": format!("{issuer}/logout"),
        // Where trusted downstream platforms push their registrations (GB-6.4a).
        "registration_sync_endpoint": format!("{issuer}/federation/v1/registrations"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "scopes_supported": ["openid", "profile", "email", "phone", "idcard", "legal_person", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account", "create"],
        "claims_supported": claims_supported(),
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["zh-CN", "en"],
        "claim_types_supported": ["normal"],
    });
    // HL-6.1: the assurance levels, as `acr` values, lowest first ("0" visitor .. "3" strong);
    // the `claims` parameter is read for an essential `acr` only (OIDC Core s5.5.1.1).
    if let Some(obj) = m.as_object_mut() {
        let acrs: Vec<&str> = crate::identity::AssuranceLevel::ALL.iter().map(|l| l.acr()).collect();
        obj.insert("acr_values_supported".into(), serde_json::json!(acrs));
    }
    if !state.config.security.initial_access_token.is_empty()
        && let Some(obj) = m.as_object_mut()
    {
        obj.insert("registration_endpoint".into(), Value::String(u.register.clone()));
    }
    m
}

/// The protocol claims and every claim of the claims table ([`crate::identity::claims`]).
fn claims_supported() -> Vec<&'static str> {
    let protocol = ["iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid", "azp", "at_hash"];
    let mut out: Vec<&'static str> = protocol.to_vec();
    out.extend(crate::identity::claims::names());
    out
}

fn cached_json(body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

async fn discovery(State(state): State<AppState>) -> Response {
    cached_json(metadata(&state).to_string())
}

async fn jwks(State(state): State<AppState>) -> Response {
    cached_json(state.keys.current().jwks_json().to_string())
}

async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, BearerError> {
    userinfo(&state, &headers, None).await
}

async fn userinfo_post(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let headers = req.headers().clone();
    // RFC 6750 s2.2: a form-encoded body may carry the token.
    let form = if is_form(&headers) {
        match body_bytes(req, &()).await {
            Ok(body) => match parse_params(&body) {
                Ok(p) => Some(p),
                Err(e) => return BearerError::Rejected(e).into_response(),
            },
            Err(e) => return e.into_response(),
        }
    } else {
        None
    };
    userinfo(&state, &headers, form.as_ref()).await.into_response()
}

/// OIDC Core s5.3.1: claims of the token's user, by the scopes the token carries.
async fn userinfo(state: &AppState, headers: &HeaderMap, form: Option<&Params>) -> Result<Response, BearerError> {
    let token = bearer(headers, form)?;
    let live = state.authority().access(&token, state.clock.now()).await?.map_err(dead_token)?;
    let (claims, client) = (&live.claims, &live.standing.client);
    state.rate_check(client)?;
    // RFC 9068 s4: UserInfo is our resource; a token exchanged for another API is not for it.
    if !claims.is_for(&state.config.issuer) {
        return Err(OAuthError::invalid_token("the access token is meant for another audience").into());
    }
    // The authority read the user while deciding the token is alive (present, enabled, same
    // token generation); a token without one is a client's own token.
    if live.standing.user.is_none() || !claims.has_scope("openid") {
        return Err(OAuthError::new(ErrorCode::InsufficientScope, "the token lacks the openid scope").into());
    }
    let out = crate::tokens::userinfo(&live, state.keys.data());
    let mut r = axum::Json(Value::Object(out)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Every dead token is the same `invalid_token` to the caller (RFC 6750 s3.1).
pub fn dead_token(dead: Dead) -> OAuthError {
    tracing::debug!(reason = dead.as_str(), "bearer token refused");
    OAuthError::invalid_token("the access token is invalid, expired or revoked")
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/jwks", get(jwks))
        .route("/userinfo", get(userinfo_get).post(userinfo_post))
}
