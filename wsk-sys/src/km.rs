//! The kernel subset a WSK client needs.
//!
//! C headers: `wdm.h` (with `OBJECT_ATTRIBUTES`, `EVENT_TYPE` and `WAIT_TYPE`
//! from `ntdef.h`) of the Windows Driver Kit 10.0.16299
//! (`Include/10.0.16299.0/km/wdm.h`, `…/shared/ntdef.h`); `POOL_FLAGS` and
//! `ExAllocatePool2`, which are newer than that kit, from their Microsoft Learn
//! pages (WDK 10.0.19041 and later). Field orders, constants and signatures are
//! Microsoft's; the layouts are those of 64-bit Windows (`x86_64` and `aarch64`
//! agree on every structure here) and are checked at compile time at the end
//! of this file.
//!
//! Contents:
//!
//! - I/O request packets: [`IRP`], [`IO_STACK_LOCATION`], [`IO_STATUS_BLOCK`],
//!   the `IRP_MJ_*` and `SL_*` constants, and the `wdm.h` inline routines
//!   ([`IoGetCurrentIrpStackLocation`], [`IoSetCompletionRoutine`], …)
//!   written in Rust.
//! - Memory descriptor lists: [`MDL`], the `MDL_*` flags and the `MmGetMdl*`
//!   accessors.
//! - Dispatcher objects and locks: [`KEVENT`], [`KSEMAPHORE`], [`KSPIN_LOCK`],
//!   [`KLOCK_QUEUE_HANDLE`], waits.
//! - Timers and deferred procedure calls: [`KTIMER`], [`KDPC`].
//! - Driver and device objects ([`DRIVER_OBJECT`] in full, [`DEVICE_OBJECT`]
//!   opaque), work items, system threads, pool, the registry and the object
//!   manager as far as a driver reads its `Parameters` key.
//! - The `ntoskrnl.exe` routines, imported with `raw-dylib` on Windows (see
//!   the crate's *Linking* section). Only routines `ntoskrnl.exe` really
//!   exports on `x86_64` and `aarch64` are declared; `wdm.h` macros and
//!   `FORCEINLINE` routines are Rust functions here.
//!
//! # IRQL
//!
//! Each routine's documentation ends with the IRQL rule Microsoft Learn (and
//! the `_IRQL_requires_*` annotations in `wdm.h`) give for it. Calling a
//! routine above that IRQL is undefined behaviour in the kernel; `wsk-sim`
//! turns it into a panic.
//!
//! # Wine
//!
//! Drivers built with this crate also load under Wine 8's `ntoskrnl.exe`.
//! Routines that Wine 8 does not export are marked *Not exported by Wine 8*:
//! the Wine loader binds such an import to a stub that faults when called, so
//! code that must run under Wine has to avoid calling them.
//!
//! Reference: <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/>

use core::ffi::c_void;
use core::marker::{PhantomData, PhantomPinned};
use core::mem::{offset_of, size_of};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::ntdef::{
    ACCESS_MASK, BOOLEAN, CCHAR, CHAR, CSHORT, FALSE, HANDLE, INT, KIRQL, KPROCESSOR_MODE,
    KernelMode, LARGE_INTEGER, LIST_ENTRY, LONG, LONG_PTR, NTSTATUS, PCHAR, PCSTR, PCVOID, PCWSTR,
    PHANDLE, PLARGE_INTEGER, PULONG, PUNICODE_STRING, PVOID, SINGLE_LIST_ENTRY, SIZE_T, UCHAR,
    ULARGE_INTEGER, ULONG, ULONG_PTR, ULONG64, ULONGLONG, UNICODE_STRING, USHORT, WCHAR,
};

// ---------------------------------------------------------------------------
// Opaque kernel objects
// ---------------------------------------------------------------------------

/// Declares a type the kernel owns and a driver only handles by pointer.
macro_rules! opaque {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Opaque: only ever used behind a pointer the system hands out; its
        /// size and fields are private to the kernel.
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    };
}

opaque! {
    /// `DEVICE_OBJECT`: a device object, created by `IoCreateDevice`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_device_object>
    DEVICE_OBJECT
}
/// `PDEVICE_OBJECT`: pointer to [`DEVICE_OBJECT`].
pub type PDEVICE_OBJECT = *mut DEVICE_OBJECT;

opaque! {
    /// `FILE_OBJECT`: a file object (the I/O manager's view of an open handle).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_file_object>
    FILE_OBJECT
}
/// `PFILE_OBJECT`: pointer to [`FILE_OBJECT`].
pub type PFILE_OBJECT = *mut FILE_OBJECT;

opaque! {
    /// `IO_WORKITEM`: a work item, from [`IoAllocateWorkItem`] or initialised
    /// in [`IoSizeofWorkItem`] bytes of non-paged pool by [`IoInitializeWorkItem`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/kernel/system-worker-threads>
    IO_WORKITEM
}
/// `PIO_WORKITEM`: pointer to [`IO_WORKITEM`].
pub type PIO_WORKITEM = *mut IO_WORKITEM;

opaque! {
    /// `FAST_IO_DISPATCH`: a file system's fast I/O entry points (unused by
    /// WSK clients; here for [`DRIVER_OBJECT::FastIoDispatch`]).
    FAST_IO_DISPATCH
}
/// `PFAST_IO_DISPATCH`: pointer to [`FAST_IO_DISPATCH`].
pub type PFAST_IO_DISPATCH = *mut FAST_IO_DISPATCH;

opaque! {
    /// `OBJECT_TYPE`: an object manager type (`*PsThreadType`, …).
    OBJECT_TYPE
}
/// `POBJECT_TYPE`: pointer to [`OBJECT_TYPE`].
pub type POBJECT_TYPE = *mut OBJECT_TYPE;

opaque! {
    /// `KWAIT_BLOCK`: a wait block for [`KeWaitForMultipleObjects`] waits on
    /// more than [`THREAD_WAIT_OBJECTS`] objects.
    KWAIT_BLOCK
}
/// `PKWAIT_BLOCK`: pointer to [`KWAIT_BLOCK`].
pub type PKWAIT_BLOCK = *mut KWAIT_BLOCK;

/// `PEPROCESS`: pointer to a process object (`struct _EPROCESS`, opaque).
pub type PEPROCESS = PVOID;
/// `PETHREAD`: pointer to a thread object (`struct _ETHREAD`, opaque).
pub type PETHREAD = PVOID;
/// `PKTHREAD`: pointer to a kernel thread object (`struct _KTHREAD`, opaque).
pub type PKTHREAD = PVOID;
/// `PSECURITY_DESCRIPTOR`: pointer to a security descriptor (`PVOID` in C).
pub type PSECURITY_DESCRIPTOR = PVOID;

// ---------------------------------------------------------------------------
// IRQL, priorities, access rights
// ---------------------------------------------------------------------------

/// `PASSIVE_LEVEL`: threads run here; waiting and paged memory are allowed.
pub const PASSIVE_LEVEL: KIRQL = 0;
/// `LOW_LEVEL`: the lowest interrupt level (same as [`PASSIVE_LEVEL`]).
pub const LOW_LEVEL: KIRQL = 0;
/// `APC_LEVEL`: asynchronous procedure calls are masked.
pub const APC_LEVEL: KIRQL = 1;
/// `DISPATCH_LEVEL`: the dispatcher is masked: no waiting, no paged memory.
pub const DISPATCH_LEVEL: KIRQL = 2;
/// `HIGH_LEVEL`: the highest interrupt level on `x86_64` and `aarch64`.
pub const HIGH_LEVEL: KIRQL = 15;

/// `KPRIORITY`: a thread priority or priority increment.
pub type KPRIORITY = LONG;
/// `IO_NO_INCREMENT`: priority boost for [`IoCompleteRequest`] when the I/O
/// completed quickly or without waiting.
pub const IO_NO_INCREMENT: CCHAR = 0;
/// `IO_NETWORK_INCREMENT`: priority boost after network I/O.
pub const IO_NETWORK_INCREMENT: CCHAR = 2;

/// `DELETE`: right to delete the object.
pub const DELETE: ACCESS_MASK = 0x0001_0000;
/// `READ_CONTROL`: right to read the security descriptor.
pub const READ_CONTROL: ACCESS_MASK = 0x0002_0000;
/// `WRITE_DAC`: right to change the discretionary ACL.
pub const WRITE_DAC: ACCESS_MASK = 0x0004_0000;
/// `WRITE_OWNER`: right to change the owner.
pub const WRITE_OWNER: ACCESS_MASK = 0x0008_0000;
/// `SYNCHRONIZE`: right to wait on the object.
pub const SYNCHRONIZE: ACCESS_MASK = 0x0010_0000;
/// `STANDARD_RIGHTS_REQUIRED`: `DELETE | READ_CONTROL | WRITE_DAC | WRITE_OWNER`.
pub const STANDARD_RIGHTS_REQUIRED: ACCESS_MASK = 0x000F_0000;
/// `STANDARD_RIGHTS_READ`: [`READ_CONTROL`].
pub const STANDARD_RIGHTS_READ: ACCESS_MASK = READ_CONTROL;
/// `STANDARD_RIGHTS_WRITE`: [`READ_CONTROL`].
pub const STANDARD_RIGHTS_WRITE: ACCESS_MASK = READ_CONTROL;
/// `STANDARD_RIGHTS_EXECUTE`: [`READ_CONTROL`].
pub const STANDARD_RIGHTS_EXECUTE: ACCESS_MASK = READ_CONTROL;
/// `STANDARD_RIGHTS_ALL`: every standard right.
pub const STANDARD_RIGHTS_ALL: ACCESS_MASK = 0x001F_0000;
/// `SPECIFIC_RIGHTS_ALL`: every object-specific right.
pub const SPECIFIC_RIGHTS_ALL: ACCESS_MASK = 0x0000_FFFF;
/// `GENERIC_READ`: generic read access.
pub const GENERIC_READ: ACCESS_MASK = 0x8000_0000;
/// `GENERIC_WRITE`: generic write access.
pub const GENERIC_WRITE: ACCESS_MASK = 0x4000_0000;
/// `GENERIC_EXECUTE`: generic execute access.
pub const GENERIC_EXECUTE: ACCESS_MASK = 0x2000_0000;
/// `GENERIC_ALL`: all generic access.
pub const GENERIC_ALL: ACCESS_MASK = 0x1000_0000;
/// `THREAD_ALL_ACCESS` (Windows Vista and later): every thread right, for
/// [`PsCreateSystemThread`].
pub const THREAD_ALL_ACCESS: ACCESS_MASK = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF;

// ---------------------------------------------------------------------------
// Spin locks
// ---------------------------------------------------------------------------

/// `KSPIN_LOCK`: a spin lock; initialise with [`KeInitializeSpinLock`].
pub type KSPIN_LOCK = ULONG_PTR;
/// `PKSPIN_LOCK`: pointer to [`KSPIN_LOCK`].
pub type PKSPIN_LOCK = *mut KSPIN_LOCK;

/// `KSPIN_LOCK_QUEUE`: a processor's entry in a queued spin lock's queue.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_LOCK_QUEUE {
    /// `Next`: the next waiter.
    pub Next: *mut KSPIN_LOCK_QUEUE,
    /// `Lock`: the lock's address, with the wait and owner bits in bits 0–1.
    pub Lock: PKSPIN_LOCK,
}

/// `KLOCK_QUEUE_HANDLE`: the caller-allocated handle of an in-stack queued
/// spin lock acquisition ([`KeAcquireInStackQueuedSpinLock`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/queued-spin-locks>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KLOCK_QUEUE_HANDLE {
    /// `LockQueue`: this acquisition's queue entry.
    pub LockQueue: KSPIN_LOCK_QUEUE,
    /// `OldIrql`: the IRQL to restore on release.
    pub OldIrql: KIRQL,
}
/// `PKLOCK_QUEUE_HANDLE`: pointer to [`KLOCK_QUEUE_HANDLE`].
pub type PKLOCK_QUEUE_HANDLE = *mut KLOCK_QUEUE_HANDLE;

// ---------------------------------------------------------------------------
// Dispatcher objects and waits
// ---------------------------------------------------------------------------

/// `DISPATCHER_HEADER`: the header every waitable kernel object starts with.
///
/// The first four bytes are a union in C (a lock word, or type/size bytes
/// that differ per object kind); this mirror shows the view events, gates and
/// semaphores use. Drivers never touch these fields: use the `Ke*` routines.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER {
    /// `Type`: the object type (`KOBJECTS`).
    pub Type: UCHAR,
    /// `Signalling`.
    pub Signalling: UCHAR,
    /// `Size`: the object size in `ULONG`s.
    pub Size: UCHAR,
    /// `Reserved1`.
    pub Reserved1: UCHAR,
    /// `SignalState`: non-zero when signalled.
    pub SignalState: LONG,
    /// `WaitListHead`: the threads waiting on the object.
    pub WaitListHead: LIST_ENTRY,
}

/// `KEVENT`: an event object. Storage must be non-paged; initialise with
/// [`KeInitializeEvent`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/defining-and-using-an-event-object>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KEVENT {
    /// `Header`.
    pub Header: DISPATCHER_HEADER,
}
/// `PKEVENT`: pointer to [`KEVENT`].
pub type PKEVENT = *mut KEVENT;
/// `PRKEVENT`: pointer to [`KEVENT`].
pub type PRKEVENT = *mut KEVENT;

/// `KSEMAPHORE`: a semaphore object. Storage must be non-paged; initialise
/// with [`KeInitializeSemaphore`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/semaphore-objects>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSEMAPHORE {
    /// `Header`: `SignalState` is the count.
    pub Header: DISPATCHER_HEADER,
    /// `Limit`: the largest count the semaphore can reach.
    pub Limit: LONG,
}
/// `PKSEMAPHORE`: pointer to [`KSEMAPHORE`].
pub type PKSEMAPHORE = *mut KSEMAPHORE;
/// `PRKSEMAPHORE`: pointer to [`KSEMAPHORE`].
pub type PRKSEMAPHORE = *mut KSEMAPHORE;

/// `KTIMER`: a kernel timer object. Storage must be non-paged; initialise with
/// [`KeInitializeTimer`], set with [`KeSetTimer`], cancel with
/// [`KeCancelTimer`]. Drivers never touch the fields.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/timer-objects-and-dpcs>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KTIMER {
    /// `Header`.
    pub Header: DISPATCHER_HEADER,
    /// `DueTime` (`ULARGE_INTEGER`): the expiration time.
    pub DueTime: ULARGE_INTEGER,
    /// `TimerListEntry`: the timer's link in the timer queue.
    pub TimerListEntry: LIST_ENTRY,
    /// `Dpc`: the DPC queued when the timer expires, or null.
    pub Dpc: PKDPC,
    /// `Processor` (present unless `KENCODED_TIMER_PROCESSOR` is defined,
    /// which `wdm.h` does not do).
    pub Processor: ULONG,
    /// `Period`: the period of a periodic timer in milliseconds, or 0.
    pub Period: ULONG,
}
/// `PKTIMER`: pointer to [`KTIMER`].
pub type PKTIMER = *mut KTIMER;
/// `PRKTIMER`: pointer to [`KTIMER`].
pub type PRKTIMER = *mut KTIMER;

