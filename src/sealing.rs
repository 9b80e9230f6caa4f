//! Field sealing for personal data at rest (SH-8.2: ID card and phone numbers are never stored
//! in plain text) and keyed derivations: AES-256-GCM with a random nonce and the record's
//! identity as associated data, so a sealed value copied into another record does not open.
//! The 256-bit data key lives with the signing keys in the shared, sealed key set (`keys`).

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::crypto::{b64, b64_decode};

/// Prefix of sealed values, so a sealed field is recognisable and the format can evolve.
const V1: &str = "v1.";

/// The data key: seals and opens personal fields, and derives tokens that must be shown again
/// later without being stored (HMAC-SHA256).
pub struct DataKey {
    aead: LessSafeKey,
    mac: hmac::Key,
    /// The pairwise-subject key (OIDC Core s8.1, [`crate::identity::subject`]): derived from
    /// `mac` under [`SUBJECT_KEY_LABEL`] once, here, rather than for every subject sealed or
    /// opened, where the HMAC, two base64 passes and AES-GCM's key setup cost more than the
    /// sealing itself (issue 13).
    subject: LessSafeKey,
    rng: SystemRandom,
}

/// The label [`DataKey::subject_key`] is derived under (what `derive` of it gives is its raw key).
pub const SUBJECT_KEY_LABEL: &str = "tongzheng pairwise subject key v1";

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Why a data key could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the data key must be 32 bytes")]
pub struct BadDataKey;

impl DataKey {
    /// A key from 32 raw bytes. The sealing and MAC keys are separated by HKDF-style labels.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, BadDataKey> {
        if raw.len() != 32 {
            return Err(BadDataKey);
        }
        let root = hmac::Key::new(hmac::HMAC_SHA256, raw);
        let enc = hmac::sign(&root, b"tongzheng data key: aes-256-gcm");
        let mac = hmac::sign(&root, b"tongzheng data key: hmac-sha256");
        let aead = UnboundKey::new(&AES_256_GCM, enc.as_ref()).map_err(|_| BadDataKey)?;
        let mac = hmac::Key::new(hmac::HMAC_SHA256, mac.as_ref());
        let subject = UnboundKey::new(&AES_256_GCM, hmac::sign(&mac, SUBJECT_KEY_LABEL.as_bytes()).as_ref())
            .map_err(|_| BadDataKey)?;
        Ok(Self { aead: LessSafeKey::new(aead), mac, subject: LessSafeKey::new(subject), rng: SystemRandom::new() })
    }

    /// 32 fresh random bytes for a new key.
    pub fn generate() -> Vec<u8> {
        let mut raw = vec![0u8; 32];
        if SystemRandom::new().fill(&mut raw).is_err() {
            tracing::error!("system random source failed");
            std::process::abort();
        }
        raw
    }

    /// Seals `plain`, bound to `context` (e.g. `user:<id>:phone`).
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        if self.rng.fill(&mut nonce).is_err() {
            tracing::error!("system random source failed");
            std::process::abort();
        }
        let mut buf = plain.as_bytes().to_vec();
        // Sealing in place with a fresh nonce cannot fail for inputs under 64 GiB.
        if self
            .aead
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context), &mut buf)
            .is_err()
        {
            tracing::error!("sealing failed");
            std::process::abort();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{V1}{}", b64(&out))
    }

    /// As [`DataKey::seal`], for a plaintext written by `write` straight into the buffer that
    /// is sealed in place (one buffer and one string: no copies of a large value, issue 13).
    pub fn seal_with(&self, context: &str, write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        if self.rng.fill(&mut nonce).is_err() {
            tracing::error!("system random source failed");
            std::process::abort();
        }
        // A kept token response fits (no regrowing while it is written).
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&nonce);
        write(&mut buf);
        let aad = Aad::from(context);
        // As in `seal`: sealing with a fresh nonce cannot fail for inputs under 64 GiB.
        let tag = buf.get_mut(NONCE_LEN..).and_then(|plain| {
            self.aead.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), aad, plain).ok()
        });
        let Some(tag) = tag else {
            tracing::error!("sealing failed");
            std::process::abort();
        };
        buf.extend_from_slice(tag.as_ref());
        let mut out = String::with_capacity(V1.len() + buf.len().div_ceil(3) * 4);
        out.push_str(V1);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&buf, &mut out);
        out
    }

    /// Opens a value sealed for `context`; `None` when it is not ours, was tampered with, or
    /// belongs to another record.
    pub fn open(&self, sealed: &str, context: &str) -> Option<String> {
        let raw = b64_decode(sealed.strip_prefix(V1)?)?;
        let (nonce, ct) = raw.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ct.to_vec();
        let plain = self.aead.open_in_place(nonce, Aad::from(context), &mut buf).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// Whether `value` is in the sealed format.
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(V1)
    }

    /// The AES-256-GCM key of pairwise subjects: the key `derive(SUBJECT_KEY_LABEL)` names.
    pub fn subject_key(&self) -> &LessSafeKey {
        &self.subject
    }

    /// A keyed, deterministic 256-bit value for `label` (base64url): a token the server can
    /// show again without storing it, or a blind index for lookups.
    pub fn derive(&self, label: &str) -> String {
        b64(hmac::sign(&self.mac, label.as_bytes()).as_ref())
    }
}

