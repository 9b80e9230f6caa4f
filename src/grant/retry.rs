//! Retry-safe redemption of single-use credentials (authorization codes, refresh tokens). The
//! answer is fully prepared and stored before the credential is marked used, and the mark
//! atomically keeps that answer beside it, sealed under the credential itself (so only its
//! holder can open it and the store never holds a usable token). A client whose request failed
//! after the mark (a store timeout, a crash) retries with the same input and gets the same
//! answer for [`RETRY_WINDOW`] seconds; once the answer was given the kept copy is dropped, so a
//! later replay is detected as one (RFC 6749 s4.1.2, RFC 9700 s4.14.2). With a refresh grace
//! window the copy is kept for that window instead, for clients that retry on their side.

use serde::{Deserialize, Serialize};

use super::TokenResponse;
use crate::crypto;
use crate::sealing::DataKey;

/// How long the answer of a redemption that failed after its mark stays retrievable, seconds.
pub const RETRY_WINDOW: i64 = 60;

/// Sealing context of kept answers.
const SEAL: &str = "redemption-answer";

/// The answer a redemption gave, as kept for retries.
#[derive(Serialize, Deserialize)]
pub struct Answer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    scope: String,
    /// When the access token expires (a retry's `expires_in` counts down from the first).
    exp: i64,
    /// Until when the answer may be given again.
    keep_until: i64,
    #[serde(default)]
    subject: Option<String>,
}

/// An [`Answer`] as written: borrowed from the response (no copies of the tokens).
#[derive(Serialize)]
struct AnswerRef<'a> {
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    id_token: Option<&'a str>,
    scope: &'a str,
    exp: i64,
    keep_until: i64,
    subject: Option<&'a str>,
}

/// The key an answer is sealed under: derived from the presented credential.
fn key(credential: &str) -> Option<DataKey> {
    let mut material = b"tongzheng redemption answer v1\0".to_vec();
    material.extend_from_slice(credential.as_bytes());
    DataKey::from_bytes(&crypto::sha256(&material)).ok()
}

/// Seals `resp` for retries of `credential` until `keep_until`.
pub fn seal(credential: &str, resp: &TokenResponse, now: i64, keep_until: i64) -> Vec<u8> {
    let answer = AnswerRef {
        access_token: &resp.access_token,
        refresh_token: resp.refresh_token.as_deref(),
        id_token: resp.id_token.as_deref(),
        scope: &resp.scope,
        exp: now + resp.expires_in,
        keep_until,
        subject: resp.subject.as_deref(),
    };
    // Serialised straight into the buffer sealed in place (issue 13: the answer holds the
    // tokens, a few KiB; it was copied five times). Writing our own struct to a Vec cannot fail.
    let seal = |k: DataKey| k.seal_with(SEAL, |buf| drop(serde_json::to_writer(buf, &answer)));
    key(credential).map(|k| seal(k).into_bytes()).unwrap_or_default()
}

/// Opens a kept answer of `credential`, if it is still within its window at `now`.
pub fn open(credential: &str, sealed: &[u8], now: i64) -> Option<TokenResponse> {
    let text = std::str::from_utf8(sealed).ok()?;
    let json = key(credential)?.open(text, SEAL)?;
    let a: Answer = serde_json::from_str(&json).ok()?;
    (now <= a.keep_until).then(|| TokenResponse {
        access_token: a.access_token,
        issued_token_type: None,
        token_type: "Bearer",
        expires_in: (a.exp - now).max(0),
        scope: a.scope,
        refresh_token: a.refresh_token,
        id_token: a.id_token,
        subject: a.subject,
        audit: Some(serde_json::json!({"retry": true})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_answer_opens_only_for_its_credential_and_window() {
        // RFC 6749 s4.1.2: the kept answer of a redemption is for a retry of that credential.
        let resp = TokenResponse {
            access_token: "at.\"quoted\"".into(),
            issued_token_type: None,
            token_type: "Bearer",
            expires_in: 300,
            scope: "openid profile".into(),
            refresh_token: Some("rt".into()),
            id_token: Some("id".into()),
            subject: Some("u1".into()),
            audit: None,
        };
        let sealed = seal("the-code", &resp, 1_000, 1_060);
        let again = open("the-code", &sealed, 1_010).unwrap();
        assert_eq!(again.access_token, resp.access_token);
        assert_eq!((again.refresh_token, again.id_token), (resp.refresh_token.clone(), resp.id_token.clone()));
        assert_eq!(
            (again.scope.as_str(), again.subject.as_deref(), again.expires_in),
            ("openid profile", Some("u1"), 290)
        );
        assert!(open("another-code", &sealed, 1_010).is_none());
        assert!(open("the-code", &sealed, 1_061).is_none());
        assert!(!String::from_utf8_lossy(&sealed).contains("quoted"), "sealed, not plain");
    }
}
