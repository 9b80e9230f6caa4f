//! tongzheng's black-box conformance suite (`cargo test --test conformance`). It starts real
//! tongzheng instances in-process on 127.0.0.1:0 — on the memory store, and on a redis-server
//! it spawns when one is installed — acts on them as an OpenID Connect relying party built on
//! the `openidconnect` crate plus plain HTTP for the browser steps and negative cases, prints
//! one line per check, writes `conformance/REPORT.md`, and ends with `N passed, M failed`.

// A harness = false target is not compiled as test code, so clippy.toml's test allowances do
// not reach it; a check that cannot proceed returns `Err`, and these cover the few literals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod account;
mod assurance;
mod directory;
mod federation;
mod flows;
mod harness;
mod legacy;
mod lifecycle;
mod logout;
mod negative;
mod pages;
mod persons;
mod registration;
mod report;
mod revocation;
mod rp;
mod signup;
mod suite;
mod tokens;

use harness::{Backend, Platform, RedisServer};
use report::{Check, Report, Runner};

/// Starts the two instances of one pass (a refresh grace window of 10 s, as an operator may
/// enable, and the default `refresh_grace = 0`) and runs every check against them.
async fn pass(backend: &Backend, report: &mut Report) {
    let mut run = Runner { report, backend: backend.label(), section: report::MAIN };
    let main = Platform::start(backend, "[tokens]\nrefresh_grace = 10\n").await;
    let strict = Platform::start(backend, "").await;
    match (&main, &strict) {
        (Ok(m), Ok(s)) => {
            suite::run(&m.base, &s.base, &mut run).await;
            federation::run(backend, &mut run).await;
            run.section = report::REVOCATION;
            revocation::run(&s.base, &mut run).await;
        }
        (Err(err), _) | (_, Err(err)) => {
            let failed: Check = Err(format!("the instance did not start: {err}"));
            run.record(suite::READY, failed);
        }
    }
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the tokio runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(async {
        let mut report = Report::default();
        pass(&Backend::Memory, &mut report).await;
        if harness::redis_installed() {
            match std::panic::catch_unwind(RedisServer::dedicated) {
                Ok(redis) => {
                    pass(&Backend::Redis(redis.url()), &mut report).await;
                    drop(redis);
                }
                Err(_) => {
                    let failed: Check = Err("redis-server is installed but did not start".into());
                    Runner { report: &mut report, backend: "redis", section: report::MAIN }.record(
                        ("DC-7", "REQUIREMENTS.md DC-7 (sessions in Redis)", "redis-server started for the Redis pass"),
                        failed,
                    );
                }
            }
        } else {
            report.note("redis-server is not on PATH: the Redis pass was skipped (tests/run.sh installs it).");
        }
        report
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    report.write(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/REPORT.md"));
    let (passed, failed) = report.totals();
    println!("{passed} passed, {failed} failed");
    if failed == 0 { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}
