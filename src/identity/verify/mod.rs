//! Real-name verification (GB-6.4a, HL-6.1): a [`Verifier`] answers whether a name and an ID
//! number belong together. Two implementations: [`builtin`] (formats and check digits only) and
//! [`http`] (a configured real-name service, with timeouts, retries and an audit record of every
//! call). [`flow`] is the step a person takes at `/verify`.

pub mod builtin;
pub mod flow;
pub mod http;

use std::sync::Arc;

use serde::Deserialize;

use super::IdType;
use crate::audit::Audit;
use crate::config::VerifyConfig;

/// Which verifier the configuration names (`verify.verifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Formats and check digits only.
    Builtin,
    /// The real-name service at `verify.url`.
    Http,
}

/// What is checked: a person's name and identity document. Its `Debug` never shows the number.
pub struct Claim<'a> {
    /// The name as on the document.
    pub name: &'a str,
    /// The document type.
    pub id_type: IdType,
    /// The document number, normalised ([`builtin::check`]).
    pub id_number: &'a str,
    /// The account asking (for the audit record).
    pub subject: &'a str,
    /// A keyed hash of the number (the audit record's reference to it; never the number).
    pub id_ref: &'a str,
    /// The client whose request led here, if any.
    pub client_id: Option<&'a str>,
}

impl std::fmt::Debug for Claim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("id_type", &self.id_type).field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// The answer about a name and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// They belong together.
    Match,
    /// The number exists under another name.
    Mismatch,
    /// The service knows no such number.
    NoRecord,
}

impl Verdict {
    /// The wire value (the service's `result`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Mismatch => "mismatch",
            Self::NoRecord => "no_record",
        }
    }
}

/// A verifier's answer with what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The answer.
    pub verdict: Verdict,
    /// Whether the service billed the answer.
    pub billed: bool,
    /// Calls made (retries included).
    pub calls: u32,
}

/// Why no answer could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The input is malformed (format or check digit): the person can correct it.
    #[error("{0}")]
    Malformed(&'static str),
    /// The service could not be reached or answered badly, after the retries.
    #[error("the real-name service is unavailable: {0}")]
    Unavailable(String),
}

/// Checks names against identity documents.
#[async_trait::async_trait]
pub trait Verifier: Send + Sync {
    /// Who verifies, as recorded in `Verification::by`.
    fn name(&self) -> &str;
    /// The method a match is recorded with.
    fn method(&self) -> super::VerifyMethod {
        super::VerifyMethod::RealNameService
    }
    /// Checks `claim`.
    async fn verify(&self, claim: &Claim<'_>) -> Result<Checked, VerifyError>;
}

/// The shared handle on the configured verifier.
pub type DynVerifier = Arc<dyn Verifier>;

/// The verifier `config` names; `http` is the instance's outgoing client (outbound policy).
/// Fails, naming the field, when the credential file cannot be read.
pub fn build(config: &VerifyConfig, http: reqwest::Client, audit: Audit) -> Result<DynVerifier, String> {
    Ok(match config.verifier {
        Kind::Builtin => Arc::new(builtin::Builtin { name: config.name.clone() }),
        Kind::Http => Arc::new(http::HttpVerifier::new(config, http, audit)?),
    })
}

/// A name as typed: trimmed, 1-64 characters, no control characters.
pub fn check_name(name: &str) -> Result<&str, VerifyError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control) {
        return Err(VerifyError::Malformed("the name must be 1-64 characters"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn config_is_checked_at_start() {
        let http = "[verify]\nverifier = \"http\"\n";
        let e = Config::from_overlay(http, true).unwrap_err();
        assert!(e.to_string().contains("verify.url"), "{e}");
        let ok = format!("{http}url = \"http://127.0.0.1:9/v\"\n");
        assert!(Config::from_overlay(&ok, true).is_ok());
        let both = format!("{ok}token = \"t\"\ntoken_file = \"/run/secrets/t\"\n");
        assert!(Config::from_overlay(&both, true).unwrap_err().to_string().contains("verify.token"));
        // JM-5: 3 calls of 2 s do not fit in a 4.5 s request deadline.
        let slow = format!("{ok}timeout_ms = 2000\n");
        assert!(Config::from_overlay(&slow, true).unwrap_err().to_string().contains("request_deadline_ms"));
    }

    #[tokio::test]
    async fn the_credential_file_is_read_at_start() {
        let file = std::env::temp_dir().join(format!("tz-verify-token-{}", std::process::id()));
        std::fs::write(&file, "s3cret-token\nignored\n").unwrap();
        let overlay = format!(
            "[verify]\nverifier = \"http\"\nurl = \"http://127.0.0.1:9/v\"\ntoken_file = \"{}\"\n",
            file.display()
        );
        let config = Config::from_overlay(&overlay, true).unwrap();
        assert!(!format!("{:?}", config.verify).contains("s3cret"));
        let v = http::HttpVerifier::new(&config.verify, reqwest::Client::new(), Audit::disabled()).unwrap();
        assert_eq!(v.token_for_test(), Some("s3cret-token"));
        std::fs::remove_file(&file).unwrap();
        let e = build(&config.verify, reqwest::Client::new(), Audit::disabled()).err().unwrap();
        assert!(e.contains("verify.token_file"), "{e}");
    }
}
