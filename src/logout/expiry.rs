//! Session expiry is a logout too: a sweeper claims sessions whose idle or absolute timeout has
//! passed (from the store's expiry queue, so one instance handles each) and ends them through
//! the same broadcast as every other path. Sessions touched since are put back in the queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{Ctx, Reason, end_session};
use crate::clock::Clock;
use crate::session::{self, Timeouts};
use crate::store::{DynStore, keys};

/// The sweeper of one instance.
pub struct Sweeper {
    /// Store.
    pub store: DynStore,
    /// Clock.
    pub clock: Clock,
    /// Issuer.
    pub issuer: String,
    /// Session timeouts.
    pub timeouts: Timeouts,
    /// Broadcast expired sessions (else they are only removed).
    pub broadcast: bool,
    /// How often to look, milliseconds.
    pub every_ms: u64,
    /// Wakes the outbox worker.
    pub wake: Arc<Notify>,
    /// Where expiry logouts are recorded.
    pub audit: Option<crate::audit::Audit>,
}

impl Sweeper {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "session expiry sweep failed");
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(self.every_ms.max(10))) => {}
            }
        }
    }

    /// One pass: handles every session due now.
    pub async fn sweep(&self) -> Result<usize, crate::store::StoreError> {
        let now = self.clock.now();
        let due = self.store.queue_claim(keys::SESSION_EXPIRY_QUEUE, now, 60, 256).await?;
        let mut ended = 0;
        for (sid, _) in due {
            match session::get(&self.store, &sid).await? {
                Some(s) if s.live(now, self.timeouts) => {
                    self.store.queue_put(keys::SESSION_EXPIRY_QUEUE, &sid, b"", s.ends_at(self.timeouts)).await?;
                }
                Some(_) if self.broadcast => {
                    let ctx = Ctx {
                        store: &self.store,
                        issuer: &self.issuer,
                        now,
                        wake: Some(&self.wake),
                        audit: self.audit.as_ref().map(|a| (a, "system")),
                    };
                    if end_session(ctx, &sid, Reason::Expired, None).await?.is_some() {
                        ended += 1;
                    }
                }
                // Without the broadcast the session is only removed; its tokens die all the same,
                // since they are alive only while the session is (crate::tokens::validity).
                Some(_) => {
                    session::remove(&self.store, &sid).await?;
                }
                None => {
                    self.store.queue_remove(keys::SESSION_EXPIRY_QUEUE, &sid).await?;
                }
            }
        }
        Ok(ended)
    }
}
