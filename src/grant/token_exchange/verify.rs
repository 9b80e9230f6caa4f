//! The tokens a token exchange presents (RFC 8693 s2.1 `subject_token`, `actor_token`), routed
//! by their unverified `iss`: ours are checked with our keys and the one access-token validation
//! path; a trusted platform's with its published keys (the trust is read on every request, so
//! a disabled trust fails at once). Audience rule: a token is accepted when its `aud` names this
//! platform's issuer or the exchanging client; an upstream's ID token also when it names our
//! client there (the trust's `client_id`).

use serde::Deserialize;
use serde_json::Value;

use super::{Env, ExchangePolicy, TokenType, bad_token};
use crate::clients::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::federation::remote::{self, Audience, LEEWAY};
use crate::federation::{self, FedError, Role, Trust, links};
use crate::identity::acting::Acting;
use crate::identity::subject;
use crate::jwt::Unverified;
use crate::store::DynStore;
use crate::tokens::AT_TYP;

/// Which of the request's tokens is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `subject_token`: whom the new token is about.
    Subject,
    /// `actor_token`: who acts for the subject (RFC 8693 s1.1 delegation).
    Actor,
}

impl Which {
    /// The parameter name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Subject => "subject_token",
            Self::Actor => "actor_token",
        }
    }
}

/// What a verified token says.
#[derive(Debug, Clone, Default)]
pub struct Presented {
    /// Its issuer: ours or a trusted platform's.
    pub iss: String,
    /// Its subject, as the issuer names it.
    pub sub: String,
    /// Scopes it carries (`openid` for an ID token).
    pub scopes: Vec<String>,
    /// Until when it counts as valid here (a peer's `exp` plus the clock leeway).
    pub exp: i64,
    /// Its own `act` claim (RFC 8693 s4.1), if delegated already.
    pub act: Option<Value>,
    /// When the user authenticated.
    pub auth_time: Option<i64>,
    /// Authentication context class.
    pub acr: Option<String>,
    /// Our SSO session (local tokens).
    pub sid: Option<String>,
    /// Our grant family (local access tokens).
    pub gid: Option<String>,
    /// The trust it came through (peer tokens).
    pub trust: Option<Trust>,
    /// The local user's token generation, when the user was read while verifying.
    pub generation: Option<u32>,
    /// The local natural person (ours: the user, or the agent acting for a legal person).
    pub user: Option<String>,
    /// The legal person the local user acts for (HL-5.1), if any.
    pub acting: Option<Acting>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Id,
}

/// The claims read from a peer's token (access or ID token).
#[derive(Deserialize)]
struct PeerClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    act: Option<Value>,
    #[serde(default)]
    auth_time: Option<i64>,
    #[serde(default)]
    acr: Option<String>,
}

#[derive(Deserialize)]
struct Iss {
    iss: String,
    /// Present in logout tokens (Back-Channel Logout 1.0 s2.4), never in ID or access tokens.
    #[serde(default)]
    events: Option<Value>,
}

/// `typ` of logout tokens (Back-Channel Logout 1.0 s2.4).
const LOGOUT_TYP: &str = "logout+jwt";

/// The declared type against the JWT's `typ` (RFC 9068 s2.1: access tokens are at+jwt, so an
/// ID token cannot pass as one nor the reverse).
fn kind(which: Which, declared: TokenType, typ: Option<&str>) -> Result<Kind, OAuthError> {
    let at = typ.is_some_and(|t| t.eq_ignore_ascii_case(AT_TYP) || t.eq_ignore_ascii_case("application/at+jwt"));
    match (declared, at) {
        (TokenType::AccessToken | TokenType::Jwt, true) => Ok(Kind::Access),
        (TokenType::IdToken | TokenType::Jwt, false) => Ok(Kind::Id),
        (TokenType::AccessToken, false) => Err(bad_token(which, "is not a JWT access token (typ at+jwt)")),
        (TokenType::IdToken, true) => Err(bad_token(which, "is an access token, not an ID token")),
    }
}

/// Verifies one presented token for `client` under its policy.
pub async fn verify(
    env: Env<'_>,
    client: &Client,
    policy: &ExchangePolicy,
    which: Which,
    token: &str,
    declared: TokenType,
) -> Result<Presented, OAuthError> {
    let parsed = Unverified::parse(token).map_err(|_| bad_token(which, "is not a JWT"))?;
    // Read unverified only to route; the claims are trusted after the signature checks below.
    let iss: Iss = parsed.claims().map_err(|_| bad_token(which, "has no issuer"))?;
    // A logout token says a session ended; it never stands for a user (Back-Channel Logout
    // s2.4 gives it its own typ and an events claim so it cannot pass as an ID token).
    let typ = parsed.header.typ.as_deref();
    if iss.events.is_some()
        || typ.is_some_and(|t| t.eq_ignore_ascii_case(LOGOUT_TYP) || t.eq_ignore_ascii_case("application/logout+jwt"))
    {
        return Err(bad_token(which, "is a logout token, not an access or ID token"));
    }
    let kind = kind(which, declared, parsed.header.typ.as_deref())?;
    if !policy.allows_issuer(&iss.iss) {
        return Err(bad_token(which, "this client may not exchange tokens of its issuer"));
    }
    if iss.iss == env.ctx.issuer {
        return match kind {
            Kind::Access => local_access(env, client, which, token).await,
            Kind::Id => local_id(env, client, which, token).await,
        };
    }
    let trust = federation::list(env.ctx.store)
        .await?
        .into_iter()
        .find(|t| t.enabled && t.issuer == iss.iss)
        .ok_or_else(|| bad_token(which, "its issuer is not a trusted platform"))?;
    peer(env, client, which, token, kind, trust).await
}

