//! The Winsock Kernel interface: every structure, dispatch table, callback
//! type, constant and `netio.sys` export of `wsk.h`.
//!
//! C header: `km/wsk.h` of the Windows Driver Kit. The layout here is the
//! newest one (WDK 10.0.19041 to 10.0.22621 are identical); it was compared
//! with every WDK since 10.0.14393 and with WDK 10.0.16299 as published in
//! `tpn/winsdk-10`. Fields that later WDKs appended to provider dispatch
//! tables are marked with the Windows version that added them.
//!
//! # Provider table versions
//!
//! The provider dispatch tables ([`WSK_PROVIDER_DISPATCH`],
//! [`WSK_PROVIDER_DATAGRAM_DISPATCH`], [`WSK_PROVIDER_CONNECTION_DISPATCH`],
//! [`WSK_PROVIDER_STREAM_DISPATCH`]) are **read-only views of memory owned by
//! the provider**, and an older provider's table is *shorter* than the
//! structure declared here (for example, a provider that predates
//! `WskConnectEx` ends the connection table after `WskRelease`). Reading a
//! field the running provider does not have reads past its table. Never read a
//! field documented "Windows N and later" unless the
//! running system (or the WSK version negotiated through
//! `WSK_CLIENT_DISPATCH::Version` and [`WskQueryProviderCharacteristics`]) is
//! known to provide it; never copy a provider table by value.
//!
//! # IRQL and completion
//!
//! Unless stated otherwise, the provider routines run at IRQL ≤
//! `DISPATCH_LEVEL` and complete through the IRP passed in: a return of
//! `STATUS_PENDING` means the IRP completes later; any other return means the
//! IRP has already been completed with that status. Event callbacks are called
//! at IRQL ≤ `DISPATCH_LEVEL` (with [`WSK_FLAG_AT_DISPATCH_LEVEL`] in `Flags`
//! when at `DISPATCH_LEVEL`, for the callbacks that take flags) and must not
//! wait.
//!
//! Reference: <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/>,
//! <https://learn.microsoft.com/windows-hardware/drivers/network/winsock-kernel-overview>

#![allow(clippy::used_underscore_items)] // C names: `_WSAIOW`, …

use crate::km::{KSPIN_LOCK, PEPROCESS, PETHREAD, PIRP, PMDL, PSECURITY_DESCRIPTOR};
use crate::netioddk::{NPIID, PNPIID};
use crate::ntdef::{
    GUID, NTSTATUS, PCVOID, PCWSTR, PGUID, PSIZE_T, PULONG, PUNICODE_STRING, PVOID, SIZE_T, UCHAR,
    ULONG, ULONG_PTR, ULONGLONG, USHORT,
};
use crate::ws2def::{
    _WSAIO, _WSAIOR, _WSAIORW, _WSAIOW, ADDRESS_FAMILY, IOC_WSK, PADDRINFOEXW, PCMSGHDR, PSOCKADDR,
    WSK_SO_BASE,
};

// ---------------------------------------------------------------------------
// Interface identifier and versions
// ---------------------------------------------------------------------------

/// `NPI_WSK_INTERFACE_ID`: the NPI identifier of WSK,
/// `{2227E803-8D8B-11D4-ABAD-009027719E09}`.
///
/// `wsk.h` only declares it (`extern CONST NPIID NPI_WSK_INTERFACE_ID;`); the
/// definition is data in Microsoft's `uuid.lib`. The value here is the one
/// independently reproduced by programs that use it without that library:
/// LINBIT's `WinDRBD` (`LINBIT/windrbd`) and its predecessor
/// `mantechnology/wdrbd` define the same bytes, and a public tool that dumps
/// the `NPI_WSK_INTERFACE_ID` COFF symbol from the WDK's `uuid.lib` prints
/// `03 E8 27 22 8B 8D D4 11 AB AD 00 90 27 71 9E 09`.
///
/// Used as `WSK_EVENT_CALLBACK_CONTROL::NpiId`; `&NPI_WSK_INTERFACE_ID` is a
/// `'static` reference (constant promotion).
pub const NPI_WSK_INTERFACE_ID: NPIID = GUID {
    Data1: 0x2227_E803,
    Data2: 0x8D8B,
    Data3: 0x11D4,
    Data4: [0xAB, 0xAD, 0x00, 0x90, 0x27, 0x71, 0x9E, 0x09],
};

/// `MAKE_WSK_VERSION(Mj, Mn)`: `(USHORT)(Mj << 8) | (USHORT)(Mn & 0xff)`, the
/// value of `WSK_CLIENT_DISPATCH::Version`.
#[must_use]
pub const fn MAKE_WSK_VERSION(Mj: UCHAR, Mn: UCHAR) -> USHORT {
    ((Mj as USHORT) << 8) | (Mn as USHORT)
}

/// `WSK_MAJOR_VERSION(V)`: `(UCHAR)(V >> 8)`.
#[must_use]
#[allow(clippy::cast_possible_truncation)]
pub const fn WSK_MAJOR_VERSION(V: USHORT) -> UCHAR {
    (V >> 8) as UCHAR
}

/// `WSK_MINOR_VERSION(V)`: `(UCHAR)V`.
#[must_use]
#[allow(clippy::cast_possible_truncation)]
pub const fn WSK_MINOR_VERSION(V: USHORT) -> UCHAR {
    V as UCHAR
}

// ---------------------------------------------------------------------------
// Basic objects
// ---------------------------------------------------------------------------

/// `WSK_SOCKET`: a socket object. `Dispatch` points to the provider table of
/// the socket's kind: [`WSK_PROVIDER_BASIC_DISPATCH`],
/// [`WSK_PROVIDER_LISTEN_DISPATCH`], [`WSK_PROVIDER_DATAGRAM_DISPATCH`],
/// [`WSK_PROVIDER_CONNECTION_DISPATCH`] or [`WSK_PROVIDER_STREAM_DISPATCH`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_socket>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_SOCKET {
    /// `Dispatch`: the socket's provider dispatch table.
    pub Dispatch: PCVOID,
}
/// `PWSK_SOCKET`: pointer to [`WSK_SOCKET`].
pub type PWSK_SOCKET = *mut WSK_SOCKET;

/// `PWSK_CLIENT`: the opaque client object returned in
/// `WSK_PROVIDER_NPI::Client`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/wsk-client>
pub type PWSK_CLIENT = PVOID;

/// `WSK_PROVIDER_CHARACTERISTICS`: the range of WSK versions a provider
/// supports ([`WskQueryProviderCharacteristics`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_characteristics>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WSK_PROVIDER_CHARACTERISTICS {
    /// `HighestVersion`: highest supported version ([`MAKE_WSK_VERSION`]).
    pub HighestVersion: USHORT,
    /// `LowestVersion`: lowest supported version.
    pub LowestVersion: USHORT,
}
/// `PWSK_PROVIDER_CHARACTERISTICS`: pointer to
/// [`WSK_PROVIDER_CHARACTERISTICS`].
pub type PWSK_PROVIDER_CHARACTERISTICS = *mut WSK_PROVIDER_CHARACTERISTICS;

/// `WSK_TRANSPORT`: one available transport, from
/// [`WSK_TRANSPORT_LIST_QUERY`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_transport>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WSK_TRANSPORT {
    /// `Version`: version of the transport.
    pub Version: USHORT,
    /// `SocketType`: `SOCK_*`.
    pub SocketType: USHORT,
    /// `Protocol`: `IPPROTO_*`.
    pub Protocol: ULONG,
    /// `AddressFamily`: `AF_*`.
    pub AddressFamily: ADDRESS_FAMILY,
    /// `ProviderId`: the transport's provider.
    pub ProviderId: GUID,
}
/// `PWSK_TRANSPORT`: pointer to [`WSK_TRANSPORT`].
pub type PWSK_TRANSPORT = *mut WSK_TRANSPORT;

/// `WSK_BUF`: a data buffer — `Length` bytes starting `Offset` bytes into a
/// locked MDL chain. `Offset` must lie within the first MDL.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_BUF {
    /// `Mdl`: locked MDL chain.
    pub Mdl: PMDL,
    /// `Offset`: offset into the first MDL.
    pub Offset: ULONG,
    /// `Length`: length of data starting at `Offset`.
    pub Length: SIZE_T,
}
/// `PWSK_BUF`: pointer to [`WSK_BUF`].
pub type PWSK_BUF = *mut WSK_BUF;

/// `WSK_DATA_INDICATION`: one buffer of a data indication on a connection
/// socket ([`PFN_WSK_RECEIVE_EVENT`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_data_indication>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_DATA_INDICATION {
    /// `Next`: next element, or null.
    pub Next: *mut WSK_DATA_INDICATION,
    /// `Buffer`: the data.
    pub Buffer: WSK_BUF,
}
/// `PWSK_DATA_INDICATION`: pointer to [`WSK_DATA_INDICATION`].
pub type PWSK_DATA_INDICATION = *mut WSK_DATA_INDICATION;

