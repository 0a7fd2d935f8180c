//! `SOCKADDR` ⇄ `std::net::SocketAddr`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wsk_sys::{AF_INET, AF_INET6, NTSTATUS, PSOCKADDR, SOCKADDR_IN, SOCKADDR_IN6};

/// `STATUS_INVALID_ADDRESS` for unknown families.
pub(crate) const BAD_ADDRESS: NTSTATUS = wsk_sys::STATUS_INVALID_ADDRESS;

/// Reads a `SOCKADDR_IN`/`SOCKADDR_IN6`.
///
/// # Safety
///
/// `p` is NULL or points to a readable socket address of its family's size.
pub(crate) unsafe fn read(p: PSOCKADDR) -> Result<SocketAddr, NTSTATUS> {
    if p.is_null() {
        return Err(wsk_sys::STATUS_INVALID_PARAMETER);
    }
    // SAFETY: caller's contract: at least the family field is readable.
    let family = unsafe { p.cast::<u16>().read_unaligned() };
    match family {
        AF_INET => {
            // SAFETY: an AF_INET address is a SOCKADDR_IN.
            let a: SOCKADDR_IN = unsafe { p.cast::<SOCKADDR_IN>().read_unaligned() };
            // SAFETY: IN_ADDR is 4 bytes in network order.
            let b: [u8; 4] = unsafe { core::mem::transmute_copy(&a.sin_addr) };
            Ok(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(b)),
                u16::from_be(a.sin_port),
            ))
        }
        AF_INET6 => {
            // SAFETY: an AF_INET6 address is a SOCKADDR_IN6.
            let a: SOCKADDR_IN6 = unsafe { p.cast::<SOCKADDR_IN6>().read_unaligned() };
            // SAFETY: IN6_ADDR is 16 bytes in network order.
            let b: [u8; 16] = unsafe { core::mem::transmute_copy(&a.sin6_addr) };
            Ok(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(b)),
                u16::from_be(a.sin6_port),
            ))
        }
        _ => Err(BAD_ADDRESS),
    }
}

/// The bytes of a `SOCKADDR_IN`/`SOCKADDR_IN6` for `a`.
pub(crate) fn to_bytes(a: SocketAddr) -> Vec<u8> {
    match a {
        SocketAddr::V4(v4) => {
            let mut b = vec![0u8; core::mem::size_of::<SOCKADDR_IN>()];
            b[0..2].copy_from_slice(&AF_INET.to_ne_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            b
        }
        SocketAddr::V6(v6) => {
            let mut b = vec![0u8; core::mem::size_of::<SOCKADDR_IN6>()];
            b[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            b
        }
    }
}

/// Writes `a` to `p`.
///
/// # Safety
///
/// `p` is NULL (nothing is written) or writable for the family's size.
pub(crate) unsafe fn write(p: PSOCKADDR, a: SocketAddr) {
    if p.is_null() {
        return;
    }
    let b = to_bytes(a);
    // SAFETY: caller's contract.
    unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), p.cast::<u8>(), b.len()) };
}

/// The address family number of `a`.
pub(crate) fn family(a: &SocketAddr) -> u16 {
    if a.is_ipv4() { AF_INET } else { AF_INET6 }
}

/// The unspecified address of a family.
pub(crate) fn unspecified(family: u16) -> IpAddr {
    if family == AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Parses `"1.2.3.4:80"`, `"[::1]:80"`, or a bare address (port 0).
///
/// # Panics
///
/// On an unparsable string (test-side helper).
pub(crate) fn parse(s: &str) -> SocketAddr {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return a;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return SocketAddr::new(ip, 0);
    }
    panic!("wsk-sim: cannot parse socket address {s:?}");
}

/// Parses an IP address.
///
/// # Panics
///
/// On an unparsable string (test-side helper).
pub(crate) fn parse_ip(s: &str) -> IpAddr {
    s.parse::<IpAddr>()
        .unwrap_or_else(|_| panic!("wsk-sim: cannot parse IP address {s:?}"))
}
