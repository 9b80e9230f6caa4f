//! A real local HTTP server standing in for the remote real-name service (GB-6.4a), speaking
//! the README's contract: `POST /verify` with a bearer token and `{request_id, name, id_type,
//! id_number}`, answering `{"result": "match" | "mismatch" | "no_record", "billed": bool}`.
//! Numbers can be told to hang once (longer than the verifier's timeout) or to fail with 5xx.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// The bearer token the stand-in expects.
pub const TOKEN: &str = "realname-test-token-0123456789";

/// How the stand-in treats one ID number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers from its records.
    Normal,
    /// The first call never answers in time (sleeps 5 s), later ones answer normally.
    HangOnce,
    /// Every call answers 503.
    Fail,
}

#[derive(Default)]
struct Inner {
    /// ID number -> name on record.
    records: HashMap<String, String>,
    behaviours: HashMap<String, Behaviour>,
    /// Every request that arrived (its JSON body), answered or not.
    calls: Vec<Value>,
}

/// The stand-in service.
#[derive(Clone)]
pub struct RealName {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

async fn verify(State(r): State<RealName>, headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    let number = body["id_number"].as_str().unwrap_or_default().to_owned();
    let behaviour = {
        let mut i = r.inner.lock().unwrap();
        i.calls.push(body.clone());
        let b = i.behaviours.get(&number).copied().unwrap_or(Behaviour::Normal);
        if b == Behaviour::HangOnce {
            i.behaviours.insert(number.clone(), Behaviour::Normal);
        }
        b
    };
    if !authorized {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "unauthorized"})));
    }
    match behaviour {
        Behaviour::HangOnce => {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Behaviour::Fail => return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "down"}))),
        Behaviour::Normal => {}
    }
    let on_record = r.inner.lock().unwrap().records.get(&number).cloned();
    let result = match on_record {
        None => "no_record",
        Some(name) if name == body["name"].as_str().unwrap_or_default() => "match",
        Some(_) => "mismatch",
    };
    (StatusCode::OK, Json(json!({"result": result, "billed": true})))
}

impl RealName {
    /// Starts the stand-in on 127.0.0.1:0.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let r = Self { inner: Arc::default(), base };
        let app = axum::Router::new().route("/verify", axum::routing::post(verify)).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// Records that `number` belongs to `name`.
    pub fn record(&self, number: &str, name: &str) {
        self.inner.lock().unwrap().records.insert(number.to_owned(), name.to_owned());
    }

    /// Sets how `number` is treated.
    pub fn set(&self, number: &str, b: Behaviour) {
        self.inner.lock().unwrap().behaviours.insert(number.to_owned(), b);
    }

    /// The bodies of the calls that named `number`.
    pub fn calls_for(&self, number: &str) -> Vec<Value> {
        self.inner.lock().unwrap().calls.iter().filter(|c| c["id_number"] == number).cloned().collect()
    }

    /// How many calls arrived in all.
    pub fn total_calls(&self) -> usize {
        self.inner.lock().unwrap().calls.len()
    }

    /// The `[verify]` overlay of a tongzheng instance using this stand-in: 300 ms per call, two
    /// retries 10 ms apart.
    pub fn overlay(&self) -> String {
        format!(
            "[verify]\nverifier = \"http\"\nname = \"realname-test\"\nurl = \"{}/verify\"\ntoken = \"{TOKEN}\"\n\
             timeout_ms = 300\nretries = 2\nretry_backoff_ms = 10\n",
            self.base
        )
    }
}
