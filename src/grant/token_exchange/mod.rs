//! Token exchange (RFC 8693): a client trades a token about a user (our own, or one a trusted
//! platform signed) for an access token naming another API, with no more scope than the
//! subject token, the client's grant and the request all allow (AY-7.1), delegated through an
//! `act` claim when an actor token is given (s4.1). Pure rules here; token checks in [`verify`].

mod policy;
mod verify;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

pub use policy::ExchangePolicy;
pub use verify::{Presented, Which};

use super::family::{self, Family};
use super::{Ctx, TokenResponse, parse_scope, sign_access};
use crate::clients::{Client, GrantType};
use crate::crypto;
use crate::error::{ErrorCode, OAuthError};
use crate::federation::remote::Peers;
use crate::identity::PrincipalKind;
use crate::jwks_cache::JwksCache;
use crate::jwt::Audience;
use crate::tokens::AccessClaims;

/// RFC 8693 s3: an OAuth 2.0 access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 s3: an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// RFC 8693 s3: a JWT (RFC 7519).
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The scope a token exchange never issues: it issues no refresh token (RFC 8693 s2.2.1).
const NEVER: &str = "offline_access";
/// Longest `act` chain kept (RFC 8693 s4.1 nests prior actors without bound; we bound it).
pub const MAX_ACT_DEPTH: usize = 8;

/// The token type identifiers we accept (RFC 8693 s3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// `...:access_token`: a JWT access token (RFC 9068, `typ` at+jwt).
    AccessToken,
    /// `...:id_token`: an ID token (OIDC Core s2).
    IdToken,
    /// `...:jwt`: either of the above, told apart by the JWT's `typ`.
    Jwt,
}

impl TokenType {
    /// Parses a token type URI; others (SAML, refresh tokens) are not accepted here.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            ACCESS_TOKEN_TYPE => Some(Self::AccessToken),
            ID_TOKEN_TYPE => Some(Self::IdToken),
            JWT_TYPE => Some(Self::Jwt),
            _ => None,
        }
    }
    /// The URI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => ACCESS_TOKEN_TYPE,
            Self::IdToken => ID_TOKEN_TYPE,
            Self::Jwt => JWT_TYPE,
        }
    }
}

/// A parsed token exchange request (RFC 8693 s2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// `subject_token`.
    pub subject_token: &'a str,
    /// `subject_token_type`.
    pub subject_token_type: TokenType,
    /// `actor_token` with its `actor_token_type` (both or neither).
    pub actor: Option<(&'a str, TokenType)>,
    /// `audience` (one value: our parameters are single-valued).
    pub audience: Option<&'a str>,
    /// `resource` (RFC 8707 s2: an absolute URI).
    pub resource: Option<&'a str>,
    /// `scope`, parsed.
    pub scope: Option<Vec<String>>,
    /// `requested_token_type`: access_token (default) or jwt.
    pub requested: TokenType,
}

impl<'a> Request<'a> {
    /// Reads the request's parameters through `get`; anything missing or malformed is
    /// `invalid_request` (RFC 8693 s2.2.2).
    pub fn parse(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, OAuthError> {
        let missing = |p: &str| OAuthError::invalid_request(format!("{p} is missing (RFC 8693 s2.1)"));
        let subject_token = get("subject_token").ok_or_else(|| missing("subject_token"))?;
        let subject_token_type = get("subject_token_type").ok_or_else(|| missing("subject_token_type"))?;
        let subject_token_type = TokenType::parse(subject_token_type).ok_or_else(|| {
            OAuthError::invalid_request("subject_token_type must be an access_token, id_token or jwt")
        })?;
        let actor = match (get("actor_token"), get("actor_token_type")) {
            (None, None) => None,
            (Some(t), Some(ty)) => Some((
                t,
                TokenType::parse(ty).ok_or_else(|| {
                    OAuthError::invalid_request("actor_token_type must be an access_token, id_token or jwt")
                })?,
            )),
            (Some(_), None) => return Err(OAuthError::invalid_request("actor_token needs actor_token_type (s2.1)")),
            (None, Some(_)) => return Err(OAuthError::invalid_request("actor_token_type without actor_token (s2.1)")),
        };
        let (audience, resource) = (get("audience"), get("resource"));
        if audience.is_none() && resource.is_none() {
            return Err(OAuthError::invalid_request("audience or resource is required: name the API the token is for"));
        }
        let scope = get("scope").map(parse_scope).transpose()?;
        let requested = match get("requested_token_type").map(TokenType::parse) {
            None => TokenType::AccessToken,
            Some(Some(t @ (TokenType::AccessToken | TokenType::Jwt))) => t,
            Some(_) => return Err(OAuthError::invalid_request("requested_token_type must be access_token or jwt")),
        };
        Ok(Self { subject_token, subject_token_type, actor, audience, resource, scope, requested })
    }
}

/// Everything a token exchange needs besides its request: the grant context and the means to
/// verify a trusted platform's tokens.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Store, keys, issuer, lifetimes, time.
    pub ctx: Ctx<'a>,
    /// Outgoing HTTP (peer discovery).
    pub http: &'a reqwest::Client,
    /// Peer keys.
    pub jwks: &'a JwksCache,
    /// Peer metadata.
    pub peers: &'a Peers,
}

