//! `udp-echo`: a WSK kernel driver that binds a UDP socket and sends every
//! datagram it receives back to its sender, written with the safe `wsk` API
//! only.
//!
//! - `DriverEntry` reads `Port` (`REG_DWORD`, default 7008) from the
//!   service's `Parameters` key and runs the server on a system thread
//!   (`DriverEntry` must return quickly).
//! - The server ([`echo::run`]) registers with WSK, captures the provider,
//!   opens a [`wsk::udp::DatagramSocket`] bound to `0.0.0.0:Port` and alternates
//!   `WskReceiveFrom` and `WskSendTo` requests. Each wait is a short slice
//!   that checks the stop flag, so `DriverUnload` is prompt.
//! - `DriverUnload` sets the stop flag and joins the thread, which closes
//!   the socket, releases the provider and deregisters explicitly.
//!
//! Progress is reported with `DbgPrint` lines starting with `udp-echo:`.
//! Where the provider has no datagram sockets (Wine 8's `netio.sys`), the
//! driver says so (`udp-echo: datagram sockets unavailable: STATUS_…`),
//! stays loaded and unloads cleanly.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// DriverEntry/DriverUnload (`driver_entry`, `Echo::unload`), the pool
// allocator, the panic handler (Windows builds only).
wsk_driver::entry!(driver_entry, pool_tag: *b"UdpE");

pub mod echo;

#[cfg(test)]
mod tests;

use core::sync::atomic::{AtomicBool, Ordering};

use wsk::Error;
use wsk::irql::Passive;
use wsk_driver::dbg_println;
use wsk_driver::entry::DriverObject;
use wsk_driver::registry::{Parameters, RegistryPath};
use wsk_driver::thread::SystemThread;

pub use echo::{Config, DEFAULT_PORT, Summary};

/// Set by `DriverUnload`; the server thread checks it between wait slices.
static STOP: AtomicBool = AtomicBool::new(false);

/// The running driver: the server's thread, joined by `DriverUnload`.
pub struct Echo {
    thread: SystemThread,
}

impl wsk_driver::entry::Driver for Echo {
    fn unload(self, passive: &mut Passive<'_>) {
        STOP.store(true, Ordering::Release);
        self.thread.join(passive);
        dbg_println!("udp-echo: unloaded");
    }
}

/// `DriverEntry`'s body: reads `Port` and runs the server on a system
/// thread (`DriverEntry` must return quickly).
fn driver_entry(
    _driver: DriverObject,
    registry_path: RegistryPath<'_>,
    passive: &mut Passive<'_>,
) -> Result<Echo, Error> {
    let params = Parameters::open(registry_path, passive);
    let config = Config::new(params.as_ref().and_then(|p| p.dword("Port")));
    drop(params);
    let config =
        config.inspect_err(|e| dbg_println!("udp-echo: invalid Parameters (Port): {e}"))?;
    STOP.store(false, Ordering::Release);
    let thread = SystemThread::spawn(passive, move |passive| {
        let result = echo::run(passive, &config, &STOP, &mut |line| {
            dbg_println!("udp-echo: {line}");
        });
        match result {
            Ok(summary) => dbg_println!("udp-echo: stopped {summary}"),
            Err(e) => dbg_println!("udp-echo: not serving: {e}"),
        }
    })
    .inspect_err(|e| dbg_println!("udp-echo: cannot start the server thread: {e}"))?;
    Ok(Echo { thread })
}
