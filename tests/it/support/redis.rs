//! A real `redis-server` for the tests: one shared instance per test process (each test gets
//! its own key prefix), plus dedicated instances that a test may stop and restart (outages).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tongzheng::store::redis::RedisStore;

/// How long a store built by [`redis_store`] waits for Redis before answering `Unavailable`.
pub const STORE_DEADLINE: Duration = Duration::from_millis(800);

/// A redis-server child process on a loopback port. Redis dies with the test process: a
/// watchdog shell (the child we hold) kills it once this process is gone, however it exits.
pub struct RedisServer {
    port: u16,
    /// The command line after `redis-server` (for restarts).
    args: String,
    /// The watchdog shell; `None` while stopped.
    child: Option<Child>,
    /// The redis-server's own pid (a child of the watchdog), for a last-resort kill.
    redis_pid: u32,
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn log_path(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tz-redis-{}-{port}.log", std::process::id()))
}

/// The command line of a plain, non-persistent redis-server on loopback `port`.
pub fn plain_args(port: u16) -> String {
    format!("--port {port} --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning")
}

/// Starts the watchdog shell, which starts `redis-server {args}` and prints its pid, and kills
/// and reaps redis once this process is gone (even by Ctrl-C, which the watchdog ignores). Redis
/// logs to a file that is unlinked as soon as startup succeeded or failed (see [`wait_ready`]).
fn spawn(port: u16, args: &str) -> (Child, u32) {
    let log = log_path(port);
    let script = format!(
        "trap '' INT
         redis-server {args} </dev/null >'{log}' 2>&1 &
         pid=$!
         echo $pid
         while kill -0 {parent} 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.2; done
         if kill -0 $pid 2>/dev/null; then kill $pid; wait $pid; fi
         kill -0 {parent} 2>/dev/null || rm -f '{log}'",
        log = log.display(),
        parent = std::process::id()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("redis pid");
    let pid = line.trim().parse().expect("redis pid");
    (child, pid)
}

/// True when a raw `PING` on `port` gets `+PONG` back.
fn pings(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 5];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG"
}

/// Waits (bounded) for redis to answer PING; `Err` with its log when it exited or never answered.
/// Either way the log file is unlinked (redis keeps writing to its open file, which vanishes
/// with it).
fn wait_ready(port: u16, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let result = loop {
        if pings(port) {
            break Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log_path(port)).unwrap_or_default();
            break Err(format!("redis-server on port {port} exited ({status}): {log}"));
        }
        if Instant::now() > deadline {
            break Err(format!("redis-server on port {port} did not answer PING within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(log_path(port));
    result
}

/// Waits (bounded) for `child` to exit; true when it did.
fn wait_exit(child: &mut Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Kills redis and its watchdog without asking (a redis that hangs or never came up).
fn kill_hard(child: &mut Child, redis_pid: u32) {
    let _ = Command::new("sh").arg("-c").arg(format!("kill -9 {redis_pid} 2>/dev/null")).status();
    let _ = child.kill();
    let _ = child.wait();
}

impl RedisServer {
    /// A new instance only the calling test uses; it may [`stop`](Self::stop) and
    /// [`restart`](Self::restart) it. Panics when `redis-server` is missing (run `tests/run.sh`).
    pub fn dedicated() -> Self {
        Self::start_with(plain_args)
    }

    /// A new instance started as `redis-server {args(port)}`, answering plain `PING` on `port`
    /// (a TLS server keeps a plain port too; a sentinel answers `PING` as well).
    pub fn start_with(args: impl Fn(u16) -> String) -> Self {
        let mut last = String::new();
        // Another process may grab the free port before redis binds it; try a few.
        for _ in 0..3 {
            let port = free_port();
            let args = args(port);
            let (mut child, redis_pid) = spawn(port, &args);
            match wait_ready(port, &mut child) {
                Ok(()) => return Self { port, args, child: Some(child), redis_pid },
                Err(e) => {
                    kill_hard(&mut child, redis_pid);
                    last = e;
                }
            }
        }
        panic!("cannot start redis-server (is it installed? tests/run.sh installs it): {last}");
    }

    /// The plain port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server and waits until it is gone: open connections drop, new ones are
    /// refused, all data is lost. The port is kept for [`restart`](Self::restart). Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"SHUTDOWN NOSAVE\r\n");
            let _ = s.read(&mut [0u8; 16]);
        }
        // The watchdog exits once redis is gone.
        if !wait_exit(&mut child, Duration::from_secs(5)) {
            kill_hard(&mut child, self.redis_pid);
        }
    }

    /// Starts it again on the same port (stopping it first if it runs) and waits until it
    /// answers PING. The new server is empty.
    pub fn restart(&mut self) {
        self.stop();
        let (mut child, redis_pid) = spawn(self.port, &self.args);
        if let Err(e) = wait_ready(self.port, &mut child) {
            kill_hard(&mut child, redis_pid);
            panic!("restart failed: {e}");
        }
        self.child = Some(child);
        self.redis_pid = redis_pid;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The instance shared by every test of this process (never stopped; use a [`unique_prefix`]).
pub fn shared() -> &'static RedisServer {
    static SHARED: OnceLock<RedisServer> = OnceLock::new();
    SHARED.get_or_init(RedisServer::dedicated)
}

/// A key prefix no other test uses, e.g. `tz-test-3q2x...:`.
pub fn unique_prefix() -> String {
    format!("tz-test-{}:", tongzheng::crypto::random_token(9))
}

/// A store on the shared instance under `prefix`.
pub fn redis_store(prefix: &str) -> RedisStore {
    redis_store_at(&shared().url(), prefix)
}

/// A store on the Redis at `url` under `prefix`, with the tests' [`STORE_DEADLINE`].
pub fn redis_store_at(url: &str, prefix: &str) -> RedisStore {
    RedisStore::connect(url, prefix, STORE_DEADLINE).expect("redis store")
}
