//! A real `redis-server` for the tests: one shared instance per test process (each test gets
//! its own key prefix), plus dedicated instances that a test may stop and restart.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tongzheng::store::redis::RedisStore;

/// A redis-server child process on a loopback port.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn spawn(port: u16) -> Child {
    // A watchdog shell kills redis when this test process exits, however it exits.
    let script = format!(
        "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning & \
         pid=$!; while kill -0 {parent} 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 1; done; kill $pid 2>/dev/null",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("redis-server must be installed (tests/run.sh installs it)")
}

fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            if s.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 7];
                if s.read(&mut buf).is_ok_and(|n| n > 0) && buf.starts_with(b"+PONG") {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server on port {port} did not start");
}

impl RedisServer {
    fn start_on(port: u16) -> Self {
        let child = spawn(port);
        wait_ready(port);
        Self { port, child: Some(child) }
    }

    /// A new instance only this test uses (it may stop and restart it).
    pub fn dedicated() -> Self {
        Self::start_on(free_port())
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (connections drop; the port is kept for [`RedisServer::restart`]).
    pub fn stop(&mut self) {
        let _ = Command::new("redis-cli").args(["-p", &self.port.to_string(), "shutdown", "nosave"]).output();
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn(self.port));
        wait_ready(self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The instance shared by every test of this process.
pub fn shared() -> &'static RedisServer {
    static SHARED: OnceLock<RedisServer> = OnceLock::new();
    SHARED.get_or_init(RedisServer::dedicated)
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("tz-test-{}:", tongzheng::crypto::random_token(9))
}

/// A store on the shared instance under `prefix`.
pub fn redis_store(prefix: &str) -> RedisStore {
    RedisStore::connect(&shared().url(), prefix, Duration::from_millis(800)).expect("redis store")
}
