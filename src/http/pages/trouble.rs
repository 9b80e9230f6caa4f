//! Error pages citizens understand (issue 14): a plain title, what happened and what to do next
//! from the catalogue, a button back to the application only when there is a safe (registered)
//! place to go, and the technical code, description and request id folded away for support.

use axum::http::StatusCode;
use axum::response::Response;

use super::{Locale, catalogue, esc, page};
use crate::clients::Client;

/// What went wrong, as a citizen meets it (one catalogue entry each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// The application's request is incomplete or wrong.
    BadRequest,
    /// Unknown or disabled client.
    UnknownClient,
    /// The client may not do this.
    UnauthorizedClient,
    /// The person may not use the application (audience, refusal).
    AccessDenied,
    /// The application asked for scopes beyond its grant.
    InvalidScope,
    /// A bug or a corrupt record.
    ServerError,
    /// Storage or a dependency is down.
    Unavailable,
    /// The redirect URI is not registered.
    BadRedirect,
    /// The pending login expired, was replaced or belongs to another browser.
    Expired,
    /// The pending logout expired or belongs to another browser.
    LogoutExpired,
    /// The form's anti-CSRF token does not match.
    FormExpired,
    /// Too many requests.
    RateLimited,
    /// The request missed its deadline.
    Deadline,
    /// No such page.
    NotFound,
    /// The application needs a fresh or interactive login.
    LoginRequired,
    /// A login through an upstream platform failed.
    UpstreamFailed,
}

impl Trouble {
    /// Classifies an error shown on a page by its OAuth code, its status and (for the generic
    /// `invalid_request`) the description our own code gave it.
    pub fn of(status: StatusCode, code: &str, description: &str) -> Self {
        match (status, code) {
            (StatusCode::TOO_MANY_REQUESTS, _) => Self::RateLimited,
            (StatusCode::NOT_FOUND, _) => Self::NotFound,
            (StatusCode::BAD_GATEWAY, _) => Self::UpstreamFailed,
            (_, "invalid_client") => Self::UnknownClient,
            (_, "unauthorized_client") => Self::UnauthorizedClient,
            (_, "access_denied") => Self::AccessDenied,
            (_, "invalid_scope") => Self::InvalidScope,
            (_, "server_error") => Self::ServerError,
            (_, "temporarily_unavailable") if description.contains("took too long") => Self::Deadline,
            (_, "temporarily_unavailable") => Self::Unavailable,
            (
                _,
                "login_required"
                | "interaction_required"
                | "consent_required"
                | "account_selection_required"
                | "unmet_authentication_requirements",
            ) => Self::LoginRequired,
            (_, "invalid_request") if description.contains("redirect_uri") => Self::BadRedirect,
            (_, "invalid_request") if description.contains("logout request has expired") => Self::LogoutExpired,
            (_, "invalid_request") if description.contains("login request has expired") => Self::Expired,
            (_, "invalid_request") if description.contains("form has expired") => Self::FormExpired,
            _ => Self::BadRequest,
        }
    }

    /// (title, what happened, what to do next) in `l`.
    pub fn texts(self, l: Locale) -> (&'static str, &'static str, &'static str) {
        let t = &catalogue::of(l).trouble;
        match self {
            Self::BadRequest => t.bad_request,
            Self::UnknownClient => t.unknown_client,
            Self::UnauthorizedClient => t.unauthorized_client,
            Self::AccessDenied => t.access_denied,
            Self::InvalidScope => t.invalid_scope,
            Self::ServerError => t.server_error,
            Self::Unavailable => t.unavailable,
            Self::BadRedirect => t.bad_redirect,
            Self::Expired => t.expired,
            Self::LogoutExpired => t.logout_expired,
            Self::FormExpired => t.form_expired,
            Self::RateLimited => t.rate_limited,
            Self::Deadline => t.deadline,
            Self::NotFound => t.not_found,
            Self::LoginRequired => t.login_required,
            Self::UpstreamFailed => t.upstream_failed,
        }
    }
}

/// A safe place to send a person back to `client`: its first registered post-logout redirect
/// URI, else the origin of its first registered redirect URI (https, or http on loopback).
/// Never a URL taken from the request.
pub fn home_of(client: &Client) -> Option<String> {
    if let Some(u) = client.post_logout_redirect_uris.first() {
        return Some(u.clone());
    }
    let u = url::Url::parse(client.redirect_uris.first()?).ok()?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    (u.scheme() == "https" || (u.scheme() == "http" && loopback))
        .then(|| format!("{}/", u.origin().ascii_serialization()))
}

/// The folded technical details: code, description and the request id, for a support call.
pub(crate) fn details(l: Locale, code: &str, description: &str) -> String {
    let t = &catalogue::of(l).trouble;
    let rid = super::super::request_id::current()
        .map(|id| format!("<dt>{}</dt><dd class=\"rid\">{}</dd>", t.request_id, esc(&id)))
        .unwrap_or_default();
    let code =
        if code.is_empty() { String::new() } else { format!("<dt>{}</dt><dd><code>{}</code></dd>", t.code, esc(code)) };
    let desc = if description.is_empty() { String::new() } else { format!("<dd>{}</dd>", esc(description)) };
    format!("<details class=\"tech\"><summary>{}</summary><dl>{code}{desc}{rid}</dl></details>", t.details)
}

/// The error page of `kind`, with a button back to `back` (a registered URI) when given.
pub fn trouble(
    l: Locale,
    status: StatusCode,
    kind: Trouble,
    code: &str,
    description: &str,
    back: Option<&str>,
) -> Response {
    let (title, what, next) = kind.texts(l);
    let t = &catalogue::of(l).trouble;
    let back = back
        .map(|b| format!("<p><a class=\"button\" href=\"{}\">{}</a></p>", esc(b), t.back_to_app))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p class=\"error\" role=\"alert\">{what}</p><p>{next}</p>{back}{}",
        details(l, code, description)
    );
    page(l, title, &body, status, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 14: every code a citizen can meet gets its own plain explanation.
    #[test]
    fn classification() {
        let bad = StatusCode::BAD_REQUEST;
        assert_eq!(Trouble::of(bad, "invalid_client", "unknown client"), Trouble::UnknownClient);
        assert_eq!(
            Trouble::of(bad, "invalid_request", "redirect_uri is not registered for this client"),
            Trouble::BadRedirect
        );
        assert_eq!(Trouble::of(bad, "invalid_request", "the form has expired; reload the page"), Trouble::FormExpired);
        assert_eq!(Trouble::of(bad, "temporarily_unavailable", "the request took too long; retry"), Trouble::Deadline);
        assert_eq!(Trouble::of(StatusCode::TOO_MANY_REQUESTS, "x", ""), Trouble::RateLimited);
        assert_eq!(Trouble::of(bad, "invalid_request", "client_id is missing"), Trouble::BadRequest);
    }
}
