//! The connection behind the Redis store, in the deployment's shape: a self-healing
//! `ConnectionManager` for one server, a master re-resolved through the sentinels after any
//! failed call and whenever they name another one (a failover), or the cluster client (which
//! follows MOVED and ASK by itself).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ClientTlsConfig, Cmd, ConnectionAddr, Pipeline, RedisError, RedisFuture, RedisResult,
    TlsCertificates, TlsMode, Value,
};

use super::target::{SentinelTarget, Target, Topology};

/// One call's connection: cheap to clone, multiplexed underneath.
#[derive(Clone)]
pub(super) enum Handle {
    /// One server, reconnecting by itself.
    Manager(ConnectionManager),
    /// The master the sentinels named.
    Node(MultiplexedConnection),
    /// The cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Which connection a call used, so that its failure resets that connection and no newer one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket(u64);

/// The store's connection.
pub(super) enum Conn {
    /// One server: the manager reconnects by itself.
    Fixed(ConnectionManager),
    /// Sentinel or Cluster: made on first use, remade after a failure that calls for it.
    Lazy(Arc<Lazy>),
}

/// A connection made on demand and dropped when a call on it fails in a way that means it
/// points at the wrong server or is dead, so the next call makes a fresh one.
pub(super) struct Lazy {
    current: Mutex<Option<Current>>,
    generation: AtomicU64,
    sentinel: bool,
    /// Bounds the watcher's own Sentinel lookups.
    deadline: Duration,
    /// How often the watcher asks the sentinels for the master (`None`: never).
    check_every: Option<Duration>,
    watching: AtomicBool,
    connector: tokio::sync::Mutex<Connector>,
}

/// The connection in use: its generation, handle, and the server it reaches (Sentinel).
#[derive(Clone)]
struct Current {
    generation: u64,
    handle: Handle,
    addr: Option<ConnectionAddr>,
}

enum Connector {
    Sentinel(Box<SentinelClient>, AsyncConnectionConfig),
    Cluster(Box<ClusterClient>),
}

impl Connector {
    /// A new connection, and for Sentinel the master's address.
    async fn connect(&mut self) -> RedisResult<(Handle, Option<ConnectionAddr>)> {
        match self {
            // Asks the sentinels for the master, checks that it says it is one (ROLE), connects.
            Self::Sentinel(sentinel, config) => {
                let master = sentinel.async_get_client().await?;
                let addr = master.get_connection_info().addr().clone();
                let conn = master.get_multiplexed_async_connection_with_config(config).await?;
                Ok((Handle::Node(conn), Some(addr)))
            }
            Self::Cluster(client) => Ok((Handle::Cluster(client.get_async_connection().await?), None)),
        }
    }

    /// The master the sentinels name now (`None` for a cluster).
    async fn master(&mut self) -> RedisResult<Option<ConnectionAddr>> {
        match self {
            Self::Sentinel(sentinel, _) => {
                Ok(Some(sentinel.async_get_client().await?.get_connection_info().addr().clone()))
            }
            Self::Cluster(_) => Ok(None),
        }
    }
}

impl Lazy {
    fn new(connector: Connector, deadline: Duration, check_every: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            current: Mutex::new(None),
            generation: AtomicU64::new(0),
            sentinel: matches!(connector, Connector::Sentinel(..)),
            deadline,
            check_every,
            watching: AtomicBool::new(false),
            connector: tokio::sync::Mutex::new(connector),
        })
    }

    /// True when a call that failed with `error` (`None`: no answer in time) should make the
    /// next call reconnect.
    fn resets_on(&self, error: Option<&RedisError>) -> bool {
        match (self.sentinel, error) {
            // A demoted master answers READONLY to writes and keeps the connection open; a dead
            // one times out or drops it. Every failure but a data error asks the sentinels again
            // (cheap: one lookup, bounded by the call's deadline).
            (true, None) => true,
            (true, Some(e)) => e.code() != Some("WRONGTYPE"),
            // The cluster client refreshes its slot map and reconnects nodes by itself.
            (false, Some(e)) => e.is_unrecoverable_error(),
            (false, None) => false,
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(self: &Arc<Self>) -> RedisResult<(Handle, Ticket)> {
        if let Some(c) = self.slot().clone() {
            return Ok((c.handle, Ticket(c.generation)));
        }
        // One caller connects; the others wait for it (each within its own deadline).
        let mut connector = self.connector.lock().await;
        if let Some(c) = self.slot().clone() {
            return Ok((c.handle, Ticket(c.generation)));
        }
        let (handle, addr) = connector.connect().await?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.slot() = Some(Current { generation, handle: handle.clone(), addr });
        if let Some(every) = self.check_every
            && !self.watching.swap(true, Ordering::Relaxed)
        {
            // Started here, inside the runtime; it ends once the store is dropped.
            tokio::spawn(watch(Arc::downgrade(self), every));
        }
        Ok((handle, Ticket(generation)))
    }

    fn reset(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|c| c.generation == generation) {
            *slot = None;
        }
    }

    fn failed(&self, ticket: Ticket, error: Option<&RedisError>) {
        if self.resets_on(error) {
            self.reset(ticket.0);
        }
    }

    /// Drops the connection when the sentinels name another master than the one it reaches.
    async fn check_master(&self) {
        let Some(Current { generation, addr: Some(addr), .. }) = self.slot().clone() else {
            return;
        };
        let lookup = async { self.connector.lock().await.master().await };
        if let Ok(Ok(Some(master))) = tokio::time::timeout(self.deadline, lookup).await
            && master != addr
        {
            tracing::warn!(generation, "the sentinels name another Redis master; reconnecting");
            self.reset(generation);
        }
    }
}

