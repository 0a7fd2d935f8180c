//! [`shutdown`]: the crate's part of `DriverUnload`.
//!
//! A driver's image is unmapped once `DriverUnload` returns, so nothing of
//! the driver's code may run after it: no timer DPC ("Drivers must cancel
//! any active timers in their Unload routines",
//! [`KeSetTimer`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer)),
//! no DPC still queued, no thread the driver created ("the *Unload* routine
//! also must cause the driver-created thread to be run so that the thread
//! itself can call `PsTerminateSystemThread` before the driver is
//! unloaded", [Releasing Driver-Allocated Resources](https://learn.microsoft.com/windows-hardware/drivers/kernel/releasing-driver-allocated-resources)).
//! Safe code can leave all three behind: a [`Sleep`](crate::timer::Sleep)
//! leaked with `mem::forget`, an [`Executor`](crate::task::Executor)
//! dropped without [`shutdown`](crate::task::Executor::shutdown) (its
//! threads exit on their own, later), an executor leaked with
//! `mem::forget` (nobody ever tells its threads to stop). Like armed
//! timers, every executor built and neither shut down nor dropped is
//! listed in a registry (an intrusive list under a spin lock, through the
//! allocation that holds its threads), so that `shutdown` can stop it.
//! Each registration's
//! [`deregister`](crate::Registration::deregister) cleans up what belongs
//! to it; these belong to the driver as a whole, so one call at the end of
//! `DriverUnload` cleans them up.

use core::fmt;
use core::time::Duration;

use crate::debug;
use crate::irql::Passive;
use crate::provider::registration::run_deferred_all;
use crate::task::{ThreadsAtShutdown, stop_listed, sys::flush_queued_dpcs, wait_for_threads};
use crate::timer;

/// How many rounds of cancelling and flushing [`shutdown`] makes at most:
/// an owner a cancel woke, or a DPC the flush ran, may set a new timer.
const TIMER_ROUNDS: usize = 4;

/// What [`shutdown`] found still running and cleaned up, or could not.
/// Each was also reported with a `DbgPrint` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownLeftovers {
    /// Timers of [`Sleep`](crate::timer::Sleep)s (and
    /// [`Timeout`](crate::timer::Timeout)s) still set — leaked or still
    /// alive: cancelled. Those sleeps resolve to
    /// [`Error::CANCELLED`](crate::Error::CANCELLED); dropping them later
    /// is safe.
    pub timers: usize,
    /// Executors neither shut down nor dropped — leaked with `mem::forget`,
    /// or still alive: closed and stopped as a drop would (new spawns are
    /// refused, their threads drop the remaining tasks and exit); their
    /// threads are counted in [`orphaned_threads`](Self::orphaned_threads).
    /// A leaked executor's own memory stays leaked; one still alive may be
    /// shut down or dropped later, which is then quick and safe.
    pub executors_stopped: usize,
    /// Threads of executors dropped without
    /// [`Executor::shutdown`](crate::task::Executor::shutdown), or whose
    /// shutdown gave up, or that `shutdown` stopped
    /// ([`executors_stopped`](Self::executors_stopped)): waited for.
    pub orphaned_threads: usize,
    /// Executor threads still running at the bound: threads that did not
    /// exit in time (a poll or blocking closure that does not return), or of
    /// an executor built while `shutdown` ran. While this is not zero the
    /// driver must not unload: they run its code.
    pub running_threads: usize,
    /// Timers still set when `shutdown` returned: set again, by code still
    /// running (a waker `shutdown` woke, a thread), after each of its
    /// rounds. While this is not zero the driver must not unload: their
    /// DPCs would run its code.
    pub timers_still_set: usize,
}

impl ShutdownLeftovers {
    /// Whether nothing was left behind.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the driver may unload: no executor thread runs its code any
    /// more and no timer is set ([`running_threads`](Self::running_threads)
    /// and [`timers_still_set`](Self::timers_still_set) are zero).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn may_unload(&self) -> bool {
        self.running_threads == 0 && self.timers_still_set == 0
    }
}

impl fmt::Display for ShutdownLeftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown cancelled {} timer(s) still set, stopped {} executor(s) neither shut down nor dropped, waited for {} thread(s) of executors not shut down; {} executor thread(s) still running, {} timer(s) set again",
            self.timers,
            self.executors_stopped,
            self.orphaned_threads,
            self.running_threads,
            self.timers_still_set
        )
    }
}

