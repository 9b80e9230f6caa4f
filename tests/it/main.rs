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

/// Runs each named `async fn case(Backend)` of the calling module on the shared 3-master test
/// Redis Cluster too, as `cluster::case`: the main flows prove every script and transaction
/// stays in one slot (keys hash-tagged, `src/store/keys.rs`).
macro_rules! on_cluster {
    ($($name:ident),* $(,)?) => {
        mod cluster {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Cluster).await })*
        }
    };
}

mod support;

mod account_consent;
mod admin;
mod admin_crud;
mod assurance;
mod assurance_federation;
mod audit_api;
mod audit_instances;
mod bad_input;
mod browser;
mod browser_citizen;
mod browser_federation;
mod browser_identity;
mod browser_pages;
mod browser_signup;
mod call_control;
mod citizen_pages;
mod cli;
mod client_auth;
mod consent_answer;
mod consent_page;
mod deploy;
mod directory_bulk;
mod directory_import;
mod directory_reindex;
mod directory_scope_feed;
mod directory_tree;
mod directory_webhook;
mod duties;
mod example_rp;
mod federation;
mod flows;
mod guessing;
mod identity_bad_input;
mod identity_tokens;
mod interop;
mod keys_shared;
mod lifecycle;
mod limits;
mod login_pages;
mod logout;
mod logout_chaos;
mod logs;
mod malformed;
mod metrics;
mod openapi;
mod ops_metrics;
mod outbound;
mod password_policy;
mod pending_logins;
mod persons;
mod redis_modes;
mod registration;
mod resilience;
mod restarts;
mod retry_safe;
mod revocation;
mod round_trips;
mod scim;
mod signup;
mod store;
mod store_index;
mod store_queue;
mod tls;
mod token_exchange;
mod verified_cache;
