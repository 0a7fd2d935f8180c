//! An executor's threads, and what [`wsk::shutdown`](crate::shutdown)
//! needs to know of them so that no thread runs the driver's code once
//! `DriverUnload` returns ("the *Unload* routine also must cause the
//! driver-created thread to be run so that the thread itself can call
//! `PsTerminateSystemThread` before the driver is unloaded",
//! [Releasing Driver-Allocated Resources](https://learn.microsoft.com/windows-hardware/drivers/kernel/releasing-driver-allocated-resources)).
//!
//! Each executor's threads live in a [`ThreadSet`] of their own (so that
//! none of this allocates), listed in [`LISTED`] from the end of `build`
//! until the executor's shutdown or drop, and then, if threads may still
//! run, pushed onto [`ORPHANS`]. `wsk::shutdown` stops every executor still
//! listed — leaked with `mem::forget`, or alive — ([`stop_listed`]) and
//! waits for every orphan ([`wait_for_threads`]); [`RUNNING`] counts the
//! threads of every executor.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicPtr, AtomicUsize};
use core::time::Duration;

use super::raw::Shared;
use super::sys::{Deadline, RawSpinLock, SystemThread};
use crate::Result;
use crate::error::Error;
use crate::irql::Passive;

/// An executor's threads, in an allocation of their own, listed in
/// [`LISTED`] while the executor runs, so that `wsk::shutdown` can stop an
/// executor nobody shuts down (leaked with `mem::forget`, or still alive)
/// and an executor dropped without shutdown (or whose shutdown gave up)
/// can hand its threads to [`ORPHANS`], both without allocating.
pub(super) struct ThreadSet {
    /// The next set in [`ORPHANS`].
    next: *mut ThreadSet,
    /// The newer neighbour in [`LISTED`] (under its lock).
    listed_prev: *mut ThreadSet,
    /// The older neighbour in [`LISTED`] (under its lock).
    listed_next: *mut ThreadSet,
    /// The executor's shared state, for `wsk::shutdown` to close and stop.
    shared: Arc<Shared>,
    /// Worker threads, then blocking threads.
    threads: Vec<SystemThread>,
}

// SAFETY: the links are only used by whoever owns the set (`orphan`,
// `wait_for_threads`) or under `LISTED`'s lock; the thread objects are
// usable from any thread; `Shared` is `Send + Sync`.
unsafe impl Send for ThreadSet {}
// SAFETY: `&ThreadSet` gives access to nothing that is not `Sync`.
unsafe impl Sync for ThreadSet {}

impl ThreadSet {
    /// An empty set for the threads of the executor of `shared`, with room
    /// for `count` threads; `None` if memory runs out.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    pub(super) fn with_capacity(shared: Arc<Shared>, count: usize) -> Option<Box<Self>> {
        let mut set = Box::new(Self {
            next: ptr::null_mut(),
            listed_prev: ptr::null_mut(),
            listed_next: ptr::null_mut(),
            shared,
            threads: Vec::new(),
        });
        set.threads.try_reserve_exact(count).ok()?;
        Some(set)
    }

    /// Adds a thread; no allocation within the capacity.
    pub(super) fn push(&mut self, thread: SystemThread) {
        self.threads.push(thread);
    }
}

/// The registry of listed executors: the thread set of every executor
/// built and neither shut down nor dropped — alive, or leaked with
/// `mem::forget` — which `wsk::shutdown` stops ([`stop_listed`]).
///
/// A set linked here belongs to the registry: whoever unlinks it under the
/// lock owns it. The executor unlinks its own in `shutdown` and `Drop`
/// ([`ListedSet::take_back`]) unless `wsk::shutdown` took it first, which it
/// learns from [`Shared::taken_at_teardown`], set under the same lock (the
/// set itself may be freed by then). So exactly one side takes the threads.
///
/// # Invariants
///
/// `head` starts (and `tail` ends) a doubly-linked list of `len` live
/// sets, newest first, through `listed_prev` / `listed_next`; a linked
/// set's `shared.taken_at_teardown` is `false`.
struct Listed {
    head: *mut ThreadSet,
    tail: *mut ThreadSet,
    len: usize,
}

// SAFETY: the sets it links are touched only under the lock, from any
// thread (`ThreadSet` is `Send`).
unsafe impl Send for Listed {}

static LISTED: RawSpinLock<Listed> = RawSpinLock::new(Listed {
    head: ptr::null_mut(),
    tail: ptr::null_mut(),
    len: 0,
});

impl Listed {
    /// Links `set` first.
    ///
    /// # Safety
    ///
    /// `set` is live, leaked from its `Box` and in no list; the caller holds
    /// the lock (`&mut self`).
    unsafe fn link(&mut self, set: NonNull<ThreadSet>) {
        let set = set.as_ptr();
        // SAFETY: a live set nobody else reaches yet.
        let links = unsafe { &mut *set };
        links.listed_prev = ptr::null_mut();
        links.listed_next = self.head;
        if self.head.is_null() {
            self.tail = set;
        } else {
            // SAFETY: linked, hence live (invariants); under the lock.
            unsafe { (*self.head).listed_prev = set };
        }
        self.head = set;
        self.len += 1;
    }

