//! The one place errors become HTTP responses: OAuth JSON errors (RFC 6749 s5.2) with their
//! status, RFC 6750 s3 bearer challenges, RFC 7807 problem documents for the admin API, and the
//! HTML error pages of the browser-facing endpoints. Every response here is `no-store`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::pages::{self, Locale};
use crate::apps::AppError;
use crate::error::{ErrorCode, OAuthError};
use crate::ratelimit::Limited;
use crate::store::StoreError;
use crate::users::WriteError;

/// An RFC 6749 s5.2 error body, plus the request id (extra members are allowed there) so a
/// caller can quote it to support.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl<'a> ErrorBody<'a> {
    fn new(e: &'a OAuthError) -> Self {
        Self { error: e.code.as_str(), error_description: &e.description, request_id: super::request_id::current() }
    }
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// JSON error response of the token-style endpoints (RFC 6749 s5.2, RFC 7009, RFC 7662,
/// RFC 7591): status 400 (401 for `invalid_client`, 503 when storage is down), no-store.
#[derive(Debug)]
pub struct JsonError {
    /// The protocol error.
    pub error: OAuthError,
    /// A status other than the code's usual one (413 for an oversized body).
    pub status: Option<StatusCode>,
    /// Seconds for `Retry-After` (RFC 9110 s10.2.3), when the client should come back later.
    pub retry_after: Option<u64>,
}

impl From<OAuthError> for JsonError {
    fn from(error: OAuthError) -> Self {
        Self { error, status: None, retry_after: None }
    }
}

/// The description every rate-limited answer carries.
fn rate_limited_text(l: Limited) -> String {
    format!("rate limit exceeded (AY-8.3.2.1); retry after {} s", l.retry_after)
}

impl From<Limited> for JsonError {
    /// RFC 6585 s4: 429 with `Retry-After`. RFC 6749 has no code for it; the body says
    /// `temporarily_unavailable`, which clients already treat as "try later".
    fn from(l: Limited) -> Self {
        Self {
            error: OAuthError::new(ErrorCode::TemporarilyUnavailable, rate_limited_text(l)),
            status: Some(StatusCode::TOO_MANY_REQUESTS),
            retry_after: Some(l.retry_after),
        }
    }
}

impl From<crate::guard::Refused> for JsonError {
    /// A client held after failed authentications (RFC 6749 s10.10). RFC 6749 has no code for
    /// it: like call control, 429 with `Retry-After` and `temporarily_unavailable`, which a
    /// client treats as "try later" (`invalid_client` would read as "your secret is wrong" to
    /// the legitimate client held because of someone else's guesses at its address).
    fn from(r: crate::guard::Refused) -> Self {
        let text = format!("too many failed client authentications; retry after {} s", r.retry_after);
        Self {
            error: OAuthError::new(ErrorCode::TemporarilyUnavailable, text),
            status: Some(StatusCode::TOO_MANY_REQUESTS),
            retry_after: Some(r.retry_after),
        }
    }
}

impl From<StoreError> for JsonError {
    fn from(e: StoreError) -> Self {
        OAuthError::from(e).into()
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let code = self.error.code;
        let body = ErrorBody::new(&self.error);
        let status = self.status.unwrap_or_else(|| status_of(code));
        let mut resp = (status, axum::Json(body)).into_response();
        no_store(&mut resp);
        if code == ErrorCode::InvalidClient {
            // RFC 6749 s5.2: a 401 carries a challenge for the scheme clients authenticate with.
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tongzheng\""));
        }
        if code == ErrorCode::TemporarilyUnavailable {
            let secs = self.retry_after.unwrap_or(1);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A protected-resource error (RFC 6750 s3): 401/403 with a `WWW-Authenticate: Bearer` challenge.
#[derive(Debug)]
pub enum BearerError {
    /// No credentials at all: RFC 6750 s3.1 says answer with a bare challenge and no error code.
    Missing,
    /// Credentials were sent and rejected.
    Rejected(OAuthError),
    /// The token's client is over its rate limit (AY-8.3.2.1).
    Limited(Limited),
}

impl From<Limited> for BearerError {
    fn from(l: Limited) -> Self {
        Self::Limited(l)
    }
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        Self::Rejected(e.into())
    }
}

