//! Unit tests of the key set: signing, rotation and pruning, and the shared set in a store
//! (convergence, sealing, KEK rotation, migration of a pre-store key file).

use std::sync::Arc;

use super::*;
use crate::store::memory::MemoryStore;

const KEK_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEK_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn config(kek: &str, dir: &std::path::Path) -> KeysConfig {
    KeysConfig {
        dir: dir.to_owned(),
        kek: kek.into(),
        kek_file: Default::default(),
        refresh_secs: 10,
        rotation_days: 90,
    }
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tz-keys-{}", crate::crypto::random_token(6)))
}

/// One generated set per test process (RSA generation is the slow part).
fn seed() -> Material {
    static SEED: std::sync::OnceLock<Material> = std::sync::OnceLock::new();
    SEED.get_or_init(|| Material::generate(1_000).unwrap()).clone()
}

#[test]
fn sign_and_verify_every_alg() {
    let keys = Keys::from_material(seed()).unwrap();
    for alg in ALGS {
        let t = keys.sign(alg, "JWT", &serde_json::json!({"sub": "a"})).unwrap();
        let (claims, typ): (serde_json::Value, _) = keys.verify(&t).unwrap();
        assert_eq!(claims["sub"], "a");
        assert_eq!(typ.as_deref(), Some("JWT"));
    }
}

#[test]
fn tampered_token_fails() {
    let keys = Keys::from_material(seed()).unwrap();
    let t = keys.sign(Alg::ES256, "at+jwt", &serde_json::json!({"sub": "a"})).unwrap();
    let mut parts: Vec<&str> = t.split('.').collect();
    let forged = b64(br#"{"sub":"b"}"#);
    parts[1] = &forged;
    let forged = parts.join(".");
    assert!(keys.verify::<serde_json::Value>(&forged).is_err());
}

// RFC 7517 s5: a rotation on one instance reaches the other at its next refresh; retired keys
// verify until `keep` has passed, and are then pruned from the store by any refresh.
#[tokio::test]
async fn shared_rotation_and_pruning() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let dir = temp_dir();
    let c = config(KEK_A, &dir);
    let open = |now| Keys::open(&c, false, store.clone(), now, 600, Some(seed()));
    let (a, b) = (open(1_000).await.unwrap(), open(1_000).await.unwrap());
    let old = a.sign(Alg::ES256, "at+jwt", &serde_json::json!({"n": 1})).unwrap();
    let old_kid = a.current().active(Alg::ES256).unwrap().kid.clone();
    let new = a.rotate(2_000, 600).await.unwrap();
    assert!(!new.contains(&old_kid));
    assert!(a.verify::<serde_json::Value>(&old).is_ok(), "retired key still verifies");
    assert!(a.current().jwks_json().contains(&old_kid));
    // B learns of the rotation at its refresh, or at once from a token with a new kid.
    let fresh = a.sign(Alg::ES256, "at+jwt", &serde_json::json!({"n": 2})).unwrap();
    assert!(b.verify::<serde_json::Value>(&fresh).is_err());
    assert!(b.verify_fresh::<serde_json::Value>(&fresh, 2_000).await.is_ok());
    assert_eq!(b.current().active_kids(), new);
    assert!(!b.refresh(2_001).await.unwrap(), "nothing new");
    // After the keep window a refresh drops the retired keys, for everyone.
    assert!(b.refresh(2_600).await.unwrap());
    assert!(!b.current().jwks_json().contains(&old_kid));
    assert!(a.refresh(2_600).await.unwrap());
    assert!(a.verify::<serde_json::Value>(&old).is_err());
    assert_eq!(a.current().all().len(), 3);
    assert!(!dir.exists(), "nothing written outside the store");
}

// Issue 13: the verified-signature cache never answers for a key that left the set. Both
// instances have verified (and cached) a token; once its key is pruned, neither accepts it.
#[tokio::test]
async fn cached_signature_of_a_pruned_key_never_answers() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let dir = temp_dir();
    let c = config(KEK_A, &dir);
    let open = |now| Keys::open(&c, false, store.clone(), now, 600, Some(seed()));
    let (a, b) = (open(1_000).await.unwrap(), open(1_000).await.unwrap());
    // Lives a day: longer than the key is kept after its retirement in this test.
    let old = a.sign(Alg::ES256, "at+jwt", &serde_json::json!({"exp": 90_000})).unwrap();
    for k in [&a, &b] {
        for _ in 0..2 {
            k.verify_fresh::<serde_json::Value>(&old, 1_500).await.unwrap();
        }
        assert_eq!(k.verified_cache().stats().hits, 1, "the second check came from the cache");
    }
    a.rotate(2_000, 600).await.unwrap();
    assert!(a.verify_fresh::<serde_json::Value>(&old, 2_100).await.is_ok(), "retired, still published");
    assert!(a.refresh(2_600).await.unwrap() && b.refresh(2_600).await.unwrap(), "pruned everywhere");
    for k in [&a, &b] {
        let hits = k.verified_cache().stats().hits;
        assert!(k.verify_fresh::<serde_json::Value>(&old, 2_700).await.is_err(), "a pruned key's token is dead");
        assert_eq!(k.verified_cache().stats().hits, hits + 1, "the entry was there and was not trusted");
    }
}

