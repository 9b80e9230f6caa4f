//! The audit log through the admin API (AY-8.5.2.1, GB-6.8a, GB-6.8c): admin actions, logins,
//! token issuance, revocation and logout recorded with actor, client, subject, IP, request id
//! and outcome; queried by the auditor (not the admin: separation of duties) with pagination
//! and JSON-lines export; kept 180 days and no less (injected clock); forwarded events from a
//! downstream platform ingested with their origin; no secrets anywhere in the files.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::lifecycle::problem;
use crate::support::flow;
use crate::support::server::*;

per_backend!(events_are_recorded_and_queryable);

async fn token_for(s: &TestServer, id: &str, secret: &str) -> String {
    let r = s
        .http
        .post(s.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "token for {id}");
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn events(s: &TestServer, auditor: &str, query: &str) -> Value {
    let r = s.http.get(s.url(&format!("/admin/v1/audit/events?{query}"))).bearer_auth(auditor).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "query {query}");
    r.json().await.unwrap()
}

fn audit_files_text(s: &TestServer) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(&s.state.config.audit.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    text
}

async fn events_are_recorded_and_queryable(b: Backend) {
    // The proxy in front sets X-Request-Id; its id is the one recorded.
    let s = TestServer::start_with(b, "[server]\ntrust_request_id = true\n").await;
    let admin = flow::admin_token(&s).await;
    let auditor = token_for(&s, AUDITOR_CLIENT, AUDITOR_SECRET).await;

    // Separation of duties: the admin token cannot read the audit log, the auditor cannot
    // administer.
    let r = s.http.get(s.url("/admin/v1/audit/events")).bearer_auth(&admin).send().await.unwrap();
    problem(r, StatusCode::FORBIDDEN, "admin reads audit").await;
    let r = s.http.get(s.url("/admin/v1/clients")).bearer_auth(&auditor).send().await.unwrap();
    problem(r, StatusCode::FORBIDDEN, "auditor administers").await;

    // Things worth auditing: an admin action, a token, a failed and a good login, a revocation.
    let r = s
        .http
        .post(s.url("/admin/v1/scopes"))
        .bearer_auth(&admin)
        .header("x-request-id", "req-audit-1")
        .json(&json!({"name": "audit.test", "description": "for the audit test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let web_token = token_for(&s, WEB_CLIENT, WEB_SECRET).await;
    let pkce = flow::Pkce::new();
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let login = flow::location(&r);
    assert_eq!(flow::submit_login(&s, &login, USER, "not-the-password").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(flow::submit_login(&s, &login, USER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let r = s
        .http
        .post(s.url("/revoke"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("token", web_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.state.audit.flush().await;

    // AY-8.5.2.1: each with actor, client, subject, IP, request id and outcome.
    let page = events(&s, &auditor, "kind=admin_action&limit=1000").await;
    let scope_call = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["request_id"] == "req-audit-1")
        .unwrap_or_else(|| panic!("admin action not found: {page}"))
        .clone();
    assert_eq!(scope_call["actor"], format!("client:{ADMIN_CLIENT}"));
    assert_eq!(scope_call["outcome"], "success");
    assert_eq!(scope_call["ip"], "127.0.0.1");
    assert_eq!(scope_call["detail"]["route"], "/admin/v1/scopes");
    assert_eq!(scope_call["origin"], s.base);
    // The refused admin-API calls above are there too, as denied.
    let denied = events(&s, &auditor, "kind=admin_action&outcome=denied").await;
    assert!(denied["events"].as_array().unwrap().len() >= 2, "{denied}");

    let issued = events(&s, &auditor, &format!("kind=token_issued&client_id={WEB_CLIENT}")).await;
    let e = &issued["events"][0];
    assert_eq!(
        (e["outcome"].as_str(), e["detail"]["grant_type"].as_str()),
        (Some("success"), Some("client_credentials"))
    );
    let failures = events(&s, &auditor, "kind=login_failure").await;
    let f = &failures["events"][0];
    assert_eq!(f["detail"]["reason"], "bad_password");
    assert_eq!(f["client_id"], WEB_CLIENT);
    let sub = f["subject"].as_str().unwrap().to_owned();
    let by_subject = events(&s, &auditor, &format!("subject={sub}&limit=1000")).await;
    let kinds: HashSet<&str> =
        by_subject["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains("login_failure") && kinds.contains("login_success"), "{kinds:?}");
    let revoked = events(&s, &auditor, "kind=token_revoked").await;
    assert_eq!(revoked["events"][0]["detail"]["token_type"], "access_token");

    // Pagination: every event exactly once across pages, newest first.
    s.state.audit.flush().await;
    let all = events(&s, &auditor, "limit=1000").await;
    let total = all["events"].as_array().unwrap().len();
    assert!(total >= 8, "{total}");
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".into(),
        };
        let page = events(&s, &auditor, &q).await;
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 3);
    let want: Vec<String> =
        all["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    // The big query's own record may land before the first page (the writer's group commit
    // decides) and then comes first; then exactly the big query's events, each once, although
    // every page request appended an event of its own in the same second.
    let start = seen.iter().position(|id| *id == want[0]).unwrap();
    assert!(start <= 1, "{start} newer events");
    assert_eq!(seen[start..], want[..]);
    let r = s.http.get(s.url("/admin/v1/audit/events?limit=0")).bearer_auth(&auditor).send().await.unwrap();
    problem(r, StatusCode::BAD_REQUEST, "limit 0").await;
    let r = s.http.get(s.url("/admin/v1/audit/events?cursor=bogus")).bearer_auth(&auditor).send().await.unwrap();
    problem(r, StatusCode::BAD_REQUEST, "bad cursor").await;

    // Export: JSON lines, oldest first.
    let r = s.http.get(s.url("/admin/v1/audit/export")).bearer_auth(&auditor).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= total);
    assert!(lines.windows(2).all(|w| w[0]["time"].as_i64() <= w[1]["time"].as_i64()));

    // GB-6.8b: no password, client secret or token in the files.
    let text = audit_files_text(&s);
    for secret in [PASSWORD, "not-the-password", WEB_SECRET, ADMIN_SECRET, web_token.as_str()] {
        assert!(!text.contains(secret), "a secret reached the audit log");
    }
}

// AY-8.5.2.1: logs are kept at least six months, counted on the injected clock.
#[tokio::test]
async fn retention_keeps_six_months() {
    let s = TestServer::start(Backend::Memory).await;
    let auditor = token_for(&s, AUDITOR_CLIENT, AUDITOR_SECRET).await;
    s.state.audit.flush().await;
    let old = events(&s, &auditor, "limit=1000").await["events"].as_array().unwrap().len();
    assert!(old >= 1);
    s.clock.advance(180 * 86_400);
    assert_eq!(s.state.audit.sweep(s.clock.now()).await.unwrap(), 0, "180 days old: kept");
    s.clock.advance(86_400);
    // A fresh token: the auditor's first one expired long ago.
    let auditor = token_for(&s, AUDITOR_CLIENT, AUDITOR_SECRET).await;
    assert!(s.state.audit.sweep(s.clock.now()).await.unwrap() >= 1, "181 days old: deleted");
    s.state.audit.flush().await;
    let left = events(&s, &auditor, "limit=1000").await;
    let times: Vec<i64> = left["events"].as_array().unwrap().iter().map(|e| e["time"].as_i64().unwrap()).collect();
    assert!(!times.is_empty() && times.iter().all(|t| *t >= s.clock.now() - 86_400), "{times:?}");
    // And a configuration below six months is refused at start, naming the field.
    let e = tongzheng::config::Config::from_overlay("[audit]\nretention_days = 90", true).unwrap_err();
    assert!(e.to_string().contains("audit.retention_days"), "{e}");
}

// GB-6.8c: a downstream platform forwards its events with a client holding the ingest scope
// (declared in the configuration: the admin API cannot grant it, AY-8.5.2.1).
#[tokio::test]
async fn downstream_events_are_ingested() {
    let s = TestServer::start_with(Backend::Memory, crate::duties::WITH_FORWARDER).await;
    let admin = flow::admin_token(&s).await;
    let (id, secret) = crate::duties::FORWARDER;
    let forwarder = token_for(&s, id, secret).await;
    let county = "https://county.example.gov.cn";
    let line = |id: &str| {
        json!({"id": id, "time": s.clock.now() - 5, "kind": "login_success", "actor": "user:u1", "subject": "u1",
               "outcome": "success", "origin": county})
        .to_string()
    };
    let body = format!("{}\n{}\n", line("c-1"), line("c-2"));
    let post = |body: String, token: String| {
        let url = s.url("/admin/v1/audit/ingest");
        let http = s.http.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(body, forwarder.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 2);
    // The route's own body limit (16 MiB) holds, not `server.body_limit` (64 KiB), which every
    // route has around it: a batch larger than the server's limit is taken whole.
    let big: String = (0..600)
        .map(|i| {
            json!({"id": format!("big-{i}"), "time": s.clock.now() - 5, "kind": "login_success",
                   "actor": "user:u2", "subject": "u2", "outcome": "success", "origin": county})
            .to_string()
                + "\n"
        })
        .collect();
    assert!(big.len() > 64 * 1024, "{}", big.len());
    let r = post(big, forwarder.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 600);
    let p = problem(post(format!("{}\nnot json\n", line("c-3")), forwarder).await, StatusCode::BAD_REQUEST, "bad line")
        .await;
    assert!(p["detail"].as_str().unwrap().contains("line 2"), "{p}");
    // Without the ingest scope: refused.
    problem(post(line("c-4"), admin).await, StatusCode::FORBIDDEN, "admin ingests").await;
    s.state.audit.flush().await;
    let auditor = token_for(&s, AUDITOR_CLIENT, AUDITOR_SECRET).await;
    let got = events(&s, &auditor, "subject=u1").await;
    let origins: Vec<&str> = got["events"].as_array().unwrap().iter().filter_map(|e| e["origin"].as_str()).collect();
    assert_eq!(origins, vec![county, county], "{got}");
}
