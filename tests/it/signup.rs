//! One registration page (HL-5.2, GB-6.4a) with phone one-time codes (SH-8.2, SH-A.2),
//! `prompt=create` (OpenID Connect Prompt Create 1.0), account recovery and the account page,
//! on both stores. Codes are read from the dev sender's outbox file (`sms.dev_outbox`), what
//! a person would read on their phone; the HTTP gateway is a real local server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use tongzheng::identity::AssuranceLevel;
use tongzheng::identity::legal::{self, AgentRole};
use tongzheng::users::{self, Lookup};

use crate::support::flow::{self, Pkce, hidden, location, query};
use crate::support::server::{Backend, TestServer, WEB_CLIENT, WEB_REDIRECT};

/// The dev sender's outbox of one test server.
pub struct Outbox(pub PathBuf);

impl Outbox {
    /// A fresh outbox for the browser test.
    pub fn new_for_browser() -> Self {
        Self::new()
    }
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("tz-sms-{}.jsonl", tongzheng::crypto::random_token(9))))
    }
    /// The overlay that makes the dev sender write here.
    pub fn overlay(&self) -> String {
        format!("[sms]\nsender = \"dev\"\ndev_outbox = \"{}\"\n", self.0.display())
    }
    /// Every message sent so far.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
    /// The last code sent to `phone` (normalised).
    pub fn last_code(&self, phone: &str) -> String {
        let m = self.messages().into_iter().rev().find(|m| m["phone"] == phone).expect("a message to the phone");
        m["params"]["code"].as_str().unwrap().to_owned()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub async fn start(b: Backend, overlay: &str) -> (TestServer, Outbox) {
    let outbox = Outbox::new();
    let s = TestServer::start_with(b, &format!("{}{overlay}", outbox.overlay())).await;
    (s, outbox)
}

/// A browser: keeps cookies, follows no redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// GETs a page; returns its status and HTML.
pub async fn get(s: &TestServer, b: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let r = b.get(s.url(path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Posts a form; returns the response.
pub async fn post(s: &TestServer, b: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.post(s.url(path)).form(form).send().await.unwrap()
}

/// The CSRF token of the form at `path`.
pub async fn csrf(s: &TestServer, b: &reqwest::Client, path: &str) -> String {
    let (status, html) = get(s, b, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    hidden(&html, "csrf")
}

pub const PHONE: &str = "+8613800138000";
pub const PASSWORD: &str = "li-si-password-1";

/// Sends a registration code to `phone` from browser `b` and returns it.
pub async fn send_code(s: &TestServer, o: &Outbox, b: &reqwest::Client, token: &str, phone: &str) -> String {
    let r = post(s, b, "/signup", &[("csrf", token), ("action", "send_code"), ("phone", phone)]).await;
    let status = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    let normalised = format!("+86{}", phone.chars().filter(char::is_ascii_digit).collect::<String>());
    o.last_code(&normalised)
}

/// Registers a natural person in a fresh browser; returns the browser (signed in).
pub async fn register(s: &TestServer, o: &Outbox, phone: &str, username: &str) -> reqwest::Client {
    let b = browser();
    let token = csrf(s, &b, "/signup").await;
    let code = send_code(s, o, &b, &token, phone).await;
    let r = post(
        s,
        &b,
        "/signup",
        &[
            ("csrf", &token),
            ("action", "register"),
            ("phone", phone),
            ("code", &code),
            ("username", username),
            ("name", "李四"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/account?done=registered");
    b
}

fn person<'a>(token: &'a str, phone: &'a str, code: &'a str, username: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", token),
        ("action", "register"),
        ("phone", phone),
        ("code", code),
        ("username", username),
        ("name", "李四"),
        ("password", PASSWORD),
    ]
}

async fn audit_text(s: &TestServer) -> String {
    s.state.audit.flush().await;
    let mut text = String::new();
    for entry in std::fs::read_dir(&s.state.config.audit.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    text
}

/// A valid USCC (GB 32100) from 16 characters: the organization code's check character
/// (GB 11714) and the code's own are computed.
pub fn make_uscc(prefix16: &str) -> String {
    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let s: u32 = prefix16[8..16].chars().zip(W).map(|(c, w)| c.to_digit(36).unwrap() * w).sum();
    let oc = match 11 - s % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap(),
    };
    let body = format!("{prefix16}{oc}");
    let (mut sum, mut w) = (0u32, 1u32);
    for c in body.chars() {
        sum += u32::try_from(CHARS.find(c).unwrap()).unwrap() * w;
        w = w * 3 % 31;
    }
    format!("{body}{}", CHARS.chars().nth(((31 - sum % 31) % 31) as usize).unwrap())
}

// HL-5.2, GB-6.4a; OpenID Connect Prompt Create 1.0 s4.1 and s4.2: prompt=create (listed in
// discovery) sends the browser to the one registration page; a phone code, a username, a name
// and a password later the person is signed in and the original request continues to the
// application with a code, which redeems.
async fn prompt_create_registers_and_continues(b: Backend) {
    let (s, o) = start(b, "").await;
    let disc: Value =
        s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(disc["prompt_values_supported"].as_array().unwrap().contains(&"create".into()), "{disc}");
    let pkce = Pkce::new();
    let params = [
        ("response_type", "code"),
        ("client_id", WEB_CLIENT),
        ("redirect_uri", WEB_REDIRECT),
        ("scope", "openid profile"),
        ("state", "st-create"),
        ("nonce", "n-create"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "create"),
    ];
    let r = flow::authorize(&s, &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let at = location(&r);
    assert!(at.starts_with("/signup?req="), "{at}");
    let (status, html) = get(&s, &s.browser, &at).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("注册账号") && html.contains("演示网站"), "{html}");
    let (req, token) = (hidden(&html, "req"), hidden(&html, "csrf"));
    // The code button submits the same form: the values come back, the phone masked in the notice.
    let r = post(
        &s,
        &s.browser,
        "/signup",
        &[("req", &req), ("csrf", &token), ("action", "send_code"), ("phone", "138 0013 8000"), ("username", "li.si")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("138****8000") && html.contains("value=\"li.si\""), "{html}");
    let code = o.last_code(PHONE);
    assert_eq!(o.messages()[0]["template"], "signup");
    let mut form = person(&token, "138 0013 8000", &code, "li.si");
    form.push(("req", &req));
    let r = post(&s, &s.browser, "/signup", &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let back = location(&r);
    assert!(back.starts_with(WEB_REDIRECT), "back at the application: {back}");
    let q = query(&back);
    assert_eq!(q.get("state").map(String::as_str), Some("st-create"));
    let (status, tokens) = flow::redeem(&s, &q["code"], &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // The account: found through the phone's blind index, the phone sealed at rest, level
    // registered (a proven phone, HL-6.1).
    let u = users::by_lookup(&s.state.store, s.state.keys.data(), Lookup::Phone, PHONE).await.unwrap().unwrap();
    assert_eq!((u.username.as_str(), u.name.as_str()), ("li.si", "李四"));
    assert_eq!(u.level(), AssuranceLevel::Registered);
    let raw = s.state.store.get(&tongzheng::store::keys::user(&u.id)).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("13800138000"), "SH-8.2: no phone in clear at rest");
    let claims = flow::introspect_as_admin(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], u.id.as_str());
    // Signed in: the next request (no prompt) gets a code at once.
    let r = flow::authorize(&s, &params[..8]).await;
    assert!(location(&r).starts_with(WEB_REDIRECT), "{}", location(&r));
    // prompt=create with none is refused at the redirect URI.
    let mut bad = params.to_vec();
    bad.retain(|(k, _)| *k != "prompt");
    bad.push(("prompt", "none create"));
    let q = query(&location(&flow::authorize(&s, &bad).await));
    assert_eq!(q.get("error").map(String::as_str), Some("invalid_request"));
    // Audited, with no phone and no code in the record (SH-8.2).
    let audit = audit_text(&s).await;
    assert!(audit.contains("\"kind\":\"account\"") && audit.contains("\"action\":\"signup\""), "{audit}");
    assert!(!audit.contains("13800138000") && !audit.contains(&format!("\"{code}\"")), "{audit}");
}

// SH-8.2, GB-6.4a: a used code cannot be replayed, an expired one is refused, and guessing
// voids the code after max_tries wrong entries; each refusal is a clear 4xx on the form.
async fn replayed_expired_and_guessed_codes(b: Backend) {
    let (s, o) = start(b, "").await;
    let br = browser();
    let token = csrf(&s, &br, "/signup").await;
    let code = send_code(&s, &o, &br, &token, "13800138000").await;
    let r = post(&s, &br, "/signup", &person(&token, "13800138000", &code, "first.one")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Replayed, for another account.
    let other = browser();
    let t2 = csrf(&s, &other, "/signup").await;
    let r = post(&s, &other, "/signup", &person(&t2, "13800138000", &code, "second.one")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("验证码无效或已使用"));
    // Expired.
    let code = send_code(&s, &o, &other, &t2, "13900139000").await;
    s.clock.advance(301);
    let r = post(&s, &other, "/signup", &person(&t2, "13900139000", &code, "late.one")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("验证码已过期"));
    // Guessing: five wrong entries, the attempts left counting down, then the code is void.
    let code = send_code(&s, &o, &other, &t2, "13700137000").await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for left in (0..5).rev() {
        let r = post(&s, &other, "/signup", &person(&t2, "13700137000", wrong, "guess.one")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let html = r.text().await.unwrap();
        assert!(html.contains(&format!("验证码错误，还可尝试 {left} 次")), "{left}: {html}");
    }
    let r = post(&s, &other, "/signup", &person(&t2, "13700137000", &code, "guess.one")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the right code after the guesses is void");
    assert!(users::by_username(&s.state.store, "guess.one").await.unwrap().is_none());
    assert!(users::by_username(&s.state.store, "late.one").await.unwrap().is_none());
    assert!(users::by_username(&s.state.store, "second.one").await.unwrap().is_none());
}

// SH-8.2, GB-6.4a: codes are paced per phone (Retry-After) and counted per phone and per
// client address in the store; refusals are 429 with the wait, nothing is sent.
async fn codes_are_rate_limited(b: Backend) {
    let (s, o) = start(b, "[otp]\nper_phone = 2\nper_ip = 5\n").await;
    // The counts slide (the previous hour's bucket weighs in), so this holds at any time of
    // the hour; with fixed hourly buckets it failed when run in the last two minutes of one.
    let br = browser();
    let token = csrf(&s, &br, "/signup").await;
    let send = |phone: &'static str| {
        let (s, br, token) = (&s, &br, token.clone());
        async move { post(s, br, "/signup", &[("csrf", &token), ("action", "send_code"), ("phone", phone)]).await }
    };
    assert_eq!(send("13800138000").await.status(), StatusCode::OK);
    let r = send("13800138000").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "60");
    assert!(r.text().await.unwrap().contains("60 秒后再试"));
    s.clock.advance(60);
    assert_eq!(send("13800138000").await.status(), StatusCode::OK);
    s.clock.advance(60);
    let r = send("13800138000").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "per phone");
    assert!(r.text().await.unwrap().contains("过于频繁"));
    assert_eq!(send("13900139000").await.status(), StatusCode::OK);
    let r = send("13700137000").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "per address");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(o.messages().len(), 3, "refused asks send nothing");
    let audit = audit_text(&s).await;
    assert!(audit.contains("\"kind\":\"rate_limited\"") && audit.contains("\"realm\":\"otp\""), "{audit}");
}

// HL-5.2, SH-8.2: one phone, one account; usernames unique; bad input of every kind is a
// clear 4xx (never a 5xx), and a taken username does not cost the code.
async fn duplicates_and_bad_input(b: Backend) {
    let (s, o) = start(b, "").await;
    register(&s, &o, "13800138000", "dup.user").await;
    s.clock.advance(60);
    let br = browser();
    let token = csrf(&s, &br, "/signup").await;
    // The phone's owner proves it, and learns it is registered.
    let code = send_code(&s, &o, &br, &token, "13800138000").await;
    let r = post(&s, &br, "/signup", &person(&token, "13800138000", &code, "someone.else")).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("该手机号已注册"));
    // A taken username is refused before the code is used: the same code then works.
    let code = send_code(&s, &o, &br, &token, "13900139000").await;
    let r = post(&s, &br, "/signup", &person(&token, "13900139000", &code, "DUP.user")).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("用户名已被使用"));
    let r = post(&s, &br, "/signup", &person(&token, "13900139000", &code, "fresh.user")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let long = "长".repeat(200);
    let huge = "9".repeat(5000);
    let cases: Vec<(&str, &str, StatusCode)> = vec![
        ("phone", "12345", StatusCode::BAD_REQUEST),
        ("phone", "+1 415 555 0100", StatusCode::BAD_REQUEST),
        ("phone", &huge, StatusCode::BAD_REQUEST),
        ("username", "bad name", StatusCode::BAD_REQUEST),
        ("username", &long, StatusCode::BAD_REQUEST),
        ("name", "", StatusCode::BAD_REQUEST),
        ("name", &long, StatusCode::BAD_REQUEST),
        ("name", "a\u{7}b", StatusCode::BAD_REQUEST),
        ("password", "short", StatusCode::BAD_REQUEST),
        ("code", "", StatusCode::BAD_REQUEST),
        ("code", "12ab56", StatusCode::BAD_REQUEST),
        ("code", &huge, StatusCode::BAD_REQUEST),
        ("csrf", "forged", StatusCode::FORBIDDEN),
    ];
    for (name, value, want) in cases {
        let mut form: HashMap<&str, &str> = person(&token, "13700137000", "123456", "valid.name").into_iter().collect();
        form.insert(name, value);
        let r = br.post(s.url("/signup")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), want, "{name}={}", value.chars().take(20).collect::<String>());
    }
    // Organizations: a wrong check character, an unknown kind, a missing representative.
    let uscc = make_uscc("9111010810001234");
    let mut wrong = uscc.clone();
    wrong.replace_range(17..18, if uscc.ends_with('0') { "1" } else { "0" });
    for (name, value) in
        [("uscc", wrong.as_str()), ("uscc", "not-a-code"), ("org_kind", "spaceship"), ("legal_representative", "")]
    {
        let mut form: HashMap<&str, &str> = person(&token, "13700137000", "123456", "org.person").into_iter().collect();
        form.extend([("kind", "legal"), ("org_name", "示例公司"), ("uscc", uscc.as_str()), ("org_kind", "enterprise")]);
        form.insert("legal_representative", "赵六");
        form.insert(name, value);
        let r = br.post(s.url("/signup")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name}={value}");
    }
    // Without the CSRF token at all; a JSON body; an unknown pending request; repeated fields.
    let r = br.post(s.url("/signup")).form(&[("action", "send_code"), ("phone", "13700137000")]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = br.post(s.url("/signup")).json(&serde_json::json!({"phone": "1"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, _) = get(&s, &br, &format!("/signup?req={}", "x".repeat(3000))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let r = br
        .post(s.url("/signup"))
        .body("csrf=a&csrf=b")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, _) = get(&s, &br, "/password/reset?req=gone").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(users::by_username(&s.state.store, "valid.name").await.unwrap().is_none());
}

// HL-5.1, HL-5.2: a legal person registers on the same page; the registering person becomes
// its first agent with role admin; a signed-in person registers another with company data
// only; a USCC registers once (GB 32100 check characters verified).
async fn legal_person_registration(b: Backend) {
    let (s, o) = start(b, "").await;
    let br = browser();
    let (status, html) = get(&s, &br, "/signup?kind=legal").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("统一社会信用代码") && html.contains("单位类型") && html.contains("name=\"phone\""),
        "{html}"
    );
    let token = hidden(&html, "csrf");
    let code = send_code(&s, &o, &br, &token, "13800138000").await;
    let uscc = make_uscc("9111010810001234");
    let mut form = person(&token, "13800138000", &code, "org.admin");
    let lower = uscc.to_lowercase();
    form.extend([
        ("kind", "legal"),
        ("org_name", "示例科技有限公司"),
        ("uscc", lower.as_str()),
        ("org_kind", "enterprise"),
        ("legal_representative", "赵六"),
    ]);
    let r = post(&s, &br, "/signup", &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let lp = legal::by_uscc(&s.state.store, &uscc).await.unwrap().expect("registered, upper-cased");
    let u = users::by_username(&s.state.store, "org.admin").await.unwrap().unwrap();
    assert_eq!((lp.name.as_str(), lp.legal_representative.as_str()), ("示例科技有限公司", "赵六"));
    assert_eq!(lp.agents.len(), 1);
    assert_eq!((lp.agents[0].user_id.as_str(), lp.agents[0].role), (u.id.as_str(), AgentRole::Admin));
    let (status, page) = get(&s, &br, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("示例科技有限公司") && page.contains("管理员"), "{page}");
    // Signed in: the organization form asks for the company only.
    let (_, html) = get(&s, &br, "/signup?kind=legal").await;
    assert!(!html.contains("name=\"phone\"") && html.contains("李四"), "{html}");
    let second = make_uscc("91310115MA1K4ABC");
    let form = [
        ("csrf", token.as_str()),
        ("action", "register"),
        ("kind", "legal"),
        ("org_name", "第二家公司"),
        ("uscc", second.as_str()),
        ("org_kind", "social_organization"),
        ("legal_representative", "钱七"),
    ];
    let r = post(&s, &br, "/signup", &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let acting = legal::acting_for(&s.state.store, &u.id).await.unwrap();
    assert_eq!(acting.len(), 2);
    // The same code twice: 409.
    let r = post(&s, &br, "/signup", &form).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("已注册"));
    // Without a session, company data alone cannot register.
    let anon = browser();
    let t = csrf(&s, &anon, "/signup?kind=legal").await;
    let third = make_uscc("91440300MA5FXXXX");
    let r = post(
        &s,
        &anon,
        "/signup",
        &[
            ("csrf", &t),
            ("action", "register"),
            ("kind", "legal"),
            ("org_name", "x"),
            ("uscc", &third),
            ("org_kind", "other"),
            ("legal_representative", "y"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "person fields are required");
}

// SH-8.2, GB-6.4d, DC-4: a reset by phone code replaces the password, moves the generation
// (tokens die), ends every session through the logout broadcast and is audited; the code page
// never tells whether a number is registered.
async fn password_reset_by_phone(b: Backend) {
    let (s, o) = start(b, "").await;
    let first = register(&s, &o, "13800138000", "reset.me").await;
    let u = users::by_username(&s.state.store, "reset.me").await.unwrap().unwrap();
    let anon = browser();
    let token = csrf(&s, &anon, "/password/reset").await;
    let r = post(&s, &anon, "/password/reset", &[("csrf", &token), ("action", "send_code"), ("phone", "13800138000")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let known = r.text().await.unwrap();
    // The reset SMS goes out in the background (the answer takes as long with or without an
    // account): wait for it.
    for _ in 0..200 {
        if o.messages().iter().any(|m| m["template"] == "reset") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let code = o.last_code(PHONE);
    assert_eq!(o.messages().last().unwrap()["template"], "reset");
    let before = o.messages().len();
    let r = post(&s, &anon, "/password/reset", &[("csrf", &token), ("action", "send_code"), ("phone", "13900139000")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let unknown = r.text().await.unwrap();
    assert_eq!(o.messages().len(), before, "nothing is sent to a number without an account");
    let same = |html: &str, masked: &str, raw: &str| html.replace(masked, "X").replace(raw, "X");
    assert_eq!(
        same(&known, "138****8000", "13800138000"),
        same(&unknown, "139****9000", "13900139000"),
        "the same answer"
    );
    // A wrong code, then the right one.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let reset = |c: String| {
        let (s, anon, token) = (&s, &anon, token.clone());
        async move {
            post(
                s,
                anon,
                "/password/reset",
                &[
                    ("csrf", &token),
                    ("action", "reset"),
                    ("phone", "13800138000"),
                    ("code", &c),
                    ("password", "brand-new-password"),
                ],
            )
            .await
        }
    };
    assert_eq!(reset(wrong.into()).await.status(), StatusCode::BAD_REQUEST);
    let r = reset(code.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("密码已重置"));
    assert_eq!(reset(code).await.status(), StatusCode::BAD_REQUEST, "replayed");
    // Every session ended, the generation moved on.
    let (status, _) = get(&s, &first, "/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the old session is gone: a login starts");
    let after = users::get(&s.state.store, &u.id).await.unwrap().unwrap();
    assert_eq!(after.generation, u.generation + 1);
    assert!(tongzheng::session::of_user(&s.state.store, &u.id).await.unwrap().is_empty());
    // The new password signs in.
    let r = flow::authorize(
        &s,
        &[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
        ],
    )
    .await;
    let r = flow::submit_login(&s, &location(&r), "reset.me", "brand-new-password").await;
    assert!(location(&r).starts_with(WEB_REDIRECT), "{}", location(&r));
    let audit = audit_text(&s).await;
    assert!(audit.contains("\"action\":\"password_reset\""), "{audit}");
}

// SH-8.2: the account page shows the phone and ID number masked, lists the sessions (ending
// one ends it everywhere), the consents (revocable) and changes the password.
async fn account_page(b: Backend) {
    let (s, o) = start(b, "").await;
    // Without a session, a login for the account page starts (tests/it/account_consent.rs).
    let (status, _) = get(&s, &browser(), "/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let one = register(&s, &o, "13800138000", "acct.user").await;
    let u = users::by_username(&s.state.store, "acct.user").await.unwrap().unwrap();
    let mut with_id = u.clone();
    with_id.set_id_number(s.state.keys.data(), Some("110101199003071234"));
    users::update(&s.state.store, s.state.keys.data(), &u, &mut with_id).await.unwrap();
    // A second browser signs in with the password.
    let two = browser();
    let r = two
        .get(s.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    let login = location(&r);
    let (_, html) = get(&s, &two, &login).await;
    let r = post(
        &s,
        &two,
        "/login",
        &[
            ("req", &hidden(&html, "req")),
            ("csrf", &hidden(&html, "csrf")),
            ("username", "acct.user"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert!(location(&r).starts_with(WEB_REDIRECT));
    tongzheng::authorize::remember_consent(
        &s.state.store,
        &u.id,
        WEB_CLIENT,
        &["openid".into(), "phone".into()],
        s.clock.now(),
    )
    .await
    .unwrap();

    let (status, html) = get(&s, &one, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("138****8000") && !html.contains("13800138000"), "{html}");
    assert!(html.contains("110***********1234") && !html.contains("110101199003071234"), "{html}");
    assert!(html.contains("注册用户") && html.contains("/verify?next=/account"), "{html}");
    assert_eq!(html.matches("结束此会话").count(), 2, "{html}");
    assert!(html.contains("演示网站") && html.contains("撤销授权"), "{html}");
    let token = hidden(&html, "csrf");
    // Revoke the consent.
    let r = post(&s, &one, "/account/consents/revoke", &[("csrf", &token), ("client_id", WEB_CLIENT)]).await;
    assert_eq!((r.status(), location(&r).as_str()), (StatusCode::SEE_OTHER, "/account?done=consent_revoked"));
    let key = tongzheng::store::keys::consent(&u.id, WEB_CLIENT);
    assert!(s.state.store.get(&key).await.unwrap().is_none());
    // End the other browser's session.
    let other = html.split("<li>").find(|li| li.contains("name=\"sid\"") && !li.contains("当前浏览器")).unwrap();
    let sid = hidden(other, "sid");
    let r = post(&s, &one, "/account/sessions/end", &[("csrf", &token), ("sid", &sid)]).await;
    assert_eq!(location(&r), "/account?done=session_ended");
    assert_eq!(get(&s, &two, "/account").await.0, StatusCode::SEE_OTHER, "signed out: a login starts");
    assert_eq!(get(&s, &one, "/account").await.0, StatusCode::OK);
    // Someone else's session id is not theirs to end; a forged form is refused.
    let r = post(&s, &one, "/account/sessions/end", &[("csrf", "forged"), ("sid", &sid)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Change the password: the wrong current one is refused, the right one signs this
    // browser in again under the new generation.
    let r = post(
        &s,
        &one,
        "/account/password",
        &[("csrf", &token), ("current", "nope-nope-nope"), ("password", "another-password-2")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("当前密码不正确"));
    let r = post(
        &s,
        &one,
        "/account/password",
        &[("csrf", &token), ("current", PASSWORD), ("password", "another-password-2")],
    )
    .await;
    assert_eq!(location(&r), "/account?done=password_changed");
    let (status, html) = get(&s, &one, "/account?done=password_changed").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("密码已修改") && html.matches("结束此会话").count() == 1, "{html}");
    let after = users::get(&s.state.store, &u.id).await.unwrap().unwrap();
    assert_eq!(after.generation, u.generation + 1);
    // English on request.
    let r = one.get(s.url("/account")).header("accept-language", "en").send().await.unwrap();
    assert!(r.text().await.unwrap().contains("My account"));
    let audit = audit_text(&s).await;
    for action in ["session_ended", "consent_revoked", "password_changed"] {
        assert!(audit.contains(&format!("\"action\":\"{action}\"")), "{action}: {audit}");
    }
}

/// Asks for a registration code to `phone`.
async fn ask_code(s: &TestServer, br: &reqwest::Client, token: &str, phone: &str) -> reqwest::Response {
    post(s, br, "/signup", &[("csrf", token), ("action", "send_code"), ("phone", phone)]).await
}

/// A real local HTTP server standing in for the SMS gateway: records each request, answers
/// as told (`ok`, `fail` = 500, `refuse` = code 1).
#[derive(Clone, Default)]
struct Gateway {
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    mode: Arc<Mutex<&'static str>>,
}

async fn gateway_send(
    axum::extract::State(g): axum::extract::State<Gateway>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    g.seen.lock().unwrap().push((headers, body));
    match *g.mode.lock().unwrap() {
        "fail" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        "refuse" => axum::Json(serde_json::json!({"code": 1, "msg": "template not approved"})).into_response(),
        _ => axum::Json(serde_json::json!({"code": 0, "msg": "ok", "message_id": "m1"})).into_response(),
    }
}

async fn start_gateway() -> (String, Gateway) {
    let g = Gateway { mode: Arc::new(Mutex::new("ok")), ..Gateway::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms/send", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/sms/send", axum::routing::post(gateway_send)).with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, g)
}

// SH-A.2: the HTTP gateway sender posts template id + phone + params with its bearer token;
// a failing or refusing gateway is a 503 on the page and leaves no pause, so the person can
// ask again at once; the code sent works.
async fn http_gateway_sender(b: Backend) {
    let (url, g) = start_gateway().await;
    let overlay = format!(
        "[sms]\nsender = \"http\"\ngateway_url = \"{url}\"\ngateway_token = \"gw-token-0123456789\"\n\
         template_signup = \"SMS_100\"\ntemplate_reset = \"SMS_200\"\nsign_name = \"政务服务\"\n"
    );
    let s = TestServer::start_with(b, &overlay).await;
    let br = browser();
    let token = csrf(&s, &br, "/signup").await;
    let ask = || ask_code(&s, &br, &token, "13800138000");
    *g.mode.lock().unwrap() = "fail";
    let r = ask().await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("短信发送失败"));
    *g.mode.lock().unwrap() = "refuse";
    assert_eq!(ask().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    *g.mode.lock().unwrap() = "ok";
    assert_eq!(ask().await.status(), StatusCode::OK, "no pause after failed sends");
    let (headers, body) = g.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(headers["authorization"], "Bearer gw-token-0123456789");
    assert_eq!(body["template_id"], "SMS_100");
    assert_eq!(body["phone"], PHONE);
    assert_eq!(body["sign_name"], "政务服务");
    assert_eq!(body["params"]["minutes"], "5");
    let code = body["params"]["code"].as_str().unwrap().to_owned();
    assert!(code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit()));
    let r = post(&s, &br, "/signup", &person(&token, "13800138000", &code, "gw.user")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(g.seen.lock().unwrap().len(), 3);
}

// The outbound rules hold for the gateway (OWASP SSRF): a link-local address is refused at
// connect time, quickly, as an unavailable SMS service; an "off" sender says so plainly.
async fn gateway_obeys_outbound_rules(b: Backend) {
    let overlay = "[sms]\nsender = \"http\"\ngateway_url = \"http://169.254.169.254/send\"\ntemplate_signup = \"a\"\ntemplate_reset = \"b\"\n";
    let s = TestServer::start_with(b, overlay).await;
    let br = browser();
    let token = csrf(&s, &br, "/signup").await;
    let r = post(&s, &br, "/signup", &[("csrf", &token), ("action", "send_code"), ("phone", "13800138000")]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let s = TestServer::start_with(b, "[sms]\nsender = \"off\"\n").await;
    let token = csrf(&s, &br, "/signup").await;
    let r = post(&s, &br, "/signup", &[("csrf", &token), ("action", "send_code"), ("phone", "13800138000")]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("短信服务未开通"));
}

per_backend!(
    prompt_create_registers_and_continues,
    replayed_expired_and_guessed_codes,
    codes_are_rate_limited,
    duplicates_and_bad_input,
    legal_person_registration,
    password_reset_by_phone,
    account_page,
    http_gateway_sender,
    gateway_obeys_outbound_rules,
);

// GB-6.4a: a person registered on the page is pushed to the upstream platform through the
// registration-sync queue, as an admin-created one is.
#[tokio::test]
async fn registration_is_synced_upstream() {
    let province = TestServer::start_platform(Backend::Memory, "127.0.0.8", "").await;
    let outbox = Outbox::new();
    let city = TestServer::start_platform(Backend::Memory, "127.0.0.9", &outbox.overlay()).await;
    crate::federation::trust(&province, "province", &city, "city").await;
    let ca = crate::federation::admin(&city).await;
    let r = city
        .http
        .put(city.url("/admin/v1/trusts/province"))
        .bearer_auth(&ca)
        .json(&serde_json::json!({"role": "upstream", "issuer": province.base, "name": "province",
            "client_id": "city-platform", "create_accounts": true, "sync_registrations": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    register(&city, &outbox, "13800138000", "synced.user").await;
    // The job falls due moments after the registration.
    city.clock.advance(5);
    let pa = crate::federation::admin(&province).await;
    for _ in 0..200 {
        let users: Value = province
            .http
            .get(province.url("/admin/v1/users"))
            .bearer_auth(&pa)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(u) = users["users"].as_array().unwrap().iter().find(|u| u["username"] == "synced.user") {
            assert_eq!(u["name"], "李四");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the registration did not reach the upstream platform");
}