/// RFC 8693 s2.2.2: an invalid or unacceptable subject or actor token "MUST" be answered with
/// `invalid_request` (not RFC 6749's `invalid_grant`); the description says which and why.
pub fn bad_token(which: Which, why: &str) -> OAuthError {
    OAuthError::invalid_request(format!("{}: {why}", which.name()))
}

/// The `aud` of the new token: the requested `audience` and/or `resource`, each allowed by the
/// client's policy, else `invalid_target` (RFC 8693 s2.2.2, RFC 8707 s2).
pub fn target(policy: &ExchangePolicy, req: &Request<'_>) -> Result<Audience, OAuthError> {
    let refuse = |d: &'static str| OAuthError::new(ErrorCode::InvalidTarget, d);
    if let Some(r) = req.resource
        && !policy::valid_uri(r)
    {
        return Err(refuse("resource must be an absolute URI without a fragment (RFC 8707 s2)"));
    }
    let wanted: Vec<String> = req.audience.into_iter().chain(req.resource).map(str::to_owned).collect();
    if wanted.iter().any(|t| !policy.allows_audience(t)) {
        return Err(refuse("this client may not obtain tokens for the requested audience or resource"));
    }
    Ok(Audience::of(wanted))
}

/// AY-7.1 least privilege: the scopes of the new token are those of the subject token that the
/// client also holds, never `offline_access`; a requested scope outside them is `invalid_scope`.
pub fn issued_scope(
    subject: &[String],
    client: &Client,
    requested: Option<&[String]>,
) -> Result<Vec<String>, OAuthError> {
    let allowed = |s: &String| s != NEVER && client.holds_scope(s) && subject.contains(s);
    match requested {
        None => Ok(subject.iter().filter(|s| allowed(s)).cloned().collect()),
        Some(req) => match req.iter().find(|s| !allowed(s)) {
            None => Ok(req.to_vec()),
            Some(s) if s == NEVER => Err(OAuthError::invalid_scope("offline_access is never issued by token exchange")),
            Some(s) if !client.holds_scope(s) => {
                Err(OAuthError::invalid_scope(format!("scope '{s}' is not granted to this client")))
            }
            Some(s) => Err(OAuthError::invalid_scope(format!("scope '{s}' exceeds the subject token's scope"))),
        },
    }
}

/// How the subjects of our own issuing are shown to the client the new token is for (OIDC Core
/// s8.1: pairwise subjects are re-expressed for it).
pub type Remap<'a> = &'a dyn Fn(&str) -> String;

/// Re-states a prior `act` claim as `{sub, iss?, act?}` at each level, naming `iss` where the
/// token's own issuer was implied (it will no longer be the issuer of the token carrying it).
/// Subjects of ours (no `iss`, none implied) go through `remap`.
fn normalize_act(v: &Value, implied_iss: Option<&str>, depth: usize, remap: Remap<'_>) -> Option<Value> {
    let obj = v.as_object()?;
    if depth >= MAX_ACT_DEPTH {
        return None;
    }
    let sub = obj.get("sub")?.as_str()?;
    let ours = obj.get("iss").is_none() && implied_iss.is_none();
    let mut out = Map::new();
    out.insert("sub".into(), json!(if ours { remap(sub) } else { sub.to_owned() }));
    match (obj.get("iss"), implied_iss) {
        (Some(iss), _) => {
            out.insert("iss".into(), json!(iss.as_str()?));
        }
        (None, Some(iss)) => {
            out.insert("iss".into(), json!(iss));
        }
        (None, None) => {}
    }
    if let Some(prior) = obj.get("act") {
        out.insert("act".into(), normalize_act(prior, implied_iss, depth + 1, remap)?);
    }
    Some(Value::Object(out))
}

/// RFC 8693 s4.1: the new token's `act`. With an actor, `{sub, iss?}` naming it (`iss` only
/// when not ours), the subject token's own `act` nested inside as the prior chain; without
/// one, the subject's chain is kept (a delegated token stays delegated).
pub fn act_chain(
    ours: &str,
    subject: &Presented,
    actor: Option<&Presented>,
    remap: Remap<'_>,
) -> Result<Option<Value>, OAuthError> {
    let implied = (subject.iss != ours).then_some(subject.iss.as_str());
    let prior = match &subject.act {
        None => None,
        Some(a) => Some(
            normalize_act(a, implied, 1, remap)
                .ok_or_else(|| bad_token(Which::Subject, "its act claim is malformed or nested too deep"))?,
        ),
    };
    let Some(actor) = actor else { return Ok(prior) };
    let mut act = Map::new();
    act.insert("sub".into(), json!(if actor.iss == ours { remap(&actor.sub) } else { actor.sub.clone() }));
    if actor.iss != ours {
        act.insert("iss".into(), json!(actor.iss));
    }
    if let Some(p) = prior {
        act.insert("act".into(), p);
    }
    Ok(Some(Value::Object(act)))
}

