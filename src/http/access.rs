//! The access line: one `tongzheng::access` INFO event per request with its method, matched
//! route template (never the raw path), status, latency, client id when known and request id.
//! Never a token, secret, code or cookie: only those fields are written.

use axum::http::{HeaderMap, Method};

use super::context::RequestCtx;

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
    /// The request's record: the client noted while handling it.
    pub ctx: &'a RequestCtx,
    /// The client named in the query string, when none was noted.
    pub query_client: Option<String>,
}

/// Writes the access line.
pub fn log(l: &Line<'_>) {
    // Nothing is gathered for a line no subscriber takes (a level above info).
    if !tracing::enabled!(target: crate::logging::ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let request_id = l.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let client_id = l.ctx.client().or(l.query_client.as_deref()).unwrap_or_default();
    let latency_ms = u64::try_from(l.latency.as_micros()).unwrap_or(u64::MAX) as f64 / 1000.0;
    tracing::info!(
        target: crate::logging::ACCESS_TARGET,
        method = %l.method,
        route = %l.route,
        status = l.status,
        latency_ms,
        client_id = %client_id,
        request_id = %request_id,
        "access"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::HeaderValue;

    use super::*;
    use crate::config::LogFormat;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    // Issue 14: in the JSON format the access line is one object with typed fields.
    #[test]
    fn json_access_line() {
        let buf = Buf::default();
        let b = buf.clone();
        let filter = tracing_subscriber::EnvFilter::new("info");
        let s = crate::logging::subscriber(LogFormat::Json, false, filter, move || b.clone());
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req-42"));
        let ctx = RequestCtx::new(crate::http::request_id::Id::new("req-42").unwrap(), None, Arc::default());
        ctx.note_client("demo-web");
        ctx.note_client("second-does-not-replace");
        tracing::subscriber::with_default(s, || {
            log(&Line {
                method: &Method::POST,
                route: "/token",
                status: 200,
                latency: std::time::Duration::from_micros(1500),
                headers: &headers,
                ctx: &ctx,
                query_client: None,
            });
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["target"], crate::logging::ACCESS_TARGET);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["route"], "/token");
        assert_eq!(v["status"], 200);
        assert_eq!(v["latency_ms"], 1.5);
        assert_eq!(v["client_id"], "demo-web");
        assert_eq!(v["request_id"], "req-42");
    }

    #[test]
    fn query_client_must_be_sane() {
        assert_eq!(client_from_query(Some("a=1&client_id=demo-web")).as_deref(), Some("demo-web"));
        assert_eq!(client_from_query(Some("client_id=%0Aforged%20line")), None);
        assert_eq!(client_from_query(None), None);
    }
}
