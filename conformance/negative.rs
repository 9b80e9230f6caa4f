//! Requests that must be refused, and how.

use serde_json::Value;

use crate::flows::{Code, Tokens};
use crate::report::{Check, ensure};
use crate::rp::{Rp, WEB, WEB_REDIRECT, WEB_SECRET, b64url_encode, e};

/// GET /authorize with raw query `q` in a browser with no session.
async fn authorize_raw(c: &Rp, q: &str) -> Check<crate::rp::Landing> {
    let fresh = crate::rp::browser()?;
    c.get(&fresh, &format!("/authorize?{q}")).await
}

fn error_page(what: &str, l: &crate::rp::Landing) -> Check {
    ensure(l.location.is_none(), format!("{what}: redirected to {:?}", l.location))?;
    ensure(l.status == 400, format!("{what}: status {}", l.status))?;
    ensure(
        l.content_type.starts_with("text/html"),
        format!("{what}: Content-Type {} (an error page for the user)", l.content_type),
    )
}

pub async fn unknown_client(c: &Rp) -> Check {
    let l = authorize_raw(
        c,
        "response_type=code&client_id=no-such-client&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid&state=x",
    )
    .await?;
    error_page("unknown client", &l)
}

pub async fn bad_redirect_uri(c: &Rp) -> Check {
    for uri in [
        "https%3A%2F%2Fevil.example%2Fcb",
        "http%3A%2F%2F127.0.0.1%3A9000%2Fcallback%2Fextra",
        "http%3A%2F%2F127.0.0.1%3A9000%2Fcallback%3Fx%3D1",
    ] {
        let l =
            authorize_raw(c, &format!("response_type=code&client_id={WEB}&redirect_uri={uri}&scope=openid&state=x"))
                .await?;
        error_page(&format!("redirect_uri {uri}"), &l)?;
    }
    Ok(())
}

pub async fn unsupported_response_type(c: &Rp) -> Check {
    let l = authorize_raw(
        c,
        &format!("response_type=token&client_id={WEB}&redirect_uri={WEB_REDIRECT}&scope=openid&state=rt"),
    )
    .await?;
    let q = l.redirect_query(&format!("{WEB_REDIRECT}?"))?;
    ensure(q.get("error").map(String::as_str) == Some("unsupported_response_type"), format!("{q:?}"))?;
    ensure(!q.contains_key("access_token") && q.get("state").map(String::as_str) == Some("rt"), format!("{q:?}"))
}

pub async fn code_replay(c: &Rp) -> Check {
    let q = c.code_query(&c.authorize_url(WEB, WEB_REDIRECT, "openid", None), WEB_REDIRECT).await?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", WEB_REDIRECT)];
    let (status, first) = c.token_raw(WEB, WEB_SECRET, &form).await?;
    ensure(status == 200, format!("first redemption: {status} {first}"))?;
    let (status, v) = c.token_raw(WEB, WEB_SECRET, &form).await?;
    ensure(status == 400 && v["error"] == "invalid_grant", format!("second redemption: {status} {v}"))?;
    let at = first["access_token"].as_str().unwrap_or_default();
    let i = c.introspect_raw(at).await?;
    ensure(
        i["active"] == false,
        format!("the token the code issued is still active after the replay (s4.1.2 SHOULD revoke): {i}"),
    )
}

pub async fn pkce_mismatch(c: &Rp, code: Option<Code>) -> Check {
    let code = code.ok_or("prerequisite failed: a PKCE code from the live session")?;
    let wrong = "wrong-verifier-wrong-verifier-wrong-verifier-0123";
    ensure(wrong != code.verifier, "verifier collision")?;
    for (verifier, why) in [(None, "no code_verifier (s4.5)"), (Some(wrong), "a wrong code_verifier (s4.6)")] {
        let mut form =
            vec![("grant_type", "authorization_code"), ("code", code.code.as_str()), ("redirect_uri", WEB_REDIRECT)];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let (status, v) = c.token_raw(WEB, WEB_SECRET, &form).await?;
        ensure(status == 400 && v["error"] == "invalid_grant", format!("{why}: {status} {v}"))?;
    }
    Ok(())
}

