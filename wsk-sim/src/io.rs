//! I/O manager: IRPs (allocation, stack locations, completion, cancel),
//! MDLs, work items, and the fake driver/device objects.
//!
//! A WSK client calls a provider routine directly with an IRP whose
//! `CurrentLocation` is `StackCount + 1` and whose *next* stack location
//! holds its completion routine (`IoSetCompletionRoutine`). Like a real
//! provider, the simulator then takes that next location as its own
//! (`IoSetNextIrpStackLocation`), and completing the IRP walks the stack
//! back up, calling the client's routine with `DeviceObject == NULL`.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use std::collections::BTreeMap;
use std::time::Duration;

use wsk_sys::{
    BOOLEAN, CCHAR, FALSE, IO_STACK_LOCATION, IRP, KPROCESSOR_MODE, LOCK_OPERATION, MDL,
    MDL_ALLOCATED_FIXED_SIZE, MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED,
    MDL_SOURCE_IS_NONPAGED_POOL, MEMORY_CACHING_TYPE, NT_SUCCESS, NTSTATUS, PDEVICE_OBJECT,
    PDRIVER_CANCEL, PIO_STACK_LOCATION, PIO_WORKITEM, PIO_WORKITEM_ROUTINE,
    PIO_WORKITEM_ROUTINE_EX, PIRP, PMDL, PVOID, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR,
    SL_INVOKE_ON_SUCCESS, SL_PENDING_RETURNED, STATUS_CANCELLED, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_PARAMETER, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING, TRUE, ULONG, USHORT,
    WORK_QUEUE_TYPE,
};

use crate::pool::{raw_alloc_zeroed, raw_free};
use crate::script::{CompletionMode, Irql, Routine};
use crate::verifier::{
    self, CallbackKind, DISPATCH_LEVEL, InCallback, IrqlGuard, NoUnwind, Rule, violation,
};
use crate::world::{self, World, wviolation};

/// `IO_TYPE_IRP`, `IO_TYPE_DEVICE`, `IO_TYPE_DRIVER`.
const IO_TYPE_IRP: i16 = 6;
const IO_TYPE_DEVICE: i16 = 3;
const IO_TYPE_DRIVER: i16 = 4;
/// `IRP_QUOTA_CHARGED`, `IRP_ALLOCATED_FIXED_SIZE`.
const IRP_QUOTA_CHARGED: u8 = 0x01;
const IRP_ALLOCATED_FIXED_SIZE: u8 = 0x04;

const IRP_SIZE: usize = core::mem::size_of::<IRP>();
const STACK_SIZE: usize = core::mem::size_of::<IO_STACK_LOCATION>();
/// Size the simulator gives `IO_WORKITEM` (`IoSizeofWorkItem`).
const WORK_ITEM_SIZE: usize = 0x58;
/// Size of the fake `DEVICE_OBJECT` (0x150 on 64-bit Windows).
const DEVICE_OBJECT_SIZE: usize = 0x150;
const DRIVER_OBJECT_SIZE: usize = core::mem::size_of::<wsk_sys::DRIVER_OBJECT>();

/// What the simulator knows about an IRP.
#[derive(Clone, Debug)]
pub(crate) struct IrpRec {
    /// Allocated by `IoAllocateIrp` (so `IoFreeIrp` may free it).
    pub(crate) allocated: bool,
    /// Bytes of the packet.
    pub(crate) size: usize,
    /// The WSK routine that currently owns it.
    pub(crate) owner: Option<&'static str>,
}

/// A pending IRP held by the provider.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    /// Socket whose queues hold it (`None`: client-level request).
    pub(crate) socket: Option<u64>,
    pub(crate) routine: &'static str,
}

#[derive(Clone, Debug)]
pub(crate) struct WorkItemRec {
    pub(crate) allocated: bool,
    pub(crate) io_object: usize,
    pub(crate) queued: bool,
}

/// I/O manager state.
#[derive(Default)]
pub(crate) struct IoState {
    pub(crate) irps: BTreeMap<usize, IrpRec>,
    /// IRPs the provider holds pending, by address.
    pub(crate) pending: BTreeMap<usize, Pending>,
    /// MDLs from `IoAllocateMdl`, with their sizes.
    pub(crate) mdls: BTreeMap<usize, usize>,
    pub(crate) work_items: BTreeMap<usize, WorkItemRec>,
    /// Work items queued or running.
    pub(crate) work_in_flight: u32,
    pub(crate) driver_object: usize,
    pub(crate) device_object: usize,
}

// ---------------------------------------------------------------------------
// Raw IRP access

fn stack_location(irp: PIRP, location: i8) -> PIO_STACK_LOCATION {
    // Location k (1-based) is the (k-1)th entry after the IRP header; k =
    // StackCount + 1 is one past the end (the "current" of a fresh IRP).
    let index = usize::try_from(i32::from(location) - 1).unwrap_or(0);
    irp.cast::<u8>()
        .wrapping_add(IRP_SIZE + index * STACK_SIZE)
        .cast()
}

/// Reads `(*irp).$field`.
macro_rules! irp_get {
    ($irp:expr, $($field:tt)+) => {{
        let p: PIRP = $irp;
        // SAFETY: callers pass an IRP the simulator validated as live.
        unsafe { (*p).$($field)+ }
    }};
}

/// Writes `(*irp).$field = $v`.
macro_rules! irp_set {
    ($irp:expr, $v:expr, $($field:tt)+) => {{
        let p: PIRP = $irp;
        let v = $v;
        // SAFETY: callers pass an IRP the simulator validated as live.
        unsafe { (*p).$($field)+ = v };
    }};
}

fn set_current(irp: PIRP, location: i8) {
    irp_set!(irp, location, CurrentLocation);
    irp_set!(
        irp,
        stack_location(irp, location),
        Tail.Overlay.Stack.CurrentStackLocation
    );
}

fn cancel_slot<'a>(irp: PIRP) -> &'a AtomicPtr<c_void> {
    // SAFETY: only computes the address of a field of a live IRP.
    let field = unsafe { &raw mut (*irp).CancelRoutine };
    // SAFETY: the field is a pointer-sized, aligned slot accessed atomically
    // by everyone while the IRP is cancellable.
    unsafe { AtomicPtr::from_ptr(field.cast()) }
}

fn swap_cancel_routine(irp: PIRP, new: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    let new = new.map_or(ptr::null_mut(), |f| f as *mut c_void);
    let old = cancel_slot(irp).swap(new, Ordering::SeqCst);
    if old.is_null() {
        None
    } else {
        // SAFETY: the slot only holds null or a `PDRIVER_CANCEL` routine.
        Some(unsafe {
            core::mem::transmute::<*mut c_void, unsafe extern "system" fn(PDEVICE_OBJECT, PIRP)>(
                old,
            )
        })
    }
}

fn cancel_flag(irp: PIRP) -> bool {
    // SAFETY: `Cancel` is a byte of a live IRP; other threads write it with
    // single-byte stores (IoCancelIrp), so a volatile read is what C does.
    let field = unsafe { &raw const (*irp).Cancel };
    // SAFETY: as above; the field is readable.
    unsafe { field.read_volatile() != 0 }
}

