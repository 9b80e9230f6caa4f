//! tongzheng's own black-box conformance suite. It starts real tongzheng instances in-process
//! (memory store, and Redis when `redis-server` is installed), drives them as a real OpenID
//! Connect relying party built on the `openidconnect` crate plus plain HTTP for the negative
//! cases, and writes `conformance/REPORT.md`: one row per requirement and spec clause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod harness;
mod report;
mod rp;

use report::Report;

fn main() -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let report = rt.block_on(async {
        let mut report = Report::default();
        let memory = harness::Platform::start(harness::Store::Memory).await;
        rp::run_all(&memory, "memory", &mut report).await;
        drop(memory);
        match harness::RedisProcess::spawn() {
            Some(redis) => {
                let platform = harness::Platform::start(harness::Store::Redis(redis.url())).await;
                rp::run_all(&platform, "redis", &mut report).await;
            }
            None => report.note("redis-server not found: the Redis pass was skipped (tests/run.sh installs it)"),
        }
        report
    });
    report.write("conformance/REPORT.md");
    let (passed, failed) = report.totals();
    println!("conformance: {passed} passed, {failed} failed");
    if failed == 0 { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}
