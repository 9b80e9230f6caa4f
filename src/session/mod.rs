//! SSO sessions: one record per browser login, keyed by `sid`, with idle and absolute timeouts,
//! the authentication facts (auth_time, acr, amr) and the set of clients it issued tokens to.
//! The browser holds `sid.secret`; only the secret's SHA-256 is stored, so knowing a `sid`
//! (it appears in ID tokens) is not enough to ride the session.

mod establish;

use serde::{Deserialize, Serialize};

pub use establish::{Established, establish};

use crate::crypto::{self, ct_eq};
use crate::identity::acting::Acting;
use crate::store::{self, DynStore, StoreError, keys};

/// Stored session record. Field names are short: there is one per logged-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Session id (the `sid` claim).
    pub sid: String,
    /// SHA-256 (base64url) of the cookie secret.
    #[serde(rename = "h")]
    pub secret_hash: String,
    /// The user.
    pub sub: String,
    /// When the user authenticated (unix seconds).
    #[serde(rename = "at")]
    pub auth_time: i64,
    /// Authentication context class reference.
    pub acr: String,
    /// Authentication methods used.
    pub amr: Vec<String>,
    /// Last activity; the idle timeout counts from here.
    #[serde(rename = "seen")]
    pub last_seen: i64,
    /// Absolute expiry.
    #[serde(rename = "exp")]
    pub expires_at: i64,
    /// The user's token generation at login ([`crate::users::User::generation`]): a password
    /// change or a disabled account ends the session's tokens even before the logout runs.
    #[serde(default, rename = "g")]
    pub generation: u32,
    /// The upstream platform login this session came from (GB-6.4c), if any.
    #[serde(default, rename = "up", skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// The legal person the user (an agent) acts for in this session (HL-5.1), if any.
    /// Boxed: most sessions have none, and the record is copied about.
    #[serde(default, rename = "act", skip_serializing_if = "Option::is_none")]
    pub acting: Option<Box<Acting>>,
}

/// An upstream platform's login behind a local session: logouts there end it here, and its
/// end here is told there (GB-6.4d).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// The trust it came through.
    pub trust: String,
    /// The upstream issuer.
    pub iss: String,
    /// The subject there.
    pub sub: String,
    /// The upstream session id (from its ID token), when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Session timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Idle timeout, seconds.
    pub idle: i64,
    /// Absolute lifetime, seconds.
    pub absolute: i64,
}

/// How long an expired session's record is kept for the logout broadcast, seconds.
pub const GRACE: i64 = 3600;

/// How often a busy session's `last_seen` is written back (avoids a write per request).
const TOUCH_EVERY: i64 = 60;

impl Session {
    /// The subject of the tokens this session issues: the legal person the user acts for, or
    /// the user.
    pub fn principal(&self) -> &str {
        self.acting.as_ref().map_or(&self.sub, |a| &a.lp)
    }

    /// Whether the session is still valid at `now`.
    pub fn live(&self, now: i64, t: Timeouts) -> bool {
        now < self.expires_at && now < self.last_seen + t.idle
    }

    /// When the session stops being valid if nothing touches it.
    pub fn ends_at(&self, t: Timeouts) -> i64 {
        self.expires_at.min(self.last_seen + t.idle)
    }

    /// The record outlives validity by [`GRACE`], so the expiry sweeper can still read whom to
    /// notify; `live()` is what decides validity.
    fn ttl(&self, now: i64, t: Timeouts) -> u64 {
        store::ttl_until(self.ends_at(t) + GRACE, now)
    }
}

/// Who logged in and how: what a new session records.
#[derive(Debug, Clone)]
pub struct Login {
    /// The user.
    pub sub: String,
    /// The user's token generation now.
    pub generation: u32,
    /// Authentication context class.
    pub acr: String,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// The upstream platform login it came from, if any.
    pub upstream: Option<Upstream>,
    /// The legal person the user acts for, if any (HL-5.1).
    pub acting: Option<Acting>,
}

