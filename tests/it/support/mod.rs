//! Fixtures shared by the integration tests.

pub mod flaky;
pub mod flow;
pub mod receiver;
pub mod redis;
pub mod redis_modes;
pub mod server;
pub mod webdriver;
