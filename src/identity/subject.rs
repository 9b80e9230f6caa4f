//! Subject identifiers (OIDC Core s8): `public` (the same `sub` at every client) or `pairwise`
//! per sector (s8.1), so applications cannot correlate people by `sub`. Every path that puts a
//! subject in front of a client (tokens, userinfo, introspection, logout tokens, token exchange)
//! calls [`for_client`]; every path that reads one back calls [`internal`].
//!
//! A pairwise `sub` is the internal id sealed deterministically (AES-256-GCM under a key derived
//! from the data key, its nonce an HMAC of sector and id): the same for every client of one
//! sector, different across sectors, and opened by this server alone, so the validity authority
//! finds the records a token stands on in one round trip, as for public subjects.

use ring::aead::{Aad, NONCE_LEN, Nonce};
use serde::{Deserialize, Serialize};

use crate::clients::Client;
use crate::crypto::{b64, b64_decode};
use crate::error::{ErrorCode, OAuthError};
use crate::sealing::DataKey;

/// The subject identifier type of a client (OIDC Registration s2 `subject_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// The same `sub` at every client.
    #[default]
    Public,
    /// A `sub` per sector (OIDC Core s8.1).
    Pairwise,
}

impl SubjectType {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "pairwise" => Some(Self::Pairwise),
            _ => None,
        }
    }
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise => "pairwise",
        }
    }
    /// Whether this is the default (for `skip_serializing_if`).
    pub fn is_public(&self) -> bool {
        *self == Self::Public
    }
}

const AAD: &[u8] = b"tongzheng pairwise sub v1";

/// OIDC Core s8.1: the sector of a pairwise client: the host of its `sector_identifier_uri`,
/// else the host of its redirect URIs (registration makes sure there is one host, s8.1). For a
/// client without either, its own id.
pub fn sector(client: &Client) -> String {
    let host = |u: &str| url::Url::parse(u).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    client
        .sector_identifier_uri
        .as_deref()
        .and_then(host)
        .or_else(|| client.redirect_uris.first().and_then(|u| host(u)))
        .unwrap_or_else(|| format!("client:{}", client.client_id))
}

/// The pairwise `sub` of `internal` in `sector`.
pub fn pairwise(data: &DataKey, sector: &str, internal: &str) -> String {
    let key = data.subject_key();
    let Some(n) = b64_decode(&data.derive(&format!("pairwise:{sector}\u{0}{internal}"))) else {
        // The derivations cannot fail (fixed-size HMAC output); refuse to fall back to the
        // public id if they ever did.
        tracing::error!("pairwise subject derivation failed");
        std::process::abort();
    };
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(n.get(..NONCE_LEN).unwrap_or(&[0u8; NONCE_LEN]));
    let mut buf = internal.as_bytes().to_vec();
    // Deterministic by design: the nonce is a function of (sector, id), so it repeats only with
    // the very same plaintext, which yields the very same output.
    if key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut buf).is_err() {
        tracing::error!("pairwise subject sealing failed");
        std::process::abort();
    }
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    b64(&out)
}

/// The `sub` `client` sees for the internal id `internal` (a user or a legal person).
pub fn for_client(data: &DataKey, client: &Client, internal: &str) -> String {
    match client.subject_type {
        SubjectType::Public => internal.to_owned(),
        SubjectType::Pairwise => pairwise(data, &sector(client), internal),
    }
}

/// The internal id behind a `sub` we issued: a pairwise one opened, a public one as it is.
pub fn internal(data: &DataKey, sub: &str) -> String {
    opened(data, sub).unwrap_or_else(|| sub.to_owned())
}

fn opened(data: &DataKey, sub: &str) -> Option<String> {
    // A pairwise sub is nonce + tag + at least one byte: over 28 bytes, about 40 characters.
    if sub.len() < 40 || sub.len() > 400 {
        return None;
    }
    let raw = b64_decode(sub)?;
    let (nonce, ct) = raw.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = ct.to_vec();
    let plain = data.subject_key().open_in_place(nonce, Aad::from(AAD), &mut buf).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// Longest sector identifier document read.
const MAX_SECTOR_DOC: usize = 64 * 1024;

/// OIDC Core s8.1.1: when `client` names a `sector_identifier_uri`, fetches it (through the
/// outbound policy's client, `policy` checked first) and checks the JSON array it holds lists
/// every redirect URI of the client; otherwise `invalid_client_metadata` naming why.
pub async fn check_sector_uri(
    http: &reqwest::Client,
    policy: &crate::outbound::Policy,
    client: &Client,
) -> Result<(), OAuthError> {
    let Some(uri) = &client.sector_identifier_uri else { return Ok(()) };
    let bad = |why: String| OAuthError::new(ErrorCode::InvalidClientMetadata, format!("sector_identifier_uri: {why}"));
    policy.check_url(uri).map_err(|e| bad(e.to_string()))?;
    let resp = http
        .get(uri)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| bad(format!("could not be fetched ({})", e.without_url())))?;
    if !resp.status().is_success() {
        return Err(bad(format!("answered {}", resp.status())));
    }
    let body = crate::outbound::read_limited(resp, MAX_SECTOR_DOC).await.map_err(|e| bad(e.to_string()))?;
    let listed: Vec<String> =
        serde_json::from_slice(&body).map_err(|_| bad("is not a JSON array of URIs".to_owned()))?;
    match client.redirect_uris.iter().find(|r| !listed.contains(r)) {
        Some(r) => Err(bad(format!("does not list the redirect URI '{r}'"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The key kept in the data key is the one its label always derived: subjects issued before
    // it was kept there open with it, and it opens what it seals now.
    #[test]
    fn the_subject_key_is_the_one_its_label_derives() {
        use ring::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
        let k = DataKey::from_bytes(&[7u8; 32]).unwrap();
        let raw = b64_decode(&k.derive(crate::sealing::SUBJECT_KEY_LABEL)).unwrap();
        let derived = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).unwrap());
        let sub = pairwise(&k, "app.example", "user-9");
        let bytes = b64_decode(&sub).unwrap();
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let mut buf = ct.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).unwrap();
        let plain = derived.open_in_place(nonce, Aad::from(AAD), &mut buf).unwrap();
        assert_eq!(plain, b"user-9");
    }

    #[test]
    fn pairwise_subjects_differ_by_sector_and_open_back() {
        // OIDC Core s8.1.
        let k = DataKey::from_bytes(&[9u8; 32]).unwrap();
        let a = pairwise(&k, "app-a.example", "user-1");
        let b = pairwise(&k, "app-b.example", "user-1");
        assert_ne!(a, b, "two sectors see two subjects");
        assert_eq!(a, pairwise(&k, "app-a.example", "user-1"), "stable within a sector");
        assert_ne!(pairwise(&k, "app-a.example", "user-2"), a);
        assert_eq!(internal(&k, &a), "user-1");
        assert_eq!(internal(&k, "plain-public-id"), "plain-public-id");
        let other = DataKey::from_bytes(&[8u8; 32]).unwrap();
        assert_eq!(internal(&other, &a), a, "another platform's key does not open it");
        assert!(a.len() <= 255, "OIDC Core s2: sub is at most 255 ASCII characters");
    }
}
