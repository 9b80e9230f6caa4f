//! A tiny W3C WebDriver client (<https://www.w3.org/TR/webdriver2/>) over reqwest, driving
//! Debian's headless Chromium through chromedriver, for the tests that check the server's pages
//! in a real browser (JM-5.6). Every call has a timeout; nothing here can hang a test run.
//!
//! chromedriver runs on a free loopback port with a fresh profile in a temp dir; dropping the
//! [`Browser`] ends the session (which quits Chromium), kills chromedriver and removes the temp
//! dir (kept, with chromedriver's log, when the test is failing).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// Where Debian's `chromium` package puts the browser (override with `TZ_CHROMIUM`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts the driver (override with `TZ_CHROMEDRIVER`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Bound on one ordinary WebDriver command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on starting a session (Chromium's first start on a busy 2-core machine is slow).
const SESSION_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on chromedriver answering `/status` after it is spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A found element (its W3C reference).
#[derive(Debug, Clone)]
pub struct Element(String);

/// Headless Chromium under a chromedriver this value owns.
pub struct Browser {
    driver: Child,
    /// `http://127.0.0.1:PORT` of chromedriver.
    base: String,
    port: u16,
    session: Option<String>,
    http: reqwest::Client,
    dir: PathBuf,
}

fn binary(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} not found: the browser tests need Debian's chromium and chromium-driver packages; \
         run tests/run.sh (it installs them), or set {env} to the binary",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn fresh_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tz-webdriver-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        tongzheng::crypto::random_token(6)
    ));
    std::fs::create_dir_all(dir.join("profile")).expect("create browser profile dir");
    dir
}