/// `TIMER_TYPE` (`ntdef.h`): the kind of timer `KeInitializeTimerEx` creates.
pub type TIMER_TYPE = INT;
/// `NotificationTimer`: stays signalled once expired; the kind
/// [`KeInitializeTimer`] creates.
pub const NotificationTimer: TIMER_TYPE = 0;
/// `SynchronizationTimer`: releases one waiter, then resets itself.
pub const SynchronizationTimer: TIMER_TYPE = 1;

/// `KAFFINITY` (`basetsd.h`): a set of processors, one bit each.
pub type KAFFINITY = ULONG_PTR;

/// `KDPC`: a deferred procedure call object. Storage must be non-paged;
/// initialise with [`KeInitializeDpc`]. Drivers never touch the fields
/// ("DPC object contents shouldn't be directly referenced by drivers").
///
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/introduction-to-dpc-objects>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDPC {
    /// `TargetInfoAsUlong`: the union of `Type`, `Importance` and `Number`.
    pub TargetInfoAsUlong: ULONG,
    /// `DpcListEntry`: the DPC's link in a processor's DPC queue.
    pub DpcListEntry: SINGLE_LIST_ENTRY,
    /// `ProcessorHistory`.
    pub ProcessorHistory: KAFFINITY,
    /// `DeferredRoutine`: the routine the DPC runs.
    pub DeferredRoutine: PKDEFERRED_ROUTINE,
    /// `DeferredContext`: the routine's context.
    pub DeferredContext: PVOID,
    /// `SystemArgument1`.
    pub SystemArgument1: PVOID,
    /// `SystemArgument2`.
    pub SystemArgument2: PVOID,
    /// `DpcData`: set while the DPC is queued.
    pub DpcData: PVOID,
}
/// `PKDPC`: pointer to [`KDPC`].
pub type PKDPC = *mut KDPC;
/// `PRKDPC`: pointer to [`KDPC`].
pub type PRKDPC = *mut KDPC;

/// `PKDEFERRED_ROUTINE`: a `CustomDpc` / `CustomTimerDpc` routine. It runs at
/// `DISPATCH_LEVEL`; a timer's DPC gets no system arguments.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-kdeferred_routine>
pub type PKDEFERRED_ROUTINE = Option<
    unsafe extern "system" fn(
        Dpc: *mut KDPC,
        DeferredContext: PVOID,
        SystemArgument1: PVOID,
        SystemArgument2: PVOID,
    ),
>;

/// `EVENT_TYPE` (`ntdef.h`): the kind of event [`KeInitializeEvent`] creates.
pub type EVENT_TYPE = INT;
/// `NotificationEvent`: stays signalled until reset; wakes every waiter.
pub const NotificationEvent: EVENT_TYPE = 0;
/// `SynchronizationEvent`: wakes one waiter and resets itself.
pub const SynchronizationEvent: EVENT_TYPE = 1;

/// `WAIT_TYPE` (`ntdef.h`): how [`KeWaitForMultipleObjects`] combines objects.
pub type WAIT_TYPE = INT;
/// `WaitAll`: wait until every object is signalled.
pub const WaitAll: WAIT_TYPE = 0;
/// `WaitAny`: wait until any object is signalled.
pub const WaitAny: WAIT_TYPE = 1;

/// `THREAD_WAIT_OBJECTS`: objects a wait can use without a caller-supplied
/// [`KWAIT_BLOCK`] array.
pub const THREAD_WAIT_OBJECTS: ULONG = 3;
/// `MAXIMUM_WAIT_OBJECTS`: most objects one wait can use.
pub const MAXIMUM_WAIT_OBJECTS: ULONG = 64;

/// `KWAIT_REASON`: why a thread waits (drivers pass [`Executive`]).
pub type KWAIT_REASON = INT;
/// `Executive`: a wait on behalf of a driver or the executive.
pub const Executive: KWAIT_REASON = 0;
/// `FreePage`.
pub const FreePage: KWAIT_REASON = 1;
/// `PageIn`.
pub const PageIn: KWAIT_REASON = 2;
/// `PoolAllocation`.
pub const PoolAllocation: KWAIT_REASON = 3;
/// `DelayExecution`.
pub const DelayExecution: KWAIT_REASON = 4;
/// `Suspended`.
pub const Suspended: KWAIT_REASON = 5;
/// `UserRequest`: a wait on behalf of a user thread.
pub const UserRequest: KWAIT_REASON = 6;

// ---------------------------------------------------------------------------
// Memory descriptor lists
// ---------------------------------------------------------------------------

/// `PAGE_SIZE`: the page size on `x86_64` and `aarch64` Windows.
pub const PAGE_SIZE: ULONG = 0x1000;
/// `PAGE_SHIFT`: `log2(PAGE_SIZE)`.
pub const PAGE_SHIFT: ULONG = 12;

/// `MDL`: a memory descriptor list, describing a virtual buffer's physical
/// pages. The page frame numbers follow the header in memory.
///
/// Allocate with [`IoAllocateMdl`]; read with [`MmGetMdlVirtualAddress`],
/// [`MmGetMdlByteCount`], [`MmGetMdlByteOffset`]. Only the memory manager
/// writes the fields.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_mdl>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MDL {
    /// `Next`: the next MDL of a chain.
    pub Next: *mut MDL,
    /// `Size`: bytes of the MDL including its page array.
    pub Size: CSHORT,
    /// `MdlFlags`: `MDL_*` flags.
    pub MdlFlags: CSHORT,
    /// `Process`: the owning process of user-space pages (`struct _EPROCESS *`).
    pub Process: PEPROCESS,
    /// `MappedSystemVa`: the system-space mapping, when mapped.
    pub MappedSystemVa: PVOID,
    /// `StartVa`: the page-aligned start of the buffer.
    pub StartVa: PVOID,
    /// `ByteCount`: the buffer's length in bytes.
    pub ByteCount: ULONG,
    /// `ByteOffset`: the buffer's offset into its first page.
    pub ByteOffset: ULONG,
}
/// `PMDL`: pointer to [`MDL`].
pub type PMDL = *mut MDL;

/// `MDL_MAPPED_TO_SYSTEM_VA`: `MappedSystemVa` holds a system mapping.
pub const MDL_MAPPED_TO_SYSTEM_VA: CSHORT = 0x0001;
/// `MDL_PAGES_LOCKED`: the pages are locked (`MmProbeAndLockPages`).
pub const MDL_PAGES_LOCKED: CSHORT = 0x0002;
/// `MDL_SOURCE_IS_NONPAGED_POOL`: the buffer is non-paged pool
/// (`MmBuildMdlForNonPagedPool`).
pub const MDL_SOURCE_IS_NONPAGED_POOL: CSHORT = 0x0004;
/// `MDL_ALLOCATED_FIXED_SIZE`.
pub const MDL_ALLOCATED_FIXED_SIZE: CSHORT = 0x0008;
/// `MDL_PARTIAL`: built by `IoBuildPartialMdl`.
pub const MDL_PARTIAL: CSHORT = 0x0010;
/// `MDL_PARTIAL_HAS_BEEN_MAPPED`.
pub const MDL_PARTIAL_HAS_BEEN_MAPPED: CSHORT = 0x0020;
/// `MDL_IO_PAGE_READ`.
pub const MDL_IO_PAGE_READ: CSHORT = 0x0040;
/// `MDL_WRITE_OPERATION`.
pub const MDL_WRITE_OPERATION: CSHORT = 0x0080;
/// `MDL_LOCKED_PAGE_TABLES`.
pub const MDL_LOCKED_PAGE_TABLES: CSHORT = 0x0100;
/// `MDL_PARENT_MAPPED_SYSTEM_VA`: same bit as [`MDL_LOCKED_PAGE_TABLES`].
pub const MDL_PARENT_MAPPED_SYSTEM_VA: CSHORT = MDL_LOCKED_PAGE_TABLES;
/// `MDL_FREE_EXTRA_PTES`.
pub const MDL_FREE_EXTRA_PTES: CSHORT = 0x0200;
/// `MDL_DESCRIBES_AWE`.
pub const MDL_DESCRIBES_AWE: CSHORT = 0x0400;
/// `MDL_IO_SPACE`.
pub const MDL_IO_SPACE: CSHORT = 0x0800;
/// `MDL_NETWORK_HEADER`.
pub const MDL_NETWORK_HEADER: CSHORT = 0x1000;
/// `MDL_MAPPING_CAN_FAIL`.
pub const MDL_MAPPING_CAN_FAIL: CSHORT = 0x2000;
/// `MDL_PAGE_CONTENTS_INVARIANT`.
pub const MDL_PAGE_CONTENTS_INVARIANT: CSHORT = 0x4000;
/// `MDL_ALLOCATED_MUST_SUCCEED`: same bit as [`MDL_PAGE_CONTENTS_INVARIANT`].
pub const MDL_ALLOCATED_MUST_SUCCEED: CSHORT = MDL_PAGE_CONTENTS_INVARIANT;
/// `MDL_INTERNAL` (`0x8000`, the sign bit of the `CSHORT`).
#[allow(clippy::cast_possible_wrap)] // `0x8000` in a `CSHORT`, as in C.
pub const MDL_INTERNAL: CSHORT = 0x8000_u16 as CSHORT;

/// `LOCK_OPERATION`: the access [`MmProbeAndLockPages`] checks for.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ne-wdm-_lock_operation>
pub type LOCK_OPERATION = INT;
/// `IoReadAccess`: the caller reads the pages.
pub const IoReadAccess: LOCK_OPERATION = 0;
/// `IoWriteAccess`: the caller writes the pages.
pub const IoWriteAccess: LOCK_OPERATION = 1;
/// `IoModifyAccess`: the caller reads and writes the pages.
pub const IoModifyAccess: LOCK_OPERATION = 2;

/// `MEMORY_CACHING_TYPE`: the cache attribute of a mapping.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ne-wdm-_memory_caching_type>
pub type MEMORY_CACHING_TYPE = INT;
/// `MmNonCached`.
pub const MmNonCached: MEMORY_CACHING_TYPE = 0;
/// `MmCached`: normal cached memory (what [`MmGetSystemAddressForMdlSafe`] asks for).
pub const MmCached: MEMORY_CACHING_TYPE = 1;
/// `MmWriteCombined`.
pub const MmWriteCombined: MEMORY_CACHING_TYPE = 2;
/// `MmHardwareCoherentCached`.
pub const MmHardwareCoherentCached: MEMORY_CACHING_TYPE = 3;
/// `MmNonCachedUnordered`.
pub const MmNonCachedUnordered: MEMORY_CACHING_TYPE = 4;
/// `MmUSWCCached`.
pub const MmUSWCCached: MEMORY_CACHING_TYPE = 5;
/// `MmMaximumCacheType`.
pub const MmMaximumCacheType: MEMORY_CACHING_TYPE = 6;
/// `MmNotMapped`.
pub const MmNotMapped: MEMORY_CACHING_TYPE = -1;

/// `MM_PAGE_PRIORITY`: how important a mapping request is when system PTEs
/// run low. A C enum; a `ULONG` here because every routine takes it in a
/// `ULONG Priority`, OR'd with the `MdlMapping*` flags.
pub type MM_PAGE_PRIORITY = ULONG;
/// `LowPagePriority`: may fail when PTEs run low.
pub const LowPagePriority: MM_PAGE_PRIORITY = 0;
/// `NormalPagePriority`: fails only when PTEs are very low.
pub const NormalPagePriority: MM_PAGE_PRIORITY = 16;
/// `HighPagePriority`: fails only when PTEs are exhausted.
pub const HighPagePriority: MM_PAGE_PRIORITY = 32;
/// `MdlMappingNoWrite` (Windows 8 and later): map read-only.
pub const MdlMappingNoWrite: ULONG = 0x8000_0000;
/// `MdlMappingNoExecute` (Windows 8 and later): map non-executable.
pub const MdlMappingNoExecute: ULONG = 0x4000_0000;

// ---------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------

/// `POOL_TYPE`: the pool [`ExAllocatePoolWithTag`] allocates from.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ne-wdm-_pool_type>
pub type POOL_TYPE = INT;
/// `NonPagedPool`: non-paged, executable pool (prefer [`NonPagedPoolNx`]).
pub const NonPagedPool: POOL_TYPE = 0;
/// `NonPagedPoolExecute`: same as [`NonPagedPool`].
pub const NonPagedPoolExecute: POOL_TYPE = NonPagedPool;
/// `PagedPool`: pageable pool (`<= APC_LEVEL` only).
pub const PagedPool: POOL_TYPE = 1;
/// `NonPagedPoolMustSucceed`: forbidden for drivers.
pub const NonPagedPoolMustSucceed: POOL_TYPE = 2;
/// `NonPagedPoolCacheAligned`.
pub const NonPagedPoolCacheAligned: POOL_TYPE = 4;
/// `PagedPoolCacheAligned`.
pub const PagedPoolCacheAligned: POOL_TYPE = 5;
/// `NonPagedPoolNx` (Windows 8 and later): non-paged, no-execute pool.
pub const NonPagedPoolNx: POOL_TYPE = 512;
/// `NonPagedPoolNxCacheAligned` (Windows 8 and later).
pub const NonPagedPoolNxCacheAligned: POOL_TYPE = NonPagedPoolNx + 4;
/// `POOL_NX_ALLOCATION`: the no-execute bit of a [`POOL_TYPE`].
pub const POOL_NX_ALLOCATION: POOL_TYPE = 512;

/// `POOL_FLAGS` (Windows 10 version 2004 and later): what
/// [`ExAllocatePool2`] allocates. The low 32 bits are required attributes,
/// the high 32 bits optional ones.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/kernel/pool_flags>
pub type POOL_FLAGS = ULONG64;
/// `POOL_FLAG_USE_QUOTA`: charge the allocation to the current process.
pub const POOL_FLAG_USE_QUOTA: POOL_FLAGS = 0x0000_0001;
/// `POOL_FLAG_UNINITIALIZED`: do not zero the allocation.
pub const POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0002;
/// `POOL_FLAG_SESSION`: session pool.
pub const POOL_FLAG_SESSION: POOL_FLAGS = 0x0000_0004;
/// `POOL_FLAG_CACHE_ALIGNED`: cache-aligned allocation.
pub const POOL_FLAG_CACHE_ALIGNED: POOL_FLAGS = 0x0000_0008;
/// `POOL_FLAG_RAISE_ON_FAILURE`: raise an exception instead of returning null.
pub const POOL_FLAG_RAISE_ON_FAILURE: POOL_FLAGS = 0x0000_0020;
/// `POOL_FLAG_NON_PAGED`: non-paged, no-execute pool.
pub const POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0040;
/// `POOL_FLAG_NON_PAGED_EXECUTE`: non-paged, executable pool.
pub const POOL_FLAG_NON_PAGED_EXECUTE: POOL_FLAGS = 0x0000_0080;
/// `POOL_FLAG_PAGED`: paged pool.
pub const POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0100;

