//! Queries over the audit files (AY-8.5.2.1: logs are analysed), newest first. Only the files of
//! days that can overlap `[from, to)` are read (every instance's file of such a day). A page is
//! the `limit` greatest events by `(time, id)` below the cursor, found with a bounded heap, so a
//! page costs memory for `limit` events whatever the size of the files. The cursor is that
//! `(time, id)` key: events appended later are newer and never shift the pages still to come.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::Date;

use super::event::{Event, Kind, Outcome};
use super::files::{DAY, Layout, for_each_line};
use super::{Audit, AuditError, Counters};

/// Largest page.
pub const MAX_LIMIT: usize = 1000;

/// What to look for. Every set field must match; `from` is inclusive and `to` exclusive (unix
/// seconds).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Query {
    /// Earliest time, inclusive.
    pub from: Option<i64>,
    /// Latest time, exclusive.
    pub to: Option<i64>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this application.
    pub app_id: Option<String>,
    /// Only this client.
    pub client_id: Option<String>,
    /// Only about this person.
    pub subject: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Page size, 1..=[`MAX_LIMIT`] (default 100). Ignored by exports.
    pub limit: usize,
    /// The `next_cursor` of the previous page. Ignored by exports.
    pub cursor: Option<String>,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            kind: None,
            app_id: None,
            client_id: None,
            subject: None,
            outcome: None,
            limit: 100,
            cursor: None,
        }
    }
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// The events.
    pub events: Vec<Event>,
    /// Pass as `cursor` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl Query {
    /// Whether `e` passes every filter.
    pub fn matches(&self, e: &Event) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        self.from.is_none_or(|f| e.time >= f)
            && self.to.is_none_or(|t| e.time < t)
            && self.kind.is_none_or(|k| e.kind == k)
            && self.outcome.is_none_or(|o| e.outcome == o)
            && eq(&self.app_id, &e.app_id)
            && eq(&self.client_id, &e.client_id)
            && eq(&self.subject, &e.subject)
    }

    /// Whether the local day starting at `start` can hold matching events.
    pub(crate) fn overlaps_day(&self, start: i64) -> bool {
        self.from.is_none_or(|f| start + DAY > f) && self.to.is_none_or(|t| start < t)
    }
}

/// The audit files grouped by day (all instances), oldest day first.
pub(crate) fn files_by_day(layout: &Layout) -> Result<BTreeMap<Date, Vec<PathBuf>>, AuditError> {
    let mut days: BTreeMap<Date, Vec<PathBuf>> = BTreeMap::new();
    for f in layout.list()? {
        days.entry(f.date).or_default().push(f.path);
    }
    Ok(days)
}

/// Parses one line; unreadable lines (a crash mid-write) count as malformed.
pub(crate) fn parse_line(line: &[u8], counters: &Counters) -> Option<Event> {
    match serde_json::from_slice::<Event>(line) {
        Ok(e) => Some(e),
        Err(_) => {
            Counters::add(&counters.malformed, 1);
            None
        }
    }
}

fn encode_cursor(e: &Event) -> String {
    crate::crypto::b64(format!("{}:{}", e.time, e.id).as_bytes())
}

fn decode_cursor(c: &str) -> Result<(i64, String), AuditError> {
    let text = crate::crypto::b64_decode(c).and_then(|raw| String::from_utf8(raw).ok());
    let parsed = text
        .as_deref()
        .and_then(|t| t.split_once(':'))
        .and_then(|(time, id)| Some((time.parse().ok()?, id.to_owned())));
    parsed.ok_or(AuditError::InvalidQuery("cursor"))
}

/// An event ordered by `(time, id)`.
struct Keyed(Event);

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Keyed {}
impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.key_cmp(&other.0)
    }
}

/// Runs `q` on the files (blocking I/O).
pub(crate) fn run(layout: &Layout, q: &Query, counters: &Counters) -> Result<Page, AuditError> {
    if !(1..=MAX_LIMIT).contains(&q.limit) {
        return Err(AuditError::InvalidQuery("limit must be 1..=1000"));
    }
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let below = |e: &Event| match &cursor {
        Some((t, id)) => (e.time, e.id.as_str()) < (*t, id.as_str()),
        None => true,
    };
    let want = q.limit + 1;
    let mut out: Vec<Event> = Vec::new();
    for (date, paths) in files_by_day(layout)?.into_iter().rev() {
        let start = layout.day_start(date);
        if !q.overlaps_day(start) || cursor.as_ref().is_some_and(|(t, _)| start > *t) {
            continue;
        }
        let need = want - out.len();
        let mut heap: BinaryHeap<Reverse<Keyed>> = BinaryHeap::with_capacity(need + 1);
        for path in paths {
            for_each_line(&path, |line| {
                if let Some(e) = parse_line(line, counters)
                    && q.matches(&e)
                    && below(&e)
                {
                    heap.push(Reverse(Keyed(e)));
                    if heap.len() > need {
                        heap.pop();
                    }
                }
                true
            })?;
        }
        // into_sorted_vec of Reverse is descending by key: newest first.
        out.extend(heap.into_sorted_vec().into_iter().map(|Reverse(Keyed(e))| e));
        if out.len() >= want {
            break;
        }
    }
    let next_cursor = if out.len() > q.limit {
        out.truncate(q.limit);
        out.last().map(encode_cursor)
    } else {
        None
    };
    Ok(Page { events: out, next_cursor })
}

impl Audit {
    /// One page of events matching `q`, newest first (by time, then id). Disabled: empty.
    pub async fn query(&self, q: Query) -> Result<Page, AuditError> {
        let Some(a) = &self.0.active else { return Ok(Page { events: Vec::new(), next_cursor: None }) };
        let layout = a.layout.clone();
        let counters = self.0.counters.clone();
        tokio::task::spawn_blocking(move || run(&layout, &q, &counters)).await?
    }
}
