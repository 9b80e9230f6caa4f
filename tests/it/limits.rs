//! Connection limits from outside (issue 9): a request head sent one byte at a time, an idle
//! keep-alive connection, a body sent one byte at a time and a crowd of slow connections are
//! all cut by the server, on plain HTTP and after the TLS handshake; `/healthz` keeps
//! answering; HSTS only where the public side is HTTPS (RFC 6797).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tongzheng::clock::Clock;
use tongzheng::config::Config;
use tongzheng::server;

use crate::support::server::{Backend, TestServer};

/// A bound on how long the server may take to cut a connection, far above the configured
/// 1-2 s limits: the tests wait for the cut, they do not time it.
const PATIENCE: Duration = Duration::from_secs(20);

/// Writes `bytes` one at a time, 200 ms apart, until done or the peer is gone.
async fn trickle<W: AsyncWrite + Unpin>(mut w: W, bytes: Vec<u8>) {
    for b in bytes {
        if w.write_all(&[b]).await.is_err() || w.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads until the server closes the connection (EOF or reset) and returns what it sent;
/// fails the test when the connection is still open after [`PATIENCE`].
async fn until_closed<R: AsyncRead + Unpin>(mut r: R, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    assert!(tokio::time::timeout(PATIENCE, read).await.is_ok(), "{what}: the server kept the connection open");
    got
}

/// A request head that takes about a minute to trickle in.
fn slow_head() -> Vec<u8> {
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 300));
    head
}

fn port(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

async fn healthz(s: &TestServer) -> StatusCode {
    // A new client, so a new connection.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    http.get(s.url("/healthz")).send().await.map(|r| r.status()).unwrap_or(StatusCode::REQUEST_TIMEOUT)
}

// Slowloris: a request head sent one byte every 200 ms is cut after server.header_timeout.
async fn slow_request_head_is_cut(b: Backend) {
    let s = TestServer::start_with(b, "[server]\nheader_timeout = 1\n").await;
    let (r, w) = TcpStream::connect(port(&s)).await.unwrap().into_split();
    let writer = tokio::spawn(trickle(w, slow_head()));
    let got = until_closed(r, "slow head").await;
    assert!(!String::from_utf8_lossy(&got).contains(" 200 "), "a partial head was answered");
    writer.abort();
    assert_eq!(healthz(&s).await, StatusCode::OK);
}

// An idle keep-alive connection is closed after server.idle_timeout (RFC 9112 s9.5 lets a
// server close an idle connection at any time). The header timeout is long here, so the idle
// timeout is what closes it.
async fn idle_keep_alive_is_closed(b: Backend) {
    let s = TestServer::start_with(b, "[server]\nheader_timeout = 60\nidle_timeout = 1\n").await;
    let mut c = TcpStream::connect(port(&s)).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let got = until_closed(c, "idle keep-alive").await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("connection: close"), "closed by idleness, not by the response");
}

// A body sent one byte every 200 ms is cut after server.body_timeout with 408 (RFC 9110 s15.5.9).
async fn slow_body_is_cut(b: Backend) {
    let s = TestServer::start_with(b, "[server]\nbody_timeout = 1\n").await;
    let (r, mut w) = TcpStream::connect(port(&s)).await.unwrap().into_split();
    let head = "POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Content-Length: 300\r\n\r\n";
    w.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(trickle(w, vec![b'a'; 300]));
    let got = until_closed(r, "slow body").await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    writer.abort();
}

// Hundreds of slow connections neither stop /healthz nor stay open past the header timeout.
async fn healthz_answers_beside_slow_connections(b: Backend) {
    let s = TestServer::start_with(b, "[server]\nheader_timeout = 1\n").await;
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..300 {
        let (r, w) = TcpStream::connect(port(&s)).await.unwrap().into_split();
        readers.push(r);
        writers.push(tokio::spawn(trickle(w, slow_head())));
    }
    assert_eq!(healthz(&s).await, StatusCode::OK);
    let cut = readers.into_iter().map(|r| until_closed(r, "one of 300 slow connections"));
    for got in futures_join(cut).await {
        assert!(!String::from_utf8_lossy(&got).contains(" 200 "));
    }
    for w in writers {
        w.abort();
    }
    assert_eq!(healthz(&s).await, StatusCode::OK);
}

async fn futures_join<F: std::future::Future + Send + 'static>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

