//! Who calls the SCIM service: tongzheng's own access tokens with a directory scope. The write
//! scope reads everything and writes; the read scope reads the client's application's visible
//! scope (SH-6.2.4a). Errors are SCIM errors with an RFC 6750 challenge.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::directory::View;
use crate::http::AppState;
use crate::http::error::BearerError;
use crate::http::extract::bearer;
use crate::scim::ScimError;
use crate::scopes::{DIRECTORY_READ, DIRECTORY_SENSITIVE, DIRECTORY_WRITE};

/// An authenticated SCIM caller.
pub struct Caller {
    /// What it sees.
    pub view: View,
    /// Whether it may write.
    pub writer: bool,
    /// Whether sensitive values are shown in clear.
    pub reveal: bool,
    /// The application of a reading client (its own visible scope changes are in its feed).
    pub app: Option<String>,
}

fn unauthorized(detail: &str, code: Option<&'static str>) -> ScimError {
    ScimError::Auth { status: 401, bearer_error: code, detail: detail.to_owned() }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let token = bearer(&parts.headers, None).map_err(|e| match e {
            BearerError::Missing => unauthorized("a bearer token with a directory scope is required", None),
            BearerError::Rejected(e) => unauthorized(&e.description, Some("invalid_request")),
            BearerError::Limited(l) => ScimError::Limited(l.retry_after),
        })?;
        let live = state
            .authority()
            .access(&token, state.clock.now())
            .await?
            .map_err(|_| unauthorized("the access token is invalid, expired or revoked", Some("invalid_token")))?;
        let (claims, client) = (live.claims, live.standing.client);
        // RFC 9068 s4: a token exchanged for another resource is not for this one.
        if !claims.is_for(&state.config.issuer) {
            return Err(unauthorized("the access token is meant for another audience", Some("invalid_token")));
        }
        let writer = claims.has_scope(DIRECTORY_WRITE);
        if !writer && !claims.has_scope(DIRECTORY_READ) {
            return Err(ScimError::Auth {
                status: 403,
                bearer_error: Some("insufficient_scope"),
                detail: format!("the token lacks the '{DIRECTORY_READ}' or '{DIRECTORY_WRITE}' scope"),
            });
        }
        state.rate_check(&client).map_err(|l| ScimError::Limited(l.retry_after))?;
        let view = if writer { View::All } else { View::of_client(&state.store, &client).await? };
        let app = if writer { None } else { client.app_id.clone() };
        Ok(Self { view, writer, reveal: claims.has_scope(DIRECTORY_SENSITIVE), app })
    }
}

/// A caller that may write.
pub struct Writer(pub Caller);

impl FromRequestParts<AppState> for Writer {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ScimError> {
        let c = Caller::from_request_parts(parts, state).await?;
        if !c.writer {
            return Err(ScimError::Auth {
                status: 403,
                bearer_error: Some("insufficient_scope"),
                detail: format!("writing the directory needs the '{DIRECTORY_WRITE}' scope"),
            });
        }
        Ok(Self(c))
    }
}
