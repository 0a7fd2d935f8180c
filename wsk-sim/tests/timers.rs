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

/// What `inserted_dpc` saw: its arguments, IRQL and thread.
struct InsertedRun {
    runs: AtomicUsize,
    irql: AtomicU8,
    args: std::sync::Mutex<Vec<(usize, usize, std::thread::ThreadId)>>,
}

unsafe extern "system" fn inserted_dpc(_dpc: *mut KDPC, context: PVOID, a1: PVOID, a2: PVOID) {
    let seen = unsafe { &*context.cast::<InsertedRun>() };
    seen.irql
        .store(unsafe { KeGetCurrentIrql() }, Ordering::SeqCst);
    seen.args
        .lock()
        .unwrap()
        .push((a1 as usize, a2 as usize, std::thread::current().id()));
    seen.runs.fetch_add(1, Ordering::SeqCst);
}

/// `KeInsertQueueDpc` queues a DPC once (`FALSE` while it is queued), and
/// its routine runs later, never inside the call, on another thread at
/// `DISPATCH_LEVEL`, with the system arguments of the insert that queued
/// it; once it ran, the DPC can be queued again
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinsertqueuedpc>).
#[test]
fn an_inserted_dpc_runs_once_later_on_another_thread_at_dispatch_level() {
    let _sim = Sim::start();
    let seen = InsertedRun {
        runs: AtomicUsize::new(0),
        irql: AtomicU8::new(0xFF),
        args: std::sync::Mutex::new(Vec::new()),
    };
    unsafe {
        let mut dpc: KDPC = core::mem::zeroed();
        KeInitializeDpc(
            &raw mut dpc,
            Some(inserted_dpc),
            ptr::from_ref(&seen).cast_mut().cast(),
        );
        assert_eq!(KeInsertQueueDpc(&raw mut dpc, 1 as PVOID, 2 as PVOID), TRUE);
        let second = KeInsertQueueDpc(&raw mut dpc, 3 as PVOID, 4 as PVOID);
        KeFlushQueuedDpcs();
        let runs = seen.runs.load(Ordering::SeqCst);
        // The second insert found it queued (FALSE), unless the first run
        // had already started (then it was queued again: TRUE).
        assert_eq!(runs, if second == TRUE { 2 } else { 1 });
        assert_eq!(seen.irql.load(Ordering::SeqCst), DISPATCH_LEVEL);
        let args = seen.args.lock().unwrap().clone();
        assert_eq!((args[0].0, args[0].1), (1, 2));
        let me = std::thread::current().id();
        assert!(args.iter().all(|&(_, _, thread)| thread != me));
        // It ran: it may be queued again.
        assert_eq!(KeInsertQueueDpc(&raw mut dpc, 5 as PVOID, 6 as PVOID), TRUE);
        KeFlushQueuedDpcs();
        assert_eq!(seen.runs.load(Ordering::SeqCst), runs + 1);
    }
}
