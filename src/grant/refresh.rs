//! Refresh token grant (RFC 6749 s6, DC-3) with rotation on every use and reuse detection
//! (RFC 9700 s4.14.2). Whether the token is alive is the validity authority's call. A rotated
//! token presented again is reuse and revokes the whole family, unless the operator enabled a
//! grace window (`tokens.refresh_grace`, 0 by default) for clients that retry: a replay inside
//! it gets the *same* successor the first use issued (an idempotent retry), never a new branch.
//! The successor is prepared and stored before the token is marked used, and kept beside the
//! mark for retries ([`super::retry`]), so a failure inside the server never burns the token.

use super::{Ctx, Mint, TokenResponse, check_granted, family, mint, parse_scope, retry};
use crate::clients::{Client, GrantType};
use crate::crypto;
use crate::error::OAuthError;
use crate::session;
use crate::store::{self, keys};
use crate::tokens::validity::RefreshState;

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

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
    let state = match ctx.authority().refresh_state(token, ctx.now).await? {
        Ok(s) => s,
        Err(dead) => {
            tracing::info!(client_id = %client.client_id, reason = dead.as_str(), "refresh token refused");
            return Err(invalid());
        }
    };
    // RFC 6749 s6: the token must have been issued to the authenticated client.
    if state.record.client_id != client.client_id {
        return Err(invalid());
    }
    if let Some(first) = state.rotated_at {
        return replay(ctx, client, token, &state, first, state.successor.as_deref()).await;
    }
    // RFC 6749 s6: a narrower scope may be asked for, never a wider one; the client must still
    // hold every scope (a grant withdrawn by the admin is withdrawn here too). Checked before
    // the token is used, so a refused request does not consume it.
    let scope = match scope {
        Some(raw) => {
            let requested = parse_scope(raw)?;
            if let Some(s) = requested.iter().find(|s| !state.record.scope.contains(s)) {
                return Err(OAuthError::invalid_scope(format!("scope '{s}' was not part of the original grant")));
            }
            requested
        }
        None => state.record.scope.clone(),
    };
    check_granted(client, &scope)?;
    // The successor is minted and stored first: until the mark below, a failure leaves the
    // presented token usable. Using the application keeps the SSO session alive, as browser
    // activity does; both writes in one round trip.
    let record = state.record.clone();
    let touched = async {
        match state.standing.session.clone() {
            // A session ended meanwhile makes the new tokens dead at once (validity); nothing to do.
            Some(mut s) => session::touch(ctx.store, &mut s, ctx.now, ctx.timeouts).await.map(|_| ()),
            None => Ok(()),
        }
    };
    let minted = mint(
        ctx,
        Mint {
            client,
            scope,
            user: Some(record.user),
            family: Some((record.gid, record.family_exp)),
            nonce: None,
            refresh: true,
        },
    );
    let (touched, minted) = tokio::join!(touched, minted);
    touched?;
    let resp = minted?;
    // Kept for the grace window when there is one; else only until given (or RETRY_WINDOW).
    let grace = ctx.tokens.refresh_grace;
    let keep_until = ctx.now + if grace > 0 { grace } else { retry::RETRY_WINDOW };
    let sealed = retry::seal(token, &resp, ctx.now, keep_until);
    // Once used, the record only has to be recognised (reuse detection, for the family's life):
    // what names its family, client, user and session; not its scopes or how the user logged in.
    let lean = store::encode(&state.record.used());
    let redeemed = ctx.store.redeem_with(&state.key, ctx.now, &sealed, &lean).await?.ok_or_else(invalid)?;
    if let Some(first) = redeemed.first_redeemed_at {
        // Another request used it between our read and our mark: its answer stands, ours is
        // dropped.
        if let Some(rt) = &resp.refresh_token {
            let _ = ctx.store.delete(&keys::refresh_token(&crypto::token_key(rt))).await;
        }
        return replay(ctx, client, token, &state, first, redeemed.successor.as_deref()).await;
    }
    if ctx.tokens.refresh_grace == 0
        && let Err(e) = ctx.store.drop_successor(&state.key).await
    {
        // Kept for RETRY_WINDOW at most: a replay within it gets this same answer.
        tracing::warn!(error = %e, "the answer of a refresh could not be dropped");
    }
    Ok(resp)
}

/// A rotated token presented again (RFC 9700 s4.14.2): the kept answer while its window lasts
/// (a retry), otherwise reuse, which revokes the family.
async fn replay(
    ctx: Ctx<'_>,
    client: &Client,
    token: &str,
    state: &RefreshState,
    first: i64,
    kept: Option<&[u8]>,
) -> Result<TokenResponse, OAuthError> {
    if let Some(answer) = kept.and_then(|k| retry::open(token, k, ctx.now)) {
        tracing::info!(client_id = %client.client_id, first_used = first, "refresh retried: the same answer");
        if ctx.tokens.refresh_grace == 0 {
            // Given now; a later replay is reuse.
            ctx.store.drop_successor(&state.key).await?;
        }
        return Ok(answer);
    }
    tracing::warn!(client_id = %client.client_id, "rotated refresh token reused; revoking the family");
    family::revoke(ctx.store, &state.record.gid, state.record.family_exp, ctx.now).await?;
    Err(invalid())
}
