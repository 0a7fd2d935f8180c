//! Kernel core: simulated IRQL, dispatcher objects (events, threads) and
//! waits, spin locks, time, `DbgPrint`, `KeBugCheckEx`.
//!
//! Dispatcher objects live in the caller's memory and keep their state in
//! the `DISPATCHER_HEADER` as Windows does (`Type` at +0, `Size` at +2,
//! `SignalState` at +4); sleepers use the world's condition variable.

use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use wsk_sys::{
    BOOLEAN, KIRQL, KPROCESSOR_MODE, LONG, NTSTATUS, PCSTR, PKSPIN_LOCK, PLARGE_INTEGER, PVOID,
    STATUS_SUCCESS, STATUS_TIMEOUT, ULONG, ULONG_PTR,
};

use crate::verifier::{self, CallbackKind, DISPATCH_LEVEL, NoUnwind, Rule, violation};
use crate::world;

/// `DISPATCHER_HEADER.Type` values used here (`KOBJECTS`).
pub(crate) const EVENT_NOTIFICATION_OBJECT: u8 = 0;
pub(crate) const EVENT_SYNCHRONIZATION_OBJECT: u8 = 1;
pub(crate) const SEMAPHORE_OBJECT: u8 = crate::semaphore::SEMAPHORE_OBJECT;
pub(crate) const THREAD_OBJECT: u8 = 6;
pub(crate) const TIMER_NOTIFICATION_OBJECT: u8 = crate::timer::TIMER_NOTIFICATION_OBJECT;

/// `sizeof(KEVENT) / sizeof(LONG)`.
const KEVENT_SIZE_IN_LONGS: u8 = 6;

/// Process-wide boot instant: interrupt time never goes backwards.
static BOOT: LazyLock<Instant> = LazyLock::new(Instant::now);

/// 2024-01-01T00:00:00Z in 100 ns units since 1601-01-01: the simulated
/// system time at boot (fixed, so tests are deterministic).
const SYSTEM_TIME_AT_BOOT: i64 = 133_485_408_000_000_000;

/// 100 ns units since boot.
pub(crate) fn interrupt_time() -> u64 {
    u64::try_from(BOOT.elapsed().as_nanos() / 100).unwrap_or(u64::MAX)
}

/// Simulated system time, 100 ns units since 1601.
pub(crate) fn system_time() -> i64 {
    SYSTEM_TIME_AT_BOOT + i64::try_from(interrupt_time()).unwrap_or(i64::MAX)
}

/// Reads a `LARGE_INTEGER` timeout into a deadline: `None` waits forever.
///
/// # Safety
///
/// `timeout` is NULL or points to a readable `LARGE_INTEGER`.
pub(crate) unsafe fn deadline_from(timeout: PLARGE_INTEGER) -> Option<Instant> {
    if timeout.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a readable LARGE_INTEGER.
    let t: i64 = unsafe { timeout.cast::<i64>().read_unaligned() };
    let now = Instant::now();
    let hundred_ns = if t <= 0 {
        t.unsigned_abs()
    } else {
        u64::try_from(t - system_time()).unwrap_or(0)
    };
    Some(now + Duration::from_nanos(hundred_ns.saturating_mul(100)))
}

/// The timeout is zero (a poll), allowed at `DISPATCH_LEVEL`.
///
/// # Safety
///
/// As [`deadline_from`].
unsafe fn is_zero_timeout(timeout: PLARGE_INTEGER) -> bool {
    if timeout.is_null() {
        return false;
    }
    // SAFETY: the caller guarantees a readable LARGE_INTEGER.
    let t: i64 = unsafe { timeout.cast::<i64>().read_unaligned() };
    t == 0
}

#[allow(clippy::cast_ptr_alignment)] // DISPATCHER_HEADER is 8-aligned
pub(crate) fn signal_state<'a>(header: *mut u8) -> &'a AtomicI32 {
    let field = header.wrapping_add(4).cast::<i32>();
    // SAFETY: callers pass a live, aligned DISPATCHER_HEADER; SignalState
    // is the LONG at offset 4, accessed only atomically while it is in use
    // as a dispatcher object.
    unsafe { AtomicI32::from_ptr(field) }
}

pub(crate) fn header_type(header: *mut u8) -> u8 {
    // SAFETY: callers pass a live DISPATCHER_HEADER; Type is its first byte.
    unsafe { header.read_volatile() }
}

