//! Text exposition format, cardinality cap and concurrency of the metric families.

use super::registry::{CounterVec, HistogramVec, MAX_LABEL_LEN, OTHER};
use super::*;

fn rendered(f: impl FnOnce(&mut String)) -> String {
    let mut out = String::new();
    f(&mut out);
    out
}

#[test]
fn label_less_counter_starts_at_zero() {
    let c = CounterVec::new("t_starts_total", "Starts.", &[]);
    assert_eq!(
        rendered(|o| c.render(o)),
        "# HELP t_starts_total Starts.\n# TYPE t_starts_total counter\nt_starts_total 0\n"
    );
    c.inc(&[]);
    c.add(&[], 2);
    assert!(rendered(|o| c.render(o)).ends_with("\nt_starts_total 3\n"));
}

#[test]
fn labelled_counter_escapes_values_and_help() {
    let c = CounterVec::new("t_events_total", "Events\\ by \"kind\"\nsecond line.", &["kind", "who"]);
    c.inc(&["a\\b", "say \"hi\"\nbye"]);
    c.add(&["plain", "x"], 5);
    let expected = concat!(
        "# HELP t_events_total Events\\\\ by \"kind\"\\nsecond line.\n",
        "# TYPE t_events_total counter\n",
        "t_events_total{kind=\"a\\\\b\",who=\"say \\\"hi\\\"\\nbye\"} 1\n",
        "t_events_total{kind=\"plain\",who=\"x\"} 5\n",
    );
    assert_eq!(rendered(|o| c.render(o)), expected);
    assert_eq!(c.get(&["plain", "x"]), 5);
    assert_eq!(c.get(&["plain", "y"]), 0);
}

#[test]
fn histogram_buckets_are_cumulative_with_inf_sum_and_count() {
    static BOUNDS: &[f64] = &[0.5, 1.0, 2.5];
    let h = HistogramVec::new("t_latency_seconds", "Latency.", &["op"], BOUNDS);
    for v in [0.25, 0.5, 0.75, 3.0, f64::NAN] {
        h.observe(&["get"], v);
    }
    let expected = concat!(
        "# HELP t_latency_seconds Latency.\n",
        "# TYPE t_latency_seconds histogram\n",
        "t_latency_seconds_bucket{op=\"get\",le=\"0.5\"} 2\n",
        "t_latency_seconds_bucket{op=\"get\",le=\"1\"} 3\n",
        "t_latency_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n",
        "t_latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n",
        "t_latency_seconds_sum{op=\"get\"} 4.5\n",
        "t_latency_seconds_count{op=\"get\"} 4\n",
    );
    assert_eq!(rendered(|o| h.render(o)), expected);
    assert_eq!(h.count(&["get"]), 4);
}

#[test]
fn label_less_histogram_renders_zeros() {
    static BOUNDS: &[f64] = &[1.0];
    let h = HistogramVec::new("t_h", "H.", &[], BOUNDS);
    let expected = "# HELP t_h H.\n# TYPE t_h histogram\nt_h_bucket{le=\"1\"} 0\nt_h_bucket{le=\"+Inf\"} 0\nt_h_sum 0\nt_h_count 0\n";
    assert_eq!(rendered(|o| h.render(o)), expected);
}

#[test]
fn cardinality_cap_folds_new_label_sets_into_other() {
    let c = CounterVec::with_cap("t_by_client_total", "By client.", &["client_id", "grant"], 3);
    for i in 0..100 {
        c.inc(&[&format!("client-{i}"), "code"]);
    }
    // Known series keep counting after the cap is reached.
    c.inc(&["client-0", "code"]);
    assert_eq!(c.len(), 4, "three series plus the overflow one");
    assert_eq!(c.get(&["client-0", "code"]), 2);
    assert_eq!(c.get(&[OTHER, OTHER]), 97);
    assert!(rendered(|o| c.render(o)).contains("t_by_client_total{client_id=\"other\",grant=\"other\"} 97\n"));
}

#[test]
fn long_label_values_are_clipped_on_a_char_boundary() {
    let c = CounterVec::new("t_long_total", "Long.", &["v"]);
    let long = "é".repeat(MAX_LABEL_LEN);
    c.inc(&[&long]);
    c.inc(&[&format!("{long}tail")]);
    let clipped = "é".repeat(MAX_LABEL_LEN / 2);
    assert_eq!(c.get(&[&clipped]), 2);
    assert_eq!(c.len(), 1);
}

#[test]
fn concurrent_increments_all_count() {
    static BOUNDS: &[f64] = &[1.0];
    let c = std::sync::Arc::new(CounterVec::new("t_c_total", "C.", &["k"]));
    let h = std::sync::Arc::new(HistogramVec::new("t_h", "H.", &["k"], BOUNDS));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (c, h) = (c.clone(), h.clone());
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    let k = if i % 2 == 0 { "even" } else { ["a", "b", "c", "d", "e", "f", "g", "h"][t] };
                    c.inc(&[k]);
                    h.observe(&[k], 0.5);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.get(&["even"]), 40_000);
    assert_eq!(c.get(&["a"]) + c.get(&["h"]), 10_000);
    assert_eq!(h.count(&["even"]), 40_000);
    assert!(rendered(|o| h.render(o)).contains("t_h_sum{k=\"even\"} 20000\n"));
}

#[test]
fn metrics_render_every_family_with_normalised_labels() {
    let m = Metrics::new(1_700_000_000);
    m.http_request("/token", "POST", 200, 0.003);
    m.http_request("/token", "BREW", 418, 0.003);
    m.token_issued("demo-web", GrantType::AuthorizationCode);
    m.login(LoginOutcome::Failure, "bad_password");
    m.logout_delivery(DeliveryOutcome::Retry);
    m.store_op("get", 0.0002, Some("unavailable"));
    m.rate_limited("demo-web");
    m.audit_event("login");
    m.session_started();
    let text = m.render();
    for line in [
        "tongzheng_build_info{version=\"",
        "process_start_time_seconds 1700000000\n",
        "tongzheng_http_requests_total{route=\"/token\",method=\"POST\",status=\"200\"} 1\n",
        "tongzheng_http_requests_total{route=\"/token\",method=\"other\",status=\"418\"} 1\n",
        "tongzheng_http_request_duration_seconds_bucket{route=\"/token\",method=\"POST\",le=\"0.005\"} 1\n",
        "tongzheng_tokens_issued_total{client_id=\"demo-web\",grant_type=\"authorization_code\"} 1\n",
        "tongzheng_logins_total{outcome=\"failure\",reason=\"bad_password\"} 1\n",
        "tongzheng_sessions_started_total 1\n",
        "tongzheng_logout_deliveries_total{outcome=\"retry\"} 1\n",
        "tongzheng_store_operation_duration_seconds_count{op=\"get\"} 1\n",
        "tongzheng_store_errors_total{op=\"get\",kind=\"unavailable\"} 1\n",
        "tongzheng_rate_limited_total{client_id=\"demo-web\"} 1\n",
        "tongzheng_audit_events_total{kind=\"login\"} 1\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Two handles never share counts.
    assert!(!Metrics::new(0).render().contains("route=\"/token\""));
}

#[test]
fn status_labels_are_three_digits_or_other() {
    let mut buf = [0u8; 3];
    assert_eq!(status_label(200, &mut buf), "200");
    assert_eq!(status_label(503, &mut buf), "503");
    assert_eq!(status_label(42, &mut buf), "other");
}
