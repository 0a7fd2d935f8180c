//! Semaphore objects: `KeInitializeSemaphore` and `KeReleaseSemaphore`.
//! Waits on them go through [`crate::ke`]'s `KeWaitFor*`, which take one
//! unit of the count per satisfied wait.
//!
//! Like events, the state lives in the caller's `KSEMAPHORE`: the count in
//! `Header.SignalState`, the limit in `Limit` (offset 0x18, `wdm.h`).

use core::mem::offset_of;
use core::sync::atomic::Ordering;

use wsk_sys::{BOOLEAN, KPRIORITY, KSEMAPHORE, LONG, PRKSEMAPHORE};

use crate::ke;
use crate::verifier::{self, DISPATCH_LEVEL, NoUnwind, PASSIVE_LEVEL, Rule, violation};
use crate::world;

/// `DISPATCHER_HEADER.Type` of a semaphore: the kernel's private `KOBJECTS`
/// value `SemaphoreObject`, as Wine's `ntoskrnl.exe` also uses it
/// (`TYPE_SEMAPHORE = 5` in `dlls/ntoskrnl.exe/sync.c`). Drivers never read it.
pub(crate) const SEMAPHORE_OBJECT: u8 = 5;

/// `sizeof(KSEMAPHORE) / sizeof(LONG)`.
const KSEMAPHORE_SIZE_IN_LONGS: u8 = 8;

/// The semaphore's `Limit`.
///
/// # Safety
///
/// `semaphore` points to an initialised `KSEMAPHORE`.
unsafe fn limit(semaphore: PRKSEMAPHORE) -> LONG {
    let field = semaphore
        .cast::<u8>()
        .wrapping_add(offset_of!(KSEMAPHORE, Limit))
        .cast::<LONG>();
    // SAFETY: the caller passes an initialised KSEMAPHORE; `Limit` is only
    // written by KeInitializeSemaphore.
    unsafe { field.read() }
}

/// `KeInitializeSemaphore`: a semaphore with count `Count` and limit
/// `Limit`. Microsoft's page requires `PASSIVE_LEVEL` (the header annotation
/// allows `DISPATCH_LEVEL`); the simulator holds callers to the page.
///
/// # Safety
///
/// `Semaphore` must point to writable memory for a `KSEMAPHORE`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInitializeSemaphore(
    Semaphore: PRKSEMAPHORE,
    Count: LONG,
    Limit: LONG,
) {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("KeInitializeSemaphore", PASSIVE_LEVEL);
    if Semaphore.is_null() {
        violation!(Rule::Parameter, "KeInitializeSemaphore(NULL)");
        return;
    }
    if Limit <= 0 || Count < 0 || Count > Limit {
        violation!(
            Rule::Parameter,
            "KeInitializeSemaphore with Count {Count} and Limit {Limit} (Limit must be positive, \
             Count between 0 and Limit)"
        );
        return;
    }
    ke::init_header(
        Semaphore.cast(),
        SEMAPHORE_OBJECT,
        KSEMAPHORE_SIZE_IN_LONGS,
        Count,
    );
    let field = Semaphore
        .cast::<u8>()
        .wrapping_add(offset_of!(KSEMAPHORE, Limit))
        .cast::<LONG>();
    // SAFETY: the caller passes writable KSEMAPHORE storage.
    unsafe { field.write(Limit) };
}

/// `KeReleaseSemaphore`: adds `Adjustment` to the count, satisfying that many
/// waits; returns the previous count. Exceeding the limit raises
/// `STATUS_SEMAPHORE_LIMIT_EXCEEDED` in Windows (an exception a driver does
/// not handle: a bug check); here it is a `PARAMETER` violation and the count
/// is left unchanged.
///
/// # Safety
///
/// `Semaphore` must be an initialised `KSEMAPHORE`.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeReleaseSemaphore(
    Semaphore: PRKSEMAPHORE,
    Increment: KPRIORITY,
    Adjustment: LONG,
    Wait: BOOLEAN,
) -> LONG {
    let _g = NoUnwind::enter();
    let _ = Increment;
    if Wait == 0 {
        verifier::check_irql_max("KeReleaseSemaphore", DISPATCH_LEVEL);
    } else {
        verifier::check_irql_max("KeReleaseSemaphore(Wait = TRUE)", PASSIVE_LEVEL);
    }
    if Semaphore.is_null() || ke::header_type(Semaphore.cast()) != SEMAPHORE_OBJECT {
        violation!(
            Rule::Parameter,
            "KeReleaseSemaphore({Semaphore:p}): not an initialised semaphore"
        );
        return 0;
    }
    if Adjustment <= 0 {
        violation!(
            Rule::Parameter,
            "KeReleaseSemaphore with Adjustment {Adjustment} (must be positive)"
        );
        return 0;
    }
    // SAFETY: checked above that this is an initialised semaphore.
    let limit = unsafe { limit(Semaphore) };
    let w = world::lock();
    let count = ke::signal_state(Semaphore.cast());
    let prev = count.load(Ordering::Acquire);
    if prev.checked_add(Adjustment).is_none_or(|n| n > limit) {
        drop(w);
        violation!(
            Rule::Parameter,
            "KeReleaseSemaphore: count {prev} + {Adjustment} exceeds the limit {limit} \
             (Windows raises STATUS_SEMAPHORE_LIMIT_EXCEEDED)"
        );
        return prev;
    }
    count.fetch_add(Adjustment, Ordering::AcqRel);
    w.notify();
    prev
}
