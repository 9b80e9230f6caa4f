//! Assembles an instance and serves it: open the store, load or generate keys, seed data from
//! config, then serve HTTP (dev, or behind a TLS proxy) or HTTPS via rustls with the ring
//! provider, TLS 1.2 and 1.3 only. `run` never picks its own address: the caller binds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::clients::{self, AuthMethod, Client, GrantType, Origin, StoredSecret};
use crate::clock::Clock;
use crate::config::{Backend, Config};
use crate::crypto::Secret;
use crate::http::{AppState, app};
use crate::jwt::Alg;
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::store::instrumented::Instrumented;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::{DynStore, StoreError};
use crate::users::{self, PasswordPool, User};

pub mod conn;
pub mod seeding;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Store could not be opened or seeded.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Keys could not be loaded or generated.
    #[error("keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    /// TLS material is unusable.
    #[error("tls: {0}")]
    Tls(String),
    /// Seed data in the config is invalid.
    #[error("seed: {0}")]
    Seed(String),
    /// The audit log could not be opened.
    #[error("audit: {0}")]
    Audit(#[from] crate::audit::AuditError),
    /// Socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the configured store.
pub fn open_store(config: &Config) -> Result<DynStore, ServerError> {
    Ok(match config.store.backend {
        Backend::Memory => Arc::new(MemoryStore::new()),
        Backend::Redis => {
            // validate() already checked the target; this only fails on unreadable TLS files.
            let target = crate::store::redis::target::Target::from_config(&config.store)
                .map_err(|(field, reason)| ServerError::Store(StoreError::Unavailable(format!("{field}: {reason}"))))?;
            Arc::new(RedisStore::open(&target, &config.store.prefix, Duration::from_millis(config.store.timeout_ms))?)
        }
    })
}

/// Builds the state of an instance: store (wrapped to record its calls in the instance's
/// metrics), keys (the set shared through the store; `keys`, when given, is what this instance
/// publishes if the store has none: tests do so to skip RSA generation), password pool, and the
/// seed data.
pub async fn build(config: Config, clock: Clock, store: DynStore, keys: Option<Keys>) -> Result<AppState, ServerError> {
    let metrics = Metrics::new(clock.now());
    let store = Instrumented::wrap(store, metrics.clone());
    let keep = crate::keys::keep_retired(&config.tokens);
    let given = keys.map(|k| k.material());
    let keys = Keys::open(&config.keys, config.server.dev, store.clone(), clock.now(), keep, given)
        .await?
        .with_verified_cache(config.tokens.verified_cache_entries);
    metrics.watch_verified(keys.verified_cache());
    let wait = Duration::from_millis(config.security.password_queue_timeout_ms);
    let priority = config.security.password_hash_priority;
    let passwords = PasswordPool::with_priority(config.hash_concurrency(), wait, config.argon2(), priority)
        .map_err(|e| ServerError::Seed(e.to_string()))?;
    tracing::info!(
        slots = config.hash_concurrency(),
        memory_bound_mib = passwords.memory_bound() >> 20,
        "password hashing memory: at most slots x argon2 memory"
    );
    let outbound = crate::outbound::Policy::new(&config.outbound, config.server.dev);
    let http = crate::outbound::client::build(outbound).map_err(|e| ServerError::Tls(e.to_string()))?;
    let audit = crate::audit::Audit::open(&config.audit, &config.issuer, clock.clone(), http.clone())?;
    audit.attach_metrics(metrics.clone());
    let state = AppState::new(crate::http::Parts { config, store, keys, clock, passwords, http, metrics, audit })
        .map_err(ServerError::Seed)?;
    if let Err(e) = seeding::seed_once(&state).await {
        match e {
            // Redis may come up after us: the seeder retries, and /readyz says not ready.
            ServerError::Store(StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, "store unavailable; seed data not written yet")
            }
            other => return Err(other),
        }
    }
    Ok(state)
}

