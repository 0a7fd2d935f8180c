//! The process-wide simulated machine: one mutex-protected [`World`], one
//! condition variable for every kind of sleep, and the deferred-job worker.
//!
//! Invariant: client code (completion routines, event callbacks, work items,
//! thread routines) is never called while the world lock is held, so that it
//! may call back into any exported routine.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::script::{CompletionMode, Config, Faults, Stats};

/// A job run later by the worker thread or by [`run_manual_jobs`].
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Everything the simulator knows.
pub(crate) struct World {
    /// Bumped by every [`reset`]: lets stale asynchronous work notice.
    pub(crate) generation: u64,
    pub(crate) cfg: Config,
    pub(crate) rng: Rng,
    /// The adversary's machine-wide stream (completion modes, IRQLs,
    /// mapping and listener failures); sockets have their own.
    pub(crate) adv_rng: Rng,
    /// What the test set with the `Sim` setters, which the adversary then
    /// leaves alone: (completion mode, completion IRQL, event IRQL).
    pub(crate) pinned: (bool, bool, bool),
    /// Violation messages, with whether each was already raised as a panic.
    pub(crate) violations: Vec<(String, bool)>,
    pub(crate) faults: Faults,
    pub(crate) stats: Stats,
    pub(crate) pool: crate::pool::PoolState,
    pub(crate) io: crate::io::IoState,
    pub(crate) ob: crate::ps::ObState,
    pub(crate) netio: crate::netio::NetioState,
    pub(crate) net: crate::net::Net,
    /// Jobs due at an instant, served by the worker thread.
    pub(crate) timed: BTreeMap<(Instant, u64), Job>,
    /// Jobs run only by [`run_manual_jobs`] or by a blocking wait.
    pub(crate) manual: VecDeque<Job>,
    pub(crate) job_seq: u64,
    pub(crate) worker: Option<JoinHandle<()>>,
    pub(crate) worker_stop: bool,
    /// Jobs being run right now by some thread (for "idle" checks).
    pub(crate) jobs_running: u32,
    /// Threads the simulator started (work items, system threads).
    pub(crate) threads: Vec<JoinHandle<()>>,
}

impl World {
    fn new() -> Self {
        World {
            generation: 0,
            cfg: Config::default(),
            rng: Rng::new(0x005E_ED0F_5EED),
            adv_rng: Rng::new(0),
            pinned: (false, false, false),
            violations: Vec::new(),
            faults: Faults::default(),
            stats: Stats::default(),
            pool: crate::pool::PoolState::default(),
            io: crate::io::IoState::default(),
            ob: crate::ps::ObState::default(),
            netio: crate::netio::NetioState::default(),
            net: crate::net::Net::default(),
            timed: BTreeMap::new(),
            manual: VecDeque::new(),
            job_seq: 0,
            worker: None,
            worker_stop: false,
            jobs_running: 0,
            threads: Vec::new(),
        }
    }
}

static WORLD: LazyLock<Mutex<World>> = LazyLock::new(|| Mutex::new(World::new()));
/// Signalled on every state change anything may sleep on.
pub(crate) static CHANGED: Condvar = Condvar::new();

