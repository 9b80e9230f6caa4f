//! Signing keys and the data key, shared by every instance: one sealed record in the store
//! (`shared`, `record`, sealed under the key-encryption key of `kek`), held in memory as a
//! [`KeySet`] and refreshed every `keys.refresh_secs`. One active key per algorithm (ES256 for
//! access tokens, RS256 and ES256/EdDSA for ID tokens); retired keys stay published in the JWKS
//! until every token they signed has expired.

pub mod kek;
pub mod material;
pub mod record;
pub mod shared;
pub mod verified;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde::Serialize;

use crate::config::{KeysConfig, TokensConfig};
use crate::crypto::b64;
use crate::fastmap;
use crate::jwt::{self, Alg, Jwk, JwkSet, JwtError, Unverified, VerifyKey};
use crate::sealing::DataKey;
use crate::store::{DynStore, StoreError};
use kek::KekRing;
use material::{Material, PlainKey};

/// Why keys could not be loaded, generated, sealed or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File system error (the KEK file, the pre-store key file).
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The pre-store key file does not parse or holds an unusable key.
    #[error("key file {0} is invalid: {1}")]
    Invalid(std::path::PathBuf, String),
    /// No usable key-encryption key is configured.
    #[error("key-encryption key: {0}")]
    Kek(String),
    /// The key set in the store cannot be opened or used.
    #[error("the key set in the store cannot be used: {0}")]
    Record(String),
    /// The store holds no key set (no instance has started on it yet).
    #[error("the store holds no key set yet: start an instance first")]
    NoSet,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other writers kept changing the key set while this one tried.
    #[error("the key set kept changing under concurrent writes; try again")]
    Contended,
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

