//! Socket addresses, address-information records, control messages and the
//! socket-level constants that WSK shares with user-mode Winsock.
//!
//! C headers (Windows SDK/WDK `Include/<version>/shared`): `ws2def.h`,
//! `ws2ipdef.h`, `inaddr.h`, `in6addr.h` and `mswsockdef.h`, plus the few
//! `winsock2.h` (`um`) definitions that the WSK documentation uses
//! (`MSG_PEEK`, `MSG_WAITALL`, … and `LINGER`). Values were taken from the
//! SDK 10.0.22000 copies and checked against WDK 10.0.16299.
//! `wsk.h` includes `ws2def.h` and `mswsockdef.h`; a kernel driver never
//! includes them directly.
//!
//! Typing: the C headers define most constants as untyped macros. Here each
//! gets the type of the WSK parameter it is passed in: socket-option names and
//! levels are [`ULONG`] (the `ControlCode`/`Level` of `WskControlSocket`),
//! address families are [`ADDRESS_FAMILY`], socket types [`USHORT`] (the
//! `SocketType` of `WskSocket`), protocols [`IPPROTO`] (a C `enum`, so `INT`),
//! message flags [`ULONG`], `AI_*` flags `INT` (the `ai_flags` field).
//!
//! Reference: <https://learn.microsoft.com/windows/win32/api/ws2def/>,
//! <https://learn.microsoft.com/windows/win32/api/ws2ipdef/>,
//! <https://learn.microsoft.com/windows-hardware/drivers/network/wsk-socket-options>

#![allow(clippy::used_underscore_items)] // C names: `_WSAIOW`, `_SS_PAD1SIZE`, …

use core::fmt;

use crate::ntdef::{
    CHAR, INT, LONGLONG, PCHAR, PGUID, PUCHAR, PVOID, PWSTR, SIZE_T, UCHAR, UINT, ULONG, USHORT,
};

// ---------------------------------------------------------------------------
// Address families (ws2def.h)
// ---------------------------------------------------------------------------

/// `ADDRESS_FAMILY`: the `sa_family` of every socket address.
pub type ADDRESS_FAMILY = USHORT;

/// `AF_UNSPEC`: unspecified address family.
pub const AF_UNSPEC: ADDRESS_FAMILY = 0;
/// `AF_UNIX`: local to host (pipes, portals).
pub const AF_UNIX: ADDRESS_FAMILY = 1;
/// `AF_INET`: IPv4 (TCP, UDP, …).
pub const AF_INET: ADDRESS_FAMILY = 2;
/// `AF_IMPLINK`: ARPANET IMP addresses.
pub const AF_IMPLINK: ADDRESS_FAMILY = 3;
/// `AF_PUP`: PUP protocols.
pub const AF_PUP: ADDRESS_FAMILY = 4;
/// `AF_CHAOS`: MIT CHAOS protocols.
pub const AF_CHAOS: ADDRESS_FAMILY = 5;
/// `AF_NS`: XEROX NS protocols.
pub const AF_NS: ADDRESS_FAMILY = 6;
/// `AF_IPX`: IPX/SPX (same value as [`AF_NS`]).
pub const AF_IPX: ADDRESS_FAMILY = AF_NS;
/// `AF_ISO`: ISO protocols.
pub const AF_ISO: ADDRESS_FAMILY = 7;
/// `AF_OSI`: OSI (same value as [`AF_ISO`]).
pub const AF_OSI: ADDRESS_FAMILY = AF_ISO;
/// `AF_ECMA`: European Computer Manufacturers.
pub const AF_ECMA: ADDRESS_FAMILY = 8;
/// `AF_DATAKIT`: Datakit protocols.
pub const AF_DATAKIT: ADDRESS_FAMILY = 9;
/// `AF_CCITT`: CCITT protocols (X.25, …).
pub const AF_CCITT: ADDRESS_FAMILY = 10;
/// `AF_SNA`: IBM SNA.
pub const AF_SNA: ADDRESS_FAMILY = 11;
/// `AF_DECnet`: `DECnet`.
pub const AF_DECnet: ADDRESS_FAMILY = 12;
/// `AF_DLI`: direct data-link interface.
pub const AF_DLI: ADDRESS_FAMILY = 13;
/// `AF_LAT`: LAT.
pub const AF_LAT: ADDRESS_FAMILY = 14;
/// `AF_HYLINK`: NSC Hyperchannel.
pub const AF_HYLINK: ADDRESS_FAMILY = 15;
/// `AF_APPLETALK`: `AppleTalk`.
pub const AF_APPLETALK: ADDRESS_FAMILY = 16;
/// `AF_NETBIOS`: NetBIOS-style addresses.
pub const AF_NETBIOS: ADDRESS_FAMILY = 17;
/// `AF_VOICEVIEW`: `VoiceView`.
pub const AF_VOICEVIEW: ADDRESS_FAMILY = 18;
/// `AF_FIREFOX`: Firefox protocols.
pub const AF_FIREFOX: ADDRESS_FAMILY = 19;
/// `AF_UNKNOWN1`: reserved.
pub const AF_UNKNOWN1: ADDRESS_FAMILY = 20;
/// `AF_BAN`: Banyan.
pub const AF_BAN: ADDRESS_FAMILY = 21;
/// `AF_ATM`: native ATM services.
pub const AF_ATM: ADDRESS_FAMILY = 22;
/// `AF_INET6`: IPv6.
pub const AF_INET6: ADDRESS_FAMILY = 23;
/// `AF_CLUSTER`: Microsoft Wolfpack.
pub const AF_CLUSTER: ADDRESS_FAMILY = 24;
/// `AF_12844`: IEEE 1284.4 WG.
pub const AF_12844: ADDRESS_FAMILY = 25;
/// `AF_IRDA`: `IrDA`.
pub const AF_IRDA: ADDRESS_FAMILY = 26;
/// `AF_NETDES`: Network Designers OSI & gateway.
pub const AF_NETDES: ADDRESS_FAMILY = 28;
/// `AF_TCNPROCESS`.
pub const AF_TCNPROCESS: ADDRESS_FAMILY = 29;
/// `AF_TCNMESSAGE`.
pub const AF_TCNMESSAGE: ADDRESS_FAMILY = 30;
/// `AF_ICLFXBM`.
pub const AF_ICLFXBM: ADDRESS_FAMILY = 31;
/// `AF_BTH`: Bluetooth RFCOMM/L2CAP.
pub const AF_BTH: ADDRESS_FAMILY = 32;
/// `AF_LINK`: data-link addresses ([`SOCKADDR_DL`]).
pub const AF_LINK: ADDRESS_FAMILY = 33;
/// `AF_HYPERV`: Hyper-V sockets.
pub const AF_HYPERV: ADDRESS_FAMILY = 34;
/// `AF_MAX` (for `_WIN32_WINNT >= 0x0604`).
pub const AF_MAX: ADDRESS_FAMILY = 35;

// ---------------------------------------------------------------------------
// Socket types
// ---------------------------------------------------------------------------

/// `SOCK_STREAM`: reliable byte stream (TCP).
pub const SOCK_STREAM: USHORT = 1;
/// `SOCK_DGRAM`: datagrams (UDP).
pub const SOCK_DGRAM: USHORT = 2;
/// `SOCK_RAW`: raw protocol interface.
pub const SOCK_RAW: USHORT = 3;
/// `SOCK_RDM`: reliably delivered messages.
pub const SOCK_RDM: USHORT = 4;
/// `SOCK_SEQPACKET`: sequenced packet stream.
pub const SOCK_SEQPACKET: USHORT = 5;

// ---------------------------------------------------------------------------
// Option levels and socket-level options
// ---------------------------------------------------------------------------

/// `SOL_SOCKET`: the socket level for `WskControlSocket` options.
pub const SOL_SOCKET: ULONG = 0xffff;
/// `SOL_IP`: `SOL_SOCKET - 4`.
pub const SOL_IP: ULONG = SOL_SOCKET - 4;
/// `SOL_IPV6`: `SOL_SOCKET - 5`.
pub const SOL_IPV6: ULONG = SOL_SOCKET - 5;

/// `SO_DEBUG`: turn on debugging info recording.
pub const SO_DEBUG: ULONG = 0x0001;
/// `SO_ACCEPTCONN`: the socket is listening.
pub const SO_ACCEPTCONN: ULONG = 0x0002;
/// `SO_REUSEADDR`: allow local address reuse.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-reuseaddr>
pub const SO_REUSEADDR: ULONG = 0x0004;
/// `SO_KEEPALIVE`: keep connections alive.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-keepalive>
pub const SO_KEEPALIVE: ULONG = 0x0008;
/// `SO_DONTROUTE`: use interface addresses only.
pub const SO_DONTROUTE: ULONG = 0x0010;
/// `SO_BROADCAST`: permit sending broadcast messages.
pub const SO_BROADCAST: ULONG = 0x0020;
/// `SO_USELOOPBACK`: bypass hardware when possible.
pub const SO_USELOOPBACK: ULONG = 0x0040;
/// `SO_LINGER`: linger on close if data is present ([`LINGER`]).
pub const SO_LINGER: ULONG = 0x0080;
/// `SO_OOBINLINE`: leave received out-of-band data in line.
pub const SO_OOBINLINE: ULONG = 0x0100;
/// `SO_DONTLINGER`: `(int)(~SO_LINGER)`.
pub const SO_DONTLINGER: ULONG = !SO_LINGER;
/// `SO_EXCLUSIVEADDRUSE`: `(int)(~SO_REUSEADDR)`, disallow local address reuse.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-exclusiveaddruse>
pub const SO_EXCLUSIVEADDRUSE: ULONG = !SO_REUSEADDR;
/// `SO_SNDBUF`: send buffer size.
pub const SO_SNDBUF: ULONG = 0x1001;
/// `SO_RCVBUF`: receive buffer size.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-rcvbuf>
pub const SO_RCVBUF: ULONG = 0x1002;
/// `SO_SNDLOWAT`: send low-water mark.
pub const SO_SNDLOWAT: ULONG = 0x1003;
/// `SO_RCVLOWAT`: receive low-water mark.
pub const SO_RCVLOWAT: ULONG = 0x1004;
/// `SO_SNDTIMEO`: send time-out.
pub const SO_SNDTIMEO: ULONG = 0x1005;
/// `SO_RCVTIMEO`: receive time-out.
pub const SO_RCVTIMEO: ULONG = 0x1006;
/// `SO_ERROR`: get error status and clear it.
pub const SO_ERROR: ULONG = 0x1007;
/// `SO_TYPE`: get the socket type.
pub const SO_TYPE: ULONG = 0x1008;
/// `SO_BSP_STATE`: get the socket 5-tuple state.
pub const SO_BSP_STATE: ULONG = 0x1009;
/// `SO_GROUP_ID`: ID of a socket group.
pub const SO_GROUP_ID: ULONG = 0x2001;
/// `SO_GROUP_PRIORITY`: relative priority within a group.
pub const SO_GROUP_PRIORITY: ULONG = 0x2002;
/// `SO_MAX_MSG_SIZE`: maximum message size.
pub const SO_MAX_MSG_SIZE: ULONG = 0x2003;
/// `SO_CONDITIONAL_ACCEPT`: enable conditional accept on a listening socket
/// (set before binding).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-conditional-accept>
pub const SO_CONDITIONAL_ACCEPT: ULONG = 0x3002;
/// `SO_PAUSE_ACCEPT`: pause accepting new connections.
pub const SO_PAUSE_ACCEPT: ULONG = 0x3003;
/// `SO_COMPARTMENT_ID`: get/set the compartment of a socket.
pub const SO_COMPARTMENT_ID: ULONG = 0x3004;
/// `SO_RANDOMIZE_PORT`: randomize assignment of wildcard ports.
pub const SO_RANDOMIZE_PORT: ULONG = 0x3005;
/// `SO_PORT_SCALABILITY`: enable port scalability.
pub const SO_PORT_SCALABILITY: ULONG = 0x3006;
/// `SO_REUSE_UNICASTPORT`: defer ephemeral port allocation for outbound
/// connections.
pub const SO_REUSE_UNICASTPORT: ULONG = 0x3007;
/// `SO_REUSE_MULTICASTPORT`: enable port reuse, disable unicast reception.
pub const SO_REUSE_MULTICASTPORT: ULONG = 0x3008;
/// `SO_ORIGINAL_DST`: query the original destination of a redirected
/// connection.
pub const SO_ORIGINAL_DST: ULONG = 0x300F;
/// `IP6T_SO_ORIGINAL_DST`: same as [`SO_ORIGINAL_DST`].
pub const IP6T_SO_ORIGINAL_DST: ULONG = SO_ORIGINAL_DST;

/// `WSK_SO_BASE`: base of the WSK-specific socket options (`SO_WSK_*` in
/// [`crate::wsk`]).
pub const WSK_SO_BASE: ULONG = 0x4000;

/// `TCP_NODELAY` (level [`IPPROTO_TCP`]): disable the Nagle algorithm.
pub const TCP_NODELAY: ULONG = 0x0001;

