//! Redis as operators run it, started by the harness: a TLS-only client port with a private CA
//! and client certificates (made with rcgen), a 3-master Redis Cluster (one per test process,
//! shared), and a master + replica watched by 3 sentinels. Every process is a [`RedisServer`]:
//! stopped on drop and killed by its watchdog when the test process dies.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use tongzheng::config::Config;
use tongzheng::store::DynStore;

use super::redis::{RedisServer, free_port, plain_args};

/// A directory for one fixture's files, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temp dir.
    pub fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tz-{what}-{}-{}",
            std::process::id(),
            tongzheng::crypto::random_token(6)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// `name` inside the directory, as a string for config files.
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs one admin command on the Redis (or sentinel) at `port` (plain TCP).
pub fn admin<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    let (name, rest) = args.split_first().expect("a command");
    redis::cmd(name).arg(rest).query(&mut con)
}

/// Polls `cond` every 100 ms until it holds; panics naming `what` after `within`.
pub fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A store opened from a `[store]` section the way the binary opens it (`server::open_store`).
pub fn store_from_toml(store_toml: &str) -> DynStore {
    let config = Config::from_overlays(&[store_toml], true).expect("store config");
    tongzheng::server::open_store(&config).expect("open store")
}

/// A redis-server whose clients must use TLS (`tls_port`, private CA, client certificate
/// required: `tls-auth-clients yes`); its plain port is for the harness only.
pub struct TlsRedis {
    /// The server (its plain port is for the harness), kept running while this lives.
    _server: RedisServer,
    /// The TLS port the store uses.
    pub tls_port: u16,
    /// `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`.
    pub dir: TempDir,
}

fn issue(ca: &CertifiedIssuer<'_, KeyPair>, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec![name.to_owned()]).unwrap();
    p.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![usage];
    let cert = p.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl TlsRedis {
    /// Generates a CA, a server certificate for 127.0.0.1 and a client certificate, and starts
    /// redis-server with TLS on a second port.
    pub fn start() -> Self {
        let dir = TempDir::new("redis-tls");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "tongzheng test Redis CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.file("ca.pem"), ca.pem()).unwrap();
        for (name, usage) in
            [("server", ExtendedKeyUsagePurpose::ServerAuth), ("client", ExtendedKeyUsagePurpose::ClientAuth)]
        {
            let (cert, key) = issue(&ca, if name == "server" { "localhost" } else { "tongzheng" }, usage);
            std::fs::write(dir.file(&format!("{name}.pem")), cert).unwrap();
            std::fs::write(dir.file(&format!("{name}.key")), key).unwrap();
        }
        let tls_port = free_port();
        let server = RedisServer::start_with(|port| {
            format!(
                "{} --tls-port {tls_port} --tls-cert-file {} --tls-key-file {} --tls-ca-cert-file {} --tls-auth-clients yes",
                plain_args(port),
                dir.file("server.pem"),
                dir.file("server.key"),
                dir.file("ca.pem")
            )
        });
        Self { _server: server, tls_port, dir }
    }

    /// `rediss://127.0.0.1:TLS_PORT/`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.tls_port)
    }

    /// A `[store]` section for this server under `prefix`, trusting the test CA and presenting
    /// the client certificate.
    pub fn store_toml(&self, prefix: &str) -> String {
        format!(
            "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\nprefix = \"{prefix}\"\ntls_ca_file = \"{}\"\n\
             tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
            self.url(),
            self.dir.file("ca.pem"),
            self.dir.file("client.pem"),
            self.dir.file("client.key")
        )
    }
}

/// A Redis Cluster of masters without replicas, slots split evenly, made with CLUSTER
/// ADDSLOTSRANGE and CLUSTER MEET (no redis-cli needed).
pub struct RedisCluster {
    /// The masters.
    pub nodes: Vec<RedisServer>,
    _dir: TempDir,
}

