//! Refresh token grant (RFC 6749 s6, DC-3) with rotation on every use and reuse detection
//! (RFC 9700 s4.14.2): a rotated token presented again after the grace window revokes the whole
//! family; within the window (a client's concurrent retry) it is honoured.

use super::{Ctx, Mint, RefreshRecord, TokenResponse, check_granted, mint, parse_scope, revoke_grant};
use crate::clients::{Client, GrantType};
use crate::crypto;
use crate::error::OAuthError;
use crate::store::{self, keys};

/// Exchanges a refresh token for a new access token and a new refresh token.
pub async fn grant(
    ctx: Ctx<'_>,
    client: &Client,
    token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::RefreshToken) {
        return Err(OAuthError::unauthorized_client("refresh_token is not allowed for this client"));
    }
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    if token.is_empty() || token.len() > 128 {
        return Err(invalid());
    }
    let key = keys::refresh_token(&crypto::token_key(token));
    // Validate before redeeming, so a refused request (wrong client, wider scope) does not
    // consume the token.
    let peeked = ctx.store.peek(&key).await?.ok_or_else(invalid)?;
    let record: RefreshRecord = store::decode(&key, &peeked.value)?;
    // RFC 6749 s6: the token must have been issued to the authenticated client.
    if record.client_id != client.client_id {
        return Err(invalid());
    }
    // RFC 6749 s6: a narrower scope may be asked for, never a wider one; the client must still
    // hold every scope (a grant withdrawn by the admin is withdrawn here too).
    let scope = match scope {
        Some(raw) => {
            let requested = parse_scope(raw)?;
            if let Some(s) = requested.iter().find(|s| !record.scope.contains(s)) {
                return Err(OAuthError::invalid_scope(format!("scope '{s}' was not part of the original grant")));
            }
            requested
        }
        None => record.scope.clone(),
    };
    let redeemed = ctx.store.redeem(&key, ctx.now).await?.ok_or_else(invalid)?;
    if let Some(first) = redeemed.first_redeemed_at
        && ctx.now - first > ctx.tokens.refresh_grace
    {
        tracing::warn!(client_id = %client.client_id, "rotated refresh token reused; revoking the family");
        revoke_grant(ctx.store, &record.gid, record.family_exp, ctx.now).await?;
        return Err(invalid());
    }
    let markers =
        ctx.store.get_many(&[keys::revoked_grant(&record.gid), keys::ended_session(&record.user.sid)]).await?;
    let family_revoked = markers.first().is_some_and(Option::is_some);
    // A refresh token issued under an SSO session ends with it, unless it is offline_access.
    let session_ended = !record.offline && markers.get(1).is_some_and(Option::is_some);
    if record.family_exp <= ctx.now || family_revoked || session_ended {
        return Err(invalid());
    }
    check_granted(client, &scope)?;
    mint(
        ctx,
        Mint {
            client,
            scope,
            user: Some(record.user),
            gid: Some(record.gid),
            nonce: None,
            refresh_family_exp: Some(record.family_exp),
        },
    )
    .await
}
