//! Token minting: every grant type ends in [`mint`], the one path that signs access tokens
//! (RFC 9068, through [`sign_access`]), ID tokens (OIDC Core s3.1.3.3) and stores refresh
//! tokens; token exchange (RFC 8693) builds its claims itself and signs through the same
//! [`sign_access`]. Each grant's rules live in its own file as plain functions over records,
//! with time passed in.

pub mod client_credentials;
pub mod code;
pub mod family;
pub mod legacy;
pub mod refresh;
pub mod retry;
pub mod token_exchange;
mod wire;

use serde::{Deserialize, Serialize};

use crate::clients::Client;
use crate::config::TokensConfig;
use crate::crypto;
use crate::error::OAuthError;
use crate::identity::PrincipalKind;
use crate::identity::acting::Acting;
use crate::identity::claims::{self, Place, Principal};
use crate::identity::subject;
use crate::jwt::{Alg, Audience};
use crate::keys::Keys;
use crate::session::Timeouts;
use crate::store::{self, DynStore, keys};
use crate::tokens::{AT_TYP, AccessClaims, Authority, IdClaims, at_hash};

/// Scopes that only make sense with a user present (OIDC Core s5.4, s11).
pub const USER_SCOPES: [&str; 5] = ["openid", "profile", "email", "phone", "offline_access"];

/// Claims the token formats set themselves (not from the claims table).
pub const PROTOCOL: [&str; 2] = ["sub", "acr"];

/// Everything a grant needs besides its request.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The store.
    pub store: &'a DynStore,
    /// Signing keys.
    pub keys: &'a Keys,
    /// Our issuer identifier.
    pub issuer: &'a str,
    /// Token lifetimes.
    pub tokens: &'a TokensConfig,
    /// SSO session timeouts (token validity depends on the session).
    pub timeouts: Timeouts,
    /// Current time.
    pub now: i64,
    /// Decoded client records.
    pub clients: &'a crate::clients::cache::ClientCache,
}

impl Ctx<'_> {
    /// The validity authority over the same store and keys.
    pub fn authority(&self) -> Authority<'_> {
        Authority {
            store: self.store,
            keys: self.keys,
            issuer: self.issuer,
            timeouts: self.timeouts,
            clients: self.clients,
        }
    }
}

/// The successful token response (RFC 6749 s5.1, OIDC Core s3.1.3.3, RFC 8693 s2.2.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// RFC 8693 s2.2.1: the type of the issued token (token exchange only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// Lifetime in seconds (AY-7.2a).
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// Refresh token, when issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The user the tokens are about (for the audit log; not sent).
    #[serde(skip)]
    pub subject: Option<String>,
    /// Extra audit detail of the grant (for the audit log; not sent).
    #[serde(skip)]
    pub audit: Option<serde_json::Value>,
}

/// The authenticated user behind a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAuth {
    /// Subject.
    pub sub: String,
    /// SSO session id.
    pub sid: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Authentication context class.
    pub acr: String,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// The user's token generation at login ([`crate::users::User::generation`]).
    #[serde(default, rename = "g")]
    pub generation: u32,
    /// The legal person the user acts for (HL-5.1): then it is the tokens' `sub` and the user
    /// is named in `act` (RFC 8693 s4.1).
    #[serde(default, rename = "act", skip_serializing_if = "Option::is_none")]
    pub acting: Option<Acting>,
}

impl UserAuth {
    /// The subject of the tokens: the legal person acted for, or the user.
    pub fn principal(&self) -> &str {
        self.acting.as_ref().map_or(&self.sub, |a| &a.lp)
    }
}

/// A stored refresh token (keyed by the token's SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// Grant (family) id.
    pub gid: String,
    /// The client it belongs to.
    pub client_id: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// The user.
    pub user: UserAuth,
    /// Family expiry: rotation never extends it.
    pub family_exp: i64,
    /// `offline_access`: survives the end of the SSO session.
    pub offline: bool,
}

impl RefreshRecord {
    /// What a rotated token's record keeps for reuse detection: its family, client, user and
    /// session, but no scopes or authentication methods (about half the size).
    pub fn used(&self) -> Self {
        Self {
            gid: self.gid.clone(),
            client_id: self.client_id.clone(),
            scope: Vec::new(),
            user: UserAuth {
                sub: self.user.sub.clone(),
                sid: self.user.sid.clone(),
                auth_time: self.user.auth_time,
                acr: String::new(),
                amr: Vec::new(),
                generation: self.user.generation,
                acting: self.user.acting.clone(),
            },
            family_exp: self.family_exp,
            offline: self.offline,
        }
    }
}

/// What to mint.
pub struct Mint<'a> {
    /// The client.
    pub client: &'a Client,
    /// Granted scopes (already checked against the client's grant).
    pub scope: Vec<String>,
    /// The user, absent for client_credentials.
    pub user: Option<UserAuth>,
    /// The family the tokens belong to: its id (`gid`) and the time no token of it outlives.
    pub family: Option<(String, i64)>,
    /// ID token nonce.
    pub nonce: Option<String>,
    /// Issue a refresh token of the family.
    pub refresh: bool,
}

/// Signs the access token (and ID token) and stores the refresh token, if any.
pub async fn mint(ctx: Ctx<'_>, m: Mint<'_>) -> Result<TokenResponse, OAuthError> {
    let (mut resp, refresh) = minted(ctx, m)?;
    // The refresh token's record is stored before the answer carries the token.
    if let Some(r) = refresh {
        ctx.store.put_redeemable(&r.key, &r.record, r.ttl).await?;
        resp.refresh_token = Some(r.token);
    }
    Ok(resp)
}

/// A refresh token minted, whose record is still to be stored.
struct PendingRefresh {
    token: String,
    key: String,
    record: Vec<u8>,
    ttl: u64,
}

