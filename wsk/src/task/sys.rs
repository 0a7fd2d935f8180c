//! The kernel objects the executor is built from, each behind the few
//! operations it needs: a spin lock held around pointer updates, a semaphore
//! that parks idle threads, a notification event, a deadline timer and system
//! threads.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::mem::MaybeUninit;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::time::Duration;

use wsk_sys as sys;

use crate::error::Error;

/// A `KSPIN_LOCK` and the data it protects, for the executor's own short
/// critical sections: a few pointer and counter updates, never a poll, a
/// wait, an allocation or a call out of this module's callers.
///
/// Unlike [`crate::irql::SpinLock`] it needs no IRQL token: wakers, which
/// take it, are called without one.
pub(crate) struct RawSpinLock<T> {
    lock: UnsafeCell<sys::KSPIN_LOCK>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises every access to `data`.
unsafe impl<T: Send> Send for RawSpinLock<T> {}
// SAFETY: as above; `&RawSpinLock` reaches `data` only under the lock.
unsafe impl<T: Send> Sync for RawSpinLock<T> {}

impl<T> RawSpinLock<T> {
    /// An unlocked lock (`KeInitializeSpinLock` stores zero).
    pub(crate) const fn new(data: T) -> Self {
        Self {
            lock: UnsafeCell::new(0),
            data: UnsafeCell::new(data),
        }
    }

    /// Runs `f` with the lock held, at `DISPATCH_LEVEL`
    /// (`KeAcquireSpinLockRaiseToDpc` / `KeReleaseSpinLock`).
    ///
    /// `f` must not wait, poll a future, allocate, or take this lock.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: a valid KSPIN_LOCK in memory that outlives the call; callers
        // run at IRQL <= DISPATCH_LEVEL.
        let old = unsafe { sys::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        // SAFETY: the lock is held, so this is the only reference to the data.
        let out = f(unsafe { &mut *self.data.get() });
        // SAFETY: acquired above with KeAcquireSpinLockRaiseToDpc, which
        // returned `old`.
        unsafe { sys::KeReleaseSpinLock(self.lock.get(), old) };
        out
    }
}

/// A `KSEMAPHORE` whose count is the number of parked threads to release.
pub(super) struct Semaphore(UnsafeCell<MaybeUninit<sys::KSEMAPHORE>>);

// SAFETY: the semaphore is only touched through kernel routines, which are
// safe to call from any thread.
unsafe impl Send for Semaphore {}
// SAFETY: as above.
unsafe impl Sync for Semaphore {}

impl Semaphore {
    /// Storage, to be initialised in place with [`init`](Self::init).
    pub(crate) const fn uninit() -> Self {
        Self(UnsafeCell::new(MaybeUninit::uninit()))
    }

    fn raw(&self) -> *mut sys::KSEMAPHORE {
        self.0.get().cast()
    }

    /// Initialises the semaphore with count 0 (`KeInitializeSemaphore`). The
    /// limit is `LONG::MAX`: callers release at most one unit per parked
    /// thread, so the count stays far below it.
    ///
    /// # Safety
    ///
    /// Called once, at `PASSIVE_LEVEL`, at the semaphore's final (resident)
    /// address, before any other method.
    pub(super) unsafe fn init(&self) {
        // SAFETY: writable storage at its final address (caller contract);
        // PASSIVE_LEVEL as the routine's page requires.
        unsafe { sys::KeInitializeSemaphore(self.raw(), 0, sys::LONG::MAX) };
    }

    /// Releases `count` parked threads, or the next `count` waits
    /// (`KeReleaseSemaphore`, `Wait = FALSE`).
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    ///
    /// # Safety
    ///
    /// [`init`](Self::init) ran.
    pub(super) unsafe fn release(&self, count: u32) {
        let count = sys::LONG::try_from(count).unwrap_or(sys::LONG::MAX);
        // SAFETY: initialised (caller contract); Wait = FALSE is allowed at
        // DISPATCH_LEVEL; the count stays below the limit (see `init`).
        unsafe { sys::KeReleaseSemaphore(self.raw(), 0, count, sys::FALSE) };
    }

