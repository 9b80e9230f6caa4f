//! Registration sync (GB-6.4a): a user registered here is pushed, without any password, to each
//! upstream whose trust asks for it, through the upstream's registration API, with retries from
//! a durable queue; both sides then link the accounts, so the person arriving from either side
//! is the same account. The upstream side of the API is [`accept`].

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::links::{self, NO_PASSWORD, Person};
use super::remote::Peers;
use super::{FedError, Role, Trust};
use crate::clock::Clock;
use crate::keys::Keys;
use crate::outbound::read_limited;
use crate::store::{self, DynStore, StoreError};
use crate::users::{self, User};

/// The queue of registrations to push.
pub const QUEUE: &str = "queue:fed-sync";

/// A queued push.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    trust: String,
    sub: String,
    attempts: u32,
    created_at: i64,
}

/// What a platform sends upstream about a registered user (no password, ever).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Registration {
    /// The user's id at the sending platform.
    pub sub: String,
    /// Username there.
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the sender verified the e-mail.
    #[serde(default)]
    pub email_verified: bool,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// The upstream's answer: the account there.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Registered {
    /// The user's id at the upstream.
    pub sub: String,
    /// Whether the upstream created the account now (else it was linked before).
    pub created: bool,
}

/// Queues the push of a newly registered user to every upstream that wants it.
pub async fn enqueue(store: &DynStore, sub: &str, now: i64, wake: Option<&Notify>) -> Result<usize, StoreError> {
    let mut n = 0;
    for t in super::all_enabled(store, Role::Upstream).await?.into_iter().filter(|t| t.sync_registrations) {
        let job = Job { trust: t.id, sub: sub.to_owned(), attempts: 0, created_at: now };
        let id = format!("{}:{}", job.trust, job.sub);
        store.queue_put(QUEUE, &id, &store::encode(&job), now).await?;
        n += 1;
    }
    if let (true, Some(w)) = (n > 0, wake) {
        w.notify_one();
    }
    Ok(n)
}

/// The upstream side (GB-6.4a): a downstream platform, authenticated as its client here,
/// registers a user; the account is created (no password: the person logs in through a
/// platform or is given one by an admin) or found by its link, and linked.
pub async fn accept(
    store: &DynStore,
    keys_: &Keys,
    client_id: &str,
    r: &Registration,
    now: i64,
) -> Result<Registered, FedError> {
    let trust = super::downstream_of_client(store, client_id)
        .await?
        .ok_or_else(|| FedError::Denied("this client is not a trusted downstream platform".into()))?;
    if r.sub.is_empty() || r.sub.len() > 255 || users::check_username(&r.username).is_err() {
        return Err(FedError::Invalid("sub and a valid username are required".into()));
    }
    if let Some(u) = links::linked(store, &trust.id, &r.sub).await? {
        return Ok(Registered { sub: u.id, created: false });
    }
    let person = Person {
        sub: r.sub.clone(),
        name: Some(r.name.clone()),
        preferred_username: Some(r.username.clone()),
        email: r.email.clone(),
        email_verified: Some(r.email_verified),
        phone_number: r.phone_number.clone(),
    };
    let t = Trust {
        create_accounts: true,
        accept_claims: vec!["name".into(), "email".into(), "phone_number".into()],
        ..trust
    };
    let user = links::local_account(store, keys_, &t, &person, now).await?;
    Ok(Registered { sub: user.id, created: user.password_hash == NO_PASSWORD && user.created_at == now })
}

/// The sync worker of one instance: pushes queued registrations, retrying with backoff.
pub struct Worker {
    /// Store.
    pub store: DynStore,
    /// Keys (our secret at the upstream is sealed).
    pub keys: Arc<Keys>,
    /// HTTP.
    pub http: reqwest::Client,
    /// Peer metadata.
    pub peers: Arc<Peers>,
    /// Clock.
    pub clock: Clock,
    /// Wakes the worker.
    pub wake: Arc<Notify>,
    /// Where pushes are audited.
    pub audit: crate::audit::Audit,
}

