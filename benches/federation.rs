//! Silent login across one hop (issue 5, GB-6.4c): the time from a browser's `/authorize` at
//! the city to the code at the city's relying party, with a session already at the province
//! (city -> province `prompt=none` -> city callback: code redemption at the province, ID token
//! verification against the province's JWKS, UserInfo, local session -> RP). Two release-built
//! instances in one process on loopback, memory stores. Reported with the raw ES256 signing
//! time of the same run. Run: `cargo bench --bench federation` (ROUNDS=N, default 300).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::http::AppState;
use tongzheng::jwt::Alg;
use tongzheng::keys::Keys;
use tongzheng::store::memory::MemoryStore;

const ADMIN: (&str, &str) = ("admin-cli", "admin-cli-secret-0123456789abcdef");
const RP_REDIRECT: &str = "http://127.0.0.1:9600/cb";

async fn platform(ip: &str) -> (String, AppState) {
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let dir = std::env::temp_dir().join(format!("tz-bench-fed-{}-{}", std::process::id(), addr.port()));
    let overlay = format!(
        "issuer = \"{base}\"\n[server]\nlisten = \"{addr}\"\n[audit]\ndir = \"{}\"\n",
        dir.join("audit").display()
    );
    let config = Config::from_overlay(&overlay, true).unwrap();
    let keys = Keys::ephemeral(Clock::system().now()).unwrap();
    let state =
        tongzheng::server::build(config, Clock::system(), Arc::new(MemoryStore::new()), Some(keys)).await.unwrap();
    let serve = state.clone();
    tokio::spawn(async move { tongzheng::server::serve(listener, serve, None, std::future::pending()).await });
    (base, state)
}

async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let v: Value = http
        .post(format!("{base}/token"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn post(http: &reqwest::Client, base: &str, t: &str, path: &str, body: Value) -> Value {
    let r = http.post(format!("{base}{path}")).bearer_auth(t).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn authorize(base: &str) -> String {
    let challenge = tongzheng::crypto::b64(&tongzheng::crypto::sha256(b"bench-verifier-0123456789-0123456789-abcdef"));
    format!(
        "{base}/authorize?response_type=code&client_id=bench-rp&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(RP_REDIRECT.as_bytes()).collect::<String>()
    )
}

/// Follows redirects; returns the final RP URL.
async fn walk(client: &reqwest::Client, start: &str) -> String {
    let mut url = url::Url::parse(start).unwrap();
    for _ in 0..10 {
        let r = client.get(url.clone()).send().await.unwrap();
        assert!(r.status().is_redirection(), "{url}: {}", r.status());
        url = url.join(r.headers()["location"].to_str().unwrap()).unwrap();
        if url.port() == Some(9600) {
            return url.into();
        }
    }
    panic!("too many redirects");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        // The raw ES256 signing time of this run, the unit of the report.
        let keys = Keys::ephemeral(Clock::system().now()).unwrap();
        let started = Instant::now();
        let mut signed = 0u32;
        while started.elapsed() < Duration::from_secs(1) {
            keys.sign(Alg::ES256, "JWT", &json!({"n": signed})).unwrap();
            signed += 1;
        }
        let sign_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(signed);

        let (province, _) = platform("127.0.0.21").await;
        let (city, _) = platform("127.0.0.22").await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let (pt, ct) = (admin_token(&http, &province).await, admin_token(&http, &city).await);
        let client = post(&http, &province, &pt, "/admin/v1/clients", json!({
            "client_id": "city-platform", "grant_types": ["authorization_code"], "scope": "openid profile",
            "redirect_uris": [format!("{city}/federation/callback")]})).await;
        post(&http, &province, &pt, "/admin/v1/trusts", json!({"id": "city", "role": "downstream", "issuer": city,
            "name": "city", "client_id": "city-platform"})).await;
        post(&http, &city, &ct, "/admin/v1/trusts", json!({"id": "province", "role": "upstream", "issuer": province,
            "name": "province", "client_id": "city-platform", "client_secret": client["client_secret"], "create_accounts": true})).await;
        for (base, t) in [(&province, &pt), (&city, &ct)] {
            post(&http, base, t, "/admin/v1/clients", json!({"client_id": "bench-rp", "redirect_uris": [RP_REDIRECT],
                "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none", "scope": "openid"})).await;
        }
        // One login at the province; its session cookie is the only state each round starts with.
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let browser = reqwest::Client::builder().cookie_provider(jar.clone()).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = browser.get(authorize(&province)).send().await.unwrap();
        let login = url::Url::parse(&province).unwrap().join(r.headers()["location"].to_str().unwrap()).unwrap();
        let html = browser.get(login).send().await.unwrap().text().await.unwrap();
        let field = |n: &str| {
            let needle = format!("name=\"{n}\" value=\"");
            let s = html.find(&needle).unwrap() + needle.len();
            html[s..s + html[s..].find('"').unwrap()].to_owned()
        };
        let form = [("req", field("req")), ("csrf", field("csrf")), ("username", "demo".into()), ("password", "demo-password".into())];
        browser.post(format!("{province}/login")).form(&form).send().await.unwrap();
        let province_url = url::Url::parse(&province).unwrap();
        let cookies = reqwest::cookie::CookieStore::cookies(jar.as_ref(), &province_url).unwrap();

        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds + 20 {
            // A browser with the province session and nothing at the city.
            let jar = Arc::new(reqwest::cookie::Jar::default());
            for c in cookies.to_str().unwrap().split("; ") {
                jar.add_cookie_str(c, &province_url);
            }
            let b = reqwest::Client::builder().cookie_provider(jar).redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let started = Instant::now();
            let at = walk(&b, &authorize(&city)).await;
            samples.push(started.elapsed().as_secs_f64() * 1e3);
            assert!(at.contains("code="), "{at}");
        }
        samples.drain(..20); // warm-up: connections, JWKS and metadata caches
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        println!("raw ES256 signing (same run): {sign_us:.1} us");
        println!(
            "silent login across one hop, {rounds} rounds (city /authorize -> province -> city callback -> RP code):\n  p50 {p50:.2} ms ({:.0} signatures), p99 {p99:.2} ms ({:.0} signatures)",
            p50 * 1e3 / sign_us,
            p99 * 1e3 / sign_us
        );
    });
}
