//! Kernel timers and DPCs: `KeInitializeTimer`, `KeSetTimer`,
//! `KeCancelTimer`, `KeInitializeDpc`, `KeInsertQueueDpc`,
//! `KeFlushQueuedDpcs`.
//!
//! A set timer is a job of the world's worker thread at its expiry instant.
//! When it expires, the timer leaves the timer queue (so `KeCancelTimer`
//! returns `FALSE` from then on), becomes signalled, and its DPC, if any, is
//! queued: another job that runs the DPC routine at `DISPATCH_LEVEL` a little
//! later. Within what Microsoft documents, the simulator is adversarial:
//!
//! - a relative expiry comes up to one clock tick ([`KeQueryTimeIncrement`](
//!   crate::ke::KeQueryTimeIncrement)) early and up to 2 ms late, an absolute
//!   one up to a tick late ([Timer Accuracy](
//!   https://learn.microsoft.com/windows-hardware/drivers/kernel/timer-accuracy));
//! - the DPC runs up to 3 ms after the expiry, so a `KeCancelTimer` that
//!   returns `FALSE` often finds the DPC still queued ([`KeCancelTimer`](
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kecanceltimer):
//!   "a DPC that is already running runs to completion", and the driver must
//!   not free what it uses before it has finished);
//! - a DPC queued with `KeInsertQueueDpc` never runs inside the call, even
//!   at `PASSIVE_LEVEL`: it runs up to 3 ms later on a thread of its own
//!   (another processor: the world's worker, which completes IRPs, may be
//!   busy, and a DPC routine that spins must not stop them), at
//!   `DISPATCH_LEVEL`, outside whatever callback queued it (an IRP
//!   completion routine included), so a driver cannot rely on it having
//!   run, or not, when the call returns. Inserting a DPC that is queued
//!   returns `FALSE` and changes nothing; one whose routine is running is no
//!   longer queued, so it is queued again and may run while the first run
//!   is still going ([`KeInsertQueueDpc`](
//!   https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinsertqueuedpc)).
//!
//! Verifier rules (`PARAMETER` unless said otherwise): a timer or DPC used
//! before initialisation, re-initialised while set or queued (a DPC whose
//! routine is running is no longer queued: the driver may reuse its memory
//! once the routine no longer needs it), or whose memory changed while the
//! kernel still owned it (freed or reused by the driver);
//! and, at the end of a test (`LEAK`), timers still set ("Drivers must cancel
//! any active timers in their Unload routines", [`KeSetTimer`](
//! https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer))
//! and DPCs still queued or running.

use core::mem::offset_of;
use core::sync::atomic::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use wsk_sys::{
    BOOLEAN, FALSE, KDPC, KTIMER, LARGE_INTEGER, PKDEFERRED_ROUTINE, PKDPC, PKTIMER, PRKDPC, PVOID,
    TRUE,
};

use crate::ke;
use crate::verifier::{
    self, CallbackKind, DISPATCH_LEVEL, InCallback, NoUnwind, PASSIVE_LEVEL, Rule, violation,
};
use crate::world::{self, World};

/// `DISPATCHER_HEADER.Type` of a notification timer: the kernel's private
/// `KOBJECTS` value `TimerNotificationObject`, as Wine's `ntoskrnl.exe` also
/// uses it (`TYPE_MANUAL_TIMER = 8` in `dlls/ntoskrnl.exe/sync.c`). Drivers
/// never read it.
pub(crate) const TIMER_NOTIFICATION_OBJECT: u8 = 8;

/// `sizeof(KTIMER) / sizeof(LONG)`.
const KTIMER_SIZE_IN_LONGS: u8 = 16;

/// How late a DPC may run after its timer expired.
const DPC_DELAY_MAX: Duration = Duration::from_millis(3);

/// How late a relative timer may expire.
const LATE_MAX: Duration = Duration::from_millis(2);

/// A timer the driver initialised.
#[derive(Debug, Default)]
struct TimerRec {
    /// Set: the arming's sequence number and its worker-job key.
    armed: Option<(u64, (Instant, u64))>,
    /// The DPC to queue on expiry.
    dpc: Option<usize>,
}

/// A `KDEFERRED_ROUTINE`.
type DeferredRoutine = unsafe extern "system" fn(*mut KDPC, PVOID, PVOID, PVOID);

