//! The webhook delivery worker of one instance (issue 12): claims applications from a leased
//! queue (one holder per application at a time, so its events go out in cursor order, one at a
//! time), turns the next feed entry it sees into an event record, POSTs it, and records the
//! outcome before moving on. Failures back off exponentially; after the horizon the event is
//! marked failed and the next one goes. Applications are served concurrently with a timeout per
//! attempt, so a dead or hung receiver delays only its own application. The same loop finishes
//! visible scope changes cut short by a crash ([`crate::directory::scope_change::recover`]).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use super::{DeliveryState, Event, Progress, TYP, event_id, progress, record, save, save_progress};
use crate::apps::{self, Application};
use crate::clock::Clock;
use crate::config::DirectoryConfig;
use crate::directory::feed::{self, Behind, Seen};
use crate::directory::{View, scope_change};
use crate::keys::Keys;
use crate::store::{DynStore, StoreError, keys};

/// Seconds an instance holds an application's webhook while it works on it.
const LEASE: i64 = 30;
/// Events one claim may send before handing the application back (others get their turn).
const BATCH: usize = 50;
/// Seconds between passes that re-schedule every webhook and recover scope changes.
const SWEEP: i64 = 30;

/// The claims of a directory event JWT.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    cursor: &'a str,
    changes: &'a [Seen],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resync: bool,
}

/// Delay before retry number `attempts` (1-based): 1 s, 2 s, 4 s ... capped at `cap`.
fn backoff(attempts: u32, cap: i64) -> i64 {
    1i64.checked_shl(attempts.saturating_sub(1).min(30)).unwrap_or(cap).min(cap)
}

/// What one claim of an application ended with: when to look at it again.
enum Next {
    /// Soon (more may be waiting, or it is idle and polled).
    At(i64),
    /// Never: it has no webhook any more.
    Gone,
}

/// The webhook worker of one instance.
pub struct Worker {
    /// Store shared with the other instances.
    pub store: DynStore,
    /// Signing keys.
    pub keys: Arc<Keys>,
    /// HTTP client under the outbound policy (SSRF rules at connect time).
    pub http: reqwest::Client,
    /// Clock.
    pub clock: Clock,
    /// Our issuer.
    pub issuer: String,
    /// `[directory]` settings.
    pub config: DirectoryConfig,
}

