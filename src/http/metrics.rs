//! `GET /metrics`: this instance's Prometheus metrics in the text format 0.0.4. 404 when
//! `[metrics] enabled = false`; guarded by a bearer token (RFC 6750 s2.1) when one is set.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::extract::bearer;
use crate::crypto::{self, ct_eq};
use crate::error::OAuthError;
use crate::http::error::{BearerError, Problem};
use crate::metrics::text::CONTENT_TYPE;

/// Checks the scrape token when one is configured, in constant time.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), BearerError> {
    let expected = &state.config.metrics.token;
    if expected.is_empty() {
        return Ok(());
    }
    let token = bearer(headers, None)?;
    if !ct_eq(crypto::sha256(token.as_bytes()).as_slice(), crypto::sha256(expected.as_bytes()).as_slice()) {
        return Err(BearerError::Rejected(OAuthError::invalid_token("the metrics token is invalid")));
    }
    Ok(())
}

async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.config.metrics.enabled {
        return Problem::not_found("no such endpoint").into_response();
    }
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    let sources = crate::metrics::gauges::Sources {
        metrics: &state.metrics,
        store: state.store.as_ref(),
        keys: &state.keys,
        audit: &state.audit,
        rotation_days: state.config.keys.rotation_days,
        now: state.clock.now(),
    };
    let mut resp = crate::metrics::gauges::scrape(&sources).await.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}
