//! Registration with the WSK subsystem and capture of the provider NPI.
//!
//! ```text
//! Registration::register ──► capture / try_capture ──► Provider ──► sockets
//!        ▲                                                 │
//!        └──────── deregister (after every handle drops) ◄─┘
//! ```
//!
//! - [`Registration::register`] calls `WskRegister` (`PASSIVE_LEVEL`).
//! - [`Registration::capture`] calls `WskCaptureProviderNPI` with a time-out
//!   (`PASSIVE_LEVEL`, may wait for the provider to load);
//!   [`Registration::try_capture`] uses `WSK_NO_WAIT` (≤ `DISPATCH_LEVEL`).
//!   The returned [`Provider`] is reference-counted; `WskReleaseProviderNPI`
//!   runs when its last clone — including the ones sockets hold — drops.
//! - [`Registration::deregister`] calls `WskDeregister`, which waits until every
//!   captured NPI is released and every socket closed. It refuses while any
//!   [`Provider`] or socket handle is still alive (that wait would never end),
//!   and waits only for background closes already under way. Dropping a
//!   `Registration` instead never waits: it leaks the registration (the
//!   provider may still use it) and says so with a `DbgPrint` line.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use core::time::Duration;

use wsk_sys as sys;

use crate::irql::{AtMostDispatch, Passive};
use crate::stream::StreamTables;
use crate::{Error, Result};

/// A WSK version (`MAKE_WSK_VERSION(major, minor)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16);

impl Version {
    /// WSK 1.0: Windows Vista and later; every provider supports it.
    pub const V1_0: Self = Self::new(1, 0);

    /// `MAKE_WSK_VERSION(major, minor)`.
    #[must_use]
    pub const fn new(major: u8, minor: u8) -> Self {
        Self(sys::MAKE_WSK_VERSION(major, minor))
    }

    /// `WSK_MAJOR_VERSION`.
    #[must_use]
    pub const fn major(self) -> u8 {
        sys::WSK_MAJOR_VERSION(self.0)
    }

    /// `WSK_MINOR_VERSION`.
    #[must_use]
    pub const fn minor(self) -> u8 {
        sys::WSK_MINOR_VERSION(self.0)
    }
}

/// The running Windows version, as `RtlGetVersion` reports it.
///
/// WSK providers report WSK version 1.0 on every Windows release, yet their
/// dispatch tables grew: `WskGetAddressInfo`, `WskFreeAddressInfo` and
/// `WskGetNameInfo` exist from Windows 7, `WskSendMessages` from Windows 8,
/// stream sockets (`WSK_PROVIDER_STREAM_DISPATCH`, `WskConnectEx`,
/// `WskListen`) from Windows 10 1703, `WskSendEx`/`WskReceiveEx` from
/// Windows 10 1803. Reading a field past the end of an older provider's
/// table would read unrelated memory, so this crate gates every such field
/// on the version recorded at [`Registration::register`] and answers
/// [`Error::NOT_SUPPORTED`] without touching the provider when it is too old.
///
/// Ordered by `(major, minor, build)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowsVersion {
    /// `dwMajorVersion`: 6 for Vista to 8.1, 10 for Windows 10 and 11.
    pub major: u32,
    /// `dwMinorVersion`.
    pub minor: u32,
    /// `dwBuildNumber`.
    pub build: u32,
}

impl WindowsVersion {
    /// Windows Vista (6.0): WSK 1.0, the oldest WSK provider.
    pub const VISTA: Self = Self::new(6, 0, 0);
    /// Windows 7 (6.1): `WskGetAddressInfo`, `WskFreeAddressInfo`,
    /// `WskGetNameInfo` (`NTDDI_WIN7`).
    pub const WINDOWS_7: Self = Self::new(6, 1, 0);
    /// Windows 8 (6.2): `WskSendMessages` (`NTDDI_WIN8`).
    pub const WINDOWS_8: Self = Self::new(6, 2, 0);
    /// Windows 10 1703 (10.0.15063): stream sockets, `WskConnectEx`,
    /// `WskListen` (`NTDDI_WIN10_RS2`).
    pub const WINDOWS_10_1703: Self = Self::new(10, 0, 15063);
    /// Windows 10 1803 (10.0.17134): `WskSendEx`, `WskReceiveEx`.
    pub const WINDOWS_10_1803: Self = Self::new(10, 0, 17134);

