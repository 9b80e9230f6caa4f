//! Online guessing (RFC 6749 s10.10, NIST SP 800-63B s5.2.2): wrong passwords and client
//! secrets are throttled per client address first, then per account (growing delays, then a
//! temporary lockout that ends on its own or by an admin unlock); the login page says how many
//! attempts are left; and unauthenticated input reaches the 180-day audit log only bounded.
//! The server runs behind a "proxy" (`behind_tls_proxy`), so each simulated person sends its
//! own address in `X-Forwarded-For`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::flow;
use crate::support::server::*;

per_backend!(
    wrong_passwords_lock_until_the_lockout_ends,
    attempts_left_in_both_languages_for_any_username,
    per_address_limit_comes_before_account_lockout,
    one_address_cannot_lock_the_user_out_elsewhere,
    admin_unlock_works_and_is_audited,
    client_secret_guessing_is_throttled,
    client_guessing_counted_by_one_instance_holds_at_another,
    anonymous_input_is_bounded_in_the_audit_log,
);

/// Failures before the lockout with the default `[guard]` settings.
const LOCK_AFTER: usize = 10;
/// Failures one address may make across all accounts before it is held.
const IP_MAX: usize = 20;

async fn server(b: Backend) -> TestServer {
    TestServer::start_with(b, "[server]\nbehind_tls_proxy = true\n").await
}

/// What the login form answered.
struct Answer {
    status: StatusCode,
    retry_after: Option<i64>,
    body: String,
}

/// One browser at one address.
struct Person {
    browser: reqwest::Client,
    ip: &'static str,
    lang: &'static str,
}

impl Person {
    fn new(ip: &'static str) -> Self {
        Self::speaking(ip, "zh-CN")
    }

    fn speaking(ip: &'static str, lang: &'static str) -> Self {
        let browser =
            reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { browser, ip, lang }
    }

    /// Starts a login at the web client; returns the login page's address.
    async fn login_url(&self, s: &TestServer) -> String {
        let pkce = flow::Pkce::new();
        let params = [
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let r = self.browser.get(s.url("/authorize")).query(&params).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let loc = flow::location(&r);
        assert!(loc.starts_with("/login"), "{loc}");
        loc
    }

    /// Posts the login form once.
    async fn attempt(&self, s: &TestServer, login_url: &str, user: &str, password: &str) -> Answer {
        let page = self.browser.get(s.url(login_url)).header("accept-language", self.lang).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let form = [
            ("req", flow::hidden(&html, "req")),
            ("csrf", flow::hidden(&html, "csrf")),
            ("username", user.to_owned()),
            ("password", password.to_owned()),
        ];
        let r = self
            .browser
            .post(s.url("/login"))
            .header("x-forwarded-for", format!("203.0.113.250, {}", self.ip))
            .header("accept-language", self.lang)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let retry_after = retry_after(&r);
        Answer { status, retry_after, body: r.text().await.unwrap() }
    }

    /// `n` wrong passwords for `user`, waiting out (on the manual clock) the growing delays in
    /// between; returns the last answer.
    async fn fail(&self, s: &TestServer, login_url: &str, user: &str, n: usize) -> Answer {
        let mut last = None;
        for i in 1..=n {
            let a = self.attempt(s, login_url, user, "wrong-password").await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "failure {i}: {}", a.body);
            if i < n
                && let Some(secs) = a.retry_after
            {
                s.clock.advance(secs);
            }
            last = Some(a);
        }
        last.unwrap()
    }
}

fn retry_after(r: &reqwest::Response) -> Option<i64> {
    r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

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

async fn events(s: &TestServer, query: &str) -> Vec<Value> {
    s.state.audit.flush().await;
    let auditor = token_for(s, AUDITOR_CLIENT, AUDITOR_SECRET).await;
    let r = s.http.get(s.url(&format!("/admin/v1/audit/events?{query}"))).bearer_auth(auditor).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "query {query}");
    r.json::<Value>().await.unwrap()["events"].as_array().unwrap().clone()
}

