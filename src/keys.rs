//! Signing keys: the `keys/` directory, generation when missing, rotation, signing and JWKS.
//! One active key per algorithm (ES256 for access tokens, RS256 and ES256/EdDSA for ID tokens);
//! retired keys stay published in the JWKS until every token they signed has expired.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde::{Deserialize, Serialize};

use crate::crypto::{b64, b64_decode};
use crate::jwt::{self, Alg, Jwk, JwkSet, JwtError, Unverified, VerifyKey};
use crate::sealing::DataKey;

/// Why keys could not be loaded, generated or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File system error.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The key file does not parse or holds an unusable key.
    #[error("key file {0} is invalid: {1}")]
    Invalid(PathBuf, String),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
    /// Signing failed.
    #[error("signing failed")]
    Sign,
}

#[derive(Debug)]
enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One private signing key with its public JWK.
#[derive(Debug)]
pub struct SigningKey {
    /// Key id (RFC 7638 thumbprint).
    pub kid: String,
    /// Algorithm.
    pub alg: Alg,
    /// When it was created (unix seconds).
    pub created_at: i64,
    /// When it stopped signing, if it has.
    pub retired_at: Option<i64>,
    pair: Pair,
    /// Public JWK.
    pub jwk: Jwk,
    verify: VerifyKey,
}

/// On-disk form of one key: metadata plus PKCS#8 DER, base64url.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    alg: Alg,
    created_at: i64,
    #[serde(default)]
    retired_at: Option<i64>,
    pkcs8: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<StoredKey>,
    /// The data key (base64url, 32 bytes) that seals personal fields (SH-8.2); never rotated
    /// by signing-key rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_key: Option<String>,
}

fn data_key_of(path: &Path, file: &KeyFile) -> Result<DataKey, KeyError> {
    let raw = file.data_key.as_deref().and_then(b64_decode).unwrap_or_default();
    DataKey::from_bytes(&raw).map_err(|e| KeyError::Invalid(path.to_owned(), e.to_string()))
}

const KEY_FILE: &str = "keyset.json";

impl SigningKey {
    fn from_stored(s: &StoredKey) -> Result<Self, String> {
        let der = b64_decode(&s.pkcs8).ok_or("pkcs8 is not base64url")?;
        let (pair, jwk) = match s.alg {
            Alg::ES256 => {
                let rng = SystemRandom::new();
                let p = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                    .map_err(|e| e.to_string())?;
                let point = p.public_key().as_ref();
                let (x, y) = (point.get(1..33).unwrap_or_default(), point.get(33..65).unwrap_or_default());
                let jwk = Jwk {
                    kty: "EC".into(),
                    crv: Some("P-256".into()),
                    x: Some(b64(x)),
                    y: Some(b64(y)),
                    ..Jwk::default()
                };
                (Pair::Ec(p), jwk)
            }
            Alg::RS256 => {
                let p = RsaKeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = p.public().into();
                let jwk = Jwk { kty: "RSA".into(), n: Some(b64(&c.n)), e: Some(b64(&c.e)), ..Jwk::default() };
                (Pair::Rsa(p), jwk)
            }
            Alg::EdDSA => {
                let p = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| e.to_string())?;
                let jwk = Jwk {
                    kty: "OKP".into(),
                    crv: Some("Ed25519".into()),
                    x: Some(b64(p.public_key().as_ref())),
                    ..Jwk::default()
                };
                (Pair::Ed(p), jwk)
            }
        };
        let kid = jwk.thumbprint();
        let verify = VerifyKey::from_jwk(&jwk).ok_or("public key does not parse")?;
        let jwk = Jwk { kid: Some(kid.clone()), use_: Some("sig".into()), alg: Some(s.alg.as_str().into()), ..jwk };
        Ok(Self { kid, alg: s.alg, created_at: s.created_at, retired_at: s.retired_at, pair, jwk, verify })
    }

    /// Signs raw bytes with this key.
    pub fn sign_bytes(&self, rng: &SystemRandom, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ec(p) => p.sign(rng, msg).map(|s| s.as_ref().to_vec()).map_err(|_| KeyError::Sign),
            Pair::Ed(p) => Ok(p.sign(msg).as_ref().to_vec()),
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public().modulus_len()];
                p.sign(&signature::RSA_PKCS1_SHA256, rng, msg, &mut sig).map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
        }
    }
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

/// Every key we hold: the active one per algorithm plus retired ones still published.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    active: HashMap<Alg, Arc<SigningKey>>,
    by_kid: HashMap<String, Arc<SigningKey>>,
    jwks_json: Arc<str>,
}

