//! Fixtures shared by the integration tests.

pub mod balancer;
pub mod flaky;
pub mod flow;
pub mod instance;
pub mod process;
pub mod realname;
pub mod receiver;
pub mod redis;
pub mod redis_modes;
pub mod server;
pub mod webdriver;
pub mod yaml;
