//! JM-B legacy direct login (`POST /api/auth`): an enabled client sends a username and a
//! base64 password and gets an ordinary access token of its own (RFC 9068, usable as
//! `Authorization: Bearer`). Off unless an admin set the client's `legacy_login` flag; the
//! password goes through the same guessing guard as the login form (RFC 6749 s10.10); refused
//! for legal persons (they sign in through an agent, HL-5.1) and for people below the client's
//! minimum assurance level (HL-6.1). The token stands on a grant family of its own with no SSO
//! session: it lives one access-token lifetime, dies with the user's generation, and has no
//! refresh token.

use super::family::{self, Family};
use super::{Ctx, Mint, TokenResponse, UserAuth, mint};
use crate::clients::Client;
use crate::config::GuardConfig;
use crate::crypto::{self, Secret};
use crate::error::OAuthError;
use crate::guard::{self, Attempt, GuardError, Realm};
use crate::identity::AssuranceLevel;
use crate::store::StoreError;
use crate::users::{self, PasswordPool, User};

/// Longest username and (encoded) password accepted.
const MAX_FIELD: usize = 512;

/// The scopes a legacy token may carry: never a sensitive one (no consent can be asked here)
/// and never `offline_access`.
const LEGACY_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// Why a legacy login failed. Every variant but [`LegacyError::Store`] is a JM-B failure body.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// The client may not use the legacy login (the admin flag is off) or is blocked.
    #[error("legacy login is not enabled for this client")]
    NotEnabled,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(&'static str),
    /// Wrong username or password (the message stays generic).
    #[error("wrong username or password")]
    BadCredentials {
        /// Failures left before a lockout, when the guard counts.
        remaining: Option<u32>,
        /// Seconds until the next try, when this failure started a hold.
        retry_after: Option<u64>,
    },
    /// Too many failures: try later.
    #[error("too many failed attempts; retry later")]
    Throttled {
        /// Seconds until the next try.
        retry_after: u64,
    },
    /// A legal person's account: legal persons sign in through an agent on the login page.
    #[error("legal persons cannot use the legacy login; an agent signs in on the login page")]
    LegalPerson,
    /// The person's assurance level is below what the client requires.
    #[error("the account's assurance level is below what this application requires")]
    BelowLevel,
    /// The account is disabled.
    #[error("wrong username or password")]
    Disabled,
    /// Password hashing is saturated.
    #[error("the service is busy; retry shortly")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Minting failed.
    #[error("{}", .0.description)]
    Mint(OAuthError),
}

/// What a legacy login request carries.
pub struct Request<'a> {
    /// `username`.
    pub username: &'a str,
    /// `password`, base64 (standard or URL-safe, padding optional).
    pub password_b64: &'a str,
    /// `account_kind`, when sent (the login page's field): `legal_person` is refused.
    pub account_kind: Option<&'a str>,
    /// The caller's address, for the guard.
    pub ip: Option<&'a str>,
}

/// The outcome: the tokens and the user they are for.
#[derive(Debug)]
pub struct Success {
    /// The minted token response (access token only).
    pub tokens: TokenResponse,
    /// The user's id.
    pub user: String,
}

/// The client's minimum assurance level (HL-6.1). Placeholder until part C merges: C adds the
/// per-client minimum to the client record; until then no client requires one.
pub fn min_level(_client: &Client) -> Option<AssuranceLevel> {
    None
}

fn decode_password(b64: &str) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let trimmed = b64.trim().trim_end_matches('=');
    let raw = URL_SAFE_NO_PAD
        .decode(trimmed.replace('+', "-").replace('/', "_"))
        .ok()
        .or_else(|| STANDARD.decode(b64.trim()).ok())?;
    String::from_utf8(raw).ok().filter(|p| !p.is_empty())
}

