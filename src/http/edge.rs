//! Every request's way through this instance, as one layer around every route (issue 13: one
//! layer instead of three; and our own service rather than `axum::middleware::from_fn`, which
//! per request clones and boxes the inner service twice and splits the request into parts
//! and back to extract its arguments):
//! - counts it by its matched route template (never the raw path, whose cardinality is
//!   unbounded; `unmatched` for the 404 fallback), method and status, times it, and writes the
//!   access line ([`super::access`]) when `logging.access` is on;
//! - takes its record ([`super::context`]: its id, see [`super::request_id`]), records the id
//!   in a tracing span, makes the record the task's current one for the handler, the error
//!   mapping and the pages, and adds the security headers every response should carry;
//! - runs the handler under `server.request_deadline_ms` ([`super::deadline`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use tower::{Layer, Service};

use super::context::{RequestCtx, Stamp};
use super::{AppState, access, deadline};

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The layer: wraps each route in an [`Edge`], with the body limit (`server.body_limit`, for
/// axum's body extractors) inside it. One layer, so one boxed service a route: axum boxes each
/// layer it applies to a route again, and every request went through one more boxed clone and
/// route future for the body limit's own layer (issue 13).
#[derive(Clone)]
pub struct EdgeLayer(pub AppState);

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = DefaultBodyLimit::max(self.0.config.server.body_limit).layer(inner);
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
    ctx: RequestCtx,
    query_client: Option<String>,
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
        let query_client =
            if state.config.logging.access { access::client_from_query(req.uri().query()) } else { None };
        // Made by the connection's service (`server::conn`), with the peer's address; made here
        // for a request that reached the router some other way. Taken out of the request: from
        // here on it is the task's current record (`context::current`), and one extension fewer
        // keeps the request's extension map from growing (issue 13).
        let ctx =
            req.extensions_mut().remove::<RequestCtx>().unwrap_or_else(|| Stamp::of(state).begin(req.headers(), None));
        let span = tracing::info_span!("request", id = %ctx.id(), method = %req.method(), path = %req.uri().path());
        let uri = req.uri().clone();
        // The route's own call only makes its future; nothing of the handler runs before the
        // deadline, the span and the request's id are around it.
        let work = deadline::prepare(ctx.clone(), span.clone(), self.inner.call(req));
        let before = Before { start, route, method, ctx: ctx.clone(), query_client };
        let state = state.clone();
        Box::pin(async move {
            let resp = deadline::run(&state, ctx, span, uri, work).await;
            Ok(after(&state, before, resp))
        })
    }
}

/// The answer's headers, the request's metrics and its access line.
fn after(state: &AppState, before: Before, mut resp: Response) -> Response {
    let Before { start, route, method, ctx, query_client } = before;
    let h = resp.headers_mut();
    h.reserve(4);
    if let Ok(v) = HeaderValue::from_str(ctx.id().as_str()) {
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
            ctx: &ctx,
            query_client,
        });
    }
    resp
}