// ---------------------------------------------------------------------------
// Socket addresses
// ---------------------------------------------------------------------------

/// `SOCKADDR` (`struct sockaddr`): the generic socket address header.
///
/// Every WSK routine takes addresses as [`PSOCKADDR`]; the real object is a
/// [`SOCKADDR_IN`], [`SOCKADDR_IN6`] or [`SOCKADDR_STORAGE`] chosen by
/// `sa_family`.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-sockaddr>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SOCKADDR {
    /// `sa_family`: address family (`AF_*`).
    pub sa_family: ADDRESS_FAMILY,
    /// `sa_data`: up to 14 bytes of address.
    pub sa_data: [CHAR; 14],
}
/// `PSOCKADDR`: pointer to [`SOCKADDR`].
pub type PSOCKADDR = *mut SOCKADDR;
/// `LPSOCKADDR`: pointer to [`SOCKADDR`].
pub type LPSOCKADDR = *mut SOCKADDR;

/// `SOCKET_ADDRESS`: a socket address and its length.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-socket_address>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SOCKET_ADDRESS {
    /// `lpSockaddr`: the address.
    pub lpSockaddr: LPSOCKADDR,
    /// `iSockaddrLength`: its length in bytes.
    pub iSockaddrLength: INT,
}
/// `PSOCKET_ADDRESS`: pointer to [`SOCKET_ADDRESS`].
pub type PSOCKET_ADDRESS = *mut SOCKET_ADDRESS;

/// `SOCKET_ADDRESS_LIST`: address list returned by `SIO_ADDRESS_LIST_QUERY`.
///
/// `Address` is a C flexible array (declared `[1]`): `iAddressCount` entries
/// follow in memory.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-socket_address_list>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SOCKET_ADDRESS_LIST {
    /// `iAddressCount`: number of entries in `Address`.
    pub iAddressCount: INT,
    /// `Address`: the first entry of the array.
    pub Address: [SOCKET_ADDRESS; 1],
}
/// `PSOCKET_ADDRESS_LIST`: pointer to [`SOCKET_ADDRESS_LIST`].
pub type PSOCKET_ADDRESS_LIST = *mut SOCKET_ADDRESS_LIST;

/// `CSADDR_INFO`: local/remote address pair with socket type and protocol.
///
/// <https://learn.microsoft.com/windows/win32/api/nspapi/ns-nspapi-csaddr_info>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CSADDR_INFO {
    /// `LocalAddr`.
    pub LocalAddr: SOCKET_ADDRESS,
    /// `RemoteAddr`.
    pub RemoteAddr: SOCKET_ADDRESS,
    /// `iSocketType`.
    pub iSocketType: INT,
    /// `iProtocol`.
    pub iProtocol: INT,
}
/// `PCSADDR_INFO`: pointer to [`CSADDR_INFO`].
pub type PCSADDR_INFO = *mut CSADDR_INFO;

/// `_SS_MAXSIZE`: size of [`SOCKADDR_STORAGE`].
pub const _SS_MAXSIZE: usize = 128;
/// `_SS_ALIGNSIZE`: `sizeof(__int64)`, the alignment of [`SOCKADDR_STORAGE`].
pub const _SS_ALIGNSIZE: usize = 8;
/// `_SS_PAD1SIZE`: `_SS_ALIGNSIZE - sizeof(USHORT)`.
pub const _SS_PAD1SIZE: usize = _SS_ALIGNSIZE - 2;
/// `_SS_PAD2SIZE`: `_SS_MAXSIZE - (sizeof(USHORT) + _SS_PAD1SIZE + _SS_ALIGNSIZE)`.
pub const _SS_PAD2SIZE: usize = _SS_MAXSIZE - (2 + _SS_PAD1SIZE + _SS_ALIGNSIZE);

/// `SOCKADDR_STORAGE` (`SOCKADDR_STORAGE_LH`): a buffer large and aligned
/// enough for any socket address (128 bytes, 8-aligned).
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-sockaddr_storage_lh>
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::pub_underscore_fields)]
pub struct SOCKADDR_STORAGE {
    /// `ss_family`: address family.
    pub ss_family: ADDRESS_FAMILY,
    /// `__ss_pad1`: padding up to the alignment field.
    pub __ss_pad1: [CHAR; _SS_PAD1SIZE],
    /// `__ss_align`: forces 8-byte alignment.
    pub __ss_align: LONGLONG,
    /// `__ss_pad2`: padding up to 128 bytes.
    pub __ss_pad2: [CHAR; _SS_PAD2SIZE],
}
/// `SOCKADDR_STORAGE_LH`: the Vista-and-later name of [`SOCKADDR_STORAGE`].
pub type SOCKADDR_STORAGE_LH = SOCKADDR_STORAGE;
/// `PSOCKADDR_STORAGE`: pointer to [`SOCKADDR_STORAGE`].
pub type PSOCKADDR_STORAGE = *mut SOCKADDR_STORAGE;

impl SOCKADDR_STORAGE {
    /// An all-zero storage (family [`AF_UNSPEC`]).
    pub const ZEROED: Self = Self {
        ss_family: AF_UNSPEC,
        __ss_pad1: [0; _SS_PAD1SIZE],
        __ss_align: 0,
        __ss_pad2: [0; _SS_PAD2SIZE],
    };
}

impl Default for SOCKADDR_STORAGE {
    fn default() -> Self {
        Self::ZEROED
    }
}

/// Fields of the `S_un_b` view of [`IN_ADDR`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IN_ADDR_S_UN_B {
    /// `s_b1`: first octet (network order).
    pub s_b1: UCHAR,
    /// `s_b2`.
    pub s_b2: UCHAR,
    /// `s_b3`.
    pub s_b3: UCHAR,
    /// `s_b4`.
    pub s_b4: UCHAR,
}

/// Fields of the `S_un_w` view of [`IN_ADDR`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IN_ADDR_S_UN_W {
    /// `s_w1`.
    pub s_w1: USHORT,
    /// `s_w2`.
    pub s_w2: USHORT,
}

/// The `S_un` union of [`IN_ADDR`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IN_ADDR_S_UN {
    /// `S_un_b`: the four octets.
    pub S_un_b: IN_ADDR_S_UN_B,
    /// `S_un_w`: two 16-bit words.
    pub S_un_w: IN_ADDR_S_UN_W,
    /// `S_addr` (`s_addr`): the address as one `ULONG`, network byte order.
    pub S_addr: ULONG,
}

/// `IN_ADDR` (`struct in_addr`, `inaddr.h`): an IPv4 address in network
/// byte order.
///
/// <https://learn.microsoft.com/windows/win32/api/inaddr/ns-inaddr-in_addr>
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IN_ADDR {
    /// `S_un`.
    pub S_un: IN_ADDR_S_UN,
}
/// `PIN_ADDR`: pointer to [`IN_ADDR`].
pub type PIN_ADDR = *mut IN_ADDR;

impl IN_ADDR {
    /// The address `a.b.c.d` from its four octets, first octet first.
    #[must_use]
    pub const fn from_octets(octets: [UCHAR; 4]) -> Self {
        Self {
            S_un: IN_ADDR_S_UN {
                S_un_b: IN_ADDR_S_UN_B {
                    s_b1: octets[0],
                    s_b2: octets[1],
                    s_b3: octets[2],
                    s_b4: octets[3],
                },
            },
        }
    }

    /// The four octets, first octet first.
    #[must_use]
    pub const fn octets(&self) -> [UCHAR; 4] {
        // SAFETY: every view of the union is plain integer data covering all
        // four bytes, so any bit pattern is a valid `S_un_b`.
        let b = unsafe { self.S_un.S_un_b };
        [b.s_b1, b.s_b2, b.s_b3, b.s_b4]
    }
}

impl Default for IN_ADDR {
    fn default() -> Self {
        Self::from_octets([0; 4])
    }
}

impl PartialEq for IN_ADDR {
    fn eq(&self, other: &Self) -> bool {
        self.octets() == other.octets()
    }
}
impl Eq for IN_ADDR {}

impl fmt::Debug for IN_ADDR {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [o1, o2, o3, o4] = self.octets();
        write!(f, "IN_ADDR({o1}.{o2}.{o3}.{o4})")
    }
}

/// The `u` union of [`IN6_ADDR`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union IN6_ADDR_U {
    /// `Byte` (`s6_addr`, `s6_bytes`): the 16 octets.
    pub Byte: [UCHAR; 16],
    /// `Word` (`s6_words`): eight 16-bit words, each in network byte order.
    pub Word: [USHORT; 8],
}

/// `IN6_ADDR` (`struct in6_addr`, `in6addr.h`): an IPv6 address in network
/// byte order.
///
/// <https://learn.microsoft.com/windows/win32/api/in6addr/ns-in6addr-in6_addr>
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IN6_ADDR {
    /// `u`.
    pub u: IN6_ADDR_U,
}
/// `PIN6_ADDR`: pointer to [`IN6_ADDR`].
pub type PIN6_ADDR = *mut IN6_ADDR;

impl IN6_ADDR {
    /// The address from its 16 octets.
    #[must_use]
    pub const fn from_bytes(bytes: [UCHAR; 16]) -> Self {
        Self {
            u: IN6_ADDR_U { Byte: bytes },
        }
    }

    /// The 16 octets.
    #[must_use]
    pub const fn bytes(&self) -> [UCHAR; 16] {
        // SAFETY: both views of the union are plain integer arrays covering
        // all 16 bytes, so any bit pattern is a valid `Byte`.
        unsafe { self.u.Byte }
    }
}

impl Default for IN6_ADDR {
    fn default() -> Self {
        Self::from_bytes([0; 16])
    }
}

impl PartialEq for IN6_ADDR {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}
impl Eq for IN6_ADDR {}

impl fmt::Debug for IN6_ADDR {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IN6_ADDR").field(&self.bytes()).finish()
    }
}

/// `SCOPE_LEVEL`: the level part of a [`SCOPE_ID`] (a C `enum`).
pub type SCOPE_LEVEL = INT;
/// `ScopeLevelInterface`.
pub const ScopeLevelInterface: SCOPE_LEVEL = 1;
/// `ScopeLevelLink`.
pub const ScopeLevelLink: SCOPE_LEVEL = 2;
/// `ScopeLevelSubnet`.
pub const ScopeLevelSubnet: SCOPE_LEVEL = 3;
/// `ScopeLevelAdmin`.
pub const ScopeLevelAdmin: SCOPE_LEVEL = 4;
/// `ScopeLevelSite`.
pub const ScopeLevelSite: SCOPE_LEVEL = 5;
/// `ScopeLevelOrganization`.
pub const ScopeLevelOrganization: SCOPE_LEVEL = 8;
/// `ScopeLevelGlobal`.
pub const ScopeLevelGlobal: SCOPE_LEVEL = 14;
/// `ScopeLevelCount`.
pub const ScopeLevelCount: SCOPE_LEVEL = 16;

/// `SCOPE_ID`: an IPv6 scope identifier.
///
/// The C type is a union of `ULONG Value` and the bit fields
/// `ULONG Zone : 28; ULONG Level : 4;` (MSVC allocates the first bit field at
/// the least significant bits). Here it holds `Value`; [`SCOPE_ID::zone`] and
/// [`SCOPE_ID::level`] extract the bit fields.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-scope_id>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SCOPE_ID {
    /// `Value`: the whole identifier.
    pub Value: ULONG,
}
/// `PSCOPE_ID`: pointer to [`SCOPE_ID`].
pub type PSCOPE_ID = *mut SCOPE_ID;

impl SCOPE_ID {
    /// A scope id from its `Zone` (28 bits) and `Level` (4 bits) fields;
    /// excess bits are discarded as a C bit-field assignment would.
    #[must_use]
    pub const fn new(zone: ULONG, level: ULONG) -> Self {
        Self {
            Value: (zone & 0x0FFF_FFFF) | ((level & 0xF) << 28),
        }
    }

    /// The `Zone` bit field (bits 0–27).
    #[must_use]
    pub const fn zone(&self) -> ULONG {
        self.Value & 0x0FFF_FFFF
    }

    /// The `Level` bit field (bits 28–31), a [`SCOPE_LEVEL`].
    #[must_use]
    pub const fn level(&self) -> ULONG {
        self.Value >> 28
    }
}

/// `SCOPEID_UNSPECIFIED_INIT`: the unspecified scope id (zero).
pub const SCOPEID_UNSPECIFIED_INIT: SCOPE_ID = SCOPE_ID { Value: 0 };

/// `SOCKADDR_IN` (`struct sockaddr_in`): an IPv4 socket address.
///
/// `sin_port` and `sin_addr` are in network byte order.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-sockaddr_in>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SOCKADDR_IN {
    /// `sin_family`: [`AF_INET`].
    pub sin_family: ADDRESS_FAMILY,
    /// `sin_port`: port, network byte order.
    pub sin_port: USHORT,
    /// `sin_addr`: address, network byte order.
    pub sin_addr: IN_ADDR,
    /// `sin_zero`: reserved, zero.
    pub sin_zero: [CHAR; 8],
}
/// `PSOCKADDR_IN`: pointer to [`SOCKADDR_IN`].
pub type PSOCKADDR_IN = *mut SOCKADDR_IN;

