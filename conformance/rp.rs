//! The relying party: an `openidconnect` client built from discovery, a cookie-keeping
//! browser without JavaScript that walks the login and consent forms, and small helpers for
//! the raw HTTP checks (redirects, forms, JWTs verified against the published JWKS).

use std::collections::HashMap;

use base64::Engine as _;
use openidconnect::core::{
    CoreClient, CoreErrorResponseType, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IntrospectionUrl, IssuerUrl, JsonWebKey,
    RedirectUrl, RequestTokenError,
};
use serde_json::Value;

use crate::report::{Check, ensure};

/// A discovered client with introspection set (revocation is sent by hand: oauth2 insists on
/// https for it, RFC 7009 s2, and this suite runs over loopback HTTP).
pub type Oidc =
    CoreClient<EndpointSet, EndpointNotSet, EndpointSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// The demo data of config/dev.toml.
pub const WEB: &str = "demo-web";
pub const WEB_SECRET: &str = "demo-web-secret-0123456789abcdef";
pub const WEB_REDIRECT: &str = "http://127.0.0.1:9000/callback";
pub const SPA: &str = "demo-spa";
pub const SPA_REDIRECT: &str = "http://127.0.0.1:9001/callback";
pub const ADMIN: &str = "admin-cli";
pub const ADMIN_SECRET: &str = "admin-cli-secret-0123456789abcdef";
pub const USER: &str = "demo";
pub const PASSWORD: &str = "demo-password";
pub const INITIAL_TOKEN: &str = "dev-initial-access-token-change-me";

/// Turns any error into a check failure naming the step.
pub fn e<E: std::fmt::Display>(step: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{step}: {err}")
}

/// The OAuth error code of a failed openidconnect token request, or a description of the
/// failure when it was not an RFC 6749 s5.2 error response.
pub fn oauth_error<RE: std::error::Error + 'static>(
    err: &RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match err {
        RequestTokenError::ServerResponse(r) => r.error().as_ref().to_owned(),
        other => format!("not an OAuth error response: {other}"),
    }
}

/// A browser without JavaScript: keeps cookies, never follows redirects.
pub fn browser() -> Check<reqwest::Client> {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(e("browser"))
}

/// What a GET or POST answered.
pub struct Landing {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Landing {
    pub async fn of(r: reqwest::Response) -> Check<Self> {
        let status = r.status().as_u16();
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let location = header("location");
        let content_type = header("content-type").unwrap_or_default();
        let body = r.text().await.map_err(e("response body"))?;
        Ok(Self { status, location, content_type, body })
    }

    /// The query of the redirect this answer is, or a failure describing the answer.
    pub fn redirect_query(&self, prefix: &str) -> Check<HashMap<String, String>> {
        match &self.location {
            Some(l) if l.starts_with(prefix) => Ok(query(l)),
            Some(l) => Err(format!("redirected to {l}, expected {prefix}…")),
            None => Err(format!("answered {} without a redirect: {}", self.status, snippet(&self.body))),
        }
    }
}

/// The first 200 characters of a body, for failure reasons.
pub fn snippet(body: &str) -> String {
    body.chars().take(200).collect()
}

/// Query parameters of an absolute or root-relative URL.
pub fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .or_else(|_| url::Url::parse(&format!("http://relative.invalid{url}")))
        .map(|u| u.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

/// An HTML form: its named inputs and buttons.
pub struct HtmlForm {
    pub fields: Vec<(String, String)>,
    pub buttons: Vec<(String, String)>,
}

impl HtmlForm {
    /// The first form in `html` whose action is `action`.
    pub fn find(html: &str, action: &str) -> Check<Self> {
        let mut current: Option<Self> = None;
        for (tag, attrs) in tags(html) {
            let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
            match (tag.as_str(), current.as_mut()) {
                ("form", None) if get("action") == action => {
                    current = Some(Self { fields: Vec::new(), buttons: Vec::new() });
                }
                ("input", Some(f)) if !get("name").is_empty() => f.fields.push((get("name"), get("value"))),
                ("button", Some(f)) if !get("name").is_empty() => f.buttons.push((get("name"), get("value"))),
                ("/form", Some(_)) => break,
                _ => {}
            }
        }
        current.ok_or_else(|| format!("no form posting to {action} in: {}", snippet(html)))
    }

    pub fn field(&self, name: &str) -> Check<String> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).ok_or(format!("form has no field {name}"))
    }

