//! Discovery, the JWKS, the HL-5.3 login sequence as an openidconnect RP (confidential and
//! public clients), UserInfo and refresh.

use std::collections::HashMap;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreJsonWebKeySet, CoreTokenResponse, CoreTokenType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RefreshToken, Scope, SubjectIdentifier, TokenResponse,
};
use serde_json::Value;

use crate::report::{Check, ensure};
use crate::rp::{
    HtmlForm, Oidc, PASSWORD, Rp, SPA, SPA_REDIRECT, USER, WEB, WEB_REDIRECT, WEB_SECRET, e, oauth_error, query,
    snippet,
};

async fn raw_json(c: &Rp, path: &str) -> Check<(String, Value)> {
    let r = c.http.get(c.url(path)).send().await.map_err(e("GET"))?;
    ensure(r.status() == 200, format!("{path} answered {}", r.status()))?;
    let ctype = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Ok((ctype, r.json().await.map_err(e("JSON"))?))
}

pub async fn discovery(c: &Rp) -> Check {
    let meta = c.meta()?;
    ensure(
        meta.issuer().as_str() == c.base,
        format!("issuer {} differs from the URL prefix {}", meta.issuer().as_str(), c.base),
    )?;
    let (ctype, raw) = raw_json(c, "/.well-known/openid-configuration").await?;
    ensure(ctype.starts_with("application/json"), format!("Content-Type {ctype} (s4.2: application/json)"))?;
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        ensure(!raw[k].is_null(), format!("REQUIRED member {k} missing (s3)"))?;
    }
    ensure(raw["userinfo_endpoint"].is_string(), "userinfo_endpoint missing (s3 RECOMMENDED)")?;
    ensure(
        raw["id_token_signing_alg_values_supported"].as_array().is_some_and(|a| a.iter().any(|v| v == "RS256")),
        "RS256 must be listed (s3)",
    )
}

pub async fn as_metadata(c: &Rp) -> Check {
    let (_, raw) = raw_json(c, "/.well-known/oauth-authorization-server").await?;
    ensure(raw["issuer"] == c.base, format!("issuer {} is not the URL prefix {} (s3.3)", raw["issuer"], c.base))?;
    for k in ["authorization_endpoint", "token_endpoint", "response_types_supported", "jwks_uri"] {
        ensure(!raw[k].is_null(), format!("member {k} missing (s2)"))?;
    }
    Ok(())
}

pub async fn metadata_features(c: &Rp) -> Check {
    let (_, raw) = raw_json(c, "/.well-known/openid-configuration").await?;
    ensure(
        raw["code_challenge_methods_supported"] == serde_json::json!(["S256"]),
        format!("code_challenge_methods_supported {} (S256 only)", raw["code_challenge_methods_supported"]),
    )?;
    ensure(
        raw["authorization_response_iss_parameter_supported"] == true,
        "authorization_response_iss_parameter_supported is not true",
    )?;
    ensure(
        raw["registration_endpoint"].is_string(),
        "registration_endpoint missing while an initial access token is configured",
    )?;
    let grants = raw["grant_types_supported"].as_array().cloned().unwrap_or_default();
    ensure(
        ["authorization_code", "refresh_token", "client_credentials"].iter().all(|g| grants.iter().any(|v| v == g)),
        format!("grant_types_supported {grants:?}"),
    )
}

pub async fn jwks(c: &Rp) -> Check {
    let meta = c.meta()?;
    let set = CoreJsonWebKeySet::fetch_async(meta.jwks_uri(), &c.http).await.map_err(e("JWKS fetch"))?;
    ensure(!set.keys().is_empty(), "the JWKS is empty")?;
    let (_, raw) = raw_json(c, meta.jwks_uri().url().path()).await?;
    let keys = raw["keys"].as_array().cloned().unwrap_or_default();
    let mut kids = Vec::new();
    for k in &keys {
        let kid = k["kid"].as_str().ok_or(format!("key without kid: {k}"))?;
        ensure(!kids.contains(&kid), format!("kid {kid} is not unique"))?;
        kids.push(kid);
        ensure(k["use"].is_null() || k["use"] == "sig", format!("key {kid} has use {}", k["use"]))?;
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            ensure(k.get(private).is_none(), format!("key {kid} publishes the private member {private}"))?;
        }
    }
    Ok(())
}

/// The login sequence in progress: the authorization request and the login form.
pub struct Pending {
    verifier: String,
    nonce: Nonce,
    state: String,
    form: HtmlForm,
}