    /// A version from its parts.
    #[must_use]
    pub const fn new(major: u32, minor: u32, build: u32) -> Self {
        Self {
            major,
            minor,
            build,
        }
    }

    /// Whether this version is `other` or later.
    #[must_use]
    pub const fn at_least(self, other: Self) -> bool {
        if self.major != other.major {
            return self.major > other.major;
        }
        if self.minor != other.minor {
            return self.minor > other.minor;
        }
        self.build >= other.build
    }

    /// Asks `RtlGetVersion`; the oldest WSK system ([`VISTA`](Self::VISTA))
    /// if it fails, so that nothing newer is assumed.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (`RtlGetVersion`'s requirement).
    fn query(passive: &Passive<'_>) -> Self {
        let _ = passive;
        let mut info = sys::RTL_OSVERSIONINFOW::default();
        // SAFETY: PASSIVE_LEVEL proven; the structure is writable and its
        // size field set.
        let status = unsafe { sys::RtlGetVersion(&raw mut info) };
        if sys::NT_SUCCESS(status) {
            Self::new(info.dwMajorVersion, info.dwMinorVersion, info.dwBuildNumber)
        } else {
            Self::VISTA
        }
    }
}

impl core::fmt::Display for WindowsVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// State shared by the registration, its providers and sockets.
///
/// # Invariants
///
/// `registration` and `client_dispatch`/`client_npi` stay at their address
/// from `WskRegister` until `WskDeregister` returns (the struct is only ever
/// behind an `Arc`).
pub(crate) struct RegInner {
    registration: UnsafeCell<sys::WSK_REGISTRATION>,
    client_dispatch: sys::WSK_CLIENT_DISPATCH,
    client_npi: UnsafeCell<sys::WSK_CLIENT_NPI>,
    /// Provider and socket handles the driver still holds.
    live_handles: AtomicUsize,
    /// The static event mask (`WSK_SET_STATIC_EVENT_CALLBACKS`) in the
    /// `WSK_EVENT_*` bits, plus [`SOCKETS_CREATED`] and [`STATIC_SETTING`].
    static_events: AtomicU32,
    deregistered: AtomicBool,
    /// Queried at registration (`PASSIVE_LEVEL`), so that a capture at
    /// `DISPATCH_LEVEL` needs no `RtlGetVersion` call.
    windows: WindowsVersion,
}

// SAFETY: the WSK registration block is used only through WSK routines, which
// are thread-safe; the rest is atomics and immutable data.
unsafe impl Send for RegInner {}
// SAFETY: as above.
unsafe impl Sync for RegInner {}

impl RegInner {
    fn registration(&self) -> *mut sys::WSK_REGISTRATION {
        self.registration.get()
    }
}

/// `RegInner::static_events` bit: a socket was (or is being) created, so
/// static event callbacks can no longer be set.
const SOCKETS_CREATED: u32 = 1 << 30;
/// `RegInner::static_events` bit: [`Provider::set_static_events`] is
/// talking to the provider.
const STATIC_SETTING: u32 = 1 << 29;
/// The `WSK_EVENT_*` bits of `RegInner::static_events`.
const STATIC_MASK: u32 = !(SOCKETS_CREATED | STATIC_SETTING | sys::WSK_EVENT_DISABLE);

impl RegInner {
    /// The statically enabled events (`WSK_EVENT_*`).
    pub(crate) fn static_events(&self) -> u32 {
        self.static_events.load(Ordering::Acquire) & STATIC_MASK
    }

    /// Records that a socket of a kind whose events are `valid` is about to
    /// be created, whose client dispatch table implements `supported`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] while another thread sets static
    ///   events.
    /// - [`Error::INVALID_PARAMETER`] if a statically enabled event of this
    ///   kind has no callback in the table (the provider would call a
    ///   missing callback).
    pub(crate) fn begin_socket(&self, valid: u32, supported: u32) -> Result<()> {
        let previous = self
            .static_events
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & STATIC_SETTING == 0).then_some(s | SOCKETS_CREATED)
            })
            .map_err(|_| Error::INVALID_DEVICE_STATE)?;
        check_static(previous & STATIC_MASK, valid, supported)
    }

    /// Sets the static events with `set`, which calls the provider, if no
    /// socket was created and none were set yet.
    fn set_static_events(&self, mask: u32, set: impl FnOnce() -> Result<()>) -> Result<()> {
        self.static_events
            .compare_exchange(0, STATIC_SETTING, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| Error::INVALID_DEVICE_STATE)?;
        let result = set();
        let state = if result.is_ok() {
            mask & STATIC_MASK
        } else {
            0
        };
        self.static_events.store(state, Ordering::Release);
        result
    }
}

