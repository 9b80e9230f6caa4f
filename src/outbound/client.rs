//! The one outgoing HTTP client of an instance. Every host name it resolves is filtered by the
//! [`Policy`], so the check is on the address actually connected to (a name rebound to
//! 127.0.0.1 after registration is still refused); address literals, which reqwest connects to
//! without resolving, are checked by a connect-time hook; redirects are never followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{Policy, Refused};

/// Where a refused address literal is "proxied": a `.invalid` name never resolves (RFC 6761
/// s6.4), and [`Guard`] refuses it before any lookup, so the request fails before connecting.
const REFUSED_HOST: &str = "refused-by-outbound-policy.invalid";

/// The resolver: the system's, keeping only the addresses the policy allows.
struct Guard(Arc<Policy>);

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if host == REFUSED_HOST {
                return Err(Refused::NotPublic.into());
            }
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let named = policy.allows_host(&host);
            let allowed: Vec<SocketAddr> = found.filter(|a| named || policy.allows_ip(a.ip())).collect();
            if allowed.is_empty() {
                tracing::warn!(%host, "outgoing request refused: the name resolves to no allowed address");
                return Err(Refused::NotPublic.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The hook for address literals: reqwest asks it, with the destination, before every
/// connection; a refused address is sent to [`REFUSED_HOST`], which cannot be connected to.
fn literal_hook(policy: Arc<Policy>) -> reqwest::Proxy {
    reqwest::Proxy::custom(move |url| {
        let ip: IpAddr = match url.host()? {
            url::Host::Ipv4(ip) => ip.into(),
            url::Host::Ipv6(ip) => ip.into(),
            url::Host::Domain(_) => return None,
        };
        if policy.allows_ip(ip) {
            return None;
        }
        tracing::warn!(%ip, "outgoing request refused: the address is not allowed");
        Some(format!("http://{REFUSED_HOST}"))
    })
}

/// The instance's outgoing client: policy-checked connections, 3 s to connect, 5 s per
/// request, no redirects. Its hook replaces the system proxy settings (`HTTP_PROXY`), which
/// would otherwise resolve and connect on our behalf, past the policy.
pub fn build(policy: Policy) -> Result<reqwest::Client, reqwest::Error> {
    let policy = Arc::new(policy);
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Guard(policy.clone())))
        .proxy(literal_hook(policy))
        .build()
}
