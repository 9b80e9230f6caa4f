//! Starts a real tongzheng instance in-process on `127.0.0.1:0`, on the memory store or on the
//! shared test redis-server (with its own key prefix), with a manual clock the test can move.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::http::AppState;
use tongzheng::keys::Keys;
use tongzheng::server;
use tongzheng::store::DynStore;
use tongzheng::store::memory::MemoryStore;

/// Which store a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded memory store.
    Memory,
    /// The shared test redis-server.
    Redis,
    /// The shared 3-master test Redis Cluster (`on_cluster!`).
    Cluster,
}

/// The store of a test server on `backend` (each Redis test under its own prefix), and the
/// `[store]` overlay that describes it. The memory store's TTLs follow `clock`.
pub fn store_for(backend: Backend, clock: &Clock) -> (String, DynStore) {
    match backend {
        Backend::Memory => (String::new(), Arc::new(MemoryStore::with_clock(clock.clone()))),
        Backend::Redis => {
            let prefix = super::redis::unique_prefix();
            let url = super::redis::shared().url();
            let overlay = format!("[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n");
            (overlay, Arc::new(super::redis::redis_store(&prefix)))
        }
        Backend::Cluster => super::redis_modes::cluster_store(&super::redis::unique_prefix()),
    }
}

/// A store several instances share, as several processes would: one memory store, or one key
/// prefix on the shared redis-server.
#[derive(Clone)]
pub enum SharedStore {
    /// One memory store (real time: the instances' manual clocks differ).
    Memory(Arc<MemoryStore>),
    /// One prefix on a Redis.
    Redis {
        /// The Redis URL.
        url: String,
        /// The key prefix.
        prefix: String,
    },
}

impl SharedStore {
    /// A new, empty shared store on `backend`.
    pub fn new(backend: Backend) -> Self {
        match backend {
            Backend::Memory => Self::Memory(Arc::new(MemoryStore::new())),
            // Instances sharing a Cluster are the Redis case on another topology; the shared
            // redis-server stands in for it here.
            Backend::Redis | Backend::Cluster => {
                Self::Redis { url: super::redis::shared().url(), prefix: super::redis::unique_prefix() }
            }
        }
    }

    /// Another handle on the same data (what a CLI process would open).
    pub fn handle(&self) -> DynStore {
        match self {
            Self::Memory(m) => m.clone(),
            Self::Redis { url, prefix } => Arc::new(super::redis::redis_store_at(url, prefix)),
        }
    }

    fn overlay(&self) -> String {
        match self {
            Self::Memory(_) => String::new(),
            Self::Redis { url, prefix } => {
                format!("[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n")
            }
        }
    }
}

/// A running server; stops when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT` (also the issuer).
    pub base: String,
    /// The instance's state (store, keys, config, clock).
    pub state: AppState,
    /// The manual clock the instance reads.
    pub clock: Clock,
    /// A client that keeps cookies and does not follow redirects (a browser without JS).
    pub browser: reqwest::Client,
    /// A plain client for back-channel calls.
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Demo credentials from config/dev.toml.
pub const WEB_CLIENT: &str = "demo-web";
/// Secret of [`WEB_CLIENT`].
pub const WEB_SECRET: &str = "demo-web-secret-0123456789abcdef";
/// Redirect URI of [`WEB_CLIENT`].
pub const WEB_REDIRECT: &str = "http://127.0.0.1:9000/callback";
/// The public (PKCE) client.
pub const SPA_CLIENT: &str = "demo-spa";
/// Redirect URI of [`SPA_CLIENT`].
pub const SPA_REDIRECT: &str = "http://127.0.0.1:9001/callback";
/// The bootstrap admin client.
pub const ADMIN_CLIENT: &str = "admin-cli";
/// Secret of [`ADMIN_CLIENT`].
pub const ADMIN_SECRET: &str = "admin-cli-secret-0123456789abcdef";
/// The bootstrap admin client's secret on production-mode test servers (the dev one is
/// refused outside dev mode).
pub const PROD_ADMIN_SECRET: &str = "prod-test-admin-secret-0123456789abcdef";
/// The bootstrap auditor client.
pub const AUDITOR_CLIENT: &str = "auditor-cli";
/// Secret of [`AUDITOR_CLIENT`].
pub const AUDITOR_SECRET: &str = "auditor-cli-secret-0123456789abcdef";
/// Demo user.
pub const USER: &str = "demo";
/// Demo user's password.
pub const PASSWORD: &str = "demo-password";

