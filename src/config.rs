//! One validated `Config`: the built-in `config/default.toml`, then an optional file (or the
//! dev overlay), then `TONGZHENG_SECTION__KEY` environment variables. `validate()` runs at boot
//! and fails fast naming the offending field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");
const DEV: &str = include_str!("../config/dev.toml");

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type or name.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value that parses but is not allowed.
    #[error("invalid configuration field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Issuer identifier; derived from `server.listen` in dev mode when empty.
    pub issuer: String,
    /// Listener and HTTP settings.
    pub server: ServerConfig,
    /// TLS certificate and key.
    pub tls: TlsConfig,
    /// Storage backend.
    pub store: StoreConfig,
    /// Signing keys.
    pub keys: KeysConfig,
    /// Token and code lifetimes.
    pub tokens: TokensConfig,
    /// SSO session settings.
    pub session: SessionConfig,
    /// Security knobs.
    pub security: SecurityConfig,
    /// Throttling of password and client-secret guessing.
    pub guard: GuardConfig,
    /// Logout broadcast.
    pub logout: LogoutConfig,
    /// Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// Data created at start when missing.
    pub seed: SeedConfig,
    /// Audit log files, retention and forwarding.
    pub audit: AuditConfig,
    /// The working-day calendar for lifecycle deadlines.
    pub calendar: CalendarConfig,
    /// Application lifecycle.
    pub apps: AppsConfig,
    /// Per-client call control.
    pub rate_limit: RateLimitConfig,
    /// Trusted platforms.
    pub federation: FederationConfig,
    /// Where the server's own requests may go.
    pub outbound: OutboundConfig,
    /// Log format and the per-request access line.
    pub logging: LoggingConfig,
    /// The SMS sender of one-time codes (SH-A.2).
    pub sms: crate::sms::SmsConfig,
    /// One-time codes: lifetime, tries, rate limits.
    pub otp: crate::otp::OtpConfig,
    /// The platform's name, logo, colours and links on every page (JM-5.6, SH-D).
    pub branding: BrandingConfig,
    /// The directory and its SCIM service.
    pub directory: DirectoryConfig,
    /// Real-name verification (GB-6.4a).
    pub verify: VerifyConfig,
}

/// `[logging]`: how log lines are written (see [`crate::logging`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `text` (human-readable) or `json` (one JSON object a line, for log collectors).
    pub format: LogFormat,
    /// One `tongzheng::access` line per request (method, route template, status, latency,
    /// client id, request id).
    pub access: bool,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; ANSI colour only when writing to a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[verify]`: the real-name verifier (GB-6.4a, HL-6.1), see [`crate::identity::verify`].
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// `builtin` (formats and check digits only) or `http` (a real-name service).
    pub verifier: crate::identity::verify::Kind,
    /// The name recorded as who verified (`Verification::by`) and in the audit log.
    pub name: String,
    /// The service's endpoint (`http` only).
    pub url: String,
    /// Bearer credential sent to the service; usually `TONGZHENG_VERIFY__TOKEN`.
    pub token: String,
    /// A file holding the credential instead of `token` (first line).
    pub token_file: PathBuf,
    /// Time allowed for one call, milliseconds.
    pub timeout_ms: u64,
    /// Further tries after a timeout, a transport error or a 5xx answer.
    pub retries: u32,
    /// Wait before the first retry, milliseconds; doubled for each further one.
    pub retry_backoff_ms: u64,
    /// Verifications one person may start per day (each may be a billed call).
    pub attempts_per_day: u32,
}

impl std::fmt::Debug for VerifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyConfig")
            .field("verifier", &self.verifier)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &if self.token.is_empty() { "" } else { "<redacted>" })
            .field("token_file", &self.token_file)
            .field("timeout_ms", &self.timeout_ms)
            .field("retries", &self.retries)
            .field("retry_backoff_ms", &self.retry_backoff_ms)
            .field("attempts_per_day", &self.attempts_per_day)
            .finish()
    }
}

impl VerifyConfig {
    fn validate(&self, dev: bool) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(invalid("verify.name", "1-64 characters"));
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            return Err(invalid("verify.timeout_ms", "must be 100..=30000"));
        }
        if self.retries > 5 {
            return Err(invalid("verify.retries", "must be 0..=5"));
        }
        if self.retry_backoff_ms > 10_000 {
            return Err(invalid("verify.retry_backoff_ms", "must be 0..=10000"));
        }
        if !(1..=1000).contains(&self.attempts_per_day) {
            return Err(invalid("verify.attempts_per_day", "must be 1..=1000"));
        }
        if !self.token.is_empty() && !self.token_file.as_os_str().is_empty() {
            return Err(invalid("verify.token", "set verify.token or verify.token_file, not both"));
        }
        if self.verifier == crate::identity::verify::Kind::Http {
            let url = url::Url::parse(&self.url).map_err(|_| invalid("verify.url", "an absolute URL is required"))?;
            if url.scheme() != "https" && !(dev && url.scheme() == "http") {
                return Err(invalid("verify.url", "must be https (http in dev mode only)"));
            }
        }
        Ok(())
    }
}

/// `[branding]`: what every page shows of the platform (JM-5.6, SH-D): its name and logo, a
/// footer, help, user-agreement and privacy links, and the primary colour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandingConfig {
    /// Platform name (zh-CN), 1-64 characters.
    pub name: String,
    /// Platform name in English; empty means `name`.
    pub name_en: String,
    /// Logo: empty (none), an https URL (http in dev) or a `data:image/...` URL.
    pub logo_url: String,
    /// Footer line (zh-CN), e.g. the operator and its ICP record number; empty shows none.
    pub footer: String,
    /// Footer line in English; empty means `footer`.
    pub footer_en: String,
    /// Help page link; empty shows none.
    pub help_url: String,
    /// User agreement link.
    pub agreement_url: String,
    /// Privacy policy link.
    pub privacy_url: String,
    /// Primary colour of buttons and links, `#rgb` or `#rrggbb`.
    pub primary_color: String,
}

/// Longest branding text (name, footer).
const BRAND_TEXT_MAX: usize = 200;
/// Longest logo URL (an inline `data:` image is sent with every page).
const BRAND_LOGO_MAX: usize = 16 * 1024;

impl BrandingConfig {
    /// Whether `c` is a `#rgb` or `#rrggbb` colour.
    pub fn is_hex_colour(c: &str) -> bool {
        c.strip_prefix('#').is_some_and(|h| matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The origin of an http(s) logo, for the pages' CSP `img-src` (None for data: or none).
    pub fn logo_origin(&self) -> Option<String> {
        let u = url::Url::parse(&self.logo_url).ok()?;
        matches!(u.scheme(), "https" | "http").then(|| u.origin().ascii_serialization())
    }

    fn validate(&self, dev: bool) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(invalid("branding.name", "1-64 characters"));
        }
        if self.name_en.chars().count() > 64 {
            return Err(invalid("branding.name_en", "at most 64 characters"));
        }
        for (field, v) in [("branding.footer", &self.footer), ("branding.footer_en", &self.footer_en)] {
            if v.chars().count() > BRAND_TEXT_MAX {
                return Err(invalid(field, "at most 200 characters"));
            }
        }
        if !Self::is_hex_colour(&self.primary_color) {
            return Err(invalid("branding.primary_color", "a hex colour, #rgb or #rrggbb"));
        }
        let logo = self.logo_url.as_str();
        if logo.len() > BRAND_LOGO_MAX {
            return Err(invalid("branding.logo_url", "at most 16 KiB"));
        }
        if !logo.is_empty() {
            let data_ok = ["png", "jpeg", "gif", "webp", "svg+xml"].iter().any(|t| {
                logo.strip_prefix("data:image/")
                    .and_then(|r| r.strip_prefix(t))
                    .is_some_and(|r| r.starts_with([';', ',']))
            });
            if !data_ok && !web_url(logo, dev) {
                return Err(invalid(
                    "branding.logo_url",
                    "an https URL (http in dev mode) or a data:image/png|jpeg|gif|webp|svg+xml URL",
                ));
            }
        }
        for (field, v) in [
            ("branding.help_url", &self.help_url),
            ("branding.agreement_url", &self.agreement_url),
            ("branding.privacy_url", &self.privacy_url),
        ] {
            let local = v.starts_with('/') && !v.starts_with("//") && !v.contains(['\\', ' ']);
            if !v.is_empty() && (v.len() > 2048 || !(local || web_url(v, dev))) {
                return Err(invalid(field, "empty, a path on this server (/...) or an https URL (http in dev mode)"));
            }
        }
        Ok(())
    }
}