impl KeySet {
    fn build(keys: Vec<SigningKey>) -> Self {
        let keys: Vec<Arc<SigningKey>> = keys.into_iter().map(Arc::new).collect();
        let mut active = HashMap::new();
        for k in keys.iter().filter(|k| k.retired_at.is_none()) {
            let newer = active.get(&k.alg).is_none_or(|a: &Arc<SigningKey>| a.created_at <= k.created_at);
            if newer {
                active.insert(k.alg, k.clone());
            }
        }
        let by_kid = keys.iter().map(|k| (k.kid.clone(), k.clone())).collect();
        let jwks = JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() };
        let jwks_json = serde_json::to_string(&jwks).unwrap_or_else(|_| "{\"keys\":[]}".into()).into();
        Self { keys, active, by_kid, jwks_json }
    }

    /// The active key for `alg`.
    pub fn active(&self, alg: Alg) -> Option<&Arc<SigningKey>> {
        self.active.get(&alg)
    }

    /// All keys, active and retired.
    pub fn all(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The JWKS document (RFC 7517 s5), pre-serialised.
    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks_json.clone()
    }

    /// Looks up a key by `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.by_kid.get(kid)
    }
}

/// The key store: the key set behind a lock (swapped on rotation) plus the directory it lives in.
#[derive(Debug)]
pub struct Keys {
    dir: Option<PathBuf>,
    stored: Mutex<KeyFile>,
    set: RwLock<Arc<KeySet>>,
    rng: SystemRandom,
    data: DataKey,
}

/// The algorithms we always keep an active key for.
pub const ALGS: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];

impl Keys {
    /// Loads `dir/keyset.json`, generating any missing algorithm's key and saving the file.
    pub fn load_or_generate(dir: &Path, now: i64) -> Result<Self, KeyError> {
        let path = dir.join(KEY_FILE);
        let mut file = read_key_file(&path)?;
        let mut changed = false;
        for alg in ALGS {
            if !file.keys.iter().any(|k| k.alg == alg && k.retired_at.is_none()) {
                file.keys.push(StoredKey { alg, created_at: now, retired_at: None, pkcs8: b64(&generate_pkcs8(alg)?) });
                changed = true;
            }
        }
        if file.data_key.is_none() {
            file.data_key = Some(b64(&DataKey::generate()));
            changed = true;
        }
        if changed {
            write_key_file(dir, &file)?;
        }
        let set = build_set(&path, &file)?;
        let data = data_key_of(&path, &file)?;
        Ok(Self {
            dir: Some(dir.to_owned()),
            stored: Mutex::new(file),
            set: RwLock::new(Arc::new(set)),
            rng: SystemRandom::new(),
            data,
        })
    }

    /// Keys held only in memory (tests, benchmarks).
    pub fn ephemeral(now: i64) -> Result<Self, KeyError> {
        let mut file = KeyFile { data_key: Some(b64(&DataKey::generate())), ..KeyFile::default() };
        for alg in ALGS {
            file.keys.push(StoredKey { alg, created_at: now, retired_at: None, pkcs8: b64(&generate_pkcs8(alg)?) });
        }
        let set = build_set(Path::new("<memory>"), &file)?;
        let data = data_key_of(Path::new("<memory>"), &file)?;
        Ok(Self {
            dir: None,
            stored: Mutex::new(file),
            set: RwLock::new(Arc::new(set)),
            rng: SystemRandom::new(),
            data,
        })
    }

    /// Adds a new active key per algorithm; the old ones are retired and stay in the JWKS until
    /// `keep_retired` seconds have passed (the longest lifetime of anything they signed), after
    /// which they are dropped. Returns the new kids.
    pub fn rotate(&self, now: i64, keep_retired: i64) -> Result<Vec<String>, KeyError> {
        let mut stored = match self.stored.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Another process (the `keys rotate` CLI) may have rotated the file: start from disk.
        if let Some(dir) = &self.dir {
            let data_key = stored.data_key.take();
            *stored = read_key_file(&dir.join(KEY_FILE))?;
            stored.data_key = stored.data_key.take().or(data_key);
        }
        for k in &mut stored.keys {
            if k.retired_at.is_none() {
                k.retired_at = Some(now);
            }
        }
        stored.keys.retain(|k| k.retired_at.is_none_or(|r| r + keep_retired > now));
        for alg in ALGS {
            stored.keys.push(StoredKey { alg, created_at: now, retired_at: None, pkcs8: b64(&generate_pkcs8(alg)?) });
        }
        let label = self.dir.as_ref().map_or_else(|| PathBuf::from("<memory>"), |d| d.join(KEY_FILE));
        let set = build_set(&label, &stored)?;
        if let Some(dir) = &self.dir {
            write_key_file(dir, &stored)?;
        }
        let new = ALGS.iter().filter_map(|a| set.active(*a).map(|k| k.kid.clone())).collect();
        self.swap(set);
        Ok(new)
    }