/// [`mint`]'s tokens, signed; synchronous, so none of its claims sits in the futures of the
/// grants that await [`mint`] (issue 13: the client_credentials grant's future was 1.7 KiB).
fn minted(ctx: Ctx<'_>, m: Mint<'_>) -> Result<(TokenResponse, Option<PendingRefresh>), OAuthError> {
    let mut ttl = m.client.access_token_ttl.unwrap_or(ctx.tokens.access_token_ttl);
    // No token outlives its family: the family's record is what keeps it alive.
    if let Some((_, family_exp)) = &m.family {
        ttl = ttl.min(family_exp - ctx.now).max(1);
    }
    let scope = m.scope.join(" ");
    // OIDC Core s8: the subject as this client sees it (pairwise or public); an agent acting
    // for a legal person: the legal person, the agent in `act` (RFC 8693 s4.1, HL-5.1).
    let data = ctx.keys.data();
    let (sub, agent_sub, user_type) = match &m.user {
        None => (m.client.client_id.clone(), None, None),
        Some(u) => {
            let agent = u.acting.as_ref().map(|_| subject::for_client(data, m.client, &u.sub));
            let kind = if agent.is_some() { PrincipalKind::LegalPerson } else { PrincipalKind::NaturalPerson };
            (subject::for_client(data, m.client, u.principal()), agent, Some(kind))
        }
    };
    let claims = AccessClaims {
        iss: ctx.issuer.to_owned(),
        sub: sub.clone(),
        aud: Audience::One(ctx.issuer.to_owned()),
        client_id: m.client.client_id.clone(),
        scope: scope.clone(),
        jti: crypto::random_token(16),
        iat: ctx.now,
        exp: ctx.now + ttl,
        auth_time: m.user.as_ref().map(|u| u.auth_time),
        acr: m.user.as_ref().map(|u| u.acr.clone()),
        // A grant with no SSO session (JM-B legacy login) names none.
        sid: m.user.as_ref().map(|u| u.sid.clone()).filter(|s| !s.is_empty()),
        gid: m.family.as_ref().map(|(gid, _)| gid.clone()),
        act: agent_sub.as_ref().map(|a| serde_json::json!({ "sub": a })),
        user_type,
    };
    let access_token = sign_access(ctx, &claims)?;
    let mut resp = TokenResponse {
        access_token,
        issued_token_type: None,
        token_type: "Bearer",
        expires_in: ttl,
        scope,
        refresh_token: None,
        id_token: None,
        subject: m.user.as_ref().map(|u| u.principal().to_owned()),
        audit: None,
    };
    if let (Some(user), true) = (&m.user, m.scope.iter().any(|s| s == "openid")) {
        let alg = m.client.id_token_alg;
        let who =
            Principal { sub: &sub, agent_sub: agent_sub.as_deref(), acr: Some(&user.acr), person: None, legal: None };
        let extra =
            claims::release(Place::IdToken, |s| m.scope.iter().any(|g| g == s), &who, ctx.keys.data(), &PROTOCOL);
        let id = IdClaims {
            iss: ctx.issuer.to_owned(),
            sub: sub.clone(),
            aud: m.client.client_id.clone(),
            azp: m.client.client_id.clone(),
            exp: ctx.now + ctx.tokens.id_token_ttl,
            iat: ctx.now,
            auth_time: user.auth_time,
            nonce: m.nonce.clone(),
            acr: user.acr.clone(),
            amr: user.amr.clone(),
            sid: user.sid.clone(),
            at_hash: Some(at_hash(alg, &resp.access_token)),
            extra,
        };
        resp.id_token = Some(ctx.keys.sign(alg, "JWT", &id).map_err(|e| {
            tracing::error!(error = %e, "signing ID token failed");
            OAuthError::server_error()
        })?);
    }
    let mut refresh = None;
    if let (true, Some(user), Some((gid, family_exp))) = (m.refresh, m.user, m.family) {
        let token = crypto::random_token(32);
        let record = RefreshRecord {
            gid,
            client_id: m.client.client_id.clone(),
            offline: m.scope.iter().any(|s| s == "offline_access"),
            scope: m.scope,
            user,
            family_exp,
        };
        let key = keys::refresh_token(&crypto::token_key(&token));
        let ttl = store::ttl_until(family_exp, ctx.now);
        refresh = Some(PendingRefresh { token, key, record: store::encode(&record), ttl });
    }
    Ok((resp, refresh))
}

/// Signs JWT access token claims (RFC 9068 s2.1: `typ` at+jwt, ES256).
pub fn sign_access(ctx: Ctx<'_>, claims: &AccessClaims) -> Result<String, OAuthError> {
    ctx.keys.sign_json(Alg::ES256, AT_TYP, &claims.to_json()).map_err(|e| {
        tracing::error!(error = %e, "signing access token failed");
        OAuthError::server_error()
    })
}

/// Parses a space-delimited scope parameter (RFC 6749 s3.3); duplicates collapse, order kept.
pub fn parse_scope(raw: &str) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        if !s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
            return Err(OAuthError::invalid_scope("scope contains characters RFC 6749 s3.3 forbids"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// Checks every requested scope is one the client holds (AY-7.1 least privilege).
pub fn check_granted(client: &Client, requested: &[String]) -> Result<(), OAuthError> {
    match requested.iter().find(|s| !client.holds_scope(s)) {
        Some(s) => Err(OAuthError::invalid_scope(format!("scope '{s}' is not granted to this client"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parsing() {
        assert_eq!(parse_scope("openid  profile openid").unwrap(), vec!["openid", "profile"]);
        assert!(parse_scope("bad\"scope").is_err());
        assert!(parse_scope("").unwrap().is_empty());
    }
}
