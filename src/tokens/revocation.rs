//! Token revocation (RFC 7009): a client revokes its own access or refresh token. Revoking a
//! refresh token revokes its whole grant family, so the access tokens it issued stop
//! validating too (s2.1); revoking an access token marks its `jti` for as long as it would
//! have lived. The token type hint is only a hint: both kinds are always searched (s2.1).

use super::AccessClaims;
use super::validity::Authority;
use crate::crypto;
use crate::grant::RefreshRecord;
use crate::grant::family;
use crate::store::{self, StoreError, keys};

/// What was revoked, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// `access_token` or `refresh_token`.
    pub kind: &'static str,
    /// The token's subject.
    pub sub: String,
}

/// Revokes `token` if it is one of `client_id`'s; anything else (unknown, expired, another
/// client's) is ignored, as s2.2 wants the same answer either way.
pub async fn revoke(
    auth: Authority<'_>,
    client_id: &str,
    token: &str,
    now: i64,
) -> Result<Option<Revoked>, StoreError> {
    if !token.is_empty() && token.len() <= 128 {
        let key = keys::refresh_token(&crypto::token_key(token));
        if let Some(found) = auth.store.peek(&key).await? {
            let r: RefreshRecord = store::decode(&key, &found.value)?;
            if r.client_id != client_id {
                return Ok(None);
            }
            family::revoke(auth.store, &r.gid, r.family_exp, now).await?;
            auth.store.delete(&key).await?;
            tracing::info!(client_id, "refresh token revoked with its family");
            return Ok(Some(Revoked { kind: "refresh_token", sub: r.user.sub }));
        }
    }
    // Only our own, unexpired access tokens of this client.
    let Ok((c, typ)) = auth.keys.verify_fresh::<AccessClaims>(token, now).await else {
        return Ok(None);
    };
    if typ.as_deref() != Some(super::AT_TYP) || c.client_id != client_id || c.iss != auth.issuer || c.exp <= now {
        return Ok(None);
    }
    auth.store.put(&keys::revoked_jti(&c.jti), b"1", Some(store::ttl_until(c.exp, now))).await?;
    tracing::info!(client_id, "access token revoked");
    Ok(Some(Revoked { kind: "access_token", sub: c.sub }))
}
