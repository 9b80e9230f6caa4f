//! Fixtures shared by the integration tests.

pub mod flow;
pub mod instance;
pub mod receiver;
pub mod redis;
pub mod server;
pub mod webdriver;