/// A DPC the driver initialised.
#[derive(Debug)]
struct DpcRec {
    routine: DeferredRoutine,
    context: usize,
    /// The system arguments of the queued run (`KeInsertQueueDpc`'s; a
    /// timer's DPC gets none).
    args: (usize, usize),
    /// In the DPC queue: its flush sequence number. The kernel takes a DPC
    /// out of the queue before it calls the routine, so a running DPC is not
    /// queued: its memory may be reused as soon as the routine has signalled
    /// that it no longer needs it ([`KeCancelTimer`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kecanceltimer)).
    queued: Option<u64>,
}

/// Every timer and DPC of the current machine.
#[derive(Debug, Default)]
struct Timers {
    /// The world generation these records belong to.
    generation: u64,
    set: BTreeMap<usize, TimerRec>,
    dpcs: BTreeMap<usize, DpcRec>,
    /// Flush sequence numbers of DPCs queued or running
    /// ([`KeFlushQueuedDpcs`] waits for them).
    pending: BTreeSet<u64>,
    next_seq: u64,
    /// `KeInsertQueueDpc` is Wine's stub
    /// ([`Sim::set_queued_dpcs_never_run`](crate::Sim::set_queued_dpcs_never_run)).
    queued_dpcs_never_run: bool,
}

static TIMERS: Mutex<Timers> = Mutex::new(Timers {
    generation: 0,
    set: BTreeMap::new(),
    dpcs: BTreeMap::new(),
    pending: BTreeSet::new(),
    next_seq: 0,
    queued_dpcs_never_run: false,
});

/// Makes `KeInsertQueueDpc` on `w`'s machine Wine's stub (`on`) or not.
pub(crate) fn set_queued_dpcs_never_run(w: &World, on: bool) {
    timers(w).queued_dpcs_never_run = on;
}

/// The records of `w`'s machine. Lock order: the world, then this.
fn timers(w: &World) -> MutexGuard<'static, Timers> {
    let mut t = TIMERS.lock().unwrap_or_else(PoisonError::into_inner);
    if t.generation != w.generation {
        *t = Timers {
            generation: w.generation,
            ..Timers::default()
        };
    }
    t
}

/// A random duration in `0..=max`.
fn jitter(w: &mut World, max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(w.rng.below(nanos.saturating_add(1)))
}

/// The length of a clock tick ([`ke::KeQueryTimeIncrement`]).
fn tick() -> Duration {
    // SAFETY: no preconditions.
    let units = unsafe { ke::KeQueryTimeIncrement() };
    Duration::from_nanos(u64::from(units) * 100)
}

/// `KeInitializeTimer`: a notification timer, not signalled and not set.
///
/// # Safety
///
/// `Timer` must point to writable memory for a `KTIMER`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInitializeTimer(Timer: PKTIMER) {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeInitializeTimer", DISPATCH_LEVEL);
    if Timer.is_null() {
        violation!(Rule::Parameter, "KeInitializeTimer(NULL)");
        return;
    }
    let w = world::lock();
    let mut t = timers(&w);
    let addr = Timer as usize;
    if t.set.get(&addr).is_some_and(|r| r.armed.is_some()) {
        drop((t, w));
        violation!(
            Rule::Parameter,
            "KeInitializeTimer({Timer:p}) on a timer that is still set"
        );
        return;
    }
    t.set.insert(addr, TimerRec::default());
    drop((t, w));
    // SAFETY: the caller passes writable KTIMER storage; zero it, then make
    // the header a non-signalled notification timer.
    unsafe { Timer.cast::<u8>().write_bytes(0, size_of::<KTIMER>()) };
    ke::init_header(
        Timer.cast(),
        TIMER_NOTIFICATION_OBJECT,
        KTIMER_SIZE_IN_LONGS,
        0,
    );
}