pub async fn login_redirect(c: &Rp) -> Check<Pending> {
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let first = c.get(&c.browser, url.as_str()).await?;
    let to = first.location.clone().unwrap_or_default();
    ensure(
        first.status == 303 || first.status == 302,
        format!("/authorize answered {} (expected a redirect to the login page)", first.status),
    )?;
    ensure(
        to.starts_with("/login") || to.starts_with(&c.url("/login")),
        format!("/authorize redirected to {to}, not the login page"),
    )?;
    let page = c.get(&c.browser, &to).await?;
    ensure(
        page.status == 200 && page.content_type.starts_with("text/html"),
        format!("login page answered {} {}", page.status, page.content_type),
    )?;
    let form = HtmlForm::find(&page.body, "/login")?;
    form.field("req")?;
    form.field("csrf")?;
    ensure(
        form.fields.iter().any(|(k, _)| k == "username") && form.fields.iter().any(|(k, _)| k == "password"),
        "the login form lacks username or password",
    )?;
    Ok(Pending { verifier: verifier.secret().clone(), nonce, state: state.secret().clone(), form })
}

pub async fn wrong_password(c: &Rp, p: Option<&Pending>) -> Check {
    let p = p.ok_or("prerequisite failed: login page")?;
    let r = c
        .post_form(&c.browser, "/login", &p.form.submission(&[("username", USER), ("password", "not-the-password")]))
        .await?;
    ensure(r.location.is_none(), format!("a wrong password redirected to {:?}", r.location))?;
    ensure(!r.body.contains(WEB_REDIRECT), "the answer points to the client's redirect URI")?;
    ensure(
        (r.status == 200 || r.status == 401) && HtmlForm::find(&r.body, "/login").is_ok(),
        format!("expected the login form again, got {} {}", r.status, snippet(&r.body)),
    )
}

/// A code the client received.
pub struct Code {
    pub code: String,
    pub verifier: String,
    pub nonce: Nonce,
}

pub async fn login_post(c: &Rp, p: Option<Pending>) -> Check<(Code, HashMap<String, String>)> {
    let p = p.ok_or("prerequisite failed: login page")?;
    let r =
        c.post_form(&c.browser, "/login", &p.form.submission(&[("username", USER), ("password", PASSWORD)])).await?;
    ensure(r.status == 303 || r.status == 302, format!("login answered {}", r.status))?;
    let q = r.redirect_query(&format!("{WEB_REDIRECT}?"))?;
    ensure(q.get("state") == Some(&p.state), format!("state not echoed (RFC 6749 s4.1.2): {q:?}"))?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    Ok((Code { code: code.clone(), verifier: p.verifier, nonce: p.nonce }, q))
}

/// The `iss` parameter of the authorization response the login produced.
pub fn iss_param(c: &Rp, q: Option<&HashMap<String, String>>) -> Check {
    let q = q.ok_or("prerequisite failed: login")?;
    ensure(q.get("iss") == Some(&c.base), format!("iss {:?}, expected {} (RFC 9207 s2)", q.get("iss"), c.base))
}

pub async fn exchange(c: &Rp, code: Option<Code>) -> Check<(CoreTokenResponse, Nonce)> {
    let code = code.ok_or("prerequisite failed: no code")?;
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let resp = client
        .exchange_code(AuthorizationCode::new(code.code))
        .map_err(e("exchange"))?
        .set_pkce_verifier(PkceCodeVerifier::new(code.verifier))
        .request_async(&c.http)
        .await
        .map_err(|err| format!("token request: {err} ({})", oauth_error(&err)))?;
    Ok((resp, code.nonce))
}

pub fn code_response(t: Option<&(CoreTokenResponse, Nonce)>) -> Check {
    let (resp, _) = t.ok_or("prerequisite failed: code exchange")?;
    ensure(*resp.token_type() == CoreTokenType::Bearer, "token_type is not Bearer")?;
    ensure(resp.expires_in().is_some(), "no expires_in (AY-7.2a)")?;
    ensure(resp.refresh_token().is_some(), "no refresh token for a client holding the refresh grant")?;
    ensure(resp.id_token().is_some(), "no ID token for the openid scope")?;
    // s5.1: scope may be omitted when identical to the request; when present, nothing more.
    let Some(granted) = resp.scopes() else { return Ok(()) };
    let scopes: Vec<&str> = granted.iter().map(|s| s.as_str()).collect();
    ensure(
        ["openid", "profile", "email"].iter().all(|s| scopes.contains(s)) && scopes.len() == 3,
        format!("scope {scopes:?}: exactly the requested openid profile email"),
    )
}

