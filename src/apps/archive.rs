//! The archive of an application (AY-8.6.4, SH-7.4): its registration, reviews, transitions,
//! clients (never their secrets) and call records, as one JSON document written when it goes
//! offline, so its records outlive the audit log's retention.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Application, Review, Transition};
use crate::clients::Client;

/// The archive document.
pub fn build(
    app: &Application,
    reviews: &[Review],
    transitions: &[Transition],
    clients: &[Client],
    calls: &[Value],
    now: i64,
) -> Value {
    let clients: Vec<Value> = clients
        .iter()
        .map(|c| {
            json!({
                "client_id": c.client_id, "name": c.name, "grant_types": c.grant_types, "scopes": c.scopes,
                "redirect_uris": c.redirect_uris, "token_endpoint_auth_method": c.auth_method.as_str(),
                "created_at": c.created_at, "lifecycle": c.lifecycle,
            })
        })
        .collect();
    let mut application = serde_json::to_value(app).unwrap_or(Value::Null);
    if let Some(contact) = application.get_mut("contact").and_then(Value::as_object_mut) {
        // The sealed phone only opens with this platform's data key; leave it out.
        contact.remove("phone");
    }
    json!({
        "format": "tongzheng-application-archive/1",
        "archived_at": now,
        "application": application,
        "reviews": reviews,
        "transitions": transitions,
        "clients": clients,
        "calls": calls,
    })
}

/// Writes the archive as `<dir>/<app id>-<unix time>.json` (owner read/write only) and returns
/// the path. Written to a temporary name first, so a crash never leaves half an archive.
pub fn write(dir: &Path, app_id: &str, now: i64, doc: &Value) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{app_id}-{now}.json"));
    let tmp = dir.join(format!(".{app_id}-{now}.json.tmp"));
    let bytes = serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Reads an archive back.
pub fn read(path: &Path) -> std::io::Result<Value> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(std::io::Error::other)
}