// ---------------------------------------------------------------------------
// I/O request packets
// ---------------------------------------------------------------------------

/// `IO_STATUS_BLOCK`: the final status of an I/O request.
///
/// In C the first member is an anonymous union of `NTSTATUS Status` and a
/// `PVOID Pointer` "reserved for internal use"; this mirror exposes `Status`
/// only (the union is why `Information` sits at offset 8).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_status_block>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STATUS_BLOCK {
    /// `Status`: the completion status.
    pub Status: NTSTATUS,
    /// `Information`: request-dependent, typically the bytes transferred.
    pub Information: ULONG_PTR,
}
/// `PIO_STATUS_BLOCK`: pointer to [`IO_STATUS_BLOCK`].
pub type PIO_STATUS_BLOCK = *mut IO_STATUS_BLOCK;

/// `PIO_APC_ROUTINE`: a user-mode APC run when an asynchronous request
/// completes (set by the I/O manager, not by drivers).
pub type PIO_APC_ROUTINE = Option<
    unsafe extern "system" fn(ApcContext: PVOID, IoStatusBlock: PIO_STATUS_BLOCK, Reserved: ULONG),
>;

/// `PIO_COMPLETION_ROUTINE`: an `IoCompletion` routine, set on the next stack
/// location by [`IoSetCompletionRoutine`] and called when a lower driver (the
/// WSK provider) completes the IRP. Return [`STATUS_MORE_PROCESSING_REQUIRED`]
/// to take the IRP back (always, for an IRP the driver allocated).
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// [`STATUS_MORE_PROCESSING_REQUIRED`]: crate::STATUS_MORE_PROCESSING_REQUIRED
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-io_completion_routine>
pub type PIO_COMPLETION_ROUTINE = Option<
    unsafe extern "system" fn(DeviceObject: PDEVICE_OBJECT, Irp: PIRP, Context: PVOID) -> NTSTATUS,
>;

/// `PDRIVER_CANCEL`: a `Cancel` routine, set by [`IoSetCancelRoutine`]; called
/// holding the cancel spin lock, which it must release.
///
/// IRQL: `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_cancel>
pub type PDRIVER_CANCEL =
    Option<unsafe extern "system" fn(DeviceObject: PDEVICE_OBJECT, Irp: PIRP)>;

/// `PDRIVER_DISPATCH`: a dispatch routine of [`DRIVER_OBJECT::MajorFunction`].
///
/// IRQL: `<= DISPATCH_LEVEL` (`PASSIVE_LEVEL` for most major functions).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_dispatch>
pub type PDRIVER_DISPATCH =
    Option<unsafe extern "system" fn(DeviceObject: PDEVICE_OBJECT, Irp: PIRP) -> NTSTATUS>;

/// `PDRIVER_UNLOAD`: the driver's `Unload` routine.
///
/// IRQL: `PASSIVE_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_unload>
pub type PDRIVER_UNLOAD = Option<unsafe extern "system" fn(DriverObject: PDRIVER_OBJECT)>;

/// `PDRIVER_INITIALIZE`: the driver's entry point (`DriverEntry`).
///
/// IRQL: `PASSIVE_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_initialize>
pub type PDRIVER_INITIALIZE = Option<
    unsafe extern "system" fn(
        DriverObject: PDRIVER_OBJECT,
        RegistryPath: PUNICODE_STRING,
    ) -> NTSTATUS,
>;

/// `PDRIVER_STARTIO`: a `StartIo` routine.
///
/// IRQL: `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_startio>
pub type PDRIVER_STARTIO =
    Option<unsafe extern "system" fn(DeviceObject: PDEVICE_OBJECT, Irp: PIRP)>;

/// `PDRIVER_ADD_DEVICE`: a Plug and Play driver's `AddDevice` routine.
///
/// IRQL: `PASSIVE_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_add_device>
pub type PDRIVER_ADD_DEVICE = Option<
    unsafe extern "system" fn(
        DriverObject: PDRIVER_OBJECT,
        PhysicalDeviceObject: PDEVICE_OBJECT,
    ) -> NTSTATUS,
>;

/// `IRP.AssociatedIrp` (anonymous union in C).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_ASSOCIATED_IRP {
    /// `MasterIrp`: for an associated IRP, its master IRP.
    pub MasterIrp: *mut IRP,
    /// `IrpCount`: for a master IRP, the associated IRPs still to complete.
    pub IrpCount: LONG,
    /// `SystemBuffer`: for buffered I/O, the system-space buffer.
    pub SystemBuffer: PVOID,
}

/// The anonymous union at the start of `IRP.Overlay.AsynchronousParameters`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_USER_APC {
    /// `UserApcRoutine`: the requester's APC routine.
    pub UserApcRoutine: PIO_APC_ROUTINE,
    /// `IssuingProcess`: the issuing process.
    pub IssuingProcess: PVOID,
}

/// `IRP.Overlay.AsynchronousParameters`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IRP_ASYNCHRONOUS_PARAMETERS {
    /// C: anonymous union `{ UserApcRoutine; IssuingProcess; }`.
    pub Apc: IRP_USER_APC,
    /// `UserApcContext`: the requester's APC context.
    pub UserApcContext: PVOID,
}

/// `IRP.Overlay` (union in C).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_OVERLAY {
    /// `AsynchronousParameters`: the requester's APC (user-mode requests).
    pub AsynchronousParameters: IRP_ASYNCHRONOUS_PARAMETERS,
    /// `AllocationSize`: for create requests, the initial file size.
    pub AllocationSize: LARGE_INTEGER,
}

/// `KDEVICE_QUEUE_ENTRY`: an entry of a device queue.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDEVICE_QUEUE_ENTRY {
    /// `DeviceListEntry`.
    pub DeviceListEntry: LIST_ENTRY,
    /// `SortKey`.
    pub SortKey: ULONG,
    /// `Inserted`.
    pub Inserted: BOOLEAN,
}

/// `KAPC`: an asynchronous procedure call object (the I/O manager's, in
/// [`IRP_TAIL::Apc`]).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KAPC {
    /// `Type`.
    pub Type: UCHAR,
    /// `SpareByte0`.
    pub SpareByte0: UCHAR,
    /// `Size`.
    pub Size: UCHAR,
    /// `SpareByte1`.
    pub SpareByte1: UCHAR,
    /// `SpareLong0`.
    pub SpareLong0: ULONG,
    /// `Thread`: the target thread (`struct _KTHREAD *`).
    pub Thread: PKTHREAD,
    /// `ApcListEntry`.
    pub ApcListEntry: LIST_ENTRY,
    /// `Reserved`.
    pub Reserved: [PVOID; 3],
    /// `NormalContext`.
    pub NormalContext: PVOID,
    /// `SystemArgument1`.
    pub SystemArgument1: PVOID,
    /// `SystemArgument2`.
    pub SystemArgument2: PVOID,
    /// `ApcStateIndex`.
    pub ApcStateIndex: CCHAR,
    /// `ApcMode`.
    pub ApcMode: KPROCESSOR_MODE,
    /// `Inserted`.
    pub Inserted: BOOLEAN,
}

/// The first anonymous union of `IRP.Tail.Overlay`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL_OVERLAY_CONTEXT {
    /// `DeviceQueueEntry`: the IRP's entry in a device queue (`StartIo` drivers).
    pub DeviceQueueEntry: KDEVICE_QUEUE_ENTRY,
    /// `DriverContext`: four pointers the driver that currently owns the IRP
    /// may use freely.
    pub DriverContext: [PVOID; 4],
}

/// The second anonymous union of `IRP.Tail.Overlay`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL_OVERLAY_STACK {
    /// `CurrentStackLocation`: the current [`IO_STACK_LOCATION`]; use
    /// [`IoGetCurrentIrpStackLocation`] and friends rather than this field.
    pub CurrentStackLocation: PIO_STACK_LOCATION,
    /// `PacketType`: the minipacket type (completion-queue packets only).
    pub PacketType: ULONG,
}

/// `IRP.Tail.Overlay`.
///
/// C paths and their Rust spelling:
/// `Tail.Overlay.DriverContext` → `Tail.Overlay.Context.DriverContext`,
/// `Tail.Overlay.CurrentStackLocation` → `Tail.Overlay.Stack.CurrentStackLocation`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IRP_TAIL_OVERLAY {
    /// C: anonymous union `{ DeviceQueueEntry; struct { DriverContext[4]; }; }`.
    pub Context: IRP_TAIL_OVERLAY_CONTEXT,
    /// `Thread`: the requesting thread.
    pub Thread: PETHREAD,
    /// `AuxiliaryBuffer`: an auxiliary buffer for the lower driver.
    pub AuxiliaryBuffer: PCHAR,
    /// `ListEntry`: queues the IRP (completion queues and others).
    pub ListEntry: LIST_ENTRY,
    /// C: anonymous union `{ CurrentStackLocation; PacketType; }`.
    pub Stack: IRP_TAIL_OVERLAY_STACK,
    /// `OriginalFileObject`: owned by the I/O manager.
    pub OriginalFileObject: PFILE_OBJECT,
}

/// `IRP.Tail` (union in C).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL {
    /// `Overlay`: the fields used while the IRP is being processed.
    pub Overlay: IRP_TAIL_OVERLAY,
    /// `Apc`: the I/O manager's completion APC.
    pub Apc: KAPC,
    /// `CompletionKey`: distinguishes operations on one file handle.
    pub CompletionKey: PVOID,
}

/// `IRP`: an I/O request packet, followed in memory by its
/// [`IO_STACK_LOCATION`]s (the last one first in use).
///
/// Every WSK call takes an IRP: allocate it with [`IoAllocateIrp`] (or
/// initialise [`IoSizeOfIrp`] bytes with [`IoInitializeIrp`]), set an
/// `IoCompletion` routine with [`IoSetCompletionRoutine`], and read the result
/// from `IoStatus` when it completes. `MEMORY_ALLOCATION_ALIGNMENT` (16 bytes)
/// aligned, `0xD0` bytes on 64-bit Windows.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_irp>
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct IRP {
    /// `Type`: `IO_TYPE_IRP`.
    pub Type: CSHORT,
    /// `Size`: bytes of the IRP including its stack locations.
    pub Size: USHORT,
    /// `MdlAddress`: the MDL of a direct-I/O buffer.
    pub MdlAddress: PMDL,
    /// `Flags`: `IRP_*` flags (owned by the I/O manager).
    pub Flags: ULONG,
    /// `AssociatedIrp`: master IRP, IRP count or system buffer.
    pub AssociatedIrp: IRP_ASSOCIATED_IRP,
    /// `ThreadListEntry`: links the IRP to its thread's pending IRPs.
    pub ThreadListEntry: LIST_ENTRY,
    /// `IoStatus`: the final status, set before completion.
    pub IoStatus: IO_STATUS_BLOCK,
    /// `RequestorMode`: [`KernelMode`] or `UserMode`.
    pub RequestorMode: KPROCESSOR_MODE,
    /// `PendingReturned`: a driver returned `STATUS_PENDING` for this IRP.
    pub PendingReturned: BOOLEAN,
    /// `StackCount`: the number of stack locations.
    pub StackCount: CHAR,
    /// `CurrentLocation`: the current stack location's index, from `StackCount + 1` down to 1.
    pub CurrentLocation: CHAR,
    /// `Cancel`: the IRP has been cancelled.
    pub Cancel: BOOLEAN,
    /// `CancelIrql`: the IRQL at which the cancel spin lock was acquired.
    pub CancelIrql: KIRQL,
    /// `ApcEnvironment`.
    pub ApcEnvironment: CCHAR,
    /// `AllocationFlags`: `IRP_*` allocation flags.
    pub AllocationFlags: UCHAR,
    /// `UserIosb`: the requester's I/O status block.
    pub UserIosb: PIO_STATUS_BLOCK,
    /// `UserEvent`: the requester's event.
    pub UserEvent: PKEVENT,
    /// `Overlay`: the requester's APC, or an allocation size.
    pub Overlay: IRP_OVERLAY,
    /// `CancelRoutine`: the `Cancel` routine; set only with [`IoSetCancelRoutine`].
    pub CancelRoutine: PDRIVER_CANCEL,
    /// `UserBuffer`: the requester's buffer.
    pub UserBuffer: PVOID,
    /// `Tail`: driver context, the current stack location, and the I/O
    /// manager's completion state.
    pub Tail: IRP_TAIL,
}
/// `PIRP`: pointer to [`IRP`].
pub type PIRP = *mut IRP;

/// `IO_STACK_LOCATION.Parameters.Others`: driver-defined arguments.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_OTHERS {
    /// `Argument1`.
    pub Argument1: PVOID,
    /// `Argument2`.
    pub Argument2: PVOID,
    /// `Argument3`.
    pub Argument3: PVOID,
    /// `Argument4`.
    pub Argument4: PVOID,
}

/// `IO_STACK_LOCATION.Parameters.Read` and `.Write`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_READ_WRITE {
    /// `Length`: bytes to transfer.
    pub Length: ULONG,
    /// Padding: `Key` is `POINTER_ALIGNMENT` (8-byte aligned) in C.
    _Pad0: ULONG,
    /// `Key`.
    pub Key: ULONG,
    /// `ByteOffset`: the starting offset.
    pub ByteOffset: LARGE_INTEGER,
}

/// `IO_STACK_LOCATION.Parameters.DeviceIoControl`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STACK_LOCATION_DEVICE_IO_CONTROL {
    /// `OutputBufferLength`.
    pub OutputBufferLength: ULONG,
    /// Padding: `InputBufferLength` is `POINTER_ALIGNMENT` in C.
    _Pad0: ULONG,
    /// `InputBufferLength`.
    pub InputBufferLength: ULONG,
    /// Padding: `IoControlCode` is `POINTER_ALIGNMENT` in C.
    _Pad1: ULONG,
    /// `IoControlCode`.
    pub IoControlCode: ULONG,
    /// `Type3InputBuffer`: the input buffer of `METHOD_NEITHER` requests.
    pub Type3InputBuffer: PVOID,
}

