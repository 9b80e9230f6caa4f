//! Request ids: every request gets one (a fresh UUIDv7 from [`crate::instance::Instance`], or
//! a sane `X-Request-Id` from the proxy when `server.trust_request_id` says it sets one). It is
//! echoed in the `X-Request-Id` response header, kept in the tracing span and the audit log, and
//! put in every error body by `error.rs` and `pages.rs`, which read it from the task's current
//! request record ([`super::context`]).

use std::fmt;

use axum::http::HeaderValue;

use crate::instance::Instance;

/// Longest client-chosen id accepted.
const MAX_LEN: usize = 64;

/// A request id, held inline: 1 to 64 characters of `A-Z a-z 0-9 - _ . :` (see [`sane`]).
/// Copied, never allocated (issue 13: a string per request, cloned into its extension, its
/// task-local, its deadline and its audit metadata, cost five allocations a request).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Id {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl Id {
    /// `text` as an id, if it is a sane one.
    pub fn new(text: &str) -> Option<Self> {
        if !sane(text) {
            return None;
        }
        let mut bytes = [0; MAX_LEN];
        bytes.get_mut(..text.len())?.copy_from_slice(text.as_bytes());
        Some(Self { len: u8::try_from(text.len()).ok()?, bytes })
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        // Only sane (ASCII) bytes are ever stored, so this never falls back.
        self.bytes.get(..usize::from(self.len)).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
    }

    /// A UUID in its 36-character form, as [`Instance::request_id`] writes it.
    fn uuid(text: [u8; 36]) -> Self {
        let mut bytes = [0; MAX_LEN];
        if let Some(head) = bytes.get_mut(..36) {
            head.copy_from_slice(&text);
        }
        Self { len: 36, bytes }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The id of the request being handled on this task, if any (the task's
/// [`super::context::current`] record's).
pub fn current() -> Option<String> {
    super::context::with_current_id(|id| id.as_str().to_owned())
}

/// Whether a client-chosen id may be kept: 1 to 64 characters of `A-Z a-z 0-9 - _ . :` (safe in
/// headers, logs, JSON and HTML as they are).
pub fn sane(v: &str) -> bool {
    (1..=MAX_LEN).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The id of a request at `now_ms`: the `X-Request-Id` header's value when `trust` and it is
/// sane, else a new one of `instance`.
pub fn assign(header: Option<&HeaderValue>, trust: bool, instance: &Instance, now_ms: i64) -> Id {
    header
        .filter(|_| trust)
        .and_then(|v| v.to_str().ok())
        .and_then(Id::new)
        .unwrap_or_else(|| Id::uuid(instance.request_id(now_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_from_a_trusted_header_are_kept() {
        let i = Instance::new();
        let h = HeaderValue::from_static("edge-1.a_b:2");
        assert_eq!(assign(Some(&h), true, &i, 0).as_str(), "edge-1.a_b:2");
        assert_ne!(assign(Some(&h), false, &i, 0).as_str(), "edge-1.a_b:2");
        for bad in ["", "a b", "<x>", "a\"b", &"x".repeat(65)] {
            let h = HeaderValue::from_str(bad).unwrap();
            let got = assign(Some(&h), true, &i, 0);
            assert!(got.as_str() != bad && got.as_str().len() == 36, "{bad:?} -> {got}");
        }
        assert_eq!(assign(None, true, &i, 0).as_str().len(), 36);
        let longest = "a".repeat(64);
        assert_eq!(assign(Some(&HeaderValue::from_str(&longest).unwrap()), true, &i, 0).as_str(), longest);
    }
}
