//! Dynamic client registration (RFC 7591) through openidconnect, client configuration
//! management (RFC 7592), and the registered client in a code flow with the consent page.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClientAuthMethod, CoreClientRegistrationRequest, CoreGrantType,
    CoreJwsSigningAlgorithm, CoreRegisterErrorResponseType, CoreResponseType,
};
use openidconnect::registration::ClientRegistrationError;
use openidconnect::{
    AccessToken, AuthorizationCode, ClientName, CsrfToken, LocalizedClaim, Nonce, PkceCodeChallenge, RedirectUrl,
    ResponseTypes, TokenResponse,
};
use serde_json::{Value, json};

use crate::report::{Check, ensure};
use crate::rp::{HtmlForm, INITIAL_TOKEN, Landing, Rp, browser, e, oauth_error, query, snippet};

const REDIRECT: &str = "http://127.0.0.1:9100/cb";
const REDIRECT2: &str = "http://127.0.0.1:9100/cb2";

/// A registered client.
pub struct Registered {
    id: String,
    secret: String,
    rat: String,
    uri: String,
}

fn request(redirect: &str) -> Check<CoreClientRegistrationRequest> {
    let mut name = LocalizedClaim::new();
    name.insert(None, ClientName::new("conformance RP".into()));
    Ok(CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new(redirect.into()).map_err(e("redirect"))?],
        Default::default(),
    )
    .set_client_name(Some(name))
    .set_grant_types(Some(vec![CoreGrantType::AuthorizationCode]))
    .set_response_types(Some(vec![ResponseTypes::new(vec![CoreResponseType::Code])]))
    .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::ClientSecretBasic)))
}