/// Creates a session and returns it with the cookie value to set. A session that came from an
/// upstream platform's login is indexed by the upstream's session and subject so the upstream's
/// logout finds it.
pub async fn create(store: &DynStore, login: Login, now: i64, t: Timeouts) -> Result<(Session, String), StoreError> {
    let Login { sub, generation, acr, amr, upstream, acting } = login;
    let sub = sub.as_str();
    let sid = crypto::random_token(16);
    let secret = crypto::random_token(32);
    let session = Session {
        sid: sid.clone(),
        secret_hash: crypto::token_key(&secret),
        sub: sub.to_owned(),
        auth_time: now,
        acr: acr.to_owned(),
        amr,
        last_seen: now,
        expires_at: now + t.absolute,
        generation,
        upstream,
        acting: acting.map(Box::new),
    };
    // The indexes that find the session (the user's "log out everywhere", the upstream's logout,
    // the expiry sweep) are written first and together, one round trip: a crash in between
    // leaves at most an index entry without a session, which every reader skips; then the record.
    let index_ttl = store::ttl_until(now + t.absolute + GRACE, now);
    let user_key = keys::user_sessions(sub);
    let user_index = store.set_add(&user_key, &sid, Some(index_ttl));
    let expiry = store.queue_put(keys::SESSION_EXPIRY_QUEUE, &sid, b"", session.ends_at(t));
    let (by_sid, by_sub) = match &session.upstream {
        Some(up) => (
            up.sid.as_ref().map(|up_sid| keys::fed_sessions_by_sid(&up.trust, up_sid)),
            Some(keys::fed_sessions_by_sub(&up.trust, &up.sub)),
        ),
        None => (None, None),
    };
    let fed = async {
        for key in by_sid.iter().chain(by_sub.iter()) {
            store.set_add(key, &sid, Some(index_ttl)).await?;
        }
        Ok::<(), StoreError>(())
    };
    tokio::try_join!(user_index, expiry, fed)?;
    store::put_json(store.as_ref(), &keys::session(&sid), &session, Some(session.ttl(now, t))).await?;
    Ok((session, format!("{sid}.{secret}")))
}

/// Records a fresh authentication in an existing session (`prompt=login`, `max_age`): new
/// auth_time, amr and token generation, same sid and cookie. `None` when the session ended
/// meanwhile (a logout is never undone by a write-back).
pub async fn reauthenticate(
    store: &DynStore,
    mut s: Session,
    login: &Login,
    now: i64,
    t: Timeouts,
) -> Result<Option<Session>, StoreError> {
    s.auth_time = now;
    s.amr.clone_from(&login.amr);
    s.generation = login.generation;
    s.last_seen = now;
    if !store.put_existing(&keys::session(&s.sid), &store::encode(&s), Some(s.ttl(now, t))).await? {
        return Ok(None);
    }
    store.queue_put(keys::SESSION_EXPIRY_QUEUE, &s.sid, b"", s.ends_at(t)).await?;
    Ok(Some(s))
}

/// Resolves a cookie value to a live session, refreshing its idle timer now and then.
pub async fn from_cookie(store: &DynStore, cookie: &str, now: i64, t: Timeouts) -> Result<Option<Session>, StoreError> {
    let Some((sid, secret)) = cookie.split_once('.') else {
        return Ok(None);
    };
    if sid.len() > 64 || secret.len() > 128 {
        return Ok(None);
    }
    let Some(mut s) = get(store, sid).await? else {
        return Ok(None);
    };
    if !ct_eq(s.secret_hash.as_bytes(), crypto::token_key(secret).as_bytes()) || !s.live(now, t) {
        return Ok(None);
    }
    if !touch(store, &mut s, now, t).await? {
        return Ok(None);
    }
    Ok(Some(s))
}

/// Records activity in a live session: the idle timeout counts from `now`. Written back at
/// most once a minute, so a busy session does not cost a write per request. Browser requests
/// and refresh-token use both count as activity (the user is working in an application).
/// The write-back only replaces an existing record, so a logout that removed the session
/// meanwhile is never undone; false when that happened.
pub async fn touch(store: &DynStore, s: &mut Session, now: i64, t: Timeouts) -> Result<bool, StoreError> {
    if now - s.last_seen < TOUCH_EVERY {
        return Ok(true);
    }
    s.last_seen = now;
    if !store.put_existing(&keys::session(&s.sid), &store::encode(&*s), Some(s.ttl(now, t))).await? {
        return Ok(false);
    }
    store.queue_put(keys::SESSION_EXPIRY_QUEUE, &s.sid, b"", s.ends_at(t)).await?;
    Ok(true)
}