/// Whether a socket whose table implements `supported` may exist under the
/// static events `statics`, for a socket kind whose events are `valid`.
pub(crate) fn check_static(statics: u32, valid: u32, supported: u32) -> Result<()> {
    if statics & valid & !supported == 0 {
        Ok(())
    } else {
        Err(Error::INVALID_PARAMETER)
    }
}

/// Counts a handle the driver holds, so deregistration can refuse while any
/// is alive.
pub(crate) struct LiveHandle(Arc<RegInner>);

impl LiveHandle {
    fn new(reg: &Arc<RegInner>) -> Self {
        reg.live_handles.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(reg))
    }
}

/// Mints [`LiveHandle`]s without counting as one itself (held by listening
/// sockets for the connections they accept).
pub(crate) struct HandleSource(Arc<RegInner>);

impl HandleSource {
    pub(crate) fn handle(&self) -> LiveHandle {
        LiveHandle::new(&self.0)
    }
}

impl Clone for LiveHandle {
    fn clone(&self) -> Self {
        Self::new(&self.0)
    }
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        self.0.live_handles.fetch_sub(1, Ordering::Release);
    }
}

/// A client registered with the WSK subsystem (`WskRegister`).
///
/// Life cycle: `register` → [`capture`](Self::capture) or
/// [`try_capture`](Self::try_capture) → sockets → drop every handle →
/// [`deregister`](Self::deregister), explicitly, at `PASSIVE_LEVEL` (a
/// registration dropped without it is leaked, with a `DbgPrint` line: `Drop`
/// never waits).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::{Passive, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
/// assert_eq!(registration.live_handles(), 1);
///
/// // Deregistering refuses while a handle is alive and gives the registration back.
/// let registration = registration.deregister(&passive).unwrap_err();
/// drop(provider);
/// assert_eq!(registration.live_handles(), 0);
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct Registration {
    inner: Arc<RegInner>,
}

impl Registration {
    /// Registers a WSK client asking for WSK 1.0.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskRegister`, for example [`Error::INSUFFICIENT_RESOURCES`].
    pub fn register(passive: &Passive<'_>) -> Result<Self> {
        Self::register_version(passive, Version::V1_0)
    }

    /// Registers a WSK client asking for `version` (`WSK_CLIENT_DISPATCH.Version`).
    ///
    /// Also records the running Windows version (`RtlGetVersion`, which
    /// requires `PASSIVE_LEVEL`), so that providers captured later, even
    /// with [`try_capture`](Self::try_capture) at `DISPATCH_LEVEL`, know
    /// which routines exist: see [`Provider::windows_version`].
    ///
    /// Capturing the provider then fails with [`Error::NOINTERFACE`] if the
    /// provider does not support it.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskRegister`.
    pub fn register_version(passive: &Passive<'_>, version: Version) -> Result<Self> {
        let windows = WindowsVersion::query(passive);
        let inner = Arc::new(RegInner {
            // SAFETY: WSK_REGISTRATION is plain data the provider initialises.
            registration: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            client_dispatch: sys::WSK_CLIENT_DISPATCH {
                Version: version.0,
                Reserved: 0,
                WskClientEvent: None,
            },
            client_npi: UnsafeCell::new(sys::WSK_CLIENT_NPI {
                ClientContext: core::ptr::null_mut(),
                Dispatch: core::ptr::null(),
            }),
            live_handles: AtomicUsize::new(0),
            static_events: AtomicU32::new(0),
            deregistered: AtomicBool::new(false),
            windows,
        });
        // SAFETY: the Arc's contents never move; nobody else has access yet.
        unsafe { (*inner.client_npi.get()).Dispatch = &raw const inner.client_dispatch };
        // SAFETY: PASSIVE_LEVEL is proven; both structures live until
        // WskDeregister (invariant of RegInner).
        let status = unsafe { sys::WskRegister(inner.client_npi.get(), inner.registration()) };
        Error::check(status)?;
        Ok(Self { inner })
    }

