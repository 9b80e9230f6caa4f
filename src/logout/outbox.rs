//! The durable back-channel logout outbox (OpenID Back-Channel Logout 1.0 s2.5-s2.8). Each
//! delivery is a record in the store plus an item in a leased queue: any instance's worker may
//! claim it; the lease is short and renewed while the attempt runs, so an instance that dies
//! mid-delivery loses it to another within seconds; failures are retried with exponential
//! backoff up to a horizon; every attempt has a timeout; deliveries run concurrently, at most a
//! few per receiver, so one slow or hung application never delays the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, watch};

use super::fairness::{Shares, Waiting, receiver_of};
use super::{Reason, faults};
use crate::clients;
use crate::clock::Clock;
use crate::config::LogoutConfig;
use crate::crypto;
use crate::keys::Keys;
use crate::metrics::{DeliveryOutcome, Metrics};
use crate::session::{Session, Upstream};
use crate::store::{self, DynStore, StoreError, keys};

/// How long delivery records are kept for the admin API, seconds (7 days).
const RECORD_TTL: u64 = 7 * 24 * 3600;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet acknowledged; will be (re)tried.
    Pending,
    /// The client answered 2xx.
    Delivered,
    /// Gave up after the retry horizon, or the client is gone.
    Failed,
}

/// One back-channel logout delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Delivery id, also the logout token's `jti` (stable across retries, so a receiver can
    /// drop duplicates).
    pub id: String,
    /// The client to notify.
    pub client_id: String,
    /// Its back-channel logout URI at enqueue time.
    pub uri: String,
    /// The user.
    pub sub: String,
    /// The ended session.
    pub sid: String,
    /// Why the session ended.
    pub reason: Reason,
    /// Current state.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// When the next attempt is due, while pending.
    #[serde(default)]
    pub next_attempt_at: Option<i64>,
    /// When the attempt under way started; set before sending and cleared when its outcome is
    /// recorded, so a worker that finds it set knows the attempt before was cut off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_since: Option<i64>,
    /// Attempts made again after an attempt whose outcome was lost (its instance died or lost
    /// the lease mid-attempt): the receiver may have got this logout token (same `jti`) twice.
    #[serde(default)]
    pub duplicates: u32,
    /// When set, this delivery tells the upstream platform the session came from, through its
    /// server-to-server logout API, instead of posting a logout token to a client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
}

/// The id of the delivery about session `sid` to `to` (a client id, or `platform:<trust>`):
/// deterministic, so a logout finished again after a crash finds the deliveries it queued
/// instead of queueing new ones; unique (sids are random), so it serves as the token's `jti`.
pub fn delivery_id(sid: &str, to: &str) -> String {
    let digest = crypto::sha256(format!("logout\n{sid}\n{to}").as_bytes());
    crypto::b64(digest.get(..16).unwrap_or(&digest))
}

/// A new pending delivery about session `s`.
fn pending(
    client_id: String,
    uri: String,
    s: &Session,
    reason: Reason,
    now: i64,
    upstream: Option<Upstream>,
) -> Delivery {
    Delivery {
        id: delivery_id(&s.sid, &client_id),
        client_id,
        uri,
        // The tokens' subject: the legal person an agent acted for, else the user.
        sub: s.principal().to_owned(),
        sid: s.sid.clone(),
        reason,
        state: DeliveryState::Pending,
        attempts: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
        next_attempt_at: Some(now),
        in_flight_since: None,
        duplicates: 0,
        upstream,
    }
}

/// Queues the delivery to `client_id` about session `s`. Idempotent: when it
/// was queued before (a logout finished again after a crash), the existing delivery is kept
/// and only put back in the queue if it is still pending and no longer there.
pub async fn enqueue(
    store: &DynStore,
    client_id: &str,
    uri: &str,
    s: &Session,
    reason: Reason,
    now: i64,
) -> Result<Delivery, StoreError> {
    queue(store, pending(client_id.to_owned(), uri.to_owned(), s, reason, now, None), now).await
}

/// Queues the notice to the upstream platform a session came from (GB-6.4d). Idempotent.
pub async fn enqueue_upstream(
    store: &DynStore,
    up: &Upstream,
    s: &Session,
    reason: Reason,
    now: i64,
) -> Result<Delivery, StoreError> {
    let to = format!("platform:{}", up.trust);
    queue(store, pending(to, up.iss.clone(), s, reason, now, Some(up.clone())), now).await
}