/// `IO_STACK_LOCATION.Parameters` (a union of some thirty request-specific
/// structures in C, none larger than four pointers).
///
/// The variants a WSK client or a simple driver reads are mirrored; `Raw` is
/// the whole union as four pointer-sized words.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_LOCATION_PARAMETERS {
    /// `Others`: driver-specific arguments.
    pub Others: IO_STACK_LOCATION_OTHERS,
    /// `Read` (`IRP_MJ_READ`).
    pub Read: IO_STACK_LOCATION_READ_WRITE,
    /// `Write` (`IRP_MJ_WRITE`).
    pub Write: IO_STACK_LOCATION_READ_WRITE,
    /// `DeviceIoControl` (`IRP_MJ_DEVICE_CONTROL`, `IRP_MJ_INTERNAL_DEVICE_CONTROL`).
    pub DeviceIoControl: IO_STACK_LOCATION_DEVICE_IO_CONTROL,
    /// The union's storage (not a C member).
    pub Raw: [ULONG_PTR; 4],
}

/// `IO_STACK_LOCATION`: one driver's view of an [`IRP`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_io_stack_location>
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_STACK_LOCATION {
    /// `MajorFunction`: an `IRP_MJ_*` code.
    pub MajorFunction: UCHAR,
    /// `MinorFunction`: an `IRP_MN_*` code.
    pub MinorFunction: UCHAR,
    /// `Flags`: `SL_*` request flags.
    pub Flags: UCHAR,
    /// `Control`: `SL_PENDING_RETURNED`, `SL_INVOKE_ON_*`, …
    pub Control: UCHAR,
    /// `Parameters`: request-specific parameters.
    pub Parameters: IO_STACK_LOCATION_PARAMETERS,
    /// `DeviceObject`: the target device of this location.
    pub DeviceObject: PDEVICE_OBJECT,
    /// `FileObject`: the request's file object.
    pub FileObject: PFILE_OBJECT,
    /// `CompletionRoutine`: the routine the driver *above* set.
    pub CompletionRoutine: PIO_COMPLETION_ROUTINE,
    /// `Context`: its context.
    pub Context: PVOID,
}
/// `PIO_STACK_LOCATION`: pointer to [`IO_STACK_LOCATION`].
pub type PIO_STACK_LOCATION = *mut IO_STACK_LOCATION;

/// `SL_PENDING_RETURNED`: [`IoMarkIrpPending`] was called.
pub const SL_PENDING_RETURNED: UCHAR = 0x01;
/// `SL_ERROR_RETURNED`.
pub const SL_ERROR_RETURNED: UCHAR = 0x02;
/// `SL_INVOKE_ON_CANCEL`: call the completion routine when the IRP is cancelled.
pub const SL_INVOKE_ON_CANCEL: UCHAR = 0x20;
/// `SL_INVOKE_ON_SUCCESS`: call the completion routine on success.
pub const SL_INVOKE_ON_SUCCESS: UCHAR = 0x40;
/// `SL_INVOKE_ON_ERROR`: call the completion routine on error.
pub const SL_INVOKE_ON_ERROR: UCHAR = 0x80;

/// `IRP_MJ_CREATE`.
pub const IRP_MJ_CREATE: UCHAR = 0x00;
/// `IRP_MJ_CREATE_NAMED_PIPE`.
pub const IRP_MJ_CREATE_NAMED_PIPE: UCHAR = 0x01;
/// `IRP_MJ_CLOSE`.
pub const IRP_MJ_CLOSE: UCHAR = 0x02;
/// `IRP_MJ_READ`.
pub const IRP_MJ_READ: UCHAR = 0x03;
/// `IRP_MJ_WRITE`.
pub const IRP_MJ_WRITE: UCHAR = 0x04;
/// `IRP_MJ_QUERY_INFORMATION`.
pub const IRP_MJ_QUERY_INFORMATION: UCHAR = 0x05;
/// `IRP_MJ_SET_INFORMATION`.
pub const IRP_MJ_SET_INFORMATION: UCHAR = 0x06;
/// `IRP_MJ_QUERY_EA`.
pub const IRP_MJ_QUERY_EA: UCHAR = 0x07;
/// `IRP_MJ_SET_EA`.
pub const IRP_MJ_SET_EA: UCHAR = 0x08;
/// `IRP_MJ_FLUSH_BUFFERS`.
pub const IRP_MJ_FLUSH_BUFFERS: UCHAR = 0x09;
/// `IRP_MJ_QUERY_VOLUME_INFORMATION`.
pub const IRP_MJ_QUERY_VOLUME_INFORMATION: UCHAR = 0x0a;
/// `IRP_MJ_SET_VOLUME_INFORMATION`.
pub const IRP_MJ_SET_VOLUME_INFORMATION: UCHAR = 0x0b;
/// `IRP_MJ_DIRECTORY_CONTROL`.
pub const IRP_MJ_DIRECTORY_CONTROL: UCHAR = 0x0c;
/// `IRP_MJ_FILE_SYSTEM_CONTROL`.
pub const IRP_MJ_FILE_SYSTEM_CONTROL: UCHAR = 0x0d;
/// `IRP_MJ_DEVICE_CONTROL`.
pub const IRP_MJ_DEVICE_CONTROL: UCHAR = 0x0e;
/// `IRP_MJ_INTERNAL_DEVICE_CONTROL`.
pub const IRP_MJ_INTERNAL_DEVICE_CONTROL: UCHAR = 0x0f;
/// `IRP_MJ_SHUTDOWN`.
pub const IRP_MJ_SHUTDOWN: UCHAR = 0x10;
/// `IRP_MJ_LOCK_CONTROL`.
pub const IRP_MJ_LOCK_CONTROL: UCHAR = 0x11;
/// `IRP_MJ_CLEANUP`.
pub const IRP_MJ_CLEANUP: UCHAR = 0x12;
/// `IRP_MJ_CREATE_MAILSLOT`.
pub const IRP_MJ_CREATE_MAILSLOT: UCHAR = 0x13;
/// `IRP_MJ_QUERY_SECURITY`.
pub const IRP_MJ_QUERY_SECURITY: UCHAR = 0x14;
/// `IRP_MJ_SET_SECURITY`.
pub const IRP_MJ_SET_SECURITY: UCHAR = 0x15;
/// `IRP_MJ_POWER`.
pub const IRP_MJ_POWER: UCHAR = 0x16;
/// `IRP_MJ_SYSTEM_CONTROL`.
pub const IRP_MJ_SYSTEM_CONTROL: UCHAR = 0x17;
/// `IRP_MJ_DEVICE_CHANGE`.
pub const IRP_MJ_DEVICE_CHANGE: UCHAR = 0x18;
/// `IRP_MJ_QUERY_QUOTA`.
pub const IRP_MJ_QUERY_QUOTA: UCHAR = 0x19;
/// `IRP_MJ_SET_QUOTA`.
pub const IRP_MJ_SET_QUOTA: UCHAR = 0x1a;
/// `IRP_MJ_PNP`.
pub const IRP_MJ_PNP: UCHAR = 0x1b;
/// `IRP_MJ_MAXIMUM_FUNCTION`: the highest major function code.
pub const IRP_MJ_MAXIMUM_FUNCTION: UCHAR = 0x1b;

// ---------------------------------------------------------------------------
// Driver objects
// ---------------------------------------------------------------------------

/// `DRIVER_EXTENSION`: the shared part of a driver object's extension.
///
/// The system's structure is larger (private fields follow); never allocate
/// or copy one.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_driver_extension>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DRIVER_EXTENSION {
    /// `DriverObject`: back pointer to the driver object.
    pub DriverObject: PDRIVER_OBJECT,
    /// `AddDevice`: the Plug and Play `AddDevice` routine.
    pub AddDevice: PDRIVER_ADD_DEVICE,
    /// `Count`: how often the reinitialisation routine has run.
    pub Count: ULONG,
    /// `ServiceKeyName`: the driver's service name.
    pub ServiceKeyName: UNICODE_STRING,
}
/// `PDRIVER_EXTENSION`: pointer to [`DRIVER_EXTENSION`].
pub type PDRIVER_EXTENSION = *mut DRIVER_EXTENSION;

/// `DRIVER_OBJECT`: the driver's object, passed to `DriverEntry`.
///
/// A driver sets `DriverUnload` and its `MajorFunction` dispatch routines in
/// `DriverEntry`; the other fields are the system's.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_driver_object>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DRIVER_OBJECT {
    /// `Type`: `IO_TYPE_DRIVER`.
    pub Type: CSHORT,
    /// `Size`: bytes of the object.
    pub Size: CSHORT,
    /// `DeviceObject`: the driver's first device object.
    pub DeviceObject: PDEVICE_OBJECT,
    /// `Flags`: `DRVO_*` flags.
    pub Flags: ULONG,
    /// `DriverStart`: the image's base address.
    pub DriverStart: PVOID,
    /// `DriverSize`: the image's size.
    pub DriverSize: ULONG,
    /// `DriverSection`: the loader's entry for the image.
    pub DriverSection: PVOID,
    /// `DriverExtension`: the driver extension.
    pub DriverExtension: PDRIVER_EXTENSION,
    /// `DriverName`: the driver object's name.
    pub DriverName: UNICODE_STRING,
    /// `HardwareDatabase`: the registry path of the hardware configuration.
    pub HardwareDatabase: PUNICODE_STRING,
    /// `FastIoDispatch`: fast I/O entry points (file systems).
    pub FastIoDispatch: PFAST_IO_DISPATCH,
    /// `DriverInit`: the entry point.
    pub DriverInit: PDRIVER_INITIALIZE,
    /// `DriverStartIo`: the `StartIo` routine.
    pub DriverStartIo: PDRIVER_STARTIO,
    /// `DriverUnload`: the `Unload` routine; set it for the driver to be unloadable.
    pub DriverUnload: PDRIVER_UNLOAD,
    /// `MajorFunction`: the dispatch routine of each `IRP_MJ_*` code.
    pub MajorFunction: [PDRIVER_DISPATCH; IRP_MJ_MAXIMUM_FUNCTION as usize + 1],
}
/// `PDRIVER_OBJECT`: pointer to [`DRIVER_OBJECT`].
pub type PDRIVER_OBJECT = *mut DRIVER_OBJECT;

/// `DRVO_UNLOAD_INVOKED`: the unload routine has been called.
pub const DRVO_UNLOAD_INVOKED: ULONG = 0x0000_0001;
/// `DRVO_LEGACY_DRIVER`: a non-PnP driver.
pub const DRVO_LEGACY_DRIVER: ULONG = 0x0000_0002;

// ---------------------------------------------------------------------------
// Work items and system threads
// ---------------------------------------------------------------------------

/// `WORK_QUEUE_TYPE`: the system worker queue a work item runs on.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ne-wdm-_work_queue_type>
pub type WORK_QUEUE_TYPE = INT;
/// `CriticalWorkQueue`: time-critical work.
pub const CriticalWorkQueue: WORK_QUEUE_TYPE = 0;
/// `DelayedWorkQueue`: ordinary work (the usual choice).
pub const DelayedWorkQueue: WORK_QUEUE_TYPE = 1;
/// `HyperCriticalWorkQueue`: reserved for the system.
pub const HyperCriticalWorkQueue: WORK_QUEUE_TYPE = 2;
/// `NormalWorkQueue`.
pub const NormalWorkQueue: WORK_QUEUE_TYPE = 3;
/// `BackgroundWorkQueue`.
pub const BackgroundWorkQueue: WORK_QUEUE_TYPE = 4;
/// `RealTimeWorkQueue`.
pub const RealTimeWorkQueue: WORK_QUEUE_TYPE = 5;
/// `SuperCriticalWorkQueue`.
pub const SuperCriticalWorkQueue: WORK_QUEUE_TYPE = 6;
/// `MaximumWorkQueue`.
pub const MaximumWorkQueue: WORK_QUEUE_TYPE = 7;
/// `CustomPriorityWorkQueue`: base of the custom priorities.
pub const CustomPriorityWorkQueue: WORK_QUEUE_TYPE = 32;

/// `PIO_WORKITEM_ROUTINE`: a work item's routine ([`IoQueueWorkItem`]).
///
/// IRQL: `PASSIVE_LEVEL`, in a system worker thread.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-io_workitem_routine>
pub type PIO_WORKITEM_ROUTINE =
    Option<unsafe extern "system" fn(DeviceObject: PDEVICE_OBJECT, Context: PVOID)>;

/// `PIO_WORKITEM_ROUTINE_EX`: a work item's routine ([`IoQueueWorkItemEx`]);
/// it may free its own work item.
///
/// IRQL: `PASSIVE_LEVEL`, in a system worker thread.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-io_workitem_routine_ex>
pub type PIO_WORKITEM_ROUTINE_EX =
    Option<unsafe extern "system" fn(IoObject: PVOID, Context: PVOID, IoWorkItem: PIO_WORKITEM)>;

/// `PKSTART_ROUTINE`: a system thread's entry point ([`PsCreateSystemThread`]);
/// it ends with [`PsTerminateSystemThread`] or by returning.
///
/// IRQL: `PASSIVE_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-kstart_routine>
pub type PKSTART_ROUTINE = Option<unsafe extern "system" fn(StartContext: PVOID)>;

/// `CLIENT_ID`: a process and thread identifier pair.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CLIENT_ID {
    /// `UniqueProcess`.
    pub UniqueProcess: HANDLE,
    /// `UniqueThread`.
    pub UniqueThread: HANDLE,
}
/// `PCLIENT_ID`: pointer to [`CLIENT_ID`].
pub type PCLIENT_ID = *mut CLIENT_ID;

// ---------------------------------------------------------------------------
// Object manager and registry
// ---------------------------------------------------------------------------

/// `OBJECT_ATTRIBUTES` (`ntdef.h`): names an object for `Zw*Open*` routines;
/// build one with [`InitializeObjectAttributes`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wudfwdm/ns-wudfwdm-_object_attributes>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OBJECT_ATTRIBUTES {
    /// `Length`: `size_of::<OBJECT_ATTRIBUTES>()`.
    pub Length: ULONG,
    /// `RootDirectory`: a handle `ObjectName` is relative to, or null.
    pub RootDirectory: HANDLE,
    /// `ObjectName`: the object's name.
    pub ObjectName: PUNICODE_STRING,
    /// `Attributes`: `OBJ_*` flags.
    pub Attributes: ULONG,
    /// `SecurityDescriptor`: for objects being created, or null.
    pub SecurityDescriptor: PVOID,
    /// `SecurityQualityOfService`: null.
    pub SecurityQualityOfService: PVOID,
}
/// `POBJECT_ATTRIBUTES`: pointer to [`OBJECT_ATTRIBUTES`].
pub type POBJECT_ATTRIBUTES = *mut OBJECT_ATTRIBUTES;

