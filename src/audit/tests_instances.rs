//! Tests of instance names in a shared audit directory: leases (held, released, taken over from
//! a dead holder), and the single-instance file name of older data, still read and expired.

use super::tests::{ORIGIN, config, start, t0, tmp_dir};
use super::*;

#[test]
fn a_name_is_held_by_one_running_instance() {
    let dir = tmp_dir("lease");
    std::fs::create_dir_all(&dir).unwrap();
    // Default names: the host name, then numbered ones on the same host.
    let first = instance::claim(&dir, "", "web 1").unwrap();
    let second = instance::claim(&dir, "", "web 1").unwrap();
    assert_eq!((first.name.as_str(), second.name.as_str()), ("web_1", "web_1-2"));
    // A configured name already held is refused, naming the field.
    let held = instance::claim(&dir, "web_1", "other-host").unwrap_err();
    assert!(held.to_string().contains("audit.instance"), "{held}");
    // Released (shutdown or drop): the next start gets the same name back.
    drop(first);
    assert_eq!(instance::claim(&dir, "", "web 1").unwrap().name, "web_1");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dead_holders_lease_is_taken_over() {
    let dir = tmp_dir("lease-dead");
    std::fs::create_dir_all(&dir).unwrap();
    // A process of this host that no longer runs (pid beyond the kernel's maximum).
    std::fs::write(dir.join(".instance-n1.lease"), "tok n1 4999999\n").unwrap();
    assert_eq!(instance::claim(&dir, "n1", "n1").unwrap().name, "n1");
    // A live process of another host holds its name until its lease goes stale.
    std::fs::write(dir.join(".instance-n2.lease"), "tok elsewhere 1\n").unwrap();
    assert!(instance::claim(&dir, "n2", "n1").is_err());
    let stale = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(t0()).unwrap());
    std::fs::File::options().write(true).open(dir.join(".instance-n2.lease")).unwrap().set_modified(stale).unwrap();
    let lease = instance::claim(&dir, "n2", "n1").unwrap();
    assert_eq!(lease.name, "n2");
    let files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(files.iter().filter(|f| f.contains(".lease.")).count(), 0, "nothing left aside: {files:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// AY-8.5.2.1: events written before per-instance names (`audit-YYYY-MM-DD.jsonl`) are still
// queried, exported and expired.
#[tokio::test]
async fn the_single_instance_file_name_is_still_read() {
    let dir = tmp_dir("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    let clock = Clock::manual(t0() + 3600);
    let old = Event {
        id: "0001legacy".into(),
        time: t0() + 60,
        origin: ORIGIN.into(),
        ..Event::new(Kind::Logout, Outcome::Success)
    };
    std::fs::write(dir.join("audit-2024-03-01.jsonl"), format!("{}\n", serde_json::to_string(&old).unwrap())).unwrap();
    std::fs::write(dir.join("audit-2023-01-01.jsonl"), "").unwrap();
    let (a, _stop) = start(&config(&dir, "t1"), &clock);
    a.record(Event::new(Kind::Logout, Outcome::Success).actor("system")).await;
    a.flush().await;
    let page = a.query(Query { kind: Some(Kind::Logout), ..Query::default() }).await.unwrap();
    let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[1], "0001legacy");
    assert!(ids[0].ends_with(".t1"), "ids name their instance: {ids:?}");
    let mut export = a.export(Query { kind: Some(Kind::Logout), ..Query::default() });
    let mut body = Vec::new();
    while let Some(chunk) = export.next_chunk().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8(body).unwrap().starts_with("{\"id\":\"0001legacy\""));
    // The sweep at start deleted the expired one.
    assert!(!dir.join("audit-2023-01-01.jsonl").exists(), "the old legacy file expires");
    assert!(dir.join("audit-2024-03-01.jsonl").exists());
    a.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
