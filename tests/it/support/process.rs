//! The server as a child process of the `tongzheng` binary, signalled as an orchestrator would
//! (SIGTERM, SIGKILL), for graceful-restart and crash tests; each child's log goes to a file that
//! a failing test prints.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::server::keys_dir;

/// A `tongzheng serve --dev` child process on a fixed loopback port (killed when dropped).
pub struct ServerProcess {
    child: tokio::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: PathBuf,
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tz-restarts-{}-{tag}-{}",
        std::process::id(),
        tongzheng::crypto::random_token(6).replace(['-', '_'], "x")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Config lines every child gets: the test process's key set and its own audit directory.
pub fn child_base(dir: &Path, port: u16) -> String {
    format!(
        "[keys]\ndir = \"{}\"\nkek = \"{}\"\n[audit]\ndir = \"{}\"\n[apps]\narchive_dir = \"{}\"\n",
        keys_dir().display(),
        super::server::TEST_KEK,
        dir.join(format!("audit-{port}")).display(),
        dir.join(format!("archive-{port}")).display()
    )
}

/// TOML putting a child on the Redis at `url` under `prefix`.
pub fn on_redis(url: &str, prefix: &str) -> String {
    format!("[store]\nbackend = \"redis\"\nredis_url = \"{url}\"\nprefix = \"{prefix}\"\n")
}

impl ServerProcess {
    /// Starts `serve --dev --listen 127.0.0.1:PORT --config DIR/PORT.toml` with `toml` (which
    /// should include [`child_base`]); its log goes to `DIR/PORT.log` (appended across restarts).
    pub fn spawn(dir: &Path, port: u16, toml: &str) -> Self {
        let config = dir.join(format!("{port}.toml"));
        std::fs::write(&config, toml).unwrap();
        let log = dir.join(format!("{port}.log"));
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let err = out.try_clone().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(super::binary())
            .args(["serve", "--dev", "--listen", &listen, "--config", config.to_str().unwrap()])
            .env("TONGZHENG_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child, port, base: format!("http://{listen}"), log }
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until `/readyz` answers 200.
    pub async fn ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(self.url("/readyz")).timeout(Duration::from_secs(2)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("instance on {} exited ({status}):\n{}", self.port, self.log_text());
            }
            assert!(Instant::now() < deadline, "instance on {} never became ready:\n{}", self.port, self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (`TERM`, `KILL` ...) as an orchestrator would.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
        assert!(ok.success(), "kill -{signal} {pid}");
    }

    /// Waits (bounded) for the process to exit.
    pub async fn exit(&mut self) -> std::process::ExitStatus {
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("instance on {} did not exit:\n{}", self.port, self.log_text()),
        }
    }
}

/// Whether `e` (at any depth) is a refused TCP connection: the one failure a balancer retries
/// elsewhere without knowing whether the request was processed.
pub fn refused(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = s.source();
    }
    false
}