/// Whether the object is signalled; consumes the signal of a
/// synchronization event. Called with the world lock held.
fn try_acquire(header: *mut u8) -> bool {
    let st = signal_state(header);
    match header_type(header) {
        EVENT_SYNCHRONIZATION_OBJECT => st
            .compare_exchange(1, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok(),
        SEMAPHORE_OBJECT => st
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > 0).then_some(n - 1)
            })
            .is_ok(),
        _ => st.load(Ordering::Acquire) > 0,
    }
}

/// Initializes a dispatcher header in place.
pub(crate) fn init_header(header: *mut u8, ty: u8, size_longs: u8, state: i32) {
    // SAFETY: callers pass writable memory for a DISPATCHER_HEADER (24 bytes
    // on 64-bit); the fields are written with plain stores before the object
    // is shared, and WaitListHead is made an empty list pointing at itself.
    unsafe {
        header.write_bytes(0, 24);
    }
    // SAFETY: as above (Type at 0).
    unsafe { header.write(ty) };
    let size = header.wrapping_add(2);
    // SAFETY: as above (Size at 2).
    unsafe { size.write(size_longs) };
    signal_state(header).store(state, Ordering::Release);
    let list = header.wrapping_add(8);
    let (flink, blink) = (
        list.cast::<*mut u8>(),
        list.wrapping_add(8).cast::<*mut u8>(),
    );
    // SAFETY: WaitListHead is the LIST_ENTRY at offset 8 (Flink, Blink).
    unsafe { flink.write_unaligned(list) };
    // SAFETY: as above (Blink at offset 16).
    unsafe { blink.write_unaligned(list) };
}

/// Sets a dispatcher object's signal state, waking waiters; returns the
/// previous state.
pub(crate) fn signal(header: *mut u8, state: i32) -> i32 {
    let w = world::lock();
    let prev = signal_state(header).swap(state, Ordering::AcqRel);
    w.notify();
    prev
}

/// Waits on a dispatcher object until signalled or `deadline`.
pub(crate) fn wait_header(header: *mut u8, deadline: Option<Instant>) -> NTSTATUS {
    let mut w = world::lock();
    loop {
        if try_acquire(header) {
            return STATUS_SUCCESS;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return STATUS_TIMEOUT;
        }
        if !w.manual.is_empty() {
            // Manual completion mode: a blocked thread runs queued jobs, so
            // waiting for a completion never deadlocks.
            drop(w);
            world::run_manual_jobs();
            w = world::lock();
            continue;
        }
        let slice = Duration::from_millis(100);
        let d = deadline.map_or(slice, |d| (d - now).min(slice));
        w.wait(Some(d));
    }
}

/// Sleeps until `deadline`, running manual jobs meanwhile.
pub(crate) fn sleep_until(deadline: Instant) {
    let mut w = world::lock();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        if !w.manual.is_empty() {
            drop(w);
            world::run_manual_jobs();
            w = world::lock();
            continue;
        }
        w.wait(Some(deadline - now));
    }
}

fn check_wait(routine: &str, zero_timeout: bool) {
    if zero_timeout {
        verifier::check_irql_max(routine, DISPATCH_LEVEL);
        return;
    }
    let cur = verifier::irql();
    if cur >= DISPATCH_LEVEL {
        violation!(
            Rule::Irql,
            "{routine} with a non-zero timeout at {}",
            verifier::irql_name(cur)
        );
        return;
    }
    if matches!(
        verifier::current_callback(),
        Some(CallbackKind::Event(_) | CallbackKind::Completion)
    ) {
        verifier::check_not_in_callback(routine);
    }
}

// ---------------------------------------------------------------------------
// IRQL

/// `KeGetCurrentIrql`: the calling thread's simulated IRQL (`PASSIVE_LEVEL` by
/// default; `DISPATCH_LEVEL` while a spin lock is held or a callback is
/// delivered at `DISPATCH_LEVEL`).
///
/// # Safety
///
/// Always safe to call; `unsafe` only to match the import.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeGetCurrentIrql() -> KIRQL {
    verifier::irql()
}

// ---------------------------------------------------------------------------
// Events

