//! `echo-server`: a WSK kernel driver that echoes every byte it receives on
//! TCP, written with the safe `wsk` API only.
//!
//! - `DriverEntry` reads `Port` (`REG_DWORD`, default 7007) and `Address`
//!   (`REG_SZ`, default `0.0.0.0`) from the service's `Parameters` key,
//!   registers a WSK client, captures the provider (waiting at most 5 s),
//!   opens the listening socket and starts the server on a system thread.
//! - The server is **event-driven** where the provider supports event
//!   callbacks ([`event_mode`]) and **request-driven** where it refuses them
//!   with `STATUS_NOT_IMPLEMENTED`, as Wine's `netio.sys` does
//!   ([`request_mode`]). Both share the echo, counting and reporting
//!   ([`echo`]).
//! - `DriverUnload` stops the server — listening socket and connections
//!   closed, threads and work items finished — releases the provider and
//!   deregisters.
//!
//! Progress is reported with `DbgPrint` lines starting with `echo-server:`
//! (see [`echo`]). The logic builds and runs on the host too, against the
//! `wsk-sim` provider (`cargo test -p echo-server`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// Allocator, panic handler and C runtime symbols of a kernel driver. Host
// builds get them from `std` (linked by `wsk-sim`).
#[cfg(windows)]
wsk_driver_rt::driver_runtime!(pool_tag: *b"Echo");

pub mod echo;
pub mod event_mode;
pub mod request_mode;
pub mod server;

#[cfg(test)]
mod tests;

use core::time::Duration;

use wsk::defer::IoObject;
use wsk::irql::{Passive, SpinLock};
use wsk::sys;
use wsk::{Error, Provider, Registration};
use wsk_driver_rt::dbg_println;
use wsk_driver_rt::registry::Parameters;

pub use echo::{End, Mode};
pub use server::{Config, DEFAULT_PORT, Server, Summary};

/// The longest `DriverEntry` waits for the WSK provider.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the driver holds between `DriverEntry` and `DriverUnload`.
#[derive(Debug)]
pub struct Driver {
    server: Server,
    provider: Provider,
    registration: Registration,
}

impl Driver {
    /// Registers with WSK, captures the provider and starts the server.
    ///
    /// # Errors
    ///
    /// The status of the step that failed: `WskRegister`, the capture
    /// ([`Error::DEVICE_NOT_READY`] after 5 s) or [`Server::start`].
    pub fn start(
        passive: &mut Passive<'_>,
        io: IoObject,
        config: &Config,
    ) -> Result<Driver, Error> {
        let registration = Registration::register(passive)?;
        let started = registration
            .capture(passive, Some(CAPTURE_TIMEOUT))
            .and_then(|provider| {
                Server::start(passive, &provider, io, config.address).map(|s| (s, provider))
            });
        match started {
            Ok((server, provider)) => Ok(Driver {
                server,
                provider,
                registration,
            }),
            Err(e) => {
                deregister(passive, registration);
                Err(e)
            }
        }
    }

    /// The mode the server runs in.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.server.mode()
    }

    /// Stops the server, releases the provider and deregisters.
    #[allow(clippy::must_use_candidate)] // Stopping is the point; the summary is extra.
    pub fn stop(self, passive: &Passive<'_>) -> Summary {
        let summary = self.server.stop(passive);
        drop(self.provider);
        deregister(passive, self.registration);
        summary
    }
}

/// Deregisters explicitly: dropping a `Registration` never deregisters (it
/// leaks the registration, since `Drop` may not wait).
fn deregister(passive: &Passive<'_>, registration: Registration) {
    if let Err(registration) = registration.deregister(passive) {
        // A handle outlived the server: a bug. Deregistering would wait for
        // it forever; dropping leaks the registration (with a line of its own).
        dbg_println!(
            "echo-server: cannot deregister: {} handle(s) alive",
            registration.live_handles()
        );
        drop(registration);
    }
}

/// The running driver, for `DriverUnload`.
static DRIVER: SpinLock<Option<Driver>> = SpinLock::new(None);

/// The driver's entry point.
///
/// # Safety
///
/// Called by the I/O manager, at `PASSIVE_LEVEL`, with valid `driver` and
/// `registry_path` pointers.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn DriverEntry(
    driver: sys::PDRIVER_OBJECT,
    registry_path: sys::PUNICODE_STRING,
) -> sys::NTSTATUS {
    // SAFETY: DriverEntry runs at PASSIVE_LEVEL in a system thread, outside
    // any WSK callback, and may wait.
    let mut passive = unsafe { Passive::new_unchecked() };
    // SAFETY: `registry_path` is DriverEntry's valid service key path.
    let registry_path = unsafe { &*registry_path };
    // SAFETY: as above; PASSIVE_LEVEL.
    let params = unsafe { Parameters::open(registry_path) };
    let config = match Config::from_parameters(params.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            dbg_println!("echo-server: invalid Parameters (Port or Address): {e}");
            return e.into();
        }
    };
    drop(params);
    // SAFETY: the driver object is valid until the driver unloads, after
    // every work item has finished (DriverUnload waits for them).
    let io = unsafe { IoObject::from_driver(driver) };
    match Driver::start(&mut passive, io, &config) {
        Ok(running) => {
            DRIVER.with(&mut passive, |slot, _| *slot = Some(running));
            // SAFETY: `driver` is valid and ours to set up during DriverEntry.
            unsafe { (*driver).DriverUnload = Some(driver_unload) };
            sys::STATUS_SUCCESS
        }
        Err(e) => {
            dbg_println!("echo-server: failed to start: {e}");
            e.into()
        }
    }
}

/// `DriverUnload`: stops everything before the image goes away.
///
/// # Safety
///
/// Called by the I/O manager at `PASSIVE_LEVEL`, once, after a successful
/// `DriverEntry`.
unsafe extern "system" fn driver_unload(_driver: sys::PDRIVER_OBJECT) {
    // SAFETY: DriverUnload runs at PASSIVE_LEVEL in a system thread, outside
    // any WSK callback, and may wait.
    let mut passive = unsafe { Passive::new_unchecked() };
    // Taken out first: stopping waits, which the spin lock forbids.
    let running = DRIVER.with(&mut passive, |slot, _| slot.take());
    if let Some(running) = running {
        running.stop(&passive);
    }
}
