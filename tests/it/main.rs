//! The one integration-test binary: real HTTP over loopback, a real redis-server, the server
//! in-process on 127.0.0.1:0. One module per area; shared fixtures in `support`.

// Panicking on an unexpected value is how a test fails; clippy.toml allows it inside `#[test]`
// functions only, and the fixtures and cases here are plain functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

mod admin_crud;
mod browser;
mod client_auth;
mod flows;
mod logout;
mod logs;
mod malformed;
mod resilience;
mod store;
mod store_queue;
mod tls;
