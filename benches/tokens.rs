//! Criterion benchmarks of the token hot path: raw signatures (the baseline every figure is a
//! ratio to), minting an RFC 9068 access token, the whole client_credentials grant with client
//! authentication on the memory store, and access-token validation.
//! Run: `cargo bench --bench tokens`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
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
    };
    g.bench_function("access token JWT (RFC 9068)", |b| b.iter(|| keys.sign(Alg::ES256, AT_TYP, &claims).unwrap()));
    g.finish();

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
                let a = clients::authenticate(&store, &jwks, creds, &["x"], 1_800_000_000).await.unwrap();
                let ctx = Ctx {
                    store: &store,
                    keys: &keys,
                    issuer: &config.issuer,
                    tokens: &config.tokens,
                    timeouts: Timeouts { idle: 1800, absolute: 43200 },
                    now: 1_800_000_000,
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
    };
    g.bench_function("access token validation (verify + standing lookups)", |b| {
        b.iter(|| rt.block_on(authority.access(&token, 1_800_000_000)).unwrap().unwrap())
    });
    g.finish();
}

criterion_group!(tokens_benches, benches);
criterion_main!(tokens_benches);