/// `SOCKADDR_DL` (`struct sockaddr_dl`): a data-link (MAC) address.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-sockaddr_dl>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SOCKADDR_DL {
    /// `sdl_family`: [`AF_LINK`].
    pub sdl_family: ADDRESS_FAMILY,
    /// `sdl_data`: the address, from the low bytes.
    pub sdl_data: [UCHAR; 8],
    /// `sdl_zero`: reserved.
    pub sdl_zero: [UCHAR; 4],
}
/// `PSOCKADDR_DL`: pointer to [`SOCKADDR_DL`].
pub type PSOCKADDR_DL = *mut SOCKADDR_DL;

/// `SOCKADDR_IN6` (`SOCKADDR_IN6_LH`, `struct sockaddr_in6`, `ws2ipdef.h`):
/// an IPv6 socket address (RFC 3493).
///
/// The C type ends in an anonymous union of `ULONG sin6_scope_id` and
/// `SCOPE_ID sin6_scope_struct`; both are one `ULONG`, so it is the field
/// `sin6_scope_id` here (`SCOPE_ID { Value: a.sin6_scope_id }` is the other
/// view).
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-sockaddr_in6_lh>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SOCKADDR_IN6 {
    /// `sin6_family`: [`AF_INET6`].
    pub sin6_family: ADDRESS_FAMILY,
    /// `sin6_port`: port, network byte order.
    pub sin6_port: USHORT,
    /// `sin6_flowinfo`: IPv6 flow information.
    pub sin6_flowinfo: ULONG,
    /// `sin6_addr`: the address.
    pub sin6_addr: IN6_ADDR,
    /// `sin6_scope_id` / `sin6_scope_struct`: set of interfaces for a scope.
    pub sin6_scope_id: ULONG,
}
/// `SOCKADDR_IN6_LH`: the Vista-and-later name of [`SOCKADDR_IN6`].
pub type SOCKADDR_IN6_LH = SOCKADDR_IN6;
/// `PSOCKADDR_IN6`: pointer to [`SOCKADDR_IN6`].
pub type PSOCKADDR_IN6 = *mut SOCKADDR_IN6;

/// `SOCKADDR_INET`: an IPv4 or IPv6 socket address, told apart by
/// `si_family`.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-sockaddr_inet>
#[repr(C)]
#[derive(Clone, Copy)]
pub union SOCKADDR_INET {
    /// `Ipv4`.
    pub Ipv4: SOCKADDR_IN,
    /// `Ipv6`.
    pub Ipv6: SOCKADDR_IN6,
    /// `si_family`: the family shared by both views.
    pub si_family: ADDRESS_FAMILY,
}
/// `PSOCKADDR_INET`: pointer to [`SOCKADDR_INET`].
pub type PSOCKADDR_INET = *mut SOCKADDR_INET;

impl fmt::Debug for SOCKADDR_INET {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: the family is the first field of every view and any 16-bit
        // value is a valid `ADDRESS_FAMILY`.
        let family = unsafe { self.si_family };
        f.debug_struct("SOCKADDR_INET")
            .field("si_family", &family)
            .finish_non_exhaustive()
    }
}

/// `SOCKADDR_IN6_PAIR`: a source/destination pair of IPv6 addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SOCKADDR_IN6_PAIR {
    /// `SourceAddress`.
    pub SourceAddress: PSOCKADDR_IN6,
    /// `DestinationAddress`.
    pub DestinationAddress: PSOCKADDR_IN6,
}
/// `PSOCKADDR_IN6_PAIR`: pointer to [`SOCKADDR_IN6_PAIR`].
pub type PSOCKADDR_IN6_PAIR = *mut SOCKADDR_IN6_PAIR;

// ---------------------------------------------------------------------------
// Well-known addresses
// ---------------------------------------------------------------------------

/// `INADDR_ANY`: `0.0.0.0`, **host** byte order (as `ULONG`).
pub const INADDR_ANY: ULONG = 0x0000_0000;
/// `INADDR_LOOPBACK`: `127.0.0.1`, **host** byte order.
pub const INADDR_LOOPBACK: ULONG = 0x7f00_0001;
/// `INADDR_BROADCAST`: `255.255.255.255`.
pub const INADDR_BROADCAST: ULONG = 0xffff_ffff;
/// `INADDR_NONE`: invalid address marker.
pub const INADDR_NONE: ULONG = 0xffff_ffff;

/// Builds an `IN6_ADDR` constant from its leading bytes, zero-filling the rest
/// as a C brace initializer does.
const fn in6(prefix: &[UCHAR]) -> IN6_ADDR {
    let mut b = [0u8; 16];
    let mut i = 0;
    while i < prefix.len() {
        b[i] = prefix[i];
        i += 1;
    }
    IN6_ADDR::from_bytes(b)
}