/// Reads a session by sid (no secret check: for server-side use only).
pub async fn get(store: &DynStore, sid: &str) -> Result<Option<Session>, StoreError> {
    store::get_json(store.as_ref(), &keys::session(sid)).await
}

/// Records that the session issued tokens to `client_id` (for logout broadcast).
pub async fn add_client(
    store: &DynStore,
    s: &Session,
    client_id: &str,
    now: i64,
    t: Timeouts,
) -> Result<(), StoreError> {
    let ttl = store::ttl_until(s.expires_at, now).max(s.ttl(now, t));
    store.set_add(&keys::session_clients(&s.sid), client_id, Some(ttl)).await
}

/// The clients the session issued tokens to.
pub async fn clients(store: &DynStore, sid: &str) -> Result<Vec<String>, StoreError> {
    store.set_members(&keys::session_clients(sid)).await
}

/// Removes a session's records (the logout module decides who hears about it). Returns the
/// record as it was, if any.
pub async fn remove(store: &DynStore, sid: &str) -> Result<Option<Session>, StoreError> {
    let Some(bytes) = store.take(&keys::session(sid)).await? else {
        return Ok(None);
    };
    let s: Session = store::decode(&keys::session(sid), &bytes)?;
    forget(store, &s).await?;
    Ok(Some(s))
}

/// Deletes every record of session `s`: the record itself, the clients it reached, its
/// indexes and its expiry entry. Idempotent, so a logout finished again after a crash is safe.
pub async fn forget(store: &DynStore, s: &Session) -> Result<(), StoreError> {
    let sid = s.sid.as_str();
    store.delete(&keys::session(sid)).await?;
    store.delete(&keys::session_clients(sid)).await?;
    store.set_remove(&keys::user_sessions(&s.sub), sid).await?;
    if let Some(up) = &s.upstream {
        if let Some(up_sid) = &up.sid {
            store.set_remove(&keys::fed_sessions_by_sid(&up.trust, up_sid), sid).await?;
        }
        store.set_remove(&keys::fed_sessions_by_sub(&up.trust, &up.sub), sid).await?;
    }
    store.queue_remove(keys::SESSION_EXPIRY_QUEUE, sid).await?;
    Ok(())
}

/// The ids of a user's sessions (some may have expired).
pub async fn of_user(store: &DynStore, sub: &str) -> Result<Vec<String>, StoreError> {
    store.set_members(&keys::user_sessions(sub)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use std::sync::Arc;

    const T: Timeouts = Timeouts { idle: 1800, absolute: 43200 };

    fn login(sub: &str) -> Login {
        Login { sub: sub.into(), generation: 0, acr: "1".into(), amr: vec!["pwd".into()], upstream: None, acting: None }
    }

    #[tokio::test]
    async fn cookie_resolves_only_with_the_secret() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let (s, cookie) = create(&store, login("u1"), 1_000, T).await.unwrap();
        assert_eq!(from_cookie(&store, &cookie, 1_001, T).await.unwrap().unwrap().sid, s.sid);
        let forged = format!("{}.{}", s.sid, crypto::random_token(32));
        assert!(from_cookie(&store, &forged, 1_001, T).await.unwrap().is_none());
        assert!(from_cookie(&store, "garbage", 1_001, T).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn idle_and_absolute_timeouts() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let (_, cookie) = create(&store, login("u1"), 0, T).await.unwrap();
        // Activity keeps it alive past the first idle window...
        assert!(from_cookie(&store, &cookie, 1_700, T).await.unwrap().is_some());
        assert!(from_cookie(&store, &cookie, 3_400, T).await.unwrap().is_some());
        // ...but not past idle without activity...
        assert!(from_cookie(&store, &cookie, 3_400 + 1_800, T).await.unwrap().is_none());
        // ...and never past the absolute limit.
        let (_, c2) = create(&store, login("u2"), 0, T).await.unwrap();
        let mut now = 0;
        while now < 43_000 {
            now += 1_000;
            assert!(from_cookie(&store, &c2, now, T).await.unwrap().is_some());
        }
        assert!(from_cookie(&store, &c2, 43_200, T).await.unwrap().is_none());
    }
}
