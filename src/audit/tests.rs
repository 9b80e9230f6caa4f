//! Tests of the audit log: events, files and rotation, queries, export, retention, ingest and
//! crash recovery. Forwarding is tested in `tests_forward.rs`. Time comes from a manual clock.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::json;
use tokio::sync::watch;

use super::*;
use crate::config::Config;

pub(super) const ORIGIN: &str = "https://a.example.gov.cn";

/// 2024-03-01 00:00:00 in China time (2024-02-29 16:00 UTC).
pub(super) fn t0() -> i64 {
    time::macros::datetime!(2024-03-01 00:00 +8).unix_timestamp()
}

pub(super) fn tmp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tz-audit-{name}-{}", crate::crypto::random_token(6)))
}

pub(super) fn config(dir: &Path, instance: &str) -> AuditConfig {
    let mut c = Config::from_overlay("", true).unwrap().audit;
    c.dir = dir.to_owned();
    c.instance = instance.to_owned();
    c
}

pub(super) fn start(c: &AuditConfig, clock: &Clock) -> (Audit, watch::Sender<bool>) {
    let audit = Audit::open(c, ORIGIN, clock.clone(), reqwest::Client::new()).unwrap();
    let (tx, rx) = watch::channel(false);
    audit.spawn(rx).unwrap();
    (audit, tx)
}