/// Initializes an IRP in place (`IoInitializeIrp` semantics).
fn init_irp(irp: PIRP, packet_size: usize, stack_size: i8) {
    // SAFETY: callers pass `packet_size` writable bytes at `irp`.
    unsafe { irp.cast::<u8>().write_bytes(0, packet_size) };
    irp_set!(irp, IO_TYPE_IRP, Type);
    irp_set!(irp, u16::try_from(packet_size).unwrap_or(u16::MAX), Size);
    irp_set!(irp, stack_size, StackCount);
    // SAFETY: only computes a field address of the IRP.
    let list = unsafe { &raw mut (*irp).ThreadListEntry };
    irp_set!(irp, list, ThreadListEntry.Flink);
    irp_set!(irp, list, ThreadListEntry.Blink);
    set_current(irp, stack_size.saturating_add(1));
}

// ---------------------------------------------------------------------------
// IRP routines

/// `IoAllocateIrp`: allocates and initializes an IRP with `StackSize`
/// stack locations. NULL when a test injected an allocation failure.
///
/// # Safety
///
/// Free the IRP with [`IoFreeIrp`] once no driver owns it.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoAllocateIrp(StackSize: CCHAR, ChargeQuota: BOOLEAN) -> PIRP {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("IoAllocateIrp", DISPATCH_LEVEL);
    if StackSize < 1 {
        violation!(Rule::Parameter, "IoAllocateIrp with StackSize {StackSize}");
        return ptr::null_mut();
    }
    let size = usize::from(wsk_sys::IoSizeOfIrp(StackSize));
    let mut w = world::lock();
    if w.faults.take_alloc_failure(Routine::IoAllocateIrp) {
        return ptr::null_mut();
    }
    let irp: PIRP = raw_alloc_zeroed(size).cast();
    init_irp(irp, size, StackSize);
    let mut flags = IRP_ALLOCATED_FIXED_SIZE;
    if ChargeQuota != FALSE {
        flags |= IRP_QUOTA_CHARGED;
    }
    irp_set!(irp, flags, AllocationFlags);
    w.io.irps.insert(
        irp as usize,
        IrpRec {
            allocated: true,
            size,
            owner: None,
        },
    );
    irp
}

/// `IoFreeIrp`: frees an IRP from [`IoAllocateIrp`].
///
/// # Safety
///
/// `Irp` must come from `IoAllocateIrp` and no driver may own it.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoFreeIrp(Irp: PIRP) {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("IoFreeIrp", DISPATCH_LEVEL);
    let mut w = world::lock();
    let Some(rec) = w.io.irps.get(&(Irp as usize)).cloned() else {
        wviolation!(
            w,
            Rule::DoubleFree,
            "IoFreeIrp({Irp:p}): not a live IRP (freed twice, or never allocated)"
        );
        return;
    };
    if !rec.allocated {
        wviolation!(
            w,
            Rule::DoubleFree,
            "IoFreeIrp({Irp:p}) on an IRP initialized with IoInitializeIrp in caller memory"
        );
        return;
    }
    if let Some(owner) = rec.owner {
        wviolation!(
            w,
            Rule::Irp,
            "IoFreeIrp({Irp:p}) while {owner} still owns it (the IRP has not completed)"
        );
        return;
    }
    w.io.irps.remove(&(Irp as usize));
    drop(w);
    // SAFETY: the IRP came from `IoAllocateIrp` with this size and is no
    // longer tracked.
    unsafe { raw_free(Irp.cast(), rec.size) };
}

/// `IoInitializeIrp`: initializes an IRP in caller-owned memory of
/// `PacketSize` bytes (at least `IoSizeOfIrp(StackSize)`).
///
/// # Safety
///
/// `Irp` must point to `PacketSize` writable, 16-aligned bytes.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoInitializeIrp(Irp: PIRP, PacketSize: USHORT, StackSize: CCHAR) {
    let _g = NoUnwind::enter();
    if Irp.is_null() || StackSize < 1 {
        violation!(
            Rule::Parameter,
            "IoInitializeIrp({Irp:p}, {PacketSize}, {StackSize})"
        );
        return;
    }
    if PacketSize < wsk_sys::IoSizeOfIrp(StackSize) {
        violation!(
            Rule::Parameter,
            "IoInitializeIrp: PacketSize {PacketSize} < IoSizeOfIrp({StackSize}) = {}",
            wsk_sys::IoSizeOfIrp(StackSize)
        );
        return;
    }
    let mut w = world::lock();
    match w.io.irps.get(&(Irp as usize)) {
        Some(IrpRec {
            owner: Some(owner), ..
        }) => {
            let owner = *owner;
            wviolation!(
                w,
                Rule::Irp,
                "IoInitializeIrp({Irp:p}) while {owner} still owns the IRP"
            );
            return;
        }
        Some(IrpRec {
            allocated: true, ..
        }) => {
            // Re-initializing an allocated IRP: keep tracking it as such.
        }
        _ => {
            w.io.irps.insert(
                Irp as usize,
                IrpRec {
                    allocated: false,
                    size: usize::from(PacketSize),
                    owner: None,
                },
            );
        }
    }
    w.stats.irps_initialized += 1;
    drop(w);
    init_irp(Irp, usize::from(PacketSize), StackSize);
}

/// `IoReuseIrp`: re-initializes a completed IRP for another request and sets
/// `IoStatus.Status` to `Iostatus`.
///
/// # Safety
///
/// `Irp` must be a live IRP no driver owns.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoReuseIrp(Irp: PIRP, Iostatus: NTSTATUS) {
    let _g = NoUnwind::enter();
    let mut w = world::lock();
    let Some(rec) = w.io.irps.get(&(Irp as usize)).cloned() else {
        wviolation!(w, Rule::Irp, "IoReuseIrp({Irp:p}): not a live IRP");
        return;
    };
    if let Some(owner) = rec.owner {
        wviolation!(
            w,
            Rule::Irp,
            "IoReuseIrp({Irp:p}) while {owner} still owns it"
        );
        return;
    }
    w.stats.irps_reused += 1;
    drop(w);
    let flags = irp_get!(Irp, AllocationFlags);
    let size = usize::from(irp_get!(Irp, Size));
    let stack = irp_get!(Irp, StackCount);
    init_irp(Irp, size, stack);
    irp_set!(Irp, flags, AllocationFlags);
    irp_set!(Irp, Iostatus, IoStatus.Status);
}

/// `IoCancelIrp`: sets `Cancel` and calls the IRP's cancel routine, if any
/// (the provider's completes the IRP with `STATUS_CANCELLED`). Returns
/// whether a cancel routine was called.
///
/// # Safety
///
/// `Irp` must be a live IRP.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoCancelIrp(Irp: PIRP) -> BOOLEAN {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("IoCancelIrp", DISPATCH_LEVEL);
    {
        let mut w = world::lock();
        if !w.io.irps.contains_key(&(Irp as usize)) {
            wviolation!(w, Rule::Irp, "IoCancelIrp({Irp:p}): not a live IRP");
            return FALSE;
        }
        w.stats.cancel_calls += 1;
    }
    // SAFETY: `Cancel` is a byte of the live IRP (see `cancel_flag`).
    let field = unsafe { &raw mut (*Irp).Cancel };
    // SAFETY: as above; the field is writable.
    unsafe { field.write_volatile(TRUE) };
    let Some(routine) = swap_cancel_routine(Irp, None) else {
        return FALSE;
    };
    // Acquire the (simulated) cancel spin lock: raise to DISPATCH_LEVEL; the
    // cancel routine releases it by restoring `CancelIrql`.
    let old = verifier::set_irql(DISPATCH_LEVEL.max(verifier::irql()));
    irp_set!(Irp, old, CancelIrql);
    let dev = stack_location(Irp, irp_get!(Irp, CurrentLocation));
    // SAFETY: the current location is inside the IRP while a driver owns it.
    let dev = unsafe { (*dev).DeviceObject };
    {
        let _cb = InCallback::enter(CallbackKind::Other);
        // SAFETY: the routine was installed for this IRP by its owner.
        unsafe { routine(dev, Irp) };
    }
    verifier::set_irql(old);
    TRUE
}

