//! Single logout (DC-4, GB-6.4d, HL-5.4): every path that ends an SSO session comes through
//! [`end_session`], which removes the session atomically (exactly one caller wins, so a logout
//! is broadcast once; the session's non-offline tokens die with its record, see
//! [`crate::tokens::validity`]), queues a durable back-channel
//! delivery for every client the session reached (OpenID Back-Channel Logout 1.0) and returns
//! the front-channel URLs to render (OpenID Front-Channel Logout 1.0).

pub mod backend;
pub mod confirm;
pub mod expiry;
pub mod faults;
pub mod outbox;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clients;
use crate::session;
use crate::store::{self, DynStore, StoreError, keys};

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

/// Ends session `sid`: removes it (which kills its tokens), queues the back-channel deliveries
/// (skipping `skip_backchannel`, the application that asked, HL-5.4) and lists the
/// front-channel URLs. `None` when the session was already gone.
pub async fn end_session(
    ctx: Ctx<'_>,
    sid: &str,
    reason: Reason,
    skip_backchannel: Option<&str>,
) -> Result<Option<Ended>, StoreError> {
    let reached = session::clients(ctx.store, sid).await?;
    faults::reached("logout.begin").await;
    let Some(s) = session::remove(ctx.store, sid).await? else {
        return Ok(None);
    };
    faults::reached("logout.cleaned").await;
    let mut ended = Ended { sid: s.sid.clone(), sub: s.sub.clone(), notified: Vec::new(), frontchannel: Vec::new() };
    let mut reached = reached;
    reached.sort();
    // One round trip for every client record, then the deliveries are queued concurrently: a
    // session that reached a hundred applications must not cost a hundred sequential writes.
    let keys: Vec<String> = reached.iter().map(|id| keys::client(id)).collect();
    let records = ctx.store.get_many(&keys).await?;
    let mut queued = tokio::task::JoinSet::new();
    for (key, bytes) in keys.iter().zip(records) {
        let Some(bytes) = bytes else { continue };
        let client: clients::Client = store::decode(key, &bytes)?;
        if let Some(uri) = &client.frontchannel_logout_uri {
            let url = frontchannel_url(uri, client.frontchannel_logout_session_required, ctx.issuer, &s.sid);
            ended.frontchannel.push(url);
        }
        if skip_backchannel == Some(client.client_id.as_str()) {
            continue;
        }
        if let Some(uri) = client.backchannel_logout_uri {
            let (store, session, now) = (ctx.store.clone(), s.clone(), ctx.now);
            queued.spawn(async move {
                let d = outbox::enqueue(&store, &client.client_id, &uri, &session, reason, now).await;
                faults::reached("logout.delivery_queued").await;
                d
            });
        }
    }
    // GB-6.4d: a session that came from an upstream platform tells it, unless the upstream is
    // where this logout came from.
    if let (Some(up), true) = (&s.upstream, reason != Reason::Upstream) {
        let (store, session, up, now) = (ctx.store.clone(), s.clone(), up.clone(), ctx.now);
        queued.spawn(async move { outbox::enqueue_upstream(&store, &up, &session, reason, now).await });
    }
    while let Some(joined) = queued.join_next().await {
        let d = joined.map_err(|e| StoreError::Unavailable(format!("queueing a delivery failed: {e}")))??;
        ended.notified.push(Notice { client_id: d.client_id, delivery_id: d.id });
    }
    faults::reached("logout.queued").await;
    ended.notified.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    if let (false, Some(w)) = (ended.notified.is_empty(), ctx.wake) {
        w.notify_one();
    }
    tracing::info!(sid = %s.sid, sub = %s.sub, ?reason, deliveries = ended.notified.len(), "session ended");
    if let Some((audit, actor)) = ctx.audit {
        let notified: Vec<&str> = ended.notified.iter().map(|n| n.client_id.as_str()).collect();
        let event = crate::audit::Event::new(crate::audit::Kind::Logout, crate::audit::Outcome::Success)
            .actor(actor)
            .subject(&s.sub)
            .detail(serde_json::json!({"sid": s.sid, "reason": reason, "notified": notified, "requested_by": skip_backchannel}));
        audit.record(event).await;
    }
    faults::reached("logout.done").await;
    Ok(Some(ended))
}

/// Ends every session of `sub`; with `reached_by`, only those that reached that client.
pub async fn end_user_sessions(
    ctx: Ctx<'_>,
    sub: &str,
    reason: Reason,
    reached_by: Option<&str>,
    skip_backchannel: Option<&str>,
) -> Result<Vec<Ended>, StoreError> {
    let mut out = Vec::new();
    for sid in session::of_user(ctx.store, sub).await? {
        if let Some(client) = reached_by
            && !session::clients(ctx.store, &sid).await?.iter().any(|c| c == client)
        {
            continue;
        }
        if let Some(e) = end_session(ctx, &sid, reason, skip_backchannel).await? {
            out.push(e);
        }
    }
    Ok(out)
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
