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
use core::time::Duration;

use wsk_sys as sys;

use super::client::Provider;
use super::npi::{ProviderInner, RegInner};
use super::version::Version;
use crate::error::Result;
use crate::irql::{AtMostDispatch, Passive};

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
/// use wsk::Registration;
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
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
        if self.inner.live_handles() != 0 {
            return Err(self);
        }
        let _ = passive;
        // SAFETY: PASSIVE_LEVEL proven; no live handle remains, and none can
        // capture or create anew.
        unsafe { self.inner.deregister() };
        Ok(())
    }

    /// Provider and socket handles still alive.
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
