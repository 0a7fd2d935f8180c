//! `raw-echo`: the baseline `cargo xtask wine-bench` races `echo-server`
//! against — a TCP echo server written the way a competent C driver author
//! writes one, against `wsk-sys` only: raw IRPs, `KEVENT`s, one system
//! thread per connection, one buffer per connection.
//!
//! No part of the safe `wsk` layer runs here. `wsk-driver` supplies what
//! every driver needs besides WSK (the `DriverEntry`/`DriverUnload` glue,
//! the pool allocator, the panic handler, `DbgPrint`, the `Parameters` key,
//! system threads); its interface takes `wsk`'s `PASSIVE_LEVEL` token, the
//! only `wsk` item named here.
//!
//! # Design
//!
//! - `DriverEntry` reads `Port` (`REG_DWORD`, default 7007), `Address`
//!   (`REG_SZ`, default `0.0.0.0`) and `BufferSize` (`REG_DWORD`, bytes,
//!   default 65536, 1 to 4 MiB) from the service's `Parameters` key,
//!   registers a WSK client (`WskRegister`), captures the provider (at most
//!   5 s), creates a listening socket (`WskSocket`) and binds it
//!   (`WskBind`, which starts listening), and starts the listener thread.
//! - The listener thread keeps one `WskAccept` outstanding (Wine allows no
//!   more) and gives every accepted connection its own system thread, with
//!   two IRPs (one for receives, sends and the disconnect, one for the
//!   close) and a non-paged buffer described by one MDL, all allocated
//!   before the thread starts.
//! - A connection thread receives into the buffer (`WskReceive`, no
//!   flags: whatever has arrived) and sends it back (`WskSend`, again for a
//!   short count), until the peer closes, a request fails or the driver
//!   stops; then it disconnects gracefully if the peer did (`WskDisconnect`;
//!   Wine refuses it and sends FIN on close), and closes the socket.
//! - Every wait for a request is a `KeWaitForMultipleObjects(WaitAny)` on
//!   the request's event and the driver's stop event, so a stop is seen at
//!   once even while every request completes immediately. A thread that
//!   sees it closes its socket, which makes the provider cancel and complete
//!   every IRP still pending on it
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>;
//!   Wine completes them with `STATUS_CANCELLED` and ignores `IoCancelIrp`),
//!   then waits for that IRP. Each socket is used by its one thread only,
//!   so no call is in progress when it is closed, as `WskCloseSocket`
//!   requires.
//! - `DriverUnload` signals the stop event and joins the listener thread,
//!   which closes the listening socket and joins every connection thread;
//!   then it releases the provider (`WskReleaseProviderNPI`) and
//!   deregisters (`WskDeregister`).
//!
//! # Report lines
//!
//! One `DbgPrint` each; `cargo xtask wine` and its scenarios read them:
//!
//! ```text
//! raw-echo: listening on 127.0.0.1:7007 buffer=65536
//! raw-echo: connection 1 from 127.0.0.1:50312
//! raw-echo: connection 1 closed graceful bytes=29
//! raw-echo: stopped connections=1 bytes=29
//! ```
//!
//! A connection ends `graceful` (the peer's FIN; under Wine a peer's RST
//! can look the same), `abortive`, `stopped` (the driver stopped) or
//! `failed:0xC0000...` (the status of the request that failed).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

// DriverEntry and DriverUnload (`driver_entry` and `Driver::unload` below),
// the pool allocator (tag "RawE"), the panic handler and the C runtime
// symbols (Windows builds only; host builds use `std`).
wsk_driver::entry!(driver_entry, pool_tag: *b"RawE");

mod addr;
mod connection;
mod listener;
mod request;

#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicU64, Ordering};

use wsk::irql::Passive;
use wsk_driver::dbg_println;
use wsk_driver::entry::DriverObject;
use wsk_driver::registry::{Parameters, RegistryPath};
use wsk_driver::thread::SystemThread;
use wsk_sys as sys;

use crate::listener::Listener;
use crate::request::{Event, Request};

/// The port served when `Port` is absent.
pub const DEFAULT_PORT: u16 = 7007;
/// The buffer size when `BufferSize` is absent.
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
/// The largest `BufferSize` accepted.
pub const MAX_BUFFER_SIZE: usize = 4 * 1024 * 1024;
/// The longest `DriverEntry` waits for the WSK provider, in milliseconds.
const CAPTURE_TIMEOUT_MS: u32 = 5000;

/// An `NTSTATUS`, printed as `0xC000020D`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub sys::NTSTATUS);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", u32::from_ne_bytes(self.0.to_ne_bytes()))
    }
}

/// `Err(Status)` unless `status` is a success code.
fn check(status: sys::NTSTATUS) -> Result<(), Status> {
    if sys::NT_SUCCESS(status) {
        Ok(())
    } else {
        Err(Status(status))
    }
}