    /// Unlinks `set`.
    ///
    /// # Safety
    ///
    /// `set` is linked in this list; the caller holds the lock.
    unsafe fn unlink(&mut self, set: NonNull<ThreadSet>) {
        let set = set.as_ptr();
        // SAFETY: linked, hence live (invariants); its links are ours under
        // the lock, and nothing else holds a reference to it.
        let links = unsafe { &*set };
        let (prev, next) = (links.listed_prev, links.listed_next);
        if prev.is_null() {
            self.head = next;
        } else {
            // SAFETY: a linked neighbour, live; under the lock.
            unsafe { (*prev).listed_next = next };
        }
        if next.is_null() {
            self.tail = prev;
        } else {
            // SAFETY: as above.
            unsafe { (*next).listed_prev = prev };
        }
        self.len -= 1;
    }

    /// Unlinks the oldest set and marks its executor's state taken: the
    /// caller owns the set from now on.
    fn take_oldest(&mut self) -> Option<Box<ThreadSet>> {
        let set = NonNull::new(self.tail)?;
        // SAFETY: the tail is linked; under the lock.
        unsafe { self.unlink(set) };
        // SAFETY: unlinked: the registry's ownership of the set, leaked from
        // a `Box` in `ListedSet::list`, passes to the caller. Its executor learns it
        // from the flag, under this lock, and no longer touches the set.
        let set = unsafe { Box::from_raw(set.as_ptr()) };
        set.shared.taken_at_teardown.store(true, Relaxed);
        Some(set)
    }
}

/// An executor's own [`ThreadSet`], linked in [`LISTED`]: the registry owns
/// it while it is linked.
pub(super) struct ListedSet(NonNull<ThreadSet>);

// SAFETY: the set is reached only under `LISTED`'s lock (`ThreadSet` is
// `Send + Sync`).
unsafe impl Send for ListedSet {}
// SAFETY: as above.
unsafe impl Sync for ListedSet {}

impl ListedSet {
    /// Lists `set` (whose threads all run) for `wsk::shutdown`.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    pub(super) fn list(set: Box<ThreadSet>) -> Self {
        let set = NonNull::from(Box::leak(set));
        // SAFETY: a live set, just leaked, in no list; under the lock.
        LISTED.with(|listed| unsafe { listed.link(set) });
        Self(set)
    }

    /// Takes the set back out of [`LISTED`]; `None` if `wsk::shutdown`
    /// took it first. `shared` is the executor's (the set's).
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    pub(super) fn take_back(self, shared: &Shared) -> Option<Box<ThreadSet>> {
        let Self(set) = self;
        LISTED.with(|listed| {
            if shared.taken_at_teardown.load(Relaxed) {
                return None;
            }
            // SAFETY: not taken, so still linked (invariants), and we hold
            // the lock.
            unsafe { listed.unlink(set) };
            // SAFETY: unlinked: the registry's ownership of the set, leaked
            // from a `Box` in `list`, comes back.
            Some(unsafe { Box::from_raw(set.as_ptr()) })
        })
    }

    /// The number of threads in the set; 0 if `wsk::shutdown` took it.
    /// `shared` is the executor's (the set's).
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    pub(super) fn thread_count(&self, shared: &Shared) -> usize {
        LISTED.with(|_| {
            if shared.taken_at_teardown.load(Relaxed) {
                0
            } else {
                // SAFETY: not taken, so still linked and live (invariants);
                // under the lock, which `wsk::shutdown` takes to take it.
                unsafe { (*self.0.as_ptr()).threads.len() }
            }
        })
    }
}

/// For [`wsk::shutdown`](crate::shutdown): closes and stops every executor
/// still listed — neither shut down nor dropped: leaked with `mem::forget`
/// or still alive — as dropping it would (new spawns are refused, the
/// threads drop the remaining tasks at `PASSIVE_LEVEL` and exit), and
/// hands its threads to [`ORPHANS`], for [`wait_for_threads`]. Returns how
/// many executors it stopped.
///
/// The walk takes at most as many as were listed when it started, oldest
/// first, so it ends, and an executor built meanwhile does not keep an
/// older one from being stopped (one built meanwhile is left to the
/// count of running threads, and to the next call).
///
/// IRQL: ≤ `DISPATCH_LEVEL`.
pub(crate) fn stop_listed() -> usize {
    let mut stopped = 0;
    let mut left = LISTED.with(|listed| listed.len);
    while left > 0 {
        left -= 1;
        let Some(set) = LISTED.with(Listed::take_oldest) else {
            break;
        };
        set.shared.close();
        stop_threads(&set.shared);
        orphan(set);
        stopped += 1;
    }
    stopped
}

/// Tells every thread of the executor to exit once its queue is empty.
///
/// IRQL: ≤ `DISPATCH_LEVEL`.
pub(super) fn stop_threads(shared: &Shared) {
    shared.tasks.stop();
    shared.blocking.stop();
}