/// `IN6ADDR_ANY_INIT`: `::`.
pub const IN6ADDR_ANY_INIT: IN6_ADDR = in6(&[]);
/// `IN6ADDR_LOOPBACK_INIT`: `::1`.
pub const IN6ADDR_LOOPBACK_INIT: IN6_ADDR = in6(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/// `IN6ADDR_ALLNODESONNODE_INIT`: `ff01::1`.
pub const IN6ADDR_ALLNODESONNODE_INIT: IN6_ADDR =
    in6(&[0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
/// `IN6ADDR_ALLNODESONLINK_INIT`: `ff02::1`.
pub const IN6ADDR_ALLNODESONLINK_INIT: IN6_ADDR =
    in6(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
/// `IN6ADDR_ALLROUTERSONLINK_INIT`: `ff02::2`.
pub const IN6ADDR_ALLROUTERSONLINK_INIT: IN6_ADDR =
    in6(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]);
/// `IN6ADDR_ALLMLDV2ROUTERSONLINK_INIT`: `ff02::16`.
pub const IN6ADDR_ALLMLDV2ROUTERSONLINK_INIT: IN6_ADDR =
    in6(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);
/// `IN6ADDR_TEREDOINITIALLINKLOCALADDRESS_INIT`: `fe80::ffff:ffff:fffe`.
pub const IN6ADDR_TEREDOINITIALLINKLOCALADDRESS_INIT: IN6_ADDR = in6(&[
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
]);
/// `IN6ADDR_TEREDOOLDLINKLOCALADDRESSXP_INIT`: `fe80::5445:5245:444f`
/// (`"TEREDO"` in the last six bytes).
pub const IN6ADDR_TEREDOOLDLINKLOCALADDRESSXP_INIT: IN6_ADDR = in6(&[
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, b'T', b'E', b'R', b'E', b'D', b'O',
]);
/// `IN6ADDR_TEREDOOLDLINKLOCALADDRESSVISTA_INIT`: `fe80::ffff:ffff:ffff`.
pub const IN6ADDR_TEREDOOLDLINKLOCALADDRESSVISTA_INIT: IN6_ADDR = in6(&[
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
]);
/// `IN6ADDR_LINKLOCALPREFIX_INIT`: `fe80::/64` prefix bytes.
pub const IN6ADDR_LINKLOCALPREFIX_INIT: IN6_ADDR = in6(&[0xfe, 0x80]);
/// `IN6ADDR_MULTICASTPREFIX_INIT`: `ff00::/8` prefix bytes.
pub const IN6ADDR_MULTICASTPREFIX_INIT: IN6_ADDR = in6(&[0xff, 0x00]);
/// `IN6ADDR_SOLICITEDNODEMULTICASTPREFIX_INIT`: `ff02::1:ff00:0/104` prefix bytes.
pub const IN6ADDR_SOLICITEDNODEMULTICASTPREFIX_INIT: IN6_ADDR =
    in6(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]);
/// `IN6ADDR_V4MAPPEDPREFIX_INIT`: `::ffff:0:0/96` prefix bytes.
pub const IN6ADDR_V4MAPPEDPREFIX_INIT: IN6_ADDR = in6(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
/// `IN6ADDR_6TO4PREFIX_INIT`: `2002::/16` prefix bytes.
pub const IN6ADDR_6TO4PREFIX_INIT: IN6_ADDR = in6(&[0x20, 0x02]);
/// `IN6ADDR_TEREDOPREFIX_INIT`: `2001::/32` prefix bytes.
pub const IN6ADDR_TEREDOPREFIX_INIT: IN6_ADDR = in6(&[0x20, 0x01, 0x00, 0x00]);
/// `IN6ADDR_TEREDOPREFIX_INIT_OLD`: `3ffe:831f::/32` prefix bytes.
pub const IN6ADDR_TEREDOPREFIX_INIT_OLD: IN6_ADDR = in6(&[0x3f, 0xfe, 0x83, 0x1f]);
/// `IN6ADDR_ULAPREFIX_INIT`: `fc00::/7` prefix bytes.
pub const IN6ADDR_ULAPREFIX_INIT: IN6_ADDR = in6(&[0xfc]);
/// `IN6ADDR_SITELOCALPREFIX_INIT`: `fec0::/10` prefix bytes.
pub const IN6ADDR_SITELOCALPREFIX_INIT: IN6_ADDR = in6(&[0xfe, 0xc0]);
/// `IN6ADDR_6BONETESTPREFIX_INIT`: `3ffe::/16` prefix bytes.
pub const IN6ADDR_6BONETESTPREFIX_INIT: IN6_ADDR = in6(&[0x3f, 0xfe]);

/// `IN6ADDR_LINKLOCALPREFIX_LENGTH`.
pub const IN6ADDR_LINKLOCALPREFIX_LENGTH: ULONG = 64;
/// `IN6ADDR_MULTICASTPREFIX_LENGTH`.
pub const IN6ADDR_MULTICASTPREFIX_LENGTH: ULONG = 8;
/// `IN6ADDR_SOLICITEDNODEMULTICASTPREFIX_LENGTH`.
pub const IN6ADDR_SOLICITEDNODEMULTICASTPREFIX_LENGTH: ULONG = 104;
/// `IN6ADDR_V4MAPPEDPREFIX_LENGTH`.
pub const IN6ADDR_V4MAPPEDPREFIX_LENGTH: ULONG = 96;
/// `IN6ADDR_6TO4PREFIX_LENGTH`.
pub const IN6ADDR_6TO4PREFIX_LENGTH: ULONG = 16;
/// `IN6ADDR_TEREDOPREFIX_LENGTH`.
pub const IN6ADDR_TEREDOPREFIX_LENGTH: ULONG = 32;

/// `INET_ADDRSTRLEN`: buffer length for an IPv4 address string.
pub const INET_ADDRSTRLEN: usize = 22;
/// `INET6_ADDRSTRLEN`: buffer length for an IPv6 address string.
pub const INET6_ADDRSTRLEN: usize = 65;

// ---------------------------------------------------------------------------
// Protocols (ws2def.h)
// ---------------------------------------------------------------------------

/// `IPPROTO`: IP protocol numbers (a C `enum`, so `INT`); also the option
/// level for protocol options.
pub type IPPROTO = INT;
/// `PIPROTO` (sic): pointer to [`IPPROTO`].
pub type PIPROTO = *mut IPPROTO;

/// `IPPROTO_IP`: option level of IPv4 options (`0`).
pub const IPPROTO_IP: IPPROTO = 0;
/// `IPPROTO_HOPOPTS`: IPv6 hop-by-hop options.
pub const IPPROTO_HOPOPTS: IPPROTO = 0;
/// `IPPROTO_ICMP`.
pub const IPPROTO_ICMP: IPPROTO = 1;
/// `IPPROTO_IGMP`.
pub const IPPROTO_IGMP: IPPROTO = 2;
/// `IPPROTO_GGP`.
pub const IPPROTO_GGP: IPPROTO = 3;
/// `IPPROTO_IPV4`.
pub const IPPROTO_IPV4: IPPROTO = 4;
/// `IPPROTO_ST`.
pub const IPPROTO_ST: IPPROTO = 5;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: IPPROTO = 6;
/// `IPPROTO_CBT`.
pub const IPPROTO_CBT: IPPROTO = 7;
/// `IPPROTO_EGP`.
pub const IPPROTO_EGP: IPPROTO = 8;
/// `IPPROTO_IGP`.
pub const IPPROTO_IGP: IPPROTO = 9;
/// `IPPROTO_PUP`.
pub const IPPROTO_PUP: IPPROTO = 12;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: IPPROTO = 17;
/// `IPPROTO_IDP`.
pub const IPPROTO_IDP: IPPROTO = 22;
/// `IPPROTO_RDP`.
pub const IPPROTO_RDP: IPPROTO = 27;
/// `IPPROTO_IPV6`: IPv6 header; option level of IPv6 options.
pub const IPPROTO_IPV6: IPPROTO = 41;
/// `IPPROTO_ROUTING`: IPv6 routing header.
pub const IPPROTO_ROUTING: IPPROTO = 43;
/// `IPPROTO_FRAGMENT`: IPv6 fragmentation header.
pub const IPPROTO_FRAGMENT: IPPROTO = 44;
/// `IPPROTO_ESP`: encapsulating security payload.
pub const IPPROTO_ESP: IPPROTO = 50;
/// `IPPROTO_AH`: authentication header.
pub const IPPROTO_AH: IPPROTO = 51;
/// `IPPROTO_ICMPV6`.
pub const IPPROTO_ICMPV6: IPPROTO = 58;
/// `IPPROTO_NONE`: IPv6 no next header.
pub const IPPROTO_NONE: IPPROTO = 59;
/// `IPPROTO_DSTOPTS`: IPv6 destination options.
pub const IPPROTO_DSTOPTS: IPPROTO = 60;
/// `IPPROTO_ND`.
pub const IPPROTO_ND: IPPROTO = 77;
/// `IPPROTO_ICLFXBM`.
pub const IPPROTO_ICLFXBM: IPPROTO = 78;
/// `IPPROTO_PIM`.
pub const IPPROTO_PIM: IPPROTO = 103;
/// `IPPROTO_PGM`.
pub const IPPROTO_PGM: IPPROTO = 113;
/// `IPPROTO_L2TP`.
pub const IPPROTO_L2TP: IPPROTO = 115;
/// `IPPROTO_SCTP`.
pub const IPPROTO_SCTP: IPPROTO = 132;
/// `IPPROTO_RAW`.
pub const IPPROTO_RAW: IPPROTO = 255;
/// `IPPROTO_MAX`.
pub const IPPROTO_MAX: IPPROTO = 256;
/// `IPPROTO_RESERVED_RAW`: reserved for Windows.
pub const IPPROTO_RESERVED_RAW: IPPROTO = 257;
/// `IPPROTO_RESERVED_IPSEC`: reserved for Windows.
pub const IPPROTO_RESERVED_IPSEC: IPPROTO = 258;
/// `IPPROTO_RESERVED_IPSECOFFLOAD`: reserved for Windows.
pub const IPPROTO_RESERVED_IPSECOFFLOAD: IPPROTO = 259;
/// `IPPROTO_RESERVED_WNV`: reserved for Windows.
pub const IPPROTO_RESERVED_WNV: IPPROTO = 260;
/// `IPPROTO_RESERVED_MAX`: reserved for Windows.
pub const IPPROTO_RESERVED_MAX: IPPROTO = 261;

// ---------------------------------------------------------------------------
// I/O control codes
// ---------------------------------------------------------------------------

/// `IOC_UNIX`: Unix-compatible ioctl family.
pub const IOC_UNIX: ULONG = 0x0000_0000;
/// `IOC_WS2`: Winsock 2 ioctl family.
pub const IOC_WS2: ULONG = 0x0800_0000;
/// `IOC_PROTOCOL`: protocol-specific ioctl family.
pub const IOC_PROTOCOL: ULONG = 0x1000_0000;
/// `IOC_VENDOR`: vendor-specific ioctl family.
pub const IOC_VENDOR: ULONG = 0x1800_0000;
/// `IOC_WSK`: `IOC_WS2 | 0x07000000`, the WSK-specific ioctl family.
pub const IOC_WSK: ULONG = IOC_WS2 | 0x0700_0000;

/// `IOCPARM_MASK`: parameters must be < 128 bytes.
pub const IOCPARM_MASK: ULONG = 0x7f;
/// `IOC_VOID`: no parameters.
pub const IOC_VOID: ULONG = 0x2000_0000;
/// `IOC_OUT`: copy out parameters.
pub const IOC_OUT: ULONG = 0x4000_0000;
/// `IOC_IN`: copy in parameters.
pub const IOC_IN: ULONG = 0x8000_0000;
/// `IOC_INOUT`: `IOC_IN | IOC_OUT`.
pub const IOC_INOUT: ULONG = IOC_IN | IOC_OUT;

/// `_WSAIO(x, y)`: `IOC_VOID | x | y`.
#[must_use]
pub const fn _WSAIO(x: ULONG, y: ULONG) -> ULONG {
    IOC_VOID | x | y
}
/// `_WSAIOR(x, y)`: `IOC_OUT | x | y`.
#[must_use]
pub const fn _WSAIOR(x: ULONG, y: ULONG) -> ULONG {
    IOC_OUT | x | y
}
/// `_WSAIOW(x, y)`: `IOC_IN | x | y`.
#[must_use]
pub const fn _WSAIOW(x: ULONG, y: ULONG) -> ULONG {
    IOC_IN | x | y
}
/// `_WSAIORW(x, y)`: `IOC_INOUT | x | y`.
#[must_use]
pub const fn _WSAIORW(x: ULONG, y: ULONG) -> ULONG {
    IOC_INOUT | x | y
}
/// `_IO(x, y)`: `IOC_VOID | (x << 8) | y`.
#[must_use]
pub const fn _IO(x: ULONG, y: ULONG) -> ULONG {
    IOC_VOID | (x << 8) | y
}
/// `_IOR(x, y, t)`: `IOC_OUT | ((sizeof(t) & IOCPARM_MASK) << 16) | (x << 8) | y`;
/// `size` is `sizeof(t)`.
#[must_use]
pub const fn _IOR(x: ULONG, y: ULONG, size: ULONG) -> ULONG {
    IOC_OUT | ((size & IOCPARM_MASK) << 16) | (x << 8) | y
}
/// `_IOW(x, y, t)`: `IOC_IN | ((sizeof(t) & IOCPARM_MASK) << 16) | (x << 8) | y`;
/// `size` is `sizeof(t)`.
#[must_use]
pub const fn _IOW(x: ULONG, y: ULONG, size: ULONG) -> ULONG {
    IOC_IN | ((size & IOCPARM_MASK) << 16) | (x << 8) | y
}

/// `SIO_ASSOCIATE_HANDLE`.
pub const SIO_ASSOCIATE_HANDLE: ULONG = _WSAIOW(IOC_WS2, 1);
/// `SIO_ENABLE_CIRCULAR_QUEUEING`.
pub const SIO_ENABLE_CIRCULAR_QUEUEING: ULONG = _WSAIO(IOC_WS2, 2);
/// `SIO_FIND_ROUTE`.
pub const SIO_FIND_ROUTE: ULONG = _WSAIOR(IOC_WS2, 3);
/// `SIO_FLUSH`.
pub const SIO_FLUSH: ULONG = _WSAIO(IOC_WS2, 4);
/// `SIO_GET_BROADCAST_ADDRESS`.
pub const SIO_GET_BROADCAST_ADDRESS: ULONG = _WSAIOR(IOC_WS2, 5);
/// `SIO_GET_EXTENSION_FUNCTION_POINTER`.
pub const SIO_GET_EXTENSION_FUNCTION_POINTER: ULONG = _WSAIORW(IOC_WS2, 6);
/// `SIO_GET_QOS`.
pub const SIO_GET_QOS: ULONG = _WSAIORW(IOC_WS2, 7);
/// `SIO_GET_GROUP_QOS`.
pub const SIO_GET_GROUP_QOS: ULONG = _WSAIORW(IOC_WS2, 8);
/// `SIO_MULTIPOINT_LOOPBACK`.
pub const SIO_MULTIPOINT_LOOPBACK: ULONG = _WSAIOW(IOC_WS2, 9);
/// `SIO_MULTICAST_SCOPE`.
pub const SIO_MULTICAST_SCOPE: ULONG = _WSAIOW(IOC_WS2, 10);
/// `SIO_SET_QOS`.
pub const SIO_SET_QOS: ULONG = _WSAIOW(IOC_WS2, 11);
/// `SIO_SET_GROUP_QOS`.
pub const SIO_SET_GROUP_QOS: ULONG = _WSAIOW(IOC_WS2, 12);
/// `SIO_TRANSLATE_HANDLE`.
pub const SIO_TRANSLATE_HANDLE: ULONG = _WSAIORW(IOC_WS2, 13);
/// `SIO_ROUTING_INTERFACE_QUERY`: the local interface used to reach an
/// address.
pub const SIO_ROUTING_INTERFACE_QUERY: ULONG = _WSAIORW(IOC_WS2, 20);
/// `SIO_ROUTING_INTERFACE_CHANGE`: notification of a routing interface
/// change.
pub const SIO_ROUTING_INTERFACE_CHANGE: ULONG = _WSAIOW(IOC_WS2, 21);
/// `SIO_ADDRESS_LIST_QUERY`: the list of local addresses
/// ([`SOCKET_ADDRESS_LIST`]).
pub const SIO_ADDRESS_LIST_QUERY: ULONG = _WSAIOR(IOC_WS2, 22);
/// `SIO_ADDRESS_LIST_CHANGE`: notification of a local address list change.
pub const SIO_ADDRESS_LIST_CHANGE: ULONG = _WSAIO(IOC_WS2, 23);
/// `SIO_QUERY_TARGET_PNP_HANDLE`.
pub const SIO_QUERY_TARGET_PNP_HANDLE: ULONG = _WSAIOR(IOC_WS2, 24);
/// `SIO_QUERY_RSS_PROCESSOR_INFO`.
pub const SIO_QUERY_RSS_PROCESSOR_INFO: ULONG = _WSAIOR(IOC_WS2, 37);
/// `SIO_ADDRESS_LIST_SORT`.
pub const SIO_ADDRESS_LIST_SORT: ULONG = _WSAIORW(IOC_WS2, 25);
/// `SIO_RESERVED_1`.
pub const SIO_RESERVED_1: ULONG = _WSAIOW(IOC_WS2, 26);
/// `SIO_RESERVED_2`.
pub const SIO_RESERVED_2: ULONG = _WSAIOW(IOC_WS2, 33);
/// `SIO_GET_MULTIPLE_EXTENSION_FUNCTION_POINTER`.
pub const SIO_GET_MULTIPLE_EXTENSION_FUNCTION_POINTER: ULONG = _WSAIORW(IOC_WS2, 36);

/// `SIO_IDEAL_SEND_BACKLOG_QUERY` (`ws2ipdef.h`): `_IOR('t', 123, ULONG)`.
pub const SIO_IDEAL_SEND_BACKLOG_QUERY: ULONG = _IOR(b't' as ULONG, 123, 4);
/// `SIO_IDEAL_SEND_BACKLOG_CHANGE` (`ws2ipdef.h`): `_IO('t', 122)`.
pub const SIO_IDEAL_SEND_BACKLOG_CHANGE: ULONG = _IO(b't' as ULONG, 122);

/// `SIO_SET_COMPATIBILITY_MODE` (`mswsockdef.h`): `_WSAIOW(IOC_VENDOR, 300)`,
/// input [`WSA_COMPATIBILITY_MODE`].
pub const SIO_SET_COMPATIBILITY_MODE: ULONG = _WSAIOW(IOC_VENDOR, 300);

/// `WSA_COMPATIBILITY_BEHAVIOR_ID` (`mswsockdef.h`, a C `enum`).
pub type WSA_COMPATIBILITY_BEHAVIOR_ID = INT;
/// `WsaBehaviorAll`.
pub const WsaBehaviorAll: WSA_COMPATIBILITY_BEHAVIOR_ID = 0;
/// `WsaBehaviorReceiveBuffering`.
pub const WsaBehaviorReceiveBuffering: WSA_COMPATIBILITY_BEHAVIOR_ID = 1;
/// `WsaBehaviorAutoTuning`.
pub const WsaBehaviorAutoTuning: WSA_COMPATIBILITY_BEHAVIOR_ID = 2;

/// `WSA_COMPATIBILITY_MODE` (`mswsockdef.h`): input of
/// [`SIO_SET_COMPATIBILITY_MODE`].
///
/// <https://learn.microsoft.com/windows/win32/api/mswsockdef/ns-mswsockdef-wsa_compatibility_mode>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WSA_COMPATIBILITY_MODE {
    /// `BehaviorId`.
    pub BehaviorId: WSA_COMPATIBILITY_BEHAVIOR_ID,
    /// `TargetOsVersion`.
    pub TargetOsVersion: ULONG,
}
/// `PWSA_COMPATIBILITY_MODE`: pointer to [`WSA_COMPATIBILITY_MODE`].
pub type PWSA_COMPATIBILITY_MODE = *mut WSA_COMPATIBILITY_MODE;

// ---------------------------------------------------------------------------
// Buffers and control messages
// ---------------------------------------------------------------------------

/// `WSABUF`: a buffer and its length.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-wsabuf>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSABUF {
    /// `len`: length of the buffer in bytes.
    pub len: ULONG,
    /// `buf`: the buffer.
    pub buf: PCHAR,
}
/// `LPWSABUF`: pointer to [`WSABUF`].
pub type LPWSABUF = *mut WSABUF;

/// `WSAMSG`: a message with address, data buffers and control buffer.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-wsamsg>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WSAMSG {
    /// `name`: remote address.
    pub name: LPSOCKADDR,
    /// `namelen`: remote address length.
    pub namelen: INT,
    /// `lpBuffers`: data buffer array.
    pub lpBuffers: LPWSABUF,
    /// `dwBufferCount`: number of elements of `lpBuffers`.
    pub dwBufferCount: ULONG,
    /// `Control`: control (ancillary data) buffer.
    pub Control: WSABUF,
    /// `dwFlags`: `MSG_*` flags.
    pub dwFlags: ULONG,
}
/// `PWSAMSG`/`LPWSAMSG`: pointer to [`WSAMSG`].
pub type PWSAMSG = *mut WSAMSG;

