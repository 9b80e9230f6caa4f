//! Where the Redis backend connects, read from `[store]`: one server, the master a set of
//! sentinels names, or a Redis Cluster, plus the TLS material for `rediss://`.

use crate::config::{RedisMode, StoreConfig};

/// What a bad `[store]` looks like: the field at fault and why.
pub type TargetError = (&'static str, String);

/// The shape of the Redis deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server (`redis://`, `rediss://`, `unix://`), by URL.
    Standalone(String),
    /// The master named `master_name`, as the sentinels report it.
    Sentinel(SentinelTarget),
    /// A Redis Cluster, by seed node URLs.
    Cluster(Vec<String>),
}

/// A Sentinel-managed master.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// The sentinels, `host:port`.
    pub sentinels: Vec<(String, u16)>,
    /// The master's name in the sentinels' configuration.
    pub master_name: String,
    /// TLS to the sentinels and to the master.
    pub tls: bool,
    /// The master's ACL user, if any.
    pub username: Option<String>,
    /// The master's password, if any.
    pub password: Option<String>,
    /// The database number on the master.
    pub db: i64,
    /// The sentinels' own password, if any.
    pub sentinel_password: Option<String>,
    /// How often to ask the sentinels whether the master moved, in milliseconds (0: only after
    /// a failed call).
    pub check_ms: u64,
}

impl std::fmt::Debug for SentinelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Passwords are never printed.
        f.debug_struct("SentinelTarget")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("check_ms", &self.check_ms)
            .finish_non_exhaustive()
    }
}

/// TLS files from `[store]` (paths; empty when not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA bundle replacing the public roots.
    pub ca_file: String,
    /// PEM client certificate chain.
    pub cert_file: String,
    /// PEM client private key.
    pub key_file: String,
}

/// A parsed Redis target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The deployment.
    pub topology: Topology,
    /// TLS material, used by `rediss` connections.
    pub tls: TlsFiles,
}

/// `store.sentinel_check_ms` by default, and for a bare `redis+sentinel://` URL.
pub const DEFAULT_SENTINEL_CHECK_MS: u64 = 1000;

fn bad(field: &'static str, reason: impl Into<String>) -> TargetError {
    (field, reason.into())
}

fn is_sentinel_url(url: &str) -> bool {
    url.starts_with("redis+sentinel://") || url.starts_with("rediss+sentinel://")
}

impl Target {
    /// A target from a bare URL in automatic mode (no TLS files): what
    /// [`RedisStore::connect`](super::RedisStore::connect) takes.
    pub fn from_url(url: &str) -> Result<Self, TargetError> {
        let topology =
            if is_sentinel_url(url) { Topology::Sentinel(parse_sentinel_url(url)?) } else { standalone(url)? };
        Ok(Self { topology, tls: TlsFiles::default() })
    }

    /// The target `[store]` describes; the error names the field at fault.
    pub fn from_config(c: &StoreConfig) -> Result<Self, TargetError> {
        let tls = TlsFiles {
            ca_file: c.tls_ca_file.clone(),
            cert_file: c.tls_cert_file.clone(),
            key_file: c.tls_key_file.clone(),
        };
        if tls.cert_file.is_empty() != tls.key_file.is_empty() {
            return Err(bad("store.tls_cert_file", "tls_cert_file and tls_key_file go together"));
        }
        let sentinel_block = !c.sentinels.is_empty() || !c.master_name.is_empty();
        let mode = match c.mode {
            RedisMode::Auto if sentinel_block => RedisMode::Sentinel,
            RedisMode::Auto if is_sentinel_url(&c.redis_url) => RedisMode::Sentinel,
            RedisMode::Auto if !c.cluster_nodes.is_empty() => RedisMode::Cluster,
            RedisMode::Auto => RedisMode::Standalone,
            m => m,
        };
        if mode != RedisMode::Sentinel && sentinel_block {
            return Err(bad("store.sentinels", "sentinels and master_name are for mode = \"sentinel\""));
        }
        if mode != RedisMode::Cluster && !c.cluster_nodes.is_empty() {
            return Err(bad("store.cluster_nodes", "cluster_nodes are for mode = \"cluster\""));
        }
        let topology = match mode {
            RedisMode::Sentinel => Topology::Sentinel(sentinel_from_config(c)?),
            RedisMode::Cluster => {
                let nodes =
                    if c.cluster_nodes.is_empty() { vec![c.redis_url.clone()] } else { c.cluster_nodes.clone() };
                for n in &nodes {
                    if !(n.starts_with("redis://") || n.starts_with("rediss://")) || url::Url::parse(n).is_err() {
                        return Err(bad(
                            "store.cluster_nodes",
                            format!("not a redis:// or rediss:// URL: {}", redact(n)),
                        ));
                    }
                }
                if nodes.iter().any(|n| n.starts_with("rediss://")) != nodes.iter().all(|n| n.starts_with("rediss://"))
                {
                    return Err(bad("store.cluster_nodes", "all nodes use TLS (rediss://) or none does"));
                }
                Topology::Cluster(nodes)
            }
            RedisMode::Standalone | RedisMode::Auto => {
                if is_sentinel_url(&c.redis_url) {
                    return Err(bad(
                        "store.redis_url",
                        "a redis+sentinel:// URL needs mode = \"sentinel\" or \"auto\"",
                    ));
                }
                standalone(&c.redis_url)?
            }
        };
        let target = Self { topology, tls };
        if (!target.tls.ca_file.is_empty() || !target.tls.cert_file.is_empty()) && !target.uses_tls() {
            return Err(bad("store.tls_ca_file", "TLS files need a TLS URL (rediss://, rediss+sentinel://)"));
        }
        Ok(target)
    }