    /// Parks the calling thread until a unit is released, and takes it.
    ///
    /// # Safety
    ///
    /// [`init`](Self::init) ran; the caller runs at `PASSIVE_LEVEL` and may
    /// wait.
    pub(super) unsafe fn wait(&self) {
        // SAFETY: an initialised dispatcher object in resident memory; a
        // kernel-mode, non-alertable wait at PASSIVE_LEVEL (caller contract).
        unsafe {
            sys::KeWaitForSingleObject(
                self.raw().cast(),
                sys::Executive,
                sys::KernelMode,
                sys::FALSE,
                ptr::null_mut(),
            );
        }
    }
}

/// A notification `KEVENT`, set once.
pub(crate) struct Event(UnsafeCell<MaybeUninit<sys::KEVENT>>);

// SAFETY: only touched through kernel routines.
unsafe impl Send for Event {}
// SAFETY: as above.
unsafe impl Sync for Event {}

impl Event {
    /// Storage, to be initialised in place with [`init`](Self::init).
    pub(crate) const fn uninit() -> Self {
        Self(UnsafeCell::new(MaybeUninit::uninit()))
    }

    pub(crate) fn raw(&self) -> *mut sys::KEVENT {
        self.0.get().cast()
    }

    /// Initialises a not-signalled notification event.
    ///
    /// # Safety
    ///
    /// Called once, at the event's final (resident) address, before any
    /// other method.
    pub(crate) unsafe fn init(&self) {
        // SAFETY: writable storage at its final address (caller contract).
        unsafe { sys::KeInitializeEvent(self.raw(), sys::NotificationEvent, sys::FALSE) };
    }

    /// Signals the event.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    ///
    /// # Safety
    ///
    /// [`init`](Self::init) ran.
    pub(crate) unsafe fn set(&self) {
        // SAFETY: initialised (caller contract); no wait follows.
        unsafe { sys::KeSetEvent(self.raw(), 0, sys::FALSE) };
    }
}

/// A one-shot notification `KTIMER` without a DPC, used as the deadline of a
/// sequence of waits: each wait ends at the earlier of its object and the
/// timer ([Using Timer Objects](https://learn.microsoft.com/windows-hardware/drivers/kernel/using-timer-objects)).
///
/// Pinned (the kernel keeps its address while it is set), typically on the
/// waiting thread's stack, which stays resident during kernel-mode waits;
/// dropping it cancels the timer.
pub(crate) struct Deadline {
    timer: UnsafeCell<MaybeUninit<sys::KTIMER>>,
    armed: core::cell::Cell<bool>,
    _pinned: core::marker::PhantomPinned,
}

impl Deadline {
    /// A deadline not set yet.
    pub(crate) const fn new() -> Self {
        Self {
            timer: UnsafeCell::new(MaybeUninit::uninit()),
            armed: core::cell::Cell::new(false),
            _pinned: core::marker::PhantomPinned,
        }
    }

    fn timer(&self) -> *mut sys::KTIMER {
        self.timer.get().cast()
    }

    /// The timer, as a dispatcher object signalled at the deadline (once
    /// [`arm`](Self::arm)ed), to wait on with other objects ([`wait_any`]).
    pub(crate) fn object(self: Pin<&Self>) -> *mut core::ffi::c_void {
        self.timer().cast()
    }

    /// Sets the timer to expire after at least `timeout`.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    pub(crate) fn arm(self: Pin<&Self>, timeout: Duration) {
        if self.armed.replace(true) {
            return;
        }
        // SAFETY: writable KTIMER storage that stays at this (pinned) address
        // until `drop` cancels the timer.
        unsafe { sys::KeInitializeTimer(self.timer()) };
        // A relative timer may expire up to a clock tick early
        // (https://learn.microsoft.com/windows-hardware/drivers/kernel/timer-accuracy):
        // one tick more makes the deadline at least `timeout` away, as
        // `timer::sleep` does. A zero due time would make the wait a poll.
        // SAFETY: no preconditions.
        let tick = i64::from(unsafe { sys::KeQueryTimeIncrement() });
        let due = crate::time::relative_timeout(timeout)
            .saturating_sub(tick)
            .min(-1);
        // SAFETY: initialised above; no DPC.
        unsafe { sys::KeSetTimer(self.timer(), due, ptr::null_mut()) };
    }

