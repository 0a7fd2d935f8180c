//! The executor: its worker and blocking threads, the handle that spawns
//! onto it, and shutdown.
//!
//! Each executor's threads live in a [`ThreadSet`] of their own, listed
//! for [`wsk::shutdown`](crate::shutdown) while the executor runs (see
//! [`super::threads`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;
use core::future::Future;
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{Relaxed, Release};
use core::time::Duration;

use wsk_sys as sys;

use super::join::JoinHandle;
use super::queue::RunQueue;
use super::raw::{self, Header, Shared};
use super::sys::{SpawnThreadError, SystemThread};
use super::threads::{ListedSet, RUNNING, ThreadSet, orphan, stop_and_wait, stop_threads};
use crate::Result;
use crate::error::Error;
use crate::irql::Passive;

/// The most worker (or blocking) threads one executor may have.
pub const MAX_THREADS: usize = 64;

/// Configures and starts an [`Executor`].
///
/// ```
/// # let _sim = wsk_sim::Sim::start();
/// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// use core::time::Duration;
/// use wsk::task::Executor;
///
/// let executor = Executor::builder()
///     .workers(4)
///     .blocking_threads(2)
///     .shutdown_timeout(Duration::from_secs(2))
///     .build(&passive)?;
/// executor.shutdown(&passive)?;
/// # Ok::<(), wsk::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    workers: usize,
    blocking_threads: usize,
    shutdown_timeout: Duration,
}

