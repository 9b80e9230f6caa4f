//! Where audit events live on disk: `<dir>/audit-YYYY-MM-DD.<instance>.jsonl`, one file per
//! local day (at the configured UTC offset) and instance, every instance sharing the directory
//! writing only its own. Naming, listing and line reading, shared by the writer, queries,
//! retention and the forwarder. A file without an instance (`audit-YYYY-MM-DD.jsonl`) is read too.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use time::{Date, Month, OffsetDateTime, UtcOffset};

use super::AuditError;

/// Seconds in a day; the offset is fixed, so every local day has exactly this many.
pub(crate) const DAY: i64 = 86_400;

/// The directory, this instance's name and the offset that names days.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The audit directory.
    pub dir: PathBuf,
    /// This instance's name, already sanitized.
    pub instance: String,
    /// The offset whose calendar day names a file.
    pub offset: UtcOffset,
}

/// One audit file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct DayFile {
    /// Its local day.
    pub date: Date,
    /// The instance that writes it.
    pub instance: String,
    /// Its file name.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
}

impl Layout {
    /// The local day of unix time `t`; `None` outside the years 1..=9999.
    pub fn day_of(&self, t: i64) -> Option<Date> {
        OffsetDateTime::from_unix_timestamp(t).ok().map(|d| d.to_offset(self.offset).date())
    }

    /// Unix time of the local midnight that starts `date`.
    pub fn day_start(&self, date: Date) -> i64 {
        date.midnight().assume_offset(self.offset).unix_timestamp()
    }

    /// This instance's file name for `date`.
    pub fn file_name(&self, date: Date) -> String {
        format!("audit-{}.{}.jsonl", format_date(date), self.instance)
    }

    /// This instance's file path for `date`.
    pub fn path(&self, date: Date) -> PathBuf {
        self.dir.join(self.file_name(date))
    }

    /// Every audit file in the directory (all instances), by day then instance.
    pub fn list(&self) -> Result<Vec<DayFile>, AuditError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(&self.dir, e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if let Some((date, instance)) = parse_name(&name) {
                out.push(DayFile { date, instance: instance.to_owned(), path: entry.path(), name });
            }
        }
        out.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.instance.cmp(&b.instance)));
        Ok(out)
    }

    /// Creates the directory when missing (mode 0750 on unix).
    pub fn ensure_dir(&self) -> Result<(), AuditError> {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o750);
        b.create(&self.dir).map_err(|e| io_err(&self.dir, e))
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `audit-YYYY-MM-DD.<instance>.jsonl`, or the single-instance `audit-YYYY-MM-DD.jsonl`
/// (instance `""`, never written now, still queried, exported and expired).
pub(crate) fn parse_name(name: &str) -> Option<(Date, &str)> {
    let rest = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (date, instance) = rest.split_once('.').unwrap_or((rest, ""));
    if rest.contains('.') && instance.is_empty() {
        return None;
    }
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Some((Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?, instance))
}

/// Longest instance name, characters (it is in every event id).
const MAX_INSTANCE: usize = 48;

/// Keeps `[A-Za-z0-9._-]`, replacing anything else with `_`, at most [`MAX_INSTANCE`]
/// characters; `local` when nothing usable is left.
pub(crate) fn sanitize_instance(raw: &str) -> String {
    let s: String = raw
        .trim()
        .chars()
        .take(MAX_INSTANCE)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') { "local".to_owned() } else { s }
}

/// The host name (`/etc/hostname`, then `HOSTNAME`), sanitized: the default instance name.
pub(crate) fn host_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    sanitize_instance(&host)
}

/// An I/O error naming its path.
pub(crate) fn io_err(path: &Path, source: io::Error) -> AuditError {
    AuditError::Io { path: path.to_owned(), source }
}

/// Calls `f` with every non-blank line of `path` (without its newline) until it returns false.
/// A file removed meanwhile (retention) reads as empty.
pub(crate) fn for_each_line(path: &Path, mut f: impl FnMut(&[u8]) -> bool) -> Result<(), AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path, e)),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| io_err(path, e))?;
        if n == 0 {
            return Ok(());
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if !text.iter().all(u8::is_ascii_whitespace) && !f(text) {
            return Ok(());
        }
    }
}