    /// Captures the provider NPI, waiting up to `timeout` for the WSK
    /// subsystem to become ready (`WskCaptureProviderNPI`). `None` waits
    /// forever (`WSK_INFINITE_WAIT`).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::DEVICE_NOT_READY`]: the provider did not become ready in time.
    /// - [`Error::NOINTERFACE`]: the provider does not support the registered version.
    pub fn capture(&self, passive: &Passive<'_>, timeout: Option<Duration>) -> Result<Provider> {
        let _ = passive;
        let wait = match timeout {
            None => sys::WSK_INFINITE_WAIT,
            // A finite wait never means "no wait" or "forever".
            Some(t) => u32::try_from(t.as_millis())
                .unwrap_or(sys::WSK_INFINITE_WAIT - 1)
                .clamp(1, sys::WSK_INFINITE_WAIT - 1),
        };
        // SAFETY: PASSIVE_LEVEL proven, as a waiting capture requires.
        unsafe { self.capture_raw(wait) }
    }

    /// Captures the provider NPI without waiting (`WSK_NO_WAIT`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::DEVICE_NOT_READY`]: the provider is not ready yet.
    /// - [`Error::NOINTERFACE`]: the provider does not support the registered version.
    pub fn try_capture(&self, context: &AtMostDispatch<'_>) -> Result<Provider> {
        let _ = context;
        // SAFETY: WSK_NO_WAIT is callable at <= DISPATCH_LEVEL.
        unsafe { self.capture_raw(sys::WSK_NO_WAIT) }
    }

    /// # Safety
    ///
    /// IRQL is `PASSIVE_LEVEL` unless `wait` is `WSK_NO_WAIT`.
    unsafe fn capture_raw(&self, wait: u32) -> Result<Provider> {
        // SAFETY: WSK_PROVIDER_NPI is plain data the provider fills in.
        let mut npi: sys::WSK_PROVIDER_NPI = unsafe { core::mem::zeroed() };
        // SAFETY: the registration is live (we hold it); IRQL per caller contract.
        let status =
            unsafe { sys::WskCaptureProviderNPI(self.inner.registration(), wait, &raw mut npi) };
        Error::check(status)?;
        let windows = self.inner.windows;
        // SAFETY: the NPI was just captured, so its table is valid; the copy
        // reads only the fields `windows` says it has.
        let dispatch = unsafe { copy_provider_dispatch(npi.Dispatch, windows) };
        Ok(Provider {
            inner: Arc::new(ProviderInner {
                reg: Arc::clone(&self.inner),
                npi,
                dispatch,
                windows,
                stream_tables: StreamTables::new(),
            }),
            live: LiveHandle::new(&self.inner),
        })
    }

    /// Deregisters the client (`WskDeregister`), waiting for sockets that are
    /// closing in the background.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    ///
    /// Gives the registration back while any [`Provider`] or socket handle is
    /// still alive: drop or close them first.
    pub fn deregister(self, passive: &Passive<'_>) -> Result<(), Self> {
        if self.inner.live_handles.load(Ordering::Acquire) != 0 {
            return Err(self);
        }
        let _ = passive;
        // SAFETY: PASSIVE_LEVEL proven; no handle can capture or create anew.
        unsafe { self.deregister_now() };
        Ok(())
    }

    /// Provider and socket handles still alive.
    #[must_use]
    pub fn live_handles(&self) -> usize {
        self.inner.live_handles.load(Ordering::Acquire)
    }

    /// # Safety
    ///
    /// `PASSIVE_LEVEL`, and no live handle remains.
    unsafe fn deregister_now(&self) {
        if !self.inner.deregistered.swap(true, Ordering::AcqRel) {
            // SAFETY: per the caller; WskDeregister waits for background closes
            // and NPI releases, after which nothing uses the registration.
            unsafe { sys::WskDeregister(self.inner.registration()) };
        }
    }
}