/// `KeInitializeEvent`: initializes a notification (`Type` 0) or
/// synchronization (`Type` 1) event in the caller's memory.
///
/// # Safety
///
/// `Event` must point to writable memory for a `KEVENT`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInitializeEvent(
    Event: wsk_sys::PRKEVENT,
    Type: wsk_sys::EVENT_TYPE,
    State: BOOLEAN,
) {
    let _g = NoUnwind::enter();
    if Event.is_null() {
        violation!(Rule::Parameter, "KeInitializeEvent(NULL)");
        return;
    }
    #[allow(clippy::unnecessary_cast)]
    let ty = match Type as i32 {
        0 => EVENT_NOTIFICATION_OBJECT,
        1 => EVENT_SYNCHRONIZATION_OBJECT,
        other => {
            violation!(Rule::Parameter, "KeInitializeEvent with EVENT_TYPE {other}");
            return;
        }
    };
    init_header(
        Event.cast(),
        ty,
        KEVENT_SIZE_IN_LONGS,
        i32::from(State != 0),
    );
}

/// `KeSetEvent`: signals the event; returns its previous state.
///
/// # Safety
///
/// `Event` must be an initialized `KEVENT`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeSetEvent(
    Event: wsk_sys::PRKEVENT,
    Increment: wsk_sys::KPRIORITY,
    Wait: BOOLEAN,
) -> LONG {
    let _g = NoUnwind::enter();
    let _ = (Increment, Wait);
    verifier::check_irql_max("KeSetEvent", DISPATCH_LEVEL);
    signal(Event.cast(), 1)
}

/// `KeResetEvent`: clears the event; returns its previous state.
///
/// # Safety
///
/// `Event` must be an initialized `KEVENT`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeResetEvent(Event: wsk_sys::PRKEVENT) -> LONG {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeResetEvent", DISPATCH_LEVEL);
    signal_state(Event.cast()).swap(0, Ordering::AcqRel)
}

/// `KeClearEvent`: clears the event.
///
/// # Safety
///
/// `Event` must be an initialized `KEVENT`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeClearEvent(Event: wsk_sys::PRKEVENT) {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeClearEvent", DISPATCH_LEVEL);
    signal_state(Event.cast()).store(0, Ordering::Release);
}

/// `KeReadStateEvent`: the event's current state.
///
/// # Safety
///
/// `Event` must be an initialized `KEVENT`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeReadStateEvent(Event: wsk_sys::PRKEVENT) -> LONG {
    let _g = NoUnwind::enter();
    signal_state(Event.cast()).load(Ordering::Acquire)
}

/// `KeWaitForSingleObject`: waits for an event or a thread object.
///
/// `Timeout` NULL waits forever; negative is relative and positive absolute
/// (100 ns units); zero polls and is the only form allowed at
/// `DISPATCH_LEVEL`. Returns `STATUS_SUCCESS` or `STATUS_TIMEOUT`.
///
/// # Safety
///
/// `Object` must be an initialized dispatcher object; `Timeout` NULL or
/// readable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeWaitForSingleObject(
    Object: PVOID,
    WaitReason: wsk_sys::KWAIT_REASON,
    WaitMode: KPROCESSOR_MODE,
    Alertable: BOOLEAN,
    Timeout: PLARGE_INTEGER,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (WaitReason, WaitMode, Alertable);
    if Object.is_null() {
        violation!(Rule::Parameter, "KeWaitForSingleObject(NULL)");
        return STATUS_SUCCESS;
    }
    // SAFETY: the caller passes NULL or a readable LARGE_INTEGER.
    let zero = unsafe { is_zero_timeout(Timeout) };
    check_wait("KeWaitForSingleObject", zero);
    let ty = header_type(Object.cast());
    if !matches!(
        ty,
        EVENT_NOTIFICATION_OBJECT
            | EVENT_SYNCHRONIZATION_OBJECT
            | SEMAPHORE_OBJECT
            | THREAD_OBJECT
            | TIMER_NOTIFICATION_OBJECT
    ) {
        violation!(
            Rule::Parameter,
            "KeWaitForSingleObject on an object of type {ty}, not an event, semaphore, thread or timer"
        );
        return STATUS_SUCCESS;
    }
    // SAFETY: as above.
    let deadline = unsafe { deadline_from(Timeout) };
    wait_header(Object.cast(), deadline)
}

