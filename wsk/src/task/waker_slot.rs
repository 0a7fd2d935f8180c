//! A waker slot handed between an owner (who registers wakers) and a
//! completer (who sets a "done" bit once and wakes whoever is registered),
//! synchronised by two bits of an atomic state word instead of a lock.
//!
//! - `registered`: the slot holds the owner's waker. While it is set the
//!   owner does not touch the slot; while it is clear the completer does not.
//! - `done`: set once by the completer. From then on the owner never writes
//!   the slot, so the completer may take the waker out.
//!
//! `JoinHandle` uses it with the task state word, the timer futures with the
//! timer block's.

use core::cell::UnsafeCell;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::{AcqRel, Acquire};
use core::task::Waker;

/// Makes `waker` the one the completer wakes; returns whether `done` is set
/// (then nothing is registered and the owner should read the result).
///
/// Other bits of `state` may change concurrently (the task state word has
/// many writers): a failed compare-exchange is retried with the value it
/// read, and only a `done` bit seen set ends the registration early. `done`
/// is never cleared and `registered` is written by the owner alone, so a
/// load that shows either is up to date.
///
/// # Safety
///
/// Only the owner calls this, never concurrently with itself; `slot` is the
/// slot `registered` guards.
pub(crate) unsafe fn register(
    state: &AtomicUsize,
    slot: &UnsafeCell<Option<Waker>>,
    registered: usize,
    done: usize,
    waker: &Waker,
) -> bool {
    let mut current = state.load(Acquire);
    // Take the slot back (clear `registered`) unless it already holds an
    // equivalent waker.
    loop {
        if current & done != 0 {
            return true;
        }
        if current & registered == 0 {
            break;
        }
        // SAFETY: `registered` is set, so the completer has not taken the
        // waker and does not write the slot; the owner only reads it here.
        let same = unsafe { (*slot.get()).as_ref() }.is_some_and(|old| old.will_wake(waker));
        if same {
            return false;
        }
        match state.compare_exchange_weak(current, current & !registered, AcqRel, Acquire) {
            Ok(_) => break,
            Err(actual) => current = actual,
        }
    }
    // SAFETY: `registered` is clear, so the completer leaves the slot alone,
    // and the owner is its only other user.
    unsafe { *slot.get() = Some(waker.clone()) };
    // Publish it, unless `done` was set meanwhile (then the completer did not
    // look at the slot).
    current = state.load(Acquire);
    loop {
        if current & done != 0 {
            // Drop the waker here, in the owner's context, not with the
            // slot's memory, which the completer's side may free wherever it
            // lets go of its last reference (a task's, in a completion
            // routine).
            // SAFETY: `registered` is clear: the slot is still the owner's.
            drop(unsafe { (*slot.get()).take() });
            return true;
        }
        match state.compare_exchange_weak(current, current | registered, AcqRel, Acquire) {
            Ok(_) => return false,
            Err(actual) => current = actual,
        }
    }
}

/// The completer's side: after setting `done` with a read-modify-write that
/// returned `previous`, takes the registered waker, if any.
///
/// # Safety
///
/// Called once, by the completer, right after setting `done`; `slot` is the
/// slot `registered` guards and is still alive.
pub(crate) unsafe fn take(
    slot: &UnsafeCell<Option<Waker>>,
    previous: usize,
    registered: usize,
) -> Option<Waker> {
    if previous & registered == 0 {
        return None;
    }
    // SAFETY: `registered` was set when `done` was, so the owner no longer
    // writes the slot (module docs).
    unsafe { (*slot.get()).take() }
}