impl Builder {
    /// Two workers, one blocking thread, a five-second shutdown bound.
    ///
    /// # IRQL
    ///
    /// Any.
    pub const fn new() -> Self {
        Self {
            workers: 2,
            blocking_threads: 1,
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    /// The number of worker threads that poll tasks (1 to [`MAX_THREADS`]):
    /// at most that many tasks run at once.
    ///
    /// # IRQL
    ///
    /// Any.
    pub const fn workers(mut self, count: usize) -> Self {
        self.workers = count;
        self
    }

    /// The number of threads that run [`Handle::spawn_blocking`] closures (0
    /// to [`MAX_THREADS`]; with 0, `spawn_blocking` is refused): at most that
    /// many closures run at once, the others wait in a queue.
    ///
    /// # IRQL
    ///
    /// Any.
    pub const fn blocking_threads(mut self, count: usize) -> Self {
        self.blocking_threads = count;
        self
    }

    /// How long [`Executor::shutdown`] waits for tasks and threads before it
    /// gives up (see there).
    ///
    /// # IRQL
    ///
    /// Any.
    pub const fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the executor's threads (`PsCreateSystemThread`).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`] if a thread count is out of range.
    /// - [`Error::INSUFFICIENT_RESOURCES`] if memory runs out, or the status
    ///   `PsCreateSystemThread` / `ObReferenceObjectByHandle` returned. The
    ///   threads already started are stopped and waited for (within the
    ///   shutdown bound) before the error is returned.
    pub fn build(self, passive: &Passive<'_>) -> Result<Executor> {
        if !(1..=MAX_THREADS).contains(&self.workers) || self.blocking_threads > MAX_THREADS {
            return Err(Error::INVALID_PARAMETER);
        }
        let shared = Shared::new(passive);
        let count = self.workers + self.blocking_threads;
        let mut set = ThreadSet::with_capacity(Arc::clone(&shared), count)
            .ok_or(Error::INSUFFICIENT_RESOURCES)?;
        for index in 0..count {
            let start = Box::new(WorkerStart {
                shared: Arc::clone(&shared),
                blocking: index >= self.workers,
            });
            // Counted before the thread can run (and uncount itself).
            RUNNING.fetch_add(1, Relaxed);
            match SystemThread::spawn(passive, worker_main, start) {
                Ok(thread) => set.push(thread),
                Err(failure) => {
                    let error = match failure {
                        SpawnThreadError::NotStarted(error) => {
                            RUNNING.fetch_sub(1, Release);
                            error
                        }
                        SpawnThreadError::Detached(error) => {
                            super::sys::debug_print(
                                c"wsk: an executor thread could not be referenced; it exits \
                                  on its own but cannot be waited for\n",
                            );
                            error
                        }
                    };
                    // Nothing was spawned yet: closing and stopping makes the
                    // threads exit at once.
                    let _ = stop_and_wait(&shared, Some(set), self.shutdown_timeout, passive);
                    return Err(error);
                }
            }
        }
        // Listed once every thread runs: `wsk::shutdown` takes whole sets.
        Ok(Executor {
            shared,
            threads: Some(ListedSet::list(set)),
            shutdown_timeout: self.shutdown_timeout,
            blocking_threads: self.blocking_threads,
        })
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// What a new thread of the executor gets.
struct WorkerStart {
    shared: Arc<Shared>,
    blocking: bool,
}

/// The start routine of the executor's threads: runs the tasks of its queue
/// until the executor stops, then ends the thread.
///
/// # Safety
///
/// Called once per thread by the kernel with the `WorkerStart` box given to
/// `PsCreateSystemThread`.
unsafe extern "system" fn worker_main(context: sys::PVOID) {
    // SAFETY: the box SystemThread::spawn leaked for this thread.
    let start = unsafe { Box::from_raw(context.cast::<WorkerStart>()) };
    // SAFETY: a system thread created by this executor runs at PASSIVE_LEVEL,
    // outside any WSK callback, holds no lock, and may wait.
    let passive = unsafe { Passive::new_unchecked() };
    worker_loop(&start.shared, start.blocking, &passive);
    drop(start);
    // Only the return and `end_current_thread` are left of the driver's
    // code: `shutdown` waits on the thread object for those, where it has one.
    RUNNING.fetch_sub(1, Release);
    // SAFETY: last action of the start routine; everything is dropped.
    unsafe { super::sys::end_current_thread() };
}

/// Runs tasks from the thread's queue until it stops; then cancels whatever
/// is still live (when the executor was dropped without `shutdown`, the
/// workers do that) and drains the queue.
fn worker_loop(shared: &Shared, blocking: bool, passive: &Passive<'_>) {
    let queue = if blocking {
        &shared.blocking
    } else {
        &shared.tasks
    };
    // SAFETY: PASSIVE_LEVEL, may wait (see worker_main); the queue matches
    // the thread's kind.
    while unsafe { run_next(queue) } {}
    // Stopping: the queue is empty. Cancel what is live (a no-op after
    // `shutdown`), then drop what that queued; `pop` no longer parks.
    shared.cancel_all(passive);
    // SAFETY: as above.
    while unsafe { run_next(queue) } {}
}

/// Takes the next task from `queue`, parking while there is none, and runs
/// it; `false` once the queue is stopping and empty.
///
/// A function of its own (never inlined) so that benchmarks can count the
/// instructions of one scheduling round: pop, run, requeue.
///
/// # Safety
///
/// The caller is a thread of this executor of the queue's kind, at
/// `PASSIVE_LEVEL`, allowed to wait.
#[inline(never)]
unsafe fn run_next(queue: &RunQueue<Header>) -> bool {
    // SAFETY: PASSIVE_LEVEL, may wait (caller contract).
    let Some(task) = (unsafe { queue.pop() }) else {
        return false;
    };
    // SAFETY: popped from the queue of its kind, with its reference.
    unsafe { raw::run(task) };
    true
}

/// A kernel executor for `async` code: tasks (futures) polled at
/// `PASSIVE_LEVEL` by a bounded set of system threads, woken by completion
/// routines, event callbacks and timer DPCs at any IRQL ≤ `DISPATCH_LEVEL`.
///
/// Spawn through the executor or a cloned [`Handle`]; end it with
/// [`shutdown`](Self::shutdown), which cancels every task and waits, within
/// a bound, for the threads to exit. See the [module docs](super) and
/// `docs/tasks.md`.
///
/// ```
/// # let _sim = wsk_sim::Sim::start();
/// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// use wsk::task::Executor;
///
/// let executor = Executor::builder().build(&passive)?;
/// let handle = executor.handle();
/// let answer = executor.spawn(async move {
///     // Tasks spawn tasks through a handle.
///     let half = handle.spawn(async { 21 }).ok()?;
///     Some(half.await.ok()? * 2)
/// }).map_err(|e| e.error())?;
/// assert_eq!(answer.join(&passive)?, Some(42));
/// executor.shutdown(&passive)?;
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct Executor {
    shared: Arc<Shared>,
    /// Worker threads, then blocking threads, listed for `wsk::shutdown`;
    /// `None` once taken back ([`unlist`](Self::unlist)).
    threads: Option<ListedSet>,
    shutdown_timeout: Duration,
    blocking_threads: usize,
}

impl Executor {
    /// A [`Builder`] with the defaults.
    ///
    /// # IRQL
    ///
    /// Any.
    pub const fn builder() -> Builder {
        Builder::new()
    }

    /// A handle that spawns onto this executor, cloneable and `Send + Sync`
    /// (give one to every task that spawns).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn handle(&self) -> Handle {
        Handle {
            shared: Arc::clone(&self.shared),
            blocking: self.blocking_threads > 0,
        }
    }

    /// Spawns a task; see [`Handle::spawn`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`Handle::spawn`].
    pub fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_task!(future, &self.shared, future: F => F::Output)
    }

    /// Runs a closure that may wait on a blocking thread; see
    /// [`Handle::spawn_blocking`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`Handle::spawn_blocking`].
    pub fn spawn_blocking<F, R>(&self, f: F) -> Result<JoinHandle<R>, SpawnError<F>>
    where
        F: FnOnce(&mut Passive<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        spawn_task!(blocking, &self.shared, self.blocking_threads > 0, f: F => R)
    }

    /// Cancels every task and waits for the executor's threads to exit.
    ///
    /// In order: new spawns are refused; every task no thread is running is
    /// dropped here, on the caller's thread (its future, with the requests
    /// and sockets it owns — dropping a pending request cancels its IRP);
    /// every task a worker is polling is dropped by that worker as soon as
    /// the poll returns; queued blocking closures are dropped without
    /// running, running ones finish. Once no task is left, the threads are
    /// told to stop and waited for, and `KeFlushQueuedDpcs` waits for timer
    /// DPCs already queued (see [`crate::timer`]).
    ///
    /// All of it within the builder's shutdown timeout (five seconds by
    /// default): a poll that does not return (a future that never yields) or
    /// a blocking closure that keeps waiting holds a thread past it.
    ///
    /// What it cannot do: a request whose provider never completes its IRP
    /// (a provider that ignores `IoCancelIrp`, as Wine's does, until the
    /// socket closes) keeps its memory until the provider completes it; that
    /// is the request's business, not the executor's, and shutdown does not
    /// wait for it. Closing the sockets (dropping the tasks that own them
    /// does) and [`Registration::deregister`](crate::Registration::deregister)
    /// are what wait for the provider.
    ///
    /// If [`wsk::shutdown`](crate::shutdown) already stopped this executor
    /// (it was still alive when `wsk::shutdown` ran, maybe at the same
    /// time), its threads are `wsk::shutdown`'s to wait for and report:
    /// this waits only for the tasks.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`). Not from one of this executor's
    /// blocking closures: it would wait for its own thread (and give up at
    /// the bound).
    ///
    /// # Errors
    ///
    /// [`Error::IO_TIMEOUT`] if a task or thread was still running at the
    /// bound. The threads are still told to stop and exit when they can; the
    /// executor's memory stays allocated for as long as they (or wakers) use
    /// it; a `DbgPrint` line says so. The driver must not unload while those
    /// threads run its code: [`wsk::shutdown`](crate::shutdown), in
    /// `DriverUnload`, waits for them (within its own bound).
    pub fn shutdown(mut self, passive: &Passive<'_>) -> Result<()> {
        let set = self.unlist();
        let result = stop_and_wait(&self.shared, set, self.shutdown_timeout, passive);
        if result.is_err() {
            super::sys::debug_print(
                c"wsk: Executor::shutdown timed out: tasks or blocking closures were still \
                  running; their threads exit when they finish\n",
            );
        }
        result
    }

    /// Takes the executor's thread set back; `None` if
    /// [`wsk::shutdown`](crate::shutdown) took it first (it has stopped the
    /// executor and waits for the threads), or if it was taken back before.
    fn unlist(&mut self) -> Option<Box<ThreadSet>> {
        self.threads.take()?.take_back(&self.shared)
    }
}

impl Drop for Executor {
    /// Without [`shutdown`](Self::shutdown): refuses new tasks and tells the
    /// threads to stop; they drop the remaining tasks and exit on their own.
    /// Never waits: the threads are handed to [`wsk::shutdown`](crate::shutdown),
    /// which the driver calls in `DriverUnload` and which waits for them. A
    /// `DbgPrint` line says so. Nothing of that if `wsk::shutdown` stopped
    /// the executor already.
    fn drop(&mut self) {
        let Some(set) = self.unlist() else {
            return;
        };
        self.shared.close();
        stop_threads(&self.shared);
        orphan(set);
        super::sys::debug_print(
            c"wsk: Executor dropped without shutdown(): its threads cancel the remaining tasks \
              and exit on their own; wsk::shutdown in DriverUnload waits for them\n",
        );
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field(
                "threads",
                &self
                    .threads
                    .as_ref()
                    .map_or(0, |set| set.thread_count(&self.shared)),
            )
            .field("shut_down", &self.shared.is_closed())
            .finish_non_exhaustive()
    }
}

/// A cloneable, `Send + Sync` handle that spawns onto an [`Executor`].
///
/// It keeps the executor's shared state (not its threads) alive; after
/// shutdown, spawning through it fails.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    blocking: bool,
}

impl Handle {
    /// Spawns `future` as a task and returns its [`JoinHandle`].
    ///
    /// The task runs at `PASSIVE_LEVEL` on a worker thread, but holds no
    /// [`Passive`] token: the future is `Send + 'static` and tokens are
    /// neither, so nothing in it can wait and stall its worker (see the
    /// [module docs](super)). Waiting belongs in
    /// [`spawn_blocking`](Self::spawn_blocking).
    ///
    /// Dropping the `JoinHandle` detaches the task.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (allocates the task from the driver's non-paged
    /// heap).
    ///
    /// # Errors
    ///
    /// The future comes back in a [`SpawnError`] with
    /// [`Error::INSUFFICIENT_RESOURCES`] if the task cannot be allocated, or
    /// `STATUS_DELETE_PENDING` once the executor is shut down or dropped.
    pub fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<F>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_task!(future, &self.shared, future: F => F::Output)
    }

