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

// DriverEntry and DriverUnload (below: `driver_entry` and `Driver::unload`),
// the pool allocator (tag "Echo"), the panic handler and the C runtime
// symbols of a kernel driver (Windows builds only; host builds use `std`).
wsk_driver::entry!(driver_entry, pool_tag: *b"Echo");

pub mod echo;
pub mod event_mode;
pub mod request_mode;
pub mod server;

#[cfg(test)]
mod tests;

use core::time::Duration;

use wsk::defer::IoObject;
use wsk::irql::Passive;
use wsk::{Error, Provider, Registration};
use wsk_driver::dbg_println;
use wsk_driver::entry::DriverObject;
use wsk_driver::registry::{Parameters, RegistryPath};

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
    if let Err(left) = registration.deregister(passive) {
        // A handle outlived the server: a bug. Deregistration closed and
        // released it (with a line of its own); report it too.
        dbg_println!("echo-server: {left}");
    }
}

impl wsk_driver::entry::Driver for Driver {
    fn unload(self, passive: &mut Passive<'_>) {
        self.stop(passive);
    }
}

/// `DriverEntry`'s body: reads the `Parameters`, then [`Driver::start`].
fn driver_entry(
    driver: DriverObject,
    registry_path: RegistryPath<'_>,
    passive: &mut Passive<'_>,
) -> Result<Driver, Error> {
    let params = Parameters::open(registry_path, passive);
    let config = Config::from_parameters(params.as_ref()).inspect_err(|e| {
        dbg_println!("echo-server: invalid Parameters (Port or Address): {e}");
    })?;
    drop(params);
    Driver::start(passive, driver.io_object(), &config).inspect_err(|e| {
        dbg_println!("echo-server: failed to start: {e}");
    })
}
