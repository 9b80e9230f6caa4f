//! The one connection loop for plain HTTP and HTTPS: every accepted socket is served by hyper
//! under time limits (request head, idle, request body), HTTP/2 bounds and a cap on connections
//! at once, so slow or idle clients cannot hold the server's sockets; HSTS on HTTPS responses.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, Version, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;
use crate::http::context::{RequestCtx, Stamp};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The limits every connection is served under (`[server]`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to receive a complete request head; a new connection's first request included.
    pub header: Duration,
    /// Time a connection with no request in flight stays open.
    pub idle: Duration,
    /// Time a request body has to arrive in full, from the end of its head.
    pub body: Duration,
    /// Connections at once.
    pub max_connections: usize,
    /// HTTP/2 streams in flight per connection.
    pub h2_streams: u32,
    /// HTTP/2 keep-alive ping interval (`None`: no pings).
    pub h2_ping: Option<Duration>,
    /// HTTP/2 time for a ping's answer.
    pub h2_ping_timeout: Duration,
    /// The `Strict-Transport-Security` value to add to every response, if any.
    pub hsts: Option<HeaderValue>,
    /// How long shutdown waits for open connections to finish their requests.
    pub drain: Duration,
}

impl Limits {
    /// The limits of `[server]`; `https` tells whether the public side of this listener is
    /// HTTPS (our own TLS, or a TLS-terminating proxy in front).
    pub fn new(c: &ServerConfig, https: bool) -> Self {
        Self {
            header: Duration::from_secs(c.header_timeout),
            idle: Duration::from_secs(c.idle_timeout),
            body: Duration::from_secs(c.body_timeout),
            max_connections: c.max_connections,
            h2_streams: c.h2_max_concurrent_streams,
            h2_ping: (c.h2_keep_alive_interval > 0).then(|| Duration::from_secs(c.h2_keep_alive_interval)),
            h2_ping_timeout: Duration::from_secs(c.h2_keep_alive_timeout),
            hsts: hsts(c, https),
            drain: Duration::from_secs(c.drain_secs),
        }
    }
}

/// RFC 6797: the HSTS header for an HTTPS listener; never on plain HTTP (s7.2), since a
/// man in the middle could strip or forge it there.
fn hsts(c: &ServerConfig, https: bool) -> Option<HeaderValue> {
    if !(https || c.behind_tls_proxy) || c.hsts_max_age == 0 {
        return None;
    }
    let sub = if c.hsts_include_subdomains { "; includeSubDomains" } else { "" };
    HeaderValue::from_str(&format!("max-age={}{sub}", c.hsts_max_age)).ok()
}

/// Accepts connections on `listener` (through TLS when `tls` is set) and serves `router` on
/// them, each request with its record made by `stamp` ([`crate::http::context`]), until
/// `shutdown` resolves; then closes the listener, lets in-flight requests finish (at most
/// `limits.drain`), closes idle connections, and returns. While `closing` is set (the
/// drain has begun, before `shutdown`), HTTP/1.1 responses carry `Connection: close`, so
/// clients open new connections, which a balancer sends elsewhere, instead of reusing these.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stamp: Stamp,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    closing: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let spawner =
        Spawner { builder: Arc::new(builder(&limits)), limits, tls, router, stamp, closing, slots, stop: stop_rx };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, most often: wait for connections to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        spawner.spawn(tcp, peer);
    }
    // Closed now, not when the drain is over: new connections are refused at once (a balancer
    // retries them elsewhere) instead of waiting in the backlog of a server that stopped
    // accepting. Connections already in the backlog would be reset by the close: serve them.
    match listener.into_std() {
        Ok(std_listener) => {
            for (tcp, peer) in backlog(&std_listener) {
                spawner.spawn(tcp, peer);
            }
        }
        Err(e) => tracing::warn!(error = %e, "shutdown: the accept backlog was not drained"),
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(spawner.limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(spawner.limits.drain, spawner.slots.acquire_many(all)).await.is_err() {
        tracing::warn!("shutdown: some connections were still busy after {}s", spawner.limits.drain.as_secs());
    }
}

/// The connections waiting in a closing listener's accept backlog (accepted with the plain
/// system call until none is left; tokio's cached readiness could miss some).
fn backlog(listener: &std::net::TcpListener) -> Vec<(tokio::net::TcpStream, SocketAddr)> {
    let mut out = Vec::new();
    if listener.set_nonblocking(true).is_err() {
        return out;
    }
    while let Ok((tcp, peer)) = listener.accept() {
        if tcp.set_nonblocking(true).is_ok()
            && let Ok(tcp) = tokio::net::TcpStream::from_std(tcp)
        {
            out.push((tcp, peer));
        }
    }
    out
}

/// What every accepted connection is served with.
struct Spawner {
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Arc<Limits>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    stamp: Stamp,
    closing: Arc<AtomicBool>,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

impl Spawner {
    /// Serves `tcp` on a task of its own, if a connection slot is free (else closes it).
    fn spawn(&self, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max = self.limits.max_connections, "connection refused: server.max_connections reached");
            return;
        };
        // Replies go out as soon as they are written: Nagle's algorithm would hold a second
        // segment (a TLS record, an HTTP/2 frame, a body written after its head) until the
        // client's delayed ACK, up to 40 ms on Linux.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        let (limits, builder, tls, stop) =
            (self.limits.clone(), self.builder.clone(), self.tls.clone(), self.stop.clone());
        let tracker = Arc::new(Tracker::new());
        let service = Service {
            router: self.router.clone(),
            stamp: self.stamp.clone(),
            peer,
            limits: limits.clone(),
            tracker,
            closing: self.closing.clone(),
        };
        tokio::spawn(async move {
            match tls {
                None => connection(tcp, &builder, service, stop).await,
                Some(acceptor) => {
                    let Ok(Ok(stream)) = tokio::time::timeout(limits.header, acceptor.accept(tcp)).await else {
                        return;
                    };
                    connection(stream, &builder, service, stop).await;
                }
            }
            drop(slot);
        });
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1().timer(TokioTimer::new()).header_read_timeout(limits.header);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_streams)
        .keep_alive_interval(limits.h2_ping)
        .keep_alive_timeout(limits.h2_ping_timeout);
    b
}

