//! Token formats and checks: JWT access tokens (RFC 9068), ID tokens (OIDC Core s2), and the
//! one validation path every protected endpoint uses (signature, `typ`, `iss`, `exp`, then the
//! revocation markers and the client's standing, in a single store round trip).

use serde::{Deserialize, Serialize};

use crate::clients::Client;
use crate::crypto::b64;
use crate::error::OAuthError;
use crate::jwt::{Alg, Audience};
use crate::keys::Keys;
use crate::store::{self, DynStore, keys};

/// `typ` of JWT access tokens (RFC 9068 s2.1).
pub const AT_TYP: &str = "at+jwt";

/// Claims of a JWT access token (RFC 9068 s2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user, or the client for client_credentials (RFC 9068 s2.2).
    pub sub: String,
    /// Audience: the resource(s) the token is for; our issuer unless a token exchange named
    /// another (RFC 8693 s2.1 `audience`/`resource`). Each resource server checks it is named.
    pub aud: Audience,
    /// The client it was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Unique id.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// When the user authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Authentication context class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// SSO session id, when a user is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Grant (token family) id: revoking the family makes this token inactive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The acting party of a delegated token (RFC 8693 s4.1), prior actors nested inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
}

impl AccessClaims {
    /// Whether the token carries a scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
    /// Whether the token is meant for `resource` (RFC 9068 s4: a resource server refuses a
    /// token whose `aud` does not name it).
    pub fn is_for(&self, resource: &str) -> bool {
        self.aud.contains(resource)
    }
    /// True when the subject is a user rather than the client itself.
    pub fn has_user(&self) -> bool {
        self.sid.is_some() || self.auth_time.is_some()
    }
}

/// Claims of an ID token (OIDC Core s2, s3.1.3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience: the client_id.
    pub aud: String,
    /// Authorized party (OIDC Core s2).
    pub azp: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Authentication time.
    pub auth_time: i64,
    /// Nonce from the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authentication context class.
    pub acr: String,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// Session id (Front/Back-Channel Logout).
    pub sid: String,
    /// Access token hash (OIDC Core s3.1.3.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
}

/// `at_hash`: left half of the hash of the access token, hash chosen by the ID token's alg
/// (SHA-256 for ES256/RS256, SHA-512 for EdDSA over Ed25519).
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    let algo = match alg {
        Alg::EdDSA => &ring::digest::SHA512,
        Alg::ES256 | Alg::RS256 => &ring::digest::SHA256,
    };
    let d = ring::digest::digest(algo, access_token.as_bytes());
    let bytes = d.as_ref();
    b64(bytes.get(..bytes.len() / 2).unwrap_or_default())
}

/// Verifies a bearer access token and checks it is still active: our signature, `typ` at+jwt,
/// our issuer, not expired, not revoked (by jti or by grant), and its client still enabled and
/// its application neither suspended nor offline (AY-8.5.3.2: the block is immediate).
/// `aud` is not checked here: a token exchanged for another resource (RFC 8693) is valid too,
/// and each resource checks it is named ([`AccessClaims::is_for`]). Every failure is
/// `invalid_token`; store failures are `temporarily_unavailable`.
pub async fn validate_access_token(
    keys_: &Keys,
    store: &DynStore,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<(AccessClaims, Client), OAuthError> {
    let invalid = || OAuthError::invalid_token("the access token is invalid, expired or revoked");
    let (claims, typ): (AccessClaims, _) = keys_.verify(token).map_err(|_| invalid())?;
    if typ.as_deref() != Some(AT_TYP) || claims.iss != issuer || claims.exp <= now {
        return Err(invalid());
    }
    // One round trip: the client, the jti marker, and the grant and session markers if any.
    let mut lookups = vec![keys::client(&claims.client_id), keys::revoked_jti(&claims.jti)];
    if let Some(gid) = &claims.gid {
        lookups.push(keys::revoked_grant(gid));
    }
    if let Some(sid) = &claims.sid {
        lookups.push(keys::ended_session(sid));
    }
    let mut found = store.get_many(&lookups).await?.into_iter();
    let client_bytes = found.next().flatten().ok_or_else(invalid)?;
    if found.next().flatten().is_some() {
        return Err(invalid());
    }
    if claims.gid.is_some() && found.next().flatten().is_some() {
        return Err(invalid());
    }
    if claims.sid.is_some() {
        // Tokens issued under an ended session die with it; an offline_access grant refreshed
        // after the logout carries a later iat and lives on (OIDC Core s11).
        let ended = crate::logout::ended_at(found.next().flatten().as_deref());
        if ended.is_some_and(|at| claims.iat <= at) {
            return Err(invalid());
        }
    }
    let client: Client = store::decode(&keys::client(&claims.client_id), &client_bytes)?;
    if !client.tokens_valid() {
        return Err(invalid());
    }
    Ok((claims, client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core A.3: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" is "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(at_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
