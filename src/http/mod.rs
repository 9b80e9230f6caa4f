//! The HTTP surface: one `AppState`, the router, and cross-cutting layers (body limit, request
//! id, security headers). Handlers live one file per area, each ending in `routes()`.

pub mod access;
pub mod account;
pub mod act;
pub mod admin;
pub mod authorize;
pub mod context;
mod csrf;
pub mod deadline;
mod edge;
pub mod error;
pub mod extract;
pub mod federation;
pub mod health;
pub mod introspect;
pub mod legacy;
pub mod logout;
pub mod metrics;
pub mod notices;
pub mod oidc;
pub mod pages;
pub mod registration;
pub mod request_id;
pub mod scim;
pub mod signup;
pub mod token;
pub mod verify;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;

use crate::audit::Audit;
use crate::clock::Clock;
use crate::config::Config;
use crate::grant::Ctx;
use crate::jwks_cache::JwksCache;
use crate::keys::Keys;
use crate::session::Timeouts;
use crate::store::DynStore;
use crate::users::PasswordPool;

/// Shared state of one tongzheng instance. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What the state holds.
pub struct Inner {
    /// Validated configuration.
    pub config: Config,
    /// Storage backend.
    pub store: DynStore,
    /// Signing keys.
    pub keys: Arc<Keys>,
    /// Time source.
    pub clock: Clock,
    /// Password hashing pool.
    pub passwords: PasswordPool,
    /// Remote JWKS cache.
    pub jwks: JwksCache,
    /// Endpoint URLs derived from the issuer.
    pub urls: Urls,
    /// Outgoing HTTP client (back-channel logout, JWKS), enforcing `outbound`.
    pub http: reqwest::Client,
    /// Wakes this instance's logout outbox worker.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// This instance's Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// The audit log.
    pub audit: Audit,
    /// Working days, for lifecycle deadlines.
    pub calendar: crate::calendar::Calendar,
    /// Per-client call control.
    pub limiter: crate::ratelimit::Limiter,
    /// The built-in entries of the scope catalogue.
    pub builtin_scopes: Vec<crate::scopes::ScopeDef>,
    /// Trusted platforms' metadata.
    pub peers: Arc<crate::federation::remote::Peers>,
    /// Wakes this instance's registration-sync worker.
    pub sync_wake: Arc<tokio::sync::Notify>,
    /// Where the server's own requests may go (also enforced by `http`).
    pub outbound: crate::outbound::Policy,
    /// This process among the instances: its id, request ids, drain state, seeder wake-up.
    pub instance: Arc<crate::instance::Instance>,
    /// The sender of one-time codes by SMS (`[sms]`).
    pub sms: crate::sms::DynSms,
    /// Decoded client records, reused while the stored record is unchanged.
    pub clients: crate::clients::cache::ClientCache,
    /// The real-name verifier (GB-6.4a).
    pub verifier: crate::identity::verify::DynVerifier,
    /// The platform's branding on every page (JM-5.6, SH-D), current on each request's task.
    pub brand: Arc<pages::brand::Brand>,
}

/// Absolute URLs of our endpoints.
#[derive(Debug, Clone)]
pub struct Urls {
    /// Authorization endpoint.
    pub authorize: String,
    /// Token endpoint.
    pub token: String,
    /// UserInfo endpoint.
    pub userinfo: String,
    /// JWKS.
    pub jwks: String,
    /// Introspection endpoint.
    pub introspect: String,
    /// Revocation endpoint.
    pub revoke: String,
    /// Registration endpoint.
    pub register: String,
}

impl Urls {
    fn new(issuer: &str) -> Self {
        Self {
            authorize: format!("{issuer}/authorize"),
            token: format!("{issuer}/token"),
            userinfo: format!("{issuer}/userinfo"),
            jwks: format!("{issuer}/jwks"),
            introspect: format!("{issuer}/introspect"),
            revoke: format!("{issuer}/revoke"),
            register: format!("{issuer}/register"),
        }
    }
}

