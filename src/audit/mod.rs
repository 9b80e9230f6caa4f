//! The audit log (AY-8.5.2.1, GB-6.8a, GB-6.8c): calls of interest become [`Event`]s that one
//! writer task appends to daily JSON-lines files; they are queried and exported from those files,
//! deleted after the retention period, and optionally forwarded to a higher-level platform.
//!
//! Lifecycle: [`Audit::open`] when the instance is built; [`Audit::spawn`] starts the writer,
//! the retention sweeper and the forwarder; [`Audit::shutdown`], after the HTTP server has
//! drained, writes and fsyncs everything recorded and stops the writer. The `stop` signal given
//! to `spawn` stops the sweeper and forwarder and makes the writer fsync (it keeps writing until
//! `shutdown`, so events of requests still draining are not lost).

mod bound;
mod event;
mod export;
mod files;
mod forward;
mod ingest;
mod instance;
mod query;
mod retention;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_forward;
#[cfg(test)]
mod tests_instances;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use event::{Event, Kind, Outcome};
pub use export::Export;
pub use ingest::MAX_INGEST_LINES;
pub use query::{MAX_LIMIT, Page, Query};

use crate::clock::Clock;
use crate::config::AuditConfig;
use files::Layout;
use writer::Msg;

/// The shortest retention the law allows, days (AY-8.5.2.1: at least six months).
pub const MIN_RETENTION_DAYS: i64 = 180;

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or the directory could not be read or written.
    #[error("audit file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration cannot be used.
    #[error("invalid audit configuration `{field}`: {reason}")]
    Config {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A query parameter is out of range or a cursor is not one of ours.
    #[error("invalid audit query: {0}")]
    InvalidQuery(&'static str),
    /// A forwarded line is not an acceptable event (1-based line number).
    #[error("line {line}: {reason}")]
    Malformed {
        /// The line number, counting from 1.
        line: usize,
        /// Why it was refused.
        reason: String,
    },
    /// More forwarded lines than one call accepts.
    #[error("too many lines: at most {max} per request")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
    /// Audit is disabled by configuration; nothing is stored.
    #[error("audit is disabled")]
    Disabled,
    /// The writer has stopped (after [`Audit::shutdown`]); nothing more can be recorded.
    #[error("audit writer has stopped")]
    Stopped,
    /// [`Audit::spawn`] was called twice.
    #[error("audit tasks already started")]
    AlreadyStarted,
    /// A background read or write task died.
    #[error("audit task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Counters since the handle was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events written to the files.
    pub written: u64,
    /// Events that could not be handed to the writer because it had stopped.
    pub lost: u64,
    /// Unreadable lines skipped by queries, exports and the forwarder.
    pub malformed: u64,
    /// Events acknowledged by the upstream collector.
    pub forwarded: u64,
    /// Failed writes or fsyncs (retried; see the logs).
    pub write_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    written: AtomicU64,
    lost: AtomicU64,
    malformed: AtomicU64,
    forwarded: AtomicU64,
    write_errors: AtomicU64,
}

/// An event id unique across the instances sharing the audit directory and ordered within each:
/// a sequence number seeded from the clock at the first event (so a restart continues above the
/// last run's ids, at up to a million events a second), a random tail, and the instance name
/// (held by one running instance at a time). Queries order by (time, id), so a page cursor
/// stays exact while any instance appends events in the same second.
fn event_id(now: i64, instance: &str) -> String {
    static SEQ: std::sync::OnceLock<AtomicU64> = std::sync::OnceLock::new();
    let seq = SEQ.get_or_init(|| AtomicU64::new(u64::try_from(now).unwrap_or(0).saturating_mul(1_000_000)));
    let tail = crate::crypto::random_token(3);
    let mut id = String::with_capacity(16 + tail.len() + 1 + instance.len());
    push_hex14(&mut id, seq.fetch_add(1, Ordering::Relaxed));
    id.push_str(&tail);
    id.push('.');
    id.push_str(instance);
    id
}

/// `format!("{n:014x}")` without the formatting machinery (issue 13: the id's `format!` was
/// 1,700 instructions of every audited request): at least 14 lowercase hex digits.
fn push_hex14(out: &mut String, n: u64) {
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(14);
    for i in (0..digits).rev() {
        let d = ((n >> (4 * i)) & 0xf) as u8;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
    }
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) -> u64 {
        counter.fetch_add(n, Ordering::Relaxed).saturating_add(n)
    }
}

/// The audit log of one instance. Cheap to clone; every clone records into the same files.
#[derive(Clone)]
pub struct Audit(Arc<Inner>);