/// `IofCompleteRequest` (`IoCompleteRequest`): completes an IRP, calling
/// each completion routine from the current stack location up, honouring
/// `SL_INVOKE_ON_*` and `STATUS_MORE_PROCESSING_REQUIRED`.
///
/// # Safety
///
/// `Irp` must be a live IRP the caller owns, with `IoStatus` set.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IofCompleteRequest(Irp: PIRP, PriorityBoost: CCHAR) {
    let _g = NoUnwind::enter();
    let _ = PriorityBoost;
    verifier::check_irql_max("IoCompleteRequest", DISPATCH_LEVEL);
    complete_request(Irp);
}

/// `IofCallDriver` (`IoCallDriver`): makes the next stack location current
/// and calls the target driver's dispatch routine for its `MajorFunction`
/// (from the `DRIVER_OBJECT` of [`Sim::device_object`](crate::Sim::device_object),
/// which a test may fill in). Completes with `STATUS_INVALID_DEVICE_REQUEST`
/// when there is none.
///
/// # Safety
///
/// `DeviceObject` must be the simulator's device object and `Irp` a live IRP
/// with its next stack location set up.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IofCallDriver(DeviceObject: PDEVICE_OBJECT, Irp: PIRP) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("IoCallDriver", DISPATCH_LEVEL);
    let loc = irp_get!(Irp, CurrentLocation);
    if loc <= 1 {
        violation!(
            Rule::Irp,
            "IoCallDriver({Irp:p}) with no stack location left (NO_MORE_IRP_STACK_LOCATIONS)"
        );
        return STATUS_INVALID_PARAMETER;
    }
    set_current(Irp, loc - 1);
    let sp = stack_location(Irp, loc - 1);
    // SAFETY: `sp` is the new current stack location of the live IRP.
    unsafe { (*sp).DeviceObject = DeviceObject };
    // SAFETY: as above.
    let major = usize::from(unsafe { (*sp).MajorFunction });
    let driver = if DeviceObject.is_null() {
        ptr::null_mut()
    } else {
        let field = DeviceObject
            .cast::<u8>()
            .wrapping_add(8)
            .cast::<*mut wsk_sys::DRIVER_OBJECT>();
        // SAFETY: DEVICE_OBJECT.DriverObject is the pointer at offset 8 of
        // the device object the simulator allocated.
        unsafe { field.read_unaligned() }
    };
    let dispatch = if driver.is_null() || major > 0x1b {
        None
    } else {
        // SAFETY: `driver` is the simulator's driver object.
        unsafe { (*driver).MajorFunction[major] }
    };
    if let Some(f) = dispatch {
        let _cb = InCallback::enter(CallbackKind::Other);
        // SAFETY: the test installed this dispatch routine.
        unsafe { f(DeviceObject, Irp) }
    } else {
        irp_set!(Irp, STATUS_INVALID_DEVICE_REQUEST, IoStatus.Status);
        irp_set!(Irp, 0, IoStatus.Information);
        complete_request(Irp);
        STATUS_INVALID_DEVICE_REQUEST
    }
}

/// The completion walk shared by `IofCompleteRequest` and the provider.
fn complete_request(irp: PIRP) {
    if irp.is_null() {
        violation!(Rule::Parameter, "IoCompleteRequest(NULL)");
        return;
    }
    let stack_count = irp_get!(irp, StackCount);
    let loc = irp_get!(irp, CurrentLocation);
    if loc > stack_count {
        violation!(
            Rule::Irp,
            "IRP {irp:p} completed twice (CurrentLocation {loc} > StackCount {stack_count}: \
             MULTIPLE_IRP_COMPLETE_REQUESTS)"
        );
        return;
    }
    if irp_get!(irp, IoStatus.Status) == STATUS_PENDING {
        violation!(Rule::Irp, "IRP {irp:p} completed with STATUS_PENDING");
    }
    if swap_cancel_routine(irp, None).is_some() {
        violation!(
            Rule::Irp,
            "IRP {irp:p} completed with its cancel routine still set"
        );
    }
    loop {
        let loc = irp_get!(irp, CurrentLocation);
        if loc > stack_count {
            break;
        }
        let sp = stack_location(irp, loc);
        // SAFETY: `sp` is the current location of the live IRP.
        let cur = unsafe { sp.read() };
        let (control, routine, context) = (cur.Control, cur.CompletionRoutine, cur.Context);
        irp_set!(
            irp,
            u8::from(control & SL_PENDING_RETURNED != 0),
            PendingReturned
        );
        // Pop the location and clear it, as the I/O manager does.
        set_current(irp, loc + 1);
        // SAFETY: as above.
        unsafe {
            (*sp).Control = 0;
        }
        // SAFETY: as above.
        unsafe {
            (*sp).CompletionRoutine = None;
        }
        // SAFETY: as above.
        unsafe {
            (*sp).Context = ptr::null_mut();
        }
        let status = irp_get!(irp, IoStatus.Status);
        let invoke = (NT_SUCCESS(status) && control & SL_INVOKE_ON_SUCCESS != 0)
            || (!NT_SUCCESS(status) && control & SL_INVOKE_ON_ERROR != 0)
            || (cancel_flag(irp) && control & SL_INVOKE_ON_CANCEL != 0);
        match routine {
            Some(f) if invoke => {
                let dev = if loc + 1 > stack_count {
                    ptr::null_mut()
                } else {
                    let up = stack_location(irp, loc + 1);
                    // SAFETY: `up` is a stack location inside the live IRP.
                    unsafe { (*up).DeviceObject }
                };
                let r = {
                    let _cb = InCallback::enter(CallbackKind::Completion);
                    // SAFETY: the owner of this location installed the
                    // routine for this IRP.
                    unsafe { f(dev, irp, context) }
                };
                if r == STATUS_MORE_PROCESSING_REQUIRED {
                    return;
                }
                // The routine let completion continue: the IRP must still
                // be live.
                if !world::lock().io.irps.contains_key(&(irp as usize)) {
                    violation!(
                        Rule::Irp,
                        "IRP {irp:p} freed by a completion routine that returned {r:#x} \
                         instead of STATUS_MORE_PROCESSING_REQUIRED"
                    );
                    return;
                }
            }
            _ => {
                if control & SL_PENDING_RETURNED != 0 && loc < stack_count {
                    let up = stack_location(irp, loc + 1);
                    // SAFETY: `up` is a stack location inside the live IRP.
                    unsafe { (*up).Control |= SL_PENDING_RETURNED };
                }
            }
        }
    }
    // Every location is done: the I/O manager would now complete the IRP to
    // its thread, which a driver-allocated IRP does not have.
    violation!(
        Rule::Irp,
        "IRP {irp:p} completed back to the I/O manager: a driver-allocated IRP needs a \
         completion routine that returns STATUS_MORE_PROCESSING_REQUIRED"
    );
}

