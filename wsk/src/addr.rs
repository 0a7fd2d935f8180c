//! Socket addresses: `core::net::SocketAddr` ↔ `SOCKADDR_IN`/`SOCKADDR_IN6`.
//!
//! WSK passes addresses as `PSOCKADDR` pointing at a family-specific
//! structure. [`SockAddr`] is a `SOCKADDR_STORAGE` that holds one, built from
//! and converted back to the standard library's address types.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use wsk_sys as sys;

use crate::{Error, Result};

/// A socket address in the layout WSK reads and writes (`SOCKADDR_STORAGE`).
///
/// ```
/// use wsk::SockAddr;
/// let addr: core::net::SocketAddr = "127.0.0.1:7007".parse().unwrap();
/// let raw = SockAddr::from(addr);
/// assert_eq!(raw.family(), wsk_sys::AF_INET);
/// assert_eq!(raw.to_socket_addr(), Ok(addr));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct SockAddr(sys::SOCKADDR_STORAGE);

impl SockAddr {
    /// An empty address (`AF_UNSPEC`), for the provider to fill in.
    pub const UNSPECIFIED: Self = Self(sys::SOCKADDR_STORAGE::ZEROED);

    /// The address family (`AF_INET`, `AF_INET6`, …).
    #[must_use]
    pub fn family(&self) -> sys::ADDRESS_FAMILY {
        self.0.ss_family
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
    pub fn to_socket_addr(&self) -> Result<SocketAddr> {
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

/// The wildcard address (`0.0.0.0:0` or `[::]:0`) of `addr`'s family: what a
/// client socket binds to before connecting to `addr`.
pub(crate) fn wildcard_for(addr: &SocketAddr) -> SocketAddr {
    if addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    }
}

/// The address family of `addr` (`AF_INET` or `AF_INET6`).
pub(crate) fn family_of(addr: &SocketAddr) -> sys::ADDRESS_FAMILY {
    if addr.is_ipv4() {
        sys::AF_INET
    } else {
        sys::AF_INET6
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