impl RedisCluster {
    /// Starts `masters` nodes and waits until every one reports `cluster_state:ok`.
    pub fn start(masters: u16) -> Self {
        let dir = TempDir::new("redis-cluster");
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                RedisServer::start_with(|port| {
                    format!(
                        "{} --cluster-enabled yes --cluster-config-file {} --cluster-node-timeout 2000 --cluster-port {}",
                        plain_args(port),
                        dir.file(&format!("nodes-{port}.conf")),
                        free_port()
                    )
                })
            })
            .collect();
        let per = 16384 / u32::from(masters);
        for (i, node) in (0u32..).zip(&nodes) {
            let (first, last) = (i * per, if i + 1 == u32::from(masters) { 16383 } else { (i + 1) * per - 1 });
            let _: () =
                admin(node.port(), &["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()]).unwrap();
        }
        let first = nodes.first().unwrap().port();
        for node in nodes.iter().skip(1) {
            let (_, bus): (String, String) = admin(node.port(), &["CONFIG", "GET", "cluster-port"]).unwrap();
            let _: () = admin(first, &["CLUSTER", "MEET", "127.0.0.1", &node.port().to_string(), &bus]).unwrap();
        }
        let known = format!("cluster_known_nodes:{masters}");
        wait_until(Duration::from_secs(20), "cluster formed", || {
            nodes.iter().all(|n| {
                let info: String = admin(n.port(), &["CLUSTER", "INFO"]).unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains(&known)
            })
        });
        Self { nodes, _dir: dir }
    }

    /// A `[store]` section for this cluster under `prefix` (every node a seed).
    pub fn store_toml(&self, prefix: &str) -> String {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("\"redis://127.0.0.1:{}\"", n.port())).collect();
        format!(
            "[store]\nbackend = \"redis\"\nmode = \"cluster\"\ncluster_nodes = [{}]\nprefix = \"{prefix}\"\n",
            nodes.join(", ")
        )
    }

    /// The keys under `prefix` on each master.
    pub fn keys_per_node(&self, prefix: &str) -> Vec<usize> {
        let pattern = format!("{prefix}*");
        self.nodes.iter().map(|n| admin::<Vec<String>>(n.port(), &["KEYS", &pattern]).unwrap().len()).collect()
    }
}

/// The cluster shared by every test of this process (never stopped; use a unique prefix).
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start(3))
}

/// A store on the shared cluster under `prefix`, and its `[store]` section.
pub fn cluster_store(prefix: &str) -> (String, DynStore) {
    let toml = shared_cluster().store_toml(prefix);
    let store = store_from_toml(&toml);
    (toml, store)
}

/// The name the sentinels know the master by.
pub const MASTER_NAME: &str = "mymaster";

/// One master, one replica, three sentinels (quorum 2).
pub struct SentinelSet {
    /// The first master (a replica after a failover).
    pub master: RedisServer,
    /// The first replica (the master after a failover).
    pub replica: RedisServer,
    /// The sentinels.
    pub sentinels: Vec<RedisServer>,
    _dir: TempDir,
}

impl SentinelSet {
    /// Starts the set and waits until the replica is in sync and every sentinel knows it.
    pub fn start() -> Self {
        let dir = TempDir::new("redis-sentinel");
        let master = RedisServer::dedicated();
        let m = master.port();
        let replica = RedisServer::start_with(|port| format!("{} --replicaof 127.0.0.1 {m}", plain_args(port)));
        wait_until(Duration::from_secs(10), "replica in sync", || {
            admin::<String>(replica.port(), &["INFO", "replication"])
                .unwrap_or_default()
                .contains("master_link_status:up")
        });
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(|port| {
                    // Sentinel rewrites its configuration file, so each gets its own.
                    let conf = dir.file(&format!("sentinel-{port}.conf"));
                    std::fs::write(
                        &conf,
                        format!(
                            "sentinel monitor {MASTER_NAME} 127.0.0.1 {m} 2\n\
                             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                             sentinel failover-timeout {MASTER_NAME} 5000\n"
                        ),
                    )
                    .unwrap();
                    format!("{conf} --sentinel --port {port} --bind 127.0.0.1 --daemonize no --loglevel warning")
                })
            })
            .collect();
        let set = Self { master, replica, sentinels, _dir: dir };
        wait_until(Duration::from_secs(15), "sentinels see the replica", || {
            set.sentinels.iter().all(|s| {
                admin::<Vec<redis::Value>>(s.port(), &["SENTINEL", "REPLICAS", MASTER_NAME])
                    .is_ok_and(|r| !r.is_empty())
            })
        });
        set
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port())).collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The master's port as the first sentinel reports it.
    pub fn reported_master(&self) -> u16 {
        let (_, port): (String, u16) =
            admin(self.sentinels.first().unwrap().port(), &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])
                .unwrap();
        port
    }

    /// Asks a sentinel to fail over now (retrying while it has no good replica yet) and waits
    /// until it reports the replica as the master.
    pub fn failover(&self) {
        let sentinel = self.sentinels.first().unwrap().port();
        wait_until(Duration::from_secs(15), "SENTINEL FAILOVER accepted", || {
            admin::<()>(sentinel, &["SENTINEL", "FAILOVER", MASTER_NAME]).is_ok()
        });
        let promoted = self.replica.port();
        wait_until(Duration::from_secs(15), "sentinel reports the promoted replica", || {
            self.reported_master() == promoted
        });
    }
}
