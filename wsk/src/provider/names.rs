//! Name resolution: `WskGetAddressInfo` / `WskFreeAddressInfo`, and
//! address-to-name translation: `WskGetNameInfo`.
//!
//! Host names and services are ordinary Rust strings, converted to counted
//! UTF-16 (`UNICODE_STRING`) for the call. The provider's `ADDRINFOEXW` list
//! is copied into an owned [`Vec`] of addresses and freed exactly once,
//! before the function returns — both routines require `PASSIVE_LEVEL`, so
//! the list never outlives the context that may free it.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::npi::ProviderInner;
use super::version::WindowsVersion;
use crate::addr::{AddressFamily, SockAddr};
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;
use crate::irql::Passive;

bitflags::bitflags! {
    /// The `NI_*` flags of [`Provider::name_info`](crate::Provider::name_info)
    /// (those of `getnameinfo`).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_name_info>
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct NameInfoFlags: u32 {
        /// `NI_NOFQDN`: only the host part of a local host's name.
        const NO_FQDN = sys::NI_NOFQDN;
        /// `NI_NUMERICHOST`: the numeric form of the address, not its name.
        const NUMERIC_HOST = sys::NI_NUMERICHOST;
        /// `NI_NAMEREQD`: fail when the address has no name.
        const NAME_REQUIRED = sys::NI_NAMEREQD;
        /// `NI_NUMERICSERV`: the port number, not the service name.
        const NUMERIC_SERVICE = sys::NI_NUMERICSERV;
        /// `NI_DGRAM`: the service is a datagram service.
        const DATAGRAM = sys::NI_DGRAM;
    }
}

/// A string as counted UTF-16 for a `UNICODE_STRING`, NUL-terminated beyond
/// its counted length: Windows reads only `Length` bytes, but Wine's
/// `netio.sys` passes `Buffer` on as a C string.
struct Utf16 {
    units: Vec<u16>,
}

impl Utf16 {
    fn new(text: &str) -> Result<Self> {
        if text.is_empty() || text.contains('\0') {
            return Err(Error::INVALID_PARAMETER);
        }
        let mut units: Vec<u16> = text.encode_utf16().collect();
        // UNICODE_STRING lengths are USHORT byte counts, terminator included.
        if (units.len() + 1) * 2 > usize::from(u16::MAX) {
            return Err(Error::INVALID_PARAMETER);
        }
        units.push(0);
        Ok(Self { units })
    }

    /// The `UNICODE_STRING` view; valid while `self` is neither moved nor dropped.
    fn unicode(&mut self) -> sys::UNICODE_STRING {
        // Checked in `new`: fits a USHORT.
        #[allow(clippy::cast_possible_truncation)]
        let capacity = (self.units.len() * 2) as u16;
        sys::UNICODE_STRING {
            Length: capacity - 2,
            MaximumLength: capacity,
            Buffer: self.units.as_mut_ptr(),
        }
    }
}

/// `WskGetAddressInfo`: the strings, hints and result pointer the provider
/// uses until completion.
struct ResolveOp {
    provider: Arc<ProviderInner>,
    /// Owns the UTF-16 buffers the strings point into.
    _host: Utf16,
    _service: Option<Utf16>,
    has_service: bool,
    host_string: sys::UNICODE_STRING,
    service_string: sys::UNICODE_STRING,
    hints: sys::ADDRINFOEXW,
    result: sys::PADDRINFOEXW,
}

// SAFETY: the raw pointers point into the op's own heap data or to the
// provider's result list, usable from any thread.
unsafe impl Send for ResolveOp {}

/// The provider's result list, freed with `WskFreeAddressInfo` exactly once.
struct ResultList {
    provider: Arc<ProviderInner>,
    head: sys::PADDRINFOEXW,
}

