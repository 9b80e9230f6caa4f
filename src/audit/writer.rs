//! The single writer task: drains the channel in batches and appends each event as one JSON line
//! to the file of its local day, one `write` per file and batch (so readers see whole lines).
//! Files are append-only; a line torn by a crash is closed with a newline when the file is
//! reopened, so it stays one malformed line that readers skip. fsync happens at most every
//! `fsync_ms`, at rotation, and on flush and shutdown. Failed writes are retried, never dropped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use time::Date;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::event::{Event, rfc3339};
use super::files::{Layout, io_err};
use super::{AuditError, Counters};

/// Messages to the writer.
// Nearly every message is an event: boxing it would add an allocation per event and save nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Msg {
    /// An event to append.
    Event(Event),
    /// Answer once everything before is written and fsynced.
    Flush(oneshot::Sender<()>),
    /// Write everything queued, fsync, answer and stop.
    Shutdown(oneshot::Sender<()>),
}

/// Most messages taken from the channel per batch.
const MAX_BATCH: usize = 4096;
/// Room for messages the writer keeps between batches (a batch at 20,000 events a second and the
/// default window holds about a hundred).
const KEPT_ROOM: usize = 512;
/// Most files kept open at once (today's and yesterday's, typically).
const MAX_OPEN: usize = 2;
/// Longest wait between two attempts at a failing write.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The writer's settings.
pub(crate) struct Writer {
    pub layout: Arc<Layout>,
    pub fsync_every: Duration,
    /// How long the writer gathers events after the first of a batch (group commit): one
    /// write and one thread hand-off per window instead of per event.
    pub batch_window: Duration,
    pub wake: Arc<Notify>,
    pub counters: Arc<Counters>,
}

struct OpenFile {
    file: File,
    len: u64,
    dirty: bool,
    last_use: u64,
}

/// The open files; lives on blocking threads while it does I/O.
struct Disk {
    layout: Arc<Layout>,
    open: BTreeMap<Date, OpenFile>,
    uses: u64,
}

impl Writer {
    /// Runs until [`Msg::Shutdown`] or until every sender is gone. `stop` only triggers an fsync.
    pub async fn run(self, mut rx: mpsc::Receiver<Msg>, mut stop: watch::Receiver<bool>) {
        let mut disk = Some(Disk { layout: self.layout.clone(), open: BTreeMap::new(), uses: 0 });
        let mut pending: Vec<Event> = Vec::new();
        let mut last_sync = Instant::now();
        let mut dirty = false;
        let mut stopping = false;
        // Kept across batches, as `pending` is: a batch's events are moved in once, not again
        // each time the vector grows.
        let mut msgs = Vec::new();
        loop {
            msgs.clear();
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => msgs.push(m),
                    None => {
                        self.sync(&mut disk).await;
                        return;
                    }
                },
                () = tokio::time::sleep_until(last_sync + self.fsync_every), if dirty => {
                    self.sync(&mut disk).await;
                    (dirty, last_sync) = (false, Instant::now());
                    continue;
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    self.sync(&mut disk).await;
                    (dirty, last_sync) = (false, Instant::now());
                    continue;
                }
            }
            drain(&mut rx, &mut msgs);
            // Group commit: unless someone waits for a flush, let more events arrive first.
            let waited_on = msgs.iter().any(|m| !matches!(m, Msg::Event(_)));
            if !waited_on && !self.batch_window.is_zero() && msgs.len() < MAX_BATCH {
                tokio::time::sleep(self.batch_window).await;
                drain(&mut rx, &mut msgs);
            }
            let mut acks = Vec::new();
            let mut shutdown = None;
            pending.reserve(msgs.len());
            for m in msgs.drain(..) {
                sort(m, &mut pending, &mut acks, &mut shutdown);
            }
            // A burst's room (up to MAX_BATCH messages of a few hundred bytes) is not kept.
            msgs.shrink_to(KEPT_ROOM);
            if shutdown.is_some() {
                // Refuse new events, then take everything already queued.
                rx.close();
                while let Ok(m) = rx.try_recv() {
                    sort(m, &mut pending, &mut acks, &mut shutdown);
                }
            }
            if !pending.is_empty() {
                self.write_pending(&mut disk, &mut pending).await;
                dirty = true;
                self.wake.notify_one();
            }
            let must_sync = !acks.is_empty() || shutdown.is_some() || last_sync.elapsed() >= self.fsync_every;
            if dirty && must_sync {
                self.sync(&mut disk).await;
                (dirty, last_sync) = (false, Instant::now());
            }
            for a in acks {
                let _ = a.send(());
            }
            if let Some(t) = shutdown {
                let _ = t.send(());
                return;
            }
        }
    }

    /// Writes `pending`, retrying with backoff until the disk takes it all.
    async fn write_pending(&self, disk: &mut Option<Disk>, pending: &mut Vec<Event>) {
        let mut delay = Duration::from_millis(100);
        while !pending.is_empty() {
            let events = std::mem::take(pending);
            let counters = self.counters.clone();
            let outcome = self.blocking(disk, move |d| d.write(events, &counters)).await;
            let Some((rest, error)) = outcome else {
                // The blocking task died and took the batch with it; count it as lost.
                tracing::error!("audit writer thread failed; a batch of audit events is lost");
                Counters::add(&self.counters.lost, 1);
                return;
            };
            *pending = rest;
            if let Some(e) = error {
                Counters::add(&self.counters.write_errors, 1);
                tracing::error!(error = %e, waiting_events = pending.len(), "audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY);
            }
        }
    }

    async fn sync(&self, disk: &mut Option<Disk>) {
        if let Some(Err(e)) = self.blocking(disk, Disk::sync_all).await {
            Counters::add(&self.counters.write_errors, 1);
            tracing::error!(error = %e, "audit fsync failed");
        }
    }

    /// Runs `f` on the disk on a blocking thread; `None` if that thread died (the disk state is
    /// then rebuilt, which reopens and repairs the files).
    async fn blocking<R: Send + 'static>(
        &self,
        disk: &mut Option<Disk>,
        f: impl FnOnce(&mut Disk) -> R + Send + 'static,
    ) -> Option<R> {
        let mut d = disk.take().unwrap_or_else(|| Disk { layout: self.layout.clone(), open: BTreeMap::new(), uses: 0 });
        match tokio::task::spawn_blocking(move || {
            let r = f(&mut d);
            (d, r)
        })
        .await
        {
            Ok((d, r)) => {
                *disk = Some(d);
                Some(r)
            }
            Err(_) => None,
        }
    }
}