/// The user's tokens from the verified code flow.
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub sub: String,
}

pub async fn id_token(c: &Rp, t: Option<&(CoreTokenResponse, Nonce)>) -> Check<Tokens> {
    let (resp, nonce) = t.ok_or("prerequisite failed: code exchange")?;
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let token = resp.id_token().ok_or("no ID token")?;
    let verifier = client.id_token_verifier();
    let claims = token.claims(&verifier, nonce).map_err(e("ID token verification"))?;
    ensure(claims.issuer().as_str() == c.base, "iss")?;
    let expected = claims.access_token_hash().ok_or("no at_hash")?;
    let alg = token.signing_alg().map_err(e("alg"))?;
    let actual = AccessTokenHash::from_token(resp.access_token(), alg, token.signing_key(&verifier).map_err(e("key"))?)
        .map_err(e("at_hash"))?;
    ensure(actual == *expected, "at_hash does not match the access token (OIDC Core s3.1.3.8)")?;
    let rt = resp.refresh_token().ok_or("no refresh token")?;
    Ok(Tokens {
        access: resp.access_token().secret().clone(),
        refresh: rt.secret().clone(),
        sub: claims.subject().to_string(),
    })
}

pub async fn sso(c: &Rp) -> Check<Code> {
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let r = c.get(&c.browser, url.as_str()).await?;
    let q = r.redirect_query(&format!("{WEB_REDIRECT}?")).map_err(|err| format!("with a live session: {err}"))?;
    ensure(q.get("state") == Some(state.secret()), "state not echoed")?;
    let code = q.get("code").ok_or(format!("no code at once: {q:?}"))?;
    Ok(Code { code: code.clone(), verifier: verifier.secret().clone(), nonce })
}

pub async fn spa_flow(c: &Rp) -> Check {
    let client = c.client(SPA, None, SPA_REDIRECT)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let q = c.code_query(url.as_str(), SPA_REDIRECT).await?;
    ensure(q.get("state") == Some(state.secret()), "state not echoed")?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let resp = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(e("exchange"))?
        .set_pkce_verifier(verifier)
        .request_async(&c.http)
        .await
        .map_err(|err| format!("token request without a secret: {err} ({})", oauth_error(&err)))?;
    resp.id_token().ok_or("no ID token")?.claims(&client.id_token_verifier(), &nonce).map_err(e("ID token"))?;
    Ok(())
}

async fn spa_refused(c: &Rp, extra: &[(&str, &str)]) -> Check {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", SPA),
        ("redirect_uri", SPA_REDIRECT),
        ("scope", "openid"),
        ("state", "s-pkce"),
    ];
    params.extend_from_slice(extra);
    let r = c.browser.get(c.url("/authorize")).query(&params).send().await.map_err(e("authorize"))?;
    let loc = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    ensure(
        loc.starts_with(&format!("{SPA_REDIRECT}?")),
        format!("expected an error redirect to the client, got {} {loc}", r.status()),
    )?;
    let q = query(&loc);
    ensure(q.get("error").map(String::as_str) == Some("invalid_request"), format!("error {:?}", q.get("error")))?;
    ensure(!q.contains_key("code"), "a code was issued")?;
    ensure(
        q.get("state").map(String::as_str) == Some("s-pkce") && q.get("iss") == Some(&c.base),
        format!("state/iss not returned: {q:?}"),
    )
}

pub async fn spa_no_pkce(c: &Rp) -> Check {
    spa_refused(c, &[]).await
}

pub async fn spa_plain(c: &Rp) -> Check {
    spa_refused(
        c,
        &[("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"), ("code_challenge_method", "plain")],
    )
    .await
}

pub async fn userinfo(c: &Rp, t: Option<&Tokens>) -> Check {
    let t = t.ok_or("prerequisite failed: verified code flow")?;
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let info: CoreUserInfoClaims = client
        .user_info(AccessToken::new(t.access.clone()), Some(SubjectIdentifier::new(t.sub.clone())))
        .map_err(e("userinfo endpoint"))?
        .request_async(&c.http)
        .await
        .map_err(e("userinfo (sub must equal the ID token's)"))?;
    ensure(info.subject().as_str() == t.sub, "sub differs from the ID token")?;
    ensure(info.email().is_some(), "email not released for the email scope")?;
    ensure(info.name().is_some(), "name not released for the profile scope")?;
    ensure(info.phone_number().is_none(), "phone_number released without the phone scope (SH-8.2)")
}

