//! Relying-party back-channel logout receivers for the tests: one loopback HTTP server with a
//! path per receiver, each answering as told (ok, fail, fail once, hang), recording every
//! logout token it gets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;

/// How a receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200.
    Ok,
    /// 500 once, then 200.
    FailOnce,
    /// Never answers (sleeps a minute).
    Hang,
}

#[derive(Default)]
struct Inner {
    modes: HashMap<String, Mode>,
    /// (receiver, logout_token) of every request that was answered 200.
    accepted: Vec<(String, String)>,
    /// Receivers that saw a request at all (answered or not).
    arrivals: Vec<String>,
}

/// The receivers' server.
#[derive(Clone)]
pub struct Receivers {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

async fn receive(
    State(r): State<Receivers>,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    let mode = {
        let mut i = r.inner.lock().unwrap();
        i.arrivals.push(name.clone());
        let mode = i.modes.get(&name).copied().unwrap_or(Mode::Ok);
        if mode == Mode::FailOnce {
            i.modes.insert(name.clone(), Mode::Ok);
        }
        mode
    };
    match mode {
        Mode::Ok => {
            let token = form.get("logout_token").cloned().unwrap_or_default();
            r.inner.lock().unwrap().accepted.push((name, token));
            StatusCode::OK
        }
        Mode::FailOnce => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
    }
}

impl Receivers {
    /// Starts the server.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let r = Self { inner: Arc::default(), base };
        let app = axum::Router::new().route("/bc/{name}", axum::routing::post(receive)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// The back-channel URI of receiver `name`.
    pub fn uri(&self, name: &str) -> String {
        format!("{}/bc/{name}", self.base)
    }

    /// Sets how `name` answers.
    pub fn set(&self, name: &str, mode: Mode) {
        self.inner.lock().unwrap().modes.insert(name.to_owned(), mode);
    }

    /// Logout tokens `name` accepted.
    pub fn accepted(&self, name: &str) -> Vec<String> {
        self.inner.lock().unwrap().accepted.iter().filter(|(n, _)| n == name).map(|(_, t)| t.clone()).collect()
    }

    /// How many requests reached `name`.
    pub fn arrivals(&self, name: &str) -> usize {
        self.inner.lock().unwrap().arrivals.iter().filter(|n| *n == name).count()
    }

    /// Waits (polling, bounded) until `cond` holds; panics with `what` after `secs`.
    pub async fn wait_for(&self, secs: u64, what: &str, cond: impl Fn(&Self) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !cond(self) {
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
