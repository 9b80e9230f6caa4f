//! A client's token exchange policy (RFC 8693 s2.1, s5 "the authorization server ... decides"):
//! which issuers' tokens it may present and which audiences it may ask for. Set by an admin
//! only; a client without one cannot exchange (AY-7.1 least privilege).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most issuers or audiences one policy may list.
pub const MAX_ENTRIES: usize = 50;

/// What one client may exchange (RFC 8693 s2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangePolicy {
    /// Issuers whose subject and actor tokens the client may present: trusted platforms'
    /// issuers, and this platform's own issuer if local tokens may be exchanged too.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// The `audience` (logical name: an API's URI or its client_id) and `resource` (absolute
    /// URI) values the client may ask tokens for.
    #[serde(default)]
    pub audiences: Vec<String>,
}

impl ExchangePolicy {
    /// Whether tokens issued by `iss` may be presented.
    pub fn allows_issuer(&self, iss: &str) -> bool {
        self.issuers.iter().any(|i| i == iss)
    }
    /// Whether a token for `target` may be asked for (exact string comparison).
    pub fn allows_audience(&self, target: &str) -> bool {
        self.audiences.iter().any(|a| a == target)
    }
    /// Checks the fields; the message names the bad one. Issuers are absolute http(s) URLs;
    /// audiences are absolute URIs or client_id-shaped identifiers; at most 50 of each.
    pub fn validate(&self) -> Result<(), String> {
        if self.issuers.len() > MAX_ENTRIES || self.audiences.len() > MAX_ENTRIES {
            return Err(format!("token_exchange: at most {MAX_ENTRIES} issuers and {MAX_ENTRIES} audiences"));
        }
        for i in &self.issuers {
            let ok = i.len() <= 2048
                && url::Url::parse(i).is_ok_and(|u| {
                    matches!(u.scheme(), "https" | "http") && u.fragment().is_none() && u.query().is_none()
                });
            if !ok || i.ends_with('/') {
                return Err(format!("token_exchange.issuers: '{i}' is not an issuer URL (no trailing slash)"));
            }
        }
        for a in &self.audiences {
            if !(valid_uri(a) || crate::apps::valid_id(a)) {
                return Err(format!("token_exchange.audiences: '{a}' is neither an absolute URI nor an id"));
            }
        }
        Ok(())
    }
}

/// An absolute URI without a fragment (RFC 8707 s2, RFC 3986 s4.3).
pub fn valid_uri(s: &str) -> bool {
    s.len() <= 2048 && s.contains(':') && url::Url::parse(s).is_ok_and(|u| u.fragment().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let ok = ExchangePolicy {
            issuers: vec!["https://a.example.gov.cn".into()],
            audiences: vec!["https://api.tax.example.gov.cn".into(), "tax-api".into()],
        };
        assert!(ok.validate().is_ok());
        let bad = ExchangePolicy { issuers: vec!["not a url".into()], ..ok.clone() };
        assert!(bad.validate().unwrap_err().contains("issuers"));
        let bad = ExchangePolicy { issuers: vec!["https://a.example/".into()], ..ok.clone() };
        assert!(bad.validate().is_err(), "issuers are compared exactly; no trailing slash");
        let bad = ExchangePolicy { audiences: vec!["has space".into()], ..ok.clone() };
        assert!(bad.validate().unwrap_err().contains("audiences"));
        let bad = ExchangePolicy { audiences: vec!["https://api.example/#frag".into()], ..ok.clone() };
        assert!(bad.validate().is_err());
        let bad = ExchangePolicy { audiences: (0..51).map(|i| format!("api-{i}")).collect(), ..ok };
        assert!(bad.validate().is_err());
    }
}