    /// Runs `f` on one of the executor's blocking threads, where it may wait:
    /// it gets a [`Passive`] token, so it can call `Request::wait`,
    /// `block_on`, `JoinHandle::join`, deregister, … It never runs on a
    /// worker, so waiting there stalls no task. At most
    /// [`Builder::blocking_threads`] closures run at once; the others queue.
    ///
    /// ```
    /// # let _sim = wsk_sim::Sim::start();
    /// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
    /// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
    /// use core::time::Duration;
    /// use wsk::task::Executor;
    ///
    /// let executor = Executor::builder().build(&passive)?;
    /// let slept = executor.spawn_blocking(|passive| {
    ///     passive.sleep(Duration::from_millis(5)); // waiting is allowed here
    ///     5
    /// }).map_err(|e| e.error())?;
    /// let handle = executor.handle();
    /// let task = executor.spawn(async move { slept.await.unwrap_or(0) + 1 })
    ///     .map_err(|e| e.error())?;
    /// assert_eq!(task.join(&passive)?, 6);
    /// executor.shutdown(&passive)?;
    /// # drop(handle);
    /// # Ok::<(), wsk::Error>(())
    /// ```
    ///
    /// Aborting a closure that has started has no effect; shutdown drops the
    /// closures that have not started and waits (within its bound) for the
    /// others.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn), and [`Error::NOT_SUPPORTED`] if the
    /// executor has no blocking threads.
    pub fn spawn_blocking<F, R>(&self, f: F) -> Result<JoinHandle<R>, SpawnError<F>>
    where
        F: FnOnce(&mut Passive<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        spawn_task!(blocking, &self.shared, self.blocking, f: F => R)
    }