pub async fn register(c: &Rp) -> Check<Registered> {
    let endpoint = c.meta()?.registration_endpoint().ok_or("no registration_endpoint in the metadata")?;
    let req = request(REDIRECT)?.set_initial_access_token(Some(AccessToken::new(INITIAL_TOKEN.into())));
    let resp = req.register_async(endpoint, &c.http).await.map_err(|err| match err {
        ClientRegistrationError::ServerResponse(r) => format!("registration refused: {r}"),
        ClientRegistrationError::Response(status, body, why) => {
            format!("registration answered {status}: {why}: {}", String::from_utf8_lossy(&body))
        }
        other => format!("registration: {other}"),
    })?;
    ensure(resp.redirect_uris().iter().any(|u| u.as_str() == REDIRECT), "redirect_uris not echoed (RFC 7591 s3.2.1)")?;
    ensure(
        resp.id_token_signed_response_alg().is_none_or(|a| *a == CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        format!(
            "id_token_signed_response_alg {:?}: RS256 is the default (OIDC Registration s2)",
            resp.id_token_signed_response_alg()
        ),
    )?;
    Ok(Registered {
        id: resp.client_id().as_str().to_owned(),
        secret: resp.client_secret().ok_or("no client_secret for client_secret_basic")?.secret().clone(),
        rat: resp.registration_access_token().ok_or("no registration_access_token (RFC 7592 s3)")?.secret().clone(),
        uri: resp.registration_client_uri().ok_or("no registration_client_uri (RFC 7592 s3)")?.url().to_string(),
    })
}

pub async fn register_unauthorized(c: &Rp) -> Check {
    let body = json!({"redirect_uris": [REDIRECT]});
    for token in [None, Some("wrong-initial-access-token")] {
        let mut req = c.http.post(c.url("/register")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.map_err(e("register"))?;
        let challenge =
            r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        ensure(
            r.status() == 401 && challenge.starts_with("Bearer"),
            format!("initial access token {token:?}: {} with WWW-Authenticate {challenge:?}", r.status()),
        )?;
    }
    Ok(())
}

pub async fn register_bad_redirect(c: &Rp) -> Check {
    let endpoint = c.meta()?.registration_endpoint().ok_or("no registration_endpoint in the metadata")?;
    let req = request("http://evil.example/cb")?.set_initial_access_token(Some(AccessToken::new(INITIAL_TOKEN.into())));
    match req.register_async(endpoint, &c.http).await {
        Ok(r) => Err(format!("a plain-http, non-loopback redirect URI was registered as {}", r.client_id().as_str())),
        Err(ClientRegistrationError::ServerResponse(r)) => ensure(
            *r.error() == CoreRegisterErrorResponseType::InvalidRedirectUri,
            format!("error {} (expected invalid_redirect_uri)", r.error().as_ref()),
        ),
        Err(other) => Err(format!("not an RFC 7591 s3.2.2 error response: {other}")),
    }
}

async fn config_request(
    c: &Rp,
    method: reqwest::Method,
    r: &Registered,
    token: &str,
    body: Option<&Value>,
) -> Check<(u16, Value)> {
    let mut req = c.http.request(method, &r.uri).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(e("client configuration endpoint"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

pub async fn read(c: &Rp, r: Option<&Registered>) -> Check {
    let r = r.ok_or("prerequisite failed: registration")?;
    let (status, v) = config_request(c, reqwest::Method::GET, r, &r.rat, None).await?;
    ensure(status == 200, format!("read answered {status}: {v}"))?;
    ensure(v["client_id"] == r.id.as_str() && v["redirect_uris"] == json!([REDIRECT]), format!("read returned {v}"))?;
    let (status, _) = config_request(c, reqwest::Method::GET, r, "wrong-registration-token", None).await?;
    ensure(status == 401, format!("a wrong registration access token got {status} (s3: 401)"))
}

pub async fn update(c: &Rp, r: Option<&Registered>) -> Check {
    let r = r.ok_or("prerequisite failed: registration")?;
    let body = json!({
        "client_id": r.id, "redirect_uris": [REDIRECT, REDIRECT2], "client_name": "conformance RP (updated)",
        "grant_types": ["authorization_code"], "response_types": ["code"], "token_endpoint_auth_method": "client_secret_basic",
    });
    let (status, v) = config_request(c, reqwest::Method::PUT, r, &r.rat, Some(&body)).await?;
    ensure(status == 200, format!("update answered {status}: {v}"))?;
    ensure(
        v["redirect_uris"] == json!([REDIRECT, REDIRECT2]),
        format!("redirect_uris after update: {}", v["redirect_uris"]),
    )?;
    let (_, v) = config_request(c, reqwest::Method::GET, r, &r.rat, None).await?;
    ensure(v["client_name"] == "conformance RP (updated)", format!("read after update: {v}"))
}

/// The consent form shown for `auth_url`, logging in first when the browser has no session.
async fn consent_page(c: &Rp, b: &reqwest::Client, auth_url: &str) -> Check<HtmlForm> {
    let page: Landing = c.authenticate(b, auth_url).await?;
    ensure(
        page.status == 200,
        format!("expected the consent page, got {} {:?} {}", page.status, page.location, snippet(&page.body)),
    )?;
    let form = HtmlForm::find(&page.body, "/consent")?;
    form.field("req")?;
    form.field("csrf")?;
    for decision in ["allow", "deny"] {
        ensure(form.buttons.iter().any(|(k, v)| k == "decision" && v == decision), format!("no {decision} button"))?;
    }
    Ok(form)
}

pub async fn consent_deny(c: &Rp, r: Option<&Registered>) -> Check<reqwest::Client> {
    let r = r.ok_or("prerequisite failed: registration and update")?;
    // A new browser: no session yet, so the user logs in and then sees the consent page.
    let b = browser()?;
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT2}&scope=openid&state=deny-1",
        c.base, r.id
    );
    let form = consent_page(c, &b, &url).await?;
    let answer = c.post_form(&b, "/consent", &form.submission(&[("decision", "deny")])).await?;
    let q = answer.redirect_query(&format!("{REDIRECT2}?"))?;
    ensure(q.get("error").map(String::as_str) == Some("access_denied"), format!("error {:?}", q.get("error")))?;
    ensure(q.get("state").map(String::as_str) == Some("deny-1") && !q.contains_key("code"), format!("{q:?}"))?;
    Ok(b)
}

pub async fn consent_allow(c: &Rp, r: Option<&Registered>, b: Option<reqwest::Client>) -> Check {
    let r = r.ok_or("prerequisite failed: registration and update")?;
    let b = match b {
        Some(b) => b,
        None => browser()?,
    };
    let client = c.client(&r.id, Some(&r.secret), REDIRECT2)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let form = consent_page(c, &b, url.as_str()).await?;
    let answer = c.post_form(&b, "/consent", &form.submission(&[("decision", "allow")])).await?;
    let q = answer.redirect_query(&format!("{REDIRECT2}?"))?;
    ensure(q.get("state") == Some(state.secret()) && q.get("iss") == Some(&c.base), format!("state/iss: {q:?}"))?;
    let code = q.get("code").ok_or(format!("no code after consent: {q:?}"))?;
    let t = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .map_err(e("exchange"))?
        .set_pkce_verifier(verifier)
        .request_async(&c.http)
        .await
        .map_err(|err| format!("token request: {err} ({})", oauth_error(&err)))?;
    let id_token = t.id_token().ok_or("no ID token")?;
    id_token.claims(&client.id_token_verifier(), &nonce).map_err(e("ID token verification"))?;
    let alg = id_token.signing_alg().map_err(e("alg"))?;
    ensure(
        *alg == CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        format!("ID token alg {alg:?}, registered default RS256"),
    )
}

pub async fn delete(c: &Rp, r: Option<&Registered>) -> Check {
    let r = r.ok_or("prerequisite failed: registration")?;
    let (status, v) = config_request(c, reqwest::Method::DELETE, r, &r.rat, None).await?;
    ensure(status == 204, format!("delete answered {status}: {v}"))?;
    let (status, _) = config_request(c, reqwest::Method::GET, r, &r.rat, None).await?;
    ensure(status == 401, format!("read after delete answered {status} (s2.3: 401)"))?;
    let (status, v) = c.token_raw(&r.id, &r.secret, &[("grant_type", "client_credentials")]).await?;
    ensure(status == 401 && v["error"] == "invalid_client", format!("the deleted client at /token: {status} {v}"))?;
    let url =
        format!("{}/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}&scope=openid", c.base, r.id);
    let page = c.get(&c.browser, &url).await?;
    ensure(
        page.location.is_none() && page.status == 400,
        format!(
            "authorize for the deleted client: {} {:?} {:?}",
            page.status,
            page.location,
            query(page.location.as_deref().unwrap_or_default())
        ),
    )
}
