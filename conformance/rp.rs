//! The checks. Each is a small async function returning `Err(reason)` on failure; `run_all`
//! runs them in order against one platform and records a row per check.

use std::collections::HashMap;
use std::future::Future;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken,
    RevocationUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};
use serde_json::{Value, json};

use crate::harness::Platform;
use crate::report::{Report, Row};

type Oidc = CoreClient<EndpointSet, EndpointNotSet, EndpointSet, EndpointSet, EndpointMaybeSet, EndpointMaybeSet>;
type Check = Result<(), String>;

const WEB: (&str, &str) = ("demo-web", "demo-web-secret-0123456789abcdef");
const WEB_REDIRECT: &str = "http://127.0.0.1:9000/callback";
const SPA: &str = "demo-spa";
const SPA_REDIRECT: &str = "http://127.0.0.1:9001/callback";
const ADMIN: (&str, &str) = ("admin-cli", "admin-cli-secret-0123456789abcdef");
const INITIAL_TOKEN: &str = "dev-initial-access-token-change-me";

fn ensure(cond: bool, why: impl Into<String>) -> Check {
    if cond { Ok(()) } else { Err(why.into()) }
}

fn e<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{what}: {err}")
}

/// State shared by the checks of one pass.
struct Ctx {
    base: String,
    http: openidconnect::reqwest::Client,
    browser: reqwest::Client,
    meta: CoreProviderMetadata,
    /// Tokens from the code flow: (access, refresh, id token sub).
    tokens: Option<(String, String, String)>,
}

