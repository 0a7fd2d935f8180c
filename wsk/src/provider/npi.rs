//! The state the registration, its providers and its sockets share: the
//! registration block and client NPI (`RegInner`), the count of handles
//! that keep the NPI in use (`LiveHandle`), and a captured provider NPI
//! with its copied dispatch table (`ProviderInner`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::debug;

use wsk_sys as sys;

use super::tables::StreamTables;
use super::teardown::Teardown;
use super::version::{Version, WindowsVersion};
use crate::error::{Error, Result};
use crate::irp::block::InFlight;
use crate::irql::{AtMostDispatch, Passive, SpinLock};

/// `NPI_WSK_INTERFACE_ID` at a fixed address, for the
/// `WSK_EVENT_CALLBACK_CONTROL` of static and per-socket event control.
static NPI_WSK_INTERFACE_ID: sys::NPIID = sys::NPI_WSK_INTERFACE_ID;

/// The input of `SO_WSK_EVENT_CALLBACK` and `WSK_SET_STATIC_EVENT_CALLBACKS`:
/// `mask` of the WSK NPI's events.
pub(crate) fn event_callback_control(mask: u32) -> sys::WSK_EVENT_CALLBACK_CONTROL {
    sys::WSK_EVENT_CALLBACK_CONTROL {
        NpiId: (&raw const NPI_WSK_INTERFACE_ID).cast_mut(),
        EventMask: mask,
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
    /// The open sockets and the run-down of client-level calls, which
    /// deregistration winds down.
    pub(crate) teardown: Teardown,
    /// Sockets not closed yet (created, accepted, or being created or
    /// accepted by a request the provider holds): deregistration waits
    /// until it is zero before `WskDeregister`, which would otherwise wait
    /// for them forever.
    open_sockets: AtomicUsize,
    /// Captures not released, plus [`FORCED`] once deregistration released
    /// them itself.
    captures: AtomicUsize,
    /// Client-level IRPs (`WskSocket`, `WskControlClient`, name
    /// resolution) of this registration whose completion (routine, or the
    /// DPC waking a foreign waker) has not finished (see
    /// [`Operation::inflight`](crate::request::Operation::inflight)).
    inflight: InFlight,
    /// The same for IRPs passed to a socket's routines: these all complete
    /// once the socket is closed, so deregistration waits for them before
    /// it counts the captures still held.
    socket_inflight: InFlight,
    /// Security descriptors cached (`WSK_CACHE_SD`) and not released yet:
    /// whoever removes one from the list releases it — its handle's last
    /// drop, or deregistration.
    security: SpinLock<Vec<CachedEntry>>,
}

/// A cached security descriptor and what releasing it needs: the client
/// and `WskControlClient` of the capture that cached it.
#[derive(Clone, Copy)]
pub(crate) struct CachedEntry {
    pub(crate) descriptor: sys::PSECURITY_DESCRIPTOR,
    pub(crate) client: sys::PWSK_CLIENT,
    pub(crate) control: sys::PFN_WSK_CONTROL_CLIENT,
}

// SAFETY: provider pointers, usable from any thread.
unsafe impl Send for CachedEntry {}

/// `RegInner::captures` bit: deregistration released every capture; a
/// `ProviderInner` dropped later releases nothing.
const FORCED: usize = 1 << (usize::BITS - 1);

// SAFETY: the WSK registration block is used only through WSK routines, which
// are thread-safe; the rest is atomics and immutable data.
unsafe impl Send for RegInner {}
// SAFETY: as above.
unsafe impl Sync for RegInner {}

impl RegInner {
    /// Registers a client asking for `version` (`WskRegister`) and records
    /// the running Windows version.
    ///
    /// # Errors
    ///
    /// The status of `WskRegister`.
    pub(crate) fn register(passive: &Passive<'_>, version: Version) -> Result<Arc<Self>> {
        let windows = WindowsVersion::query(passive);
        let inner = Arc::new(Self {
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
            teardown: Teardown::new(),
            open_sockets: AtomicUsize::new(0),
            captures: AtomicUsize::new(0),
            inflight: InFlight::new(),
            socket_inflight: InFlight::new(),
            security: SpinLock::new(Vec::new()),
        });
        // SAFETY: the Arc's contents never move; nobody else has access yet.
        unsafe { (*inner.client_npi.get()).Dispatch = &raw const inner.client_dispatch };
        // SAFETY: once, before any request (none can exist before the
        // registration is returned), in the Arc's non-paged memory, which
        // outlives deregistration's `quiesce` (a deregistration holds it).
        unsafe { inner.inflight.init() };
        // SAFETY: as above.
        unsafe { inner.socket_inflight.init() };
        // SAFETY: PASSIVE_LEVEL is proven; both structures live until
        // WskDeregister (invariant).
        let status = unsafe { sys::WskRegister(inner.client_npi.get(), inner.registration()) };
        Error::check(status)?;
        Ok(inner)
    }

    fn registration(&self) -> *mut sys::WSK_REGISTRATION {
        self.registration.get()
    }

    /// Provider and socket handles still alive.
    pub(crate) fn live_handles(&self) -> usize {
        self.live_handles.load(Ordering::Acquire)
    }

    /// Whether `WskDeregister` was called.
    pub(crate) fn is_deregistered(&self) -> bool {
        self.deregistered.load(Ordering::Acquire)
    }

    /// Calls `WskDeregister` once.
    ///
    /// # Safety
    ///
    /// `PASSIVE_LEVEL`; every socket is closed (or its close completing)
    /// and every capture released, so the wait ends.
    pub(crate) unsafe fn deregister(&self) {
        if !self.deregistered.swap(true, Ordering::AcqRel) {
            // SAFETY: per the caller.
            unsafe { sys::WskDeregister(self.registration()) };
        }
    }

    /// The count of this registration's client-level IRPs whose completion
    /// has not finished.
    pub(crate) fn inflight(&self) -> &InFlight {
        &self.inflight
    }

    /// The count of this registration's socket-level IRPs whose completion
    /// has not finished.
    pub(crate) fn socket_inflight(&self) -> &InFlight {
        &self.socket_inflight
    }

    /// Counts a socket being created or accepted (the request reached the
    /// provider), or one the provider handed over in an accept callback.
    pub(crate) fn socket_opening(&self) {
        self.open_sockets.fetch_add(1, Ordering::Relaxed);
    }

    /// Uncounts a socket: its close completed, the provider closed it (an
    /// accept callback rejected it), or the request that was to create it
    /// completed without one.
    pub(crate) fn socket_gone(&self) {
        self.open_sockets.fetch_sub(1, Ordering::Release);
    }

    /// Sockets counted by [`socket_opening`](Self::socket_opening) and not
    /// yet gone.
    pub(crate) fn open_sockets(&self) -> usize {
        self.open_sockets.load(Ordering::Acquire)
    }

    /// Runs `f` on the list of cached security descriptors, under its lock.
    fn security<R>(&self, f: impl FnOnce(&mut Vec<CachedEntry>) -> R) -> R {
        // SAFETY: callers run at <= DISPATCH_LEVEL (handles drop there).
        let context = unsafe { AtMostDispatch::new_unchecked() };
        self.security
            .with_at_most_dispatch(&context, |list, _| f(list))
    }

    /// Records a cached security descriptor; `Err` if the list cannot grow.
    pub(crate) fn cached_security(&self, entry: CachedEntry) -> Result<()> {
        self.security(|list| {
            list.try_reserve(1)
                .map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
            list.push(entry);
            Ok(())
        })
    }

    /// Takes `descriptor` off the list: true if the caller must release it
    /// (deregistration did not).
    pub(crate) fn uncache_security(&self, descriptor: sys::PSECURITY_DESCRIPTOR) -> bool {
        self.security(|list| {
            let at = list.iter().position(|d| d.descriptor == descriptor);
            at.map(|i| list.swap_remove(i)).is_some()
        })
    }

    /// Takes every cached descriptor off the list, for deregistration to
    /// release.
    pub(crate) fn take_security(&self) -> Vec<CachedEntry> {
        self.security(core::mem::take)
    }

    /// Records a capture.
    fn captured(&self) {
        self.captures.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the caller must release one capture: false once
    /// deregistration released them all.
    fn release_capture(&self) -> bool {
        self.captures
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                if n & FORCED == 0 {
                    n.checked_sub(1)
                } else {
                    None
                }
            })
            .is_ok()
    }

    /// Releases every capture still held (`WskReleaseProviderNPI` once
    /// each) and makes later drops release nothing; returns how many.
    ///
    /// # Safety
    ///
    /// Client-level calls are shut and drained (none is in progress or can
    /// start), as calls through a released NPI are forbidden.
    pub(crate) unsafe fn release_all_captures(&self) -> usize {
        let held = self.captures.swap(FORCED, Ordering::AcqRel) & !FORCED;
        for _ in 0..held {
            // SAFETY: one release per capture not yet released; IRQL is
            // PASSIVE_LEVEL (deregistration), no call uses the NPI any more
            // (caller contract).
            unsafe { sys::WskReleaseProviderNPI(self.registration()) };
        }
        if held != 0 {
            debug::line(format_args!(
                "deregister: released {held} provider capture(s) still held by Provider handles, sockets or requests the driver kept"
            ));
        }
        held
    }
}

