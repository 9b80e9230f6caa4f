//! What we know of a peer platform: its discovery document (OIDC Discovery s4, cached five
//! minutes, a failure for `outbound.failure_cache_secs`, issuer checked) and its keys (the shared JWKS cache, refetched on an unknown `kid`),
//! and the verification of JWTs it signed: ID tokens, access tokens and logout tokens.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::FedError;
use crate::jwks_cache::JwksCache;
pub use crate::jwt::Audience;
use crate::jwt::{Unverified, VerifyKey};
use crate::outbound::cache::{FetchCache, Lifetimes};
use crate::outbound::read_limited;

const TTL: Duration = Duration::from_secs(300);
const MAX_DOC: usize = 64 * 1024;

/// The parts of a provider's metadata we use.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Issuer (must equal the trusted issuer, OIDC Discovery s4.3).
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// JWKS.
    pub jwks_uri: String,
    /// UserInfo endpoint.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// tongzheng's server-to-server logout (HL-5.4), when the peer is a tongzheng.
    #[serde(default)]
    pub platform_logout_endpoint: Option<String>,
    /// tongzheng's registration sync API (GB-6.4a), when the peer is a tongzheng.
    #[serde(default)]
    pub registration_sync_endpoint: Option<String>,
    /// RP-Initiated Logout endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// The metadata cache of one instance: failures are remembered too, and concurrent requests
/// for one issuer share a fetch (see [`FetchCache`]).
#[derive(Debug)]
pub struct Peers {
    cache: FetchCache<Metadata, String>,
}

impl Peers {
    /// An empty cache remembering failed fetches for `failure_ttl`.
    pub fn new(failure_ttl: Duration) -> Self {
        Self { cache: FetchCache::new(Lifetimes { ttl: TTL, failure_ttl, min_refresh: TTL }) }
    }

    /// The metadata of `issuer`, from cache when fresh.
    pub async fn metadata(&self, http: &reqwest::Client, issuer: &str) -> Result<Metadata, FedError> {
        self.cache.get(issuer, false, || discover(http, issuer)).await.map_err(FedError::Remote)
    }
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, String> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let resp = http
        .get(&url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| format!("discovery of {issuer}: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("discovery of {issuer} answered {}", resp.status()));
    }
    let body = read_limited(resp, MAX_DOC).await.map_err(|e| format!("discovery of {issuer}: {e}"))?;
    let m: Metadata =
        serde_json::from_slice(&body).map_err(|e| format!("discovery of {issuer} is not provider metadata: {e}"))?;
    if m.issuer != issuer {
        return Err(format!("{issuer} names itself {} (OIDC Discovery s4.3)", m.issuer));
    }
    Ok(m)
}

/// Verifies a JWT signed by the peer whose keys are at `jwks_uri`, refetching the keys once
/// when the `kid` is unknown (the peer rotated). Returns the claims and the header's `typ`.
pub async fn verify<T: DeserializeOwned>(
    jwks: &JwksCache,
    jwks_uri: &str,
    token: &str,
) -> Result<(T, Option<String>), FedError> {
    let parsed = Unverified::parse(token).map_err(|_| FedError::Invalid("not a JWT".into()))?;
    let alg = parsed.alg.ok_or_else(|| FedError::Invalid("unsupported signature algorithm".into()))?;
    for refresh in [false, true] {
        let set = jwks.get(jwks_uri, refresh).await.map_err(|e| FedError::Remote(e.to_string()))?;
        let candidates = set
            .keys
            .iter()
            .filter(|k| parsed.header.kid.is_none() || k.kid == parsed.header.kid)
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg.as_str()))
            .filter_map(VerifyKey::from_jwk);
        for key in candidates {
            if let Ok(claims) = parsed.verify::<T>(&key) {
                return Ok((claims, parsed.header.typ.clone()));
            }
        }
    }
    Err(FedError::Invalid("the signature does not verify with the platform's keys".into()))
}

/// A peer's ID token (OIDC Core s2), as much as we read.
#[derive(Debug, Clone, Deserialize)]
pub struct IdToken {
    /// Issuer.
    pub iss: String,
    /// Subject at the peer.
    pub sub: String,
    /// Audience: our client_id there.
    pub aud: Audience,
    /// Authorized party.
    #[serde(default)]
    pub azp: Option<String>,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Nonce we sent.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The peer's session id (Back-Channel Logout s2.1).
    #[serde(default)]
    pub sid: Option<String>,
    /// Authentication context.
    #[serde(default)]
    pub acr: Option<String>,
    /// Authentication methods.
    #[serde(default)]
    pub amr: Option<Vec<String>>,
    /// When the user authenticated there.
    #[serde(default)]
    pub auth_time: Option<i64>,
}

/// The leeway for clock differences between platforms, seconds.
pub const LEEWAY: i64 = 60;

/// OIDC Core s3.1.3.7: issuer, audience, azp, expiry, nonce.
pub fn check_id_token(t: &IdToken, issuer: &str, client_id: &str, nonce: &str, now: i64) -> Result<(), FedError> {
    let bad = |w: &str| Err(FedError::Invalid(format!("ID token from {issuer}: {w}")));
    if t.iss != issuer {
        return bad("wrong issuer");
    }
    if !t.aud.contains(client_id) {
        return bad("not for us (aud)");
    }
    if let (Audience::Many(list), Some(azp)) = (&t.aud, &t.azp)
        && list.len() > 1
        && azp != client_id
    {
        return bad("azp is another client");
    }
    if t.exp + LEEWAY <= now {
        return bad("expired");
    }
    if t.iat > now + LEEWAY {
        return bad("issued in the future");
    }
    if t.nonce.as_deref() != Some(nonce) {
        return bad("nonce does not match");
    }
    if t.sub.is_empty() || t.sub.len() > 255 {
        return bad("no usable sub");
    }
    Ok(())
}