impl SigningKey {
    fn from_plain(s: &PlainKey) -> Result<Self, String> {
        let der = &s.pkcs8;
        let (pair, jwk) = match s.alg {
            Alg::ES256 => {
                let rng = SystemRandom::new();
                let p = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
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
                let p = RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = p.public().into();
                let jwk = Jwk { kty: "RSA".into(), n: Some(b64(&c.n)), e: Some(b64(&c.e)), ..Jwk::default() };
                (Pair::Rsa(p), jwk)
            }
            Alg::EdDSA => {
                let p = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| e.to_string())?;
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
        if !s.kid.is_empty() && s.kid != kid {
            return Err(format!("key {} has the thumbprint {kid}", s.kid));
        }
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

/// Every key we hold: the active one per algorithm plus retired ones still published.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
    active: fastmap::Map<Alg, Arc<SigningKey>>,
    by_kid: fastmap::Map<String, Arc<SigningKey>>,
    jwks_json: Arc<str>,
}

impl KeySet {
    fn build(plain: &[PlainKey]) -> Result<Self, KeyError> {
        let keys = plain
            .iter()
            .map(|k| SigningKey::from_plain(k).map(Arc::new).map_err(KeyError::Record))
            .collect::<Result<Vec<_>, _>>()?;
        let mut active = fastmap::Map::default();
        for k in keys.iter().filter(|k| k.retired_at.is_none()) {
            let newer = active.get(&k.alg).is_none_or(|a: &Arc<SigningKey>| a.created_at <= k.created_at);
            if newer {
                active.insert(k.alg, k.clone());
            }
        }
        let by_kid = keys.iter().map(|k| (k.kid.clone(), k.clone())).collect();
        let jwks = JwkSet { keys: keys.iter().map(|k| k.jwk.clone()).collect() };
        let jwks_json = serde_json::to_string(&jwks).unwrap_or_else(|_| "{\"keys\":[]}".into()).into();
        Ok(Self { keys, active, by_kid, jwks_json })
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

    fn active_kids(&self) -> Vec<String> {
        ALGS.iter().filter_map(|a| self.active(*a).map(|k| k.kid.clone())).collect()
    }
}

/// The algorithms we always keep an active key for.
pub const ALGS: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];

/// The longest access token lifetime an admin may give one client (`/admin/v1/clients`).
pub const MAX_CLIENT_ACCESS_TOKEN_TTL: i64 = 86_400;

/// How long a retired key stays published: the longest lifetime of anything it signed (the
/// configured lifetimes, or a client's own access token lifetime, up to a day), plus an hour
/// for clock skew and caches.
pub fn keep_retired(tokens: &TokensConfig) -> i64 {
    tokens.access_token_ttl.max(tokens.id_token_ttl).max(MAX_CLIENT_ACCESS_TOKEN_TTL) + 3600
}

/// Entries of the verified-signature cache unless configured (`tokens.verified_cache_entries`).
pub const DEFAULT_VERIFIED_ENTRIES: usize = 65_536;

/// The shortest time between two refreshes caused by a token with an unknown `kid`.
const UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(1);

/// The one claim the verified-signature cache needs: when the token dies.
#[derive(serde::Deserialize)]
struct Expiry {
    #[serde(default)]
    exp: Option<i64>,
}

/// Where a shared key set lives and how it is opened.
struct Shared {
    store: DynStore,
    ring: KekRing,
    keep: i64,
    /// The raw record last adopted, so an unchanged one costs one read and a comparison.
    seen: Mutex<Vec<u8>>,
    /// When an unknown `kid` last caused a refresh.
    forced: Mutex<Option<tokio::time::Instant>>,
    /// Held by a refresh or rotation from its read to its adoption, so a slow refresh never
    /// replaces a newer set adopted meanwhile.
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("ring", &self.ring).field("keep", &self.keep).finish_non_exhaustive()
    }
}

/// The key set an instance uses: the set behind a lock (swapped on every change), the same set
/// in the clear, the data key, and (in a server) the store it is shared through.
#[derive(Debug)]
pub struct Keys {
    set: RwLock<Arc<KeySet>>,
    plain: Mutex<Material>,
    rng: SystemRandom,
    data: DataKey,
    shared: Option<Shared>,
    /// Signatures already verified (the signature result only; see [`verified`]).
    verified: Arc<verified::Verified>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Keys {
    /// Keys held only in this process (tests, benchmarks; in a server, see [`Keys::open`]).
    pub fn from_material(material: Material) -> Result<Self, KeyError> {
        let set = KeySet::build(&material.keys)?;
        let data = DataKey::from_bytes(&material.data_key).map_err(|e| KeyError::Record(e.to_string()))?;
        Ok(Self {
            set: RwLock::new(Arc::new(set)),
            plain: Mutex::new(material),
            rng: SystemRandom::new(),
            data,
            shared: None,
            verified: Arc::new(verified::Verified::new(DEFAULT_VERIFIED_ENTRIES)),
        })
    }

    /// New keys held only in memory (tests, benchmarks).
    pub fn ephemeral(now: i64) -> Result<Self, KeyError> {
        Self::from_material(Material::generate(now)?)
    }

    /// The set in the clear (to hand to another instance as its seed in tests).
    pub fn material(&self) -> Material {
        lock(&self.plain).clone()
    }

    /// The instance's keys: the set in `store`, opened with the configured key-encryption keys.
    /// When the store has none, this instance publishes one: `seed`, else the keys of an older
    /// version's `keys.dir/keyset.json`, else new keys; if another instance publishes first,
    /// its set is adopted. While the store is unreachable this waits and retries (an instance
    /// without keys cannot serve).
    pub async fn open(
        config: &KeysConfig,
        dev: bool,
        store: DynStore,
        now: i64,
        keep: i64,
        seed: Option<Material>,
    ) -> Result<Self, KeyError> {
        let ring = KekRing::from_config(config, dev)?;
        let mut wait = Duration::from_millis(200);
        let (raw, opened) = loop {
            match shared::load_or_create(store.as_ref(), &ring, &config.dir, seed.clone(), now).await {
                Err(KeyError::Store(StoreError::Unavailable(reason))) => {
                    tracing::warn!(%reason, "store unavailable: key set not loaded yet; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                other => break other?,
            }
        };
        let mut keys = Self::from_material(opened.material)?;
        keys.shared = Some(Shared {
            store,
            ring,
            keep,
            seen: Mutex::new(raw),
            forced: Mutex::new(None),
            busy: tokio::sync::Mutex::new(()),
        });
        Ok(keys)
    }

    /// Makes `material` (read from the store as `raw`) the set in use.
    fn adopt(&self, raw: Vec<u8>, mut material: Material) -> Result<(), KeyError> {
        let set = KeySet::build(&material.keys)?;
        {
            let mut plain = lock(&self.plain);
            if material.data_key != plain.data_key {
                // Only when the store lost the set and another instance made a new one: what this
                // instance sealed stays readable here, and the operator must restart it.
                tracing::error!("the data key in the store differs from this instance's: restart this instance");
                material.data_key.clone_from(&plain.data_key);
            }
            *plain = material;
        }
        match self.set.write() {
            Ok(mut guard) => *guard = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
        if let Some(sh) = &self.shared {
            *lock(&sh.seen) = raw;
        }
        Ok(())
    }

    /// Reads the shared set and adopts it when it changed; prunes keys retired longer than
    /// every token they signed lives; publishes this instance's set again when the store lost
    /// it. True when the set in use changed.
    pub async fn refresh(&self, now: i64) -> Result<bool, KeyError> {
        let Some(sh) = &self.shared else {
            return Ok(false);
        };
        let _busy = sh.busy.lock().await;
        let store = sh.store.as_ref();
        let (mut raw, mut material) = match store.get(shared::KEYSET).await? {
            Some(raw) if *lock(&sh.seen) == raw => (raw, self.material()),
            Some(raw) => {
                let opened = record::open(&raw, &sh.ring)?;
                (raw, opened.material)
            }
            None => {
                // E.g. Redis restarted without persistence: keep the keys every instance uses.
                let (raw, opened, won) = shared::publish_if_absent(store, &sh.ring, &self.material(), now).await?;
                if won {
                    tracing::warn!("the store held no key set: published this instance's again");
                }
                (raw, opened.material)
            }
        };
        if material.prunable(now, sh.keep) {
            let (r, opened) = shared::update(store, &sh.ring, now, |m| m.prune(now, sh.keep)).await?;
            (raw, material) = (r, opened.material);
        }
        if *lock(&sh.seen) == raw {
            return Ok(false);
        }
        self.adopt(raw, material)?;
        tracing::info!(active = ?self.current().active_kids(), "key set refreshed from the store");
        Ok(true)
    }

    /// Adds a new active key per algorithm, in the shared set when there is one (every instance
    /// uses it within `keys.refresh_secs`; this one at once); the old ones are retired and stay
    /// in the JWKS until `keep_retired` seconds have passed, then are dropped. Returns the new
    /// kids.
    pub async fn rotate(&self, now: i64, keep_retired: i64) -> Result<Vec<String>, KeyError> {
        match &self.shared {
            Some(sh) => {
                let fresh = shared::fresh_keys(now).await?;
                let _busy = sh.busy.lock().await;
                let (raw, opened) = shared::rotate(sh.store.as_ref(), &sh.ring, now, keep_retired, fresh).await?;
                self.adopt(raw, opened.material)?;
            }
            None => {
                let fresh = material::fresh_keys(now)?;
                let mut material = self.material();
                material.rotate(fresh, now, keep_retired);
                self.adopt(Vec::new(), material)?;
            }
        }
        Ok(self.current().active_kids())
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
        self.sign_json(alg, typ, &serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?)
    }

    /// [`Keys::sign`] of claims already serialized (an access token's: [`AccessClaims::to_json`]).
    ///
    /// [`AccessClaims::to_json`]: crate::tokens::AccessClaims::to_json
    pub fn sign_json(&self, alg: Alg, typ: &str, claims_json: &[u8]) -> Result<String, KeyError> {
        let set = self.current();
        let key = set.active(alg).ok_or(KeyError::Sign)?;
        let mut token = jwt::signing_input_json(alg, typ, &key.kid, claims_json);
        let sig = key.sign_bytes(&self.rng, token.as_bytes())?;
        token.push('.');
        base64::Engine::encode_string(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &sig, &mut token);
        Ok(token)
    }

    /// Verifies a JWT signed by one of our keys (active or retired) and returns its claims and
    /// header `typ`. The caller checks `iss`, `exp` and the rest.
    pub fn verify<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<(T, Option<String>), JwtError> {
        self.verify_parsed(&Unverified::parse(token)?)
    }

    fn verify_parsed<T: serde::de::DeserializeOwned>(
        &self,
        parsed: &Unverified<'_>,
    ) -> Result<(T, Option<String>), JwtError> {
        let set = self.current();
        let kid = parsed.header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
        let key = set.by_kid(kid).ok_or(JwtError::UnknownKey)?;
        if parsed.alg != Some(key.alg) {
            return Err(JwtError::UnsupportedAlg);
        }
        let claims = parsed.verify(&key.verify)?;
        Ok((claims, parsed.header.typ.clone()))
    }

    /// As [`Keys::verify`], but a token with an unknown `kid` (signed by a key another instance
    /// just made) first causes one refresh of the shared set, at most one a second. A token whose
    /// signature this instance verified before is not verified or decoded again while it lives,
    /// as long as the key that verified it is still in the current set (a pruned key's tokens
    /// never answer): its claims come from the verified-token cache.
    pub async fn verify_fresh<T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(T, Option<String>), JwtError> {
        let hash = crate::crypto::sha256(token.as_bytes());
        if let Some(out) = self.answer_cached(token, &hash, now, true) {
            return out;
        }
        let parsed = Unverified::parse(token)?;
        let out = match self.verify_parsed::<T>(&parsed) {
            Err(JwtError::UnknownKey) if self.refresh_for_unknown_kid(now).await => self.verify_parsed(&parsed),
            other => other,
        };
        if let Ok((claims, typ)) = &out
            && let (Some(kid), Some(alg)) = (parsed.header.kid.as_deref(), parsed.alg)
            && let Ok(Expiry { exp: Some(exp) }) = parsed.claims::<Expiry>()
        {
            let entry = verified::Entry::new(exp, kid, alg, typ.clone(), claims.clone(), parsed.payload_len());
            self.verified.insert(hash, entry, now);
        }
        out
    }

    /// What the verified-token cache holds for `token` at `now`: its claims as `T` and its `typ`,
    /// with no signature checked, as [`Keys::verify_fresh`] would answer; `None` when it holds
    /// nothing usable (then only `verify_fresh` can tell). A miss here is not counted: the
    /// verification that follows counts it.
    pub fn cached<T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        token: &str,
        now: i64,
    ) -> Option<(T, Option<String>)> {
        self.answer_cached(token, &crate::crypto::sha256(token.as_bytes()), now, false)?.ok()
    }

    /// The cache's answer for the token hashing to `hash`, if it has one whose key is still in
    /// the current set (a pruned key's tokens never answer).
    fn answer_cached<T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static>(
        &self,
        token: &str,
        hash: &[u8; 32],
        now: i64,
        count_miss: bool,
    ) -> Option<Result<(T, Option<String>), JwtError>> {
        let seen = self.verified.get(hash, now, count_miss)?;
        if !self.current().by_kid(&seen.kid).is_some_and(|k| k.alg == seen.alg) {
            return None;
        }
        // The same bytes verified before; decoded again only if they were read as another type.
        Some(match seen.claims::<T>() {
            Some(claims) => Ok((claims.clone(), seen.typ.clone())),
            None => Unverified::parse(token).and_then(|p| p.claims()).map(|c| (c, seen.typ.clone())),
        })
    }

    /// The verified-signature cache (its figures are reported by `/metrics`).
    pub fn verified_cache(&self) -> Arc<verified::Verified> {
        self.verified.clone()
    }

    /// Replaces the verified-signature cache with an empty one of `entries` (0: none).
    pub fn with_verified_cache(mut self, entries: usize) -> Self {
        self.verified = Arc::new(verified::Verified::new(entries));
        self
    }

    async fn refresh_for_unknown_kid(&self, now: i64) -> bool {
        let Some(sh) = &self.shared else {
            return false;
        };
        {
            let mut last = lock(&sh.forced);
            if last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFRESH) {
                return false;
            }
            *last = Some(tokio::time::Instant::now());
        }
        match self.refresh(now).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = %e, "key set not refreshed");
                false
            }
        }
    }

    /// Raw signature with the active ES256 key (benchmark baseline).
    pub fn sign_raw(&self, alg: Alg, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        let set = self.current();
        let key = set.active(alg).ok_or(KeyError::Sign)?;
        key.sign_bytes(&self.rng, msg)
    }
}

#[cfg(test)]
mod tests;
