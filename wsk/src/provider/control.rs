//! `WskControlClient`: the transport list (`WSK_TRANSPORT_LIST_QUERY`) and
//! its change notification (`WSK_TRANSPORT_LIST_CHANGE`), static event
//! callbacks (`WSK_SET_STATIC_EVENT_CALLBACKS`), and cached security
//! descriptors (`WSK_CACHE_SD`/`WSK_RELEASE_SD`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use wsk_sys as sys;

use super::npi::{CachedEntry, LiveHandle, ProviderInner, RegInner, event_callback_control};
use crate::addr::AddressFamily;
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;

bitflags::bitflags! {
    /// Events enabled on every socket the client creates
    /// ([`Provider::set_static_events`](crate::Provider::set_static_events), `WSK_EVENT_*`), each on the socket
    /// kinds it belongs to.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct StaticEvents: u32 {
        /// `WSK_EVENT_ACCEPT`: listening and stream sockets.
        const ACCEPT = sys::WSK_EVENT_ACCEPT;
        /// `WSK_EVENT_RECEIVE`: connection sockets.
        const RECEIVE = sys::WSK_EVENT_RECEIVE;
        /// `WSK_EVENT_DISCONNECT`: connection sockets.
        const DISCONNECT = sys::WSK_EVENT_DISCONNECT;
        /// `WSK_EVENT_SEND_BACKLOG`: connection sockets.
        const SEND_BACKLOG = sys::WSK_EVENT_SEND_BACKLOG;
        /// `WSK_EVENT_RECEIVE_FROM`: datagram sockets.
        const RECEIVE_FROM = sys::WSK_EVENT_RECEIVE_FROM;
    }
}

/// [`Provider::set_static_events`](crate::Provider::set_static_events).
pub(crate) fn set_static_events(provider: &ProviderInner, events: StaticEvents) -> Result<()> {
    if events.is_empty() {
        return Err(Error::INVALID_PARAMETER);
    }
    let Some(control) = provider.dispatch().WskControlClient else {
        return Err(Error::NOT_IMPLEMENTED);
    };
    let _call = provider.reg().teardown.enter()?;
    let client = provider.client();
    provider.set_static_events(events.bits(), || {
        let mut input = event_callback_control(events.bits());
        // SAFETY: the input lives across this synchronous call; no
        // output, no IRP (the DDI requires none).
        let status = unsafe {
            control(
                client,
                sys::WSK_SET_STATIC_EVENT_CALLBACKS,
                size_of::<sys::WSK_EVENT_CALLBACK_CONTROL>(),
                (&raw mut input).cast(),
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
            )
        };
        Error::check(status).map(drop)
    })
}

/// [`Provider::transport_list_change`](crate::Provider::transport_list_change).
///
/// The request holds the registration, not the capture: `WskDeregister`
/// cancels a pending `WSK_TRANSPORT_LIST_CHANGE` IRP
/// (<https://learn.microsoft.com/windows-hardware/drivers/network/wsk-transport-list-change>),
/// so a driver may deregister with one pending, which must not keep the
/// NPI captured (`WskDeregister` waits for every capture to be released).
pub(crate) fn transport_list_change(provider: &Arc<ProviderInner>) -> Request<TransportChangeOp> {
    let op = TransportChangeOp {
        reg: provider.reg_arc(),
    };
    let Some(control) = provider.dispatch().WskControlClient else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let call = match provider.reg().teardown.enter() {
        Ok(call) => call,
        Err(e) => return Request::failed(op, e),
    };
    let client = provider.client();
    let _call = call;
    Request::submit(op, |irp, _| {
        // SAFETY: no buffers; the NPI is captured (the caller holds the
        // provider) and no deregistration releases it during this call.
        unsafe {
            control(
                client,
                sys::WSK_TRANSPORT_LIST_CHANGE,
                0,
                core::ptr::null_mut(),
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                irp,
            )
        }
    })
}

/// `WSK_TRANSPORT_LIST_CHANGE`.
pub struct TransportChangeOp {
    reg: Arc<RegInner>,
}

impl Operation for TransportChangeOp {
    type Output = Result<()>;
    fn complete(self, status: i32, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
    fn inflight(&self) -> &InFlight {
        self.reg.inflight()
    }
}

/// A security descriptor cached by the provider
/// ([`Provider::cache_security_descriptor`](crate::Provider::cache_security_descriptor)); cloning shares it, and the
/// last clone's drop releases it (`WSK_RELEASE_SD`).
#[derive(Clone)]
pub struct CachedSecurityDescriptor {
    pub(crate) inner: Arc<CachedSd>,
}

impl CachedSecurityDescriptor {
    /// The cached descriptor, as the provider returned it (what
    /// `SO_WSK_SECURITY` passes).
    pub(crate) fn as_raw(&self) -> sys::PSECURITY_DESCRIPTOR {
        self.inner.descriptor
    }
}

impl core::fmt::Debug for CachedSecurityDescriptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("CachedSecurityDescriptor")
            .field(&self.inner.descriptor)
            .finish()
    }
}

