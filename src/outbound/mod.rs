//! Outgoing requests (OWASP SSRF Prevention Cheat Sheet, RFC 7591 s5): the policy of which
//! destinations the server itself may connect to, the one HTTP client that enforces it on the
//! resolved address at connect time, bounded body reads, and a fetch cache that remembers failures.

pub mod addr;
pub mod body;
pub mod cache;
pub mod client;

use std::net::IpAddr;

use serde::Deserialize;

use crate::config::OutboundConfig;
use addr::{Cidr, Class};
pub use body::{BodyError, read_limited};

/// Whether loopback destinations (127.0.0.0/8, ::1) are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loopback {
    /// In dev mode only (tests and the demo use receivers on 127.0.0.1).
    Dev,
    /// Always (a single-host deployment whose peers share the machine).
    Allow,
    /// Never, not even in dev mode.
    Refuse,
}

/// One entry of `outbound.allow`: a CIDR block or address, or a host name (`*.` for its
/// subdomains) whose addresses are all allowed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Allowed {
    /// Addresses in this block.
    Net(Cidr),
    /// This host name, lowercase, without a trailing dot.
    Host(String),
}

impl TryFrom<String> for Allowed {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.contains('/') || s.parse::<IpAddr>().is_ok() {
            return s.parse().map(Self::Net);
        }
        let host = s.trim_end_matches('.').to_ascii_lowercase();
        let name = host.strip_prefix("*.").unwrap_or(&host);
        let label_ok =
            |l: &str| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!("outbound.allow: '{s}' is neither a CIDR block nor a host name"));
        }
        Ok(Self::Host(host))
    }
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The URL does not parse or has no host.
    #[error("not an absolute URL with a host")]
    NotUrl,
    /// The address (or every address the name resolved to) is not a public one.
    #[error("the server does not connect to loopback, private, link-local or reserved addresses")]
    NotPublic,
}

/// Which destinations this instance may connect to.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: Vec<Allowed>,
    loopback: bool,
}

impl Policy {
    /// The policy of `config`; `dev` is `server.dev`.
    pub fn new(config: &OutboundConfig, dev: bool) -> Self {
        let loopback = match config.loopback {
            Loopback::Dev => dev,
            Loopback::Allow => true,
            Loopback::Refuse => false,
        };
        Self { allow: config.allow.clone(), loopback }
    }

    /// Whether the server may connect to `ip`: listed in `outbound.allow`, public, or
    /// loopback when loopback is allowed. IPv6 forms of IPv4 addresses are judged as IPv4.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        if self.allow.iter().any(|a| matches!(a, Allowed::Net(n) if n.contains(ip))) {
            return true;
        }
        match addr::classify(ip) {
            Class::Public => true,
            Class::Loopback => self.loopback,
            Class::NonPublic => false,
        }
    }

    /// Whether `host` is named in `outbound.allow` (all its addresses are then allowed).
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allow.iter().any(|a| match a {
            Allowed::Host(h) => match h.strip_prefix("*.") {
                Some(suffix) => host.strip_suffix(suffix).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                None => *h == host,
            },
            Allowed::Net(_) => false,
        })
    }

    /// The early check of a URL the server will fetch or post to (at registration): an address
    /// literal must be allowed, and so must `localhost` names (RFC 6761 s6.3). Other names are
    /// judged on their resolved addresses when the request is made.
    pub fn check_url(&self, url: &str) -> Result<(), Refused> {
        let u = url::Url::parse(url).map_err(|_| Refused::NotUrl)?;
        let ok = match u.host().ok_or(Refused::NotUrl)? {
            url::Host::Ipv4(ip) => self.allows_ip(ip.into()),
            url::Host::Ipv6(ip) => self.allows_ip(ip.into()),
            url::Host::Domain(d) => {
                let d = d.trim_end_matches('.');
                let local = d == "localhost" || d.ends_with(".localhost");
                !local || self.loopback || self.allows_host(d)
            }
        };
        if ok { Ok(()) } else { Err(Refused::NotPublic) }
    }
}

/// RFC 7591 s5, OWASP SSRF: refuses a client whose `jwks_uri` or `backchannel_logout_uri` the
/// server could not fetch or post to under `policy`, as `invalid_client_metadata`. The
/// front-channel logout URI is loaded by the user's browser, not by the server.
pub fn check_client(policy: &Policy, client: &crate::clients::Client) -> Result<(), crate::error::OAuthError> {
    for (name, uri) in [("jwks_uri", &client.jwks_uri), ("backchannel_logout_uri", &client.backchannel_logout_uri)] {
        if let Some(uri) = uri {
            policy.check_url(uri).map_err(|e| {
                crate::error::OAuthError::new(crate::error::ErrorCode::InvalidClientMetadata, format!("{name}: {e}"))
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
