//! Retention (AY-8.5.2.1: logs kept at least six months): a file is deleted once its day is more
//! than `retention_days` days before today, today being the injected clock's local day. With the
//! default 180, a file 180 days old is kept and one 181 days old goes. Runs at start and then
//! every `sweep_ms`.

use std::time::Duration;

use tokio::sync::watch;

use super::files::{Layout, io_err};
use super::{Audit, AuditError};
use crate::clock::Clock;

/// The periodic sweep.
pub(crate) struct Sweeper {
    pub audit: Audit,
    pub clock: Clock,
    pub every: Duration,
}

impl Sweeper {
    /// Sweeps now, then every `every`, until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.audit.sweep(self.clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "audit retention: expired files deleted"),
                Err(e) => tracing::warn!(error = %e, "audit retention sweep failed"),
            }
            tokio::select! {
                r = stop.changed() => if r.is_err() { return },
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }
}

/// Deletes the expired files (blocking I/O); returns how many.
fn sweep_files(layout: &Layout, retention_days: i64, now: i64) -> Result<usize, AuditError> {
    let Some(today) = layout.day_of(now) else { return Ok(0) };
    let mut deleted = 0;
    for f in layout.list()? {
        if (today - f.date).whole_days() > retention_days {
            match std::fs::remove_file(&f.path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&f.path, e)),
            }
        }
    }
    Ok(deleted)
}

impl Audit {
    /// Deletes every file (of all instances) whose day is more than `retention_days` before the
    /// local day of `now`; returns how many were deleted. Disabled: 0.
    pub async fn sweep(&self, now: i64) -> Result<usize, AuditError> {
        let Some(a) = &self.0.active else { return Ok(0) };
        let (layout, days) = (a.layout.clone(), a.config.retention_days.max(super::MIN_RETENTION_DAYS));
        tokio::task::spawn_blocking(move || sweep_files(&layout, days, now)).await?
    }
}
