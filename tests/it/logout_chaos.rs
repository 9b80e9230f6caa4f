//! Chaos tests of single logout (DC-4, issue 10 "a logout is never lost"): the server runs as a
//! child process on a real redis-server; it is killed with `kill -9` at every step of the
//! logout sequence (test-only `TONGZHENG_TEST_CRASH_AT`, see `src/logout/faults.rs`), or Redis
//! is stalled (`CLIENT PAUSE`) or its connections dropped (`CLIENT KILL`) right after a step;
//! then a second instance (or the same one, for Redis faults) recovers. Every application the
//! session reached must get its logout token (OpenID Back-Channel Logout 1.0 s2.5; duplicates
//! allowed, counted by distinct (aud, sid)) and no token of an ended session may work.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::flow::{hidden, location, query};
use crate::support::instance::{Instance, Platform, shared_keys_dir};
use crate::support::receiver::{Mode, Receivers};
use crate::support::redis::{RedisServer, unique_prefix};
use crate::support::server::*;

/// Every step of the logout sequence with a fault-injection point (src/logout/faults.rs).
const LOGOUT_STEPS: &[&str] = &[
    "logout.begin",
    "logout.intent",
    "logout.taken",
    "logout.delivery_queued",
    "logout.queued",
    "logout.cleaned",
    "logout.done",
];
/// Every step of a delivery with a fault-injection point.
const OUTBOX_STEPS: &[&str] = &["outbox.claimed", "outbox.started", "outbox.sent", "outbox.recorded"];

/// Short leases so a dead instance's work is picked up within seconds.
const OVERLAY: &str = "[logout]\nlease = 2\nattempt_timeout_ms = 1000\npoll_ms = 50\n";

/// How long recovery may take before what is missing counts as lost.
const RECOVERY: Duration = Duration::from_secs(12);

struct Rp {
    name: String,
    id: String,
    secret: String,
    redirect: String,
}

/// One SSO session that reached every RP, with the access token each RP got.
struct Sess {
    sid: String,
    access_tokens: Vec<String>,
}

/// What one scenario left behind.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    expected: usize,
    lost: usize,
    live_tokens: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.expected += o.expected;
        self.lost += o.lost;
        self.live_tokens += o.live_tokens;
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn platform(redis_url: &str) -> Platform {
    Platform {
        redis_url: redis_url.to_owned(),
        prefix: unique_prefix(),
        keys_dir: shared_keys_dir(),
        issuer: "http://tz-chaos.test".into(),
        overlay: OVERLAY.into(),
    }
}

async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .post(format!("{base}/token"))
        .basic_auth(ADMIN_CLIENT, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn add_rp(http: &reqwest::Client, base: &str, admin: &str, name: &str, r: &Receivers) -> Rp {
    let id = format!("rp-{name}");
    let redirect = format!("http://127.0.0.1:9000/cb/{name}");
    let body = json!({
        "client_id": id, "client_name": name, "redirect_uris": [redirect],
        "grant_types": ["authorization_code"], "scope": "openid",
        "backchannel_logout_uri": r.uri(name), "backchannel_logout_session_required": true,
    });
    let resp = http.post(format!("{base}/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    Rp { name: name.to_owned(), id, secret: v["client_secret"].as_str().unwrap().to_owned(), redirect }
}

/// `n` RPs whose receivers are named `{tag}-{i}`.
async fn add_rps(http: &reqwest::Client, base: &str, r: &Receivers, tag: &str, n: usize) -> Vec<Rp> {
    let admin = admin_token(http, base).await;
    let mut rps = Vec::new();
    for i in 0..n {
        rps.push(add_rp(http, base, &admin, &format!("{tag}-{i}"), r).await);
    }
    rps
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&tongzheng::crypto::b64_decode(part).unwrap()).unwrap()
}

/// A browser logs in and visits every RP (SSO after the first); each RP redeems its code.
async fn new_session(base: &str, rps: &[Rp]) -> Sess {
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut access_tokens = Vec::new();
    for rp in rps {
        let params =
            [("response_type", "code"), ("client_id", &rp.id), ("redirect_uri", &rp.redirect), ("scope", "openid")];
        let resp = browser.get(format!("{base}/authorize")).query(&params).send().await.unwrap();
        let mut loc = location(&resp);
        if loc.starts_with("/login") {
            let html = browser.get(format!("{base}{loc}")).send().await.unwrap().text().await.unwrap();
            let form = [
                ("req", hidden(&html, "req")),
                ("csrf", hidden(&html, "csrf")),
                ("username", USER.into()),
                ("password", PASSWORD.into()),
            ];
            loc = location(&browser.post(format!("{base}/login")).form(&form).send().await.unwrap());
        }
        let q = query(&loc);
        let code = q.get("code").unwrap_or_else(|| panic!("a code for {}: {loc}", rp.id));
        let resp = browser
            .post(format!("{base}/token"))
            .basic_auth(&rp.id, Some(&rp.secret))
            .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &rp.redirect)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = resp.json().await.unwrap();
        access_tokens.push(v["access_token"].as_str().unwrap().to_owned());
    }
    let sid = claims(&access_tokens[0])["sid"].as_str().unwrap().to_owned();
    Sess { sid, access_tokens }
}

async fn new_sessions(base: &str, rps: &[Rp], n: usize) -> Vec<Sess> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(new_session(base, rps).await);
    }
    out
}