/// Whether `v` is an absolute https URL with a host (http too in dev mode).
fn web_url(v: &str, dev: bool) -> bool {
    url::Url::parse(v).is_ok_and(|u| u.has_host() && (u.scheme() == "https" || (dev && u.scheme() == "http")))
}

/// `[directory]`: the SCIM 2.0 service at `/scim/v2` and the change feed (issue 12).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// SCIM page size when the client gives no `count`.
    pub default_count: usize,
    /// Largest SCIM page (`filter.maxResults`).
    pub max_count: usize,
    /// Most candidates a filter no index narrows may read before `tooMany`.
    pub scan_limit: usize,
    /// Most operations in one Bulk request.
    pub bulk_max_operations: usize,
    /// Largest SCIM request body (Bulk `maxPayloadSize`), bytes.
    pub max_payload: usize,
    /// Days change-feed entries (tombstones included) are kept; at least 30.
    pub feed_retention_days: i64,
    /// Webhook push (issue 12): time allowed for one delivery attempt, milliseconds.
    pub webhook_attempt_timeout_ms: u64,
    /// Longest wait between two attempts at one event, seconds.
    pub webhook_max_backoff: i64,
    /// Seconds after which an event still not delivered is marked failed and the next is sent.
    pub webhook_retry_horizon: i64,
    /// Applications whose events one instance sends at once.
    pub webhook_concurrency: usize,
    /// How often an idle instance looks for new changes to push, milliseconds.
    pub webhook_poll_ms: u64,
}

impl DirectoryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: &str| Err(ConfigError::Invalid { field, reason: reason.into() });
        if !(1..=self.max_count).contains(&self.default_count) || !(1..=10_000).contains(&self.max_count) {
            return bad("directory.default_count", "1 <= default_count <= max_count <= 10000");
        }
        if !(100..=1_000_000).contains(&self.scan_limit) {
            return bad("directory.scan_limit", "must be 100..=1000000");
        }
        if !(1..=10_000).contains(&self.bulk_max_operations) {
            return bad("directory.bulk_max_operations", "must be 1..=10000");
        }
        if !(65_536..=67_108_864).contains(&self.max_payload) {
            return bad("directory.max_payload", "must be 64 KiB..=64 MiB");
        }
        if !(30..=3650).contains(&self.feed_retention_days) {
            return bad("directory.feed_retention_days", "must be 30..=3650 days (SH-6.3.5: at least 30)");
        }
        if !(100..=60_000).contains(&self.webhook_attempt_timeout_ms) {
            return bad("directory.webhook_attempt_timeout_ms", "must be 100..=60000");
        }
        if !(1..=86_400).contains(&self.webhook_max_backoff) {
            return bad("directory.webhook_max_backoff", "must be 1..=86400 seconds");
        }
        if !(1..=30 * 86_400).contains(&self.webhook_retry_horizon) {
            return bad("directory.webhook_retry_horizon", "must be 1 second..=30 days");
        }
        if !(1..=1024).contains(&self.webhook_concurrency) {
            return bad("directory.webhook_concurrency", "must be 1..=1024");
        }
        if !(10..=60_000).contains(&self.webhook_poll_ms) {
            return bad("directory.webhook_poll_ms", "must be 10..=60000");
        }
        Ok(())
    }
}

/// `[outbound]`: destinations of the server's own requests (JWKS, peer discovery, back-channel
/// logout, audit forwarding); see [`crate::outbound`] (OWASP SSRF).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Destinations allowed although not public: CIDR blocks, addresses or host names.
    pub allow: Vec<crate::outbound::Allowed>,
    /// Loopback destinations: `dev` (in dev mode only), `allow` or `refuse`.
    pub loopback: crate::outbound::Loopback,
    /// Seconds a failed fetch of a JWKS or peer metadata is remembered before it is retried.
    pub failure_cache_secs: u64,
}

/// `[calendar]`: which days are working days (AY-8.5.4 counts deadlines in working days).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Time zone of the platform, `+HH:MM`.
    pub utc_offset: String,
    /// Weekday names that are not working days.
    pub weekend: Vec<String>,
    /// Public holidays, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Adjusted working days on weekends (调休), `YYYY-MM-DD`.
    pub workdays: Vec<String>,
}

/// `[apps]`: the application lifecycle.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppsConfig {
    /// Working days an application has to rectify after a suspension (AY-8.5.4).
    pub rectification_days: u32,
    /// The longest extension of a rectification, working days (AY-8.5.4).
    pub max_extension_days: u32,
    /// Working days the reviewers have for an application (AY-8.2.2).
    pub review_days: u32,
    /// Directory the archives of applications taken offline are written to (AY-8.6.4).
    pub archive_dir: PathBuf,
    /// Overlap of an old client secret after rotation when the request names none, seconds.
    pub secret_overlap: i64,
}

/// `[federation]`: trusted platforms (DC-5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// Try an upstream platform with `prompt=none` before showing the login form (GB-6.4c).
    pub silent_login: bool,
    /// Trusts defined by configuration (written at every start; the admin API adds more).
    pub trusts: Vec<crate::federation::TrustInput>,
}

/// `[rate_limit]`: per-client call control (AY-8.3.2.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether limits are enforced at all.
    pub enabled: bool,
    /// Sustained requests per second of a client without its own limit; 0 means unlimited.
    pub default_per_second: f64,
    /// Requests a client may send at once above the sustained rate.
    pub default_burst: u32,
}

/// `[audit]`: the audit log (AY-8.5.2.1, GB-6.8a) and its forwarding upstream (GB-6.8c).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Record audit events at all (false only for benchmarks).
    pub enabled: bool,
    /// Directory of the JSON-lines files.
    pub dir: PathBuf,
    /// Name of this instance in file names and event ids, held by one running instance at a time;
    /// empty means the first free of the host name, `<host>-2` ... `<host>-16`.
    pub instance: String,
    /// UTC offset whose calendar day names the files, `+HH:MM` or `-HH:MM`.
    pub utc_offset: String,
    /// Days a file is kept after its day; at least 180 (AY-8.5.2.1).
    pub retention_days: i64,
    /// Events queued for the writer before `record` waits.
    pub channel_capacity: usize,
    /// Longest time between two fsyncs of written events, milliseconds (0: after every batch).
    pub fsync_ms: u64,
    /// How long the writer gathers events into one write, milliseconds (0: write at once).
    pub batch_ms: u64,
    /// How often expired files are looked for, milliseconds.
    pub sweep_ms: u64,
    /// Collector of the higher-level platform that receives our events; empty disables forwarding.
    pub forward_url: String,
    /// Bearer token sent to the collector; empty sends none.
    pub forward_token: String,
    /// Most events per forwarded request.
    pub forward_batch: usize,
    /// How often the forwarder looks for new events when not woken, milliseconds.
    pub forward_poll_ms: u64,
    /// First delay after a failed forward, milliseconds; doubles up to 60 s.
    pub forward_retry_ms: u64,
}

