//! tongzheng (通证): a unified identity authentication server, an OAuth 2.0 / OpenID Connect
//! authorization server for government platforms.
//!
//! Layers, dependencies pointing down only:
//! - [`http`]: axum handlers; extract, make one domain call, map the result through [`error`].
//! - domain: [`grant`] (token minting per grant type), [`session`], [`clients`], [`users`],
//!   [`tokens`] (access/ID token claims and validation), [`keys`] (JWS, JWKS). No axum, no Redis.
//! - [`store`]: one storage interface, memory and Redis backends.
//!
//! [`server::run`] takes a bound listener, a [`config::Config`] and a shutdown future.

pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod jwt;
pub mod keys;
pub mod store;
