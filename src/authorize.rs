//! The authorization endpoint's rules (RFC 6749 s4.1.1, OIDC Core s3.1.2): validate a request
//! in two stages (first the client and redirect URI, which decide whether errors may be
//! redirected at all; then everything else), decide between issuing a code, asking for login,
//! and asking for consent, and build the response. No HTTP types here.

use serde::{Deserialize, Serialize};

use crate::clients::{self, Client, GrantType};
use crate::crypto;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::code::{self, CodeRecord};
use crate::grant::{Ctx, USER_SCOPES, UserAuth, check_granted, parse_scope};
use crate::keys::Keys;
use crate::scopes::ScopeDef;
use crate::session::{self, Session, Timeouts};
use crate::store::{DynStore, StoreError};
use crate::tokens::IdClaims;

pub mod consent;
pub mod level;
pub mod own_page;
pub mod pending;

pub use consent::{Consent, ConsentView, consent_view, consents_of, remember_consent, revoke_consent, revoke_consents};
pub use pending::{Caps, Pending, forget, recall, remember};

/// How the response parameters travel (OAuth 2.0 Multiple Response Types s2.1, Form Post).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// In the redirect URI's query.
    Query,
    /// Auto-submitted HTML form (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

/// The `prompt` values (OIDC Core s3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: no UI at all.
    pub none: bool,
    /// `login`: re-authenticate.
    pub login: bool,
    /// `consent`: ask for consent again.
    pub consent: bool,
    /// `create`: show the registration page (OpenID Connect Prompt Create 1.0 s4.1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create: bool,
}

/// A fully validated authorization request, remembered across login and consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI the response goes to.
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (RFC 6749 s4.1.3 binds it at the token endpoint).
    pub response_mode: ResponseMode,
    /// Opaque client state.
    pub state: Option<String>,
    /// ID token nonce.
    pub nonce: Option<String>,
    /// Requested (and granted) scopes.
    pub scope: Vec<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Prompt values.
    pub prompt: Prompt,
    /// Maximum authentication age, seconds.
    pub max_age: Option<i64>,
    /// Username suggestion for the login form.
    pub login_hint: Option<String>,
    /// Subject of a valid `id_token_hint`.
    pub hint_sub: Option<String>,
    /// Preferred UI locales.
    pub ui_locales: Option<String>,
    /// Platforms this request has already visited (`tz_path`, DC-5): never forwarded to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
    /// An upstream platform was already tried silently for this request.
    #[serde(default)]
    pub fed_tried: bool,
    /// The assurance level the request requires (HL-6.1, [`level::required`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_level: Option<crate::identity::AssuranceLevel>,
    /// A login for one of this platform's own pages ([`own_page`]): the path it returns to,
    /// with no application, code or consent involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Where errors go, once the client and redirect URI are known to be good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Redirect URI.
    pub uri: String,
    /// Response mode.
    pub mode: ResponseMode,
    /// State to echo.
    pub state: Option<String>,
}

