//! Name resolution over the test's name table: `WskGetAddressInfo`,
//! `WskFreeAddressInfo`, `WskGetNameInfo`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wsk_sys::{
    ADDRINFOEXW, AF_INET, AF_INET6, AF_UNSPEC, AI_CANONNAME, AI_NUMERICHOST, AI_PASSIVE,
    NI_NAMEREQD, NI_NUMERICHOST, NI_NUMERICSERV, NTSTATUS, PADDRINFOEXW, PEPROCESS, PETHREAD,
    PGUID, PIRP, PSOCKADDR, PUNICODE_STRING, PWSK_CLIENT, STATUS_BUFFER_OVERFLOW,
    STATUS_INVALID_PARAMETER, STATUS_NOT_FOUND, STATUS_SUCCESS, ULONG,
};

use crate::net::AddrInfoAlloc;
use crate::pool::{raw_alloc_zeroed, raw_free};
use crate::provider::Outcome;
use crate::script::Routine;
use crate::verifier::{self, NoUnwind, Rule};
use crate::world::{self, wviolation};

/// Well-known services the resolver knows besides those a test adds.
const SERVICES: [(&str, u16); 6] = [
    ("echo", 7),
    ("domain", 53),
    ("http", 80),
    ("ntp", 123),
    ("https", 443),
    ("snmp", 161),
];

fn service_port(w: &crate::net::Net, s: &str) -> Option<u16> {
    if let Ok(p) = s.parse::<u16>() {
        return Some(p);
    }
    let l = s.to_lowercase();
    w.services
        .get(&l)
        .copied()
        .or_else(|| SERVICES.iter().find(|(n, _)| *n == l).map(|(_, p)| *p))
}

/// The status of a name that does not resolve: `STATUS_NO_MATCH`, as both
/// pages say
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>,
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>),
/// under [`Behaviour::DocumentedStatuses`](crate::Behaviour::DocumentedStatuses);
/// `STATUS_NOT_FOUND` otherwise (docs/conformance.md NAME-3).
fn no_match(w: &crate::world::World) -> NTSTATUS {
    if w.adversary(crate::Behaviour::DocumentedStatuses) {
        wsk_sys::STATUS_NO_MATCH
    } else {
        STATUS_NOT_FOUND
    }
}

fn trimmed(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim_end_matches('\0').to_owned())
        .filter(|v| !v.is_empty())
}

/// `WskGetAddressInfo`: resolves `NodeName`/`ServiceName` with the names the
/// test added ([`Sim::add_name`](crate::Sim::add_name)), numeric addresses
/// and `localhost`; [`no_match`] for unknown names. `*Result` receives
/// a list the client frees with `WskFreeAddressInfo`.
///
/// # Safety
///
/// Provider routine (`PASSIVE_LEVEL`): valid strings, hints, `Result`
/// (valid until completion) and IRP.
pub(crate) unsafe extern "system" fn WskGetAddressInfo(
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
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (NameSpace, Provider, OwningProcess, OwningThread);
    verifier::check_passive("WskGetAddressInfo");
    // SAFETY: the client passes NULL or valid UNICODE_STRINGs.
    let node = trimmed(unsafe { crate::ps::read_unicode(NodeName) });
    // SAFETY: as above.
    let service = trimmed(unsafe { crate::ps::read_unicode(ServiceName) });
    let hints = if Hints.is_null() {
        None
    } else {
        // SAFETY: the client passes a valid ADDRINFOEXW.
        Some(unsafe { Hints.read() })
    };
    crate::provider::client_irp_call_pub(
        Client,
        Irp,
        Routine::WskGetAddressInfo,
        |w, _c, _irp, _out| {
            if node.is_none() && service.is_none() {
                return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
            }
            if Result.is_null() {
                wviolation!(w, Rule::Parameter, "WskGetAddressInfo with a NULL Result");
                return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
            }
            let flags = hints.map_or(0, |h| h.ai_flags);
            let family = hints.map_or(i32::from(AF_UNSPEC), |h| h.ai_family);
            let port = match &service {
                Some(s) => match service_port(&w.net, s) {
                    Some(p) => p,
                    None => return Outcome::Done(no_match(w), 0),
                },
                None => 0,
            };
            let mut ips: Vec<IpAddr> = match &node {
                None => {
                    if flags & AI_PASSIVE != 0 {
                        vec![
                            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        ]
                    } else {
                        vec![
                            IpAddr::V6(Ipv6Addr::LOCALHOST),
                            IpAddr::V4(Ipv4Addr::LOCALHOST),
                        ]
                    }
                }
                Some(n) => {
                    if let Ok(ip) = n.parse::<IpAddr>() {
                        vec![ip]
                    } else if flags & AI_NUMERICHOST != 0 {
                        return Outcome::Done(no_match(w), 0);
                    } else if n.eq_ignore_ascii_case("localhost") {
                        vec![
                            IpAddr::V6(Ipv6Addr::LOCALHOST),
                            IpAddr::V4(Ipv4Addr::LOCALHOST),
                        ]
                    } else {
                        match w
                            .net
                            .names
                            .iter()
                            .find(|(name, _)| name.eq_ignore_ascii_case(n))
                        {
                            Some((_, ips)) => ips.clone(),
                            None => return Outcome::Done(no_match(w), 0),
                        }
                    }
                }
            };
            ips.retain(|ip| match u16::try_from(family).unwrap_or(0) {
                AF_INET => ip.is_ipv4(),
                AF_INET6 => ip.is_ipv6(),
                _ => true,
            });
            if ips.is_empty() {
                return Outcome::Done(no_match(w), 0);
            }
            let canon = if flags & AI_CANONNAME != 0 {
                node.clone()
            } else {
                None
            };
            let head = build_list(&ips, port, hints.as_ref(), canon.as_deref());
            let first = head.first().map_or(0, |n| n.0);
            w.net.addrinfos.insert(first, AddrInfoAlloc { nodes: head });
            // SAFETY: the client keeps `Result` valid until completion.
            unsafe { Result.write(first as PADDRINFOEXW) };
            Outcome::Done(STATUS_SUCCESS, 0)
        },
    )
}