/// `RegInner::static_events` bit: a socket was (or is being) created, so
/// static event callbacks can no longer be set.
const SOCKETS_CREATED: u32 = 1 << 30;
/// `RegInner::static_events` bit: [`Provider::set_static_events`](crate::Provider::set_static_events)
/// is talking to the provider.
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
    pub(crate) fn set_static_events(
        &self,
        mask: u32,
        set: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
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

/// Counts a handle the driver holds, for
/// [`Registration::live_handles`](crate::Registration::live_handles).
pub(crate) struct LiveHandle(Arc<RegInner>);

impl LiveHandle {
    pub(crate) fn new(reg: &Arc<RegInner>) -> Self {
        reg.live_handles.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(reg))
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

/// A captured provider NPI; releases it (`WskReleaseProviderNPI`) when the
/// last user — this handle, its clones, or a socket — is gone.
pub(crate) struct ProviderInner {
    reg: Arc<RegInner>,
    npi: sys::WSK_PROVIDER_NPI,
    /// The provider's table as far as the running Windows version has it;
    /// later fields are `None`.
    dispatch: sys::WSK_PROVIDER_DISPATCH,
    windows: WindowsVersion,
    /// `MmGetSystemAddressForMdlSafe`'s `Priority` for indicated MDLs on
    /// this system (computed once: the data path reads it per indication).
    mapping_priority: sys::ULONG,
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
    /// Captures the provider NPI of `reg` (`WskCaptureProviderNPI`), waiting
    /// `wait` milliseconds (`WSK_NO_WAIT`, `WSK_INFINITE_WAIT` or between).
    ///
    /// # Errors
    ///
    /// The status of `WskCaptureProviderNPI`.
    ///
    /// # Safety
    ///
    /// IRQL is `PASSIVE_LEVEL` unless `wait` is `WSK_NO_WAIT` (then ≤
    /// `DISPATCH_LEVEL`).
    pub(crate) unsafe fn capture(reg: &Arc<RegInner>, wait: u32) -> Result<Self> {
        // A capture counts as a client-level call: none starts once
        // deregistration began.
        let call = reg.teardown.enter()?;
        // SAFETY: WSK_PROVIDER_NPI is plain data the provider fills in.
        let mut npi: sys::WSK_PROVIDER_NPI = unsafe { core::mem::zeroed() };
        // SAFETY: the registration is live (the caller holds it); IRQL per
        // the caller's contract.
        let status = unsafe { sys::WskCaptureProviderNPI(reg.registration(), wait, &raw mut npi) };
        Error::check(status)?;
        reg.captured();
        drop(call);
        let windows = reg.windows;
        // SAFETY: the NPI was just captured, so its table is valid; the copy
        // reads only the fields `windows` says it has.
        let dispatch = unsafe { copy_provider_dispatch(npi.Dispatch, windows) };
        Ok(Self {
            reg: Arc::clone(reg),
            npi,
            dispatch,
            windows,
            mapping_priority: crate::mdl::mapping_priority(windows),
            stream_tables: StreamTables::new(),
        })
    }

    /// The WSK version the provider runs for this client
    /// (`WSK_PROVIDER_DISPATCH.Version`).
    pub(crate) fn version(&self) -> Version {
        Version(self.dispatch.Version)
    }

    pub(crate) fn client(&self) -> sys::PWSK_CLIENT {
        self.npi.Client
    }

    /// Counts a handle that is not a [`LiveHandle`] value (a retained
    /// indication), for [`Registration::live_handles`](crate::Registration::live_handles).
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

    /// The registration's shared state.
    pub(crate) fn reg(&self) -> &RegInner {
        &self.reg
    }

    /// A strong reference to the registration's shared state.
    pub(crate) fn reg_arc(&self) -> Arc<RegInner> {
        Arc::clone(&self.reg)
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

    /// The `Priority` argument of `MmGetSystemAddressForMdlSafe` for
    /// indicated MDLs ([`crate::mdl::mapping_priority`]).
    #[inline]
    pub(crate) fn mapping_priority(&self) -> sys::ULONG {
        self.mapping_priority
    }

    /// Counts a new handle (for a socket created from this provider).
    pub(crate) fn live_handle(&self) -> LiveHandle {
        LiveHandle::new(&self.reg)
    }
}

impl Drop for ProviderInner {
    fn drop(&mut self) {
        if self.reg.release_capture() {
            // SAFETY: one release per capture (deregistration released none
            // of ours); IRQL <= DISPATCH_LEVEL wherever handles drop; the
            // registration outlives us (we hold it).
            unsafe { sys::WskReleaseProviderNPI(self.reg.registration()) };
        }
    }
}
