//! Client credentials, token responses and access tokens, introspection and revocation.

use openidconnect::core::CoreJsonWebKeySet;
use openidconnect::{AccessToken, OAuth2TokenResponse, TokenIntrospectionResponse};
use serde_json::Value;

use crate::flows::Tokens;
use crate::report::{Check, ensure};
use crate::rp::{
    ADMIN, ADMIN_SECRET, Rp, WEB, WEB_REDIRECT, WEB_SECRET, b64url_encode, e, jwt_parts, oauth_error, verify_jws,
};

pub async fn client_credentials(c: &Rp) -> Check {
    let client = c.client(ADMIN, Some(ADMIN_SECRET), WEB_REDIRECT)?;
    let r = client
        .exchange_client_credentials()
        .map_err(e("client credentials"))?
        .request_async(&c.http)
        .await
        .map_err(|err| format!("client credentials: {err} ({})", oauth_error(&err)))?;
    ensure(!r.access_token().secret().is_empty(), "empty access token")?;
    ensure(r.refresh_token().is_none(), "a refresh token was issued (RFC 6749 s4.4.3: SHOULD NOT)")?;
    ensure(
        r.scopes().is_some_and(|s| s.iter().any(|s| s.as_str() == "tongzheng:admin")),
        format!("granted scope not returned: {:?}", r.scopes()),
    )
}

/// A raw client-credentials request: `(status, headers, JSON)`.
async fn cc_raw(
    c: &Rp,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> Check<(u16, reqwest::header::HeaderMap, Value)> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = c.http.post(c.url("/token")).basic_auth(id, Some(secret)).form(&form).send().await.map_err(e("token"))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    Ok((status, headers, r.json().await.map_err(e("token JSON"))?))
}

pub async fn token_response_fields(c: &Rp) -> Check {
    let (status, headers, v) = cc_raw(c, ADMIN, ADMIN_SECRET, None).await?;
    ensure(status == 200, format!("status {status}: {v}"))?;
    let ctype = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ensure(ctype.starts_with("application/json"), format!("Content-Type {ctype}"))?;
    ensure(v["access_token"].as_str().is_some_and(|s| !s.is_empty()), "no access_token")?;
    ensure(
        v["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        format!("token_type {}", v["token_type"]),
    )?;
    ensure(
        v["expires_in"].as_i64().is_some_and(|n| n > 0),
        format!("expires_in {} (AY-7.2a: the lifetime)", v["expires_in"]),
    )
}

pub async fn invalid_scope(c: &Rp) -> Check {
    let (status, _, v) = cc_raw(c, WEB, WEB_SECRET, Some("tongzheng:admin")).await?;
    ensure(status == 400 && v["error"] == "invalid_scope", format!("{status} {v}"))?;
    ensure(v.get("access_token").is_none(), "a token was issued anyway")
}

pub async fn least_privilege(c: &Rp) -> Check {
    let (status, _, v) = cc_raw(c, WEB, WEB_SECRET, Some("api.read")).await?;
    ensure(status == 200, format!("{status} {v}"))?;
    ensure(v["scope"] == "api.read", format!("response scope {}", v["scope"]))?;
    let at = v["access_token"].as_str().unwrap_or_default();
    let (_, claims) = jwt_parts(at)?;
    ensure(claims["scope"] == "api.read", format!("the token carries scope {}", claims["scope"]))?;
    let i = c.introspect_raw(at).await?;
    ensure(i["active"] == true && i["scope"] == "api.read", format!("introspection {i}"))
}

pub async fn token_headers(c: &Rp) -> Check {
    let (status, headers, _) = cc_raw(c, ADMIN, ADMIN_SECRET, None).await?;
    ensure(status == 200, format!("client credentials answered {status}"))?;
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    ensure(
        h("cache-control").split(',').any(|d| d.trim() == "no-store"),
        format!("client credentials: Cache-Control {:?}", h("cache-control")),
    )?;
    ensure(h("pragma") == "no-cache", format!("client credentials: Pragma {:?}", h("pragma")))?;
    // The code grant's response, too.
    let q = c.code_query(&c.authorize_url(WEB, WEB_REDIRECT, "openid", None), WEB_REDIRECT).await?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let r = c
        .http
        .post(c.url("/token"))
        .basic_auth(WEB, Some(WEB_SECRET))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", WEB_REDIRECT)])
        .send()
        .await
        .map_err(e("token"))?;
    ensure(r.status() == 200, format!("code exchange answered {}", r.status()))?;
    let cc = r.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ensure(cc.split(',').any(|d| d.trim() == "no-store"), format!("code exchange: Cache-Control {cc:?}"))
}

async fn jwks_of(c: &Rp) -> Check<CoreJsonWebKeySet> {
    CoreJsonWebKeySet::fetch_async(c.meta()?.jwks_uri(), &c.http).await.map_err(e("JWKS"))
}

pub async fn at_jwt(c: &Rp, t: Option<&Tokens>) -> Check {
    let t = t.ok_or("prerequisite failed: verified code flow")?;
    let (header, claims) = verify_jws(&jwks_of(c).await?, &t.access)?;
    ensure(
        header["typ"] == "at+jwt" || header["typ"] == "application/at+jwt",
        format!("typ {} (RFC 9068 s2.1)", header["typ"]),
    )?;
    ensure(
        header["alg"] != "none" && !header["alg"].as_str().unwrap_or("HS").starts_with("HS"),
        format!("alg {}", header["alg"]),
    )?;
    for k in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        ensure(!claims[k].is_null(), format!("claim {k} missing (RFC 9068 s2.2)"))?;
    }
    ensure(claims["iss"] == c.base && claims["client_id"] == WEB && claims["sub"] == t.sub, format!("claims {claims}"))
}

