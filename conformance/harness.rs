//! Starts the platform under test in-process on 127.0.0.1:0 (and a redis-server for the Redis
//! pass), with the dev configuration's demo clients and user.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::keys::Keys;
use tongzheng::store::DynStore;
use tongzheng::store::memory::MemoryStore;
use tongzheng::store::redis::RedisStore;

pub enum Store {
    Memory,
    Redis(String),
}

pub struct Platform {
    pub base: String,
    pub state: tongzheng::http::AppState,
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
    pub async fn start(store: Store) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut overlay = format!("issuer = \"{base}\"\n[server]\nlisten = \"{addr}\"\n[tokens]\nrefresh_grace = 0\n");
        let store: DynStore = match store {
            Store::Memory => Arc::new(MemoryStore::new()),
            Store::Redis(url) => {
                let prefix = format!("conformance-{}:", tongzheng::crypto::random_token(6));
                overlay
                    .push_str(&format!("[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n"));
                Arc::new(RedisStore::connect(&url, &prefix, Duration::from_millis(800)).unwrap())
            }
        };
        let config = Config::from_overlay(&overlay, true).unwrap();
        let keys = Keys::ephemeral(Clock::system().now()).unwrap();
        let state = tongzheng::server::build(config, Clock::system(), store, Some(keys)).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let serve = state.clone();
        tokio::spawn(async move {
            let _ = tongzheng::server::serve(listener, serve, None, async {
                let _ = rx.await;
            })
            .await;
        });
        Self { base, state, stop: Some(tx) }
    }
}

/// A redis-server child on a free loopback port; killed on drop.
pub struct RedisProcess {
    child: Child,
    port: u16,
}

impl RedisProcess {
    pub fn spawn() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self { child, port });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
