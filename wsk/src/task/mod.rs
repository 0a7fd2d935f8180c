//! Tasks: an executor for `wsk`'s futures in the kernel.
//!
//! Every WSK request is a future. [`Executor`] runs such futures as
//! *tasks* on a fixed set of system threads (its *workers*), so that a server
//! needs one task per connection, not one thread, and a task waiting for I/O
//! costs its memory and nothing else.
//!
//! ```
//! # let _sim = wsk_sim::Sim::start();
//! # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
//! # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
//! use core::time::Duration;
//! use wsk::task::Executor;
//!
//! // DriverEntry (PASSIVE_LEVEL): start the workers.
//! let executor = Executor::builder().workers(2).build(&passive)?;
//!
//! let ticks = executor.spawn(async {
//!     let mut ticks = 0;
//!     for _ in 0..3 {
//!         wsk::timer::sleep(Duration::from_millis(1)).await?; // a KTIMER + KDPC
//!         ticks += 1;
//!     }
//!     Ok::<_, wsk::Error>(ticks)
//! }).map_err(|e| e.error())?;
//! assert_eq!(ticks.join(&passive)??, 3);
//!
//! // DriverUnload (PASSIVE_LEVEL): cancel everything, wait for the threads.
//! executor.shutdown(&passive)?;
//! # Ok::<(), wsk::Error>(())
//! ```
//!
//! # Model
//!
//! - **Spawning.** [`Executor::spawn`] and [`Handle::spawn`] (a cloneable,
//!   `Send + Sync` handle: no global state; tasks spawn tasks through one)
//!   allocate the task once and queue it. Tasks are `Send + 'static`.
//! - **Running.** Workers take ready tasks from a FIFO and poll them at
//!   `PASSIVE_LEVEL`, one poll at a time per task, at most one task per
//!   worker at a time.
//! - **Waking.** A task's waker may be called from any processor at any
//!   IRQL ≤ `DISPATCH_LEVEL` — a completion routine, a WSK event callback, a
//!   timer DPC — and may outlive the task and the executor. A wake is one
//!   atomic update of the task's state and, if the task was idle, a push on
//!   the run queue under a spin lock held for a few pointer writes (never
//!   across a poll), plus `KeReleaseSemaphore` if a worker is parked. It
//!   never allocates.
//! - **Blocking work** goes to [`Handle::spawn_blocking`]: a closure that
//!   gets a [`Passive`](crate::irql::Passive) token and runs on a separate,
//!   bounded set of threads.
//! - **Shutdown.** [`Executor::shutdown`] cancels every task by dropping it
//!   and waits, within a bound, for the threads; dropping an executor
//!   without it never waits (see [`Executor`]'s `Drop`). An executor
//!   neither shut down nor dropped — leaked with `mem::forget`, or still
//!   alive — is stopped by [`wsk::shutdown`](crate::shutdown), the last call
//!   of `DriverUnload`: every executor is listed in a registry from `build`
//!   until its shutdown or drop (see `docs/tasks.md`).
//!
//! # Tokens inside tasks
//!
//! A task runs at `PASSIVE_LEVEL`, but it must not wait: a worker stuck in a
//! wait is a worker that polls nothing else. The IRQL tokens enforce that
//! without a run-time check: a spawned future is `Send + 'static`, and a
//! [`Passive`](crate::irql::Passive) token is neither `Send` nor `Sync` nor
//! `'static`-borrowable, so no task can hold one, and everything that waits
//! takes one. Capturing a token does not compile:
//!
//! ```compile_fail,E0277
//! # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
//! # let executor = wsk::task::Executor::builder().build(&passive).unwrap();
//! executor.spawn(async move {
//!     let _token = passive; // `Passive` is not `Send`
//! });
//! ```
//!
//! and neither does waiting on a request inside a task, with a token
//! borrowed from outside:
//!
//! ```compile_fail,E0277
//! use wsk::irql::Passive;
//! use wsk::request::{Operation, Request};
//! use wsk::task::Executor;
//!
//! fn wait_in_task<O>(executor: &Executor, request: Request<O>, passive: &Passive<'_>)
//! where
//!     O: Operation,
//!     O::Output: Send + 'static,
//! {
//!     // `&Passive` is neither `Send` nor `'static`.
//!     let _ = executor.spawn(async move { request.wait(passive) });
//! }
//! ```
//!
//! A task `.await`s requests instead; code that must wait uses
//! [`Handle::spawn_blocking`]. The tokens cannot see `unsafe`
//! (`Passive::new_unchecked` inside a task breaks the rule, and the `# Safety`
//! contract of that function).
//!
//! # Why dedicated threads, not work items
//!
//! Workers are system threads the executor creates (`PsCreateSystemThread`)
//! and parks on a semaphore when idle. Queuing an I/O work item per wake
//! instead would run tasks on the system's shared worker threads, whose
//! number the driver does not bound and which other drivers need; it would
//! cost a kernel queue operation per wake where a parked worker costs one
//! only when it is actually parked; and a long poll would hold a shared
//! system thread. Dedicated threads give a bound the driver chooses, FIFO
//! fairness between its tasks, and a shutdown that can wait for exactly its
//! own threads.
//!
//! # Panics
//!
//! A panic in a task is a panic in the driver: with `panic = "abort"` (as
//! drivers build) it ends in the panic handler, which bug-checks. On hosts
//! (`wsk-sim`) it unwinds into the worker thread's `extern "system"` start
//! routine and aborts the test process. `wsk` is `no_std` and has no
//! `catch_unwind`.

mod executor;
mod join;
mod queue;
mod raw;
mod stop;
pub(crate) mod sys;
mod threads;
pub(crate) mod waker_slot;

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

pub use executor::{Builder, Executor, Handle, MAX_THREADS, SpawnError};
pub use join::JoinHandle;
pub(crate) use raw::is_task_waker;
pub use stop::{RunUntil, StopSignal, Stopped};
pub(crate) use threads::{ThreadsAtShutdown, stop_listed, wait_for_threads};

use crate::error::Error;

/// The error of a spawn on an executor that is shut down:
/// `STATUS_DELETE_PENDING`, "the object is being deleted".
const SHUT_DOWN: Error = match Error::from_raw(wsk_sys::STATUS_DELETE_PENDING) {
    Some(error) => error,
    None => panic!("STATUS_DELETE_PENDING is an error status"),
};

/// Lets other tasks run: the first poll wakes the task and returns
/// `Pending`, which puts it at the back of its executor's run queue.
///
/// # IRQL
///
/// Polled at ≤ `DISPATCH_LEVEL`.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Cooperative scheduling for futures that can make progress without ever
/// returning `Pending` (a request that always completes inline, a loop over
/// ready data): call it in `poll` before doing work; once the task has spent
/// its budget for this run (128 calls), it returns `Pending` after waking the
/// task, which then runs again after the other ready tasks, and cancellation
/// and shutdown can reach it between two runs. Outside this executor's tasks
/// it always returns `Ready`.
///
/// ```
/// use core::future::Future;
/// use core::pin::Pin;
/// use core::task::{Context, Poll, ready};
///
/// /// Counts forever, one `Ready` at a time, without starving other tasks.
/// struct Counter(u64);
///
/// impl Future for Counter {
///     type Output = ();
///     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
///         loop {
///             ready!(wsk::task::consume_budget(cx));
///             self.0 += 1;
///         }
///     }
/// }
/// ```
///
/// # IRQL
///
/// Any (it only reads and writes the task's budget and may wake it).
pub fn consume_budget(cx: &mut Context<'_>) -> Poll<()> {
    if raw::budget(cx) {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}