impl AuditConfig {
    /// The configured UTC offset; `None` when `utc_offset` is not `+HH:MM`, `-HH:MM` or `Z`.
    pub fn offset(&self) -> Option<time::UtcOffset> {
        let s = self.utc_offset.as_str();
        if s == "Z" {
            return Some(time::UtcOffset::UTC);
        }
        let (sign, rest) = match s.strip_prefix('+') {
            Some(rest) => (1i8, rest),
            None => (-1i8, s.strip_prefix('-')?),
        };
        let (h, m) = rest.split_once(':')?;
        let two_digits =
            |t: &str| (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse::<i8>().ok()).flatten();
        let (h, m) = (two_digits(h)?, two_digits(m)?);
        if h > 23 || m > 59 {
            return None;
        }
        time::UtcOffset::from_hms(sign * h, sign * m, 0).ok()
    }

    fn validate(&self, dev: bool) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        if self.enabled && self.dir.as_os_str().is_empty() {
            return Err(invalid("audit.dir", "required when audit.enabled"));
        }
        if self.offset().is_none() {
            return Err(invalid("audit.utc_offset", "must be +HH:MM, -HH:MM or Z"));
        }
        // AY-8.5.2.1: logs are kept at least six months, never less.
        if !(180..=36_500).contains(&self.retention_days) {
            return Err(invalid("audit.retention_days", "must be 180..=36500 days (logs are kept at least 6 months)"));
        }
        if !(1..=10_000_000).contains(&self.channel_capacity) {
            return Err(invalid("audit.channel_capacity", "must be 1..=10000000"));
        }
        if self.fsync_ms > 60_000 {
            return Err(invalid("audit.fsync_ms", "must be 0..=60000"));
        }
        if self.batch_ms > 1_000 {
            return Err(invalid("audit.batch_ms", "must be 0..=1000"));
        }
        if self.sweep_ms == 0 {
            return Err(invalid("audit.sweep_ms", "must be positive"));
        }
        if !(1..=10_000).contains(&self.forward_batch) {
            return Err(invalid("audit.forward_batch", "must be 1..=10000 (the ingest limit per request)"));
        }
        if self.forward_poll_ms == 0 {
            return Err(invalid("audit.forward_poll_ms", "must be positive"));
        }
        if self.forward_retry_ms == 0 || self.forward_retry_ms > 60_000 {
            return Err(invalid("audit.forward_retry_ms", "must be 1..=60000"));
        }
        if !self.forward_url.is_empty() {
            let url = url::Url::parse(&self.forward_url).map_err(|_| invalid("audit.forward_url", "not a URL"))?;
            match url.scheme() {
                "https" => {}
                "http" if dev => {}
                _ => return Err(invalid("audit.forward_url", "must be https outside dev mode")),
            }
        }
        Ok(())
    }
}

/// `[logout]`: the back-channel outbox and the expiry broadcast.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutConfig {
    /// Broadcast a logout when a session times out.
    pub broadcast_on_expiry: bool,
    /// Timeout of one delivery attempt, milliseconds.
    pub attempt_timeout_ms: u64,
    /// Give up on a delivery this many seconds after it was queued.
    pub retry_horizon: i64,
    /// Longest wait between two attempts, seconds.
    pub max_backoff: i64,
    /// Deliveries in flight at once per instance.
    pub concurrency: usize,
    /// Deliveries in flight at once per instance to one receiver (back-channel URI), so a hung
    /// receiver holds only this many of the `concurrency` slots.
    pub per_receiver_concurrency: usize,
    /// Seconds a claimed delivery stays hidden from other instances; renewed while an attempt
    /// runs, so it is how long a dead instance's deliveries wait for another one.
    pub lease: i64,
    /// How often an idle worker looks for due deliveries, milliseconds.
    pub poll_ms: u64,
    /// How often the expiry sweeper looks for timed-out sessions, milliseconds.
    pub sweep_ms: u64,
}

/// `[metrics]`: the Prometheus scrape endpoint `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`; when false it answers 404 (counting goes on, it is cheap).
    pub enabled: bool,
    /// When non-empty, scrapes must send `Authorization: Bearer <token>`.
    pub token: String,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: String,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Maximum request body size in bytes.
    pub body_limit: usize,
    /// Plain HTTP allowed because a proxy terminates TLS.
    pub behind_tls_proxy: bool,
    /// Development mode.
    pub dev: bool,
    /// Seconds a client has to send a complete request head (and, on a new connection, to
    /// start its first request).
    pub header_timeout: u64,
    /// Seconds a connection with no request in flight is kept open.
    pub idle_timeout: u64,
    /// Seconds a request body has to arrive in full, from the end of its head; then 408.
    pub body_timeout: u64,
    /// Milliseconds within which every request is answered (JM-5); then 503.
    pub request_deadline_ms: u64,
    /// Connections served at once; connections beyond it are closed at once.
    pub max_connections: usize,
    /// HTTP/2: streams (requests) in flight at once on one connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: seconds between keep-alive pings (0: no pings).
    pub h2_keep_alive_interval: u64,
    /// HTTP/2: seconds a ping may go unanswered before the connection is closed.
    pub h2_keep_alive_timeout: u64,
    /// `Strict-Transport-Security` max-age in seconds on HTTPS responses (0: not sent).
    pub hsts_max_age: u64,
    /// Add `includeSubDomains` to `Strict-Transport-Security`.
    pub hsts_include_subdomains: bool,
    /// Shutdown: milliseconds between `/readyz` turning 503 and the listener closing, during
    /// which the instance keeps serving so balancers can stop sending.
    pub drain_grace_ms: u64,
    /// Shutdown: seconds requests in flight get to finish once the listener is closed.
    pub drain_secs: u64,
    /// Take a request's id from a sane `X-Request-Id` header (only behind a proxy that sets it).
    pub trust_request_id: bool,
    /// Seconds between checks that the bootstrap data from `[seed]` is still in the store.
    pub seed_check_secs: u64,
}

impl ServerConfig {
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        for (field, v) in [
            ("server.header_timeout", self.header_timeout),
            ("server.idle_timeout", self.idle_timeout),
            ("server.body_timeout", self.body_timeout),
            ("server.h2_keep_alive_timeout", self.h2_keep_alive_timeout),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(ConfigError::Invalid { field, reason: "must be 1..=3600 seconds".into() });
            }
        }
        if !(100..=60_000).contains(&self.request_deadline_ms) {
            return Err(invalid("server.request_deadline_ms", "must be 100..=60000 milliseconds"));
        }
        if self.h2_keep_alive_interval > 3600 {
            return Err(invalid("server.h2_keep_alive_interval", "must be 0..=3600 seconds"));
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(invalid("server.max_connections", "must be 1..=1000000"));
        }
        if !(1..=10_000).contains(&self.h2_max_concurrent_streams) {
            return Err(invalid("server.h2_max_concurrent_streams", "must be 1..=10000"));
        }
        if self.hsts_max_age > 2 * 31_536_000 {
            return Err(invalid("server.hsts_max_age", "must be 0..=63072000 seconds"));
        }
        if self.drain_grace_ms > 600_000 {
            return Err(invalid("server.drain_grace_ms", "must be 0..=600000 milliseconds"));
        }
        if !(1..=3600).contains(&self.drain_secs) {
            return Err(invalid("server.drain_secs", "must be 1..=3600 seconds"));
        }
        if !(1..=3600).contains(&self.seed_check_secs) {
            return Err(invalid("server.seed_check_secs", "must be 1..=3600 seconds"));
        }
        Ok(())
    }
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain path.
    pub cert: String,
    /// PEM private key path.
    pub key: String,
}

