//! Durable logout intents (DC-4, issue 10): a logout is written to the `logout-intents` queue
//! before anything is removed, and finishing it (queue the deliveries under deterministic ids,
//! remove the session's records, drop the intent) is idempotent. The request finishes its own
//! logout; if it dies or the store fails first, any instance's [`Recovery`] claims the intent
//! once its grace has passed and finishes it, so no crash point leaves a session removed but
//! not broadcast, or broadcast but alive.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::{Ctx, Ended, Notice, Reason, end_session, faults, frontchannel_of, outbox};
use crate::clients;
use crate::clock::Clock;
use crate::crypto;
use crate::session::{self, Session};
use crate::store::{self, DynStore, StoreError, keys};

/// Seconds the request has to finish its own logout before recovery may step in. Both running
/// at once is harmless (every step is idempotent), only wasteful.
pub const GRACE: i64 = 2;

/// Seconds a recovering instance holds an intent it claimed before another may retry it.
const LEASE: i64 = 10;

/// The end of one session, as recorded before the session is removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ending {
    /// The session as it was (whom to notify about: `sub`, `sid`, upstream).
    pub session: Session,
    /// Why it ends.
    pub reason: Reason,
    /// The application that asked (HL-5.4), not notified of its own request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// Who ended it (audit).
    pub actor: String,
    /// When the logout was asked for.
    pub at: i64,
}

impl Ending {
    /// The intent to end `session`.
    pub fn new(session: Session, reason: Reason, skip: Option<&str>, actor: &str, at: i64) -> Self {
        Self { session, reason, skip: skip.map(str::to_owned), actor: actor.to_owned(), at }
    }
}

/// The end of several sessions of one user ("log out everywhere", account changes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndingAll {
    /// Intent id (several may run for one user).
    pub id: String,
    /// The user.
    pub sub: String,
    /// The sessions to end, listed when the logout was asked for.
    pub sids: Vec<String>,
    /// Why they end.
    pub reason: Reason,
    /// The application that asked, not notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// Who ended them (audit).
    pub actor: String,
    /// When the logout was asked for.
    pub at: i64,
}

impl EndingAll {
    /// The intent to end sessions `sids` of `sub`.
    pub fn new(sub: &str, sids: Vec<String>, reason: Reason, skip: Option<&str>, actor: &str, at: i64) -> Self {
        Self {
            id: crypto::random_token(12),
            sub: sub.to_owned(),
            sids,
            reason,
            skip: skip.map(str::to_owned),
            actor: actor.to_owned(),
            at,
        }
    }
}

/// One recorded logout intent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// End one session.
    Session(Ending),
    /// End several sessions of a user (each gets an intent of its own as it is ended).
    User(EndingAll),
}

impl Intent {
    /// Its id in the intents queue: one per session, so recording it twice is harmless.
    fn id(&self) -> String {
        match self {
            Self::Session(e) => format!("sid:{}", e.session.sid),
            Self::User(u) => format!("user:{}", u.id),
        }
    }
}

/// Records `intent` durably; recovery may claim it from `now + GRACE` on.
pub async fn record(store: &DynStore, intent: &Intent, now: i64) -> Result<(), StoreError> {
    store.queue_put(keys::LOGOUT_INTENT_QUEUE, &intent.id(), &store::encode(intent), now + GRACE).await
}