// ---------------------------------------------------------------------------
// Provider side

/// Takes ownership of a client IRP at the start of a provider routine:
/// validates it, consumes its next stack location and marks it owned.
///
/// On `Err` the routine returns the status without completing the IRP.
pub(crate) fn irp_enter(irp: PIRP, routine: &'static str) -> Result<(), NTSTATUS> {
    if irp.is_null() {
        violation!(Rule::Parameter, "{routine} with a NULL IRP");
        return Err(STATUS_INVALID_PARAMETER);
    }
    let mut w = world::lock();
    let Some(rec) = w.io.irps.get_mut(&(irp as usize)) else {
        wviolation!(
            w,
            Rule::Irp,
            "{routine}: IRP {irp:p} was not created by IoAllocateIrp/IoInitializeIrp (or was freed)"
        );
        return Err(STATUS_INVALID_PARAMETER);
    };
    if let Some(owner) = rec.owner {
        wviolation!(
            w,
            Rule::Irp,
            "{routine}: IRP {irp:p} is still owned by a pending {owner}"
        );
        return Err(STATUS_INVALID_PARAMETER);
    }
    let loc = irp_get!(irp, CurrentLocation);
    let count = irp_get!(irp, StackCount);
    if irp_get!(irp, Type) != IO_TYPE_IRP || loc > count.saturating_add(1) {
        wviolation!(w, Rule::Irp, "{routine}: {irp:p} is not an initialized IRP");
        return Err(STATUS_INVALID_PARAMETER);
    }
    if loc <= 1 {
        wviolation!(
            w,
            Rule::Irp,
            "{routine}: IRP {irp:p} has no stack location left for the WSK subsystem \
             (NO_MORE_IRP_STACK_LOCATIONS)"
        );
        return Err(STATUS_INVALID_PARAMETER);
    }
    let next = stack_location(irp, loc - 1);
    // SAFETY: `next` is inside the live IRP (loc - 1 >= 1).
    let next = unsafe { next.read() };
    let (control, routine_ptr) = (next.Control, next.CompletionRoutine);
    let all = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
    if routine_ptr.is_none() || control & all != all {
        wviolation!(
            w,
            Rule::Irp,
            "{routine}: IRP {irp:p} has no IoCompletion routine invoked on success, error and \
             cancel (set it with IoSetCompletionRoutine(.., TRUE, TRUE, TRUE))"
        );
        return Err(STATUS_INVALID_PARAMETER);
    }
    if let Some(rec) = w.io.irps.get_mut(&(irp as usize)) {
        rec.owner = Some(routine);
    }
    drop(w);
    set_current(irp, loc - 1);
    irp_set!(irp, 0, IoStatus.Information);
    Ok(())
}

/// Marks the current location pending (`IoMarkIrpPending`).
pub(crate) fn irp_mark_pending(irp: PIRP) {
    let sp = stack_location(irp, irp_get!(irp, CurrentLocation));
    // SAFETY: the current location of an IRP the provider owns.
    unsafe { (*sp).Control |= SL_PENDING_RETURNED };
}

/// The provider's cancel routine: completes the IRP with `STATUS_CANCELLED`
/// if it is still pending.
unsafe extern "system" fn provider_cancel(_dev: PDEVICE_OBJECT, irp: PIRP) {
    let _g = NoUnwind::enter();
    // Release the cancel spin lock.
    verifier::set_irql(irp_get!(irp, CancelIrql));
    let found = {
        let mut w = world::lock();
        match w.io.pending.remove(&(irp as usize)) {
            Some(p) => {
                if let Some(s) = p.socket {
                    crate::net::forget_irp(&mut w, s, irp as usize);
                }
                true
            }
            None => false,
        }
    };
    if found {
        finish_now(irp, STATUS_CANCELLED, 0);
    }
}

/// Registers a pending IRP: marks it pending, records where it waits and
/// installs the cancel routine (unless the test ignores cancellation).
///
/// Returns `false` if the IRP was already cancelled: the caller must then
/// complete it with `STATUS_CANCELLED` itself (it is no longer registered).
pub(crate) fn irp_pend(w: &mut World, irp: PIRP, pending: Pending) -> bool {
    irp_mark_pending(irp);
    w.io.pending.insert(irp as usize, pending);
    if w.cfg.ignore_cancel {
        return true;
    }
    swap_cancel_routine(irp, Some(provider_cancel));
    if cancel_flag(irp) && swap_cancel_routine(irp, None).is_some() {
        // Cancelled before the routine was installed: ours to complete.
        w.io.pending.remove(&(irp as usize));
        return false;
    }
    true
}

/// A finished request to complete once the world lock is released.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Done {
    pub(crate) irp: usize,
    pub(crate) status: NTSTATUS,
    pub(crate) info: usize,
}

/// Removes a pending IRP from the provider's books so that it can be
/// completed: clears its cancel routine. Returns `false` if it is no longer
/// pending (already cancelled or completed).
pub(crate) fn irp_unpend(w: &mut World, irp: usize) -> bool {
    if w.io.pending.remove(&irp).is_none() {
        return false;
    }
    swap_cancel_routine(irp as PIRP, None);
    true
}

/// Completes a pending IRP the provider finished later (data arrived,
/// socket closed, …): inline on this thread once the lock is released
/// (pushed to `out`), or deferred per the completion mode.
pub(crate) fn finish_pending(
    w: &mut World,
    irp: usize,
    status: NTSTATUS,
    info: usize,
    out: &mut Vec<Done>,
) {
    if !irp_unpend(w, irp) {
        return;
    }
    match pick_mode(w) {
        CompletionMode::Inline | CompletionMode::InlineReturnPending => {
            out.push(Done { irp, status, info });
        }
        _ => {
            world::defer(w, Box::new(move || finish_now(irp as PIRP, status, info)));
        }
    }
}

/// The completion mode for one request: drawn by the adversary (unless the
/// test set one with [`Sim::set_completion_mode`](crate::Sim::set_completion_mode))
/// ([`Behaviour::CompletionMix`](crate::Behaviour::CompletionMix): inside
/// the call returning the final status, inside the call returning
/// `STATUS_PENDING`, or later on the worker thread), drawn from the PRNG
/// when seeded, or the configured one.
pub(crate) fn pick_mode(w: &mut World) -> CompletionMode {
    if w.adversary(crate::Behaviour::CompletionMix) && !w.pinned.0 {
        return match w.adv_rng.below(3) {
            0 => CompletionMode::Inline,
            1 => CompletionMode::InlineReturnPending,
            _ => CompletionMode::Worker,
        };
    }
    if w.cfg.seed.is_some() {
        match w.rng.below(3) {
            0 => CompletionMode::Inline,
            1 => CompletionMode::InlineReturnPending,
            _ => CompletionMode::Worker,
        }
    } else {
        w.cfg.completion
    }
}

