//! What one request carries from its connection to its handler and back out to the edge: its
//! id, the peer's address, and the OAuth client its handling concerned (for the access line).
//! One shared record per request, made by the connection's service before the router runs
//! (issue 13: it replaces three request extensions, the peer's address, the request id and the
//! access note, whose fifth entry made every request's extension map grow once; and the id is
//! inline instead of a string cloned four times).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderName};

use super::request_id::{self, Id};
use crate::clock::Clock;
use crate::instance::Instance;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// One request's shared record (a request extension). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestCtx(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    id: Id,
    peer: Option<SocketAddr>,
    client: OnceLock<String>,
}

impl RequestCtx {
    /// The record of a request with `id` from `peer` (`None`: not known, as for a router
    /// called without a connection).
    pub fn new(id: Id, peer: Option<SocketAddr>) -> Self {
        Self(Arc::new(Inner { id, peer, client: OnceLock::new() }))
    }

    /// The request's id.
    pub fn id(&self) -> &Id {
        &self.0.id
    }

    /// The socket peer's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.0.peer
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
}

/// What names requests: this instance (for fresh ids), the clock, and whether a proxy's
/// `X-Request-Id` is trusted (`server.trust_request_id`). Held by the connection loop.
#[derive(Debug, Clone)]
pub struct Stamp {
    instance: Arc<Instance>,
    clock: Clock,
    trust: bool,
}

impl Stamp {
    /// The stamp of an instance's state.
    pub fn of(state: &super::AppState) -> Self {
        Self { instance: state.instance.clone(), clock: state.clock.clone(), trust: state.config.server.trust_request_id }
    }

    /// The record of a new request with `headers` from `peer`.
    pub fn begin(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> RequestCtx {
        let id = request_id::assign(headers.get(&X_REQUEST_ID), self.trust, &self.instance, self.clock.now_ms());
        RequestCtx::new(id, peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sane_client_noted_is_kept() {
        let ctx = RequestCtx::new(Id::new("r-1").unwrap(), None);
        assert_eq!(ctx.client(), None);
        ctx.note_client("bad id");
        assert_eq!(ctx.client(), None, "an id unsafe to log as it is");
        ctx.note_client("web-1");
        ctx.clone().note_client("web-2");
        assert_eq!(ctx.client(), Some("web-1"), "shared by its clones, the first wins");
        assert_eq!(ctx.id().as_str(), "r-1");
    }
}
