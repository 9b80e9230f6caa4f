//! Logout: RP-Initiated Logout, Back-Channel Logout (with the HL-5.4 backend logout), and
//! Front-Channel Logout, with RPs registered through the admin API (DC-8).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openidconnect::core::CoreJsonWebKeySet;
use serde_json::{Value, json};

use crate::report::{Check, ensure};
use crate::rp::{ADMIN, ADMIN_SECRET, Rp, e, jwt_parts, verify_jws};

/// A client registered through the admin API.
struct AdminRp {
    id: String,
    secret: String,
    redirect: String,
    bye: String,
}

async fn admin_rp(c: &Rp, name: &str, extra: Value) -> Check<AdminRp> {
    let admin = c.cc_token(ADMIN, ADMIN_SECRET, None).await?;
    let suffix: String =
        openidconnect::CsrfToken::new_random().secret().chars().filter(char::is_ascii_alphanumeric).take(8).collect();
    let redirect = format!("http://127.0.0.1:9200/cb/{name}");
    let bye = format!("http://127.0.0.1:9200/bye/{name}");
    let mut body = json!({"client_id": format!("conf-{name}-{suffix}"), "redirect_uris": [redirect],
        "grant_types": ["authorization_code"], "scope": "openid", "post_logout_redirect_uris": [bye]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let r =
        c.http.post(c.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.map_err(e("admin API"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(e("admin API JSON"))?;
    ensure(status.is_success(), format!("admin API answered {status}: {v}"))?;
    Ok(AdminRp {
        id: v["client_id"].as_str().ok_or(format!("no client_id: {v}"))?.to_owned(),
        secret: v["client_secret"].as_str().ok_or(format!("no client_secret: {v}"))?.to_owned(),
        redirect,
        bye,
    })
}

/// A code flow for `rp` in the RP's browser (login or SSO); the token response.
async fn tokens(c: &Rp, rp: &AdminRp) -> Check<Value> {
    let q = c.code_query(&c.authorize_url(&rp.id, &rp.redirect, "openid", None), &rp.redirect).await?;
    let code = q.get("code").ok_or(format!("no code for {}: {q:?}", rp.id))?;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", rp.redirect.as_str())];
    let (status, v) = c.token_raw(&rp.id, &rp.secret, &form).await?;
    ensure(status == 200, format!("code exchange for {}: {status} {v}", rp.id))?;
    Ok(v)
}

async fn prompt_none_error(c: &Rp, rp: &AdminRp) -> Check<Option<String>> {
    let url = format!("{}&prompt=none", c.authorize_url(&rp.id, &rp.redirect, "openid", None));
    let q = c.get(&c.browser, &url).await?.redirect_query(&rp.redirect)?;
    Ok(q.get("error").cloned())
}

pub async fn rp_logout(c: &Rp) -> Check {
    let rp = admin_rp(c, "rpl", json!({})).await?;
    let t = tokens(c, &rp).await?;
    let hint = t["id_token"].as_str().ok_or("no id_token")?;
    let meta: Value = c
        .http
        .get(c.url("/.well-known/openid-configuration"))
        .send()
        .await
        .map_err(e("discovery"))?
        .json()
        .await
        .map_err(e("discovery JSON"))?;
    let endpoint = meta["end_session_endpoint"].as_str().ok_or("no end_session_endpoint in the metadata")?;
    let r = c
        .browser
        .get(endpoint)
        .query(&[("id_token_hint", hint), ("post_logout_redirect_uri", rp.bye.as_str()), ("state", "s9")])
        .send()
        .await
        .map_err(e("end_session"))?;
    let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    ensure(
        loc == format!("{}?state=s9", rp.bye),
        format!("{} redirect {loc:?} (s3: to post_logout_redirect_uri with state)", r.status()),
    )?;
    let err = prompt_none_error(c, &rp).await?;
    ensure(
        err.as_deref() == Some("login_required"),
        format!("after logout prompt=none gives {err:?}, not login_required"),
    )?;
    let (status, _, _) = c.userinfo_raw(t["access_token"].as_str()).await?;
    ensure(status == 401, format!("the ended session's access token gets {status} at UserInfo"))
}

/// Collects back-channel logout tokens posted to `/bc/{name}`.
pub struct Receiver {
    base: String,
    got: Arc<Mutex<HashMap<String, String>>>,
}

impl Receiver {
    pub async fn start() -> Check<Self> {
        let got: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let store = got.clone();
        let app = axum::Router::new().route(
            "/bc/{name}",
            axum::routing::post(move |axum::extract::Path(name): axum::extract::Path<String>, body: String| {
                let store = store.clone();
                async move {
                    let token = url::form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned());
                    if let (Some(t), Ok(mut m)) = (token, store.lock()) {
                        m.insert(name, t);
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(e("bind receiver"))?;
        let base = format!("http://{}", listener.local_addr().map_err(e("receiver address"))?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { base, got })
    }

    pub fn uri(&self, name: &str) -> String {
        format!("{}/bc/{name}", self.base)
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.got.lock().ok().and_then(|m| m.get(name).cloned())
    }
}

pub async fn backchannel(c: &Rp) -> Check {
    let receiver = Receiver::start().await?;
    let bc = |n: &str| json!({"backchannel_logout_uri": receiver.uri(n), "backchannel_logout_session_required": true});
    let a = admin_rp(c, "bca", bc("a")).await?;
    let b = admin_rp(c, "bcb", bc("b")).await?;
    let ta = tokens(c, &a).await?;
    tokens(c, &b).await?;
    let hint = ta["id_token"].as_str().ok_or("no id_token")?;
    let sid = jwt_parts(hint)?.1["sid"].as_str().unwrap_or_default().to_owned();
    ensure(!sid.is_empty(), "the ID token has no sid (Back-Channel Logout s2.1)")?;
    // HL-5.4: A's backend ends the login; B (and only B) is told.
    let r = c
        .http
        .post(c.url("/logout"))
        .basic_auth(&a.id, Some(&a.secret))
        .form(&[("id_token_hint", hint)])
        .send()
        .await
        .map_err(e("backend logout"))?;
    ensure(r.status() == 200, format!("backend logout answered {}", r.status()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        if let Some(t) = receiver.get("b") {
            break t;
        }
        ensure(Instant::now() < deadline, "no logout token reached B within 10 s")?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ensure(receiver.get("a").is_none(), "the calling client was notified too")?;
    let jwks = CoreJsonWebKeySet::fetch_async(c.meta()?.jwks_uri(), &c.http).await.map_err(e("JWKS"))?;
    let (header, claims) = verify_jws(&jwks, &token)?;
    ensure(header["typ"] == "logout+jwt", format!("typ {} (s2.4)", header["typ"]))?;
    ensure(
        claims["iss"] == c.base && claims["aud"] == b.id.as_str() && claims["sid"] == sid.as_str(),
        format!("claims {claims}"),
    )?;
    ensure(
        claims["iat"].is_i64() && claims["exp"].is_i64() && claims["jti"].is_string(),
        format!("iat/exp/jti missing: {claims}"),
    )?;
    ensure(
        claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(),
        "no back-channel logout event",
    )?;
    ensure(claims.get("nonce").is_none(), "a logout token must not carry a nonce (s2.4)")
}

pub async fn frontchannel(c: &Rp) -> Check {
    let fc =
        json!({"frontchannel_logout_uri": "http://127.0.0.1:9200/fc", "frontchannel_logout_session_required": true});
    let f = admin_rp(c, "fc", fc).await?;
    let t = tokens(c, &f).await?;
    let hint = t["id_token"].as_str().ok_or("no id_token")?;
    let sid = jwt_parts(hint)?.1["sid"].as_str().unwrap_or_default().to_owned();
    let r = c
        .browser
        .get(c.url("/end_session"))
        .query(&[("id_token_hint", hint)])
        .send()
        .await
        .map_err(e("end_session"))?;
    let html = r.text().await.map_err(e("logout page"))?;
    let iss: String = url::form_urlencoded::byte_serialize(c.base.as_bytes()).collect();
    let sid_q: String = url::form_urlencoded::byte_serialize(sid.as_bytes()).collect();
    let frame = format!("<iframe src=\"http://127.0.0.1:9200/fc?iss={iss}&amp;sid={sid_q}\"");
    ensure(html.contains(&frame), format!("no iframe {frame} in the logout page"))
}