impl ResultList {
    fn addresses(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        let mut node = self.head;
        while !node.is_null() {
            // SAFETY: the provider's list is valid until we free it.
            let info = unsafe { &*node };
            // SAFETY: `ai_addr` points to an address of the family it names.
            if let Ok(addr) = unsafe { SockAddr::copy_from_raw(info.ai_addr) } {
                if !out.contains(&addr) {
                    out.push(addr);
                }
            }
            node = info.ai_next;
        }
        out
    }

    /// Frees the list.
    ///
    /// # Safety
    ///
    /// IRQL is `PASSIVE_LEVEL` (`WskFreeAddressInfo`'s requirement).
    unsafe fn free(self) {
        if self.head.is_null() {
            return;
        }
        if let Some(free) = self.provider.dispatch().WskFreeAddressInfo {
            // SAFETY: the list came from this client's WskGetAddressInfo and
            // is freed once (we consume `self`); IRQL per the caller.
            unsafe { free(self.provider.client(), self.head) };
        }
    }
}

impl Operation for ResolveOp {
    type Output = Result<ResultList>;

    fn complete(self, status: i32, _information: usize) -> Self::Output {
        // A failed call returns no list, so there is nothing to free then.
        Error::check(status)?;
        Ok(ResultList {
            provider: self.provider,
            head: self.result,
        })
    }
    fn inflight(&self) -> &InFlight {
        self.provider.reg().inflight()
    }
}

/// [`Provider::resolve`](crate::Provider::resolve).
pub(crate) fn resolve(
    provider: &Arc<ProviderInner>,
    passive: &Passive<'_>,
    host: &str,
    service: Option<&str>,
    family: Option<AddressFamily>,
) -> Result<Vec<SocketAddr>> {
    let mut host = Utf16::new(host)?;
    let mut service = service.map(Utf16::new).transpose()?;
    if !provider.windows().at_least(WindowsVersion::WINDOWS_7) {
        return Err(Error::NOT_SUPPORTED);
    }
    let dispatch = provider.dispatch();
    let (Some(get), Some(_)) = (dispatch.WskGetAddressInfo, dispatch.WskFreeAddressInfo) else {
        return Err(Error::NOT_IMPLEMENTED);
    };
    // One client-level call from the request to the list's release:
    // deregistration waits for it before it releases the NPI.
    let _call = provider.reg().teardown.enter()?;
    // SAFETY: ADDRINFOEXW is plain data; all-zero is "no hints".
    let mut hints: sys::ADDRINFOEXW = unsafe { core::mem::zeroed() };
    hints.ai_family = i32::from(family.map_or(sys::AF_UNSPEC, AddressFamily::raw));
    hints.ai_socktype = i32::from(sys::SOCK_STREAM);
    let empty = sys::UNICODE_STRING {
        Length: 0,
        MaximumLength: 0,
        Buffer: core::ptr::null_mut(),
    };
    let op = ResolveOp {
        provider: Arc::clone(provider),
        host_string: host.unicode(),
        service_string: service.as_mut().map_or(empty, Utf16::unicode),
        has_service: service.is_some(),
        _host: host,
        _service: service,
        hints,
        result: core::ptr::null_mut(),
    };
    let client = provider.client();
    let request = Request::submit(op, |irp, op| {
        let op = op.into_mut();
        let service = if op.has_service {
            &raw mut op.service_string
        } else {
            core::ptr::null_mut()
        };
        // SAFETY: the strings' buffers (moved into the op, heap data that
        // does not move), the hints and the result slot live in the
        // payload until completion; PASSIVE_LEVEL is proven.
        unsafe {
            get(
                client,
                &raw mut op.host_string,
                service,
                sys::NS_ALL,
                core::ptr::null_mut(),
                &raw mut op.hints,
                &raw mut op.result,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                irp,
            )
        }
    });
    // Waiting without a time-out never abandons the request, so the
    // result list is always freed here, at PASSIVE_LEVEL.
    let list = request.wait(passive)?;
    let addresses = list.addresses();
    // SAFETY: PASSIVE_LEVEL proven.
    unsafe { list.free() };
    if addresses.is_empty() {
        Err(Error::NOT_FOUND)
    } else {
        Ok(addresses)
    }
}

