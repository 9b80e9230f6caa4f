//! `/healthz` (the process answers) and `/readyz` (the store answers and keys are loaded),
//! SH-6.2.4d: the health address reports the real state.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::jwt::Alg;

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await;
    let keys = state.keys.current();
    let keys_ok = [Alg::ES256, Alg::RS256, Alg::EdDSA].iter().all(|a| keys.active(*a).is_some());
    let ready = store.is_ok() && keys_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": if store.is_ok() { "ok" } else { "unreachable" },
        "keys": if keys_ok { "ok" } else { "missing" },
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// Routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}
