//! The server-to-server logout of HL-5.4: an application's backend, authenticated as its
//! client, ends the user's login everywhere. Which sessions a client may end is decided here:
//! the session its ID token names, a session that reached it, or the sessions of a user that
//! reached it. The application that asked is not notified of its own request.

use super::{Ctx, Ended, Reason, end_session, end_user_sessions};
use crate::session;
use crate::store::StoreError;
use crate::tokens::IdClaims;

/// Which login to end.
#[derive(Debug, Clone)]
pub enum Hint {
    /// The session of an ID token issued to the client (`id_token_hint`).
    IdToken(Box<IdClaims>),
    /// A session by id (`sid`).
    Sid(String),
    /// Every session of a user that reached the client (`logout_hint`).
    Subject(String),
}

/// The client may not end that session: it was issued to or reached another client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied;

/// Ends what `hint` names on behalf of client `me`.
pub async fn end(ctx: Ctx<'_>, me: &str, hint: Hint) -> Result<Result<Vec<Ended>, Denied>, StoreError> {
    let ended = match hint {
        Hint::IdToken(claims) => {
            if claims.aud != me {
                return Ok(Err(Denied));
            }
            end_session(ctx, &claims.sid, Reason::AppBackend, Some(me)).await?.into_iter().collect()
        }
        Hint::Sid(sid) => {
            let reached = session::clients(ctx.store, &sid).await?;
            if session::get(ctx.store, &sid).await?.is_some() && !reached.iter().any(|c| c == me) {
                return Ok(Err(Denied));
            }
            end_session(ctx, &sid, Reason::AppBackend, Some(me)).await?.into_iter().collect()
        }
        Hint::Subject(sub) => end_user_sessions(ctx, &sub, Reason::AppBackend, Some(me), Some(me)).await?,
    };
    Ok(Ok(ended))
}
