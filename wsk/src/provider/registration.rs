//! Registration with the WSK subsystem and capture of the provider NPI.
//!
//! ```text
//! Registration::register ──► capture / try_capture ──► Provider ──► sockets
//!        ▲                                                 │
//!        └──── deregister (closes what is left, then returns) ◄─┘
//! ```
//!
//! - [`Registration::register`] calls `WskRegister` (`PASSIVE_LEVEL`).
//! - [`Registration::capture`] calls `WskCaptureProviderNPI` with a time-out
//!   (`PASSIVE_LEVEL`, may wait for the provider to load);
//!   [`Registration::try_capture`] uses `WSK_NO_WAIT` (≤ `DISPATCH_LEVEL`).
//!   The returned [`Provider`] is reference-counted; `WskReleaseProviderNPI`
//!   runs when its last clone — including the ones sockets hold — drops.
//! - [`Registration::deregister`] calls `WskDeregister`, which waits until every
//!   captured NPI is released and every socket closed. Whatever the driver
//!   still holds or leaked it closes and releases first (that wait would
//!   never end otherwise), reporting each with a `DbgPrint` line and in its
//!   `Err` ([`Leftovers`]); see [`teardown`](super::teardown) for why that
//!   is sound. Dropping a `Registration` instead never waits: it leaks the
//!   registration (the provider may still use it) and says so with a
//!   `DbgPrint` line.

use alloc::sync::Arc;
use core::time::Duration;

use wsk_sys as sys;

use super::client::Provider;
use super::control::release_security;
use super::npi::{ProviderInner, RegInner};
use super::teardown::{self, Leftovers};
use super::version::Version;
use crate::debug;
use crate::error::Result;
use crate::irp::block::{has_deferred, run_deferred};
use crate::irql::{AtMostDispatch, Passive};

/// Drains the deferred-disposal list until it is empty (waiting for another
/// thread that drains it).
pub(crate) fn run_deferred_all(passive: &Passive<'_>) {
    while has_deferred() {
        if !run_deferred() {
            passive.sleep(Duration::from_millis(1));
        }
    }
}