    fn swap(&self, set: KeySet) {
        match self.set.write() {
            Ok(mut guard) => *guard = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
    }

    /// The data key that seals personal fields.
    pub fn data(&self) -> &DataKey {
        &self.data
    }

    /// The current key set (cheap: one Arc clone under a read lock).
    pub fn current(&self) -> Arc<KeySet> {
        match self.set.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Signs `claims` as a compact JWS with the active key for `alg` and the given `typ`.
    pub fn sign(&self, alg: Alg, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let set = self.current();
        let key = set.active(alg).ok_or(KeyError::Sign)?;
        let mut token = jwt::signing_input(alg, typ, &key.kid, claims);
        let sig = key.sign_bytes(&self.rng, token.as_bytes())?;
        token.push('.');
        token.push_str(&b64(&sig));
        Ok(token)
    }

    /// Verifies a JWT signed by one of our keys (active or retired) and returns its claims and
    /// header `typ`. The caller checks `iss`, `exp` and the rest.
    pub fn verify<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<(T, Option<String>), JwtError> {
        let parsed = Unverified::parse(token)?;
        let set = self.current();
        let kid = parsed.header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        let key = set.by_kid(kid).ok_or(JwtError::UnknownKey)?;
        if parsed.alg != Some(key.alg) {
            return Err(JwtError::UnsupportedAlg);
        }
        let claims = parsed.verify(&key.verify)?;
        Ok((claims, parsed.header.typ.clone()))
    }

    /// Raw signature with the active ES256 key (benchmark baseline).
    pub fn sign_raw(&self, alg: Alg, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let set = self.current();
        let key = set.active(alg).ok_or(KeyError::Sign)?;
        key.sign_bytes(&self.rng, msg)
    }
}

fn read_key_file(path: &Path) -> Result<KeyFile, KeyError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| KeyError::Invalid(path.to_owned(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
        Err(source) => Err(KeyError::Io { path: path.to_owned(), source }),
    }
}

fn build_set(path: &Path, file: &KeyFile) -> Result<KeySet, KeyError> {
    let keys = file
        .keys
        .iter()
        .map(|s| SigningKey::from_stored(s).map_err(|e| KeyError::Invalid(path.to_owned(), e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeySet::build(keys))
}

/// Writes the key file atomically (temp file + rename) with owner-only permissions, and makes
/// sure the directory has a .gitignore so private keys are never committed.
fn write_key_file(dir: &Path, file: &KeyFile) -> Result<(), KeyError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# Private signing keys: never commit.\n*\n!.gitignore\n").map_err(io(&ignore))?;
    }
    let path = dir.join(KEY_FILE);
    let tmp = dir.join(format!("{KEY_FILE}.tmp"));
    let json = serde_json::to_vec_pretty(file).map_err(|e| KeyError::Invalid(path.clone(), e.to_string()))?;
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(&json).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_every_alg() {
        let keys = Keys::ephemeral(1_000).unwrap();
        for alg in ALGS {
            let t = keys.sign(alg, "JWT", &serde_json::json!({"sub": "a"})).unwrap();
            let (claims, typ): (serde_json::Value, _) = keys.verify(&t).unwrap();
            assert_eq!(claims["sub"], "a");
            assert_eq!(typ.as_deref(), Some("JWT"));
        }
    }

    #[test]
    fn tampered_token_fails() {
        let keys = Keys::ephemeral(1_000).unwrap();
        let t = keys.sign(Alg::ES256, "at+jwt", &serde_json::json!({"sub": "a"})).unwrap();
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = b64(br#"{"sub":"b"}"#);
        parts[1] = &forged;
        let forged = parts.join(".");
        assert!(keys.verify::<serde_json::Value>(&forged).is_err());
    }

    #[test]
    fn rotation_keeps_old_keys_verifying_until_pruned() {
        let dir = std::env::temp_dir().join(format!("tz-keys-{}", crate::crypto::random_token(6)));
        let keys = Keys::load_or_generate(&dir, 1_000).unwrap();
        let old = keys.sign(Alg::ES256, "at+jwt", &serde_json::json!({"n": 1})).unwrap();
        let old_kid = keys.current().active(Alg::ES256).unwrap().kid.clone();
        keys.rotate(2_000, 600).unwrap();
        assert_ne!(keys.current().active(Alg::ES256).unwrap().kid, old_kid);
        assert!(keys.verify::<serde_json::Value>(&old).is_ok(), "retired key still verifies");
        assert!(keys.current().jwks_json().contains(&old_kid));
        // A reload sees the same set.
        let reloaded = Keys::load_or_generate(&dir, 2_100).unwrap();
        assert!(reloaded.verify::<serde_json::Value>(&old).is_ok());
        // After the keep window the retired key is dropped at the next rotation.
        keys.rotate(3_000, 600).unwrap();
        assert!(!keys.current().jwks_json().contains(&old_kid));
        assert!(dir.join(".gitignore").exists());
        std::fs::remove_dir_all(dir).ok();
    }
}
