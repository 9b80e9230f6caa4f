//! The reference for `benches/load.sh` (issue 13): the least code that answers a token request
//! with axum and ring, plus the raw rates every load figure is divided by. Two more routes give
//! the ceilings of two targets on this stack: `/token` with `grant_type=authorization_code`
//! signs an access token and an ES256 ID token and does nothing else, and `/introspect-seen`
//! skips the signature of a token it verified before.
//! `reference serve --listen ADDR` | `reference rate OP --seconds N` (OP: see [`Op`]).

// It is not tongzheng: it reads the wall clock itself (no `clock::Clock`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

const ISSUER: &str = "http://127.0.0.1";
/// The clients load.sh uses, with the secrets of `config/dev.toml`.
const CLIENTS: [(&str, &str); 2] =
    [("admin-cli", "admin-cli-secret-0123456789abcdef"), ("demo-web", "demo-web-secret-0123456789abcdef")];

struct Ref {
    clients: HashMap<String, [u8; 32]>,
    key: EcdsaKeyPair,
    public: Vec<u8>,
    kid: String,
    rng: SystemRandom,
    /// Tokens whose signature was verified (SHA-256 of the token -> `exp`), for `/introspect-seen`.
    seen: std::sync::Mutex<HashMap<[u8; 32], i64>>,
}

/// Most entries `seen` holds; it starts over when full (the least code that bounds it).
const SEEN_MAX: usize = 10_000;

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn err(status: StatusCode, code: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], format!("{{\"error\":\"{code}\"}}")).into_response()
}

/// client_secret_basic (RFC 6749 s2.3.1) against the in-memory map, compared in constant time.
fn authenticate(r: &Ref, headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let raw = STANDARD.decode(v.strip_prefix("Basic ")?).ok()?;
    let pair = std::str::from_utf8(&raw).ok()?;
    let (id, secret) = pair.split_once(':')?;
    let want = r.clients.get(id)?;
    bool::from(subtle::ConstantTimeEq::ct_eq(&want[..], &sha256(secret.as_bytes())[..])).then_some(())?;
    Some(id.to_owned())
}

fn form_value<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

fn random_id(r: &Ref) -> String {
    let mut b = [0u8; 16];
    r.rng.fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

/// An ES256 RFC 9068 access token (`typ` at+jwt) for the client itself.
fn sign(r: &Ref, client_id: &str) -> String {
    let iat = now();
    let claims = serde_json::json!({"iss": ISSUER, "sub": client_id, "aud": ISSUER, "client_id": client_id,
        "scope": "", "jti": random_id(r), "iat": iat, "exp": iat + 600});
    jws(r, "at+jwt", &claims)
}

/// An ES256 OIDC ID token for `client_id` (Core s2), with `at_hash` (s3.1.3.6) of `at`.
fn sign_id(r: &Ref, client_id: &str, at: &str) -> String {
    let iat = now();
    let at_hash = URL_SAFE_NO_PAD.encode(&sha256(at.as_bytes())[..16]);
    let claims = serde_json::json!({"iss": ISSUER, "sub": "reference-user", "aud": client_id, "azp": client_id,
        "iat": iat, "exp": iat + 600, "auth_time": iat, "at_hash": at_hash});
    jws(r, "JWT", &claims)
}

/// A compact JWS of `claims`, signed with the ES256 key.
fn jws(r: &Ref, typ: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({"alg": "ES256", "typ": typ, "kid": r.kid});
    let mut t = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()));
    let sig = r.key.sign(&r.rng, t.as_bytes()).unwrap();
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
    t
}

/// Signature and `exp`, nothing else.
fn verify(r: &Ref, token: &str) -> bool {
    verified_exp(r, token).is_some_and(|e| e > now())
}

/// The `exp` of a token whose signature verifies.
fn verified_exp(r: &Ref, token: &str) -> Option<i64> {
    let (input, sig) = token.rsplit_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let key = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &r.public);
    key.verify(input.as_bytes(), &sig).ok()?;
    exp_of(input)
}

fn exp_of(input: &str) -> Option<i64> {
    let payload = input.split('.').nth(1).and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())?;
    let claims = serde_json::from_slice::<serde_json::Value>(&payload).ok()?;
    claims.get("exp").and_then(serde_json::Value::as_i64)
}

/// As [`verify`], skipping the signature of a token verified before (keyed by its SHA-256):
/// the least code a verified-signature cache can be.
fn verify_seen(r: &Ref, token: &str) -> bool {
    let key = sha256(token.as_bytes());
    let cached = r.seen.lock().unwrap().get(&key).copied();
    let exp = match cached {
        Some(exp) => exp,
        None => {
            let Some(exp) = verified_exp(r, token) else { return false };
            let mut seen = r.seen.lock().unwrap();
            if seen.len() >= SEEN_MAX {
                seen.clear();
            }
            seen.insert(key, exp);
            exp
        }
    };
    exp > now()
}