pub async fn redirect_mismatch(c: &Rp) -> Check {
    let q = c.code_query(&c.authorize_url(WEB, WEB_REDIRECT, "openid", None), WEB_REDIRECT).await?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let other = "http://localhost:9000/callback";
    let (status, v) = c
        .token_raw(WEB, WEB_SECRET, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", other)])
        .await?;
    ensure(status == 400 && v["error"] == "invalid_grant", format!("{status} {v}"))
}

async fn token_post(c: &Rp, ctype: &str, body: &'static str, secret: &str) -> Check<(u16, String, Value)> {
    let r = c
        .http
        .post(c.url("/token"))
        .basic_auth(WEB, Some(secret))
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .map_err(e("token"))?;
    let status = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Ok((status, challenge, r.json().await.map_err(e("error JSON"))?))
}

const FORM: &str = "application/x-www-form-urlencoded";

pub async fn wrong_secret(c: &Rp) -> Check {
    let (status, challenge, v) = token_post(c, FORM, "grant_type=client_credentials", "wrong-secret").await?;
    ensure(status == 401 && v["error"] == "invalid_client", format!("{status} {v}"))?;
    ensure(challenge.starts_with("Basic"), format!("WWW-Authenticate {challenge:?} (s5.2: the scheme the client used)"))
}

pub async fn unsupported_grant(c: &Rp) -> Check {
    let (status, _, v) =
        token_post(c, FORM, "grant_type=password&username=demo&password=demo-password", WEB_SECRET).await?;
    ensure(status == 400 && v["error"] == "unsupported_grant_type", format!("{status} {v}"))
}

pub async fn repeated_parameter(c: &Rp) -> Check {
    let (status, _, v) =
        token_post(c, FORM, "grant_type=client_credentials&scope=api.read&scope=api.read", WEB_SECRET).await?;
    ensure(status == 400 && v["error"] == "invalid_request", format!("/token: {status} {v}"))?;
    // At /authorize a repeated parameter may be client_id or redirect_uri: never redirect.
    let l = authorize_raw(
        c,
        &format!("response_type=code&client_id={WEB}&client_id={WEB}&redirect_uri={WEB_REDIRECT}&scope=openid"),
    )
    .await?;
    error_page("/authorize", &l)
}

pub async fn wrong_content_type(c: &Rp) -> Check {
    let (status, _, v) =
        token_post(c, "application/json", "{\"grant_type\":\"client_credentials\"}", WEB_SECRET).await?;
    ensure(status == 400 && v["error"] == "invalid_request", format!("JSON body: {status} {v}"))?;
    let (status, _, v) = token_post(c, "text/plain", "grant_type=client_credentials", WEB_SECRET).await?;
    ensure(status == 400 && v["error"] == "invalid_request", format!("text/plain body: {status} {v}"))
}

pub async fn missing_grant_type(c: &Rp) -> Check {
    let (status, _, v) = token_post(c, FORM, "scope=openid", WEB_SECRET).await?;
    ensure(status == 400 && v["error"] == "invalid_request", format!("{status} {v}"))
}

pub async fn prompt_none(c: &Rp) -> Check {
    let l = authorize_raw(
        c,
        &format!("response_type=code&client_id={WEB}&redirect_uri={WEB_REDIRECT}&scope=openid&prompt=none&state=pn"),
    )
    .await?;
    let q = l.redirect_query(&format!("{WEB_REDIRECT}?"))?;
    ensure(q.get("error").map(String::as_str) == Some("login_required"), format!("error {:?}", q.get("error")))?;
    ensure(
        q.get("state").map(String::as_str) == Some("pn") && q.get("iss") == Some(&c.base),
        format!("state/iss: {q:?}"),
    )?;
    ensure(!q.contains_key("code"), "a code without a session")
}

pub async fn malformed_bearer(c: &Rp, t: Option<&Tokens>) -> Check {
    let t = t.ok_or("prerequisite failed: verified code flow")?;
    let parts: Vec<&str> = t.access.split('.').collect();
    ensure(parts.len() == 3, "the access token is not a JWS")?;
    let none_header = b64url_encode(b"{\"alg\":\"none\",\"typ\":\"at+jwt\"}");
    let payload = String::from_utf8(crate::rp::b64url(parts[1])?).map_err(e("payload"))?;
    let widened = b64url_encode(payload.replace("\"scope\":\"", "\"scope\":\"phone ").as_bytes());
    let cases = [
        ("not a JWT", "not-a-jwt".to_owned()),
        ("garbage parts", "a.b.c".to_owned()),
        ("alg none", format!("{none_header}.{}.", parts[1])),
        ("tampered payload", format!("{}.{widened}.{}", parts[0], parts[2])),
        ("signature cut", format!("{}.{}.", parts[0], parts[1])),
    ];
    for (what, token) in cases {
        let (status, challenge, _) = c.userinfo_raw(Some(&token)).await?;
        ensure(status == 401 && challenge.contains("invalid_token"), format!("{what}: {status} {challenge:?}"))?;
    }
    let (status, _, _) = c.userinfo_raw(Some(&t.access)).await?;
    ensure(status == 200, format!("the untouched token gets {status}"))
}