/// `KeSetTimer`: (re)sets the timer to expire at `DueTime` and queue `Dpc`;
/// returns whether it was already set.
///
/// # Safety
///
/// `Timer` must be an initialised `KTIMER`, `Dpc` null or an initialised
/// `KDPC`, both resident until the timer expires or is cancelled.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeSetTimer(
    Timer: PKTIMER,
    DueTime: LARGE_INTEGER,
    Dpc: PKDPC,
) -> BOOLEAN {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeSetTimer", DISPATCH_LEVEL);
    let mut due = DueTime;
    // SAFETY: `due` is a readable LARGE_INTEGER.
    let Some(nominal) = (unsafe { ke::deadline_from(&raw mut due) }) else {
        return FALSE;
    };
    let mut w = world::lock();
    let (timer, dpc) = (Timer as usize, Dpc as usize);
    let problem = {
        let t = timers(&w);
        if !t.set.contains_key(&timer) {
            Some(format!("KeSetTimer({Timer:p}): not an initialised timer"))
        } else if dpc != 0 && !t.dpcs.contains_key(&dpc) {
            Some(format!(
                "KeSetTimer with DPC {Dpc:p}, not an initialised DPC"
            ))
        } else {
            None
        }
    };
    if let Some(msg) = problem {
        drop(w);
        violation!(Rule::Parameter, "{msg}");
        return FALSE;
    }
    let at = |offset: usize| Timer.cast::<u8>().wrapping_add(offset);
    let due_time = at(offset_of!(KTIMER, DueTime)).cast::<u64>();
    // SAFETY: an initialised KTIMER (checked above): the kernel records the
    // due time in it.
    unsafe { due_time.write(u64::from_ne_bytes(DueTime.to_ne_bytes())) };
    // SAFETY: as above, for the DPC.
    unsafe { at(offset_of!(KTIMER, Dpc)).cast::<PKDPC>().write(Dpc) };
    ke::signal_state(Timer.cast()).store(0, Ordering::Release);
    let now = Instant::now();
    let expiry = if DueTime < 0 {
        // Up to a tick early, a little late.
        let early = jitter(&mut w, tick());
        let late = jitter(&mut w, LATE_MAX);
        (nominal + late).checked_sub(early).unwrap_or(now).max(now)
    } else {
        nominal + jitter(&mut w, tick())
    };
    let generation = w.generation;
    let seq = {
        let mut t = timers(&w);
        t.next_seq += 1;
        t.next_seq
    };
    let key = world::queue_job_at(
        &mut w,
        expiry,
        Box::new(move || expire(generation, timer, seq, expiry)),
    );
    let mut t = timers(&w);
    let rec = t.set.entry(timer).or_default();
    let previous = rec.armed.replace((seq, key));
    rec.dpc = (dpc != 0).then_some(dpc);
    if let Some((_, old_key)) = previous {
        drop(t);
        world::cancel_job(&mut w, old_key);
    } else {
        drop(t);
    }
    drop(w);
    if previous.is_some() { TRUE } else { FALSE }
}

/// The expiry job of arming `seq` of `timer`, due at `expiry`.
fn expire(generation: u64, timer: usize, seq: u64, expiry: Instant) {
    let _g = NoUnwind::enter();
    // The worker runs every job at once when the simulator stops: a timer
    // is not due then, and its memory may be gone with the test (the leak
    // report, made before, names it).
    if Instant::now() < expiry {
        return;
    }
    let mut w = world::lock();
    if w.generation != generation {
        return;
    }
    let dpc = {
        let mut t = timers(&w);
        let Some(rec) = t.set.get_mut(&timer) else {
            return;
        };
        if rec.armed.map(|(s, _)| s) != Some(seq) {
            return;
        }
        rec.armed = None;
        let dpc = rec.dpc;
        dpc.and_then(|dpc| {
            let rec = t.dpcs.get_mut(&dpc)?;
            // Only one instance of a DPC can be queued at a time.
            if rec.queued.is_some() {
                return None;
            }
            t.next_seq += 1;
            let flush_seq = t.next_seq;
            let rec = t.dpcs.get_mut(&dpc)?;
            rec.queued = Some(flush_seq);
            rec.args = (0, 0);
            t.pending.insert(flush_seq);
            Some(dpc)
        })
    };
    if let Some(dpc) = dpc {
        schedule_dpc(&mut w, dpc);
    }
    drop(w);
    let header = timer as *mut u8;
    if ke::header_type(header) == TIMER_NOTIFICATION_OBJECT {
        ke::signal(header, 1);
    } else {
        violation!(
            Rule::Parameter,
            "the memory of timer {header:p} changed while the timer was set (freed or reused \
             before KeCancelTimer?)"
        );
    }
}

