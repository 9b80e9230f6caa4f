//! Every request is answered within `server.request_deadline_ms` (JM-5: within 5 s), whatever
//! the store or a peer does. The handler runs as its own task: past the deadline the client gets
//! 503 with `Retry-After` in the endpoint's error format ([`super::error::deadline_exceeded`]),
//! while the work finishes in the background rather than being cut off between two writes.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Runs the rest of the request (`next`) as its own task under the deadline; `id` is the
/// request's id, kept current on that task. Called by the one request middleware (`edge`).
pub async fn run(state: &AppState, id: String, req: Request, next: Next) -> Response {
    let limit = Duration::from_millis(state.config.server.request_deadline_ms);
    // The path is only needed for an error's format: the URI is shared, not copied.
    let uri = req.uri().clone();
    // The task keeps the request's id and the branding (task-locals), so its errors still carry
    // the id and its pages the platform's name.
    let work = super::pages::brand::scope(state.brand.clone(), next.run(req));
    let mut work = tokio::spawn(super::request_id::scope(id, work));
    match tokio::time::timeout(limit, &mut work).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            let path = uri.path();
            tracing::error!(error = %e, %path, "request handler failed");
            super::error::internal(path)
        }
        Err(_) => {
            let path = uri.path();
            tracing::warn!(%path, limit_ms = limit.as_millis() as u64, "request deadline passed; answered 503");
            super::error::deadline_exceeded(path)
        }
    }
}
