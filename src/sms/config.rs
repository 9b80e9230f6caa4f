//! `[sms]`: which sender delivers one-time codes and, for the HTTP gateway, where and how.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ConfigError;

/// Which sender `sms.sender` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    /// None: pages that need a code say the service is unavailable.
    Off,
    /// Codes written to the log (and `dev_outbox`); refused outside dev mode.
    Dev,
    /// The HTTP SMS gateway (SH-A.2).
    Http,
}

/// `[sms]` settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// `off`, `dev` or `http`.
    pub sender: SenderKind,
    /// Dev sender only: each message is also appended to this file as a JSON line.
    pub dev_outbox: PathBuf,
    /// The gateway's send endpoint (https outside dev mode).
    pub gateway_url: String,
    /// Bearer token presented to the gateway.
    pub gateway_token: String,
    /// The gateway's template id of the registration code message.
    pub template_signup: String,
    /// The gateway's template id of the password-reset code message.
    pub template_reset: String,
    /// SMS signature (短信签名) sent with every message; empty: the gateway's default.
    pub sign_name: String,
    /// Deadline of one gateway call, milliseconds.
    pub timeout_ms: u64,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("sender", &self.sender)
            .field("gateway_url", &self.gateway_url)
            .field("gateway_token", &if self.gateway_token.is_empty() { "" } else { "<redacted>" })
            .finish_non_exhaustive()
    }
}

impl SmsConfig {
    /// Fails fast naming the field: the dev sender outside dev mode, an incomplete gateway.
    pub fn validate(&self, dev: bool) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        match self.sender {
            SenderKind::Dev if !dev => {
                return Err(invalid("sms.sender", "the dev sender writes codes to the log: dev mode only"));
            }
            SenderKind::Http => {
                let url = url::Url::parse(&self.gateway_url).map_err(|_| invalid("sms.gateway_url", "not a URL"))?;
                if url.scheme() != "https" && !(dev && url.scheme() == "http") {
                    return Err(invalid("sms.gateway_url", "must be https outside dev mode"));
                }
                if self.template_signup.is_empty() || self.template_reset.is_empty() {
                    return Err(invalid("sms.template_signup", "template_signup and template_reset are required"));
                }
            }
            SenderKind::Off | SenderKind::Dev => {}
        }
        if !self.dev_outbox.as_os_str().is_empty() && !dev {
            return Err(invalid("sms.dev_outbox", "dev mode only (it holds one-time codes)"));
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            return Err(invalid("sms.timeout_ms", "must be 100..=30000"));
        }
        Ok(())
    }
}