/// `WSK_DATAGRAM_INDICATION`: one datagram of a receive-from indication
/// ([`PFN_WSK_RECEIVE_FROM_EVENT`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_datagram_indication>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_DATAGRAM_INDICATION {
    /// `Next`: next datagram, or null.
    pub Next: *mut WSK_DATAGRAM_INDICATION,
    /// `Buffer`: the datagram's data.
    pub Buffer: WSK_BUF,
    /// `ControlInfo`: `ControlInfoLength` bytes of control messages.
    pub ControlInfo: PCMSGHDR,
    /// `ControlInfoLength`: length of `ControlInfo` in bytes.
    pub ControlInfoLength: ULONG,
    /// `RemoteAddress`: the sender.
    pub RemoteAddress: PSOCKADDR,
}
/// `PWSK_DATAGRAM_INDICATION`: pointer to [`WSK_DATAGRAM_INDICATION`].
pub type PWSK_DATAGRAM_INDICATION = *mut WSK_DATAGRAM_INDICATION;

/// `WSK_BUF_LIST` (Windows 8 and later): one datagram of a
/// [`PFN_WSK_SEND_MESSAGES`] request.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf_list>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_BUF_LIST {
    /// `Next`: next datagram, or null.
    pub Next: *mut WSK_BUF_LIST,
    /// `Buffer`: the datagram's data.
    pub Buffer: WSK_BUF,
}
/// `PWSK_BUF_LIST`: pointer to [`WSK_BUF_LIST`].
pub type PWSK_BUF_LIST = *mut WSK_BUF_LIST;

/// `WSK_INSPECT_ID`: identifies a pending connection request on a
/// conditional-accept listening socket (by content, not by address).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_inspect_id>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WSK_INSPECT_ID {
    /// `Key`.
    pub Key: ULONG_PTR,
    /// `SerialNumber`.
    pub SerialNumber: ULONG,
}
/// `PWSK_INSPECT_ID`: pointer to [`WSK_INSPECT_ID`].
pub type PWSK_INSPECT_ID = *mut WSK_INSPECT_ID;

/// `WSK_INSPECT_ACTION`: decision on an inspected connection request (a C
/// `enum`, so an `INT`; kept as an integer because the provider is foreign
/// code).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ne-wsk-wsk_inspect_action>
pub type WSK_INSPECT_ACTION = i32;
/// `PWSK_INSPECT_ACTION`: pointer to [`WSK_INSPECT_ACTION`].
pub type PWSK_INSPECT_ACTION = *mut WSK_INSPECT_ACTION;
/// `WskInspectReject`: reject the connection request.
pub const WskInspectReject: WSK_INSPECT_ACTION = 0;
/// `WskInspectAccept`: proceed with the regular accept.
pub const WskInspectAccept: WSK_INSPECT_ACTION = 1;
/// `WskInspectPend`: decide later with `WskInspectComplete`.
pub const WskInspectPend: WSK_INSPECT_ACTION = 2;
/// `WskInspectMax`: number of actions (not an action).
pub const WskInspectMax: WSK_INSPECT_ACTION = 3;

/// `WSK_CONTROL_SOCKET_TYPE`: the `RequestType` of `WskControlSocket` (a C
/// `enum`).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>
pub type WSK_CONTROL_SOCKET_TYPE = i32;
/// `PWSK_CONTROL_SOCKET_TYPE`: pointer to [`WSK_CONTROL_SOCKET_TYPE`].
pub type PWSK_CONTROL_SOCKET_TYPE = *mut WSK_CONTROL_SOCKET_TYPE;
/// `WskSetOption`: set a socket option.
pub const WskSetOption: WSK_CONTROL_SOCKET_TYPE = 0;
/// `WskGetOption`: get a socket option.
pub const WskGetOption: WSK_CONTROL_SOCKET_TYPE = 1;
/// `WskIoctl`: socket I/O control.
pub const WskIoctl: WSK_CONTROL_SOCKET_TYPE = 2;
/// `WskControlMax`: number of request types (not a request type).
pub const WskControlMax: WSK_CONTROL_SOCKET_TYPE = 3;

// ---------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------

/// `WSK_FLAG_ABORTIVE`: in the disconnect event's `Flags`, the peer reset the
/// connection; in `WskDisconnect`'s `Flags`, disconnect abortively.
pub const WSK_FLAG_ABORTIVE: ULONG = 0x0000_0001;
/// `WSK_FLAG_RELEASE_ASAP`: the indicated buffers should not be retained; if
/// retained, release them as soon as possible.
pub const WSK_FLAG_RELEASE_ASAP: ULONG = 0x0000_0002;
/// `WSK_FLAG_ENTIRE_MESSAGE`: the indication holds an entire message.
pub const WSK_FLAG_ENTIRE_MESSAGE: ULONG = 0x0000_0004;
/// `WSK_FLAG_AT_DISPATCH_LEVEL`: the event callback was called at
/// `DISPATCH_LEVEL`.
pub const WSK_FLAG_AT_DISPATCH_LEVEL: ULONG = 0x0000_0008;

/// `WSK_FLAG_BASIC_SOCKET`: `WskSocket` kind: basic (control only).
pub const WSK_FLAG_BASIC_SOCKET: ULONG = 0x0000_0000;
/// `WSK_FLAG_LISTEN_SOCKET`: `WskSocket` kind: listening.
pub const WSK_FLAG_LISTEN_SOCKET: ULONG = 0x0000_0001;
/// `WSK_FLAG_CONNECTION_SOCKET`: `WskSocket` kind: connection-oriented.
pub const WSK_FLAG_CONNECTION_SOCKET: ULONG = 0x0000_0002;
/// `WSK_FLAG_DATAGRAM_SOCKET`: `WskSocket` kind: datagram.
pub const WSK_FLAG_DATAGRAM_SOCKET: ULONG = 0x0000_0004;
/// `WSK_FLAG_STREAM_SOCKET` (Windows 10 1703 and later): `WskSocket` kind:
/// stream (listen or connect).
pub const WSK_FLAG_STREAM_SOCKET: ULONG = 0x0000_0008;

/// `WSK_FLAG_OOB` (`WskSend`, WDK 10.0.16299 and later): send as out-of-band
/// data.
pub const WSK_FLAG_OOB: ULONG = 0x0000_0001;
/// `WSK_FLAG_NODELAY` (`WskSend`): send this and queued data without delay.
pub const WSK_FLAG_NODELAY: ULONG = 0x0000_0002;
/// `WSK_FLAG_WAITALL` (`WskReceive`): complete only when the buffer is full.
pub const WSK_FLAG_WAITALL: ULONG = 0x0000_0002;
/// `WSK_FLAG_DRAIN` (`WskReceive`): discard existing and future incoming
/// data.
pub const WSK_FLAG_DRAIN: ULONG = 0x0000_0004;

/// `WSK_NO_WAIT`: `WskCaptureProviderNPI` time-out: return at once.
pub const WSK_NO_WAIT: ULONG = 0;
/// `WSK_INFINITE_WAIT`: `WskCaptureProviderNPI` time-out: wait until the
/// provider is available.
pub const WSK_INFINITE_WAIT: ULONG = 0xffff_ffff;

// ---------------------------------------------------------------------------
// Client-level control codes (WskControlClient)
// ---------------------------------------------------------------------------

/// `WSK_TRANSPORT_LIST_QUERY`: get the array of [`WSK_TRANSPORT`].
pub const WSK_TRANSPORT_LIST_QUERY: ULONG = 2;
/// `WSK_TRANSPORT_LIST_CHANGE`: be notified (IRP completion) of a transport
/// list change.
pub const WSK_TRANSPORT_LIST_CHANGE: ULONG = 3;
/// `WSK_CACHE_SD`: get a cached copy of a security descriptor.
pub const WSK_CACHE_SD: ULONG = 4;
/// `WSK_RELEASE_SD`: release a cached security descriptor.
pub const WSK_RELEASE_SD: ULONG = 5;
/// `WSK_TDI_DEVICENAME_MAPPING`: map (family, type, protocol) triples to TDI
/// device names ([`WSK_TDI_MAP_INFO`]).
pub const WSK_TDI_DEVICENAME_MAPPING: ULONG = 6;
/// `WSK_SET_STATIC_EVENT_CALLBACKS`: enable event callbacks on every socket
/// created from now on ([`WSK_EVENT_CALLBACK_CONTROL`]).
pub const WSK_SET_STATIC_EVENT_CALLBACKS: ULONG = 7;
/// `WSK_TDI_BEHAVIOR`: control whether WSK diverts I/O to TDI transports.
pub const WSK_TDI_BEHAVIOR: ULONG = 8;
/// `WSK_TDI_BEHAVIOR_BYPASS_TDI`: flag of [`WSK_TDI_BEHAVIOR`].
pub const WSK_TDI_BEHAVIOR_BYPASS_TDI: ULONG = 0x0000_0001;

/// `WSK_TDI_MAP`: one mapping of [`WSK_TDI_DEVICENAME_MAPPING`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_tdi_map>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_TDI_MAP {
    /// `SocketType`: `SOCK_*`.
    pub SocketType: USHORT,
    /// `AddressFamily`: `AF_*`.
    pub AddressFamily: ADDRESS_FAMILY,
    /// `Protocol`: `IPPROTO_*`.
    pub Protocol: ULONG,
    /// `TdiDeviceName`: NUL-terminated TDI device name.
    pub TdiDeviceName: PCWSTR,
}
/// `PWSK_TDI_MAP`: pointer to [`WSK_TDI_MAP`].
pub type PWSK_TDI_MAP = *mut WSK_TDI_MAP;