/// `OBJ_INHERIT`: the handle is inherited by child processes.
pub const OBJ_INHERIT: ULONG = 0x0000_0002;
/// `OBJ_PERMANENT`: the object outlives its last handle.
pub const OBJ_PERMANENT: ULONG = 0x0000_0010;
/// `OBJ_EXCLUSIVE`: only one handle may be open.
pub const OBJ_EXCLUSIVE: ULONG = 0x0000_0020;
/// `OBJ_CASE_INSENSITIVE`: compare names case-insensitively.
pub const OBJ_CASE_INSENSITIVE: ULONG = 0x0000_0040;
/// `OBJ_OPENIF`: open the object if it already exists.
pub const OBJ_OPENIF: ULONG = 0x0000_0080;
/// `OBJ_OPENLINK`: open a symbolic link itself.
pub const OBJ_OPENLINK: ULONG = 0x0000_0100;
/// `OBJ_KERNEL_HANDLE`: a kernel handle, not usable from user mode (drivers
/// should always set it).
pub const OBJ_KERNEL_HANDLE: ULONG = 0x0000_0200;
/// `OBJ_FORCE_ACCESS_CHECK`: check access even in kernel mode.
pub const OBJ_FORCE_ACCESS_CHECK: ULONG = 0x0000_0400;
/// `OBJ_VALID_ATTRIBUTES`: every valid `OBJ_*` bit.
pub const OBJ_VALID_ATTRIBUTES: ULONG = 0x0000_1FF2;

/// `OBJECT_HANDLE_INFORMATION`: what [`ObReferenceObjectByHandle`] reports
/// about a handle.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OBJECT_HANDLE_INFORMATION {
    /// `HandleAttributes`.
    pub HandleAttributes: ULONG,
    /// `GrantedAccess`.
    pub GrantedAccess: ACCESS_MASK,
}
/// `POBJECT_HANDLE_INFORMATION`: pointer to [`OBJECT_HANDLE_INFORMATION`].
pub type POBJECT_HANDLE_INFORMATION = *mut OBJECT_HANDLE_INFORMATION;

/// `KEY_QUERY_VALUE`: right to read values.
pub const KEY_QUERY_VALUE: ACCESS_MASK = 0x0001;
/// `KEY_SET_VALUE`: right to write values.
pub const KEY_SET_VALUE: ACCESS_MASK = 0x0002;
/// `KEY_CREATE_SUB_KEY`: right to create subkeys.
pub const KEY_CREATE_SUB_KEY: ACCESS_MASK = 0x0004;
/// `KEY_ENUMERATE_SUB_KEYS`: right to enumerate subkeys.
pub const KEY_ENUMERATE_SUB_KEYS: ACCESS_MASK = 0x0008;
/// `KEY_NOTIFY`: right to request change notifications.
pub const KEY_NOTIFY: ACCESS_MASK = 0x0010;
/// `KEY_CREATE_LINK`: right to create symbolic links.
pub const KEY_CREATE_LINK: ACCESS_MASK = 0x0020;
/// `KEY_READ`: read access to a key.
pub const KEY_READ: ACCESS_MASK =
    (STANDARD_RIGHTS_READ | KEY_QUERY_VALUE | KEY_ENUMERATE_SUB_KEYS | KEY_NOTIFY) & !SYNCHRONIZE;
/// `KEY_WRITE`: write access to a key.
pub const KEY_WRITE: ACCESS_MASK =
    (STANDARD_RIGHTS_WRITE | KEY_SET_VALUE | KEY_CREATE_SUB_KEY) & !SYNCHRONIZE;
/// `KEY_EXECUTE`: same as [`KEY_READ`].
pub const KEY_EXECUTE: ACCESS_MASK = KEY_READ & !SYNCHRONIZE;
/// `KEY_ALL_ACCESS`: full access to a key.
pub const KEY_ALL_ACCESS: ACCESS_MASK = (STANDARD_RIGHTS_ALL
    | KEY_QUERY_VALUE
    | KEY_SET_VALUE
    | KEY_CREATE_SUB_KEY
    | KEY_ENUMERATE_SUB_KEYS
    | KEY_NOTIFY
    | KEY_CREATE_LINK)
    & !SYNCHRONIZE;

/// `REG_NONE`: no value type.
pub const REG_NONE: ULONG = 0;
/// `REG_SZ`: a NUL-terminated UTF-16 string.
pub const REG_SZ: ULONG = 1;
/// `REG_EXPAND_SZ`: a UTF-16 string with unexpanded `%VARIABLE%` references.
pub const REG_EXPAND_SZ: ULONG = 2;
/// `REG_BINARY`: free-form binary data.
pub const REG_BINARY: ULONG = 3;
/// `REG_DWORD`: a little-endian 32-bit number.
pub const REG_DWORD: ULONG = 4;
/// `REG_DWORD_LITTLE_ENDIAN`: same as [`REG_DWORD`].
pub const REG_DWORD_LITTLE_ENDIAN: ULONG = 4;
/// `REG_DWORD_BIG_ENDIAN`: a big-endian 32-bit number.
pub const REG_DWORD_BIG_ENDIAN: ULONG = 5;
/// `REG_LINK`: a symbolic link (UTF-16).
pub const REG_LINK: ULONG = 6;
/// `REG_MULTI_SZ`: a sequence of NUL-terminated UTF-16 strings, ended by an
/// empty string.
pub const REG_MULTI_SZ: ULONG = 7;
/// `REG_RESOURCE_LIST`.
pub const REG_RESOURCE_LIST: ULONG = 8;
/// `REG_FULL_RESOURCE_DESCRIPTOR`.
pub const REG_FULL_RESOURCE_DESCRIPTOR: ULONG = 9;
/// `REG_RESOURCE_REQUIREMENTS_LIST`.
pub const REG_RESOURCE_REQUIREMENTS_LIST: ULONG = 10;
/// `REG_QWORD`: a little-endian 64-bit number.
pub const REG_QWORD: ULONG = 11;
/// `REG_QWORD_LITTLE_ENDIAN`: same as [`REG_QWORD`].
pub const REG_QWORD_LITTLE_ENDIAN: ULONG = 11;

/// `KEY_VALUE_INFORMATION_CLASS`: the layout [`ZwQueryValueKey`] returns.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ne-wdm-_key_value_information_class>
pub type KEY_VALUE_INFORMATION_CLASS = INT;
/// `KeyValueBasicInformation`: `KEY_VALUE_BASIC_INFORMATION`.
pub const KeyValueBasicInformation: KEY_VALUE_INFORMATION_CLASS = 0;
/// `KeyValueFullInformation`: `KEY_VALUE_FULL_INFORMATION`.
pub const KeyValueFullInformation: KEY_VALUE_INFORMATION_CLASS = 1;
/// `KeyValuePartialInformation`: [`KEY_VALUE_PARTIAL_INFORMATION`].
pub const KeyValuePartialInformation: KEY_VALUE_INFORMATION_CLASS = 2;
/// `KeyValueFullInformationAlign64`.
pub const KeyValueFullInformationAlign64: KEY_VALUE_INFORMATION_CLASS = 3;
/// `KeyValuePartialInformationAlign64`.
pub const KeyValuePartialInformationAlign64: KEY_VALUE_INFORMATION_CLASS = 4;
/// `KeyValueLayerInformation`.
pub const KeyValueLayerInformation: KEY_VALUE_INFORMATION_CLASS = 5;

/// `KEY_VALUE_PARTIAL_INFORMATION`: a value's type and data.
///
/// Variable-sized: `Data` really holds `DataLength` bytes. Query into a
/// buffer of at least `offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Data) +
/// data length` bytes.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_key_value_partial_information>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KEY_VALUE_PARTIAL_INFORMATION {
    /// `TitleIndex`: unused.
    pub TitleIndex: ULONG,
    /// `Type`: a `REG_*` value type.
    pub Type: ULONG,
    /// `DataLength`: bytes of data.
    pub DataLength: ULONG,
    /// `Data`: the first byte of the data.
    pub Data: [UCHAR; 1],
}
/// `PKEY_VALUE_PARTIAL_INFORMATION`: pointer to [`KEY_VALUE_PARTIAL_INFORMATION`].
pub type PKEY_VALUE_PARTIAL_INFORMATION = *mut KEY_VALUE_PARTIAL_INFORMATION;

// ---------------------------------------------------------------------------
// Operating system version
// ---------------------------------------------------------------------------

/// `RTL_OSVERSIONINFOW`: what [`RtlGetVersion`] reports. Set
/// `dwOSVersionInfoSize` to `size_of::<RTL_OSVERSIONINFOW>()` before the call.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_osversioninfow>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RTL_OSVERSIONINFOW {
    /// `dwOSVersionInfoSize`: the size of the structure passed, in bytes.
    pub dwOSVersionInfoSize: ULONG,
    /// `dwMajorVersion`: 6 for Vista to 8.1, 10 for Windows 10 and 11.
    pub dwMajorVersion: ULONG,
    /// `dwMinorVersion`: 0 Vista, 1 Windows 7, 2 Windows 8, 3 Windows 8.1.
    pub dwMinorVersion: ULONG,
    /// `dwBuildNumber`: for example 15063 for Windows 10 1703.
    pub dwBuildNumber: ULONG,
    /// `dwPlatformId`: `VER_PLATFORM_WIN32_NT` (2).
    pub dwPlatformId: ULONG,
    /// `szCSDVersion`: the service pack, NUL-terminated (empty if none).
    pub szCSDVersion: [WCHAR; 128],
}
/// `PRTL_OSVERSIONINFOW`: pointer to [`RTL_OSVERSIONINFOW`].
pub type PRTL_OSVERSIONINFOW = *mut RTL_OSVERSIONINFOW;

impl Default for RTL_OSVERSIONINFOW {
    /// Zeroed, with `dwOSVersionInfoSize` set, ready for [`RtlGetVersion`].
    fn default() -> Self {
        Self {
            #[allow(clippy::cast_possible_truncation)] // 276
            dwOSVersionInfoSize: size_of::<Self>() as ULONG,
            dwMajorVersion: 0,
            dwMinorVersion: 0,
            dwBuildNumber: 0,
            dwPlatformId: 0,
            szCSDVersion: [0; 128],
        }
    }
}

/// `RTL_OSVERSIONINFOEXW`: [`RTL_OSVERSIONINFOW`] followed by the service
/// pack numbers, suite mask and product type; [`RtlGetVersion`] fills it in
/// when `dwOSVersionInfoSize` is its size (pass it cast to
/// [`PRTL_OSVERSIONINFOW`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/ns-wdm-_osversioninfoexw>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RTL_OSVERSIONINFOEXW {
    /// `dwOSVersionInfoSize`: the size of the structure passed, in bytes.
    pub dwOSVersionInfoSize: ULONG,
    /// `dwMajorVersion`.
    pub dwMajorVersion: ULONG,
    /// `dwMinorVersion`.
    pub dwMinorVersion: ULONG,
    /// `dwBuildNumber`.
    pub dwBuildNumber: ULONG,
    /// `dwPlatformId`.
    pub dwPlatformId: ULONG,
    /// `szCSDVersion`.
    pub szCSDVersion: [WCHAR; 128],
    /// `wServicePackMajor`.
    pub wServicePackMajor: USHORT,
    /// `wServicePackMinor`.
    pub wServicePackMinor: USHORT,
    /// `wSuiteMask`: `VER_SUITE_*` bits.
    pub wSuiteMask: USHORT,
    /// `wProductType`: `VER_NT_WORKSTATION` (1), `VER_NT_DOMAIN_CONTROLLER`
    /// (2) or `VER_NT_SERVER` (3).
    pub wProductType: UCHAR,
    /// `wReserved`.
    pub wReserved: UCHAR,
}
/// `PRTL_OSVERSIONINFOEXW`: pointer to [`RTL_OSVERSIONINFOEXW`].
pub type PRTL_OSVERSIONINFOEXW = *mut RTL_OSVERSIONINFOEXW;

/// `VER_PLATFORM_WIN32_NT`: `dwPlatformId` of every Windows NT release.
pub const VER_PLATFORM_WIN32_NT: ULONG = 2;

// ---------------------------------------------------------------------------
// Routines exported by ntoskrnl.exe
// ---------------------------------------------------------------------------

