//! A WSK kernel driver: a TCP echo server on `wsk`'s executor.
//!
//! `DriverEntry` reads `Port` and `Address` from the service's `Parameters`
//! key, registers with WSK, captures the provider and starts the server
//! ([`server`]): one task accepts, one task per connection echoes.
//! `DriverUnload` stops the tasks, releases the provider and deregisters;
//! the runtime then calls `wsk::shutdown` (timers and executor threads left).
//! Progress is printed with `DbgPrint` (a kernel debugger, DebugView, or
//! `cargo wsk wine`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod server;

#[cfg(test)]
mod tests;

use core::time::Duration;

use wsk::irql::Passive;
use wsk::{Error, Provider, Registration};
use wsk_driver::dbg_println;
use wsk_driver::entry::{Driver, DriverObject};
use wsk_driver::registry::{Parameters, RegistryPath};

use server::{Config, Server};

// DriverEntry/DriverUnload, the pool allocator (tag "Mydr") and the panic
// handler. The runtime hands `driver_entry` and `unload` their IRQL tokens;
// tasks never hold one (whatever waits takes a token, so a task cannot).
wsk_driver::entry!(driver_entry, pool_tag: *b"Mydr");

/// The name every log line starts with.
pub const NAME: &str = env!("CARGO_PKG_NAME");

/// The longest `DriverEntry` waits for the WSK provider.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// What runs between `DriverEntry` and `DriverUnload`.
pub struct Running {
    server: Server,
    provider: Provider,
    registration: Registration,
}

fn driver_entry(
    _driver: DriverObject,
    registry_path: RegistryPath<'_>,
    passive: &mut Passive<'_>,
) -> Result<Running, Error> {
    let params = Parameters::open(registry_path, passive);
    let config = Config::from_parameters(params.as_ref()).inspect_err(|e| {
        dbg_println!("{NAME}: invalid Parameters: {e}");
    })?;
    drop(params);
    let registration = Registration::register(passive)?;
    let started = registration
        .capture(passive, Some(CAPTURE_TIMEOUT))
        .and_then(|provider| Server::start(passive, &provider, &config).map(|s| (s, provider)));
    match started {
        Ok((server, provider)) => Ok(Running {
            server,
            provider,
            registration,
        }),
        Err(e) => {
            dbg_println!("{NAME}: failed to start: {e}");
            deregister(passive, registration);
            Err(e)
        }
    }
}

impl Driver for Running {
    fn unload(self, passive: &mut Passive<'_>) {
        self.server.stop(passive);
        drop(self.provider);
        deregister(passive, self.registration);
        dbg_println!("{NAME}: unloaded");
    }
}

/// Deregisters; a handle still alive is a bug, which deregistration closes
/// or releases itself (and reports).
fn deregister(passive: &Passive<'_>, registration: Registration) {
    if let Err(left) = registration.deregister(passive) {
        dbg_println!("{NAME}: {left}");
    }
}