struct Inner {
    active: Option<Active>,
    counters: Arc<Counters>,
    /// The instance's metrics, counting recorded events by kind (`tongzheng_audit_events_total`).
    metrics: std::sync::OnceLock<crate::metrics::Metrics>,
}

struct Active {
    config: AuditConfig,
    layout: Arc<Layout>,
    lease: Arc<instance::Lease>,
    origin: String,
    clock: Clock,
    http: reqwest::Client,
    tx: mpsc::Sender<Msg>,
    rx: Mutex<Option<mpsc::Receiver<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0.active {
            Some(a) => {
                f.debug_struct("Audit").field("dir", &a.layout.dir).field("instance", &a.layout.instance).finish()
            }
            None => f.write_str("Audit(disabled)"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Audit {
    /// Opens the audit log described by `config` (creating its directory) for the platform whose
    /// issuer is `origin`. Nothing is written until [`Audit::spawn`] starts the writer. A
    /// disabled config gives [`Audit::disabled`].
    pub fn open(config: &AuditConfig, origin: &str, clock: Clock, http: reqwest::Client) -> Result<Audit, AuditError> {
        if !config.enabled {
            return Ok(Self::disabled());
        }
        let offset = config
            .offset()
            .ok_or(AuditError::Config { field: "audit.utc_offset", reason: "must be +HH:MM, -HH:MM or Z" })?;
        if config.retention_days < MIN_RETENTION_DAYS {
            return Err(AuditError::Config { field: "audit.retention_days", reason: "at least 180 days" });
        }
        let mut layout = Layout { dir: config.dir.clone(), instance: String::new(), offset };
        layout.ensure_dir()?;
        let lease = instance::claim(&layout.dir, &config.instance, &files::host_name())?;
        layout.instance.clone_from(&lease.name);
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        Ok(Audit(Arc::new(Inner {
            active: Some(Active {
                config: config.clone(),
                layout: Arc::new(layout),
                lease: Arc::new(lease),
                origin: origin.to_owned(),
                clock,
                http,
                tx,
                rx: Mutex::new(Some(rx)),
                writer: Mutex::new(None),
                wake: Arc::new(Notify::new()),
            }),
            counters: Arc::default(),
            metrics: std::sync::OnceLock::new(),
        })))
    }

    /// An audit log that records nothing (benchmarks); queries find nothing.
    pub fn disabled() -> Audit {
        Audit(Arc::new(Inner { active: None, counters: Arc::default(), metrics: std::sync::OnceLock::new() }))
    }

    /// Whether events are recorded at all.
    pub fn enabled(&self) -> bool {
        self.0.active.is_some()
    }

    /// This instance's name in file names, when enabled.
    pub fn instance(&self) -> Option<&str> {
        self.0.active.as_ref().map(|a| a.layout.instance.as_str())
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        let c = &self.0.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            written: get(&c.written),
            lost: get(&c.lost),
            malformed: get(&c.malformed),
            forwarded: get(&c.forwarded),
            write_errors: get(&c.write_errors),
        }
    }

    /// Starts the writer, the retention sweeper (a sweep now, then every `sweep_ms`) and, when
    /// `forward_url` is set, the forwarder. `stop` ends the sweeper and forwarder; call
    /// [`Audit::shutdown`] afterwards to write out and stop the writer. Needs a Tokio runtime.
    pub fn spawn(&self, stop: watch::Receiver<bool>) -> Result<(), AuditError> {
        let Some(a) = &self.0.active else { return Ok(()) };
        let rx = lock(&a.rx).take().ok_or(AuditError::AlreadyStarted)?;
        let w = writer::Writer {
            layout: a.layout.clone(),
            fsync_every: Duration::from_millis(a.config.fsync_ms),
            batch_window: Duration::from_millis(a.config.batch_ms),
            wake: a.wake.clone(),
            counters: self.0.counters.clone(),
        };
        *lock(&a.writer) = Some(tokio::spawn(w.run(rx, stop.clone())));
        let sweeper = retention::Sweeper {
            audit: self.clone(),
            clock: a.clock.clone(),
            every: Duration::from_millis(a.config.sweep_ms),
        };
        tokio::spawn(sweeper.run(stop.clone()));
        tokio::spawn(renew_lease(Arc::downgrade(&a.lease)));
        if !a.config.forward_url.is_empty() {
            let f = forward::Forwarder::new(
                &a.config,
                a.layout.clone(),
                a.http.clone(),
                a.wake.clone(),
                self.0.counters.clone(),
            );
            tokio::spawn(f.run(stop));
        }
        Ok(())
    }

    /// Records `e`, filling its `id`, `time` and `origin` (and, in the writer, `ts`). Cheap: the
    /// event is queued for the writer at once, in this call; when the queue is full the
    /// returned future waits for room, so nothing is dropped. Await it before answering.
    ///
    /// Not an `async fn` (issue 13): its future would hold the event and a channel send, over
    /// a kilobyte, inside every recording handler's own future, copied with it on each move;
    /// this one is a pointer, null when the queue had room (nearly always).
    pub fn record(&self, mut e: Event) -> Recorded<'_> {
        let Some(a) = &self.0.active else { return Recorded(None) };
        e.time = a.clock.now();
        e.id = event_id(e.time, &a.layout.instance);
        e.ts.clear();
        e.origin.clone_from(&a.origin);
        let kind = e.kind;
        match a.tx.try_send(Msg::Event(e)) {
            Ok(()) => {
                self.counted(kind);
                Recorded(None)
            }
            // Full: wait in line; tokio hands freed slots to waiters first, so a later
            // `try_send` cannot overtake this event.
            Err(mpsc::error::TrySendError::Full(m)) => Recorded(Some(Box::pin(async move {
                if a.tx.send(m).await.is_ok() {
                    self.counted(kind);
                } else {
                    self.lost();
                }
            }))),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.lost();
                Recorded(None)
            }
        }
    }

