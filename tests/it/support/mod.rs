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

/// The `tongzheng` binary the tests run as a child process: the one cargo built for them, or
/// `TONGZHENG_TEST_BIN` when set (an absolute path), so the same tests can run on another build of
/// the same source, such as deploy/build.sh's (`.ci/run` does).
pub fn binary() -> std::ffi::OsString {
    std::env::var_os("TONGZHENG_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_tongzheng").into())
}
