//! `/healthz` (the process answers) and `/readyz` (the instance can serve: see
//! [`crate::health`]), SH-6.2.4d: the health address reports the real state.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let r = crate::health::readiness(&state.store, &state.keys, &state.instance, state.clock.now()).await;
    let ready = r.ready();
    let status = match (ready, r.draining) {
        (true, _) => "ready",
        (false, true) => "draining",
        (false, false) => "not_ready",
    };
    let seed = match (r.store, r.seeded) {
        (crate::health::StoreState::Unreachable, _) => "unknown",
        (_, true) => "ok",
        (_, false) => "missing",
    };
    let body = json!({
        "status": status,
        "store": r.store.as_str(),
        "seed": seed,
        "keys": if r.keys { "ok" } else { "missing" },
        "draining": r.draining,
        "instance": state.instance.id(),
    });
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut resp = (code, axum::Json(body)).into_response();
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    resp
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}
