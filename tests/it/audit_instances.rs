//! Several instances sharing one audit directory (AY-8.5.2.1 logs analysed, SH-7.2 several
//! instances): each writes only its own files, and a query, an export or a retention sweep on any
//! instance covers the events of every instance.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::server::*;

per_backend!(queries_exports_and_retention_cover_every_instance);

/// A fresh directory both instances are configured with.
fn shared_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tz-audit-shared-{}-{}",
        std::process::id(),
        tongzheng::crypto::random_token(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn token(s: &TestServer, id: &str, secret: &str) -> String {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "token for {id} at {}", s.base);
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn get(s: &TestServer, auditor: &str, path: &str) -> String {
    let r = s.http.get(s.url(path)).bearer_auth(auditor).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

/// Every `demo-web` token event through `s`'s query API, page by page (3 a page), as
/// (time, id, origin), newest first.
async fn paged(s: &TestServer, auditor: &str) -> Vec<(i64, String, String)> {
    let (mut out, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut q = format!("/admin/v1/audit/events?kind=token_issued&client_id={WEB_CLIENT}&limit=3");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page: Value = serde_json::from_str(&get(s, auditor, &q).await).unwrap();
        for e in page["events"].as_array().unwrap() {
            out.push((e["time"].as_i64().unwrap(), e["id"].as_str().unwrap().to_owned(), e["origin"].to_string()));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// The audit files in `dir`, by instance: the origins of the events each holds.
fn files_by_instance(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(rest) = name.strip_prefix("audit-").and_then(|r| r.strip_suffix(".jsonl")) else { continue };
        let instance = rest.split_once('.').map(|(_, i)| i.to_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        let origins = text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["origin"].to_string());
        out.entry(instance).or_default().extend(origins);
    }
    out
}

// SH-7.2 + AY-8.5.2.1: two instances on one shared audit directory.
async fn queries_exports_and_retention_cover_every_instance(b: Backend) {
    let dir = shared_dir();
    let overlay = format!("[audit]\ndir = \"{}\"\n", dir.display());
    let a = TestServer::start_with(b, &overlay).await;
    let bb = TestServer::start_with(b, &overlay).await;
    // Both clocks on the same second, so their events interleave within seconds.
    bb.clock.advance(a.clock.now() - bb.clock.now());

    // Each instance holds its own name and writes only its own files.
    let (ia, ib) = (a.state.audit.instance().unwrap().to_owned(), bb.state.audit.instance().unwrap().to_owned());
    assert_ne!(ia, ib, "two running instances share an audit file name");

    // Interleaved events: 7 token requests at each, two per second.
    for round in 0..7 {
        token(&a, WEB_CLIENT, WEB_SECRET).await;
        token(&bb, WEB_CLIENT, WEB_SECRET).await;
        if round % 2 == 1 {
            a.clock.advance(1);
            bb.clock.advance(1);
        }
    }
    a.state.audit.flush().await;
    bb.state.audit.flush().await;
    let files = files_by_instance(&dir);
    let (origin_a, origin_b) = (Value::from(a.base.clone()).to_string(), Value::from(bb.base.clone()).to_string());
    assert!(files[&ia].iter().all(|o| *o == origin_a), "instance A's file holds only A's events: {files:?}");
    assert!(files[&ib].iter().all(|o| *o == origin_b), "instance B's file holds only B's events: {files:?}");

    // A query on either instance, page by page, returns both instances' events, each once, newest
    // first by (time, id).
    for s in [&a, &bb] {
        let auditor = token(s, AUDITOR_CLIENT, AUDITOR_SECRET).await;
        let seen = paged(s, &auditor).await;
        assert_eq!(seen.len(), 14, "every event of both instances through {}: {seen:?}", s.base);
        let ids: HashSet<&str> = seen.iter().map(|(_, id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 14, "no duplicates");
        assert!(seen.windows(2).all(|w| (w[0].0, &w[0].1) > (w[1].0, &w[1].1)), "newest first: {seen:?}");
        for origin in [&origin_a, &origin_b] {
            assert_eq!(seen.iter().filter(|(_, _, o)| o == origin).count(), 7, "{origin} through {}", s.base);
        }

        // The export: the same events, oldest first by (time, id).
        let body = get(s, &auditor, &format!("/admin/v1/audit/export?kind=token_issued&client_id={WEB_CLIENT}")).await;
        let exported: Vec<(i64, String)> = body
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|e| (e["time"].as_i64().unwrap(), e["id"].as_str().unwrap().to_owned()))
            .collect();
        let mut want: Vec<(i64, String)> = seen.iter().map(|(t, id, _)| (*t, id.clone())).collect();
        want.reverse();
        assert_eq!(exported, want, "export through {}", s.base);
    }

    // Retention on one instance deletes every instance's expired files (AY-8.5.2.1: after 180
    // days), and a second sweep (another instance racing) finds nothing left to do.
    bb.clock.advance(-200 * 86_400);
    token(&bb, WEB_CLIENT, WEB_SECRET).await;
    bb.state.audit.flush().await;
    bb.clock.advance(200 * 86_400);
    let before = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(a.state.audit.sweep(a.clock.now()).await.unwrap(), 1, "B's expired file, swept by A");
    assert_eq!(bb.state.audit.sweep(bb.clock.now()).await.unwrap(), 0);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before - 1);
    let _ = std::fs::remove_dir_all(&dir);
}