pub async fn introspect_active(c: &Rp, t: Option<&Tokens>) -> Check {
    let t = t.ok_or("prerequisite failed: verified code flow")?;
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let r = client
        .introspect(&AccessToken::new(t.access.clone()))
        .request_async(&c.http)
        .await
        .map_err(e("introspection"))?;
    ensure(r.active(), "active is false for a live token")?;
    ensure(r.client_id().map(|c| c.as_str()) == Some(WEB), format!("client_id {:?}", r.client_id()))?;
    ensure(r.sub() == Some(t.sub.as_str()), format!("sub {:?}", r.sub()))?;
    ensure(
        r.exp().is_some() && r.scopes().is_some_and(|s| s.iter().any(|s| s.as_str() == "openid")),
        "exp or scope missing",
    )
}

pub async fn introspect_inactive(c: &Rp, t: Option<&Tokens>) -> Check {
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let t = t.ok_or("prerequisite failed: verified code flow")?;
    // A real token with one claim altered: the signature no longer matches.
    let (_, mut claims) = jwt_parts(&t.access)?;
    claims["sub"] = Value::String("someone-else".into());
    let parts: Vec<&str> = t.access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64url_encode(claims.to_string().as_bytes()), parts[2]);
    let samples = ["no-such-token".to_owned(), tampered];
    for token in samples {
        let r = client
            .introspect(&AccessToken::new(token.clone()))
            .request_async(&c.http)
            .await
            .map_err(e("introspection"))?;
        ensure(!r.active(), format!("{token:.40} introspects as active"))?;
        let raw = c.introspect_raw(&token).await?;
        ensure(
            raw == serde_json::json!({"active": false}),
            format!("an inactive answer should carry nothing else (s2.2): {raw}"),
        )?;
    }
    Ok(())
}

pub async fn introspect_auth(c: &Rp) -> Check {
    let r = c.http.post(c.url("/introspect")).form(&[("token", "whatever")]).send().await.map_err(e("introspect"))?;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    ensure(status == 401 && v["error"] == "invalid_client", format!("{status} {v}"))
}

async fn revoke(c: &Rp, token: &str, hint: Option<&str>) -> Check<(u16, Value)> {
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    let r = c
        .http
        .post(c.url("/revoke"))
        .basic_auth(WEB, Some(WEB_SECRET))
        .form(&form)
        .send()
        .await
        .map_err(e("revoke"))?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

pub async fn revoke_access(c: &Rp) -> Check {
    let (at, _, _) = c.web_tokens("openid").await?;
    ensure(c.introspect_raw(&at).await?["active"] == true, "fresh token not active")?;
    let (status, _) = revoke(c, &at, Some("access_token")).await?;
    ensure(status == 200, format!("revocation answered {status}"))?;
    let v = c.introspect_raw(&at).await?;
    ensure(v["active"] == false, format!("the revoked token introspects {v}"))?;
    let (status, _, _) = c.userinfo_raw(Some(&at)).await?;
    ensure(status == 401, format!("the revoked token gets {status} at UserInfo"))
}

pub async fn revoke_refresh(c: &Rp) -> Check {
    let (at, rt, _) = c.web_tokens("openid").await?;
    let (status, _) = revoke(c, &rt, Some("refresh_token")).await?;
    ensure(status == 200, format!("revocation answered {status}"))?;
    let v = c.introspect_raw(&at).await?;
    ensure(v["active"] == false, format!("an access token of the revoked grant still introspects {v}"))?;
    let (status, v) = c.token_raw(WEB, WEB_SECRET, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await?;
    ensure(status == 400 && v["error"] == "invalid_grant", format!("the revoked refresh token: {status} {v}"))
}

pub async fn revoke_unknown(c: &Rp) -> Check {
    for hint in [None, Some("access_token"), Some("refresh_token")] {
        let (status, v) = revoke(c, "no-such-token", hint).await?;
        ensure(status == 200, format!("an unknown token (hint {hint:?}): {status} {v}; s2.2 says 200"))?;
    }
    Ok(())
}
