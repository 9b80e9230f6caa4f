//! Fetches and caches remote JWK Sets (a client's `jwks_uri`, later a trusted platform's JWKS).
//! Entries live five minutes; a forced refresh (unknown `kid`) is allowed once per ten seconds
//! per URI so a flood of bad assertions cannot turn us into a request amplifier.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::jwt::JwkSet;

const TTL: Duration = Duration::from_secs(300);
const MIN_REFRESH: Duration = Duration::from_secs(10);
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Why a JWKS could not be had.
#[derive(Debug, thiserror::Error)]
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
    entries: Mutex<HashMap<String, (JwkSet, Instant)>>,
}

impl JwksCache {
    /// A cache using `http` for fetches.
    pub fn new(http: reqwest::Client) -> Self {
        Self { http, entries: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, uri: &str) -> Option<(JwkSet, Instant)> {
        self.entries.lock().ok()?.get(uri).cloned()
    }

    /// The JWKS at `uri`, from cache when fresh; `refresh` asks for a refetch (rate-limited).
    pub async fn get(&self, uri: &str, refresh: bool) -> Result<JwkSet, JwksError> {
        let now = Instant::now();
        if let Some((set, at)) = self.cached(uri) {
            let age = now.saturating_duration_since(at);
            if age < TTL && (!refresh || age < MIN_REFRESH) {
                return Ok(set);
            }
        }
        let resp = self
            .http
            .get(uri)
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .map_err(|e| JwksError::Fetch(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(JwksError::Fetch(format!("status {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| JwksError::Fetch(e.without_url().to_string()))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(JwksError::Invalid("document too large".into()));
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| JwksError::Invalid(e.to_string()))?;
        if let Ok(mut map) = self.entries.lock() {
            map.insert(uri.to_owned(), (set.clone(), now));
        }
        Ok(set)
    }
}