/// Takes what is queued, up to a batch.
fn drain(rx: &mut mpsc::Receiver<Msg>, msgs: &mut Vec<Msg>) {
    while msgs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(m) => msgs.push(m),
            Err(_) => break,
        }
    }
}

/// Files a message: events to write, acknowledgements to send after the next fsync.
fn sort(
    m: Msg,
    pending: &mut Vec<Event>,
    acks: &mut Vec<oneshot::Sender<()>>,
    shutdown: &mut Option<oneshot::Sender<()>>,
) {
    match m {
        // Every event, recorded here or forwarded from below, is bounded once, on its way in.
        Msg::Event(e) => pending.push(super::bound::event(e)),
        Msg::Flush(t) => acks.push(t),
        Msg::Shutdown(t) if shutdown.is_none() => *shutdown = Some(t),
        Msg::Shutdown(t) => acks.push(t),
    }
}

impl Disk {
    /// Appends `events`, grouped by local day. Returns the events not written (in order) and
    /// the error that stopped the writing.
    fn write(&mut self, events: Vec<Event>, counters: &Counters) -> (Vec<Event>, Option<AuditError>) {
        let mut rest = Vec::new();
        let mut error = None;
        for (date, mut evs) in self.by_day(events) {
            if error.is_some() {
                rest.extend(evs);
                continue;
            }
            let mut buf = Vec::with_capacity(evs.len() * 320);
            // Where each event's line ends in `buf`; the events stay where they are (an event is
            // a few hundred bytes, and a batch holds thousands: moving them is not free).
            let mut ends = Vec::with_capacity(evs.len());
            // A batch's events are mostly of one second: its text is made once (issue 13).
            let mut stamp: Option<(i64, String)> = None;
            for e in &mut evs {
                if e.ts.is_empty() {
                    e.ts = match &stamp {
                        Some((t, ts)) if *t == e.time => ts.clone(),
                        _ => {
                            let ts = rfc3339(e.time);
                            stamp = Some((e.time, ts.clone()));
                            ts
                        }
                    };
                }
                e.write_json(&mut buf);
                buf.push(b'\n');
                ends.push(buf.len() as u64);
            }
            let written = match self.append(date, &buf) {
                Ok(()) => buf.len() as u64,
                Err((e, written)) => {
                    error = Some(e);
                    written
                }
            };
            // The lines are in order: those written are a prefix.
            let done = ends.iter().take_while(|end| **end <= written).count();
            rest.extend(evs.drain(done..));
            Counters::add(&counters.written, done as u64);
        }
        (rest, error)
    }

    /// `events` grouped by local day, in day order, each group in the batch's order. A batch is
    /// nearly always of one day, and is then passed on as it is.
    fn by_day(&self, events: Vec<Event>) -> Vec<(Date, Vec<Event>)> {
        let day = |e: &Event| self.layout.day_of(e.time).unwrap_or(time::macros::date!(1970 - 01 - 01));
        let Some(first) = events.first().map(day) else {
            return Vec::new();
        };
        if events.iter().all(|e| day(e) == first) {
            return vec![(first, events)];
        }
        let mut days: BTreeMap<Date, Vec<Event>> = BTreeMap::new();
        for e in events {
            days.entry(day(&e)).or_default().push(e);
        }
        days.into_iter().collect()
    }

