//! Request ids: every request gets one (a fresh UUIDv7 from [`crate::instance::Instance`], or
//! a sane `X-Request-Id` from the proxy when `server.trust_request_id` says it sets one). It is
//! echoed in the `X-Request-Id` response header, kept in the tracing span and the audit log, and
//! put in every error body by `error.rs` and `pages.rs`, which read it from the task-local here.

use std::future::Future;

use axum::http::HeaderValue;

use crate::instance::Instance;

tokio::task_local! {
    static CURRENT: String;
}

/// Longest client-chosen id accepted.
const MAX_LEN: usize = 64;

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `fut` (the rest of a request's handling) with `id` as its [`current`] id.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    CURRENT.scope(id, fut).await
}

/// Runs `f` with `id` as its [`current`] id (an answer made outside the handler).
pub fn sync_scope<R>(id: String, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(id, f)
}

/// Whether a client-chosen id may be kept: 1 to 64 characters of `A-Z a-z 0-9 - _ . :` (safe in
/// headers, logs, JSON and HTML as they are).
pub fn sane(v: &str) -> bool {
    (1..=MAX_LEN).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The id of a request at `now_ms`: the `X-Request-Id` header's value when `trust` and it is
/// sane, else a new one of `instance`.
pub fn assign(header: Option<&HeaderValue>, trust: bool, instance: &Instance, now_ms: i64) -> String {
    header
        .filter(|_| trust)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(|| instance.request_id(now_ms), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_from_a_trusted_header_are_kept() {
        let i = Instance::new();
        let h = HeaderValue::from_static("edge-1.a_b:2");
        assert_eq!(assign(Some(&h), true, &i, 0), "edge-1.a_b:2");
        assert_ne!(assign(Some(&h), false, &i, 0), "edge-1.a_b:2");
        for bad in ["", "a b", "<x>", "a\"b", &"x".repeat(65)] {
            let h = HeaderValue::from_str(bad).unwrap();
            let got = assign(Some(&h), true, &i, 0);
            assert!(got != bad && got.len() == 36, "{bad:?} -> {got}");
        }
        assert_eq!(assign(None, true, &i, 0).len(), 36);
    }

    #[tokio::test]
    async fn the_current_id_is_scoped_to_the_request() {
        assert_eq!(current(), None);
        let inside = scope("r-1".to_owned(), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("r-1"));
        assert_eq!(current(), None);
    }
}
