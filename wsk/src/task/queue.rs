//! The run queues: an intrusive FIFO of ready items (task headers) that
//! threads take from, parking on a semaphore while it is empty.
//!
//! Pushing (a wake, at any IRQL ≤ `DISPATCH_LEVEL`) links the item under a
//! spin lock held for a few pointer updates and, if a thread is parked,
//! releases one unit of the semaphore after unlocking: no allocation, no
//! kernel call unless a thread must be woken. The count of parked threads is
//! kept under the same lock as the list, so a push never misses a thread
//! that is about to park, and a unit is released only for a thread that
//! parked (the semaphore's count never grows past the number of threads).

use core::ptr::NonNull;

use super::sys::{RawSpinLock, Semaphore};

/// An item that can sit in one [`RunQueue`] at a time.
///
/// # Safety
///
/// `next` returns a pointer to a link field inside `*item` that only the
/// queue the item is in reads or writes.
pub(super) unsafe trait Linked {
    /// The item's link field.
    fn next(item: NonNull<Self>) -> *mut Option<NonNull<Self>>;
}

/// The list and the parking state, under the queue's lock.
struct Fifo<T> {
    head: Option<NonNull<T>>,
    tail: Option<NonNull<T>>,
    /// Threads parked (or about to park) on the semaphore with no unit
    /// released for them yet.
    parked: u32,
    /// No more parking: threads drain the queue and leave.
    stopping: bool,
}

// SAFETY: the raw pointers are only dereferenced under the queue's lock, and
// the items are `Send` (task headers are shared with every thread).
unsafe impl<T> Send for Fifo<T> {}

/// A FIFO of items ready to run, with parking for the threads that run them.
pub(super) struct RunQueue<T: Linked> {
    fifo: RawSpinLock<Fifo<T>>,
    semaphore: Semaphore,
}

impl<T: Linked> RunQueue<T> {
    /// An empty queue; [`init`](Self::init) it at its final address.
    pub(super) const fn new() -> Self {
        Self {
            fifo: RawSpinLock::new(Fifo {
                head: None,
                tail: None,
                parked: 0,
                stopping: false,
            }),
            semaphore: Semaphore::uninit(),
        }
    }

    /// Initialises the semaphore.
    ///
    /// # Safety
    ///
    /// Called once at `PASSIVE_LEVEL`, at the queue's final address, before
    /// any other method.
    pub(super) unsafe fn init(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.semaphore.init() };
    }

    /// Appends `item` and wakes a parked thread if there is one.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    ///
    /// # Safety
    ///
    /// `item` is live and in no queue; the queue now owns one reference to
    /// it, which the thread that pops it takes over.
    pub(super) unsafe fn push(&self, item: NonNull<T>) {
        let wake = self.fifo.with(|fifo| {
            // SAFETY: the item is in no queue, so its link is ours to write.
            unsafe { *T::next(item) = None };
            match fifo.tail {
                // SAFETY: the tail is a live item of this queue, whose link
                // the queue owns (under the lock).
                Some(tail) => unsafe { *T::next(tail) = Some(item) },
                None => fifo.head = Some(item),
            }
            fifo.tail = Some(item);
            let wake = fifo.parked > 0;
            if wake {
                fifo.parked -= 1;
            }
            wake
        });
        if wake {
            // SAFETY: initialised (`init` runs before any push).
            unsafe { self.semaphore.release(1) };
        }
    }

    /// The next item, parking while the queue is empty; `None` once the
    /// queue is stopping and empty.
    ///
    /// # Safety
    ///
    /// The caller runs at `PASSIVE_LEVEL` and may wait.
    pub(super) unsafe fn pop(&self) -> Option<NonNull<T>> {
        loop {
            let next = self.fifo.with(|fifo| {
                if let Some(item) = fifo.head {
                    // SAFETY: a live item of this queue; its link is ours.
                    fifo.head = unsafe { *T::next(item) };
                    if fifo.head.is_none() {
                        fifo.tail = None;
                    }
                    return Some(Some(item));
                }
                if fifo.stopping {
                    return Some(None);
                }
                fifo.parked += 1;
                None
            });
            match next {
                Some(next) => return next,
                // SAFETY: initialised; PASSIVE_LEVEL (caller contract). A
                // push or `stop` releases a unit for this thread.
                None => unsafe { self.semaphore.wait() },
            }
        }
    }

    /// Makes [`pop`](Self::pop) return `None` once the queue is empty, and
    /// releases every parked thread.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    pub(super) fn stop(&self) {
        let parked = self.fifo.with(|fifo| {
            fifo.stopping = true;
            core::mem::take(&mut fifo.parked)
        });
        if parked > 0 {
            // SAFETY: initialised (`init` runs before the queue is shared).
            unsafe { self.semaphore.release(parked) };
        }
    }
}
