//! tongzheng (通证): a unified identity authentication server, an OAuth 2.0 / OpenID Connect
//! authorization server for government platforms.
//!
//! Layers, dependencies pointing down only:
//! - [`http`]: axum handlers; extract, make one domain call, map the result through [`error`].
//! - domain: [`authorize`], [`grant`] (token minting per grant type), [`session`], [`clients`],
//!   [`users`], [`registration`], [`tokens`] (claims and validation), [`keys`] and [`jwt`]
//!   (JWS, JWKS), [`audit`] (the audit log, in daily JSON-lines files), [`guard`] (throttling
//!   of password and client-secret guessing). No axum here, no Redis
//!   types; time is passed in from [`clock`].
//! - [`store`]: one storage interface, memory and Redis backends.
//! - [`metrics`]: Prometheus counters and histograms of one instance, served at `/metrics`.
//! - [`cli`]: `tongzheng admin`, a client of the admin API of a running server.
//!
//! - [`example_rp`]: not the server: the integrator's reference relying party (`serve --dev`
//!   runs it on 127.0.0.1:9000).
//!
//! [`server::run`] takes a bound listener, a [`config::Config`] and a shutdown future.

pub mod account;
pub mod apps;
pub mod audit;
pub mod authorize;
pub mod calendar;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod directory;
pub mod error;
pub mod example_rp;
pub mod fastmap;
pub mod federation;
pub mod grant;
pub mod guard;
pub mod health;
pub mod http;
pub mod identity;
pub mod instance;
pub mod ip;
pub mod json;
pub mod jwks_cache;
pub mod jwt;
pub mod keys;
pub mod logging;
pub mod logout;
pub mod metrics;
pub mod otp;
pub mod outbound;
pub mod passwords;
pub mod prehashed;
pub mod ratelimit;
pub mod registration;
pub mod scim;
pub mod scopes;
pub mod sealing;
pub mod server;
pub mod session;
pub mod signup;
pub mod sms;
pub mod store;
pub mod tokens;
pub mod users;
