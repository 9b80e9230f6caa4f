//! The stored form of the key set (one store key, `keyset`): public metadata in the clear, each
//! private key and the data key sealed with AES-256-GCM under the KEK and bound to the identity
//! of what it seals. `version` grows with every write; writers compare-and-set the whole record.

use serde::{Deserialize, Serialize};

use super::KeyError;
use super::kek::KekRing;
use super::material::{Material, PlainKey};
use crate::crypto::{b64, b64_decode};
use crate::jwt::Alg;

#[derive(Serialize, Deserialize)]
struct Record {
    version: u64,
    /// Id of the KEK that sealed every secret below.
    kek: String,
    updated_at: i64,
    data_key: String,
    keys: Vec<SealedKey>,
}

#[derive(Serialize, Deserialize)]
struct SealedKey {
    kid: String,
    alg: Alg,
    created_at: i64,
    retired_at: Option<i64>,
    /// The PKCS#8 private key, sealed.
    private: String,
}

/// A record opened with the configured KEKs.
#[derive(Debug)]
pub struct Opened {
    /// The set in the clear.
    pub material: Material,
    /// The record's version.
    pub version: u64,
    /// Id of the KEK that sealed it.
    pub kek: String,
}

fn key_context(kid: &str, alg: Alg, created_at: i64) -> String {
    format!("tongzheng keyset: signing key {kid} {} {created_at}", alg.as_str())
}

const DATA_KEY_CONTEXT: &str = "tongzheng keyset: data key";

/// Seals `m` under the ring's sealing KEK as record `version`.
pub fn seal(m: &Material, version: u64, ring: &KekRing, now: i64) -> Vec<u8> {
    let kek = ring.sealing();
    let keys = m
        .keys
        .iter()
        .map(|k| SealedKey {
            kid: k.kid.clone(),
            alg: k.alg,
            created_at: k.created_at,
            retired_at: k.retired_at,
            private: kek.seal(&b64(&k.pkcs8), &key_context(&k.kid, k.alg, k.created_at)),
        })
        .collect();
    let record = Record {
        version,
        kek: kek.id().to_owned(),
        updated_at: now,
        data_key: kek.seal(&b64(&m.data_key), DATA_KEY_CONTEXT),
        keys,
    };
    crate::store::encode(&record)
}

/// Opens a stored record with whichever configured KEK sealed it.
pub fn open(bytes: &[u8], ring: &KekRing) -> Result<Opened, KeyError> {
    let bad = |reason: String| KeyError::Record(reason);
    let record: Record = serde_json::from_slice(bytes).map_err(|e| bad(format!("does not parse: {e}")))?;
    let kek = ring.by_id(&record.kek).ok_or_else(|| {
        bad(format!(
            "it is sealed under key-encryption key {}, which is not configured (configured: {}); \
             add it to keys.kek or keys.kek_file",
            record.kek,
            ring.ids().join(", ")
        ))
    })?;
    let unseal = |sealed: &str, context: &str| {
        kek.open(sealed, context).and_then(|p| b64_decode(&p)).ok_or_else(|| bad(format!("{context} does not open")))
    };
    let data_key = unseal(&record.data_key, DATA_KEY_CONTEXT)?;
    if data_key.len() != 32 {
        return Err(bad("the data key is not 32 bytes".into()));
    }
    let keys = record
        .keys
        .into_iter()
        .map(|k| {
            let pkcs8 = unseal(&k.private, &key_context(&k.kid, k.alg, k.created_at))?;
            Ok(PlainKey { kid: k.kid, alg: k.alg, created_at: k.created_at, retired_at: k.retired_at, pkcs8 })
        })
        .collect::<Result<Vec<_>, KeyError>>()?;
    Ok(Opened { material: Material { keys, data_key }, version: record.version, kek: record.kek })
}

/// The version and sealing KEK id of a record, read without opening it.
pub fn peek(bytes: &[u8]) -> Option<(u64, String)> {
    #[derive(Deserialize)]
    struct Head {
        version: u64,
        kek: String,
    }
    serde_json::from_slice::<Head>(bytes).ok().map(|h| (h.version, h.kek))
}
