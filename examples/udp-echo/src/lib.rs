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

#[cfg(windows)]
wsk_driver_rt::driver_runtime!(pool_tag: *b"UdpE");

pub mod echo;

#[cfg(test)]
mod tests;

use core::sync::atomic::{AtomicBool, Ordering};

use wsk::irql::{Passive, SpinLock};
use wsk::sys;
use wsk_driver_rt::dbg_println;
use wsk_driver_rt::registry::Parameters;
use wsk_driver_rt::thread::SystemThread;

pub use echo::{Config, DEFAULT_PORT, Summary};

/// Set by `DriverUnload`; the server thread checks it between wait slices.
static STOP: AtomicBool = AtomicBool::new(false);

/// The server's thread, joined by `DriverUnload`.
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
    let config = Config::new(params.as_ref().and_then(|p| p.dword("Port")));
    drop(params);
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            dbg_println!("udp-echo: invalid Parameters (Port): {e}");
            return e.into();
        }
    };
    STOP.store(false, Ordering::Release);
    let thread = SystemThread::spawn(move || {
        // SAFETY: a system thread's routine runs at PASSIVE_LEVEL, outside any
        // WSK callback, and may wait.
        let passive = unsafe { Passive::new_unchecked() };
        let result = echo::run(&passive, &config, &STOP, &mut |line| {
            dbg_println!("udp-echo: {line}");
        });
        match result {
            Ok(summary) => dbg_println!("udp-echo: stopped {summary}"),
            Err(e) => dbg_println!("udp-echo: not serving: {e}"),
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
            dbg_println!("udp-echo: cannot start the server thread: {status:#x}");
            status
        }
    }
}

/// `DriverUnload`: stops the server and waits for its thread.
///
/// # Safety
///
/// Called by the I/O manager at `PASSIVE_LEVEL`, once, after a successful
/// `DriverEntry`.
unsafe extern "system" fn driver_unload(_driver: sys::PDRIVER_OBJECT) {
    // SAFETY: DriverUnload runs at PASSIVE_LEVEL, outside any WSK callback.
    let mut passive = unsafe { Passive::new_unchecked() };
    STOP.store(true, Ordering::Release);
    // Taken out first: joining waits, which the spin lock forbids.
    let thread = THREAD.with(&mut passive, |slot, _| slot.take());
    if let Some(thread) = thread {
        thread.join();
    }
    dbg_println!("udp-echo: unloaded");
}
