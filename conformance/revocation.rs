//! Revocation as a relying party and an administrator see it over HTTP (issue 9): after each
//! way a login ends, its tokens are dead at every endpoint that takes them (`/introspect`,
//! `/userinfo`, `/token`), while an `offline_access` grant outlives the session (OIDC Core
//! s11) but not the account. Runs against the instance with the default `refresh_grace = 0`.

use serde_json::{Value, json};

use crate::report::{Check, Runner, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, HtmlForm, PASSWORD, Rp, USER, WEB, WEB_REDIRECT, WEB_SECRET, browser, e};

/// One login's tokens: a session-bound set and an offline_access set.
struct Login {
    browser: reqwest::Client,
    access: String,
    refresh: String,
    id_token: String,
    offline_refresh: String,
    sid: String,
}

/// Logs `user` in through a fresh browser and redeems two codes for demo-web.
async fn login(c: &Rp, user: &str, password: &str) -> Check<Login> {
    let b = browser()?;
    let online = code_flow(c, &b, "openid profile", Some((user, password))).await?;
    let offline = code_flow(c, &b, "openid offline_access", None).await?;
    let s = |v: &Value, k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("no {k} in {v}"));
    let access = s(&online, "access_token")?;
    let (_, claims) = crate::rp::jwt_parts(&access)?;
    Ok(Login {
        sid: claims["sid"].as_str().ok_or("no sid in the access token")?.to_owned(),
        refresh: s(&online, "refresh_token")?,
        id_token: s(&online, "id_token")?,
        offline_refresh: s(&offline, "refresh_token")?,
        access,
        browser: b,
    })
}

async fn code_flow(c: &Rp, b: &reqwest::Client, scope: &str, login: Option<(&str, &str)>) -> Check<Value> {
    let mut landing = c.get(b, &c.authorize_url(WEB, WEB_REDIRECT, scope, None)).await?;
    if let Some((user, password)) = login {
        let to = landing.location.clone().ok_or("no redirect to the login page")?;
        let page = c.get(b, &to).await?;
        let form = HtmlForm::find(&page.body, "/login")?;
        landing = c.post_form(b, "/login", &form.submission(&[("username", user), ("password", password)])).await?;
    }
    let q = landing.redirect_query(WEB_REDIRECT)?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", WEB_REDIRECT)];
    let (status, v) = c.token_raw(WEB, WEB_SECRET, &form).await?;
    ensure(status == 200, format!("code exchange answered {status}: {v}"))?;
    Ok(v)
}

async fn active(c: &Rp, token: &str) -> Check<bool> {
    Ok(c.introspect_raw(token).await?["active"] == true)
}

