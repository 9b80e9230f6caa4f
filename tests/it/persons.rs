//! Natural and legal persons through the admin API (HL-5.1, HL-6.1, SH-8.2): identity documents
//! checked and sealed, shown masked, found exactly through the blind index; admin face and
//! in-person verification; legal persons with checked USCCs, agents and roles; paged search;
//! every change audited without the numbers; bad input answered with RFC 7807 400s.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::flow;
use crate::support::server::*;
use tongzheng::identity::legal;

per_backend!(natural_persons, legal_persons, paging_and_name_search, bad_input_is_a_problem, cli_manages_persons);

const ID_NUMBER: &str = "110101199003091234";
const PHONE: &str = "138 1234 5678";

async fn call(s: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = s.http.request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    if !status.is_success() {
        let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(ct, "application/problem+json", "{path}: {status}");
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn user(s: &TestServer, admin: &str, body: Value) -> Value {
    let (st, v) = call(s, admin, Method::POST, "/admin/v1/users", Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn search(s: &TestServer, admin: &str, body: Value) -> Vec<Value> {
    let (st, v) = call(s, admin, Method::POST, "/admin/v1/users/search", Some(body.clone())).await;
    assert_eq!(st, StatusCode::OK, "{body}: {v}");
    v["users"].as_array().unwrap().clone()
}

fn audit_text(s: &TestServer) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(&s.state.config.audit.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    text
}

async fn auditor(s: &TestServer) -> String {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(AUDITOR_CLIENT, Some(AUDITOR_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

// HL-5.1, HL-6.1, SH-8.2: a natural person's ID number and phone are checked, normalised and
// sealed, shown masked (110***********1234, 138****5678), unique, found exactly through the
// blind index; an admin's face verification reaches strong (acr 3) with who and how; a new ID
// number voids it; every change is audited without the numbers.
async fn natural_persons(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let zhang = user(
        &s,
        &admin,
        json!({"username": "zhang.san", "password": "zhang-san-password", "name": "张三",
               "id_number": ID_NUMBER, "phone_number": PHONE}),
    )
    .await;
    let id = zhang["id"].as_str().unwrap().to_owned();
    assert_eq!(zhang["id_type"], "resident_id_card", "the default document type");
    assert_eq!(zhang["id_number"], "110***********1234");
    assert_eq!(zhang["phone_number"], "138****5678");
    assert_eq!(
        (zhang["user_type"].as_str(), zhang["auth_level"].as_str(), zhang["acr"].as_str()),
        (Some("natural_person"), Some("registered"), Some("1"))
    );
    let stored = s.state.store.get(&tongzheng::store::keys::user(&id)).await.unwrap().unwrap();
    let stored = String::from_utf8_lossy(&stored);
    assert!(!stored.contains("19900309") && !stored.contains("12345678"), "sealed at rest: {stored}");

    // Unique: another person with the same number (typed differently) or phone is refused.
    let (st, p) = call(
        &s,
        &admin,
        Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "li.si", "password": "li-si-password-1", "phone_number": "+8613812345678"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    let (st, _) = call(
        &s,
        &admin,
        Method::POST,
        "/admin/v1/users",
        Some(json!({"username": "li.si", "password": "li-si-password-1", "id_number": " 110101199003091234 "})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let li = user(&s, &admin, json!({"username": "li.si", "password": "li-si-password-1", "name": "李四"})).await;

    // Exact search through the blind index, whatever the written form.
    for q in [
        json!({"phone_number": "+86-138-1234-5678"}),
        json!({"phone_number": "13812345678"}),
        json!({"id_number": ID_NUMBER}),
        json!({"id_number": ID_NUMBER, "id_type": "resident_id_card"}),
        json!({"name": "张三"}),
    ] {
        let found = search(&s, &admin, q.clone()).await;
        assert_eq!(found.len(), 1, "{q}");
        assert_eq!(found[0]["id"], id.as_str(), "{q}");
        assert_eq!(found[0]["id_number"], "110***********1234");
    }
    assert!(search(&s, &admin, json!({"phone_number": "13900001111"})).await.is_empty());
    assert!(search(&s, &admin, json!({"id_number": "11010519491231002X"})).await.is_empty());

    // HL-6.1: face verification by an admin needs an identity document on record...
    let li_id = li["id"].as_str().unwrap();
    let (st, p) = call(
        &s,
        &admin,
        Method::POST,
        &format!("/admin/v1/users/{li_id}/verification"),
        Some(json!({"method": "face"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    let (st, p) = call(
        &s,
        &admin,
        Method::POST,
        &format!("/admin/v1/users/{id}/verification"),
        Some(json!({"method": "real_name_service"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{p}");
    // ...and reaches strong, recording who and how.
    let (st, v) = call(
        &s,
        &admin,
        Method::POST,
        &format!("/admin/v1/users/{id}/verification"),
        Some(json!({"method": "face", "operator": "王五 (窗口 3)"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!((v["auth_level"].as_str(), v["acr"].as_str()), (Some("strong"), Some("3")));
    assert_eq!(v["verification"]["method"], "face");
    assert_eq!(v["verification"]["by"], format!("client:{ADMIN_CLIENT}"));
    let got = tongzheng::users::get(&s.state.store, &id).await.unwrap().unwrap();
    assert_eq!(got.level(), tongzheng::identity::AssuranceLevel::Strong);
    let (_, v) = call(
        &s,
        &admin,
        Method::POST,
        &format!("/admin/v1/users/{id}/verification"),
        Some(json!({"method": "in_person", "level": "real_name"})),
    )
    .await;
    assert_eq!(v["auth_level"], "real_name");

    // A new ID number voids the verification that vouched for the old one.
    let (st, v) = call(
        &s,
        &admin,
        Method::PUT,
        &format!("/admin/v1/users/{id}"),
        Some(json!({"id_number": "320102198511115678"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!((v["auth_level"].as_str(), v["id_number"].as_str()), (Some("registered"), Some("320***********5678")));
    assert!(v["verification"].is_null());
    assert!(search(&s, &admin, json!({"id_number": ID_NUMBER})).await.is_empty(), "the old number is freed");
    assert_eq!(search(&s, &admin, json!({"id_number": "320102198511115678"})).await.len(), 1);
    let (st, _) =
        call(&s, &admin, Method::PUT, &format!("/admin/v1/users/{li_id}"), Some(json!({"id_number": ID_NUMBER}))).await;
    assert_eq!(st, StatusCode::OK, "the freed number can be claimed");
    let (_, v) = call(
        &s,
        &admin,
        Method::POST,
        &format!("/admin/v1/users/{li_id}/verification"),
        Some(json!({"method": "in_person"})),
    )
    .await;
    assert_eq!(v["auth_level"], "strong");
    let (st, v) = call(&s, &admin, Method::DELETE, &format!("/admin/v1/users/{li_id}/verification"), None).await;
    assert_eq!((st, v["auth_level"].as_str()), (StatusCode::OK, Some("registered")));

    // Audited: the changes name their fields and the verification, never the numbers.
    s.state.audit.flush().await;
    let auditor = auditor(&s).await;
    let (st, ev) = call(&s, &auditor, Method::GET, &format!("/admin/v1/audit/events?subject={id}"), None).await;
    assert_eq!(st, StatusCode::OK);
    let events = ev["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["detail"]["detail"]["changed"] == json!(["id_number", "verification_cleared"])),
        "{ev}"
    );
    assert!(
        events.iter().any(|e| e["detail"]["detail"]["verification"]["method"] == "face"
            && e["detail"]["detail"]["operator"] == "王五 (窗口 3)"),
        "{ev}"
    );
    assert!(
        events.iter().any(|e| e["detail"]["detail"] == json!({"search_by": "id_number", "found": 1})),
        "who looked whom up by ID number is traceable: {ev}"
    );
    let text = audit_text(&s);
    for secret in ["110101199003091234", "320102198511115678", "13812345678", "1234 5678"] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
}

async fn new_legal(s: &TestServer, admin: &str, body: Value) -> Value {
    let (st, v) = call(s, admin, Method::POST, "/admin/v1/legal-persons", Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

// HL-5.1: legal persons with checked USCCs (GB 32100 and the embedded GB 11714 code), their
// agents and roles; only existing natural persons can be made agents, and only agents can act
// for the company (a removed agent no longer can); disabling moves the token generation.
async fn legal_persons(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let wang = user(&s, &admin, json!({"username": "wang.wu", "password": "wang-wu-password", "name": "王五"})).await;
    let zhao = user(&s, &admin, json!({"username": "zhao.liu", "password": "zhao-liu-password", "name": "赵六"})).await;
    let (wang, zhao) = (wang["id"].as_str().unwrap().to_owned(), zhao["id"].as_str().unwrap().to_owned());

    let (st, p) = call(&s, &admin, Method::POST, "/admin/v1/legal-persons", Some(json!({"name": "北京某某科技有限公司", "uscc": "91110108551385816B", "kind": "enterprise", "legal_representative": "张三", "agents": [{"user_id": "nobody", "role": "admin"}]}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "an agent must be an existing natural person: {p}");
    let lp = new_legal(&s, &admin, json!({"name": "北京某某科技有限公司", "uscc": "91110108551385816b", "kind": "enterprise", "legal_representative": "张三", "agents": [{"user_id": wang, "role": "admin"}]})).await;
    let id = lp["id"].as_str().unwrap().to_owned();
    assert_eq!((lp["uscc"].as_str(), lp["user_type"].as_str()), (Some("91110108551385816B"), Some("legal_person")));
    assert_eq!(lp["agents"][0]["role"], "admin");
    let (st, _) = call(&s, &admin, Method::POST, "/admin/v1/legal-persons", Some(json!({"name": "另一家", "uscc": "91110108551385816B", "kind": "enterprise", "legal_representative": "李四"}))).await;
    assert_eq!(st, StatusCode::CONFLICT, "the USCC is unique");

    // Only agents can act for it.
    let acting = |u: String| {
        let store = s.state.store.clone();
        async move { legal::acting_for(&store, &u).await.unwrap().into_iter().map(|l| l.id).collect::<Vec<_>>() }
    };
    assert_eq!(acting(wang.clone()).await, vec![id.clone()]);
    assert!(acting(zhao.clone()).await.is_empty(), "no authorization, no acting");
    let (st, v) = call(
        &s,
        &admin,
        Method::PUT,
        &format!("/admin/v1/legal-persons/{id}/agents/{zhao}"),
        Some(json!({"role": "agent"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["agents"].as_array().unwrap().len(), 2);
    assert_eq!(acting(zhao.clone()).await, vec![id.clone()]);
    let (_, v) = call(
        &s,
        &admin,
        Method::PUT,
        &format!("/admin/v1/legal-persons/{id}/agents/{zhao}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert!(v["agents"].as_array().unwrap().iter().all(|a| a["role"] == "admin"), "{v}");
    let (st, _) =
        call(&s, &admin, Method::PUT, &format!("/admin/v1/legal-persons/{id}/agents/nobody"), Some(json!({}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = call(&s, &admin, Method::DELETE, &format!("/admin/v1/legal-persons/{id}/agents/{zhao}"), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(acting(zhao.clone()).await.is_empty(), "a removed agent cannot act");
    let (st, _) = call(&s, &admin, Method::DELETE, &format!("/admin/v1/legal-persons/{id}/agents/{zhao}"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) =
        call(&s, &admin, Method::PUT, &format!("/admin/v1/legal-persons/{id}/agents/{id}"), Some(json!({}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a legal person cannot be made an agent: only natural persons act");

    // Search: by USCC (any case), name prefix, agent.
    for q in ["uscc=91110108551385816b", "name=%E5%8C%97%E4%BA%AC%E6%9F%90", &format!("agent={wang}")] {
        let (st, v) = call(&s, &admin, Method::GET, &format!("/admin/v1/legal-persons?{q}"), None).await;
        assert_eq!(st, StatusCode::OK, "{q}: {v}");
        assert_eq!(v["legal_persons"].as_array().unwrap().len(), 1, "{q}: {v}");
    }
    let (_, v) = call(&s, &admin, Method::GET, &format!("/admin/v1/legal-persons?agent={zhao}"), None).await;
    assert!(v["legal_persons"].as_array().unwrap().is_empty());

    // Changes: the USCC stays; a rename moves the name index; disabling moves the generation.
    let (st, _) = call(
        &s,
        &admin,
        Method::PUT,
        &format!("/admin/v1/legal-persons/{id}"),
        Some(json!({"uscc": "91110000600037341L"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = call(
        &s,
        &admin,
        Method::PUT,
        &format!("/admin/v1/legal-persons/{id}"),
        Some(json!({"name": "上海某某有限公司", "enabled": false})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(legal::get(&s.state.store, &id).await.unwrap().unwrap().generation, 1);
    assert!(acting(wang.clone()).await.is_empty(), "a disabled legal person cannot be acted for");
    let (_, v) = call(&s, &admin, Method::GET, "/admin/v1/legal-persons?name=%E5%8C%97%E4%BA%AC", None).await;
    assert!(v["legal_persons"].as_array().unwrap().is_empty(), "the old name is out of the index: {v}");
    let (_, v) = call(&s, &admin, Method::GET, "/admin/v1/legal-persons?name=%E4%B8%8A%E6%B5%B7", None).await;
    assert_eq!(v["legal_persons"].as_array().unwrap().len(), 1);

    // Verified in person by an admin.
    let (st, v) = call(
        &s,
        &admin,
        Method::POST,
        &format!("/admin/v1/legal-persons/{id}/verification"),
        Some(json!({"method": "in_person"})),
    )
    .await;
    assert_eq!(
        (st, v["auth_level"].as_str(), v["verification"]["by"].as_str()),
        (StatusCode::OK, Some("real_name"), Some(format!("client:{ADMIN_CLIENT}").as_str()))
    );

    // Audited, then deleted (the USCC is free again).
    s.state.audit.flush().await;
    let auditor = auditor(&s).await;
    let (_, ev) = call(&s, &auditor, Method::GET, &format!("/admin/v1/audit/events?subject={id}"), None).await;
    let events = ev["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["detail"]["detail"]["agent_removed"] == zhao.as_str()), "{ev}");
    assert!(events.iter().any(|e| e["detail"]["detail"]["changed"] == json!(["name", "enabled"])), "{ev}");
    // A deleted person's authorizations go with their account.
    let (st, _) =
        call(&s, &admin, Method::PUT, &format!("/admin/v1/legal-persons/{id}/agents/{zhao}"), Some(json!({}))).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(&s, &admin, Method::DELETE, &format!("/admin/v1/users/{zhao}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let lp = legal::get(&s.state.store, &id).await.unwrap().unwrap();
    assert!(lp.agent(&zhao).is_none() && lp.agent(&wang).is_some(), "{:?}", lp.agents);
    let (st, _) = call(&s, &admin, Method::DELETE, &format!("/admin/v1/legal-persons/{id}"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, &admin, Method::GET, &format!("/admin/v1/legal-persons/{id}"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    new_legal(&s, &admin, json!({"name": "北京某某科技有限公司", "uscc": "91110108551385816B", "kind": "enterprise", "legal_representative": "张三"})).await;
}

// HL-5.1: lists page by cursor, each record once; name search reads the name index and pages
// the same way.
async fn paging_and_name_search(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let mut mine = Vec::new();
    for i in 0..7 {
        let u = user(
            &s,
            &admin,
            json!({"username": format!("ce.shi{i}"), "password": "ce-shi-password-1", "name": format!("测试 用户{i}")}),
        )
        .await;
        mine.push(u["id"].as_str().unwrap().to_owned());
    }
    for query in ["/admin/v1/users?limit=3", "/admin/v1/users?limit=3&name=%E6%B5%8B%E8%AF%95"] {
        let mut seen = Vec::new();
        let mut url = query.to_owned();
        loop {
            let (st, v) = call(&s, &admin, Method::GET, &url, None).await;
            assert_eq!(st, StatusCode::OK, "{url}: {v}");
            let page = v["users"].as_array().unwrap();
            assert!(page.len() <= 3);
            seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
            match v["next_cursor"].as_str() {
                Some(c) => url = format!("{query}&cursor={c}"),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "{query}: each once");
        assert!(mine.iter().all(|m| seen.contains(m)), "{query}: all found");
        if query.contains("name") {
            assert_eq!(seen.len(), 7, "only the matching names");
        }
    }
    let found = search(&s, &admin, json!({"name": "测试用户3"})).await;
    assert_eq!(found.len(), 1, "whitespace does not matter");
    // A rename leaves the old prefix.
    let (st, _) =
        call(&s, &admin, Method::PUT, &format!("/admin/v1/users/{}", mine[0]), Some(json!({"name": "改名"}))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(search(&s, &admin, json!({"name": "测试", "limit": 500})).await.len(), 6);
    assert_eq!(search(&s, &admin, json!({"name": "改名"})).await.len(), 1);

    // A record written before the name index existed is found after one rebuild.
    let old = tongzheng::users::User::new("old.timer".into(), "老用户".into(), "x".into(), 0);
    tongzheng::store::put_json(s.state.store.as_ref(), &tongzheng::store::keys::user(&old.id), &old, None)
        .await
        .unwrap();
    s.state.store.set_add(tongzheng::store::keys::USER_INDEX, &old.id, None).await.unwrap();
    assert!(search(&s, &admin, json!({"name": "老用户"})).await.is_empty());
    let (st, v) = call(&s, &admin, Method::POST, "/admin/v1/name-index/rebuild", Some(json!({}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["users"].as_u64().unwrap() >= 8, "{v}");
    assert_eq!(search(&s, &admin, json!({"name": "老用"})).await.len(), 1);
}

// HL-5.1, SH-8.2, GB-6.9.3: malformed ID numbers of every type, USCCs, phones, over-long fields
// and malformed searches get RFC 7807 400s, never a 5xx; nothing is written.
async fn bad_input_is_a_problem(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let u =
        user(&s, &admin, json!({"username": "ok.user", "password": "ok-user-password", "id_number": ID_NUMBER})).await;
    let uid = u["id"].as_str().unwrap().to_owned();
    let lp = new_legal(&s, &admin, json!({"name": "某某有限公司", "uscc": "91350100M000100Y43", "kind": "enterprise", "legal_representative": "张三"})).await;
    let lid = lp["id"].as_str().unwrap().to_owned();
    let long = "长".repeat(200);
    let base = |extra: Value| {
        let mut b = json!({"username": "bad.user", "password": "bad-user-password"});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let legal_base = |extra: Value| {
        let mut b = json!({"name": "某公司", "uscc": "91110000600037341L", "kind": "enterprise", "legal_representative": "李四"});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_number": "110101199003091235"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_number": "11010119900309123"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_number": "110101199013091234"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_number": "1".repeat(10_000)}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_type": "passport", "id_number": "E12"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_type": "hk_macao_permit", "id_number": "X12345678"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_type": "taiwan_permit", "id_number": "1234"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"id_type": "driving_licence", "id_number": ID_NUMBER}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"phone_number": "12345"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"phone_number": "+1 415 555 0100"}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"phone_number": "9".repeat(5000)}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"name": long}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"name": "  "}))),
        (Method::POST, "/admin/v1/users".into(), base(json!({"email": format!("{}@example.com", "a".repeat(300))}))),
        (Method::PUT, format!("/admin/v1/users/{uid}"), json!({"id_number": "11010519491231002Y"})),
        (Method::PUT, format!("/admin/v1/users/{uid}"), json!({"id_type": "taiwan_permit"})),
        (Method::POST, format!("/admin/v1/users/{uid}/verification"), json!({"method": "face", "operator": long})),
        (Method::POST, format!("/admin/v1/users/{uid}/verification"), json!({"method": "face", "level": "visitor"})),
        (Method::POST, format!("/admin/v1/users/{uid}/verification"), json!({"method": "telepathy"})),
        (Method::POST, "/admin/v1/users/search".into(), json!({})),
        (Method::POST, "/admin/v1/users/search".into(), json!({"name": "张三", "phone_number": "13812345678"})),
        (Method::POST, "/admin/v1/users/search".into(), json!({"name": "张"})),
        (Method::POST, "/admin/v1/users/search".into(), json!({"phone_number": "010-12345678"})),
        (Method::POST, "/admin/v1/users/search".into(), json!({"id_number": "not-a-number!"})),
        (Method::POST, "/admin/v1/users/search".into(), json!({"id_number": "E12", "id_type": "passport"})),
        (Method::POST, "/admin/v1/users/search".into(), json!({"name": "张三", "limit": 0})),
        (Method::POST, "/admin/v1/users/search".into(), json!({"name": "张三", "cursor": "a b"})),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"uscc": "91110000600037341K"}))),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"uscc": "91110108551385817A"}))),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"uscc": "9111000060003734"}))),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"uscc": "Z".repeat(1000)}))),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"name": long}))),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"legal_representative": ""}))),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"kind": "pirate_ship"}))),
        (
            Method::POST,
            "/admin/v1/legal-persons".into(),
            legal_base(json!({"agents": [{"user_id": uid}, {"user_id": uid}]})),
        ),
        (Method::POST, "/admin/v1/legal-persons".into(), legal_base(json!({"agents": [{"user_id": "x".repeat(500)}]}))),
        (Method::PUT, format!("/admin/v1/legal-persons/{lid}"), json!({"name": long})),
        (Method::PUT, format!("/admin/v1/legal-persons/{lid}/agents/{uid}"), json!({"role": "owner"})),
        (Method::POST, format!("/admin/v1/legal-persons/{lid}/verification"), json!({"method": "one_time_code"})),
        (Method::GET, "/admin/v1/legal-persons?uscc=123".into(), Value::Null),
        (Method::GET, "/admin/v1/legal-persons?name=a&uscc=91350100M000100Y43".into(), Value::Null),
        (Method::GET, "/admin/v1/legal-persons?limit=100000".into(), Value::Null),
        (Method::GET, "/admin/v1/users?limit=-1".into(), Value::Null),
        (Method::GET, "/admin/v1/users?name=x".into(), Value::Null),
    ];
    for (method, path, body) in cases {
        let body = (!body.is_null()).then_some(body);
        let (st, v) = call(&s, &admin, method.clone(), &path, body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{method} {path} {body:?}: {v}");
        assert_eq!(v["status"], 400, "{v}");
        assert!(v["detail"].is_string(), "{v}");
    }
    // Nothing was written: one user, one legal person.
    let (_, v) = call(&s, &admin, Method::GET, "/admin/v1/users?limit=500", None).await;
    assert!(!v["users"].as_array().unwrap().iter().any(|u| u["username"] == "bad.user"), "{v}");
    let (_, v) = call(&s, &admin, Method::GET, "/admin/v1/legal-persons", None).await;
    assert_eq!(v["legal_persons"].as_array().unwrap().len(), 1);
    let (_, v) = call(&s, &admin, Method::GET, &format!("/admin/v1/users/{uid}"), None).await;
    assert_eq!(v["id_number"], "110***********1234", "a refused change keeps the record");
}

async fn cli(s: &TestServer, args: &[&str]) -> (u8, String, String) {
    let mut argv = vec!["--server", s.base.as_str(), "--client-id", ADMIN_CLIENT, "--client-secret", ADMIN_SECRET];
    argv.extend_from_slice(args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tongzheng::cli::run(argv, &mut out, &mut err).await;
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

// HL-5.1, HL-6.1, SH-8.2: the CLI manages persons, verification, legal persons and agents;
// it prints numbers masked and reports a malformed one from the RFC 7807 problem.
async fn cli_manages_persons(b: Backend) {
    let s = TestServer::start(b).await;
    let pw = std::env::temp_dir().join(format!(
        "tz-persons-pw-{}-{}",
        std::process::id(),
        s.base.rsplit(':').next().unwrap()
    ));
    std::fs::write(&pw, "zhang-san-password\n").unwrap();
    let pw = pw.to_str().unwrap();
    let (code, out, err) = cli(
        &s,
        &[
            "person",
            "create",
            "--username",
            "zhang.san",
            "--name",
            "张三",
            "--password-file",
            pw,
            "--phone",
            PHONE,
            "--id-number",
            ID_NUMBER,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("110***********1234") && out.contains("138****5678"), "{out}");
    assert!(!out.contains(ID_NUMBER) && !out.contains("12345678"), "{out}");
    let id = out.lines().find(|l| l.starts_with("id:")).unwrap()[3..].trim().to_owned();
    let (code, out, _) = cli(&s, &["person", "search", "--phone", "+86 13812345678"]).await;
    assert_eq!(code, 0);
    assert!(out.contains(&id) && out.contains("138****5678"), "{out}");
    let (code, out, _) = cli(&s, &["person", "verify", &id, "--method", "in-person", "--operator", "窗口 3"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("strong (acr 3)") && out.contains("in_person by client:admin-cli"), "{out}");
    let (code, out, err) = cli(&s, &["person", "set-id", &id, "--id-number", "110101199003091235"]).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("check digit"), "{err}");
    let (code, out, err) = cli(
        &s,
        &[
            "legal",
            "create",
            "--name",
            "北京某某科技有限公司",
            "--uscc",
            "91110108551385816B",
            "--representative",
            "张三",
            "--agent",
            &format!("{id}:admin"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{id} (admin)")), "{out}");
    let lid = out.lines().find(|l| l.starts_with("id:")).unwrap()[3..].trim().to_owned();
    let (code, out, _) = cli(&s, &["legal", "list", "--agent", &id]).await;
    assert_eq!(code, 0);
    assert!(out.contains(&lid) && out.contains("91110108551385816B"), "{out}");
    let (code, out, _) = cli(&s, &["legal", "remove-agent", &lid, &id]).await;
    assert_eq!(code, 0, "{out}");
    assert!(legal::acting_for(&s.state.store, &id).await.unwrap().is_empty());
    let (code, _, err) =
        cli(&s, &["legal", "create", "--name", "x", "--uscc", "91110108551385816C", "--representative", "y"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("check character"), "{err}");
}