/// Which storage backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded, in-process.
    Memory,
    /// Redis, shared by instances.
    Redis,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The backend.
    pub backend: Backend,
    /// Production must opt in to the memory store.
    pub allow_memory: bool,
    /// Redis URL.
    pub redis_url: String,
    /// Key prefix.
    pub prefix: String,
    /// Per-call deadline in milliseconds.
    pub timeout_ms: u64,
    /// Redis deployment: from the URL's scheme, one server, Sentinel or Cluster.
    pub mode: RedisMode,
    /// Sentinel mode without a `redis+sentinel://` URL: the sentinels, as `host:port`.
    pub sentinels: Vec<String>,
    /// Sentinel mode without a `redis+sentinel://` URL: the master's name.
    pub master_name: String,
    /// Password of the sentinels themselves (empty: they ask for none).
    pub sentinel_password: String,
    /// How often to ask the sentinels whether the master moved, ms (0: only after a failed call).
    pub sentinel_check_ms: u64,
    /// Cluster mode: seed nodes as `redis://` or `rediss://` URLs (empty: `redis_url` alone).
    pub cluster_nodes: Vec<String>,
    /// PEM bundle of the CAs trusted for `rediss://` (empty: the public web PKI roots).
    pub tls_ca_file: String,
    /// PEM client certificate chain, for Redis servers that ask for one (`tls-auth-clients`).
    pub tls_cert_file: String,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: String,
}

/// How Redis is deployed (`store.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// From `redis_url`'s scheme: `redis+sentinel://` or `rediss+sentinel://` is Sentinel,
    /// anything else one server.
    Auto,
    /// One server (or a proxy that looks like one).
    Standalone,
    /// A master found through Redis Sentinel, followed across failovers.
    Sentinel,
    /// A Redis Cluster.
    Cluster,
}

/// `[keys]`: the key-encryption key that seals the shared key set in the store, and how often
/// an instance re-reads the set.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// Directory of the dev-mode KEK file and of a pre-store `keyset.json` to import.
    pub dir: PathBuf,
    /// Key-encryption keys, base64 of 32 bytes each, separated by commas: the first seals,
    /// all open. Usually from `TONGZHENG_KEYS__KEK`.
    pub kek: String,
    /// A file holding the key-encryption keys, one per line (first seals); instead of `kek`.
    pub kek_file: PathBuf,
    /// Seconds between two reads of the shared key set (a rotation anywhere is used this soon).
    pub refresh_secs: u64,
    /// Rotation policy in days: the metric `tongzheng_signing_key_next_rotation_timestamp_seconds`
    /// is an active key's creation plus this, and the shipped alert fires when it passes.
    pub rotation_days: u32,
}

impl std::fmt::Debug for KeysConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysConfig")
            .field("dir", &self.dir)
            .field("kek", &if self.kek.is_empty() { "" } else { "<redacted>" })
            .field("kek_file", &self.kek_file)
            .field("refresh_secs", &self.refresh_secs)
            .field("rotation_days", &self.rotation_days)
            .finish()
    }
}

/// What a production start without a key-encryption key is told.
pub const NO_KEK: &str = "production needs a key-encryption key for the key set in the store: set keys.kek_file \
     (a file operators provision) or the TONGZHENG_KEYS__KEK environment variable (base64 of 32 random bytes, \
     e.g. `openssl rand -base64 32`)";

impl KeysConfig {
    fn validate(&self, dev: bool) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        if !(1..=300).contains(&self.refresh_secs) {
            return Err(invalid("keys.refresh_secs", "must be 1..=300 seconds"));
        }
        if !(1..=3650).contains(&self.rotation_days) {
            return Err(invalid("keys.rotation_days", "must be 1..=3650 days"));
        }
        let file = !self.kek_file.as_os_str().is_empty();
        if !self.kek.is_empty() && file {
            return Err(invalid("keys.kek", "set keys.kek or keys.kek_file, not both"));
        }
        if !self.kek.is_empty() {
            crate::keys::kek::KekRing::parse(&self.kek).map_err(|e| invalid("keys.kek", &e))?;
        }
        if !dev && self.kek.is_empty() && !file {
            return Err(invalid("keys.kek", NO_KEK));
        }
        Ok(())
    }
}

/// `[tokens]`, all in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensConfig {
    /// Access token lifetime.
    pub access_token_ttl: i64,
    /// ID token lifetime.
    pub id_token_ttl: i64,
    /// Refresh token (family) lifetime.
    pub refresh_token_ttl: i64,
    /// Authorization code lifetime (at most 60).
    pub code_ttl: i64,
    /// Grace window for concurrent refresh retries.
    pub refresh_grace: i64,
    /// Lifetime of a remembered authorization request during login.
    pub login_ttl: i64,
    /// Entries of the verified-signature cache (0: none); they hold at most 1 KiB each on
    /// average (the decoded claims are kept).
    #[serde(default = "default_verified_cache_entries")]
    pub verified_cache_entries: usize,
}

fn default_verified_cache_entries() -> usize {
    crate::keys::DEFAULT_VERIFIED_ENTRIES
}

/// `[session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Idle timeout, seconds.
    pub idle_timeout: i64,
    /// Absolute timeout, seconds.
    pub absolute_timeout: i64,
    /// Session cookie name.
    pub cookie_name: String,
}

/// `[security]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Concurrent password hashes (0: cores - 1, at least 1).
    pub password_hash_concurrency: usize,
    /// How long a login waits for a hashing slot.
    pub password_queue_timeout_ms: u64,
    /// CPU priority of the hashing threads (issue 13: `idle` yields the core to requests).
    #[serde(default)]
    pub password_hash_priority: crate::passwords::HashPriority,
    /// argon2id memory per hash, KiB; hashing holds at most concurrency x this.
    pub argon2_memory_kib: u32,
    /// argon2id passes over the memory.
    pub argon2_iterations: u32,
    /// argon2id lanes.
    pub argon2_parallelism: u32,
    /// RFC 7591 initial access token; empty disables `/register`.
    pub initial_access_token: String,
    /// Scope that authorizes the admin API.
    pub admin_scope: String,
    /// Scope that authorizes reading the audit log (kept apart from the admin scope, so the
    /// people who administer and the people who audit can be different, 三员分立).
    pub audit_scope: String,
    /// Default page locale.
    pub default_locale: String,
    /// Pending logins (`/authorize` without a session) one browser may have; the oldest goes first.
    pub pending_logins_per_browser: usize,
    /// Pending logins on the whole platform; the oldest go first.
    pub pending_logins_total: usize,
}

/// `[guard]`: throttling of password and client-secret guessing (RFC 6749 s10.10, NIST SP
/// 800-63B s5.2.2); the rules are in [`crate::guard`]. Times in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Whether failures are counted and attempts throttled at all.
    pub enabled: bool,
    /// Length of a counting window; a failure counts for between one and two windows.
    pub window: i64,
    /// Failures from one client address (all accounts) before the address is held.
    pub ip_max_failures: u32,
    /// First hold of an address over its limit; doubles with each further failure, up to `window`.
    pub ip_delay: i64,
    /// Failures of one account from one address before growing delays (1 s, 2 s, 4 s ...).
    pub delay_after: u32,
    /// Failures before a temporary lockout.
    pub lock_after: u32,
    /// Longest growing delay.
    pub max_delay: i64,
    /// Lockout of a user account.
    pub lockout: i64,
    /// Lockout of a client (shorter: a client is a machine that retries).
    pub client_lockout: i64,
}

