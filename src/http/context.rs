//! What one request carries from its connection to its handler and back out to the edge: its
//! id, the peer's address, the platform's branding for its pages, and the OAuth client its
//! handling concerned (for the access line). One shared record per request, made by the
//! connection's service before the router runs, handed to the edge as a request extension and
//! from there on the task's current record ([`current`]), wherever its work finishes.
//!
//! Issue 13: it replaces three request extensions (the peer's address, the request id, the
//! access note), whose entries made every request's extension map grow once, and two
//! task-locals (the request id, the branding), each a layer every poll of the request passed
//! through; and the id is inline instead of a string cloned four times.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderName};

use super::pages::brand::Brand;
use super::request_id::{self, Id};
use crate::clock::Clock;
use crate::instance::Instance;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: RequestCtx;
}

/// The record of the request being handled on this task, if any.
pub fn current() -> Option<RequestCtx> {
    CURRENT.try_with(RequestCtx::clone).ok()
}

/// Runs `fut` (the rest of a request's handling) with `ctx` as its [`current`] record. Not an
/// `async fn`, whose future would be one more layer around `fut`, moved with it.
pub fn scope<F: Future>(ctx: RequestCtx, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(ctx, fut)
}

/// Runs `f` with `ctx` as its [`current`] record (an answer made outside the handler).
pub fn sync_scope<R>(ctx: RequestCtx, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(ctx, f)
}

/// Reads the current record's id, if there is one, without cloning the record.
pub(super) fn with_current_id<R>(f: impl FnOnce(&Id) -> R) -> Option<R> {
    CURRENT.try_with(|c| f(c.id())).ok()
}

/// One request's shared record (a request extension). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestCtx(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    id: Id,
    peer: Option<SocketAddr>,
    brand: Arc<Brand>,
    client: OnceLock<String>,
    late: AtomicBool,
}

impl RequestCtx {
    /// The record of a request with `id` from `peer` (`None`: not known, as for a router
    /// called without a connection), whose pages show `brand`.
    pub fn new(id: Id, peer: Option<SocketAddr>, brand: Arc<Brand>) -> Self {
        Self(Arc::new(Inner { id, peer, brand, client: OnceLock::new(), late: AtomicBool::new(false) }))
    }

    /// The request's id.
    pub fn id(&self) -> &Id {
        &self.0.id
    }

    /// The socket peer's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.0.peer
    }

    /// The platform's branding for the request's pages.
    pub fn brand(&self) -> &Arc<Brand> {
        &self.0.brand
    }

    /// Notes the OAuth client the request concerned (set from the audit event it records, see
    /// [`super::extract::Meta::apply`]): the first one noted wins; an id that does not look
    /// safe to log as it is ([`request_id::sane`]) is not kept.
    pub fn note_client(&self, client_id: &str) {
        if request_id::sane(client_id) && self.0.client.get().is_none() {
            let _ = self.0.client.set(client_id.to_owned());
        }
    }

    /// The client noted, if any.
    pub fn client(&self) -> Option<&str> {
        self.0.client.get().map(String::as_str)
    }

    /// Notes that the request's body did not arrive within `server.body_timeout` (set by the
    /// connection's body timer, read when the answer is made).
    pub fn body_late(&self) {
        self.0.late.store(true, Ordering::Release);
    }

    /// Whether [`RequestCtx::body_late`] was noted.
    pub fn is_body_late(&self) -> bool {
        self.0.late.load(Ordering::Acquire)
    }
}

/// What makes a request's record: this instance (for fresh ids), the clock, whether a proxy's
/// `X-Request-Id` is trusted (`server.trust_request_id`), and the branding. Held by the
/// connection loop.
#[derive(Debug, Clone)]
pub struct Stamp {
    instance: Arc<Instance>,
    clock: Clock,
    trust: bool,
    brand: Arc<Brand>,
}

impl Stamp {
    /// The stamp of an instance's state.
    pub fn of(state: &super::AppState) -> Self {
        Self {
            instance: state.instance.clone(),
            clock: state.clock.clone(),
            trust: state.config.server.trust_request_id,
            brand: state.brand.clone(),
        }
    }

    /// The record of a new request with `headers` from `peer`.
    pub fn begin(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> RequestCtx {
        // The header is looked up only when it may be kept.
        let header = if self.trust { headers.get(&X_REQUEST_ID) } else { None };
        let id = request_id::assign(header, self.trust, &self.instance, self.clock.now_ms());
        RequestCtx::new(id, peer, self.brand.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sane_client_noted_is_kept() {
        let ctx = RequestCtx::new(Id::new("r-1").unwrap(), None, Arc::default());
        assert_eq!(ctx.client(), None);
        ctx.note_client("bad id");
        assert_eq!(ctx.client(), None, "an id unsafe to log as it is");
        ctx.note_client("web-1");
        ctx.clone().note_client("web-2");
        assert_eq!(ctx.client(), Some("web-1"), "shared by its clones, the first wins");
        assert_eq!(ctx.id().as_str(), "r-1");
    }

    #[tokio::test]
    async fn the_current_record_is_scoped_to_the_request() {
        assert!(current().is_none());
        let ctx = RequestCtx::new(Id::new("r-2").unwrap(), None, Arc::default());
        let inside = scope(ctx, async { current().map(|c| c.id().as_str().to_owned()) }).await;
        assert_eq!(inside.as_deref(), Some("r-2"));
        assert!(current().is_none());
    }
}