pub async fn userinfo_bad_token(c: &Rp) -> Check {
    let (status, challenge, _) = c.userinfo_raw(Some("not-a-valid-token")).await?;
    ensure(status == 401, format!("status {status}"))?;
    ensure(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        format!("WWW-Authenticate: {challenge:?}"),
    )
}

pub async fn userinfo_no_token(c: &Rp) -> Check {
    let (status, challenge, _) = c.userinfo_raw(None).await?;
    ensure(status == 401, format!("status {status}"))?;
    ensure(
        challenge.starts_with("Bearer") && !challenge.contains("error="),
        format!("WWW-Authenticate: {challenge:?} (no error code without credentials)"),
    )
}

pub async fn userinfo_scope(c: &Rp) -> Check {
    let at = c.cc_token(WEB, WEB_SECRET, Some("api.read")).await?;
    let (status, challenge, _) = c.userinfo_raw(Some(&at)).await?;
    ensure(
        status == 403 && challenge.contains("insufficient_scope"),
        format!("status {status}, WWW-Authenticate {challenge:?}"),
    )
}

pub async fn refresh(c: &Rp, t: Option<&Tokens>) -> Check<(String, String)> {
    let t = t.ok_or("prerequisite failed: verified code flow")?;
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let resp = client
        .exchange_refresh_token(&RefreshToken::new(t.refresh.clone()))
        .map_err(e("refresh"))?
        .request_async(&c.http)
        .await
        .map_err(|err| format!("refresh: {err} ({})", oauth_error(&err)))?;
    let at = resp.access_token().secret().clone();
    let rt = resp.refresh_token().ok_or("no rotated refresh token")?.secret().clone();
    ensure(at != t.access, "the access token was not renewed")?;
    ensure(rt != t.refresh, "the refresh token was not rotated")?;
    ensure(resp.expires_in().is_some(), "no expires_in")?;
    let (status, _, _) = c.userinfo_raw(Some(&at)).await?;
    ensure(status == 200, format!("the new access token gets {status} at UserInfo"))?;
    Ok((at, rt))
}

/// On an instance with `refresh_grace = 10`: a retry gets the same successor, never a branch.
pub async fn refresh_within_grace(c: &Rp, t: Option<&Tokens>) -> Check {
    t.ok_or("prerequisite failed: verified code flow and refresh")?;
    let (_, rt1, _) = c.web_tokens("openid").await?;
    let client = c.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let first = refresh_with(c, &client, rt1.clone()).await.map_err(|err| format!("first refresh: {err}"))?;
    let retry = refresh_with(c, &client, rt1)
        .await
        .map_err(|err| format!("a retry within the grace window was refused: {err}"))?;
    ensure(
        first.access_token().secret() == retry.access_token().secret()
            && first.refresh_token().map(|r| r.secret()) == retry.refresh_token().map(|r| r.secret()),
        "the retry minted a new token pair instead of returning the first use's successor",
    )
}

/// On an instance with `refresh_grace = 0`.
pub async fn refresh_reuse(strict: &Rp) -> Check {
    let (_, rt1, _) = strict.web_tokens("openid").await?;
    let client = strict.client(WEB, Some(WEB_SECRET), WEB_REDIRECT)?;
    let second = refresh_with(strict, &client, rt1.clone()).await.map_err(|err| format!("first refresh: {err}"))?;
    let at2 = second.access_token().secret().clone();
    let rt2 = second.refresh_token().ok_or("no rotated refresh token")?.secret().clone();
    // No grace window: a replay even in the same second is reuse.
    match refresh_with(strict, &client, rt1).await {
        Ok(_) => return Err("the rotated refresh token was accepted again after the grace window".into()),
        Err(code) => ensure(code == "invalid_grant", format!("reuse answered {code}, expected invalid_grant"))?,
    }
    match refresh_with(strict, &client, rt2).await {
        Ok(_) => return Err("the family's newest refresh token still works after the reuse".into()),
        Err(code) => ensure(code == "invalid_grant", format!("newest token answered {code}"))?,
    }
    let v = strict.introspect_raw(&at2).await?;
    ensure(v["active"] == false, format!("the family's access token still introspects active: {v}"))
}

/// A refresh through openidconnect; `Err` holds the OAuth error code.
async fn refresh_with(c: &Rp, client: &Oidc, rt: String) -> Check<CoreTokenResponse> {
    client
        .exchange_refresh_token(&RefreshToken::new(rt))
        .map_err(e("refresh"))?
        .request_async(&c.http)
        .await
        .map_err(|err| oauth_error(&err))
}