/// Finishes the end of a session whose record is already deleted: queues a delivery to every
/// client it reached (and its upstream platform), removes its records and the intent.
/// Idempotent: deliveries have deterministic ids, removals of what is gone are no-ops.
pub async fn finish_session(ctx: Ctx<'_>, e: &Ending) -> Result<Ended, StoreError> {
    let s = &e.session;
    let mut ended = Ended { sid: s.sid.clone(), sub: s.sub.clone(), notified: Vec::new(), frontchannel: Vec::new() };
    let mut reached = session::clients(ctx.store, &s.sid).await?;
    reached.sort();
    // One round trip for every client record, then the deliveries are queued concurrently: a
    // session that reached a hundred applications must not cost a hundred sequential writes.
    let client_keys: Vec<String> = reached.iter().map(|id| keys::client(id)).collect();
    let records = ctx.store.get_many(&client_keys).await?;
    let mut queued = tokio::task::JoinSet::new();
    for (key, bytes) in client_keys.iter().zip(records) {
        let Some(bytes) = bytes else { continue };
        let client: clients::Client = store::decode(key, &bytes)?;
        ended.frontchannel.extend(frontchannel_of(&client, ctx.issuer, &s.sid));
        if e.skip.as_deref() == Some(client.client_id.as_str()) {
            continue;
        }
        if let Some(uri) = client.backchannel_logout_uri {
            let (store, session, reason, now) = (ctx.store.clone(), s.clone(), e.reason, ctx.now);
            queued.spawn(async move {
                let d = outbox::enqueue(&store, &client.client_id, &uri, &session, reason, now).await;
                faults::reached("logout.delivery_queued").await;
                d
            });
        }
    }
    // GB-6.4d: a session that came from an upstream platform tells it, unless the upstream is
    // where this logout came from.
    if let (Some(up), true) = (&s.upstream, e.reason != Reason::Upstream) {
        let (store, session, up, reason, now) = (ctx.store.clone(), s.clone(), up.clone(), e.reason, ctx.now);
        queued.spawn(async move { outbox::enqueue_upstream(&store, &up, &session, reason, now).await });
    }
    while let Some(joined) = queued.join_next().await {
        let d = joined.map_err(|err| StoreError::Unavailable(format!("queueing a delivery failed: {err}")))??;
        ended.notified.push(Notice { client_id: d.client_id, delivery_id: d.id });
    }
    ended.notified.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    faults::reached("logout.queued").await;
    if let (false, Some(w)) = (ended.notified.is_empty(), ctx.wake) {
        w.notify_one();
    }
    session::forget(ctx.store, s).await?;
    faults::reached("logout.cleaned").await;
    tracing::info!(sid = %s.sid, sub = %s.sub, reason = ?e.reason, deliveries = ended.notified.len(), "session ended");
    // Recorded before the intent is dropped: a crash in between records it twice, never not at all.
    if let Some((audit, _)) = ctx.audit {
        let notified: Vec<&str> = ended.notified.iter().map(|n| n.client_id.as_str()).collect();
        let event = crate::audit::Event::new(crate::audit::Kind::Logout, crate::audit::Outcome::Success)
            .actor(&e.actor)
            .subject(&s.sub)
            .detail(
                serde_json::json!({"sid": s.sid, "reason": e.reason, "notified": notified, "requested_by": e.skip}),
            );
        audit.record(event).await;
    }
    ctx.store.queue_remove(keys::LOGOUT_INTENT_QUEUE, &Intent::Session(e.clone()).id()).await?;
    faults::reached("logout.done").await;
    Ok(ended)
}

/// Ends each listed session (each through its own session intent), then drops the user intent.
pub async fn finish_user(ctx: Ctx<'_>, all: &EndingAll) -> Result<Vec<Ended>, StoreError> {
    let mut out = Vec::new();
    for sid in &all.sids {
        if let Some(e) = end_session(ctx, sid, all.reason, all.skip.as_deref()).await? {
            out.push(e);
        }
    }
    ctx.store.queue_remove(keys::LOGOUT_INTENT_QUEUE, &Intent::User(all.clone()).id()).await?;
    Ok(out)
}

/// Finishes a claimed intent. A session intent may have been cut before its session record
/// was deleted: deleting it again comes first, so the session is dead before anyone is told.
async fn finish(ctx: Ctx<'_>, intent: &Intent) -> Result<(), StoreError> {
    match intent {
        Intent::Session(e) => {
            ctx.store.delete(&keys::session(&e.session.sid)).await?;
            finish_session(ctx, e).await.map(|_| ())
        }
        Intent::User(all) => finish_user(ctx, all).await.map(|_| ()),
    }
}

/// The intent recovery of one instance: finishes logouts whose request died or failed.
pub struct Recovery {
    /// Store shared with the other instances.
    pub store: DynStore,
    /// Clock.
    pub clock: Clock,
    /// Our issuer.
    pub issuer: String,
    /// Wakes the outbox worker.
    pub wake: Arc<Notify>,
    /// Where finished logouts are recorded.
    pub audit: Option<crate::audit::Audit>,
    /// How often to look, milliseconds.
    pub poll_ms: u64,
}