fn build_list(
    ips: &[IpAddr],
    port: u16,
    hints: Option<&ADDRINFOEXW>,
    canon: Option<&str>,
) -> Vec<(usize, usize)> {
    let mut nodes: Vec<(usize, usize)> = Vec::new();
    let node_size = core::mem::size_of::<ADDRINFOEXW>();
    for (i, ip) in ips.iter().enumerate() {
        let sa = crate::addr::to_bytes(SocketAddr::new(*ip, port));
        let name16: Vec<u16> = match (i, canon) {
            (0, Some(c)) => c.encode_utf16().chain([0]).collect(),
            _ => Vec::new(),
        };
        let sa_off = node_size.next_multiple_of(16);
        let name_off = sa_off + 32;
        let size = name_off + name16.len() * 2 + 2;
        let base = raw_alloc_zeroed(size);
        let sa_ptr = base.wrapping_add(sa_off);
        // SAFETY: 32 bytes reserved for the address inside the node.
        unsafe { core::ptr::copy_nonoverlapping(sa.as_ptr(), sa_ptr, sa.len()) };
        #[allow(clippy::cast_ptr_alignment)] // `name_off` is 16-aligned
        let name_ptr = base.wrapping_add(name_off).cast::<u16>();
        if !name16.is_empty() {
            // SAFETY: room for the name was reserved inside the node.
            unsafe { core::ptr::copy_nonoverlapping(name16.as_ptr(), name_ptr, name16.len()) };
        }
        let node = ADDRINFOEXW {
            ai_flags: 0,
            ai_family: i32::from(crate::addr::family(&SocketAddr::new(*ip, 0))),
            ai_socktype: hints.map_or(0, |h| h.ai_socktype),
            ai_protocol: hints.map_or(0, |h| h.ai_protocol),
            ai_addrlen: sa.len(),
            ai_canonname: if name16.is_empty() {
                core::ptr::null_mut()
            } else {
                name_ptr
            },
            ai_addr: sa_ptr.cast(),
            ai_blob: core::ptr::null_mut(),
            ai_bloblen: 0,
            ai_provider: core::ptr::null_mut(),
            ai_next: core::ptr::null_mut(),
        };
        // SAFETY: `base` is a fresh node allocation, 16-aligned.
        unsafe { base.cast::<ADDRINFOEXW>().write_unaligned(node) };
        if let Some(&(prev, _)) = nodes.last() {
            // SAFETY: `prev` is the previous node of this list.
            unsafe { (*(prev as PADDRINFOEXW)).ai_next = base.cast() };
        }
        nodes.push((base as usize, size));
    }
    nodes
}

