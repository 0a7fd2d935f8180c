//! `echo-server`: a WSK kernel driver that echoes every byte it receives on
//! TCP, written with the safe `wsk` API only, on `wsk`'s executor: one task
//! accepts, one task per connection echoes.
//!
//! - `DriverEntry` reads `Port` (`REG_DWORD`, default 7007), `Address`
//!   (`REG_SZ`, default `0.0.0.0`) and `BufferSize` (`REG_DWORD`, default
//!   65536) from the service's `Parameters` key, registers a WSK client,
//!   captures the provider (waiting at most 5 s), listens, and starts an
//!   executor with the listener's task ([`server`]).
//! - Where the provider has event callbacks, connections arrive through the
//!   accept event and data through receive events (`tcp::AcceptQueue`,
//!   `tcp::ReceiveQueue`); where it refuses them with
//!   `STATUS_NOT_IMPLEMENTED`, as Wine's `netio.sys` does, the same tasks
//!   accept and receive with requests.
//! - `DriverUnload` stops the listener's task (a `StopSignal`: it closes
//!   the listening socket and ends), shuts the executor down — every
//!   connection's task is dropped, which closes its socket —, then releases
//!   the provider and deregisters (which waits for the closes).
//!
//! Progress is reported with `DbgPrint` lines starting with `echo-server:`
//! (see [`server`]). The logic builds and runs on the host too, against the
//! `wsk-sim` provider (`cargo test -p echo-server`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// DriverEntry and DriverUnload (`driver_entry` and `Driver::unload`), the
// pool allocator (tag "Echo"), the panic handler and the C runtime symbols
// of a kernel driver (Windows builds only; host builds use `std`).
wsk_driver::entry!(driver_entry, pool_tag: *b"Echo");

pub mod server;

#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use core::time::Duration;

use wsk::irql::Passive;
use wsk::task::{Executor, JoinHandle, StopSignal};
use wsk::tcp::{AcceptQueue, ReceiveQueue};
use wsk::{Error, Provider, Registration};
use wsk_driver::dbg_println;
use wsk_driver::entry::DriverObject;
use wsk_driver::registry::{Parameters, RegistryPath};

pub use server::{Config, Mode, Stats};

/// The longest `DriverEntry` waits for the WSK provider, and for the
/// listening socket.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Worker threads: every connection is a task on them.
const WORKERS: usize = 2;

/// Everything the driver holds between `DriverEntry` and `DriverUnload`.
pub struct Driver {
    executor: Executor,
    stop: StopSignal,
    listener: JoinHandle<()>,
    stats: Arc<Stats>,
    provider: Provider,
    registration: Registration,
}

impl Driver {
    /// Registers with WSK, captures the provider, listens, and starts the
    /// listener's task.
    fn start(passive: &Passive<'_>, config: &Config) -> Result<Driver, Error> {
        let registration = Registration::register(passive)?;
        let started = registration
            .capture(passive, Some(START_TIMEOUT))
            .and_then(|provider| {
                let limit = config.buffer_size;
                let queue = AcceptQueue::new(move || ReceiveQueue::with_limit(limit));
                let listen = wsk::tcp::listen(&provider, config.address, queue);
                let listener = wsk::block_on_timeout(passive, listen, START_TIMEOUT)?;
                let stats = Arc::new(Stats::new(Mode::of(&listener)));
                dbg_println!(
                    "echo-server: listening on {} mode={} buffer={}",
                    config.address,
                    stats.mode,
                    config.buffer_size
                );
                let executor = Executor::builder()
                    .workers(WORKERS)
                    .blocking_threads(0)
                    .build(passive)?;
                let stop = StopSignal::new();
                let (tasks, stopping) = (executor.handle(), stop.clone());
                let served = server::accept_loop(listener, tasks, *config, stats.clone(), stopping);
                match executor.spawn(served) {
                    Ok(listener) => Ok((executor, stop, listener, stats, provider)),
                    Err(refused) => {
                        // No thread may outlive a failed DriverEntry.
                        let _ = executor.shutdown(passive);
                        Err(refused.error())
                    }
                }
            });
        match started {
            Ok((executor, stop, listener, stats, provider)) => Ok(Driver {
                executor,
                stop,
                listener,
                stats,
                provider,
                registration,
            }),
            Err(e) => {
                deregister(passive, registration);
                Err(e)
            }
        }
    }
}

impl wsk_driver::entry::Driver for Driver {
    fn unload(self, passive: &mut Passive<'_>) {
        // The listener's task closes its socket and ends.
        self.stop.stop();
        let _ = wsk::block_on_timeout(passive, self.listener, server::CLOSE_TIMEOUT);
        // Drops every other task: connections report `closed stopped` and close.
        if let Err(e) = self.executor.shutdown(passive) {
            dbg_println!("echo-server: tasks still running after shutdown: {e}");
        }
        dbg_println!(
            "echo-server: stopped connections={} bytes={} mode={}",
            self.stats.connections(),
            self.stats.bytes(),
            self.stats.mode
        );
        drop(self.provider);
        deregister(passive, self.registration);
    }
}

/// Deregisters explicitly (waiting for the sockets still closing): dropping
/// a `Registration` never deregisters; a handle still alive is a bug, which
/// deregistration closes or releases itself (and reports).
fn deregister(passive: &Passive<'_>, registration: Registration) {
    if let Err(left) = registration.deregister(passive) {
        // A handle outlived the tasks: a bug. Deregistration closed and
        // released it (with a line of its own); report it too.
        dbg_println!("echo-server: {left}");
    }
}

/// `DriverEntry`'s body: reads the `Parameters`, then starts.
fn driver_entry(
    _driver: DriverObject,
    registry_path: RegistryPath<'_>,
    passive: &mut Passive<'_>,
) -> Result<Driver, Error> {
    let params = Parameters::open(registry_path, passive);
    let config = Config::from_parameters(params.as_ref()).inspect_err(|e| {
        dbg_println!("echo-server: invalid Parameters (Port, Address or BufferSize): {e}");
    })?;
    drop(params);
    Driver::start(passive, &config).inspect_err(|e| {
        dbg_println!("echo-server: failed to start: {e}");
    })
}
