//! `GET /agreement` and `GET /privacy`: the built-in user agreement and privacy notice, in the
//! visitor's language (JM-5.6, SH-D, SH-8.2).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
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

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/agreement", get(agreement)).route("/privacy", get(privacy))
}
