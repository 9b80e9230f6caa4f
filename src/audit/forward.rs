//! Cascade reporting (GB-6.8c): this instance's files are sent, in order, as NDJSON batches to
//! the higher-level platform's collector. Progress is a durable cursor in
//! `<dir>/.forward-<instance>.cursor`: the byte offset reached in each of this instance's files
//! (a late event may still be appended to an older day's file), rewritten atomically (temporary
//! file, fsync, rename) after every acknowledged batch. A batch is retried with exponential
//! backoff (`forward_retry_ms`, doubling, at most 60 s) until a 2xx answer; so acknowledged
//! events are neither lost nor re-sent, and only a crash between the answer and the cursor write
//! can send one batch twice. With no cursor yet, everything still on disk is sent.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::event::Event;
use super::files::{Layout, io_err};
use super::{AuditError, Counters};
use crate::config::AuditConfig;

/// Largest request body, bytes (a single longer event is still sent alone).
const MAX_BODY: usize = 1 << 20;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// An unfinished last line in a file no longer written for this long is a crash's torn line.
const TORN_AFTER: Duration = Duration::from_secs(30);
/// Deadline of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Byte offset reached in each file, by file name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    files: BTreeMap<String, u64>,
}

/// The next thing to send.
struct Batch {
    file: String,
    end: u64,
    body: Vec<u8>,
    events: u64,
}

/// Where reading stopped at an unfinished line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stuck {
    file: String,
    offset: u64,
    newest: bool,
}

/// The forwarding task.
pub(crate) struct Forwarder {
    layout: Arc<Layout>,
    http: reqwest::Client,
    url: String,
    token: String,
    batch: usize,
    poll: Duration,
    retry: Duration,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
}

impl Forwarder {
    /// A forwarder of `layout`'s instance files as configured.
    pub fn new(
        c: &AuditConfig,
        layout: Arc<Layout>,
        http: reqwest::Client,
        wake: Arc<Notify>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            layout,
            http,
            url: c.forward_url.clone(),
            token: c.forward_token.clone(),
            batch: c.forward_batch.max(1),
            poll: Duration::from_millis(c.forward_poll_ms.max(1)),
            retry: Duration::from_millis(c.forward_retry_ms.max(1)),
            wake,
            counters,
        }
    }

    fn cursor_path(&self) -> PathBuf {
        self.layout.dir.join(format!(".forward-{}.cursor", self.layout.instance))
    }

    /// Forwards until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let path = self.cursor_path();
        let mut progress = loop {
            let p = path.clone();
            match tokio::task::spawn_blocking(move || load(&p)).await {
                Ok(Ok(p)) => break p,
                Ok(Err(e)) => tracing::error!(error = %e, "audit forward cursor unreadable; not forwarding"),
                Err(e) => tracing::error!(error = %e, "audit forward cursor read failed"),
            }
            if pause(&mut stop, self.poll.max(Duration::from_secs(1))).await {
                return;
            }
        };
        let mut failures = 0u32;
        let mut stuck_since: Option<(Stuck, Instant)> = None;
        let mut torn: Option<Stuck> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let (layout, p, max, t, counters) =
                (self.layout.clone(), progress.clone(), self.batch, torn.clone(), self.counters.clone());
            let scan = tokio::task::spawn_blocking(move || next_batch(&layout, &p, max, t.as_ref(), &counters)).await;
            let (batch, stuck) = match scan {
                Ok(Ok(found)) => found,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "audit forward: reading failed");
                    if pause(&mut stop, self.poll).await {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "audit forward: reader failed");
                    if pause(&mut stop, self.poll).await {
                        return;
                    }
                    continue;
                }
            };
            // A torn line left by a crash in a file no longer written is skipped after a while.
            stuck_since = match (stuck, stuck_since) {
                (Some(s), Some((old, since))) if s == old => {
                    if !s.newest && since.elapsed() >= TORN_AFTER {
                        torn = Some(s.clone());
                    }
                    Some((s, since))
                }
                (Some(s), _) => Some((s, Instant::now())),
                (None, _) => None,
            };
            let Some(b) = batch else {
                if idle(&mut stop, &self.wake, self.poll).await {
                    return;
                }
                continue;
            };
            if b.events > 0 {
                if let Err(reason) = self.post(Bytes::from(b.body)).await {
                    failures = failures.saturating_add(1);
                    let delay = backoff(self.retry, failures);
                    tracing::warn!(%reason, retry_in_ms = delay.as_millis(), "audit forward failed");
                    if pause(&mut stop, delay).await {
                        return;
                    }
                    continue;
                }
                failures = 0;
            }
            progress.files.insert(b.file, b.end);
            loop {
                let (p, target) = (progress.clone(), path.clone());
                match tokio::task::spawn_blocking(move || save(&target, p)).await {
                    Ok(Ok(saved)) => {
                        progress = saved;
                        break;
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "audit forward cursor not saved; retrying"),
                    Err(e) => tracing::error!(error = %e, "audit forward cursor writer failed; retrying"),
                }
                if pause(&mut stop, self.poll.max(Duration::from_secs(1))).await {
                    return;
                }
            }
            Counters::add(&self.counters.forwarded, b.events);
        }
    }

    async fn post(&self, body: Bytes) -> Result<(), String> {
        let mut req = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .timeout(REQUEST_TIMEOUT)
            .body(body);
        if !self.token.is_empty() {
            req = req.bearer_auth(&self.token);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("collector answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Delay after `failures` failures in a row: base, 2 base, 4 base ... at most 60 s.
pub(super) fn backoff(base: Duration, failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_BACKOFF.max(base))
}

/// Waits `d`; true when `stop` turned true meanwhile.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        () = tokio::time::sleep(d) => false,
    }
}

