//! Logging in through an upstream platform (GB-6.4c): a full authorization-code flow with PKCE
//! (RFC 7636) and a nonce against the upstream, as its client, bound to the browser that
//! started it; silently with `prompt=none` (OIDC Core s3.1.2.1) when the user has no session
//! here. The visited platforms travel in `tz_path`, so a request crosses each hop at most once
//! and never goes back where it came from.

use serde::{Deserialize, Serialize};

use super::links::{self, Person};
use super::remote::{self, IdToken, Peers};
use super::{FedError, PATH_PARAM, Role, Trust};
use crate::crypto;
use crate::identity::AssuranceLevel;
use crate::jwks_cache::JwksCache;
use crate::keys::Keys;
use crate::outbound::read_limited;
use crate::store::{self, DynStore, keys};
use crate::users::User;

/// The largest token or UserInfo answer read from an upstream, bytes.
const MAX_ANSWER: usize = 64 * 1024;

/// Everything an upstream login needs besides its input.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// Keys (the data key opens our secret at the upstream).
    pub keys: &'a Keys,
    /// Outgoing HTTP.
    pub http: &'a reqwest::Client,
    /// Remote keys.
    pub jwks: &'a JwksCache,
    /// Remote metadata.
    pub peers: &'a Peers,
    /// Our issuer.
    pub issuer: &'a str,
    /// How long a login may take, seconds.
    pub ttl: i64,
    /// Current time.
    pub now: i64,
}

impl Ctx<'_> {
    /// Where upstreams send users back.
    pub fn callback(&self) -> String {
        format!("{}/federation/callback", self.issuer)
    }
}

/// A login sent upstream, kept under its `state` until the user comes back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    /// The trust.
    pub trust: String,
    /// The pending authorization request here that continues afterwards.
    pub pending: String,
    /// SHA-256 of the browser-binding cookie.
    pub browser: String,
    /// PKCE verifier.
    pub verifier: String,
    /// Nonce.
    pub nonce: String,
    /// Sent with `prompt=none`.
    pub silent: bool,
    /// Expiry.
    pub exp: i64,
}

/// Starts a login at `trust`; returns the URL to send the browser to.
pub async fn start(
    ctx: Ctx<'_>,
    trust: &Trust,
    pending: &str,
    browser_cookie: &str,
    silent: bool,
    path: &[String],
) -> Result<String, FedError> {
    let meta = ctx.peers.metadata(ctx.http, &trust.issuer).await?;
    let state = crypto::random_token(24);
    let verifier = crypto::random_token(32);
    let sent = Sent {
        trust: trust.id.clone(),
        pending: pending.to_owned(),
        browser: crypto::token_key(browser_cookie),
        verifier: verifier.clone(),
        nonce: crypto::random_token(16),
        silent,
        exp: ctx.now + ctx.ttl,
    };
    store::put_json(ctx.store.as_ref(), &keys::fed_state(&state), &sent, Some(store::ttl_until(sent.exp, ctx.now)))
        .await?;
    let mut visited: Vec<&str> = path.iter().map(String::as_str).collect();
    visited.push(ctx.issuer);
    let mut url = url::Url::parse(&meta.authorization_endpoint)
        .map_err(|_| FedError::Remote(format!("{} has no usable authorization endpoint", trust.issuer)))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &trust.client_id)
            .append_pair("redirect_uri", &ctx.callback())
            .append_pair("scope", &trust.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &sent.nonce)
            .append_pair("code_challenge", &crypto::b64(&crypto::sha256(verifier.as_bytes())))
            .append_pair("code_challenge_method", "S256")
            .append_pair(PATH_PARAM, &visited.join(" "));
        if silent {
            q.append_pair("prompt", "none");
        }
    }
    Ok(url.into())
}

/// What came back from the upstream.
#[derive(Debug)]
pub enum Returned {
    /// Logged in there; here is the account and what to record on the local session.
    LoggedIn(Box<Arrived>),
    /// Logged in there, but below the trust's lowest accepted `acr` (`min_acr`): not a login
    /// here; the person is offered this platform's own login.
    BelowLevel {
        /// The pending request to continue.
        pending: String,
        /// The try was silent.
        silent: bool,
        /// The trust's id.
        trust: String,
    },
    /// Not logged in there (`login_required` to a silent try, or the user gave up).
    NotLoggedIn {
        /// The pending request to continue.
        pending: String,
        /// The try was silent.
        silent: bool,
        /// The upstream's error code.
        error: String,
        /// The trust's id.
        trust: String,
    },
}

/// A person who logged in upstream and has an account here.
#[derive(Debug)]
pub struct Arrived {
    /// The pending request to continue.
    pub pending: String,
    /// The local account.
    pub user: User,
    /// What to remember of the upstream login.
    pub upstream: crate::session::Upstream,
    /// The upstream's authentication context, kept on the local session.
    pub acr: String,
    /// The upstream's authentication methods.
    pub amr: Vec<String>,
    /// The trust it came through.
    pub trust: Trust,
}

/// The callback's parameters.
pub struct Callback<'a> {
    /// `state`.
    pub state: &'a str,
    /// `code`, on success.
    pub code: Option<&'a str>,
    /// `error`, on failure.
    pub error: Option<&'a str>,
    /// `iss` (RFC 9207 s2.4: compared with the expected issuer).
    pub iss: Option<&'a str>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    access_token: Option<String>,
}