    /// The hidden fields plus `extra` (e.g. the credentials or the chosen button).
    pub fn submission(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> =
            self.fields.iter().filter(|(k, _)| !extra.iter().any(|(x, _)| x == k)).cloned().collect();
        out.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        out
    }
}

/// The tags of an HTML document with their (unescaped) attributes. Enough for our own pages.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for chunk in html.split('<').skip(1) {
        let Some(end) = chunk.find('>') else { continue };
        let inner = chunk.get(..end).unwrap_or_default();
        let name_end = inner.find(|c: char| c.is_whitespace()).unwrap_or(inner.len());
        let name = inner.get(..name_end).unwrap_or_default().to_ascii_lowercase();
        let mut attrs = Vec::new();
        let mut rest = inner.get(name_end..).unwrap_or_default();
        while let Some(eq) = rest.find('=') {
            let key = rest.get(..eq).unwrap_or_default().trim().rsplit(char::is_whitespace).next().unwrap_or_default();
            let after = rest.get(eq + 1..).unwrap_or_default();
            let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else { break };
            let Some(close) = after.get(1..).and_then(|s| s.find(quote)) else { break };
            attrs.push((key.to_ascii_lowercase(), unescape(after.get(1..=close).unwrap_or_default())));
            rest = after.get(close + 2..).unwrap_or_default();
        }
        out.push((name, attrs));
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Decodes one base64url part of a JWT.
pub fn b64url(part: &str) -> Check<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).map_err(e("base64url"))
}

pub fn b64url_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The JSON header and claims of a JWT, without verifying it.
pub fn jwt_parts(token: &str) -> Check<(Value, Value)> {
    let parts: Vec<&str> = token.split('.').collect();
    ensure(parts.len() == 3, format!("a JWS compact serialization has 3 parts, this has {}", parts.len()))?;
    let json = |p: &str| -> Check<Value> { serde_json::from_slice(&b64url(p)?).map_err(e("JWT JSON")) };
    Ok((json(parts[0])?, json(parts[1])?))
}

/// Verifies a JWS against the JWKS with openidconnect's key implementation; returns the
/// header and the claims.
pub fn verify_jws(jwks: &CoreJsonWebKeySet, token: &str) -> Check<(Value, Value)> {
    let (header, claims) = jwt_parts(token)?;
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(header["alg"].clone()).map_err(e("alg"))?;
    let kid = header["kid"].as_str().ok_or("the JWT header has no kid")?;
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().is_some_and(|id| id.as_str() == kid))
        .ok_or(format!("kid {kid} is not in the JWKS"))?;
    let (signing_input, signature) = token.rsplit_once('.').ok_or("no signature")?;
    key.verify_signature(&alg, signing_input.as_bytes(), &b64url(signature)?).map_err(e("JWS signature"))?;
    Ok((header, claims))
}

/// One relying party session against one instance.
pub struct Rp {
    pub base: String,
    /// The RP backend's HTTP client (openidconnect calls and raw back-channel requests).
    pub http: reqwest::Client,
    /// The user's browser.
    pub browser: reqwest::Client,
    /// Discovery result; `Err` when discovery failed (each check that needs it then fails).
    pub meta: Check<CoreProviderMetadata>,
}

