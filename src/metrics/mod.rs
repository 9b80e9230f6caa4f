//! Prometheus metrics of one instance: a [`Metrics`] handle living in `AppState` (no globals, so
//! two servers in one process count separately), typed recording methods for each event, and
//! [`Metrics::render`] in the text exposition format 0.0.4 for `GET /metrics`.

pub mod registry;
pub mod text;
pub mod verified;

use std::sync::Arc;

use registry::{CounterVec, HistogramVec, LATENCY_BUCKETS};

use crate::clients::GrantType;

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The user was authenticated.
    Success,
    /// The attempt was refused.
    Failure,
}

impl LoginOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// How one back-channel logout delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver acknowledged it.
    Delivered,
    /// It failed and is rescheduled.
    Retry,
    /// It failed for good (retry horizon passed, client gone, undecodable item).
    Failed,
}

impl DeliveryOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }
}

/// The metrics of one instance. Cheap to clone; clones share the counts.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    start_time: i64,
    http_requests: CounterVec,
    http_duration: HistogramVec,
    tokens_issued: CounterVec,
    logins: CounterVec,
    sessions_started: CounterVec,
    logout_deliveries: CounterVec,
    store_duration: HistogramVec,
    store_errors: CounterVec,
    rate_limited: CounterVec,
    audit_events: CounterVec,
    /// The verified-signature cache whose figures are reported, once the keys are open.
    verified: std::sync::OnceLock<Arc<crate::keys::verified::Verified>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("start_time", &self.0.start_time).finish_non_exhaustive()
    }
}

/// The label value of an HTTP method: the standard ones as is, any extension method `other`.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => registry::OTHER,
    }
}

/// The label value of a status code, written into `buf` (no allocation per request).
fn status_label(status: u16, buf: &mut [u8; 3]) -> &str {
    if !(100..=999).contains(&status) {
        return registry::OTHER;
    }
    let digit = |d: u16| b'0' + u8::try_from(d % 10).unwrap_or(0);
    *buf = [digit(status / 100), digit(status / 10), digit(status)];
    std::str::from_utf8(buf).unwrap_or(registry::OTHER)
}

impl Metrics {
    /// Empty metrics of an instance started at `start_time` (unix seconds, from the clock).
    pub fn new(start_time: i64) -> Self {
        Self(Arc::new(Inner {
            start_time,
            http_requests: CounterVec::new(
                "tongzheng_http_requests_total",
                "HTTP requests answered, by matched route template, method and status.",
                &["route", "method", "status"],
            ),
            http_duration: HistogramVec::new(
                "tongzheng_http_request_duration_seconds",
                "Time to answer an HTTP request, by matched route template and method.",
                &["route", "method"],
                LATENCY_BUCKETS,
            ),
            tokens_issued: CounterVec::new(
                "tongzheng_tokens_issued_total",
                "Successful token endpoint responses, by client and grant type.",
                &["client_id", "grant_type"],
            ),
            logins: CounterVec::new(
                "tongzheng_logins_total",
                "Login attempts, by outcome and reason.",
                &["outcome", "reason"],
            ),
            sessions_started: CounterVec::new("tongzheng_sessions_started_total", "SSO sessions started.", &[]),
            logout_deliveries: CounterVec::new(
                "tongzheng_logout_deliveries_total",
                "Back-channel logout delivery attempts, by outcome.",
                &["outcome"],
            ),
            store_duration: HistogramVec::new(
                "tongzheng_store_operation_duration_seconds",
                "Time of one store call, by operation.",
                &["op"],
                LATENCY_BUCKETS,
            ),
            store_errors: CounterVec::new(
                "tongzheng_store_errors_total",
                "Failed store calls, by operation and error kind.",
                &["op", "kind"],
            ),
            rate_limited: CounterVec::new(
                "tongzheng_rate_limited_total",
                "Requests refused by rate limiting, by client.",
                &["client_id"],
            ),
            audit_events: CounterVec::new("tongzheng_audit_events_total", "Audit events recorded, by kind.", &["kind"]),
            verified: std::sync::OnceLock::new(),
        }))
    }

    /// Records an answered HTTP request: `route` is the matched route template (never the raw
    /// path) or `unmatched`, `seconds` its latency.
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        let mut buf = [0u8; 3];
        let status = status_label(status, &mut buf);
        self.0.http_requests.inc(&[route, method, status]);
        self.0.http_duration.observe(&[route, method], seconds);
    }

    /// Records a successful token response to `client_id` for `grant_type`.
    pub fn token_issued(&self, client_id: &str, grant_type: GrantType) {
        self.0.tokens_issued.inc(&[client_id, grant_type.as_str()]);
    }

    /// Records a login attempt; `reason` is a fixed word such as `ok`, `bad_password`,
    /// `unknown_user`, `disabled` or `locked`.
    pub fn login(&self, outcome: LoginOutcome, reason: &'static str) {
        self.0.logins.inc(&[outcome.as_str(), reason]);
    }

    /// Records a new SSO session.
    pub fn session_started(&self) {
        self.0.sessions_started.inc(&[]);
    }

    /// Records one back-channel logout delivery attempt.
    pub fn logout_delivery(&self, outcome: DeliveryOutcome) {
        self.0.logout_deliveries.inc(&[outcome.as_str()]);
    }

    /// Records one store call `op` that took `seconds`, and its error kind when it failed
    /// (`unavailable` or `corrupt`).
    pub fn store_op(&self, op: &'static str, seconds: f64, error: Option<&'static str>) {
        self.0.store_duration.observe(&[op], seconds);
        if let Some(kind) = error {
            self.0.store_errors.inc(&[op, kind]);
        }
    }

    /// Records a request refused by rate limiting, attributed to `client_id`.
    pub fn rate_limited(&self, client_id: &str) {
        self.0.rate_limited.inc(&[client_id]);
    }

    /// Records an audit event of `kind`.
    pub fn audit_event(&self, kind: &str) {
        self.0.audit_events.inc(&[kind]);
    }

    /// Every metric in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let m = &self.0;
        let mut out = String::with_capacity(8 * 1024);
        text::header(&mut out, "tongzheng_build_info", "Build of the running server; always 1.", "gauge");
        let version: Box<str> = env!("CARGO_PKG_VERSION").into();
        text::sample(&mut out, "tongzheng_build_info", "", &["version"], &[version], None, "1");
        text::header(
            &mut out,
            "process_start_time_seconds",
            "Start time of the process since the unix epoch.",
            "gauge",
        );
        text::sample(&mut out, "process_start_time_seconds", "", &[], &[], None, &m.start_time.to_string());
        m.http_requests.render(&mut out);
        m.http_duration.render(&mut out);
        m.tokens_issued.render(&mut out);
        m.logins.render(&mut out);
        m.sessions_started.render(&mut out);
        m.logout_deliveries.render(&mut out);
        m.store_duration.render(&mut out);
        m.store_errors.render(&mut out);
        m.rate_limited.render(&mut out);
        m.audit_events.render(&mut out);
        if let Some(v) = m.verified.get() {
            verified::render(&mut out, v.stats());
        }
        out
    }

    /// Reports the figures of the instance's verified-signature cache from now on.
    pub fn watch_verified(&self, cache: Arc<crate::keys::verified::Verified>) {
        let _already = self.0.verified.set(cache);
    }
}

#[cfg(test)]
mod tests;