impl From<OAuthError> for BearerError {
    fn from(e: OAuthError) -> Self {
        Self::Rejected(e)
    }
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        if let Self::Limited(l) = self {
            return JsonError::from(l).into_response();
        }
        let mut resp = match &self {
            Self::Limited(_) | Self::Missing => StatusCode::UNAUTHORIZED.into_response(),
            Self::Rejected(e) => (status_of(e.code), axum::Json(ErrorBody::new(e))).into_response(),
        };
        let challenge = match &self {
            Self::Limited(_) | Self::Missing => "Bearer realm=\"tongzheng\"".to_owned(),
            Self::Rejected(e) => {
                let d = e.description.replace(['"', '\\'], "'");
                format!("Bearer realm=\"tongzheng\", error=\"{}\", error_description=\"{d}\"", e.code.as_str())
            }
        };
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        no_store(&mut resp);
        resp
    }
}

/// An RFC 7807 problem document, used by the admin API.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// HTTP status code.
    #[serde(skip)]
    pub status: StatusCode,
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short summary of the problem type.
    pub title: &'static str,
    /// Occurrence-specific explanation.
    pub detail: String,
    /// The HTTP status, repeated in the body as RFC 7807 s3.1 allows.
    #[serde(rename = "status")]
    pub status_code: u16,
    /// The RFC 6750 s3.1 error code of the `WWW-Authenticate: Bearer` challenge, when a bearer
    /// token was presented and did not enable access.
    #[serde(skip)]
    pub bearer_error: Option<ErrorCode>,
    /// Seconds for `Retry-After` (429 and 503).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// RFC 7807 s3.2 extension members (e.g. `from`, `to` and `allowed` of an illegal
    /// transition).
    #[serde(flatten, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem with the given status, type slug, title and detail.
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind: slug,
            title,
            detail: detail.into(),
            status_code: status.as_u16(),
            bearer_error: None,
            retry_after: None,
            extensions: serde_json::Map::new(),
        }
    }
    /// Adds an RFC 7807 s3.2 extension member.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }
    /// The same problem, answered with an RFC 6750 s3 challenge naming `code`.
    pub fn with_bearer_error(mut self, code: ErrorCode) -> Self {
        self.bearer_error = Some(code);
        self
    }
    /// 400 validation failure.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "urn:tongzheng:problem:invalid-input", "Invalid input", detail)
    }
    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "urn:tongzheng:problem:not-found", "Not found", detail)
    }
    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "urn:tongzheng:problem:conflict", "Conflict", detail)
    }
    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "urn:tongzheng:problem:unauthorized", "Unauthorized", detail)
    }
    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "urn:tongzheng:problem:forbidden", "Forbidden", detail)
    }
}

impl From<WriteError> for Problem {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Store(e) => e.into(),
            other => Self::conflict(other.to_string()),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match OAuthError::from(e).code {
            ErrorCode::TemporarilyUnavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:tongzheng:problem:unavailable",
                "Service unavailable",
                "storage is unavailable, retry later",
            ),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "urn:tongzheng:problem:internal",
                "Internal error",
                "internal error",
            ),
        }
    }
}

impl From<crate::keys::KeyError> for Problem {
    fn from(e: crate::keys::KeyError) -> Self {
        match e {
            crate::keys::KeyError::Store(e) => e.into(),
            e => {
                tracing::error!(error = %e, "key set operation failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "urn:tongzheng:problem:internal",
                    "Internal error",
                    "key set operation failed",
                )
            }
        }
    }
}

impl From<OAuthError> for Problem {
    fn from(e: OAuthError) -> Self {
        match e.code {
            ErrorCode::InvalidToken => Self::unauthorized(e.description).with_bearer_error(e.code),
            ErrorCode::InvalidClient => Self::unauthorized(e.description),
            ErrorCode::InsufficientScope => Self::forbidden(e.description).with_bearer_error(e.code),
            ErrorCode::AccessDenied => Self::forbidden(e.description),
            ErrorCode::TemporarilyUnavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:tongzheng:problem:unavailable",
                "Service unavailable",
                e.description,
            ),
            ErrorCode::ServerError => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "urn:tongzheng:problem:internal",
                "Internal error",
                "internal error",
            ),
            _ => Self::bad_request(e.description),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        // RFC 7807 s3.2 extension member, for support.
        if let Some(id) = super::request_id::current() {
            self.extensions.insert("request_id".to_owned(), id.into());
        }
        let mut resp = (self.status, axum::Json(&self)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        // RFC 6750 s3: a bare challenge when no token came, the error code when one was refused.
        let challenge = match self.bearer_error {
            Some(code) => Some(format!("Bearer realm=\"tongzheng\", error=\"{}\"", code.as_str())),
            None => (self.status == StatusCode::UNAUTHORIZED).then(|| "Bearer realm=\"tongzheng\"".to_owned()),
        };
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        no_store(&mut resp);
        resp
    }
}