/// `WSACMSGHDR` (`CMSGHDR`, `struct cmsghdr`): header of one ancillary data
/// object in a control buffer (RFC 2292); `cmsg_len` bytes of header and data
/// follow at [`WSA_CMSG_DATA`].
///
/// WSK passes control information as `PCMSGHDR` (`WskSendTo`,
/// `WskReceiveFrom`, the receive-from event).
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-wsacmsghdr>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WSACMSGHDR {
    /// `cmsg_len`: bytes of header and data, without trailing padding.
    pub cmsg_len: SIZE_T,
    /// `cmsg_level`: originating protocol (an option level).
    pub cmsg_level: INT,
    /// `cmsg_type`: protocol-specific type (e.g. [`IP_PKTINFO`]).
    pub cmsg_type: INT,
}
/// `PWSACMSGHDR`/`LPWSACMSGHDR`: pointer to [`WSACMSGHDR`].
pub type PWSACMSGHDR = *mut WSACMSGHDR;
/// `CMSGHDR`: the Vista-and-later name of [`WSACMSGHDR`].
pub type CMSGHDR = WSACMSGHDR;
/// `PCMSGHDR`: pointer to [`CMSGHDR`].
pub type PCMSGHDR = *mut CMSGHDR;

/// `MAX_NATURAL_ALIGNMENT` (`ntdef.h`) on 64-bit Windows: `sizeof(ULONGLONG)`.
const MAX_NATURAL_ALIGNMENT: usize = 8;

/// `WSA_CMSGHDR_ALIGN(length)` / `CMSGHDR_ALIGN`: rounds `length` up to the
/// alignment of [`WSACMSGHDR`].
#[must_use]
pub const fn WSA_CMSGHDR_ALIGN(length: usize) -> usize {
    let a = core::mem::align_of::<WSACMSGHDR>();
    (length + a - 1) & !(a - 1)
}
/// `CMSGHDR_ALIGN`: same as [`WSA_CMSGHDR_ALIGN`].
#[must_use]
pub const fn CMSGHDR_ALIGN(length: usize) -> usize {
    WSA_CMSGHDR_ALIGN(length)
}

/// `WSA_CMSGDATA_ALIGN(length)` / `CMSGDATA_ALIGN`: rounds `length` up to
/// `MAX_NATURAL_ALIGNMENT` (8 on 64-bit Windows).
#[must_use]
pub const fn WSA_CMSGDATA_ALIGN(length: usize) -> usize {
    (length + MAX_NATURAL_ALIGNMENT - 1) & !(MAX_NATURAL_ALIGNMENT - 1)
}
/// `CMSGDATA_ALIGN`: same as [`WSA_CMSGDATA_ALIGN`].
#[must_use]
pub const fn CMSGDATA_ALIGN(length: usize) -> usize {
    WSA_CMSGDATA_ALIGN(length)
}

/// `WSA_CMSG_SPACE(length)` / `CMSG_SPACE`: total bytes an ancillary data
/// object with `length` data bytes occupies, padding included.
#[must_use]
pub const fn WSA_CMSG_SPACE(length: usize) -> usize {
    WSA_CMSGDATA_ALIGN(core::mem::size_of::<WSACMSGHDR>() + WSA_CMSGHDR_ALIGN(length))
}
/// `CMSG_SPACE`: same as [`WSA_CMSG_SPACE`].
#[must_use]
pub const fn CMSG_SPACE(length: usize) -> usize {
    WSA_CMSG_SPACE(length)
}

/// `WSA_CMSG_LEN(length)` / `CMSG_LEN`: the value to store in `cmsg_len`
/// for `length` data bytes.
#[must_use]
pub const fn WSA_CMSG_LEN(length: usize) -> usize {
    WSA_CMSGDATA_ALIGN(core::mem::size_of::<WSACMSGHDR>()) + length
}
/// `CMSG_LEN`: same as [`WSA_CMSG_LEN`].
#[must_use]
pub const fn CMSG_LEN(length: usize) -> usize {
    WSA_CMSG_LEN(length)
}

/// `WSA_CMSG_DATA(cmsg)`: pointer to the first data byte of an ancillary data
/// object. Only computes an address (wrapping arithmetic); dereferencing the
/// result is the caller's responsibility.
#[must_use]
pub const fn WSA_CMSG_DATA(cmsg: *const WSACMSGHDR) -> PUCHAR {
    cmsg.cast::<UCHAR>()
        .wrapping_add(WSA_CMSGDATA_ALIGN(core::mem::size_of::<WSACMSGHDR>()))
        .cast_mut()
}

/// `WSA_CMSG_FIRSTHDR(msg)` / `CMSG_FIRSTHDR`: the first ancillary data
/// object of `msg`'s control buffer, or null if it is too short for one.
///
/// # Safety
///
/// `msg` must point to a readable [`WSAMSG`].
#[must_use]
pub unsafe fn WSA_CMSG_FIRSTHDR(msg: *const WSAMSG) -> PWSACMSGHDR {
    // SAFETY: the caller guarantees `msg` is readable.
    let control = unsafe { (*msg).Control };
    if control.len as usize >= core::mem::size_of::<WSACMSGHDR>() {
        control.buf.cast()
    } else {
        core::ptr::null_mut()
    }
}

/// `WSA_CMSG_NXTHDR(msg, cmsg)` / `CMSG_NXTHDR`: the ancillary data object
/// after `cmsg` in `msg`'s control buffer (the first one if `cmsg` is null),
/// or null when no complete header follows.
///
/// # Safety
///
/// `msg` must point to a readable [`WSAMSG`]; a non-null `cmsg` must point to
/// a readable header inside `msg`'s control buffer.
#[must_use]
pub unsafe fn WSA_CMSG_NXTHDR(msg: *const WSAMSG, cmsg: *const WSACMSGHDR) -> PWSACMSGHDR {
    if cmsg.is_null() {
        // SAFETY: forwarded caller guarantee on `msg`.
        return unsafe { WSA_CMSG_FIRSTHDR(msg) };
    }
    // SAFETY: the caller guarantees a non-null `cmsg` is readable.
    let len = unsafe { (*cmsg).cmsg_len };
    // SAFETY: the caller guarantees `msg` is readable.
    let control = unsafe { (*msg).Control };
    let next = cmsg.cast::<UCHAR>().wrapping_add(WSA_CMSGHDR_ALIGN(len));
    let end = control
        .buf
        .cast::<UCHAR>()
        .cast_const()
        .wrapping_add(control.len as usize);
    if next.wrapping_add(core::mem::size_of::<WSACMSGHDR>()) > end {
        core::ptr::null_mut()
    } else {
        next.cast_mut().cast()
    }
}

/// `CMSG_FIRSTHDR`: same as [`WSA_CMSG_FIRSTHDR`].
///
/// # Safety
///
/// As for [`WSA_CMSG_FIRSTHDR`].
#[must_use]
pub unsafe fn CMSG_FIRSTHDR(msg: *const WSAMSG) -> PWSACMSGHDR {
    // SAFETY: forwarded caller guarantee.
    unsafe { WSA_CMSG_FIRSTHDR(msg) }
}

/// `CMSG_NXTHDR`: same as [`WSA_CMSG_NXTHDR`].
///
/// # Safety
///
/// As for [`WSA_CMSG_NXTHDR`].
#[must_use]
pub unsafe fn CMSG_NXTHDR(msg: *const WSAMSG, cmsg: *const WSACMSGHDR) -> PWSACMSGHDR {
    // SAFETY: forwarded caller guarantee.
    unsafe { WSA_CMSG_NXTHDR(msg, cmsg) }
}

// ---------------------------------------------------------------------------
// Message flags (ws2def.h, winsock2.h)
// ---------------------------------------------------------------------------

/// `MSG_OOB` (`winsock2.h`): process out-of-band data.
pub const MSG_OOB: ULONG = 0x1;
/// `MSG_PEEK` (`winsock2.h`): peek at incoming data.
pub const MSG_PEEK: ULONG = 0x2;
/// `MSG_DONTROUTE` (`winsock2.h`): send without using routing tables.
pub const MSG_DONTROUTE: ULONG = 0x4;
/// `MSG_WAITALL` (`winsock2.h`): complete only when the buffer is full.
pub const MSG_WAITALL: ULONG = 0x8;
/// `MSG_INTERRUPT` (`winsock2.h`): send/receive in interrupt context.
pub const MSG_INTERRUPT: ULONG = 0x10;
/// `MSG_PUSH_IMMEDIATE` (`winsock2.h`): do not delay completion if data is
/// available.
pub const MSG_PUSH_IMMEDIATE: ULONG = 0x20;
/// `MSG_PARTIAL` (`winsock2.h`): partial send or receive for message
/// transports.
pub const MSG_PARTIAL: ULONG = 0x8000;
/// `MSG_MAXIOVLEN` (`winsock2.h`).
pub const MSG_MAXIOVLEN: ULONG = 16;
/// `MSG_TRUNC`: the datagram was truncated.
pub const MSG_TRUNC: ULONG = 0x0100;
/// `MSG_CTRUNC`: the control data was truncated.
pub const MSG_CTRUNC: ULONG = 0x0200;
/// `MSG_BCAST`: the datagram was received as a link-layer broadcast.
pub const MSG_BCAST: ULONG = 0x0400;
/// `MSG_MCAST`: the datagram was received as a link-layer multicast.
pub const MSG_MCAST: ULONG = 0x0800;
/// `MSG_ERRQUEUE`: receive from the error queue.
pub const MSG_ERRQUEUE: ULONG = 0x1000;

// ---------------------------------------------------------------------------
// Address information (getaddrinfo)
// ---------------------------------------------------------------------------

/// `AI_PASSIVE`: the address will be used in a bind.
pub const AI_PASSIVE: INT = 0x0000_0001;
/// `AI_CANONNAME`: return the canonical name in the first `ai_canonname`.
pub const AI_CANONNAME: INT = 0x0000_0002;
/// `AI_NUMERICHOST`: the node name must be a numeric address string.
pub const AI_NUMERICHOST: INT = 0x0000_0004;
/// `AI_NUMERICSERV`: the service name must be a numeric port.
pub const AI_NUMERICSERV: INT = 0x0000_0008;
/// `AI_DNS_ONLY`: unicast DNS only.
pub const AI_DNS_ONLY: INT = 0x0000_0010;
/// `AI_FORCE_CLEAR_TEXT`: force a clear-text DNS query.
pub const AI_FORCE_CLEAR_TEXT: INT = 0x0000_0020;
/// `AI_BYPASS_DNS_CACHE`: bypass the DNS cache.
pub const AI_BYPASS_DNS_CACHE: INT = 0x0000_0040;
/// `AI_RETURN_TTL`: return the record TTL.
pub const AI_RETURN_TTL: INT = 0x0000_0080;
/// `AI_ALL`: query both IPv6 and IPv4 with `AI_V4MAPPED`.
pub const AI_ALL: INT = 0x0000_0100;
/// `AI_ADDRCONFIG`: resolve only if a global address is configured.
pub const AI_ADDRCONFIG: INT = 0x0000_0400;
/// `AI_V4MAPPED`: on IPv6 failure, return IPv4 results as v4-mapped.
pub const AI_V4MAPPED: INT = 0x0000_0800;
/// `AI_NON_AUTHORITATIVE`.
pub const AI_NON_AUTHORITATIVE: INT = 0x0000_4000;
/// `AI_SECURE`.
pub const AI_SECURE: INT = 0x0000_8000;
/// `AI_RETURN_PREFERRED_NAMES`.
pub const AI_RETURN_PREFERRED_NAMES: INT = 0x0001_0000;
/// `AI_FQDN`: return the FQDN in `ai_canonname`.
pub const AI_FQDN: INT = 0x0002_0000;
/// `AI_FILESERVER`: file-server name resolution.
pub const AI_FILESERVER: INT = 0x0004_0000;
/// `AI_DISABLE_IDN_ENCODING`: disable internationalized domain names.
pub const AI_DISABLE_IDN_ENCODING: INT = 0x0008_0000;
/// `AI_SECURE_WITH_FALLBACK`.
pub const AI_SECURE_WITH_FALLBACK: INT = 0x0010_0000;
/// `AI_EXCLUSIVE_CUSTOM_SERVERS`.
pub const AI_EXCLUSIVE_CUSTOM_SERVERS: INT = 0x0020_0000;
/// `AI_RETURN_RESPONSE_FLAGS`.
pub const AI_RETURN_RESPONSE_FLAGS: INT = 0x1000_0000;
/// `AI_REQUIRE_SECURE`.
pub const AI_REQUIRE_SECURE: INT = 0x2000_0000;
/// `AI_RESOLUTION_HANDLE`.
pub const AI_RESOLUTION_HANDLE: INT = 0x4000_0000;
/// `AI_EXTENDED`: `0x80000000`, the record is an extended `ADDRINFOEX2`+.
#[allow(clippy::cast_possible_wrap)]
pub const AI_EXTENDED: INT = 0x8000_0000_u32 as INT;

