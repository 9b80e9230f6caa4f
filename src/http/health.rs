//! `/healthz` (the process answers) and `/readyz` (the store answers and keys are loaded),
//! SH-6.2.4d: the health address reports the real state.

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
    let r = crate::health::readiness(&state.store, &state.keys).await;
    let ready = r.ready();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": if r.store { "ok" } else { "unreachable" },
        "keys": if r.keys { "ok" } else { "missing" },
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}
