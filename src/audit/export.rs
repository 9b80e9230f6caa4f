//! Streaming export of every event matching a query as JSON lines, oldest first (AY-8.5.2.1:
//! logs can be taken away for analysis). Days are read in order; within a day every instance's
//! file is merged by `(time, id)`, the order queries use (each file is in append order, which is
//! that order except for events forwarded late by a downstream platform). The lines are copied byte for byte. A
//! blocking thread reads the files and feeds a small bounded channel, so memory stays flat and a
//! client that stops reading stops the reading.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::files::{Layout, io_err};
use super::query::{Query, files_by_day, parse_line};
use super::{Audit, AuditError, Counters};

/// Bytes gathered before a chunk is handed to the stream.
const CHUNK: usize = 64 * 1024;

/// A stream of JSON-lines chunks; give it to `axum::body::Body::from_stream`.
pub struct Export {
    rx: mpsc::Receiver<Result<Bytes, AuditError>>,
}

impl futures_core::Stream for Export {
    type Item = Result<Bytes, AuditError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Export {
    /// The next chunk, for callers without a stream combinator library.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, AuditError>> {
        self.rx.recv().await
    }
}

impl Audit {
    /// Every event matching `q` (its `limit` and `cursor` are ignored) as JSON lines, oldest
    /// first, streamed. Must be called inside a Tokio runtime; disabled gives an empty stream.
    pub fn export(&self, q: Query) -> Export {
        let (tx, rx) = mpsc::channel(4);
        let Some(a) = &self.0.active else { return Export { rx } };
        let (layout, counters) = (a.layout.clone(), self.0.counters.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || {
                    if let Err(e) = run(&layout, &q, &counters, &tx) {
                        let _ = tx.blocking_send(Err(e));
                    }
                });
            }
            Err(_) => tracing::error!("audit export outside a Tokio runtime"),
        }
        Export { rx }
    }
}

/// One file being merged: its reader and its next matching line.
struct Cursor {
    path: PathBuf,
    reader: BufReader<File>,
    head: Option<((i64, String), Vec<u8>)>,
}

impl Cursor {
    fn open(path: &Path) -> Result<Option<Self>, AuditError> {
        match File::open(path) {
            Ok(f) => Ok(Some(Self { path: path.to_owned(), reader: BufReader::with_capacity(CHUNK, f), head: None })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(path, e)),
        }
    }

    /// Reads up to the next line matching `q`, or the end.
    fn advance(&mut self, q: &Query, counters: &Counters) -> Result<(), AuditError> {
        self.head = None;
        loop {
            let mut line = Vec::with_capacity(512);
            if self.reader.read_until(b'\n', &mut line).map_err(|e| io_err(&self.path, e))? == 0 {
                return Ok(());
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Some(e) = parse_line(text, counters)
                && q.matches(&e)
            {
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                self.head = Some(((e.time, e.id), line));
                return Ok(());
            }
        }
    }
}

fn run(
    layout: &Arc<Layout>,
    q: &Query,
    counters: &Counters,
    tx: &mpsc::Sender<Result<Bytes, AuditError>>,
) -> Result<(), AuditError> {
    let mut chunk = Vec::with_capacity(CHUNK);
    for (date, paths) in files_by_day(layout)? {
        if !q.overlaps_day(layout.day_start(date)) {
            continue;
        }
        let mut files = Vec::new();
        for p in &paths {
            if let Some(mut c) = Cursor::open(p)? {
                c.advance(q, counters)?;
                files.push(c);
            }
        }
        loop {
            // The file whose next line is oldest by (time, id).
            let next = files
                .iter_mut()
                .filter(|c| c.head.is_some())
                .min_by(|a, b| a.head.as_ref().map(|h| &h.0).cmp(&b.head.as_ref().map(|h| &h.0)));
            let Some(c) = next else { break };
            if let Some((_, line)) = c.head.take() {
                chunk.extend_from_slice(&line);
            }
            c.advance(q, counters)?;
            if chunk.len() >= CHUNK && tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut chunk)))).is_err() {
                return Ok(()); // the reader went away
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
    }
    Ok(())
}
