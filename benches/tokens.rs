//! Criterion benchmarks of the token hot path: raw signatures (the baseline every figure is a
//! ratio to), minting an RFC 9068 access token, the whole client_credentials grant with client
//! authentication on the memory store, access-token validation (a full verification and a hit
//! of the verified-signature cache), and a store round trip on both stores (Redis when
//! `redis-server` is installed: one is started on a free loopback port and killed at the end).
//! Run: `cargo bench --bench tokens`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tongzheng::clients::cache::ClientCache;
use tongzheng::clients::{self, AuthMethod, Client, Credentials, GrantType, Origin, StoredSecret};
use tongzheng::config::Config;
use tongzheng::crypto::{Secret, sha256_hex};
use tongzheng::grant::{Ctx, client_credentials};
use tongzheng::jwks_cache::JwksCache;
use tongzheng::jwt::Alg;
use tongzheng::keys::Keys;
use tongzheng::session::Timeouts;
use tongzheng::store::DynStore;
use tongzheng::store::memory::MemoryStore;
use tongzheng::tokens::{AT_TYP, AccessClaims, Authority};

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

fn client() -> Client {
    Client {
        client_id: "bench-backend".into(),
        name: "bench".into(),
        secrets: vec![StoredSecret { sha256: sha256_hex(SECRET.as_bytes()), expires_at: None }],
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: vec!["api.read".into(), "api.write".into()],
        auth_method: AuthMethod::ClientSecretBasic,
        id_token_alg: Alg::ES256,
        jwks: None,
        jwks_uri: None,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        frontchannel_logout_uri: None,
        frontchannel_logout_session_required: false,
        consent_required: false,
        enabled: true,
        origin: Origin::Admin,
        registration_token_sealed: None,
        access_token_ttl: None,
        refresh_token_ttl: None,
        app_id: None,
        lifecycle: None,
        rate_limit: None,
        token_exchange: None,
        min_level: None,
        created_at: 0,
        subject_type: tongzheng::clients::SubjectType::Public,
        sector_identifier_uri: None,
        legacy_login: false,
        policy_uri: None,
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let keys = Keys::ephemeral(1_800_000_000).unwrap();
    let msg = b"eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJiZW5jaCJ9";
    let mut g = c.benchmark_group("sign");
    g.measurement_time(Duration::from_secs(3));
    for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
        g.bench_function(format!("raw {}", alg.as_str()), |b| b.iter(|| keys.sign_raw(alg, msg).unwrap()));
    }
    let claims = AccessClaims {
        iss: "https://id.example.gov.cn".into(),
        sub: "bench-backend".into(),
        aud: "https://id.example.gov.cn".into(),
        client_id: "bench-backend".into(),
        scope: "api.read api.write".into(),
        jti: "x5Xq2bG0cQ8b0S1vP3mJmA".into(),
        iat: 1_800_000_000,
        exp: 1_800_000_600,
        auth_time: None,
        acr: None,
        sid: None,
        gid: None,
        act: None,
        user_type: None,
    };
    // The server's path: the claims' own JSON writer, then the signature.
    g.bench_function("access token JWT (RFC 9068)", |b| {
        b.iter(|| keys.sign_json(Alg::ES256, AT_TYP, &claims.to_json()).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("verify");
    g.measurement_time(Duration::from_secs(3));
    let at = keys.sign(Alg::ES256, AT_TYP, &claims).unwrap();
    g.bench_function("ES256 access token, full verification", |b| b.iter(|| keys.verify::<AccessClaims>(&at).unwrap()));
    rt.block_on(keys.verify_fresh::<AccessClaims>(&at, 1_800_000_000)).unwrap();
    g.bench_function("ES256 access token, verified-signature cache hit", |b| {
        b.iter(|| rt.block_on(keys.verify_fresh::<AccessClaims>(&at, 1_800_000_000)).unwrap())
    });
    g.finish();

    let cache = ClientCache::default();
    let store: DynStore = Arc::new(MemoryStore::new());
    rt.block_on(clients::put(&store, &client())).unwrap();
    let config = Config::from_overlay("", true).unwrap();
    let jwks = JwksCache::new(reqwest::Client::new(), std::time::Duration::from_secs(30));
    let mut g = c.benchmark_group("grant");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("client_credentials (auth + grant, memory store)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let creds = Credentials::Basic { client_id: "bench-backend".into(), secret: Secret(SECRET.into()) };
                let a = clients::authenticate(&store, &cache, &jwks, creds, &["x"], 1_800_000_000).await.unwrap();
                let ctx = Ctx {
                    store: &store,
                    keys: &keys,
                    issuer: &config.issuer,
                    tokens: &config.tokens,
                    timeouts: Timeouts { idle: 1800, absolute: 43200 },
                    now: 1_800_000_000,
                    clients: &cache,
                };
                client_credentials::grant(ctx, &a.client, None).await.unwrap()
            })
        })
    });
    let token = keys.sign(Alg::ES256, AT_TYP, &claims).unwrap();
    let authority = Authority {
        store: &store,
        keys: &keys,
        issuer: "https://id.example.gov.cn",
        timeouts: Timeouts { idle: 1800, absolute: 43200 },
        clients: &cache,
    };
    g.bench_function("access token validation (verify + standing lookups)", |b| {
        b.iter(|| rt.block_on(authority.access(&token, 1_800_000_000)).unwrap().unwrap())
    });
    g.finish();

    // The token endpoint's one read: the guessing guard's two marks and the client record.
    let mut g = c.benchmark_group("store round trip (get_many of the guard's 2 marks + client)");
    g.measurement_time(Duration::from_secs(3));
    let wanted: Vec<String> =
        (0..2).map(|i| format!("guard:bench:mark:{i}")).chain(["client:bench-backend".into()]).collect();
    g.bench_function("memory", |b| b.iter(|| rt.block_on(store.get_many(&wanted)).unwrap()));
    if let Some(redis) = redis::Server::start() {
        let overlay = format!("[store]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{}\"\n", redis.port);
        let cfg = Config::from_overlay(&overlay, true).unwrap();
        let rstore = rt.block_on(async { tongzheng::server::open_store(&cfg) }).unwrap();
        rt.block_on(clients::put(&rstore, &client())).unwrap();
        g.bench_function("redis (loopback)", |b| b.iter(|| rt.block_on(rstore.get_many(&wanted)).unwrap()));
    }
    g.finish();
}

/// A throwaway redis-server for the store round trip, killed on drop.
mod redis {
    pub struct Server {
        child: std::process::Child,
        pub port: u16,
    }
    impl Server {
        pub fn start() -> Option<Self> {
            let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
            let child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .ok()?;
            let server = Self { child, port };
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            None
        }
    }
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

criterion_group!(tokens_benches, benches);
criterion_main!(tokens_benches);
