//! Which `ntoskrnl.exe` and `netio.sys` routines exist on which Windows
//! release, and the check that a driver imports nothing its oldest supported
//! release lacks.
//!
//! Every row of [`TABLE`] cites Microsoft: the routine's reference page (its
//! requirements table, "Minimum supported client") and the declaration in
//! the Windows Driver Kit 10.0.16299 headers (`km/wdm.h`, `km/ntddk.h`,
//! `km/wsk.h`, `km/netioddk.h`): the import macro (`NTKERNELAPI`/`NTSYSAPI`
//! means an `ntoskrnl.exe` export, `NTHALAPI` a `hal.dll` one,
//! `FORCEINLINE` no export at all) and the `NTDDI_VERSION` guard. Where the
//! page states a minimum, that is the row's release; where it states none,
//! the header guard is (`NTDDI_WIN2K` → Windows 2000); where neither limits
//! it, the row says so ([`Availability::Unversioned`]) and the check accepts
//! it on every release. `C` runtime routines (`memcpy`, `memmove`,
//! `memset`) cite the `wdm.h` macros that expand to them (`RtlCopyMemory`,
//! `RtlMoveMemory`, `RtlFillMemory`), whose pages name `NtosKrnl.exe`.
//!
//! The table covers every routine `wsk-sys` imports; an import it does not
//! know is reported as unchecked, not as an error.

use crate::pe::Import;
use crate::windows::Windows;

/// When a routine is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Exported from this release on (both architectures, each from its own
    /// first release).
    Since(Windows),
    /// Exported, with no minimum release stated by Microsoft (no
    /// requirement row, no `NTDDI_VERSION` guard).
    Unversioned,
    /// Not an export of this DLL according to Microsoft's headers: importing
    /// it fails to load on Windows.
    NotExported,
}

/// One routine of [`TABLE`].
#[derive(Debug, Clone, Copy)]
pub struct Routine {
    /// The exported name.
    pub name: &'static str,
    /// The DLL exporting it (`ntoskrnl.exe` or `netio.sys`).
    pub dll: &'static str,
    /// When it is exported.
    pub availability: Availability,
    /// The Microsoft Learn reference page.
    pub url: &'static str,
    /// The page's "Minimum supported client", verbatim (empty: none stated).
    pub page_says: &'static str,
    /// The WDK 10.0.16299 declaration: header, import macro, version guard.
    pub header_says: &'static str,
}

const fn routine(
    name: &'static str,
    dll: &'static str,
    availability: Availability,
    url: &'static str,
    page_says: &'static str,
    header_says: &'static str,
) -> Routine {
    Routine {
        name,
        dll,
        availability,
        url,
        page_says,
        header_says,
    }
}