impl GuardConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: &str| Err(ConfigError::Invalid { field, reason: reason.into() });
        if !(60..=86_400).contains(&self.window) {
            return bad("guard.window", "must be 60..=86400 seconds");
        }
        if self.ip_max_failures == 0 {
            return bad("guard.ip_max_failures", "must be at least 1");
        }
        if !(1..=self.window).contains(&self.ip_delay) {
            return bad("guard.ip_delay", "must be 1..=window seconds");
        }
        if self.lock_after < 2 || self.lock_after > 100 {
            // NIST SP 800-63B s5.2.2: no more than 100 consecutive failed attempts.
            return bad("guard.lock_after", "must be 2..=100");
        }
        if self.delay_after == 0 || self.delay_after > self.lock_after {
            return bad("guard.delay_after", "must be 1..=lock_after");
        }
        if !(1..=3_600).contains(&self.max_delay) {
            return bad("guard.max_delay", "must be 1..=3600 seconds");
        }
        if !(1..=86_400).contains(&self.lockout) || !(1..=86_400).contains(&self.client_lockout) {
            return bad("guard.lockout", "lockout and client_lockout must be 1..=86400 seconds");
        }
        Ok(())
    }
}

/// `[seed]`: clients and users created at start when missing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {
    /// Clients.
    pub clients: Vec<SeedClient>,
    /// Users.
    pub users: Vec<SeedUser>,
}

/// A client to create at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedClient {
    /// client_id.
    pub client_id: String,
    /// Plain secret (dev only); hashed before it is stored.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// SHA-256 (hex) of the secret, for production configs.
    #[serde(default)]
    pub client_secret_sha256: Option<String>,
    /// Display name.
    pub name: String,
    /// Registered redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Client authentication method.
    pub token_endpoint_auth_method: String,
    /// Back-channel logout URI (OpenID Back-Channel Logout 1.0 s2.2); the token carries `sid`.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
}

/// A user to create at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    /// Login name.
    pub username: String,
    /// Plain password, hashed with argon2id before it is stored.
    pub password: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone_number: Option<String>,
}

/// Every secret `config/dev.toml` publishes: its initial access token, client secrets and user
/// passwords.
fn dev_secrets() -> Vec<String> {
    let Ok(dev) = parse_table(DEV, "dev") else { return Vec::new() };
    let text = |v: Option<&toml::Value>| v.and_then(toml::Value::as_str).map(str::to_owned);
    let mut out: Vec<String> =
        text(dev.get("security").and_then(|s| s.get("initial_access_token"))).into_iter().collect();
    let seed = dev.get("seed");
    for (list, field) in [("clients", "client_secret"), ("users", "password")] {
        let items = seed.and_then(|s| s.get(list)).and_then(toml::Value::as_array);
        out.extend(items.into_iter().flatten().filter_map(|c| text(c.get(field))));
    }
    out
}

fn parse_table(text: &str, what: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse(format!("{what}: {e}")))
}

/// Deep-merges `over` into `base`; arrays and scalars replace, tables merge.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Applies `TONGZHENG_A__B=value` variables: the value is read as TOML when it parses
/// (numbers, booleans, arrays), else as a string.
fn apply_env(base: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) {
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix("TONGZHENG_") else {
            continue;
        };
        // TONGZHENG_LOG is the log filter, read by the binary, not a config key.
        if path == "LOG" {
            continue;
        }
        // TONGZHENG_TEST_* are the chaos tests' fault injection (crate::logout::faults).
        if path.starts_with("TEST_") {
            continue;
        }
        let parts: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        set_path(base, &parts, value);
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                set_path(t, rest, value);
            }
        }
    }
}

impl Config {
    /// Loads defaults, then the dev overlay when `dev`, then `file`, then the environment.
    pub fn load(file: Option<&Path>, dev: bool) -> Result<Self, ConfigError> {
        Self::load_with_env(file, dev, std::env::vars())
    }

    /// As [`Config::load`], then `--listen` from the command line over everything else. The
    /// issuer is derived (dev mode, no issuer configured) from the listen address in effect.
    pub fn load_with_listen(file: Option<&Path>, dev: bool, listen: Option<&str>) -> Result<Self, ConfigError> {
        let mut table = Self::merged(file, dev, std::env::vars())?;
        if let Some(l) = listen {
            set_path(&mut table, &["server".to_owned(), "listen".to_owned()], toml::Value::String(l.to_owned()));
        }
        Self::from_table(table)
    }

