//! Every request is answered within `server.request_deadline_ms` (JM-5: within 5 s), whatever
//! the store or a peer does. The handler runs as its own task: past the deadline the client gets
//! 503 with `Retry-After` in the endpoint's error format ([`super::error::deadline_exceeded`]),
//! while the work finishes in the background rather than being cut off between two writes.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// The deadline layer.
pub async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = Duration::from_millis(state.config.server.request_deadline_ms);
    let path = req.uri().path().to_owned();
    // The task keeps the request's id and the branding (task-locals), so its errors still carry
    // the id and its pages the platform's name.
    let work = super::pages::brand::scope(state.brand.clone(), next.run(req));
    let mut work = match super::request_id::current() {
        Some(id) => tokio::spawn(super::request_id::scope(id, work)),
        None => tokio::spawn(work),
    };
    match tokio::time::timeout(limit, &mut work).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            tracing::error!(error = %e, %path, "request handler failed");
            super::error::internal(&path)
        }
        Err(_) => {
            tracing::warn!(%path, limit_ms = limit.as_millis() as u64, "request deadline passed; answered 503");
            super::error::deadline_exceeded(&path)
        }
    }
}