/// Waits for the writer, the poll interval or `stop`; true when stopping.
async fn idle(stop: &mut watch::Receiver<bool>, wake: &Notify, poll: Duration) -> bool {
    tokio::select! {
        r = stop.changed() => r.is_err() || *stop.borrow(),
        () = wake.notified() => false,
        () = tokio::time::sleep(poll) => false,
    }
}

fn load(path: &Path) -> Result<Progress, AuditError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| io_err(path, io::Error::new(io::ErrorKind::InvalidData, e.to_string()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Progress::default()),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Writes the cursor atomically, forgetting files that retention has deleted.
fn save(path: &Path, mut p: Progress) -> Result<Progress, AuditError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    p.files.retain(|name, _| dir.join(name).exists());
    let tmp = path.with_extension("cursor.tmp");
    let bytes = serde_json::to_vec(&p).map_err(|e| io_err(path, io::Error::other(e.to_string())))?;
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(p)
}

/// Reads the next batch of complete lines from the oldest of this instance's files with
/// unsent data. Reading stops at an unfinished line (reported as stuck) unless it is `torn`.
fn next_batch(
    layout: &Layout,
    progress: &Progress,
    max_lines: usize,
    torn: Option<&Stuck>,
    counters: &Counters,
) -> Result<(Option<Batch>, Option<Stuck>), AuditError> {
    let own: Vec<_> = layout.list()?.into_iter().filter(|f| f.instance == layout.instance).collect();
    let newest = own.last().map(|f| f.name.clone());
    for f in own {
        let start = progress.files.get(&f.name).copied().unwrap_or(0);
        let len = match std::fs::metadata(&f.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&f.path, e)),
        };
        if len <= start {
            continue;
        }
        let mut file = File::open(&f.path).map_err(|e| io_err(&f.path, e))?;
        file.seek(SeekFrom::Start(start)).map_err(|e| io_err(&f.path, e))?;
        let mut reader = BufReader::new(file);
        let (mut end, mut body, mut events) = (start, Vec::new(), 0u64);
        let mut line = Vec::with_capacity(512);
        let mut stuck = None;
        while events < max_lines as u64 && body.len() < MAX_BODY {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| io_err(&f.path, e))?;
            if n == 0 {
                break;
            }
            let Some(text) = line.strip_suffix(b"\n") else {
                let here = Stuck { file: f.name.clone(), offset: end, newest: newest.as_ref() == Some(&f.name) };
                if torn == Some(&here) {
                    Counters::add(&counters.malformed, 1);
                    end += n as u64;
                } else {
                    stuck = Some(here);
                }
                break;
            };
            end += n as u64;
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if serde_json::from_slice::<Event>(text).is_ok() {
                body.extend_from_slice(&line);
                events += 1;
            } else {
                Counters::add(&counters.malformed, 1);
            }
        }
        let batch = (end > start).then(|| Batch { file: f.name.clone(), end, body, events });
        if batch.is_some() || stuck.is_some() {
            return Ok((batch, stuck));
        }
    }
    Ok((None, None))
}