/// Stops whatever of the crate could still run the driver's code, for
/// `DriverUnload`: call it last, after deregistering every
/// [`Registration`](crate::Registration) and shutting down every
/// [`Executor`](crate::task::Executor).
///
/// In order:
///
/// 1. Closes and stops every executor neither shut down nor dropped —
///    leaked with `mem::forget`, or still alive — as dropping it would: new
///    spawns (through any [`Handle`](crate::task::Handle)) are refused, and
///    its threads drop the remaining tasks at `PASSIVE_LEVEL` and exit. A
///    blocking closure that is running finishes first.
/// 2. Waits, within `timeout`, for the threads of those executors and of
///    executors dropped without
///    [`shutdown`](crate::task::Executor::shutdown) (or whose shutdown gave
///    up) to terminate, then (within the same bound again) for every other
///    executor thread to finish.
/// 3. Disposes of requests whose owners let go before their completion
///    routine ran (as [`deregister`](crate::Registration::deregister) does).
/// 4. Cancels the timer of every [`Sleep`](crate::timer::Sleep) still set
///    (`KeCancelTimer`; such a sleep resolves to
///    [`Error::CANCELLED`](crate::Error::CANCELLED), and a later drop is
///    safe: see [`timer`](crate::timer)) and waits for every DPC already
///    queued (`KeFlushQueuedDpcs`) — timer DPCs, and any other the crate
///    queued — repeating a few times if a DPC, or an owner it woke, set a
///    new timer. Each round cancels only the timers set before it began, so
///    code that sets a timer each time it is woken cannot keep it going; a
///    timer still set after the last round is reported
///    ([`ShutdownLeftovers::timers_still_set`]).
///
/// Sleeps created and executors built afterwards work normally: this is an
/// end, not a mode (the next call stops them again).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// use core::time::Duration;
///
/// // A sleep still set (held somewhere, or leaked with `mem::forget`) would
/// // run its DPC after the driver unloaded …
/// let sleeping = wsk::timer::sleep(Duration::from_secs(3600));
/// // … so DriverUnload ends with this.
/// let left = wsk::shutdown(&passive, Duration::from_secs(5)).unwrap_err();
/// assert_eq!(left.timers, 1);
/// assert!(left.may_unload());
/// // The sleep has ended, and may still be dropped.
/// assert!(!sleeping.is_elapsed());
/// drop(sleeping);
/// # sim.finish();
/// ```
///
/// # IRQL
///
/// `PASSIVE_LEVEL` (proven by `passive`); not from an executor's thread (it
/// would wait for itself until the bound).
///
/// # Errors
///
/// [`ShutdownLeftovers`] when it had to clean up what the driver left:
/// timers, executors not shut down, or threads of executors dropped
/// without shutdown. When
/// [`ShutdownLeftovers::may_unload`] is `false`, executor threads still
/// run the driver's code (a poll or a blocking closure that does not
/// return), or code woken by a cancelled timer set a new one each time: the
/// driver must not return from `DriverUnload` yet (end what keeps the
/// thread busy, stop what sets timers, or call this again).
pub fn shutdown(passive: &Passive<'_>, timeout: Duration) -> Result<(), ShutdownLeftovers> {
    let executors_stopped = stop_listed();
    if executors_stopped != 0 {
        debug::line(format_args!(
            "shutdown: {executors_stopped} executor(s) were neither shut down nor dropped (leaked with mem::forget, or still alive): stopped"
        ));
    }
    let ThreadsAtShutdown { orphaned, running } = wait_for_threads(passive, timeout);
    run_deferred_all(passive);
    let mut timers = 0;
    for _ in 0..TIMER_ROUNDS {
        timers += timer::cancel_all();
        flush_queued_dpcs(passive);
        if timer::armed() == 0 {
            break;
        }
    }
    let left = ShutdownLeftovers {
        timers,
        executors_stopped,
        orphaned_threads: orphaned,
        running_threads: running,
        timers_still_set: timer::armed(),
    };
    if left.timers_still_set != 0 {
        debug::line(format_args!(
            "shutdown: timers are still being set; the driver still runs code that sets them"
        ));
    }
    if left.is_empty() {
        Ok(())
    } else {
        debug::line(format_args!("{left}"));
        Err(left)
    }
}