/// JM-B: checks the password behind the guard and mints an access token for `client`.
pub async fn login(
    ctx: Ctx<'_>,
    passwords: &PasswordPool,
    guard_cfg: &GuardConfig,
    client: &Client,
    req: &Request<'_>,
) -> Result<Success, LegacyError> {
    if !client.legacy_login || crate::clients::admit(client, crate::clients::Endpoint::Token).is_err() {
        return Err(LegacyError::NotEnabled);
    }
    if req.account_kind == Some("legal_person") {
        return Err(LegacyError::LegalPerson);
    }
    let username = req.username.trim();
    if username.is_empty() || req.password_b64.is_empty() {
        return Err(LegacyError::BadRequest("username and password are required"));
    }
    if username.len() > MAX_FIELD || req.password_b64.len() > MAX_FIELD {
        return Err(LegacyError::BadRequest("username or password is too long"));
    }
    let password = decode_password(req.password_b64)
        .ok_or(LegacyError::BadRequest("password must be base64 of the UTF-8 password"))?;
    // A legal person's credit code typed as a username: legal persons never sign in themselves.
    if crate::identity::legal::by_uscc(ctx.store, username).await?.is_some() {
        return Err(LegacyError::LegalPerson);
    }
    let attempt = Attempt::new(Realm::Password, username, req.ip);
    let (user, admitted) =
        tokio::join!(users::by_username(ctx.store, username), guard::admit(ctx.store, guard_cfg, &attempt, ctx.now));
    let admitted = match admitted {
        Ok(a) => a,
        Err(GuardError::Throttled(r)) => return Err(LegacyError::Throttled { retry_after: r.retry_after }),
        Err(GuardError::Store(e)) => return Err(e.into()),
    };
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            let _ = guard::release(ctx.store, admitted).await;
            return Err(e.into());
        }
    };
    let phc = user.as_ref().filter(|u| u.enabled).map(|u| u.password_hash.clone());
    let user: User = match (passwords.verify(Secret(password), phc).await, user) {
        (Ok(true), Some(u)) => u,
        (Ok(_), known) => {
            let failed = guard::failed(ctx.store, guard_cfg, admitted, ctx.now).await?;
            if known.is_some_and(|u| !u.enabled) {
                return Err(LegacyError::Disabled);
            }
            return Err(LegacyError::BadCredentials {
                remaining: failed.remaining,
                retry_after: failed.hold.map(|h| h.retry_after),
            });
        }
        (Err(_), _) => {
            guard::release(ctx.store, admitted).await?;
            return Err(LegacyError::Busy);
        }
    };
    guard::succeeded(ctx.store, admitted).await?;
    // HL-6.1: below the client's minimum level, no token.
    if min_level(client).is_some_and(|min| user.level() < min) {
        return Err(LegacyError::BelowLevel);
    }
    let ttl = client.access_token_ttl.unwrap_or(ctx.tokens.access_token_ttl);
    let exp = ctx.now + ttl;
    let gid = crypto::random_token(16);
    let f = Family {
        client_id: client.client_id.clone(),
        sub: user.id.clone(),
        sid: String::new(),
        generation: user.generation,
        offline: false,
        exp,
        revoked: false,
        acting: None,
    };
    if !family::start(ctx.store, &gid, &f, ctx.now).await? {
        return Err(LegacyError::Mint(OAuthError::server_error()));
    }
    let scope: Vec<String> = LEGACY_SCOPES.iter().filter(|s| client.holds_scope(s)).map(|s| (*s).to_owned()).collect();
    let auth = UserAuth {
        sub: user.id.clone(),
        sid: String::new(),
        auth_time: ctx.now,
        acr: user.level().acr().to_owned(),
        amr: vec!["pwd".into()],
        generation: user.generation,
        acting: None,
    };
    let m = Mint { client, scope, user: Some(auth), family: Some((gid, exp)), nonce: None, refresh: false };
    // No ID token: the legacy answer carries the access token only.
    let mut tokens = mint(ctx, m).await.map_err(LegacyError::Mint)?;
    tokens.id_token = None;
    Ok(Success { tokens, user: user.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_decode_from_either_base64_alphabet() {
        // JM-B: base64 password.
        assert_eq!(decode_password("ZGVtby1wYXNzd29yZA==").as_deref(), Some("demo-password"));
        assert_eq!(decode_password("ZGVtby1wYXNzd29yZA").as_deref(), Some("demo-password"));
        assert_eq!(decode_password("5a+G56CB").as_deref(), Some("密码"));
        assert_eq!(decode_password("5a-G56CB").as_deref(), Some("密码"));
        assert_eq!(decode_password("!!!"), None);
        assert_eq!(decode_password(""), None);
    }
}
