//! Pending logins: an authorization request remembered while its browser logs in or consents,
//! bound to that browser. They are capped per browser and in total, the oldest dropped first,
//! so nobody can fill the store by calling `/authorize` without a session (issue 9).

use serde::{Deserialize, Serialize};

use super::AuthRequest;
use crate::crypto;
use crate::store::{self, DynStore, StoreError, keys};

/// A remembered request waiting for login or consent, bound to one browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The request.
    pub req: AuthRequest,
    /// SHA-256 of the browser-binding cookie.
    pub browser: String,
    /// Anti-CSRF token embedded in the form.
    pub csrf: String,
    /// Expiry.
    pub exp: i64,
}

impl Pending {
    /// Whether the browser's session `s` may answer this request without a new login: it logged
    /// in after the request began (what the login form does), or it meets the request's own
    /// freshness (`prompt=login`, `max_age`, OIDC Core s3.1.2.1) and `id_token_hint` subject as
    /// it stands. `ttl` is `tokens.login_ttl` (the request began `ttl` before its expiry). Pages
    /// that continue a pending request other than the login form (`/verify`) ask this first.
    pub fn admits(&self, s: &crate::session::Session, now: i64, ttl: i64) -> bool {
        let began = self.exp - ttl;
        let fresh =
            s.auth_time >= began || (!self.req.prompt.login && self.req.max_age.is_none_or(|m| now - s.auth_time <= m));
        fresh && self.req.hint_sub.as_ref().is_none_or(|h| *h == s.sub)
    }
}

/// How many pending requests may exist (`security.pending_logins_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Per browser (binding cookie).
    pub per_browser: usize,
    /// On the whole platform (all instances sharing the store).
    pub total: usize,
}

/// One pending request in a browser's list.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    id: String,
    exp: i64,
}

/// Stores a pending request for the browser holding `browser_cookie` and returns its id.
/// Beyond the caps, the oldest pending requests (of this browser, then of the platform) are
/// dropped: their login pages then say the request has expired.
pub async fn remember(
    store: &DynStore,
    req: AuthRequest,
    browser_cookie: &str,
    now: i64,
    ttl: i64,
    caps: Caps,
) -> Result<(String, Pending), StoreError> {
    let id = crypto::random_token(16);
    let p = Pending { req, browser: crypto::token_key(browser_cookie), csrf: crypto::random_token(24), exp: now + ttl };
    let (key, list_key) = (keys::auth_request(&id), keys::browser_auth_requests(&p.browser));
    // One round trip for the independent steps: room under the total cap, the request and its
    // place in the platform's queue, and the browser's list.
    // Read-modify-write of the list: two requests of one browser at the same instant may both
    // keep their entry; the total cap and the TTL still bound them.
    let (_, _, _, list) = tokio::try_join!(
        make_room(store, caps.total, now, ttl),
        store::put_json(store.as_ref(), &key, &p, Some(store::ttl_until(p.exp, now))),
        store.queue_put(keys::AUTH_REQUEST_QUEUE, &id, b"", now),
        store::get_json::<Vec<Entry>>(store.as_ref(), &list_key),
    )?;
    let mut list = list.unwrap_or_default();
    list.retain(|e| e.exp > now);
    list.push(Entry { id: id.clone(), exp: p.exp });
    let excess = list.len().saturating_sub(caps.per_browser.max(1));
    for old in list.drain(..excess) {
        forget(store, &old.id).await?;
    }
    store::put_json(store.as_ref(), &list_key, &list, Some(store::ttl_until(p.exp, now))).await?;
    Ok((id, p))
}

/// Drops the oldest pending requests of the platform until one more fits under `total`. It
/// makes a little more room than needed (1% of the cap), so a full platform sorts its queue
/// once per hundredth of the cap rather than at every request.
async fn make_room(store: &DynStore, total: usize, now: i64, ttl: i64) -> Result<(), StoreError> {
    let total = u64::try_from(total.max(1)).unwrap_or(u64::MAX);
    let len = store.queue_len(keys::AUTH_REQUEST_QUEUE).await?;
    if len < total {
        return Ok(());
    }
    let n = usize::try_from(len - total + 1 + total / 100).unwrap_or(usize::MAX);
    // The queue is ordered by creation time; a claimed entry is removed at once below (the
    // lease only matters if this instance dies in between).
    for (id, _) in store.queue_claim(keys::AUTH_REQUEST_QUEUE, now, ttl, n).await? {
        forget(store, &id).await?;
    }
    Ok(())
}

/// Loads a pending request if it belongs to this browser and has not expired.
pub async fn recall(
    store: &DynStore,
    id: &str,
    browser_cookie: Option<&str>,
    now: i64,
) -> Result<Option<Pending>, StoreError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let Some(cookie) = browser_cookie else {
        return Ok(None);
    };
    let p: Option<Pending> = store::get_json(store.as_ref(), &keys::auth_request(id)).await?;
    Ok(p.filter(|p| p.exp > now && crypto::ct_eq(p.browser.as_bytes(), crypto::token_key(cookie).as_bytes())))
}

/// Deletes a pending request once it has been answered (or dropped by a cap).
pub async fn forget(store: &DynStore, id: &str) -> Result<(), StoreError> {
    let (key, queue) = (keys::auth_request(id), keys::AUTH_REQUEST_QUEUE);
    tokio::try_join!(store.delete(&key), store.queue_remove(queue, id)).map(|_| ())
}