/// `ADDRINFOW` (`struct addrinfoW`): one `GetAddrInfoW` result.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-addrinfow>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ADDRINFOW {
    /// `ai_flags`: `AI_*`.
    pub ai_flags: INT,
    /// `ai_family`: `AF_*`.
    pub ai_family: INT,
    /// `ai_socktype`: `SOCK_*`.
    pub ai_socktype: INT,
    /// `ai_protocol`: `IPPROTO_*` or 0.
    pub ai_protocol: INT,
    /// `ai_addrlen`: length of `ai_addr`.
    pub ai_addrlen: SIZE_T,
    /// `ai_canonname`: canonical name.
    pub ai_canonname: PWSTR,
    /// `ai_addr`: the address.
    pub ai_addr: PSOCKADDR,
    /// `ai_next`: next result.
    pub ai_next: *mut ADDRINFOW,
}
/// `PADDRINFOW`: pointer to [`ADDRINFOW`].
pub type PADDRINFOW = *mut ADDRINFOW;

/// `ADDRINFOEXW` (`struct addrinfoexW`): one `WskGetAddressInfo` result, also
/// its `Hints` input.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-addrinfoexw>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ADDRINFOEXW {
    /// `ai_flags`: `AI_*`.
    pub ai_flags: INT,
    /// `ai_family`: `AF_*`.
    pub ai_family: INT,
    /// `ai_socktype`: `SOCK_*`.
    pub ai_socktype: INT,
    /// `ai_protocol`: `IPPROTO_*` or 0.
    pub ai_protocol: INT,
    /// `ai_addrlen`: length of `ai_addr`.
    pub ai_addrlen: SIZE_T,
    /// `ai_canonname`: canonical name.
    pub ai_canonname: PWSTR,
    /// `ai_addr`: the address.
    pub ai_addr: PSOCKADDR,
    /// `ai_blob`: namespace-specific data.
    pub ai_blob: PVOID,
    /// `ai_bloblen`: length of `ai_blob`.
    pub ai_bloblen: SIZE_T,
    /// `ai_provider`: namespace provider GUID.
    pub ai_provider: PGUID,
    /// `ai_next`: next result.
    pub ai_next: *mut ADDRINFOEXW,
}
/// `PADDRINFOEXW`: pointer to [`ADDRINFOEXW`].
pub type PADDRINFOEXW = *mut ADDRINFOEXW;
/// `LPADDRINFOEXW`: pointer to [`ADDRINFOEXW`].
pub type LPADDRINFOEXW = *mut ADDRINFOEXW;

/// `NS_ALL`: all namespaces.
pub const NS_ALL: ULONG = 0;
/// `NS_SAP`.
pub const NS_SAP: ULONG = 1;
/// `NS_NDS`.
pub const NS_NDS: ULONG = 2;
/// `NS_PEER_BROWSE`.
pub const NS_PEER_BROWSE: ULONG = 3;
/// `NS_SLP`.
pub const NS_SLP: ULONG = 5;
/// `NS_DHCP`.
pub const NS_DHCP: ULONG = 6;
/// `NS_TCPIP_LOCAL`.
pub const NS_TCPIP_LOCAL: ULONG = 10;
/// `NS_TCPIP_HOSTS`.
pub const NS_TCPIP_HOSTS: ULONG = 11;
/// `NS_DNS`: the Domain Name System.
pub const NS_DNS: ULONG = 12;
/// `NS_NETBT`.
pub const NS_NETBT: ULONG = 13;
/// `NS_WINS`.
pub const NS_WINS: ULONG = 14;
/// `NS_NLA`: Network Location Awareness.
pub const NS_NLA: ULONG = 15;
/// `NS_BTH`: Bluetooth SDP.
pub const NS_BTH: ULONG = 16;
/// `NS_NBP`.
pub const NS_NBP: ULONG = 20;
/// `NS_MS`.
pub const NS_MS: ULONG = 30;
/// `NS_STDA`.
pub const NS_STDA: ULONG = 31;
/// `NS_NTDS`.
pub const NS_NTDS: ULONG = 32;
/// `NS_EMAIL`.
pub const NS_EMAIL: ULONG = 37;
/// `NS_PNRPNAME`.
pub const NS_PNRPNAME: ULONG = 38;
/// `NS_PNRPCLOUD`.
pub const NS_PNRPCLOUD: ULONG = 39;
/// `NS_X500`.
pub const NS_X500: ULONG = 40;
/// `NS_NIS`.
pub const NS_NIS: ULONG = 41;
/// `NS_NISPLUS`.
pub const NS_NISPLUS: ULONG = 42;
/// `NS_WRQ`.
pub const NS_WRQ: ULONG = 50;
/// `NS_NETDES`: Network Designers Limited.
pub const NS_NETDES: ULONG = 60;

/// `NI_NOFQDN`: only the node name for local hosts.
pub const NI_NOFQDN: ULONG = 0x01;
/// `NI_NUMERICHOST`: numeric form of the host address.
pub const NI_NUMERICHOST: ULONG = 0x02;
/// `NI_NAMEREQD`: fail if the host name is not found.
pub const NI_NAMEREQD: ULONG = 0x04;
/// `NI_NUMERICSERV`: numeric form of the service (port).
pub const NI_NUMERICSERV: ULONG = 0x08;
/// `NI_DGRAM`: the service is a datagram service.
pub const NI_DGRAM: ULONG = 0x10;
/// `NI_MAXHOST`: maximum size of a fully-qualified domain name.
pub const NI_MAXHOST: ULONG = 1025;
/// `NI_MAXSERV`: maximum size of a service name.
pub const NI_MAXSERV: ULONG = 32;

// ---------------------------------------------------------------------------
// IPv4/IPv6/TCP/UDP options (ws2ipdef.h)
// ---------------------------------------------------------------------------

/// `IFF_UP`: interface is up.
pub const IFF_UP: ULONG = 0x0000_0001;
/// `IFF_BROADCAST`: broadcast is supported.
pub const IFF_BROADCAST: ULONG = 0x0000_0002;
/// `IFF_LOOPBACK`: loopback interface.
pub const IFF_LOOPBACK: ULONG = 0x0000_0004;
/// `IFF_POINTTOPOINT`: point-to-point interface.
pub const IFF_POINTTOPOINT: ULONG = 0x0000_0008;
/// `IFF_MULTICAST`: multicast is supported.
pub const IFF_MULTICAST: ULONG = 0x0000_0010;

/// `PMTUD_STATE`: path MTU discovery state (a C `enum`).
pub type PMTUD_STATE = INT;
/// `IP_PMTUDISC_NOT_SET`.
pub const IP_PMTUDISC_NOT_SET: PMTUD_STATE = 0;
/// `IP_PMTUDISC_DO`.
pub const IP_PMTUDISC_DO: PMTUD_STATE = 1;
/// `IP_PMTUDISC_DONT`.
pub const IP_PMTUDISC_DONT: PMTUD_STATE = 2;
/// `IP_PMTUDISC_PROBE`.
pub const IP_PMTUDISC_PROBE: PMTUD_STATE = 3;
/// `IP_PMTUDISC_MAX`.
pub const IP_PMTUDISC_MAX: PMTUD_STATE = 4;

/// `IP_OPTIONS`: set/get IP options.
pub const IP_OPTIONS: ULONG = 1;
/// `IP_HDRINCL`: the IP header is included with data (raw sockets).
pub const IP_HDRINCL: ULONG = 2;
/// `IP_TOS`: type of service.
pub const IP_TOS: ULONG = 3;
/// `IP_TTL`: time to live.
pub const IP_TTL: ULONG = 4;
/// `IP_MULTICAST_IF`: multicast interface.
pub const IP_MULTICAST_IF: ULONG = 9;
/// `IP_MULTICAST_TTL`: multicast TTL.
pub const IP_MULTICAST_TTL: ULONG = 10;
/// `IP_MULTICAST_LOOP`: multicast loopback.
pub const IP_MULTICAST_LOOP: ULONG = 11;
/// `IP_ADD_MEMBERSHIP`: join a group ([`IP_MREQ`]).
pub const IP_ADD_MEMBERSHIP: ULONG = 12;
/// `IP_DROP_MEMBERSHIP`: leave a group ([`IP_MREQ`]).
pub const IP_DROP_MEMBERSHIP: ULONG = 13;
/// `IP_DONTFRAGMENT`: do not fragment datagrams.
pub const IP_DONTFRAGMENT: ULONG = 14;
/// `IP_ADD_SOURCE_MEMBERSHIP`: join a group/source ([`IP_MREQ_SOURCE`]).
pub const IP_ADD_SOURCE_MEMBERSHIP: ULONG = 15;
/// `IP_DROP_SOURCE_MEMBERSHIP`: leave a group/source.
pub const IP_DROP_SOURCE_MEMBERSHIP: ULONG = 16;
/// `IP_BLOCK_SOURCE`: block a group/source.
pub const IP_BLOCK_SOURCE: ULONG = 17;
/// `IP_UNBLOCK_SOURCE`: unblock a group/source.
pub const IP_UNBLOCK_SOURCE: ULONG = 18;
/// `IP_PKTINFO`: receive packet information ([`IN_PKTINFO`] control data).
pub const IP_PKTINFO: ULONG = 19;
/// `IP_HOPLIMIT`: receive the packet hop limit.
pub const IP_HOPLIMIT: ULONG = 21;
/// `IP_RECVTTL`: receive the packet TTL.
pub const IP_RECVTTL: ULONG = 21;
/// `IP_RECEIVE_BROADCAST`: allow/block broadcast reception.
pub const IP_RECEIVE_BROADCAST: ULONG = 22;
/// `IP_RECVIF`: receive the arrival interface.
pub const IP_RECVIF: ULONG = 24;
/// `IP_RECVDSTADDR`: receive the destination address.
pub const IP_RECVDSTADDR: ULONG = 25;
/// `IP_IFLIST`: enable/disable an interface list.
pub const IP_IFLIST: ULONG = 28;
/// `IP_ADD_IFLIST`: add an interface list entry.
pub const IP_ADD_IFLIST: ULONG = 29;
/// `IP_DEL_IFLIST`: delete an interface list entry.
pub const IP_DEL_IFLIST: ULONG = 30;
/// `IP_UNICAST_IF`: unicast interface.
pub const IP_UNICAST_IF: ULONG = 31;
/// `IP_RTHDR`: set/get the IPv6 routing header.
pub const IP_RTHDR: ULONG = 32;
/// `IP_GET_IFLIST`: get an interface list.
pub const IP_GET_IFLIST: ULONG = 33;
/// `IP_RECVRTHDR`: receive the routing header.
pub const IP_RECVRTHDR: ULONG = 38;
/// `IP_TCLASS`: packet traffic class.
pub const IP_TCLASS: ULONG = 39;
/// `IP_RECVTCLASS`: receive the traffic class.
pub const IP_RECVTCLASS: ULONG = 40;
/// `IP_RECVTOS`: receive the type of service.
pub const IP_RECVTOS: ULONG = 40;
/// `IP_ORIGINAL_ARRIVAL_IF`: original arrival interface index.
pub const IP_ORIGINAL_ARRIVAL_IF: ULONG = 47;
/// `IP_ECN`: ECN codepoint.
pub const IP_ECN: ULONG = 50;
/// `IP_RECVECN`: receive ECN codepoints.
pub const IP_RECVECN: ULONG = 50;
/// `IP_PKTINFO_EX`: receive extended packet information
/// ([`IN_PKTINFO_EX`]).
pub const IP_PKTINFO_EX: ULONG = 51;
/// `IP_WFP_REDIRECT_RECORDS`: WFP connection redirect records.
pub const IP_WFP_REDIRECT_RECORDS: ULONG = 60;
/// `IP_WFP_REDIRECT_CONTEXT`: WFP connection redirect context.
pub const IP_WFP_REDIRECT_CONTEXT: ULONG = 70;
/// `IP_MTU_DISCOVER`: set/get the path MTU discovery state
/// ([`PMTUD_STATE`]).
pub const IP_MTU_DISCOVER: ULONG = 71;
/// `IP_MTU`: get the path MTU.
pub const IP_MTU: ULONG = 73;
/// `IP_NRT_INTERFACE`: set the NRT interface constraint.
pub const IP_NRT_INTERFACE: ULONG = 74;
/// `IP_RECVERR`: receive ICMP errors.
pub const IP_RECVERR: ULONG = 75;
/// `IP_USER_MTU`: application upper bound of the IP-layer MTU.
pub const IP_USER_MTU: ULONG = 76;
/// `IP_UNSPECIFIED_TYPE_OF_SERVICE`.
pub const IP_UNSPECIFIED_TYPE_OF_SERVICE: INT = -1;
/// `IP_UNSPECIFIED_USER_MTU`: `MAXULONG`.
pub const IP_UNSPECIFIED_USER_MTU: ULONG = ULONG::MAX;
/// `IP_UNSPECIFIED_HOP_LIMIT`.
pub const IP_UNSPECIFIED_HOP_LIMIT: INT = -1;

