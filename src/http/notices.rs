//! `GET /agreement` and `GET /privacy`: the built-in user agreement and privacy notice, in the
//! visitor's language (JM-5.6, SH-D, SH-8.2); `GET /`, the landing page; and the 404 of unknown
//! paths: an HTML page for browsers, an RFC 7807 problem for API clients.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;

use super::AppState;
use super::pages::Locale;
use super::pages::notices::{Notice, notice};

fn locale(state: &AppState, headers: &HeaderMap) -> Locale {
    Locale::choose(None, headers, &state.config.security.default_locale)
}

async fn agreement(State(state): State<AppState>, headers: HeaderMap) -> Response {
    notice(locale(&state, &headers), Notice::Agreement)
}

async fn privacy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    notice(locale(&state, &headers), Notice::Privacy)
}

async fn landing(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::pages::landing::landing(locale(&state, &headers))
}

/// The answer to an unknown path: the HTML 404 page when the client accepts HTML (a browser),
/// else the RFC 7807 problem.
pub async fn not_found(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let html = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if html {
        super::pages::landing::not_found(locale(&state, &headers))
    } else {
        super::error::Problem::not_found("no such endpoint").into_response()
    }
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(landing)).route("/agreement", get(agreement)).route("/privacy", get(privacy))
}
