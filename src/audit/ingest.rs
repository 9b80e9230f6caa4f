//! The receiving side of cascade reporting (GB-6.8c): NDJSON events forwarded by a downstream
//! platform are checked line by line and recorded as sent (then bounded like ours), keeping their
//! `id`, `time` and `origin` (the downstream's issuer; set to the sender when missing), each
//! marked with the authenticated sender (`ingested_by`). An event claiming this platform's own
//! origin is refused (separation of duties, AY-8.5.2.1). All or nothing: one bad line refuses the
//! whole request, naming the line, so the sender retries nothing twice.

use super::event::Event;
use super::files::Layout;
use super::writer::Msg;
use super::{Audit, AuditError};

/// Most events accepted per call.
pub const MAX_INGEST_LINES: usize = 10_000;

/// Longest accepted event id.
const MAX_ID: usize = 128;

/// Parses and checks one line.
fn parse(line: &[u8], number: usize, layout: &Layout, who: &Sender<'_>) -> Result<Event, AuditError> {
    let bad = |reason: String| AuditError::Malformed { line: number, reason };
    let mut e: Event = serde_json::from_slice(line).map_err(|err| bad(format!("not an audit event: {err}")))?;
    if e.id.is_empty() || e.id.len() > MAX_ID {
        return Err(bad(format!("id must be 1..={MAX_ID} characters")));
    }
    if e.time <= 0 || layout.day_of(e.time).is_none() {
        return Err(bad("time out of range".to_owned()));
    }
    if e.actor.is_empty() {
        return Err(bad("actor is empty".to_owned()));
    }
    if e.origin == who.us {
        return Err(bad(format!("origin is this platform ({}); only its own events carry it", who.us)));
    }
    if e.origin.is_empty() {
        who.sender.clone_into(&mut e.origin);
    }
    e.ingested_by = Some(who.sender.to_owned());
    Ok(e)
}

/// Who sends a body, and who receives it.
pub(crate) struct Sender<'a> {
    /// The authenticated sender, `client:<id>`.
    pub sender: &'a str,
    /// This platform's issuer (the origin of its own events).
    pub us: &'a str,
}

/// Parses a whole body; every line must be an event (blank lines are ignored).
pub(crate) fn parse_body(body: &[u8], layout: &Layout, who: &Sender<'_>) -> Result<Vec<Event>, AuditError> {
    let mut events = Vec::new();
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if events.len() == MAX_INGEST_LINES {
            return Err(AuditError::TooManyLines { max: MAX_INGEST_LINES });
        }
        events.push(parse(line, i + 1, layout, who)?);
    }
    Ok(events)
}

impl Audit {
    /// Records the NDJSON events in `body`, forwarded by the authenticated client `sender`
    /// (`client:<id>`, recorded in each event's `ingested_by`); returns how many. Refuses the
    /// whole body when a line is malformed or claims this platform's origin
    /// ([`AuditError::Malformed`] with its 1-based number) or when it has more than
    /// [`MAX_INGEST_LINES`] events. Disabled: [`AuditError::Disabled`]; after shutdown
    /// [`AuditError::Stopped`] (the sender should retry later).
    pub async fn ingest(&self, body: &[u8], sender: &str) -> Result<usize, AuditError> {
        let Some(a) = &self.0.active else { return Err(AuditError::Disabled) };
        let events = parse_body(body, &a.layout, &Sender { sender, us: &a.origin })?;
        let n = events.len();
        for e in events {
            if !self.send(a, Msg::Event(e)).await {
                return Err(AuditError::Stopped);
            }
        }
        Ok(n)
    }
}