/// Serves one connection until it ends, times out, or shutdown has drained it.
async fn connection<I>(io: I, builder: &auto::Builder<TokioExecutor>, service: Service, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tracker = service.tracker.clone();
    let limits = service.limits.clone();
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let (mut stopping, mut draining) = (false, false);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            // The first request started: the idle allowance replaced the header one.
            () = tracker.changed.notified() => {}
            () = tokio::time::sleep_until(tracker.deadline(&limits)) => {
                // Dropping the connection closes the socket; nothing is in flight on it.
                if tracker.expired(&limits) {
                    return;
                }
            }
            _ = stop.wait_for(|s| *s), if !stopping => stopping = true,
        }
        // A connection that has not started its first request yet may have one on the way
        // (sent just before the listener closed): closing it now would fail that request. It
        // gets its first request served (then closed), or the header timeout ends it.
        if stopping && !draining && tracker.served.load(Ordering::Acquire) {
            draining = true;
            conn.as_mut().graceful_shutdown();
        }
    }
}

/// What a connection's watchdog knows: requests in flight (a response counts until its body
/// is sent) and when the last one started or ended.
struct Tracker {
    opened: Instant,
    in_flight: AtomicUsize,
    served: AtomicBool,
    /// Milliseconds after `opened` of the last start or end of a request.
    changed_ms: AtomicU64,
    /// Wakes the watchdog when the first request starts (see [`Tracker::touch`]).
    changed: Notify,
}

impl Tracker {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            changed_ms: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// Notes a start or end of a request. The watchdog is not woken: a start or an end only
    /// moves the deadline later, and the watchdog looks again when its earlier one passes
    /// (issue 13: two task wake-ups and two timers per request saved). Only the first start,
    /// which trades the header allowance for the idle one, wakes it.
    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed_ms.store(ms, Ordering::Release);
    }

    /// When the connection is to be looked at next: the end of its idle (or, before its first
    /// request, header) allowance; while a request is in flight, one allowance from now.
    fn deadline(&self, limits: &Limits) -> Instant {
        let allowance = if self.served.load(Ordering::Acquire) { limits.idle } else { limits.header };
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + allowance;
        }
        self.opened + Duration::from_millis(self.changed_ms.load(Ordering::Acquire)) + allowance
    }

    fn expired(&self, limits: &Limits) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && self.deadline(limits) <= Instant::now()
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let first = !self.served.swap(true, Ordering::AcqRel);
        self.touch();
        if first {
            self.changed.notify_one();
        }
        InFlight(self.clone())
    }
}

/// One request in flight on its connection, until dropped.
struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// The per-connection service: gives each request its record (id, the peer's address), bounds
/// the time of the request body, tracks the request until its response is sent, adds HSTS, and closes
/// HTTP/1.1 connections after their response once the drain has begun.
#[derive(Clone)]
struct Service {
    router: Router,
    stamp: Stamp,
    peer: SocketAddr,
    limits: Arc<Limits>,
    tracker: Arc<Tracker>,
    closing: Arc<AtomicBool>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = axum::http::Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = self.tracker.start();
        let (limits, closing) = (self.limits.clone(), self.closing.clone());
        let http1 = req.version() <= Version::HTTP_11;
        let (mut parts, body) = req.into_parts();
        let ctx = self.stamp.begin(&parts.headers, Some(self.peer));
        parts.extensions.insert(ctx.clone());
        let body = Timed { inner: body, deadline: Instant::now() + limits.body, sleep: None, ctx: ctx.clone() };
        // Routed here, so the future boxed below holds the request once instead of carrying it
        // through two more futures (issue 13); nothing of the handler runs before it is polled.
        let routed = tower::Service::call(&mut self.router.clone(), Request::from_parts(parts, body));
        Box::pin(async move {
            let mut resp = match routed.await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if ctx.is_body_late() {
                resp = body_timeout(limits.body);
            }
            if let Some(v) = &limits.hsts {
                resp.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
            }
            // Read after the response is made: a request that began before the drain and ends
            // during it closes its connection too. (HTTP/2 has no such header; GOAWAY does it.)
            if http1 && closing.load(Ordering::Acquire) {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(resp.map(|inner| Tracked { inner, _guard: guard }))
        })
    }
}

/// 408 for a request whose body did not arrive in time (RFC 9110 s15.5.9); the connection is
/// closed after it.
fn body_timeout(limit: Duration) -> axum::response::Response {
    let detail = format!("the request body did not arrive within {} s", limit.as_secs());
    let mut r = crate::http::error::Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "urn:tongzheng:problem:timeout",
        "Request timeout",
        detail,
    )
    .into_response();
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The request body was not complete by the deadline.
#[derive(Debug, thiserror::Error)]
#[error("request body timeout")]
struct BodyTimeout;

/// A request body that fails once its deadline passes, and says so in the request's record.
struct Timed {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    ctx: RequestCtx,
}

impl Body for Timed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ctx.is_body_late() {
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.ctx.body_late();
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in flight until it is sent.
struct Tracked {
    inner: axum::body::Body,
    _guard: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