/// What [`AppState::new`] is built from.
pub struct Parts {
    /// Validated configuration.
    pub config: Config,
    /// Storage backend.
    pub store: DynStore,
    /// Signing keys.
    pub keys: Keys,
    /// Time source.
    pub clock: Clock,
    /// Password hashing pool.
    pub passwords: PasswordPool,
    /// Outgoing HTTP client.
    pub http: reqwest::Client,
    /// Metrics.
    pub metrics: crate::metrics::Metrics,
    /// Audit log.
    pub audit: Audit,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state; fails on a calendar `Config::validate` would have refused, or an
    /// unreadable `verify.token_file`.
    pub fn new(p: Parts) -> Result<Self, String> {
        let urls = Urls::new(&p.config.issuer);
        let calendar =
            crate::calendar::Calendar::from_config(&p.config.calendar).map_err(|e| format!("calendar: {e}"))?;
        let builtin_scopes = crate::scopes::built_in(&p.config.security.admin_scope, &p.config.security.audit_scope);
        let failure_ttl = std::time::Duration::from_secs(p.config.outbound.failure_cache_secs);
        let verifier = crate::identity::verify::build(&p.config.verify, p.http.clone(), p.audit.clone())?;
        Ok(Self(Arc::new(Inner {
            verifier,
            outbound: crate::outbound::Policy::new(&p.config.outbound, p.config.server.dev),
            instance: Arc::new(crate::instance::Instance::new()),
            sms: crate::sms::from_config(&p.config.sms, p.config.server.dev, p.http.clone()),
            brand: Arc::new(pages::brand::Brand::new(&p.config.branding)),
            calendar,
            limiter: crate::ratelimit::Limiter::default(),
            builtin_scopes,
            peers: Arc::new(crate::federation::remote::Peers::new(failure_ttl)),
            sync_wake: Arc::new(tokio::sync::Notify::new()),
            jwks: JwksCache::new(p.http.clone(), failure_ttl),
            urls,
            config: p.config,
            store: p.store,
            keys: Arc::new(p.keys),
            clock: p.clock,
            passwords: p.passwords,
            http: p.http,
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            metrics: p.metrics,
            audit: p.audit,
            clients: crate::clients::cache::ClientCache::default(),
        })))
    }

    /// The grant context at the current time.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            store: &self.store,
            keys: &self.keys,
            issuer: &self.config.issuer,
            tokens: &self.config.tokens,
            timeouts: self.timeouts(),
            now: self.clock.now(),
            clients: &self.clients,
        }
    }

    /// The validity authority: whether a token is alive (the only place that decides).
    pub fn authority(&self) -> crate::tokens::Authority<'_> {
        crate::tokens::Authority {
            store: &self.store,
            keys: &self.keys,
            issuer: &self.config.issuer,
            timeouts: self.timeouts(),
            clients: &self.clients,
        }
    }

    /// The logout context at the current time; `actor` is recorded in the audit log.
    pub fn logout_ctx<'a>(&'a self, actor: &'a str) -> crate::logout::Ctx<'a> {
        crate::logout::Ctx {
            store: &self.store,
            issuer: &self.config.issuer,
            now: self.clock.now(),
            wake: Some(&self.outbox_wake),
            audit: Some((&self.audit, actor)),
        }
    }

    /// The application-lifecycle context at the current time, acting as `actor`.
    pub fn apps_ctx<'a>(&'a self, actor: &'a str, request_id: Option<&'a str>) -> crate::apps::Ctx<'a> {
        crate::apps::Ctx {
            store: &self.store,
            keys: &self.keys,
            calendar: &self.calendar,
            config: &self.config.apps,
            builtin_scopes: &self.builtin_scopes,
            audit_scope: &self.config.security.audit_scope,
            dev: self.config.server.dev,
            outbound: &self.outbound,
            now: self.clock.now(),
            actor,
            request_id,
        }
    }

    /// AY-8.3.2.1: counts one call of `client` against its limit (its application's, or the
    /// platform default). `Err` carries the seconds to wait.
    pub fn rate_check(&self, client: &crate::clients::Client) -> Result<(), crate::ratelimit::Limited> {
        let rl = &self.config.rate_limit;
        if !rl.enabled {
            return Ok(());
        }
        let limit = match client.rate_limit {
            Some(l) => l,
            None if rl.default_per_second > 0.0 => {
                crate::ratelimit::RateLimit { per_second: rl.default_per_second, burst: rl.default_burst }
            }
            None => return Ok(()),
        };
        let r = self.limiter.check(&client.client_id, limit, self.clock.monotonic_ns());
        if r.is_err() {
            self.metrics.rate_limited(&client.client_id);
        }
        r
    }

    /// The upstream-login context at the current time.
    pub fn fed_ctx(&self) -> crate::federation::login::Ctx<'_> {
        crate::federation::login::Ctx {
            store: &self.store,
            keys: &self.keys,
            http: &self.http,
            jwks: &self.jwks,
            peers: &self.peers,
            issuer: &self.config.issuer,
            ttl: self.config.tokens.login_ttl,
            now: self.clock.now(),
        }
    }

    /// The token exchange environment (RFC 8693) at the current time.
    pub fn exchange_env(&self) -> crate::grant::token_exchange::Env<'_> {
        crate::grant::token_exchange::Env { ctx: self.ctx(), http: &self.http, jwks: &self.jwks, peers: &self.peers }
    }

    /// Session timeouts.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts { idle: self.config.session.idle_timeout, absolute: self.config.session.absolute_timeout }
    }
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(oidc::routes())
        .merge(authorize::routes())
        .merge(act::routes())
        .merge(legacy::routes())
        .merge(token::routes())
        .merge(introspect::routes())
        .merge(logout::routes())
        .merge(registration::routes())
        .merge(federation::routes())
        .merge(verify::routes())
        .merge(admin::routes(&state))
        .merge(scim::routes(&state))
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(signup::routes())
        .merge(account::routes())
        .merge(notices::routes())
        .fallback(notices::not_found)
        .layer(edge::EdgeLayer(state.clone()))
        .with_state(state)
}