/// `IPV6_HOPOPTS`: set/get hop-by-hop options.
pub const IPV6_HOPOPTS: ULONG = 1;
/// `IPV6_HDRINCL`: the IPv6 header is included with data.
pub const IPV6_HDRINCL: ULONG = 2;
/// `IPV6_UNICAST_HOPS`: unicast hop limit.
pub const IPV6_UNICAST_HOPS: ULONG = 4;
/// `IPV6_MULTICAST_IF`: multicast interface.
pub const IPV6_MULTICAST_IF: ULONG = 9;
/// `IPV6_MULTICAST_HOPS`: multicast hop limit.
pub const IPV6_MULTICAST_HOPS: ULONG = 10;
/// `IPV6_MULTICAST_LOOP`: multicast loopback.
pub const IPV6_MULTICAST_LOOP: ULONG = 11;
/// `IPV6_ADD_MEMBERSHIP`: join a group ([`IPV6_MREQ`]).
pub const IPV6_ADD_MEMBERSHIP: ULONG = 12;
/// `IPV6_JOIN_GROUP`: same as [`IPV6_ADD_MEMBERSHIP`].
pub const IPV6_JOIN_GROUP: ULONG = IPV6_ADD_MEMBERSHIP;
/// `IPV6_DROP_MEMBERSHIP`: leave a group.
pub const IPV6_DROP_MEMBERSHIP: ULONG = 13;
/// `IPV6_LEAVE_GROUP`: same as [`IPV6_DROP_MEMBERSHIP`].
pub const IPV6_LEAVE_GROUP: ULONG = IPV6_DROP_MEMBERSHIP;
/// `IPV6_DONTFRAG`: do not fragment.
pub const IPV6_DONTFRAG: ULONG = 14;
/// `IPV6_PKTINFO`: receive packet information ([`IN6_PKTINFO`] control data).
pub const IPV6_PKTINFO: ULONG = 19;
/// `IPV6_HOPLIMIT`: receive the packet hop limit.
pub const IPV6_HOPLIMIT: ULONG = 21;
/// `IPV6_PROTECTION_LEVEL`: set/get the protection level.
pub const IPV6_PROTECTION_LEVEL: ULONG = 23;
/// `IPV6_RECVIF`: receive the arrival interface.
pub const IPV6_RECVIF: ULONG = 24;
/// `IPV6_RECVDSTADDR`: receive the destination address.
pub const IPV6_RECVDSTADDR: ULONG = 25;
/// `IPV6_CHECKSUM`: offset of the checksum for raw sends.
pub const IPV6_CHECKSUM: ULONG = 26;
/// `IPV6_V6ONLY`: a wildcard bind is IPv6-only (disable dual stack).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/network/ipv6-v6only>
pub const IPV6_V6ONLY: ULONG = 27;
/// `IPV6_IFLIST`: enable/disable an interface list.
pub const IPV6_IFLIST: ULONG = 28;
/// `IPV6_ADD_IFLIST`: add an interface list entry.
pub const IPV6_ADD_IFLIST: ULONG = 29;
/// `IPV6_DEL_IFLIST`: delete an interface list entry.
pub const IPV6_DEL_IFLIST: ULONG = 30;
/// `IPV6_UNICAST_IF`: unicast interface.
pub const IPV6_UNICAST_IF: ULONG = 31;
/// `IPV6_RTHDR`: set/get the routing header.
pub const IPV6_RTHDR: ULONG = 32;
/// `IPV6_GET_IFLIST`: get an interface list.
pub const IPV6_GET_IFLIST: ULONG = 33;
/// `IPV6_RECVRTHDR`: receive the routing header.
pub const IPV6_RECVRTHDR: ULONG = 38;
/// `IPV6_TCLASS`: packet traffic class.
pub const IPV6_TCLASS: ULONG = 39;
/// `IPV6_RECVTCLASS`: receive the traffic class.
pub const IPV6_RECVTCLASS: ULONG = 40;
/// `IPV6_ECN`: ECN codepoint.
pub const IPV6_ECN: ULONG = 50;
/// `IPV6_RECVECN`: receive ECN codepoints.
pub const IPV6_RECVECN: ULONG = 50;
/// `IPV6_PKTINFO_EX`: receive extended packet information
/// ([`IN6_PKTINFO_EX`]).
pub const IPV6_PKTINFO_EX: ULONG = 51;
/// `IPV6_WFP_REDIRECT_RECORDS`.
pub const IPV6_WFP_REDIRECT_RECORDS: ULONG = 60;
/// `IPV6_WFP_REDIRECT_CONTEXT`.
pub const IPV6_WFP_REDIRECT_CONTEXT: ULONG = 70;
/// `IPV6_MTU_DISCOVER`: set/get the path MTU discovery state.
pub const IPV6_MTU_DISCOVER: ULONG = 71;
/// `IPV6_MTU`: get the path MTU.
pub const IPV6_MTU: ULONG = 72;
/// `IPV6_NRT_INTERFACE`: set the NRT interface constraint.
pub const IPV6_NRT_INTERFACE: ULONG = 74;
/// `IPV6_RECVERR`: receive `ICMPv6` errors.
pub const IPV6_RECVERR: ULONG = 75;
/// `IPV6_USER_MTU`: application upper bound of the IP-layer MTU.
pub const IPV6_USER_MTU: ULONG = 76;
/// `IP_PROTECTION_LEVEL`: same as [`IPV6_PROTECTION_LEVEL`].
pub const IP_PROTECTION_LEVEL: ULONG = IPV6_PROTECTION_LEVEL;

/// `PROTECTION_LEVEL_UNRESTRICTED`: for peer-to-peer applications.
pub const PROTECTION_LEVEL_UNRESTRICTED: UINT = 10;
/// `PROTECTION_LEVEL_EDGERESTRICTED`.
pub const PROTECTION_LEVEL_EDGERESTRICTED: UINT = 20;
/// `PROTECTION_LEVEL_RESTRICTED`: for intranet applications.
pub const PROTECTION_LEVEL_RESTRICTED: UINT = 30;
/// `PROTECTION_LEVEL_DEFAULT` (Vista and later): `(UINT)-1`.
pub const PROTECTION_LEVEL_DEFAULT: UINT = UINT::MAX;

/// `MCAST_JOIN_GROUP`: join all sources of a group ([`GROUP_REQ`]).
pub const MCAST_JOIN_GROUP: ULONG = 41;
/// `MCAST_LEAVE_GROUP`: drop all sources of a group.
pub const MCAST_LEAVE_GROUP: ULONG = 42;
/// `MCAST_BLOCK_SOURCE`: block a group/source ([`GROUP_SOURCE_REQ`]).
pub const MCAST_BLOCK_SOURCE: ULONG = 43;
/// `MCAST_UNBLOCK_SOURCE`: unblock a group/source.
pub const MCAST_UNBLOCK_SOURCE: ULONG = 44;
/// `MCAST_JOIN_SOURCE_GROUP`: join a group/source.
pub const MCAST_JOIN_SOURCE_GROUP: ULONG = 45;
/// `MCAST_LEAVE_SOURCE_GROUP`: leave a group/source.
pub const MCAST_LEAVE_SOURCE_GROUP: ULONG = 46;

/// `MULTICAST_MODE_TYPE` (a C `enum`).
pub type MULTICAST_MODE_TYPE = INT;
/// `MCAST_INCLUDE`.
pub const MCAST_INCLUDE: MULTICAST_MODE_TYPE = 0;
/// `MCAST_EXCLUDE`.
pub const MCAST_EXCLUDE: MULTICAST_MODE_TYPE = 1;

/// `TCP_OFFLOAD_NO_PREFERENCE`.
pub const TCP_OFFLOAD_NO_PREFERENCE: ULONG = 0;
/// `TCP_OFFLOAD_NOT_PREFERRED`.
pub const TCP_OFFLOAD_NOT_PREFERRED: ULONG = 1;
/// `TCP_OFFLOAD_PREFERRED`.
pub const TCP_OFFLOAD_PREFERRED: ULONG = 2;

/// `TCP_EXPEDITED_1122`.
pub const TCP_EXPEDITED_1122: ULONG = 0x0002;
/// `TCP_KEEPALIVE`: seconds of idle time before keep-alive probes.
pub const TCP_KEEPALIVE: ULONG = 3;
/// `TCP_MAXSEG`: maximum segment size.
pub const TCP_MAXSEG: ULONG = 4;
/// `TCP_MAXRT`: maximum retransmission time, seconds.
pub const TCP_MAXRT: ULONG = 5;
/// `TCP_STDURG`: RFC 1122 urgent pointer semantics.
pub const TCP_STDURG: ULONG = 6;
/// `TCP_NOURG`.
pub const TCP_NOURG: ULONG = 7;
/// `TCP_ATMARK`.
pub const TCP_ATMARK: ULONG = 8;
/// `TCP_NOSYNRETRIES`.
pub const TCP_NOSYNRETRIES: ULONG = 9;
/// `TCP_TIMESTAMPS`.
pub const TCP_TIMESTAMPS: ULONG = 10;
/// `TCP_OFFLOAD_PREFERENCE`.
pub const TCP_OFFLOAD_PREFERENCE: ULONG = 11;
/// `TCP_CONGESTION_ALGORITHM`.
pub const TCP_CONGESTION_ALGORITHM: ULONG = 12;
/// `TCP_DELAY_FIN_ACK`.
pub const TCP_DELAY_FIN_ACK: ULONG = 13;
/// `TCP_MAXRTMS`: maximum retransmission time, milliseconds.
pub const TCP_MAXRTMS: ULONG = 14;
/// `TCP_FASTOPEN`.
pub const TCP_FASTOPEN: ULONG = 15;
/// `TCP_KEEPCNT`: number of keep-alive probes.
pub const TCP_KEEPCNT: ULONG = 16;
/// `TCP_KEEPIDLE`: same as [`TCP_KEEPALIVE`].
pub const TCP_KEEPIDLE: ULONG = TCP_KEEPALIVE;
/// `TCP_KEEPINTVL`: seconds between keep-alive probes.
pub const TCP_KEEPINTVL: ULONG = 17;
/// `TCP_FAIL_CONNECT_ON_ICMP_ERROR`.
pub const TCP_FAIL_CONNECT_ON_ICMP_ERROR: ULONG = 18;
/// `TCP_ICMP_ERROR_INFO`: get [`ICMP_ERROR_INFO`].
pub const TCP_ICMP_ERROR_INFO: ULONG = 19;

/// `UDP_SEND_MSG_SIZE` (level `IPPROTO_UDP`).
pub const UDP_SEND_MSG_SIZE: ULONG = 2;
/// `UDP_RECV_MAX_COALESCED_SIZE` (level `IPPROTO_UDP`).
pub const UDP_RECV_MAX_COALESCED_SIZE: ULONG = 3;
/// `UDP_COALESCED_INFO` (control message type).
pub const UDP_COALESCED_INFO: ULONG = 3;

/// `IP_MREQ` (`struct ip_mreq`): IPv4 multicast group membership request.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-ip_mreq>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IP_MREQ {
    /// `imr_multiaddr`: group address.
    pub imr_multiaddr: IN_ADDR,
    /// `imr_interface`: local interface address.
    pub imr_interface: IN_ADDR,
}
/// `PIP_MREQ`: pointer to [`IP_MREQ`].
pub type PIP_MREQ = *mut IP_MREQ;

/// `IP_MREQ_SOURCE` (`struct ip_mreq_source`): IPv4 group/source request.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-ip_mreq_source>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IP_MREQ_SOURCE {
    /// `imr_multiaddr`: group address.
    pub imr_multiaddr: IN_ADDR,
    /// `imr_sourceaddr`: source address.
    pub imr_sourceaddr: IN_ADDR,
    /// `imr_interface`: local interface address.
    pub imr_interface: IN_ADDR,
}
/// `PIP_MREQ_SOURCE`: pointer to [`IP_MREQ_SOURCE`].
pub type PIP_MREQ_SOURCE = *mut IP_MREQ_SOURCE;

/// `IPV6_MREQ` (`struct ipv6_mreq`): IPv6 multicast group membership request.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-ipv6_mreq>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IPV6_MREQ {
    /// `ipv6mr_multiaddr`: group address.
    pub ipv6mr_multiaddr: IN6_ADDR,
    /// `ipv6mr_interface`: interface index.
    pub ipv6mr_interface: ULONG,
}
/// `PIPV6_MREQ`: pointer to [`IPV6_MREQ`].
pub type PIPV6_MREQ = *mut IPV6_MREQ;

/// `GROUP_REQ` (`struct group_req`): protocol-independent group request.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-group_req>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GROUP_REQ {
    /// `gr_interface`: interface index.
    pub gr_interface: ULONG,
    /// `gr_group`: group address.
    pub gr_group: SOCKADDR_STORAGE,
}
/// `PGROUP_REQ`: pointer to [`GROUP_REQ`].
pub type PGROUP_REQ = *mut GROUP_REQ;