/// A failed request: either it must not redirect (bad client or redirect URI, RFC 6749
/// s4.1.2.1) or the error goes back to the client.
#[derive(Debug)]
pub enum Rejection {
    /// Show an error page; never redirect.
    Page(OAuthError),
    /// The redirect URI is missing or not registered: an error page (never a redirect, RFC 6749
    /// s4.1.2.1) that may offer the way back to the client's own registered home.
    Misdirected(OAuthError, Box<Client>),
    /// Redirect the error to the client.
    Redirect(Redirect, OAuthError),
    /// The store failed.
    Store(StoreError),
    /// The application takes no logins now (maintenance, suspension, ...): its own page.
    Closed(Box<crate::apps::gate::Closed>),
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A request's parameters, each at most once (RFC 6749 s3.1); the same type as
/// [`crate::http::extract::Params`].
pub type Params = crate::fastmap::Map<String, String>;

const MAX_PARAM: usize = 2048;

/// Stage one and two of validation.
pub async fn validate(
    store: &DynStore,
    keys_: &Keys,
    issuer: &str,
    params: &Params,
) -> Result<(AuthRequest, Client), Rejection> {
    let page = |d: &'static str| Rejection::Page(OAuthError::invalid_request(d));
    let client_id = params.get("client_id").ok_or_else(|| page("client_id is missing"))?;
    let client = clients::get(store, client_id)
        .await?
        .filter(|c| c.enabled)
        .ok_or_else(|| Rejection::Page(OAuthError::invalid_client("unknown client")))?;
    // A suspended, offline or maintenance-mode application takes no logins; say so on our own
    // page rather than sending the user to an application that is blocked (AY-8.5.3.2).
    if let Some(closed) = crate::apps::gate::closed(store, &client).await? {
        return Err(Rejection::Closed(Box::new(closed)));
    }
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.has_redirect_uri(uri) => uri.clone(),
        Some(_) => {
            let e = OAuthError::invalid_request("redirect_uri is not registered for this client");
            return Err(Rejection::Misdirected(e, Box::new(client)));
        }
        // RFC 6749 s3.1.2.3 allows omitting it with exactly one registered; OIDC Core s3.1.2.1 does not.
        None => match (
            client.redirect_uris.as_slice(),
            params.get("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")),
        ) {
            ([only], false) => only.clone(),
            _ => {
                let e = OAuthError::invalid_request("redirect_uri is missing");
                return Err(Rejection::Misdirected(e, Box::new(client)));
            }
        },
    };
    let mode = match params.get("response_mode").map(String::as_str) {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => {
            let r = Redirect { uri: redirect_uri, mode: ResponseMode::Query, state: params.get("state").cloned() };
            return Err(Rejection::Redirect(r, OAuthError::invalid_request("unsupported response_mode")));
        }
    };
    let state = params.get("state").cloned();
    let redirect = Redirect { uri: redirect_uri.clone(), mode, state: state.clone() };
    let fail = |e: OAuthError| Rejection::Redirect(redirect.clone(), e);
    if params.values().any(|v| v.len() > MAX_PARAM) {
        return Err(fail(OAuthError::invalid_request("a parameter is too long")));
    }
    if params.contains_key("request") {
        return Err(fail(OAuthError::new(ErrorCode::RequestNotSupported, "request objects are not supported")));
    }
    if params.contains_key("request_uri") {
        return Err(fail(OAuthError::new(ErrorCode::RequestUriNotSupported, "request_uri is not supported")));
    }
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => {
            return Err(fail(OAuthError::invalid_request("response_type is missing")));
        }
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::unauthorized_client("this client may not use the authorization code grant")));
    }
    let scope = narrow_scope(&client, parse_scope(params.get("scope").map_or("", String::as_str)).map_err(fail)?);
    check_granted(&client, &scope).map_err(fail)?;
    // RFC 7636 s4.3 and RFC 9700 s2.1.1: S256 only; required for public clients.
    let code_challenge = match (params.get("code_challenge"), params.get("code_challenge_method").map(String::as_str)) {
        (Some(c), Some("S256")) if code::valid_challenge(c) => Some(c.clone()),
        (Some(_), Some("S256")) => {
            return Err(fail(OAuthError::invalid_request("code_challenge is malformed")));
        }
        (Some(_), None | Some("plain")) => {
            return Err(fail(OAuthError::invalid_request("code_challenge_method must be S256; plain is refused")));
        }
        (_, Some(_)) if !params.contains_key("code_challenge") => {
            return Err(fail(OAuthError::invalid_request("code_challenge_method without code_challenge")));
        }
        (Some(_), Some(_)) => {
            return Err(fail(OAuthError::invalid_request("unsupported code_challenge_method")));
        }
        (None, _) => None,
    };
    if code_challenge.is_none() && client.is_public() {
        return Err(fail(OAuthError::invalid_request("public clients must use PKCE (code_challenge, S256)")));
    }
    let mut prompt = Prompt::default();
    for p in params.get("prompt").map_or("", String::as_str).split(' ').filter(|s| !s.is_empty()) {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "create" => prompt.create = true,
            "select_account" => {}
            _ => return Err(fail(OAuthError::invalid_request("unknown prompt value"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.create) {
        // OIDC Core s3.1.2.1: none with any other value is an error.
        return Err(fail(OAuthError::invalid_request("prompt=none cannot be combined with other values")));
    }
    let max_age = match params.get("max_age") {
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| fail(OAuthError::invalid_request("max_age must be a non-negative integer")))?,
        ),
        None => None,
    };
    let hint_sub = match params.get("id_token_hint") {
        // OIDC Core s3.1.2.1: an expired hint is still a hint, but it must be ours and signed.
        Some(hint) => {
            let (claims, _): (IdClaims, _) = keys_.verify(hint).map_err(|_| {
                fail(OAuthError::invalid_request("id_token_hint is not a valid ID token from this issuer"))
            })?;
            if claims.iss != issuer {
                return Err(fail(OAuthError::invalid_request("id_token_hint was issued by another issuer")));
            }
            // OIDC Core s8.1: compared with the session's subject by its internal id.
            Some(crate::identity::subject::internal(keys_.data(), &claims.sub))
        }
        None => None,
    };
    let min_level = level::required(
        &client,
        params.get("acr_values").map(String::as_str),
        params.get("claims").map(String::as_str),
    )
    .map_err(fail)?;
    let req = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        response_mode: mode,
        state,
        nonce: params.get("nonce").cloned(),
        scope,
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").cloned(),
        hint_sub,
        ui_locales: params.get("ui_locales").cloned(),
        path: crate::federation::login::parse_path(params.get(crate::federation::PATH_PARAM).map(String::as_str)),
        fed_tried: false,
        min_level,
        next: None,
    };
    Ok((req, client))
}

