//! Token formats: JWT access tokens (RFC 9068) and ID tokens (OIDC Core s2). Whether a token
//! is alive is decided in one place, [`validity`]; introspection ([`introspection`], RFC 7662)
//! and revocation ([`revocation`], RFC 7009) are built on it.

pub mod introspection;
pub mod revocation;
pub mod validity;
mod wire;

use serde::{Deserialize, Serialize};

use crate::crypto::b64;
use crate::jwt::{Alg, Audience};

pub use validity::{Authority, Dead, LiveAccess, Standing};

use crate::identity::PrincipalKind;
use crate::identity::claims::{self, Place};
use crate::sealing::DataKey;

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
    /// The acting party of a delegated token (RFC 8693 s4.1), prior actors nested inside; for
    /// an agent acting for a legal person, `{"sub": <agent>}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// `natural_person` or `legal_person` (HL-5.1), when a user is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<PrincipalKind>,
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
    /// True when the subject is a user rather than the client itself (a grant family always
    /// has a user; client_credentials tokens have neither family, session nor auth_time).
    pub fn has_user(&self) -> bool {
        self.sid.is_some() || self.auth_time.is_some() || self.gid.is_some()
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
    /// Authentication context class: the assurance level's number (HL-6.1).
    pub acr: String,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// Session id (Front/Back-Channel Logout).
    pub sid: String,
    /// Access token hash (OIDC Core s3.1.3.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The identity claims [`crate::identity::claims`] releases in ID tokens (`user_type`,
    /// `auth_level`, `act`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// OIDC Core s5.3.2: the UserInfo claims of a live access token, released by its scopes
/// through the claims table ([`crate::identity::claims`]).
pub fn userinfo(live: &LiveAccess, data: &DataKey) -> serde_json::Map<String, serde_json::Value> {
    let c = &live.claims;
    claims::release(Place::UserInfo, |s| c.has_scope(s), &live.principal(), data, &[])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_oidc_example() {
        // OIDC Core A.3: at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" is "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(at_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