impl Rp {
    pub async fn new(base: &str) -> Check<Self> {
        // openidconnect's re-export of reqwest, with redirects off: an RP never follows a
        // redirect from the token, UserInfo or registration endpoints.
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .map_err(e("http client"))?;
        let issuer = IssuerUrl::new(base.to_owned()).map_err(e("issuer URL"))?;
        let meta = CoreProviderMetadata::discover_async(issuer, &http).await.map_err(|err| {
            let mut s = format!("discovery: {err}");
            let mut src = std::error::Error::source(&err);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        });
        Ok(Self { base: base.to_owned(), http, browser: browser()?, meta })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn meta(&self) -> Check<&CoreProviderMetadata> {
        self.meta.as_ref().map_err(|err| format!("prerequisite failed: {err}"))
    }

    /// An openidconnect client for `id` built from the discovered metadata.
    pub fn client(&self, id: &str, secret: Option<&str>, redirect: &str) -> Check<Oidc> {
        Ok(CoreClient::from_provider_metadata(
            self.meta()?.clone(),
            ClientId::new(id.into()),
            secret.map(|s| ClientSecret::new(s.into())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.into()).map_err(e("redirect URI"))?)
        .set_introspection_url(IntrospectionUrl::new(self.url("/introspect")).map_err(e("introspection URL"))?))
    }

    pub async fn get(&self, browser: &reqwest::Client, url: &str) -> Check<Landing> {
        let url = if url.starts_with('/') { self.url(url) } else { url.to_owned() };
        Landing::of(browser.get(&url).send().await.map_err(e("GET"))?).await
    }

    pub async fn post_form(&self, browser: &reqwest::Client, path: &str, form: &[(String, String)]) -> Check<Landing> {
        Landing::of(browser.post(self.url(path)).form(form).send().await.map_err(e("POST"))?).await
    }

    /// Follows an authorization URL like a user would: to the login page when there is no
    /// session, posting the demo credentials. Returns the answer after authentication (the
    /// redirect to the client, or a consent page).
    pub async fn authenticate(&self, browser: &reqwest::Client, auth_url: &str) -> Check<Landing> {
        let first = self.get(browser, auth_url).await?;
        match first.location.as_deref() {
            Some(l) if l.starts_with("/login") => {
                let page = self.get(browser, l).await?;
                ensure(page.status == 200, format!("login page answered {}", page.status))?;
                let form = HtmlForm::find(&page.body, "/login")?;
                let submission = form.submission(&[("username", USER), ("password", PASSWORD)]);
                self.post_form(browser, "/login", &submission).await
            }
            _ => Ok(first),
        }
    }

    /// [`Self::authenticate`] in the RP's browser, expecting a redirect to `redirect`.
    pub async fn code_query(&self, auth_url: &str, redirect: &str) -> Check<HashMap<String, String>> {
        self.authenticate(&self.browser, auth_url).await?.redirect_query(redirect)
    }

    /// A raw `POST /token` with HTTP Basic client authentication.
    pub async fn token_raw(&self, id: &str, secret: &str, form: &[(&str, &str)]) -> Check<(u16, Value)> {
        let r = self
            .http
            .post(self.url("/token"))
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .await
            .map_err(e("token request"))?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.map_err(e("token response JSON"))?))
    }

    /// A raw client-credentials token for `id`.
    pub async fn cc_token(&self, id: &str, secret: &str, scope: Option<&str>) -> Check<String> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let (status, v) = self.token_raw(id, secret, &form).await?;
        ensure(status == 200, format!("client_credentials answered {status}: {v}"))?;
        v["access_token"].as_str().map(str::to_owned).ok_or(format!("no access_token in {v}"))
    }

    /// A raw introspection by demo-web; returns the JSON answer.
    pub async fn introspect_raw(&self, token: &str) -> Check<Value> {
        let r = self
            .http
            .post(self.url("/introspect"))
            .basic_auth(WEB, Some(WEB_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(e("introspect"))?;
        ensure(r.status() == 200, format!("introspection answered {}", r.status()))?;
        r.json().await.map_err(e("introspection JSON"))
    }

    /// A new code and token set for demo-web through the browser's session (SSO) or a login:
    /// `(access token, refresh token, id token)`.
    pub async fn web_tokens(&self, scope: &str) -> Check<(String, String, String)> {
        let q = self.code_query(&self.authorize_url(WEB, WEB_REDIRECT, scope, None), WEB_REDIRECT).await?;
        let code = q.get("code").ok_or(format!("no code: {q:?}"))?;
        let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", WEB_REDIRECT)];
        let (status, v) = self.token_raw(WEB, WEB_SECRET, &form).await?;
        ensure(status == 200, format!("code exchange answered {status}: {v}"))?;
        let s = |k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("no {k} in the token response"));
        Ok((s("access_token")?, s("refresh_token")?, s("id_token").unwrap_or_default()))
    }

    /// A plain authorization URL (`code_challenge` when given).
    pub fn authorize_url(&self, client: &str, redirect: &str, scope: &str, challenge: Option<&str>) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("scope", scope),
            ("state", "conformance-state"),
        ];
        if let Some(c) = challenge {
            params.extend([("code_challenge", c), ("code_challenge_method", "S256")]);
        }
        let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        self.url(&format!("/authorize?{q}"))
    }

    /// GET /userinfo with `token`: `(status, WWW-Authenticate, body)`.
    pub async fn userinfo_raw(&self, token: Option<&str>) -> Check<(u16, String, String)> {
        let mut req = self.http.get(self.url("/userinfo"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.map_err(e("userinfo"))?;
        let status = r.status().as_u16();
        let challenge =
            r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Ok((status, challenge, r.text().await.map_err(e("userinfo body"))?))
    }
}