/// RFC 6749 s3.3: the server may grant less than asked. A standard OIDC scope (`openid`,
/// `profile`, `email`, `phone`, `offline_access`) the client does not hold is left out rather
/// than failing the login, as relying-party libraries ask for them by default; the token
/// response's `scope` says what was granted. Any other scope the client does not hold still
/// fails with `invalid_scope` (AY-7.1: business scopes are granted by an administrator).
pub fn narrow_scope(client: &Client, requested: Vec<String>) -> Vec<String> {
    requested.into_iter().filter(|s| client.holds_scope(s) || !USER_SCOPES.contains(&s.as_str())).collect()
}

/// What to do with a valid request.
#[derive(Debug)]
pub enum Decision {
    /// Issue a code now.
    Issue(Session),
    /// Show the login form.
    Login,
    /// Show the consent page for this session.
    Consent(Session),
    /// Take the person through real-name verification (`/verify`) first (HL-6.1).
    Verify(Session),
    /// Answer the client with an error (`login_required`, `consent_required`).
    Error(OAuthError),
}

/// Decides the next step given the browser's session (already resolved from its cookie);
/// `builtins` are the scope catalogue's built-in entries (which scopes are sensitive, SH-8.2).
pub async fn decide(
    store: &DynStore,
    builtins: &[ScopeDef],
    req: &AuthRequest,
    client: &Client,
    session: Option<Session>,
    now: i64,
) -> Result<Decision, StoreError> {
    let usable = session.filter(|s| {
        let fresh = req.max_age.is_none_or(|m| now - s.auth_time <= m);
        let same_user = req.hint_sub.as_ref().is_none_or(|h| h == s.principal());
        // Prompt Create 1.0 s4.1: `create` shows the registration page whoever is signed in.
        fresh && same_user && !req.prompt.login && !req.prompt.create
    });
    let Some(s) = usable else {
        return Ok(if req.prompt.none {
            Decision::Error(OAuthError::new(ErrorCode::LoginRequired, "the user is not logged in"))
        } else {
            Decision::Login
        });
    };
    // Who may use the application while it is tested or grey-released (AY-8.3, SH-6.2.7).
    if let Some(e) = crate::apps::gate::admits(store, client, &s.sub).await? {
        return Ok(Decision::Error(e));
    }
    // HL-6.1: below the level the request requires, verify first; prompt=none cannot show the
    // verification page (OIDC Core s3.1.2.6), so it gets the error at once.
    match level::standing(&s.acr, req.min_level) {
        level::Standing::Met => {}
        _ if req.prompt.none => {
            return Ok(Decision::Error(level::unmet("the session is below the required assurance level")));
        }
        level::Standing::Verify => return Ok(Decision::Verify(s)),
        level::Standing::Unmet => {
            return Ok(Decision::Error(level::unmet(
                "the required assurance level needs a verification recorded by an administrator",
            )));
        }
    }
    if consent::needed(store, builtins, req, client, &s).await? {
        return Ok(if req.prompt.none {
            Decision::Error(OAuthError::new(ErrorCode::ConsentRequired, "the user has not consented"))
        } else {
            Decision::Consent(s)
        });
    }
    Ok(Decision::Issue(s))
}

/// The success response: parameters for the redirect URI (RFC 6749 s4.1.2, RFC 9207).
#[derive(Debug, Clone)]
pub struct Response {
    /// Where to.
    pub redirect: Redirect,
    /// `code`, `state`, `iss`.
    pub params: Vec<(&'static str, String)>,
}

/// Issues a code for a session and records that the session reached the client.
pub async fn issue_code(ctx: Ctx<'_>, req: &AuthRequest, s: &Session, t: Timeouts) -> Result<Response, OAuthError> {
    let record = CodeRecord {
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        user: UserAuth {
            sub: s.sub.clone(),
            sid: s.sid.clone(),
            auth_time: s.auth_time,
            acr: s.acr.clone(),
            amr: s.amr.clone(),
            generation: s.generation,
            acting: s.acting.as_deref().cloned(),
        },
        gid: crypto::random_token(16),
        exp: ctx.now + ctx.tokens.code_ttl,
    };
    // One round trip: the code, and the session's record that it reached this client (so a
    // logout tells it); both are written before the code is handed out.
    let (code, ()) = tokio::try_join!(code::issue(ctx, &record), async {
        Ok(session::add_client(ctx.store, s, &req.client_id, ctx.now, t).await?)
    })?;
    let mut params = vec![("code", code)];
    if let Some(state) = &req.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", ctx.issuer.to_owned()));
    Ok(Response {
        redirect: Redirect { uri: req.redirect_uri.clone(), mode: req.response_mode, state: req.state.clone() },
        params,
    })
}