/// `WSK_TDI_MAP_INFO`: input of [`WSK_TDI_DEVICENAME_MAPPING`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_tdi_map_info>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_TDI_MAP_INFO {
    /// `ElementCount`: number of elements at `Map`.
    pub ElementCount: ULONG,
    /// `Map`: the mappings.
    pub Map: *const WSK_TDI_MAP,
}
/// `PWSK_TDI_MAP_INFO`: pointer to [`WSK_TDI_MAP_INFO`].
pub type PWSK_TDI_MAP_INFO = *mut WSK_TDI_MAP_INFO;

// ---------------------------------------------------------------------------
// Socket options and IOCTLs (WskControlSocket)
// ---------------------------------------------------------------------------

/// `SO_WSK_SECURITY` (`WSK_SO_BASE + 1`, level `SOL_SOCKET`): security
/// descriptor of the socket's local address.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-security>
pub const SO_WSK_SECURITY: ULONG = WSK_SO_BASE + 1;
/// `SO_WSK_EVENT_CALLBACK` (`WSK_SO_BASE + 2`, level `SOL_SOCKET`): enable or
/// disable event callbacks ([`WSK_EVENT_CALLBACK_CONTROL`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>
pub const SO_WSK_EVENT_CALLBACK: ULONG = WSK_SO_BASE + 2;

/// `WSK_EVENT_RECEIVE_FROM`: receive-from event (datagram sockets).
pub const WSK_EVENT_RECEIVE_FROM: ULONG = 0x0000_0100;
/// `WSK_EVENT_ACCEPT`: accept event (listening sockets).
pub const WSK_EVENT_ACCEPT: ULONG = 0x0000_0200;
/// `WSK_EVENT_SEND_BACKLOG`: send-backlog event (connection and listening
/// sockets).
pub const WSK_EVENT_SEND_BACKLOG: ULONG = 0x0000_0010;
/// `WSK_EVENT_RECEIVE`: receive event (connection and listening sockets).
pub const WSK_EVENT_RECEIVE: ULONG = 0x0000_0040;
/// `WSK_EVENT_DISCONNECT`: disconnect event (connection and listening
/// sockets).
pub const WSK_EVENT_DISCONNECT: ULONG = 0x0000_0080;
/// `WSK_EVENT_DISABLE`: OR-ed with one event flag, disables that callback.
pub const WSK_EVENT_DISABLE: ULONG = 0x8000_0000;

/// `WSK_EVENT_CALLBACK_CONTROL`: input of [`SO_WSK_EVENT_CALLBACK`] and
/// [`WSK_SET_STATIC_EVENT_CALLBACKS`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_event_callback_control>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_EVENT_CALLBACK_CONTROL {
    /// `NpiId`: `&NPI_WSK_INTERFACE_ID` for the standard events, or an
    /// extension's NPI id.
    pub NpiId: PNPIID,
    /// `EventMask`: `WSK_EVENT_*` flags (with [`WSK_EVENT_DISABLE`] to
    /// disable one).
    pub EventMask: ULONG,
}
/// `PWSK_EVENT_CALLBACK_CONTROL`: pointer to [`WSK_EVENT_CALLBACK_CONTROL`].
pub type PWSK_EVENT_CALLBACK_CONTROL = *mut WSK_EVENT_CALLBACK_CONTROL;

/// `SIO_WSK_SET_REMOTE_ADDRESS`: `_WSAIOW(IOC_WSK, 0x1)`, set a datagram
/// socket's fixed destination.
pub const SIO_WSK_SET_REMOTE_ADDRESS: ULONG = _WSAIOW(IOC_WSK, 0x1);
/// `SIO_WSK_REGISTER_EXTENSION`: `_WSAIORW(IOC_WSK, 0x2)`, register an
/// extension interface ([`WSK_EXTENSION_CONTROL_IN`]/[`WSK_EXTENSION_CONTROL_OUT`]).
pub const SIO_WSK_REGISTER_EXTENSION: ULONG = _WSAIORW(IOC_WSK, 0x2);
/// `SIO_WSK_QUERY_IDEAL_SEND_BACKLOG`: `_WSAIOR(IOC_WSK, 0x3)`.
pub const SIO_WSK_QUERY_IDEAL_SEND_BACKLOG: ULONG = _WSAIOR(IOC_WSK, 0x3);
/// `SIO_WSK_QUERY_RECEIVE_BACKLOG`: `_WSAIOR(IOC_WSK, 0x4)`.
pub const SIO_WSK_QUERY_RECEIVE_BACKLOG: ULONG = _WSAIOR(IOC_WSK, 0x4);
/// `SIO_WSK_QUERY_INSPECT_ID`: `_WSAIOR(IOC_WSK, 0x5)`.
pub const SIO_WSK_QUERY_INSPECT_ID: ULONG = _WSAIOR(IOC_WSK, 0x5);
/// `SIO_WSK_SET_SENDTO_ADDRESS`: `_WSAIOW(IOC_WSK, 0x6)`.
pub const SIO_WSK_SET_SENDTO_ADDRESS: ULONG = _WSAIOW(IOC_WSK, 0x6);
/// `SIO_WSK_SET_TCP_SILENT_MODE`: `_WSAIO(IOC_WSK, 0x7)`.
pub const SIO_WSK_SET_TCP_SILENT_MODE: ULONG = _WSAIO(IOC_WSK, 0x7);
/// `SIO_WSK_SET_RECEIVE_EX_CALLBACK` (WDK 10.0.17134 and later):
/// `_WSAIOW(IOC_WSK, 0x8)`; input a [`PFN_WSK_RECEIVE_EX_EVENT`] to enable, null
/// to disable. While enabled, all receives on the connection/stream socket
/// are indicated through it, whatever the [`WSK_EVENT_RECEIVE`] setting.
pub const SIO_WSK_SET_RECEIVE_EX_CALLBACK: ULONG = _WSAIOW(IOC_WSK, 0x8);

/// `WSK_EXTENSION_CONTROL_IN`: input of [`SIO_WSK_REGISTER_EXTENSION`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_extension_control_in>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_EXTENSION_CONTROL_IN {
    /// `NpiId`: the extension interface.
    pub NpiId: PNPIID,
    /// `ClientContext`: the client's context for the extension.
    pub ClientContext: PVOID,
    /// `ClientDispatch`: the client's dispatch table for the extension.
    pub ClientDispatch: PCVOID,
}
/// `PWSK_EXTENSION_CONTROL_IN`: pointer to [`WSK_EXTENSION_CONTROL_IN`].
pub type PWSK_EXTENSION_CONTROL_IN = *mut WSK_EXTENSION_CONTROL_IN;

/// `WSK_EXTENSION_CONTROL_OUT`: output of [`SIO_WSK_REGISTER_EXTENSION`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_extension_control_out>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_EXTENSION_CONTROL_OUT {
    /// `ProviderContext`: the provider's context for the extension.
    pub ProviderContext: PVOID,
    /// `ProviderDispatch`: the provider's dispatch table for the extension.
    pub ProviderDispatch: PCVOID,
}
/// `PWSK_EXTENSION_CONTROL_OUT`: pointer to [`WSK_EXTENSION_CONTROL_OUT`].
pub type PWSK_EXTENSION_CONTROL_OUT = *mut WSK_EXTENSION_CONTROL_OUT;

// ---------------------------------------------------------------------------
// Event callbacks (implemented by the client)
// ---------------------------------------------------------------------------