impl Drop for Registration {
    /// Never waits, deregisters or panics: a `Registration` may be dropped
    /// anywhere (in a callback, at `DISPATCH_LEVEL`, by a handler that owns
    /// it), where `WskDeregister` must not be called.
    ///
    /// If [`deregister`](Registration::deregister) was not called, the WSK
    /// subsystem may still use the registration block and the client NPI:
    /// they are leaked, never freed, and a `DbgPrint` line says so. A driver
    /// must deregister explicitly before it unloads.
    fn drop(&mut self) {
        if self.inner.deregistered.load(Ordering::Acquire) {
            return;
        }
        // The provider may still reach this memory: keep it forever.
        core::mem::forget(Arc::clone(&self.inner));
        // SAFETY: both strings are NUL-terminated and static; "%s" with one
        // string argument is the form every build declares; DbgPrint is
        // callable at any IRQL with a non-pageable format.
        unsafe {
            sys::DbgPrint(
                c"%s".as_ptr().cast(),
                c"wsk: Registration dropped without deregister(&Passive): its registration is leaked and WskDeregister was never called\n".as_ptr(),
            );
        }
    }
}

impl core::fmt::Debug for Registration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registration")
            .field("live_handles", &self.live_handles())
            .finish()
    }
}

/// A captured provider NPI; releases it (`WskReleaseProviderNPI`) when the
/// last user — this handle, its clones, or a socket — is gone.
pub(crate) struct ProviderInner {
    reg: Arc<RegInner>,
    npi: sys::WSK_PROVIDER_NPI,
    /// The provider's table as far as the running Windows version has it;
    /// later fields are `None`.
    dispatch: sys::WSK_PROVIDER_DISPATCH,
    windows: WindowsVersion,
    /// Connection and listen views of the provider's stream-socket tables.
    pub(crate) stream_tables: StreamTables,
}

/// Copies a provider's `WSK_PROVIDER_DISPATCH`, reading only the fields
/// `windows` has (Vista's table ends after `WskControlClient`); the others
/// are `None`.
///
/// # Safety
///
/// `table` points to a valid provider table of a system running `windows`.
unsafe fn copy_provider_dispatch(
    table: *const sys::WSK_PROVIDER_DISPATCH,
    windows: WindowsVersion,
) -> sys::WSK_PROVIDER_DISPATCH {
    if windows.at_least(WindowsVersion::WINDOWS_7) {
        // SAFETY: Windows 7 and later tables have every field (caller contract).
        return unsafe { table.read() };
    }
    // SAFETY: every WSK table has the WSK 1.0 (Vista) fields (caller
    // contract); the prefix type has their layout.
    let vista = unsafe { table.cast::<VistaProviderDispatch>().read() };
    sys::WSK_PROVIDER_DISPATCH {
        Version: vista.Version,
        Reserved: vista.Reserved,
        WskSocket: vista.WskSocket,
        WskSocketConnect: vista.WskSocketConnect,
        WskControlClient: vista.WskControlClient,
        WskGetAddressInfo: None,
        WskFreeAddressInfo: None,
        WskGetNameInfo: None,
    }
}

/// Windows Vista's `WSK_PROVIDER_DISPATCH`: the fields up to
/// `WskControlClient` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_snake_case)] // the C field names
struct VistaProviderDispatch {
    Version: sys::USHORT,
    Reserved: sys::USHORT,
    WskSocket: sys::PFN_WSK_SOCKET,
    WskSocketConnect: sys::PFN_WSK_SOCKET_CONNECT,
    WskControlClient: sys::PFN_WSK_CONTROL_CLIENT,
}

const _: () = assert!(size_of::<VistaProviderDispatch>() == 32);
const _: () = assert!(
    core::mem::offset_of!(VistaProviderDispatch, WskControlClient)
        == core::mem::offset_of!(sys::WSK_PROVIDER_DISPATCH, WskControlClient)
);

// SAFETY: the NPI is immutable after capture and WSK routines are thread-safe.
unsafe impl Send for ProviderInner {}
// SAFETY: as above.
unsafe impl Sync for ProviderInner {}

impl ProviderInner {
    pub(crate) fn client(&self) -> sys::PWSK_CLIENT {
        self.npi.Client
    }

    /// Counts a handle that is not a [`LiveHandle`] value (a retained
    /// indication), so deregistration refuses while it exists.
    pub(crate) fn add_live(&self) {
        self.reg.live_handles.fetch_add(1, Ordering::Relaxed);
    }