impl Browser {
    /// Spawns chromedriver on a free port, waits for it to be ready and opens a session with
    /// headless Chromium. Panics (failing the test) when either binary is missing.
    pub async fn launch() -> Self {
        let chromium = binary("TZ_CHROMIUM", CHROMIUM);
        let chromedriver = binary("TZ_CHROMEDRIVER", CHROMEDRIVER);
        let dir = fresh_dir();
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", dir.join("chromedriver.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}; run tests/run.sh", chromedriver.display()));
        let http = reqwest::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("webdriver http client");
        let mut b = Self { driver, base: format!("http://127.0.0.1:{port}"), port, session: None, http, dir };
        b.wait_ready().await;
        b.new_session(&chromium).await;
        b
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited at start ({status}); see {}", self.dir.display());
            }
            let resp = self.http.get(format!("{}/status", self.base)).timeout(Duration::from_secs(2)).send().await;
            if let Ok(r) = resp
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                return;
            }
            assert!(Instant::now() < deadline, "chromedriver not ready on {} within {STARTUP_TIMEOUT:?}", self.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn new_session(&mut self, chromium: &Path) {
        let profile = self.dir.join("profile");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1024,768".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": { "pageLoad": 20_000, "script": 10_000, "implicit": 0 },
                    "goog:chromeOptions": { "binary": chromium.display().to_string(), "args": args },
                }
            }
        });
        let url = format!("{}/session", self.base);
        let v = Self::call(self.http.post(url).json(&caps).timeout(SESSION_TIMEOUT), "new session", &self.dir).await;
        let id = v["sessionId"].as_str().unwrap_or_else(|| panic!("no sessionId in {v}")).to_owned();
        self.session = Some(id);
    }

    async fn call(req: reqwest::RequestBuilder, what: &str, dir: &Path) -> Value {
        let resp = req.send().await.unwrap_or_else(|e| panic!("webdriver {what}: {e}"));
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_else(|e| panic!("webdriver {what}: bad JSON body: {e}"));
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "webdriver {what}: HTTP {status}: {} {} (chromedriver log under {})",
            value["error"],
            value["message"],
            dir.display()
        );
        value
    }

    fn session_url(&self, path: &str) -> String {
        let id = self.session.as_deref().expect("no open session");
        format!("{}/session/{id}{path}", self.base)
    }

    async fn get(&self, path: &str) -> Value {
        Self::call(self.http.get(self.session_url(path)), path, &self.dir).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        Self::call(self.http.post(self.session_url(path)).json(&body), path, &self.dir).await
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn navigate(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> String {
        self.get("/url").await.as_str().expect("url string").to_owned()
    }

    /// The current page's title.
    pub async fn title(&self) -> String {
        self.get("/title").await.as_str().expect("title string").to_owned()
    }

    /// The current page's serialized DOM.
    pub async fn source(&self) -> String {
        self.get("/source").await.as_str().expect("source string").to_owned()
    }

    /// The first element matching the CSS `selector`; panics when there is none.
    pub async fn find(&self, selector: &str) -> Element {
        let v = self.post("/element", json!({ "using": "css selector", "value": selector })).await;
        Element(v[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("no element ref for {selector}: {v}")).to_owned())
    }

    /// How many elements match the CSS `selector`.
    pub async fn count(&self, selector: &str) -> usize {
        let v = self.post("/elements", json!({ "using": "css selector", "value": selector })).await;
        v.as_array().map_or(0, Vec::len)
    }

    /// Polls until an element matches the CSS `selector` (a page still loading, e.g. after a
    /// click that submits a form), for at most `limit`; panics with the page source if none does.
    pub async fn wait_for(&self, selector: &str, limit: Duration) -> Element {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.post("/elements", json!({ "using": "css selector", "value": selector })).await;
            if let Some(id) = v.get(0).and_then(|e| e[ELEMENT_KEY].as_str()) {
                return Element(id.to_owned());
            }
            if Instant::now() >= deadline {
                panic!("no {selector} within {limit:?} at {}: {}", self.current_url().await, self.source().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into `el`.
    pub async fn send_keys(&self, el: &Element, text: &str) {
        self.post(&format!("/element/{}/value", el.0), json!({ "text": text })).await;
    }

    /// Empties an input.
    pub async fn clear(&self, el: &Element) {
        self.post(&format!("/element/{}/clear", el.0), json!({})).await;
    }

    /// Clicks `el`.
    pub async fn click(&self, el: &Element) {
        self.post(&format!("/element/{}/click", el.0), json!({})).await;
    }

    /// The attribute `name` of `el`, if set.
    pub async fn attribute(&self, el: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", el.0)).await.as_str().map(str::to_owned)
    }

    /// The rendered text of `el`.
    pub async fn text(&self, el: &Element) -> String {
        self.get(&format!("/element/{}/text", el.0)).await.as_str().expect("text string").to_owned()
    }

    /// Polls the current URL until `pred` holds, for at most `limit`; returns the last URL.
    pub async fn wait_for_url(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let url = self.current_url().await;
            if pred(&url) || Instant::now() >= deadline {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` (a function body; `return` gives the value) in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// Resizes the viewport (the page's `innerWidth` x `innerHeight`) to `width` x `height`
    /// CSS pixels: sets the window, waits until the page's size has settled, then corrects by
    /// what the window's frame takes. (On a loaded machine the page can report its old size
    /// for a moment after the window was set: correcting by that reading overshot, and the
    /// viewport test failed in a full run with both cores busy.)
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let mut rect = (width, height);
        for _ in 0..4 {
            self.post("/window/rect", json!({ "width": rect.0, "height": rect.1 })).await;
            let (w, h) = self.settled_viewport().await;
            if (w, h) == (width, height) {
                return;
            }
            rect = ((rect.0 + width).saturating_sub(w), (rect.1 + height).saturating_sub(h));
        }
        let v = self.execute("return [window.innerWidth, window.innerHeight];").await;
        panic!("viewport {width}x{height} not reached: {v}");
    }

    /// The page's `innerWidth` x `innerHeight` once two readings 100 ms apart agree (at most 2 s).
    async fn settled_viewport(&self) -> (u32, u32) {
        let read = || async {
            let v = self.execute("return [window.innerWidth, window.innerHeight];").await;
            (v[0].as_u64().unwrap_or(0) as u32, v[1].as_u64().unwrap_or(0) as u32)
        };
        let mut last = read().await;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = read().await;
            if now == last {
                return now;
            }
            last = now;
        }
        last
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot base64"))
            .expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("screenshot dir");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Ends the session (Chromium quits). Also done, blocking, on drop.
    pub async fn quit(&mut self) {
        if self.session.is_some() {
            let url = self.session_url("");
            self.session = None;
            Self::call(self.http.delete(url), "delete session", &self.dir).await;
        }
    }

    /// Blocking `DELETE /session/ID` for `Drop` (no runtime there), bounded by timeouts.
    fn delete_session_blocking(&mut self) {
        let Some(id) = self.session.take() else { return };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let req = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        if s.write_all(req.as_bytes()).is_ok() {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.delete_session_blocking();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        if std::thread::panicking() {
            eprintln!("webdriver: profile and chromedriver.log kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
