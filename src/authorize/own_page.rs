//! Logins for this platform's own pages (the account page): a pending login with no
//! application behind it, which returns the browser to the page once the person has signed in.

use super::{AuthRequest, Caps, Pending, Prompt, ResponseMode, remember};
use crate::store::{DynStore, StoreError};

/// The client id such a login is recorded under in the audit log. Nothing is decided by it:
/// where the login returns is `AuthRequest::next`, set only here.
pub const CLIENT_ID: &str = "tongzheng:own-page";

/// The request of a login that returns to `next`, a path of this platform chosen by the caller.
pub fn request(next: &str) -> AuthRequest {
    AuthRequest {
        client_id: CLIENT_ID.to_owned(),
        redirect_uri: String::new(),
        response_mode: ResponseMode::Query,
        state: None,
        nonce: None,
        scope: Vec::new(),
        code_challenge: None,
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
        hint_sub: None,
        ui_locales: None,
        path: Vec::new(),
        fed_tried: false,
        min_level: None,
        next: Some(next.to_owned()),
    }
}

/// Remembers a login returning to `next` for the browser holding `browser_cookie` (capped
/// like every pending login); its id for the login page.
pub async fn start(
    store: &DynStore,
    next: &str,
    browser_cookie: &str,
    now: i64,
    ttl: i64,
    caps: Caps,
) -> Result<(String, Pending), StoreError> {
    remember(store, request(next), browser_cookie, now, ttl, caps).await
}
