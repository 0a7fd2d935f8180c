//! `tcp-client`: a WSK kernel driver that resolves a host name, connects,
//! sends a message, reads the reply and closes — written with the safe `wsk`
//! API only.
//!
//! - `DriverEntry` reads `Host` (`REG_SZ`, default `localhost`), `Port`
//!   (`REG_DWORD`, default 7) and `Message` (`REG_SZ`) from the service's
//!   `Parameters` key and runs the client on a system thread (`DriverEntry`
//!   must return quickly).
//! - The client ([`client::run`]) registers with WSK, captures the provider,
//!   resolves the host (`WskGetAddressInfo`), connects to the first address
//!   that accepts, enables the disconnect event where the provider supports
//!   events, sends the message, reads a reply of the same length, disconnects
//!   gracefully, closes and deregisters.
//! - `DriverUnload` waits for the thread.
//!
//! Progress is reported with `DbgPrint` lines starting with `tcp-client:`.
//! Where the provider does not implement a routine (Wine's `WskControlSocket`
//! and `WskDisconnect`), the line names the status and the client goes on.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// DriverEntry/DriverUnload (`driver_entry`, `Client::unload`), the pool
// allocator, the panic handler (Windows builds only).
wsk_driver::entry!(driver_entry, pool_tag: *b"TcpC");

pub mod client;

#[cfg(test)]
mod tests;

use core::time::Duration;

use wsk::irql::Passive;
use wsk::{Error, Registration};
use wsk_driver::dbg_println;
use wsk_driver::entry::DriverObject;
use wsk_driver::registry::{Parameters, RegistryPath};
use wsk_driver::thread::SystemThread;

pub use client::{Config, Report};

/// The longest the client waits for the WSK provider.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// Registers, runs the client once, deregisters; reports every step.
///
/// # Errors
///
/// The status of the step that failed.
pub fn run_once(passive: &Passive<'_>, config: &Config) -> Result<Report, Error> {
    let registration = Registration::register(passive)?;
    let result = registration
        .capture(passive, Some(CAPTURE_TIMEOUT))
        .and_then(|provider| {
            client::run(passive, &provider, config, &mut |line| {
                dbg_println!("tcp-client: {line}");
            })
        });
    if let Err(left) = registration.deregister(passive) {
        // A handle outlived the client: a bug, which deregistration closed
        // and released (with a line of its own). Report it.
        dbg_println!("tcp-client: {left}");
    }
    result
}

/// The running driver: the client's thread, joined by `DriverUnload`.
pub struct Client {
    thread: SystemThread,
}

impl wsk_driver::entry::Driver for Client {
    fn unload(self, passive: &mut Passive<'_>) {
        self.thread.join(passive);
        dbg_println!("tcp-client: unloaded");
    }
}

/// `DriverEntry`'s body: reads the `Parameters` and runs the client on a
/// system thread (`DriverEntry` must return quickly).
fn driver_entry(
    _driver: DriverObject,
    registry_path: RegistryPath<'_>,
    passive: &mut Passive<'_>,
) -> Result<Client, Error> {
    let params = Parameters::open(registry_path, passive);
    let config = Config::new(
        params.as_ref().and_then(|p| p.string("Host")),
        params.as_ref().and_then(|p| p.dword("Port")),
        params.as_ref().and_then(|p| p.string("Message")),
    );
    drop(params);
    let config = config.inspect_err(|e| dbg_println!("tcp-client: invalid Parameters: {e}"))?;
    dbg_println!(
        "tcp-client: host={} port={} message={} bytes",
        config.host,
        config.port,
        config.message.len()
    );
    let thread = SystemThread::spawn(passive, move |passive| match run_once(passive, &config) {
        Ok(report) => dbg_println!("tcp-client: done {report}"),
        Err(e) => dbg_println!("tcp-client: failed: {e}"),
    })
    .inspect_err(|e| dbg_println!("tcp-client: cannot start the client thread: {e}"))?;
    Ok(Client { thread })
}