    /// Uncounts a handle counted with [`add_live`](Self::add_live).
    pub(crate) fn remove_live(&self) {
        self.reg.live_handles.fetch_sub(1, Ordering::Release);
    }

    /// The provider's table, with the fields the running Windows lacks
    /// set to `None`.
    pub(crate) fn dispatch(&self) -> &sys::WSK_PROVIDER_DISPATCH {
        &self.dispatch
    }

    /// The registration's static-events state.
    pub(crate) fn reg(&self) -> &RegInner {
        &self.reg
    }

    /// Sets static events through the registration's state machine.
    pub(crate) fn set_static_events(
        &self,
        mask: u32,
        set: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        self.reg.set_static_events(mask, set)
    }

    /// The Windows version recorded at registration.
    pub(crate) fn windows(&self) -> WindowsVersion {
        self.windows
    }

    /// Counts a new handle (for a socket created from this provider).
    pub(crate) fn live_handle(&self) -> LiveHandle {
        LiveHandle::new(&self.reg)
    }
}

impl Drop for ProviderInner {
    fn drop(&mut self) {
        // SAFETY: one release per capture; IRQL <= DISPATCH_LEVEL wherever
        // handles drop; the registration outlives us (we hold it).
        unsafe { sys::WskReleaseProviderNPI(self.reg.registration()) };
    }
}

/// The captured WSK provider: the entry point for creating sockets and
/// resolving names.
///
/// Cheap to clone; the NPI is released when the last clone and the last
/// socket created from it are gone.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # sim.add_name("echo.example", &["10.0.0.2"]);
/// use wsk::{Family, Passive, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let addresses = provider.resolve(&passive, "echo.example", Some("7"), Family::V4)?;
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
    pub(crate) live: LiveHandle,
}

impl Provider {
    /// The WSK version the provider runs for this client
    /// (`WSK_PROVIDER_DISPATCH.Version`).
    #[must_use]
    pub fn version(&self) -> Version {
        // SAFETY: the provider's table is valid while the NPI is captured.
        Version(unsafe { (*self.inner.npi.Dispatch).Version })
    }

    /// The Windows version, as `RtlGetVersion` reported it at
    /// [`Registration::register`]: it decides which provider routines exist
    /// (see [`WindowsVersion`]).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn windows_version(&self) -> WindowsVersion {
        self.inner.windows
    }

    pub(crate) fn live_handle(&self) -> LiveHandle {
        self.live.clone()
    }

    pub(crate) fn handle_source(&self) -> HandleSource {
        HandleSource(Arc::clone(&self.inner.reg))
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
    /// - [`Error::NOT_IMPLEMENTED`]: the provider lacks `WskControlClient`
    ///   (Wine's `netio.sys` stub).
    /// - [`Error::INSUFFICIENT_RESOURCES`]: the list could not be allocated.
    /// - Other provider statuses.
    pub fn transports(&self) -> Result<Vec<Transport>> {
        let Some(control) = self.inner.dispatch().WskControlClient else {
            return Err(Error::NOT_IMPLEMENTED);
        };
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
                    self.inner.client(),
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
            return Ok(list.iter().map(Transport::from_raw).collect());
        }
        Err(Error::BUFFER_TOO_SMALL)
    }
}

/// One transport the provider offers (`WSK_TRANSPORT`), from
/// [`Provider::transports`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    /// The transport's version.
    pub version: u16,
    /// The socket type (`SOCK_STREAM`, `SOCK_DGRAM`, ...).
    pub socket_type: u16,
    /// The protocol (`IPPROTO_TCP`, `IPPROTO_UDP`, ...).
    pub protocol: u32,
    /// The address family (`AF_INET`, `AF_INET6`).
    pub family: sys::ADDRESS_FAMILY,
    /// The provider's identifier.
    pub provider_id: sys::GUID,
}

impl Transport {
    fn from_raw(raw: &sys::WSK_TRANSPORT) -> Self {
        Self {
            version: raw.Version,
            socket_type: raw.SocketType,
            protocol: raw.Protocol,
            family: raw.AddressFamily,
            provider_id: raw.ProviderId,
        }
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