/// `PFN_WSK_CLIENT_EVENT` (`WskClientEvent`): client-level event. No event
/// types are defined; return `STATUS_SUCCESS` unless a future event type says
/// otherwise.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_client_event>
pub type PFN_WSK_CLIENT_EVENT = Option<
    unsafe extern "system" fn(
        ClientContext: PVOID,
        EventType: ULONG,
        Information: PVOID,
        InformationLength: SIZE_T,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_RECEIVE_FROM_EVENT` (`WskReceiveFromEvent`): datagrams arrived on
/// a datagram socket.
///
/// `Flags`: `MSG_BCAST`, `MSG_MCAST`, [`WSK_FLAG_AT_DISPATCH_LEVEL`]. A null
/// `DataIndication` means the socket is no longer functional and the client
/// must close it. Returns `STATUS_SUCCESS` (consumed), `STATUS_PENDING`
/// (retained until released with `WskRelease`) or `STATUS_DATA_NOT_ACCEPTED`
/// (not consumed; no further indications until callbacks are re-enabled).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event>
pub type PFN_WSK_RECEIVE_FROM_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: PVOID,
        Flags: ULONG,
        DataIndication: PWSK_DATAGRAM_INDICATION,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_ACCEPT_EVENT` (`WskAcceptEvent`): a connection was accepted on a
/// listening socket (the handshake has completed).
///
/// `Flags`: [`WSK_FLAG_AT_DISPATCH_LEVEL`]. A null `AcceptSocket` means the
/// listening socket is no longer functional and must be closed. Set
/// `*AcceptSocketContext`/`*AcceptSocketDispatch` before returning. Returns
/// `STATUS_SUCCESS` (accepted) or `STATUS_REQUEST_NOT_ACCEPTED` (rejected:
/// the provider closes the socket; do not touch it).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>
pub type PFN_WSK_ACCEPT_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: PVOID,
        Flags: ULONG,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        AcceptSocket: PWSK_SOCKET,
        AcceptSocketContext: *mut PVOID,
        AcceptSocketDispatch: *mut *const WSK_CLIENT_CONNECTION_DISPATCH,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_INSPECT_EVENT` (`WskInspectEvent`): a connection request arrived
/// on a conditional-accept listening socket, before the handshake.
///
/// `InspectID` identifies the request by content (copy it to keep it); null
/// means the listening socket is being closed. Returns [`WskInspectReject`],
/// [`WskInspectAccept`] or [`WskInspectPend`] (decide later with
/// `WskInspectComplete`).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event>
pub type PFN_WSK_INSPECT_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: PVOID,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        InspectID: PWSK_INSPECT_ID,
    ) -> WSK_INSPECT_ACTION,
>;

/// `PFN_WSK_ABORT_EVENT` (`WskAbortEvent`): an inspected connection request
/// was dropped (conditional-accept sockets only).
///
/// **Must return `STATUS_SUCCESS`** — the only allowed value.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_abort_event>
pub type PFN_WSK_ABORT_EVENT =
    Option<unsafe extern "system" fn(SocketContext: PVOID, InspectID: PWSK_INSPECT_ID) -> NTSTATUS>;

/// `PFN_WSK_SEND_BACKLOG_EVENT` (`WskSendBacklogEvent`): the ideal send
/// backlog (bytes to keep outstanding to fill the pipe) changed.
///
/// **Must return `STATUS_SUCCESS`** — the only allowed value.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_backlog_event>
pub type PFN_WSK_SEND_BACKLOG_EVENT =
    Option<unsafe extern "system" fn(SocketContext: PVOID, IdealBacklogSize: SIZE_T) -> NTSTATUS>;

/// `PFN_WSK_RECEIVE_EVENT` (`WskReceiveEvent`): data arrived on a connection
/// socket.
///
/// `Flags`: [`WSK_FLAG_RELEASE_ASAP`], [`WSK_FLAG_ENTIRE_MESSAGE`],
/// [`WSK_FLAG_AT_DISPATCH_LEVEL`]. A null `DataIndication` means the socket
/// is no longer functional and must be closed. Returns `STATUS_SUCCESS`
/// (consumed; set `*BytesAccepted` only for a partial accept, after which no
/// indications come until a `WskReceive` completes), `STATUS_PENDING`
/// (retained until `WskRelease`) or `STATUS_DATA_NOT_ACCEPTED` (no
/// indications until a `WskReceive` completes).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>
pub type PFN_WSK_RECEIVE_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: PVOID,
        Flags: ULONG,
        DataIndication: PWSK_DATA_INDICATION,
        BytesIndicated: SIZE_T,
        BytesAccepted: PSIZE_T,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_RECEIVE_EX_EVENT` (WDK 10.0.17134 and later): like
/// [`PFN_WSK_RECEIVE_EVENT`] with control information. Installed only through
/// [`SIO_WSK_SET_RECEIVE_EX_CALLBACK`], never through a client dispatch
/// table. Wine's header calls it undocumented and reserved for system use.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
pub type PFN_WSK_RECEIVE_EX_EVENT = Option<
    unsafe extern "system" fn(
        SocketContext: PVOID,
        Flags: ULONG,
        DataIndication: PWSK_DATA_INDICATION,
        ControlInfo: PCMSGHDR,
        ControlInfoLength: ULONG,
        BytesIndicated: SIZE_T,
        BytesAccepted: PSIZE_T,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_DISCONNECT_EVENT` (`WskDisconnectEvent`): the peer started a
/// disconnect; abortive if `Flags` has [`WSK_FLAG_ABORTIVE`], graceful
/// otherwise (also [`WSK_FLAG_AT_DISPATCH_LEVEL`]).
///
/// **Must return `STATUS_SUCCESS`** — the only allowed value.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect_event>
pub type PFN_WSK_DISCONNECT_EVENT =
    Option<unsafe extern "system" fn(SocketContext: PVOID, Flags: ULONG) -> NTSTATUS>;

// ---------------------------------------------------------------------------
// Provider-level routines
// ---------------------------------------------------------------------------

/// `PFN_WSK_SOCKET` (`WskSocket`): creates a socket. On success
/// `Irp->IoStatus.Information` holds the new [`PWSK_SOCKET`].
///
/// `Flags` is one `WSK_FLAG_*_SOCKET`; `Dispatch` is the matching client
/// table ([`WSK_CLIENT_LISTEN_DISPATCH`], [`WSK_CLIENT_CONNECTION_DISPATCH`],
/// [`WSK_CLIENT_DATAGRAM_DISPATCH`], [`WSK_CLIENT_STREAM_DISPATCH`]) or null.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>
pub type PFN_WSK_SOCKET = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        AddressFamily: ADDRESS_FAMILY,
        SocketType: USHORT,
        Protocol: ULONG,
        Flags: ULONG,
        SocketContext: PVOID,
        Dispatch: PCVOID,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        SecurityDescriptor: PSECURITY_DESCRIPTOR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_SOCKET_CONNECT` (`WskSocketConnect`): creates, binds and
/// connects a connection socket. `Flags` is reserved (0). On success
/// `Irp->IoStatus.Information` holds the new [`PWSK_SOCKET`].
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>
pub type PFN_WSK_SOCKET_CONNECT = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        SocketType: USHORT,
        Protocol: ULONG,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        Flags: ULONG,
        SocketContext: PVOID,
        Dispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        SecurityDescriptor: PSECURITY_DESCRIPTOR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_CONTROL_CLIENT` (`WskControlClient`): client-level control
/// ([`WSK_TRANSPORT_LIST_QUERY`], [`WSK_SET_STATIC_EVENT_CALLBACKS`], …).
/// `Irp` is optional for some codes; `OutputSizeReturned` is used when it is
/// null.
///
/// IRQL ≤ `DISPATCH_LEVEL` (some control codes require `PASSIVE_LEVEL`; see
/// Microsoft Learn).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_client>
pub type PFN_WSK_CONTROL_CLIENT = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        ControlCode: ULONG,
        InputSize: SIZE_T,
        InputBuffer: PVOID,
        OutputSize: SIZE_T,
        OutputBuffer: PVOID,
        OutputSizeReturned: PSIZE_T,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_GET_ADDRESS_INFO` (`WskGetAddressInfo`, Windows 7 and later):
/// name-to-address translation. Free `*Result` with `WskFreeAddressInfo`.
///
/// IRQL = `PASSIVE_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>
pub type PFN_WSK_GET_ADDRESS_INFO = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        NodeName: PUNICODE_STRING,
        ServiceName: PUNICODE_STRING,
        NameSpace: ULONG,
        Provider: PGUID,
        Hints: PADDRINFOEXW,
        Result: *mut PADDRINFOEXW,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_GET_NAME_INFO` (`WskGetNameInfo`, Windows 7 and later):
/// address-to-name translation.
///
/// IRQL = `PASSIVE_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>
pub type PFN_WSK_GET_NAME_INFO = Option<
    unsafe extern "system" fn(
        Client: PWSK_CLIENT,
        SockAddr: PSOCKADDR,
        SockAddrLength: ULONG,
        NodeName: PUNICODE_STRING,
        ServiceName: PUNICODE_STRING,
        Flags: ULONG,
        OwningProcess: PEPROCESS,
        OwningThread: PETHREAD,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_FREE_ADDRESS_INFO` (`WskFreeAddressInfo`, Windows 7 and later):
/// frees a `WskGetAddressInfo` result list.
///
/// IRQL = `PASSIVE_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_free_address_info>
pub type PFN_WSK_FREE_ADDRESS_INFO =
    Option<unsafe extern "system" fn(Client: PWSK_CLIENT, AddrInfo: PADDRINFOEXW)>;

// ---------------------------------------------------------------------------
// Socket-level routines (implemented by the provider)
// ---------------------------------------------------------------------------

/// `PFN_WSK_BIND` (`WskBind`): binds a local address. `Flags` is reserved
/// (0).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>
pub type PFN_WSK_BIND = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        LocalAddress: PSOCKADDR,
        Flags: ULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_CONNECT` (`WskConnect`): connects to a remote address. `Flags`
/// is reserved (0).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect>
pub type PFN_WSK_CONNECT = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        RemoteAddress: PSOCKADDR,
        Flags: ULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_CONNECT_EX` (`WskConnectEx`, Windows 10 1703 and later): like
/// `WskConnect`, with optional data sent during or after the handshake.
/// `Flags` is reserved (0).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>
pub type PFN_WSK_CONNECT_EX = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        RemoteAddress: PSOCKADDR,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_CONTROL_SOCKET` (`WskControlSocket`): sets/gets a socket option
/// or performs a socket IOCTL. `Irp` is required, optional or must be null
/// depending on the control code; `OutputSizeReturned` is used for in-line
/// completion without an IRP. May return `STATUS_REQUEST_NOT_ACCEPTED` when
/// in-line completion is not possible.
///
/// IRQL ≤ `DISPATCH_LEVEL` (some options require `PASSIVE_LEVEL`).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket>
pub type PFN_WSK_CONTROL_SOCKET = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        RequestType: WSK_CONTROL_SOCKET_TYPE,
        ControlCode: ULONG,
        Level: ULONG,
        InputSize: SIZE_T,
        InputBuffer: PVOID,
        OutputSize: SIZE_T,
        OutputBuffer: PVOID,
        OutputSizeReturned: PSIZE_T,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_CLOSE_SOCKET` (`WskCloseSocket`): closes a socket and cancels
/// its outstanding requests. No call may be in progress on the socket, and
/// none may follow. `Irp` is required. Event callbacks may run until the IRP
/// completes.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>
pub type PFN_WSK_CLOSE_SOCKET =
    Option<unsafe extern "system" fn(Socket: PWSK_SOCKET, Irp: PIRP) -> NTSTATUS>;

/// `PFN_WSK_ACCEPT` (`WskAccept`): accepts an incoming connection on a
/// listening socket. `Flags` is reserved (0). On success
/// `Irp->IoStatus.Information` holds the accepted [`PWSK_SOCKET`].
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>
pub type PFN_WSK_ACCEPT = Option<
    unsafe extern "system" fn(
        ListenSocket: PWSK_SOCKET,
        Flags: ULONG,
        AcceptSocketContext: PVOID,
        AcceptSocketDispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
        LocalAddress: PSOCKADDR,
        RemoteAddress: PSOCKADDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_INSPECT_COMPLETE` (`WskInspectComplete`): resumes a connection
/// request for which the inspect event returned [`WskInspectPend`]; `Action`
/// is [`WskInspectReject`] or [`WskInspectAccept`]. `Irp` is required.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_complete>
pub type PFN_WSK_INSPECT_COMPLETE = Option<
    unsafe extern "system" fn(
        ListenSocket: PWSK_SOCKET,
        InspectID: PWSK_INSPECT_ID,
        Action: WSK_INSPECT_ACTION,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_LISTEN` (`WskListen`, Windows 10 1703 and later): starts
/// listening on a bound stream socket.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen>
pub type PFN_WSK_LISTEN =
    Option<unsafe extern "system" fn(Socket: PWSK_SOCKET, Irp: PIRP) -> NTSTATUS>;

/// `PFN_WSK_SEND_TO` (`WskSendTo`): sends one datagram from a bound
/// datagram socket. `Flags` is reserved (0).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>
pub type PFN_WSK_SEND_TO = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        RemoteAddress: PSOCKADDR,
        ControlInfoLength: ULONG,
        ControlInfo: PCMSGHDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_SEND_MESSAGES` (`WskSendMessages`, Windows 8 and later): sends
/// several datagrams from a bound datagram socket. `Flags` is reserved (0).
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_messages>
pub type PFN_WSK_SEND_MESSAGES = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        BufferList: PWSK_BUF_LIST,
        Flags: ULONG,
        RemoteAddress: PSOCKADDR,
        ControlInfoLength: ULONG,
        ControlInfo: PCMSGHDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_RECEIVE_FROM` (`WskReceiveFrom`): receives one datagram.
/// `Flags` is reserved (0); `*ControlFlags` may receive `MSG_MCAST`,
/// `MSG_BCAST`, `MSG_TRUNC`, `MSG_CTRUNC`. Pointed-to outputs must stay valid
/// until the IRP completes.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
pub type PFN_WSK_RECEIVE_FROM = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        RemoteAddress: PSOCKADDR,
        ControlLength: PULONG,
        ControlInfo: PCMSGHDR,
        ControlFlags: PULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_GET_LOCAL_ADDRESS` (`WskGetLocalAddress`): the socket's local
/// transport address.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_local_address>
pub type PFN_WSK_GET_LOCAL_ADDRESS = Option<
    unsafe extern "system" fn(Socket: PWSK_SOCKET, LocalAddress: PSOCKADDR, Irp: PIRP) -> NTSTATUS,
>;

/// `PFN_WSK_GET_REMOTE_ADDRESS` (`WskGetRemoteAddress`): the connected
/// peer's transport address.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_remote_address>
pub type PFN_WSK_GET_REMOTE_ADDRESS = Option<
    unsafe extern "system" fn(Socket: PWSK_SOCKET, RemoteAddress: PSOCKADDR, Irp: PIRP) -> NTSTATUS,
>;

/// `PFN_WSK_RELEASE_DATA_INDICATION_LIST` (`WskRelease` on connection and
/// stream sockets): releases data indications retained by returning
/// `STATUS_PENDING` from the receive event. Takes no IRP.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_data_indication_list>
pub type PFN_WSK_RELEASE_DATA_INDICATION_LIST = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        DataIndication: PWSK_DATA_INDICATION,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST` (`WskRelease` on datagram
/// sockets): releases datagram indications retained by returning
/// `STATUS_PENDING` from the receive-from event. Takes no IRP.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_datagram_indication_list>
pub type PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        DatagramIndication: PWSK_DATAGRAM_INDICATION,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_SEND` (`WskSend`): sends on a connected socket. `Flags`:
/// [`WSK_FLAG_NODELAY`], [`WSK_FLAG_OOB`].
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
pub type PFN_WSK_SEND = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_SEND_EX` (WDK 10.0.17134 and later): like `WskSend`, with
/// control information. Wine's header calls it undocumented and reserved for
/// system use.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
pub type PFN_WSK_SEND_EX = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        ControlInfoLength: ULONG,
        ControlInfo: PCMSGHDR,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_RECEIVE` (`WskReceive`): receives on a connected socket.
/// `Flags`: [`WSK_FLAG_WAITALL`], [`WSK_FLAG_DRAIN`].
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
pub type PFN_WSK_RECEIVE = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_RECEIVE_EX` (WDK 10.0.17134 and later): like `WskReceive`, with
/// control information; `ControlFlags` is reserved (null). Wine's header calls
/// it undocumented and reserved for system use.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
pub type PFN_WSK_RECEIVE_EX = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        ControlInfoLength: PULONG,
        ControlInfo: PCMSGHDR,
        ControlFlags: PULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

/// `PFN_WSK_DISCONNECT` (`WskDisconnect`): disconnects a connected socket,
/// gracefully (optionally with final data in `Buffer`) or abortively with
/// [`WSK_FLAG_ABORTIVE`]. `Irp` is required.
///
/// IRQL ≤ `DISPATCH_LEVEL`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>
pub type PFN_WSK_DISCONNECT = Option<
    unsafe extern "system" fn(
        Socket: PWSK_SOCKET,
        Buffer: PWSK_BUF,
        Flags: ULONG,
        Irp: PIRP,
    ) -> NTSTATUS,
>;

// ---------------------------------------------------------------------------
// Client dispatch tables (owned by the client, read by the provider)
// ---------------------------------------------------------------------------

/// `WSK_CLIENT_DISPATCH`: the client-level table passed to [`WskRegister`]
/// through [`WSK_CLIENT_NPI`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_DISPATCH {
    /// `Version`: the WSK version the client uses, from
    /// [`MAKE_WSK_VERSION`].
    pub Version: USHORT,
    /// `Reserved`: 0.
    pub Reserved: USHORT,
    /// `WskClientEvent` (optional).
    pub WskClientEvent: PFN_WSK_CLIENT_EVENT,
}
/// `PWSK_CLIENT_DISPATCH`: pointer to [`WSK_CLIENT_DISPATCH`].
pub type PWSK_CLIENT_DISPATCH = *mut WSK_CLIENT_DISPATCH;

/// `WSK_CLIENT_LISTEN_DISPATCH`: event callbacks of a listening socket.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_listen_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_LISTEN_DISPATCH {
    /// `WskAcceptEvent` ([`WSK_EVENT_ACCEPT`]).
    pub WskAcceptEvent: PFN_WSK_ACCEPT_EVENT,
    /// `WskInspectEvent` (conditional-accept sockets).
    pub WskInspectEvent: PFN_WSK_INSPECT_EVENT,
    /// `WskAbortEvent` (conditional-accept sockets).
    pub WskAbortEvent: PFN_WSK_ABORT_EVENT,
}
/// `PWSK_CLIENT_LISTEN_DISPATCH`: pointer to [`WSK_CLIENT_LISTEN_DISPATCH`].
pub type PWSK_CLIENT_LISTEN_DISPATCH = *mut WSK_CLIENT_LISTEN_DISPATCH;

/// `WSK_CLIENT_DATAGRAM_DISPATCH`: event callback of a datagram socket.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_datagram_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_DATAGRAM_DISPATCH {
    /// `WskReceiveFromEvent` ([`WSK_EVENT_RECEIVE_FROM`]).
    pub WskReceiveFromEvent: PFN_WSK_RECEIVE_FROM_EVENT,
}
/// `PWSK_CLIENT_DATAGRAM_DISPATCH`: pointer to
/// [`WSK_CLIENT_DATAGRAM_DISPATCH`].
pub type PWSK_CLIENT_DATAGRAM_DISPATCH = *mut WSK_CLIENT_DATAGRAM_DISPATCH;

/// `WSK_CLIENT_CONNECTION_DISPATCH`: event callbacks of a connection
/// socket.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_connection_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_CLIENT_CONNECTION_DISPATCH {
    /// `WskReceiveEvent` ([`WSK_EVENT_RECEIVE`]).
    pub WskReceiveEvent: PFN_WSK_RECEIVE_EVENT,
    /// `WskDisconnectEvent` ([`WSK_EVENT_DISCONNECT`]).
    pub WskDisconnectEvent: PFN_WSK_DISCONNECT_EVENT,
    /// `WskSendBacklogEvent` ([`WSK_EVENT_SEND_BACKLOG`]).
    pub WskSendBacklogEvent: PFN_WSK_SEND_BACKLOG_EVENT,
}
/// `PWSK_CLIENT_CONNECTION_DISPATCH`: pointer to
/// [`WSK_CLIENT_CONNECTION_DISPATCH`].
pub type PWSK_CLIENT_CONNECTION_DISPATCH = *mut WSK_CLIENT_CONNECTION_DISPATCH;

/// `WSK_CLIENT_STREAM_DISPATCH` (Windows 10 1703 and later): event callbacks
/// of a stream socket, one table per role.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_stream_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_CLIENT_STREAM_DISPATCH {
    /// `Listen`: callbacks while listening.
    pub Listen: *const WSK_CLIENT_LISTEN_DISPATCH,
    /// `Connect`: callbacks while connected.
    pub Connect: *const WSK_CLIENT_CONNECTION_DISPATCH,
}
/// `PWSK_CLIENT_STREAM_DISPATCH`: pointer to [`WSK_CLIENT_STREAM_DISPATCH`].
pub type PWSK_CLIENT_STREAM_DISPATCH = *mut WSK_CLIENT_STREAM_DISPATCH;