/// `KeWaitForMultipleObjects`: waits for any (`WaitAny`, returns
/// `STATUS_WAIT_0 + index`) or all (`WaitAll`) of `Count` events or thread
/// objects.
///
/// # Safety
///
/// `Object` must hold `Count` initialized dispatcher objects; `Timeout` NULL
/// or readable; `WaitBlockArray` non-NULL when `Count > THREAD_WAIT_OBJECTS`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeWaitForMultipleObjects(
    Count: ULONG,
    Object: *mut PVOID,
    WaitType: wsk_sys::WAIT_TYPE,
    WaitReason: wsk_sys::KWAIT_REASON,
    WaitMode: KPROCESSOR_MODE,
    Alertable: BOOLEAN,
    Timeout: PLARGE_INTEGER,
    WaitBlockArray: wsk_sys::PKWAIT_BLOCK,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (WaitReason, WaitMode, Alertable);
    if Count == 0 || Count > wsk_sys::MAXIMUM_WAIT_OBJECTS || Object.is_null() {
        violation!(
            Rule::Parameter,
            "KeWaitForMultipleObjects with Count {Count}"
        );
        return STATUS_SUCCESS;
    }
    if Count > wsk_sys::THREAD_WAIT_OBJECTS && WaitBlockArray.is_null() {
        violation!(
            Rule::Parameter,
            "KeWaitForMultipleObjects on {Count} objects without a WaitBlockArray"
        );
        return STATUS_SUCCESS;
    }
    // SAFETY: the caller passes NULL or a readable LARGE_INTEGER.
    let zero = unsafe { is_zero_timeout(Timeout) };
    check_wait("KeWaitForMultipleObjects", zero);
    // SAFETY: the caller passes `Count` object pointers.
    let objs: Vec<*mut u8> = unsafe { core::slice::from_raw_parts(Object, Count as usize) }
        .iter()
        .map(|p| p.cast::<u8>())
        .collect();
    // SAFETY: as above.
    let deadline = unsafe { deadline_from(Timeout) };
    let wait_all = WaitType == wsk_sys::WaitAll;
    let mut w = world::lock();
    loop {
        if wait_all {
            let all = objs
                .iter()
                .all(|&o| signal_state(o).load(Ordering::Acquire) > 0);
            if all {
                for &o in &objs {
                    try_acquire(o);
                }
                return STATUS_SUCCESS;
            }
        } else if let Some(i) = objs.iter().position(|&o| try_acquire(o)) {
            return STATUS_SUCCESS + i32::try_from(i).unwrap_or(0);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return STATUS_TIMEOUT;
        }
        if !w.manual.is_empty() {
            drop(w);
            world::run_manual_jobs();
            w = world::lock();
            continue;
        }
        let slice = Duration::from_millis(100);
        let d = deadline.map_or(slice, |d| (d - now).min(slice));
        w.wait(Some(d));
    }
}

/// `KeDelayExecutionThread`: sleeps for `Interval` (negative: relative,
/// 100 ns units).
///
/// # Safety
///
/// `Interval` must be readable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeDelayExecutionThread(
    WaitMode: KPROCESSOR_MODE,
    Alertable: BOOLEAN,
    Interval: PLARGE_INTEGER,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (WaitMode, Alertable);
    verifier::check_irql_max("KeDelayExecutionThread", verifier::APC_LEVEL);
    verifier::check_not_in_callback("KeDelayExecutionThread");
    if Interval.is_null() {
        violation!(Rule::Parameter, "KeDelayExecutionThread(Interval = NULL)");
        return STATUS_SUCCESS;
    }
    // SAFETY: the caller passes a readable LARGE_INTEGER.
    let deadline = unsafe { deadline_from(Interval) }.unwrap_or_else(Instant::now);
    sleep_until(deadline);
    STATUS_SUCCESS
}

// ---------------------------------------------------------------------------
// Time

/// `KeQueryInterruptTimePrecise`: 100 ns units since boot.
///
/// # Safety
///
/// `QpcTimeStamp` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeQueryInterruptTimePrecise(
    QpcTimeStamp: *mut wsk_sys::ULONG64,
) -> wsk_sys::ULONG64 {
    let t = interrupt_time();
    if !QpcTimeStamp.is_null() {
        // SAFETY: the caller passes a writable ULONG64.
        unsafe { QpcTimeStamp.write_unaligned(t) };
    }
    t
}

/// `KeQueryUnbiasedInterruptTime`: 100 ns units since boot.
///
/// # Safety
///
/// Always safe; `unsafe` to match the import.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeQueryUnbiasedInterruptTime() -> wsk_sys::ULONGLONG {
    interrupt_time()
}

