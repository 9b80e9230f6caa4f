//! Which instance writes which files when several share one audit directory (NFS, a mounted
//! volume): each running instance holds a lease on its name, `<dir>/.instance-<name>.lease`, so no
//! two running instances ever append to the same file, and a restarted instance gets its name back.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use super::AuditError;
use super::files::{io_err, sanitize_instance};
use crate::clock::Clock;

/// How often a running instance renews its lease.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(15);
/// A lease of another host not renewed for this long (seconds, by the file's modification time)
/// belongs to a dead instance and may be taken over.
const STALE_SECS: i64 = 60;
/// Default names tried before a random one: `<host>`, `<host>-2` ... `<host>-16`.
const NUMBERED: u32 = 16;

/// Tokens of the leases this process holds (several servers in one process, as in tests).
static HELD: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn held() -> MutexGuard<'static, Vec<String>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A held lease on an instance name; released when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    /// The instance name (already sanitized).
    pub name: String,
    path: PathBuf,
    token: String,
}

/// What a lease file says about its holder: `<token> <host> <pid>`.
#[derive(Debug, PartialEq, Eq)]
struct Holder {
    token: String,
    host: String,
    pid: u32,
}

impl Holder {
    fn parse(text: &str) -> Option<Self> {
        let mut it = text.split_whitespace();
        let (token, host, pid) = (it.next()?, it.next()?, it.next()?.parse().ok()?);
        Some(Self { token: token.to_owned(), host: host.to_owned(), pid })
    }
}

/// Claims this instance's name in `dir` for a process on `host`. A `configured` name must be
/// free (or held by a dead instance); otherwise [`AuditError::Config`] names `audit.instance`.
/// Without one, the first free name of `<host>`, `<host>-2` ... `<host>-16`, then
/// `<host>-<random>`, is taken: instances on one host never share files, and a restart finds
/// its name again.
pub(crate) fn claim(dir: &Path, configured: &str, host: &str) -> Result<Lease, AuditError> {
    let host = sanitize_instance(host);
    if !configured.trim().is_empty() {
        let name = sanitize_instance(configured);
        return try_claim(dir, &name, &host)?.ok_or(AuditError::Config {
            field: "audit.instance",
            reason: "a running instance already holds this name in the audit directory",
        });
    }
    for i in 1..=NUMBERED {
        let name = if i == 1 { host.clone() } else { format!("{host}-{i}") };
        if let Some(lease) = try_claim(dir, &name, &host)? {
            return Ok(lease);
        }
    }
    let name = format!("{host}-{}", crate::crypto::random_token(6));
    try_claim(dir, &name, &host)?.ok_or(AuditError::Config { field: "audit.instance", reason: "no free name" })
}

/// Takes `name` when it is free or its holder is dead; `None` when a live instance holds it.
fn try_claim(dir: &Path, name: &str, host: &str) -> Result<Option<Lease>, AuditError> {
    let path = dir.join(format!(".instance-{name}.lease"));
    let token = crate::crypto::random_token(12);
    for _ in 0..3 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let line = format!("{token} {host} {}\n", std::process::id());
                f.write_all(line.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| io_err(&path, e))?;
                held().push(token.clone());
                return Ok(Some(Lease { name: name.to_owned(), path, token }));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&path, e)),
        }
        match read_lease(&path) {
            Ok((text, modified)) if !is_dead(Holder::parse(&text).as_ref(), modified, host) => return Ok(None),
            Ok((text, _)) => take_over(&path, &text, &token)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    Ok(None)
}

/// Whether a lease's holder is dead: a process of this host that no longer runs (or has our
/// process id without being one of our leases: a previous run in the same container), else a
/// lease not renewed for [`STALE_SECS`]. A lease without a readable holder (torn while being
/// created) is dead only once stale.
fn is_dead(holder: Option<&Holder>, modified: i64, host: &str) -> bool {
    let stale = Clock::system().now().saturating_sub(modified) > STALE_SECS;
    let Some(h) = holder else { return stale };
    if h.host != host {
        return stale;
    }
    if h.pid == std::process::id() {
        return !held().contains(&h.token);
    }
    // Without /proc (not Linux) a process cannot be looked up: rely on the renewals.
    if Path::new("/proc/self").exists() { !Path::new(&format!("/proc/{}", h.pid)).exists() } else { stale }
}

/// Reads a lease: its text and its modification time (unix seconds).
fn read_lease(path: &Path) -> io::Result<(String, i64)> {
    let mut f = File::open(path)?;
    let modified = f.metadata()?.modified()?;
    let secs = modified.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok((text, secs))
}

/// Removes the dead lease whose text was `dead`, unless another instance replaced it meanwhile:
/// it is first renamed aside (atomic, so of two instances racing only one moves it), then
/// checked, and put back when it is not the dead one.
fn take_over(path: &Path, dead: &str, token: &str) -> Result<(), AuditError> {
    let aside = path.with_extension(format!("lease.{token}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path, e)),
    }
    if read_lease(&aside).is_ok_and(|(text, _)| text != dead) {
        // A racing instance had just claimed the name: give it back (never over a newer lease).
        let _ = std::fs::hard_link(&aside, path);
    }
    std::fs::remove_file(&aside).map_err(|e| io_err(&aside, e))
}

impl Lease {
    /// Whether the lease file still names this holder.
    fn ours(&self) -> bool {
        read_lease(&self.path).is_ok_and(|(t, _)| Holder::parse(&t).is_some_and(|h| h.token == self.token))
    }

    /// Renews the lease (its modification time); false once released. A lease taken over while
    /// this process stalled is logged: then set `audit.instance` per instance.
    pub fn renew(&self) -> bool {
        if !held().contains(&self.token) {
            return false;
        }
        if !self.ours() {
            tracing::error!(instance = %self.name, lease = %self.path.display(),
                "audit instance lease lost (process stalled?); another instance may write the same files");
            return true;
        }
        let now = u64::try_from(Clock::system().now()).unwrap_or(0);
        let touched = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_modified(UNIX_EPOCH + Duration::from_secs(now)));
        if let Err(e) = touched {
            tracing::warn!(error = %e, lease = %self.path.display(), "audit instance lease not renewed");
        }
        true
    }

    /// Gives the name up, if still ours.
    pub fn release(&self) {
        held().retain(|t| *t != self.token);
        if self.ours()
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(error = %e, lease = %self.path.display(), "audit instance lease not released");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}