/// A manual clock starting now, for one test server.
pub fn manual_clock() -> Clock {
    Clock::manual(Clock::system().now())
}

/// The issuer of the instances started by [`TestServer::start_on_store`].
pub const SHARED_ISSUER: &str = "https://id.example.test";

/// The key-encryption key of every test server (a production server gets its own from config).
pub const TEST_KEK: &str = "dGVzdCBrZXktZW5jcnlwdGlvbiBrZXksIDMyIGJ5dGU=";

/// A key directory for servers started as child processes: they find or make their key set in
/// the store (sealed under [`TEST_KEK`]); the directory only holds what dev mode writes there.
pub fn keys_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tz-test-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("keys dir");
        dir
    })
}

fn keys() -> Keys {
    // RSA key generation is the slow part of a start: generate one key set per test process,
    // and hand it to every test server, which publishes it in its (empty) store.
    static SET: std::sync::OnceLock<tongzheng::keys::material::Material> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| Keys::ephemeral(Clock::system().now()).expect("generate keys").material());
    Keys::from_material(set.clone()).expect("load keys")
}

impl TestServer {
    /// Starts a server with the dev config on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, "").await
    }

    /// Starts a server on the Redis at `url` under `prefix` (several servers may share them).
    pub async fn start_on_redis(url: &str, prefix: &str, overlay: &str) -> Self {
        let store: DynStore = Arc::new(
            tongzheng::store::redis::RedisStore::connect(url, prefix, std::time::Duration::from_millis(800))
                .expect("store"),
        );
        let store_overlay = format!("[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n");
        Self::start_inner(overlay, store_overlay, store, manual_clock()).await
    }

    /// Starts a server whose store is opened from `store_toml` (a `[store]` section) the way the
    /// binary opens it: any Redis mode (TLS, Sentinel, Cluster).
    pub async fn start_on_store_config(store_toml: &str, overlay: &str) -> Self {
        let store = super::redis_modes::store_from_toml(store_toml);
        Self::start_inner(overlay, store_toml.to_owned(), store, manual_clock()).await
    }

    /// Starts a server with the dev config plus `overlay` (TOML) on `backend`.
    pub async fn start_with(backend: Backend, overlay: &str) -> Self {
        let clock = manual_clock();
        let (store_overlay, store) = store_for(backend, &clock);
        Self::start_inner(overlay, store_overlay, store, clock).await
    }

    /// Starts a server as its own platform: listening on loopback address `ip` (so browsers
    /// keep its cookies apart from the other platforms'), with its own signing keys.
    pub async fn start_platform(backend: Backend, ip: &str, overlay: &str) -> Self {
        let clock = manual_clock();
        let (store_overlay, store) = store_for(backend, &clock);
        let keys = Keys::ephemeral(Clock::system().now()).expect("keys");
        Self::start_at(ip, overlay, store_overlay, store, Some(keys), clock).await
    }

    /// Starts a server with the dev config on a store the test built (e.g. one that fails on
    /// purpose), reading `clock`.
    pub async fn start_on_custom_store(store: DynStore, clock: Clock, overlay: &str) -> Self {
        Self::start_inner(overlay, String::new(), store, clock).await
    }

    async fn start_inner(overlay: &str, store_overlay: String, store: DynStore, clock: Clock) -> Self {
        Self::start_at("127.0.0.1", overlay, store_overlay, store, Some(keys()), clock).await
    }

    /// Starts one more instance on `shared`, as a separate process would: no keys are handed
    /// in (it finds or makes them itself), its `keys.dir` is its own, its issuer is
    /// [`SHARED_ISSUER`] (one platform, several instances).
    pub async fn start_on_store(shared: &SharedStore, overlay: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tz-test-keys-{}", tongzheng::crypto::random_token(9)));
        // One platform: every instance announces the same issuer.
        let own = format!("issuer = \"{SHARED_ISSUER}\"\n[keys]\ndir = \"{}\"\n{}", dir.display(), shared.overlay());
        Self::start_at("127.0.0.1", overlay, own, shared.handle(), None, manual_clock()).await
    }

    /// Starts a server in production mode (`server.dev = false`, no dev overlay) on `backend`:
    /// plain HTTP as if behind a TLS proxy, issuer `https://127.0.0.1:PORT`, the memory store
    /// allowed explicitly, [`ADMIN_CLIENT`] seeded by its secret's hash, and `overlay` on top.
    pub async fn start_production(backend: Backend, overlay: &str) -> Self {
        let clock = manual_clock();
        let (store_overlay, store): (String, DynStore) = match backend {
            Backend::Memory => (
                "[store]\nbackend = \"memory\"\nallow_memory = true\n".into(),
                Arc::new(MemoryStore::with_clock(clock.clone())),
            ),
            other => store_for(other, &clock),
        };
        let admin = format!(
            "[server]\nbehind_tls_proxy = true\n[[seed.clients]]\nclient_id = \"{ADMIN_CLIENT}\"\nclient_secret_sha256 = \"{}\"\n\
             name = \"admin\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"tongzheng:admin\"]\n\
             token_endpoint_auth_method = \"client_secret_basic\"\n",
            tongzheng::crypto::sha256_hex(PROD_ADMIN_SECRET.as_bytes())
        );
        Self::start_mode(false, "127.0.0.1", &format!("{admin}{overlay}"), store_overlay, store, Some(keys()), clock)
            .await
    }

    async fn start_at(
        ip: &str,
        overlay: &str,
        store_overlay: String,
        store: DynStore,
        keys: Option<Keys>,
        clock: Clock,
    ) -> Self {
        Self::start_mode(true, ip, overlay, store_overlay, store, keys, clock).await
    }

    async fn start_mode(
        dev: bool,
        ip: &str,
        overlay: &str,
        store_overlay: String,
        store: DynStore,
        keys: Option<Keys>,
        clock: Clock,
    ) -> Self {
        let listener = TcpListener::bind(format!("{ip}:0")).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let issuer = if dev { base.clone() } else { format!("https://{addr}") };
        // The caller's overlay may set its own issuer (several instances of one platform).
        // Each instance writes its audit log and archives under its own temporary directory:
        // named by a random token too, since a port freed by a finished test is handed out
        // again, and a directory named by process and port then held that test's events.
        let data = std::env::temp_dir().join(format!(
            "tz-test-{}-{}-{}",
            std::process::id(),
            addr.port(),
            tongzheng::crypto::random_token(6)
        ));
        let fixed = format!(
            "issuer = \"{issuer}\"\n[server]\nlisten = \"{addr}\"\n[keys]\nkek = \"{TEST_KEK}\"\n[audit]\ndir = \"{}\"\n\
             [apps]\narchive_dir = \"{}\"\n",
            data.join("audit").display(),
            data.join("archive").display()
        );
        let config = Config::from_overlays(&[&fixed, overlay, &store_overlay], dev).expect("test config");
        let state = server::build(config, clock.clone(), store, keys).await.expect("build server");
        let (tx, rx) = oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = server::serve(listener, serve_state, None, async {
                let _ = rx.await;
            })
            .await;
        });
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { base, state, clock, browser, http, shutdown: Some(tx) }
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