impl Worker {
    /// Runs until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.webhook_concurrency.max(1)));
        let poll = Duration::from_millis(self.config.webhook_poll_ms.max(10));
        let mut inflight = tokio::task::JoinSet::new();
        let mut last_sweep = i64::MIN;
        loop {
            while inflight.try_join_next().is_some() {}
            if *stop.borrow() {
                // Attempts in flight are dropped; their leases hand the applications back.
                inflight.abort_all();
                return;
            }
            let now = self.clock.now();
            if now.saturating_sub(last_sweep) >= SWEEP || now < last_sweep {
                last_sweep = now;
                if let Err(e) = self.sweep(now).await {
                    tracing::warn!(error = %e, "directory webhook sweep failed");
                }
            }
            let free = slots.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match self.store.queue_claim(keys::DIR_HOOK_QUEUE, now, LEASE, free.min(256)).await {
                    Ok(items) => items,
                    Err(e) => {
                        tracing::warn!(error = %e, "directory webhook claim failed");
                        Vec::new()
                    }
                }
            };
            for (app_id, _) in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let me = self.clone();
                inflight.spawn(async move {
                    me.serve(&app_id).await;
                    drop(permit);
                });
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Re-schedules every application with a webhook (one whose scheduling was cut short by a
    /// crash is found here) and finishes visible scope changes cut short.
    async fn sweep(&self, now: i64) -> Result<(), StoreError> {
        scope_change::recover(&self.store, now).await?;
        for app in apps::list(&self.store, None).await? {
            if app.registration.directory_webhook.is_some() {
                super::prepare(&self.store, &app.id, app.registration.directory_webhook.as_deref()).await?;
                self.store.queue_put_new(keys::DIR_HOOK_QUEUE, &app.id, app.id.as_bytes(), now).await?;
            }
        }
        Ok(())
    }

    /// Works on one claimed application, then hands it back due when it next needs looking at.
    async fn serve(&self, app_id: &str) {
        let next = match self.deliver(app_id).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(app = %app_id, error = %e, "directory webhook delivery failed; will retry");
                Next::At(self.clock.now())
            }
        };
        let outcome = match next {
            Next::At(due) => self.store.queue_put(keys::DIR_HOOK_QUEUE, app_id, app_id.as_bytes(), due).await,
            Next::Gone => super::forget(&self.store, app_id).await,
        };
        if let Err(e) = outcome {
            tracing::warn!(app = %app_id, error = %e, "could not reschedule a directory webhook; its lease will");
        }
    }

    /// Sends the application's waiting events in order, up to [`BATCH`].
    async fn deliver(&self, app_id: &str) -> Result<Next, StoreError> {
        let Some(app) = apps::get(&self.store, app_id).await? else { return Ok(Next::Gone) };
        let Some(url) = app.registration.directory_webhook.clone() else { return Ok(Next::Gone) };
        super::prepare(&self.store, app_id, Some(&url)).await?;
        let Some(mut p) = progress(&self.store, app_id).await? else { return Ok(Next::Gone) };
        for _ in 0..BATCH {
            let now = self.clock.now();
            let event = match &p.current {
                Some(id) => super::get(&self.store, id).await?,
                None => None,
            };
            let mut event = match event {
                Some(e) => e,
                None => match self.next_event(&app, &mut p, now).await? {
                    Some(e) => e,
                    // Idle: due again at once; the worker's poll interval paces the looks.
                    None => return Ok(Next::At(now)),
                },
            };
            if event.state != DeliveryState::Pending {
                // Its outcome was recorded, the progress not: move on.
                self.advance(&app, &mut p, &event).await?;
                continue;
            }
            if let Some(due) = event.next_attempt_at.filter(|d| *d > now) {
                return Ok(Next::At(due));
            }
            self.store.queue_touch(keys::DIR_HOOK_QUEUE, app_id, now + LEASE).await?;
            let result = self.send(&app, &url, &event).await;
            let now = self.clock.now();
            event.attempts = event.attempts.saturating_add(1);
            event.updated_at = now;
            match result {
                Ok(()) => {
                    event.state = DeliveryState::Delivered;
                    event.next_attempt_at = None;
                    event.last_error = None;
                }
                Err(e) if now - event.created_at >= self.config.webhook_retry_horizon => {
                    event.state = DeliveryState::Failed;
                    event.next_attempt_at = None;
                    event.last_error = Some(format!("{e}; gave up after {} attempts", event.attempts));
                }
                Err(e) => {
                    let due = now + backoff(event.attempts, self.config.webhook_max_backoff);
                    event.next_attempt_at = Some(due);
                    event.last_error = Some(e);
                    save(&self.store, &event).await?;
                    tracing::warn!(app = %app_id, event = %event.id, attempts = event.attempts,
                        cause = %event.last_error.as_deref().unwrap_or(""), "directory webhook delivery failed");
                    return Ok(Next::At(due));
                }
            }
            save(&self.store, &event).await?;
            if event.state == DeliveryState::Failed {
                tracing::warn!(app = %app_id, event = %event.id, cursor = %event.cursor,
                    cause = %event.last_error.as_deref().unwrap_or(""), "directory webhook event given up");
            }
            self.advance(&app, &mut p, &event).await?;
        }
        Ok(Next::At(self.clock.now()))
    }

    /// Records that `event` is done: the progress moves past its cursor.
    async fn advance(&self, app: &Application, p: &mut Progress, event: &Event) -> Result<(), StoreError> {
        p.cursor.clone_from(&event.cursor);
        p.current = None;
        save_progress(&self.store, &app.id, p).await
    }

    /// The next feed entry the application sees, recorded as a pending event (the intent,
    /// before any attempt); `None` when nothing is waiting. Entries it does not see are passed.
    async fn next_event(&self, app: &Application, p: &mut Progress, now: i64) -> Result<Option<Event>, StoreError> {
        let view = View::Scoped(app.registration.visible_scope.iter().cloned().collect());
        let fresh = |cursor: String, changes: Vec<Seen>, resync: bool| Event {
            id: event_id(&app.id, &p.generation, &cursor, resync),
            app_id: app.id.clone(),
            cursor,
            changes,
            resync,
            state: DeliveryState::Pending,
            attempts: 0,
            last_error: None,
            created_at: now,
            updated_at: now,
            next_attempt_at: Some(now),
        };
        // Entries it does not see are passed a page at a time (a bounded number per call).
        let mut passed = 0;
        let event = loop {
            match feed::read_for(&self.store, &view, Some(&app.id), Some(&p.cursor), 1).await? {
                Err(Behind::Resync { cursor }) => break fresh(cursor, Vec::new(), true),
                Ok(page) => match page.changes.first() {
                    Some(first) => {
                        let cursor = first.cursor.clone();
                        let changes: Vec<Seen> = page.changes.iter().filter(|c| c.cursor == cursor).cloned().collect();
                        break fresh(cursor, changes, false);
                    }
                    None if page.cursor != p.cursor && passed < BATCH => {
                        passed += 1;
                        p.cursor = page.cursor;
                        save_progress(&self.store, &app.id, p).await?;
                    }
                    None => return Ok(None),
                },
            }
        };
        let event = record(&self.store, event).await?;
        p.current = Some(event.id.clone());
        save_progress(&self.store, &app.id, p).await?;
        Ok(Some(event))
    }

    /// One POST of a freshly signed event (the body is the JWT, `application/jwt`).
    async fn send(&self, app: &Application, url: &str, e: &Event) -> Result<(), String> {
        let client_id = if app.clients.contains(&app.id) {
            app.id.clone()
        } else {
            app.clients.first().cloned().unwrap_or_else(|| app.id.clone())
        };
        let alg = crate::clients::get(&self.store, &client_id)
            .await
            .map_err(|e| e.to_string())?
            .map_or(crate::jwt::Alg::RS256, |c| c.id_token_alg);
        let now = self.clock.now();
        let claims = Claims {
            iss: &self.issuer,
            aud: &client_id,
            iat: now,
            exp: now + 300,
            jti: &e.id,
            cursor: &e.cursor,
            changes: &e.changes,
            resync: e.resync,
        };
        let token = self.keys.sign(alg, TYP, &claims).map_err(|e| e.to_string())?;
        let resp = self
            .http
            .post(url)
            .timeout(Duration::from_millis(self.config.webhook_attempt_timeout_ms))
            .header(reqwest::header::CONTENT_TYPE, "application/jwt")
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .body(token)
            .send()
            .await
            .map_err(|e| if e.is_timeout() { "timed out".to_owned() } else { e.without_url().to_string() })?;
        let status = resp.status();
        if status.is_success() { Ok(()) } else { Err(format!("receiver answered {status}")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1, 300), 1);
        assert_eq!(backoff(2, 300), 2);
        assert_eq!(backoff(5, 300), 16);
        assert_eq!(backoff(40, 300), 300);
    }
}
