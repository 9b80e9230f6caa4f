//! Refresh token grant (RFC 6749 s6, DC-3) with rotation on every use and reuse detection
//! (RFC 9700 s4.14.2). Whether the token is alive is the validity authority's call. A rotated
//! token presented again is reuse and revokes the whole family, unless the operator enabled a
//! grace window (`tokens.refresh_grace`, 0 by default) for clients that retry: a replay inside
//! it gets the *same* successor the first use issued (an idempotent retry), never a new branch.
//! The successor is kept sealed under the presented token itself, so only its holder can open
//! it and the store never holds a usable token.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Ctx, Mint, TokenResponse, check_granted, family, mint, parse_scope};
use crate::clients::{Client, GrantType};
use crate::crypto;
use crate::error::OAuthError;
use crate::sealing::DataKey;
use crate::session;
use crate::store::keys;
use crate::tokens::validity::RefreshState;

/// How long a retry inside the grace window waits for the first use's answer to be stored.
const SUCCESSOR_WAIT: Duration = Duration::from_millis(1500);

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
        return replay(ctx, client, token, &state, first).await;
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
    let redeemed = ctx.store.redeem(&state.key, ctx.now).await?.ok_or_else(invalid)?;
    if let Some(first) = redeemed.first_redeemed_at {
        // Another request used it between our read and our redemption.
        return replay(ctx, client, token, &state, first).await;
    }
    // Using the application keeps the SSO session alive, as browser activity does.
    if let Some(mut s) = state.standing.session.clone() {
        session::touch(ctx.store, &mut s, ctx.now, ctx.timeouts).await?;
    }
    let record = state.record;
    let resp = mint(
        ctx,
        Mint {
            client,
            scope,
            user: Some(record.user),
            family: Some((record.gid, record.family_exp)),
            nonce: None,
            refresh: true,
        },
    )
    .await?;
    if ctx.tokens.refresh_grace > 0
        && let Some(key) = successor_key(token)
    {
        let sealed = key.seal(&serde_json::to_string(&Successor::of(&resp, ctx.now)).unwrap_or_default(), SEAL);
        let ttl = u64::try_from(ctx.tokens.refresh_grace).unwrap_or(1).max(1);
        ctx.store.put(&keys::refresh_successor(&crypto::token_key(token)), sealed.as_bytes(), Some(ttl)).await?;
    }
    Ok(resp)
}

/// A rotated token presented again (RFC 9700 s4.14.2).
async fn replay(
    ctx: Ctx<'_>,
    client: &Client,
    token: &str,
    state: &RefreshState,
    first: i64,
) -> Result<TokenResponse, OAuthError> {
    let grace = ctx.tokens.refresh_grace;
    if grace > 0 && ctx.now - first <= grace {
        let key = keys::refresh_successor(&crypto::token_key(token));
        let deadline = tokio::time::Instant::now() + SUCCESSOR_WAIT;
        loop {
            if let Some(sealed) = ctx.store.get(&key).await? {
                let opened = std::str::from_utf8(&sealed)
                    .ok()
                    .zip(successor_key(token))
                    .and_then(|(s, key)| key.open(s, SEAL))
                    .and_then(|json| serde_json::from_str::<Successor>(&json).ok());
                if let Some(stored) = opened {
                    tracing::info!(client_id = %client.client_id, "refresh retried within the grace window");
                    return Ok(stored.into_response(state, ctx.now));
                }
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The first use has not answered (it failed or is stuck): refuse, but this is not
        // evidence of theft, so the family lives on.
        tracing::warn!(client_id = %client.client_id, "refresh retried before the first use answered");
        return Err(invalid());
    }
    tracing::warn!(client_id = %client.client_id, "rotated refresh token reused; revoking the family");
    family::revoke(ctx.store, &state.record.gid, state.record.family_exp, ctx.now).await?;
    Err(invalid())
}

/// Sealing context of stored successors.
const SEAL: &str = "refresh-successor";

/// The key a successor is sealed under: derived from the presented token, which the store
/// never holds.
fn successor_key(token: &str) -> Option<DataKey> {
    let mut material = b"tongzheng refresh successor v1\0".to_vec();
    material.extend_from_slice(token.as_bytes());
    DataKey::from_bytes(&crypto::sha256(&material)).ok()
}

/// The answer a first use gave, as kept for retries.
#[derive(Serialize, Deserialize)]
struct Successor {
    access_token: String,
    refresh_token: Option<String>,
    id_token: Option<String>,
    scope: String,
    /// When the access token expires (the retry's `expires_in` counts down from the first).
    exp: i64,
}

impl Successor {
    fn of(r: &TokenResponse, now: i64) -> Self {
        Self {
            access_token: r.access_token.clone(),
            refresh_token: r.refresh_token.clone(),
            id_token: r.id_token.clone(),
            scope: r.scope.clone(),
            exp: now + r.expires_in,
        }
    }

    fn into_response(self, state: &RefreshState, now: i64) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            issued_token_type: None,
            token_type: "Bearer",
            expires_in: (self.exp - now).max(0),
            scope: self.scope,
            refresh_token: self.refresh_token,
            id_token: self.id_token,
            subject: Some(state.record.user.sub.clone()),
            audit: Some(serde_json::json!({"retry": true})),
        }
    }
}