async fn queue(store: &DynStore, fresh: Delivery, now: i64) -> Result<Delivery, StoreError> {
    let d = if store.put_new(&keys::delivery(&fresh.id), &store::encode(&fresh), Some(RECORD_TTL)).await? {
        fresh
    } else {
        match get(store, &fresh.id).await? {
            Some(existing) => existing,
            None => {
                save(store, &fresh).await?;
                fresh
            }
        }
    };
    if d.state != DeliveryState::Pending {
        return Ok(d);
    }
    store.set_add(&keys::session_deliveries(&d.sid), &d.id, Some(RECORD_TTL)).await?;
    store.set_add(&keys::client_deliveries(&d.client_id), &d.id, Some(RECORD_TTL)).await?;
    store.queue_put_new(keys::OUTBOX_QUEUE, &d.id, &store::encode(&d), now).await?;
    Ok(d)
}

async fn save(store: &DynStore, d: &Delivery) -> Result<(), StoreError> {
    store::put_json(store.as_ref(), &keys::delivery(&d.id), d, Some(RECORD_TTL)).await
}

/// Reads a delivery record.
pub async fn get(store: &DynStore, id: &str) -> Result<Option<Delivery>, StoreError> {
    store::get_json(store.as_ref(), &keys::delivery(id)).await
}

/// Whose deliveries to list.
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    /// Those of one ended session.
    Session(&'a str),
    /// Those to one client.
    Client(&'a str),
}

/// The deliveries of a session or to a client, newest first.
pub async fn list(store: &DynStore, of: Of<'_>) -> Result<Vec<Delivery>, StoreError> {
    let index_key = match of {
        Of::Session(sid) => keys::session_deliveries(sid),
        Of::Client(id) => keys::client_deliveries(id),
    };
    let ids = store.set_members(&index_key).await?;
    let keys: Vec<String> = ids.iter().map(|id| keys::delivery(id)).collect();
    let mut out: Vec<Delivery> = Vec::new();
    for (k, v) in keys.iter().zip(store.get_many(&keys).await?) {
        if let Some(bytes) = v {
            out.push(store::decode(k, &bytes)?);
        }
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.client_id.cmp(&b.client_id)));
    Ok(out)
}

/// Claims of a logout token (Back-Channel Logout s2.4). Never a `nonce`.
#[derive(Debug, Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    sid: &'a str,
    events: serde_json::Value,
}

/// The back-channel logout event URI (Back-Channel Logout s2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Delay before retry number `attempts` (1-based): 1 s, 2 s, 4 s ... capped, plus up to 25 %
/// jitter so a recovering receiver is not hit by every instance at once.
fn backoff(attempts: u32, cap: i64) -> i64 {
    let base = 1i64.checked_shl(attempts.saturating_sub(1).min(30)).unwrap_or(cap).min(cap);
    let jitter_span = (base / 4).max(0);
    let jitter = if jitter_span > 0 {
        let r = crypto::sha256(crypto::random_token(4).as_bytes());
        i64::from(r.first().copied().unwrap_or(0)) % (jitter_span + 1)
    } else {
        0
    };
    base + jitter
}

/// The delivery worker of one instance.
pub struct Worker {
    /// Store shared with the other instances.
    pub store: DynStore,
    /// Signing keys (logout tokens are signed like the client's ID tokens).
    pub keys: Arc<Keys>,
    /// HTTP client (redirects off).
    pub http: reqwest::Client,
    /// Clock.
    pub clock: Clock,
    /// Our issuer.
    pub issuer: String,
    /// Settings.
    pub config: LogoutConfig,
    /// Wakes the worker when this instance queues something.
    pub wake: Arc<Notify>,
    /// Where attempt outcomes are counted, if anywhere.
    pub metrics: Option<Metrics>,
    /// Peer platforms' metadata (for upstream logout notices).
    pub peers: Arc<crate::federation::remote::Peers>,
}

