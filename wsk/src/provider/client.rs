//! The captured provider and everything it does: [`Provider`], with every
//! method in this one `impl` (the longer bodies live next to their payload
//! types in `names.rs` and `control.rs`).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::control::{self, CachedSecurityDescriptor, StaticEvents, Transport, TransportChangeOp};
use super::names::{self, NameInfoFlags};
use super::npi::{LiveHandle, ProviderInner};
use super::version::{Version, WindowsVersion};
use crate::addr::AddressFamily;
use crate::error::Result;
use crate::irp::handle::Request;
use crate::irql::Passive;

/// The captured WSK provider: the entry point for creating sockets and
/// resolving names.
///
/// Cheap to clone; the NPI is released when the last clone and the last
/// socket created from it are gone.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # sim.add_name("echo.example", &["10.0.0.2"]);
/// use wsk::{AddressFamily, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let addresses = provider.resolve(&passive, "echo.example", Some("7"), Some(AddressFamily::V4))?;
/// assert_eq!(addresses, ["10.0.0.2:7".parse().unwrap()]);
///
/// drop(provider);
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
#[derive(Clone)]
pub struct Provider {
    pub(crate) inner: Arc<ProviderInner>,
    /// This handle counts as a live handle of the registration.
    live: LiveHandle,
}

impl Provider {
    /// A handle on a freshly captured NPI.
    pub(crate) fn new(inner: Arc<ProviderInner>) -> Self {
        let live = inner.live_handle();
        Self { inner, live }
    }

    /// A live handle for a socket created from this provider.
    pub(crate) fn live_handle(&self) -> LiveHandle {
        self.live.clone()
    }

    /// The WSK version the provider runs for this client
    /// (`WSK_PROVIDER_DISPATCH.Version`).
    #[must_use]
    pub fn version(&self) -> Version {
        self.inner.version()
    }