/// Asks the sentinels `every` so often whether the master moved, while the store lives. A forced
/// failover leaves the old master accepting writes until the sentinels demote it (up to ~10 s,
/// their INFO period), writes that the new master never sees; asking keeps that window short.
async fn watch(lazy: Weak<Lazy>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(lazy) = lazy.upgrade() else {
            return;
        };
        lazy.check_master().await;
    }
}

impl Conn {
    /// Builds the connection for `target`; nothing is dialled yet, so the server can start
    /// (and report not-ready) while Redis is down.
    pub(super) fn open(target: &Target, deadline: Duration) -> Result<Self, String> {
        let certs = certificates(target)?;
        if target.uses_tls() {
            // The redis crate builds its rustls config from the process default provider: make
            // it ring (the only one we link) even if another crate ever enabled a second one.
            // An error means a default is installed already, which is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        match &target.topology {
            Topology::Standalone(url) => {
                let client = match certs {
                    Some(certs) if target.uses_tls() => redis::Client::build_with_tls(url.as_str(), certs),
                    _ => redis::Client::open(url.as_str()),
                }
                .map_err(|e| e.to_string())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(deadline))
                    .set_response_timeout(Some(deadline))
                    // Fail fast while Redis is down (the request gets 503 at once); the manager
                    // keeps reconnecting on later calls.
                    .set_number_of_retries(0)
                    .set_max_delay(Duration::from_millis(200));
                ConnectionManager::new_lazy_with_config(client, config).map(Self::Fixed).map_err(|e| e.to_string())
            }
            Topology::Sentinel(s) => {
                let client = sentinel_client(s, certs).map_err(|e| e.to_string())?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(deadline))
                    .set_response_timeout(Some(deadline));
                let every = Some(Duration::from_millis(s.check_ms)).filter(|d| !d.is_zero());
                Ok(Self::Lazy(Lazy::new(Connector::Sentinel(Box::new(client), config), deadline, every)))
            }
            Topology::Cluster(nodes) => {
                let mut builder = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
                    .connection_timeout(deadline)
                    .response_timeout(deadline)
                    // Redirects (MOVED, ASK) during a resharding or failover count as retries;
                    // the store's deadline bounds the whole call anyway.
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(100);
                if let Some(certs) = certs {
                    builder = builder.certs(certs);
                }
                let client = builder.build().map_err(|e| e.to_string())?;
                Ok(Self::Lazy(Lazy::new(Connector::Cluster(Box::new(client)), deadline, None)))
            }
        }
    }

    /// The connection for one call.
    pub(super) async fn handle(&self) -> RedisResult<(Handle, Option<Ticket>)> {
        match self {
            Self::Fixed(manager) => Ok((Handle::Manager(manager.clone()), None)),
            Self::Lazy(lazy) => lazy.handle().await.map(|(h, t)| (h, Some(t))),
        }
    }

    /// Reports a failed call (`error` `None`: it did not answer in time).
    pub(super) fn failed(&self, ticket: Option<Ticket>, error: Option<&RedisError>) {
        if let (Self::Lazy(lazy), Some(ticket)) = (self, ticket) {
            lazy.failed(ticket, error);
        }
    }
}

/// The PEM files of `[store]`, read now so a missing file fails the start.
fn certificates(target: &Target) -> Result<Option<TlsCertificates>, String> {
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"));
    let t = &target.tls;
    if t.ca_file.is_empty() && t.cert_file.is_empty() {
        return Ok(None);
    }
    let root_cert = if t.ca_file.is_empty() { None } else { Some(read(&t.ca_file)?) };
    let client_tls = if t.cert_file.is_empty() {
        None
    } else {
        Some(ClientTlsConfig { client_cert: read(&t.cert_file)?, client_key: read(&t.key_file)? })
    };
    Ok(Some(TlsCertificates { client_tls, root_cert }))
}

fn sentinel_client(s: &SentinelTarget, certs: Option<TlsCertificates>) -> RedisResult<SentinelClient> {
    let addrs = s.sentinels.iter().map(|(host, port)| {
        if s.tls {
            ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
        } else {
            ConnectionAddr::Tcp(host.clone(), *port)
        }
    });
    let mut b =
        SentinelClientBuilder::new(addrs, &s.master_name, SentinelServerType::Master)?.set_client_to_redis_db(s.db);
    if s.tls {
        b = b.set_client_to_redis_tls_mode(TlsMode::Secure).set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            b = b.set_client_to_redis_certificates(certs.clone()).set_client_to_sentinel_certificates(certs);
        }
    }
    if let Some(user) = &s.username {
        b = b.set_client_to_redis_username(user);
    }
    if let Some(password) = &s.password {
        b = b.set_client_to_redis_password(password);
    }
    if let Some(password) = &s.sentinel_password {
        b = b.set_client_to_sentinel_password(password);
    }
    b.build()
}