fn aud_ok(aud: &Audience, issuer: &str, client: &Client) -> bool {
    aud.contains(issuer) || aud.contains(&client.client_id)
}

async fn local_access(env: Env<'_>, client: &Client, which: Which, token: &str) -> Result<Presented, OAuthError> {
    let ctx = env.ctx;
    // The one validity authority: signature, typ, iss, exp, family, session, user, client.
    let live = ctx.authority().access(token, ctx.now).await?.map_err(|dead| {
        tracing::info!(reason = dead.as_str(), "token exchange: local access token refused");
        bad_token(which, "is invalid, expired or revoked")
    })?;
    let c = live.claims;
    if !aud_ok(&c.aud, ctx.issuer, client) {
        return Err(bad_token(which, "is meant for another audience (aud)"));
    }
    Ok(Presented {
        iss: c.iss,
        // OIDC Core s8.1: the internal id behind a pairwise sub; re-expressed for the new client.
        sub: subject::internal(ctx.keys.data(), &c.sub),
        scopes: c.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        exp: c.exp,
        act: c.act,
        auth_time: c.auth_time,
        acr: c.acr,
        sid: c.sid,
        gid: c.gid,
        trust: None,
        generation: live.standing.user.as_ref().map(|u| u.generation),
        user: live.standing.user.map(|u| u.id),
        acting: live.standing.acting,
    })
}

async fn local_id(env: Env<'_>, client: &Client, which: Which, token: &str) -> Result<Presented, OAuthError> {
    let ctx = env.ctx;
    // Alive only while its session is (an ID token has no offline form) and its user is.
    let live = ctx.authority().id_token(token, ctx.now).await?.map_err(|dead| {
        tracing::info!(reason = dead.as_str(), "token exchange: local ID token refused");
        bad_token(which, "is invalid, expired, or its session has ended")
    })?;
    let c = live.claims;
    // OIDC Core s2: an ID token's aud is the client it was issued to.
    if c.aud != client.client_id && c.aud != ctx.issuer {
        return Err(bad_token(which, "was issued to another client (aud)"));
    }
    Ok(Presented {
        iss: c.iss,
        sub: subject::internal(ctx.keys.data(), &c.sub),
        scopes: vec!["openid".into()],
        exp: c.exp,
        act: c.extra.get("act").cloned(),
        auth_time: Some(c.auth_time),
        acr: Some(c.acr),
        sid: Some(c.sid),
        gid: None,
        trust: None,
        generation: live.standing.user.as_ref().map(|u| u.generation),
        user: live.standing.user.map(|u| u.id),
        acting: live.standing.acting,
    })
}

fn fed_error(which: Which, e: FedError) -> OAuthError {
    match e {
        FedError::Remote(why) => {
            tracing::warn!(reason = %why, "trusted platform unavailable for token exchange");
            OAuthError::new(ErrorCode::TemporarilyUnavailable, "the issuing platform cannot be reached; retry later")
        }
        FedError::Store(e) => e.into(),
        FedError::Invalid(_) | FedError::NoTrust(_) | FedError::Denied(_) => {
            bad_token(which, "does not verify with the issuing platform's keys")
        }
    }
}

async fn peer(
    env: Env<'_>,
    client: &Client,
    which: Which,
    token: &str,
    kind: Kind,
    trust: Trust,
) -> Result<Presented, OAuthError> {
    let now = env.ctx.now;
    let meta = env.peers.metadata(env.http, &trust.issuer).await.map_err(|e| fed_error(which, e))?;
    let (c, _): (PeerClaims, _) =
        remote::verify(env.jwks, &meta.jwks_uri, token).await.map_err(|e| fed_error(which, e))?;
    if c.iss != trust.issuer {
        return Err(bad_token(which, "names another issuer than the one that signed it"));
    }
    if c.exp + LEEWAY <= now {
        return Err(bad_token(which, "is expired"));
    }
    if c.iat.is_some_and(|iat| iat > now + LEEWAY) {
        return Err(bad_token(which, "is issued in the future"));
    }
    let ours_upstream = kind == Kind::Id && trust.role == Role::Upstream && c.aud.contains(&trust.client_id);
    if !(aud_ok(&c.aud, env.ctx.issuer, client) || ours_upstream) {
        return Err(bad_token(which, "is not meant for this platform or this client (aud)"));
    }
    if c.sub.is_empty() || c.sub.len() > 255 {
        return Err(bad_token(which, "has no usable sub"));
    }
    let scopes = match kind {
        Kind::Access => c.scope.as_deref().map(super::parse_scope).transpose().ok().flatten().unwrap_or_default(),
        Kind::Id => vec!["openid".into()],
    };
    Ok(Presented {
        iss: trust.issuer.clone(),
        sub: c.sub,
        scopes,
        exp: c.exp + LEEWAY,
        act: c.act,
        auth_time: c.auth_time,
        acr: c.acr,
        sid: None,
        gid: None,
        trust: Some(trust),
        generation: None,
        user: None,
        acting: None,
    })
}

/// The local subject of a verified subject token and its token generation: itself for ours;
/// for a peer's, the account linked to it (GB-6.4a), which must exist and be enabled.
pub async fn local_subject(store: &DynStore, p: &Presented) -> Result<(String, u32), OAuthError> {
    let Some(trust) = &p.trust else {
        return Ok((p.user.clone().unwrap_or_else(|| p.sub.clone()), p.generation.unwrap_or_default()));
    };
    match links::linked(store, &trust.id, &p.sub).await? {
        Some(u) if u.enabled => Ok((u.id, u.generation)),
        Some(_) => Err(bad_token(Which::Subject, "the subject's account here is disabled")),
        None => Err(bad_token(Which::Subject, "the subject is not known here")),
    }
}