/// What [`Executor::shutdown`](super::Executor::shutdown) does (and
/// `build` when a thread could not be started): refuses new spawns,
/// cancels every task, waits for the tasks, stops the threads and waits for
/// those of `set`, all within `timeout`. Threads still running at the bound
/// go to [`ORPHANS`].
pub(super) fn stop_and_wait(
    shared: &Shared,
    set: Option<Box<ThreadSet>>,
    timeout: Duration,
    passive: &Passive<'_>,
) -> Result<()> {
    let deadline = core::pin::pin!(Deadline::new());
    deadline.as_ref().arm(timeout);
    shared.close();
    shared.cancel_all(passive);
    // SAFETY: armed; the event lives in `shared`; PASSIVE_LEVEL (token).
    let mut finished = unsafe { deadline.as_ref().wait_for(shared.all_done()) };
    stop_threads(shared);
    for thread in set.iter().flat_map(|set| &set.threads) {
        // SAFETY: armed; a referenced thread object; PASSIVE_LEVEL (token).
        finished &= unsafe { deadline.as_ref().wait_for(thread.object()) };
    }
    super::sys::flush_queued_dpcs(passive);
    if finished {
        Ok(())
    } else {
        // Still running the driver's code: `wsk::shutdown` waits again.
        if let Some(set) = set {
            orphan(set);
        }
        Err(Error::IO_TIMEOUT)
    }
}

/// Thread sets of executors whose threads may still run the driver's code
/// and that nobody waits for any more, pushed by [`orphan`], taken whole by
/// [`wait_for_threads`] (`wsk::shutdown`): a push-only stack emptied with a
/// swap, so no ABA.
static ORPHANS: AtomicPtr<ThreadSet> = AtomicPtr::new(ptr::null_mut());

/// Executor threads started and not yet at the end of their start routine,
/// of every executor (live ones too).
pub(super) static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Hands `set` to [`ORPHANS`].
///
/// IRQL: ≤ `DISPATCH_LEVEL`.
pub(super) fn orphan(set: Box<ThreadSet>) {
    let set = Box::into_raw(set);
    let mut head = ORPHANS.load(Relaxed);
    loop {
        // SAFETY: `set` is ours until the exchange publishes it.
        unsafe { (*set).next = head };
        match ORPHANS.compare_exchange_weak(head, set, Release, Relaxed) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// What [`wait_for_threads`] found.
pub(crate) struct ThreadsAtShutdown {
    /// Threads of dropped executors (or of a shutdown that gave up, or of
    /// executors [`stop_listed`] stopped) that were still referenced:
    /// waited for.
    pub(crate) orphaned: usize,
    /// Executor threads still running at the bound (orphans that did not
    /// exit in time, threads that could not be referenced, threads of an
    /// executor built while `wsk::shutdown` ran).
    pub(crate) running: usize,
}

/// Waits, within `timeout`, for the threads of every executor dropped
/// without shutdown (or whose shutdown gave up, or that [`stop_listed`]
/// stopped) to end — each thread
/// object is signalled once the thread has terminated
/// (`PsTerminateSystemThread` "satisfies as many waits as possible for the
/// current thread object", [kernel routines index](https://learn.microsoft.com/windows-hardware/drivers/ddi/_kernel/)),
/// so none of them runs the driver's code any more — and then for every
/// executor thread to be past its last access to driver data.
///
/// A thread driver code created must have terminated before the driver
/// unloads ([Releasing Driver-Allocated Resources](https://learn.microsoft.com/windows-hardware/drivers/kernel/releasing-driver-allocated-resources)).
pub(crate) fn wait_for_threads(passive: &Passive<'_>, timeout: Duration) -> ThreadsAtShutdown {
    let deadline = core::pin::pin!(Deadline::new());
    deadline.as_ref().arm(timeout);
    let mut orphaned = 0;
    let mut in_time = true;
    let mut next = ORPHANS.swap(ptr::null_mut(), Acquire);
    while !next.is_null() {
        // SAFETY: pushed by `orphan` from a `Box`; the swap made it ours.
        let set = unsafe { Box::from_raw(next) };
        next = set.next;
        let mut done = true;
        for thread in &set.threads {
            orphaned += 1;
            // SAFETY: armed; a referenced thread object; PASSIVE_LEVEL (token).
            done &= unsafe { deadline.as_ref().wait_for(thread.object()) };
        }
        if !done {
            // Kept for the next call; dropped (dereferenced) otherwise.
            in_time = false;
            orphan(set);
        }
    }
    // Threads that could not be referenced, or of an executor built (and
    // listed) after `stop_listed` walked: counted only. Poll in steps of at least 10 ms, about `timeout` in all, unless
    // the bound has passed already.
    let steps = if in_time { timeout.as_millis() / 10 } else { 0 };
    for _ in 0..steps {
        if RUNNING.load(Acquire) == 0 {
            break;
        }
        passive.sleep(Duration::from_millis(10));
    }
    ThreadsAtShutdown {
        orphaned,
        running: RUNNING.load(Acquire),
    }
}
