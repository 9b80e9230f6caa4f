//! Single logout (DC-4, GB-6.4d, HL-5.4): every path that ends an SSO session comes through
//! [`end_session`]. It first writes a durable intent ([`intent`]), then deletes the session
//! record (its non-offline tokens die with it, see [`crate::tokens::validity`]), then finishes:
//! queues a durable back-channel delivery for every client the session reached (OpenID
//! Back-Channel Logout 1.0), removes the session's indexes and drops the intent. Finishing is
//! idempotent, so any instance completes a logout cut short by a crash or a store failure. It
//! returns the front-channel URLs to render (OpenID Front-Channel Logout 1.0).

pub mod backend;
pub mod confirm;
pub mod expiry;
pub mod fairness;
pub mod faults;
pub mod intent;
pub mod outbox;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clients;
use crate::session;
use crate::store::{DynStore, StoreError, keys};

pub use outbox::{Delivery, DeliveryState};

/// Why a session ended (recorded on each delivery and in the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The user logged out at the end-session endpoint.
    User,
    /// An application's backend asked (HL-5.4).
    AppBackend,
    /// An administrator ended it.
    Admin,
    /// The user's password changed, or the user was disabled or deleted.
    AccountChanged,
    /// Idle or absolute timeout.
    Expired,
    /// The upstream platform the session came from logged the user out (GB-6.4d).
    Upstream,
}

/// Everything a logout needs besides the session id.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// Our issuer (front-channel `iss`).
    pub issuer: &'a str,
    /// Current time.
    pub now: i64,
    /// Wakes this instance's outbox worker.
    pub wake: Option<&'a Notify>,
    /// Where the logout is recorded (GB-6.8a), with the actor that caused it.
    pub audit: Option<(&'a crate::audit::Audit, &'a str)>,
}

/// One client told about a logout through the back channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The client.
    pub client_id: String,
    /// The delivery id (its status is in the admin API).
    pub delivery_id: String,
}

/// The outcome of ending one session.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    /// The session id.
    pub sid: String,
    /// The user.
    pub sub: String,
    /// Back-channel deliveries queued.
    pub notified: Vec<Notice>,
    /// Front-channel logout URLs to render as iframes.
    #[serde(skip)]
    pub frontchannel: Vec<String>,
}

/// Ends session `sid`: records the intent, removes the session (which kills its tokens), then
/// queues the back-channel deliveries (skipping `skip_backchannel`, the application that asked,
/// HL-5.4) and lists the front-channel URLs. `None` when the session was already gone. Once
/// this returns `Ok`, or fails after the intent was written, the broadcast happens: here, or
/// by the intent recovery of any instance.
pub async fn end_session(
    ctx: Ctx<'_>,
    sid: &str,
    reason: Reason,
    skip_backchannel: Option<&str>,
) -> Result<Option<Ended>, StoreError> {
    let Some(session) = session::get(ctx.store, sid).await? else {
        return Ok(None);
    };
    faults::reached("logout.begin").await;
    let actor = ctx.audit.map_or("system", |(_, actor)| actor);
    let ending = intent::Ending::new(session, reason, skip_backchannel, actor, ctx.now);
    intent::record(ctx.store, &intent::Intent::Session(ending.clone()), ctx.now).await?;
    faults::reached("logout.intent").await;
    // The point of no return, one single-key step: without its record the session and its
    // tokens are dead everywhere. What remains is idempotent and recoverable from the intent.
    ctx.store.delete(&keys::session(sid)).await?;
    faults::reached("logout.taken").await;
    intent::finish_session(ctx, &ending).await.map(Some)
}

/// Ends every session of `sub`; with `reached_by`, only those that reached that client. The
/// list is recorded as one intent first, so a crash half-way still ends every listed session.
pub async fn end_user_sessions(
    ctx: Ctx<'_>,
    sub: &str,
    reason: Reason,
    reached_by: Option<&str>,
    skip_backchannel: Option<&str>,
) -> Result<Vec<Ended>, StoreError> {
    let mut sids = Vec::new();
    for sid in session::of_user(ctx.store, sub).await? {
        if let Some(client) = reached_by
            && !session::clients(ctx.store, &sid).await?.iter().any(|c| c == client)
        {
            continue;
        }
        sids.push(sid);
    }
    if sids.is_empty() {
        return Ok(Vec::new());
    }
    let actor = ctx.audit.map_or("system", |(_, actor)| actor);
    let all = intent::EndingAll::new(sub, sids, reason, skip_backchannel, actor, ctx.now);
    intent::record(ctx.store, &intent::Intent::User(all.clone()), ctx.now).await?;
    intent::finish_user(ctx, &all).await
}

/// The front-channel logout URLs of `client` for session `sid`, if it registered one.
fn frontchannel_of(client: &clients::Client, issuer: &str, sid: &str) -> Option<String> {
    let uri = client.frontchannel_logout_uri.as_ref()?;
    Some(frontchannel_url(uri, client.frontchannel_logout_session_required, issuer, sid))
}

/// OpenID Front-Channel Logout 1.0 s2: `iss` and `sid` are added when the client asked.
fn frontchannel_url(uri: &str, session_required: bool, issuer: &str, sid: &str) -> String {
    if !session_required {
        return uri.to_owned();
    }
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    ser.append_pair("iss", issuer).append_pair("sid", sid);
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", ser.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontchannel_params() {
        assert_eq!(frontchannel_url("https://rp/fc", false, "https://op", "s1"), "https://rp/fc");
        assert_eq!(
            frontchannel_url("https://rp/fc?a=1", true, "https://op", "s 1"),
            "https://rp/fc?a=1&iss=https%3A%2F%2Fop&sid=s+1"
        );
    }
}
