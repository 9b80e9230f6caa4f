//! Password hashing with argon2id on a bounded pool: at most `slots` hashes run at once, on as
//! many dedicated threads at the lowest CPU priority (a login storm waits for a slot or gets 503;
//! it never starves the async workers), each in a memory arena allocated once per slot and
//! reused, so hashing never holds more than slots x memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::crypto::{self, Secret};

pub mod policy;
mod threads;

pub use threads::HashPriority;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hashing slot stayed busy for the whole queue timeout.
    #[error("password hashing is saturated")]
    Busy,
    /// The hasher itself failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl PasswordError {
    /// Seconds a caller refused with [`PasswordError::Busy`] should wait before trying again.
    pub fn retry_after(&self) -> Option<u64> {
        matches!(self, Self::Busy).then_some(1)
    }
}

/// argon2id cost parameters for new hashes (`security.argon2_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory per hash, KiB (m).
    pub memory_kib: u32,
    /// Passes over the memory (t).
    pub iterations: u32,
    /// Lanes (p); computed on one thread each way.
    pub parallelism: u32,
}

/// OWASP Password Storage Cheat Sheet: argon2id configurations of equal strength, as (memory KiB,
/// least iterations); more memory or more passes is stronger.
const OWASP: [(u32, u32); 5] = [(47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5)];

impl HashParams {
    /// OWASP's baseline: 19 MiB, 2 passes, 1 lane.
    pub const BASELINE: HashParams = HashParams { memory_kib: 19_456, iterations: 2, parallelism: 1 };

    /// Checks the parameters against OWASP's minimums; `Err` names the field and the rule.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let least = OWASP.iter().find(|(m, _)| self.memory_kib >= *m).map(|(_, t)| *t);
        let Some(least) = least else {
            return Err(("security.argon2_memory_kib", "at least 7168 (OWASP minimum for argon2id)"));
        };
        if self.memory_kib > 4 * 1024 * 1024 {
            return Err(("security.argon2_memory_kib", "at most 4194304 (4 GiB)"));
        }
        if self.iterations < least || self.iterations > 100 {
            return Err((
                "security.argon2_iterations",
                "too few for the memory (OWASP: m=47104 t>=1, 19456 t>=2, 12288 t>=3, 9216 t>=4, 7168 t>=5), at most 100",
            ));
        }
        if !(1..=64).contains(&self.parallelism) || self.memory_kib < 8 * self.parallelism {
            return Err(("security.argon2_parallelism", "1..=64, and memory at least 8 KiB per lane"));
        }
        Ok(())
    }

    fn params(&self) -> Result<Params, PasswordError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }
}

/// The bounded argon2id pool.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    slots: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    dummy: Arc<str>,
    arenas: Arc<Arenas>,
    threads: Arc<threads::Threads>,
}

/// The memory arenas: one per slot in use, kept for the next hash.
#[derive(Debug)]
struct Arenas {
    argon2: Argon2<'static>,
    params: Params,
    blocks: usize,
    free: Mutex<Vec<Vec<Block>>>,
    allocated: AtomicUsize,
}

impl Arenas {
    /// A free arena, allocated when none is (at most one per slot: the caller holds a permit).
    fn take(&self) -> Vec<Block> {
        let free = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        free.unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::Relaxed);
            vec![Block::default(); self.blocks]
        })
    }

    fn give_back(&self, arena: Vec<Block>) {
        self.free.lock().unwrap_or_else(PoisonError::into_inner).push(arena);
    }

    /// A PHC string of `password` with a fresh salt, computed in `arena`.
    fn hash(&self, password: &[u8], arena: &mut [Block]) -> Result<String, PasswordError> {
        let err = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
        let salt = SaltString::encode_b64(crypto::random_token(16).as_bytes()).map_err(|e| err(&e))?;
        let mut salt_raw = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_raw).map_err(|e| err(&e))?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, arena).map_err(|e| err(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| err(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| err(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string `phc`. Hashes whose memory fits the arena
    /// (ours, and older ones with less memory) are computed in it; others (made with more
    /// memory than now configured) take argon2's allocating path.
    fn verify(&self, password: &[u8], phc: &str, arena: &mut [Block]) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else { return false };
        let (Ok(alg), Ok(params), Some(expected), Some(salt)) =
            (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed), parsed.hash, parsed.salt)
        else {
            return false;
        };
        let version = parsed.version.map_or(Ok(Version::default()), Version::try_from);
        let Ok(version) = version else { return false };
        if params.block_count() > arena.len() {
            return Argon2::default().verify_password(password, &parsed).is_ok();
        }
        let mut salt_raw = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_raw) else { return false };
        let mut out = vec![0u8; expected.len()];
        let argon2 = Argon2::new(alg, version, params);
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, arena).is_ok()
            && crypto::ct_eq(&out, expected.as_bytes())
    }
}

impl PasswordPool {
    /// A pool running at most `slots` hashes at once with `params`, queueing at most `wait` for a
    /// slot. Its memory: at most `slots` arenas of `params.memory_kib`, allocated on first use.
    /// Its threads run at normal priority (the server's come from config: [`Self::with_priority`]).
    pub fn new(slots: usize, wait: Duration, params: HashParams) -> Result<Self, PasswordError> {
        Self::with_priority(slots, wait, params, HashPriority::Normal)
    }

    /// As [`PasswordPool::new`], its `slots` threads at `priority`.
    pub fn with_priority(
        slots: usize,
        wait: Duration,
        params: HashParams,
        priority: HashPriority,
    ) -> Result<Self, PasswordError> {
        let p = params.params()?;
        let arenas = Arenas {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, p.clone()),
            blocks: p.block_count(),
            params: p,
            free: Mutex::new(Vec::new()),
            allocated: AtomicUsize::new(0),
        };
        let mut arena = arenas.take();
        let dummy = arenas.hash(crypto::random_token(16).as_bytes(), &mut arena);
        arenas.give_back(arena);
        let size = slots.max(1);
        let threads = threads::Threads::start(size, priority).map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(size)),
            size,
            wait,
            dummy: dummy?.into(),
            arenas: Arc::new(arenas),
            threads: Arc::new(threads),
        })
    }

    /// Most bytes the pool's arenas can hold: slots x memory per hash.
    pub fn memory_bound(&self) -> usize {
        self.size * self.arenas.blocks * Block::SIZE
    }

    /// Arenas allocated so far (never more than the slots).
    pub fn arenas_allocated(&self) -> usize {
        self.arenas.allocated.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Arenas, &mut [Block]) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let arenas = self.arenas.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // The permit goes with the job: the slot frees when the hash is done, not when a caller
        // that stopped waiting is dropped.
        let job = Box::new(move || {
            let mut arena = arenas.take();
            let out = f(&arenas, &mut arena);
            arenas.give_back(arena);
            drop(permit);
            let _ = tx.send(out);
        });
        if !self.threads.submit(job) {
            return Err(PasswordError::Busy);
        }
        rx.await.map_err(|_| PasswordError::Hash("a hashing thread stopped".into()))
    }

    /// Hashes a password with a fresh salt.
    pub async fn hash(&self, password: Secret) -> Result<String, PasswordError> {
        self.run(move |a, arena| a.hash(password.expose().as_bytes(), arena)).await?
    }

    /// Verifies a password against a PHC string; with `None` it verifies against a dummy hash
    /// so an unknown username costs the same time as a wrong password.
    pub async fn verify(&self, password: Secret, phc: Option<String>) -> Result<bool, PasswordError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.to_string());
        let ok = self.run(move |a, arena| a.verify(password.expose().as_bytes(), &phc, arena)).await?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests;
