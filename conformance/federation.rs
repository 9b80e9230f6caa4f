//! Trust between two platforms (DC-5, GB-6.4c, GB-6.4d, GB-6.4a): an upstream and a downstream
//! instance of the same backend, each with its own keys and store, on their own loopback
//! addresses, configured through their admin APIs, exercised over HTTP as a browser and a
//! relying party would.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::harness::{Backend, Platform};
use crate::logout::Receiver;
use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, PASSWORD, USER, e};

const RP_REDIRECT: &str = "http://127.0.0.1:9500/cb";

struct Two {
    up: Platform,
    down: Platform,
    receiver: Receiver,
}

async fn token(http: &reqwest::Client, base: &str) -> Check<String> {
    let r = http
        .post(format!("{base}/token"))
        .basic_auth(ADMIN, Some(ADMIN_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(e("admin token"))?;
    let v: Value = r.json().await.map_err(e("admin token JSON"))?;
    v["access_token"].as_str().map(str::to_owned).ok_or_else(|| format!("no admin token: {v}"))
}

async fn post(http: &reqwest::Client, base: &str, t: &str, path: &str, body: Value) -> Check<Value> {
    let r = http.post(format!("{base}{path}")).bearer_auth(t).json(&body).send().await.map_err(e("admin call"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(e("admin JSON"))?;
    ensure(status.is_success(), format!("{path}: {status} {v}"))?;
    Ok(v)
}

async fn setup(backend: &Backend) -> Check<Two> {
    let up = Platform::start_at(backend, "", "127.0.0.8").await?;
    let down = Platform::start_at(backend, "", "127.0.0.9").await?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(e("client"))?;
    let receiver = Receiver::start().await?;
    let (ut, dt) = (token(&http, &up.base).await?, token(&http, &down.base).await?);
    let client = post(
        &http,
        &up.base,
        &ut,
        "/admin/v1/clients",
        json!({
        "client_id": "down-platform", "grant_types": ["authorization_code"], "scope": "openid profile",
        "redirect_uris": [format!("{}/federation/callback", down.base)],
        "backchannel_logout_uri": format!("{}/federation/backchannel-logout", down.base),
        "backchannel_logout_session_required": true}),
    )
    .await?;
    let secret = client["client_secret"].as_str().ok_or("no secret")?;
    post(
        &http,
        &up.base,
        &ut,
        "/admin/v1/trusts",
        json!({"id": "down", "role": "downstream", "issuer": down.base,
        "name": "下级平台", "client_id": "down-platform"}),
    )
    .await?;
    post(
        &http,
        &down.base,
        &dt,
        "/admin/v1/trusts",
        json!({"id": "up", "role": "upstream", "issuer": up.base,
        "name": "上级平台", "client_id": "down-platform", "client_secret": secret, "create_accounts": true}),
    )
    .await?;
    for (base, t, name) in [(&up.base, &ut, "up"), (&down.base, &dt, "down")] {
        post(
            &http,
            base,
            t,
            "/admin/v1/clients",
            json!({"client_id": "conf-rp", "redirect_uris": [RP_REDIRECT],
            "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none", "scope": "openid",
            "backchannel_logout_uri": receiver.uri(name), "backchannel_logout_session_required": true}),
        )
        .await?;
    }
    Ok(Two { up, down, receiver })
}

fn authorize(base: &str, prompt_none: bool) -> String {
    let challenge = tongzheng::crypto::b64(&tongzheng::crypto::sha256(b"conformance-verifier-0123456789-abcdefghijk"));
    let mut u = format!(
        "{base}/authorize?response_type=code&client_id=conf-rp&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(RP_REDIRECT.as_bytes()).collect::<String>()
    );
    if prompt_none {
        u.push_str("&prompt=none");
    }
    u
}

/// Follows redirects (at most 20): `Ok(Ok(query))` back at the RP, `Ok(Err((url, html)))` at a
/// page.
async fn walk(browser: &reqwest::Client, start: &str) -> Check<Result<HashMap<String, String>, (String, String)>> {
    let mut url = url::Url::parse(start).map_err(e("url"))?;
    for _ in 0..20 {
        let r = browser.get(url.clone()).send().await.map_err(e("browser"))?;
        if r.status().is_redirection() {
            let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            url = url.join(&loc).map_err(e("location"))?;
            if url.port() == Some(9500) {
                return Ok(Ok(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()));
            }
            continue;
        }
        let html = r.text().await.map_err(e("page"))?;
        return Ok(Err((url.to_string(), html)));
    }
    Err("more than 20 redirects (a loop)".into())
}

fn hidden(html: &str, name: &str) -> Check<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).ok_or_else(|| format!("no {name} field"))? + needle.len();
    let end = html.get(start..).and_then(|r| r.find('"')).ok_or("unterminated")? + start;
    Ok(html.get(start..end).unwrap_or_default().replace("&amp;", "&"))
}

/// Logs in at the upstream with the password (its own RP), returning the browser.
async fn login_upstream(t: &Two) -> Check<reqwest::Client> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(e("browser"))?;
    let Err((url, html)) = walk(&browser, &authorize(&t.up.base, false)).await? else {
        return Err("the upstream gave a code without a login".into());
    };
    let action = url::Url::parse(&url).map_err(e("url"))?.join("/login").map_err(e("url"))?;
    let form = [
        ("req", hidden(&html, "req")?),
        ("csrf", hidden(&html, "csrf")?),
        ("username", USER.into()),
        ("password", PASSWORD.into()),
    ];
    let r = browser.post(action.clone()).form(&form).send().await.map_err(e("login"))?;
    let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    ensure(loc.starts_with(RP_REDIRECT) && loc.contains("code="), format!("login at the upstream: {loc}"))?;
    Ok(browser)
}

/// GB-6.4c: with a session upstream, the downstream RP gets a code without any form.
async fn silent(t: &Two, browser: &reqwest::Client) -> Check {
    match walk(browser, &authorize(&t.down.base, false)).await? {
        Ok(q) => ensure(q.contains_key("code"), format!("{q:?}")),
        Err((url, _)) => Err(format!("a page was shown at {url}")),
    }
}

/// OIDC Core s3.1.2.6: prompt=none with no session anywhere is login_required.
async fn prompt_none_nowhere(t: &Two) -> Check {
    let fresh = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(e("browser"))?;
    match walk(&fresh, &authorize(&t.down.base, true)).await? {
        Ok(q) => ensure(q.get("error").map(String::as_str) == Some("login_required"), format!("{q:?}")),
        Err((url, _)) => Err(format!("a page was shown at {url}")),
    }
}

/// GB-6.4d: the upstream's logout reaches the downstream RP as a logout token from the
/// downstream, and the downstream session is gone.
async fn logout_down(t: &Two, browser: &reqwest::Client) -> Check {
    let Err((url, html)) = walk(browser, &format!("{}/end_session", t.up.base)).await? else {
        return Err("no confirmation page".into());
    };
    let confirm = url::Url::parse(&url).map_err(e("url"))?.join("/end_session/confirm").map_err(e("url"))?;
    let form = [("req", hidden(&html, "req")?), ("csrf", hidden(&html, "csrf")?), ("decision", "logout".into())];
    browser.post(confirm).form(&form).send().await.map_err(e("confirm"))?;
    for _ in 0..200 {
        if t.receiver.get("down").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let token = t.receiver.get("down").ok_or("the downstream RP got no logout token")?;
    let claims = crate::rp::jwt_parts(&token)?.1;
    ensure(claims["iss"] == t.down.base.as_str() && claims["aud"] == "conf-rp", format!("logout token: {claims}"))?;
    match walk(browser, &authorize(&t.down.base, true)).await? {
        Ok(q) => ensure(
            q.get("error").map(String::as_str) == Some("login_required"),
            format!("still logged in downstream: {q:?}"),
        ),
        Err((url, _)) => Err(format!("a page at {url}")),
    }
}

/// GB-6.4d, HL-5.4: the downstream's logout reaches the upstream (its RP gets a logout token).
async fn logout_up(t: &Two) -> Check {
    let browser = login_upstream(t).await?;
    silent(t, &browser).await?;
    let before = t.receiver.get("up");
    let Err((url, html)) = walk(&browser, &format!("{}/end_session", t.down.base)).await? else {
        return Err("no confirmation page".into());
    };
    let confirm = url::Url::parse(&url).map_err(e("url"))?.join("/end_session/confirm").map_err(e("url"))?;
    let form = [("req", hidden(&html, "req")?), ("csrf", hidden(&html, "csrf")?), ("decision", "logout".into())];
    browser.post(confirm).form(&form).send().await.map_err(e("confirm"))?;
    for _ in 0..200 {
        if t.receiver.get("up") != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    ensure(t.receiver.get("up") != before, "the upstream RP was not told")?;
    match walk(&browser, &authorize(&t.up.base, true)).await? {
        Ok(q) => ensure(
            q.get("error").map(String::as_str) == Some("login_required"),
            format!("still logged in upstream: {q:?}"),
        ),
        Err((url, _)) => Err(format!("a page at {url}")),
    }
}

/// Runs the federation checks for one backend.
pub async fn run(backend: &Backend, run: &mut Runner<'_>) {
    let Some(two) = run.record(
        ("DC-5, AY-6, GB-5.2", "OIDC Discovery s4", "two platforms trust each other through their admin APIs"),
        setup(backend).await,
    ) else {
        return;
    };
    let Some(browser) =
        run.record(("DC-5", "OIDC Core s3.1", "login at the upstream platform"), login_upstream(&two).await)
    else {
        return;
    };
    run.record(
        (
            "GB-6.4c, DC-5",
            "OIDC Core s3.1.2.1 (prompt=none), RFC 7636",
            "silent login at the downstream: a code, no form",
        ),
        silent(&two, &browser).await,
    );
    run.record(
        ("GB-6.4c", "OIDC Core s3.1.2.6", "prompt=none with no session at either platform: login_required"),
        prompt_none_nowhere(&two).await,
    );
    run.record(
        (
            "GB-6.4d, DC-4",
            "Back-Channel Logout 1.0 s2.4-s2.6",
            "logout upstream reaches the downstream's RP; downstream session ended",
        ),
        logout_down(&two, &browser).await,
    );
    run.record(
        (
            "GB-6.4d, HL-5.4",
            "HL-5.4, Back-Channel Logout 1.0 s2.5",
            "logout downstream reaches the upstream's RP; upstream session ended",
        ),
        logout_up(&two).await,
    );
}
