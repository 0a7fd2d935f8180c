//! Cross-checks `wsk-sys`'s layouts and constants against **Wine's**
//! independent C headers, compiled by a real C compiler.
//!
//! `wsk-sys` asserts its layouts at compile time against numbers derived from
//! Microsoft's headers; this test checks the same structures against a second,
//! independently written set of headers: Wine's (`ddk/wsk.h`, `ddk/wdm.h`,
//! `winternl.h`, `ws2def.h`, `ws2ipdef.h`, `ntstatus.h`, `netiodef.h`, …).
//!
//! # How
//!
//! [`layout_table`] is the one table of structures and types: for each entry
//! the Rust side computes `size_of`, `align_of` and an `offset_of!` per field
//! (nested paths included). Where the Rust path differs from the C member
//! expression — anonymous C unions get a named field in Rust — a row gives
//! both: `Tail.Overlay.Stack.CurrentStackLocation =>
//! "Tail.Overlay.CurrentStackLocation"`. [`constant_table`] lists the
//! constants (by name, or as a C expression paired with a Rust expression).
//!
//! [`generate_c`] turns both into one C file that includes Wine's headers the
//! way Wine's own drivers do (`ntstatus.h`, `WIN32_NO_STATUS`, `windef.h`,
//! `winternl.h`, then `ntddk.h` and `wsk.h`; Wine's DDK headers are not self
//! contained) and holds, per number, a `_Static_assert` carrying the Rust
//! value plus a pair of `extern char name[N]` declarations whose conflict, on
//! a mismatch, makes gcc print Wine's number next to `wsk-sys`'s. The file is
//! compiled with `x86_64-w64-mingw32-gcc -fsyntax-only -nostdinc` against
//! Wine's headers only (its `msvcrt` and `windows` directories: no `MinGW`
//! header takes part), in one gcc run (about half a second). The test passes
//! when gcc accepts the file; otherwise it panics with a summary, one line per
//! disagreement (`offset of WSK_BUF.Length: Wine 16, wsk-sys 8`,
//! `constant X: value in Wine != wsk-sys value N`), then gcc's full output.
//!
//! Constants are compared as the bits of the Rust type: `MDL_INTERNAL` is
//! `0x8000` in C and `-32768` as `wsk-sys`'s `CSHORT`, which agree.
//!
//! Two more tests feed the generator doctored tables (a wrong
//! `WSK_BUF.Length` offset; a wrong `WSK_REGISTRATION` size and a wrong
//! `WSK_INFINITE_WAIT`) and check that gcc rejects them and names exactly
//! those rows.
//!
//! # Environment
//!
//! - `WSK_MINGW_GCC`: the compiler (default `x86_64-w64-mingw32-gcc`).
//! - `WSK_WINE_INCLUDE`: Wine's `windows` include directory (default: the
//!   first of `/usr/include/wine/wine/windows` (Debian, Ubuntu),
//!   `/usr/include/wine/windows`, `/usr/local/include/wine/windows` holding
//!   `ddk/wsk.h`).
//! - Without the compiler or the headers the tests print a loud `SKIPPED`
//!   message and return, unless `WSK_REQUIRE_WINE_HEADERS=1` (set by CI):
//!   then they fail.
//!
//! Written against Wine 8.0 (Debian 12 `libwine-dev`); every name in the
//! tables must exist in Wine's headers, so an older Wine lacking one fails
//! with gcc's "`X` undeclared" naming it.
//!
//! # What is not compared, and why
//!
//! Only what both sides declare can be compared. Wine's headers lack, or
//! differ from Microsoft's (`wsk.h` of WDK 10.0.16299, `km/wsk.h` in
//! `tpn/winsdk-10`) in:
//!
//! - **Structures Wine's `ddk/wsk.h` does not define**:
//!   `WSK_CLIENT_STREAM_DISPATCH` and `WSK_CLIENT_DATAGRAM_DISPATCH` (Wine has
//!   only the connection and listen client tables), `WSK_PROVIDER_CHARACTERISTICS`,
//!   `WSK_TRANSPORT`, `WSK_EVENT_CALLBACK_CONTROL`, `WSK_TDI_MAP`,
//!   `WSK_TDI_MAP_INFO`, `WSK_EXTENSION_CONTROL_IN`/`_OUT`.
//! - **`WSK_CLIENT`**: opaque (`struct _WSK_CLIENT`) in Wine, `PVOID` in
//!   Microsoft's header and in `wsk-sys`; only the pointer `PWSK_CLIENT` is
//!   compared (size).
//! - **Enumerators and constants Wine lacks**: `WskInspectPend`,
//!   `WskInspectMax`, `WskControlMax`; every `SIO_WSK_*`, `SO_WSK_*`,
//!   `WSK_EVENT_*`, the request flags `WSK_FLAG_ABORTIVE` …
//!   `WSK_FLAG_DRAIN`, `WSK_FLAG_AT_DISPATCH_LEVEL`, the client control codes
//!   (`WSK_TRANSPORT_LIST_QUERY`, `WSK_CACHE_SD`, …, `WSK_TDI_BEHAVIOR*`),
//!   `IOC_WSK`/`WSK_SO_BASE`; many newer `AF_*`, `AI_*`, `IPPROTO_*`,
//!   `MCAST_*`, `TCP_*`, `UDP_*`, `IP_PMTUDISC_*`, `SIO_*` values; the IRQL
//!   levels, `POOL_FLAG_*`, `NonPagedPoolNx`, newer work queue types,
//!   `DRVO_*`, `SL_ERROR_RETURNED`, `THREAD_WAIT_OBJECTS`,
//!   `STATUS_HOPLIMIT_EXCEEDED`. Only the constants Wine defines are in
//!   [`constant_table`].
//! - **Constants where Wine's value is stale** (left out; `wsk-sys` follows
//!   Microsoft): `AF_MAX` is 27 in Wine, 35 in Microsoft's `ws2def.h` for
//!   `_WIN32_WINNT >= 0x0604` (after `AF_BTH` 32, `AF_LINK` 33, `AF_HYPERV`
//!   34); `MaximumWorkQueue` is 3 in Wine, whose `WORK_QUEUE_TYPE` stops after
//!   `HyperCriticalWorkQueue`, and 7 in Microsoft's `wdm.h` (after
//!   `NormalWorkQueue` … `SuperCriticalWorkQueue`); `OBJ_VALID_ATTRIBUTES` is
//!   `0x3F2` in Wine and `0x1FF2` in Microsoft's `ntdef.h` (10.0.16299, which
//!   adds `OBJ_FORCE_ACCESS_CHECK`, `OBJ_IGNORE_IMPERSONATED_DEVICEMAP`,
//!   `OBJ_DONT_REPARSE`).
//! - **Callback signatures**: C cannot check a Rust function type, so
//!   `PFN_WSK_*` and the kernel routine types are compared by size only.
//!   Known Wine differences there: `PFN_WSK_SEND_EX`/`PFN_WSK_RECEIVE_EX` are
//!   `void *`; `PFN_WSK_ACCEPT_EVENT` takes `void *AcceptSocketContext` where
//!   Microsoft has `PVOID *` (an out parameter).
//! - **`IRP` alignment**: Microsoft declares `IRP` with
//!   `DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)` (16 on 64-bit), as
//!   `wsk-sys` does (`#[repr(C, align(16))]`); Wine's `IRP` has natural
//!   alignment 8. The row says `[wine_align = 8]`: exactly that difference is
//!   allowed. Size and every offset still agree (0xD0 bytes).
//! - **Members Wine lacks or names differently**: `IRP.Overlay.
//!   AsynchronousParameters.IssuingProcess` (Microsoft's union partner of
//!   `UserApcRoutine`) is missing in Wine; `IO_STATUS_BLOCK.Pointer` is not
//!   mirrored by `wsk-sys`. `DISPATCHER_HEADER`'s `Signalling`/`Reserved1`
//!   (current Microsoft names, the ones `wsk-sys` uses) are Wine's older
//!   `Absolute`/`Inserted`; `KAPC`'s `SpareLong0` is Wine's `Spare0`, and the
//!   first word of `wsk-sys`'s `Reserved[3]` is Wine's `KernelRoutine` (Wine
//!   keeps older names; its `Type`/`Size` are `CSHORT` where Microsoft has
//!   `UCHAR` plus a spare byte, offsets 0 and 2 either way): these are
//!   compared by offset under both names. `KTIMER` in Wine is the layout
//!   before `Processor` was added (its `Period` is at 0x38, Microsoft's at
//!   0x3C after `Processor`): size, `Header`, `DueTime`, `TimerListEntry` and
//!   `Dpc` are compared. Wine's `KDPC` keeps the old head (`CSHORT Type`,
//!   `Number`, `Importance`, a `LIST_ENTRY DpcListEntry`, `Lock` where
//!   Microsoft has `DpcData`) in the same 0x18 bytes: size and the routine,
//!   context and argument fields are compared.
//! - **`netioddk.h`** (`NPI_REGISTRATION_INSTANCE`, `NPI`,
//!   `NPI_CLIENT_CHARACTERISTICS`, `NPI_PROVIDER_CHARACTERISTICS`): Wine has no
//!   such header. `NPIID` (a `GUID`) is compared with Wine's `GUID`;
//!   `NPI_MODULEID` with Wine's `netiodef.h`.
//! - **Other structures and types Wine lacks**: `SOCKADDR_DL`,
//!   `WSA_COMPATIBILITY_MODE`, `GROUP_REQ`, `GROUP_SOURCE_REQ`,
//!   `IN_PKTINFO_EX`, `IN6_PKTINFO_EX`, `IN_RECVERR`, `ICMP_ERROR_INFO`,
//!   `OBJECT_HANDLE_INFORMATION`; the types `POOL_FLAGS`, `PMTUD_STATE`,
//!   `MULTICAST_MODE_TYPE`, `WSA_COMPATIBILITY_BEHAVIOR_ID`,
//!   `PIO_WORKITEM_ROUTINE_EX` and the `_LH` aliases; and the private padding
//!   fields of `wsk-sys`'s `IO_STACK_LOCATION` parameter structures
//!   (`POINTER_ALIGNMENT` in C, which Wine's offsets confirm).
//! - **Structure-valued constants** (`IN6ADDR_*`, `NPI_WSK_INTERFACE_ID`,
//!   `SCOPEID_UNSPECIFIED_INIT`): a `_Static_assert` compares integers only.
//! - **Bit fields**: `SCOPE_ID`'s `Zone`/`Level` are C bit fields (no
//!   `offsetof`); the union member `Value` is compared.