/// Has the worker run the DPC just queued, a little later.
fn schedule_dpc(w: &mut World, dpc: usize) {
    let generation = w.generation;
    let delay = jitter(w, DPC_DELAY_MAX);
    world::queue_job_at(
        w,
        Instant::now() + delay,
        Box::new(move || run_dpc(generation, dpc)),
    );
}

/// Runs a queued DPC's routine at `DISPATCH_LEVEL`.
fn run_dpc(generation: u64, dpc: usize) {
    let _g = NoUnwind::enter();
    let w = world::lock();
    if w.generation != generation {
        return;
    }
    // Dequeued before the routine runs, as the kernel does.
    let recorded = timers(&w)
        .dpcs
        .get_mut(&dpc)
        .and_then(|r| Some((r.routine, r.context, r.args, r.queued.take()?)));
    drop(w);
    let Some((routine, context, (arg1, arg2), seq)) = recorded else {
        return;
    };
    let kdpc = dpc as *mut KDPC;
    let at = |offset: usize| kdpc.cast::<u8>().wrapping_add(offset);
    // SAFETY: the driver keeps a queued DPC object resident (KeInitializeDpc's
    // contract); reading it is what the kernel does to run the routine.
    let in_memory = unsafe {
        at(offset_of!(KDPC, DeferredRoutine))
            .cast::<PKDEFERRED_ROUTINE>()
            .read()
    };
    // SAFETY: as above.
    let context_in_memory = unsafe { at(offset_of!(KDPC, DeferredContext)).cast::<PVOID>().read() };
    let (in_memory, context_in_memory) = (
        in_memory.map_or(0, |f| f as usize),
        context_in_memory as usize,
    );
    if (in_memory, context_in_memory) == (routine as usize, context) {
        let old = verifier::set_irql(DISPATCH_LEVEL);
        {
            let _cb = InCallback::enter(CallbackKind::Other);
            // SAFETY: a DPC routine runs at DISPATCH_LEVEL with its DPC object,
            // its context and the system arguments it was queued with.
            unsafe { routine(kdpc, context as PVOID, arg1 as PVOID, arg2 as PVOID) };
        }
        verifier::set_irql(old);
    } else {
        violation!(
            Rule::Parameter,
            "the memory of DPC {kdpc:p} changed while it was queued (freed or reused?)"
        );
    }
    let w = world::lock();
    timers(&w).pending.remove(&seq);
    w.notify();
}

/// `KeCancelTimer`: removes the timer from the timer queue; `TRUE` if it was
/// there.
///
/// # Safety
///
/// `Timer` must be an initialised `KTIMER`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeCancelTimer(Timer: PKTIMER) -> BOOLEAN {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeCancelTimer", DISPATCH_LEVEL);
    let mut w = world::lock();
    let armed = {
        let mut t = timers(&w);
        match t.set.get_mut(&(Timer as usize)) {
            Some(rec) => Ok(rec.armed.take()),
            None => Err(()),
        }
    };
    match armed {
        Err(()) => {
            drop(w);
            violation!(
                Rule::Parameter,
                "KeCancelTimer({Timer:p}): not an initialised timer"
            );
            FALSE
        }
        Ok(Some((_, key))) => {
            world::cancel_job(&mut w, key);
            TRUE
        }
        Ok(None) => FALSE,
    }
}

/// `KeInitializeDpc`: records the routine and context and writes them into
/// the `KDPC` as `wdm.h` lays it out.
///
/// # Safety
///
/// `Dpc` must point to writable, resident memory for a `KDPC`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInitializeDpc(
    Dpc: PRKDPC,
    DeferredRoutine: PKDEFERRED_ROUTINE,
    DeferredContext: PVOID,
) {
    let _g = NoUnwind::enter();
    let Some(routine) = DeferredRoutine else {
        violation!(Rule::Parameter, "KeInitializeDpc with a NULL routine");
        return;
    };
    if Dpc.is_null() {
        violation!(Rule::Parameter, "KeInitializeDpc(NULL)");
        return;
    }
    let w = world::lock();
    let mut t = timers(&w);
    let addr = Dpc as usize;
    if t.dpcs.get(&addr).is_some_and(|r| r.queued.is_some()) {
        drop((t, w));
        violation!(
            Rule::Parameter,
            "KeInitializeDpc({Dpc:p}) on a DPC that is queued"
        );
        return;
    }
    t.dpcs.insert(
        addr,
        DpcRec {
            routine,
            context: DeferredContext as usize,
            args: (0, 0),
            queued: None,
        },
    );
    drop((t, w));
    // SAFETY: the caller passes writable KDPC storage.
    unsafe {
        Dpc.write(KDPC {
            TargetInfoAsUlong: 0,
            DpcListEntry: wsk_sys::SINGLE_LIST_ENTRY {
                Next: core::ptr::null_mut(),
            },
            ProcessorHistory: 0,
            DeferredRoutine,
            DeferredContext,
            SystemArgument1: core::ptr::null_mut(),
            SystemArgument2: core::ptr::null_mut(),
            DpcData: core::ptr::null_mut(),
        });
    }
}