/// A client registered with the WSK subsystem (`WskRegister`).
///
/// Life cycle: `register` → [`capture`](Self::capture) or
/// [`try_capture`](Self::try_capture) → sockets → close and drop every
/// handle → [`deregister`](Self::deregister), explicitly, at
/// `PASSIVE_LEVEL`, which closes whatever the driver left open (a
/// registration dropped without it is leaked, with a `DbgPrint` line: `Drop`
/// never waits).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::Registration;
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
/// assert_eq!(registration.live_handles(), 1);
/// drop(provider);
/// assert_eq!(registration.live_handles(), 0);
/// registration.deregister(&passive).expect("nothing left behind");
///
/// // A handle kept (or leaked) is closed or released by deregister, which says so.
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
/// let left = registration.deregister(&passive).unwrap_err();
/// assert_eq!(left.providers, 1);
/// // The handle stays safe to use: calls through it are refused.
/// assert_eq!(provider.transports().unwrap_err(), wsk::Error::DEVICE_NOT_READY);
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
    /// The status of `WskRegister`, for example [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES).
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
    /// Capturing the provider then fails with [`Error::NOINTERFACE`](crate::Error::NOINTERFACE) if the
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
        RegInner::register(passive, version).map(|inner| Self { inner })
    }

    /// Captures the provider NPI, waiting up to `timeout` for the WSK
    /// subsystem to become ready (`WskCaptureProviderNPI`). `None` waits
    /// forever (`WSK_INFINITE_WAIT`).
    ///
    /// Not from `DriverEntry` with `None` or a long `timeout`: a WSK
    /// application capturing there "should not set the `WaitTimeout`
    /// parameter to `WSK_INFINITE_WAIT` or an excessive wait time", and one
    /// that starts very early waits "in a different worker thread than the
    /// one in which `DriverEntry` runs"
    /// ([Registering a Winsock Kernel Application](https://learn.microsoft.com/windows-hardware/drivers/network/registering-a-winsock-kernel-application)).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::DEVICE_NOT_READY`](crate::Error::DEVICE_NOT_READY): the provider did not become ready in time.
    /// - [`Error::NOINTERFACE`](crate::Error::NOINTERFACE): the provider does not support the registered version.
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
    /// - [`Error::DEVICE_NOT_READY`](crate::Error::DEVICE_NOT_READY): the provider is not ready yet.
    /// - [`Error::NOINTERFACE`](crate::Error::NOINTERFACE): the provider does not support the registered version.
    pub fn try_capture(&self, context: &AtMostDispatch<'_>) -> Result<Provider> {
        let _ = context;
        // SAFETY: WSK_NO_WAIT is callable at <= DISPATCH_LEVEL.
        unsafe { self.capture_raw(sys::WSK_NO_WAIT) }
    }

    /// # Safety
    ///
    /// IRQL is `PASSIVE_LEVEL` unless `wait` is `WSK_NO_WAIT`.
    unsafe fn capture_raw(&self, wait: u32) -> Result<Provider> {
        // SAFETY: forwarded caller contract.
        let inner = unsafe { ProviderInner::capture(&self.inner, wait) }?;
        Ok(Provider::new(Arc::new(inner)))
    }

    /// Deregisters the client (`WskDeregister`). When it returns, the WSK
    /// subsystem no longer uses the registration, no socket of it is open,
    /// and no completion routine of its requests is running: the driver may
    /// unload.
    ///
    /// A driver normally closes its sockets and drops its handles first.
    /// Whatever it did not — handles it still holds, or leaked with
    /// `mem::forget`, `Box::leak` or a reference cycle — is closed here
    /// instead of making `WskDeregister` wait forever (it waits until every
    /// socket is closed and every capture released,
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskderegister>):
    ///
    /// 1. Client-level calls (creating sockets, captures, `WskControlClient`,
    ///    name resolution) are refused from now on; those in progress end.
    /// 2. Every socket whose close was not submitted is closed: calls on it
    ///    are refused (`Error::FILE_FORCED_CLOSED`), calls in progress end,
    ///    futures waiting for its events end too (`tcp::ReceiveQueue`'s
    ///    reads and `closed()`, `tcp::AcceptQueue`'s `accept_next`, with
    ///    `Error::FILE_FORCED_CLOSED`: a closed socket has no more
    ///    callbacks), its retained indication lists are released
    ///    (`WskRelease`, which must precede the close), then
    ///    `WskCloseSocket`. Sockets being
    ///    created or accepted are waited for and closed the same way, until
    ///    every close completed.
    /// 3. Captures still held are released (`WskReleaseProviderNPI`); later
    ///    calls through a `Provider` fail with `Error::DEVICE_NOT_READY`.
    /// 4. `WskDeregister`, which also cancels a pending
    ///    [`Provider::transport_list_change`] request.
    /// 5. It waits until every completion routine of the registration's
    ///    requests has finished, and every wake of a driver's own waker
    ///    that a completion routine handed to a DPC (wakers other than this
    ///    crate's run outside the completion routine: see
    ///    [`Request`](crate::request::Request)), so none runs in a driver
    ///    being unloaded.
    ///
    /// Each thing closed or released in steps 2 and 3 is reported with a
    /// `DbgPrint` line and counted in the `Err`. Waits are short: calls never
    /// wait — the closures that read retained lists inside a socket's
    /// run-down (`RetainedIndication::with_segments`, `read_with`, …) are
    /// `Send`, so they cannot hold the `Passive` token waiting takes —, and
    /// creations and accepts complete once their sockets close.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Leftovers`] — the client is deregistered all the same — when it
    /// had to close sockets, release retained lists or release captures the
    /// driver still held.
    pub fn deregister(self, passive: &Passive<'_>) -> Result<(), Leftovers> {
        let reg = &*self.inner;
        let mut left = Leftovers::default();
        // 1. No new socket, capture or client-level call; wait for those in
        //    progress.
        reg.teardown.shut(passive);
        // 2. Close every socket still open, until none is open or opening.
        loop {
            run_deferred_all(passive);
            while let Some(socket) = reg.teardown.pop() {
                left.sockets += 1;
                debug::line(format_args!(
                    "deregister: closing a socket with handler {} whose handle is still held or was leaked",
                    socket.describe()
                ));
                left.retained += teardown::shut_down(&socket, passive);
            }
            // Every socket closed, every IRP of a socket completed (closing
            // completes them) and disposed of: what still holds a capture
            // now is a handle the driver kept.
            if reg.open_sockets() == 0 && reg.socket_inflight().is_idle() && !has_deferred() {
                break;
            }
            passive.sleep(Duration::from_millis(1));
        }
        // 3. Release the cached security descriptors and the captures
        //    still held: no client-level call is in progress or can start,
        //    and the sockets that used the descriptors are closed.
        for entry in reg.take_security() {
            left.security_descriptors += 1;
            debug::line(format_args!(
                "deregister: releasing a cached security descriptor whose handle is still held or was leaked"
            ));
            // SAFETY: cached by this client and taken off the list (so
            // released once, here); the capture that cached it is held by
            // the descriptor's handle until step 3 below.
            unsafe { release_security(entry) };
        }
        // SAFETY: client-level calls are shut and drained (step 1).
        left.providers = unsafe { reg.release_all_captures() };
        // 4. Every socket closed, every capture released: WskDeregister
        //    returns (and cancels pending client-level IRPs).
        // SAFETY: PASSIVE_LEVEL proven; nothing it waits for remains.
        unsafe { reg.deregister() };
        // 5. Completion routines that are still running (their IRPs are
        //    complete now) and wake DPCs still queued finish in moments.
        while !reg.inflight().is_idle() || !reg.socket_inflight().is_idle() {
            passive.sleep(Duration::from_millis(1));
        }
        reg.inflight().quiesce(passive);
        reg.socket_inflight().quiesce(passive);
        run_deferred_all(passive);
        if left.is_empty() {
            Ok(())
        } else {
            debug::line(format_args!("{left}"));
            Err(left)
        }
    }

    /// Provider, socket, retained-list and cached-descriptor handles still
    /// alive: what [`deregister`](Self::deregister) would have to close or
    /// release itself if it were called now.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn live_handles(&self) -> usize {
        self.inner.live_handles()
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
        if self.inner.is_deregistered() {
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
                c"wsk: Registration dropped without deregister(&Passive): its registration is leaked and WskDeregister was never called\n"
                    .as_ptr()
                    .cast::<sys::CHAR>(),
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
