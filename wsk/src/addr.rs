//! Socket addresses: `core::net::SocketAddr` ↔ `SOCKADDR_IN`/`SOCKADDR_IN6`,
//! and the address families sockets are created for.
//!
//! WSK passes addresses as `PSOCKADDR` pointing at a family-specific
//! structure. [`SockAddr`] is a `SOCKADDR_STORAGE` that holds one, built from
//! and converted back to the standard library's address types; it never
//! appears in the public API, which speaks `core::net::SocketAddr`.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use wsk_sys as sys;

use crate::error::{Error, Result};

/// The address family a socket is created for (`AF_INET`, `AF_INET6`).
///
/// ```
/// use wsk::AddressFamily;
/// let remote: core::net::SocketAddr = "[::1]:7".parse().unwrap();
/// assert_eq!(AddressFamily::of(&remote), AddressFamily::V6);
/// assert_eq!(AddressFamily::V4.unspecified(), "0.0.0.0:0".parse().unwrap());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl AddressFamily {
    /// The family of `addr`.
    #[must_use]
    pub const fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::V4,
            SocketAddr::V6(_) => Self::V6,
        }
    }

    /// The wildcard address of the family with port 0 (`0.0.0.0:0` or
    /// `[::]:0`): binding to it lets the stack choose the address and port,
    /// as a client socket does before it connects.
    #[must_use]
    pub const fn unspecified(self) -> SocketAddr {
        match self {
            Self::V4 => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            Self::V6 => SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)),
        }
    }

    /// The family of a raw `ADDRESS_FAMILY`, if it is IPv4 or IPv6.
    pub(crate) const fn from_raw(family: sys::ADDRESS_FAMILY) -> Option<Self> {
        match family {
            sys::AF_INET => Some(Self::V4),
            sys::AF_INET6 => Some(Self::V6),
            _ => None,
        }
    }

    /// The raw `ADDRESS_FAMILY`.
    pub(crate) const fn raw(self) -> sys::ADDRESS_FAMILY {
        match self {
            Self::V4 => sys::AF_INET,
            Self::V6 => sys::AF_INET6,
        }
    }
}

/// A socket address in the layout WSK reads and writes (`SOCKADDR_STORAGE`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct SockAddr(sys::SOCKADDR_STORAGE);

impl SockAddr {
    /// An empty address (`AF_UNSPEC`), for the provider to fill in.
    pub(crate) const UNSPECIFIED: Self = Self(sys::SOCKADDR_STORAGE::ZEROED);

    /// The address family (`AF_INET`, `AF_INET6`, …).
    pub(crate) fn family(&self) -> sys::ADDRESS_FAMILY {
        self.0.ss_family
    }

    /// The length of the structure the address occupies (`SOCKADDR_IN` or
    /// `SOCKADDR_IN6`; 0 for none).
    pub(crate) fn len(&self) -> usize {
        match AddressFamily::from_raw(self.family()) {
            Some(AddressFamily::V4) => size_of::<sys::SOCKADDR_IN>(),
            Some(AddressFamily::V6) => size_of::<sys::SOCKADDR_IN6>(),
            None => 0,
        }
    }

    /// A pointer for WSK routines that read the address.
    pub(crate) fn as_ptr(&self) -> sys::PSOCKADDR {
        core::ptr::from_ref(&self.0).cast_mut().cast()
    }

    /// A pointer for WSK routines that write an address.
    pub(crate) fn as_mut_ptr(&mut self) -> sys::PSOCKADDR {
        core::ptr::from_mut(&mut self.0).cast()
    }

    /// Converts to a standard socket address.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS_COMPONENT`] for a family other than `AF_INET`
    /// and `AF_INET6` (including an unfilled `AF_UNSPEC`).
    pub(crate) fn to_socket_addr(self) -> Result<SocketAddr> {
        // SAFETY: the storage is 128 readable bytes, enough for either family.
        unsafe { from_raw(self.as_ptr()) }
    }

    /// Copies an address the provider passed to a callback.
    ///
    /// # Safety
    ///
    /// `raw` is null or points to a readable socket address whose size matches
    /// its family.
    pub(crate) unsafe fn copy_from_raw(raw: *const sys::SOCKADDR) -> Result<SocketAddr> {
        if raw.is_null() {
            return Err(Error::INVALID_ADDRESS);
        }
        // SAFETY: forwarded caller contract.
        unsafe { from_raw(raw) }
    }
}