    /// Whether the executor was shut down or dropped (spawning fails).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_closed()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

/// The body of the spawn functions: allocates the task, moves `$value` (the
/// future or closure) into it, and starts it, or hands `$value` back in a
/// [`SpawnError`].
///
/// A macro, not a function, so that the future is moved by value in the
/// public function's frame only. In unoptimised builds (`opt-level = 0`)
/// every call that takes a value by argument copies it onto the caller's
/// stack first: a helper function between the public one and the task's
/// allocation would put one more copy of the future on the stack, and a
/// future of a few kilobytes (a buffer held across an `.await`) would make
/// frames larger than a page, which need the stack probe `__chkstk`, an
/// import `cargo wsk build --strict` refuses (no Microsoft page documents it
/// as an `ntoskrnl.exe` export). Written this way, the frame holds two slots
/// of the future's size (one for the move into the allocation, one for the
/// `SpawnError` of a failed allocation), as the caller's frame does (the
/// future, and the `Result` holding a `SpawnError`).
/// `xtask stack-frames` checks it.
macro_rules! spawn_task {
    // A future `$value: $p` producing `$t`.
    (future, $shared:expr, $value:ident: $p:ty => $t:ty) => {
        spawn_task!(@ $shared, $value: $p => $t, raw::future_vtable::<$p>(), false, true)
    };
    // A blocking closure, refused if the executor has no blocking threads.
    (blocking, $shared:expr, $has_threads:expr, $value:ident: $p:ty => $t:ty) => {
        spawn_task!(@ $shared, $value: $p => $t, raw::blocking_vtable::<$p, $t>(), true, $has_threads)
    };
    (@ $shared:expr, $value:ident: $p:ty => $t:ty, $vtable:expr, $blocking:expr, $has_threads:expr) => {{
        let shared: &Arc<Shared> = $shared;
        let allocated = if $has_threads {
            raw::allocate::<$p, $t>(shared, $vtable, $blocking)
        } else {
            Err(Error::NOT_SUPPORTED)
        };
        match allocated {
            Err(error) => Err(SpawnError {
                error,
                value: $value,
            }),
            Ok(task) => {
                // SAFETY: `allocate` made the task for this type and output,
                // with an empty slot that nothing else reaches yet.
                unsafe { core::ptr::write(raw::pending::<$p, $t>(task), $value) };
                // SAFETY: allocated above, not shared, its value written.
                match unsafe { raw::start(task) } {
                    // SAFETY: a started task's pointer carries the
                    // JoinHandle's reference; its output type is the one
                    // allocated for.
                    Ok(()) => Ok(unsafe { JoinHandle::from_raw(task) }),
                    Err(error) => refused(task, error),
                }
            }
        }
    }};
}
use spawn_task;

/// A spawn [`raw::start`] refused: the future or closure comes back out of
/// the task's memory into the `SpawnError`. Its own function, never inlined,
/// so that its copies of the value stay out of the spawn function's frame.
#[cold]
#[inline(never)]
fn refused<P, T>(task: NonNull<Header>, error: Error) -> Result<JoinHandle<T>, SpawnError<P>> {
    Err(SpawnError {
        error,
        // SAFETY: `start` refused the task, which was allocated for a `P`
        // producing `T` and written.
        value: unsafe { raw::unspawn::<P, T>(task) },
    })
}

/// Why a spawn failed, with the future (or closure) handed back.
pub struct SpawnError<F> {
    error: Error,
    value: F,
}

impl<F> SpawnError<F> {
    /// Why: [`Error::INSUFFICIENT_RESOURCES`], `STATUS_DELETE_PENDING` (the
    /// executor is shut down) or [`Error::NOT_SUPPORTED`] (no blocking
    /// threads).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn error(&self) -> Error {
        self.error
    }

    /// The future or closure that was not spawned.
    ///
    /// # IRQL
    ///
    /// Any.
    pub fn into_inner(self) -> F {
        self.value
    }
}

impl<F> fmt::Debug for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<F> fmt::Display for SpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spawn failed: {}", self.error)
    }
}

impl<F> core::error::Error for SpawnError<F> {}

impl<F> From<SpawnError<F>> for Error {
    fn from(e: SpawnError<F>) -> Self {
        e.error
    }
}