    /// The Windows version, as `RtlGetVersion` reported it at
    /// [`Registration::register`](crate::Registration::register): it decides which provider routines exist
    /// (see [`WindowsVersion`]).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn windows_version(&self) -> WindowsVersion {
        self.inner.windows()
    }

    /// The transports the provider offers (`WskControlClient` with
    /// `WSK_TRANSPORT_LIST_QUERY`, which takes no IRP and returns at once).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_IMPLEMENTED`](crate::Error::NOT_IMPLEMENTED): the provider lacks `WskControlClient`
    ///   (Wine's `netio.sys` stub).
    /// - [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES): the list could not be allocated.
    /// - Other provider statuses.
    pub fn transports(&self) -> Result<Vec<Transport>> {
        control::transports(&self.inner)
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
    /// - [`Error::NOT_IMPLEMENTED`](crate::Error::NOT_IMPLEMENTED): the provider lacks `WskControlClient`.
    /// - [`Error::CANCELLED`](crate::Error::CANCELLED) when cancelled; other provider statuses.
    pub fn transport_list_change(&self) -> Request<TransportChangeOp> {
        control::transport_list_change(&self.inner)
    }

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
    /// [`Error::INVALID_PARAMETER`](crate::Error::INVALID_PARAMETER); [`StreamListener::accept`](crate::tcp::StreamListener::accept)
    /// checks the same. The `enable_events` methods leave static events
    /// out.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`. Takes no IRP: returns at once.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`](crate::Error::INVALID_DEVICE_STATE) without calling the provider when
    ///   a socket of this registration was already created, or static
    ///   events were already set (or are being set on another thread).
    /// - [`Error::INVALID_PARAMETER`](crate::Error::INVALID_PARAMETER) without calling the provider for an
    ///   empty `events`.
    /// - [`Error::NOT_IMPLEMENTED`](crate::Error::NOT_IMPLEMENTED): the provider lacks `WskControlClient`.
    /// - Other provider statuses.
    pub fn set_static_events(&self, events: StaticEvents) -> Result<()> {
        control::set_static_events(&self.inner, events)
    }

    /// Caches a copy of the security descriptor `descriptor`
    /// (`WskControlClient` with `WSK_CACHE_SD`, which takes no IRP); the
    /// copy is released (`WSK_RELEASE_SD`) when the last clone of the
    /// returned handle is dropped. Pass it to [`ListenSocket::set_security`](crate::tcp::ListenSocket::set_security)
    /// or [`DatagramSocket::set_security`](crate::udp::DatagramSocket::set_security).
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
    /// - [`Error::NOT_IMPLEMENTED`](crate::Error::NOT_IMPLEMENTED): the provider lacks `WskControlClient`.
    /// - [`Error::UNSUCCESSFUL`](crate::Error::UNSUCCESSFUL) if the provider returned no copy.
    /// - Other provider statuses, for example [`Error::INVALID_PARAMETER`](crate::Error::INVALID_PARAMETER)
    ///   or [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES).
    ///
    /// # Safety
    ///
    /// `descriptor` points to a valid `SECURITY_DESCRIPTOR` for the
    /// duration of the call (the provider copies it).
    pub unsafe fn cache_security_descriptor(
        &self,
        descriptor: sys::PSECURITY_DESCRIPTOR,
    ) -> Result<CachedSecurityDescriptor> {
        // SAFETY: forwarded caller contract.
        unsafe { control::cache_security_descriptor(&self.inner, descriptor) }
    }

    /// Resolves `host` (and `service`, a port number or service name) to
    /// socket addresses of `family` (`None`: IPv4 and IPv6, `AF_UNSPEC`)
    /// with `WskGetAddressInfo`, waiting for the answer.
    ///
    /// The provider's result list is copied and freed before returning.
    /// Duplicate addresses are removed; the provider's order is kept.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`); may wait for DNS, whose
    /// time-outs the provider applies.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`](crate::Error::INVALID_PARAMETER): `host` or `service` is empty, contains
    ///   NUL, or is longer than a `UNICODE_STRING` holds.
    /// - [`Error::NOT_SUPPORTED`](crate::Error::NOT_SUPPORTED): the running Windows is older than
    ///   Windows 7, whose provider table has no `WskGetAddressInfo` (see
    ///   [`WindowsVersion`]); the provider is not called.
    /// - [`Error::NOT_IMPLEMENTED`](crate::Error::NOT_IMPLEMENTED): the provider left `WskGetAddressInfo`
    ///   or `WskFreeAddressInfo` empty.
    /// - Provider statuses: an unknown host is `STATUS_NO_MATCH` on the
    ///   `WskGetAddressInfo` page (`Error::from_raw(STATUS_NO_MATCH)`, an unnamed error; some
    ///   providers answer [`Error::NOT_FOUND`](crate::Error::NOT_FOUND) or
    ///   [`Error::BAD_NETWORK_PATH`](crate::Error::BAD_NETWORK_PATH)).
    pub fn resolve(
        &self,
        passive: &Passive<'_>,
        host: &str,
        service: Option<&str>,
        family: Option<AddressFamily>,
    ) -> Result<Vec<SocketAddr>> {
        names::resolve(&self.inner, passive, host, service, family)
    }

    /// Translates `addr` to a host name and a service name
    /// (`WskGetNameInfo`), waiting for the answer. `flags` are the `NI_*`
    /// flags of `getnameinfo` ([`NameInfoFlags`]); empty flags ask for
    /// names, falling back to numeric forms.
    ///
    /// The output strings are `NI_MAXHOST` and `NI_MAXSERV` characters long,
    /// owned by the request until the provider completes it.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`); may wait for reverse DNS.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_SUPPORTED`](crate::Error::NOT_SUPPORTED): the running Windows is older than
    ///   Windows 7, whose provider table has no `WskGetNameInfo` (see
    ///   [`WindowsVersion`]); the provider is not called.
    /// - [`Error::NOT_IMPLEMENTED`](crate::Error::NOT_IMPLEMENTED): the provider left `WskGetNameInfo`
    ///   empty (Wine's `netio.sys` stub).
    /// - Provider statuses, for example `STATUS_NO_MATCH` (as the
    ///   `WskGetNameInfo` page says; some providers answer
    ///   [`Error::NOT_FOUND`](crate::Error::NOT_FOUND)) with
    ///   [`NameInfoFlags::NAME_REQUIRED`] for an address without a name, or
    ///   [`Error::BUFFER_OVERFLOW`](crate::Error::BUFFER_OVERFLOW).
    pub fn name_info(
        &self,
        passive: &Passive<'_>,
        addr: SocketAddr,
        flags: NameInfoFlags,
    ) -> Result<(String, Option<String>)> {
        names::name_info(&self.inner, passive, addr, flags)
    }
}

impl core::fmt::Debug for Provider {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Provider")
            .field("version", &self.version())
            .field("windows", &self.windows_version())
            .finish()
    }
}