use std::fmt::Write as _;
use std::io::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use wsk_sys::*;

// ---------------------------------------------------------------------------
// Table types
// ---------------------------------------------------------------------------

/// One field row: the Rust `offset_of!` path, the C member expression and the
/// Rust offset.
#[derive(Clone, Debug)]
struct Field {
    rust: String,
    c: String,
    offset: usize,
}

/// One structure or type row.
#[derive(Clone, Debug)]
struct Layout {
    rust: &'static str,
    c: &'static str,
    size: usize,
    align: usize,
    /// The alignment Wine's header is expected to give (`align` unless the
    /// row documents a known difference).
    wine_align: usize,
    fields: Vec<Field>,
}

/// One constant row: a C expression and the value `wsk-sys` gives it.
#[derive(Clone, Debug)]
struct Constant {
    c: String,
    rust: String,
    value: i128,
    /// The C spellings of the Rust type, and of its signed and unsigned
    /// variants: the C value is compared as the Rust type's bits.
    c_types: [&'static str; 3],
}

/// An integer constant's value and C type.
trait IntValue {
    fn int_value(self) -> i128;
    /// `[same type, signed variant, unsigned variant]` in C (LLP64).
    fn c_types(&self) -> [&'static str; 3];
}

macro_rules! int_value {
    ($($t:ty => $c:literal, $sc:literal, $uc:literal;)*) => {$(
        impl IntValue for $t {
            fn int_value(self) -> i128 {
                i128::try_from(self).expect("fits in i128")
            }
            fn c_types(&self) -> [&'static str; 3] {
                [$c, $sc, $uc]
            }
        }
    )*};
}
int_value! {
    i8 => "signed char", "signed char", "unsigned char";
    u8 => "unsigned char", "signed char", "unsigned char";
    i16 => "short", "short", "unsigned short";
    u16 => "unsigned short", "short", "unsigned short";
    i32 => "int", "int", "unsigned int";
    u32 => "unsigned int", "int", "unsigned int";
    i64 => "long long", "long long", "unsigned long long";
    u64 => "unsigned long long", "long long", "unsigned long long";
    usize => "unsigned long long", "long long", "unsigned long long";
}

/// The first of its arguments (picks an optional override or a default).
macro_rules! first {
    ($a:expr $(, $rest:expr)*) => {
        $a
    };
}

/// Builds the layout table. Row syntax:
///
/// ```text
/// RustType [as "CType"] [[wine_align = N]] {
///     field, nested.rust.path, rust.path => "c.member.expression", …
/// }
/// ```
macro_rules! layouts {
    ($(
        $rust:ident $(as $c:literal)? $([wine_align = $wa:literal])? {
            $( $($f:ident).+ $(=> $cf:literal)? ),* $(,)?
        }
    )*) => {
        vec![$(
            Layout {
                rust: stringify!($rust),
                c: first!($($c,)? stringify!($rust)),
                size: size_of::<$rust>(),
                align: align_of::<$rust>(),
                wine_align: first!($($wa,)? align_of::<$rust>()),
                fields: vec![$(
                    Field {
                        rust: stringify!($($f).+).replace(' ', ""),
                        c: first!($($cf,)? stringify!($($f).+)).replace(' ', ""),
                        offset: offset_of!($rust, $($f).+),
                    }
                ),*],
            }
        ),*]
    };
}

/// Builds the constant table: `NAME` (same name on both sides) or
/// `"C expression" => rust_expression`.
macro_rules! constants {
    (
        names: [$($name:ident),* $(,)?],
        expressions: [$($cexpr:literal => $rexpr:expr),* $(,)?] $(,)?
    ) => {{
        let mut v = vec![$(
            Constant {
                c: stringify!($name).to_owned(),
                rust: stringify!($name).to_owned(),
                value: IntValue::int_value($name),
                c_types: IntValue::c_types(&$name),
            }
        ),*];
        v.extend([$(
            Constant {
                c: $cexpr.to_owned(),
                rust: stringify!($rexpr).replace(' ', ""),
                value: IntValue::int_value($rexpr),
                c_types: IntValue::c_types(&$rexpr),
            }
        ),*]);
        v
    }};
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/// Every structure of Wine's `ddk/wsk.h`, every type it declares that
/// `wsk-sys` mirrors, and the `ntdef`/`wdm`/`ws2def`/`netiodef` structures and
/// types WSK embeds or the safe layer uses.
#[allow(clippy::too_many_lines, reason = "one row per structure: the table")]
fn layout_table() -> Vec<Layout> {
    layouts! {
        // ---- ddk/wsk.h: structures --------------------------------------
        WSK_SOCKET { Dispatch }
        WSK_BUF { Mdl, Offset, Length }
        WSK_BUF_LIST { Next, Buffer, Buffer.Mdl, Buffer.Offset, Buffer.Length }
        WSK_DATA_INDICATION { Next, Buffer, Buffer.Length }
        WSK_INSPECT_ID { Key, SerialNumber }
        WSK_DATAGRAM_INDICATION {
            Next, Buffer, Buffer.Length, ControlInfo, ControlInfoLength, RemoteAddress,
        }
        WSK_PROVIDER_DISPATCH {
            Version, Reserved, WskSocket, WskSocketConnect, WskControlClient,
            WskGetAddressInfo, WskFreeAddressInfo, WskGetNameInfo,
        }
        WSK_CLIENT_CONNECTION_DISPATCH { WskReceiveEvent, WskDisconnectEvent, WskSendBacklogEvent }
        WSK_CLIENT_LISTEN_DISPATCH { WskAcceptEvent, WskInspectEvent, WskAbortEvent }
        WSK_CLIENT_DISPATCH { Version, Reserved, WskClientEvent }
        WSK_CLIENT_NPI { ClientContext, Dispatch }
        WSK_REGISTRATION {
            ReservedRegistrationState, ReservedRegistrationContext, ReservedRegistrationLock,
        }
        WSK_PROVIDER_NPI { Client, Dispatch }
        WSK_PROVIDER_BASIC_DISPATCH { WskControlSocket, WskCloseSocket }
        WSK_PROVIDER_STREAM_DISPATCH {
            Basic, Basic.WskControlSocket, Basic.WskCloseSocket, WskBind, WskAccept,
            WskConnect, WskListen, WskSend, WskReceive, WskDisconnect, WskRelease,
            WskGetLocalAddress, WskGetRemoteAddress, WskConnectEx, WskSendEx, WskReceiveEx,
        }
        WSK_PROVIDER_CONNECTION_DISPATCH {
            Basic, Basic.WskControlSocket, Basic.WskCloseSocket, WskBind, WskConnect,
            WskGetLocalAddress, WskGetRemoteAddress, WskSend, WskReceive, WskDisconnect,
            WskRelease, WskConnectEx, WskSendEx, WskReceiveEx,
        }
        WSK_PROVIDER_DATAGRAM_DISPATCH {
            Basic, Basic.WskControlSocket, Basic.WskCloseSocket, WskBind, WskSendTo,
            WskReceiveFrom, WskRelease, WskGetLocalAddress, WskSendMessages,
        }
        WSK_PROVIDER_LISTEN_DISPATCH {
            Basic, Basic.WskControlSocket, Basic.WskCloseSocket, WskBind, WskAccept,
            WskInspectComplete, WskGetLocalAddress,
        }

        // ---- ddk/wsk.h: enumerations and pointer types (size, alignment) --
        WSK_CONTROL_SOCKET_TYPE {}
        WSK_INSPECT_ACTION {}
        PWSK_CLIENT {}
        PWSK_SOCKET {}
        PFN_WSK_CLIENT_EVENT {}
        PFN_WSK_DISCONNECT_EVENT {}
        PFN_WSK_SEND_BACKLOG_EVENT {}
        PFN_WSK_SOCKET {}
        PFN_WSK_SOCKET_CONNECT {}
        PFN_WSK_CONTROL_CLIENT {}
        PFN_WSK_GET_ADDRESS_INFO {}
        PFN_WSK_FREE_ADDRESS_INFO {}
        PFN_WSK_GET_NAME_INFO {}
        PFN_WSK_RECEIVE_EVENT {}
        PFN_WSK_ACCEPT_EVENT {}
        PFN_WSK_INSPECT_EVENT {}
        PFN_WSK_ABORT_EVENT {}
        PFN_WSK_CONTROL_SOCKET {}
        PFN_WSK_CLOSE_SOCKET {}
        PFN_WSK_BIND {}
        PFN_WSK_ACCEPT {}
        PFN_WSK_CONNECT {}
        PFN_WSK_LISTEN {}
        PFN_WSK_SEND {}
        PFN_WSK_RECEIVE {}
        PFN_WSK_DISCONNECT {}
        PFN_WSK_GET_LOCAL_ADDRESS {}
        PFN_WSK_GET_REMOTE_ADDRESS {}
        PFN_WSK_CONNECT_EX {}
        PFN_WSK_RELEASE_DATA_INDICATION_LIST {}
        PFN_WSK_SEND_MESSAGES {}
        PFN_WSK_SEND_TO {}
        PFN_WSK_RECEIVE_FROM {}
        PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST {}
        PFN_WSK_INSPECT_COMPLETE {}
        PFN_WSK_SEND_EX {}
        PFN_WSK_RECEIVE_EX {}

        // ---- ntdef.h / guiddef.h / basetsd.h -----------------------------
        GUID { Data1, Data2, Data3, Data4 }
        NPIID as "GUID" { Data1, Data2, Data3, Data4 }
        LUID { LowPart, HighPart }
        LIST_ENTRY { Flink, Blink }
        UNICODE_STRING { Length, MaximumLength, Buffer }
        LARGE_INTEGER {}
        CHAR {}
        UCHAR {}
        CCHAR {}
        BOOLEAN {}
        SHORT {}
        CSHORT {}
        USHORT {}
        WCHAR {}
        LONG {}
        ULONG {}
        INT {}
        UINT {}
        DWORD {}
        LONGLONG {}
        ULONGLONG {}
        ULONG64 {}
        ULONG_PTR {}
        LONG_PTR {}
        SIZE_T {}
        HANDLE {}
        PVOID {}
        NTSTATUS {}
        KIRQL {}
        KPROCESSOR_MODE {}
        ACCESS_MASK {}

        // ---- netiodef.h ---------------------------------------------------
        NPI_MODULEID_TYPE {}
        NPI_MODULEID { Length, Type, u.Guid => "Guid", u.IfLuid => "IfLuid" }

        // ---- wdm.h / winternl.h -------------------------------------------
        KSPIN_LOCK {}
        KSPIN_LOCK_QUEUE { Next, Lock }
        KLOCK_QUEUE_HANDLE { LockQueue, LockQueue.Next, LockQueue.Lock, OldIrql }
        DISPATCHER_HEADER {
            Type, Signalling => "Absolute", Size, Reserved1 => "Inserted", SignalState,
            WaitListHead,
        }
        KEVENT { Header, Header.SignalState, Header.WaitListHead }
        KSEMAPHORE { Header, Header.SignalState, Limit }
        KTIMER { Header, DueTime, TimerListEntry, Dpc }
        KDPC { DeferredRoutine, DeferredContext, SystemArgument1, SystemArgument2 }
        MDL { Next, Size, MdlFlags, Process, MappedSystemVa, StartVa, ByteCount, ByteOffset }
        IO_STATUS_BLOCK { Status, Information }
        KDEVICE_QUEUE_ENTRY { DeviceListEntry, SortKey, Inserted }
        KAPC {
            Type, Size, SpareLong0 => "Spare0", Thread, ApcListEntry, Reserved => "KernelRoutine",
            NormalContext, SystemArgument1, SystemArgument2, ApcStateIndex, ApcMode, Inserted,
        }
        IRP [wine_align = 8] {
            Type, Size, MdlAddress, Flags, AssociatedIrp, AssociatedIrp.MasterIrp,
            AssociatedIrp.IrpCount, AssociatedIrp.SystemBuffer, ThreadListEntry, IoStatus,
            IoStatus.Status, IoStatus.Information, RequestorMode, PendingReturned, StackCount,
            CurrentLocation, Cancel, CancelIrql, ApcEnvironment, AllocationFlags, UserIosb,
            UserEvent, Overlay, Overlay.AsynchronousParameters,
            Overlay.AsynchronousParameters.Apc.UserApcRoutine
                => "Overlay.AsynchronousParameters.UserApcRoutine",
            Overlay.AsynchronousParameters.UserApcContext, Overlay.AllocationSize,
            CancelRoutine, UserBuffer, Tail, Tail.Overlay,
            Tail.Overlay.Context.DeviceQueueEntry => "Tail.Overlay.DeviceQueueEntry",
            Tail.Overlay.Context.DriverContext => "Tail.Overlay.DriverContext",
            Tail.Overlay.Thread, Tail.Overlay.AuxiliaryBuffer, Tail.Overlay.ListEntry,
            Tail.Overlay.Stack.CurrentStackLocation => "Tail.Overlay.CurrentStackLocation",
            Tail.Overlay.Stack.PacketType => "Tail.Overlay.PacketType",
            Tail.Overlay.OriginalFileObject, Tail.Apc, Tail.CompletionKey,
        }
        IO_STACK_LOCATION {
            MajorFunction, MinorFunction, Flags, Control, Parameters,
            Parameters.Others.Argument1, Parameters.Others.Argument2,
            Parameters.Others.Argument3, Parameters.Others.Argument4,
            Parameters.Read.Length, Parameters.Read.Key, Parameters.Read.ByteOffset,
            Parameters.Write.Length, Parameters.Write.Key, Parameters.Write.ByteOffset,
            Parameters.DeviceIoControl.OutputBufferLength,
            Parameters.DeviceIoControl.InputBufferLength,
            Parameters.DeviceIoControl.IoControlCode,
            Parameters.DeviceIoControl.Type3InputBuffer,
            DeviceObject, FileObject, CompletionRoutine, Context,
        }
        DRIVER_EXTENSION { DriverObject, AddDevice, Count, ServiceKeyName }
        DRIVER_OBJECT {
            Type, Size, DeviceObject, Flags, DriverStart, DriverSize, DriverSection,
            DriverExtension, DriverName, HardwareDatabase, FastIoDispatch, DriverInit,
            DriverStartIo, DriverUnload, MajorFunction,
        }
        CLIENT_ID { UniqueProcess, UniqueThread }
        OBJECT_ATTRIBUTES {
            Length, RootDirectory, ObjectName, Attributes, SecurityDescriptor,
            SecurityQualityOfService,
        }
        KEY_VALUE_PARTIAL_INFORMATION { TitleIndex, Type, DataLength, Data }
        EVENT_TYPE {}
        WAIT_TYPE {}
        KWAIT_REASON {}
        LOCK_OPERATION {}
        MEMORY_CACHING_TYPE {}
        MM_PAGE_PRIORITY {}
        POOL_TYPE {}
        WORK_QUEUE_TYPE {}
        KEY_VALUE_INFORMATION_CLASS {}
        KPRIORITY {}
        PIO_APC_ROUTINE {}
        PIO_COMPLETION_ROUTINE {}
        PDRIVER_CANCEL {}
        PDRIVER_DISPATCH {}
        PDRIVER_UNLOAD {}
        PDRIVER_INITIALIZE {}
        PDRIVER_STARTIO {}
        PDRIVER_ADD_DEVICE {}
        PIO_WORKITEM_ROUTINE {}
        PKSTART_ROUTINE {}

        // ---- ws2def.h / ws2ipdef.h / inaddr.h / in6addr.h / winsock2.h ----
        ADDRESS_FAMILY {}
        IPPROTO {}
        SCOPE_LEVEL {}
        SOCKADDR { sa_family, sa_data }
        SOCKET_ADDRESS { lpSockaddr, iSockaddrLength }
        SOCKET_ADDRESS_LIST { iAddressCount, Address }
        CSADDR_INFO { LocalAddr, RemoteAddr, iSocketType, iProtocol }
        SOCKADDR_STORAGE { ss_family, __ss_pad1, __ss_align, __ss_pad2 }
        IN_ADDR {
            S_un, S_un.S_un_b.s_b1, S_un.S_un_b.s_b2, S_un.S_un_b.s_b3, S_un.S_un_b.s_b4,
            S_un.S_un_w.s_w1, S_un.S_un_w.s_w2, S_un.S_addr,
        }
        IN6_ADDR { u, u.Byte, u.Word }
        SCOPE_ID { Value }
        SOCKADDR_IN { sin_family, sin_port, sin_addr, sin_zero }
        SOCKADDR_IN6 { sin6_family, sin6_port, sin6_flowinfo, sin6_addr, sin6_scope_id }
        SOCKADDR_INET { Ipv4, Ipv6, si_family }
        SOCKADDR_IN6_PAIR { SourceAddress, DestinationAddress }
        WSABUF { len, buf }
        WSAMSG {
            name, namelen, lpBuffers, dwBufferCount, Control, Control.len, Control.buf, dwFlags,
        }
        WSACMSGHDR { cmsg_len, cmsg_level, cmsg_type }
        CMSGHDR { cmsg_len, cmsg_level, cmsg_type }
        ADDRINFOW {
            ai_flags, ai_family, ai_socktype, ai_protocol, ai_addrlen, ai_canonname, ai_addr,
            ai_next,
        }
        ADDRINFOEXW {
            ai_flags, ai_family, ai_socktype, ai_protocol, ai_addrlen, ai_canonname, ai_addr,
            ai_blob, ai_bloblen, ai_provider, ai_next,
        }
        IP_MREQ { imr_multiaddr, imr_interface }
        IP_MREQ_SOURCE { imr_multiaddr, imr_sourceaddr, imr_interface }
        IPV6_MREQ { ipv6mr_multiaddr, ipv6mr_interface }
        IN_PKTINFO { ipi_addr, ipi_ifindex }
        IN6_PKTINFO { ipi6_addr, ipi6_ifindex }
        LINGER { l_onoff, l_linger }
    }
}

/// The constants Wine's headers define, by name, plus a few function-like
/// macros evaluated on both sides.
#[allow(clippy::too_many_lines, reason = "one row per constant: the table")]
fn constant_table() -> Vec<Constant> {
    constants! {
        names: [
            // ddk/wsk.h
            WskInspectReject, WskInspectAccept, WskSetOption, WskGetOption, WskIoctl,
            WSK_FLAG_BASIC_SOCKET, WSK_FLAG_LISTEN_SOCKET, WSK_FLAG_CONNECTION_SOCKET,
            WSK_FLAG_DATAGRAM_SOCKET, WSK_FLAG_STREAM_SOCKET, WSK_NO_WAIT, WSK_INFINITE_WAIT,
            // ws2def.h: address families, socket types, levels, options
            AF_UNSPEC, AF_UNIX, AF_INET, AF_IMPLINK, AF_PUP, AF_CHAOS, AF_NS, AF_IPX, AF_ISO,
            AF_OSI, AF_ECMA, AF_DATAKIT, AF_CCITT, AF_SNA, AF_DECnet, AF_DLI, AF_LAT, AF_HYLINK,
            AF_APPLETALK, AF_NETBIOS, AF_VOICEVIEW, AF_FIREFOX, AF_UNKNOWN1, AF_BAN, AF_ATM,
            AF_INET6, AF_CLUSTER, AF_12844, AF_IRDA,
            SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_RDM, SOCK_SEQPACKET,
            SOL_SOCKET, SO_DEBUG, SO_ACCEPTCONN, SO_REUSEADDR, SO_KEEPALIVE, SO_DONTROUTE,
            SO_BROADCAST, SO_USELOOPBACK, SO_LINGER, SO_OOBINLINE, SO_DONTLINGER,
            SO_EXCLUSIVEADDRUSE, SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT, SO_SNDTIMEO,
            SO_RCVTIMEO, SO_ERROR, SO_TYPE, SO_BSP_STATE, SO_GROUP_ID, SO_GROUP_PRIORITY,
            SO_MAX_MSG_SIZE, SO_CONDITIONAL_ACCEPT, SO_RANDOMIZE_PORT, SO_PORT_SCALABILITY,
            SO_REUSE_UNICASTPORT, SO_REUSE_MULTICASTPORT, TCP_NODELAY,
            _SS_MAXSIZE, _SS_ALIGNSIZE, _SS_PAD1SIZE, _SS_PAD2SIZE,
            ScopeLevelInterface, ScopeLevelLink, ScopeLevelSubnet, ScopeLevelAdmin,
            ScopeLevelSite, ScopeLevelOrganization, ScopeLevelGlobal, ScopeLevelCount,
            INADDR_ANY, INADDR_LOOPBACK, INADDR_BROADCAST, INADDR_NONE,
            INET_ADDRSTRLEN, INET6_ADDRSTRLEN,
            IPPROTO_IP, IPPROTO_ICMP, IPPROTO_IGMP, IPPROTO_GGP, IPPROTO_IPV4, IPPROTO_TCP,
            IPPROTO_UDP, IPPROTO_IDP, IPPROTO_IPV6, IPPROTO_ICMPV6, IPPROTO_ND, IPPROTO_RAW,
            IPPROTO_MAX,
            IOC_UNIX, IOC_WS2, IOC_PROTOCOL, IOC_VENDOR, IOCPARM_MASK, IOC_VOID, IOC_OUT,
            IOC_IN, IOC_INOUT,
            SIO_ASSOCIATE_HANDLE, SIO_ENABLE_CIRCULAR_QUEUEING, SIO_FIND_ROUTE, SIO_FLUSH,
            SIO_GET_BROADCAST_ADDRESS, SIO_GET_EXTENSION_FUNCTION_POINTER, SIO_GET_QOS,
            SIO_GET_GROUP_QOS, SIO_MULTIPOINT_LOOPBACK, SIO_MULTICAST_SCOPE, SIO_SET_QOS,
            SIO_SET_GROUP_QOS, SIO_TRANSLATE_HANDLE, SIO_ROUTING_INTERFACE_QUERY,
            SIO_ROUTING_INTERFACE_CHANGE, SIO_ADDRESS_LIST_QUERY, SIO_ADDRESS_LIST_CHANGE,
            SIO_QUERY_TARGET_PNP_HANDLE, SIO_IDEAL_SEND_BACKLOG_QUERY,
            SIO_IDEAL_SEND_BACKLOG_CHANGE, SIO_SET_COMPATIBILITY_MODE,
            MSG_OOB, MSG_PEEK, MSG_DONTROUTE, MSG_WAITALL, MSG_INTERRUPT, MSG_PARTIAL,
            MSG_MAXIOVLEN, MSG_TRUNC, MSG_CTRUNC, MSG_BCAST, MSG_MCAST,
            AI_PASSIVE, AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV, AI_DNS_ONLY, AI_ALL,
            AI_ADDRCONFIG, AI_V4MAPPED, AI_NON_AUTHORITATIVE, AI_SECURE,
            AI_RETURN_PREFERRED_NAMES, AI_DISABLE_IDN_ENCODING,
            NS_ALL, NS_SAP, NS_NDS, NS_PEER_BROWSE, NS_SLP, NS_DHCP, NS_TCPIP_LOCAL,
            NS_TCPIP_HOSTS, NS_DNS, NS_NETBT, NS_WINS, NS_NLA, NS_BTH, NS_NBP, NS_MS, NS_STDA,
            NS_NTDS, NS_EMAIL, NS_PNRPNAME, NS_PNRPCLOUD, NS_X500, NS_NIS, NS_NISPLUS, NS_WRQ,
            NS_NETDES,
            NI_NOFQDN, NI_NUMERICHOST, NI_NAMEREQD, NI_NUMERICSERV, NI_DGRAM, NI_MAXHOST,
            NI_MAXSERV,
            IFF_UP, IFF_BROADCAST, IFF_LOOPBACK, IFF_POINTTOPOINT, IFF_MULTICAST,
            // ws2ipdef.h: IPv4/IPv6 options; mstcpip.h / ws2ipdef.h: TCP options
            IP_OPTIONS, IP_HDRINCL, IP_TOS, IP_TTL, IP_MULTICAST_IF, IP_MULTICAST_TTL,
            IP_MULTICAST_LOOP, IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP, IP_DONTFRAGMENT,
            IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP, IP_BLOCK_SOURCE,
            IP_UNBLOCK_SOURCE, IP_PKTINFO, IP_HOPLIMIT, IP_RECVTTL, IP_RECEIVE_BROADCAST,
            IP_RECVIF, IP_RECVDSTADDR, IP_IFLIST, IP_ADD_IFLIST, IP_DEL_IFLIST, IP_UNICAST_IF,
            IP_RTHDR, IP_GET_IFLIST, IP_RECVRTHDR, IP_TCLASS, IP_RECVTCLASS, IP_RECVTOS,
            IP_ORIGINAL_ARRIVAL_IF, IP_ECN, IP_PKTINFO_EX, IP_WFP_REDIRECT_RECORDS,
            IP_WFP_REDIRECT_CONTEXT, IP_MTU_DISCOVER, IP_MTU, IP_NRT_INTERFACE, IP_RECVERR,
            IP_USER_MTU,
            IPV6_HOPOPTS, IPV6_HDRINCL, IPV6_UNICAST_HOPS, IPV6_MULTICAST_IF,
            IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP, IPV6_ADD_MEMBERSHIP, IPV6_JOIN_GROUP,
            IPV6_DROP_MEMBERSHIP, IPV6_LEAVE_GROUP, IPV6_DONTFRAG, IPV6_PKTINFO,
            IPV6_HOPLIMIT, IPV6_PROTECTION_LEVEL, IPV6_RECVIF, IPV6_RECVDSTADDR,
            IPV6_CHECKSUM, IPV6_V6ONLY, IPV6_IFLIST, IPV6_ADD_IFLIST, IPV6_DEL_IFLIST,
            IPV6_UNICAST_IF, IPV6_RTHDR, IPV6_GET_IFLIST, IPV6_RECVRTHDR, IPV6_TCLASS,
            IPV6_RECVTCLASS, IPV6_ECN, IPV6_PKTINFO_EX, IPV6_WFP_REDIRECT_RECORDS,
            IPV6_WFP_REDIRECT_CONTEXT, IPV6_MTU_DISCOVER, IPV6_MTU, IPV6_NRT_INTERFACE,
            IPV6_RECVERR, IPV6_USER_MTU,
            PROTECTION_LEVEL_UNRESTRICTED, PROTECTION_LEVEL_EDGERESTRICTED,
            PROTECTION_LEVEL_RESTRICTED, PROTECTION_LEVEL_DEFAULT,
            TCP_OFFLOAD_NO_PREFERENCE, TCP_OFFLOAD_NOT_PREFERRED, TCP_OFFLOAD_PREFERRED,
            TCP_EXPEDITED_1122, TCP_KEEPALIVE, TCP_MAXSEG, TCP_MAXRT, TCP_STDURG, TCP_NOURG,
            TCP_ATMARK, TCP_NOSYNRETRIES, TCP_TIMESTAMPS, TCP_OFFLOAD_PREFERENCE,
            TCP_CONGESTION_ALGORITHM, TCP_DELAY_FIN_ACK,
            // ntstatus.h
            STATUS_SUCCESS, STATUS_WAIT_0, STATUS_WAIT_1, STATUS_ABANDONED_WAIT_0,
            STATUS_USER_APC, STATUS_KERNEL_APC, STATUS_ALERTED, STATUS_TIMEOUT, STATUS_PENDING,
            STATUS_BUFFER_OVERFLOW, STATUS_DEVICE_BUSY, STATUS_NO_MORE_ENTRIES,
            STATUS_UNSUCCESSFUL, STATUS_NOT_IMPLEMENTED, STATUS_INVALID_INFO_CLASS,
            STATUS_ACCESS_VIOLATION, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER,
            STATUS_NO_SUCH_DEVICE, STATUS_INVALID_DEVICE_REQUEST,
            STATUS_MORE_PROCESSING_REQUIRED, STATUS_NO_MEMORY, STATUS_ACCESS_DENIED,
            STATUS_BUFFER_TOO_SMALL, STATUS_OBJECT_TYPE_MISMATCH, STATUS_INVALID_PARAMETER_MIX,
            STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND,
            STATUS_OBJECT_PATH_NOT_FOUND, STATUS_DELETE_PENDING, STATUS_PROCEDURE_NOT_FOUND,
            STATUS_INTEGER_OVERFLOW, STATUS_INSUFFICIENT_RESOURCES, STATUS_NOT_SUPPORTED,
            STATUS_INVALID_USER_BUFFER, STATUS_CANCELLED, STATUS_FILE_CLOSED,
            STATUS_INVALID_DEVICE_STATE, STATUS_NOT_FOUND, STATUS_NO_MATCH, STATUS_RETRY,
            STATUS_NOINTERFACE,
            STATUS_DEVICE_NOT_READY, STATUS_IO_TIMEOUT, STATUS_FILE_FORCED_CLOSED,
            STATUS_UNEXPECTED_IO_ERROR, STATUS_IO_DEVICE_ERROR, STATUS_BAD_NETWORK_PATH,
            STATUS_NETWORK_BUSY, STATUS_INVALID_NETWORK_RESPONSE,
            STATUS_UNEXPECTED_NETWORK_ERROR, STATUS_NETWORK_NAME_DELETED,
            STATUS_NETWORK_ACCESS_DENIED, STATUS_BAD_NETWORK_NAME, STATUS_REQUEST_NOT_ACCEPTED,
            STATUS_LOCAL_DISCONNECT, STATUS_REMOTE_DISCONNECT, STATUS_INVALID_CONNECTION,
            STATUS_INVALID_ADDRESS, STATUS_INVALID_BUFFER_SIZE,
            STATUS_INVALID_ADDRESS_COMPONENT, STATUS_INVALID_ADDRESS_WILDCARD,
            STATUS_TOO_MANY_ADDRESSES, STATUS_ADDRESS_ALREADY_EXISTS, STATUS_ADDRESS_CLOSED,
            STATUS_CONNECTION_DISCONNECTED, STATUS_CONNECTION_RESET, STATUS_TOO_MANY_NODES,
            STATUS_TRANSACTION_ABORTED, STATUS_DATA_NOT_ACCEPTED, STATUS_CONNECTION_REFUSED,
            STATUS_GRACEFUL_DISCONNECT, STATUS_ADDRESS_ALREADY_ASSOCIATED,
            STATUS_ADDRESS_NOT_ASSOCIATED, STATUS_CONNECTION_INVALID,
            STATUS_CONNECTION_ACTIVE, STATUS_NETWORK_UNREACHABLE, STATUS_HOST_UNREACHABLE,
            STATUS_PROTOCOL_UNREACHABLE, STATUS_PORT_UNREACHABLE, STATUS_REQUEST_ABORTED,
            STATUS_CONNECTION_ABORTED, STATUS_CONNECTION_COUNT_LIMIT, STATUS_HOST_DOWN,
            // wdm.h / winnt.h / winternl.h
            IO_NO_INCREMENT, IO_NETWORK_INCREMENT,
            DELETE, READ_CONTROL, WRITE_DAC, WRITE_OWNER, SYNCHRONIZE, STANDARD_RIGHTS_REQUIRED,
            STANDARD_RIGHTS_READ, STANDARD_RIGHTS_WRITE, STANDARD_RIGHTS_EXECUTE,
            STANDARD_RIGHTS_ALL, SPECIFIC_RIGHTS_ALL, GENERIC_READ, GENERIC_WRITE,
            GENERIC_EXECUTE, GENERIC_ALL, THREAD_ALL_ACCESS,
            NotificationEvent, SynchronizationEvent, WaitAll, WaitAny, MAXIMUM_WAIT_OBJECTS,
            NotificationTimer, SynchronizationTimer,
            Executive, FreePage, PageIn, PoolAllocation, DelayExecution, Suspended, UserRequest,
            PAGE_SIZE, PAGE_SHIFT,
            MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED, MDL_SOURCE_IS_NONPAGED_POOL,
            MDL_ALLOCATED_FIXED_SIZE, MDL_PARTIAL, MDL_PARTIAL_HAS_BEEN_MAPPED,
            MDL_IO_PAGE_READ, MDL_WRITE_OPERATION, MDL_PARENT_MAPPED_SYSTEM_VA,
            MDL_FREE_EXTRA_PTES, MDL_DESCRIBES_AWE, MDL_IO_SPACE, MDL_NETWORK_HEADER,
            MDL_MAPPING_CAN_FAIL, MDL_ALLOCATED_MUST_SUCCEED, MDL_INTERNAL,
            IoReadAccess, IoWriteAccess, IoModifyAccess,
            MmNonCached, MmCached, MmWriteCombined, MmHardwareCoherentCached,
            MmNonCachedUnordered, MmUSWCCached, MmMaximumCacheType,
            LowPagePriority, NormalPagePriority, HighPagePriority,
            NonPagedPool, PagedPool, NonPagedPoolMustSucceed, NonPagedPoolCacheAligned,
            PagedPoolCacheAligned, POOL_NX_ALLOCATION,
            SL_PENDING_RETURNED, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_SUCCESS, SL_INVOKE_ON_ERROR,
            IRP_MJ_CREATE, IRP_MJ_CREATE_NAMED_PIPE, IRP_MJ_CLOSE, IRP_MJ_READ, IRP_MJ_WRITE,
            IRP_MJ_QUERY_INFORMATION, IRP_MJ_SET_INFORMATION, IRP_MJ_QUERY_EA, IRP_MJ_SET_EA,
            IRP_MJ_FLUSH_BUFFERS, IRP_MJ_QUERY_VOLUME_INFORMATION,
            IRP_MJ_SET_VOLUME_INFORMATION, IRP_MJ_DIRECTORY_CONTROL,
            IRP_MJ_FILE_SYSTEM_CONTROL, IRP_MJ_DEVICE_CONTROL, IRP_MJ_INTERNAL_DEVICE_CONTROL,
            IRP_MJ_SHUTDOWN, IRP_MJ_LOCK_CONTROL, IRP_MJ_CLEANUP, IRP_MJ_CREATE_MAILSLOT,
            IRP_MJ_QUERY_SECURITY, IRP_MJ_SET_SECURITY, IRP_MJ_POWER, IRP_MJ_SYSTEM_CONTROL,
            IRP_MJ_DEVICE_CHANGE, IRP_MJ_QUERY_QUOTA, IRP_MJ_SET_QUOTA, IRP_MJ_PNP,
            IRP_MJ_MAXIMUM_FUNCTION,
            CriticalWorkQueue, DelayedWorkQueue, HyperCriticalWorkQueue,
            OBJ_INHERIT, OBJ_PERMANENT, OBJ_EXCLUSIVE, OBJ_CASE_INSENSITIVE, OBJ_OPENIF,
            OBJ_OPENLINK, OBJ_KERNEL_HANDLE,
            KEY_QUERY_VALUE, KEY_SET_VALUE, KEY_CREATE_SUB_KEY, KEY_ENUMERATE_SUB_KEYS,
            KEY_NOTIFY, KEY_CREATE_LINK, KEY_READ, KEY_WRITE, KEY_EXECUTE, KEY_ALL_ACCESS,
            REG_NONE, REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_DWORD_LITTLE_ENDIAN,
            REG_DWORD_BIG_ENDIAN, REG_LINK, REG_MULTI_SZ, REG_RESOURCE_LIST,
            REG_FULL_RESOURCE_DESCRIPTOR, REG_RESOURCE_REQUIREMENTS_LIST, REG_QWORD,
            REG_QWORD_LITTLE_ENDIAN,
            KeyValueBasicInformation, KeyValueFullInformation, KeyValuePartialInformation,
            KeyValueFullInformationAlign64, KeyValuePartialInformationAlign64,
            TRUE, FALSE, KernelMode, UserMode,
            // netiodef.h
            MIT_GUID, MIT_IF_LUID,
        ],
        expressions: [
            "MAKE_WSK_VERSION(1, 0)" => MAKE_WSK_VERSION(1, 0),
            "MAKE_WSK_VERSION(2, 3)" => MAKE_WSK_VERSION(2, 3),
            "MAKE_WSK_VERSION(0xab, 0xcd)" => MAKE_WSK_VERSION(0xab, 0xcd),
            "WSA_CMSG_ALIGN(1)" => WSA_CMSGHDR_ALIGN(1),
            "WSA_CMSG_ALIGN(17)" => WSA_CMSGHDR_ALIGN(17),
            "_WSAIO(IOC_VENDOR, 7)" => _WSAIO(IOC_VENDOR, 7),
            "_WSAIOR(IOC_VENDOR, 7)" => _WSAIOR(IOC_VENDOR, 7),
            "_WSAIOW(IOC_VENDOR, 7)" => _WSAIOW(IOC_VENDOR, 7),
            "_WSAIORW(IOC_VENDOR, 7)" => _WSAIORW(IOC_VENDOR, 7),
            "sizeof(((DRIVER_OBJECT *)0)->MajorFunction) / sizeof(void *)"
                => IRP_MJ_MAXIMUM_FUNCTION as usize + 1,
        ],
    }
}

// ---------------------------------------------------------------------------
// C generation
// ---------------------------------------------------------------------------

/// Wine's headers, included the way Wine's own kernel drivers include them
/// (`dlls/netio.sys`, `dlls/ntoskrnl.exe`): Wine's DDK headers need the
/// Win32 base types first. `WIN32_NO_STATUS` keeps `winnt.h` from redefining
/// the `STATUS_*` codes `ntstatus.h` already gave.
const PRELUDE: &str = "\
#include <stdarg.h>
#include <stddef.h>
#include <ntstatus.h>
#define WIN32_NO_STATUS
#include <windef.h>
#include <winternl.h>
#include <ntddk.h>   /* ddk/ntddk.h -> ddk/wdm.h */
#include <wsk.h>     /* ddk/wsk.h -> winsock2.h, mswsock.h */
#include <ws2tcpip.h>
#include <ws2ipdef.h>
#include <mstcpip.h>
#include <netiodef.h>
";

/// One checked number, for the failure summary.
struct Check {
    /// The C identifier of the `extern char id[N]` pair.
    id: String,
    /// What is compared, for humans.
    what: String,
}

/// The generated C file and the checks it contains.
struct Generated {
    source: String,
    checks: Vec<Check>,
    fields: usize,
}

/// A C identifier from a description.
fn c_ident(parts: &[&str]) -> String {
    let mut id = String::from("wsk_sys");
    for p in parts {
        id.push_str("__");
        id.extend(
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

/// A C string literal body (no quotes).
fn c_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Emits one number check: a `_Static_assert` carrying the Rust value, and an
/// `extern char` redeclaration pair that makes gcc print both numbers on a
/// mismatch.
fn emit_check(
    out: &mut String,
    checks: &mut Vec<Check>,
    id: String,
    what: String,
    c_expr: &str,
    rust: usize,
) {
    let msg = c_str(&format!("{what}: {c_expr} in Wine != wsk-sys value {rust}"));
    writeln!(out, "_Static_assert(({c_expr}) == {rust}, \"{msg}\");").unwrap();
    writeln!(out, "extern char {id}[{rust}];  /* wsk-sys */").unwrap();
    writeln!(out, "extern char {id}[{c_expr}];  /* Wine */").unwrap();
    checks.push(Check { id, what });
}

/// Writes the C file for `layouts` and `constants`.
fn generate_c(layouts: &[Layout], constants: &[Constant]) -> Generated {
    let mut out = String::new();
    let mut checks = Vec::new();
    let mut fields = 0;
    out.push_str("/* Generated by wsk-sys/tests/wine_layout.rs: wsk-sys vs Wine's headers. */\n");
    out.push_str(PRELUDE);
    out.push_str("\n/* ---- layouts ---- */\n");
    for l in layouts {
        let (rust, c) = (l.rust, l.c);
        let name = if rust == c {
            rust.to_owned()
        } else {
            format!("{rust} (C {c})")
        };
        writeln!(out, "\n/* {name} */").unwrap();
        emit_check(
            &mut out,
            &mut checks,
            c_ident(&["size", rust]),
            format!("size of {name}"),
            &format!("sizeof({c})"),
            l.size,
        );
        let align_what = if l.wine_align == l.align {
            format!("alignment of {name}")
        } else {
            format!(
                "alignment of {name} (wsk-sys {}, Wine expected {}: known difference)",
                l.align, l.wine_align
            )
        };
        emit_check(
            &mut out,
            &mut checks,
            c_ident(&["align", rust]),
            align_what,
            &format!("_Alignof({c})"),
            l.wine_align,
        );
        for f in &l.fields {
            fields += 1;
            let what = if f.rust == f.c {
                format!("offset of {rust}.{}", f.rust)
            } else {
                format!("offset of {rust}.{} (C {c}.{})", f.rust, f.c)
            };
            emit_check(
                &mut out,
                &mut checks,
                c_ident(&["offset", rust, &f.rust]),
                what,
                &format!("offsetof({c}, {})", f.c),
                f.offset,
            );
        }
    }
    out.push_str("\n/* ---- constants ---- */\n");
    for k in constants {
        let what = if k.rust == k.c {
            format!("constant {}", k.c)
        } else {
            format!("constant {} (wsk-sys {})", k.c, k.rust)
        };
        let msg = c_str(&format!(
            "{what}: value in Wine != wsk-sys value {}",
            k.value
        ));
        // The C value must have the Rust value's bits in the Rust type
        // (`MDL_INTERNAL` is `0x8000` in C, `-32768` as a Rust `CSHORT`) and
        // fit that type's width, signed or unsigned.
        let [ty, sty, uty] = k.c_types;
        let (e, v) = (&k.c, k.value);
        let suffix = if v < 0 { "LL" } else { "ULL" };
        let fits = format!("(({e}) == ({sty})({e}) || ({e}) == ({uty})({e}))");
        writeln!(
            out,
            "_Static_assert(({ty})({e}) == {v}{suffix} && {fits}, \"{msg}\");"
        )
        .unwrap();
    }
    Generated {
        source: out,
        checks,
        fields,
    }
}

// ---------------------------------------------------------------------------
// Running gcc
// ---------------------------------------------------------------------------

/// The compiler and Wine's include directories.
struct Toolchain {
    gcc: String,
    windows: PathBuf,
    msvcrt: PathBuf,
}

/// Finds the compiler and Wine's headers, or explains what is missing.
fn toolchain() -> Result<Toolchain, String> {
    let gcc =
        std::env::var("WSK_MINGW_GCC").unwrap_or_else(|_| "x86_64-w64-mingw32-gcc".to_owned());
    match Command::new(&gcc).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => return Err(format!("`{gcc} --version` failed: {}", o.status)),
        Err(e) => {
            return Err(format!(
                "C compiler `{gcc}` not found ({e}); install mingw-w64"
            ));
        }
    }
    let candidates: Vec<PathBuf> = match std::env::var_os("WSK_WINE_INCLUDE") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => [
            "/usr/include/wine/wine/windows",
            "/usr/include/wine/windows",
            "/usr/local/include/wine/windows",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    };
    let windows = candidates
        .iter()
        .find(|d| d.join("ddk").join("wsk.h").is_file())
        .ok_or_else(|| {
            format!(
                "Wine's ddk/wsk.h not found under {candidates:?}; \
                 install libwine-dev or set WSK_WINE_INCLUDE"
            )
        })?
        .clone();
    let msvcrt = windows
        .parent()
        .map(|p| p.join("msvcrt"))
        .filter(|p| p.join("stddef.h").is_file())
        .ok_or_else(|| {
            format!(
                "Wine's msvcrt headers not found next to {}",
                windows.display()
            )
        })?;
    Ok(Toolchain {
        gcc,
        windows,
        msvcrt,
    })
}

/// The toolchain, or `None` after a loud skip message; panics instead of
/// skipping when `WSK_REQUIRE_WINE_HEADERS=1`.
fn toolchain_or_skip(test: &str) -> Option<Toolchain> {
    match toolchain() {
        Ok(t) => Some(t),
        Err(why) => {
            assert!(
                std::env::var("WSK_REQUIRE_WINE_HEADERS").as_deref() != Ok("1"),
                "{test}: WSK_REQUIRE_WINE_HEADERS=1 but {why}"
            );
            // Straight to the process's stderr: libtest captures `eprintln!`
            // of passing tests, and a skip must not be silent.
            let banner = "=".repeat(72);
            let _ = writeln!(
                std::io::stderr(),
                "\n{banner}\nSKIPPED {test}: {why}.\nwsk-sys's layouts were NOT compared with \
                 Wine's headers.\nSet WSK_REQUIRE_WINE_HEADERS=1 to make this a failure.\n{banner}"
            );
            None
        }
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "wsk-sys-wine-layout-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).expect("create temporary directory");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// gcc's verdict on a generated file.
struct Verdict {
    ok: bool,
    /// One line per mismatch: `what: Wine W, wsk-sys R`, plus the failed
    /// constant assertions.
    summary: Vec<String>,
    /// gcc's complete output.
    output: String,
}

/// Compiles `generated` with one gcc invocation.
fn compile(tc: &Toolchain, generated: &Generated, tag: &str) -> Verdict {
    let dir = TempDir::new(tag);
    let file = dir.path().join("wine_layout.c");
    std::fs::write(&file, &generated.source).expect("write the C file");
    let out = Command::new(&tc.gcc)
        .env("LC_ALL", "C") // ASCII quotes in diagnostics, for the summary
        .args([
            "-fsyntax-only",
            "-std=gnu11",
            "-nostdinc",
            "-fmax-errors=0",
            "-isystem",
        ])
        .arg(&tc.msvcrt)
        .arg("-isystem")
        .arg(&tc.windows)
        .arg("-isystem")
        .arg(tc.windows.join("ddk"))
        .arg(&file)
        .output()
        .expect("run the C compiler");
    let output =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Verdict {
        ok: out.status.success(),
        summary: summarize(generated, &output),
        output,
    }
}

/// Pairs gcc's "conflicting types … have 'char[W]'" / "previous declaration …
/// with type 'char[R]'" lines per check, and collects failed constant
/// assertions.
fn summarize(generated: &Generated, output: &str) -> Vec<String> {
    /// The text between `open` and the next `'` after it.
    fn quoted_after<'a>(line: &'a str, open: &str) -> Option<&'a str> {
        let start = line.find(open)? + open.len();
        let len = line[start..].find('\'')?;
        Some(&line[start..start + len])
    }
    let mut summary = Vec::new();
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if let Some(id) = quoted_after(line, "conflicting types for '") {
            let wine = quoted_after(line, "; have 'char[")
                .unwrap_or("?")
                .trim_end_matches(']');
            let rust = lines
                .by_ref()
                .find_map(|l| quoted_after(l, "with type 'char["))
                .unwrap_or("?")
                .trim_end_matches(']');
            let what = generated
                .checks
                .iter()
                .find(|c| c.id == id)
                .map_or(id, |c| c.what.as_str());
            summary.push(format!("{what}: Wine {wine}, wsk-sys {rust}"));
        } else if let Some((_, msg)) = line.split_once("static assertion failed: \"constant ") {
            // Constants (the layout assertions are covered by the pairs above).
            summary.push(format!("constant {}", msg.trim_end_matches('"')));
        }
    }
    summary
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn wsk_sys_layouts_match_wine_headers() {
    let Some(tc) = toolchain_or_skip("wsk_sys_layouts_match_wine_headers") else {
        return;
    };
    let layouts = layout_table();
    let constants = constant_table();
    let generated = generate_c(&layouts, &constants);
    let verdict = compile(&tc, &generated, "real");
    assert!(
        verdict.ok,
        "wsk-sys disagrees with Wine's headers ({}):\n  {}\n\ngcc output:\n{}",
        tc.windows.display(),
        verdict.summary.join("\n  "),
        verdict.output
    );
    eprintln!(
        "wine_layout: {} types ({} fields) and {} constants agree with Wine's headers in {}",
        layouts.len(),
        generated.fields,
        constants.len(),
        tc.windows.display()
    );
}

/// Runs the comparator on a doctored table; returns the verdict, or `None`
/// when skipped.
fn doctored(
    test: &str,
    doctor: impl FnOnce(&mut Vec<Layout>, &mut Vec<Constant>),
) -> Option<Verdict> {
    let tc = toolchain_or_skip(test)?;
    let mut layouts = layout_table();
    let mut constants = constant_table();
    doctor(&mut layouts, &mut constants);
    Some(compile(&tc, &generate_c(&layouts, &constants), test))
}

fn layout_mut<'a>(layouts: &'a mut [Layout], name: &str) -> &'a mut Layout {
    layouts
        .iter_mut()
        .find(|l| l.rust == name)
        .expect("row in the table")
}

#[test]
fn comparator_reports_a_wrong_field_offset() {
    let Some(v) = doctored("comparator_reports_a_wrong_field_offset", |layouts, _| {
        let f = layout_mut(layouts, "WSK_BUF")
            .fields
            .iter_mut()
            .find(|f| f.rust == "Length")
            .expect("field");
        assert_eq!(f.offset, 16);
        f.offset = 8;
    }) else {
        return;
    };
    assert!(
        !v.ok,
        "gcc accepted a wrong WSK_BUF.Length offset:\n{}",
        v.output
    );
    assert!(
        v.output.contains("offset of WSK_BUF.Length"),
        "gcc's output does not name WSK_BUF.Length:\n{}",
        v.output
    );
    assert_eq!(
        v.summary,
        ["offset of WSK_BUF.Length: Wine 16, wsk-sys 8"],
        "gcc output:\n{}",
        v.output
    );
}

#[test]
fn comparator_reports_a_wrong_size_and_constant() {
    let Some(v) = doctored(
        "comparator_reports_a_wrong_size_and_constant",
        |layouts, constants| {
            let l = layout_mut(layouts, "WSK_REGISTRATION");
            assert_eq!(l.size, 24);
            l.size = 16;
            let k = constants
                .iter_mut()
                .find(|k| k.c == "WSK_INFINITE_WAIT")
                .expect("constant");
            k.value = 0xffff_fffe;
        },
    ) else {
        return;
    };
    assert!(
        !v.ok,
        "gcc accepted a wrong WSK_REGISTRATION size:\n{}",
        v.output
    );
    assert!(
        v.output.contains("size of WSK_REGISTRATION"),
        "gcc's output does not name WSK_REGISTRATION:\n{}",
        v.output
    );
    assert!(
        v.output.contains("constant WSK_INFINITE_WAIT"),
        "gcc's output does not name WSK_INFINITE_WAIT:\n{}",
        v.output
    );
    assert_eq!(
        v.summary,
        [
            "size of WSK_REGISTRATION: Wine 24, wsk-sys 16",
            "constant WSK_INFINITE_WAIT: value in Wine != wsk-sys value 4294967294",
        ],
        "gcc output:\n{}",
        v.output
    );
}