/// The IRQL of one completion routine: any level up to `DISPATCH_LEVEL`
/// under [`Behaviour::IrqlMix`](crate::Behaviour::IrqlMix), which
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-io_completion_routine>
/// allows.
fn pick_completion_irql(w: &mut World) -> Irql {
    if w.adversary(crate::Behaviour::IrqlMix) && !w.pinned.1 {
        return Irql::any(&mut w.adv_rng);
    }
    if w.cfg.seed.is_some() {
        if w.rng.below(2) == 0 {
            Irql::Passive
        } else {
            Irql::Dispatch
        }
    } else {
        w.cfg.completion_irql
    }
}

/// Completes an IRP the provider owns, now, on this thread (no lock held).
pub(crate) fn finish_now(irp: PIRP, status: NTSTATUS, info: usize) {
    swap_cancel_routine(irp, None);
    irp_set!(irp, status, IoStatus.Status);
    irp_set!(irp, info, IoStatus.Information);
    let level = {
        let mut w = world::lock();
        if let Some(rec) = w.io.irps.get_mut(&(irp as usize)) {
            rec.owner = None;
        }
        w.stats.irps_completed += 1;
        if status == STATUS_CANCELLED {
            w.stats.irps_cancelled += 1;
        }
        let level = pick_completion_irql(&mut w);
        w.notify();
        level
    };
    let _irql = IrqlGuard::raise_to(level.level());
    complete_request(irp);
}

/// Runs completions collected under the lock.
pub(crate) fn run_done(done: Vec<Done>) {
    for d in done {
        finish_now(d.irp as PIRP, d.status, d.info);
    }
}

/// Ends a provider routine whose operation finished at once: completes the
/// IRP as the completion mode says and returns what the routine returns.
pub(crate) fn complete_dispatch(irp: PIRP, status: NTSTATUS, info: usize) -> NTSTATUS {
    let mode = pick_mode(&mut world::lock());
    match mode {
        CompletionMode::Inline => {
            finish_now(irp, status, info);
            status
        }
        CompletionMode::InlineReturnPending => {
            irp_mark_pending(irp);
            finish_now(irp, status, info);
            STATUS_PENDING
        }
        _ => {
            irp_mark_pending(irp);
            let addr = irp as usize;
            let mut w = world::lock();
            world::defer(
                &mut w,
                Box::new(move || finish_now(addr as PIRP, status, info)),
            );
            STATUS_PENDING
        }
    }
}

// ---------------------------------------------------------------------------
// MDLs

/// `IoAllocateMdl`: allocates an MDL describing `Length` bytes at
/// `VirtualAddress` (`StartVa` page-aligned, `ByteOffset` the rest). With an
/// `Irp`, sets `Irp->MdlAddress` or appends to its chain (`SecondaryBuffer`).
///
/// # Safety
///
/// Free with [`IoFreeMdl`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoAllocateMdl(
    VirtualAddress: PVOID,
    Length: ULONG,
    SecondaryBuffer: BOOLEAN,
    ChargeQuota: BOOLEAN,
    Irp: PIRP,
) -> PMDL {
    let _g = NoUnwind::enter();
    let _ = ChargeQuota;
    verifier::check_irql_max("IoAllocateMdl", DISPATCH_LEVEL);
    let va = VirtualAddress.cast::<u8>();
    let offset = (va as usize) & 0xFFF;
    let pages = (offset + Length as usize).div_ceil(0x1000);
    let size = core::mem::size_of::<MDL>() + pages * 8;
    let mdl: PMDL = {
        let mut w = world::lock();
        if w.faults.take_alloc_failure(Routine::IoAllocateMdl) {
            return ptr::null_mut();
        }
        let m: PMDL = raw_alloc_zeroed(size).cast();
        w.io.mdls.insert(m as usize, size);
        m
    };
    let header = MDL {
        Next: ptr::null_mut(),
        Size: i16::try_from(size).unwrap_or(i16::MAX),
        MdlFlags: MDL_ALLOCATED_FIXED_SIZE,
        Process: ptr::null_mut(),
        MappedSystemVa: ptr::null_mut(),
        StartVa: va.wrapping_sub(offset).cast(),
        ByteCount: Length,
        ByteOffset: u32::try_from(offset).unwrap_or(0),
    };
    // SAFETY: `mdl` is a fresh allocation of at least `size_of::<MDL>()`.
    unsafe { mdl.write(header) };
    if !Irp.is_null() {
        if SecondaryBuffer == FALSE {
            irp_set!(Irp, mdl, MdlAddress);
        } else {
            let mut tail = irp_get!(Irp, MdlAddress);
            if tail.is_null() {
                irp_set!(Irp, mdl, MdlAddress);
            } else {
                loop {
                    // SAFETY: the IRP's MDL chain consists of valid MDLs.
                    let next = unsafe { (*tail).Next };
                    if next.is_null() {
                        break;
                    }
                    tail = next;
                }
                // SAFETY: `tail` is the last valid MDL of the chain.
                unsafe { (*tail).Next = mdl };
            }
        }
    }
    mdl
}

/// `IoFreeMdl`: frees an MDL from [`IoAllocateMdl`].
///
/// # Safety
///
/// `Mdl` must come from `IoAllocateMdl` and no pending request may use it.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoFreeMdl(Mdl: PMDL) {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("IoFreeMdl", DISPATCH_LEVEL);
    let mut w = world::lock();
    let Some(size) = w.io.mdls.get(&(Mdl as usize)).copied() else {
        wviolation!(
            w,
            Rule::DoubleFree,
            "IoFreeMdl({Mdl:p}): not a live MDL from IoAllocateMdl (freed twice?)"
        );
        return;
    };
    if let Some(user) = crate::net::mdl_in_use(&w, Mdl as usize) {
        wviolation!(
            w,
            Rule::Mdl,
            "IoFreeMdl({Mdl:p}) while a pending {user} still uses it"
        );
        return;
    }
    w.io.mdls.remove(&(Mdl as usize));
    drop(w);
    // SAFETY: allocated by `IoAllocateMdl` with this size; no longer tracked.
    unsafe { raw_free(Mdl.cast(), size) };
}

fn fill_pfns(mdl: PMDL) {
    // SAFETY: `mdl` is a valid MDL header.
    let m = unsafe { mdl.read() };
    let (start, count, offset, size) = (m.StartVa, m.ByteCount, m.ByteOffset, m.Size);
    let pages = (offset as usize + count as usize).div_ceil(0x1000);
    let room = (usize::try_from(size).unwrap_or(0)).saturating_sub(core::mem::size_of::<MDL>()) / 8;
    let pfns = mdl.cast::<u8>().wrapping_add(core::mem::size_of::<MDL>());
    for i in 0..pages.min(room) {
        let pfn = ((start as usize) >> 12) as u64 + i as u64;
        let slot = pfns.wrapping_add(i * 8).cast::<u64>();
        // SAFETY: `i < room`: inside the MDL's page array.
        unsafe { slot.write_unaligned(pfn) };
    }
}

/// `MmBuildMdlForNonPagedPool`: fills the page array and maps the MDL
/// (`MappedSystemVa = StartVa + ByteOffset`, `MDL_SOURCE_IS_NONPAGED_POOL`).
///
/// # Safety
///
/// `MemoryDescriptorList` must be a valid MDL over non-paged memory.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: PMDL) {
    let _g = NoUnwind::enter();
    let mdl = MemoryDescriptorList;
    if mdl.is_null() {
        violation!(Rule::Parameter, "MmBuildMdlForNonPagedPool(NULL)");
        return;
    }
    fill_pfns(mdl);
    // SAFETY: `mdl` is a valid MDL header.
    let m = unsafe { mdl.read() };
    let (start, offset) = (m.StartVa, m.ByteOffset);
    // SAFETY: as above.
    unsafe { (*mdl).MappedSystemVa = start.cast::<u8>().wrapping_add(offset as usize).cast() };
    // SAFETY: as above.
    unsafe { (*mdl).MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL };
}