    /// As [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        dev: bool,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::from_table(Self::merged(file, dev, env)?)
    }

    /// Defaults, dev overlay, file and environment, merged but not yet validated.
    fn merged(
        file: Option<&Path>,
        dev: bool,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<toml::Table, ConfigError> {
        let mut table = parse_table(DEFAULTS, "config/default.toml")?;
        if dev {
            merge(&mut table, parse_table(DEV, "config/dev.toml")?);
        }
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            merge(&mut table, parse_table(&text, &path.display().to_string())?);
        }
        apply_env(&mut table, env);
        Ok(table)
    }

    /// Parses an already-merged table and validates it.
    pub fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        let mut config: Config =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in defaults merged with `overlay` (TOML text), validated. For tests and tools.
    pub fn from_overlay(overlay: &str, dev: bool) -> Result<Self, ConfigError> {
        Self::from_overlays(&[overlay], dev)
    }

    /// The built-in defaults merged with each overlay in turn (later ones win), validated.
    pub fn from_overlays(overlays: &[&str], dev: bool) -> Result<Self, ConfigError> {
        let mut table = parse_table(DEFAULTS, "config/default.toml")?;
        if dev {
            merge(&mut table, parse_table(DEV, "config/dev.toml")?);
        }
        for overlay in overlays {
            merge(&mut table, parse_table(overlay, "overlay")?);
        }
        Self::from_table(table)
    }

    /// Checks every cross-field rule; fills the issuer from the listen address in dev mode.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        let listen: SocketAddr =
            self.server.listen.parse().map_err(|_| invalid("server.listen", "not an IP:port address"))?;
        if self.server.dev && !listen.ip().is_loopback() {
            return Err(invalid("server.listen", "dev mode serves plain HTTP on loopback only"));
        }
        if self.issuer.is_empty() {
            if !self.server.dev {
                return Err(invalid("issuer", "required outside dev mode"));
            }
            self.issuer = format!("http://{listen}");
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|_| invalid("issuer", "not a URL"))?;
        if self.issuer.ends_with('/') || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(invalid("issuer", "no trailing slash, query or fragment (OIDC Discovery s2)"));
        }
        if issuer.scheme() != "https" && !self.server.dev {
            return Err(invalid("issuer", "must be https outside dev mode"));
        }
        let tls = !self.tls.cert.is_empty() || !self.tls.key.is_empty();
        if tls && (self.tls.cert.is_empty() || self.tls.key.is_empty()) {
            return Err(invalid("tls", "cert and key go together"));
        }
        if !self.server.dev && !tls && !self.server.behind_tls_proxy {
            return Err(invalid(
                "tls.cert",
                "production needs TLS (tls.cert and tls.key) or server.behind_tls_proxy = true",
            ));
        }
        if self.store.backend == Backend::Memory && !self.server.dev && !self.store.allow_memory {
            return Err(invalid(
                "store.backend",
                "the memory store loses everything on restart; set store.allow_memory = true to use it outside dev",
            ));
        }
        if !(1..=60).contains(&self.tokens.code_ttl) {
            return Err(invalid("tokens.code_ttl", "must be 1..=60 seconds"));
        }
        for (field, v) in [
            ("tokens.access_token_ttl", self.tokens.access_token_ttl),
            ("tokens.id_token_ttl", self.tokens.id_token_ttl),
            ("tokens.refresh_token_ttl", self.tokens.refresh_token_ttl),
            ("tokens.login_ttl", self.tokens.login_ttl),
            ("session.idle_timeout", self.session.idle_timeout),
            ("session.absolute_timeout", self.session.absolute_timeout),
        ] {
            if v <= 0 {
                return Err(ConfigError::Invalid { field, reason: "must be positive".into() });
            }
        }
        if self.tokens.verified_cache_entries > 16 * 1024 * 1024 {
            return Err(invalid("tokens.verified_cache_entries", "at most 16777216 (16 GiB)"));
        }
        if !(0..=300).contains(&self.tokens.refresh_grace) {
            return Err(invalid("tokens.refresh_grace", "must be 0..=300 seconds"));
        }
        if self.store.timeout_ms == 0 || self.store.timeout_ms > 5_000 {
            return Err(invalid("store.timeout_ms", "must be 1..=5000"));
        }
        if self.store.prefix.contains(['{', '}']) {
            return Err(invalid(
                "store.prefix",
                "no braces: they would become the Redis Cluster hash tag of every key",
            ));
        }
        if self.store.sentinel_check_ms != 0 && !(100..=60_000).contains(&self.store.sentinel_check_ms) {
            return Err(invalid("store.sentinel_check_ms", "0 (off) or 100..=60000"));
        }
        if self.store.backend == Backend::Redis {
            crate::store::redis::target::Target::from_config(&self.store)
                .map_err(|(field, reason)| ConfigError::Invalid { field, reason })?;
        }
        if !matches!(self.security.default_locale.as_str(), "zh-CN" | "en") {
            return Err(invalid("security.default_locale", "zh-CN or en"));
        }
        self.branding.validate(self.server.dev)?;
        if !(1..=1000).contains(&self.security.pending_logins_per_browser) {
            return Err(invalid("security.pending_logins_per_browser", "must be 1..=1000"));
        }
        if !(1..=100_000_000).contains(&self.security.pending_logins_total) {
            return Err(invalid("security.pending_logins_total", "must be 1..=100000000"));
        }
        if let Err((field, reason)) = self.argon2().check() {
            return Err(invalid(field, reason));
        }
        if !self.security.initial_access_token.is_empty() && self.security.initial_access_token.len() < 16 {
            return Err(invalid("security.initial_access_token", "at least 16 characters"));
        }
        if !self.metrics.token.is_empty() && self.metrics.token.len() < 16 {
            return Err(invalid("metrics.token", "at least 16 characters"));
        }
        let l = &self.logout;
        if l.attempt_timeout_ms == 0 || l.attempt_timeout_ms > 60_000 {
            return Err(invalid("logout.attempt_timeout_ms", "must be 1..=60000"));
        }
        // The lease is renewed while an attempt runs, so it need not outlast the attempt.
        if !(2..=3600).contains(&l.lease) {
            return Err(invalid("logout.lease", "must be 2..=3600 seconds"));
        }
        if l.per_receiver_concurrency == 0 || l.per_receiver_concurrency > l.concurrency {
            return Err(invalid("logout.per_receiver_concurrency", "must be 1..=logout.concurrency"));
        }
        if l.retry_horizon <= 0 || l.max_backoff <= 0 || l.concurrency == 0 || l.poll_ms == 0 || l.sweep_ms == 0 {
            return Err(invalid(
                "logout",
                "retry_horizon, max_backoff, concurrency, poll_ms and sweep_ms must be positive",
            ));
        }
        crate::calendar::Calendar::from_config(&self.calendar)
            .map_err(|reason| ConfigError::Invalid { field: "calendar", reason })?;
        if !(1..=60).contains(&self.apps.rectification_days) || !(1..=60).contains(&self.apps.max_extension_days) {
            return Err(invalid("apps.rectification_days", "rectification_days and max_extension_days: 1..=60"));
        }
        if !(1..=60).contains(&self.apps.review_days) {
            return Err(invalid("apps.review_days", "must be 1..=60"));
        }
        if !(0..=30 * 86_400).contains(&self.apps.secret_overlap) {
            return Err(invalid("apps.secret_overlap", "must be 0..=2592000 seconds"));
        }
        let rl = &self.rate_limit;
        if !rl.default_per_second.is_finite() || rl.default_per_second < 0.0 || rl.default_per_second > 1e6 {
            return Err(invalid("rate_limit.default_per_second", "must be 0 (unlimited) ..= 1000000"));
        }
        if self.server.body_limit < 1024 {
            return Err(invalid("server.body_limit", "at least 1024 bytes"));
        }
        self.server.validate_limits()?;
        self.audit.validate(self.server.dev)?;
        self.directory.validate()?;
        if self.outbound.failure_cache_secs > 3600 {
            return Err(invalid("outbound.failure_cache_secs", "must be 0..=3600 seconds"));
        }
        self.guard.validate()?;
        self.keys.validate(self.server.dev)?;
        self.verify.validate(self.server.dev)?;
        // Every call and wait of one verification must fit in one request's deadline (JM-5).
        let v = &self.verify;
        let worst = v.timeout_ms * u64::from(v.retries + 1) + v.retry_backoff_ms * ((1u64 << v.retries) - 1);
        if v.verifier == crate::identity::verify::Kind::Http && worst >= self.server.request_deadline_ms {
            return Err(ConfigError::Invalid {
                field: "verify.timeout_ms",
                reason: format!(
                    "timeout_ms x (retries + 1) plus the backoff waits ({worst} ms) must stay under \
                     server.request_deadline_ms ({} ms)",
                    self.server.request_deadline_ms
                ),
            });
        }
        self.sms.validate(self.server.dev)?;
        self.otp.validate()?;
        for c in &self.seed.clients {
            if c.client_secret.is_some() && !self.server.dev {
                return Err(invalid(
                    "seed.clients.client_secret",
                    "plain secrets are for dev; use client_secret_sha256",
                ));
            }
        }
        if !self.server.dev {
            self.refuse_dev_secrets()?;
        }
        Ok(())
    }

    /// Outside dev mode: refuses the secrets `config/dev.toml` publishes (they are in the source
    /// and in every dev banner), unfilled hash placeholders, and seeded passwords that fail the
    /// password policy.
    fn refuse_dev_secrets(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        let published = dev_secrets();
        if published.contains(&self.security.initial_access_token) {
            return Err(invalid(
                "security.initial_access_token",
                "is the published dev token; generate one (openssl rand -base64 32) or leave it empty",
            ));
        }
        for c in &self.seed.clients {
            let Some(hash) = &c.client_secret_sha256 else { continue };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "seed.clients.client_secret_sha256",
                    "must be the SHA-256 of the secret in hex (64 digits): printf %s \"$SECRET\" | sha256sum",
                ));
            }
            if published.iter().any(|p| crate::crypto::sha256_hex(p.as_bytes()).eq_ignore_ascii_case(hash)) {
                return Err(invalid(
                    "seed.clients.client_secret_sha256",
                    "is the hash of a secret published in config/dev.toml; generate one (openssl rand -base64 32)",
                ));
            }
        }
        for u in &self.seed.users {
            if published.contains(&u.password) {
                return Err(invalid("seed.users.password", "is the dev demo password published in config/dev.toml"));
            }
            crate::users::check_password_policy(&u.password)
                .map_err(|reason| invalid("seed.users.password", reason))?;
        }
        Ok(())
    }

    /// argon2id parameters of new password hashes.
    pub fn argon2(&self) -> crate::passwords::HashParams {
        let s = &self.security;
        crate::passwords::HashParams {
            memory_kib: s.argon2_memory_kib,
            iterations: s.argon2_iterations,
            parallelism: s.argon2_parallelism,
        }
    }

    /// Concurrent password hashes allowed.
    pub fn hash_concurrency(&self) -> usize {
        match self.security.password_hash_concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_config_loads_and_derives_issuer() {
        let c = Config::load_with_env(None, true, std::iter::empty()).unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.store.backend, Backend::Memory);
        assert_eq!(c.seed.users.len(), 1);
    }

    #[test]
    fn listen_flag_moves_the_derived_issuer_even_with_a_config_file() {
        // Issue 9: `serve --dev --listen ADDR --config FILE` kept announcing 127.0.0.1:8080.
        let file = std::env::temp_dir().join(format!("tz-listen-{}.toml", std::process::id()));
        std::fs::write(&file, "[tokens]\naccess_token_ttl = 300\n").unwrap();
        let c = Config::load_with_listen(Some(&file), true, Some("127.0.0.2:9443")).unwrap();
        assert_eq!((c.server.listen.as_str(), c.issuer.as_str()), ("127.0.0.2:9443", "http://127.0.0.2:9443"));
        // A configured issuer stays what it is.
        std::fs::write(&file, "issuer = \"http://127.0.0.1:7000\"\n").unwrap();
        let c = Config::load_with_listen(Some(&file), true, Some("127.0.0.2:9443")).unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:7000");
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn env_overrides_nested_keys() {
        let env = [
            ("TONGZHENG_SERVER__LISTEN".to_owned(), "127.0.0.1:9999".to_owned()),
            ("TONGZHENG_TOKENS__ACCESS_TOKEN_TTL".to_owned(), "120".to_owned()),
        ];
        let c = Config::load_with_env(None, true, env.into_iter()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9999");
        assert_eq!(c.tokens.access_token_ttl, 120);
    }

    #[test]
    fn production_refuses_plain_http_and_memory() {
        let e = Config::from_overlay("issuer = \"https://id.example.gov.cn\"", false).unwrap_err();
        assert!(e.to_string().contains("tls.cert"), "{e}");
        let e = Config::from_overlay(
            "issuer = \"https://id.example.gov.cn\"\n[server]\nbehind_tls_proxy = true\n[store]\nbackend = \"memory\"",
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("store.backend"), "{e}");
    }

    #[test]
    fn guard_limits_are_checked() {
        // NIST SP 800-63B s5.2.2: at most 100 failures before a lockout.
        let e = Config::from_overlay("[guard]\nlock_after = 101", true).unwrap_err();
        assert!(e.to_string().contains("guard.lock_after"), "{e}");
        let e = Config::from_overlay("[guard]\ndelay_after = 11", true).unwrap_err();
        assert!(e.to_string().contains("guard.delay_after"), "{e}");
        assert_eq!(Config::from_overlay("", true).unwrap().guard.lock_after, 10);
    }

    #[test]
    fn metrics_defaults_and_token_length() {
        let c = Config::from_overlay("", true).unwrap();
        assert!(c.metrics.enabled);
        assert!(c.metrics.token.is_empty());
        let e = Config::from_overlay("[metrics]\ntoken = \"short\"", true).unwrap_err();
        assert!(e.to_string().contains("metrics.token"), "{e}");
    }

    #[test]
    fn audit_retention_below_six_months_is_refused() {
        // AY-8.5.2.1: logs kept at least 6 months.
        let e = Config::from_overlay("[audit]\nretention_days = 179", true).unwrap_err();
        assert!(e.to_string().contains("audit.retention_days"), "{e}");
        assert_eq!(Config::from_overlay("[audit]\nretention_days = 180", true).unwrap().audit.retention_days, 180);
    }

    #[test]
    fn audit_forwarding_needs_https_outside_dev() {
        // GB-6.8c
        let prod = "issuer = \"https://id.example.gov.cn\"\n[server]\nbehind_tls_proxy = true\n[audit]\nforward_url = \"http://up.example.gov.cn/ingest\"";
        let e = Config::from_overlay(prod, false).unwrap_err();
        assert!(e.to_string().contains("audit.forward_url"), "{e}");
        assert!(Config::from_overlay("[audit]\nforward_url = \"http://127.0.0.1:9/ingest\"", true).is_ok());
        let e = Config::from_overlay("[audit]\nutc_offset = \"8\"", true).unwrap_err();
        assert!(e.to_string().contains("audit.utc_offset"), "{e}");
    }

    #[test]
    fn production_example_parses() {
        // Its secret hashes are placeholders: refused, naming the field, until filled in.
        let example = include_str!("../config/production.example.toml");
        let e = Config::from_overlay(example, false).unwrap_err();
        assert!(e.to_string().contains("seed.clients.client_secret_sha256"), "{e}");
        let hash = crate::crypto::sha256_hex(b"a production admin secret, 0123456789");
        let filled = example.replace("replace-with-sha256-hex-of-the-secret", &hash);
        let c = Config::from_overlay(&filled, false).unwrap();
        assert_eq!(c.audit.dir, PathBuf::from("/var/lib/tongzheng/audit"));
        assert_eq!(c.audit.retention_days, 180);
    }

    // Issue 14: the secrets config/dev.toml publishes never work outside dev mode.
    #[test]
    fn production_refuses_published_dev_secrets() {
        let prod = "issuer = \"https://id.example.gov.cn\"\n[server]\nbehind_tls_proxy = true\n\
                    [store]\nbackend = \"memory\"\nallow_memory = true\n[keys]\nkek_file = \"/run/secrets/kek\"\n";
        assert!(Config::from_overlay(prod, false).is_ok());
        let token = format!("{prod}[security]\ninitial_access_token = \"dev-initial-access-token-change-me\"\n");
        let e = Config::from_overlay(&token, false).unwrap_err().to_string();
        assert!(e.contains("security.initial_access_token"), "{e}");
        let client = |hash: &str| {
            format!(
                "{prod}[[seed.clients]]\nclient_id = \"admin-cli\"\nclient_secret_sha256 = \"{hash}\"\nname = \"a\"\n\
                 grant_types = [\"client_credentials\"]\nscopes = [\"tongzheng:admin\"]\n\
                 token_endpoint_auth_method = \"client_secret_basic\"\n"
            )
        };
        let dev_hash = crate::crypto::sha256_hex(b"admin-cli-secret-0123456789abcdef");
        let e = Config::from_overlay(&client(&dev_hash), false).unwrap_err().to_string();
        assert!(e.contains("seed.clients.client_secret_sha256") && e.contains("dev.toml"), "{e}");
        let e = Config::from_overlay(&client("not-hex"), false).unwrap_err().to_string();
        assert!(e.contains("64 digits"), "{e}");
        let own = crate::crypto::sha256_hex(b"a production admin secret, 0123456789");
        assert!(Config::from_overlay(&client(&own), false).is_ok());
        let user = |pw: &str| format!("{prod}[[seed.users]]\nusername = \"u\"\npassword = \"{pw}\"\nname = \"U\"\n");
        let e = Config::from_overlay(&user("demo-password"), false).unwrap_err().to_string();
        assert!(e.contains("seed.users.password"), "{e}");
        let e = Config::from_overlay(&user("Password2026!"), false).unwrap_err().to_string();
        assert!(e.contains("too common"), "{e}");
        assert!(Config::from_overlay(&user("a long, unusual pass phrase"), false).is_ok());
        // Dev mode keeps its demo data.
        assert!(Config::from_overlay(&token, true).is_ok());
    }

    #[test]
    fn audit_offsets_parse() {
        let mut c = Config::from_overlay("", true).unwrap().audit;
        assert_eq!(c.offset(), time::UtcOffset::from_hms(8, 0, 0).ok());
        c.utc_offset = "-05:30".into();
        assert_eq!(c.offset(), time::UtcOffset::from_hms(-5, -30, 0).ok());
        for bad in ["+8:00", "+24:00", "08:00", "+08:60", ""] {
            c.utc_offset = bad.into();
            assert_eq!(c.offset(), None, "{bad}");
        }
    }

    #[test]
    fn federation_trusts_parse() {
        // DC-5: a city trusting its province, as in the README.
        let c = Config::from_overlay(
            "[[federation.trusts]]\nid = \"province\"\nrole = \"upstream\"\nissuer = \"https://id.province.gov.cn\"\n\
             name = \"省平台\"\nclient_id = \"city-platform\"\nclient_secret = \"s\"\nlink_by = \"preferred_username\"\n",
            true,
        )
        .unwrap();
        let t = &c.federation.trusts[0];
        assert_eq!(t.role, crate::federation::Role::Upstream);
        assert_eq!(t.link_by, Some(crate::federation::LinkBy::PreferredUsername));
        assert!(t.silent_login && t.enabled);
        let e = Config::from_overlay("[[federation.trusts]]\nid = \"x\"\nrole = \"sideways\"\n", true).unwrap_err();
        assert!(e.to_string().contains("sideways"), "{e}");
    }

    #[test]
    fn outbound_allow_list_parses() {
        // OWASP SSRF: internal peers are allowed by name or block, nothing else.
        let c = Config::from_overlay("[outbound]\nallow = [\"10.0.0.0/8\", \"peer.internal.gov.cn\"]", true).unwrap();
        assert_eq!(c.outbound.allow.len(), 2);
        assert_eq!(c.outbound.loopback, crate::outbound::Loopback::Dev);
        let e = Config::from_overlay("[outbound]\nallow = [\"10.0.0.0/40\"]", true).unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/40"), "{e}");
        let e = Config::from_overlay("[outbound]\nfailure_cache_secs = 7200", true).unwrap_err();
        assert!(e.to_string().contains("outbound.failure_cache_secs"), "{e}");
    }

    #[test]
    fn connection_limits_and_pending_caps_are_checked() {
        // Issue 9: defaults, and a zero timeout or cap names its field.
        let c = Config::from_overlay("", true).unwrap();
        assert_eq!((c.server.header_timeout, c.server.idle_timeout, c.server.body_timeout), (10, 60, 30));
        assert_eq!(c.server.max_connections, 10_000);
        assert_eq!(c.server.hsts_max_age, 31_536_000);
        assert!(!c.server.hsts_include_subdomains);
        assert_eq!((c.security.pending_logins_per_browser, c.security.pending_logins_total), (16, 100_000));
        for (overlay, field) in [
            ("[server]\nheader_timeout = 0", "server.header_timeout"),
            ("[server]\nbody_timeout = 0", "server.body_timeout"),
            ("[server]\nmax_connections = 0", "server.max_connections"),
            ("[security]\npending_logins_per_browser = 0", "security.pending_logins_per_browser"),
            ("[security]\npending_logins_total = 0", "security.pending_logins_total"),
        ] {
            let e = Config::from_overlay(overlay, true).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn production_needs_a_key_encryption_key() {
        // Issue 10: the key set in the store is sealed under a KEK operators provision.
        let prod = "issuer = \"https://id.example.gov.cn\"\n[server]\nbehind_tls_proxy = true\n";
        let e = Config::from_overlay(prod, false).unwrap_err();
        assert!(e.to_string().contains("keys.kek") && e.to_string().contains("TONGZHENG_KEYS__KEK"), "{e}");
        let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let env = [("TONGZHENG_KEYS__KEK".to_owned(), kek.to_owned())];
        let file = std::env::temp_dir().join(format!("tz-kek-{}.toml", std::process::id()));
        std::fs::write(&file, prod).unwrap();
        let c = Config::load_with_env(Some(&file), false, env.into_iter()).unwrap();
        assert_eq!(c.keys.kek, kek);
        assert!(!format!("{:?}", c.keys).contains(kek), "the KEK never reaches a log");
        std::fs::remove_file(file).ok();
        assert!(Config::from_overlay(&format!("{prod}[keys]\nkek_file = \"/run/secrets/kek\""), false).is_ok());
        let e = Config::from_overlay(&format!("{prod}[keys]\nkek = \"c2hvcnQ=\""), false).unwrap_err();
        assert!(e.to_string().contains("keys.kek") && e.to_string().contains("32 bytes"), "{e}");
        let both = format!("{prod}[keys]\nkek = \"{kek}\"\nkek_file = \"/run/secrets/kek\"");
        assert!(Config::from_overlay(&both, false).unwrap_err().to_string().contains("not both"));
        let e = Config::from_overlay("[keys]\nrefresh_secs = 0", true).unwrap_err();
        assert!(e.to_string().contains("keys.refresh_secs"), "{e}");
        assert_eq!(Config::from_overlay("", true).unwrap().keys.refresh_secs, 10);
    }

    #[test]
    fn branding_is_checked() {
        // JM-5.6, SH-D: a bad colour, logo or link fails at start, naming the field.
        let c = Config::from_overlay("", true).unwrap();
        assert_eq!(c.branding.primary_color, "#b91c1c");
        for (overlay, field) in [
            ("[branding]\nprimary_color = \"red\"", "branding.primary_color"),
            ("[branding]\nprimary_color = \"#12345g\"", "branding.primary_color"),
            ("[branding]\nname = \" \"", "branding.name"),
            ("[branding]\nlogo_url = \"javascript:alert(1)\"", "branding.logo_url"),
            ("[branding]\nlogo_url = \"data:text/html,x\"", "branding.logo_url"),
            ("[branding]\nprivacy_url = \"//evil.example/x\"", "branding.privacy_url"),
            ("[branding]\nhelp_url = \"javascript:x\"", "branding.help_url"),
        ] {
            let e = Config::from_overlay(overlay, true).unwrap_err();
            assert!(e.to_string().contains(field), "{overlay}: {e}");
        }
        let ok = "[branding]\nprimary_color = \"#0a5\"\nlogo_url = \"https://cdn.example.gov.cn/logo.png\"\n\
                  privacy_url = \"/privacy\"\nagreement_url = \"https://gov.example/terms\"";
        let c = Config::from_overlay(ok, true).unwrap();
        assert_eq!(c.branding.logo_origin().as_deref(), Some("https://cdn.example.gov.cn"));
        let data = "[branding]\nlogo_url = \"data:image/png;base64,iVBORw0KGgo=\"";
        assert_eq!(Config::from_overlay(data, true).unwrap().branding.logo_origin(), None);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = Config::from_overlay("[server]\nlisten_addr = \"x\"", true).unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
    }
}
