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

#[cfg(windows)]
wsk_driver_rt::driver_runtime!(pool_tag: *b"TcpC");

pub mod client;

#[cfg(test)]
mod tests;

use core::time::Duration;

use wsk::irql::{Passive, SpinLock};
use wsk::sys;
use wsk::{Error, Registration};
use wsk_driver_rt::dbg_println;
use wsk_driver_rt::registry::Parameters;
use wsk_driver_rt::thread::SystemThread;

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
    if let Err(registration) = registration.deregister(passive) {
        // Deregistering would wait forever. A bug: report it; dropping leaks
        // the registration (with a line of its own).
        dbg_println!(
            "tcp-client: cannot deregister: {} handle(s) alive",
            registration.live_handles()
        );
        drop(registration);
    }
    result
}

/// The client's thread, joined by `DriverUnload`.
static THREAD: SpinLock<Option<SystemThread>> = SpinLock::new(None);

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
    // SAFETY: DriverEntry runs at PASSIVE_LEVEL, outside any WSK callback.
    let mut passive = unsafe { Passive::new_unchecked() };
    // SAFETY: `registry_path` is DriverEntry's valid service key path.
    let registry_path = unsafe { &*registry_path };
    // SAFETY: as above; PASSIVE_LEVEL.
    let params = unsafe { Parameters::open(registry_path) };
    let config = Config::new(
        params.as_ref().and_then(|p| p.string("Host")),
        params.as_ref().and_then(|p| p.dword("Port")),
        params.as_ref().and_then(|p| p.string("Message")),
    );
    drop(params);
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            dbg_println!("tcp-client: invalid Parameters: {e}");
            return e.into();
        }
    };
    dbg_println!(
        "tcp-client: host={} port={} message={} bytes",
        config.host,
        config.port,
        config.message.len()
    );
    let thread = SystemThread::spawn(move || {
        // SAFETY: a system thread's routine runs at PASSIVE_LEVEL, outside any
        // WSK callback, and may wait.
        let passive = unsafe { Passive::new_unchecked() };
        match run_once(&passive, &config) {
            Ok(report) => dbg_println!("tcp-client: done {report}"),
            Err(e) => dbg_println!("tcp-client: failed: {e}"),
        }
    });
    match thread {
        Ok(thread) => {
            THREAD.with(&mut passive, |slot, _| *slot = Some(thread));
            // SAFETY: `driver` is valid and ours to set up during DriverEntry.
            unsafe { (*driver).DriverUnload = Some(driver_unload) };
            sys::STATUS_SUCCESS
        }
        Err(status) => {
            dbg_println!("tcp-client: cannot start the client thread: {status:#x}");
            status
        }
    }
}

/// `DriverUnload`: waits for the client thread.
///
/// # Safety
///
/// Called by the I/O manager at `PASSIVE_LEVEL`, once, after a successful
/// `DriverEntry`.
unsafe extern "system" fn driver_unload(_driver: sys::PDRIVER_OBJECT) {
    // SAFETY: DriverUnload runs at PASSIVE_LEVEL, outside any WSK callback.
    let mut passive = unsafe { Passive::new_unchecked() };
    // Taken out first: joining waits, which the spin lock forbids.
    let thread = THREAD.with(&mut passive, |slot, _| slot.take());
    if let Some(thread) = thread {
        thread.join();
    }
    dbg_println!("tcp-client: unloaded");
}