// ---------------------------------------------------------------------------
// Provider dispatch tables (owned by the provider, read by the client)
// ---------------------------------------------------------------------------

/// `WSK_PROVIDER_DISPATCH`: the provider-level table, from
/// `WSK_PROVIDER_NPI::Dispatch`.
///
/// Windows Vista's table ends after `WskControlClient` (32 bytes): see the
/// [module documentation](self#provider-table-versions).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_DISPATCH {
    /// `Version`: the WSK version in use.
    pub Version: USHORT,
    /// `Reserved`.
    pub Reserved: USHORT,
    /// `WskSocket`.
    pub WskSocket: PFN_WSK_SOCKET,
    /// `WskSocketConnect`.
    pub WskSocketConnect: PFN_WSK_SOCKET_CONNECT,
    /// `WskControlClient`.
    pub WskControlClient: PFN_WSK_CONTROL_CLIENT,
    /// `WskGetAddressInfo` — **Windows 7 and later** (`NTDDI_WIN7`).
    pub WskGetAddressInfo: PFN_WSK_GET_ADDRESS_INFO,
    /// `WskFreeAddressInfo` — **Windows 7 and later** (`NTDDI_WIN7`).
    pub WskFreeAddressInfo: PFN_WSK_FREE_ADDRESS_INFO,
    /// `WskGetNameInfo` — **Windows 7 and later** (`NTDDI_WIN7`).
    pub WskGetNameInfo: PFN_WSK_GET_NAME_INFO,
}
/// `PWSK_PROVIDER_DISPATCH`: pointer to [`WSK_PROVIDER_DISPATCH`].
pub type PWSK_PROVIDER_DISPATCH = *mut WSK_PROVIDER_DISPATCH;

