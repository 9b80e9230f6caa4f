//! Directory reindex (issue 12): users stored before the directory existed (or by a write that
//! died before its index entries) are found by SCIM lists and filters once an instance starts;
//! the reindex runs once per index version, is safe to re-run and to race. Both stores.

use reqwest::StatusCode;
use serde_json::Value;
use tongzheng::directory::reindex::{self, INDEX_VERSION, Outcome};
use tongzheng::directory::{Ctx, Org, tree};
use tongzheng::store::{DynStore, keys};
use tongzheng::users::User;

use crate::support::flow;
use crate::support::server::*;

/// A user written the way tongzheng wrote them before the directory: record, id set and
/// username claim, and no directory index entry.
async fn legacy_user(store: &DynStore, username: &str, name: &str, orgs: &[&str], now: i64) -> User {
    let mut u = User::new(username.into(), name.into(), "$argon2id$v=19$m=8,t=1,p=1$AAAA$AAAA".into(), now);
    u.email = Some(format!("{username}@example.gov.cn"));
    u.orgs = orgs.iter().map(|o| (*o).to_owned()).collect();
    tongzheng::store::put_json(store.as_ref(), &keys::user(&u.id), &u, None).await.unwrap();
    store.set_add(keys::USER_INDEX, &u.id, None).await.unwrap();
    store.put(&keys::username(username), u.id.as_bytes(), None).await.unwrap();
    u
}

async fn scim_ids(s: &TestServer, token: &str, path: &str, filter: &str) -> Vec<String> {
    let r = s
        .http
        .get(s.url(&format!("/scim/v2/{path}")))
        .query(&[("filter", filter)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let mut ids: Vec<String> =
        v["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

// RFC 7644 s3.4.2.2 (filtering), SH-6.2.4a: people stored before the directory existed are in
// the directory after the next start, found by indexed filters and by membership.
async fn legacy_users_found_after_start(b: Backend) {
    let shared = SharedStore::new(b);
    let store = shared.handle();
    let now = tongzheng::clock::Clock::system().now();
    // An organization of the directory, and people written without index entries.
    let unit = tree::create(Ctx { store: &store, now }, Org::new("旧单位".into(), now)).await.unwrap();
    let a = legacy_user(&store, "legacy.one", "老甲", &[&unit.id], now).await;
    let c = legacy_user(&store, "legacy.two", "老乙", &[], now).await;
    // Before any reindex the indexes do not know them (what a SCIM filter reads).
    let ix = tongzheng::directory::index::key(tongzheng::directory::index::USERS_NAME);
    assert!(
        store
            .index_range(&ix, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, 0, 10, false)
            .await
            .unwrap()
            .iter()
            .all(|m| !m.starts_with("legacy."))
    );
    assert_eq!(reindex::stored_version(&store).await.unwrap(), 0);

    let s = TestServer::start_on_store(&shared, "").await;
    let token = flow::admin_token(&s).await;
    assert_eq!(scim_ids(&s, &token, "Users", "userName eq \"legacy.one\"").await, [a.id.as_str()]);
    let mut both = vec![a.id.clone(), c.id.clone()];
    both.sort();
    assert_eq!(scim_ids(&s, &token, "Users", "userName sw \"LEGACY.\"").await, both);
    assert_eq!(scim_ids(&s, &token, "Users", "displayName sw \"老\"").await, both);
    assert_eq!(scim_ids(&s, &token, "Users", "emails.value eq \"legacy.two@example.gov.cn\"").await, [c.id.as_str()]);
    assert_eq!(scim_ids(&s, &token, "Users", &format!("groups.value eq \"{}\"", unit.id)).await, [a.id.as_str()]);
    assert_eq!(reindex::stored_version(&store).await.unwrap(), INDEX_VERSION);
    // Current: the next start (or seeder round) reads one marker and does nothing.
    assert_eq!(reindex::ensure(&store, now).await.unwrap(), Outcome::Current);
}

// SH-6.2.4a, multi-instance: a reindex killed midway is finished by the next one once its lease
// ran out; two racing instances do the work once; re-running only re-adds what is there.
async fn reindex_lease_and_race(b: Backend) {
    let shared = SharedStore::new(b);
    let store = shared.handle();
    let now = tongzheng::clock::Clock::system().now();
    for i in 0..7 {
        legacy_user(&store, &format!("racer{i}"), &format!("赛{i}"), &[], now).await;
    }
    // A dead instance's lease, still running: left alone; once run out: taken over.
    store.put(keys::DIR_REINDEX_LOCK, (now + 600).to_string().as_bytes(), None).await.unwrap();
    assert_eq!(reindex::ensure(&store, now).await.unwrap(), Outcome::Elsewhere);
    assert_eq!(reindex::stored_version(&store).await.unwrap(), 0, "not marked done by a run that did nothing");
    assert_eq!(reindex::ensure(&store, now + 601).await.unwrap(), Outcome::Done { users: 7 });
    let ix = tongzheng::directory::index::key(tongzheng::directory::index::USERS);
    let count =
        || async { store.index_count(&ix, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded).await.unwrap() };
    assert_eq!(count().await, 7);
    // Forced again (a version bump): the same entries, nothing doubled.
    assert_eq!(reindex::run(&store).await.unwrap(), 7);
    assert_eq!(count().await, 7);
    // Two instances starting at once after a version bump: exactly one does the work.
    store.delete(keys::DIR_INDEX_VERSION).await.unwrap();
    let other = shared.handle();
    let (x, y) = tokio::join!(reindex::ensure(&store, now + 700), reindex::ensure(&other, now + 700));
    let done = [x.unwrap(), y.unwrap()].iter().filter(|o| matches!(o, Outcome::Done { .. })).count();
    assert_eq!(done, 1);
    assert_eq!(reindex::stored_version(&store).await.unwrap(), INDEX_VERSION);
    // A corrupt user record is skipped, never stops the others (nor an instance's start).
    store.put(&keys::user("broken"), b"{not json", None).await.unwrap();
    store.set_add(keys::USER_INDEX, "broken", None).await.unwrap();
    assert_eq!(reindex::run(&store).await.unwrap(), 7);
}

per_backend!(legacy_users_found_after_start, reindex_lease_and_race);
