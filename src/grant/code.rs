//! Authorization code grant (RFC 6749 s4.1, DC-1, HL-5.3) with PKCE (RFC 7636). Codes are
//! random, stored by hash, live at most 60 s, and are redeemed through an atomic first-use
//! marker: a second redemption is refused and revokes what the first one issued (RFC 6749
//! s4.1.2, RFC 9700 s4.5).

use serde::{Deserialize, Serialize};

use super::family::{self, Family};
use super::{Ctx, Mint, TokenResponse, UserAuth, mint, retry};
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

/// Exchanges a code for tokens (RFC 6749 s4.1.3). The request is checked and the tokens
/// minted before the code is marked used, so a refused request or a failure inside the server
/// does not burn it; the mark keeps the answer for a retry ([`super::retry`]).
pub async fn redeem(ctx: Ctx<'_>, client: &Client, req: Redeem<'_>) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client("authorization_code is not allowed for this client"));
    }
    let bad = |d: &'static str| OAuthError::invalid_grant(d);
    if req.code.is_empty() || req.code.len() > 128 {
        return Err(bad("the authorization code is invalid"));
    }
    let key = keys::code(&crypto::token_key(req.code));
    let Some(found) = ctx.store.peek(&key).await? else {
        return Err(bad("the authorization code is invalid or expired"));
    };
    let record: CodeRecord = store::decode(&key, &found.value)?;
    if let Some(first) = found.first_redeemed_at {
        return replayed(ctx, client, &req, &key, &record, first, found.successor.as_deref()).await;
    }
    check(ctx, client, &req, &record)?;
    let refresh = client.allows(GrantType::RefreshToken);
    let exp = ctx.now + if refresh { longest_life(ctx, client) } else { access_life(ctx, client) };
    let f = Family {
        client_id: client.client_id.clone(),
        sub: record.user.sub.clone(),
        sid: record.user.sid.clone(),
        generation: record.user.generation,
        offline: refresh && record.scope.iter().any(|s| s == "offline_access"),
        exp,
        revoked: false,
        acting: record.user.acting.clone(),
    };
    // The family and the tokens are independent writes: one round trip. Taken already (a
    // concurrent redemption of this code started the family, or a replay revoked it): the
    // minted tokens are dropped unseen.
    let minted = mint(
        ctx,
        Mint {
            client,
            scope: record.scope.clone(),
            user: Some(record.user.clone()),
            family: Some((record.gid.clone(), exp)),
            nonce: record.nonce.clone(),
            refresh,
        },
    );
    let (started, minted) = tokio::join!(family::start(ctx.store, &record.gid, &f, ctx.now), minted);
    let resp = minted?;
    // Already there: an earlier attempt at this unused code started it and failed before its
    // mark (a retry adopts it), or a concurrent one is under way (the mark below decides), or
    // a replay revoked it (a tombstone: refused).
    if !started? && !family::get(ctx.store, &record.gid).await?.is_some_and(|e| e.live(ctx.now) && e.sub == f.sub) {
        forget_minted(ctx, &resp).await;
        let first = ctx.store.peek(&key).await?.and_then(|r| r.first_redeemed_at).unwrap_or(ctx.now);
        return replayed(ctx, client, &req, &key, &record, first, None).await;
    }
    let sealed = retry::seal(req.code, &resp, ctx.now, ctx.now + retry::RETRY_WINDOW);
    let redeemed = ctx
        .store
        .redeem_with(&key, ctx.now, &sealed, b"")
        .await?
        .ok_or_else(|| bad("the authorization code expired"))?;
    if let Some(first) = redeemed.first_redeemed_at {
        // Another attempt marked it first: its answer stands, ours is dropped unseen.
        forget_minted(ctx, &resp).await;
        return replayed(ctx, client, &req, &key, &record, first, redeemed.successor.as_deref()).await;
    }
    // Answered: the kept copy goes, so a replay from now on is one. (When this fails the copy
    // stays for RETRY_WINDOW at most, and a replay within it gets this same answer.)
    if let Err(e) = ctx.store.drop_successor(&key).await {
        tracing::warn!(error = %e, "the kept answer of a code redemption could not be dropped");
    }
    Ok(resp)
}

/// Drops the refresh token of tokens minted but never given out (best effort: unused, it dies
/// with its family anyway).
async fn forget_minted(ctx: Ctx<'_>, resp: &TokenResponse) {
    if let Some(rt) = &resp.refresh_token {
        let _ = ctx.store.delete(&keys::refresh_token(&crypto::token_key(rt))).await;
    }
}

/// RFC 6749 s4.1.3: the code is this client's, unexpired, for this redirect URI and verifier.
fn check(ctx: Ctx<'_>, client: &Client, req: &Redeem<'_>, record: &CodeRecord) -> Result<(), OAuthError> {
    let bad = |d: &'static str| OAuthError::invalid_grant(d);
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
    Ok(())
}

/// A used code presented again. The same request retried within the retry window, after the
/// first redemption's answer was lost inside the server, gets that answer. Anything else is a
/// replay (RFC 6749 s4.1.2): refused, and the tokens the code issued are revoked, for as long
/// as the family the first use started can live.
async fn replayed(
    ctx: Ctx<'_>,
    client: &Client,
    req: &Redeem<'_>,
    key: &str,
    record: &CodeRecord,
    first: i64,
    kept: Option<&[u8]>,
) -> Result<TokenResponse, OAuthError> {
    let same_request = check(ctx, client, req, record).is_ok();
    if let (true, Some(answer)) = (same_request, kept.and_then(|k| retry::open(req.code, k, ctx.now))) {
        tracing::info!(client_id = %client.client_id, "code redemption retried: the same answer");
        ctx.store.drop_successor(key).await?;
        return Ok(answer);
    }
    tracing::warn!(client_id = %record.client_id, "authorization code replayed; revoking its grant");
    let owner = if record.client_id == client.client_id {
        Some(client.clone())
    } else {
        crate::clients::get(ctx.store, &record.client_id).await?
    };
    let until = first + owner.as_ref().map_or(ctx.tokens.refresh_token_ttl, |c| longest_life(ctx, c));
    family::revoke(ctx.store, &record.gid, until.max(ctx.now + 1), ctx.now).await?;
    Err(OAuthError::invalid_grant("the authorization code was already used"))
}

fn access_life(ctx: Ctx<'_>, client: &Client) -> i64 {
    client.access_token_ttl.unwrap_or(ctx.tokens.access_token_ttl)
}

/// How long a family of `client` may hold live tokens: its refresh lifetime (an access token
/// never outlives its family), or one access token's life when it gets no refresh token.
fn longest_life(ctx: Ctx<'_>, client: &Client) -> i64 {
    if client.allows(GrantType::RefreshToken) {
        client.refresh_token_ttl.unwrap_or(ctx.tokens.refresh_token_ttl)
    } else {
        access_life(ctx, client)
    }
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
