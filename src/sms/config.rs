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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const PROD: &str = "issuer = \"https://id.example.gov.cn\"\n[server]\nbehind_tls_proxy = true\n\
                        [keys]\nkek = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n";

    #[test]
    fn the_dev_sender_is_for_dev_mode_only() {
        // SH-8.2: codes in the log only where nothing is real.
        let e = Config::from_overlay(&format!("{PROD}[sms]\nsender = \"dev\"\n"), false).unwrap_err();
        assert!(e.to_string().contains("sms.sender"), "{e}");
        let e = Config::from_overlay(&format!("{PROD}[sms]\ndev_outbox = \"/tmp/x\"\n"), false).unwrap_err();
        assert!(e.to_string().contains("sms.dev_outbox"), "{e}");
        assert!(Config::from_overlay("[sms]\nsender = \"dev\"\n", true).is_ok());
        assert_eq!(Config::from_overlay("", true).unwrap().sms.sender, super::SenderKind::Dev);
        assert_eq!(Config::from_overlay(PROD, false).unwrap().sms.sender, super::SenderKind::Off);
    }

    #[test]
    fn the_gateway_needs_https_and_templates() {
        // SH-A.2
        let http = "[sms]\nsender = \"http\"\ngateway_url = \"http://sms.example.gov.cn/send\"\n\
                    template_signup = \"A\"\ntemplate_reset = \"B\"\n";
        let e = Config::from_overlay(&format!("{PROD}{http}"), false).unwrap_err();
        assert!(e.to_string().contains("sms.gateway_url"), "{e}");
        let ok = http.replace("http://sms", "https://sms");
        let c = Config::from_overlay(&format!("{PROD}{ok}\ngateway_token = \"secret-token\"\n"), false).unwrap();
        assert!(!format!("{:?}", c.sms).contains("secret-token"), "the token never reaches a log");
        let e = Config::from_overlay(&format!("{PROD}{}", ok.replace("template_reset = \"B\"\n", "")), false);
        assert!(e.unwrap_err().to_string().contains("sms.template_signup"));
        let e = Config::from_overlay("[otp]\nmax_tries = 0\n", true).unwrap_err();
        assert!(e.to_string().contains("otp.max_tries"), "{e}");
    }
}
