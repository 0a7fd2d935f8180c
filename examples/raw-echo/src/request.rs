//! One IRP reused for every call its owner makes, and the `KEVENT` its
//! completion routine signals: how a C driver issues WSK requests.
//!
//! The IRP comes from `IoAllocateIrp(1, FALSE)` (WSK needs one stack
//! location, <https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>),
//! is reinitialised with `IoReuseIrp` before each call
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioreuseirp>),
//! and its completion routine signals the event and returns
//! `STATUS_MORE_PROCESSING_REQUIRED`, so that the I/O manager hands the IRP
//! back instead of freeing it.
//!
//! A WSK function that does not return `STATUS_PENDING` has already
//! completed its IRP (the "Return value" tables of every WSK function;
//! e.g. <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>);
//! its result is the returned status. Wine's stubs return
//! `STATUS_NOT_IMPLEMENTED` without completing the IRP, which the same rule
//! handles: the IRP is ours again either way.

use alloc::boxed::Box;
use core::cell::{Cell, UnsafeCell};
use core::ptr::{self, NonNull};

use wsk_sys as sys;

/// A `KEVENT` in memory that the kernel may signal while Rust holds shared
/// references to it.
pub(crate) struct Event(UnsafeCell<sys::KEVENT>);

// SAFETY: a KEVENT is a kernel dispatcher object: every access goes through
// Ke* routines, which synchronise among themselves, at any thread.
unsafe impl Sync for Event {}
// SAFETY: as above; the object has no thread affinity.
unsafe impl Send for Event {}

impl Event {
    /// An uninitialised event; [`Event::init`] it at its final address.
    pub(crate) fn zeroed() -> Event {
        // SAFETY: KEVENT is plain data (integers and pointers); all-zero is a
        // valid bit pattern, and KeInitializeEvent sets every field before use.
        Event(UnsafeCell::new(unsafe { core::mem::zeroed() }))
    }

    /// `KeInitializeEvent` as a notification event, not signalled.
    ///
    /// # Safety
    ///
    /// The event does not move afterwards, and nobody waits on it or
    /// signals it yet.
    pub(crate) unsafe fn init(&self) {
        // SAFETY: the caller's contract; the storage is non-paged (pool).
        unsafe { sys::KeInitializeEvent(self.get(), sys::NotificationEvent, sys::FALSE) };
    }

    pub(crate) fn get(&self) -> sys::PKEVENT {
        self.0.get()
    }

    /// `KeSetEvent`.
    pub(crate) fn set(&self) {
        // SAFETY: an initialised event (every `Event` is initialised before
        // it is shared); IRQL <= DISPATCH_LEVEL with Wait = FALSE.
        unsafe { sys::KeSetEvent(self.get(), 0, sys::FALSE) };
    }

    /// Whether the event is signalled (`KeReadStateEvent`).
    pub(crate) fn is_set(&self) -> bool {
        // SAFETY: an initialised event; any IRQL <= DISPATCH_LEVEL.
        unsafe { sys::KeReadStateEvent(self.get()) != 0 }
    }

    /// Waits until the event is signalled or `timeout` (100 ns units) has
    /// passed; true when signalled.
    pub(crate) fn wait_for(&self, timeout_100ns: i64) -> bool {
        let mut due = -timeout_100ns;
        // SAFETY: an initialised event; callers run at PASSIVE_LEVEL (system
        // threads); `due` is a live local (negative: relative time).
        let st = unsafe {
            sys::KeWaitForSingleObject(
                self.get().cast(),
                sys::Executive,
                sys::KernelMode,
                sys::FALSE,
                &raw mut due,
            )
        };
        st == sys::STATUS_SUCCESS
    }
}

/// The completion routine of every [`Request`]: signals the owner's event
/// and keeps the IRP.
///
/// # Safety
///
/// Called by the I/O manager with the context [`Request::call`] set: the
/// event of a request whose owner does not free it while the IRP is out.
unsafe extern "system" fn completed(
    _device: sys::PDEVICE_OBJECT,
    _irp: sys::PIRP,
    context: sys::PVOID,
) -> sys::NTSTATUS {
    // SAFETY: the context is the owner's initialised KEVENT, alive while the
    // IRP is pending (the owner waits for this signal before it frees either);
    // KeSetEvent with Wait = FALSE is allowed at DISPATCH_LEVEL.
    unsafe { sys::KeSetEvent(context.cast(), 0, sys::FALSE) };
    sys::STATUS_MORE_PROCESSING_REQUIRED
}

/// How a wait for a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The request completed: `IoStatus.Status` and `IoStatus.Information`.
    Done(sys::NTSTATUS, usize),
    /// The stop event was signalled first; the request is still pending.
    Stopped,
}

/// One reusable IRP and its event, used by one thread at a time (it is
/// `Send`, not `Sync`). Its memory is a pool block whose address the
/// provider and the completion routine hold while a call is pending.
///
/// # Invariants
///
/// `slot` points to a live [`Slot`] this request owns, whose `irp` is an IRP
/// from `IoAllocateIrp(1, …)`. While a call is pending the provider owns
/// that IRP and may complete it into the slot's event at any moment; then
/// neither may be freed, and dropping the request leaks both.
pub(crate) struct Request {
    slot: NonNull<Slot>,
}

struct Slot {
    irp: sys::PIRP,
    event: Event,
    /// A call is out and its completion has not been seen.
    pending: Cell<bool>,
    /// What the last call returned.
    returned: Cell<sys::NTSTATUS>,
}

// SAFETY: the IRP and the event are kernel objects usable from any thread;
// the slot is reached only through this owner (the completion routine
// touches only the event, through its own pointer).
unsafe impl Send for Request {}