async fn refresh(c: &Rp, token: &str) -> Check<(u16, Value)> {
    c.token_raw(WEB, WEB_SECRET, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

/// The session-bound tokens are dead everywhere; the offline grant lives on.
async fn session_tokens_dead(c: &Rp, l: &Login, offline_lives: bool) -> Check {
    ensure(!active(c, &l.access).await?, "the access token still introspects active")?;
    let (status, _, _) = c.userinfo_raw(Some(&l.access)).await?;
    ensure(status == 401, format!("UserInfo answers {status} to the access token"))?;
    ensure(!active(c, &l.refresh).await?, "the refresh token still introspects active")?;
    let (status, v) = refresh(c, &l.refresh).await?;
    ensure(status == 400 && v["error"] == "invalid_grant", format!("the refresh grant answered {status} {v}"))?;
    let offline = active(c, &l.offline_refresh).await?;
    if offline_lives {
        ensure(offline, "the offline_access refresh token died with the session")?;
        let (status, v) = refresh(c, &l.offline_refresh).await?;
        ensure(status == 200, format!("the offline grant cannot refresh: {status} {v}"))
    } else {
        ensure(!offline, "the offline_access refresh token outlived the account change")?;
        let (status, v) = refresh(c, &l.offline_refresh).await?;
        ensure(status == 400, format!("the offline grant still refreshes: {status} {v}"))
    }
}

async fn rp_initiated(c: &Rp) -> Check {
    let l = login(c, USER, PASSWORD).await?;
    let r = l
        .browser
        .get(c.url("/end_session"))
        .query(&[("id_token_hint", l.id_token.as_str())])
        .send()
        .await
        .map_err(e("end_session"))?;
    ensure(r.status().is_success(), format!("end_session answered {}", r.status()))?;
    session_tokens_dead(c, &l, true).await
}

async fn backend_logout(c: &Rp) -> Check {
    let l = login(c, USER, PASSWORD).await?;
    let r = c
        .http
        .post(c.url("/logout"))
        .basic_auth(WEB, Some(WEB_SECRET))
        .form(&[("sid", l.sid.as_str())])
        .send()
        .await
        .map_err(e("logout"))?;
    ensure(r.status() == 200, format!("/logout answered {}", r.status()))?;
    session_tokens_dead(c, &l, true).await
}

async fn admin_token(c: &Rp) -> Check<String> {
    c.cc_token(ADMIN, ADMIN_SECRET, None).await
}

async fn account_disabled(c: &Rp) -> Check {
    let admin = admin_token(c).await?;
    let random = openidconnect::CsrfToken::new_random();
    let name: String = format!("rv{}", random.secret()).chars().filter(char::is_ascii_alphanumeric).take(16).collect();
    let body = json!({"username": name, "password": "revocation-check-1"});
    let r = c.http.post(c.url("/admin/v1/users")).bearer_auth(&admin).json(&body).send().await.map_err(e("user"))?;
    ensure(r.status() == 201, format!("creating the user answered {}", r.status()))?;
    let id = r.json::<Value>().await.map_err(e("user JSON"))?["id"].as_str().unwrap_or_default().to_owned();
    let l = login(c, &name, "revocation-check-1").await?;
    let r = c
        .http
        .put(c.url(&format!("/admin/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .map_err(e("disable"))?;
    ensure(r.status() == 200, format!("disabling answered {}", r.status()))?;
    session_tokens_dead(c, &l, false).await
}

async fn revoke_refresh(c: &Rp, hint: &str) -> Check {
    let l = login(c, USER, PASSWORD).await?;
    let r = c
        .http
        .post(c.url("/revoke"))
        .basic_auth(WEB, Some(WEB_SECRET))
        .form(&[("token", l.refresh.as_str()), ("token_type_hint", hint)])
        .send()
        .await
        .map_err(e("revoke"))?;
    ensure(r.status() == 200, format!("/revoke answered {}", r.status()))?;
    ensure(!active(c, &l.refresh).await?, "the revoked refresh token introspects active")?;
    ensure(!active(c, &l.access).await?, "the revoked family's access token introspects active")?;
    ensure(active(c, &l.offline_refresh).await?, "another family of the session died too")
}

/// Every check of this section, in order.
pub async fn run(base: &str, run: &mut Runner<'_>) {
    let c = match Rp::new(base).await {
        Ok(c) => c,
        Err(err) => {
            run.record(("DC-4", "OIDC Discovery s4", "relying party set up"), Check::<()>::Err(err));
            return;
        }
    };
    run.record(
        (
            "DC-4, GB-6.4d",
            "RP-Initiated Logout 1.0 s2; RFC 7662 s2.2; OIDC Core s11",
            "end_session: the session's access and refresh tokens are dead at /introspect, /userinfo, /token; offline_access lives",
        ),
        rp_initiated(&c).await,
    );
    run.record(
        (
            "HL-5.4, DC-4",
            "RFC 7662 s2.2; RFC 6749 s5.2; OIDC Core s11",
            "backend logout (POST /logout): the session's tokens are dead everywhere; offline_access lives",
        ),
        backend_logout(&c).await,
    );
    run.record(
        (
            "DC-4",
            "RFC 7662 s2.2; RFC 6750 s3.1",
            "account disabled: every token of the user is dead, offline_access included",
        ),
        account_disabled(&c).await,
    );
    run.record(
        ("DC-3", "RFC 7009 s2.1", "revoking a refresh token revokes its family's access tokens, not other families"),
        revoke_refresh(&c, "refresh_token").await,
    );
    run.record(
        ("DC-3", "RFC 7009 s2.1", "token_type_hint is only a hint: an unknown hint still revokes the token"),
        revoke_refresh(&c, "urn:example:unknown").await,
    );
}
