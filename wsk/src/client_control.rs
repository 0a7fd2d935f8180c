//! `WskControlClient` beyond the transport list query: static event
//! callbacks (`WSK_SET_STATIC_EVENT_CALLBACKS`), transport list change
//! notification (`WSK_TRANSPORT_LIST_CHANGE`), cached security descriptors
//! (`WSK_CACHE_SD`/`WSK_RELEASE_SD`), and `SO_WSK_SECURITY`, which takes one.

use alloc::sync::Arc;

use wsk_sys as sys;

use crate::registration::{LiveHandle, Provider, ProviderInner};
use crate::request::{Operation, Request};
use crate::socket::SocketCore;
use crate::{Error, Result};

bitflags::bitflags! {
    /// Events enabled on every socket the client creates
    /// ([`Provider::set_static_events`], `WSK_EVENT_*`), each on the socket
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

/// `NPI_WSK_INTERFACE_ID` at a fixed address, for `WSK_EVENT_CALLBACK_CONTROL`.
static NPI_WSK_INTERFACE_ID: sys::NPIID = sys::NPI_WSK_INTERFACE_ID;

impl Provider {
    /// Enables `events` on every socket this client creates from now on
    /// (`WskControlClient` with `WSK_SET_STATIC_EVENT_CALLBACKS`, which takes
    /// no IRP): faster than enabling them per socket, but they can never be
    /// disabled.
    ///
    /// The DDI requires this before the client creates any socket; this
    /// binding enforces it at run time for the whole registration (every
    /// provider captured from it): once any socket was created — or its
    /// creation submitted — it fails. It can be set once.
    ///
    /// Afterwards, a socket whose handler lacks the callback of a static
    /// event of its kind cannot be created (the provider would call a
    /// missing callback): its creation fails with
    /// [`Error::INVALID_PARAMETER`]; [`StreamListener::accept`](crate::StreamListener::accept)
    /// checks the same. The `enable_events` methods leave static events
    /// out.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`. Takes no IRP: returns at once.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] without calling the provider when
    ///   a socket of this registration was already created, or static
    ///   events were already set (or are being set on another thread).
    /// - [`Error::INVALID_PARAMETER`] without calling the provider for an
    ///   empty `events`.
    /// - [`Error::NOT_IMPLEMENTED`]: the provider lacks `WskControlClient`.
    /// - Other provider statuses.
    pub fn set_static_events(&self, events: StaticEvents) -> Result<()> {
        if events.is_empty() {
            return Err(Error::INVALID_PARAMETER);
        }
        let Some(control) = self.inner.dispatch().WskControlClient else {
            return Err(Error::NOT_IMPLEMENTED);
        };
        let client = self.inner.client();
        self.inner.set_static_events(events.bits(), || {
            let mut input = sys::WSK_EVENT_CALLBACK_CONTROL {
                NpiId: (&raw const NPI_WSK_INTERFACE_ID).cast_mut(),
                EventMask: events.bits(),
            };
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

    /// A request that completes when the provider's transport list changes
    /// (`WskControlClient` with `WSK_TRANSPORT_LIST_CHANGE`); then read the
    /// new list with [`transports`](Self::transports) and ask again.
    /// Dropping the request cancels it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_IMPLEMENTED`]: the provider lacks `WskControlClient`.
    /// - [`Error::CANCELLED`] when cancelled; other provider statuses.
    pub fn transport_list_change(&self) -> Request<TransportChangeOp> {
        let op = TransportChangeOp {
            _provider: Arc::clone(&self.inner),
        };
        let Some(control) = self.inner.dispatch().WskControlClient else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let client = self.inner.client();
        Request::submit(op, |irp, _| {
            // SAFETY: no buffers; the payload keeps the provider captured
            // until completion.
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

    /// Caches a copy of the security descriptor `descriptor`
    /// (`WskControlClient` with `WSK_CACHE_SD`, which takes no IRP); the
    /// copy is released (`WSK_RELEASE_SD`) when the last clone of the
    /// returned handle is dropped. Pass it to [`ListenSocket::set_security`](crate::ListenSocket::set_security)
    /// or [`DatagramSocket::set_security`](crate::DatagramSocket::set_security).
    ///
    /// The handle counts as a live handle of the registration:
    /// [`Registration::deregister`](crate::Registration::deregister) refuses
    /// while it exists.
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
    pub unsafe fn cache_security_descriptor(
        &self,
        descriptor: sys::PSECURITY_DESCRIPTOR,
    ) -> Result<CachedSecurityDescriptor> {
        let Some(control) = self.inner.dispatch().WskControlClient else {
            return Err(Error::NOT_IMPLEMENTED);
        };
        let mut input = descriptor;
        let mut cached: sys::PSECURITY_DESCRIPTOR = core::ptr::null_mut();
        // SAFETY: input and output are PSECURITY_DESCRIPTOR variables that
        // live across this synchronous call; the descriptor is valid (caller
        // contract); no IRP (the DDI requires none).
        let status = unsafe {
            control(
                self.inner.client(),
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
        Ok(CachedSecurityDescriptor {
            inner: Arc::new(CachedSd {
                provider: Arc::clone(&self.inner),
                descriptor: cached,
                _live: self.live_handle(),
            }),
        })
    }
}

/// `WSK_TRANSPORT_LIST_CHANGE`.
pub struct TransportChangeOp {
    _provider: Arc<ProviderInner>,
}

impl Operation for TransportChangeOp {
    type Output = Result<()>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
}

/// A security descriptor cached by the provider
/// ([`Provider::cache_security_descriptor`]); cloning shares it, and the
/// last clone's drop releases it (`WSK_RELEASE_SD`).
#[derive(Clone)]
pub struct CachedSecurityDescriptor {
    inner: Arc<CachedSd>,
}

impl CachedSecurityDescriptor {
    /// The cached descriptor, as the provider returned it.
    #[must_use]
    pub fn as_raw(&self) -> sys::PSECURITY_DESCRIPTOR {
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

struct CachedSd {
    provider: Arc<ProviderInner>,
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
        let Some(control) = self.provider.dispatch().WskControlClient else {
            return;
        };
        let mut input = self.descriptor;
        // SAFETY: the descriptor came from WSK_CACHE_SD of this client and is
        // released once (the last clone); the input lives across this
        // synchronous call; no IRP (the DDI requires none).
        let _ = unsafe {
            control(
                self.provider.client(),
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
}

/// `SO_WSK_SECURITY`: the cached descriptor stays alive (held by the op)
/// until the provider completes.
pub struct SecurityOp<H> {
    _core: Arc<SocketCore<H>>,
    _descriptor: CachedSecurityDescriptor,
    input: sys::PSECURITY_DESCRIPTOR,
}

// SAFETY: `input` is the provider's cached descriptor, usable from any thread.
unsafe impl<H: Send + Sync> Send for SecurityOp<H> {}

impl<H: Send + Sync + 'static> Operation for SecurityOp<H> {
    type Output = Result<()>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
}

/// Sets `SO_WSK_SECURITY` on `core`'s socket to `descriptor`, unless it is
/// `bound` already.
pub(crate) fn submit_security<H: Send + Sync + 'static>(
    core: &Arc<SocketCore<H>>,
    descriptor: &CachedSecurityDescriptor,
    bound: bool,
) -> Request<SecurityOp<H>> {
    let op = SecurityOp {
        _core: Arc::clone(core),
        input: descriptor.as_raw(),
        _descriptor: descriptor.clone(),
    };
    if bound {
        return Request::failed(op, Error::INVALID_DEVICE_STATE);
    }
    if !Arc::ptr_eq(&descriptor.inner.provider, &core.provider)
        && descriptor.inner.provider.client() != core.provider.client()
    {
        // A descriptor cached by another registration's client.
        return Request::failed(op, Error::INVALID_PARAMETER);
    }
    let socket = core.socket();
    // SAFETY: the socket exists; every table starts with the basic one.
    let Some(control) =
        (unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
    else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    Request::submit(op, |irp, op| {
        // SAFETY: the socket exists; the PSECURITY_DESCRIPTOR variable and
        // the cached descriptor it names live in the payload until
        // completion; no output.
        unsafe {
            control(
                socket,
                sys::WskSetOption,
                sys::SO_WSK_SECURITY,
                sys::SOL_SOCKET,
                size_of::<sys::PSECURITY_DESCRIPTOR>(),
                (&raw mut op.input).cast(),
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                irp,
            )
        }
    })
}