#[cfg_attr(
    all(windows, not(feature = "sim")),
    link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "system" {
    // --- IRPs ------------------------------------------------------------

    /// Allocates an IRP with `StackSize` stack locations (at least 1 for a
    /// WSK call); null when out of memory. Free with [`IoFreeIrp`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateirp>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoAllocateIrp(StackSize: CCHAR, ChargeQuota: BOOLEAN) -> PIRP;

    /// Frees an IRP from [`IoAllocateIrp`] (after it completed).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeirp>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoFreeIrp(Irp: PIRP);

    /// Reinitialises a completed IRP from [`IoAllocateIrp`] for reuse, with
    /// `IoStatus.Status = Iostatus`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioreuseirp>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoReuseIrp(Irp: PIRP, Iostatus: NTSTATUS);

    /// Initialises `PacketSize` bytes of caller-allocated non-paged memory
    /// (at least [`IoSizeOfIrp`]`(StackSize)`) as an IRP.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioinitializeirp>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoInitializeIrp(Irp: PIRP, PacketSize: USHORT, StackSize: CCHAR);

    /// Requests cancellation of an IRP; returns `TRUE` if a cancel routine was
    /// called. Completion still happens through the completion routine.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocancelirp>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoCancelIrp(Irp: PIRP) -> BOOLEAN;

    /// Completes an IRP (`IoCompleteRequest` is a macro for this `FASTCALL`
    /// routine; see [`IoCompleteRequest`]).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IofCompleteRequest(Irp: PIRP, PriorityBoost: CCHAR);

    /// Sends an IRP to a device's driver (`IoCallDriver` is a macro for this
    /// `FASTCALL` routine; see [`IoCallDriver`]).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocalldriver>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IofCallDriver(DeviceObject: PDEVICE_OBJECT, Irp: PIRP) -> NTSTATUS;

    // --- MDLs ------------------------------------------------------------

    /// Allocates an MDL describing `Length` bytes at `VirtualAddress`; null
    /// when out of memory. Pass a null `Irp`. Free with [`IoFreeMdl`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocatemdl>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoAllocateMdl(
        VirtualAddress: PVOID,
        Length: ULONG,
        SecondaryBuffer: BOOLEAN,
        ChargeQuota: BOOLEAN,
        Irp: PIRP,
    ) -> PMDL;

    /// Frees an MDL from [`IoAllocateMdl`] (unlock its pages first).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreemdl>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoFreeMdl(Mdl: PMDL);

    /// Fills in the page array of an MDL that describes non-paged pool.
    /// (A no-op stub in Wine 8, which reads buffers through `StartVa`.)
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmbuildmdlfornonpagedpool>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn MmBuildMdlForNonPagedPool(MemoryDescriptorList: PMDL);

    /// Probes and locks the pages an MDL describes. Raises an exception (not
    /// catchable from Rust) on an invalid buffer: use it only on memory known
    /// to be valid.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmprobeandlockpages>
    ///
    /// IRQL: `<= APC_LEVEL` for pageable buffers, `<= DISPATCH_LEVEL` for
    /// non-pageable ones.
    pub fn MmProbeAndLockPages(
        MemoryDescriptorList: PMDL,
        AccessMode: KPROCESSOR_MODE,
        Operation: LOCK_OPERATION,
    );

    /// Unlocks the pages [`MmProbeAndLockPages`] locked.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmunlockpages>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn MmUnlockPages(MemoryDescriptorList: PMDL);

    /// Maps an MDL's locked pages; `Priority` is an [`MM_PAGE_PRIORITY`] OR'd
    /// with `MdlMapping*` flags. Null on failure when `BugCheckOnFailure` is 0.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmmaplockedpagesspecifycache>
    ///
    /// IRQL: `<= DISPATCH_LEVEL` for `KernelMode`, `<= APC_LEVEL` for `UserMode`.
    pub fn MmMapLockedPagesSpecifyCache(
        MemoryDescriptorList: PMDL,
        AccessMode: KPROCESSOR_MODE,
        CacheType: MEMORY_CACHING_TYPE,
        RequestedAddress: PVOID,
        BugCheckOnFailure: ULONG,
        Priority: ULONG,
    ) -> PVOID;

    /// Releases a mapping made by [`MmMapLockedPagesSpecifyCache`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmunmaplockedpages>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn MmUnmapLockedPages(BaseAddress: PVOID, MemoryDescriptorList: PMDL);

    // --- Events and waits -------------------------------------------------

    /// Initialises an event object in non-paged storage.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializeevent>
    ///
    /// IRQL: any level.
    pub fn KeInitializeEvent(Event: PRKEVENT, Type: EVENT_TYPE, State: BOOLEAN);

    /// Signals an event; returns its previous state. Pass `Wait = FALSE`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesetevent>
    ///
    /// IRQL: `<= DISPATCH_LEVEL` (`<= APC_LEVEL` when `Wait` is `TRUE`).
    pub fn KeSetEvent(Event: PRKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG;

    /// Resets an event to not signalled.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keclearevent>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeClearEvent(Event: PRKEVENT);

    /// Resets an event to not signalled; returns its previous state.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keresetevent>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeResetEvent(Event: PRKEVENT) -> LONG;

    /// Returns an event's state (non-zero when signalled).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereadstateevent>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeReadStateEvent(Event: PRKEVENT) -> LONG;

    /// Waits for a dispatcher object (`Object` points to a [`KEVENT`], …).
    /// `Timeout` is in 100 ns units, negative for relative; null waits
    /// forever. Returns `STATUS_SUCCESS`, `STATUS_TIMEOUT`, `STATUS_ALERTED`
    /// or `STATUS_USER_APC`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitforsingleobject>
    ///
    /// IRQL: `<= APC_LEVEL`; `<= DISPATCH_LEVEL` only with a zero `Timeout`.
    pub fn KeWaitForSingleObject(
        Object: PVOID,
        WaitReason: KWAIT_REASON,
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Timeout: PLARGE_INTEGER,
    ) -> NTSTATUS;

    /// Waits for any or all of `Count` dispatcher objects. `WaitBlockArray`
    /// may be null when `Count <= THREAD_WAIT_OBJECTS`. Returns
    /// `STATUS_WAIT_0 + index` for `WaitAny`, or as [`KeWaitForSingleObject`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitformultipleobjects>
    ///
    /// IRQL: `<= APC_LEVEL`; `<= DISPATCH_LEVEL` only with a zero `Timeout`.
    pub fn KeWaitForMultipleObjects(
        Count: ULONG,
        Object: *mut PVOID,
        WaitType: WAIT_TYPE,
        WaitReason: KWAIT_REASON,
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Timeout: PLARGE_INTEGER,
        WaitBlockArray: PKWAIT_BLOCK,
    ) -> NTSTATUS;

    /// Sleeps the current thread for `Interval` (100 ns units, negative for
    /// relative).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kedelayexecutionthread>
    ///
    /// IRQL: `<= APC_LEVEL`.
    pub fn KeDelayExecutionThread(
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Interval: PLARGE_INTEGER,
    ) -> NTSTATUS;

    // --- Semaphores, timers and DPCs ------------------------------------

    /// Initialises a semaphore object in non-paged storage with `Count`
    /// (`0..=Limit`; non-zero means signalled) and `Limit` (positive).
    /// Windows 2000 and later.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializesemaphore>
    ///
    /// IRQL: `PASSIVE_LEVEL` (the page; `wdm.h` annotates `<= DISPATCH_LEVEL`).
    pub fn KeInitializeSemaphore(Semaphore: PRKSEMAPHORE, Count: LONG, Limit: LONG);

    /// Adds `Adjustment` (positive) to a semaphore's count, releasing that
    /// many waits; returns the previous count. Exceeding the limit raises
    /// `STATUS_SEMAPHORE_LIMIT_EXCEEDED`. Pass `Wait = FALSE`. Windows 2000
    /// and later.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasesemaphore>
    ///
    /// IRQL: `<= DISPATCH_LEVEL` with `Wait = FALSE` (`PASSIVE_LEVEL` otherwise).
    pub fn KeReleaseSemaphore(
        Semaphore: PRKSEMAPHORE,
        Increment: KPRIORITY,
        Adjustment: LONG,
        Wait: BOOLEAN,
    ) -> LONG;

    /// Initialises a notification timer in non-paged storage (not signalled,
    /// not set). Windows 2000 and later.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializetimer>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeInitializeTimer(Timer: PKTIMER);

    /// Sets a timer to expire once at `DueTime` (100 ns units; negative is
    /// relative, positive absolute system time) and, if `Dpc` is not null, to
    /// queue that DPC when it expires; a timer already set is cancelled first.
    /// Returns `TRUE` if the timer was already in the timer queue. A relative
    /// expiry can come up to one clock tick early or late (Timer Accuracy).
    /// Windows 2000 and later. (Wine runs the DPC from a thread-pool timer
    /// callback; see [`KeCancelTimer`] for how its cancel differs.)
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeSetTimer(Timer: PKTIMER, DueTime: LARGE_INTEGER, Dpc: PKDPC) -> BOOLEAN;

    /// Removes a timer from the timer queue; returns `TRUE` if it was there
    /// (then its DPC will not be queued by it). `FALSE` for a one-shot timer
    /// means it already expired: its DPC may be queued or running, and the
    /// driver must not free what the DPC uses until the DPC has finished.
    /// Windows 2000 and later. (Wine's `KeCancelTimer` waits for a running
    /// timer callback and returns `TRUE` for any timer set and not cancelled
    /// since, expired or not: `dlls/ntoskrnl.exe/sync.c`.)
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kecanceltimer>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeCancelTimer(Timer: PKTIMER) -> BOOLEAN;

    /// Initialises a DPC object in non-paged storage with its routine and
    /// context. Windows 2000 and later.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializedpc>
    ///
    /// IRQL: any level.
    pub fn KeInitializeDpc(
        Dpc: PRKDPC,
        DeferredRoutine: PKDEFERRED_ROUTINE,
        DeferredContext: PVOID,
    );

    /// Queues an initialised DPC for execution; returns `FALSE` without doing
    /// anything if it is already in a DPC queue (a DPC object is queued at
    /// most once at a time). Windows 2000 and later.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinsertqueuedpc>
    ///
    /// IRQL: any level.
    pub fn KeInsertQueueDpc(Dpc: PRKDPC, SystemArgument1: PVOID, SystemArgument2: PVOID)
    -> BOOLEAN;

    /// Returns once every DPC queued on any processor before the call has run
    /// to completion (DPCs queued during the call are not covered). Slow: not
    /// for critical paths. Windows XP SP2, Windows Server 2003 and later.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keflushqueueddpcs>
    ///
    /// IRQL: `PASSIVE_LEVEL` (the page; `wdm.h` annotates `<= APC_LEVEL`).
    pub fn KeFlushQueuedDpcs();

    // --- Time and IRQL ----------------------------------------------------

    /// Returns the interrupt time (100 ns units since boot, including sleep)
    /// and, through `QpcTimeStamp`, the matching performance counter.
    /// Windows 8.1 and later; *not exported by Wine 8*.
    /// (`KeQueryInterruptTime` itself is a `wdm.h` macro on `x86_64` and
    /// `aarch64` reading the kernel's shared page, so it is not provided.)
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequeryinterrupttimeprecise>
    ///
    /// IRQL: any level.
    pub fn KeQueryInterruptTimePrecise(QpcTimeStamp: *mut ULONG64) -> ULONG64;

    /// Returns the interrupt time (100 ns units since boot) without the time
    /// spent asleep or hibernating. Windows 7 and later; *not exported by
    /// Wine 8*.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequeryunbiasedinterrupttime>
    ///
    /// IRQL: any level.
    pub fn KeQueryUnbiasedInterruptTime() -> ULONGLONG;

    /// Returns the 100 ns units added to the system time at each clock tick.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequerytimeincrement>
    ///
    /// IRQL: any level.
    pub fn KeQueryTimeIncrement() -> ULONG;

    /// Returns the current IRQL.
    ///
    /// `wdm.h` inlines it on `x86_64` as a `CR8` read; `ntoskrnl.exe` also
    /// exports it on `x86_64` and `aarch64`, and this import is what works in
    /// user mode under `wsk-sim`. *Not exported by Wine 8's `ntoskrnl.exe` on
    /// `x86_64`* (Wine exports it from `hal.dll` on other architectures only).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kegetcurrentirql>
    ///
    /// IRQL: any level.
    pub fn KeGetCurrentIrql() -> KIRQL;

    // --- Spin locks -------------------------------------------------------

    /// Acquires a spin lock, raising to `DISPATCH_LEVEL`; returns the IRQL to
    /// restore with [`KeReleaseSpinLock`]. (`KeAcquireSpinLock` is a macro for it.)
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockraisetodpc>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: PKSPIN_LOCK) -> KIRQL;

    /// Releases a spin lock and restores `NewIrql`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlock>
    ///
    /// IRQL: `DISPATCH_LEVEL`.
    pub fn KeReleaseSpinLock(SpinLock: PKSPIN_LOCK, NewIrql: KIRQL);

    /// Acquires a spin lock when already at `DISPATCH_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockatdpclevel>
    ///
    /// IRQL: `>= DISPATCH_LEVEL`.
    pub fn KeAcquireSpinLockAtDpcLevel(SpinLock: PKSPIN_LOCK);

    /// Releases a spin lock taken by [`KeAcquireSpinLockAtDpcLevel`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlockfromdpclevel>
    ///
    /// IRQL: `DISPATCH_LEVEL`.
    pub fn KeReleaseSpinLockFromDpcLevel(SpinLock: PKSPIN_LOCK);

    /// Acquires a spin lock as an in-stack queued spin lock, raising to
    /// `DISPATCH_LEVEL`; `LockHandle` must stay in place until released.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquireinstackqueuedspinlock>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn KeAcquireInStackQueuedSpinLock(SpinLock: PKSPIN_LOCK, LockHandle: PKLOCK_QUEUE_HANDLE);

    /// Releases an in-stack queued spin lock and restores the saved IRQL.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleaseinstackqueuedspinlock>
    ///
    /// IRQL: `DISPATCH_LEVEL`.
    pub fn KeReleaseInStackQueuedSpinLock(LockHandle: PKLOCK_QUEUE_HANDLE);

    // --- Bug checks -------------------------------------------------------

    /// Brings the system down with a bug check. Never returns.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kebugcheckex>
    ///
    /// IRQL: any level.
    pub fn KeBugCheckEx(
        BugCheckCode: ULONG,
        BugCheckParameter1: ULONG_PTR,
        BugCheckParameter2: ULONG_PTR,
        BugCheckParameter3: ULONG_PTR,
        BugCheckParameter4: ULONG_PTR,
    ) -> !;

    // --- Pool -------------------------------------------------------------

    /// Allocates `NumberOfBytes` of pool with a four-character `Tag`; null on
    /// failure. Contents are not initialised. Deprecated by Microsoft from
    /// Windows 10 version 2004 in favour of [`ExAllocatePool2`], but the only
    /// choice on older systems and under Wine 8.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepoolwithtag>
    ///
    /// IRQL: `<= DISPATCH_LEVEL` (`<= APC_LEVEL` for paged pool).
    pub fn ExAllocatePoolWithTag(PoolType: POOL_TYPE, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;

    /// Allocates `NumberOfBytes` of pool described by `POOL_FLAG_*` flags;
    /// zeroed unless `POOL_FLAG_UNINITIALIZED`; null on failure.
    /// Windows 10 version 2004 and later; *not exported by Wine 8*.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepool2>
    ///
    /// IRQL: `<= DISPATCH_LEVEL` (`<= APC_LEVEL` for paged pool).
    pub fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;

    /// Frees pool allocated with tag `Tag`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exfreepoolwithtag>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn ExFreePoolWithTag(P: PVOID, Tag: ULONG);

    /// Frees pool.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exfreepool>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn ExFreePool(P: PVOID);

    // --- Work items -------------------------------------------------------

    /// Allocates and initialises a work item for `DeviceObject`; null when out
    /// of memory. Free with [`IoFreeWorkItem`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoAllocateWorkItem(DeviceObject: PDEVICE_OBJECT) -> PIO_WORKITEM;

    /// Frees a work item from [`IoAllocateWorkItem`] (not while queued).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeworkitem>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoFreeWorkItem(IoWorkItem: PIO_WORKITEM);

    /// Queues a work item: `WorkerRoutine` runs once in a system worker
    /// thread at `PASSIVE_LEVEL`. The driver stays loaded until it returns.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitem>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoQueueWorkItem(
        IoWorkItem: PIO_WORKITEM,
        WorkerRoutine: PIO_WORKITEM_ROUTINE,
        QueueType: WORK_QUEUE_TYPE,
        Context: PVOID,
    );

    /// Queues a work item with an extended routine, which may free the work
    /// item. Windows Vista and later; *not exported by Wine 8*.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitemex>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn IoQueueWorkItemEx(
        IoWorkItem: PIO_WORKITEM,
        WorkerRoutine: PIO_WORKITEM_ROUTINE_EX,
        QueueType: WORK_QUEUE_TYPE,
        Context: PVOID,
    );

    /// Returns the size of an [`IO_WORKITEM`], for [`IoInitializeWorkItem`].
    /// Windows Vista and later; *not exported by Wine 8*.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iosizeofworkitem>
    ///
    /// IRQL: any level.
    pub fn IoSizeofWorkItem() -> ULONG;

    /// Initialises a work item in caller-allocated non-paged memory of
    /// [`IoSizeofWorkItem`] bytes. Windows Vista and later; *not exported by
    /// Wine 8*.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioinitializeworkitem>
    ///
    /// IRQL: any level.
    pub fn IoInitializeWorkItem(IoObject: PVOID, IoWorkItem: PIO_WORKITEM);

    /// Uninitialises a work item from [`IoInitializeWorkItem`] before its
    /// memory is freed (not while queued). Windows Vista and later; *not
    /// exported by Wine 8*.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iouninitializeworkitem>
    ///
    /// IRQL: any level.
    pub fn IoUninitializeWorkItem(IoWorkItem: PIO_WORKITEM);

    // --- System threads ---------------------------------------------------

    /// Creates a system thread running `StartRoutine(StartContext)`. Pass
    /// `ObjectAttributes` with [`OBJ_KERNEL_HANDLE`], null process and client
    /// id; close the returned handle with [`ZwClose`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-pscreatesystemthread>
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub fn PsCreateSystemThread(
        ThreadHandle: PHANDLE,
        DesiredAccess: ULONG,
        ObjectAttributes: POBJECT_ATTRIBUTES,
        ProcessHandle: HANDLE,
        ClientId: PCLIENT_ID,
        StartRoutine: PKSTART_ROUTINE,
        StartContext: PVOID,
    ) -> NTSTATUS;

    /// Terminates the current system thread (does not return on success).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-psterminatesystemthread>
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub fn PsTerminateSystemThread(ExitStatus: NTSTATUS) -> NTSTATUS;

    // --- Object manager ---------------------------------------------------

    /// References the object behind a handle (for example a thread, to wait
    /// on it); release with [`ObDereferenceObject`]. `ObjectType` and
    /// `HandleInformation` may be null.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obreferenceobjectbyhandle>
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub fn ObReferenceObjectByHandle(
        Handle: HANDLE,
        DesiredAccess: ACCESS_MASK,
        ObjectType: POBJECT_TYPE,
        AccessMode: KPROCESSOR_MODE,
        Object: *mut PVOID,
        HandleInformation: POBJECT_HANDLE_INFORMATION,
    ) -> NTSTATUS;

    /// Increments an object's reference count (`ObReferenceObject` is a macro
    /// for this `FASTCALL` routine); returns the new count.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obfreferenceobject>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn ObfReferenceObject(Object: PVOID) -> LONG_PTR;

    /// Decrements an object's reference count (`ObDereferenceObject` is a
    /// macro for this `FASTCALL` routine); returns the new count.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obdereferenceobject>
    ///
    /// IRQL: `<= DISPATCH_LEVEL`.
    pub fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR;

    // --- Handles and the registry -------------------------------------------

    /// Closes a kernel handle.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose>
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub fn ZwClose(Handle: HANDLE) -> NTSTATUS;

    /// Opens a registry key (for example the driver's `RegistryPath` or its
    /// `Parameters` subkey); close with [`ZwClose`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwopenkey>
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub fn ZwOpenKey(
        KeyHandle: PHANDLE,
        DesiredAccess: ACCESS_MASK,
        ObjectAttributes: POBJECT_ATTRIBUTES,
    ) -> NTSTATUS;

    /// Reads a registry value. With a too-small buffer it fails with
    /// `STATUS_BUFFER_OVERFLOW` or `STATUS_BUFFER_TOO_SMALL` and sets
    /// `*ResultLength` to the size needed; a missing value is
    /// `STATUS_OBJECT_NAME_NOT_FOUND`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwqueryvaluekey>
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub fn ZwQueryValueKey(
        KeyHandle: HANDLE,
        ValueName: PUNICODE_STRING,
        KeyValueInformationClass: KEY_VALUE_INFORMATION_CLASS,
        KeyValueInformation: PVOID,
        Length: ULONG,
        ResultLength: PULONG,
    ) -> NTSTATUS;

    // --- Run-time library ---------------------------------------------------

    /// Points `DestinationString` at the NUL-terminated `SourceString` (no
    /// copy); lengths in bytes, without and with the NUL.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlinitunicodestring>
    ///
    /// IRQL: `<= DISPATCH_LEVEL` (the string must then be non-paged).
    pub fn RtlInitUnicodeString(DestinationString: PUNICODE_STRING, SourceString: PCWSTR);

    /// Returns how many leading bytes of two blocks are equal.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcomparememory>
    ///
    /// IRQL: any level (both blocks non-paged above `APC_LEVEL`).
    pub fn RtlCompareMemory(Source1: PCVOID, Source2: PCVOID, Length: SIZE_T) -> SIZE_T;

    /// Reports the running Windows version into an [`RTL_OSVERSIONINFOW`] or
    /// [`RTL_OSVERSIONINFOEXW`] (chosen by its `dwOSVersionInfoSize`, which
    /// the caller sets); returns `STATUS_SUCCESS`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlgetversion>
    ///
    /// IRQL: `PASSIVE_LEVEL`.
    pub fn RtlGetVersion(lpVersionInformation: PRTL_OSVERSIONINFOW) -> NTSTATUS;
}