async fn token(State(r): State<Arc<Ref>>, headers: HeaderMap, body: String) -> Response {
    let Some(client_id) = authenticate(&r, &headers) else { return err(StatusCode::UNAUTHORIZED, "invalid_client") };
    let body = match form_value(&body, "grant_type") {
        Some("client_credentials") => {
            serde_json::json!({"access_token": sign(&r, &client_id), "token_type": "Bearer", "expires_in": 600})
        }
        // Two signatures and nothing else (the code is not even looked up): the most a code
        // redemption with an ES256 ID token could reach on this stack.
        Some("authorization_code") => {
            let at = sign(&r, &client_id);
            let id = sign_id(&r, &client_id, &at);
            serde_json::json!({"access_token": at, "id_token": id, "token_type": "Bearer", "expires_in": 600})
        }
        _ => return err(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn introspect(State(r): State<Arc<Ref>>, headers: HeaderMap, body: String) -> Response {
    if authenticate(&r, &headers).is_none() {
        return err(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let active = form_value(&body, "token").is_some_and(|t| verify(&r, t));
    axum::Json(serde_json::json!({"active": active})).into_response()
}

/// Introspection with the verified-signature cache: the most a cached introspection of a token
/// seen before could reach on this stack.
async fn introspect_seen(State(r): State<Arc<Ref>>, headers: HeaderMap, body: String) -> Response {
    if authenticate(&r, &headers).is_none() {
        return err(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let active = form_value(&body, "token").is_some_and(|t| verify_seen(&r, t));
    axum::Json(serde_json::json!({"active": active})).into_response()
}

fn state() -> Ref {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = key.public_key().as_ref().to_vec();
    let kid = URL_SAFE_NO_PAD.encode(&sha256(&public)[..16]);
    let clients = CLIENTS.iter().map(|(id, s)| ((*id).to_owned(), sha256(s.as_bytes()))).collect();
    Ref { clients, key, public, kid, rng, seen: std::sync::Mutex::default() }
}

/// What `rate` measures, single-threaded, in operations per second.
#[derive(Clone, Copy)]
enum Op {
    /// ring ES256 signature of a typical signing input.
    Es256Sign,
    /// ring ES256 verification.
    Es256Verify,
    /// ring RS256 (2048-bit) signature.
    Rs256Sign,
    /// argon2id at tongzheng's default cost (19 MiB, t=2, p=1), memory reused.
    Argon2id,
}

fn rate(op: Op, seconds: f64) -> f64 {
    let r = state();
    let msg = sign(&r, "bench-backend");
    let (input, sig) = msg.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let rsa = matches!(op, Op::Rs256Sign).then(|| {
        let keys = tongzheng::keys::Keys::ephemeral(0).unwrap();
        move |m: &[u8]| keys.sign_raw(tongzheng::jwt::Alg::RS256, m).unwrap()
    });
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19_456, 2, 1, None).unwrap(),
    );
    let mut arena = vec![argon2::Block::default(); 19_456];
    let start = Instant::now();
    let cpu = thread_cpu_ns();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let batch = if matches!(op, Op::Argon2id) { 1 } else { 50 };
        for _ in 0..batch {
            match op {
                Op::Es256Sign => drop(r.key.sign(&r.rng, input.as_bytes()).unwrap()),
                Op::Es256Verify => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &r.public)
                    .verify(input.as_bytes(), &sig)
                    .unwrap(),
                Op::Rs256Sign => drop(rsa.as_ref().unwrap()(input.as_bytes())),
                Op::Argon2id => {
                    let mut out = [0u8; 32];
                    argon
                        .hash_password_into_with_memory(b"demo-password", b"0123456789abcdef", &mut out, &mut arena)
                        .unwrap();
                }
            }
        }
        n += batch;
    }
    // Per second of this thread's own CPU time, so other work on the machine does not lower it
    // (wall time when the kernel does not say).
    let used = thread_cpu_ns().zip(cpu).map(|(b, a)| (b - a) as f64 / 1e9).filter(|s| *s > 0.0);
    n as f64 / used.unwrap_or_else(|| start.elapsed().as_secs_f64())
}

/// CPU time this thread has used, ns (`/proc/thread-self/schedstat`, first field).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("serve") => {
            let listen = args.get(3).cloned().unwrap_or_else(|| "127.0.0.1:8090".into());
            let workers = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(1);
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
            rt.block_on(async move {
                let app = Router::new()
                    .route("/token", post(token))
                    .route("/introspect", post(introspect))
                    .route("/introspect-seen", post(introspect_seen))
                    // The HTTP floor: what one request costs this stack with no work in it.
                    .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
                    .with_state(Arc::new(state()));
                // TCP_NODELAY as tongzheng's own connection loop sets it (Nagle would stall replies).
                let listener = tokio::net::TcpListener::bind(&listen).await.unwrap().tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app).await.unwrap();
            });
        }
        Some("rate") => {
            let op = match args.get(2).map(String::as_str) {
                Some("es256-sign") => Op::Es256Sign,
                Some("es256-verify") => Op::Es256Verify,
                Some("rs256-sign") => Op::Rs256Sign,
                Some("argon2id") => Op::Argon2id,
                other => panic!("unknown op {other:?}: es256-sign | es256-verify | rs256-sign | argon2id"),
            };
            let seconds = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2.0);
            println!("{:.0}", rate(op, seconds));
        }
        _ => eprintln!("usage: reference serve --listen ADDR | reference rate OP --seconds N"),
    }
}