impl From<Limited> for Problem {
    fn from(l: Limited) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "urn:tongzheng:problem:rate-limited",
            "Too many requests",
            rate_limited_text(l),
        );
        p.retry_after = Some(l.retry_after);
        p
    }
}

impl From<crate::clients::Reserved> for Problem {
    fn from(e: crate::clients::Reserved) -> Self {
        Self::forbidden(e.to_string())
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        let detail = e.to_string();
        match e {
            AppError::NotFound(_) => Self::not_found(detail),
            AppError::Invalid(_) => Self::bad_request(detail),
            AppError::MissingEvidence(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "urn:tongzheng:problem:missing-evidence",
                "Review evidence missing",
                detail,
            ),
            AppError::IllegalTransition { from, to } => Self::new(
                StatusCode::CONFLICT,
                "urn:tongzheng:problem:illegal-transition",
                "Illegal lifecycle transition",
                detail,
            )
            .with("from", from.as_str().into())
            .with("to", to.as_str().into())
            .with("allowed", from.next().iter().map(|s| s.as_str()).collect::<Vec<_>>().into()),
            AppError::Conflict(_) => Self::conflict(detail),
            AppError::Reserved(_) => Self::forbidden(detail),
            AppError::Busy => {
                let mut p = Self::conflict(detail);
                p.retry_after = Some(1);
                p
            }
            AppError::Store(e) => e.into(),
            AppError::Audit(e) => e.into(),
        }
    }
}

impl From<crate::audit::AuditError> for Problem {
    fn from(e: crate::audit::AuditError) -> Self {
        use crate::audit::AuditError as A;
        let detail = e.to_string();
        match e {
            A::InvalidQuery(_) | A::Malformed { .. } | A::TooManyLines { .. } => Self::bad_request(detail),
            A::Disabled => Self::conflict("the audit log is disabled on this platform"),
            A::Stopped => {
                let mut p = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "urn:tongzheng:problem:unavailable",
                    "Service unavailable",
                    "the audit log is shutting down; retry",
                );
                p.retry_after = Some(5);
                p
            }
            A::Io { .. } | A::Config { .. } | A::AlreadyStarted | A::Task(_) => {
                tracing::error!(error = %detail, "audit log failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "urn:tongzheng:problem:internal",
                    "Internal error",
                    "internal error",
                )
            }
        }
    }
}

/// The status of a refused registration, code or reset (HL-5.2, SH-8.2), with the seconds to
/// wait when it is a throttle: bad input 400, a taken name or number 409, a wrong or spent
/// code 400, too many codes or entries 429, busy hashing, SMS or store 503. Never a 5xx for
/// what the person typed.
pub fn signup_status(e: &crate::signup::SignupError) -> (StatusCode, Option<u64>) {
    use crate::otp::OtpError as O;
    use crate::signup::SignupError as S;
    match e {
        S::Invalid(_) | S::NoAccount => (StatusCode::BAD_REQUEST, None),
        S::UsernameTaken | S::PhoneTaken | S::UsccTaken => (StatusCode::CONFLICT, None),
        S::NoPerson => (StatusCode::UNAUTHORIZED, None),
        S::Code(O::NoCode | O::Expired | O::Wrong { .. } | O::Malformed(_)) => (StatusCode::BAD_REQUEST, None),
        S::Code(O::TooManyTries) => (StatusCode::TOO_MANY_REQUESTS, None),
        S::Code(o @ (O::TooSoon { .. } | O::RateLimited { .. })) => (StatusCode::TOO_MANY_REQUESTS, o.retry_after()),
        S::Code(O::Sms(_)) | S::Busy => (StatusCode::SERVICE_UNAVAILABLE, Some(5)),
        S::Code(O::Store(e)) | S::Store(e) => (store_status(e), Some(1)),
    }
}

/// The status of a refused password change on `/account`.
pub fn account_status(e: &crate::account::ChangeError) -> StatusCode {
    use crate::account::ChangeError as C;
    match e {
        C::WrongPassword | C::Policy(_) => StatusCode::BAD_REQUEST,
        C::Gone => StatusCode::UNAUTHORIZED,
        C::Busy => StatusCode::SERVICE_UNAVAILABLE,
        C::Store(e) => store_status(e),
    }
}

fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Corrupt { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An HTML error page for a browser-facing request that must not redirect (RFC 6749
/// s4.1.2.1): the code's status (400; 401 `invalid_client`; 403 `access_denied`; 503 when
/// storage is down), the code and its description in the user's language.
pub fn page(locale: Locale, e: &OAuthError) -> Response {
    pages::error(locale, status_of(e.code), e.code.as_str(), &e.description)
}

/// The HTML page of a store failure (503, or 500 for a corrupt record).
pub fn store_page(locale: Locale, e: StoreError) -> Response {
    page(locale, &OAuthError::from(e))
}

/// Which error format a path answers in: problem documents for the admin API, HTML pages for
/// what a browser shows, OAuth JSON for the rest.
fn family(path: &str) -> Family {
    let browser = ["/authorize", "/login", "/consent", "/end_session", "/end_session/confirm", "/federation/callback"];
    // The registration, recovery and account pages (HL-5.2).
    let own = ["/signup", "/password/reset", "/account"];
    if path.starts_with("/admin/") || path.starts_with("/scim/") {
        Family::Problem
    } else if browser.contains(&path)
        || own.iter().any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
        || (path.starts_with("/federation/") && path.ends_with("/login"))
    {
        Family::Page
    } else {
        Family::OAuth
    }
}

enum Family {
    OAuth,
    Problem,
    Page,
}

/// The answer when a request misses its deadline (JM-5): 503 with `Retry-After`, in the
/// endpoint's own error format.
pub fn deadline_exceeded(path: &str) -> Response {
    let e = OAuthError::new(ErrorCode::TemporarilyUnavailable, "the request took too long; retry");
    let mut r = match family(path) {
        Family::OAuth => JsonError::from(e).into_response(),
        Family::Problem => Problem::from(e).into_response(),
        Family::Page => page(Locale::ZhCn, &e),
    };
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The answer when a handler failed outright (a bug): 500 with an opaque body.
pub fn internal(path: &str) -> Response {
    let e = OAuthError::server_error();
    match family(path) {
        Family::OAuth => JsonError::from(e).into_response(),
        Family::Problem => Problem::from(e).into_response(),
        Family::Page => page(Locale::ZhCn, &e),
    }
}

impl From<crate::identity::records::RecordError> for Problem {
    fn from(e: crate::identity::records::RecordError) -> Self {
        use crate::identity::records::RecordError as E;
        match e {
            E::Store(s) => s.into(),
            E::NotFound(d) => Self::not_found(d),
            E::Conflict(d) => Self::conflict(d),
            E::Busy => Self::conflict(E::Busy.to_string()),
            invalid @ (E::Invalid(..) | E::IdNumber(_) | E::Uscc(_) | E::Phone(_)) => {
                Self::bad_request(invalid.to_string())
            }
        }
    }
}

impl IntoResponse for crate::scim::ScimError {
    /// RFC 7644 s3.12: `{"schemas": [Error], "status": "400", "scimType": ..., "detail": ...}`
    /// as `application/scim+json`; a store failure is 503 with an opaque detail.
    fn into_response(self) -> Response {
        use crate::scim::ScimError as E;
        let (status, scim_type, detail, extra) = match &self {
            E::Client { status, scim_type, detail } => (*status, scim_type.map(|t| t.as_str()), detail.clone(), None),
            E::Auth { status, detail, .. } => (*status, None, detail.clone(), None),
            E::Limited(_) => (429, None, "too many requests; retry later".to_owned(), None),
            E::Resync { cursor } => (410, None, self.to_string(), Some(cursor.clone())),
            E::Store(e) => {
                tracing::warn!(error = %e, "scim request failed on the store");
                (503, None, "storage is unavailable, retry later".to_owned(), None)
            }
        };
        let mut body = serde_json::json!({
            "schemas": [crate::scim::schema::ERROR],
            "status": status.to_string(),
            "detail": detail,
        });
        if let Some(obj) = body.as_object_mut() {
            if let Some(t) = scim_type {
                obj.insert("scimType".into(), t.into());
            }
            if let Some(c) = extra {
                obj.insert("cursor".into(), c.into());
            }
        }
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = (code, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/scim+json"));
        match &self {
            E::Auth { bearer_error, .. } => {
                let challenge = match bearer_error {
                    Some(code) => format!("Bearer realm=\"scim\", error=\"{code}\""),
                    None => "Bearer realm=\"scim\"".to_owned(),
                };
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            E::Limited(secs) => {
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        resp
    }
}
