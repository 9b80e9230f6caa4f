//! Small cryptographic helpers over ring: random tokens, SHA-256, constant-time comparison,
//! base64url. Every secret tongzheng hands out comes from [`random_token`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// base64url without padding (RFC 7515 s2).
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` on bad input.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decodes standard base64 (with padding), as HTTP Basic uses.
pub fn b64_decode_std(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// `n` random bytes from the system CSPRNG, base64url-encoded (n=32 gives 256 bits).
pub fn random_token(n: usize) -> String {
    if n <= POOLED_MAX {
        let mut buf = [0u8; POOLED_MAX];
        let part = buf.get_mut(..n).unwrap_or_default();
        pooled(part);
        return b64(part);
    }
    let mut buf = vec![0u8; n];
    os_fill(&mut buf);
    b64(&buf)
}

/// Fills `buf` from the system CSPRNG. It only fails if the OS has no entropy source, which we
/// cannot recover from; an all-zero token would be a security hole, so abort loudly instead.
fn os_fill(buf: &mut [u8]) {
    if SystemRandom::new().fill(buf).is_err() {
        tracing::error!("system random source failed");
        std::process::abort();
    }
}

/// Largest request served from the per-thread pool; longer ones (secrets) read the OS directly.
const POOLED_MAX: usize = 16;
/// Bytes the pool fetches from the OS at once.
const POOL_BYTES: usize = 512;

thread_local! {
    /// OS randomness fetched in bulk (issue 13: one `getrandom` per 32 identifiers instead of
    /// one each), with the offset of its first unused byte. Every byte is handed out once and
    /// zeroed as it is.
    static POOL: std::cell::RefCell<([u8; POOL_BYTES], usize)> = const { std::cell::RefCell::new(([0; POOL_BYTES], POOL_BYTES)) };
}

/// Fills `out` (at most [`POOLED_MAX`] bytes) with system CSPRNG bytes from this thread's pool.
fn pooled(out: &mut [u8]) {
    POOL.with_borrow_mut(|(bytes, used)| {
        if POOL_BYTES - *used < out.len() {
            os_fill(bytes);
            *used = 0;
        }
        if let Some(chunk) = bytes.get_mut(*used..*used + out.len()) {
            out.copy_from_slice(chunk);
            chunk.fill(0);
            *used += out.len();
        } else {
            os_fill(out);
        }
    });
}

/// A random 64-bit number from the system CSPRNG (identifiers, never secrets).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if SystemRandom::new().fill(&mut buf).is_err() {
        tracing::error!("system random source failed");
        std::process::abort();
    }
    u64::from_le_bytes(buf)
}

/// SHA-256 digest.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 as lowercase hex, the form client secrets are stored in.
pub fn sha256_hex(data: &[u8]) -> String {
    let digit = |n: u8| char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 });
    let mut out = String::with_capacity(64);
    for b in sha256(data) {
        out.push(digit(b >> 4));
        out.push(digit(b & 0xf));
    }
    out
}

/// SHA-256 as base64url: the key under which codes and tokens are stored.
pub fn token_key(token: &str) -> String {
    b64(&sha256(token.as_bytes()))
}

/// Constant-time equality of two byte strings (length may leak, content does not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A secret string with a redacting `Debug` and no `Display`, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// The secret's text, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_long() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }

    #[test]
    fn pooled_identifiers_are_unique_and_sized() {
        // Many more than one pool's worth, so refills are crossed.
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| random_token(16)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|t| t.len() == 22));
        assert_eq!(random_token(3).len(), 4);
        assert_eq!(random_token(0), "");
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "Secret(<redacted>)");
    }
}