/// `MmProbeAndLockPages`: marks the MDL's pages locked (host memory is
/// always resident).
///
/// # Safety
///
/// `MemoryDescriptorList` must be a valid MDL over valid memory.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn MmProbeAndLockPages(
    MemoryDescriptorList: PMDL,
    AccessMode: KPROCESSOR_MODE,
    Operation: LOCK_OPERATION,
) {
    let _g = NoUnwind::enter();
    let _ = (AccessMode, Operation);
    verifier::check_irql_max("MmProbeAndLockPages", DISPATCH_LEVEL);
    let mdl = MemoryDescriptorList;
    fill_pfns(mdl);
    // SAFETY: `mdl` is a valid MDL header.
    unsafe { (*mdl).MdlFlags |= MDL_PAGES_LOCKED };
}

/// `MmUnlockPages`: clears the locked state.
///
/// # Safety
///
/// `MemoryDescriptorList` must be a valid, locked MDL.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn MmUnlockPages(MemoryDescriptorList: PMDL) {
    let _g = NoUnwind::enter();
    let mdl = MemoryDescriptorList;
    // SAFETY: `mdl` is a valid MDL header.
    let flags = unsafe { (*mdl).MdlFlags };
    if flags & MDL_PAGES_LOCKED == 0 {
        violation!(
            Rule::Mdl,
            "MmUnlockPages({mdl:p}) on an MDL that is not locked"
        );
        return;
    }
    // SAFETY: as above.
    unsafe { (*mdl).MdlFlags &= !(MDL_PAGES_LOCKED | MDL_MAPPED_TO_SYSTEM_VA) };
}

/// `MmMapLockedPagesSpecifyCache`: maps a locked MDL (returns
/// `StartVa + ByteOffset`, sets `MDL_MAPPED_TO_SYSTEM_VA`).
///
/// Returns NULL instead — as Microsoft documents for a `KernelMode` mapping
/// with `BugCheckOnFailure == FALSE` when resources are short
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmmaplockedpagesspecifycache>)
/// — after [`Sim::fail_next`](crate::Sim::fail_next)`(Routine::MmMapLockedPagesSpecifyCache, _)`
/// and on a seeded fraction of calls under
/// [`Behaviour::MappingFailures`](crate::Behaviour::MappingFailures).
/// `MmGetSystemAddressForMdlSafe` calls it for every MDL not yet mapped.
///
/// Verifier: `BugCheckOnFailure` must be FALSE (the page requires it of
/// drivers, [`PARAMETER`](Rule::Parameter)), and a second
/// system-space mapping of an MDL — one already mapped or built by
/// `MmBuildMdlForNonPagedPool` — is an [`MDL`](Rule::Mdl) violation (the
/// page forbids both).
///
/// # Safety
///
/// `MemoryDescriptorList` must be a valid, locked MDL.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn MmMapLockedPagesSpecifyCache(
    MemoryDescriptorList: PMDL,
    AccessMode: KPROCESSOR_MODE,
    CacheType: MEMORY_CACHING_TYPE,
    RequestedAddress: PVOID,
    BugCheckOnFailure: ULONG,
    Priority: ULONG,
) -> PVOID {
    let _g = NoUnwind::enter();
    let _ = (CacheType, RequestedAddress, Priority);
    let kernel = AccessMode == wsk_sys::KernelMode;
    let max = if kernel {
        DISPATCH_LEVEL
    } else {
        verifier::APC_LEVEL
    };
    verifier::check_irql_max("MmMapLockedPagesSpecifyCache", max);
    let mdl = MemoryDescriptorList;
    // SAFETY: `mdl` is a valid MDL header.
    let m = unsafe { mdl.read() };
    let (flags, start, offset) = (m.MdlFlags, m.StartVa, m.ByteOffset);
    if flags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
        violation!(
            Rule::Mdl,
            "MmMapLockedPagesSpecifyCache({mdl:p}) on an MDL whose pages are not locked"
        );
        return ptr::null_mut();
    }
    if BugCheckOnFailure != 0 {
        violation!(
            Rule::Parameter,
            "MmMapLockedPagesSpecifyCache({mdl:p}) with BugCheckOnFailure TRUE (drivers must pass \
             FALSE)"
        );
    }
    if kernel && flags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        violation!(
            Rule::Mdl,
            "MmMapLockedPagesSpecifyCache({mdl:p}): a second system-space mapping of an MDL \
             already mapped or built by MmBuildMdlForNonPagedPool (use \
             MmGetSystemAddressForMdlSafe)"
        );
        return m.MappedSystemVa;
    }
    if kernel && BugCheckOnFailure == 0 {
        let mut w = world::lock();
        let fail = w
            .faults
            .take_alloc_failure(Routine::MmMapLockedPagesSpecifyCache)
            || {
                let rate = w
                    .cfg
                    .adversary
                    .filter(|a| a.has(crate::Behaviour::MappingFailures))
                    .map_or(0, |a| a.mapping_failure_rate());
                rate != 0 && w.adversary_chance(rate)
            };
        if fail {
            w.stats.mapping_failures += 1;
            return ptr::null_mut();
        }
    }
    let va: PVOID = start.cast::<u8>().wrapping_add(offset as usize).cast();
    // SAFETY: as above.
    unsafe { (*mdl).MappedSystemVa = va };
    // SAFETY: as above.
    unsafe { (*mdl).MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA };
    va
}

/// `MmUnmapLockedPages`: undoes [`MmMapLockedPagesSpecifyCache`].
///
/// # Safety
///
/// `MemoryDescriptorList` must be a valid, mapped MDL.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn MmUnmapLockedPages(BaseAddress: PVOID, MemoryDescriptorList: PMDL) {
    let _g = NoUnwind::enter();
    let _ = BaseAddress;
    let mdl = MemoryDescriptorList;
    // SAFETY: `mdl` is a valid MDL header.
    unsafe { (*mdl).MdlFlags &= !MDL_MAPPED_TO_SYSTEM_VA };
}

/// One contiguous piece of a `WSK_BUF`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Seg {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

// SAFETY: a `Seg` describes client memory the client keeps valid until its
// request completes; the simulator only touches it under the world lock or
// while completing that request, from whichever thread does so (as a real
// provider does from any processor).
unsafe impl Send for Seg {}

