//! `udp-echo`: a WSK kernel driver that binds a UDP socket and sends every
//! datagram it receives back to its sender, written with the safe `wsk` API
//! only, as one task on `wsk`'s executor.
//!
//! - `DriverEntry` reads `Port` (`REG_DWORD`, default 7008) from the
//!   service's `Parameters` key, registers with WSK, captures the provider,
//!   opens a [`wsk::udp::DatagramSocket`] bound to `0.0.0.0:Port` and starts
//!   the echo task (`echo::serve`): `WskReceiveFrom`, then `WskSendTo`,
//!   through two reused request slots and one buffer.
//! - `DriverUnload` shuts the executor down — the task is dropped, which
//!   cancels its pending receive and closes the socket —, releases the
//!   provider and deregisters (which waits for the close).
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

use alloc::sync::Arc;
use core::time::Duration;

use wsk::irql::Passive;
use wsk::task::Executor;
use wsk::{Error, Provider, Registration};
use wsk_driver::dbg_println;
use wsk_driver::entry::DriverObject;
use wsk_driver::registry::{Parameters, RegistryPath};

pub use echo::{Config, DEFAULT_PORT, Stats};

/// The longest `DriverEntry` waits for the WSK provider and for the socket.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// The running driver: the echo task's executor, its counters, the
/// provider and the registration — or nothing, where the provider has no
/// datagram sockets.
pub struct Echo {
    serving: Option<(Executor, Arc<Stats>, Provider)>,
    registration: Option<Registration>,
}

impl wsk_driver::entry::Driver for Echo {
    fn unload(self, passive: &mut Passive<'_>) {
        if let Some((executor, stats, provider)) = self.serving {
            // Drops the task: its receive is cancelled and the socket closes.
            if let Err(e) = executor.shutdown(passive) {
                dbg_println!("udp-echo: the task still ran after shutdown: {e}");
            }
            dbg_println!("udp-echo: stopped {stats}");
            drop(provider);
        }
        if let Some(registration) = self.registration {
            deregister(passive, registration);
        }
        dbg_println!("udp-echo: unloaded");
    }
}

/// Deregisters, waiting for the socket's close; a handle still alive is a
/// bug, which deregistration closes or releases itself (and reports).
fn deregister(passive: &Passive<'_>, registration: Registration) {
    if let Err(left) = registration.deregister(passive) {
        dbg_println!("udp-echo: {left}");
    }
}

/// `DriverEntry`'s body: reads `Port`, opens the socket, starts the task.
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
    let registration = Registration::register(passive)?;
    let started = registration
        .capture(passive, Some(START_TIMEOUT))
        .and_then(|provider| {
            let socket = echo::open(passive, &provider, config, START_TIMEOUT)?;
            let executor = Executor::builder()
                .workers(1)
                .blocking_threads(0)
                .build(passive)?;
            let stats = Arc::new(Stats::default());
            match executor.spawn(echo::serve(socket, stats.clone())) {
                Ok(_detached) => Ok((executor, stats, provider)),
                Err(refused) => {
                    // No thread may outlive a failed DriverEntry.
                    let _ = executor.shutdown(passive);
                    Err(refused.error())
                }
            }
        });
    match started {
        Ok(serving) => Ok(Echo {
            serving: Some(serving),
            registration: Some(registration),
        }),
        // Wine 8: no datagram sockets. Stay loaded, say so, unload cleanly.
        Err(e) if echo::unavailable(e) => {
            dbg_println!("udp-echo: not serving: {e}");
            deregister(passive, registration);
            Ok(Echo {
                serving: None,
                registration: None,
            })
        }
        Err(e) => {
            dbg_println!("udp-echo: failed to start: {e}");
            deregister(passive, registration);
            Err(e)
        }
    }
}