#[cfg(all(windows, not(feature = "sim")))]
#[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    /// Sends a `printf`-style message to the kernel debugger (and, under Wine
    /// with `WINEDEBUG=warn+debugstr`, to stderr). Returns an `NTSTATUS` as
    /// `ULONG`. `%s`/`%d`/`%x`/`%p` behave as in C; `%ws` and `%wZ` print
    /// wide strings but only at `PASSIVE_LEVEL`.
    ///
    /// Code that must also build for host tests calls it with exactly a format
    /// and one string argument, the form host builds declare. The argument
    /// needs its type spelled out: a variadic argument gives `.cast()`
    /// nothing to infer from (error E0282 on Windows targets only):
    /// `DbgPrint(c"%s".as_ptr().cast(), text.as_ptr().cast::<CHAR>())`,
    /// with `text: &CStr`. `wsk_driver::dbg_println!` does this with Rust
    /// formatting.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprint>
    ///
    /// IRQL: any level (`%ws`, `%wZ`, `%C`, `%S` only at `PASSIVE_LEVEL`).
    pub fn DbgPrint(Format: PCSTR, ...) -> ULONG;
}

#[cfg(not(all(windows, not(feature = "sim"))))]
unsafe extern "C" {
    /// Sends a message to the kernel debugger.
    ///
    /// Host builds (no `ntoskrnl.exe`, or the `sim` feature): the two-argument
    /// `"%s"` form, which the host provider (`wsk-sim`) implements, since
    /// stable Rust cannot define a C-variadic function. Windows kernel builds
    /// declare the real variadic `DbgPrint(Format, ...)`. Code portable across
    /// both calls it with exactly a format and one string argument, its type
    /// spelled out (E0282 on Windows targets otherwise):
    /// `DbgPrint(c"%s".as_ptr().cast(), text.as_ptr().cast::<CHAR>())`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprint>
    ///
    /// IRQL: any level.
    pub fn DbgPrint(Format: PCSTR, Arg: PCSTR) -> ULONG;
}

// ---------------------------------------------------------------------------
// wdm.h macros and FORCEINLINE routines
// ---------------------------------------------------------------------------

/// The address of `Irp->Tail.Overlay.CurrentStackLocation`.
///
/// # Safety
///
/// `Irp` points to an IRP (no read happens).
#[inline]
unsafe fn current_stack_slot(Irp: PIRP) -> *mut PIO_STACK_LOCATION {
    // SAFETY: the caller passes a valid IRP; this only computes a field address.
    unsafe { &raw mut (*Irp).Tail.Overlay.Stack.CurrentStackLocation }
}

/// `IoGetCurrentIrpStackLocation`: the caller's stack location of an IRP.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iogetcurrentirpstacklocation>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller currently owns.
#[inline]
#[must_use]
pub unsafe fn IoGetCurrentIrpStackLocation(Irp: PIRP) -> PIO_STACK_LOCATION {
    // SAFETY: `Irp` is valid (caller's contract).
    let slot = unsafe { current_stack_slot(Irp) };
    // SAFETY: the slot lies inside the IRP and holds a pointer.
    unsafe { *slot }
}

/// `IoGetNextIrpStackLocation`: the stack location of the next-lower driver
/// (the one a WSK call's provider uses), where [`IoSetCompletionRoutine`]
/// writes.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iogetnextirpstacklocation>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller owns, with
/// `CurrentLocation > 1` (a stack location below the current one exists).
#[inline]
#[must_use]
pub unsafe fn IoGetNextIrpStackLocation(Irp: PIRP) -> PIO_STACK_LOCATION {
    // SAFETY: caller's contract.
    let current = unsafe { IoGetCurrentIrpStackLocation(Irp) };
    current.wrapping_sub(1)
}

/// `IoSetNextIrpStackLocation`: pushes the IRP's stack (makes the next
/// location current).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iosetnextirpstacklocation>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller owns, with `CurrentLocation > 1`.
#[inline]
pub unsafe fn IoSetNextIrpStackLocation(Irp: PIRP) {
    // SAFETY: caller's contract: a valid IRP we may write.
    unsafe { (*Irp).CurrentLocation -= 1 };
    // SAFETY: caller's contract.
    let slot = unsafe { current_stack_slot(Irp) };
    // SAFETY: the slot lies inside the IRP and holds a pointer.
    let current = unsafe { *slot };
    // SAFETY: as above; writing a pointer into the IRP.
    unsafe { *slot = current.wrapping_sub(1) };
}

/// `IoSkipCurrentIrpStackLocation`: pops the IRP's stack so the next driver
/// reuses the caller's location (before [`IoCallDriver`], without a
/// completion routine).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioskipcurrentirpstacklocation>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller owns, with
/// `CurrentLocation <= StackCount`.
#[inline]
pub unsafe fn IoSkipCurrentIrpStackLocation(Irp: PIRP) {
    // SAFETY: caller's contract: a valid IRP we may write.
    unsafe { (*Irp).CurrentLocation += 1 };
    // SAFETY: caller's contract.
    let slot = unsafe { current_stack_slot(Irp) };
    // SAFETY: the slot lies inside the IRP and holds a pointer.
    let current = unsafe { *slot };
    // SAFETY: as above; writing a pointer into the IRP.
    unsafe { *slot = current.wrapping_add(1) };
}

/// `IoCopyCurrentIrpStackLocationToNext`: copies the caller's stack location
/// (up to, not including, `CompletionRoutine`) to the next one and clears
/// the next one's `Control`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocopycurrentirpstacklocationtonext>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller owns, with `CurrentLocation > 1`.
#[inline]
pub unsafe fn IoCopyCurrentIrpStackLocationToNext(Irp: PIRP) {
    // SAFETY: caller's contract.
    let current = unsafe { IoGetCurrentIrpStackLocation(Irp) };
    // SAFETY: caller's contract.
    let next = unsafe { IoGetNextIrpStackLocation(Irp) };
    // SAFETY: both locations are distinct, valid stack locations of the IRP.
    unsafe {
        ptr::copy_nonoverlapping(
            current.cast::<u8>().cast_const(),
            next.cast::<u8>(),
            offset_of!(IO_STACK_LOCATION, CompletionRoutine),
        );
    }
    // SAFETY: `next` is a valid stack location.
    unsafe { (*next).Control = 0 };
}

/// `IoSetCompletionRoutine`: sets the `IoCompletion` routine the next-lower
/// driver's completion will call, in the *next* stack location, and sets
/// [`SL_INVOKE_ON_SUCCESS`], [`SL_INVOKE_ON_ERROR`] and [`SL_INVOKE_ON_CANCEL`]
/// in its `Control` as requested (clearing the other bits), exactly as the
/// `wdm.h` routine does. A WSK client that allocated the IRP passes `TRUE`
/// for all three.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iosetcompletionroutine>
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller owns, with `CurrentLocation > 1`;
/// `Context` stays valid until the routine has run.
#[inline]
pub unsafe fn IoSetCompletionRoutine(
    Irp: PIRP,
    CompletionRoutine: PIO_COMPLETION_ROUTINE,
    Context: PVOID,
    InvokeOnSuccess: BOOLEAN,
    InvokeOnError: BOOLEAN,
    InvokeOnCancel: BOOLEAN,
) {
    // SAFETY: caller's contract.
    let next = unsafe { IoGetNextIrpStackLocation(Irp) };
    let mut control = 0;
    if InvokeOnSuccess != FALSE {
        control = SL_INVOKE_ON_SUCCESS;
    }
    if InvokeOnError != FALSE {
        control |= SL_INVOKE_ON_ERROR;
    }
    if InvokeOnCancel != FALSE {
        control |= SL_INVOKE_ON_CANCEL;
    }
    // SAFETY: `next` is a valid stack location of an IRP the caller owns.
    unsafe { (*next).CompletionRoutine = CompletionRoutine };
    // SAFETY: as above.
    unsafe { (*next).Context = Context };
    // SAFETY: as above.
    unsafe { (*next).Control = control };
}

/// `IoMarkIrpPending`: records in the current stack location that the
/// dispatch routine returns `STATUS_PENDING`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iomarkirppending>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller owns.
#[inline]
pub unsafe fn IoMarkIrpPending(Irp: PIRP) {
    // SAFETY: caller's contract.
    let current = unsafe { IoGetCurrentIrpStackLocation(Irp) };
    // SAFETY: the current stack location is valid.
    unsafe { (*current).Control |= SL_PENDING_RETURNED };
}

/// `IoSetCancelRoutine`: atomically installs (or, with `None`, removes) an
/// IRP's cancel routine and returns the previous one, as `wdm.h` does with
/// `InterlockedExchangePointer`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iosetcancelroutine>
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// # Safety
///
/// `Irp` points to a valid IRP that the caller owns or holds cancellable.
#[inline]
pub unsafe fn IoSetCancelRoutine(Irp: PIRP, CancelRoutine: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    // SAFETY: caller's contract; only the field address is computed.
    let field = unsafe { &raw mut (*Irp).CancelRoutine };
    // SAFETY: the field is a pointer-sized, pointer-aligned slot that other
    // threads access only atomically (through this routine or the I/O manager).
    let atomic = unsafe { AtomicPtr::<c_void>::from_ptr(field.cast()) };
    let new = CancelRoutine.map_or(ptr::null_mut(), |f| f as *mut c_void);
    let old = atomic.swap(new, Ordering::SeqCst);
    // SAFETY: the slot only ever holds null or a routine of this type, and
    // `Option<fn>` has the null-pointer niche.
    unsafe { core::mem::transmute::<*mut c_void, PDRIVER_CANCEL>(old) }
}

