//! TEST-ONLY fault injection for the logout chaos tests (`tests/it/logout_chaos.rs`). Inert
//! unless `TONGZHENG_TEST_CRASH_AT` or `TONGZHENG_TEST_HOLD_AT` is set; never set them in
//! production. The variables are read once, at the first step reached.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the environment asked for.
struct Faults {
    /// `TONGZHENG_TEST_CRASH_AT=<step>`: abort the process (no cleanup, like `kill -9`) the
    /// first time `<step>` is reached.
    crash_at: Option<String>,
    /// `TONGZHENG_TEST_HOLD_AT=<step>`: the first time `<step>` is reached, print
    /// `tongzheng-test: holding at <step>` on stderr and wait `TONGZHENG_TEST_HOLD_MS`
    /// (default 500) before going on, so a test can stall or drop Redis right after the step.
    hold_at: Option<String>,
    hold: Duration,
    held: AtomicBool,
}

fn faults() -> &'static Faults {
    static FAULTS: OnceLock<Faults> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let ms = var("TONGZHENG_TEST_HOLD_MS").and_then(|v| v.parse().ok()).unwrap_or(500);
        Faults {
            crash_at: var("TONGZHENG_TEST_CRASH_AT"),
            hold_at: var("TONGZHENG_TEST_HOLD_AT"),
            hold: Duration::from_millis(ms),
            held: AtomicBool::new(false),
        }
    })
}

/// Marks that the logout sequence reached `step` (a name such as `logout.intent`); a no-op
/// unless a test asked for a crash or a hold there.
pub async fn reached(step: &'static str) {
    let f = faults();
    if f.crash_at.as_deref() == Some(step) {
        eprintln!("tongzheng-test: crashing at {step}");
        std::process::abort();
    }
    if f.hold_at.as_deref() == Some(step) && !f.held.swap(true, Ordering::SeqCst) {
        eprintln!("tongzheng-test: holding at {step}");
        tokio::time::sleep(f.hold).await;
    }
}
