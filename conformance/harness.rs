//! Starts the platform under test in-process on 127.0.0.1:0 with the dev configuration (demo
//! clients and user) plus an overlay, on the memory store or on a real redis-server.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::keys::Keys;
use tongzheng::store::DynStore;
use tongzheng::store::memory::MemoryStore;
use tongzheng::store::redis::RedisStore;

/// The redis-server fixture of the integration tests (a watchdog kills redis with us).
#[path = "../tests/it/support/redis.rs"]
#[allow(dead_code)]
mod redis_fixture;

pub use redis_fixture::RedisServer;

/// Which store an instance uses.
pub enum Backend {
    Memory,
    /// A redis-server at this URL; every instance gets its own key prefix.
    Redis(String),
}

impl Backend {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis(_) => "redis",
        }
    }
}

/// A running instance; stops when dropped.
pub struct Platform {
    /// `http://127.0.0.1:PORT`, which is also the issuer.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Platform {
    /// Builds and serves an instance with `config/dev.toml` semantics plus `overlay` (TOML).
    pub async fn start(backend: &Backend, overlay: &str) -> Result<Self, String> {
        Self::start_at(backend, overlay, "127.0.0.1").await
    }

    /// As [`Platform::start`], listening on loopback address `ip` (several platforms on one
    /// machine keep their browser cookies apart by host).
    pub async fn start_at(backend: &Backend, overlay: &str, ip: &str) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0")).await.map_err(|e| format!("bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("addr: {e}"))?;
        let base = format!("http://{addr}");
        let data = std::env::temp_dir().join(format!("tz-conformance-{}-{}", std::process::id(), addr.port()));
        // Dev mode generates the key-encryption key into keys.dir: the platform's own directory.
        let fixed = format!(
            "issuer = \"{base}\"\n[server]\nlisten = \"{addr}\"\n[keys]\ndir = \"{}\"\n[audit]\ndir = \"{}\"\n\
             [apps]\narchive_dir = \"{}\"\n",
            data.join("keys").display(),
            data.join("audit").display(),
            data.join("archive").display()
        );
        let (store_overlay, store): (String, DynStore) = match backend {
            Backend::Memory => (String::new(), Arc::new(MemoryStore::new())),
            Backend::Redis(url) => {
                let prefix = format!("tz-conformance-{}:", openidconnect::CsrfToken::new_random().secret());
                let store = RedisStore::connect(url, &prefix, Duration::from_millis(800))
                    .map_err(|e| format!("redis store: {e}"))?;
                (
                    format!("[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n"),
                    Arc::new(store),
                )
            }
        };
        let config =
            Config::from_overlays(&[&fixed, overlay, &store_overlay], true).map_err(|e| format!("config: {e}"))?;
        let clock = Clock::system();
        let keys = Keys::ephemeral(clock.now()).map_err(|e| format!("keys: {e}"))?;
        let state =
            tongzheng::server::build(config, clock, store, Some(keys)).await.map_err(|e| format!("build: {e}"))?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                let _ = rx.await;
            };
            if let Err(e) = tongzheng::server::serve(listener, state, None, stopped).await {
                eprintln!("server stopped with an error: {e}");
            }
        });
        Ok(Self { base, stop: Some(tx) })
    }
}

/// True when `redis-server` is an executable file on PATH.
pub fn redis_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("redis-server").is_file()))
}