    /// Appends whole lines to `date`'s file; on error, also how many bytes did get written.
    fn append(&mut self, date: Date, buf: &[u8]) -> Result<(), (AuditError, u64)> {
        let path = self.layout.path(date);
        self.open(date).map_err(|e| (e, 0))?;
        self.uses += 1;
        let uses = self.uses;
        let Some(f) = self.open.get_mut(&date) else {
            return Err((io_err(&path, io::Error::other("audit file not open")), 0));
        };
        f.last_use = uses;
        let before = f.len;
        match f.file.write_all(buf) {
            Ok(()) => {
                f.len += buf.len() as u64;
                f.dirty = true;
                Ok(())
            }
            Err(e) => {
                let now = f.file.metadata().map_or(before, |m| m.len());
                // Reopening repairs a torn last line.
                self.open.remove(&date);
                Err((io_err(&path, e), now.saturating_sub(before)))
            }
        }
    }

    /// Makes sure `date`'s file is open, fsyncing older files at rotation and closing the least
    /// recently used one beyond [`MAX_OPEN`].
    fn open(&mut self, date: Date) -> Result<(), AuditError> {
        if self.open.contains_key(&date) {
            return Ok(());
        }
        if self.open.keys().next_back().is_none_or(|newest| date > *newest) {
            self.sync_all()?;
        }
        while self.open.len() >= MAX_OPEN {
            let Some(oldest) = self.open.iter().min_by_key(|(_, f)| f.last_use).map(|(d, _)| *d) else { break };
            if let Some(f) = self.open.remove(&oldest)
                && f.dirty
            {
                f.file.sync_data().map_err(|e| io_err(&self.layout.path(oldest), e))?;
            }
        }
        let path = self.layout.path(date);
        let (file, len) = open_append(&path).map_err(|e| io_err(&path, e))?;
        self.open.insert(date, OpenFile { file, len, dirty: false, last_use: self.uses });
        Ok(())
    }

    /// fsyncs every file written since its last fsync.
    fn sync_all(&mut self) -> Result<(), AuditError> {
        for (date, f) in &mut self.open {
            if f.dirty {
                f.file.sync_data().map_err(|e| io_err(&self.layout.path(*date), e))?;
                f.dirty = false;
            }
        }
        Ok(())
    }
}

/// Opens `path` for appending (mode 0640 on unix), creating it; when its last byte is not a
/// newline (a crash mid-write), adds one so the torn line cannot swallow the next event.
fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let existed = path.exists();
    let mut o = OpenOptions::new();
    o.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o640);
    let mut f = o.open(path)?;
    let mut len = f.metadata()?.len();
    if len > 0 {
        f.seek(SeekFrom::Start(len - 1))?;
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last != [b'\n'] {
            f.write_all(b"\n")?;
            len += 1;
        }
    }
    if !existed {
        // Make the new directory entry durable too.
        if let Some(dir) = path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
    }
    Ok((f, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Kind, Outcome};

    fn event(time: i64, subject: &str) -> Event {
        let mut e = Event::new(Kind::LoginSuccess, Outcome::Success).subject(subject);
        e.time = time;
        e
    }

    fn subjects(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().subject.unwrap())
            .collect()
    }

    // AY-8.5.2.1: one batch across China midnight lands in both days' files, each in the batch's
    // order; a batch of one day is written as it came.
    #[test]
    fn a_batch_across_midnight_is_split_by_day_in_order() {
        let dir = std::env::temp_dir().join(format!("tz-audit-batch-{}", crate::crypto::random_token(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap();
        let layout = Arc::new(Layout { dir: dir.clone(), instance: "w".into(), offset });
        let midnight = time::macros::datetime!(2024-03-01 00:00 +8).unix_timestamp();
        let mut disk = Disk { layout: layout.clone(), open: BTreeMap::new(), uses: 0 };
        let counters = Counters::default();
        let batch =
            vec![event(midnight - 2, "a"), event(midnight, "b"), event(midnight - 1, "c"), event(midnight + 1, "d")];
        let (rest, error) = disk.write(batch, &counters);
        assert!(rest.is_empty() && error.is_none());
        let (rest, error) = disk.write(vec![event(midnight + 2, "e"), event(midnight + 3, "f")], &counters);
        assert!(rest.is_empty() && error.is_none());
        assert_eq!(subjects(&dir.join("audit-2024-02-29.w.jsonl")), ["a", "c"]);
        assert_eq!(subjects(&dir.join("audit-2024-03-01.w.jsonl")), ["b", "d", "e", "f"]);
        assert_eq!(counters.written.load(std::sync::atomic::Ordering::Relaxed), 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
