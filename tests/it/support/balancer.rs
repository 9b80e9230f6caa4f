//! A tiny round-robin balancer for tests with several server instances: it may poll each
//! instance's `/readyz`, and retries refused connections on the next instance, as a real one
//! would; every other failure is recorded.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::process::refused;

/// A tiny round-robin balancer in front of instances, as a real one would be: it may poll each
/// instance's `/readyz` and send only to ready ones (to any when none is); a refused connection
/// is retried on the next instance. Anything else that is not the expected answer is a failed
/// request.
pub struct Balancer {
    bases: Vec<String>,
    /// Whether `/readyz` is polled (else every instance is always in the rotation).
    health_checks: bool,
    up: Vec<AtomicBool>,
    next: AtomicUsize,
    /// Requests sent (a retried refused connection counts once).
    pub sent: AtomicUsize,
    /// Refused connections retried.
    pub refused: AtomicUsize,
    /// What failed.
    pub failures: Mutex<Vec<String>>,
}

impl Balancer {
    /// A balancer over `bases`, polling their `/readyz` when `health_checks`.
    pub fn new(bases: Vec<String>, health_checks: bool) -> Arc<Self> {
        let up = bases.iter().map(|_| AtomicBool::new(true)).collect();
        Arc::new(Self {
            bases,
            health_checks,
            up,
            next: AtomicUsize::new(0),
            sent: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
        })
    }

    /// Polls every instance's readiness until `stop`.
    pub async fn health(self: Arc<Self>, stop: Arc<AtomicBool>) {
        let http = reqwest::Client::new();
        while self.health_checks && !stop.load(Ordering::Relaxed) {
            for (i, base) in self.bases.iter().enumerate() {
                let r = http.get(format!("{base}/readyz")).timeout(Duration::from_millis(500)).send().await;
                let ok = matches!(r, Ok(r) if r.status() == StatusCode::OK);
                self.up[i].store(ok, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pick(&self) -> usize {
        let n = self.bases.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|k| (start + k) % n).find(|i| self.up[*i].load(Ordering::Relaxed)).unwrap_or(start % n)
    }

    /// Sends the request `build` makes for an instance's base URL; retries refused connections
    /// on the next instance (bounded).
    pub async fn send(
        &self,
        client: &reqwest::Client,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let i = self.pick();
            match build(client, &self.bases[i]).timeout(Duration::from_secs(30)).send().await {
                Ok(r) => return Ok(r),
                Err(e) if refused(&e) && Instant::now() < deadline => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    if self.health_checks {
                        self.up[i].store(false, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return Err(format!("{} {e:?}", self.bases[i])),
            }
        }
    }

    /// `send`, expecting `status`.
    pub async fn expect(
        &self,
        client: &reqwest::Client,
        what: &str,
        status: StatusCode,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        let r = self.send(client, build).await.map_err(|e| format!("{what}: {e}"))?;
        if r.status() != status {
            let got = r.status();
            let body: String = r.text().await.unwrap_or_default().chars().take(300).collect();
            return Err(format!("{what}: {got} {body}"));
        }
        Ok(r)
    }

    /// Records a failed request.
    pub fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }
}