// server.max_connections: a connection beyond the cap is closed at once; once the slow ones
// are cut, new connections are served again.
async fn connections_beyond_the_cap_are_closed(b: Backend) {
    let s = TestServer::start_with(b, "[server]\nheader_timeout = 2\nmax_connections = 20\n").await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(port(&s)).await.unwrap());
    }
    // Accepted in order: the 21st finds no slot. It is closed without an answer.
    let mut extra = TcpStream::connect(port(&s)).await.unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let got = until_closed(extra, "connection over the cap").await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    for c in held {
        until_closed(c, "idle connection without a request").await;
    }
    assert_eq!(healthz(&s).await, StatusCode::OK);
}

// RFC 6797 s7.2: no Strict-Transport-Security over plain HTTP; behind a TLS-terminating proxy
// the public side is HTTPS, so it is sent there.
async fn hsts_only_where_public_side_is_https(b: Backend) {
    let s = TestServer::start(b).await;
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
    let s = TestServer::start_with(b, "[server]\nbehind_tls_proxy = true\n").await;
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let s = TestServer::start_with(
        b,
        "[server]\nbehind_tls_proxy = true\nhsts_max_age = 600\nhsts_include_subdomains = true\n",
    )
    .await;
    let r = s.http.get(s.url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=600; includeSubDomains");
}

/// A production instance over TLS (rcgen certificate for `localhost`) on `b`'s store.
struct TlsServer {
    addr: std::net::SocketAddr,
    cert_pem: String,
    cert_der: Vec<u8>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_tls(b: Backend, server_overlay: &str) -> TlsServer {
    let dir = std::env::temp_dir().join(format!("tz-limits-{}", tongzheng::crypto::random_token(6)));
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let overlay = format!(
        "issuer = \"https://localhost:{port}\"\n[server]\nlisten = \"{addr}\"\n{server_overlay}\n\
         [tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n[store]\nbackend = \"memory\"\nallow_memory = true\n\
         [keys]\ndir = \"{keys}\"\nkek = \"{kek}\"\n[audit]\ndir = \"{audit}\"\n[apps]\narchive_dir = \"{archive}\"\n",
        port = addr.port(),
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
        keys = dir.join("keys").display(),
        kek = crate::support::server::TEST_KEK,
        audit = dir.join("audit").display(),
        archive = dir.join("archive").display(),
    );
    let config = Config::from_overlay(&overlay, false).expect("production config");
    let tls = server::tls_config(&config).unwrap().expect("tls configured");
    let (_, store) = crate::support::server::store_for(b, &Clock::system());
    let state = server::build(config, Clock::system(), store, None).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, state, Some(tls), async {
        let _ = rx.await;
    }));
    TlsServer { addr, cert_pem: ck.cert.pem(), cert_der: ck.cert.der().to_vec(), _stop: tx }
}

async fn tls_connect(t: &TlsServer) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(t.cert_der.clone())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(t.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

// The header timeout holds after the TLS handshake too; HTTPS responses carry HSTS (RFC 6797
// s7.1).
async fn tls_slow_head_is_cut_and_hsts_sent(b: Backend) {
    let t = start_tls(b, "header_timeout = 1").await;
    let (r, w) = tokio::io::split(tls_connect(&t).await);
    let writer = tokio::spawn(trickle(w, slow_head()));
    let got = until_closed(r, "slow head over TLS").await;
    assert!(!String::from_utf8_lossy(&got).contains(" 200 "));
    writer.abort();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(t.cert_pem.as_bytes()).unwrap())
        .resolve("localhost", t.addr)
        .build()
        .unwrap();
    let r = client.get(format!("https://localhost:{}/healthz", t.addr.port())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
}

// Every answer, whatever answered it (a handler, an error, the 404 fallback), carries the edge
// layer's headers: its request id (also in an error's body: the handler ran inside the
// request's scope) and the security headers (no MIME sniffing, no referrer, no framing).
#[tokio::test]
async fn every_answer_carries_the_edge_headers() {
    let s = TestServer::start(Backend::Memory).await;
    let answers = [
        s.http.get(s.url("/healthz")).send().await.unwrap(),
        s.http.get(s.url("/no-such-page")).send().await.unwrap(),
        s.http.post(s.url("/token")).form(&[("grant_type", "client_credentials")]).send().await.unwrap(),
    ];
    let mut ids = Vec::new();
    for (r, status) in answers.into_iter().zip([200, 404, 401]) {
        assert_eq!(r.status().as_u16(), status);
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
        let id = h["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        if status == 401 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client");
            assert_eq!(body["request_id"], id.as_str());
        }
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per request");
}

per_backend!(
    slow_request_head_is_cut,
    idle_keep_alive_is_closed,
    slow_body_is_cut,
    healthz_answers_beside_slow_connections,
    connections_beyond_the_cap_are_closed,
    hsts_only_where_public_side_is_https,
    tls_slow_head_is_cut_and_hsts_sent,
);