pub(crate) struct CachedSd {
    pub(crate) provider: Arc<ProviderInner>,
    descriptor: sys::PSECURITY_DESCRIPTOR,
    _live: LiveHandle,
}

// SAFETY: the cached descriptor is the provider's, usable from any thread;
// it is only passed back to the provider.
unsafe impl Send for CachedSd {}
// SAFETY: as above; no interior mutability.
unsafe impl Sync for CachedSd {}

impl Drop for CachedSd {
    fn drop(&mut self) {
        if !self.provider.reg().uncache_security(self.descriptor) {
            // Deregistration released it already.
            return;
        }
        let Ok(_call) = self.provider.reg().teardown.enter() else {
            // Deregistration is under way: it released the NPI, or is about
            // to; the copy cannot be given back any more.
            crate::debug::line(format_args!(
                "a cached security descriptor dropped during deregistration was not released (WSK_RELEASE_SD)"
            ));
            return;
        };
        // SAFETY: the descriptor came from WSK_CACHE_SD of this client and is
        // released once (taken off the list); the NPI is captured and no
        // deregistration releases it during this call.
        unsafe { release_security(self.entry()) };
    }
}

impl CachedSd {
    fn entry(&self) -> CachedEntry {
        CachedEntry {
            descriptor: self.descriptor,
            client: self.provider.client(),
            control: self.provider.dispatch().WskControlClient,
        }
    }
}