/// Resolves a `WSK_BUF` (MDL chain, offset into the first MDL, length) into
/// memory segments; `Err` describes the violation.
pub(crate) fn buf_segments(
    mdl: PMDL,
    offset: usize,
    length: usize,
    routine: &str,
) -> Result<(Vec<Seg>, Vec<usize>), String> {
    let mut segs = Vec::new();
    let mut mdls = Vec::new();
    let mut remaining = length;
    let mut cur = mdl;
    let mut skip = offset;
    let mut first = true;
    while remaining > 0 {
        if cur.is_null() {
            return Err(format!(
                "{routine}: WSK_BUF of {length} bytes at offset {offset} exceeds its MDL chain"
            ));
        }
        // SAFETY: the client passes a chain of valid MDLs.
        let m = unsafe { cur.read() };
        mdls.push(cur as usize);
        let base: *mut u8 =
            if m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
                m.MappedSystemVa.cast()
            } else if m.MdlFlags & MDL_PAGES_LOCKED != 0 {
                m.StartVa.cast::<u8>().wrapping_add(m.ByteOffset as usize)
            } else {
                return Err(format!(
                    "{routine}: MDL {cur:p} is neither locked (MmProbeAndLockPages) nor built for \
                 non-paged pool (MmBuildMdlForNonPagedPool)"
                ));
            };
        let count = m.ByteCount as usize;
        if first && skip > count {
            return Err(format!(
                "{routine}: WSK_BUF.Offset {offset} lies beyond the first MDL ({count} bytes)"
            ));
        }
        first = false;
        let avail = count.saturating_sub(skip);
        let take = avail.min(remaining);
        if take > 0 {
            segs.push(Seg {
                ptr: base.wrapping_add(skip),
                len: take,
            });
        }
        remaining -= take;
        skip = 0;
        cur = m.Next;
    }
    Ok((segs, mdls))
}

/// Copies `data` into segments; returns bytes copied.
pub(crate) fn copy_to_segs(segs: &[Seg], data: &[u8]) -> usize {
    let mut done = 0;
    for s in segs {
        if done == data.len() {
            break;
        }
        let n = s.len.min(data.len() - done);
        // SAFETY: each segment is writable client memory of `s.len` bytes
        // (validated MDL), disjoint from `data` (simulator memory).
        unsafe { ptr::copy_nonoverlapping(data[done..].as_ptr(), s.ptr, n) };
        done += n;
    }
    done
}

/// Reads all bytes of the segments.
pub(crate) fn read_segs(segs: &[Seg]) -> Vec<u8> {
    let mut v = Vec::with_capacity(segs.iter().map(|s| s.len).sum());
    for s in segs {
        // SAFETY: each segment is readable client memory of `s.len` bytes.
        v.extend_from_slice(unsafe { core::slice::from_raw_parts(s.ptr, s.len) });
    }
    v
}

// ---------------------------------------------------------------------------
// Work items

fn work_item_rec_check(w: &mut World, item: PIO_WORKITEM, routine: &str) -> Option<WorkItemRec> {
    let rec = w.io.work_items.get(&(item as usize)).cloned();
    if rec.is_none() {
        wviolation!(
            w,
            Rule::WorkItem,
            "{routine}({item:p}): not an allocated or initialized work item"
        );
    }
    rec
}

/// `IoAllocateWorkItem`: allocates a work item for `DeviceObject`.
///
/// # Safety
///
/// Free with [`IoFreeWorkItem`] once it is not queued.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoAllocateWorkItem(DeviceObject: PDEVICE_OBJECT) -> PIO_WORKITEM {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("IoAllocateWorkItem", DISPATCH_LEVEL);
    let mut w = world::lock();
    if w.faults.take_alloc_failure(Routine::IoAllocateWorkItem) {
        return ptr::null_mut();
    }
    let item = raw_alloc_zeroed(WORK_ITEM_SIZE);
    w.io.work_items.insert(
        item as usize,
        WorkItemRec {
            allocated: true,
            io_object: DeviceObject as usize,
            queued: false,
        },
    );
    item.cast()
}

/// `IoFreeWorkItem`: frees a work item from [`IoAllocateWorkItem`].
///
/// # Safety
///
/// The item must not be queued.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoFreeWorkItem(IoWorkItem: PIO_WORKITEM) {
    let _g = NoUnwind::enter();
    let mut w = world::lock();
    let Some(rec) = w.io.work_items.get(&(IoWorkItem as usize)).cloned() else {
        wviolation!(
            w,
            Rule::DoubleFree,
            "IoFreeWorkItem({IoWorkItem:p}): not a live work item (freed twice?)"
        );
        return;
    };
    if !rec.allocated {
        wviolation!(
            w,
            Rule::WorkItem,
            "IoFreeWorkItem({IoWorkItem:p}) on a work item from IoInitializeWorkItem \
             (use IoUninitializeWorkItem)"
        );
        return;
    }
    if rec.queued {
        wviolation!(
            w,
            Rule::WorkItem,
            "IoFreeWorkItem({IoWorkItem:p}) while it is queued"
        );
        return;
    }
    w.io.work_items.remove(&(IoWorkItem as usize));
    drop(w);
    // SAFETY: allocated by `IoAllocateWorkItem`; no longer tracked.
    unsafe { raw_free(IoWorkItem.cast(), WORK_ITEM_SIZE) };
}

/// `IoSizeofWorkItem`: bytes to reserve for [`IoInitializeWorkItem`].
///
/// # Safety
///
/// Always safe; `unsafe` to match the import.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoSizeofWorkItem() -> ULONG {
    0x58
}

/// `IoInitializeWorkItem`: initializes a work item in caller memory.
///
/// # Safety
///
/// `IoWorkItem` must point to `IoSizeofWorkItem()` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoInitializeWorkItem(IoObject: PVOID, IoWorkItem: PIO_WORKITEM) {
    let _g = NoUnwind::enter();
    if IoWorkItem.is_null() || IoObject.is_null() {
        violation!(
            Rule::Parameter,
            "IoInitializeWorkItem({IoObject:p}, {IoWorkItem:p})"
        );
        return;
    }
    // SAFETY: the caller provides IoSizeofWorkItem() writable bytes.
    unsafe { IoWorkItem.cast::<u8>().write_bytes(0, WORK_ITEM_SIZE) };
    let mut w = world::lock();
    if w.io
        .work_items
        .get(&(IoWorkItem as usize))
        .is_some_and(|r| r.queued)
    {
        wviolation!(
            w,
            Rule::WorkItem,
            "IoInitializeWorkItem({IoWorkItem:p}) while it is queued"
        );
        return;
    }
    w.io.work_items.insert(
        IoWorkItem as usize,
        WorkItemRec {
            allocated: false,
            io_object: IoObject as usize,
            queued: false,
        },
    );
}

/// `IoUninitializeWorkItem`: ends the use of a work item from
/// [`IoInitializeWorkItem`].
///
/// # Safety
///
/// The item must not be queued.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoUninitializeWorkItem(IoWorkItem: PIO_WORKITEM) {
    let _g = NoUnwind::enter();
    let mut w = world::lock();
    let Some(rec) = work_item_rec_check(&mut w, IoWorkItem, "IoUninitializeWorkItem") else {
        return;
    };
    if rec.queued {
        wviolation!(
            w,
            Rule::WorkItem,
            "IoUninitializeWorkItem({IoWorkItem:p}) while it is queued"
        );
        return;
    }
    w.io.work_items.remove(&(IoWorkItem as usize));
}

enum WorkRoutine {
    Plain(unsafe extern "system" fn(PDEVICE_OBJECT, PVOID)),
    Ex(unsafe extern "system" fn(PVOID, PVOID, PIO_WORKITEM)),
}

