//! The key set in the clear, as it lives in memory only: every signing key (PKCS#8) with its
//! dates, and the data key. Generation, rotation and pruning happen here; `record` seals it for
//! the store, and the pre-store `keys/keyset.json` file is read here once, for migration.

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair};
use serde::Deserialize;

use super::{ALGS, KeyError, SigningKey};
use crate::crypto::{b64, b64_decode};
use crate::jwt::Alg;
use crate::sealing::DataKey;

/// One signing key in the clear.
#[derive(Clone)]
pub struct PlainKey {
    /// Key id (RFC 7638 thumbprint of the public key).
    pub kid: String,
    /// Algorithm.
    pub alg: Alg,
    /// When it was created (unix seconds).
    pub created_at: i64,
    /// When it stopped signing, if it has.
    pub retired_at: Option<i64>,
    /// The private key, PKCS#8 DER.
    pub(crate) pkcs8: Vec<u8>,
}

impl PlainKey {
    /// A new key of `alg` created at `now` (RSA generation takes a while: not on a request task).
    pub fn generate(alg: Alg, now: i64) -> Result<Self, KeyError> {
        Self::from_pkcs8(alg, now, None, generate_pkcs8(alg)?)
    }

    fn from_pkcs8(alg: Alg, created_at: i64, retired_at: Option<i64>, pkcs8: Vec<u8>) -> Result<Self, KeyError> {
        let mut key = Self { kid: String::new(), alg, created_at, retired_at, pkcs8 };
        key.kid = SigningKey::from_plain(&key).map_err(KeyError::Generate)?.kid;
        Ok(key)
    }
}

/// The whole set in the clear: what the store holds sealed under the key-encryption key.
#[derive(Clone)]
pub struct Material {
    /// Signing keys, active and retired.
    pub keys: Vec<PlainKey>,
    /// The data key (32 bytes) that seals personal fields (SH-8.2); never rotated with the
    /// signing keys, so what one instance sealed every other opens.
    pub(crate) data_key: Vec<u8>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("Material").field("kids", &kids).finish_non_exhaustive()
    }
}

impl Material {
    /// A new set: one active key per algorithm and a new data key.
    pub fn generate(now: i64) -> Result<Self, KeyError> {
        Ok(Self { keys: fresh_keys(now)?, data_key: DataKey::generate() })
    }

    /// The private keys (PKCS#8) and the data key, base64url: only so a check can prove they
    /// never appear in clear where they are stored.
    pub fn secrets_b64(&self) -> Vec<String> {
        self.keys.iter().map(|k| b64(&k.pkcs8)).chain([b64(&self.data_key)]).collect()
    }

    /// Rotation: retires every active key at `now`, drops retired keys older than `keep`
    /// seconds (every token they signed has expired), and adds `new` as the active keys.
    pub fn rotate(&mut self, new: Vec<PlainKey>, now: i64, keep: i64) {
        for k in &mut self.keys {
            if k.retired_at.is_none() {
                k.retired_at = Some(now);
            }
        }
        self.prune(now, keep);
        self.keys.extend(new);
    }

    /// Drops keys retired more than `keep` seconds ago; true when one was dropped.
    pub fn prune(&mut self, now: i64, keep: i64) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.retired_at.is_none_or(|r| r.saturating_add(keep) > now));
        self.keys.len() != before
    }

    /// Whether [`Material::prune`] would drop a key.
    pub fn prunable(&self, now: i64, keep: i64) -> bool {
        self.keys.iter().any(|k| k.retired_at.is_some_and(|r| r.saturating_add(keep) <= now))
    }

    /// Reads the key file of the versions that kept keys per instance (`dir/keyset.json`), so
    /// an existing deployment keeps its keys and data key when the store has no set yet.
    /// Missing algorithms and a missing data key are generated.
    pub fn read_legacy(dir: &Path, now: i64) -> Result<Option<Self>, KeyError> {
        let path = dir.join(LEGACY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KeyError::Io { path, source }),
        };
        let invalid = |reason: String| KeyError::Invalid(path.clone(), reason);
        let file: LegacyFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in file.keys {
            let der = b64_decode(&k.pkcs8).ok_or_else(|| invalid("pkcs8 is not base64url".into()))?;
            keys.push(
                PlainKey::from_pkcs8(k.alg, k.created_at, k.retired_at, der).map_err(|e| invalid(e.to_string()))?,
            );
        }
        for alg in ALGS {
            if !keys.iter().any(|k| k.alg == alg && k.retired_at.is_none()) {
                keys.push(PlainKey::generate(alg, now)?);
            }
        }
        let data_key = match file.data_key.as_deref().map(b64_decode) {
            Some(Some(raw)) if raw.len() == 32 => raw,
            Some(_) => return Err(invalid("data_key is not 32 bytes of base64url".into())),
            None => DataKey::generate(),
        };
        Ok(Some(Self { keys, data_key }))
    }
}

/// The per-instance key file of earlier versions, read once for migration.
pub const LEGACY_FILE: &str = "keyset.json";

#[derive(Deserialize)]
struct LegacyKey {
    alg: Alg,
    created_at: i64,
    #[serde(default)]
    retired_at: Option<i64>,
    pkcs8: String,
}

#[derive(Deserialize)]
struct LegacyFile {
    keys: Vec<LegacyKey>,
    #[serde(default)]
    data_key: Option<String>,
}

/// One new active key per algorithm.
pub fn fresh_keys(now: i64) -> Result<Vec<PlainKey>, KeyError> {
    ALGS.iter().map(|alg| PlainKey::generate(*alg, now)).collect()
}

fn generate_pkcs8(alg: Alg) -> Result<Vec<u8>, KeyError> {
    let rng = SystemRandom::new();
    match alg {
        Alg::ES256 => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| KeyError::Generate(e.to_string())),
        Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|d| d.as_ref().to_vec())
            .map_err(|e| KeyError::Generate(e.to_string())),
        Alg::RS256 => {
            // ring signs with RSA but cannot generate RSA keys; the pure-Rust `rsa` crate makes
            // the key once, and ring does every signature after that.
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| KeyError::Generate(e.to_string()))?;
            key.to_pkcs8_der().map(|d| d.as_bytes().to_vec()).map_err(|e| KeyError::Generate(e.to_string()))
        }
    }
}
