//! Fixtures shared by the integration tests.

pub mod flow;
pub mod redis;
pub mod server;
