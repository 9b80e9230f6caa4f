//! Anti-CSRF tokens of the pages that are not part of a pending authorization request
//! (registration, recovery, `/account`): a keyed hash of the browser-binding cookie, so a form
//! only posts back from the browser it was served to, with nothing stored.

use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::authorize::{BROWSER_COOKIE, set_cookie};
use super::extract::{Params, cookie};
use crate::crypto;

/// The browser's binding cookie, made up when it has none yet.
pub(super) struct Browser {
    /// The cookie's value.
    pub cookie: String,
    /// Whether it is new (to be set on the response).
    fresh: bool,
}

impl Browser {
    /// The binding cookie of the request, or a new one.
    pub fn of(headers: &HeaderMap) -> Self {
        match cookie(headers, BROWSER_COOKIE) {
            Some(b) if !b.is_empty() && b.len() <= 64 => Self { cookie: b.to_owned(), fresh: false },
            _ => Self { cookie: crypto::random_token(24), fresh: true },
        }
    }

    /// The form token of this browser.
    pub fn token(&self, state: &AppState) -> String {
        token(state, &self.cookie)
    }

    /// Sets the cookie on `resp` when it is new.
    pub fn keep(&self, state: &AppState, resp: &mut Response) {
        if self.fresh {
            set_cookie(resp, state, BROWSER_COOKIE, &self.cookie, state.config.tokens.login_ttl.max(3600));
        }
    }
}

fn token(state: &AppState, browser: &str) -> String {
    state.keys.data().derive(&format!("csrf:{browser}"))
}

/// Whether the form's `csrf` field is this browser's token (constant-time).
pub(super) fn valid(state: &AppState, headers: &HeaderMap, form: &Params) -> bool {
    match (cookie(headers, BROWSER_COOKIE), form.get("csrf")) {
        (Some(b), Some(t)) if !b.is_empty() && b.len() <= 64 => crypto::ct_eq(t.as_bytes(), token(state, b).as_bytes()),
        _ => false,
    }
}
