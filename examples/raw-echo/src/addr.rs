//! `core::net::SocketAddr` to and from the `SOCKADDR_IN`/`SOCKADDR_IN6`
//! the provider takes and returns (port and address in network byte order,
//! <https://learn.microsoft.com/windows/win32/api/ws2def/ns-ws2def-sockaddr_in>).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use wsk_sys as sys;

/// `address` as a `SOCKADDR_INET` (the `SOCKADDR_IN` or `SOCKADDR_IN6` view
/// filled in).
pub(crate) fn to_sockaddr(address: SocketAddr) -> sys::SOCKADDR_INET {
    match address {
        SocketAddr::V4(a) => sys::SOCKADDR_INET {
            Ipv4: sys::SOCKADDR_IN {
                sin_family: sys::AF_INET,
                sin_port: a.port().to_be(),
                sin_addr: sys::IN_ADDR::from_octets(a.ip().octets()),
                sin_zero: [0; 8],
            },
        },
        SocketAddr::V6(a) => sys::SOCKADDR_INET {
            Ipv6: sys::SOCKADDR_IN6 {
                sin6_family: sys::AF_INET6,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: sys::IN6_ADDR::from_bytes(a.ip().octets()),
                sin6_scope_id: a.scope_id(),
            },
        },
    }
}

/// The address the provider wrote into `storage`; `None` for a family
/// other than `AF_INET` and `AF_INET6`.
pub(crate) fn from_storage(storage: &sys::SOCKADDR_STORAGE) -> Option<SocketAddr> {
    let at = core::ptr::from_ref(storage);
    match storage.ss_family {
        sys::AF_INET => {
            // SAFETY: the storage is 128 bytes, 8-aligned, so it holds a
            // SOCKADDR_IN (16 bytes, 4-aligned) at its start, and any bit
            // pattern is a valid SOCKADDR_IN (integers only).
            let a = unsafe { at.cast::<sys::SOCKADDR_IN>().read() };
            let ip = Ipv4Addr::from(a.sin_addr.octets());
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
        }
        sys::AF_INET6 => {
            // SAFETY: as above for SOCKADDR_IN6 (28 bytes, 4-aligned).
            let a = unsafe { at.cast::<sys::SOCKADDR_IN6>().read() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.bytes()),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The address family of `address`.
pub(crate) fn family(address: &SocketAddr) -> sys::ADDRESS_FAMILY {
    if address.is_ipv4() {
        sys::AF_INET
    } else {
        sys::AF_INET6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_storage() {
        for text in ["127.0.0.1:7007", "[fd00::1]:443"] {
            let address: SocketAddr = text.parse().unwrap();
            let inet = to_sockaddr(address);
            let mut storage = sys::SOCKADDR_STORAGE::ZEROED;
            // SAFETY: SOCKADDR_INET (28 bytes) fits in the 128-byte storage.
            unsafe {
                core::ptr::from_mut(&mut storage)
                    .cast::<sys::SOCKADDR_INET>()
                    .write(inet);
            };
            assert_eq!(from_storage(&storage), Some(address));
        }
        assert_eq!(from_storage(&sys::SOCKADDR_STORAGE::ZEROED), None);
    }

    #[test]
    fn network_byte_order() {
        let inet = to_sockaddr("10.0.0.1:7007".parse().unwrap());
        // SAFETY: the IPv4 view was written.
        let v4 = unsafe { inet.Ipv4 };
        assert_eq!(v4.sin_port.to_ne_bytes(), 7007u16.to_be_bytes());
        assert_eq!(v4.sin_addr.octets(), [10, 0, 0, 1]);
    }
}
