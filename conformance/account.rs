//! The account page as a person's browser meets it (SH-8.2, HL-5.2): without a session it
//! starts a login that returns to it; withdrawing a consent there ends the tokens the
//! application holds for the person (refresh refused, access token inactive).

use serde_json::{Value, json};

use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, HtmlForm, PASSWORD, Rp, USER, browser, e, snippet};

const CLIENT: &str = "conformance-consent";
const REDIRECT: &str = "http://127.0.0.1:9700/cb";

/// GET /account signed out: 303 to a login page; signing in there returns to /account.
async fn login_first(c: &Rp) -> Check {
    let b = browser()?;
    let first = c.get(&b, "/account").await?;
    let login = first.location.clone().ok_or(format!("no redirect: {} {}", first.status, snippet(&first.body)))?;
    ensure(first.status == 303 && login.starts_with("/login?req="), format!("{} to {login}", first.status))?;
    let page = c.get(&b, &login).await?;
    let form = HtmlForm::find(&page.body, "/login")?;
    let done = c.post_form(&b, "/login", &form.submission(&[("username", USER), ("password", PASSWORD)])).await?;
    ensure(done.location.as_deref() == Some("/account"), format!("after the login: {:?}", done.location))?;
    let account = c.get(&b, "/account").await?;
    ensure(account.status == 200 && account.body.contains(USER), format!("/account answered {}", account.status))
}

async fn client(c: &Rp) -> Check<String> {
    let t = c.cc_token(ADMIN, ADMIN_SECRET, None).await?;
    let body = json!({"client_id": CLIENT, "client_name": "一致性授权测试", "redirect_uris": [REDIRECT],
                      "grant_types": ["authorization_code", "refresh_token"], "scope": "openid phone",
                      "token_endpoint_auth_method": "client_secret_basic"});
    let r = c.http.post(c.url("/admin/v1/clients")).bearer_auth(&t).json(&body).send().await.map_err(e("client"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(e("client JSON"))?;
    ensure(status == 201, format!("{status} {v}"))?;
    v["client_secret"].as_str().map(str::to_owned).ok_or(format!("no client_secret: {v}"))
}

/// RFC 7662 introspection by the token's own client.
async fn introspect(c: &Rp, secret: &str, token: &str) -> Check<Value> {
    let r = c
        .http
        .post(c.url("/introspect"))
        .basic_auth(CLIENT, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .map_err(e("introspect"))?;
    ensure(r.status() == 200, format!("introspection answered {}", r.status()))?;
    r.json().await.map_err(e("introspection JSON"))
}

/// Consent to `phone`, tokens, then revoke the consent on /account: the tokens are dead.
async fn revocation(c: &Rp) -> Check {
    let secret = client(c).await?;
    let b = browser()?;
    let page = c.authenticate(&b, &c.authorize_url(CLIENT, REDIRECT, "openid phone", None)).await?;
    ensure(page.status == 200, format!("expected the consent page: {} {:?}", page.status, page.location))?;
    let form = HtmlForm::find(&page.body, "/consent")?;
    let answer = c.post_form(&b, "/consent", &form.submission(&[("decision", "allow")])).await?;
    let q = answer.redirect_query(&format!("{REDIRECT}?"))?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let (status, v) = c.token_raw(CLIENT, &secret, &form).await?;
    ensure(status == 200, format!("code exchange: {status} {v}"))?;
    let (at, rt) = (v["access_token"].as_str().unwrap_or_default(), v["refresh_token"].as_str().unwrap_or_default());
    ensure(!rt.is_empty(), format!("no refresh token: {v}"))?;
    ensure(introspect(c, &secret, at).await?["active"] == true, "the access token is not active before")?;
    let account = c.get(&b, "/account").await?;
    let revoke = HtmlForm::find(&account.body, "/account/consents/revoke")?;
    ensure(account.body.contains(&format!("value=\"{CLIENT}\"")), format!("{CLIENT}'s consent is not listed"))?;
    let done = c.post_form(&b, "/account/consents/revoke", &revoke.submission(&[("client_id", CLIENT)])).await?;
    ensure(done.status == 303, format!("revoke answered {}", done.status))?;
    let (status, v) = c.token_raw(CLIENT, &secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await?;
    ensure(status == 400 && v["error"] == "invalid_grant", format!("refresh after the revocation: {status} {v}"))?;
    let intro = introspect(c, &secret, at).await?;
    ensure(intro["active"] == false, format!("access token after the revocation: {intro}"))
}

pub async fn run(c: &Rp, run: &mut Runner<'_>) {
    run.record(
        ("SH-8.2, HL-5.2", "REQUIREMENTS.md SH-8.2", "/account signed out: a login that returns to /account"),
        login_first(c).await,
    );
    run.record(
        (
            "SH-8.2",
            "REQUIREMENTS.md SH-8.2; RFC 7662 s2.2; RFC 6749 s5.2",
            "consent revoked on /account: the application's refresh token refused, access token inactive",
        ),
        revocation(c).await,
    );
}