async fn demo_user_id(s: &TestServer, admin: &str) -> String {
    let r = s.http.get(s.url("/admin/v1/users")).bearer_auth(admin).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    let users = v["users"].as_array().unwrap();
    users.iter().find(|u| u["username"] == USER).unwrap()["id"].as_str().unwrap().to_owned()
}

// RFC 6749 s10.10, NIST SP 800-63B s5.2.2: after LOCK_AFTER wrong passwords even the right one
// is refused (429, Retry-After) until the lockout ends, on its own, on the injected clock.
async fn wrong_passwords_lock_until_the_lockout_ends(b: Backend) {
    let s = server(b).await;
    let p = Person::new("198.51.100.1");
    let url = p.login_url(&s).await;
    for i in 1..LOCK_AFTER {
        let a = p.fail(&s, &url, USER, 1).await;
        assert!(a.body.contains(&format!("还可尝试 {} 次", LOCK_AFTER - i)), "failure {i}: {}", a.body);
        if let Some(secs) = a.retry_after {
            s.clock.advance(secs);
        }
    }
    let last = p.fail(&s, &url, USER, 1).await;
    let lockout = last.retry_after.expect("the failure that locks says for how long");
    assert!(lockout > 60, "{lockout}");
    let a = p.attempt(&s, &url, USER, PASSWORD).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "the right password while locked: {}", a.body);
    let wait = a.retry_after.expect("Retry-After");
    assert!(a.body.contains("后再试"), "{}", a.body);
    // Still locked one second before the end.
    s.clock.advance(wait - 1);
    let url = p.login_url(&s).await;
    assert_eq!(p.attempt(&s, &url, USER, PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    s.clock.advance(1);
    let a = p.attempt(&s, &url, USER, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "the lockout ended on its own: {}", a.body);
}

// NIST SP 800-63B s5.2.2: the page tells how many attempts are left, in zh-CN and en; an
// unknown username is counted exactly like a known one (no account enumeration).
async fn attempts_left_in_both_languages_for_any_username(b: Backend) {
    let s = server(b).await;
    let zh = Person::new("198.51.100.2");
    let url = zh.login_url(&s).await;
    let a = zh.attempt(&s, &url, USER, "wrong-password").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("用户名或密码错误") && a.body.contains("还可尝试 9 次"), "{}", a.body);
    let en = Person::speaking("198.51.100.3", "en");
    let url = en.login_url(&s).await;
    for (user, left) in [("nobody-here", 9), ("nobody-here", 8), ("Nobody-Here", 7)] {
        let a = en.attempt(&s, &url, user, "wrong-password").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(a.body.contains(&format!("{left} attempts left")), "{user}: {}", a.body);
    }
    let unknown = en.fail(&s, &url, "nobody-here", LOCK_AFTER - 3).await;
    let known = zh.fail(&s, &zh.login_url(&s).await, USER, LOCK_AFTER - 1).await;
    assert_eq!(unknown.retry_after, known.retry_after, "the same lockout for unknown and known names");
    let a = en.attempt(&s, &url, "nobody-here", "whatever").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.body.contains("Try again in"), "{}", a.body);
}

// RFC 6749 s10.10: one address guessing across many accounts is held after IP_MAX failures,
// before any account reaches its lockout; other addresses are unaffected.
async fn per_address_limit_comes_before_account_lockout(b: Backend) {
    let s = server(b).await;
    let bot = Person::new("198.51.100.4");
    let url = bot.login_url(&s).await;
    for i in 0..IP_MAX {
        let a = bot.attempt(&s, &url, &format!("user-{i}"), "123456").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let a = bot.attempt(&s, &url, USER, PASSWORD).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "the address is held: {}", a.body);
    assert!(a.retry_after.is_some());
    let user = Person::new("198.51.100.5");
    let a = user.attempt(&s, &user.login_url(&s).await, USER, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "another address logs in");
}