/// `WSK_PROVIDER_BASIC_DISPATCH`: routines of every socket kind; the first
/// member of every other provider socket table.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_basic_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_BASIC_DISPATCH {
    /// `WskControlSocket`.
    pub WskControlSocket: PFN_WSK_CONTROL_SOCKET,
    /// `WskCloseSocket`.
    pub WskCloseSocket: PFN_WSK_CLOSE_SOCKET,
}
/// `PWSK_PROVIDER_BASIC_DISPATCH`: pointer to
/// [`WSK_PROVIDER_BASIC_DISPATCH`].
pub type PWSK_PROVIDER_BASIC_DISPATCH = *mut WSK_PROVIDER_BASIC_DISPATCH;

/// `WSK_PROVIDER_LISTEN_DISPATCH`: routines of a listening socket.
///
/// The C header embeds the basic table as an unnamed member in C (named
/// `Basic` in C++); here it is the field `Basic`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_listen_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_LISTEN_DISPATCH {
    /// `Basic`: `WskControlSocket`, `WskCloseSocket`.
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskAccept`.
    pub WskAccept: PFN_WSK_ACCEPT,
    /// `WskInspectComplete`.
    pub WskInspectComplete: PFN_WSK_INSPECT_COMPLETE,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
}
/// `PWSK_PROVIDER_LISTEN_DISPATCH`: pointer to
/// [`WSK_PROVIDER_LISTEN_DISPATCH`].
pub type PWSK_PROVIDER_LISTEN_DISPATCH = *mut WSK_PROVIDER_LISTEN_DISPATCH;

/// `WSK_PROVIDER_DATAGRAM_DISPATCH`: routines of a datagram socket.
///
/// Before Windows 8 the table ends after `WskGetLocalAddress` (56 bytes): see
/// the [module documentation](self#provider-table-versions).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_datagram_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_DATAGRAM_DISPATCH {
    /// `Basic`: `WskControlSocket`, `WskCloseSocket`.
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskSendTo`.
    pub WskSendTo: PFN_WSK_SEND_TO,
    /// `WskReceiveFrom`.
    pub WskReceiveFrom: PFN_WSK_RECEIVE_FROM,
    /// `WskRelease`.
    pub WskRelease: PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
    /// `WskSendMessages` — **Windows 8 and later** (`NTDDI_WIN8`).
    pub WskSendMessages: PFN_WSK_SEND_MESSAGES,
}
/// `PWSK_PROVIDER_DATAGRAM_DISPATCH`: pointer to
/// [`WSK_PROVIDER_DATAGRAM_DISPATCH`].
pub type PWSK_PROVIDER_DATAGRAM_DISPATCH = *mut WSK_PROVIDER_DATAGRAM_DISPATCH;