/// Masks a phone number for display (SH-8.2): the last four digits stay, like `*******4321`
/// with the leading country code kept (`+86 *******4321`).
pub fn mask_phone(phone: &str) -> String {
    let prefix = phone
        .strip_prefix('+')
        .and_then(|rest| rest.split([' ', '-']).next())
        .filter(|cc| cc.len() <= 3 && cc.chars().all(|c| c.is_ascii_digit()) && phone.len() > cc.len() + 1);
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).skip(prefix.map_or(0, str::len)).collect();
    let keep = 4.min(digits.len() / 2);
    let tail: String = digits.iter().skip(digits.len() - keep).collect();
    let hidden = "*".repeat(digits.len() - keep);
    match prefix {
        Some(cc) => format!("+{cc} {hidden}{tail}"),
        None => format!("{hidden}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes(&DataKey::generate()).unwrap()
    }

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let k = key();
        let sealed = k.seal("+86 139 8765 4321", "user:a:phone");
        assert!(DataKey::is_sealed(&sealed));
        assert!(!sealed.contains("8765"));
        assert_eq!(k.open(&sealed, "user:a:phone").as_deref(), Some("+86 139 8765 4321"));
        // Bound to its record: another user's context does not open it.
        assert_eq!(k.open(&sealed, "user:b:phone"), None);
        // Another key does not open it; neither does a tampered value.
        assert_eq!(key().open(&sealed, "user:a:phone"), None);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(k.open(&tampered, "user:a:phone"), None);
        // Two seals of one value differ (random nonce).
        assert_ne!(sealed, k.seal("+86 139 8765 4321", "user:a:phone"));
        // Sealed in place, the same format.
        let in_place = k.seal_with("user:a:phone", |b| b.extend_from_slice(b"+86 139 8765 4321"));
        assert_eq!(k.open(&in_place, "user:a:phone").as_deref(), Some("+86 139 8765 4321"));
        assert_eq!(k.open(&in_place, "user:b:phone"), None);
    }

    #[test]
    fn derive_is_deterministic_per_key() {
        let raw = DataKey::generate();
        let (a, b) = (DataKey::from_bytes(&raw).unwrap(), DataKey::from_bytes(&raw).unwrap());
        assert_eq!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        assert_ne!(a.derive("x"), key().derive("x"));
        assert!(DataKey::from_bytes(&[0; 16]).is_err());
    }

    #[test]
    fn phone_masking() {
        // SH-8.2: masked when shown.
        assert_eq!(mask_phone("+86 139 8765 4321"), "+86 *******4321");
        assert_eq!(mask_phone("13987654321"), "*******4321");
        assert_eq!(mask_phone("12"), "*2");
        assert_eq!(mask_phone("+123 4"), "+123 *");
        assert_eq!(mask_phone(""), "");
    }
}
