//! The protocol's error vocabulary: codes as closed enums (RFC 6749 s4.1.2.1 and s5.2, RFC 6750
//! s3.1, OIDC Core s3.1.2.6, RFC 7591 s3.2.2, RFC 8693 s2.2.2) and the OAuth error domain code
//! returns. No HTTP here: the one mapping to responses is [`crate::http::error`].

use std::borrow::Cow;

use crate::store::StoreError;

/// Error codes of the OAuth and OpenID endpoints. Each variant's wire value is the spec's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 s5.2: the request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// RFC 6749 s5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 s5.2: the grant or refresh token is invalid, expired, revoked or mismatched.
    InvalidGrant,
    /// RFC 6749 s5.2: the client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 s5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 s5.2: the scope is invalid, unknown, or exceeds what was granted.
    InvalidScope,
    /// RFC 6749 s4.1.2.1: the resource owner or server denied the request.
    AccessDenied,
    /// RFC 6749 s4.1.2.1: this response type is not supported.
    UnsupportedResponseType,
    /// RFC 6749 s4.1.2.1: the server met an unexpected condition.
    ServerError,
    /// RFC 6749 s4.1.2.1: the server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// OIDC Core s3.1.2.6: the user must log in but `prompt=none` was asked.
    LoginRequired,
    /// OIDC Core s3.1.2.6: the user must consent but `prompt=none` was asked.
    ConsentRequired,
    /// OIDC Core s3.1.2.6: some interaction is needed but `prompt=none` was asked.
    InteractionRequired,
    /// OIDC Core s6: the `request` parameter is not supported.
    RequestNotSupported,
    /// OIDC Core s6: the `request_uri` parameter is not supported.
    RequestUriNotSupported,
    /// RFC 6750 s3.1: the access token is missing, expired, revoked or malformed.
    InvalidToken,
    /// RFC 6750 s3.1: the token lacks the scope this resource needs.
    InsufficientScope,
    /// RFC 7009 s2.2.1: revocation of this token type is not supported.
    UnsupportedTokenType,
    /// RFC 7591 s3.2.2: a redirect URI is invalid.
    InvalidRedirectUri,
    /// RFC 7591 s3.2.2: a metadata field is invalid.
    InvalidClientMetadata,
    /// RFC 8693 s2.2.2: the audience or resource is not acceptable.
    InvalidTarget,
    /// OpenID Connect Core Unmet Authentication Requirements 1.0 s1: the server cannot meet the
    /// client's requirements for the authentication of the user (an `acr` it asked for).
    UnmetAuthenticationRequirements,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidTarget => "invalid_target",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
        }
    }
}

/// An OAuth/OIDC protocol error: a code and a human-readable description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The spec's error code.
    pub code: ErrorCode,
    /// `error_description`: safe to show to the client, never contains secrets.
    pub description: Cow<'static, str>,
}

impl OAuthError {
    /// A new error with a description.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self { code, description: description.into() }
    }
    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    /// `invalid_client`.
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    /// `unauthorized_client`.
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    /// `invalid_token`.
    pub fn invalid_token(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidToken, d)
    }
    /// `server_error` with an opaque description.
    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "internal error")
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                Self::new(ErrorCode::TemporarilyUnavailable, "storage is unavailable, retry later")
            }
            StoreError::Corrupt { key, reason } => {
                tracing::error!(%key, %reason, "corrupt stored value");
                Self::server_error()
            }
        }
    }
}
