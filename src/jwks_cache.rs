//! Fetches and caches remote JWK Sets (a client's `jwks_uri`, a trusted platform's JWKS).
//! Entries live five minutes; a forced refresh (unknown `kid`) is allowed once per ten seconds
//! per URI, a failed fetch is remembered `outbound.failure_cache_secs`, and concurrent requests
//! share one fetch, so a flood of bad assertions cannot turn us into a request amplifier.

use std::time::Duration;

use crate::jwt::JwkSet;
use crate::outbound::cache::{FetchCache, Lifetimes};
use crate::outbound::{BodyError, read_limited};

const TTL: Duration = Duration::from_secs(300);
const MIN_REFRESH: Duration = Duration::from_secs(10);
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why a JWKS could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksError {
    /// Network or HTTP failure.
    #[error("fetching JWKS failed: {0}")]
    Fetch(String),
    /// The document is not a JWK Set.
    #[error("JWKS document is invalid: {0}")]
    Invalid(String),
}

/// A cache of remote JWK Sets keyed by URL.
#[derive(Debug)]
pub struct JwksCache {
    http: reqwest::Client,
    cache: FetchCache<JwkSet, JwksError>,
}

impl JwksCache {
    /// A cache using `http` for fetches, remembering failures for `failure_ttl`.
    pub fn new(http: reqwest::Client, failure_ttl: Duration) -> Self {
        Self { http, cache: FetchCache::new(Lifetimes { ttl: TTL, failure_ttl, min_refresh: MIN_REFRESH }) }
    }

    /// The JWKS at `uri`, from cache when fresh; `refresh` asks for a refetch (rate-limited).
    pub async fn get(&self, uri: &str, refresh: bool) -> Result<JwkSet, JwksError> {
        self.cache.get(uri, refresh, || fetch(&self.http, uri)).await
    }
}

async fn fetch(http: &reqwest::Client, uri: &str) -> Result<JwkSet, JwksError> {
    let resp = http
        .get(uri)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| JwksError::Fetch(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(JwksError::Fetch(format!("status {}", resp.status())));
    }
    let body = read_limited(resp, MAX_JWKS_BYTES).await.map_err(|e| match e {
        BodyError::TooLarge(_) => JwksError::Invalid("document too large".into()),
        BodyError::Read(e) => JwksError::Fetch(e),
    })?;
    serde_json::from_slice(&body).map_err(|e| JwksError::Invalid(e.to_string()))
}