/// `IoCompleteRequest`: completes an IRP (the `wdm.h` macro for
/// [`IofCompleteRequest`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest>
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// # Safety
///
/// `Irp` is a valid IRP the caller owns, with its `IoStatus` set; the caller
/// must not touch it afterwards.
#[inline]
pub unsafe fn IoCompleteRequest(Irp: PIRP, PriorityBoost: CCHAR) {
    // SAFETY: caller's contract.
    unsafe { IofCompleteRequest(Irp, PriorityBoost) }
}

/// `IoCallDriver`: sends an IRP to a driver (the `wdm.h` macro for
/// [`IofCallDriver`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocalldriver>
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// # Safety
///
/// `DeviceObject` and `Irp` are valid and the next stack location is set up;
/// the IRP belongs to the lower driver until it completes.
#[inline]
pub unsafe fn IoCallDriver(DeviceObject: PDEVICE_OBJECT, Irp: PIRP) -> NTSTATUS {
    // SAFETY: caller's contract.
    unsafe { IofCallDriver(DeviceObject, Irp) }
}

/// `ObReferenceObject`: the `wdm.h` macro for [`ObfReferenceObject`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obfreferenceobject>
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// # Safety
///
/// `Object` points to a live kernel object.
#[inline]
pub unsafe fn ObReferenceObject(Object: PVOID) -> LONG_PTR {
    // SAFETY: caller's contract.
    unsafe { ObfReferenceObject(Object) }
}

/// `ObDereferenceObject`: the `wdm.h` macro for [`ObfDereferenceObject`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obdereferenceobject>
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// # Safety
///
/// `Object` points to a kernel object the caller holds a reference to, which
/// this call gives up.
#[inline]
pub unsafe fn ObDereferenceObject(Object: PVOID) -> LONG_PTR {
    // SAFETY: caller's contract.
    unsafe { ObfDereferenceObject(Object) }
}

/// `IoSizeOfIrp`: bytes needed for an IRP with `StackSize` stack locations,
/// `sizeof(IRP) + StackSize * sizeof(IO_STACK_LOCATION)`, truncated to
/// `USHORT` as in C.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iosizeofirp>
///
/// IRQL: any level.
#[inline]
#[must_use]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // the C macro's arithmetic and `(USHORT)` cast
pub const fn IoSizeOfIrp(StackSize: CCHAR) -> USHORT {
    let stack = (StackSize as isize as usize).wrapping_mul(size_of::<IO_STACK_LOCATION>());
    size_of::<IRP>().wrapping_add(stack) as USHORT
}

/// `MmGetMdlByteCount`: the length of the buffer an MDL describes.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetmdlbytecount>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Mdl` points to a valid MDL.
#[inline]
#[must_use]
pub unsafe fn MmGetMdlByteCount(Mdl: PMDL) -> ULONG {
    // SAFETY: caller's contract.
    unsafe { (*Mdl).ByteCount }
}

/// `MmGetMdlByteOffset`: the buffer's offset into its first page.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetmdlbyteoffset>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Mdl` points to a valid MDL.
#[inline]
#[must_use]
pub unsafe fn MmGetMdlByteOffset(Mdl: PMDL) -> ULONG {
    // SAFETY: caller's contract.
    unsafe { (*Mdl).ByteOffset }
}

/// `MmGetMdlVirtualAddress`: the buffer's (possibly user-space) virtual
/// address, `StartVa + ByteOffset`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetmdlvirtualaddress>
///
/// IRQL: any level.
///
/// # Safety
///
/// `Mdl` points to a valid MDL.
#[inline]
#[must_use]
pub unsafe fn MmGetMdlVirtualAddress(Mdl: PMDL) -> PVOID {
    // SAFETY: caller's contract.
    let start = unsafe { (*Mdl).StartVa };
    // SAFETY: caller's contract.
    let offset = unsafe { (*Mdl).ByteOffset };
    start.cast::<u8>().wrapping_add(offset as usize).cast()
}

/// `MmGetSystemAddressForMdlSafe`: a system-space address for the buffer an
/// MDL describes, mapping it if needed; null on failure. `Priority` is an
/// [`MM_PAGE_PRIORITY`] OR'd with `MdlMapping*` flags (use
/// `NormalPagePriority | MdlMappingNoExecute`).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe>
///
/// IRQL: `<= DISPATCH_LEVEL`.
///
/// # Safety
///
/// `Mdl` points to a valid MDL whose pages are locked or non-paged.
#[inline]
#[must_use]
pub unsafe fn MmGetSystemAddressForMdlSafe(Mdl: PMDL, Priority: ULONG) -> PVOID {
    // SAFETY: caller's contract.
    let flags = unsafe { (*Mdl).MdlFlags };
    if flags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
        // SAFETY: caller's contract.
        unsafe { (*Mdl).MappedSystemVa }
    } else {
        // SAFETY: caller's contract: the pages are locked.
        unsafe {
            MmMapLockedPagesSpecifyCache(Mdl, KernelMode, MmCached, ptr::null_mut(), 0, Priority)
        }
    }
}

/// `KeInitializeSpinLock`: initialises a spin lock (stores 0, as the
/// `KzInitializeSpinLock` inline routine of `wdm.h` does).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializespinlock>
///
/// IRQL: any level.
///
/// # Safety
///
/// `SpinLock` points to writable storage that no one holds or waits on.
#[inline]
pub unsafe fn KeInitializeSpinLock(SpinLock: PKSPIN_LOCK) {
    // SAFETY: caller's contract.
    unsafe { SpinLock.write(0) };
}

/// `InitializeObjectAttributes`: builds an [`OBJECT_ATTRIBUTES`] (the C macro
/// fills one in through a pointer; this returns it).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wudfwdm/nf-wudfwdm-initializeobjectattributes>
///
/// IRQL: any level.
#[inline]
#[must_use]
#[allow(clippy::cast_possible_truncation)] // 0x30 bytes
pub const fn InitializeObjectAttributes(
    ObjectName: PUNICODE_STRING,
    Attributes: ULONG,
    RootDirectory: HANDLE,
    SecurityDescriptor: PSECURITY_DESCRIPTOR,
) -> OBJECT_ATTRIBUTES {
    OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as ULONG,
        RootDirectory,
        ObjectName,
        Attributes,
        SecurityDescriptor,
        SecurityQualityOfService: ptr::null_mut(),
    }
}

/// `RTL_CONSTANT_STRING`: a [`UNICODE_STRING`] over a NUL-terminated UTF-16
/// array (`Length` excludes the NUL, `MaximumLength` includes it).
///
/// IRQL: any level.
///
/// # Panics
///
/// If `s` is empty, does not end with a NUL, or exceeds `USHORT::MAX` bytes
/// (at compile time when used in a `const`).
#[inline]
#[must_use]
#[allow(clippy::cast_possible_truncation)] // checked above
pub const fn RTL_CONSTANT_STRING(s: &'static [WCHAR]) -> UNICODE_STRING {
    assert!(
        !s.is_empty() && s[s.len() - 1] == 0,
        "RTL_CONSTANT_STRING needs a NUL-terminated string"
    );
    let bytes = core::mem::size_of_val(s);
    assert!(
        bytes <= USHORT::MAX as usize,
        "string too long for a UNICODE_STRING"
    );
    UNICODE_STRING {
        Length: (bytes - size_of::<WCHAR>()) as USHORT,
        MaximumLength: bytes as USHORT,
        Buffer: s.as_ptr().cast_mut(),
    }
}

// ---------------------------------------------------------------------------
// Layout checks (64-bit Windows; `wdm.h` of WDK 10.0.16299)
// ---------------------------------------------------------------------------

macro_rules! check_layout {
    ($ty:ty, size $size:expr, align $align:expr $(, $($field:tt).+ @ $off:expr)* $(,)?) => {
        static_assertions::const_assert_eq!(size_of::<$ty>(), $size);
        static_assertions::const_assert_eq!(core::mem::align_of::<$ty>(), $align);
        $(static_assertions::const_assert_eq!(offset_of!($ty, $($field).+), $off);)*
    };
}

check_layout!(IO_STATUS_BLOCK, size 0x10, align 8, Status @ 0, Information @ 8);
check_layout!(RTL_OSVERSIONINFOW, size 276, align 4,
    dwMajorVersion @ 4, dwBuildNumber @ 12, dwPlatformId @ 16, szCSDVersion @ 20);
check_layout!(RTL_OSVERSIONINFOEXW, size 284, align 4,
    szCSDVersion @ 20, wServicePackMajor @ 276, wSuiteMask @ 280, wProductType @ 282,
    wReserved @ 283);
check_layout!(KDEVICE_QUEUE_ENTRY, size 0x18, align 8, SortKey @ 0x10, Inserted @ 0x14);
check_layout!(KAPC, size 0x58, align 8,
    Thread @ 0x08, ApcListEntry @ 0x10, Reserved @ 0x20, NormalContext @ 0x38,
    SystemArgument1 @ 0x40, SystemArgument2 @ 0x48, ApcStateIndex @ 0x50, ApcMode @ 0x51,
    Inserted @ 0x52);
check_layout!(IRP_TAIL_OVERLAY, size 0x50, align 8,
    Context @ 0, Thread @ 0x20, AuxiliaryBuffer @ 0x28, ListEntry @ 0x30, Stack @ 0x40,
    OriginalFileObject @ 0x48);
check_layout!(IRP_TAIL, size 0x58, align 8);
check_layout!(IRP_OVERLAY, size 0x10, align 8);
check_layout!(IRP, size 0xD0, align 16,
    Type @ 0, Size @ 2, MdlAddress @ 0x08, Flags @ 0x10, AssociatedIrp @ 0x18,
    ThreadListEntry @ 0x20, IoStatus @ 0x30, RequestorMode @ 0x40, PendingReturned @ 0x41,
    StackCount @ 0x42, CurrentLocation @ 0x43, Cancel @ 0x44, CancelIrql @ 0x45,
    ApcEnvironment @ 0x46, AllocationFlags @ 0x47, UserIosb @ 0x48, UserEvent @ 0x50,
    Overlay @ 0x58, CancelRoutine @ 0x68, UserBuffer @ 0x70, Tail @ 0x78,
    Tail.Overlay.Context.DriverContext @ 0x78,
    Tail.Overlay.Thread @ 0x98,
    Tail.Overlay.ListEntry @ 0xA8,
    Tail.Overlay.Stack.CurrentStackLocation @ 0xB8,
    Tail.Overlay.OriginalFileObject @ 0xC0,
    Tail.Apc @ 0x78,
    Tail.CompletionKey @ 0x78);
check_layout!(IO_STACK_LOCATION_READ_WRITE, size 0x18, align 8, Key @ 8, ByteOffset @ 0x10);
check_layout!(IO_STACK_LOCATION_DEVICE_IO_CONTROL, size 0x20, align 8,
    InputBufferLength @ 8, IoControlCode @ 0x10, Type3InputBuffer @ 0x18);
check_layout!(IO_STACK_LOCATION_PARAMETERS, size 0x20, align 8);
check_layout!(IO_STACK_LOCATION, size 0x48, align 8,
    MajorFunction @ 0, MinorFunction @ 1, Flags @ 2, Control @ 3, Parameters @ 8,
    DeviceObject @ 0x28, FileObject @ 0x30, CompletionRoutine @ 0x38, Context @ 0x40);
check_layout!(MDL, size 0x30, align 8,
    Next @ 0, Size @ 8, MdlFlags @ 0x0A, Process @ 0x10, MappedSystemVa @ 0x18,
    StartVa @ 0x20, ByteCount @ 0x28, ByteOffset @ 0x2C);
check_layout!(DISPATCHER_HEADER, size 0x18, align 8,
    Type @ 0, Signalling @ 1, Size @ 2, SignalState @ 4, WaitListHead @ 8);
check_layout!(KEVENT, size 0x18, align 8);
check_layout!(KSEMAPHORE, size 0x20, align 8, Header @ 0, Limit @ 0x18);
check_layout!(KTIMER, size 0x40, align 8,
    Header @ 0, DueTime @ 0x18, TimerListEntry @ 0x20, Dpc @ 0x30, Processor @ 0x38,
    Period @ 0x3C);
check_layout!(KDPC, size 0x40, align 8,
    TargetInfoAsUlong @ 0, DpcListEntry @ 8, ProcessorHistory @ 0x10, DeferredRoutine @ 0x18,
    DeferredContext @ 0x20, SystemArgument1 @ 0x28, SystemArgument2 @ 0x30, DpcData @ 0x38);
check_layout!(KSPIN_LOCK_QUEUE, size 0x10, align 8, Lock @ 8);
check_layout!(KLOCK_QUEUE_HANDLE, size 0x18, align 8, OldIrql @ 0x10);
check_layout!(DRIVER_EXTENSION, size 0x28, align 8,
    DriverObject @ 0, AddDevice @ 8, Count @ 0x10, ServiceKeyName @ 0x18);
check_layout!(DRIVER_OBJECT, size 0x150, align 8,
    Type @ 0, Size @ 2, DeviceObject @ 8, Flags @ 0x10, DriverStart @ 0x18,
    DriverSize @ 0x20, DriverSection @ 0x28, DriverExtension @ 0x30, DriverName @ 0x38,
    HardwareDatabase @ 0x48, FastIoDispatch @ 0x50, DriverInit @ 0x58,
    DriverStartIo @ 0x60, DriverUnload @ 0x68, MajorFunction @ 0x70);
check_layout!(CLIENT_ID, size 0x10, align 8, UniqueThread @ 8);
check_layout!(OBJECT_ATTRIBUTES, size 0x30, align 8,
    Length @ 0, RootDirectory @ 8, ObjectName @ 0x10, Attributes @ 0x18,
    SecurityDescriptor @ 0x20, SecurityQualityOfService @ 0x28);
check_layout!(OBJECT_HANDLE_INFORMATION, size 8, align 4, GrantedAccess @ 4);
check_layout!(KEY_VALUE_PARTIAL_INFORMATION, size 0x10, align 4,
    TitleIndex @ 0, Type @ 4, DataLength @ 8, Data @ 0x0C);

// Function pointers are nullable pointers.
static_assertions::assert_eq_size!(PIO_COMPLETION_ROUTINE, PVOID);
static_assertions::assert_eq_size!(PDRIVER_DISPATCH, PVOID);
static_assertions::assert_eq_size!(PKDEFERRED_ROUTINE, PVOID);

// Computed access masks, against the values `wdm.h`'s expressions give.
static_assertions::const_assert_eq!(KEY_READ, 0x0002_0019);
static_assertions::const_assert_eq!(KEY_WRITE, 0x0002_0006);
static_assertions::const_assert_eq!(KEY_ALL_ACCESS, 0x000F_003F);
static_assertions::const_assert_eq!(THREAD_ALL_ACCESS, 0x001F_FFFF);
static_assertions::const_assert_eq!(IoSizeOfIrp(1), 0xD0 + 0x48);
