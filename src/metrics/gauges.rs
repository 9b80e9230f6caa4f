//! Gauges read at scrape time: SSO sessions, pending logout deliveries and intents (from the
//! shared store, so every instance reports the platform's figure), the audit queue, signing-key
//! age and next rotation, the TLS certificate's expiry, and the process (`/proc/self`).

use super::Metrics;
use super::process::{self, ProcessStats};
use super::text::{header, sample};
use crate::audit::Audit;
use crate::keys::{ALGS, Keys};
use crate::store::{Store, keys as store_keys};

/// What a scrape reads.
pub struct Sources<'a> {
    /// The instance's counters.
    pub metrics: &'a Metrics,
    /// The shared store.
    pub store: &'a dyn Store,
    /// The signing keys.
    pub keys: &'a Keys,
    /// The audit log.
    pub audit: &'a Audit,
    /// `keys.rotation_days`.
    pub rotation_days: u32,
    /// Unix seconds now.
    pub now: i64,
}

/// The whole scrape: counters and histograms, then the gauges. A store that does not answer
/// leaves its gauges out (the store error counter says why) rather than failing the scrape.
pub async fn scrape(s: &Sources<'_>) -> String {
    let mut out = s.metrics.render();
    let (sessions, deliveries, intents) = tokio::join!(
        s.store.queue_len(store_keys::SESSION_EXPIRY_QUEUE),
        s.store.queue_len(store_keys::OUTBOX_QUEUE),
        s.store.queue_len(store_keys::LOGOUT_INTENT_QUEUE),
    );
    for (name, help, value) in [
        (
            "tongzheng_sso_sessions",
            "SSO sessions in the store (live, or ended and awaiting the expiry sweep).",
            sessions,
        ),
        ("tongzheng_logout_deliveries_pending", "Back-channel logout deliveries waiting or retrying.", deliveries),
        (
            "tongzheng_logout_intents_pending",
            "Logouts begun and not yet finished (recovered by any instance).",
            intents,
        ),
    ] {
        if let Ok(v) = value {
            gauge(&mut out, name, help, &[], &[], &v.to_string());
        }
    }
    let depth = s.audit.queue_depth().to_string();
    gauge(
        &mut out,
        "tongzheng_audit_queue_depth",
        "Audit events waiting for this instance's writer.",
        &[],
        &[],
        &depth,
    );
    keys(&mut out, s);
    let tls = s.metrics.tls_not_after();
    if tls > 0 {
        let help = "Expiry (notAfter) of the TLS certificate this instance serves, unix seconds.";
        gauge(&mut out, "tongzheng_tls_certificate_expiry_timestamp_seconds", help, &[], &[], &tls.to_string());
    }
    if let Some(p) = process::read() {
        process_gauges(&mut out, &p);
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, labels: &[&str], values: &[Box<str>], value: &str) {
    header(out, name, help, "gauge");
    sample(out, name, "", labels, values, None, value);
}

/// Per algorithm: the active key's age and when the rotation policy says it is due.
fn keys(out: &mut String, s: &Sources<'_>) {
    let set = s.keys.current();
    let active: Vec<_> = ALGS.iter().filter_map(|a| set.active(*a)).collect();
    let labels = ["alg", "kid"];
    let age = "tongzheng_signing_key_age_seconds";
    header(out, age, "Age of the active signing key of each algorithm.", "gauge");
    for k in &active {
        let v: [Box<str>; 2] = [k.alg.as_str().into(), k.kid.as_str().into()];
        sample(out, age, "", &labels, &v, None, &(s.now - k.created_at).max(0).to_string());
    }
    let next = "tongzheng_signing_key_next_rotation_timestamp_seconds";
    header(out, next, "When the active key of each algorithm is due for rotation (keys.rotation_days).", "gauge");
    let period = i64::from(s.rotation_days) * 86_400;
    for k in &active {
        let v: [Box<str>; 2] = [k.alg.as_str().into(), k.kid.as_str().into()];
        sample(out, next, "", &labels, &v, None, &(k.created_at + period).to_string());
    }
}

fn process_gauges(out: &mut String, p: &ProcessStats) {
    header(out, "process_cpu_seconds_total", "User and system CPU time spent, seconds.", "counter");
    sample(out, "process_cpu_seconds_total", "", &[], &[], None, &p.cpu_seconds.to_string());
    gauge(
        out,
        "process_resident_memory_bytes",
        "Resident memory size, bytes.",
        &[],
        &[],
        &p.resident_bytes.to_string(),
    );
    gauge(out, "process_virtual_memory_bytes", "Virtual memory size, bytes.", &[], &[], &p.virtual_bytes.to_string());
    gauge(out, "process_open_fds", "Open file descriptors.", &[], &[], &p.open_fds.to_string());
    if let Some(max) = p.max_fds {
        gauge(out, "process_max_fds", "The open-file limit.", &[], &[], &max.to_string());
    }
}