fn lines(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn all(audit: &Audit, mut q: Query) -> Vec<Event> {
    let mut out = Vec::new();
    q.limit = 1000;
    loop {
        let page = audit.query(q.clone()).await.unwrap();
        out.extend(page.events);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

#[test]
fn events_round_trip_with_detail() {
    let e = Event::new(Kind::TokenIssued, Outcome::Success)
        .actor("client:demo-web")
        .client("demo-web")
        .app("app-1")
        .subject("u-1")
        .ip("10.0.0.1")
        .request_id("tz-1")
        .detail(json!({"grant_type": "authorization_code", "scope": ["openid", "profile"]}));
    let text = serde_json::to_string(&e).unwrap();
    assert!(text.contains(r#""kind":"token_issued""#), "{text}");
    assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    let bare = serde_json::to_value(Event::new(Kind::Logout, Outcome::Denied)).unwrap();
    for absent in ["client_id", "app_id", "subject", "ip", "request_id", "detail"] {
        assert!(bare.get(absent).is_none(), "{absent} in {bare}");
    }
    assert_eq!(bare["actor"], "system");
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    assert_eq!(Outcome::parse("denied"), Some(Outcome::Denied));
    assert_eq!(Kind::parse("token"), None);
}

#[test]
fn instance_names_are_sanitized() {
    assert_eq!(files::sanitize_instance("web 1/../x"), "web_1_.._x");
    assert_eq!(files::sanitize_instance(".."), "local");
    assert_eq!(files::sanitize_instance(""), "local");
    assert_eq!(files::parse_name("audit-2024-03-01.web-1.example.jsonl").map(|(_, i)| i), Some("web-1.example"));
    assert!(files::parse_name(".forward-web.cursor").is_none());
    assert!(files::parse_name("audit-2024-13-01.web.jsonl").is_none());
}

// AY-8.5.2.1: daily files named by the China-time day.
#[tokio::test]
async fn files_rotate_at_china_midnight() {
    let dir = tmp_dir("rotate");
    let clock = Clock::manual(t0() - 10);
    let (audit, _stop) = start(&config(&dir, "t1"), &clock);
    audit.record(Event::new(Kind::LoginSuccess, Outcome::Success).subject("before")).await;
    clock.advance(20);
    audit.record(Event::new(Kind::LoginSuccess, Outcome::Success).subject("after")).await;
    audit.flush().await;
    let before = lines(&dir.join("audit-2024-02-29.t1.jsonl"));
    let after = lines(&dir.join("audit-2024-03-01.t1.jsonl"));
    assert_eq!(before.len(), 1);
    assert_eq!(after.len(), 1);
    assert_eq!(before[0].subject.as_deref(), Some("before"));
    assert_eq!(before[0].ts, "2024-02-29T15:59:50Z");
    assert_eq!(before[0].time, t0() - 10);
    assert_eq!(before[0].origin, ORIGIN);
    assert_eq!(before[0].id.len(), 21);
    assert!(before[0].id.ends_with(".t1"), "an id names its instance");
    assert_eq!(after[0].subject.as_deref(), Some("after"));
    assert_eq!(audit.stats().written, 2);
    audit.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Records 3 days x 10 events, alternating two instances, apps, clients and kinds.
async fn fixture(dir: &Path, clock: &Clock) -> (Audit, Audit, watch::Sender<bool>, watch::Sender<bool>) {
    let (a, sa) = start(&config(dir, "t1"), clock);
    let (b, sb) = start(&config(dir, "t2"), clock);
    for day in 0..3 {
        for i in 0..10 {
            let kind = if i % 2 == 0 { Kind::TokenIssued } else { Kind::LoginFailure };
            let outcome = if i % 2 == 0 { Outcome::Success } else { Outcome::Failure };
            let e = Event::new(kind, outcome)
                .client(format!("c{}", i % 3))
                .app(format!("app{}", i % 2))
                .subject(format!("u{day}"))
                .detail(json!({"i": i}));
            let h = if i % 3 == 0 { &b } else { &a };
            h.record(e).await;
            clock.advance(60);
        }
        clock.advance(86_400 - 600);
    }
    a.flush().await;
    b.flush().await;
    (a, b, sa, sb)
}

// AY-8.5.2.1: calls are analysed; GB-6.8a: every business system's calls.
#[tokio::test]
async fn queries_filter_and_order_newest_first() {
    let dir = tmp_dir("query");
    let clock = Clock::manual(t0() + 3600);
    let (a, _b, _sa, _sb) = fixture(&dir, &clock).await;
    let every = all(&a, Query::default()).await;
    assert_eq!(every.len(), 30);
    assert!(every.windows(2).all(|w| w[0].time > w[1].time), "newest first");
    let day1 = Query { from: Some(t0() + 86_400), to: Some(t0() + 2 * 86_400), ..Query::default() };
    let got = all(&a, day1).await;
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|e| e.subject.as_deref() == Some("u1")));
    let q = Query { kind: Some(Kind::LoginFailure), ..Query::default() };
    assert_eq!(all(&a, q).await.len(), 15);
    let q = Query { outcome: Some(Outcome::Failure), app_id: Some("app1".into()), ..Query::default() };
    assert_eq!(all(&a, q).await.len(), 15);
    let q = Query { client_id: Some("c0".into()), subject: Some("u2".into()), ..Query::default() };
    let got = all(&a, q).await;
    assert_eq!(got.len(), 4, "i = 0, 3, 6, 9 on day 2");
    let q = Query { from: Some(t0() + 3600 + 120), to: Some(t0() + 3600 + 300), ..Query::default() };
    let got = all(&a, q).await;
    assert_eq!(got.iter().map(|e| e.detail["i"].as_i64().unwrap()).collect::<Vec<_>>(), vec![4, 3, 2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

// AY-8.5.2.1: paging sees every event once even while the log grows.
#[tokio::test]
async fn pages_return_every_event_exactly_once_while_appending() {
    let dir = tmp_dir("pages");
    let clock = Clock::manual(t0() + 3600);
    let (a, b, _sa, _sb) = fixture(&dir, &clock).await;
    let original: HashSet<String> = all(&a, Query::default()).await.into_iter().map(|e| e.id).collect();
    let mut seen = Vec::new();
    let mut q = Query { limit: 7, ..Query::default() };
    let mut pages = 0;
    loop {
        let page = a.query(q.clone()).await.unwrap();
        assert!(page.events.len() <= 7);
        seen.extend(page.events.into_iter().map(|e| e.id));
        pages += 1;
        // New events land between page requests, in both instances.
        a.record(Event::new(Kind::Consent, Outcome::Success)).await;
        b.record(Event::new(Kind::Consent, Outcome::Success)).await;
        a.flush().await;
        b.flush().await;
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
        clock.advance(1);
    }
    assert_eq!(pages, 5);
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    assert!(original.is_subset(&unique), "every original event once");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn limits_and_cursors_are_checked() {
    let dir = tmp_dir("limits");
    let clock = Clock::manual(t0());
    let (a, _stop) = start(&config(&dir, "t1"), &clock);
    for limit in [0, MAX_LIMIT + 1] {
        let e = a.query(Query { limit, ..Query::default() }).await.unwrap_err();
        assert!(matches!(e, AuditError::InvalidQuery(_)), "{e}");
    }
    assert!(a.query(Query { limit: MAX_LIMIT, ..Query::default() }).await.unwrap().events.is_empty());
    let e = a.query(Query { cursor: Some("!!".into()), ..Query::default() }).await.unwrap_err();
    assert!(matches!(e, AuditError::InvalidQuery("cursor")), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// AY-8.5.2.1: logs can be exported for analysis.
#[tokio::test]
async fn export_streams_matching_lines_oldest_first() {
    let dir = tmp_dir("export");
    let clock = Clock::manual(t0() + 3600);
    let (a, _b, _sa, _sb) = fixture(&dir, &clock).await;
    let q = Query { kind: Some(Kind::TokenIssued), limit: 1, cursor: Some("ignored".into()), ..Query::default() };
    let mut stream = a.export(q);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next_chunk().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with('\n'));
    let events: Vec<Event> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 15);
    assert!(events.iter().all(|e| e.kind == Kind::TokenIssued));
    assert!(events.windows(2).all(|w| w[0].time < w[1].time), "oldest first across instances");
    std::fs::remove_dir_all(&dir).unwrap();
}

// AY-8.5.2.1: logs kept at least 6 months, deleted after.
#[tokio::test]
async fn retention_deletes_only_files_older_than_180_days() {
    let dir = tmp_dir("retention");
    let now = t0() + 12 * 3600;
    let audit = Audit::open(&config(&dir, "t1"), ORIGIN, Clock::manual(now), reqwest::Client::new()).unwrap();
    let today = time::macros::date!(2024 - 03 - 01);
    let name = |days: i64, inst: &str| {
        format!("audit-{}.{inst}.jsonl", files::format_date(today - time::Duration::days(days)))
    };
    let keep = [name(180, "t1"), name(179, "t2"), name(1, "t1"), name(0, "t1"), ".forward-t1.cursor".into()];
    let gone = [name(181, "t1"), name(181, "t2"), name(400, "t1")];
    for f in keep.iter().chain(&gone) {
        std::fs::write(dir.join(f), "").unwrap();
    }
    assert_eq!(audit.sweep(now).await.unwrap(), 3);
    for f in &keep {
        assert!(dir.join(f).exists(), "{f} kept");
    }
    for f in &gone {
        assert!(!dir.join(f).exists(), "{f} deleted");
    }
    assert_eq!(audit.sweep(now).await.unwrap(), 0);
    let e = Config::from_overlay("[audit]\nretention_days = 90", true).unwrap_err();
    assert!(e.to_string().contains("audit.retention_days"), "{e}");
    let mut short = config(&dir, "t1");
    short.retention_days = 179;
    let e = Audit::open(&short, ORIGIN, Clock::manual(now), reqwest::Client::new()).unwrap_err();
    assert!(matches!(e, AuditError::Config { field: "audit.retention_days", .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// GB-6.8c: the receiving side of cascade reporting keeps the downstream's events and origin.
#[tokio::test]
async fn ingest_records_forwarded_lines_unchanged() {
    let down_dir = tmp_dir("ingest-down");
    let up_dir = tmp_dir("ingest-up");
    let clock = Clock::manual(t0());
    let (down, _s1) = start(&config(&down_dir, "d1"), &clock);
    for i in 0..3 {
        down.record(Event::new(Kind::TokenIssued, Outcome::Success).detail(json!({"i": i}))).await;
    }
    down.flush().await;
    let mut body = std::fs::read(down_dir.join("audit-2024-03-01.d1.jsonl")).unwrap();
    body.extend_from_slice(br#"{"id":"x1","time":1709222400,"kind":"logout","actor":"user:u9","outcome":"success"}"#);
    body.push(b'\n');
    let up = Audit::open(&config(&up_dir, "u1"), "https://up.example.gov.cn", clock.clone(), reqwest::Client::new())
        .unwrap();
    let (_stop, rx) = watch::channel(false);
    up.spawn(rx).unwrap();
    assert_eq!(up.ingest(&body, "https://b.example.gov.cn").await.unwrap(), 4);
    up.flush().await;
    let got = all(&up, Query::default()).await;
    let sent = lines(&down_dir.join("audit-2024-03-01.d1.jsonl"));
    for e in &sent {
        let mut marked = e.clone();
        marked.ingested_by = Some("https://b.example.gov.cn".into());
        assert!(got.contains(&marked), "{e:?} kept unchanged, marked with its sender");
    }
    let x1 = got.iter().find(|e| e.id == "x1").unwrap();
    assert_eq!(x1.origin, "https://b.example.gov.cn", "missing origin is the sender");
    assert_eq!(x1.ts, "2024-02-29T16:00:00Z");

    let bad = b"{\"id\":\"ok\",\"time\":1709222400,\"kind\":\"logout\",\"actor\":\"system\",\"outcome\":\"success\"}\n\n{\"id\":";
    let e = up.ingest(bad, "p").await.unwrap_err();
    assert!(matches!(e, AuditError::Malformed { line: 3, .. }), "{e}");
    let e = up.ingest(br#"{"id":"k","time":1,"kind":"nope","actor":"a","outcome":"success"}"#, "p").await.unwrap_err();
    assert!(matches!(e, AuditError::Malformed { line: 1, .. }), "{e}");
    let many = "{\"id\":\"m\",\"time\":1709222400,\"kind\":\"logout\",\"actor\":\"a\",\"outcome\":\"success\"}\n"
        .repeat(MAX_INGEST_LINES + 1);
    let e = up.ingest(many.as_bytes(), "p").await.unwrap_err();
    assert!(matches!(e, AuditError::TooManyLines { .. }), "{e}");
    // AY-8.5.2.1: nobody writes this platform's own events through the ingest door.
    let ours = br#"{"id":"o","time":1709222400,"kind":"logout","actor":"client:a","outcome":"success","origin":"https://up.example.gov.cn"}"#;
    let e = up.ingest(ours, "client:x").await.unwrap_err();
    assert!(matches!(e, AuditError::Malformed { line: 1, .. }), "{e}");
    up.flush().await;
    assert_eq!(all(&up, Query::default()).await.len(), 4, "refused bodies record nothing");
    assert!(matches!(Audit::disabled().ingest(&body, "p").await, Err(AuditError::Disabled)));
    std::fs::remove_dir_all(&down_dir).unwrap();
    std::fs::remove_dir_all(&up_dir).unwrap();
}

// AY-8.5.2.1: a crash mid-write costs at most the torn line, never a panic or the next event.
#[tokio::test]
async fn torn_last_line_is_skipped_and_repaired() {
    let dir = tmp_dir("torn");
    let clock = Clock::manual(t0());
    let (a, _stop) = start(&config(&dir, "t1"), &clock);
    for _ in 0..3 {
        a.record(Event::new(Kind::TokenRefreshed, Outcome::Success)).await;
    }
    a.shutdown().await;
    let path = dir.join("audit-2024-03-01.t1.jsonl");
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, br#"{"id":"torn","time":17092"#).unwrap();
    assert_eq!(all(&a, Query::default()).await.len(), 3);
    assert!(a.stats().malformed >= 1);
    // After the restart the next event gets a line of its own.
    clock.advance(1);
    let (b, _stop2) = start(&config(&dir, "t1"), &clock);
    b.record(Event::new(Kind::TokenRevoked, Outcome::Success)).await;
    b.flush().await;
    let got = all(&b, Query::default()).await;
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].kind, Kind::TokenRevoked);
    std::fs::remove_dir_all(&dir).unwrap();
}

// Backpressure: a full channel makes `record` wait, never drop.
#[tokio::test]
async fn full_channel_waits_and_loses_nothing() {
    let dir = tmp_dir("backpressure");
    let clock = Clock::manual(t0());
    let mut c = config(&dir, "t1");
    c.channel_capacity = 1;
    let (a, _stop) = start(&c, &clock);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    a.record(Event::new(Kind::RateLimited, Outcome::Denied)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    a.shutdown().await;
    assert_eq!(all(&a, Query::default()).await.len(), 400);
    assert_eq!(a.stats().written, 400);
    a.record(Event::new(Kind::RateLimited, Outcome::Denied)).await;
    assert_eq!(a.stats().lost, 1, "after shutdown, events are counted as lost");
    let off = Audit::disabled();
    off.record(Event::new(Kind::Logout, Outcome::Success)).await;
    off.flush().await;
    assert!(off.query(Query::default()).await.unwrap().events.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

// The id's sequence is written as `{:014x}` always wrote it, so ids keep their order across
// an upgrade (queries order by time, then id).
#[test]
fn event_id_sequence_is_hex_as_before() {
    for n in [0, 1, 0xf, 0x10, 0xabc, 1_764_979_200_000_000, 0x00ff_ffff_ffff_ffff, 0x0100_0000_0000_0000, u64::MAX] {
        let mut s = String::new();
        super::push_hex14(&mut s, n);
        assert_eq!(s, format!("{n:014x}"));
    }
}
