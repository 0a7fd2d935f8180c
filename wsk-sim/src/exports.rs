//! Every routine `wsk-sys` declares, checked against the simulator's
//! definition and kept linked.
//!
//! For each name, `if black_box(false) { wsk_sys::Name } else { crate::m::Name }`
//! only compiles when the two function items coerce to one function-pointer
//! type, i.e. when the simulator's signature (ABI, `unsafe`, parameter and
//! return types) is exactly the declaration's. Taking every address from
//! [`link_all`] (called by [`Sim::start`](crate::Sim::start)) also keeps the
//! object code that defines them in the final link.

/// Number of routines `wsk-sys` declares for host builds.
pub(crate) const EXPORTED: usize = 69;

macro_rules! exports {
    ($($m:ident :: $name:ident,)*) => {
        /// The address of every exported routine (signature-checked).
        pub(crate) fn link_all() -> usize {
            let table: [usize; EXPORTED] = [$({
                let f = if core::hint::black_box(false) {
                    wsk_sys::$name
                } else {
                    crate::$m::$name
                };
                f as usize
            },)*];
            core::hint::black_box(table).len()
        }
    };
}

exports! {
    pool::ExAllocatePool2,
    pool::ExAllocatePoolWithTag,
    pool::ExFreePool,
    pool::ExFreePoolWithTag,
    io::IoAllocateIrp,
    io::IoAllocateMdl,
    io::IoAllocateWorkItem,
    io::IoCancelIrp,
    io::IoFreeIrp,
    io::IoFreeMdl,
    io::IoFreeWorkItem,
    io::IoInitializeIrp,
    io::IoInitializeWorkItem,
    io::IoQueueWorkItem,
    io::IoQueueWorkItemEx,
    io::IoReuseIrp,
    io::IoSizeofWorkItem,
    io::IoUninitializeWorkItem,
    io::IofCallDriver,
    io::IofCompleteRequest,
    io::MmBuildMdlForNonPagedPool,
    io::MmMapLockedPagesSpecifyCache,
    io::MmProbeAndLockPages,
    io::MmUnlockPages,
    io::MmUnmapLockedPages,
    ke::DbgPrint,
    ke::KeAcquireInStackQueuedSpinLock,
    ke::KeAcquireSpinLockAtDpcLevel,
    ke::KeAcquireSpinLockRaiseToDpc,
    ke::KeBugCheckEx,
    ke::KeClearEvent,
    ke::KeDelayExecutionThread,
    ke::KeGetCurrentIrql,
    ke::KeInitializeEvent,
    ke::KeQueryInterruptTimePrecise,
    ke::KeQueryTimeIncrement,
    ke::KeQueryUnbiasedInterruptTime,
    ke::KeReadStateEvent,
    ke::KeReleaseInStackQueuedSpinLock,
    ke::KeReleaseSpinLock,
    ke::KeReleaseSpinLockFromDpcLevel,
    ke::KeResetEvent,
    ke::KeSetEvent,
    ke::KeWaitForMultipleObjects,
    ke::KeWaitForSingleObject,
    semaphore::KeInitializeSemaphore,
    semaphore::KeReleaseSemaphore,
    timer::KeCancelTimer,
    timer::KeFlushQueuedDpcs,
    timer::KeInitializeDpc,
    timer::KeInsertQueueDpc,
    timer::KeInitializeTimer,
    timer::KeSetTimer,
    ps::ObReferenceObjectByHandle,
    ps::ObfDereferenceObject,
    ps::ObfReferenceObject,
    ps::PsCreateSystemThread,
    ps::PsTerminateSystemThread,
    ps::RtlCompareMemory,
    ps::RtlGetVersion,
    ps::RtlInitUnicodeString,
    ps::ZwClose,
    ps::ZwOpenKey,
    ps::ZwQueryValueKey,
    netio::WskCaptureProviderNPI,
    netio::WskDeregister,
    netio::WskQueryProviderCharacteristics,
    netio::WskRegister,
    netio::WskReleaseProviderNPI,
}