/// `WskGetNameInfo`: the address and the two output strings, whose buffers
/// the op owns, until completion.
struct NameInfoOp {
    provider: Arc<ProviderInner>,
    addr: SockAddr,
    _host_units: Vec<u16>,
    _service_units: Vec<u16>,
    host: sys::UNICODE_STRING,
    service: sys::UNICODE_STRING,
}

// SAFETY: the strings point into the op's own heap buffers, which move with it.
unsafe impl Send for NameInfoOp {}

impl NameInfoOp {
    /// An output string over `units` (whose heap data does not move).
    fn output(units: &mut [u16]) -> sys::UNICODE_STRING {
        // Both buffers are at most NI_MAXHOST units: fits a USHORT.
        #[allow(clippy::cast_possible_truncation)]
        let capacity = (units.len() * 2) as u16;
        sys::UNICODE_STRING {
            Length: 0,
            MaximumLength: capacity,
            Buffer: units.as_mut_ptr(),
        }
    }

    fn text(string: &sys::UNICODE_STRING) -> String {
        let len = usize::from(string.Length.min(string.MaximumLength)) / 2;
        if string.Buffer.is_null() || len == 0 {
            return String::new();
        }
        // SAFETY: the provider wrote `Length` bytes into our buffer of
        // `MaximumLength` bytes (clamped above).
        let units = unsafe { core::slice::from_raw_parts(string.Buffer, len) };
        let units = units.split(|&u| u == 0).next().unwrap_or(&[]);
        char::decode_utf16(units.iter().copied())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }
}

impl Operation for NameInfoOp {
    /// The host name and the service name (`None` if the provider left it empty).
    type Output = Result<(String, Option<String>)>;

    fn complete(self, status: i32, _information: usize) -> Self::Output {
        Error::check(status)?;
        let host = Self::text(&self.host);
        let service = Self::text(&self.service);
        Ok((host, (!service.is_empty()).then_some(service)))
    }
    fn inflight(&self) -> &InFlight {
        self.provider.reg().inflight()
    }
}

/// [`Provider::name_info`](crate::Provider::name_info).
pub(crate) fn name_info(
    provider: &Arc<ProviderInner>,
    passive: &Passive<'_>,
    addr: SocketAddr,
    flags: NameInfoFlags,
) -> Result<(String, Option<String>)> {
    if !provider.windows().at_least(WindowsVersion::WINDOWS_7) {
        return Err(Error::NOT_SUPPORTED);
    }
    let Some(get) = provider.dispatch().WskGetNameInfo else {
        return Err(Error::NOT_IMPLEMENTED);
    };
    let _call = provider.reg().teardown.enter()?;
    let mut host_units = vec![0u16; sys::NI_MAXHOST as usize];
    let mut service_units = vec![0u16; sys::NI_MAXSERV as usize];
    let op = NameInfoOp {
        provider: Arc::clone(provider),
        addr: SockAddr::from(addr),
        host: NameInfoOp::output(&mut host_units),
        service: NameInfoOp::output(&mut service_units),
        _host_units: host_units,
        _service_units: service_units,
    };
    let length = op.addr.len();
    #[allow(clippy::cast_possible_truncation)] // a socket address is a few dozen bytes
    let length = length as u32;
    let client = provider.client();
    let request = Request::submit(op, |irp, op| {
        let op = op.into_mut();
        // SAFETY: the address and both strings' buffers (heap data moved
        // into the op, which does not move) live in the payload until
        // completion; PASSIVE_LEVEL is proven.
        unsafe {
            get(
                client,
                op.addr.as_mut_ptr(),
                length,
                &raw mut op.host,
                &raw mut op.service,
                flags.bits(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                irp,
            )
        }
    });
    request.wait(passive)
}