// NIST SP 800-63B s5.2.2: an attacker at one address locks only that address out of the
// account (the user elsewhere logs in at once), and that lockout ends on its own.
async fn one_address_cannot_lock_the_user_out_elsewhere(b: Backend) {
    let s = server(b).await;
    let attacker = Person::new("198.51.100.6");
    let url = attacker.login_url(&s).await;
    attacker.fail(&s, &url, USER, LOCK_AFTER).await;
    let held = attacker.attempt(&s, &url, USER, PASSWORD).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS);
    let user = Person::new("198.51.100.7");
    let a = user.attempt(&s, &user.login_url(&s).await, USER, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "the user at another address is not locked out: {}", a.body);
    // The lockout at the attacker's address (maybe the user's own NAT) ends by itself.
    s.clock.advance(held.retry_after.expect("Retry-After"));
    let a = attacker.attempt(&s, &attacker.login_url(&s).await, USER, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
}

// NIST SP 800-63B s5.2.2, AY-8.5.2.1: an admin unlocks an account; failures, the throttled
// attempt, the lockout and the unlock are all in the audit log.
async fn admin_unlock_works_and_is_audited(b: Backend) {
    let s = server(b).await;
    let admin = flow::admin_token(&s).await;
    let id = demo_user_id(&s, &admin).await;
    let p = Person::new("198.51.100.8");
    let url = p.login_url(&s).await;
    p.fail(&s, &url, USER, LOCK_AFTER).await;
    assert_eq!(p.attempt(&s, &url, USER, PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    let r = s.http.post(s.url(&format!("/admin/v1/users/{id}/unlock"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.http.post(s.url("/admin/v1/users/no-such-user/unlock")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let a = p.attempt(&s, &url, USER, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "unlocked: {}", a.body);

    let failures = events(&s, &format!("kind=login_failure&subject={id}&limit=100")).await;
    assert_eq!(failures.len(), LOCK_AFTER);
    assert!(failures.iter().any(|e| e["detail"]["remaining"] == 0), "{failures:?}");
    let locked = events(&s, &format!("kind=lockout_started&subject={id}")).await;
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0]["ip"], "198.51.100.8");
    let throttled = events(&s, &format!("kind=credential_throttled&subject={id}")).await;
    assert!(!throttled.is_empty());
    assert_eq!(throttled[0]["outcome"], "denied");
    let unlocked = events(&s, &format!("kind=account_unlocked&subject={id}")).await;
    assert_eq!(unlocked.len(), 1, "{unlocked:?}");
    assert_eq!(unlocked[0]["actor"], format!("client:{ADMIN_CLIENT}"));
    assert_eq!(unlocked[0]["detail"]["route"], "/admin/v1/users/{id}/unlock");
    // The route is in the OpenAPI document.
    let doc: Value = s.http.get(s.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/admin/v1/users/{id}/unlock"]["post"].is_object(), "unlock not in OpenAPI");
}

async fn token_call(s: &TestServer, ip: &str, path: &str, secret: &str) -> reqwest::Response {
    let form: &[(&str, &str)] =
        if path == "/token" { &[("grant_type", "client_credentials")] } else { &[("token", "whatever")] };
    s.http
        .post(s.url(path))
        .header("x-forwarded-for", ip)
        .basic_auth(WEB_CLIENT, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Wrong client secrets from `ip` until the client's lockout there, waiting out each growing
/// delay on `s`'s clock.
async fn guess_to_lockout(s: &TestServer, ip: &str) {
    let mut failures = 0;
    while failures < LOCK_AFTER {
        let r = token_call(s, ip, "/token", "guessed-secret").await;
        match r.status() {
            StatusCode::UNAUTHORIZED => failures += 1,
            StatusCode::TOO_MANY_REQUESTS => s.clock.advance(retry_after(&r).expect("Retry-After")),
            other => panic!("unexpected {other}"),
        }
    }
}

// RFC 6749 s10.10, s5.2: client-secret guessing at the token endpoint is throttled like
// password guessing: the guessing address is refused even with the right secret (429,
// Retry-After) at /token, /introspect and /revoke; the client at its own address is not; the
// refusal ends on its own.
async fn client_secret_guessing_is_throttled(b: Backend) {
    let s = server(b).await;
    let attacker = "198.51.100.9";
    guess_to_lockout(&s, attacker).await;
    for path in ["/token", "/introspect", "/revoke"] {
        let r = token_call(&s, attacker, path, WEB_SECRET).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(retry_after(&r).is_some(), "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "temporarily_unavailable", "{path}: {v}");
    }
    let r = token_call(&s, "198.51.100.10", "/token", WEB_SECRET).await;
    assert_eq!(r.status(), StatusCode::OK, "the client at its own address");
    let r = token_call(&s, attacker, "/token", WEB_SECRET).await;
    s.clock.advance(retry_after(&r).unwrap());
    assert_eq!(token_call(&s, attacker, "/token", WEB_SECRET).await.status(), StatusCode::OK, "ended on its own");
    let throttled = events(&s, "kind=credential_throttled").await;
    assert!(throttled.iter().any(|e| e["detail"]["realm"] == "client"), "{throttled:?}");
}

// RFC 6749 s10.10 across instances: failures counted by one instance hold the guessing
// address at another sharing the store (each failure marks the address and the client, and
// an attempt reads the counters where a mark points), while the client elsewhere is served.
async fn client_guessing_counted_by_one_instance_holds_at_another(b: Backend) {
    let shared = SharedStore::new(b);
    let overlay = "[server]\nbehind_tls_proxy = true\n";
    let (one, two) =
        (TestServer::start_on_store(&shared, overlay).await, TestServer::start_on_store(&shared, overlay).await);
    let attacker = "198.51.100.21";
    assert_eq!(token_call(&two, attacker, "/token", WEB_SECRET).await.status(), StatusCode::OK, "before any failure");
    // To the lockout (60 s for a client), waiting out the growing delays on the first
    // instance's clock; the second's stays behind it, so the lockout is still on there.
    guess_to_lockout(&one, attacker).await;
    for path in ["/token", "/introspect"] {
        let r = token_call(&two, attacker, path, WEB_SECRET).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{path} at the other instance");
        assert!(retry_after(&r).is_some());
    }
    let r = token_call(&two, "198.51.100.22", "/token", WEB_SECRET).await;
    assert_eq!(r.status(), StatusCode::OK, "the client at its own address, at the other instance");
}

// GB-6.8b, AY-8.5.2.1: an anonymous token request with a 64 KB client_id full of control
// characters writes a small, single-line audit record.
async fn anonymous_input_is_bounded_in_the_audit_log(b: Backend) {
    let s = server(b).await;
    let claimed = format!("evil\n{{\"kind\":\"login_success\"}}\u{1b}[2J{}", "x".repeat(65_000));
    let r = s
        .http
        .post(s.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &claimed), ("client_secret", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let denied = events(&s, "kind=token_issued&outcome=denied").await;
    let e = denied
        .iter()
        .find(|e| e["detail"]["claimed_client_id"].as_str().is_some_and(|c| c.starts_with("evil")))
        .unwrap_or_else(|| panic!("no denied token event: {denied:?}"));
    let line = serde_json::to_string(e).unwrap();
    assert!(line.len() < 2048, "audit record of {} bytes", line.len());
    let kept = e["detail"]["claimed_client_id"].as_str().unwrap();
    assert!(!kept.contains('\n') && !kept.contains('\u{1b}'), "{kept:?}");
    assert!(kept.contains("bytes]"), "the cut is marked: {kept}");
    // Every line of the files is small.
    for entry in std::fs::read_dir(&s.state.config.audit.dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(text.lines().all(|l| l.len() < 4096), "a long audit line");
    }
}