/// `KeQueryTimeIncrement`: 100 ns units per clock tick (156 250, 15.625 ms).
///
/// # Safety
///
/// Always safe; `unsafe` to match the import.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeQueryTimeIncrement() -> ULONG {
    156_250
}

// ---------------------------------------------------------------------------
// Spin locks

static NEXT_THREAD_TAG: AtomicUsize = AtomicUsize::new(1);
thread_local! {
    static THREAD_TAG: usize = NEXT_THREAD_TAG.fetch_add(1, Ordering::Relaxed) << 1;
}

fn thread_tag() -> usize {
    THREAD_TAG.with(|t| *t)
}

fn lock_word<'a>(lock: PKSPIN_LOCK) -> &'a AtomicUsize {
    // SAFETY: callers pass a live, aligned KSPIN_LOCK (ULONG_PTR) that is
    // only accessed atomically while in use as a lock.
    unsafe { AtomicUsize::from_ptr(lock.cast::<usize>()) }
}

fn acquire(lock: PKSPIN_LOCK, routine: &str) {
    if lock.is_null() {
        violation!(Rule::Parameter, "{routine}(NULL)");
        return;
    }
    let word = lock_word(lock);
    let me = thread_tag();
    let mut spins = 0u32;
    loop {
        match word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return,
            Err(cur) if cur == me => {
                violation!(
                    Rule::SpinLock,
                    "{routine}: spin lock {lock:p} is already held by this thread (deadlock)"
                );
                return;
            }
            Err(_) => {
                spins += 1;
                if spins % 64 == 0 {
                    std::thread::yield_now();
                } else {
                    core::hint::spin_loop();
                }
            }
        }
    }
}

fn release(lock: PKSPIN_LOCK, routine: &str) {
    if lock.is_null() {
        violation!(Rule::Parameter, "{routine}(NULL)");
        return;
    }
    let me = thread_tag();
    if let Err(cur) = lock_word(lock).compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
    {
        let who = if cur == 0 {
            "not held"
        } else {
            "held by another thread"
        };
        violation!(Rule::SpinLock, "{routine}: spin lock {lock:p} is {who}");
    }
}

/// `KeAcquireSpinLockRaiseToDpc` (`KeAcquireSpinLock`): raises to
/// `DISPATCH_LEVEL` and spins until the lock is free; returns the old IRQL.
///
/// # Safety
///
/// `SpinLock` must be an initialized (zeroed) `KSPIN_LOCK`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeAcquireSpinLockRaiseToDpc(SpinLock: PKSPIN_LOCK) -> KIRQL {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeAcquireSpinLock", DISPATCH_LEVEL);
    let old = verifier::set_irql(DISPATCH_LEVEL.max(verifier::irql()));
    acquire(SpinLock, "KeAcquireSpinLock");
    old
}

/// `KeReleaseSpinLock`: releases the lock and returns to `NewIrql`.
///
/// # Safety
///
/// The calling thread must hold `SpinLock`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeReleaseSpinLock(SpinLock: PKSPIN_LOCK, NewIrql: KIRQL) {
    let _g = NoUnwind::enter();
    release(SpinLock, "KeReleaseSpinLock");
    verifier::set_irql(NewIrql);
}

/// `KeAcquireSpinLockAtDpcLevel`: spins for the lock; the caller must
/// already run at `DISPATCH_LEVEL`.
///
/// # Safety
///
/// As [`KeAcquireSpinLockRaiseToDpc`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK) {
    let _g = NoUnwind::enter();
    let cur = verifier::irql();
    if cur < DISPATCH_LEVEL {
        violation!(
            Rule::SpinLock,
            "KeAcquireSpinLockAtDpcLevel at {} (requires DISPATCH_LEVEL)",
            verifier::irql_name(cur)
        );
    }
    acquire(SpinLock, "KeAcquireSpinLockAtDpcLevel");
}

/// `KeReleaseSpinLockFromDpcLevel`: releases the lock, staying at
/// `DISPATCH_LEVEL`.
///
/// # Safety
///
/// The calling thread must hold `SpinLock`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeReleaseSpinLockFromDpcLevel(SpinLock: PKSPIN_LOCK) {
    let _g = NoUnwind::enter();
    release(SpinLock, "KeReleaseSpinLockFromDpcLevel");
}

