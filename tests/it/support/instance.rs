//! A tongzheng instance as a CHILD PROCESS (`tongzheng serve --dev`) on a real Redis, so a
//! chaos test can `kill -9` it, start another on the same store and keys, and drive it over
//! HTTP. Killed on drop; its stderr is drained (fault-injection markers are forwarded).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// What instances of one platform share: store, keys and issuer.
#[derive(Clone)]
pub struct Platform {
    /// `redis://...`.
    pub redis_url: String,
    /// Key prefix in that Redis.
    pub prefix: String,
    /// Signing keys directory, shared by the instances (until keys live in the store).
    pub keys_dir: PathBuf,
    /// The issuer every instance announces.
    pub issuer: String,
    /// Extra TOML for every instance.
    pub overlay: String,
}

/// A running child instance.
pub struct Instance {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Child,
    /// Lines `tongzheng-test: ...` the child printed on stderr.
    pub markers: mpsc::UnboundedReceiver<String>,
    dir: PathBuf,
}

/// The key directory every chaos test shares. The key set itself lives in the store (sealed
/// under the test KEK), so the instances of one platform share it through Redis.
pub fn shared_keys_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tz-chaos-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("keys dir");
        dir
    })
    .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn config_file(dir: &Path, p: &Platform) -> PathBuf {
    let d = dir.display();
    let text = format!(
        "issuer = \"{issuer}\"\n{overlay}\n[store]\nbackend = \"redis\"\nallow_memory = false\nredis_url = \"{url}\"\n\
         prefix = \"{prefix}\"\n[keys]\ndir = \"{keys}\"\nkek = \"{kek}\"\n[audit]\ndir = \"{d}/audit\"\n[apps]\narchive_dir = \"{d}/archive\"\n",
        issuer = p.issuer,
        overlay = p.overlay,
        url = p.redis_url,
        prefix = p.prefix,
        keys = p.keys_dir.display(),
        kek = super::server::TEST_KEK,
    );
    let file = dir.join("tongzheng.toml");
    std::fs::write(&file, text).expect("config");
    file
}

impl Instance {
    /// Starts an instance of `p` with the given `TONGZHENG_TEST_*` variables and waits (bounded)
    /// until it answers `/readyz` with 200.
    pub async fn start(p: &Platform, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("tz-chaos-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = config_file(&dir, p);
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(super::binary());
        cmd.args(["serve", "--dev", "--listen", &listen, "--config", file.to_str().expect("utf-8 path")])
            .env("TONGZHENG_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tongzheng");
        let (tx, markers) = mpsc::unbounded_channel();
        let stderr = child.stderr.take().expect("stderr");
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("tongzheng-test:") {
                    let _ = tx.send(line);
                }
            }
        });
        let base = format!("http://{listen}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("instance exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "instance on {listen} not ready within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { base, child, markers, dir }
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `kill -9`.
    pub async fn kill9(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits up to `within` for the process to exit by itself; true when it did.
    pub async fn exited_within(&mut self, within: Duration) -> bool {
        matches!(tokio::time::timeout(within, self.child.wait()).await, Ok(Ok(_)))
    }

    /// Waits (bounded) for the stderr marker line containing `what`.
    pub async fn marker(&mut self, what: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.markers.recv()).await {
                Ok(Some(line)) if line.contains(what) => return true,
                Ok(Some(_)) => {}
                _ => return false,
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