/// RFC 8693 s2: verifies the request's tokens, checks the client's policy, and issues one JWT
/// access token (RFC 9068) for the named audience. No refresh token, no ID token.
pub async fn grant(env: Env<'_>, client: &Client, req: &Request<'_>) -> Result<TokenResponse, OAuthError> {
    let ctx = env.ctx;
    if !client.allows(GrantType::TokenExchange) || client.is_public() {
        return Err(OAuthError::unauthorized_client("token exchange is not allowed for this client"));
    }
    let policy = client
        .token_exchange
        .as_ref()
        .ok_or_else(|| OAuthError::unauthorized_client("this client has no token exchange policy"))?;
    let aud = target(policy, req)?;
    let subject =
        verify::verify(env, client, policy, Which::Subject, req.subject_token, req.subject_token_type).await?;
    let (local_sub, generation) = verify::local_subject(ctx.store, &subject).await?;
    let actor = match req.actor {
        Some((token, ty)) => Some(verify::verify(env, client, policy, Which::Actor, token, ty).await?),
        None => None,
    };
    let scope = issued_scope(&subject.scopes, client, req.scope.as_deref())?;
    let data = ctx.keys.data();
    let remap = |sub: &str| {
        let internal = crate::identity::subject::internal(data, sub);
        crate::identity::subject::for_client(data, client, &internal)
    };
    let act = act_chain(ctx.issuer, &subject, actor.as_ref(), &remap)?;
    let ttl = client.access_token_ttl.unwrap_or(ctx.tokens.access_token_ttl);
    // A derived token never outlives what it was derived from, so chained exchanges cannot
    // extend a grant.
    let exp = actor.iter().map(|a| a.exp).fold((ctx.now + ttl).min(subject.exp), i64::min);
    let local = subject.trust.is_none();
    // Ours: the principal (a legal person when its agent's token is exchanged, HL-5.1).
    let acting = subject.acting.clone().filter(|_| local);
    let principal = if local { subject.sub.clone() } else { local_sub.clone() };
    // A local access token's family carries over, so revoking or logging out the original ends
    // the exchanged token too. Otherwise (an ID token, a peer's token) the new token gets a
    // family of its own, tied to the user's token generation and, for our ID token, to its
    // session: every user-bound token is alive only through a family or a session.
    let gid = match subject.gid.clone().filter(|_| local) {
        Some(gid) => gid,
        None => {
            let gid = crypto::random_token(16);
            let f = Family {
                client_id: client.client_id.clone(),
                sub: local_sub.clone(),
                sid: subject.sid.clone().filter(|_| local).unwrap_or_default(),
                generation,
                offline: false,
                exp,
                revoked: false,
                acting: acting.clone(),
            };
            family::start(ctx.store, &gid, &f, ctx.now).await?;
            gid
        }
    };
    let claims = AccessClaims {
        iss: ctx.issuer.to_owned(),
        sub: remap(&principal),
        aud: aud.clone(),
        client_id: client.client_id.clone(),
        scope: scope.join(" "),
        jti: crypto::random_token(16),
        iat: ctx.now,
        exp,
        auth_time: subject.auth_time,
        acr: subject.acr.clone(),
        // Local tokens stay tied to their session and grant family: logout or revocation of
        // the original ends the exchanged token too.
        sid: subject.sid.clone().filter(|_| local),
        gid: Some(gid),
        act,
        user_type: Some(if acting.is_some() { PrincipalKind::LegalPerson } else { PrincipalKind::NaturalPerson }),
    };
    let access_token = sign_access(ctx, &claims)?;
    let audit = json!({
        "subject_issuer": subject.iss,
        "trust": subject.trust.as_ref().map(|t| t.id.clone()),
        "audience": aud,
        "actor": actor.as_ref().map(|a| json!({"sub": a.sub, "iss": a.iss})),
        "requested_token_type": req.requested.as_str(),
    });
    Ok(TokenResponse {
        access_token,
        // RFC 8693 s2.2.1: the issued token is an RFC 9068 access token in both cases, usable
        // as a bearer token, so token_type is "Bearer" ("N_A" is for tokens that are not).
        issued_token_type: Some(req.requested.as_str()),
        token_type: "Bearer",
        expires_in: exp - ctx.now,
        scope: claims.scope,
        refresh_token: None,
        id_token: None,
        subject: Some(principal),
        audit: Some(audit),
    })
}
