//! Client credentials grant (RFC 6749 s4.4, DC-2): a backend gets an access token for itself,
//! holding only the scopes it was granted (AY-7.1). No refresh token (RFC 6749 s4.4.3).

use super::{Ctx, Mint, TokenResponse, USER_SCOPES, check_granted, mint, parse_scope};
use crate::clients::{Client, GrantType};
use crate::error::OAuthError;

/// Issues an access token to an authenticated client.
pub async fn grant(ctx: Ctx<'_>, client: &Client, scope: Option<&str>) -> Result<TokenResponse, OAuthError> {
    if !client.allows(GrantType::ClientCredentials) || client.is_public() {
        return Err(OAuthError::unauthorized_client("client_credentials is not allowed for this client"));
    }
    let scope = match scope {
        Some(raw) => {
            let requested = parse_scope(raw)?;
            if let Some(s) = requested.iter().find(|s| USER_SCOPES.contains(&s.as_str())) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope '{s}' needs a user; not available to client_credentials"
                )));
            }
            check_granted(client, &requested)?;
            requested
        }
        // RFC 6749 s3.3: without a scope parameter we apply the default: everything granted.
        None => client.scopes.iter().filter(|s| !USER_SCOPES.contains(&s.as_str())).cloned().collect(),
    };
    mint(ctx, Mint { client, scope, user: None, family: None, nonce: None, refresh: false }).await
}