thread_local! {
    static HOLDING: Cell<bool> = const { Cell::new(false) };
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Whether this is the simulator's worker thread.
pub(crate) fn is_worker_thread() -> bool {
    IS_WORKER.with(Cell::get)
}

/// The world lock; see the module invariant.
pub(crate) struct WorldGuard {
    guard: Option<MutexGuard<'static, World>>,
}

impl core::ops::Deref for WorldGuard {
    type Target = World;
    fn deref(&self) -> &World {
        self.guard.as_ref().expect("world guard")
    }
}

impl core::ops::DerefMut for WorldGuard {
    fn deref_mut(&mut self) -> &mut World {
        self.guard.as_mut().expect("world guard")
    }
}

impl Drop for WorldGuard {
    fn drop(&mut self) {
        HOLDING.with(|h| h.set(false));
    }
}

impl WorldGuard {
    /// Sleeps on [`CHANGED`] for at most `dur`, releasing the lock meanwhile.
    pub(crate) fn wait(&mut self, dur: Option<Duration>) {
        let g = self.guard.take().expect("world guard");
        HOLDING.with(|h| h.set(false));
        let g = match dur {
            None => CHANGED.wait(g).unwrap_or_else(PoisonError::into_inner),
            Some(d) => {
                CHANGED
                    .wait_timeout(g, d)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
        HOLDING.with(|h| h.set(true));
        self.guard = Some(g);
    }
}

/// Takes the world lock.
///
/// # Panics
///
/// If this thread already holds it (a simulator bug: it would deadlock).
pub(crate) fn lock() -> WorldGuard {
    assert!(
        !HOLDING.with(Cell::get),
        "wsk-sim internal error: world lock taken recursively"
    );
    let g = WORLD.lock().unwrap_or_else(PoisonError::into_inner);
    HOLDING.with(|h| h.set(true));
    WorldGuard { guard: Some(g) }
}

/// Records a violation message (see [`crate::verifier::report`]).
pub(crate) fn note_violation(msg: &str, raised: bool) {
    if HOLDING.with(Cell::get) {
        // Reported while the world lock is held (simulator-internal checks
        // call `violation` only after dropping it, but stay safe).
        eprintln!("{msg}");
        return;
    }
    let mut w = lock();
    w.violations.push((msg.to_owned(), raised));
    w.notify();
}

/// Takes the first violation not yet raised as a panic.
pub(crate) fn take_unraised_violation() -> Option<String> {
    let mut w = lock();
    let v = w.violations.iter_mut().find(|(_, raised)| !raised)?;
    v.1 = true;
    Some(v.0.clone())
}

/// Queues `job` according to the completion mode: run by the worker thread
/// after `delay` (`Some`) or kept for [`run_manual_jobs`] (`None`).
pub(crate) fn queue_job(w: &mut World, delay: Option<Duration>, job: Job) {
    match delay {
        Some(d) => {
            w.job_seq += 1;
            let seq = w.job_seq;
            w.timed.insert((Instant::now() + d, seq), job);
            ensure_worker(w);
        }
        None => w.manual.push_back(job),
    }
    CHANGED.notify_all();
}

/// Queues a job as the current completion mode says a deferred completion
/// should run (worker, delayed or manual).
pub(crate) fn defer(w: &mut World, job: Job) {
    let delay = match w.cfg.completion {
        CompletionMode::Delayed(d) => Some(d),
        CompletionMode::Manual => None,
        _ => Some(Duration::ZERO),
    };
    queue_job(w, delay, job);
}

fn ensure_worker(w: &mut World) {
    if w.worker.is_some() {
        return;
    }
    w.worker_stop = false;
    let handle = std::thread::Builder::new()
        .name("wsk-sim-worker".into())
        .spawn(worker_main)
        .expect("spawn wsk-sim worker");
    w.worker = Some(handle);
}

fn worker_main() {
    IS_WORKER.with(|c| c.set(true));
    let mut w = lock();
    loop {
        if w.worker_stop && w.timed.is_empty() {
            break;
        }
        let now = Instant::now();
        let first = w.timed.keys().next().copied();
        match first {
            Some(key) if key.0 <= now || w.worker_stop => {
                let job = w.timed.remove(&key).expect("job");
                w.jobs_running += 1;
                drop(w);
                job();
                w = lock();
                w.jobs_running -= 1;
                w.notify();
            }
            Some(key) => {
                let d = key.0.saturating_duration_since(now);
                w.wait(Some(d));
            }
            None => w.wait(None),
        }
    }
}

/// Runs every manual job (and those they queue) on this thread. Returns how
/// many ran.
pub(crate) fn run_manual_jobs() -> usize {
    let mut n = 0;
    loop {
        let job = {
            let mut w = lock();
            let j = w.manual.pop_front();
            if j.is_some() {
                w.jobs_running += 1;
            }
            j
        };
        let Some(job) = job else { break };
        job();
        n += 1;
        let mut w = lock();
        w.jobs_running -= 1;
        w.notify();
    }
    n
}

/// Waits until no timed job is queued or running (bounded by `timeout`).
pub(crate) fn wait_jobs_idle(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut w = lock();
    loop {
        if w.timed.is_empty() && w.jobs_running == 0 {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        w.wait(Some((deadline - now).min(Duration::from_millis(20))));
    }
}

/// Stops and joins the worker thread and every simulator-started thread
/// that has finished.
pub(crate) fn stop_threads() {
    let (worker, threads) = {
        let mut w = lock();
        w.worker_stop = true;
        w.notify();
        (w.worker.take(), core::mem::take(&mut w.threads))
    };
    if let Some(h) = worker {
        let _ = h.join();
    }
    let mut unfinished = Vec::new();
    for t in threads {
        if t.is_finished() {
            let _ = t.join();
        } else {
            unfinished.push(t);
        }
    }
    let mut w = lock();
    w.worker_stop = false;
    // Threads still running (a system thread parked in
    // `PsTerminateSystemThread`, a work item stuck in a wait) are detached.
    drop(unfinished);
}

/// Resets the world to a fresh machine with `cfg`, keeping nothing.
pub(crate) fn reset(cfg: Config) {
    let mut w = lock();
    let generation = w.generation + 1;
    let seed = cfg.seed.unwrap_or(0x005E_ED0F_5EED);
    *w = World::new();
    w.generation = generation;
    w.rng = Rng::new(seed);
    if let Some(a) = cfg.adversary {
        w.adv_rng = crate::adversary::stream(a.seed(), u64::MAX);
    }
    w.cfg = cfg;
}

/// A small deterministic PRNG (`SplitMix64`).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

impl World {
    /// Whether the adversary is on with behaviour `b`.
    pub(crate) fn adversary(&self, b: crate::Behaviour) -> bool {
        self.cfg.adversary.is_some_and(|a| a.has(b))
    }

    /// Draws "`per_mille` in 1000" from the adversary's machine stream.
    pub(crate) fn adversary_chance(&mut self, per_mille: u16) -> bool {
        self.adv_rng.below(1000) < u64::from(per_mille)
    }

    /// Whether the rare event `b` happens now: `b` is on and the draw at
    /// [`Adversary::rare_events_per_mille`](crate::Adversary::rare_events_per_mille)
    /// succeeds (from the machine stream).
    pub(crate) fn rare_event(&mut self, b: crate::Behaviour) -> bool {
        let rate = self
            .cfg
            .adversary
            .filter(|a| a.has(b))
            .map_or(0, |a| a.rare_event_rate());
        rate != 0 && self.adversary_chance(rate)
    }

    /// Wakes every sleeper.
    #[allow(clippy::unused_self)] // called on the guard for readability
    pub(crate) fn notify(&self) {
        CHANGED.notify_all();
    }

    /// Reports a violation while holding the world lock (see
    /// [`crate::verifier::report`]).
    pub(crate) fn violation(
        &mut self,
        rule: crate::verifier::Rule,
        args: core::fmt::Arguments<'_>,
    ) {
        let msg = crate::verifier::message(rule, args);
        if crate::verifier::can_unwind() {
            self.violations.push((msg.clone(), true));
            panic!("{msg}");
        }
        eprintln!("{msg}");
        self.violations.push((msg, false));
        CHANGED.notify_all();
    }
}

/// `wviolation!(guard, Rule::X, "fmt", args…)`: a violation reported while
/// holding the world lock.
macro_rules! wviolation {
    ($w:expr, $rule:expr, $($arg:tt)*) => {
        $w.violation($rule, format_args!($($arg)*))
    };
}
pub(crate) use wviolation;

/// Queues `job` for the worker thread at `at`; returns its key for
/// [`cancel_job`].
pub(crate) fn queue_job_at(w: &mut World, at: Instant, job: Job) -> (Instant, u64) {
    w.job_seq += 1;
    let key = (at, w.job_seq);
    w.timed.insert(key, job);
    ensure_worker(w);
    CHANGED.notify_all();
    key
}

/// Removes a job queued with [`queue_job_at`] that has not started; returns
/// whether it was still queued.
pub(crate) fn cancel_job(w: &mut World, key: (Instant, u64)) -> bool {
    w.timed.remove(&key).is_some()
}
