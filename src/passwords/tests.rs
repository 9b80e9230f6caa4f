//! Tests of the password pool: configured parameters, hashes made under other parameters, the
//! bound on arenas, and the OWASP minimums.

use argon2::password_hash::{PasswordHasher as _, SaltString};

use super::*;

/// The cheapest OWASP configuration, so the tests stay fast.
const SMALL: HashParams = HashParams { memory_kib: 7_168, iterations: 5, parallelism: 1 };

fn secret(s: &str) -> Secret {
    Secret(s.to_owned())
}

/// A PHC string made by argon2's own allocating path with `m`, `t`, `p`.
fn foreign_hash(password: &str, m: u32, t: u32, p: u32) -> String {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(m, t, p, None).unwrap());
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2.hash_password(password.as_bytes(), &salt).unwrap().to_string()
}

#[tokio::test]
async fn configured_parameters_are_used_and_other_hashes_still_verify() {
    let pool = PasswordPool::new(1, Duration::from_secs(30), SMALL).unwrap();
    let h = pool.hash(secret("correct horse")).await.unwrap();
    assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
    assert!(pool.verify(secret("correct horse"), Some(h.clone())).await.unwrap());
    assert!(!pool.verify(secret("wrong"), Some(h.clone())).await.unwrap());
    assert!(!pool.verify(secret("anything"), None).await.unwrap(), "unknown user: never true");
    // Our hash is argon2's: its own verifier agrees.
    let parsed = PasswordHash::new(&h).unwrap();
    assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());

    // Hashes stored under earlier settings: more memory (argon2's allocating path) and less
    // memory (computed in the arena), and another lane count.
    for (m, t, p) in [(19_456, 2, 1), (4_096, 3, 1), (7_168, 1, 2)] {
        let old = foreign_hash("old password", m, t, p);
        assert!(pool.verify(secret("old password"), Some(old.clone())).await.unwrap(), "{old}");
        assert!(!pool.verify(secret("old passworD"), Some(old.clone())).await.unwrap(), "{old}");
    }
    assert!(!pool.verify(secret("x"), Some("$argon2id$v=19$garbage".into())).await.unwrap());
    assert_eq!(pool.arenas_allocated(), 1, "one slot, one arena, reused for every hash");
}

#[tokio::test]
async fn a_burst_allocates_at_most_one_arena_per_slot() {
    let pool = PasswordPool::new(2, Duration::from_secs(60), SMALL).unwrap();
    assert_eq!(pool.memory_bound(), 2 * 7_168 * 1024);
    for _ in 0..2 {
        let burst: Vec<_> = (0..8)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash(secret(&format!("password {i}"))).await.unwrap() })
            })
            .collect();
        for h in burst {
            assert!(h.await.unwrap().contains("m=7168"));
        }
        // Allocated once: the second burst reuses the arenas of the first.
        assert!((1..=2).contains(&pool.arenas_allocated()), "{}", pool.arenas_allocated());
    }
}

#[tokio::test]
async fn hashing_threads_run_at_the_configured_priority() {
    // Issue 13: under a login storm the hashing threads yield the core to the request workers.
    let idle = PasswordPool::with_priority(1, Duration::from_secs(30), SMALL, HashPriority::Idle).unwrap();
    assert!(idle.run(|_, _| threads::current_is_idle()).await.unwrap(), "SCHED_IDLE");
    let normal = PasswordPool::new(1, Duration::from_secs(30), SMALL).unwrap();
    assert!(!normal.run(|_, _| threads::current_is_idle()).await.unwrap(), "normal policy");
    // The pool's threads end with it; a new pool works as the first did.
    drop(normal);
    let again = PasswordPool::new(1, Duration::from_secs(30), SMALL).unwrap();
    assert!(again.verify(secret("x"), None).await.is_ok());
}

#[test]
fn owasp_minimums_are_enforced() {
    assert_eq!(HashParams::BASELINE.check(), Ok(()));
    assert_eq!(SMALL.check(), Ok(()));
    assert_eq!(HashParams { memory_kib: 47_104, iterations: 1, parallelism: 1 }.check(), Ok(()));
    let field = |p: HashParams| p.check().unwrap_err().0;
    assert_eq!(field(HashParams { memory_kib: 4_096, ..SMALL }), "security.argon2_memory_kib");
    assert_eq!(field(HashParams { iterations: 1, ..HashParams::BASELINE }), "security.argon2_iterations");
    assert_eq!(field(HashParams { iterations: 4, ..SMALL }), "security.argon2_iterations");
    assert_eq!(field(HashParams { parallelism: 0, ..SMALL }), "security.argon2_parallelism");
    let e = crate::config::Config::from_overlay("[security]\nargon2_memory_kib = 1024", true).unwrap_err();
    assert!(e.to_string().contains("security.argon2_memory_kib"), "{e}");
}
