//! Semaphores, timers and DPCs — and the verifier rules they check.
#![allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
#![allow(missing_docs, clippy::missing_safety_doc)]

use core::ptr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wsk_sim::{Irql, Sim};
use wsk_sys::*;

/// Relative due time of `ms` milliseconds.
fn relative_ms(ms: i64) -> LARGE_INTEGER {
    -ms * 10_000
}

#[test]
fn a_semaphore_counts_releases_and_waits() {
    let sim = Sim::start();
    unsafe {
        let mut s: KSEMAPHORE = core::mem::zeroed();
        KeInitializeSemaphore(&raw mut s, 0, 2);
        let mut zero: LARGE_INTEGER = 0;
        let poll = |s: *mut KSEMAPHORE, t: &mut LARGE_INTEGER| {
            KeWaitForSingleObject(s.cast(), Executive, KernelMode, FALSE, t)
        };
        assert_eq!(poll(&raw mut s, &mut zero), STATUS_TIMEOUT);
        // Released at DISPATCH_LEVEL, as a DPC or completion routine would.
        let previous = sim.at_irql(Irql::Dispatch, || {
            KeReleaseSemaphore(&raw mut s, 0, 2, FALSE)
        });
        assert_eq!(previous, 0);
        assert_eq!(poll(&raw mut s, &mut zero), STATUS_SUCCESS);
        assert_eq!(poll(&raw mut s, &mut zero), STATUS_SUCCESS);
        assert_eq!(poll(&raw mut s, &mut zero), STATUS_TIMEOUT);
        // A waiter on another thread is released.
        let addr = (&raw mut s) as usize;
        let waiter = std::thread::spawn(move || {
            KeWaitForSingleObject(
                (addr as *mut KSEMAPHORE).cast(),
                Executive,
                KernelMode,
                FALSE,
                ptr::null_mut(),
            )
        });
        std::thread::sleep(Duration::from_millis(5));
        KeReleaseSemaphore(&raw mut s, 0, 1, FALSE);
        assert_eq!(waiter.join().unwrap(), STATUS_SUCCESS);
    }
}

#[test]
#[should_panic(expected = "STATUS_SEMAPHORE_LIMIT_EXCEEDED")]
fn releasing_a_semaphore_past_its_limit_is_reported() {
    let _sim = Sim::start();
    unsafe {
        let mut s: KSEMAPHORE = core::mem::zeroed();
        KeInitializeSemaphore(&raw mut s, 1, 1);
        KeReleaseSemaphore(&raw mut s, 0, 1, FALSE);
    }
}

static FIRED: AtomicUsize = AtomicUsize::new(0);
static FIRED_AT_IRQL: AtomicU8 = AtomicU8::new(0xFF);

unsafe extern "system" fn count_dpc(_dpc: *mut KDPC, context: PVOID, a1: PVOID, a2: PVOID) {
    assert!(
        a1.is_null() && a2.is_null(),
        "a timer DPC gets no arguments"
    );
    FIRED_AT_IRQL.store(unsafe { KeGetCurrentIrql() }, Ordering::SeqCst);
    unsafe { &*context.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
    FIRED.fetch_add(1, Ordering::SeqCst);
}

/// Initialises `timer` and `dpc`, the DPC counting into `count`.
unsafe fn counting_timer(timer: *mut KTIMER, dpc: *mut KDPC, count: &AtomicUsize) {
    unsafe {
        KeInitializeTimer(timer);
        KeInitializeDpc(dpc, Some(count_dpc), ptr::from_ref(count).cast_mut().cast());
    }
}

#[test]
fn a_timer_expires_signals_and_runs_its_dpc_at_dispatch_level() {
    let _sim = Sim::start();
    unsafe {
        let count = AtomicUsize::new(0);
        let mut timer: KTIMER = core::mem::zeroed();
        let mut dpc: KDPC = core::mem::zeroed();
        counting_timer(&raw mut timer, &raw mut dpc, &count);
        assert_eq!(dpc.DeferredContext, (&raw const count).cast_mut().cast());
        let start = Instant::now();
        assert_eq!(
            KeSetTimer(&raw mut timer, relative_ms(20), &raw mut dpc),
            FALSE
        );
        // A wait on the timer object ends at expiry.
        let st = KeWaitForSingleObject(
            (&raw mut timer).cast(),
            Executive,
            KernelMode,
            FALSE,
            ptr::null_mut(),
        );
        assert_eq!(st, STATUS_SUCCESS);
        // Up to one clock tick early (Timer Accuracy).
        let tick = Duration::from_nanos(u64::from(KeQueryTimeIncrement()) * 100);
        assert!(start.elapsed() + tick >= Duration::from_millis(20));
        KeFlushQueuedDpcs();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_eq!(FIRED_AT_IRQL.load(Ordering::SeqCst), DISPATCH_LEVEL);
        // Expired: no longer in the timer queue.
        assert_eq!(KeCancelTimer(&raw mut timer), FALSE);
    }
}

#[test]
fn a_cancelled_timer_never_runs_its_dpc() {
    let _sim = Sim::start();
    unsafe {
        let count = AtomicUsize::new(0);
        let mut timer: KTIMER = core::mem::zeroed();
        let mut dpc: KDPC = core::mem::zeroed();
        counting_timer(&raw mut timer, &raw mut dpc, &count);
        // Far enough out that neither setting can expire before it is
        // cancelled, however slowly the test runs (Miri).
        KeSetTimer(&raw mut timer, relative_ms(10_000), &raw mut dpc);
        // Setting it again cancels the first setting.
        assert_eq!(
            KeSetTimer(&raw mut timer, relative_ms(10_000), &raw mut dpc),
            TRUE
        );
        assert_eq!(KeCancelTimer(&raw mut timer), TRUE);
        std::thread::sleep(Duration::from_millis(60));
        KeFlushQueuedDpcs();
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }
}

/// The end-of-test check first waits (up to 5 s) for timed work, so only a
/// timer set further out than that is still set when it looks.
#[test]
#[should_panic(expected = "still set")]
fn a_timer_left_set_is_reported_at_the_end() {
    /// Resident for the whole process, like a driver's global.
    struct StaticTimer(core::cell::UnsafeCell<core::mem::MaybeUninit<KTIMER>>);
    unsafe impl Sync for StaticTimer {}
    static TIMER: StaticTimer =
        StaticTimer(core::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()));
    let sim = Sim::start();
    unsafe {
        let timer = TIMER.0.get().cast::<KTIMER>();
        KeInitializeTimer(timer);
        KeSetTimer(timer, relative_ms(3_600_000), ptr::null_mut());
    }
    drop(sim);
}

#[test]
#[should_panic(expected = "not an initialised DPC")]
fn setting_a_timer_with_an_uninitialised_dpc_is_reported() {
    let _sim = Sim::start();
    unsafe {
        let mut timer: KTIMER = core::mem::zeroed();
        let mut dpc: KDPC = core::mem::zeroed();
        KeInitializeTimer(&raw mut timer);
        KeSetTimer(&raw mut timer, relative_ms(10), &raw mut dpc);
    }
}

#[test]
#[should_panic(expected = "still set")]
fn reinitialising_a_set_timer_is_reported() {
    let _sim = Sim::start();
    unsafe {
        let mut timer: KTIMER = core::mem::zeroed();
        KeInitializeTimer(&raw mut timer);
        KeSetTimer(&raw mut timer, relative_ms(3_600_000), ptr::null_mut());
        KeInitializeTimer(&raw mut timer);
    }
}