impl From<Status> for sys::NTSTATUS {
    fn from(status: Status) -> sys::NTSTATUS {
        status.0
    }
}

/// The configuration read from the service's `Parameters` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `Address` (`REG_SZ`, IPv4 or IPv6, default `0.0.0.0`) and `Port`
    /// (`REG_DWORD`, default [`DEFAULT_PORT`]).
    pub address: SocketAddr,
    /// `BufferSize` (`REG_DWORD`, default [`DEFAULT_BUFFER_SIZE`], at most
    /// [`MAX_BUFFER_SIZE`]): each connection's receive buffer.
    pub buffer_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
            buffer_size: DEFAULT_BUFFER_SIZE,
        }
    }
}

impl Config {
    /// Reads `Port`, `Address` and `BufferSize`; absent values take their
    /// defaults.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_PARAMETER` for a port above 65535, an address that
    /// does not parse, or a buffer size of 0 or above [`MAX_BUFFER_SIZE`].
    pub fn from_parameters(params: Option<&Parameters<'_>>) -> Result<Config, Status> {
        let invalid = Status(sys::STATUS_INVALID_PARAMETER);
        let mut config = Config::default();
        let Some(params) = params else {
            return Ok(config);
        };
        if let Some(port) = params.dword("Port") {
            config
                .address
                .set_port(u16::try_from(port).map_err(|_| invalid)?);
        }
        if let Some(address) = params.string("Address") {
            config
                .address
                .set_ip(address.trim().parse().map_err(|_| invalid)?);
        }
        if let Some(size) = params.dword("BufferSize") {
            let size = usize::try_from(size).map_err(|_| invalid)?;
            if size == 0 || size > MAX_BUFFER_SIZE {
                return Err(invalid);
            }
            config.buffer_size = size;
        }
        Ok(config)
    }
}

/// What the listener and connection threads share.
pub(crate) struct Shared {
    /// Signalled once, by `DriverUnload` (or a failed start).
    pub(crate) stop: Event,
    connections: AtomicU64,
    bytes: AtomicU64,
    /// Each connection's buffer, in bytes.
    pub(crate) buffer_size: usize,
}