/// `WSK_PROVIDER_CONNECTION_DISPATCH`: routines of a connection socket.
///
/// The last three fields were appended by later WDKs: a provider predating
/// them has a table that ends after `WskRelease` (80 bytes) or after
/// `WskConnectEx` (88 bytes); see the
/// [module documentation](self#provider-table-versions).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_connection_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_CONNECTION_DISPATCH {
    /// `Basic`: `WskControlSocket`, `WskCloseSocket`.
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskConnect`.
    pub WskConnect: PFN_WSK_CONNECT,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
    /// `WskGetRemoteAddress`.
    pub WskGetRemoteAddress: PFN_WSK_GET_REMOTE_ADDRESS,
    /// `WskSend`.
    pub WskSend: PFN_WSK_SEND,
    /// `WskReceive`.
    pub WskReceive: PFN_WSK_RECEIVE,
    /// `WskDisconnect`.
    pub WskDisconnect: PFN_WSK_DISCONNECT,
    /// `WskRelease`.
    pub WskRelease: PFN_WSK_RELEASE_DATA_INDICATION_LIST,
    /// `WskConnectEx` — **Windows 10 1703 and later** (first declared in WDK
    /// 10.0.15063, `NTDDI_WIN10_RS2`'s kit).
    pub WskConnectEx: PFN_WSK_CONNECT_EX,
    /// `WskSendEx` — **Windows 10 1803 and later** (first in WDK
    /// 10.0.17134).
    pub WskSendEx: PFN_WSK_SEND_EX,
    /// `WskReceiveEx` — **Windows 10 1803 and later** (first in WDK
    /// 10.0.17134).
    pub WskReceiveEx: PFN_WSK_RECEIVE_EX,
}
/// `PWSK_PROVIDER_CONNECTION_DISPATCH`: pointer to
/// [`WSK_PROVIDER_CONNECTION_DISPATCH`].
pub type PWSK_PROVIDER_CONNECTION_DISPATCH = *mut WSK_PROVIDER_CONNECTION_DISPATCH;

/// `WSK_PROVIDER_STREAM_DISPATCH` (Windows 10 1703 and later,
/// `NTDDI_WIN10_RS2`): routines of a stream socket.
///
/// `WskSendEx`/`WskReceiveEx` were appended by WDK 10.0.17134: a provider
/// predating them has a table that ends after `WskConnectEx` (104 bytes); see
/// the [module documentation](self#provider-table-versions).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_stream_dispatch>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WSK_PROVIDER_STREAM_DISPATCH {
    /// `Basic`: `WskControlSocket`, `WskCloseSocket`.
    pub Basic: WSK_PROVIDER_BASIC_DISPATCH,
    /// `WskBind`.
    pub WskBind: PFN_WSK_BIND,
    /// `WskAccept`.
    pub WskAccept: PFN_WSK_ACCEPT,
    /// `WskConnect`.
    pub WskConnect: PFN_WSK_CONNECT,
    /// `WskListen`.
    pub WskListen: PFN_WSK_LISTEN,
    /// `WskSend`.
    pub WskSend: PFN_WSK_SEND,
    /// `WskReceive`.
    pub WskReceive: PFN_WSK_RECEIVE,
    /// `WskDisconnect`.
    pub WskDisconnect: PFN_WSK_DISCONNECT,
    /// `WskRelease`.
    pub WskRelease: PFN_WSK_RELEASE_DATA_INDICATION_LIST,
    /// `WskGetLocalAddress`.
    pub WskGetLocalAddress: PFN_WSK_GET_LOCAL_ADDRESS,
    /// `WskGetRemoteAddress`.
    pub WskGetRemoteAddress: PFN_WSK_GET_REMOTE_ADDRESS,
    /// `WskConnectEx`.
    pub WskConnectEx: PFN_WSK_CONNECT_EX,
    /// `WskSendEx` — **Windows 10 1803 and later** (first in WDK
    /// 10.0.17134).
    pub WskSendEx: PFN_WSK_SEND_EX,
    /// `WskReceiveEx` — **Windows 10 1803 and later** (first in WDK
    /// 10.0.17134).
    pub WskReceiveEx: PFN_WSK_RECEIVE_EX,
}
/// `PWSK_PROVIDER_STREAM_DISPATCH`: pointer to
/// [`WSK_PROVIDER_STREAM_DISPATCH`].
pub type PWSK_PROVIDER_STREAM_DISPATCH = *mut WSK_PROVIDER_STREAM_DISPATCH;

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------

/// `WSK_CLIENT_NPI`: the client's NPI, passed to [`WskRegister`]. Both
/// pointees must stay valid until [`WskDeregister`] returns.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_npi>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_CLIENT_NPI {
    /// `ClientContext`: passed to `WskClientEvent`.
    pub ClientContext: PVOID,
    /// `Dispatch`: the client-level table.
    pub Dispatch: *const WSK_CLIENT_DISPATCH,
}
/// `PWSK_CLIENT_NPI`: pointer to [`WSK_CLIENT_NPI`].
pub type PWSK_CLIENT_NPI = *mut WSK_CLIENT_NPI;

/// `WSK_PROVIDER_NPI`: the provider's NPI, filled by
/// [`WskCaptureProviderNPI`]; usable until [`WskReleaseProviderNPI`].
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_npi>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_PROVIDER_NPI {
    /// `Client`: the client object to pass to the provider-level routines.
    pub Client: PWSK_CLIENT,
    /// `Dispatch`: the provider-level table.
    pub Dispatch: *const WSK_PROVIDER_DISPATCH,
}
/// `PWSK_PROVIDER_NPI`: pointer to [`WSK_PROVIDER_NPI`].
pub type PWSK_PROVIDER_NPI = *mut WSK_PROVIDER_NPI;

/// `WSK_REGISTRATION`: registration block initialized by [`WskRegister`].
/// Opaque to the client; must stay allocated, unmoved, until
/// [`WskDeregister`] returns.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_registration>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSK_REGISTRATION {
    /// `ReservedRegistrationState`.
    pub ReservedRegistrationState: ULONGLONG,
    /// `ReservedRegistrationContext`.
    pub ReservedRegistrationContext: PVOID,
    /// `ReservedRegistrationLock`.
    pub ReservedRegistrationLock: KSPIN_LOCK,
}
impl WSK_REGISTRATION {
    /// An all-zero block, to hand to [`WskRegister`].
    pub const ZEROED: Self = Self {
        ReservedRegistrationState: 0,
        ReservedRegistrationContext: core::ptr::null_mut(),
        ReservedRegistrationLock: 0,
    };
}

/// `PWSK_REGISTRATION`: pointer to [`WSK_REGISTRATION`].
pub type PWSK_REGISTRATION = *mut WSK_REGISTRATION;

// The C prototypes carry no calling-convention keyword; on the 64-bit targets
// this crate supports "system" and "C" are the same convention.
#[cfg_attr(
    all(windows, not(feature = "sim")),
    link(name = "netio.sys", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "system" {
    /// `WskRegister`: registers a WSK client. Each successful call needs
    /// exactly one [`WskDeregister`] with the same block; several
    /// registrations may coexist, each with its own block.
    ///
    /// IRQL = `PASSIVE_LEVEL`. `WskClientNpi` (and its dispatch table) and
    /// `WskRegistration` must stay valid until `WskDeregister` returns.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskregister>
    pub fn WskRegister(
        WskClientNpi: PWSK_CLIENT_NPI,
        WskRegistration: PWSK_REGISTRATION,
    ) -> NTSTATUS;

    /// `WskCaptureProviderNPI`: waits up to `WaitTimeout` milliseconds
    /// ([`WSK_NO_WAIT`], [`WSK_INFINITE_WAIT`]) for the provider and captures
    /// its NPI. Each success needs exactly one [`WskReleaseProviderNPI`].
    ///
    /// IRQL = `PASSIVE_LEVEL` if `WaitTimeout != WSK_NO_WAIT`, otherwise
    /// ≤ `DISPATCH_LEVEL`. Returns `STATUS_SUCCESS`, `STATUS_DEVICE_NOT_READY`
    /// (not available yet, or `WskDeregister` was called) or
    /// `STATUS_NOINTERFACE` (the client's version is not supported).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskcaptureprovidernpi>
    pub fn WskCaptureProviderNPI(
        WskRegistration: PWSK_REGISTRATION,
        WaitTimeout: ULONG,
        WskProviderNpi: PWSK_PROVIDER_NPI,
    ) -> NTSTATUS;

    /// `WskReleaseProviderNPI`: releases a captured provider NPI.
    ///
    /// IRQL ≤ `DISPATCH_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskreleaseprovidernpi>
    pub fn WskReleaseProviderNPI(WskRegistration: PWSK_REGISTRATION);

    /// `WskQueryProviderCharacteristics`: the provider's supported version
    /// range; call after `WskCaptureProviderNPI` returned `STATUS_SUCCESS` or
    /// `STATUS_NOINTERFACE`.
    ///
    /// IRQL ≤ `DISPATCH_LEVEL`. Returns `STATUS_SUCCESS` or
    /// `STATUS_DEVICE_NOT_READY`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskqueryprovidercharacteristics>
    pub fn WskQueryProviderCharacteristics(
        WskRegistration: PWSK_REGISTRATION,
        WskProviderCharacteristics: PWSK_PROVIDER_CHARACTERISTICS,
    ) -> NTSTATUS;

    /// `WskDeregister`: deregisters a WSK client. Waits until every captured
    /// provider NPI is released, every provider call has returned and every
    /// socket is closed.
    ///
    /// IRQL = `PASSIVE_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskderegister>
    pub fn WskDeregister(WskRegistration: PWSK_REGISTRATION);
}

// ---------------------------------------------------------------------------
// Layout checks: 64-bit Windows (LLP64), numbers derived from the C header.
// ---------------------------------------------------------------------------

#[cfg(target_pointer_width = "64")]
mod layout {
    #[allow(clippy::wildcard_imports)]
    use super::*;
    use core::mem::{align_of, offset_of, size_of};
    use static_assertions::const_assert_eq;

    // Pointer / function pointer size. Used only inside const assertions,
    // which the dead-code lint of Rust 1.85 (the MSRV) does not see.
    #[allow(dead_code)]
    const P: usize = 8;

    const_assert_eq!(size_of::<WSK_SOCKET>(), 8);
    const_assert_eq!(size_of::<WSK_PROVIDER_CHARACTERISTICS>(), 4);
    const_assert_eq!(offset_of!(WSK_PROVIDER_CHARACTERISTICS, LowestVersion), 2);

    const_assert_eq!(size_of::<WSK_TRANSPORT>(), 28);
    const_assert_eq!(align_of::<WSK_TRANSPORT>(), 4);
    const_assert_eq!(offset_of!(WSK_TRANSPORT, SocketType), 2);
    const_assert_eq!(offset_of!(WSK_TRANSPORT, Protocol), 4);
    const_assert_eq!(offset_of!(WSK_TRANSPORT, AddressFamily), 8);
    const_assert_eq!(offset_of!(WSK_TRANSPORT, ProviderId), 12);

    const_assert_eq!(size_of::<WSK_BUF>(), 24);
    const_assert_eq!(offset_of!(WSK_BUF, Offset), 8);
    const_assert_eq!(offset_of!(WSK_BUF, Length), 16);

    const_assert_eq!(size_of::<WSK_DATA_INDICATION>(), 32);
    const_assert_eq!(offset_of!(WSK_DATA_INDICATION, Buffer), 8);
    const_assert_eq!(size_of::<WSK_BUF_LIST>(), 32);
    const_assert_eq!(offset_of!(WSK_BUF_LIST, Buffer), 8);