/// Every routine `wsk-sys` and `wsk-driver` can import, with its Microsoft
/// sources.
#[rustfmt::skip]
pub const TABLE: &[Routine] = &[
    routine("IoAllocateIrp", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateirp", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoFreeIrp", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeirp", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoReuseIrp", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioreuseirp", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoInitializeIrp", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioinitializeirp", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoCancelIrp", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocancelirp", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IofCompleteRequest", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocompleterequest", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K (IoCompleteRequest is a macro for it)"),
    routine("IofCallDriver", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iocalldriver", "", "wdm.h: NTKERNELAPI, NTDDI_WIN2K (IoCallDriver is a macro for it)"),
    routine("IoAllocateMdl", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocatemdl", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoFreeMdl", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreemdl", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("MmBuildMdlForNonPagedPool", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmbuildmdlfornonpagedpool", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("MmProbeAndLockPages", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmprobeandlockpages", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("MmUnlockPages", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmunlockpages", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("MmMapLockedPagesSpecifyCache", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmmaplockedpagesspecifycache", "", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("MmUnmapLockedPages", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmunmaplockedpages", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeInitializeEvent", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializeevent", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, no NTDDI guard"),
    routine("KeSetEvent", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesetevent", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeClearEvent", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keclearevent", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, no NTDDI guard"),
    routine("KeResetEvent", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keresetevent", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeReadStateEvent", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereadstateevent", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeWaitForSingleObject", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitforsingleobject", "", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeInitializeSemaphore", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializesemaphore", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeReleaseSemaphore", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasesemaphore", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeInitializeTimer", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializetimer", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeSetTimer", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeCancelTimer", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kecanceltimer", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeInitializeDpc", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializedpc", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeInsertQueueDpc", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinsertqueuedpc", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeFlushQueuedDpcs", "ntoskrnl.exe", Availability::Since(Windows::WinXP), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keflushqueueddpcs", "Available starting with Windows XP with SP2 and Windows Server 2003.", "wdm.h: NTKERNELAPI, NTDDI_WINXPSP2 (recorded as XP: both precede Vista)"),
    routine("KeWaitForMultipleObjects", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitformultipleobjects", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeDelayExecutionThread", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kedelayexecutionthread", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeQueryInterruptTimePrecise", "ntoskrnl.exe", Availability::Since(Windows::Win81), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequeryinterrupttimeprecise", "Available starting with Windows 8.1.", "wdm.h: NTDDI_WINBLUE"),
    routine("KeQueryUnbiasedInterruptTime", "ntoskrnl.exe", Availability::Since(Windows::Win7), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequeryunbiasedinterrupttime", "Available starting with Windows 7.", "wdm.h: NTKERNELAPI, NTDDI_WIN7"),
    routine("KeQueryTimeIncrement", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequerytimeincrement", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("KeAcquireSpinLockRaiseToDpc", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockraisetodpc", "Windows 2000 64-bit", "wdm.h: NTKERNELAPI on AMD64 and ARM64, NTDDI_WIN2K"),
    routine("KeReleaseSpinLock", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlock", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI on AMD64 and ARM64, NTDDI_WIN2K"),
    routine("KeAcquireSpinLockAtDpcLevel", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockatdpclevel", "", "wdm.h: NTKERNELAPI on AMD64 and ARM64, NTDDI_WIN2K"),
    routine("KeReleaseSpinLockFromDpcLevel", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlockfromdpclevel", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI on AMD64 and ARM64, NTDDI_WIN2K"),
    routine("KeAcquireInStackQueuedSpinLock", "ntoskrnl.exe", Availability::Since(Windows::WinXP), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquireinstackqueuedspinlock", "", "wdm.h: NTKERNELAPI, NTDDI_WINXP"),
    routine("KeReleaseInStackQueuedSpinLock", "ntoskrnl.exe", Availability::Since(Windows::WinXP), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleaseinstackqueuedspinlock", "Available in Windows XP and later versions of Windows.", "wdm.h: NTKERNELAPI, NTDDI_WINXP"),
    routine("KeBugCheckEx", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kebugcheckex", "Available in Windows 2000 and later versions of Windows.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("ExAllocatePoolWithTag", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepoolwithtag", "", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("ExAllocatePool2", "ntoskrnl.exe", Availability::Since(Windows::Win10(2004)), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepool2", "Windows 10, version 2004", "wdm.h: not in WDK 10.0.16299"),
    routine("ExFreePoolWithTag", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exfreepoolwithtag", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("ExFreePool", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/ntddk/nf-ntddk-exfreepool", "Available starting with Windows 2000.", "ntddk.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoAllocateWorkItem", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem", "Available in Windows 2000 and later versions of the Windows operating system", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoFreeWorkItem", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iofreeworkitem", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoQueueWorkItem", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitem", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("IoQueueWorkItemEx", "ntoskrnl.exe", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitemex", "Available in Windows Vista and later versions of Windows.", "wdm.h: NTDDI_VISTA"),
    routine("IoSizeofWorkItem", "ntoskrnl.exe", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iosizeofworkitem", "Available in Windows Vista and later versions of Windows.", "wdm.h: NTDDI_VISTA"),
    routine("IoInitializeWorkItem", "ntoskrnl.exe", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioinitializeworkitem", "Available in Windows Vista and later versions of Windows.", "wdm.h: NTDDI_VISTA"),
    routine("IoUninitializeWorkItem", "ntoskrnl.exe", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iouninitializeworkitem", "Available in Windows Vista and later versions of Windows.", "wdm.h: NTDDI_VISTA"),
    routine("PsCreateSystemThread", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-pscreatesystemthread", "", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("PsTerminateSystemThread", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-psterminatesystemthread", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("ObReferenceObjectByHandle", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obreferenceobjectbyhandle", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("ObfReferenceObject", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obfreferenceobject", "Available starting with Windows 2000.", "wdm.h: NTKERNELAPI, NTDDI_WIN2K"),
    routine("ObfDereferenceObject", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-obdereferenceobject", "", "wdm.h: NTKERNELAPI, NTDDI_WIN2K (ObDereferenceObject is a macro for it)"),
    routine("ZwClose", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwclose", "", "wdm.h: NTSYSAPI, NTDDI_WIN2K"),
    routine("ZwOpenKey", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwopenkey", "", "wdm.h: NTSYSAPI, NTDDI_WIN2K"),
    routine("ZwQueryValueKey", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-zwqueryvaluekey", "", "wdm.h: NTSYSAPI, NTDDI_WIN2K"),
    routine("RtlInitUnicodeString", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlinitunicodestring", "Available starting with Windows 2000.", "wdm.h: NTSYSAPI, no NTDDI guard"),
    routine("RtlCompareMemory", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcomparememory", "", "wdm.h: NTSYSAPI, NTDDI_WIN2K"),
    routine("RtlGetVersion", "ntoskrnl.exe", Availability::Since(Windows::Win2000), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlgetversion", "Available starting with Windows 2000.", "wdm.h: NTSYSAPI, NTDDI_WIN2K"),
    routine("DbgPrint", "ntoskrnl.exe", Availability::Unversioned, "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprint", "", "wdm.h: no import macro, no NTDDI guard"),
    routine("memcpy", "ntoskrnl.exe", Availability::Unversioned, "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcopymemory", "", "wdm.h: RtlCopyMemory is a macro for memcpy; the page names NtosKrnl.exe"),
    routine("memmove", "ntoskrnl.exe", Availability::Unversioned, "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlmovememory", "", "wdm.h: RtlMoveMemory is a macro for memmove; the page names NtosKrnl.exe"),
    routine("memset", "ntoskrnl.exe", Availability::Unversioned, "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlfillmemory", "", "wdm.h: RtlFillMemory and RtlZeroMemory are macros for memset; the page names NtosKrnl.exe"),
    routine("KeGetCurrentIrql", "ntoskrnl.exe", Availability::NotExported, "https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kegetcurrentirql", "Available starting with Windows 2000.", "wdm.h: FORCEINLINE (a CR8 read) on AMD64, NTHALAPI (hal.dll) on ARM64"),
    routine("WskRegister", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskregister", "Available in Windows Vista and later versions of the Windows operating systems.", "wsk.h: declared"),
    routine("WskCaptureProviderNPI", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskcaptureprovidernpi", "Available in Windows Vista and later versions of the Windows operating systems.", "wsk.h: declared"),
    routine("WskReleaseProviderNPI", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskreleaseprovidernpi", "Available in Windows Vista and later versions of the Windows operating systems.", "wsk.h: declared"),
    routine("WskQueryProviderCharacteristics", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskqueryprovidercharacteristics", "Available in Windows Vista and later versions of the Windows operating systems.", "wsk.h: declared"),
    routine("WskDeregister", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskderegister", "Available in Windows Vista and later versions of the Windows operating systems.", "wsk.h: declared"),
    routine("NmrRegisterClient", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrregisterclient", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrDeregisterClient", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrderegisterclient", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrWaitForClientDeregisterComplete", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrwaitforclientderegistercomplete", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrClientAttachProvider", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrclientattachprovider", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrClientDetachProviderComplete", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrclientdetachprovidercomplete", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrRegisterProvider", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrregisterprovider", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrDeregisterProvider", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrderegisterprovider", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrWaitForProviderDeregisterComplete", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrwaitforproviderderegistercomplete", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
    routine("NmrProviderDetachClientComplete", "netio.sys", Availability::Since(Windows::Vista), "https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrproviderdetachclientcomplete", "Available in Windows Vista and later versions of the Windows operating systems.", "netioddk.h: declared"),
];

/// The row for `name` imported from `dll` (DLL names compare without case).
#[must_use]
pub fn lookup(dll: &str, name: &str) -> Option<&'static Routine> {
    TABLE
        .iter()
        .find(|r| r.name == name && r.dll.eq_ignore_ascii_case(dll))
}

/// What an import the table does not know usually means, for the ones a
/// driver gets without asking: `import` is `dll!name`.
#[must_use]
pub fn unknown_hint(import: &str) -> Option<&'static str> {
    let (_, name) = import.split_once('!')?;
    (name == "__chkstk").then_some(
        "the compiler's stack probe: a function's frame is larger than a page (4 KB), \
         and no Microsoft page or WDK header documents an ntoskrnl.exe export of it. Shrink the frame (often a \
         future or buffer moved by value in an unoptimised build): box the value, or set \
         opt-level = 1 in [profile.dev], as `cargo wsk new` does",
    )
}

/// The result of checking an import list against a release.
#[derive(Debug, Default, Clone)]
pub struct ImportCheck {
    /// Imports the release lacks: each line names the routine, the release
    /// it needs and the source.
    pub problems: Vec<String>,
    /// Imports the table does not know (not checked).
    pub unknown: Vec<String>,
    /// How many imports were checked.
    pub checked: usize,
}

impl ImportCheck {
    /// No import is missing on the release.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every import of a driver image against `oldest`, the oldest
/// release the driver supports.
#[must_use]
pub fn check(imports: &[Import], oldest: Windows) -> ImportCheck {
    let mut result = ImportCheck::default();
    for imp in imports {
        for f in &imp.functions {
            let Some(r) = lookup(&imp.dll, f) else {
                result.unknown.push(format!("{}!{f}", imp.dll));
                continue;
            };
            result.checked += 1;
            match r.availability {
                Availability::Since(since) if since > oldest => result.problems.push(format!(
                    "{}!{f} needs {since}, newer than the oldest supported {oldest} ({})",
                    imp.dll, r.url
                )),
                Availability::NotExported => result.problems.push(format!(
                    "{}!{f} is not exported by {} ({}; {}): the driver would not load",
                    imp.dll, r.dll, r.header_says, r.url
                )),
                Availability::Since(_) | Availability::Unversioned => {}
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pe::{Image, MACHINE_AMD64, fixture};

    fn imports_of(list: &[(&str, &[&str])]) -> Vec<Import> {
        Image::parse(&fixture::driver(MACHINE_AMD64, list))
            .unwrap()
            .imports
    }

    #[test]
    fn a_routine_newer_than_the_oldest_release_fails() {
        let imports = imports_of(&[
            ("ntoskrnl.exe", &["ExAllocatePool2", "DbgPrint", "memcpy"]),
            ("netio.sys", &["WskRegister"]),
        ]);
        let vista = check(&imports, Windows::Vista);
        assert!(!vista.passed());
        assert_eq!(vista.checked, 4);
        assert_eq!(vista.problems.len(), 1, "{:?}", vista.problems);
        assert!(
            vista.problems[0]
                .contains("ntoskrnl.exe!ExAllocatePool2 needs Windows 10, version 2004"),
            "{:?}",
            vista.problems
        );
        assert!(check(&imports, Windows::Win10(2004)).passed());
        assert!(!check(&imports, Windows::Win10(1909)).passed());
    }

    #[test]
    fn an_import_that_is_not_an_export_always_fails() {
        let imports = imports_of(&[("ntoskrnl.exe", &["KeGetCurrentIrql"])]);
        for release in [Windows::Vista, Windows::Win10(1709), Windows::Win10(2004)] {
            let c = check(&imports, release);
            assert!(
                c.problems.len() == 1 && c.problems[0].contains("not exported"),
                "{:?}",
                c.problems
            );
        }
    }

    #[test]
    fn unknown_imports_are_reported_not_failed() {
        let imports = imports_of(&[("ntoskrnl.exe", &["IoCreateDevice", "KeSetEvent"])]);
        let c = check(&imports, Windows::Vista);
        assert!(c.passed());
        assert_eq!(c.unknown, ["ntoskrnl.exe!IoCreateDevice"]);
        assert_eq!(c.checked, 1);
    }

    #[test]
    fn the_stack_probe_is_explained_not_listed() {
        assert!(lookup("ntoskrnl.exe", "__chkstk").is_none());
        assert!(unknown_hint("ntoskrnl.exe!__chkstk").is_some_and(|h| h.contains("opt-level")));
        assert_eq!(unknown_hint("ntoskrnl.exe!IoCreateDevice"), None);
    }

    #[test]
    fn table_rows_cite_microsoft_and_are_unique() {
        for (i, r) in TABLE.iter().enumerate() {
            assert!(
                r.url
                    .starts_with("https://learn.microsoft.com/windows-hardware/drivers/ddi/"),
                "{}",
                r.name
            );
            assert!(!r.header_says.is_empty(), "{}", r.name);
            assert!(
                TABLE[..i].iter().all(|o| o.name != r.name),
                "{} twice",
                r.name
            );
            if let Availability::Since(_) = r.availability {
                assert!(
                    !r.page_says.is_empty() || r.header_says.contains("NTDDI_"),
                    "{}: a release needs a source",
                    r.name
                );
            }
        }
    }

    #[test]
    fn every_netio_routine_needs_vista() {
        for r in TABLE.iter().filter(|r| r.dll == "netio.sys") {
            assert_eq!(
                r.availability,
                Availability::Since(Windows::Vista),
                "{}",
                r.name
            );
        }
    }
}