    /// True when the connections use TLS.
    pub fn uses_tls(&self) -> bool {
        match &self.topology {
            Topology::Standalone(url) => url.starts_with("rediss://"),
            Topology::Sentinel(s) => s.tls,
            Topology::Cluster(nodes) => nodes.iter().any(|n| n.starts_with("rediss://")),
        }
    }
}

/// A URL with its password replaced, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".into(),
    }
}

fn standalone(url: &str) -> Result<Topology, TargetError> {
    redis::Client::open(url).map_err(|e| bad("store.redis_url", format!("{}: {e}", redact(url))))?;
    Ok(Topology::Standalone(url.to_owned()))
}

fn host_port(s: &str, field: &'static str) -> Result<(String, u16), TargetError> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad(field, format!("`{s}` is not host:port")))?;
    let port = port.parse().map_err(|_| bad(field, format!("`{s}`: bad port")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad(field, format!("`{s}`: no host")));
    }
    Ok((host.to_owned(), port))
}

/// `redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]`.
fn parse_sentinel_url(url: &str) -> Result<SentinelTarget, TargetError> {
    const FIELD: &str = "store.redis_url";
    let (tls, rest) = match url.strip_prefix("rediss+sentinel://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("redis+sentinel://").unwrap_or(url)),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let sentinels =
        hosts.split(',').filter(|h| !h.is_empty()).map(|h| host_port(h, FIELD)).collect::<Result<Vec<_>, _>>()?;
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let master_name = parts.next().unwrap_or_default().to_owned();
    let db = match parts.next() {
        Some(db) => db.parse().map_err(|_| bad(FIELD, "the part after the master name is the database number"))?,
        None => 0,
    };
    // The redis crate's own URL parser decodes the user information (percent-encoding).
    let (username, password) = match userinfo {
        Some(u) => {
            let info = redis::IntoConnectionInfo::into_connection_info(format!("redis://{u}@localhost/").as_str())
                .map_err(|_| bad(FIELD, "unparsable user information"))?;
            let r = info.redis_settings();
            (r.username().map(str::to_owned), r.password().map(str::to_owned))
        }
        None => (None, None),
    };
    let target = SentinelTarget {
        sentinels,
        master_name,
        tls,
        username,
        password,
        db,
        sentinel_password: None,
        check_ms: DEFAULT_SENTINEL_CHECK_MS,
    };
    check_sentinel(target, FIELD)
}

fn check_sentinel(t: SentinelTarget, field: &'static str) -> Result<SentinelTarget, TargetError> {
    if t.sentinels.is_empty() {
        return Err(bad(field, "Sentinel needs at least one sentinel host:port"));
    }
    if t.master_name.is_empty() {
        return Err(bad(field, "Sentinel needs the master's name"));
    }
    Ok(t)
}

fn sentinel_from_config(c: &StoreConfig) -> Result<SentinelTarget, TargetError> {
    let mut t = if c.sentinels.is_empty() && c.master_name.is_empty() {
        if !is_sentinel_url(&c.redis_url) {
            return Err(bad(
                "store.sentinels",
                "mode = \"sentinel\" needs sentinels and master_name, or a redis+sentinel:// URL",
            ));
        }
        parse_sentinel_url(&c.redis_url)?
    } else {
        if is_sentinel_url(&c.redis_url) {
            return Err(bad("store.redis_url", "give the sentinels either in redis_url or in sentinels, not both"));
        }
        // The block names the sentinels; redis_url gives the master's credentials, db and TLS.
        let node = url::Url::parse(&c.redis_url).map_err(|_| bad("store.redis_url", "not a URL"))?;
        let info = redis::IntoConnectionInfo::into_connection_info(c.redis_url.as_str())
            .map_err(|e| bad("store.redis_url", format!("{}: {e}", redact(&c.redis_url))))?;
        let sentinels = c.sentinels.iter().map(|s| host_port(s, "store.sentinels")).collect::<Result<Vec<_>, _>>()?;
        let redis = info.redis_settings();
        check_sentinel(
            SentinelTarget {
                sentinels,
                master_name: c.master_name.clone(),
                tls: node.scheme() == "rediss",
                username: redis.username().map(str::to_owned),
                password: redis.password().map(str::to_owned),
                db: redis.db(),
                sentinel_password: None,
                check_ms: DEFAULT_SENTINEL_CHECK_MS,
            },
            "store.sentinels",
        )?
    };
    t.sentinel_password = Some(c.sentinel_password.clone()).filter(|p| !p.is_empty());
    t.check_ms = c.sentinel_check_ms;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(overlay: &str) -> StoreConfig {
        crate::config::Config::from_overlays(&[overlay], true).map(|c| c.store).unwrap()
    }

    #[test]
    fn urls_choose_the_mode() {
        assert_eq!(Target::from_url("redis://h:1/").unwrap().topology, Topology::Standalone("redis://h:1/".into()));
        assert!(Target::from_url("rediss://h:1/").unwrap().uses_tls());
        let Topology::Sentinel(s) =
            Target::from_url("rediss+sentinel://u:p%40ss@s1:26379,[::1]:26380/mymaster/3").unwrap().topology
        else {
            panic!("sentinel expected")
        };
        assert_eq!(s.sentinels, vec![("s1".into(), 26379), ("::1".into(), 26380)]);
        assert_eq!((s.master_name.as_str(), s.db, s.tls), ("mymaster", 3, true));
        assert_eq!((s.username.as_deref(), s.password.as_deref()), (Some("u"), Some("p@ss")));
        assert!(Target::from_url("redis+sentinel://s1:26379/").is_err(), "master name required");
        assert!(Target::from_url("redis+sentinel:///m").is_err(), "a sentinel required");
        assert!(Target::from_url("redis+sentinel://s1/m").is_err(), "port required");
    }

    #[test]
    fn blocks_choose_the_mode() {
        let c = store(
            "[store]\nsentinels = [\"a:1\", \"b:2\"]\nmaster_name = \"m\"\nredis_url = \"rediss://:pw@x/2\"\nsentinel_password = \"sp\"\n",
        );
        let Topology::Sentinel(s) = Target::from_config(&c).unwrap().topology else { panic!("sentinel expected") };
        assert_eq!(
            (s.tls, s.db, s.password.as_deref(), s.sentinel_password.as_deref()),
            (true, 2, Some("pw"), Some("sp"))
        );
        let c = store("[store]\nmode = \"cluster\"\ncluster_nodes = [\"redis://a:1\", \"redis://b:2\"]\n");
        assert_eq!(
            Target::from_config(&c).unwrap().topology,
            Topology::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        let c = store("[store]\nmode = \"cluster\"\nredis_url = \"rediss://a:1\"\n");
        assert_eq!(Target::from_config(&c).unwrap().topology, Topology::Cluster(vec!["rediss://a:1".into()]));
    }

    #[test]
    fn contradictions_name_the_field() {
        for (overlay, field) in [
            ("mode = \"standalone\"\nmaster_name = \"m\"", "store.sentinels"),
            ("mode = \"sentinel\"", "store.sentinels"),
            ("mode = \"standalone\"\nredis_url = \"redis+sentinel://a:1/m\"", "store.redis_url"),
            ("mode = \"cluster\"\ncluster_nodes = [\"redis://a:1\", \"rediss://b:1\"]", "store.cluster_nodes"),
            ("mode = \"cluster\"\ncluster_nodes = [\"a:1\"]", "store.cluster_nodes"),
            ("cluster_nodes = [\"redis://a:1\"]\nmode = \"standalone\"", "store.cluster_nodes"),
            ("tls_cert_file = \"c.pem\"", "store.tls_cert_file"),
            ("tls_ca_file = \"ca.pem\"", "store.tls_ca_file"),
            ("redis_url = \"redis+sentinel://a:1/m\"\nsentinels = [\"b:2\"]\nmaster_name = \"m\"", "store.redis_url"),
            ("prefix = \"{tz}:\"", "store.prefix"),
        ] {
            let e =
                crate::config::Config::from_overlays(&[&format!("[store]\nbackend = \"redis\"\n{overlay}\n")], true)
                    .unwrap_err();
            assert!(matches!(e, crate::config::ConfigError::Invalid { field: f, .. } if f == field), "{overlay}: {e}");
        }
    }
}