impl Worker {
    /// Runs until `stop` turns true: claims due deliveries and attempts each concurrently, at
    /// most `per_receiver_concurrency` at once per receiver. A claimed delivery whose receiver
    /// has no room waits in a local line (its lease renewed) and starts as soon as one of that
    /// receiver's attempts ends, so a hung receiver holds only its own share of the slots.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let concurrency = self.config.concurrency.max(1);
        let slots = Arc::new(Semaphore::new(concurrency));
        let shares = Arc::new(Shares::default());
        let share_max = self.config.per_receiver_concurrency.max(1);
        let mut waiting = Waiting::new(concurrency, concurrency.saturating_mul(4));
        let lease_ms = u64::try_from(self.config.lease).unwrap_or(1).saturating_mul(1000);
        let renew_every = Duration::from_millis((lease_ms / 3).max(100));
        let poll = Duration::from_millis(self.config.poll_ms.max(10));
        // Attempts in flight, and the delivery each holds: a crash leaves them to the lease; a
        // shutdown hands them back at once (`release`).
        let mut inflight = tokio::task::JoinSet::new();
        let mut held: HashMap<tokio::task::Id, String> = HashMap::new();
        loop {
            while let Some(done) = inflight.try_join_next_with_id() {
                held.remove(&done.map_or_else(|e| e.id(), |(task, ())| task));
            }
            if *stop.borrow() {
                self.release(inflight, held, waiting.drain()).await;
                return;
            }
            let now = self.clock.now();
            while slots.available_permits() > 0 {
                let Some((next, share)) = waiting.next_ready(&shares, share_max) else { break };
                let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                let me = self.clone();
                let delivery = next.id.clone();
                let task = inflight.spawn(async move {
                    me.attempt(&next.id, &next.payload).await;
                    drop((permit, share));
                });
                held.insert(task.id(), delivery);
            }
            for id in waiting.to_renew(renew_every) {
                if let Err(e) = self.store.queue_touch(keys::OUTBOX_QUEUE, &id, now + self.config.lease).await {
                    tracing::warn!(delivery = %id, error = %e, "could not renew a waiting delivery's lease");
                }
            }
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match self.store.queue_claim(keys::OUTBOX_QUEUE, now, self.config.lease, free.min(256)).await {
                    Ok(items) => items,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox claim failed");
                        Vec::new()
                    }
                }
            };
            let busy = !claimed.is_empty();
            for (id, payload) in claimed {
                let receiver = receiver_of(&payload);
                let Some(share) = shares.take(&receiver, share_max) else {
                    // The receiver has no room: wait here; when the line is full, in the queue
                    // until the claim's lease runs out.
                    let _ = waiting.push(receiver, id, payload);
                    continue;
                };
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let me = self.clone();
                let delivery = id.clone();
                let task = inflight.spawn(async move {
                    me.attempt(&id, &payload).await;
                    drop((permit, share));
                });
                held.insert(task.id(), delivery);
            }
            if busy {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                Some(done) = inflight.join_next_with_id(), if !inflight.is_empty() => {
                    held.remove(&done.map_or_else(|e| e.id(), |(task, ())| task));
                }
            }
        }
    }

    /// Shutdown: stops the attempts in flight and hands their deliveries back to the queue, due
    /// now, so another instance sends them at once instead of after the lease. A stopped attempt
    /// may have reached its receiver: the resend is a duplicate the receiver drops by `jti`.
    async fn release(
        &self,
        mut inflight: tokio::task::JoinSet<()>,
        mut held: HashMap<tokio::task::Id, String>,
        waiting: Vec<String>,
    ) {
        inflight.abort_all();
        while let Some(done) = inflight.join_next_with_id().await {
            // Finished before the abort: recorded, nothing to hand back.
            if let Ok((task, ())) = done {
                held.remove(&task);
            }
        }
        // Claimed deliveries still waiting for their receiver's turn go back too.
        let ids: Vec<String> = held.into_values().chain(waiting).collect();
        if ids.is_empty() {
            return;
        }
        match self.store.queue_release(keys::OUTBOX_QUEUE, &ids, self.clock.now()).await {
            Ok(n) => tracing::info!(released = n, "shutdown: logout deliveries in flight handed back"),
            Err(e) => {
                tracing::warn!(error = %e, held = ids.len(), "shutdown: deliveries not handed back; their leases will run out")
            }
        }
    }

    /// One attempt at a claimed delivery. The stored record is the truth (the queued payload
    /// is only a fallback): an attempt is marked in flight before it is sent, so the next
    /// worker to claim a delivery whose attempt was cut off counts a possible duplicate.
    async fn attempt(&self, id: &str, payload: &[u8]) {
        faults::reached("outbox.claimed").await;
        let mut d: Delivery = match get(&self.store, id).await {
            Ok(Some(d)) => d,
            Ok(None) => match store::decode(keys::OUTBOX_QUEUE, payload) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "undecodable outbox item dropped");
                    let _ = self.store.queue_remove(keys::OUTBOX_QUEUE, id).await;
                    self.count(DeliveryOutcome::Failed);
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(delivery = %id, error = %e, "could not read a delivery; its lease will retry it");
                return;
            }
        };
        if d.state != DeliveryState::Pending {
            // Settled already (put back by a logout finished twice): nothing to send.
            let _ = self.store.queue_remove(keys::OUTBOX_QUEUE, id).await;
            return;
        }
        if d.in_flight_since.is_some() {
            d.duplicates = d.duplicates.saturating_add(1);
            tracing::info!(delivery = %d.id, client_id = %d.client_id, "resending a delivery whose last attempt was cut off");
        }
        d.in_flight_since = Some(self.clock.now());
        if let Err(e) = save(&self.store, &d).await {
            tracing::warn!(delivery = %d.id, error = %e, "could not mark a delivery in flight; its lease will retry it");
            return;
        }
        faults::reached("outbox.started").await;
        let result = self.send_leased(&d).await;
        if result.is_ok() {
            faults::reached("outbox.sent").await;
        }
        let now = self.clock.now();
        d.attempts = d.attempts.saturating_add(1);
        d.updated_at = now;
        d.in_flight_since = None;
        let outcome = match result {
            Ok(()) => {
                d.state = DeliveryState::Delivered;
                d.next_attempt_at = None;
                d.last_error = None;
                self.finish(&d).await
            }
            Err(Fatal(e)) => {
                d.state = DeliveryState::Failed;
                d.next_attempt_at = None;
                d.last_error = Some(e);
                self.finish(&d).await
            }
            Err(Retry(e)) if now - d.created_at >= self.config.retry_horizon => {
                d.state = DeliveryState::Failed;
                d.next_attempt_at = None;
                d.last_error = Some(format!("{e}; gave up after {} attempts", d.attempts));
                self.finish(&d).await
            }
            Err(Retry(e)) => {
                let next = now + backoff(d.attempts, self.config.max_backoff);
                d.next_attempt_at = Some(next);
                d.last_error = Some(e);
                match save(&self.store, &d).await {
                    Ok(()) => self.store.queue_put(keys::OUTBOX_QUEUE, &d.id, &store::encode(&d), next).await,
                    Err(e) => Err(e),
                }
            }
        };
        // Counted once recorded: an outcome that could not be saved is attempted again.
        if outcome.is_ok() {
            self.count(match d.state {
                DeliveryState::Delivered => DeliveryOutcome::Delivered,
                DeliveryState::Failed => DeliveryOutcome::Failed,
                DeliveryState::Pending => DeliveryOutcome::Retry,
            });
        }
        match (&outcome, d.state) {
            (Err(e), _) => {
                tracing::warn!(delivery = %d.id, error = %e, "could not record delivery outcome; the lease will retry it")
            }
            (Ok(()), DeliveryState::Delivered) => {
                tracing::info!(delivery = %d.id, client_id = %d.client_id, attempts = d.attempts, "logout delivered")
            }
            (Ok(()), state) => {
                tracing::info!(delivery = %d.id, client_id = %d.client_id, ?state, error = d.last_error.as_deref().unwrap_or(""), "logout delivery not done")
            }
        }
    }

    /// Sends `d` while renewing its lease (a heartbeat every third of it), so the lease can be
    /// short: an instance that dies mid-attempt loses the delivery to another within seconds.
    async fn send_leased(&self, d: &Delivery) -> Result<(), Failure> {
        let lease_ms = u64::try_from(self.config.lease).unwrap_or(1).saturating_mul(1000);
        let every = Duration::from_millis((lease_ms / 3).max(100));
        let send = self.send(d);
        tokio::pin!(send);
        loop {
            tokio::select! {
                result = &mut send => return result,
                () = tokio::time::sleep(every) => {
                    let until = self.clock.now() + self.config.lease;
                    if let Err(e) = self.store.queue_touch(keys::OUTBOX_QUEUE, &d.id, until).await {
                        tracing::warn!(delivery = %d.id, error = %e, "could not renew a delivery lease");
                    }
                }
            }
        }
    }

    fn count(&self, outcome: DeliveryOutcome) {
        if let Some(m) = &self.metrics {
            m.logout_delivery(outcome);
        }
    }

    async fn finish(&self, d: &Delivery) -> Result<(), StoreError> {
        save(&self.store, d).await?;
        super::faults::reached("outbox.recorded").await;
        self.store.queue_remove(keys::OUTBOX_QUEUE, &d.id).await.map(|_| ())
    }

    /// GB-6.4d, HL-5.4: tells the upstream that its session ended here, at its server-to-server
    /// logout API, authenticated as our client there. The upstream skips us in its broadcast.
    async fn send_upstream(&self, d: &Delivery, up: &Upstream) -> Result<(), Failure> {
        let trust = crate::federation::get(&self.store, &up.trust).await.map_err(|e| Retry(e.to_string()))?;
        let Some(trust) = trust.filter(|t| t.enabled && t.issuer == up.iss) else {
            return Err(Fatal("the trust is gone or disabled".into()));
        };
        let meta = self.peers.metadata(&self.http, &trust.issuer).await.map_err(|e| Retry(e.to_string()))?;
        let endpoint = match (&meta.platform_logout_endpoint, &up.sid) {
            (Some(ep), _) => ep.clone(),
            (None, _) => return Err(Fatal(format!("{} offers no server-to-server logout", trust.issuer))),
        };
        let form: Vec<(&str, &str)> = match &up.sid {
            Some(sid) => vec![("sid", sid.as_str())],
            None => vec![("logout_hint", up.sub.as_str())],
        };
        let secret = trust.secret(self.keys.data()).unwrap_or_default();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let resp = self
            .http
            .post(&endpoint)
            .timeout(Duration::from_millis(self.config.attempt_timeout_ms))
            .basic_auth(enc(&trust.client_id), Some(enc(&secret)))
            .form(&form)
            .send()
            .await
            .map_err(|e| Retry(if e.is_timeout() { "timed out".to_owned() } else { e.without_url().to_string() }))?;
        let status = resp.status();
        tracing::info!(delivery = %d.id, trust = %trust.id, %status, "upstream told of a logout");
        if status.is_success() { Ok(()) } else { Err(Retry(format!("upstream answered {status}"))) }
    }

    /// One POST of a freshly signed logout token (Back-Channel Logout s2.5).
    async fn send(&self, d: &Delivery) -> Result<(), Failure> {
        if let Some(up) = &d.upstream {
            return self.send_upstream(d, up).await;
        }
        let client = clients::get(&self.store, &d.client_id).await.map_err(|e| Retry(e.to_string()))?;
        let Some(client) = client else { return Err(Fatal("the client no longer exists".into())) };
        let now = self.clock.now();
        // OIDC Core s8.1: the subject as this client knows it.
        let sub = crate::identity::subject::for_client(self.keys.data(), &client, &d.sub);
        let claims = LogoutClaims {
            iss: &self.issuer,
            sub: &sub,
            aud: &d.client_id,
            iat: now,
            exp: now + 120,
            jti: &d.id,
            sid: &d.sid,
            events: serde_json::json!({ EVENT: {} }),
        };
        let token = self.keys.sign(client.id_token_alg, "logout+jwt", &claims).map_err(|e| Retry(e.to_string()))?;
        let resp = self
            .http
            .post(&d.uri)
            .timeout(Duration::from_millis(self.config.attempt_timeout_ms))
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .map_err(|e| Retry(if e.is_timeout() { "timed out".to_owned() } else { e.without_url().to_string() }))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            // s2.8 lets a 400 mean "token rejected"; a misconfigured RP may be fixed, so every
            // failure is retried until the horizon.
            Err(Retry(format!("receiver answered {status}")))
        }
    }
}

enum Failure {
    Retry(String),
    Fatal(String),
}
use Failure::{Fatal, Retry};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert!((1..=1).contains(&backoff(1, 600)));
        assert!((2..=2).contains(&backoff(2, 600)));
        let b5 = backoff(5, 600);
        assert!((16..=20).contains(&b5), "{b5}");
        let capped = backoff(40, 600);
        assert!((600..=750).contains(&capped), "{capped}");
    }
}
