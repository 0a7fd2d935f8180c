//! Registering a waker in state that a spin lock guards, for the event
//! queues ([`ReceiveQueue`](super::ReceiveQueue),
//! [`AcceptQueue`](super::AcceptQueue)), without running the waker's code
//! under the lock.
//!
//! A [`Waker`]'s `clone`, `wake` and `drop` are the driver's code (its
//! executor's, or a hand-written `RawWakerVTable`), which safe code may
//! make do anything at ≤ `DISPATCH_LEVEL`: take the same queue's lock again
//! (a spin lock is not recursive: the processor would spin forever), or
//! make a provider call during which an event callback of the same socket
//! runs on the same thread (no page rules that out; the simulator does it),
//! whose trampoline takes that lock. So the queues clone, wake and drop
//! wakers only after releasing their lock: [`poll_registered`] clones the
//! waker before it takes the lock a second time and drops the one it
//! replaced after, and the callbacks take the waker out under the lock and
//! wake it after.

use core::task::{Context, Poll, Waker};

/// The waker of one [`poll_registered`] call, for the closure that runs
/// under the lock.
pub(crate) struct Fresh<'a> {
    waker: &'a Waker,
    /// A clone of `waker`, made outside the lock, to store.
    clone: Option<Waker>,
    /// The waker the stored clone replaced, to drop outside the lock.
    replaced: Option<Waker>,
    /// `register` needed a clone it did not have.
    needs_clone: bool,
}

impl Fresh<'_> {
    /// Under the lock: makes `slot` hold the polling task's waker — unless
    /// it holds an equivalent one already (`Waker::will_wake`, which runs
    /// no code of the waker's) — with a clone made outside the lock, or
    /// records that one must be made first.
    pub(crate) fn register(&mut self, slot: &mut Option<Waker>) {
        if slot.as_ref().is_some_and(|w| w.will_wake(self.waker)) {
            return;
        }
        match self.clone.take() {
            Some(clone) => self.replaced = slot.replace(clone),
            None => self.needs_clone = true,
        }
    }
}

/// Polls state behind a spin lock: `locked` takes the lock, looks at the
/// state and either answers `Ready` or registers the waker with
/// [`Fresh::register`] and answers `Pending`. If the registration needs a
/// clone of the waker, it is made outside the lock and `locked` runs again
/// (the state may have changed meanwhile); a waker replaced, and a clone
/// not stored, are dropped outside the lock.
pub(crate) fn poll_registered<T>(
    cx: &Context<'_>,
    mut locked: impl FnMut(&mut Fresh<'_>) -> Poll<T>,
) -> Poll<T> {
    let mut fresh = Fresh {
        waker: cx.waker(),
        clone: None,
        replaced: None,
        needs_clone: false,
    };
    loop {
        fresh.needs_clone = false;
        let poll = locked(&mut fresh);
        // Outside the lock.
        drop(fresh.replaced.take());
        if poll.is_ready() || !fresh.needs_clone {
            // An unused clone is dropped here, outside the lock too.
            return poll;
        }
        fresh.clone = Some(cx.waker().clone());
    }
}

/// Wakes `waker`, if any (called after the lock is released).
pub(crate) fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}
