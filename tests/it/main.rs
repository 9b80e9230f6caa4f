//! The one integration-test binary: real HTTP over loopback, a real redis-server, the server
//! in-process on 127.0.0.1:0. One module per area; shared fixtures in `support`.

// Panicking on an unexpected value is how a test fails; clippy.toml allows it inside `#[test]`
// functions only, and the fixtures and cases here are plain functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

/// Runs each named `async fn case(Backend)` of the calling module once per store backend, as
/// `memory::case` and `redis::case` (the module must have `Backend` in scope).
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Memory).await })*
        }
        mod redis {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Redis).await })*
        }
    };
}

mod support;

mod admin;
mod admin_crud;
mod audit_api;
mod audit_instances;
mod bad_input;
mod browser;
mod browser_federation;
mod call_control;
mod cli;
mod client_auth;
mod duties;
mod federation;
mod flows;
mod guessing;
mod interop;
mod lifecycle;
mod limits;
mod logout;
mod logs;
mod malformed;
mod metrics;
mod openapi;
mod outbound;
mod pending_logins;
mod registration;
mod resilience;
mod revocation;
mod store;
mod store_queue;
mod tls;
mod token_exchange;
