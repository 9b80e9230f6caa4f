//! Logout confirmation (RP-Initiated Logout 1.0 s2): when the OP cannot tell that a logout
//! request is genuine, it asks the user. A request is genuine only when its `id_token_hint` was
//! issued for the very session the browser holds; a hint of another (older) session, or of the
//! same user's other session, is no proof and the user is asked. The question is remembered
//! bound to the browser and carries an anti-CSRF token.

use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::keys::Keys;
use crate::session::Session;
use crate::store::{self, DynStore, StoreError, keys};
use crate::tokens::IdClaims;

/// How long the question stays answerable, seconds.
const PENDING_TTL: u64 = 600;

/// Verifies an `id_token_hint`: our signature and issuer; expiry does not matter
/// (RP-Initiated Logout s2: "the OP ... SHOULD accept an expired ID Token").
/// Its `sub` is returned as the internal id (a pairwise one opened, OIDC Core s8.1).
pub fn verify_hint(keys: &Keys, issuer: &str, hint: &str) -> Option<IdClaims> {
    let (mut claims, _): (IdClaims, _) = keys.verify(hint).ok()?;
    claims.sub = crate::identity::subject::internal(keys.data(), &claims.sub);
    (claims.iss == issuer).then_some(claims)
}

/// Whether a logout of `session` may proceed without asking: the hint names this session.
pub fn is_genuine(hint: Option<&IdClaims>, session: &Session) -> bool {
    hint.is_some_and(|h| h.sid == session.sid && h.sub == session.principal())
}

/// A logout waiting for the user's answer, bound to the browser that asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The session to end.
    pub sid: String,
    /// Where to go afterwards (a registered post-logout redirect URI with its state).
    pub next: Option<String>,
    /// SHA-256 of the browser-binding cookie.
    browser: String,
    /// Anti-CSRF token embedded in the form.
    pub csrf: String,
    /// Preferred UI locales.
    pub ui_locales: Option<String>,
    /// Where "cancel" goes back to: the client's registered home, when the request named a
    /// client (absent in questions asked before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back: Option<String>,
}

/// Remembers the question; returns its id and the record (for the form's CSRF token).
pub async fn ask(
    store: &DynStore,
    sid: &str,
    next: Option<String>,
    browser_cookie: &str,
    ui_locales: Option<String>,
    back: Option<String>,
) -> Result<(String, Pending), StoreError> {
    let id = crypto::random_token(16);
    let p = Pending {
        sid: sid.to_owned(),
        next,
        browser: crypto::token_key(browser_cookie),
        csrf: crypto::random_token(24),
        ui_locales,
        back,
    };
    store::put_json(store.as_ref(), &keys::logout_request(&id), &p, Some(PENDING_TTL)).await?;
    Ok((id, p))
}

/// Why an answer is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Unknown, expired, or asked in another browser.
    Expired,
    /// The form's anti-CSRF token does not match.
    Forged,
}

impl Pending {
    /// Where "cancel" (stay signed in) goes: the validated post-logout redirect URI, else the
    /// client's registered home, else the account page. Never a URL the request alone named.
    pub fn cancel_target(&self) -> &str {
        self.next.as_deref().or(self.back.as_deref()).unwrap_or("/account")
    }
}

/// Takes the user's answer to question `id`: the pending logout when it is this browser's and
/// the CSRF token matches, which consumes it (a forged answer leaves it to the real user).
pub async fn answer(
    store: &DynStore,
    id: &str,
    browser_cookie: Option<&str>,
    csrf: Option<&str>,
) -> Result<Result<Pending, Refused>, StoreError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(Err(Refused::Expired));
    }
    let pending: Option<Pending> = store::get_json(store.as_ref(), &keys::logout_request(id)).await?;
    let mine = |p: &Pending| {
        browser_cookie.is_some_and(|b| crypto::ct_eq(p.browser.as_bytes(), crypto::token_key(b).as_bytes()))
    };
    let Some(p) = pending.filter(mine) else {
        return Ok(Err(Refused::Expired));
    };
    if !csrf.is_some_and(|c| crypto::ct_eq(c.as_bytes(), p.csrf.as_bytes())) {
        return Ok(Err(Refused::Forged));
    }
    store.delete(&keys::logout_request(id)).await?;
    Ok(Ok(p))
}