/// `KeInsertQueueDpc`: queues the DPC unless it is queued already; returns
/// whether it queued it. The routine runs later on a thread of its own (see
/// the module docs), never inside this call. After
/// [`Sim::set_queued_dpcs_never_run`](crate::Sim::set_queued_dpcs_never_run)
/// (Wine's stub) it returns `TRUE` and does nothing.
///
/// # Safety
///
/// `Dpc` must be an initialised `KDPC`, resident until its routine has run.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInsertQueueDpc(
    Dpc: PRKDPC,
    SystemArgument1: PVOID,
    SystemArgument2: PVOID,
) -> BOOLEAN {
    let _g = NoUnwind::enter();
    let mut w = world::lock();
    let dpc = Dpc as usize;
    if timers(&w).queued_dpcs_never_run {
        // Wine's stub (`Sim::set_queued_dpcs_never_run`): not even checked.
        return TRUE;
    }
    let queued = {
        let mut t = timers(&w);
        t.next_seq += 1;
        let flush_seq = t.next_seq;
        match t.dpcs.get_mut(&dpc) {
            None => None,
            // Only one instance of a DPC can be queued at a time.
            Some(rec) if rec.queued.is_some() => Some(false),
            Some(rec) => {
                rec.queued = Some(flush_seq);
                rec.args = (SystemArgument1 as usize, SystemArgument2 as usize);
                t.pending.insert(flush_seq);
                Some(true)
            }
        }
    };
    match queued {
        None => {
            drop(w);
            violation!(
                Rule::Parameter,
                "KeInsertQueueDpc({Dpc:p}): not an initialised DPC"
            );
            FALSE
        }
        Some(false) => FALSE,
        Some(true) => {
            let generation = w.generation;
            let delay = jitter(&mut w, DPC_DELAY_MAX);
            drop(w);
            std::thread::Builder::new()
                .name("wsk-sim-dpc".into())
                .spawn(move || {
                    std::thread::sleep(delay);
                    run_dpc(generation, dpc);
                })
                .expect("spawn a DPC thread");
            TRUE
        }
    }
}

/// `KeFlushQueuedDpcs`: returns once every DPC queued before the call has
/// run.
///
/// # Safety
///
/// Always safe to call at `PASSIVE_LEVEL`; `unsafe` to match the import.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeFlushQueuedDpcs() {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeFlushQueuedDpcs", PASSIVE_LEVEL);
    verifier::check_not_in_callback("KeFlushQueuedDpcs");
    let mut w = world::lock();
    let last = timers(&w).next_seq;
    loop {
        let waiting = timers(&w).pending.first().is_some_and(|&s| s <= last);
        if !waiting {
            return;
        }
        w.wait(Some(Duration::from_millis(50)));
    }
}

/// Timers still set and DPCs still queued (end-of-test report).
pub(crate) fn leaks(w: &World) -> Vec<String> {
    let t = timers(w);
    let mut out = Vec::new();
    for (addr, rec) in &t.set {
        if rec.armed.is_some() {
            out.push(format!(
                "timer {addr:#x} still set (KeCancelTimer it before unload)"
            ));
        }
    }
    for (addr, rec) in &t.dpcs {
        if rec.queued.is_some() {
            out.push(format!("DPC {addr:#x} still queued"));
        }
    }
    if !t.pending.is_empty() {
        out.push(format!("{} DPC routine(s) still running", t.pending.len()));
    }
    out
}