/// `KeAcquireInStackQueuedSpinLock`: raises to `DISPATCH_LEVEL` and
/// acquires the lock, recording the old IRQL in `LockHandle`.
///
/// # Safety
///
/// `SpinLock` must be an initialized lock and `LockHandle` writable until the
/// matching release.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeAcquireInStackQueuedSpinLock(
    SpinLock: PKSPIN_LOCK,
    LockHandle: wsk_sys::PKLOCK_QUEUE_HANDLE,
) {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeAcquireInStackQueuedSpinLock", DISPATCH_LEVEL);
    let old = verifier::set_irql(DISPATCH_LEVEL.max(verifier::irql()));
    acquire(SpinLock, "KeAcquireInStackQueuedSpinLock");
    let handle = wsk_sys::KLOCK_QUEUE_HANDLE {
        LockQueue: wsk_sys::KSPIN_LOCK_QUEUE {
            Next: core::ptr::null_mut(),
            Lock: SpinLock,
        },
        OldIrql: old,
    };
    // SAFETY: the caller passes a writable KLOCK_QUEUE_HANDLE.
    unsafe { LockHandle.write(handle) };
}

/// `KeReleaseInStackQueuedSpinLock`: releases the lock and restores the IRQL
/// recorded in `LockHandle`.
///
/// # Safety
///
/// `LockHandle` must come from [`KeAcquireInStackQueuedSpinLock`] on this
/// thread.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeReleaseInStackQueuedSpinLock(
    LockHandle: wsk_sys::PKLOCK_QUEUE_HANDLE,
) {
    let _g = NoUnwind::enter();
    // SAFETY: the caller passes the handle of an acquisition.
    let handle = unsafe { LockHandle.read() };
    release(handle.LockQueue.Lock, "KeReleaseInStackQueuedSpinLock");
    verifier::set_irql(handle.OldIrql);
}

// ---------------------------------------------------------------------------
// Debug output and bug checks

/// Formats the `DbgPrint("%s", Arg)` subset: `%s` takes `Arg`, `%%` is `%`.
fn format_dbg(fmt: &[u8], arg: Option<&[u8]>) -> String {
    let mut out = Vec::with_capacity(fmt.len());
    let mut i = 0;
    let mut arg = arg;
    while i < fmt.len() {
        if fmt[i] == b'%' && i + 1 < fmt.len() {
            match fmt[i + 1] {
                b's' => {
                    out.extend_from_slice(arg.take().unwrap_or(b"(null)"));
                    i += 2;
                    continue;
                }
                b'%' => {
                    out.push(b'%');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(fmt[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `DbgPrint` in its `"%s"` form (the host declaration is non-variadic):
/// prints to standard error and records the line in
/// [`Stats::debug_output`](crate::Stats::debug_output).
///
/// # Safety
///
/// `Format` must be a NUL-terminated string; `Arg` NULL or one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DbgPrint(Format: PCSTR, Arg: PCSTR) -> ULONG {
    let _g = NoUnwind::enter();
    if Format.is_null() {
        return 0;
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let fmt = unsafe { core::ffi::CStr::from_ptr(Format.cast()) }.to_bytes();
    let arg = if Arg.is_null() {
        None
    } else {
        // SAFETY: as above.
        Some(unsafe { core::ffi::CStr::from_ptr(Arg.cast()) }.to_bytes())
    };
    let line = format_dbg(fmt, arg);
    eprint!("[DbgPrint] {line}");
    if !line.ends_with('\n') {
        eprintln!();
    }
    world::lock().stats.debug_output.push(line);
    0
}

/// `KeBugCheckEx`: reports the bug check and panics with its code.
///
/// A panic cannot unwind out of an `extern "system"` routine, so the test
/// process aborts after printing the message.
///
/// # Safety
///
/// Always safe to call; it does not return.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeBugCheckEx(
    BugCheckCode: ULONG,
    BugCheckParameter1: ULONG_PTR,
    BugCheckParameter2: ULONG_PTR,
    BugCheckParameter3: ULONG_PTR,
    BugCheckParameter4: ULONG_PTR,
) -> ! {
    let msg = crate::verifier::message(
        Rule::BugCheck,
        format_args!(
            "KeBugCheckEx({BugCheckCode:#x}, {BugCheckParameter1:#x}, {BugCheckParameter2:#x}, \
             {BugCheckParameter3:#x}, {BugCheckParameter4:#x})"
        ),
    );
    world::note_violation(&msg, true);
    panic!("{msg}");
}