impl Ctx {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn client(&self, id: &str, secret: Option<&str>, redirect: &str) -> Oidc {
        CoreClient::from_provider_metadata(
            self.meta.clone(),
            ClientId::new(id.into()),
            secret.map(|s| ClientSecret::new(s.into())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap())
        .set_introspection_url(IntrospectionUrl::new(self.url("/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(self.url("/revoke")).unwrap())
    }

    /// Follows an authorization URL like a browser without JavaScript: to the login form,
    /// posts it, and returns the final redirect's query parameters.
    async fn browse(&self, auth_url: &str) -> Result<HashMap<String, String>, String> {
        let r = self.browser.get(auth_url).send().await.map_err(e("authorize"))?;
        let mut loc = location(&r).ok_or(format!("authorize answered {} without a redirect", r.status()))?;
        if loc.starts_with("/login") {
            let page = self
                .browser
                .get(self.url(&loc))
                .send()
                .await
                .map_err(e("login page"))?
                .text()
                .await
                .map_err(e("login page"))?;
            let form = [
                ("req", hidden(&page, "req")?),
                ("csrf", hidden(&page, "csrf")?),
                ("username", "demo".to_owned()),
                ("password", "demo-password".to_owned()),
            ];
            let r = self.browser.post(self.url("/login")).form(&form).send().await.map_err(e("login post"))?;
            loc = location(&r).ok_or(format!("login answered {}", r.status()))?;
            if r.status() == 200 {
                return Err("login did not redirect".into());
            }
        }
        Ok(query(&loc))
    }
}

fn location(r: &reqwest::Response) -> Option<String> {
    r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn query(url: &str) -> HashMap<String, String> {
    let u = url::Url::parse(url).or_else(|_| url::Url::parse(&format!("http://x{url}"))).unwrap();
    u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn hidden(html: &str, name: &str) -> Result<String, String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).ok_or(format!("no {name} field"))? + needle.len();
    let end = html[start..].find('"').ok_or("unterminated")? + start;
    Ok(html[start..end].to_owned())
}

fn jwt_json(token: &str, part: usize) -> Value {
    token
        .split('.')
        .nth(part)
        .and_then(tongzheng::crypto::b64_decode)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

async fn record<F: Future<Output = Check>>(
    report: &mut Report,
    backend: &'static str,
    ids: &'static str,
    clause: &'static str,
    name: &'static str,
    f: F,
) {
    let error = f.await.err();
    report.record(Row { ids, clause, name, backend, error });
}

pub async fn run_all(p: &Platform, backend: &'static str, report: &mut Report) {
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let meta = match CoreProviderMetadata::discover_async(IssuerUrl::new(p.base.clone()).unwrap(), &http).await {
        Ok(m) => m,
        Err(err) => {
            report.record(Row {
                ids: "DC-1",
                clause: "OIDC Discovery s4",
                name: "discovery",
                backend,
                error: Some(err.to_string()),
            });
            return;
        }
    };
    let mut c = Ctx { base: p.base.clone(), http, browser, meta, tokens: None };
    record(report, backend, "DC-1", "OIDC Discovery s3, s4.3", "discovery document, issuer matches", discovery(&c))
        .await;
    record(report, backend, "DC-1", "RFC 8414 s3", "OAuth authorization server metadata", as_metadata(&c)).await;
    let flow = code_flow(&c).await;
    let ok = flow.is_ok();
    if let Ok(t) = &flow {
        c.tokens = Some(t.clone());
    }
    record(
        report,
        backend,
        "DC-1, DC-6, HL-5.3",
        "OIDC Core s3.1, RFC 7636, RFC 9207",
        "code flow + PKCE + ID token validation (openidconnect RP)",
        async { flow.map(|_| ()) },
    )
    .await;
    if ok {
        record(report, backend, "GB-6.4b", "OIDC Core s5.3", "userinfo with the access token", userinfo(&c)).await;
        record(report, backend, "AY-7.2b", "RFC 7662 s2", "introspection of an active token", introspection(&c)).await;
        record(
            report,
            backend,
            "DC-3",
            "RFC 6749 s6, RFC 9700 s4.14",
            "refresh rotation and reuse detection",
            refresh(&c),
        )
        .await;
    }
    record(report, backend, "AY-7.2b", "RFC 9068 s2.1", "access token is a JWT with typ at+jwt", at_jwt(&c)).await;
    record(report, backend, "DC-2, AY-7.2a", "RFC 6749 s4.4", "client credentials", client_credentials(&c)).await;
    record(report, backend, "AY-7.1", "RFC 6749 s5.2", "ungranted scope refused (invalid_scope)", invalid_scope(&c))
        .await;
    record(report, backend, "AY-7.2c", "RFC 7009 s2", "revocation makes a token inactive", revocation(&c)).await;
    record(
        report,
        backend,
        "DC-1",
        "RFC 7636 s4.4.1, RFC 9700 s2.1.1",
        "public client: PKCE required, plain refused",
        public_client(&c),
    )
    .await;
    record(
        report,
        backend,
        "DC-11",
        "RFC 7591 s3, RFC 7592 s2",
        "dynamic registration and management",
        registration(&c),
    )
    .await;
    record(
        report,
        backend,
        "DC-1",
        "RFC 6749 s4.1.2.1",
        "bad client or redirect_uri: error page, no redirect",
        no_open_redirect(&c),
    )
    .await;
    record(report, backend, "DC-1", "RFC 6749 s4.1.2, s5.2", "replayed code is invalid_grant", code_replay(&c)).await;
    record(report, backend, "GB-6.9.3", "RFC 6749 s5.2", "wrong secret is 401 invalid_client", wrong_secret(&c)).await;
    record(
        report,
        backend,
        "GB-6.9.3",
        "RFC 6749 s3.1, s5.2",
        "malformed token requests get OAuth errors",
        malformed(&c),
    )
    .await;
    record(
        report,
        backend,
        "HL-5.3",
        "OIDC Core s3.1.2.6",
        "prompt=none without session: login_required",
        prompt_none(&c),
    )
    .await;
    record(report, backend, "GB-6.8b", "RFC 6750 s3.1", "bad bearer token: 401 with WWW-Authenticate", bad_bearer(&c))
        .await;
    record(
        report,
        backend,
        "DC-4, GB-6.4d",
        "RP-Initiated Logout s2, s3",
        "end_session with id_token_hint logs out and redirects",
        rp_logout(&c),
    )
    .await;
    record(
        report,
        backend,
        "DC-4, HL-5.4",
        "Back-Channel Logout s2.4-s2.6",
        "logout reaches other clients with valid logout tokens; HL-5.4 backend logout",
        backchannel(&c, p).await,
    )
    .await;
    record(
        report,
        backend,
        "DC-4",
        "Front-Channel Logout s3",
        "front-channel iframe with iss and sid",
        frontchannel(&c).await,
    )
    .await;
}

async fn discovery(c: &Ctx) -> Check {
    ensure(c.meta.issuer().as_str() == c.base, "issuer differs from the discovery URL prefix")?;
    let jwks = c.meta.jwks();
    ensure(jwks.keys().len() >= 3, format!("JWKS has {} keys", jwks.keys().len()))?;
    let raw: Value = c
        .browser
        .get(c.url("/.well-known/openid-configuration"))
        .send()
        .await
        .map_err(e("get"))?
        .json()
        .await
        .map_err(e("json"))?;
    ensure(raw["code_challenge_methods_supported"] == json!(["S256"]), "S256 only")?;
    ensure(raw["authorization_response_iss_parameter_supported"] == true, "RFC 9207 advertised")?;
    ensure(raw["end_session_endpoint"].is_string() && raw["backchannel_logout_supported"] == true, "logout advertised")
}

async fn as_metadata(c: &Ctx) -> Check {
    let raw: Value = c
        .browser
        .get(c.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .map_err(e("get"))?
        .json()
        .await
        .map_err(e("json"))?;
    ensure(
        raw["issuer"] == c.base && raw["token_endpoint"].is_string() && raw["jwks_uri"].is_string(),
        "required RFC 8414 fields",
    )
}

async fn code_flow(c: &Ctx) -> Result<(String, String, String), String> {
    let client = c.client(WEB.0, Some(WEB.1), WEB_REDIRECT);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let q = c.browse(url.as_str()).await?;
    ensure(q.get("state") == Some(state.secret()), "state echoed (RFC 6749 s4.1.2)")?;
    ensure(q.get("iss") == Some(&c.base), "iss in the response (RFC 9207 s2)")?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let resp = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(e("exchange"))?
        .set_pkce_verifier(verifier)
        .request_async(&c.http)
        .await
        .map_err(e("token request"))?;
    let id_token = resp.id_token().ok_or("no ID token")?;
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).map_err(e("ID token validation"))?;
    let expected = claims.access_token_hash().ok_or("no at_hash")?;
    let actual = AccessTokenHash::from_token(
        resp.access_token(),
        id_token.signing_alg().map_err(e("alg"))?,
        id_token.signing_key(&verifier).map_err(e("key"))?,
    )
    .map_err(e("at_hash"))?;
    ensure(actual == *expected, "at_hash matches the access token (OIDC Core s3.1.3.8)")?;
    ensure(resp.expires_in().is_some(), "expires_in (AY-7.2a)")?;
    let rt = resp.refresh_token().ok_or("no refresh token")?;
    Ok((resp.access_token().secret().clone(), rt.secret().clone(), claims.subject().to_string()))
}

async fn userinfo(c: &Ctx) -> Check {
    let (at, _, sub) = c.tokens.clone().ok_or("no tokens")?;
    let client = c.client(WEB.0, Some(WEB.1), WEB_REDIRECT);
    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(openidconnect::AccessToken::new(at), Some(openidconnect::SubjectIdentifier::new(sub)))
        .map_err(e("userinfo config"))?
        .request_async(&c.http)
        .await
        .map_err(e("userinfo"))?;
    ensure(info.email().is_some(), "email released for the email scope")?;
    ensure(info.phone_number().is_none(), "phone not released without the phone scope (SH-8.2)")
}

async fn introspection(c: &Ctx) -> Check {
    let (at, _, _) = c.tokens.clone().ok_or("no tokens")?;
    let client = c.client(WEB.0, Some(WEB.1), WEB_REDIRECT);
    let r = client
        .introspect(&openidconnect::AccessToken::new(at))
        .request_async(&c.http)
        .await
        .map_err(e("introspect"))?;
    ensure(r.active(), "active")?;
    ensure(r.client_id().map(|c| c.as_str()) == Some(WEB.0), "client_id")
}

async fn refresh(c: &Ctx) -> Check {
    let (_, rt, _) = c.tokens.clone().ok_or("no tokens")?;
    let client = c.client(WEB.0, Some(WEB.1), WEB_REDIRECT);
    let first = client
        .exchange_refresh_token(&RefreshToken::new(rt.clone()))
        .map_err(e("config"))?
        .request_async(&c.http)
        .await
        .map_err(e("refresh"))?;
    let new_rt = first.refresh_token().ok_or("no rotated refresh token")?.secret().clone();
    ensure(new_rt != rt, "rotated")?;
    // refresh_grace = 0 in this suite: any reuse of the rotated token is theft.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let reuse =
        client.exchange_refresh_token(&RefreshToken::new(rt)).map_err(e("config"))?.request_async(&c.http).await;
    ensure(reuse.is_err(), "reuse of a rotated token refused")?;
    let after =
        client.exchange_refresh_token(&RefreshToken::new(new_rt)).map_err(e("config"))?.request_async(&c.http).await;
    ensure(after.is_err(), "reuse revoked the whole family")
}

async fn cc_token(c: &Ctx, who: (&str, &str), scope: Option<&str>) -> Result<(u16, Value), String> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r =
        c.browser.post(c.url("/token")).basic_auth(who.0, Some(who.1)).form(&form).send().await.map_err(e("token"))?;
    let status = r.status().as_u16();
    let nostore = r.headers().get("cache-control").is_some_and(|v| v == "no-store");
    ensure(nostore, "Cache-Control: no-store (RFC 6749 s5.1)")?;
    Ok((status, r.json().await.map_err(e("json"))?))
}

async fn at_jwt(c: &Ctx) -> Check {
    let (_, t) = cc_token(c, ADMIN, None).await?;
    let h = jwt_json(t["access_token"].as_str().unwrap_or_default(), 0);
    ensure(h["typ"] == "at+jwt" && h["alg"] == "ES256" && h["kid"].is_string(), format!("header {h}"))
}

async fn client_credentials(c: &Ctx) -> Check {
    let client = c.client(ADMIN.0, Some(ADMIN.1), WEB_REDIRECT);
    let r = client
        .exchange_client_credentials()
        .map_err(e("config"))?
        .request_async(&c.http)
        .await
        .map_err(e("client_credentials"))?;
    ensure(r.expires_in().is_some(), "expires_in")?;
    ensure(r.refresh_token().is_none(), "no refresh token (RFC 6749 s4.4.3)")?;
    ensure(r.scopes().is_some_and(|s| s.iter().any(|s| s.as_str() == "tongzheng:admin")), "granted scope returned")
}

async fn invalid_scope(c: &Ctx) -> Check {
    let (status, v) = cc_token(c, WEB, Some("tongzheng:admin")).await?;
    ensure(status == 400 && v["error"] == "invalid_scope", format!("{status} {v}"))
}

async fn revocation(c: &Ctx) -> Check {
    let client = c.client(WEB.0, Some(WEB.1), WEB_REDIRECT);
    let r =
        client.exchange_client_credentials().map_err(e("config"))?.request_async(&c.http).await.map_err(e("token"))?;
    let at = r.access_token().clone();
    // oauth2's revocation client insists on https (RFC 7009 s2 requires TLS); this suite runs
    // over loopback HTTP, so the revocation request itself is sent by hand.
    let r = c
        .browser
        .post(c.url("/revoke"))
        .basic_auth(WEB.0, Some(WEB.1))
        .form(&[("token", at.secret().as_str()), ("token_type_hint", "access_token")])
        .send()
        .await
        .map_err(e("revoke"))?;
    ensure(r.status() == 200, format!("revoke answered {}", r.status()))?;
    let i = client.introspect(&at).request_async(&c.http).await.map_err(e("introspect"))?;
    ensure(!i.active(), "revoked token introspects inactive")
}

async fn public_client(c: &Ctx) -> Check {
    let base = [("response_type", "code"), ("client_id", SPA), ("redirect_uri", SPA_REDIRECT), ("scope", "openid")];
    let r = c.browser.get(c.url("/authorize")).query(&base).send().await.map_err(e("authorize"))?;
    let q = query(&location(&r).ok_or("no redirect")?);
    ensure(q.get("error").map(String::as_str) == Some("invalid_request"), "no PKCE refused")?;
    let mut plain = base.to_vec();
    plain.extend([
        ("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"),
        ("code_challenge_method", "plain"),
    ]);
    let r = c.browser.get(c.url("/authorize")).query(&plain).send().await.map_err(e("authorize"))?;
    let q = query(&location(&r).ok_or("no redirect")?);
    ensure(q.get("error").map(String::as_str) == Some("invalid_request"), "plain refused")?;
    let client = c.client(SPA, None, SPA_REDIRECT);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let q = c.browse(url.as_str()).await?;
    let code = q.get("code").ok_or(format!("no code {q:?}"))?;
    let r = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(e("config"))?
        .set_pkce_verifier(verifier)
        .request_async(&c.http)
        .await
        .map_err(e("token"))?;
    r.id_token().ok_or("no ID token")?.claims(&client.id_token_verifier(), &nonce).map_err(e("ID token"))?;
    Ok(())
}

async fn registration(c: &Ctx) -> Check {
    let body =
        json!({"redirect_uris": ["http://127.0.0.1:9100/cb"], "client_name": "conformance", "scope": "openid profile"});
    let r = c
        .browser
        .post(c.url("/register"))
        .bearer_auth(INITIAL_TOKEN)
        .json(&body)
        .send()
        .await
        .map_err(e("register"))?;
    ensure(r.status() == 201, format!("register answered {}", r.status()))?;
    let reg: Value = r.json().await.map_err(e("json"))?;
    let (id, secret, rat, uri) = (
        reg["client_id"].as_str().ok_or("client_id")?.to_owned(),
        reg["client_secret"].as_str().ok_or("client_secret")?.to_owned(),
        reg["registration_access_token"].as_str().ok_or("registration_access_token")?.to_owned(),
        reg["registration_client_uri"].as_str().ok_or("registration_client_uri")?.to_owned(),
    );
    ensure(reg["id_token_signed_response_alg"] == "RS256", "RS256 by default (OIDC Registration s2)")?;
    let r = c.browser.post(c.url("/register")).json(&body).send().await.map_err(e("register"))?;
    ensure(r.status() == 401, "no initial access token: 401")?;
    let bad = json!({"redirect_uris": ["http://evil.example/cb"]});
    let r =
        c.browser.post(c.url("/register")).bearer_auth(INITIAL_TOKEN).json(&bad).send().await.map_err(e("register"))?;
    let v: Value = r.json().await.map_err(e("json"))?;
    ensure(v["error"] == "invalid_redirect_uri", format!("bad redirect: {v}"))?;
    // RFC 7592: read, update, and use the client in a code flow (consent page for dynamic clients).
    let r = c.browser.get(&uri).bearer_auth(&rat).send().await.map_err(e("read"))?;
    ensure(r.status() == 200, "RFC 7592 read")?;
    let mut update = body.clone();
    update["client_id"] = json!(id);
    update["redirect_uris"] = json!(["http://127.0.0.1:9100/cb", "http://127.0.0.1:9100/cb2"]);
    let r = c.browser.put(&uri).bearer_auth(&rat).json(&update).send().await.map_err(e("update"))?;
    ensure(r.status() == 200, format!("RFC 7592 update answered {}", r.status()))?;
    let client = c.client(&id, Some(&secret), "http://127.0.0.1:9100/cb2");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let r = c.browser.get(url.as_str()).send().await.map_err(e("authorize"))?;
    let page = r.text().await.map_err(e("consent page"))?;
    let form = [("req", hidden(&page, "req")?), ("csrf", hidden(&page, "csrf")?), ("decision", "allow".to_owned())];
    let r = c.browser.post(c.url("/consent")).form(&form).send().await.map_err(e("consent"))?;
    let q = query(&location(&r).ok_or("consent did not redirect")?);
    let code = q.get("code").ok_or(format!("no code after consent: {q:?}"))?;
    let t = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(e("config"))?
        .set_pkce_verifier(verifier)
        .request_async(&c.http)
        .await
        .map_err(e("token"))?;
    t.id_token().ok_or("no ID token")?.claims(&client.id_token_verifier(), &nonce).map_err(e("ID token"))?;
    let r = c.browser.delete(&uri).bearer_auth(&rat).send().await.map_err(e("delete"))?;
    ensure(r.status() == 204, "RFC 7592 delete")?;
    let r = c.browser.get(&uri).bearer_auth(&rat).send().await.map_err(e("read"))?;
    ensure(r.status() == 401, "deleted client: 401")
}

async fn no_open_redirect(c: &Ctx) -> Check {
    for params in [
        vec![("response_type", "code"), ("client_id", "no-such-client"), ("redirect_uri", "https://evil.example/cb")],
        vec![("response_type", "code"), ("client_id", WEB.0), ("redirect_uri", "https://evil.example/cb")],
    ] {
        let r = c.browser.get(c.url("/authorize")).query(&params).send().await.map_err(e("authorize"))?;
        ensure(
            r.status() == 400 && location(&r).is_none(),
            format!("{} with Location {:?}", r.status(), location(&r)),
        )?;
    }
    Ok(())
}

async fn code_replay(c: &Ctx) -> Check {
    let q = c
        .browse(&format!(
            "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid",
            c.base, WEB.0, WEB_REDIRECT
        ))
        .await?;
    let code = q.get("code").ok_or("no code")?;
    let redeem = || {
        c.browser
            .post(c.url("/token"))
            .basic_auth(WEB.0, Some(WEB.1))
            .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", WEB_REDIRECT)])
            .send()
    };
    ensure(redeem().await.map_err(e("token"))?.status() == 200, "first redemption")?;
    let v: Value = redeem().await.map_err(e("token"))?.json().await.map_err(e("json"))?;
    ensure(v["error"] == "invalid_grant", format!("{v}"))
}

async fn wrong_secret(c: &Ctx) -> Check {
    let r = c
        .browser
        .post(c.url("/token"))
        .basic_auth(WEB.0, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(e("token"))?;
    let challenge = r.headers().contains_key("www-authenticate");
    ensure(r.status() == 401 && challenge, format!("{}", r.status()))?;
    let v: Value = r.json().await.map_err(e("json"))?;
    ensure(v["error"] == "invalid_client", format!("{v}"))
}

async fn malformed(c: &Ctx) -> Check {
    let post = |body: &'static str, ctype: &'static str| {
        c.browser.post(c.url("/token")).basic_auth(WEB.0, Some(WEB.1)).header("content-type", ctype).body(body).send()
    };
    for (body, ctype, want) in [
        ("grant_type=password&username=a&password=b", "application/x-www-form-urlencoded", "unsupported_grant_type"),
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
        ("{\"grant_type\":\"client_credentials\"}", "application/json", "invalid_request"),
        ("scope=openid", "application/x-www-form-urlencoded", "invalid_request"),
    ] {
        let r = post(body, ctype).await.map_err(e("token"))?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.map_err(e("json"))?;
        ensure(status == 400 && v["error"] == want, format!("{body}: {status} {v}"))?;
    }
    Ok(())
}

async fn prompt_none(c: &Ctx) -> Check {
    let fresh = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(e("client"))?;
    let r = fresh
        .get(c.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", WEB.0),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("prompt", "none"),
            ("state", "pn"),
        ])
        .send()
        .await
        .map_err(e("authorize"))?;
    let q = query(&location(&r).ok_or("no redirect")?);
    ensure(
        q.get("error").map(String::as_str) == Some("login_required")
            && q.get("state").map(String::as_str) == Some("pn"),
        format!("{q:?}"),
    )
}

async fn bad_bearer(c: &Ctx) -> Check {
    let r = c
        .browser
        .get(c.url("/userinfo"))
        .bearer_auth("eyJhbGciOiJub25lIn0.e30.")
        .send()
        .await
        .map_err(e("userinfo"))?;
    let h = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    ensure(r.status() == 401 && h.contains("invalid_token"), format!("{} {h}", r.status()))?;
    let r = c.browser.get(c.url("/userinfo")).send().await.map_err(e("userinfo"))?;
    ensure(r.status() == 401 && r.headers().contains_key("www-authenticate"), "missing token: 401 challenge")
}

async fn admin_token(c: &Ctx) -> Result<String, String> {
    let (_, t) = cc_token(c, ADMIN, None).await?;
    t["access_token"].as_str().map(str::to_owned).ok_or("no admin token".into())
}

/// Registers an RP through the admin API; returns (client_id, secret, redirect).
async fn admin_rp(c: &Ctx, name: &str, extra: Value) -> Result<(String, String, String), String> {
    let admin = admin_token(c).await?;
    let redirect = format!("http://127.0.0.1:9200/cb/{name}");
    let mut body = json!({"client_id": format!("conf-{name}-{}", tongzheng::crypto::random_token(4).replace(['-', '_'], "x")), "redirect_uris": [redirect],
        "grant_types": ["authorization_code"], "scope": "openid", "post_logout_redirect_uris": [format!("http://127.0.0.1:9200/bye/{name}")]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let r =
        c.browser.post(c.url("/admin/v1/clients")).bearer_auth(admin).json(&body).send().await.map_err(e("admin"))?;
    let v: Value = r.json().await.map_err(e("json"))?;
    Ok((
        v["client_id"].as_str().ok_or(format!("{v}"))?.to_owned(),
        v["client_secret"].as_str().unwrap_or_default().to_owned(),
        redirect,
    ))
}

/// Logs in (or uses SSO) for `client` and returns its token response.
async fn sso_tokens(c: &Ctx, id: &str, secret: &str, redirect: &str) -> Result<Value, String> {
    let q = c
        .browse(&format!("{}/authorize?response_type=code&client_id={id}&redirect_uri={redirect}&scope=openid", c.base))
        .await?;
    let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
    let r = c
        .browser
        .post(c.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect)])
        .send()
        .await
        .map_err(e("token"))?;
    r.json().await.map_err(e("json"))
}

async fn rp_logout(c: &Ctx) -> Check {
    let (id, secret, redirect) = admin_rp(c, "rpl", json!({})).await?;
    let t = sso_tokens(c, &id, &secret, &redirect).await?;
    let hint = t["id_token"].as_str().ok_or("no id_token")?;
    let bye = "http://127.0.0.1:9200/bye/rpl".to_string();
    let r = c
        .browser
        .get(c.url("/end_session"))
        .query(&[("id_token_hint", hint), ("post_logout_redirect_uri", bye.as_str()), ("state", "s9")])
        .send()
        .await
        .map_err(e("end_session"))?;
    ensure(location(&r).as_deref() == Some(&format!("{bye}?state=s9")), format!("redirect {:?}", location(&r)))?;
    let r = c
        .browser
        .get(c.url("/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid"),
            ("prompt", "none"),
        ])
        .send()
        .await
        .map_err(e("authorize"))?;
    let q = query(&location(&r).ok_or("no redirect")?);
    ensure(
        q.get("error").map(String::as_str) == Some("login_required"),
        "logged out everywhere: prompt=none gives login_required",
    )?;
    let at = t["access_token"].as_str().unwrap_or_default();
    let r = c.browser.get(c.url("/userinfo")).bearer_auth(at).send().await.map_err(e("userinfo"))?;
    ensure(r.status() == 401, "the session's access token no longer works")
}

async fn backchannel(c: &Ctx, p: &Platform) -> impl Future<Output = Check> {
    let receiver = Receiver::start().await;
    async move {
        let (a, a_secret, a_redirect) = admin_rp(
            c,
            "bca",
            json!({"backchannel_logout_uri": receiver.uri("a"), "backchannel_logout_session_required": true}),
        )
        .await?;
        let (b, b_secret, b_redirect) = admin_rp(
            c,
            "bcb",
            json!({"backchannel_logout_uri": receiver.uri("b"), "backchannel_logout_session_required": true}),
        )
        .await?;
        let ta = sso_tokens(c, &a, &a_secret, &a_redirect).await?;
        sso_tokens(c, &b, &b_secret, &b_redirect).await?;
        let hint = ta["id_token"].as_str().ok_or("no id_token")?;
        let sid = jwt_json(hint, 1)["sid"].as_str().unwrap_or_default().to_owned();
        // HL-5.4: A's backend ends the login; B (and only B) is told.
        let r = c
            .browser
            .post(c.url("/logout"))
            .basic_auth(&a, Some(&a_secret))
            .form(&[("id_token_hint", hint)])
            .send()
            .await
            .map_err(e("logout"))?;
        ensure(r.status() == 200, format!("backend logout answered {}", r.status()))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let token = loop {
            if let Some(t) = receiver.get("b") {
                break t;
            }
            ensure(std::time::Instant::now() < deadline, "no logout token reached B within 10 s")?;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        ensure(receiver.get("a").is_none(), "the caller is not notified")?;
        // Validate the logout token against the published JWKS, as an RP would.
        let (claims, typ): (Value, _) = p.state.keys.verify(&token).map_err(e("logout token signature"))?;
        let jwks: Value =
            c.browser.get(c.url("/jwks")).send().await.map_err(e("jwks"))?.json().await.map_err(e("json"))?;
        let kid = jwt_json(&token, 0)["kid"].clone();
        ensure(
            jwks["keys"].as_array().is_some_and(|k| k.iter().any(|k| k["kid"] == kid)),
            "signing key is in the JWKS",
        )?;
        ensure(typ.as_deref() == Some("logout+jwt"), "typ logout+jwt")?;
        ensure(claims["aud"] == b && claims["iss"] == c.base && claims["sid"] == sid, format!("claims {claims}"))?;
        ensure(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(), "event claim")?;
        ensure(claims.get("nonce").is_none(), "no nonce (s2.4)")
    }
}

async fn frontchannel(c: &Ctx) -> impl Future<Output = Check> {
    async move {
        let (f, f_secret, f_redirect) =
            admin_rp(c, "fc", json!({"frontchannel_logout_uri": "http://127.0.0.1:9200/fc", "frontchannel_logout_session_required": true})).await?;
        let t = sso_tokens(c, &f, &f_secret, &f_redirect).await?;
        let hint = t["id_token"].as_str().ok_or("no id_token")?;
        let r = c
            .browser
            .get(c.url("/end_session"))
            .query(&[("id_token_hint", hint)])
            .send()
            .await
            .map_err(e("end_session"))?;
        let html = r.text().await.map_err(e("page"))?;
        let iss = url::form_urlencoded::byte_serialize(c.base.as_bytes()).collect::<String>();
        ensure(
            html.contains(&format!("<iframe src=\"http://127.0.0.1:9200/fc?iss={iss}&amp;sid=")),
            "iframe with iss and sid",
        )
    }
}

/// A back-channel logout receiver for the logout checks.
struct Receiver {
    base: String,
    got: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>>,
}

impl Receiver {
    async fn start() -> Self {
        let got: std::sync::Arc<std::sync::Mutex<HashMap<String, String>>> = Default::default();
        let store = got.clone();
        let app = axum::Router::new().route(
            "/bc/{name}",
            axum::routing::post(move |axum::extract::Path(name): axum::extract::Path<String>, body: String| {
                let store = store.clone();
                async move {
                    let token = url::form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned());
                    if let Some(t) = token {
                        store.lock().unwrap().insert(name, t);
                    }
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, got }
    }

    fn uri(&self, name: &str) -> String {
        format!("{}/bc/{name}", self.base)
    }

    fn get(&self, name: &str) -> Option<String> {
        self.got.lock().unwrap().get(name).cloned()
    }
}