// Issue 13: a token whose signature does not verify is never cached, and a tampered copy of a
// cached token is not a hit (the key is the hash of the whole token).
#[tokio::test]
async fn only_verified_tokens_are_cached() {
    let keys = Keys::from_material(seed()).unwrap();
    let t = keys.sign(Alg::ES256, "at+jwt", &serde_json::json!({"sub": "a", "exp": 5_000})).unwrap();
    keys.verify_fresh::<serde_json::Value>(&t, 1_000).await.unwrap();
    let mut parts: Vec<&str> = t.split('.').collect();
    let forged = b64(br#"{"sub":"b","exp":5000}"#);
    parts[1] = &forged;
    let forged = parts.join(".");
    for _ in 0..2 {
        assert!(keys.verify_fresh::<serde_json::Value>(&forged, 1_000).await.is_err());
    }
    assert_eq!(keys.verified_cache().stats().entries, 1);
    assert_eq!(keys.verified_cache().stats().hits, 0);
    // No entry outlives its token.
    assert!(keys.verify_fresh::<serde_json::Value>(&t, 5_000).await.is_ok(), "exp is the caller's check");
    assert_eq!(keys.verified_cache().stats().hits, 0, "an expired entry is not a hit");
}

// Issue 10: instances starting together on an empty store converge on one set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_starts_converge() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let dir = temp_dir();
    let ring = KekRing::parse(KEK_A).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, m) = (store.clone(), Material::generate(1_000).unwrap());
        let ring = KekRing::parse(KEK_A).unwrap();
        tasks.spawn(async move { shared::publish_if_absent(store.as_ref(), &ring, &m, 1_000).await.unwrap() });
    }
    let results = tasks.join_all().await;
    assert_eq!(results.iter().filter(|(_, _, won)| *won).count(), 1, "exactly one writer wins");
    let (_, stored) = shared::read(store.as_ref(), &ring).await.unwrap().unwrap();
    for (_, opened, _) in &results {
        let kids: Vec<_> = opened.material.keys.iter().map(|k| &k.kid).collect();
        assert_eq!(kids, stored.material.keys.iter().map(|k| &k.kid).collect::<Vec<_>>());
        assert_eq!(opened.material.data_key, stored.material.data_key);
    }
    let keys = Keys::open(&config(KEK_A, &dir), false, store, 1_000, 600, None).await.unwrap();
    assert_eq!(keys.material().data_key, stored.material.data_key);
}

// The set is sealed at rest; the wrong KEK does not open it; KEK rotation re-seals it.
#[tokio::test]
async fn sealed_at_rest_and_kek_rotation() {
    let store: DynStore = Arc::new(MemoryStore::new());
    let dir = temp_dir();
    let a = Keys::open(&config(KEK_A, &dir), false, store.clone(), 1_000, 600, Some(seed())).await.unwrap();
    let raw = String::from_utf8(store.get(shared::KEYSET).await.unwrap().unwrap()).unwrap();
    for secret in seed().secrets_b64() {
        assert!(!raw.contains(&secret), "a private key in clear");
    }
    let e = Keys::open(&config(KEK_B, &dir), false, store.clone(), 1_000, 600, None).await.unwrap_err();
    assert!(e.to_string().contains("not configured"), "{e}");
    // Re-seal under B (B first, A still listed to open).
    let both = KekRing::parse(&format!("{KEK_B},{KEK_A}")).unwrap();
    let (_, opened) = shared::update(store.as_ref(), &both, 1_100, |_| true).await.unwrap();
    assert_eq!(opened.kek, both.sealing().id());
    let b = Keys::open(&config(KEK_B, &dir), false, store.clone(), 1_100, 600, None).await.unwrap();
    assert_eq!(b.current().jwks_json(), a.current().jwks_json());
    assert_eq!(b.data().derive("x"), a.data().derive("x"), "the data key survives");
    // An instance with only the old KEK keeps its keys and says why it cannot refresh.
    assert!(a.refresh(1_200).await.unwrap_err().to_string().contains("not configured"));
}