    fn counted(&self, kind: Kind) {
        if let Some(m) = self.0.metrics.get() {
            m.audit_event(kind.as_str());
        }
    }

    /// Queues `m`, waiting for room; false (counted as lost) when the writer has stopped.
    async fn send(&self, a: &Active, m: Msg) -> bool {
        if a.tx.send(m).await.is_ok() {
            return true;
        }
        self.lost();
        false
    }

    fn lost(&self) {
        let lost = Counters::add(&self.0.counters.lost, 1);
        if lost == 1 || lost.is_multiple_of(1000) {
            tracing::error!(lost, "audit writer has stopped; audit events are being lost");
        }
    }

    /// Counts recorded events in `metrics` from now on (the first call wins).
    pub fn attach_metrics(&self, metrics: crate::metrics::Metrics) {
        let _ = self.0.metrics.set(metrics);
    }

    /// Events handed to the writer and not yet taken by it (the audit queue's depth).
    pub fn queue_depth(&self) -> u64 {
        self.0.active.as_ref().map_or(0, |a| (a.tx.max_capacity() - a.tx.capacity()) as u64)
    }

    /// Waits until everything recorded before this call is written and fsynced. Returns at once
    /// when disabled, when the writer was never started, or when it has stopped.
    pub async fn flush(&self) {
        let Some(a) = &self.0.active else { return };
        if lock(&a.rx).is_some() {
            tracing::warn!("audit flush before Audit::spawn; nothing is written yet");
            return;
        }
        let (tx, rx) = oneshot::channel();
        if a.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Writes and fsyncs everything recorded so far, then stops the writer; later events are
    /// counted as lost. Call it once the HTTP server has drained. Waits as long as the disk
    /// refuses writes (they are retried), so wrap it in a timeout if exit must be bounded.
    pub async fn shutdown(&self) {
        let Some(a) = &self.0.active else { return };
        if lock(&a.rx).is_some() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if a.tx.send(Msg::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = lock(&a.writer).take();
        if let Some(h) = handle
            && let Err(e) = h.await
        {
            tracing::error!(error = %e, "audit writer failed");
        }
        a.lease.release();
    }
}

/// Renews this instance's name lease every [`instance::RENEW_EVERY`] while the writer may still
/// write (through a drain), until [`Audit::shutdown`] releases it or the audit log is dropped.
async fn renew_lease(lease: std::sync::Weak<instance::Lease>) {
    loop {
        tokio::time::sleep(instance::RENEW_EVERY).await;
        let Some(lease) = lease.upgrade() else { return };
        if !tokio::task::spawn_blocking(move || lease.renew()).await.unwrap_or(false) {
            return;
        }
    }
}

/// An event being recorded ([`Audit::record`]): ready at once unless the queue was full.
#[must_use = "await the recording before answering"]
pub struct Recorded<'a>(Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>>);

impl std::future::Future for Recorded<'_> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        match &mut self.get_mut().0 {
            Some(waiting) => waiting.as_mut().poll(cx),
            None => std::task::Poll::Ready(()),
        }
    }
}
