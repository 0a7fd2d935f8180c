//! Closure-scoped spin locks, observed through the simulator's IRQL: nested
//! locks are released in the reverse order of acquisition (each release
//! restores the IRQL its own acquisition saved), and a panicking critical
//! section still releases its lock.

mod common;
use common::passive;

use std::panic::{AssertUnwindSafe, catch_unwind};

use wsk::irql::SpinLock;
use wsk_sim::Sim;
use wsk_sys as sys;

/// The calling thread's IRQL, as the simulator tracks it (the simulator's
/// own function, called directly: `wsk` itself never asks for the IRQL).
fn irql() -> sys::KIRQL {
    // SAFETY: the simulator's routine has no preconditions; it reads the
    // calling thread's simulated IRQL.
    unsafe { wsk_sim::KeGetCurrentIrql() }
}

#[test]
fn nested_locks_restore_the_irql_in_order() {
    let sim = Sim::start();
    let mut p = passive();
    let outer = SpinLock::new(1u32);
    let inner = SpinLock::new(2u32);
    assert_eq!(irql(), sys::PASSIVE_LEVEL);
    let seen = outer.with(&mut p, |a, dispatch| {
        assert_eq!(irql(), sys::DISPATCH_LEVEL);
        // Raising again from DISPATCH_LEVEL saves DISPATCH_LEVEL...
        let b = inner.with_at_most_dispatch(dispatch.at_most_dispatch(), |b, _| *b);
        // ...so releasing the inner lock leaves the outer one's IRQL alone.
        assert_eq!(irql(), sys::DISPATCH_LEVEL, "still under the outer lock");
        let c = inner.with_at_dispatch(dispatch, |b, _| *b + 1);
        assert_eq!(irql(), sys::DISPATCH_LEVEL);
        *a + b + c
    });
    assert_eq!(seen, 6);
    assert_eq!(irql(), sys::PASSIVE_LEVEL, "back at PASSIVE_LEVEL");
    assert!(sim.take_violations().is_empty());
    sim.finish();
}

#[test]
fn a_panicking_critical_section_releases_its_lock() {
    let sim = Sim::start();
    let mut p = passive();
    let lock = SpinLock::new(Vec::<u32>::new());
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        lock.with(&mut p, |list, _| {
            list.push(1);
            panic!("in the critical section");
        })
    }));
    assert!(unwound.is_err());
    assert_eq!(irql(), sys::PASSIVE_LEVEL, "the IRQL was restored");
    // Not deadlocked: the lock can be taken again, and the data is there.
    let mut p = passive();
    assert_eq!(lock.with(&mut p, |list, _| list.clone()), [1]);
    assert!(sim.take_violations().is_empty());
    sim.finish();
}