    const_assert_eq!(size_of::<WSK_DATAGRAM_INDICATION>(), 56);
    const_assert_eq!(offset_of!(WSK_DATAGRAM_INDICATION, Buffer), 8);
    const_assert_eq!(offset_of!(WSK_DATAGRAM_INDICATION, ControlInfo), 32);
    const_assert_eq!(offset_of!(WSK_DATAGRAM_INDICATION, ControlInfoLength), 40);
    const_assert_eq!(offset_of!(WSK_DATAGRAM_INDICATION, RemoteAddress), 48);

    const_assert_eq!(size_of::<WSK_INSPECT_ID>(), 16);
    const_assert_eq!(offset_of!(WSK_INSPECT_ID, SerialNumber), 8);
    const_assert_eq!(size_of::<WSK_INSPECT_ACTION>(), 4);
    const_assert_eq!(size_of::<WSK_CONTROL_SOCKET_TYPE>(), 4);

    const_assert_eq!(size_of::<WSK_TDI_MAP>(), 16);
    const_assert_eq!(offset_of!(WSK_TDI_MAP, AddressFamily), 2);
    const_assert_eq!(offset_of!(WSK_TDI_MAP, Protocol), 4);
    const_assert_eq!(offset_of!(WSK_TDI_MAP, TdiDeviceName), 8);
    const_assert_eq!(size_of::<WSK_TDI_MAP_INFO>(), 16);
    const_assert_eq!(offset_of!(WSK_TDI_MAP_INFO, Map), 8);

    const_assert_eq!(size_of::<WSK_EVENT_CALLBACK_CONTROL>(), 16);
    const_assert_eq!(offset_of!(WSK_EVENT_CALLBACK_CONTROL, EventMask), 8);
    const_assert_eq!(size_of::<WSK_EXTENSION_CONTROL_IN>(), 24);
    const_assert_eq!(offset_of!(WSK_EXTENSION_CONTROL_IN, ClientContext), 8);
    const_assert_eq!(offset_of!(WSK_EXTENSION_CONTROL_IN, ClientDispatch), 16);
    const_assert_eq!(size_of::<WSK_EXTENSION_CONTROL_OUT>(), 16);
    const_assert_eq!(offset_of!(WSK_EXTENSION_CONTROL_OUT, ProviderDispatch), 8);

    const_assert_eq!(size_of::<PFN_WSK_SOCKET>(), P);
    const_assert_eq!(size_of::<PFN_WSK_CLIENT_EVENT>(), P);

    const_assert_eq!(size_of::<WSK_CLIENT_DISPATCH>(), 16);
    const_assert_eq!(offset_of!(WSK_CLIENT_DISPATCH, Reserved), 2);
    const_assert_eq!(offset_of!(WSK_CLIENT_DISPATCH, WskClientEvent), 8);
    const_assert_eq!(size_of::<WSK_CLIENT_LISTEN_DISPATCH>(), 3 * P);
    const_assert_eq!(offset_of!(WSK_CLIENT_LISTEN_DISPATCH, WskInspectEvent), 8);
    const_assert_eq!(offset_of!(WSK_CLIENT_LISTEN_DISPATCH, WskAbortEvent), 16);
    const_assert_eq!(size_of::<WSK_CLIENT_DATAGRAM_DISPATCH>(), P);
    const_assert_eq!(size_of::<WSK_CLIENT_CONNECTION_DISPATCH>(), 3 * P);
    const_assert_eq!(
        offset_of!(WSK_CLIENT_CONNECTION_DISPATCH, WskDisconnectEvent),
        8
    );
    const_assert_eq!(
        offset_of!(WSK_CLIENT_CONNECTION_DISPATCH, WskSendBacklogEvent),
        16
    );
    const_assert_eq!(size_of::<WSK_CLIENT_STREAM_DISPATCH>(), 2 * P);
    const_assert_eq!(offset_of!(WSK_CLIENT_STREAM_DISPATCH, Connect), 8);

    const_assert_eq!(size_of::<WSK_PROVIDER_DISPATCH>(), 56);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DISPATCH, WskSocket), 8);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DISPATCH, WskSocketConnect), 16);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DISPATCH, WskControlClient), 24);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DISPATCH, WskGetAddressInfo), 32);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DISPATCH, WskFreeAddressInfo), 40);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DISPATCH, WskGetNameInfo), 48);

    const_assert_eq!(size_of::<WSK_PROVIDER_BASIC_DISPATCH>(), 16);
    const_assert_eq!(offset_of!(WSK_PROVIDER_BASIC_DISPATCH, WskCloseSocket), 8);

    const_assert_eq!(size_of::<WSK_PROVIDER_LISTEN_DISPATCH>(), 48);
    const_assert_eq!(offset_of!(WSK_PROVIDER_LISTEN_DISPATCH, WskBind), 16);
    const_assert_eq!(offset_of!(WSK_PROVIDER_LISTEN_DISPATCH, WskAccept), 24);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_LISTEN_DISPATCH, WskInspectComplete),
        32
    );
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_LISTEN_DISPATCH, WskGetLocalAddress),
        40
    );

    const_assert_eq!(size_of::<WSK_PROVIDER_DATAGRAM_DISPATCH>(), 64);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DATAGRAM_DISPATCH, WskBind), 16);
    const_assert_eq!(offset_of!(WSK_PROVIDER_DATAGRAM_DISPATCH, WskSendTo), 24);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_DATAGRAM_DISPATCH, WskReceiveFrom),
        32
    );
    const_assert_eq!(offset_of!(WSK_PROVIDER_DATAGRAM_DISPATCH, WskRelease), 40);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_DATAGRAM_DISPATCH, WskGetLocalAddress),
        48
    );
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_DATAGRAM_DISPATCH, WskSendMessages),
        56
    );

    const_assert_eq!(size_of::<WSK_PROVIDER_CONNECTION_DISPATCH>(), 104);
    const_assert_eq!(offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskBind), 16);
    const_assert_eq!(offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskConnect), 24);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskGetLocalAddress),
        32
    );
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskGetRemoteAddress),
        40
    );
    const_assert_eq!(offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskSend), 48);
    const_assert_eq!(offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskReceive), 56);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskDisconnect),
        64
    );
    const_assert_eq!(offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskRelease), 72);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskConnectEx),
        80
    );
    const_assert_eq!(offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskSendEx), 88);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_CONNECTION_DISPATCH, WskReceiveEx),
        96
    );

    const_assert_eq!(size_of::<WSK_PROVIDER_STREAM_DISPATCH>(), 120);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskBind), 16);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskAccept), 24);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskConnect), 32);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskListen), 40);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskSend), 48);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskReceive), 56);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskDisconnect), 64);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskRelease), 72);
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskGetLocalAddress),
        80
    );
    const_assert_eq!(
        offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskGetRemoteAddress),
        88
    );
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskConnectEx), 96);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskSendEx), 104);
    const_assert_eq!(offset_of!(WSK_PROVIDER_STREAM_DISPATCH, WskReceiveEx), 112);

    const_assert_eq!(size_of::<WSK_CLIENT_NPI>(), 16);
    const_assert_eq!(offset_of!(WSK_CLIENT_NPI, Dispatch), 8);
    const_assert_eq!(size_of::<WSK_PROVIDER_NPI>(), 16);
    const_assert_eq!(offset_of!(WSK_PROVIDER_NPI, Dispatch), 8);
    const_assert_eq!(size_of::<WSK_REGISTRATION>(), 24);
    const_assert_eq!(offset_of!(WSK_REGISTRATION, ReservedRegistrationContext), 8);
    const_assert_eq!(offset_of!(WSK_REGISTRATION, ReservedRegistrationLock), 16);

    // Values computed by hand from the ws2def.h macros:
    // IOC_IN 0x80000000, IOC_OUT 0x40000000, IOC_VOID 0x20000000,
    // IOC_WSK = IOC_WS2 (0x08000000) | 0x07000000 = 0x0F000000.
    const_assert_eq!(SO_WSK_SECURITY, 0x4001);
    const_assert_eq!(SO_WSK_EVENT_CALLBACK, 0x4002);
    const_assert_eq!(SIO_WSK_SET_REMOTE_ADDRESS, 0x8F00_0001);
    const_assert_eq!(SIO_WSK_REGISTER_EXTENSION, 0xCF00_0002);
    const_assert_eq!(SIO_WSK_QUERY_IDEAL_SEND_BACKLOG, 0x4F00_0003);
    const_assert_eq!(SIO_WSK_QUERY_RECEIVE_BACKLOG, 0x4F00_0004);
    const_assert_eq!(SIO_WSK_QUERY_INSPECT_ID, 0x4F00_0005);
    const_assert_eq!(SIO_WSK_SET_SENDTO_ADDRESS, 0x8F00_0006);
    const_assert_eq!(SIO_WSK_SET_TCP_SILENT_MODE, 0x2F00_0007);
    const_assert_eq!(SIO_WSK_SET_RECEIVE_EX_CALLBACK, 0x8F00_0008);
    const_assert_eq!(MAKE_WSK_VERSION(1, 0), 0x0100);
    const_assert_eq!(WSK_MAJOR_VERSION(0x0102), 1);
    const_assert_eq!(WSK_MINOR_VERSION(0x0102), 2);
}
