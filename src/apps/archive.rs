//! The archive of an application (AY-8.6.4, SH-7.4): its registration, reviews, transitions,
//! clients (never their secrets) and call records, as one JSON document written when it goes
//! offline, so its records outlive the audit log's retention.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{AppError, Application, Ctx, Review, Transition};
use crate::audit::Audit;
use crate::clients::Client;

/// The most call records an archive carries (the newest are kept when there are more).
const MAX_ARCHIVED_CALLS: usize = 200_000;

/// Every audit record of the application still within retention, oldest first, and whether
/// older ones had to be left out.
async fn call_records(audit: &Audit, app_id: &str) -> Result<(Vec<Value>, bool), AppError> {
    let q = crate::audit::Query { app_id: Some(app_id.to_owned()), ..crate::audit::Query::default() };
    let mut export = audit.export(q);
    let mut calls = std::collections::VecDeque::new();
    let mut truncated = false;
    while let Some(chunk) = export.next_chunk().await {
        let chunk = chunk?;
        for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(v) = serde_json::from_slice::<Value>(line) {
                if calls.len() == MAX_ARCHIVED_CALLS {
                    calls.pop_front();
                    truncated = true;
                }
                calls.push_back(v);
            }
        }
    }
    Ok((calls.into(), truncated))
}

/// The archive document of an application as it stands now (AY-8.6.4).
pub async fn document(ctx: Ctx<'_>, audit: &Audit, app: &Application) -> Result<Value, AppError> {
    audit.flush().await;
    let (_, clients) = super::ops::with_clients(ctx, &app.id).await?;
    let (calls, truncated) = call_records(audit, &app.id).await?;
    let mut doc = build(
        app,
        &super::reviews(ctx.store, &app.id).await?,
        &super::transitions(ctx.store, &app.id).await?,
        &clients,
        &calls,
        ctx.now,
    );
    if let Some(o) = doc.as_object_mut() {
        o.insert("calls_truncated".into(), truncated.into());
    }
    Ok(doc)
}

/// AY-8.6.4, SH-7.4: writes the archive of an application that just went offline into `dir`
/// and records where. The application is offline either way: when the file cannot be written
/// the error is returned beside it (the archive can still be built live).
pub async fn archive_offline(
    ctx: Ctx<'_>,
    audit: &Audit,
    dir: &Path,
    mut app: Application,
) -> Result<(Application, Option<std::io::Error>), AppError> {
    let doc = document(ctx, audit, &app).await?;
    let (dir, id, now) = (dir.to_owned(), app.id.clone(), ctx.now);
    let written = tokio::task::spawn_blocking(move || write(&dir, &id, now, &doc))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
    match written {
        Ok(path) => {
            app.archive = Some(path.display().to_string());
            super::put(ctx.store, &app).await?;
            Ok((app, None))
        }
        Err(e) => {
            tracing::error!(error = %e, app_id = %app.id, "writing the archive failed");
            Ok((app, Some(e)))
        }
    }
}

/// The archive: the one written when the application went offline, else built now.
pub async fn current(ctx: Ctx<'_>, audit: &Audit, app: &Application) -> Result<Value, AppError> {
    if let Some(path) = app.archive.clone() {
        let read = tokio::task::spawn_blocking(move || self::read(Path::new(&path))).await;
        if let Ok(Ok(doc)) = read {
            return Ok(doc);
        }
        tracing::warn!(app_id = %app.id, "stored archive unreadable; building it again");
    }
    document(ctx, audit, app).await
}

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
