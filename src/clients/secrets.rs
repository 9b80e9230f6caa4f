//! Secret issuance: the one place client secrets are made. A secret is 256 random bits, shown
//! once to whoever asked and stored only as its SHA-256; rotation issues a new one and lets the
//! previous ones work until an overlap ends, so a fleet of application instances can switch
//! without an outage. An offline application's secrets were revoked and are never reissued.

use super::{Client, State, StoredSecret};
use crate::crypto::{self, Secret, sha256_hex};

/// Generates a new client secret (256 bits) and its stored form.
pub fn new_secret(expires_at: Option<i64>) -> (Secret, StoredSecret) {
    let secret = crypto::random_token(32);
    let stored = StoredSecret { sha256: sha256_hex(secret.as_bytes()), expires_at };
    (Secret(secret), stored)
}

/// Gives a new client its first secret when its authentication method uses one; the secret is
/// returned to be shown once.
pub fn issue_first(client: &mut Client) -> Option<Secret> {
    if !client.auth_method.uses_secret() {
        return None;
    }
    let (secret, stored) = new_secret(None);
    client.secrets = vec![stored];
    Some(secret)
}

/// Why a rotation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    /// The client authenticates without a secret (public or private_key_jwt).
    #[error("the client does not authenticate with a secret")]
    NoSecretMethod,
    /// The application is offline: its secrets were revoked (AY-8.6.3).
    #[error("the application is offline; its secrets were revoked")]
    Offline,
}

/// Rotates: expired secrets are dropped, the live ones end at `now + overlap` at the latest,
/// and a new one is added. Returns the new secret and when the previous ones stop working.
pub fn rotate(client: &mut Client, now: i64, overlap: i64) -> Result<(Secret, i64), RotateError> {
    if !client.auth_method.uses_secret() {
        return Err(RotateError::NoSecretMethod);
    }
    if client.lifecycle == Some(State::Offline) {
        return Err(RotateError::Offline);
    }
    let until = now + overlap;
    client.secrets.retain(|s| s.expires_at.is_none_or(|e| e > now));
    for s in &mut client.secrets {
        s.expires_at = Some(s.expires_at.map_or(until, |e| e.min(until)));
    }
    let (secret, stored) = new_secret(None);
    client.secrets.push(stored);
    Ok((secret, until))
}
