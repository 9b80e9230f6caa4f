//! Every request's way through this instance, as one layer around every route (issue 13: one
//! layer instead of three; and our own service rather than `axum::middleware::from_fn`, which
//! per request clones and boxes the inner service twice and splits the request into parts
//! and back to extract its arguments):
//! - counts it by its matched route template (never the raw path, whose cardinality is
//!   unbounded; `unmatched` for the 404 fallback), method and status, times it, and writes the
//!   access line ([`super::access`]) when `logging.access` is on;
//! - tags it with an id (see [`super::request_id`]), records it in a tracing span and makes it
//!   the task's current id for the error mapping, and adds the security headers every response
//!   should carry;
//! - runs the handler under `server.request_deadline_ms` ([`super::deadline`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use tower::{Layer, Service};

use super::{AppState, access, deadline, extract, request_id};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The layer: wraps each route in an [`Edge`].
#[derive(Clone)]
pub struct EdgeLayer(pub AppState);

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { state: self.0.clone(), inner }
    }
}

/// One route, wrapped.
#[derive(Clone)]
pub struct Edge<S> {
    state: AppState,
    inner: S,
}

/// What the edge notes of a request before its handler runs.
struct Before {
    start: Instant,
    route: Option<MatchedPath>,
    method: Method,
    note: access::AccessNote,
    query_client: Option<String>,
    id: String,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let state = &self.state;
        let start = Instant::now();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let method = req.method().clone();
        let note = access::AccessNote::default();
        let query_client =
            if state.config.logging.access { access::client_from_query(req.uri().query()) } else { None };
        req.extensions_mut().insert(note.clone());
        let trust = state.config.server.trust_request_id;
        let id = request_id::assign(req.headers().get(&X_REQUEST_ID), trust, &state.instance, state.clock.now_ms());
        let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
        req.extensions_mut().insert(extract::RequestId(id.clone()));
        let uri = req.uri().clone();
        // The route's own call only makes its future; nothing of the handler runs before the
        // deadline, the span and the request's id are around it.
        let work = self.inner.call(req);
        let before = Before { start, route, method, note, query_client, id };
        let state = state.clone();
        Box::pin(async move {
            let resp = deadline::run(&state, before.id.clone(), span, uri, work).await;
            Ok(after(&state, before, resp))
        })
    }
}

/// The answer's headers, the request's metrics and its access line.
fn after(state: &AppState, before: Before, mut resp: Response) -> Response {
    let Before { start, route, method, note, query_client, id } = before;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let latency = start.elapsed();
    let status = resp.status().as_u16();
    state.metrics.http_request(route, method.as_str(), status, latency.as_secs_f64());
    if state.config.logging.access {
        access::log(&access::Line {
            method: &method,
            route,
            status,
            latency,
            headers: resp.headers(),
            note: &note,
            query_client,
        });
    }
    resp
}
