//! The access line: one `tongzheng::access` INFO event per request with its method, matched
//! route template (never the raw path), status, latency, client id when known and request id.
//! Never a token, secret, code or cookie: only those fields are written.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method};

/// Where the handling of a request notes the OAuth client it concerned (set from the audit
/// event it records, see [`super::extract::Meta::apply`]); read by the access line.
#[derive(Debug, Clone, Default)]
pub struct AccessNote(Arc<Mutex<Option<String>>>);

impl AccessNote {
    /// Notes `client_id` (the first one noted wins; unsafe-looking ids are not kept).
    pub fn client(&self, client_id: &str) {
        if !super::request_id::sane(client_id) {
            return;
        }
        let mut slot = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(client_id.to_owned());
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The `client_id` query parameter (front-channel requests such as `/authorize` name their
/// client there), when it is a sane id.
pub fn client_from_query(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned())
        .filter(|v| super::request_id::sane(v))
}

/// One request, as the access line tells it.
pub struct Line<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The matched route template, or `unmatched`.
    pub route: &'a str,
    /// The answer's status.
    pub status: u16,
    /// Time to answer.
    pub latency: std::time::Duration,
    /// The response headers (for the request id).
    pub headers: &'a HeaderMap,
    /// The client noted while handling it.
    pub note: &'a AccessNote,
    /// The client named in the query string, when none was noted.
    pub query_client: Option<String>,
}

/// Writes the access line.
pub fn log(l: &Line<'_>) {
    let request_id = l.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let client_id = l.note.get().or_else(|| l.query_client.clone()).unwrap_or_default();
    let latency_ms = u64::try_from(l.latency.as_micros()).unwrap_or(u64::MAX) as f64 / 1000.0;
    tracing::info!(
        target: crate::logging::ACCESS_TARGET,
        method = %l.method,
        route = l.route,
        status = l.status,
        latency_ms,
        client_id = client_id.as_str(),
        request_id,
        "access"
    );
}