/// Finishes a login: checks the state belongs to this browser, redeems the code with PKCE,
/// verifies the ID token (OIDC Core s3.1.3.7), checks the assurance level (below the trust's
/// floor: [`Returned::BelowLevel`]), reads the claims, and finds (or creates) the local account.
pub async fn finish(ctx: Ctx<'_>, cb: Callback<'_>, browser_cookie: Option<&str>) -> Result<Returned, FedError> {
    if cb.state.is_empty() || cb.state.len() > 64 {
        return Err(FedError::Invalid("no login is waiting for this answer".into()));
    }
    let taken = ctx.store.take(&keys::fed_state(cb.state)).await?;
    let sent: Sent = match taken {
        Some(bytes) => store::decode(&keys::fed_state(cb.state), &bytes)?,
        None => return Err(FedError::Invalid("no login is waiting for this answer (expired or used)".into())),
    };
    let bound = browser_cookie.is_some_and(|c| crypto::ct_eq(crypto::token_key(c).as_bytes(), sent.browser.as_bytes()));
    if !bound || sent.exp <= ctx.now {
        return Err(FedError::Invalid("this login was started in another browser or has expired".into()));
    }
    // Disabling the trust stops a login under way too.
    let trust = super::enabled(ctx.store, &sent.trust, Role::Upstream).await?;
    if cb.iss.is_some_and(|i| i != trust.issuer) {
        return Err(FedError::Invalid("the answer names another issuer (RFC 9207 mix-up defense)".into()));
    }
    let code = match (cb.code, cb.error) {
        (Some(code), None) => code,
        (_, error) => {
            let error = error.unwrap_or("invalid_request").chars().take(64).collect();
            return Ok(Returned::NotLoggedIn { pending: sent.pending, silent: sent.silent, error, trust: trust.id });
        }
    };
    let meta = ctx.peers.metadata(ctx.http, &trust.issuer).await?;
    let secret = trust.secret(ctx.keys.data()).unwrap_or_default();
    let resp = ctx
        .http
        .post(&meta.token_endpoint)
        .basic_auth(form_encode(&trust.client_id), Some(form_encode(&secret)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &ctx.callback()),
            ("code_verifier", &sent.verifier),
        ])
        .send()
        .await
        .map_err(|e| FedError::Remote(format!("token request to {}: {}", trust.issuer, e.without_url())))?;
    if !resp.status().is_success() {
        return Err(FedError::Remote(format!("{} refused the code: {}", trust.issuer, resp.status())));
    }
    let body = read_limited(resp, MAX_ANSWER).await.map_err(|e| FedError::Remote(format!("token answer: {e}")))?;
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|e| FedError::Remote(format!("token answer: {e}")))?;
    let id_token = answer.id_token.ok_or_else(|| FedError::Invalid("the upstream sent no ID token".into()))?;
    let (claims, _): (IdToken, _) = remote::verify(ctx.jwks, &meta.jwks_uri, &id_token).await?;
    remote::check_id_token(&claims, &trust.issuer, &trust.client_id, &sent.nonce, ctx.now)?;
    // Below the trust's floor the upstream login does not count here; the person is offered
    // this platform's own login instead (HL-6.1), never a dead end.
    if !trust.acr_ok(claims.acr.as_deref()) {
        return Ok(Returned::BelowLevel { pending: sent.pending, silent: sent.silent, trust: trust.id });
    }
    let mut person = match (&answer.access_token, meta.userinfo_endpoint.as_deref()) {
        (Some(at), Some(ep)) => userinfo(ctx.http, ep, at).await.unwrap_or_default(),
        _ => Person::default(),
    };
    person.sub.clone_from(&claims.sub);
    let user = links::local_account(ctx.store, ctx.keys, &trust, &person, ctx.now).await?;
    let upstream = crate::session::Upstream {
        trust: trust.id.clone(),
        iss: claims.iss.clone(),
        sub: claims.sub.clone(),
        sid: claims.sid.clone(),
    };
    // HL-6.1: the session's level is the higher of what the account is known at here and what
    // the trusted upstream asserts (an `acr` outside this platform's levels asserts nothing).
    let asserted = claims.acr.as_deref().and_then(AssuranceLevel::parse).unwrap_or(AssuranceLevel::Visitor);
    let acr = user.level().max(asserted).acr().to_owned();
    let amr = claims.amr.clone().unwrap_or_default();
    Ok(Returned::LoggedIn(Box::new(Arrived { pending: sent.pending, user, upstream, trust, acr, amr })))
}

/// RFC 6749 s2.3.1: client credentials in HTTP Basic are form-encoded first.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn userinfo(http: &reqwest::Client, endpoint: &str, access_token: &str) -> Option<Person> {
    let resp = http.get(endpoint).bearer_auth(access_token).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    serde_json::from_slice(&read_limited(resp, MAX_ANSWER).await.ok()?).ok()
}

/// The upstream to try silently for a request from `client_id` that has visited `path`:
/// the first enabled upstream with silent login on, not already visited and not the platform
/// the request came from.
pub async fn silent_candidate(store: &DynStore, client_id: &str, path: &[String]) -> Result<Option<Trust>, FedError> {
    let from = super::downstream_of_client(store, client_id).await?.map(|t| t.issuer);
    Ok(super::all_enabled(store, Role::Upstream)
        .await?
        .into_iter()
        .find(|t| t.silent_login && !path.contains(&t.issuer) && from.as_deref() != Some(t.issuer.as_str())))
}

/// Parses `tz_path`: at most eight absolute URLs.
pub fn parse_path(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty() && url::Url::parse(s).is_ok())
        .take(8)
        .map(str::to_owned)
        .collect()
}
