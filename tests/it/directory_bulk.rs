//! SCIM Bulk with creations run side by side (issue 12 scale): the answer keeps the request's
//! order, unique values hold inside one run and across runs, operations that refer to another
//! (`bulkId`) still see it done first. Both stores.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow;
use crate::support::server::*;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const TZU: &str = "urn:tongzheng:params:scim:schemas:extension:directory:2.0:User";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn person(username: &str, ext: &str, org: Option<&str>) -> Value {
    let mut v = json!({"schemas": [USER, TZU], "userName": username, "externalId": ext, "displayName": username});
    if let Some(o) = org {
        v[TZU] = json!({"memberships": [{"value": o, "title": "科员"}]});
    }
    v
}

async fn bulk(s: &TestServer, token: &str, body: Value) -> Value {
    let r = s
        .http
        .post(s.url("/scim/v2/Bulk"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn total(s: &TestServer, token: &str, filter: &str) -> u64 {
    let r = s.http.get(s.url("/scim/v2/Users")).query(&[("filter", filter)]).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["totalResults"].as_u64().unwrap()
}

// RFC 7644 s3.7 (Bulk), s3.7.2 (bulkId), s3.12 (uniqueness); SH-A.2 "batch add users".
async fn waves_keep_order_and_uniqueness(b: Backend) {
    let s = TestServer::start(b).await;
    let token = flow::admin_token(&s).await;
    let mut ops = vec![
        json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [GROUP], "displayName": "批量单位"}}),
        // Refers to the group created just before: runs after it.
        json!({"method": "POST", "path": "/Users", "bulkId": "ref", "data": person("ref.one", "x-ref", Some("bulkId:g"))}),
    ];
    for i in 0..70 {
        // Two people with one user name inside one run (i = 20, 21), and again in a later run (i = 60).
        let name = match i {
            20 | 21 | 60 => "twin".to_owned(),
            _ => format!("wave{i:02}"),
        };
        ops.push(json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": person(&name, &format!("x{i}"), None)}));
    }
    let v = bulk(&s, &token, json!({"schemas": [BULK], "Operations": ops})).await;
    let results = v["Operations"].as_array().unwrap();
    assert_eq!(results.len(), 72, "one result per operation");
    let ids: Vec<&str> = results.iter().map(|r| r["bulkId"].as_str().unwrap()).collect();
    let mut want = vec!["g".to_owned(), "ref".to_owned()];
    want.extend((0..70).map(|i| format!("b{i}")));
    assert_eq!(ids, want, "results in the request's order");
    let status = |i: usize| results[i]["status"].as_str().unwrap().to_owned();
    assert_eq!((status(0), status(1)), ("201".into(), "201".into()), "{v}");
    let twins: Vec<String> = [22, 23, 62].iter().map(|i| status(*i)).collect();
    assert_eq!(twins.iter().filter(|s| *s == "201").count(), 1, "one twin wins: {twins:?}");
    assert_eq!(twins.iter().filter(|s| *s == "409").count(), 2, "the others are told: {twins:?}");
    let created = results.iter().filter(|r| r["status"] == "201").count();
    assert_eq!(created, 70);
    assert_eq!(total(&s, &token, "userName sw \"wave\"").await, 67);
    assert_eq!(total(&s, &token, "userName eq \"twin\"").await, 1);
    let g = results[0]["location"].as_str().unwrap().rsplit('/').next().unwrap();
    assert_eq!(total(&s, &token, &format!("groups.value eq \"{g}\"")).await, 1, "the bulkId reference resolved");
}

// RFC 7644 s3.3 and s3.12 (uniqueness, scimType "uniqueness"), HL-5.1: concurrent creations of
// one userName, externalId or organization code in separate requests: exactly one wins. Before
// the in-flight mark (`store::claim`), a second create could take over the first one's claim
// in the gap between its claim and its record, and both got 201 (seen on Redis).
async fn concurrent_creates_keep_values_unique(b: Backend) {
    let s = TestServer::start(b).await;
    let token = flow::admin_token(&s).await;
    for round in 0..4 {
        let users = (0..8).map(|i| {
            let body = person(&format!("race{round}"), &format!("race-x{round}-{i}"), None);
            let req = s
                .http
                .post(s.url("/scim/v2/Users"))
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body(body.to_string());
            async move { req.send().await.unwrap().status() }
        });
        let groups = (0..8).map(|i| {
            let body = json!({"schemas": [GROUP],
                              "displayName": format!("并发单位{round}-{i}"), "externalId": format!("race-org{round}")});
            let req = s
                .http
                .post(s.url("/scim/v2/Groups"))
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body(body.to_string());
            async move { req.send().await.unwrap().status() }
        });
        let (u, g) = tokio::join!(futures_util::future::join_all(users), futures_util::future::join_all(groups));
        for (what, statuses) in [("userName", u), ("group externalId", g)] {
            let won = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
            let refused = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
            assert_eq!((won, refused), (1, 7), "{what}, round {round}: {statuses:?}");
        }
        assert_eq!(total(&s, &token, &format!("userName eq \"race{round}\"")).await, 1);
    }
}

per_backend!(waves_keep_order_and_uniqueness, concurrent_creates_keep_values_unique);
