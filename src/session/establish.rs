//! Session establishment: what a successful authentication does to the browser's SSO session,
//! the same for the login form and a login through an upstream platform (GB-6.4c). The same
//! user re-authenticating at the form keeps the session (and the sid the applications hold);
//! anyone else first ends the browser's previous session, with the usual logout broadcast, so
//! no login outlives the browser switching users.

use super::{Login, Session, Timeouts, create, reauthenticate};
use crate::logout::{self, Reason};
use crate::store::StoreError;

/// The session after an authentication.
#[derive(Debug)]
pub struct Established {
    /// The session.
    pub session: Session,
    /// The cookie value to set, when the session is new.
    pub cookie: Option<String>,
}

/// Establishes the session for `login` in a browser whose current session is `existing`.
pub async fn establish(
    ctx: logout::Ctx<'_>,
    existing: Option<Session>,
    login: Login,
    t: Timeouts,
) -> Result<Established, StoreError> {
    let now = ctx.now;
    match existing {
        // A login through an upstream always starts a session of its own: it is indexed by the
        // upstream's session, so the upstream's logout finds it.
        // Acting for another legal person (or for none) is another principal: a new session.
        Some(s)
            if s.sub == login.sub
                && s.acting.as_deref() == login.acting.as_ref()
                && login.upstream.is_none()
                && s.upstream.is_none() =>
        {
            if let Some(session) = reauthenticate(ctx.store, s, &login, now, t).await? {
                return Ok(Established { session, cookie: None });
            }
            // It was logged out meanwhile: a new session it is.
        }
        Some(old) => {
            logout::end_session(ctx, &old.sid, Reason::User, None).await?;
        }
        None => {}
    }
    let (session, cookie) = create(ctx.store, login, now, t).await?;
    Ok(Established { session, cookie: Some(cookie) })
}