/// Creates the configured clients and users. Config-defined clients are rewritten at every
/// start (config is their source of truth); users are only created when missing.
async fn seed(state: &AppState) -> Result<(), ServerError> {
    let now = state.clock.now();
    for c in &state.config.seed.clients {
        let grant_types = c
            .grant_types
            .iter()
            .map(|g| {
                GrantType::parse(g)
                    .ok_or_else(|| ServerError::Seed(format!("client {}: unknown grant type {g}", c.client_id)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let auth_method = AuthMethod::parse(&c.token_endpoint_auth_method)
            .ok_or_else(|| ServerError::Seed(format!("client {}: unknown auth method", c.client_id)))?;
        let secrets = match (&c.client_secret, &c.client_secret_sha256) {
            (Some(s), _) => vec![StoredSecret { sha256: crate::crypto::sha256_hex(s.as_bytes()), expires_at: None }],
            (None, Some(h)) => vec![StoredSecret { sha256: h.to_lowercase(), expires_at: None }],
            (None, None) => Vec::new(),
        };
        if auth_method.uses_secret() && secrets.is_empty() {
            return Err(ServerError::Seed(format!("client {} needs a secret", c.client_id)));
        }
        let created_at = clients::get(&state.store, &c.client_id).await?.map_or(now, |old| old.created_at);
        let client = Client {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            secrets,
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types,
            scopes: c.scopes.clone(),
            auth_method,
            id_token_alg: Alg::RS256,
            jwks: None,
            jwks_uri: None,
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: c.backchannel_logout_uri.is_some(),
            frontchannel_logout_uri: None,
            frontchannel_logout_session_required: false,
            consent_required: false,
            enabled: true,
            origin: Origin::Config,
            registration_token_sealed: None,
            access_token_ttl: None,
            refresh_token_ttl: None,
            app_id: None,
            lifecycle: None,
            rate_limit: None,
            token_exchange: None,
            min_level: None,
            created_at,
            subject_type: crate::clients::SubjectType::Public,
            sector_identifier_uri: None,
            legacy_login: false,
            policy_uri: None,
        };
        clients::put(&state.store, &client).await?;
    }
    for tc in &state.config.federation.trusts {
        let id = tc.id.clone().ok_or_else(|| ServerError::Seed("federation.trusts: every trust needs an id".into()))?;
        let old = crate::federation::get(&state.store, &id).await?;
        let t = tc
            .clone()
            .into_trust(id.clone(), state.keys.data(), state.config.server.dev, now, old.as_ref())
            .map_err(|e| ServerError::Seed(format!("trust {id}: {e}")))?;
        crate::federation::put(&state.store, &t).await?;
    }
    // AY-7.1: every scope a seeded client holds is in the catalogue.
    for c in &state.config.seed.clients {
        for name in &c.scopes {
            if !crate::scopes::valid_name(name) {
                return Err(ServerError::Seed(format!("client {}: '{name}' is not a scope token", c.client_id)));
            }
            let def = crate::scopes::ScopeDef {
                name: name.clone(),
                description: format!("declared in the configuration (client {})", c.client_id),
                description_zh: String::new(),
                description_en: String::new(),
                sensitive: false,
                built_in: false,
                created_at: now,
            };
            crate::scopes::create(&state.store, &state.builtin_scopes, &def).await?;
        }
    }
    for u in &state.config.seed.users {
        if users::by_username(&state.store, &u.username).await?.is_some() {
            continue;
        }
        let hash =
            state.passwords.hash(Secret(u.password.clone())).await.map_err(|e| ServerError::Seed(e.to_string()))?;
        let mut user = User::new(u.username.clone(), u.name.clone(), hash, now);
        user.email.clone_from(&u.email);
        user.email_verified = u.email.is_some();
        user.set_phone(state.keys.data(), u.phone_number.as_deref());
        match users::create(&state.store, state.keys.data(), &user).await {
            // A seeding instance racing another one for the same user: theirs stands.
            Ok(()) | Err(users::WriteError::UsernameTaken | users::WriteError::Duplicate(_)) => {}
            Err(users::WriteError::Store(e)) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Loads the rustls server config: TLS 1.2 and 1.3 only, ring provider, h2 and http/1.1.
pub fn tls_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, ServerError> {
    if config.tls.cert.is_empty() {
        return Ok(None);
    }
    let read = |p: &str| std::fs::read(p).map_err(|e| ServerError::Tls(format!("{p}: {e}")));
    let cert_pem = read(&config.tls.cert)?;
    let key_pem = read(&config.tls.key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!("{}: no certificate found", config.tls.cert)));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ServerError::Tls(format!("private key: {e}")))?
        .ok_or_else(|| ServerError::Tls(format!("{}: no private key found", config.tls.key)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

/// Serves `state` on an already-bound listener until `shutdown` resolves, then shuts down
/// gracefully: readiness turns 503 at once while the instance keeps serving for
/// `server.drain_grace_ms` (balancers stop sending), the listener closes, requests in flight get
/// `server.drain_secs` to finish, background work stops (the outbox worker hands back the
/// deliveries it holds), and the audit log is flushed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if tls.is_some() {
        let expiry = std::fs::read(&state.config.tls.cert).ok().and_then(|pem| crate::metrics::cert::not_after(&pem));
        state.metrics.set_tls_not_after(expiry.unwrap_or(0));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let outbox = spawn_background(&state, stop_rx);
    let instance = state.instance.clone();
    let grace = Duration::from_millis(state.config.server.drain_grace_ms);
    let stop_accepting = async move {
        shutdown.await;
        instance.start_draining();
        tracing::info!(instance = %instance.id(), grace_ms = grace.as_millis(), "shutdown: draining, /readyz answers 503");
        tokio::time::sleep(grace).await;
        tracing::info!("shutdown: listener closed, finishing requests in flight");
    };
    // Written out and fsynced once requests have drained, so their events are kept.
    let audit = state.audit.clone();
    let closing = state.instance.draining_flag();
    let limits = conn::Limits::new(&state.config.server, tls.is_some());
    let stamp = crate::http::context::Stamp::of(&state);
    let router = app(state);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    conn::serve(listener, router, stamp, acceptor, limits, closing, stop_accepting).await;
    let _ = stop_tx.send(true);
    if tokio::time::timeout(Duration::from_secs(10), outbox).await.is_err() {
        tracing::warn!("shutdown: the logout outbox worker did not stop in time; its leases run out instead");
    }
    audit.shutdown().await;
    tracing::info!("shutdown complete");
    Ok(())
}

/// Starts the background tasks of an instance: the logout outbox worker (whose handle is
/// returned, so shutdown can wait for it to hand back its leases), the bootstrap seeder, the key
/// set refresher, the session expiry sweeper, the logout intent recovery and the audit writer,
/// retention sweeper and forwarder. They stop when `stop` turns true, except the audit writer,
/// which `serve` stops with `Audit::shutdown` after draining.
fn spawn_background(state: &AppState, stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let c = &state.config;
    if let Err(e) = state.audit.spawn(stop.clone()) {
        tracing::warn!(error = %e, "audit tasks not started");
    }
    let worker = Arc::new(crate::logout::outbox::Worker {
        store: state.store.clone(),
        keys: state.keys.clone(),
        http: state.http.clone(),
        clock: state.clock.clone(),
        issuer: c.issuer.clone(),
        config: c.logout.clone(),
        wake: state.outbox_wake.clone(),
        metrics: Some(state.metrics.clone()),
        peers: state.peers.clone(),
    });
    let outbox = tokio::spawn(worker.run(stop.clone()));
    tokio::spawn(seeding::run(state.clone(), stop.clone()));
    let sync = Arc::new(crate::federation::sync::Worker {
        store: state.store.clone(),
        keys: state.keys.clone(),
        http: state.http.clone(),
        peers: state.peers.clone(),
        clock: state.clock.clone(),
        wake: state.sync_wake.clone(),
        audit: state.audit.clone(),
    });
    tokio::spawn(sync.run(stop.clone()));
    let every = Duration::from_secs(c.keys.refresh_secs);
    tokio::spawn(crate::keys::shared::refresher(state.keys.clone(), state.clock.clone(), every, stop.clone()));
    let sweeper = crate::logout::expiry::Sweeper {
        store: state.store.clone(),
        clock: state.clock.clone(),
        issuer: c.issuer.clone(),
        timeouts: state.timeouts(),
        broadcast: c.logout.broadcast_on_expiry,
        every_ms: c.logout.sweep_ms,
        wake: state.outbox_wake.clone(),
        audit: Some(state.audit.clone()),
    };
    tokio::spawn(sweeper.run(stop.clone()));
    let recovery = crate::logout::intent::Recovery {
        store: state.store.clone(),
        clock: state.clock.clone(),
        issuer: c.issuer.clone(),
        wake: state.outbox_wake.clone(),
        audit: Some(state.audit.clone()),
        poll_ms: c.logout.poll_ms,
    };
    tokio::spawn(recovery.run(stop.clone()));
    let hooks = Arc::new(crate::directory::webhook::worker::Worker {
        store: state.store.clone(),
        keys: state.keys.clone(),
        http: state.http.clone(),
        clock: state.clock.clone(),
        issuer: c.issuer.clone(),
        config: c.directory.clone(),
    });
    tokio::spawn(hooks.run(stop));
    outbox
}

/// Builds an instance from `config` with the system clock and serves it on `listener`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = tls_config(&config)?;
    let store = open_store(&config)?;
    let state = build(config, Clock::system(), store, None).await?;
    serve(listener, state, tls, shutdown).await
}