// Migration: the keys and data key of a pre-store `keyset.json` become the shared set.
#[tokio::test]
async fn legacy_key_file_is_imported_once() {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let m = seed();
    let keys: Vec<_> = m
        .keys
        .iter()
        .map(|k| serde_json::json!({"alg": k.alg, "created_at": k.created_at, "pkcs8": b64(&k.pkcs8)}))
        .collect();
    let file = serde_json::json!({"keys": keys, "data_key": b64(&m.data_key)});
    std::fs::write(dir.join(material::LEGACY_FILE), file.to_string()).unwrap();
    let store: DynStore = Arc::new(MemoryStore::new());
    let k = Keys::open(&config(KEK_A, &dir), false, store.clone(), 5_000, 600, None).await.unwrap();
    let imported = k.material();
    assert_eq!(imported.data_key, m.data_key);
    assert_eq!(
        imported.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
        m.keys.iter().map(|k| &k.kid).collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(dir).ok();
}

// Dev mode without a KEK generates one into `keys.dir` (git-ignored) and reuses it.
#[test]
fn dev_mode_generates_a_kek_file() {
    let dir = temp_dir();
    let c = config("", &dir);
    assert!(KekRing::from_config(&c, false).unwrap_err().to_string().contains("TONGZHENG_KEYS__KEK"));
    let first = KekRing::from_config(&c, true).unwrap();
    assert!(dir.join(".gitignore").exists());
    assert_eq!(KekRing::from_config(&c, true).unwrap().sealing().id(), first.sealing().id());
    std::fs::remove_dir_all(dir).ok();
}

// Issue 13: a cached token gives back exactly the claims and `typ` its verification decoded, as
// the type asked for; asked as another type, its bytes are decoded again (the signature is not
// checked again) rather than answering with the wrong type.
#[tokio::test]
async fn cached_tokens_give_back_what_they_say() {
    #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
    struct Narrow {
        sub: String,
        exp: i64,
    }
    let keys = Keys::from_material(seed()).unwrap();
    let t = keys.sign(Alg::ES256, "at+jwt", &serde_json::json!({"sub": "a\"b", "exp": 5_000, "n": [1]})).unwrap();
    let (first, typ) = keys.verify_fresh::<serde_json::Value>(&t, 1_000).await.unwrap();
    let (again, typ_again) = keys.verify_fresh::<serde_json::Value>(&t, 1_000).await.unwrap();
    assert_eq!((&first, &typ), (&again, &typ_again));
    assert_eq!(first, serde_json::json!({"sub": "a\"b", "exp": 5_000, "n": [1]}));
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    let (narrow, typ) = keys.verify_fresh::<Narrow>(&t, 1_000).await.unwrap();
    assert_eq!(narrow, Narrow { sub: "a\"b".into(), exp: 5_000 });
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    let s = keys.verified_cache().stats();
    assert_eq!((s.entries, s.hits, s.misses), (1, 2, 1), "{s:?}");
    assert!(s.bytes > 0 && s.bytes <= s.memory_bound(), "{s:?}");
}

// Issue 13: `cached` answers only from the cache: nothing for a token never verified (and no
// miss counted, the verification that follows counts it), the verified claims afterwards,
// nothing past the token's `exp`. (A pruned key's entries: `answer_cached`, shared with
// `verify_fresh`, tested above.)
#[tokio::test]
async fn cached_answers_only_what_was_verified() {
    let keys = Keys::from_material(seed()).unwrap();
    let t = keys.sign(Alg::ES256, "at+jwt", &serde_json::json!({"sub": "a", "exp": 5_000})).unwrap();
    assert!(keys.cached::<serde_json::Value>(&t, 1_000).is_none());
    assert_eq!(keys.verified_cache().stats().misses, 0);
    let verified = keys.verify_fresh::<serde_json::Value>(&t, 1_000).await.unwrap();
    assert_eq!(keys.cached::<serde_json::Value>(&t, 1_000), Some(verified));
    assert!(keys.cached::<serde_json::Value>(&t, 5_000).is_none(), "not past its exp");
    let other = Keys::from_material(Material::generate(1_000).unwrap()).unwrap();
    assert!(other.cached::<serde_json::Value>(&t, 1_000).is_none(), "another key set's cache knows nothing");
}