impl Request {
    /// Allocates the IRP and initialises the event; `None` when the IRP
    /// cannot be allocated.
    pub(crate) fn new() -> Option<Request> {
        // SAFETY: IRQL <= DISPATCH_LEVEL; one stack location is what a WSK
        // client's own IRP needs; no quota charge in a system thread.
        let irp = unsafe { sys::IoAllocateIrp(1, sys::FALSE) };
        if irp.is_null() {
            return None;
        }
        let slot = Box::new(Slot {
            irp,
            event: Event::zeroed(),
            pending: Cell::new(false),
            returned: Cell::new(sys::STATUS_SUCCESS),
        });
        // SAFETY: the event is in its box (final address), not yet shared.
        unsafe { slot.event.init() };
        Some(Request {
            slot: NonNull::from(Box::leak(slot)),
        })
    }

    fn slot(&self) -> &Slot {
        // SAFETY: the invariant: a live slot this request owns.
        unsafe { self.slot.as_ref() }
    }

    /// Whether a call is out.
    pub(crate) fn is_pending(&self) -> bool {
        self.slot().pending.get()
    }

    /// Starts one WSK call with this request's IRP: `IoReuseIrp`, clears
    /// the event, sets the completion routine, then `f(irp)`, which must
    /// pass the IRP to exactly one WSK function and return its status.
    ///
    /// # Safety
    ///
    /// No call of this request is pending; every buffer and address `f`
    /// hands to the provider stays valid until the request has completed
    /// ([`wait`](Self::wait) returned [`Wait::Done`]); the caller runs at
    /// IRQL <= `DISPATCH_LEVEL`.
    pub(crate) unsafe fn call(&self, f: impl FnOnce(sys::PIRP) -> sys::NTSTATUS) {
        let slot = self.slot();
        debug_assert!(!slot.pending.get(), "a call of this request is out");
        // SAFETY: our IRP, not in use (no call pending: the caller's contract).
        unsafe { sys::IoReuseIrp(slot.irp, sys::STATUS_UNSUCCESSFUL) };
        // SAFETY: an initialised event that nobody waits on now.
        unsafe { sys::KeClearEvent(slot.event.get()) };
        // SAFETY: our IRP has one stack location (CurrentLocation 2 after
        // IoReuseIrp, so the next location is valid); the context is our
        // event, which outlives the call (a pending request is leaked, never
        // freed).
        unsafe {
            sys::IoSetCompletionRoutine(
                slot.irp,
                Some(completed),
                slot.event.get().cast(),
                sys::TRUE,
                sys::TRUE,
                sys::TRUE,
            );
        };
        slot.pending.set(true);
        slot.returned.set(f(slot.irp));
    }

    /// Waits for the call [`call`](Self::call) started: until it completes,
    /// or, when `stop` is given, until `stop` is signalled, whichever comes
    /// first (`stop` wins a tie). Returns [`Wait::Done`] at once when the
    /// call did not pend, or when no call is out (with the last result).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    pub(crate) fn wait(&self, stop: Option<&Event>) -> Wait {
        let slot = self.slot();
        if slot.pending.get() && slot.returned.get() == sys::STATUS_PENDING {
            if let Some(stop) = stop {
                let mut objects = [stop.get().cast(), slot.event.get().cast()];
                // SAFETY: two initialised events (<= THREAD_WAIT_OBJECTS, so
                // no wait block array is needed); PASSIVE_LEVEL; no timeout.
                let woken = unsafe {
                    sys::KeWaitForMultipleObjects(
                        2,
                        objects.as_mut_ptr(),
                        sys::WaitAny,
                        sys::Executive,
                        sys::KernelMode,
                        sys::FALSE,
                        ptr::null_mut(),
                        ptr::null_mut(),
                    )
                };
                if woken == sys::STATUS_WAIT_0 {
                    return Wait::Stopped;
                }
            } else {
                // SAFETY: an initialised event; PASSIVE_LEVEL; no timeout.
                unsafe {
                    sys::KeWaitForSingleObject(
                        slot.event.get().cast(),
                        sys::Executive,
                        sys::KernelMode,
                        sys::FALSE,
                        ptr::null_mut(),
                    )
                };
            }
            slot.pending.set(false);
            // SAFETY: our IRP, completed (its event is signalled), so its
            // IoStatus is final and nothing writes it any more.
            let io = unsafe { (*slot.irp).IoStatus };
            return Wait::Done(io.Status, io.Information);
        }
        slot.pending.set(false);
        // SAFETY: our IRP, not handed over or already completed inside the
        // call (a non-pending return), so nothing writes it concurrently.
        let information = unsafe { (*slot.irp).IoStatus.Information };
        Wait::Done(slot.returned.get(), information)
    }

    /// Waits, without a bound, until the call out completes (the provider
    /// completes every IRP; closing the socket completes the ones still
    /// pending) and returns its result; the request is free afterwards.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    pub(crate) fn finish(&self) -> (sys::NTSTATUS, usize) {
        match self.wait(None) {
            Wait::Done(status, information) => (status, information),
            Wait::Stopped => unreachable!("a wait without a stop event cannot stop"),
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        let slot = self.slot();
        if slot.pending.get() && slot.returned.get() == sys::STATUS_PENDING {
            // The provider may still complete the IRP into the slot's event:
            // leak both rather than free memory it can touch. The driver never
            // gets here (every owner finishes its calls first).
            return;
        }
        // SAFETY: our IRP from IoAllocateIrp, not pending, freed once.
        unsafe { sys::IoFreeIrp(slot.irp) };
        // SAFETY: the slot was leaked from a box in `new` and is freed once,
        // here; nothing refers to it any more (no call pending).
        drop(unsafe { Box::from_raw(self.slot.as_ptr()) });
    }
}