    /// Waits until `object` is signalled (true) or the deadline passes
    /// (false).
    ///
    /// # Safety
    ///
    /// The deadline is armed; `object` is a dispatcher object (event,
    /// semaphore, thread) in resident memory; the caller runs at
    /// `PASSIVE_LEVEL` and may wait.
    pub(super) unsafe fn wait_for(self: Pin<&Self>, object: *mut core::ffi::c_void) -> bool {
        // SAFETY: as the caller guarantees; the timer is armed (caller
        // contract), so it is an initialised dispatcher object.
        unsafe { wait_any(&mut [object, self.object()]) == 0 }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if self.armed.get() {
            // SAFETY: initialised in `arm`; cancelling a timer with no DPC
            // leaves nothing running that uses its memory.
            unsafe { sys::KeCancelTimer(self.timer()) };
        }
    }
}

/// Waits until one of `objects` (at most three: `THREAD_WAIT_OBJECTS`, so
/// the thread's own wait blocks serve) is signalled
/// (`KeWaitForMultipleObjects`, `WaitAny`, no time-out); returns its index
/// (the lowest if several are).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitformultipleobjects>
///
/// # Safety
///
/// Every object is an initialised dispatcher object (event, semaphore,
/// timer, thread) in resident memory that outlives the wait; the caller runs
/// at `PASSIVE_LEVEL` and may wait.
pub(crate) unsafe fn wait_any(objects: &mut [*mut core::ffi::c_void]) -> usize {
    debug_assert!((1..=3).contains(&objects.len()), "THREAD_WAIT_OBJECTS");
    let count = sys::ULONG::try_from(objects.len()).unwrap_or(1);
    // SAFETY: at most THREAD_WAIT_OBJECTS objects, so no wait-block array is
    // needed; a kernel-mode, non-alertable wait without a time-out at
    // PASSIVE_LEVEL (caller contract).
    let status = unsafe {
        sys::KeWaitForMultipleObjects(
            count,
            objects.as_mut_ptr(),
            sys::WaitAny,
            sys::Executive,
            sys::KernelMode,
            sys::FALSE,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    // STATUS_WAIT_0 + n: object n satisfied the wait.
    usize::try_from(status - sys::STATUS_WAIT_0).unwrap_or(0)
}

/// A referenced system thread object, for waiting until the thread ends.
///
/// # Invariants
///
/// `0` is a thread object referenced with `ObReferenceObjectByHandle`; the
/// reference is dropped once, in `Drop`.
pub(super) struct SystemThread(NonNull<core::ffi::c_void>);

// SAFETY: a referenced kernel object, usable from any thread.
unsafe impl Send for SystemThread {}
// SAFETY: as above.
unsafe impl Sync for SystemThread {}

impl SystemThread {
    /// Starts `routine(context)` on a new system thread (`PsCreateSystemThread`
    /// with a kernel handle, as required when the caller may run in another
    /// process's context) and references its thread object.
    ///
    /// On error no thread was started and the context is dropped, except
    /// when only the reference failed: then the thread runs and owns the
    /// context, and the error says so.
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub(super) fn spawn<C>(
        passive: &crate::irql::Passive<'_>,
        routine: unsafe extern "system" fn(sys::PVOID),
        context: Box<C>,
    ) -> core::result::Result<Self, SpawnThreadError> {
        let _ = passive;
        let context = Box::into_raw(context);
        let mut attributes = sys::InitializeObjectAttributes(
            ptr::null_mut(),
            sys::OBJ_KERNEL_HANDLE,
            ptr::null_mut(),
            ptr::null_mut(),
        );
        let mut handle: sys::HANDLE = ptr::null_mut();
        // SAFETY: PASSIVE_LEVEL (token); `handle` and `attributes` are live
        // locals; `routine` takes ownership of `context` once the thread runs.
        let status = unsafe {
            sys::PsCreateSystemThread(
                &raw mut handle,
                sys::THREAD_ALL_ACCESS,
                &raw mut attributes,
                ptr::null_mut(),
                ptr::null_mut(),
                Some(routine),
                context.cast(),
            )
        };
        if !sys::NT_SUCCESS(status) {
            // SAFETY: no thread started, so the context is still ours.
            drop(unsafe { Box::from_raw(context) });
            return Err(SpawnThreadError::NotStarted(error(status)));
        }
        let mut object: sys::PVOID = ptr::null_mut();
        // SAFETY: the thread handle just returned; kernel mode, so no type or
        // access check is needed.
        let status = unsafe {
            sys::ObReferenceObjectByHandle(
                handle,
                sys::SYNCHRONIZE,
                ptr::null_mut(),
                sys::KernelMode,
                &raw mut object,
                ptr::null_mut(),
            )
        };
        // SAFETY: our handle, closed once; the object (if referenced) lives on.
        unsafe { sys::ZwClose(handle) };
        match NonNull::new(object) {
            Some(object) if sys::NT_SUCCESS(status) => Ok(Self(object)),
            _ => Err(SpawnThreadError::Detached(error(status))),
        }
    }

    /// The thread object, a dispatcher object signalled when the thread ends.
    pub(super) fn object(&self) -> *mut core::ffi::c_void {
        self.0.as_ptr()
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        // SAFETY: drops the reference taken in `spawn`, once (invariant);
        // legal at IRQL <= DISPATCH_LEVEL.
        unsafe { sys::ObDereferenceObject(self.0.as_ptr()) };
    }
}

/// Why [`SystemThread::spawn`] failed.
pub(super) enum SpawnThreadError {
    /// No thread started; the context was dropped.
    NotStarted(Error),
    /// The thread runs (and owns the context) but could not be referenced,
    /// so nobody can wait for it.
    Detached(Error),
}

fn error(status: sys::NTSTATUS) -> Error {
    Error::from_raw(status).unwrap_or(Error::UNSUCCESSFUL)
}

/// Ends the calling system thread.
///
/// A driver-created thread must end itself with `PsTerminateSystemThread`
/// before the driver unloads ([Releasing Driver-Allocated
/// Resources](https://learn.microsoft.com/windows-hardware/drivers/kernel/releasing-driver-allocated-resources));
/// the routine returns only if it failed, and the caller's start routine then
/// returns, which is all that is left to do.
///
/// Hosts (`wsk-sim`) return from the start routine instead: the simulator
/// cannot end an OS thread from inside `PsTerminateSystemThread` and parks it
/// forever, which Miri reports as a leaked thread. Returning ends the
/// simulated thread the same way (its object is signalled).
///
/// # Safety
///
/// Called last by the start routine of a thread created with
/// [`SystemThread::spawn`], which owns nothing that still needs dropping.
pub(super) unsafe fn end_current_thread() {
    #[cfg(windows)]
    // SAFETY: a system thread ending itself (caller contract).
    unsafe {
        sys::PsTerminateSystemThread(sys::STATUS_SUCCESS);
    }
}

/// Prints `message` to the kernel debugger (`DbgPrint("%s", message)`).
///
/// IRQL: any.
pub(super) fn debug_print(message: &CStr) {
    // SAFETY: both arguments are NUL-terminated strings; `%s` with a narrow
    // string is allowed at any IRQL.
    unsafe { sys::DbgPrint(c"%s".as_ptr(), message.as_ptr()) };
}

/// `KeFlushQueuedDpcs`: returns once every DPC queued before the call ran.
///
/// IRQL: `PASSIVE_LEVEL` (proven by `passive`).
pub(crate) fn flush_queued_dpcs(passive: &crate::irql::Passive<'_>) {
    let _ = passive;
    // SAFETY: PASSIVE_LEVEL (token); no preconditions otherwise.
    unsafe { sys::KeFlushQueuedDpcs() };
}
