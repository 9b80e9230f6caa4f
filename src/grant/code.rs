//! Authorization code grant (RFC 6749 s4.1, DC-1, HL-5.3) with PKCE (RFC 7636). Codes are
//! random, stored by hash, live at most 60 s, and are redeemed through an atomic first-use
//! marker: a second redemption is refused and revokes what the first one issued (RFC 6749
//! s4.1.2, RFC 9700 s4.5).

use serde::{Deserialize, Serialize};

use super::{Ctx, Mint, TokenResponse, UserAuth, mint, revoke_grant};
use crate::clients::{Client, GrantType};
use crate::crypto::{self, b64, ct_eq};
use crate::error::OAuthError;
use crate::store::{self, keys};

/// What a code stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI the authorization request named.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// ID token nonce.
    #[serde(default)]
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    #[serde(default)]
    pub code_challenge: Option<String>,
    /// The authenticated user.
    pub user: UserAuth,
    /// The grant id tokens from this code will carry.
    pub gid: String,
    /// Expiry.
    pub exp: i64,
}

/// Stores a new code for `record` and returns it.
pub async fn issue(ctx: Ctx<'_>, record: &CodeRecord) -> Result<String, OAuthError> {
    let code = crypto::random_token(32);
    let key = keys::code(&crypto::token_key(&code));
    ctx.store.put_redeemable(&key, &store::encode(record), store::ttl_until(record.exp, ctx.now)).await?;
    Ok(code)
}

/// RFC 7636 s4.1: code_verifier = 43*128 unreserved characters.
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 s4.2: an S256 challenge is the base64url SHA-256 of a verifier: 43 characters.
pub fn valid_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// RFC 7636 s4.6: BASE64URL(SHA256(verifier)) == challenge.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    ct_eq(b64(&crypto::sha256(verifier.as_bytes())).as_bytes(), challenge.as_bytes())
}

/// The token request fields of this grant.
pub struct Redeem<'a> {
    /// `code`.
    pub code: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub code_verifier: Option<&'a str>,
}

/// Exchanges a code for tokens (RFC 6749 s4.1.3).
pub async fn redeem(ctx: Ctx<'_>, client: &Client, req: Redeem<'_>) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client("authorization_code is not allowed for this client"));
    }
    let bad = |d: &'static str| OAuthError::invalid_grant(d);
    if req.code.is_empty() || req.code.len() > 128 {
        return Err(bad("the authorization code is invalid"));
    }
    let key = keys::code(&crypto::token_key(req.code));
    let Some(redeemed) = ctx.store.redeem(&key, ctx.now).await? else {
        return Err(bad("the authorization code is invalid or expired"));
    };
    let record: CodeRecord = store::decode(&key, &redeemed.value)?;
    if redeemed.first_redeemed_at.is_some() {
        // RFC 6749 s4.1.2: a code used twice is refused, and tokens it already issued are revoked.
        tracing::warn!(client_id = %record.client_id, "authorization code replayed; revoking its grant");
        let until = ctx.now + ctx.tokens.refresh_token_ttl.max(ctx.tokens.access_token_ttl);
        revoke_grant(ctx.store, &record.gid, until, ctx.now).await?;
        return Err(bad("the authorization code was already used"));
    }
    if record.exp <= ctx.now {
        return Err(bad("the authorization code expired"));
    }
    if record.client_id != client.client_id {
        return Err(bad("the authorization code was issued to another client"));
    }
    // RFC 6749 s4.1.3: redirect_uri must be identical to the one in the authorization request.
    if req.redirect_uri != Some(record.redirect_uri.as_str()) {
        return Err(bad("redirect_uri does not match the authorization request"));
    }
    match (&record.code_challenge, req.code_verifier) {
        (Some(challenge), Some(v)) => {
            if !valid_verifier(v) || !pkce_matches(v, challenge) {
                return Err(bad("PKCE verification failed"));
            }
        }
        (Some(_), None) => return Err(bad("code_verifier is required (RFC 7636 s4.5)")),
        // RFC 9700 s4.8.2: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => return Err(bad("code_verifier sent but no code_challenge was")),
        (None, None) => {}
    }
    let family_ttl = client.refresh_token_ttl.unwrap_or(ctx.tokens.refresh_token_ttl);
    let refresh_family_exp = client.allows(GrantType::RefreshToken).then_some(ctx.now + family_ttl);
    mint(
        ctx,
        Mint {
            client,
            scope: record.scope,
            user: Some(record.user),
            gid: Some(record.gid),
            nonce: record.nonce,
            refresh_family_exp,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_verifier(verifier));
        assert!(valid_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx", challenge));
        assert!(!valid_verifier("short"));
    }
}