/// `WSK_RELEASE_SD` of a cached descriptor.
///
/// # Safety
///
/// The descriptor came from `WSK_CACHE_SD` of the entry's client and is
/// released once; the NPI is captured and stays so across the call.
pub(crate) unsafe fn release_security(entry: CachedEntry) {
    let Some(control) = entry.control else {
        return;
    };
    let mut input = entry.descriptor;
    // SAFETY: per the caller; the input lives across this synchronous call;
    // no IRP (the DDI requires none).
    let _ = unsafe {
        control(
            entry.client,
            sys::WSK_RELEASE_SD,
            size_of::<sys::PSECURITY_DESCRIPTOR>(),
            (&raw mut input).cast(),
            0,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    };
}

/// Caches a copy of the security descriptor `descriptor`
/// (`WskControlClient` with `WSK_CACHE_SD`, which takes no IRP); the
/// copy is released (`WSK_RELEASE_SD`) when the last clone of the
/// returned handle is dropped. Pass it to [`ListenSocket::set_security`](crate::ListenSocket::set_security)
/// or [`DatagramSocket::set_security`](crate::DatagramSocket::set_security).
///
/// The handle counts as a live handle of the registration. One still
/// alive at [`Registration::deregister`](crate::Registration::deregister)
/// is released there (a `DbgPrint` line says so); its raw pointer is then
/// stale.
///
/// # IRQL
///
/// `PASSIVE_LEVEL` is the safe assumption for building and caching a
/// security descriptor; the call itself takes no IRP and returns at
/// once.
///
/// # Errors
///
/// - [`Error::NOT_IMPLEMENTED`]: the provider lacks `WskControlClient`.
/// - [`Error::UNSUCCESSFUL`] if the provider returned no copy.
/// - Other provider statuses, for example [`Error::INVALID_PARAMETER`]
///   or [`Error::INSUFFICIENT_RESOURCES`].
///
/// # Safety
///
/// `descriptor` points to a valid `SECURITY_DESCRIPTOR` for the
/// duration of the call (the provider copies it).
pub(crate) unsafe fn cache_security_descriptor(
    provider: &Arc<ProviderInner>,
    descriptor: sys::PSECURITY_DESCRIPTOR,
) -> Result<CachedSecurityDescriptor> {
    let Some(control) = provider.dispatch().WskControlClient else {
        return Err(Error::NOT_IMPLEMENTED);
    };
    let _call = provider.reg().teardown.enter()?;
    let mut input = descriptor;
    let mut cached: sys::PSECURITY_DESCRIPTOR = core::ptr::null_mut();
    // SAFETY: input and output are PSECURITY_DESCRIPTOR variables that
    // live across this synchronous call; the descriptor is valid (caller
    // contract); no IRP (the DDI requires none).
    let status = unsafe {
        control(
            provider.client(),
            sys::WSK_CACHE_SD,
            size_of::<sys::PSECURITY_DESCRIPTOR>(),
            (&raw mut input).cast(),
            size_of::<sys::PSECURITY_DESCRIPTOR>(),
            (&raw mut cached).cast(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    };
    Error::check(status)?;
    if cached.is_null() {
        return Err(Error::UNSUCCESSFUL);
    }
    let entry = CachedEntry {
        descriptor: cached,
        client: provider.client(),
        control: Some(control),
    };
    if let Err(e) = provider.reg().cached_security(entry) {
        // SAFETY: just cached by this client, released once; the NPI is
        // captured (the caller holds it) and the call guard is held.
        unsafe { release_security(entry) };
        return Err(e);
    }
    Ok(CachedSecurityDescriptor {
        inner: Arc::new(CachedSd {
            provider: Arc::clone(provider),
            descriptor: cached,
            _live: provider.live_handle(),
        }),
    })
}

/// [`Provider::transports`](crate::Provider::transports).
pub(crate) fn transports(provider: &ProviderInner) -> Result<Vec<Transport>> {
    let Some(control) = provider.dispatch().WskControlClient else {
        return Err(Error::NOT_IMPLEMENTED);
    };
    let _call = provider.reg().teardown.enter()?;
    let mut capacity = 8usize;
    // The list can grow between calls; give up after a few rounds.
    for _ in 0..4 {
        let mut list: Vec<sys::WSK_TRANSPORT> = Vec::new();
        list.try_reserve_exact(capacity)
            .map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
        list.resize(capacity, sys::WSK_TRANSPORT::default());
        let size = capacity * size_of::<sys::WSK_TRANSPORT>();
        let mut returned: sys::SIZE_T = 0;
        // SAFETY: the output buffer holds `size` bytes and lives across
        // this synchronous call, as does `returned`; no IRP, no input.
        let status = unsafe {
            control(
                provider.client(),
                sys::WSK_TRANSPORT_LIST_QUERY,
                0,
                core::ptr::null_mut(),
                size,
                list.as_mut_ptr().cast(),
                &raw mut returned,
                core::ptr::null_mut(),
            )
        };
        let count = returned / size_of::<sys::WSK_TRANSPORT>();
        if status == sys::STATUS_BUFFER_TOO_SMALL || status == sys::STATUS_BUFFER_OVERFLOW {
            capacity = count.max(capacity * 2);
            continue;
        }
        Error::check(status)?;
        list.truncate(count.min(capacity));
        return Ok(list.into_iter().map(|raw| Transport { raw }).collect());
    }
    Err(Error::BUFFER_TOO_SMALL)
}

/// One transport the provider offers (`WSK_TRANSPORT`), from
/// [`Provider::transports`](crate::Provider::transports).
#[derive(Clone, Copy)]
pub struct Transport {
    raw: sys::WSK_TRANSPORT,
}

impl Transport {
    /// The transport's version (`Version`).
    #[must_use]
    pub fn version(&self) -> u16 {
        self.raw.Version
    }

    /// The address family, if it is IPv4 or IPv6 (`AddressFamily`).
    #[must_use]
    pub fn family(&self) -> Option<AddressFamily> {
        AddressFamily::from_raw(self.raw.AddressFamily)
    }

    /// Whether it is a stream transport (`SOCK_STREAM`; TCP).
    #[must_use]
    pub fn is_stream(&self) -> bool {
        self.raw.SocketType == sys::SOCK_STREAM
    }

    /// Whether it is a datagram transport (`SOCK_DGRAM`; UDP).
    #[must_use]
    pub fn is_datagram(&self) -> bool {
        self.raw.SocketType == sys::SOCK_DGRAM
    }

    /// The protocol number (`Protocol`: 6 for TCP, 17 for UDP).
    #[must_use]
    pub fn protocol(&self) -> u32 {
        self.raw.Protocol
    }

    /// The socket type (`SocketType`: `SOCK_STREAM` is 1, `SOCK_DGRAM` 2,
    /// `SOCK_RAW` 3), for transports that are neither
    /// [stream](Self::is_stream) nor [datagram](Self::is_datagram).
    #[must_use]
    pub fn socket_type(&self) -> u16 {
        self.raw.SocketType
    }

    /// The transport provider's GUID (`ProviderId`), as one number whose
    /// hexadecimal digits read as the GUID's text form without dashes
    /// (`Data1`, `Data2`, `Data3`, then `Data4`'s bytes in order).
    ///
    /// ```
    /// # let id: u128 = 0x8d5f_4e6a_1c3b_4a2e_9f10_0123_4567_89ab;
    /// // {8D5F4E6A-1C3B-4A2E-9F10-0123456789AB}
    /// assert_eq!(format!("{id:032X}"), "8D5F4E6A1C3B4A2E9F100123456789AB");
    /// ```
    #[must_use]
    pub fn provider_id(&self) -> u128 {
        let id = self.raw.ProviderId;
        (u128::from(id.Data1) << 96)
            | (u128::from(id.Data2) << 80)
            | (u128::from(id.Data3) << 64)
            | u128::from(u64::from_be_bytes(id.Data4))
    }
}

impl core::fmt::Debug for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transport")
            .field("version", &self.version())
            .field("family", &self.family())
            .field("socket_type", &self.raw.SocketType)
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}
