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

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT: &str = "urn:ietf:params:oauth:token-type:access_token";
const API: &str = "https://api.down.example.gov.cn/tax";

/// Token-exchange clients: at the upstream one that may exchange its own tokens for the
/// downstream; at the downstream one that may exchange the upstream's tokens for its API.
async fn exchange_clients(t: &Two) -> Check<(String, String)> {
    let http = reqwest::Client::new();
    let (ut, dt) = (token(&http, &t.up.base).await?, token(&http, &t.down.base).await?);
    let up = post(
        &http,
        &t.up.base,
        &ut,
        "/admin/v1/clients",
        json!({"client_id": "exch-up", "grant_types": [EXCHANGE],
        "scope": "openid", "token_exchange": {"issuers": [t.up.base], "audiences": [t.down.base]}}),
    )
    .await?;
    let down = post(
        &http,
        &t.down.base,
        &dt,
        "/admin/v1/clients",
        json!({"client_id": "exch-down", "grant_types": [EXCHANGE],
        "scope": "openid", "token_exchange": {"issuers": [t.up.base], "audiences": [API]}}),
    )
    .await?;
    let secret = |v: &Value| v["client_secret"].as_str().map(str::to_owned).ok_or("no secret".to_owned());
    Ok((secret(&up)?, secret(&down)?))
}

async fn exchange(base: &str, id: &str, secret: &str, subject: &str, extra: &[(&str, &str)]) -> Check<(u16, Value)> {
    let mut form = vec![("grant_type", EXCHANGE), ("subject_token", subject), ("subject_token_type", AT)];
    form.extend_from_slice(extra);
    let r = reqwest::Client::new()
        .post(format!("{base}/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .map_err(e("token exchange"))?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.map_err(e("token exchange JSON"))?))
}

/// The user's access token at the upstream: the conformance RP redeems a code with PKCE.
async fn user_token(t: &Two, browser: &reqwest::Client) -> Check<String> {
    let Ok(q) = walk(browser, &authorize(&t.up.base, false)).await? else { return Err("no code".into()) };
    let code = q.get("code").ok_or("no code")?;
    let r = reqwest::Client::new()
        .post(format!("{}/token", t.up.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "conf-rp"),
            ("code", code.as_str()),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", "conformance-verifier-0123456789-abcdefghijk"),
        ])
        .send()
        .await
        .map_err(e("code redemption"))?;
    let v: Value = r.json().await.map_err(e("token JSON"))?;
    v["access_token"].as_str().map(str::to_owned).ok_or_else(|| format!("no access token: {v}"))
}

/// RFC 8693 s2.1-s2.2.1: the upstream user's token is exchanged upstream for the downstream,
/// then downstream for its API: a JWT for that audience, about the downstream's linked
/// account, with only the scope both allow (AY-7.1).
async fn exchange_ok(t: &Two, subject: &str, secrets: &(String, String)) -> Check<String> {
    let (status, v) = exchange(&t.up.base, "exch-up", &secrets.0, subject, &[("audience", &t.down.base)]).await?;
    ensure(status == 200, format!("upstream exchange: {status} {v}"))?;
    ensure(v["issued_token_type"] == AT && v["token_type"].is_string(), format!("s2.2.1 response: {v}"))?;
    let for_down = v["access_token"].as_str().ok_or("no token")?.to_owned();
    let (status, v) = exchange(&t.down.base, "exch-down", &secrets.1, &for_down, &[("audience", API)]).await?;
    ensure(status == 200, format!("downstream exchange: {status} {v}"))?;
    let claims = crate::rp::jwt_parts(v["access_token"].as_str().ok_or("no token")?)?.1;
    ensure(
        claims["iss"] == t.down.base.as_str() && (claims["aud"] == API || claims["aud"][0] == API),
        format!("{claims}"),
    )?;
    ensure(claims["scope"] == "openid" && claims["client_id"] == "exch-down", format!("{claims}"))?;
    Ok(for_down)
}

async fn exchange_refusals(t: &Two, for_down: &str, secrets: &(String, String)) -> Check {
    // s2.2.2 invalid_target: an audience outside the client's policy.
    let (status, v) =
        exchange(&t.down.base, "exch-down", &secrets.1, for_down, &[("audience", "https://elsewhere.example")]).await?;
    ensure(status == 400 && v["error"] == "invalid_target", format!("forbidden audience: {status} {v}"))?;
    // s2.2.2 invalid_scope: a scope the client was never granted.
    let (status, v) = exchange(
        &t.down.base,
        "exch-down",
        &secrets.1,
        for_down,
        &[("audience", API), ("scope", "openid tongzheng:admin")],
    )
    .await?;
    ensure(status == 400 && v["error"] == "invalid_scope", format!("ungranted scope: {status} {v}"))?;
    // s2.2.2 invalid_request: a subject token from an issuer the downstream does not trust.
    let foreign = format!(
        "{}.{}.{}",
        tongzheng::crypto::b64(br#"{"alg":"ES256","typ":"at+jwt"}"#),
        tongzheng::crypto::b64(br#"{"iss":"https://untrusted.example","sub":"x","aud":"y","exp":9999999999}"#),
        "c2ln"
    );
    let (status, v) = exchange(&t.down.base, "exch-down", &secrets.1, &foreign, &[("audience", API)]).await?;
    ensure(status == 400 && v["error"] == "invalid_request", format!("untrusted issuer: {status} {v}"))
}

async fn exchange_discovered(t: &Two) -> Check {
    let v: Value = reqwest::get(format!("{}/.well-known/openid-configuration", t.down.base))
        .await
        .map_err(e("discovery"))?
        .json()
        .await
        .map_err(e("discovery JSON"))?;
    let grants = v["grant_types_supported"].as_array().cloned().unwrap_or_default();
    ensure(grants.iter().any(|g| g == EXCHANGE), format!("grant_types_supported: {grants:?}"))
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
        ("DC-5, RFC 8693", "RFC 8693 s3 (grant_types_supported)", "token exchange advertised in discovery"),
        exchange_discovered(&two).await,
    );
    let exchanged = async {
        let secrets = exchange_clients(&two).await?;
        let subject = user_token(&two, &browser).await?;
        Ok::<_, String>((secrets, subject))
    }
    .await;
    if let Some((secrets, subject)) =
        run.record(("DC-5, RFC 8693", "RFC 8693 s2.1", "exchange clients and a user token at the upstream"), exchanged)
    {
        let for_down = run.record(
            (
                "DC-5, AY-7.1, RFC 8693",
                "RFC 8693 s2.1, s2.2.1",
                "upstream token exchanged for the downstream, then for its API (linked subject, least scope)",
            ),
            exchange_ok(&two, &subject, &secrets).await,
        );
        if let Some(for_down) = for_down {
            run.record(
                (
                    "RFC 8693, AY-7.1",
                    "RFC 8693 s2.2.2",
                    "refused: forbidden audience (invalid_target), ungranted scope (invalid_scope), untrusted issuer (invalid_request)",
                ),
                exchange_refusals(&two, &for_down, &secrets).await,
            );
        }
    }
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