/// Give up on a push after this long, seconds (7 days).
const HORIZON: i64 = 7 * 86_400;

/// The largest answer read from the upstream's registration sync API, bytes.
const MAX_ANSWER: usize = 16 * 1024;

impl Worker {
    /// Runs until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let now = self.clock.now();
            let claimed = self.store.queue_claim(QUEUE, now, 60, 16).await.unwrap_or_default();
            for (id, payload) in &claimed {
                self.attempt(id, payload, now).await;
            }
            if !claimed.is_empty() {
                continue;
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn attempt(&self, id: &str, payload: &[u8], now: i64) {
        let Ok(mut job) = store::decode::<Job>(QUEUE, payload) else {
            let _ = self.store.queue_remove(QUEUE, id).await;
            return;
        };
        let outcome = self.push(&job).await;
        let (kind, outcome_txt) = match &outcome {
            Ok(_) => (crate::audit::Outcome::Success, String::new()),
            Err(e) => (crate::audit::Outcome::Failure, e.to_string()),
        };
        job.attempts = job.attempts.saturating_add(1);
        let done = outcome.is_ok()
            || matches!(outcome, Err(FedError::Denied(_) | FedError::NoTrust(_)))
            || now - job.created_at > HORIZON;
        if done {
            let _ = self.store.queue_remove(QUEUE, id).await;
            let e = crate::audit::Event::new(crate::audit::Kind::Federation, kind)
                .actor("system")
                .subject(&job.sub)
                .detail(serde_json::json!({"trust": job.trust, "step": "registration_sync", "attempts": job.attempts, "error": outcome_txt}));
            self.audit.record(e).await;
        } else {
            let delay = 1i64.checked_shl(job.attempts.min(9)).unwrap_or(600).min(600);
            let _ = self.store.queue_put(QUEUE, id, &store::encode(&job), now + delay).await;
            tracing::warn!(trust = %job.trust, attempts = job.attempts, error = %outcome_txt, "registration sync will retry");
        }
    }

    async fn push(&self, job: &Job) -> Result<Registered, FedError> {
        let trust = super::enabled(&self.store, &job.trust, Role::Upstream).await?;
        let Some(user) = users::get(&self.store, &job.sub).await? else {
            return Err(FedError::Denied("the user is gone".into()));
        };
        let meta = self.peers.metadata(&self.http, &trust.issuer).await?;
        let endpoint = meta
            .registration_sync_endpoint
            .ok_or_else(|| FedError::Denied(format!("{} accepts no registrations", trust.issuer)))?;
        let body = registration_of(&user, &self.keys);
        let secret = trust.secret(self.keys.data()).unwrap_or_default();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let resp = self
            .http
            .post(&endpoint)
            .basic_auth(enc(&trust.client_id), Some(enc(&secret)))
            .json(&body)
            .send()
            .await
            .map_err(|e| FedError::Remote(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(FedError::Denied(format!("{} refused the registration: {status}", trust.issuer)));
        }
        if !status.is_success() {
            return Err(FedError::Remote(format!("{} answered {status}", trust.issuer)));
        }
        let body = read_limited(resp, MAX_ANSWER).await.map_err(|e| FedError::Remote(e.to_string()))?;
        let registered: Registered = serde_json::from_slice(&body).map_err(|e| FedError::Remote(e.to_string()))?;
        links::link(&self.store, &trust.id, &registered.sub, &user.id).await?;
        tracing::info!(trust = %trust.id, sub = %user.id, upstream_sub = %registered.sub, "registration synced");
        Ok(registered)
    }
}

fn registration_of(u: &User, keys_: &Keys) -> Registration {
    Registration {
        sub: u.id.clone(),
        username: u.username.clone(),
        name: u.name.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        phone_number: u.phone(keys_.data()),
    }
}
