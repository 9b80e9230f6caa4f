//! The hashing threads: a fixed set of OS threads that run argon2id jobs, by default under
//! SCHED_IDLE so the kernel gives them a core only when the async workers leave it idle (a login
//! storm then waits, never the token endpoint). They end when the pool is dropped.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};

/// The CPU priority of the hashing threads (`security.password_hash_priority`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashPriority {
    /// SCHED_IDLE (Linux): hashing runs only on CPU time the request workers do not want.
    #[default]
    Idle,
    /// The scheduler's normal policy: hashing competes with the request workers as an equal.
    Normal,
}

/// One argon2id job.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// The threads and the queue that feeds them.
#[derive(Debug)]
pub(super) struct Threads {
    queue: SyncSender<Job>,
}

impl Threads {
    /// Starts `size` threads at `priority`. The queue holds `size` jobs: the pool's semaphore
    /// admits no more than that at once, so a full queue is never waited on.
    pub(super) fn start(size: usize, priority: HashPriority) -> std::io::Result<Self> {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(size);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..size {
            let jobs = jobs.clone();
            std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || serve(&jobs, priority))?;
        }
        Ok(Self { queue })
    }

    /// Hands `job` to a free thread; `false` when none can take it now.
    pub(super) fn submit(&self, job: Job) -> bool {
        match self.queue.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A hashing thread: lowers its own priority, then runs jobs until the pool is gone.
fn serve(jobs: &Mutex<Receiver<Job>>, priority: HashPriority) {
    if priority == HashPriority::Idle {
        lower_own_priority();
    }
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// SCHED_IDLE for the calling thread only. Lowering one's own priority needs no privilege; when
/// it fails anyway (another OS, a seccomp filter) hashing runs at normal priority, said once.
fn lower_own_priority() {
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    let native = thread_priority::thread_native_id();
    if let Err(e) = thread_priority::set_thread_priority_and_policy(native, ThreadPriority::Min, idle) {
        tracing::warn!(error = ?e, "password hashing threads run at normal priority: SCHED_IDLE was refused");
    }
}

/// The scheduling policy of the calling thread (for tests): whether it is SCHED_IDLE.
#[cfg(test)]
pub(super) fn current_is_idle() -> bool {
    matches!(
        thread_priority::thread_schedule_policy(),
        Ok(ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle))
    )
}