fn queue_work(item: PIO_WORKITEM, routine: WorkRoutine, context: PVOID, name: &str) {
    verifier::check_irql_max(name, DISPATCH_LEVEL);
    let mut w = world::lock();
    let Some(rec) = work_item_rec_check(&mut w, item, name) else {
        return;
    };
    if rec.queued {
        wviolation!(
            w,
            Rule::WorkItem,
            "{name}({item:p}) while it is already queued"
        );
        return;
    }
    if let Some(r) = w.io.work_items.get_mut(&(item as usize)) {
        r.queued = true;
    }
    w.io.work_in_flight += 1;
    let item_addr = item as usize;
    let ctx = context as usize;
    let io_object = rec.io_object;
    let spawn = std::thread::Builder::new()
        .name("wsk-sim-work-item".into())
        .spawn(move || run_work_item(item_addr, routine, ctx, io_object));
    match spawn {
        Ok(h) => w.threads.push(h),
        Err(e) => {
            drop(w);
            violation!(Rule::WorkItem, "{name}: cannot start a worker thread: {e}");
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // moved into the worker thread
fn run_work_item(item: usize, routine: WorkRoutine, ctx: usize, io_object: usize) {
    {
        let mut w = world::lock();
        if let Some(r) = w.io.work_items.get_mut(&item) {
            r.queued = false;
        }
    }
    {
        let _cb = InCallback::enter(CallbackKind::Other);
        let _irql = IrqlGuard::raise_to(0);
        match routine {
            // SAFETY: the client queued this routine with this context.
            WorkRoutine::Plain(f) => unsafe { f(io_object as PDEVICE_OBJECT, ctx as PVOID) },
            // SAFETY: as above.
            WorkRoutine::Ex(f) => unsafe {
                f(io_object as PVOID, ctx as PVOID, item as PIO_WORKITEM);
            },
        }
    }
    let mut w = world::lock();
    w.io.work_in_flight -= 1;
    w.stats.work_items_run += 1;
    w.notify();
}

/// `IoQueueWorkItem`: runs `WorkerRoutine(DeviceObject, Context)` at
/// `PASSIVE_LEVEL` on a system worker thread.
///
/// # Safety
///
/// `IoWorkItem` must be a live, unqueued work item.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoQueueWorkItem(
    IoWorkItem: PIO_WORKITEM,
    WorkerRoutine: PIO_WORKITEM_ROUTINE,
    QueueType: WORK_QUEUE_TYPE,
    Context: PVOID,
) {
    let _g = NoUnwind::enter();
    let _ = QueueType;
    let Some(f) = WorkerRoutine else {
        violation!(Rule::Parameter, "IoQueueWorkItem with a NULL routine");
        return;
    };
    // A work item passed to IoQueueWorkItem must come from a device object
    // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem;
    // docs/conformance.md KRN-WI-1): a driver object's goes to
    // IoQueueWorkItemEx.
    let object = world::lock()
        .io
        .work_items
        .get(&(IoWorkItem as usize))
        .map(|r| r.io_object);
    if object.is_some_and(|o| o != 0 && o == driver_and_device().0) {
        violation!(
            Rule::WorkItem,
            "IoQueueWorkItem({IoWorkItem:p}) on a work item of the DRIVER_OBJECT: \
             IoQueueWorkItem needs one of a DEVICE_OBJECT (use IoQueueWorkItemEx)"
        );
    }
    queue_work(
        IoWorkItem,
        WorkRoutine::Plain(f),
        Context,
        "IoQueueWorkItem",
    );
}

/// `IoQueueWorkItemEx`: runs `WorkerRoutine(IoObject, Context, IoWorkItem)`
/// at `PASSIVE_LEVEL` on a system worker thread.
///
/// # Safety
///
/// `IoWorkItem` must be a live, unqueued work item.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoQueueWorkItemEx(
    IoWorkItem: PIO_WORKITEM,
    WorkerRoutine: PIO_WORKITEM_ROUTINE_EX,
    QueueType: WORK_QUEUE_TYPE,
    Context: PVOID,
) {
    let _g = NoUnwind::enter();
    let _ = QueueType;
    let Some(f) = WorkerRoutine else {
        violation!(Rule::Parameter, "IoQueueWorkItemEx with a NULL routine");
        return;
    };
    queue_work(IoWorkItem, WorkRoutine::Ex(f), Context, "IoQueueWorkItemEx");
}

/// Waits for queued work items to finish (end of test).
pub(crate) fn wait_work_items(timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut w = world::lock();
    loop {
        if w.io.work_in_flight == 0 {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        w.wait(Some(deadline - now));
    }
}

// ---------------------------------------------------------------------------
// Driver and device objects

/// The fake driver and device objects of this world, created on first use.
pub(crate) fn driver_and_device() -> (usize, usize) {
    let mut w = world::lock();
    if w.io.driver_object == 0 {
        let drv = raw_alloc_zeroed(DRIVER_OBJECT_SIZE);
        let dev = raw_alloc_zeroed(DEVICE_OBJECT_SIZE);
        let d: *mut wsk_sys::DRIVER_OBJECT = drv.cast();
        // SAFETY: `d` is a fresh, zeroed DRIVER_OBJECT-sized allocation.
        unsafe {
            (*d).Type = IO_TYPE_DRIVER;
        }
        // SAFETY: as above.
        unsafe {
            (*d).Size = 0x150;
        }
        // SAFETY: as above.
        unsafe {
            (*d).DeviceObject = dev.cast();
        }
        // DEVICE_OBJECT: Type at 0, Size at 2, DriverObject at 8.
        let (ty, size, owner) = (
            dev.cast::<i16>(),
            dev.wrapping_add(2).cast::<u16>(),
            dev.wrapping_add(8).cast::<*mut u8>(),
        );
        // SAFETY: `dev` is a fresh, zeroed 0x150-byte allocation.
        unsafe { ty.write_unaligned(IO_TYPE_DEVICE) };
        // SAFETY: as above.
        unsafe { size.write_unaligned(0x150) };
        // SAFETY: as above.
        unsafe { owner.write_unaligned(drv) };
        w.io.driver_object = drv as usize;
        w.io.device_object = dev as usize;
    }
    (w.io.driver_object, w.io.device_object)
}

/// Frees everything the I/O manager tracked (end of test, after the leak
/// report).
pub(crate) fn free_all(io: &mut IoState) {
    for (addr, rec) in core::mem::take(&mut io.irps) {
        if rec.allocated {
            // SAFETY: allocated by `IoAllocateIrp` with this size.
            unsafe { raw_free(addr as *mut u8, rec.size) };
        }
    }
    for (addr, size) in core::mem::take(&mut io.mdls) {
        // SAFETY: allocated by `IoAllocateMdl` with this size.
        unsafe { raw_free(addr as *mut u8, size) };
    }
    for (addr, rec) in core::mem::take(&mut io.work_items) {
        if rec.allocated {
            // SAFETY: allocated by `IoAllocateWorkItem`.
            unsafe { raw_free(addr as *mut u8, WORK_ITEM_SIZE) };
        }
    }
    if io.driver_object != 0 {
        // SAFETY: allocated by `driver_and_device` with these sizes.
        unsafe { raw_free(io.driver_object as *mut u8, DRIVER_OBJECT_SIZE) };
        // SAFETY: as above.
        unsafe { raw_free(io.device_object as *mut u8, DEVICE_OBJECT_SIZE) };
        io.driver_object = 0;
        io.device_object = 0;
    }
    io.pending.clear();
}