/// `WskFreeAddressInfo`: frees a list from `WskGetAddressInfo`.
///
/// # Safety
///
/// Provider routine: `AddrInfo` must be a list from `WskGetAddressInfo`.
pub(crate) unsafe extern "system" fn WskFreeAddressInfo(
    Client: PWSK_CLIENT,
    AddrInfo: PADDRINFOEXW,
) {
    let _g = NoUnwind::enter();
    let _ = Client;
    verifier::check_irql_max("WskFreeAddressInfo", verifier::DISPATCH_LEVEL);
    let mut w = world::lock();
    let Some(a) = w.net.addrinfos.remove(&(AddrInfo as usize)) else {
        wviolation!(
            w,
            Rule::DoubleFree,
            "WskFreeAddressInfo({AddrInfo:p}): not a list from WskGetAddressInfo (freed twice?)"
        );
        return;
    };
    drop(w);
    for (p, size) in a.nodes {
        // SAFETY: allocated by `build_list` with this size.
        unsafe { raw_free(p as *mut u8, size) };
    }
}

fn write_unicode(dst: PUNICODE_STRING, s: &str) -> bool {
    if dst.is_null() {
        return true;
    }
    // SAFETY: the client passes a valid UNICODE_STRING with its buffer.
    let us = unsafe { dst.read() };
    let units: Vec<u16> = s.encode_utf16().collect();
    let need = (units.len() + 1) * 2;
    if us.Buffer.is_null() || usize::from(us.MaximumLength) < need {
        return false;
    }
    // SAFETY: `Buffer` holds `MaximumLength >= need` bytes.
    unsafe { core::ptr::copy_nonoverlapping(units.as_ptr(), us.Buffer, units.len()) };
    let nul = us.Buffer.wrapping_add(units.len());
    // SAFETY: as above (the terminating NUL fits).
    unsafe { nul.write(0) };
    // SAFETY: the client's UNICODE_STRING is writable.
    unsafe { (*dst).Length = u16::try_from(units.len() * 2).unwrap_or(u16::MAX) };
    true
}

/// `WskGetNameInfo`: the name the test associated with an address (or the
/// numeric form; `NI_NAMEREQD` fails with `STATUS_NOT_FOUND`), and the
/// service name or number. `STATUS_BUFFER_OVERFLOW` when a buffer is too
/// small.
///
/// # Safety
///
/// Provider routine (`PASSIVE_LEVEL`): valid address, output strings and IRP.
pub(crate) unsafe extern "system" fn WskGetNameInfo(
    Client: PWSK_CLIENT,
    SockAddr: PSOCKADDR,
    SockAddrLength: ULONG,
    NodeName: PUNICODE_STRING,
    ServiceName: PUNICODE_STRING,
    Flags: ULONG,
    OwningProcess: PEPROCESS,
    OwningThread: PETHREAD,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (SockAddrLength, OwningProcess, OwningThread);
    verifier::check_passive("WskGetNameInfo");
    // SAFETY: the client passes a valid socket address.
    let addr = unsafe { crate::addr::read(SockAddr) };
    crate::provider::client_irp_call_pub(
        Client,
        Irp,
        Routine::WskGetNameInfo,
        |w, _c, _irp, _out| {
            let a = match addr {
                Ok(a) => a,
                Err(st) => return Outcome::Done(st, 0),
            };
            if NodeName.is_null() && ServiceName.is_null() {
                return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
            }
            let host = if Flags & NI_NUMERICHOST != 0 {
                a.ip().to_string()
            } else {
                match w.net.names.iter().find(|(_, ips)| ips.contains(&a.ip())) {
                    Some((n, _)) => n.clone(),
                    None if Flags & NI_NAMEREQD != 0 => return Outcome::Done(no_match(w), 0),
                    None => a.ip().to_string(),
                }
            };
            let port = a.port();
            let serv = if Flags & NI_NUMERICSERV != 0 {
                port.to_string()
            } else {
                w.net
                    .services
                    .iter()
                    .find(|(_, p)| **p == port)
                    .map(|(n, _)| n.clone())
                    .or_else(|| {
                        SERVICES
                            .iter()
                            .find(|(_, p)| *p == port)
                            .map(|(n, _)| (*n).to_owned())
                    })
                    .unwrap_or_else(|| port.to_string())
            };
            if !write_unicode(NodeName, &host) || !write_unicode(ServiceName, &serv) {
                return Outcome::Done(STATUS_BUFFER_OVERFLOW, 0);
            }
            Outcome::Done(STATUS_SUCCESS, 0)
        },
    )
}