/// `GROUP_SOURCE_REQ` (`struct group_source_req`): protocol-independent
/// group/source request.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-group_source_req>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GROUP_SOURCE_REQ {
    /// `gsr_interface`: interface index.
    pub gsr_interface: ULONG,
    /// `gsr_group`: group address.
    pub gsr_group: SOCKADDR_STORAGE,
    /// `gsr_source`: source address.
    pub gsr_source: SOCKADDR_STORAGE,
}
/// `PGROUP_SOURCE_REQ`: pointer to [`GROUP_SOURCE_REQ`].
pub type PGROUP_SOURCE_REQ = *mut GROUP_SOURCE_REQ;

/// `IN_PKTINFO` (`struct in_pktinfo`): [`IP_PKTINFO`] control data.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-in_pktinfo>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IN_PKTINFO {
    /// `ipi_addr`: source/destination IPv4 address.
    pub ipi_addr: IN_ADDR,
    /// `ipi_ifindex`: send/receive interface index.
    pub ipi_ifindex: ULONG,
}
/// `PIN_PKTINFO`: pointer to [`IN_PKTINFO`].
pub type PIN_PKTINFO = *mut IN_PKTINFO;

/// `IN6_PKTINFO` (`struct in6_pktinfo`): [`IPV6_PKTINFO`] control data.
///
/// <https://learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-in6_pktinfo>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IN6_PKTINFO {
    /// `ipi6_addr`: source/destination IPv6 address.
    pub ipi6_addr: IN6_ADDR,
    /// `ipi6_ifindex`: send/receive interface index.
    pub ipi6_ifindex: ULONG,
}
/// `PIN6_PKTINFO`: pointer to [`IN6_PKTINFO`].
pub type PIN6_PKTINFO = *mut IN6_PKTINFO;

/// `IN_PKTINFO_EX` (`struct in_pktinfo_ex`): [`IP_PKTINFO_EX`] control data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IN_PKTINFO_EX {
    /// `pkt_info`.
    pub pkt_info: IN_PKTINFO,
    /// `scope_id`.
    pub scope_id: SCOPE_ID,
}
/// `PIN_PKTINFO_EX`: pointer to [`IN_PKTINFO_EX`].
pub type PIN_PKTINFO_EX = *mut IN_PKTINFO_EX;

/// `IN6_PKTINFO_EX` (`struct in6_pktinfo_ex`): [`IPV6_PKTINFO_EX`] control
/// data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IN6_PKTINFO_EX {
    /// `pkt_info`.
    pub pkt_info: IN6_PKTINFO,
    /// `scope_id`.
    pub scope_id: SCOPE_ID,
}
/// `PIN6_PKTINFO_EX`: pointer to [`IN6_PKTINFO_EX`].
pub type PIN6_PKTINFO_EX = *mut IN6_PKTINFO_EX;

/// `IN_RECVERR` (`struct in_recverr`): [`IP_RECVERR`] control data.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IN_RECVERR {
    /// `protocol`: [`IPPROTO_ICMP`] or [`IPPROTO_ICMPV6`].
    pub protocol: IPPROTO,
    /// `info`: MTU for "fragmentation needed"/"packet too big".
    pub info: ULONG,
    /// `type`: ICMP type.
    pub r#type: UCHAR,
    /// `code`: ICMP code.
    pub code: UCHAR,
}
/// `PIN_RECVERR`: pointer to [`IN_RECVERR`].
pub type PIN_RECVERR = *mut IN_RECVERR;

/// `ICMP_ERROR_INFO` (`struct icmp_error_info`): output of
/// [`TCP_ICMP_ERROR_INFO`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ICMP_ERROR_INFO {
    /// `srcaddress`: the address that sent the ICMP error.
    pub srcaddress: SOCKADDR_INET,
    /// `protocol`: [`IPPROTO_ICMP`] or [`IPPROTO_ICMPV6`].
    pub protocol: IPPROTO,
    /// `type`: ICMP type.
    pub r#type: UCHAR,
    /// `code`: ICMP code.
    pub code: UCHAR,
}
/// `PICMP_ERROR_INFO`: pointer to [`ICMP_ERROR_INFO`].
pub type PICMP_ERROR_INFO = *mut ICMP_ERROR_INFO;

/// `LINGER` (`struct linger`, `winsock2.h`): value of [`SO_LINGER`].
///
/// <https://learn.microsoft.com/windows/win32/api/winsock/ns-winsock-linger>
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LINGER {
    /// `l_onoff`: nonzero to linger.
    pub l_onoff: USHORT,
    /// `l_linger`: linger time in seconds.
    pub l_linger: USHORT,
}
/// `PLINGER`: pointer to [`LINGER`].
pub type PLINGER = *mut LINGER;

// ---------------------------------------------------------------------------
// Layout checks: 64-bit Windows (LLP64), numbers derived from the C headers.
// ---------------------------------------------------------------------------

#[cfg(target_pointer_width = "64")]
mod layout {
    #[allow(clippy::wildcard_imports)]
    use super::*;
    use core::mem::{align_of, offset_of, size_of};
    use static_assertions::const_assert_eq;

    const_assert_eq!(size_of::<SOCKADDR>(), 16);
    const_assert_eq!(align_of::<SOCKADDR>(), 2);
    const_assert_eq!(offset_of!(SOCKADDR, sa_data), 2);

    const_assert_eq!(size_of::<SOCKET_ADDRESS>(), 16);
    const_assert_eq!(offset_of!(SOCKET_ADDRESS, iSockaddrLength), 8);
    const_assert_eq!(size_of::<SOCKET_ADDRESS_LIST>(), 24);
    const_assert_eq!(offset_of!(SOCKET_ADDRESS_LIST, Address), 8);
    const_assert_eq!(size_of::<CSADDR_INFO>(), 40);
    const_assert_eq!(offset_of!(CSADDR_INFO, RemoteAddr), 16);
    const_assert_eq!(offset_of!(CSADDR_INFO, iSocketType), 32);
    const_assert_eq!(offset_of!(CSADDR_INFO, iProtocol), 36);

    const_assert_eq!(size_of::<SOCKADDR_STORAGE>(), 128);
    const_assert_eq!(align_of::<SOCKADDR_STORAGE>(), 8);
    const_assert_eq!(offset_of!(SOCKADDR_STORAGE, __ss_pad1), 2);
    const_assert_eq!(offset_of!(SOCKADDR_STORAGE, __ss_align), 8);
    const_assert_eq!(offset_of!(SOCKADDR_STORAGE, __ss_pad2), 16);

    const_assert_eq!(size_of::<IN_ADDR>(), 4);
    const_assert_eq!(align_of::<IN_ADDR>(), 4);
    const_assert_eq!(size_of::<IN6_ADDR>(), 16);
    const_assert_eq!(align_of::<IN6_ADDR>(), 2);
    const_assert_eq!(size_of::<SCOPE_ID>(), 4);

    const_assert_eq!(size_of::<SOCKADDR_IN>(), 16);
    const_assert_eq!(align_of::<SOCKADDR_IN>(), 4);
    const_assert_eq!(offset_of!(SOCKADDR_IN, sin_port), 2);
    const_assert_eq!(offset_of!(SOCKADDR_IN, sin_addr), 4);
    const_assert_eq!(offset_of!(SOCKADDR_IN, sin_zero), 8);

    const_assert_eq!(size_of::<SOCKADDR_DL>(), 14);
    const_assert_eq!(offset_of!(SOCKADDR_DL, sdl_data), 2);
    const_assert_eq!(offset_of!(SOCKADDR_DL, sdl_zero), 10);

    const_assert_eq!(size_of::<SOCKADDR_IN6>(), 28);
    const_assert_eq!(align_of::<SOCKADDR_IN6>(), 4);
    const_assert_eq!(offset_of!(SOCKADDR_IN6, sin6_port), 2);
    const_assert_eq!(offset_of!(SOCKADDR_IN6, sin6_flowinfo), 4);
    const_assert_eq!(offset_of!(SOCKADDR_IN6, sin6_addr), 8);
    const_assert_eq!(offset_of!(SOCKADDR_IN6, sin6_scope_id), 24);

    const_assert_eq!(size_of::<SOCKADDR_INET>(), 28);
    const_assert_eq!(align_of::<SOCKADDR_INET>(), 4);
    const_assert_eq!(size_of::<SOCKADDR_IN6_PAIR>(), 16);

    const_assert_eq!(size_of::<WSABUF>(), 16);
    const_assert_eq!(offset_of!(WSABUF, buf), 8);
    const_assert_eq!(size_of::<WSAMSG>(), 56);
    const_assert_eq!(offset_of!(WSAMSG, namelen), 8);
    const_assert_eq!(offset_of!(WSAMSG, lpBuffers), 16);
    const_assert_eq!(offset_of!(WSAMSG, dwBufferCount), 24);
    const_assert_eq!(offset_of!(WSAMSG, Control), 32);
    const_assert_eq!(offset_of!(WSAMSG, dwFlags), 48);

    const_assert_eq!(size_of::<WSACMSGHDR>(), 16);
    const_assert_eq!(align_of::<WSACMSGHDR>(), 8);
    const_assert_eq!(offset_of!(WSACMSGHDR, cmsg_level), 8);
    const_assert_eq!(offset_of!(WSACMSGHDR, cmsg_type), 12);
    // CMSG arithmetic for 64-bit: header 16 bytes, 8-byte alignment.
    const_assert_eq!(WSA_CMSG_LEN(4), 20);
    const_assert_eq!(WSA_CMSG_SPACE(4), 24);
    const_assert_eq!(WSA_CMSG_SPACE(20), 40);
    const_assert_eq!(WSA_CMSGHDR_ALIGN(17), 24);

    const_assert_eq!(size_of::<ADDRINFOW>(), 48);
    const_assert_eq!(offset_of!(ADDRINFOW, ai_addrlen), 16);
    const_assert_eq!(offset_of!(ADDRINFOW, ai_canonname), 24);
    const_assert_eq!(offset_of!(ADDRINFOW, ai_addr), 32);
    const_assert_eq!(offset_of!(ADDRINFOW, ai_next), 40);

    const_assert_eq!(size_of::<ADDRINFOEXW>(), 72);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_family), 4);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_socktype), 8);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_protocol), 12);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_addrlen), 16);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_canonname), 24);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_addr), 32);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_blob), 40);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_bloblen), 48);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_provider), 56);
    const_assert_eq!(offset_of!(ADDRINFOEXW, ai_next), 64);

    const_assert_eq!(size_of::<WSA_COMPATIBILITY_MODE>(), 8);
    const_assert_eq!(size_of::<IP_MREQ>(), 8);
    const_assert_eq!(size_of::<IP_MREQ_SOURCE>(), 12);
    const_assert_eq!(size_of::<IPV6_MREQ>(), 20);
    const_assert_eq!(offset_of!(IPV6_MREQ, ipv6mr_interface), 16);
    const_assert_eq!(size_of::<GROUP_REQ>(), 136);
    const_assert_eq!(offset_of!(GROUP_REQ, gr_group), 8);
    const_assert_eq!(size_of::<GROUP_SOURCE_REQ>(), 264);
    const_assert_eq!(offset_of!(GROUP_SOURCE_REQ, gsr_source), 136);
    // These four sizes are also C_ASSERTs in ws2ipdef.h.
    const_assert_eq!(size_of::<IN_PKTINFO>(), 8);
    const_assert_eq!(size_of::<IN6_PKTINFO>(), 20);
    const_assert_eq!(size_of::<IN_PKTINFO_EX>(), 12);
    const_assert_eq!(size_of::<IN6_PKTINFO_EX>(), 24);
    const_assert_eq!(size_of::<IN_RECVERR>(), 12);
    const_assert_eq!(offset_of!(IN_RECVERR, r#type), 8);
    const_assert_eq!(offset_of!(IN_RECVERR, code), 9);
    const_assert_eq!(size_of::<ICMP_ERROR_INFO>(), 36);
    const_assert_eq!(offset_of!(ICMP_ERROR_INFO, protocol), 28);
    const_assert_eq!(offset_of!(ICMP_ERROR_INFO, r#type), 32);
    const_assert_eq!(size_of::<LINGER>(), 4);
    const_assert_eq!(offset_of!(LINGER, l_linger), 2);

    // Control codes computed by hand from the macros.
    const_assert_eq!(IOC_WSK, 0x0F00_0000);
    const_assert_eq!(SO_EXCLUSIVEADDRUSE, 0xFFFF_FFFB);
    const_assert_eq!(SO_DONTLINGER, 0xFFFF_FF7F);
    const_assert_eq!(SIO_ADDRESS_LIST_QUERY, 0x4800_0016);
    const_assert_eq!(SIO_ADDRESS_LIST_CHANGE, 0x2800_0017);
    const_assert_eq!(SIO_ROUTING_INTERFACE_QUERY, 0xC800_0014);
    const_assert_eq!(SIO_IDEAL_SEND_BACKLOG_QUERY, 0x4004_747B);
    const_assert_eq!(SIO_IDEAL_SEND_BACKLOG_CHANGE, 0x2000_747A);
    const_assert_eq!(SIO_SET_COMPATIBILITY_MODE, 0x9800_012C);
}