/// Reads a `SOCKADDR_IN` or `SOCKADDR_IN6`.
///
/// # Safety
///
/// `raw` points to a readable socket address whose size matches its family.
unsafe fn from_raw(raw: *const sys::SOCKADDR) -> Result<SocketAddr> {
    // SAFETY: every socket address starts with its family.
    let family = unsafe { raw.cast::<sys::ADDRESS_FAMILY>().read_unaligned() };
    match family {
        sys::AF_INET => {
            // SAFETY: family AF_INET means the caller's buffer holds a SOCKADDR_IN.
            let v4 = unsafe { raw.cast::<sys::SOCKADDR_IN>().read_unaligned() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(v4.sin_addr.octets()),
                u16::from_be(v4.sin_port),
            )))
        }
        sys::AF_INET6 => {
            // SAFETY: family AF_INET6 means the caller's buffer holds a SOCKADDR_IN6.
            let v6 = unsafe { raw.cast::<sys::SOCKADDR_IN6>().read_unaligned() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.bytes()),
                u16::from_be(v6.sin6_port),
                u32::from_be(v6.sin6_flowinfo),
                v6.sin6_scope_id,
            )))
        }
        _ => Err(Error::INVALID_ADDRESS_COMPONENT),
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> Self {
        let mut storage = sys::SOCKADDR_STORAGE::ZEROED;
        let dst = core::ptr::from_mut(&mut storage);
        match addr {
            SocketAddr::V4(v4) => {
                let raw = sys::SOCKADDR_IN {
                    sin_family: sys::AF_INET,
                    sin_port: v4.port().to_be(),
                    sin_addr: sys::IN_ADDR::from_octets(v4.ip().octets()),
                    sin_zero: [0; 8],
                };
                // SAFETY: SOCKADDR_STORAGE is larger than and as aligned as SOCKADDR_IN.
                unsafe { dst.cast::<sys::SOCKADDR_IN>().write(raw) };
            }
            SocketAddr::V6(v6) => {
                let raw = sys::SOCKADDR_IN6 {
                    sin6_family: sys::AF_INET6,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo().to_be(),
                    sin6_addr: sys::IN6_ADDR::from_bytes(v6.ip().octets()),
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: SOCKADDR_STORAGE is larger than and as aligned as SOCKADDR_IN6.
                unsafe { dst.cast::<sys::SOCKADDR_IN6>().write(raw) };
            }
        }
        Self(storage)
    }
}

impl core::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.to_socket_addr() {
            Ok(a) => write!(f, "SockAddr({a})"),
            Err(_) => write!(f, "SockAddr(family {})", self.family()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v4_and_v6() {
        for text in ["10.1.2.3:80", "[::1]:7007", "[fe80::1%3]:9"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(SockAddr::from(addr).to_socket_addr(), Ok(addr), "{text}");
        }
    }

    #[test]
    fn v4_layout_is_network_order() {
        let raw = SockAddr::from("1.2.3.4:258".parse::<SocketAddr>().unwrap());
        // SAFETY: SOCKADDR_STORAGE is 128 bytes.
        let bytes: [u8; 8] = unsafe { raw.as_ptr().cast::<[u8; 8]>().read() };
        assert_eq!(bytes, [2, 0, 1, 2, 1, 2, 3, 4]);
    }

    #[test]
    fn families_and_wildcards() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[fe80::1]:80".parse().unwrap();
        assert_eq!(AddressFamily::of(&v4).raw(), sys::AF_INET);
        assert_eq!(AddressFamily::of(&v6).raw(), sys::AF_INET6);
        assert_eq!(
            AddressFamily::from_raw(sys::AF_INET6),
            Some(AddressFamily::V6)
        );
        assert_eq!(AddressFamily::from_raw(sys::AF_UNSPEC), None);
        assert_eq!(AddressFamily::V6.unspecified(), "[::]:0".parse().unwrap());
        assert_eq!(SockAddr::from(v4).len(), size_of::<sys::SOCKADDR_IN>());
        assert_eq!(SockAddr::UNSPECIFIED.len(), 0);
    }

    #[test]
    fn unspecified_family_is_a_clear_error() {
        assert_eq!(
            SockAddr::UNSPECIFIED.to_socket_addr(),
            Err(Error::INVALID_ADDRESS_COMPONENT)
        );
        // SAFETY: null is allowed.
        let from_null = unsafe { SockAddr::copy_from_raw(core::ptr::null()) };
        assert_eq!(from_null, Err(Error::INVALID_ADDRESS));
    }
}