impl Shared {
    fn new(buffer_size: usize) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            stop: Event::zeroed(),
            connections: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            buffer_size,
        });
        // SAFETY: the event is at its final address (inside the Arc) and not
        // yet seen by anyone else.
        unsafe { shared.stop.init() };
        shared
    }

    /// Counts a new connection and returns its number (from 1).
    pub(crate) fn next_id(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts echoed bytes.
    pub(crate) fn echoed(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The client's dispatch table: WSK 1.0, no client-level events.
static CLIENT_DISPATCH: sys::WSK_CLIENT_DISPATCH = sys::WSK_CLIENT_DISPATCH {
    Version: sys::MAKE_WSK_VERSION(1, 0),
    Reserved: 0,
    WskClientEvent: None,
};

/// The WSK registration and the captured provider. Boxed: `WskRegister`
/// keeps the addresses of the client NPI and the registration block until
/// `WskDeregister` returns
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskregister>).
struct Wsk {
    client: UnsafeCell<sys::WSK_CLIENT_NPI>,
    registration: UnsafeCell<sys::WSK_REGISTRATION>,
    provider: sys::WSK_PROVIDER_NPI,
}

// SAFETY: the registration block and the NPIs are only handed to the WSK
// routines, which may be called from any thread at PASSIVE_LEVEL.
unsafe impl Send for Wsk {}

impl Wsk {
    /// `WskRegister`, then `WskCaptureProviderNPI` (at most
    /// [`CAPTURE_TIMEOUT_MS`]); deregisters again when the capture fails.
    fn register() -> Result<Box<Wsk>, Status> {
        let wsk = Box::new(Wsk {
            client: UnsafeCell::new(sys::WSK_CLIENT_NPI {
                ClientContext: core::ptr::null_mut(),
                Dispatch: &raw const CLIENT_DISPATCH,
            }),
            registration: UnsafeCell::new(sys::WSK_REGISTRATION::ZEROED),
            provider: sys::WSK_PROVIDER_NPI {
                Client: core::ptr::null_mut(),
                Dispatch: core::ptr::null(),
            },
        });
        // SAFETY: PASSIVE_LEVEL (DriverEntry); the NPI, its static dispatch
        // table and the zeroed registration block live in the box until
        // `close` has deregistered.
        check(unsafe { sys::WskRegister(wsk.client.get(), wsk.registration.get()) })?;
        let mut provider = sys::WSK_PROVIDER_NPI {
            Client: core::ptr::null_mut(),
            Dispatch: core::ptr::null(),
        };
        // SAFETY: registered above; PASSIVE_LEVEL, as a non-zero timeout
        // requires; `provider` is a live local.
        let captured = check(unsafe {
            sys::WskCaptureProviderNPI(
                wsk.registration.get(),
                CAPTURE_TIMEOUT_MS,
                &raw mut provider,
            )
        });
        if let Err(e) = captured {
            // SAFETY: registered above, nothing captured, no socket.
            unsafe { sys::WskDeregister(wsk.registration.get()) };
            return Err(e);
        }
        let mut wsk = wsk;
        wsk.provider = provider;
        Ok(wsk)
    }

    /// `WskReleaseProviderNPI` and `WskDeregister`.
    ///
    /// # Safety
    ///
    /// Every socket made through the provider is closed (`WskDeregister`
    /// waits for them otherwise) and no call through it is in progress.
    #[allow(clippy::boxed_local)] // The box may be freed only after WskDeregister returned.
    unsafe fn close(self: Box<Wsk>) {
        // SAFETY: captured once in `register`, released once here.
        unsafe { sys::WskReleaseProviderNPI(self.registration.get()) };
        // SAFETY: registered in `register`; PASSIVE_LEVEL (DriverUnload or
        // DriverEntry); the caller's contract: nothing is left open.
        unsafe { sys::WskDeregister(self.registration.get()) };
    }
}

/// Everything the driver holds between `DriverEntry` and `DriverUnload`.
pub struct Driver {
    wsk: Box<Wsk>,
    shared: Arc<Shared>,
    listener: SystemThread,
}

impl Driver {
    /// Registers with WSK, opens the listening socket on `config.address`
    /// and starts the listener thread.
    ///
    /// # Errors
    ///
    /// The status of the step that failed (`WskRegister`, the capture —
    /// `STATUS_DEVICE_NOT_READY` after 5 s —, `WskSocket`, `WskBind`, an
    /// allocation or `PsCreateSystemThread`); everything done before it is
    /// undone.
    pub fn start(passive: &Passive<'_>, config: &Config) -> Result<Driver, Status> {
        let wsk = Wsk::register()?;
        let shared = Shared::new(config.buffer_size);
        let listener = match Listener::open(&wsk.provider, config.address) {
            Ok(l) => l,
            Err(e) => {
                // SAFETY: no socket is open.
                unsafe { wsk.close() };
                return Err(e);
            }
        };
        let socket = listener.socket();
        let serving = Arc::clone(&shared);
        match SystemThread::spawn(passive, move |passive| listener.serve(passive, &serving)) {
            Ok(listener) => {
                dbg_println!(
                    "raw-echo: listening on {} buffer={}",
                    config.address,
                    config.buffer_size
                );
                Ok(Driver {
                    wsk,
                    shared,
                    listener,
                })
            }
            Err(e) => {
                // The closure, and the listener with it, was dropped without
                // ever calling the provider; the socket is still open.
                let closed = Request::new().map(|r| listener::close_socket(socket, &r));
                if closed.is_none() {
                    // Without an IRP the socket cannot be closed, and
                    // `WskDeregister` would wait for it forever.
                    dbg_println!("raw-echo: cannot close the listening socket");
                    return Err(Status(e.into()));
                }
                // SAFETY: the only socket is closed.
                unsafe { wsk.close() };
                Err(Status(e.into()))
            }
        }
    }

    /// Stops the server (every connection closed, every thread finished),
    /// reports, releases the provider and deregisters; returns the
    /// connections accepted and the bytes echoed.
    #[allow(clippy::must_use_candidate)] // Stopping is the point; the counts are extra.
    pub fn stop(self, passive: &Passive<'_>) -> (u64, u64) {
        self.shared.stop.set();
        self.listener.join(passive);
        let connections = self.shared.connections.load(Ordering::Relaxed);
        let bytes = self.shared.bytes.load(Ordering::Relaxed);
        dbg_println!("raw-echo: stopped connections={connections} bytes={bytes}");
        // SAFETY: the listener thread closed the listening socket and joined
        // every connection thread, each of which closed its socket.
        unsafe { self.wsk.close() };
        (connections, bytes)
    }
}

impl wsk_driver::entry::Driver for Driver {
    fn unload(self, passive: &mut Passive<'_>) {
        self.stop(passive);
    }
}

/// `DriverEntry`'s body: reads the `Parameters`, then [`Driver::start`].
fn driver_entry(
    _driver: DriverObject,
    registry_path: RegistryPath<'_>,
    passive: &mut Passive<'_>,
) -> Result<Driver, Status> {
    let params = Parameters::open(registry_path, passive);
    let config = Config::from_parameters(params.as_ref()).inspect_err(|e| {
        dbg_println!("raw-echo: invalid Parameters (Port, Address or BufferSize): {e}");
    })?;
    drop(params);
    Driver::start(passive, &config).inspect_err(|e| {
        dbg_println!("raw-echo: failed to start: {e}");
    })
}