/// Admin logout of `sid` (DC-4); true when it answered success (200, or 404: already ended).
async fn admin_logout(http: &reqwest::Client, base: &str, admin: &str, sid: &str) -> bool {
    match http.delete(format!("{base}/admin/v1/sessions/{sid}")).bearer_auth(admin).send().await {
        Ok(r) => r.status() == StatusCode::OK || r.status() == StatusCode::NOT_FOUND,
        Err(_) => false,
    }
}

/// Logs every session out at once; which ones answered success.
async fn logout_all(base: &str, sessions: &[Sess]) -> Vec<bool> {
    let http = http();
    let admin = admin_token(&http, base).await;
    let calls = sessions.iter().map(|s| {
        let (http, admin, url, sid) = (http.clone(), admin.clone(), base.to_owned(), s.sid.clone());
        tokio::spawn(async move { admin_logout(&http, &url, &admin, &sid).await })
    });
    let mut out = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        out.push(c.await.unwrap_or(false));
    }
    out
}

/// A caller that got no success answer tries again (at `base`), as an RP or admin would.
async fn retry_unanswered(base: &str, sessions: &[Sess], answered: &[bool]) {
    let http = http();
    let admin = admin_token(&http, base).await;
    for (s, ok) in sessions.iter().zip(answered) {
        if !ok {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !admin_logout(&http, base, &admin, &s.sid).await {
                assert!(Instant::now() < deadline, "the retried logout keeps failing");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Distinct (aud, sid) pairs the receivers accepted.
fn notified(r: &Receivers, rps: &[Rp]) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for rp in rps {
        for t in r.accepted(&rp.name) {
            let c = claims(&t);
            out.insert((
                c["aud"].as_str().unwrap_or_default().to_owned(),
                c["sid"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

/// Waits (bounded by [`RECOVERY`]) for every notification, then counts what is missing and
/// which tokens of the ended sessions still work at `base`.
async fn tally(base: &str, r: &Receivers, rps: &[Rp], sessions: &[Sess]) -> Tally {
    let expected: HashSet<(String, String)> =
        sessions.iter().flat_map(|s| rps.iter().map(|rp| (rp.id.clone(), s.sid.clone()))).collect();
    let deadline = Instant::now() + RECOVERY;
    while !expected.is_subset(&notified(r, rps)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = notified(r, rps);
    let http = http();
    let mut live_tokens = 0;
    for s in sessions {
        for at in &s.access_tokens {
            // OIDC Core s5.3 + DC-4: a token of an ended session is refused.
            let resp = http.get(format!("{base}/userinfo")).bearer_auth(at).send().await.unwrap();
            if resp.status() == StatusCode::OK {
                live_tokens += 1;
            }
        }
    }
    Tally { expected: expected.len(), lost: expected.difference(&got).count(), live_tokens }
}

/// kill -9 at `step`, a second instance recovers.
async fn crash_at(redis_url: &str, r: &Receivers, step: &'static str, sessions: usize) -> Tally {
    let p = platform(redis_url);
    let mut a = Instance::start(&p, &[("TONGZHENG_TEST_CRASH_AT", step)]).await;
    let http = http();
    let tag = format!("{}-{}", step.replace('.', "_"), tongzheng::crypto::random_token(4));
    let rps = add_rps(&http, &a.base, r, &tag, 3).await;
    let sessions = new_sessions(&a.base, &rps, sessions).await;
    let answered = logout_all(&a.base, &sessions).await;
    if !a.exited_within(Duration::from_secs(3)).await {
        a.kill9().await;
    }
    let b = Instance::start(&p, &[]).await;
    retry_unanswered(&b.base, &sessions, &answered).await;
    let t = tally(&b.base, r, &rps, &sessions).await;
    if step == "outbox.sent" {
        // Issue 10: a delivery sent again after its instance died is counted in its status
        // (once the second instance has re-sent it, after the dead one's lease).
        let admin = admin_token(&http, &b.base).await;
        let deadline = Instant::now() + RECOVERY;
        loop {
            let mut duplicates = 0;
            for s in &sessions {
                let url = b.url("/admin/v1/logout/deliveries");
                let v: Value = http
                    .get(url)
                    .query(&[("sid", &s.sid)])
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                duplicates += v["deliveries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["duplicates"].as_u64().unwrap_or(0))
                    .sum::<u64>();
            }
            if duplicates >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the delivery cut off after sending is counted as a duplicate");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("kill -9 at {step}: {t:?}");
    t
}

/// Sends one command to a Redis on loopback (RESP inline), returning the first reply line.
fn redis_cmd(url: &str, cmd: &str) -> String {
    let port: u16 = url.trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[derive(Debug, Clone, Copy)]
enum RedisFault {
    /// Redis stops answering for 1.5 s (`CLIENT PAUSE 1500 ALL`).
    Stall,
    /// Every client connection is dropped (`CLIENT KILL TYPE normal`).
    Drop,
}

/// Right after `step`, Redis stalls or drops its connections; the same instance recovers.
async fn redis_fault_at(step: &'static str, fault: RedisFault, r: &Receivers) -> Tally {
    let redis = RedisServer::dedicated();
    let p = platform(&redis.url());
    let mut a = Instance::start(&p, &[("TONGZHENG_TEST_HOLD_AT", step), ("TONGZHENG_TEST_HOLD_MS", "300")]).await;
    let http = http();
    let tag = format!("{}-{fault:?}-{}", step.replace('.', "_"), tongzheng::crypto::random_token(4));
    let rps = add_rps(&http, &a.base, r, &tag, 3).await;
    let sessions = new_sessions(&a.base, &rps, 2).await;
    let sids: Vec<String> = sessions.iter().map(|s| s.sid.clone()).collect();
    let (base, h) = (a.base.clone(), http.clone());
    let calls = tokio::spawn(async move {
        let admin = admin_token(&h, &base).await;
        let mut out = Vec::new();
        for sid in sids {
            out.push(admin_logout(&h, &base, &admin, &sid).await);
        }
        out
    });
    if a.marker(&format!("holding at {step}"), Duration::from_secs(5)).await {
        let reply = match fault {
            RedisFault::Stall => redis_cmd(&redis.url(), "CLIENT PAUSE 1500 ALL"),
            RedisFault::Drop => redis_cmd(&redis.url(), "CLIENT KILL TYPE normal"),
        };
        assert!(!reply.starts_with('-'), "redis refused the fault: {reply}");
    }
    let answered = calls.await.unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await; // past any pause
    // DC-4: once a logout answered success, no token of the session works.
    let mut live_after_success = 0;
    for (s, ok) in sessions.iter().zip(&answered) {
        for at in s.access_tokens.iter().filter(|_| *ok) {
            if http.get(a.url("/userinfo")).bearer_auth(at).send().await.unwrap().status() == StatusCode::OK {
                live_after_success += 1;
            }
        }
    }
    retry_unanswered(&a.base, &sessions, &answered).await;
    let mut t = tally(&a.base, r, &rps, &sessions).await;
    t.live_tokens += live_after_success;
    println!("redis {fault:?} after {step}: {t:?}");
    t
}

/// Runs `cases` at most `width` at a time and adds up their tallies.
async fn run_all<F>(cases: Vec<F>, width: usize) -> Tally
where
    F: std::future::Future<Output = Tally> + Send + 'static,
{
    let mut total = Tally::default();
    let mut set = tokio::task::JoinSet::new();
    let mut cases = cases.into_iter();
    loop {
        while set.len() < width {
            let Some(c) = cases.next() else { break };
            set.spawn(c);
        }
        match set.join_next().await {
            Some(t) => total += t.unwrap(),
            None => return total,
        }
    }
}

// DC-4 + Back-Channel Logout s2.5: kill -9 at every step of the logout and delivery sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_at_every_step_loses_no_logout() {
    let r = Receivers::start().await;
    let url = crate::support::redis::shared().url();
    let cases: Vec<_> = LOGOUT_STEPS
        .iter()
        .chain(OUTBOX_STEPS)
        .map(|step| {
            let (r, url) = (r.clone(), url.clone());
            async move { crash_at(&url, &r, step, 3).await }
        })
        .collect();
    let total = run_all(cases, 3).await;
    println!("kill -9 at every step: {total:?}");
    assert_eq!((total.lost, total.live_tokens), (0, 0), "{total:?}");
}

// DC-4: 20 logouts at once, the instance killed a few milliseconds in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_twenty_concurrent_logouts_loses_none() {
    let r = Receivers::start().await;
    let url = crate::support::redis::shared().url();
    let mut total = Tally::default();
    for delay_ms in [3u64, 12, 25] {
        let p = platform(&url);
        let mut a = Instance::start(&p, &[]).await;
        let http = http();
        let rps = add_rps(&http, &a.base, &r, &format!("c20-{delay_ms}"), 3).await;
        let sessions = new_sessions(&a.base, &rps, 20).await;
        let base = a.base.clone();
        let admin = admin_token(&http, &base).await;
        let calls: Vec<_> = sessions
            .iter()
            .map(|s| {
                let (http, admin, base, sid) = (http.clone(), admin.clone(), base.clone(), s.sid.clone());
                tokio::spawn(async move { admin_logout(&http, &base, &admin, &sid).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        a.kill9().await;
        let mut answered = Vec::new();
        for c in calls {
            answered.push(c.await.unwrap_or(false));
        }
        let b = Instance::start(&p, &[]).await;
        retry_unanswered(&b.base, &sessions, &answered).await;
        let t = tally(&b.base, &r, &rps, &sessions).await;
        println!("20 logouts, kill -9 after {delay_ms} ms: {t:?}");
        total += t;
    }
    assert_eq!((total.lost, total.live_tokens), (0, 0), "{total:?}");
}

// DC-4: Redis stalls or drops every connection right after each step; the instance recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fault_after_every_step_loses_no_logout() {
    let r = Receivers::start().await;
    let cases: Vec<_> = LOGOUT_STEPS
        .iter()
        .chain(&OUTBOX_STEPS[..2])
        .flat_map(|step| [(step, RedisFault::Stall), (step, RedisFault::Drop)])
        .map(|(step, fault)| {
            let r = r.clone();
            async move { redis_fault_at(step, fault, &r).await }
        })
        .collect();
    let total = run_all(cases, 4).await;
    println!("redis faults: {total:?}");
    assert_eq!((total.lost, total.live_tokens), (0, 0), "{total:?}");
}

// Issue 10: a receiver that hangs never holds up another client's logout token: per-receiver
// concurrency keeps worker slots free (Back-Channel Logout s2.5 leaves timeouts to the OP).
async fn hung_receiver_holds_up_no_one(b: Backend) {
    let s = TestServer::start_with(b, "[logout]\nconcurrency = 8\nattempt_timeout_ms = 30000\nlease = 60\n").await;
    let (hung, fast) = (Receivers::start().await, Receivers::start().await);
    let http = http();
    let rps = vec![
        add_rp(&http, &s.base, &admin_token(&http, &s.base).await, "hung", &hung).await,
        add_rp(&http, &s.base, &admin_token(&http, &s.base).await, "fast", &fast).await,
    ];
    hung.set("hung", Mode::Hang);
    let sessions = new_sessions(&s.base, &rps, 12).await;
    let answered = logout_all(&s.base, &sessions).await;
    assert!(answered.iter().all(|ok| *ok), "{answered:?}");
    // Every logout reaches the fast receiver while the hung one still holds its first attempts
    // (30 s each, far longer than this bounded wait).
    fast.wait_for(10, "every logout at the fast receiver", |f| f.accepted("fast").len() == sessions.len()).await;
    assert!(hung.accepted("hung").is_empty());
}

per_backend!(hung_receiver_holds_up_no_one);