impl Recovery {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.pass().await {
                Ok(n) if n > 0 => {
                    tracing::warn!(intents = n, "finished logouts cut short by a crash or a store failure")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "logout intent recovery failed"),
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(self.poll_ms.max(10))) => {}
            }
        }
    }

    /// One pass: finishes every intent due now; how many it finished.
    pub async fn pass(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self.store.queue_claim(keys::LOGOUT_INTENT_QUEUE, now, LEASE, 32).await?;
        let mut done = 0;
        for (id, payload) in due {
            let intent: Intent = match store::decode(keys::LOGOUT_INTENT_QUEUE, &payload) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(intent = %id, error = %e, "undecodable logout intent dropped");
                    self.store.queue_remove(keys::LOGOUT_INTENT_QUEUE, &id).await?;
                    continue;
                }
            };
            faults::reached("intent.claimed").await;
            let actor = match &intent {
                Intent::Session(e) => e.actor.as_str(),
                Intent::User(all) => all.actor.as_str(),
            };
            let ctx = Ctx {
                store: &self.store,
                issuer: &self.issuer,
                now,
                wake: Some(&self.wake),
                audit: self.audit.as_ref().map(|a| (a, actor)),
            };
            // A failure leaves the intent claimed; its lease hands it back for another try.
            match finish(ctx, &intent).await {
                Ok(()) => done += 1,
                Err(e) => tracing::warn!(intent = %id, error = %e, "could not finish a logout; will retry"),
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Login, Timeouts};
    use crate::store::memory::MemoryStore;

    const T: Timeouts = Timeouts { idle: 1800, absolute: 43200 };

    fn login() -> Login {
        Login {
            sub: "u1".into(),
            generation: 0,
            acr: "1".into(),
            amr: vec!["pwd".into()],
            upstream: None,
            acting: None,
        }
    }

    fn recovery(store: &DynStore, clock: &Clock) -> Recovery {
        Recovery {
            store: store.clone(),
            clock: clock.clone(),
            issuer: "https://op".into(),
            wake: Arc::new(Notify::new()),
            audit: None,
            poll_ms: 10,
        }
    }

    // DC-4, issue 10: a logout whose request died right after recording its intent (before the
    // session was even deleted) is finished by recovery once the grace has passed.
    #[tokio::test]
    async fn recovery_finishes_an_intent_cut_short() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let clock = Clock::manual(1_000);
        let (s, _) = session::create(&store, login(), 1_000, T).await.unwrap();
        let ending = Ending::new(s.clone(), Reason::Admin, None, "admin", 1_000);
        record(&store, &Intent::Session(ending), 1_000).await.unwrap();
        let r = recovery(&store, &clock);
        assert_eq!(r.pass().await.unwrap(), 0, "the request still has its grace");
        assert!(session::get(&store, &s.sid).await.unwrap().is_some());
        clock.advance(GRACE);
        assert_eq!(r.pass().await.unwrap(), 1);
        assert!(session::get(&store, &s.sid).await.unwrap().is_none(), "the session is dead");
        assert!(session::of_user(&store, "u1").await.unwrap().is_empty(), "and unindexed");
        assert_eq!(store.queue_len(keys::LOGOUT_INTENT_QUEUE).await.unwrap(), 0, "the intent is done");
    }

    // "Log out everywhere" cut short: every listed session ends, a session created later does not.
    #[tokio::test]
    async fn recovery_finishes_a_user_intent_for_the_listed_sessions_only() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let clock = Clock::manual(1_000);
        let (a, _) = session::create(&store, login(), 1_000, T).await.unwrap();
        let (b, _) = session::create(&store, login(), 1_000, T).await.unwrap();
        let all = EndingAll::new("u1", vec![a.sid.clone(), b.sid.clone()], Reason::Admin, None, "admin", 1_000);
        record(&store, &Intent::User(all), 1_000).await.unwrap();
        let (later, _) = session::create(&store, login(), 1_001, T).await.unwrap();
        clock.advance(GRACE);
        assert_eq!(recovery(&store, &clock).pass().await.unwrap(), 1);
        assert!(session::get(&store, &a.sid).await.unwrap().is_none());
        assert!(session::get(&store, &b.sid).await.unwrap().is_none());
        assert!(session::get(&store, &later.sid).await.unwrap().is_some(), "a later login is not logged out");
        assert_eq!(store.queue_len(keys::LOGOUT_INTENT_QUEUE).await.unwrap(), 0);
    }
}
