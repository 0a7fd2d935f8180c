//! The server's logic, independent of how the driver starts: open a datagram
//! socket, receive a datagram, send it back to its sender, repeat until
//! stopped.

use core::fmt;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

use wsk::AddressFamily;
use wsk::events::NoDatagramEvents;
use wsk::irql::Passive;
use wsk::request::{ReceiveFromSlot, SendToSlot, Waitable};
use wsk::udp::DatagramSocket;
use wsk::{Buffer, Error, Provider, Registration};

/// Default `Port`.
pub const DEFAULT_PORT: u16 = 7008;

/// The largest UDP payload over IPv4; longer datagrams cannot exist, so a
/// buffer this large never truncates one.
pub const MAX_DATAGRAM: usize = 65_507;

/// How long one wait lasts before the stop flag is checked again: the
/// longest `DriverUnload` waits for an idle server.
pub const POLL: Duration = Duration::from_millis(100);

/// The longest the server waits for the WSK provider.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest the server waits for its socket to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Consecutive receive failures after which the server gives up.
pub const MAX_RECEIVE_FAILURES: u32 = 10;

/// What the server does, from the service's `Parameters` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `Port` (`REG_DWORD`): the UDP port bound on `0.0.0.0`.
    pub port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config { port: DEFAULT_PORT }
    }
}

impl Config {
    /// Builds the configuration from the registry value, falling back to
    /// [`DEFAULT_PORT`] when it is missing.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_PARAMETER`] for a `Port` of 0 or above 65535.
    pub fn new(port: Option<u32>) -> Result<Config, Error> {
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|&p| p != 0)
                .ok_or(Error::INVALID_PARAMETER)?,
        };
        Ok(Config { port })
    }

    /// The address the server binds: `0.0.0.0:port`.
    #[must_use]
    pub fn local(&self) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], self.port))
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Datagrams received (each echoed once).
    pub datagrams: u64,
    /// Bytes received.
    pub bytes: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "datagrams={} bytes={}", self.datagrams, self.bytes)
    }
}

/// Registers, serves until `stop` is set, deregisters; reports every step
/// through `log`.
///
/// # Errors
///
/// The status of the step that failed: `WskRegister`, the capture
/// ([`Error::DEVICE_NOT_READY`] after 5 s) or [`serve`].
pub fn run(
    passive: &Passive<'_>,
    config: &Config,
    stop: &AtomicBool,
    log: &mut dyn FnMut(fmt::Arguments<'_>),
) -> Result<Summary, Error> {
    let registration = Registration::register(passive)?;
    let result = registration
        .capture(passive, Some(CAPTURE_TIMEOUT))
        .and_then(|provider| serve(passive, &provider, config, stop, log));
    if let Err(left) = registration.deregister(passive) {
        // A handle outlived the server: a bug, which deregistration closed
        // and released (with a line of its own). Report it.
        log(format_args!("{left}"));
    }
    result
}

/// Opens the socket on [`Config::local`] and echoes datagrams until `stop`
/// is set, then closes the socket.
///
/// # Errors
///
/// - The status of `WskSocket` — for example [`Error::NOT_SUPPORTED`] or
///   [`Error::NOT_IMPLEMENTED`] from a provider without datagram sockets —
///   reported as `datagram sockets unavailable: …`.
/// - The status of `WskBind` (for example [`Error::ADDRESS_ALREADY_EXISTS`]).
/// - [`Error::INSUFFICIENT_RESOURCES`] if the receive buffer cannot be
///   allocated.
/// - The last status after [`MAX_RECEIVE_FAILURES`] consecutive failed
///   receives.
///
/// A stop during any of these steps is not an error.
pub fn serve(
    passive: &Passive<'_>,
    provider: &Provider,
    config: &Config,
    stop: &AtomicBool,
    log: &mut dyn FnMut(fmt::Arguments<'_>),
) -> Result<Summary, Error> {
    let buffer = Buffer::with_capacity(MAX_DATAGRAM)?;
    let local = config.local();
    let created = wait_or_stop(
        passive,
        DatagramSocket::new(provider, AddressFamily::V4, NoDatagramEvents),
        stop,
    );
    let socket = match created {
        None => return Ok(Summary::default()),
        Some(Ok(socket)) => socket,
        Some(Err(e)) => {
            log(format_args!("datagram sockets unavailable: {e}"));
            return Err(e);
        }
    };
    let bound = wait_or_stop(passive, socket.bind(local), stop);
    let result = match bound {
        None => Ok(Summary::default()),
        Some(Err(e)) => {
            log(format_args!("cannot bind {local}: {e}"));
            Err(e)
        }
        Some(Ok(_)) => {
            log(format_args!("listening on {local}"));
            echo_until_stopped(passive, &socket, buffer, stop, log)
        }
    };
    // Closing also completes a request abandoned by a stop on providers that
    // ignore IoCancelIrp (Wine).
    match socket.close().wait_timeout(passive, CLOSE_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log(format_args!("close: {e}")),
        // Its memory is freed when the provider completes it.
        Err(pending) => {
            log(format_args!("close still pending after {CLOSE_TIMEOUT:?}"));
            drop(pending);
        }
    }
    result
}

/// The receive/send loop.
fn echo_until_stopped(
    passive: &Passive<'_>,
    socket: &DatagramSocket,
    mut buffer: Buffer,
    stop: &AtomicBool,
    log: &mut dyn FnMut(fmt::Arguments<'_>),
) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    let mut failures = 0;
    // One buffer and two request slots serve every datagram: the loop
    // allocates nothing per datagram.
    let mut receive_slot = ReceiveFromSlot::new()?;
    let mut send_slot = SendToSlot::new()?;
    loop {
        let request = socket.receive_from_in(&mut receive_slot, buffer);
        let Some((received, back)) = wait_or_stop(passive, request, stop) else {
            return Ok(summary);
        };
        buffer = back;
        let received = match received {
            Ok(r) => r,
            Err(_) if stopping(stop) => return Ok(summary),
            Err(e) => {
                // For example STATUS_PORT_UNREACHABLE after an earlier echo
                // met an ICMP error: the socket itself is fine.
                failures += 1;
                log(format_args!("receive failed: {e}"));
                if failures >= MAX_RECEIVE_FAILURES {
                    return Err(e);
                }
                passive.sleep(POLL);
                continue;
            }
        };
        failures = 0;
        let remote = received.peer_addr();
        summary.datagrams += 1;
        summary.bytes += received.len() as u64;
        log(format_args!(
            "datagram {} from {remote} bytes={}",
            summary.datagrams,
            received.len()
        ));
        if received.is_empty() {
            // `send_to` refuses an empty buffer; nothing to echo.
            continue;
        }
        let request = socket.send_to_in(&mut send_slot, buffer, remote);
        let Some((sent, back)) = wait_or_stop(passive, request, stop) else {
            return Ok(summary);
        };
        buffer = back;
        if let Err(e) = sent {
            log(format_args!("echo to {remote} failed: {e}"));
        }
    }
}

/// Whether the server was asked to stop.
fn stopping(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Acquire)
}

/// Waits for `request` in [`POLL`] slices; `None` (and the request dropped,
/// which cancels it) once `stop` is set.
fn wait_or_stop<R: Waitable>(
    passive: &Passive<'_>,
    mut request: R,
    stop: &AtomicBool,
) -> Option<R::Output> {
    loop {
        match request.wait_timeout(passive, POLL) {
            Ok(output) => return Some(output),
            Err(pending) if stopping(stop) => {
                // Cancelled; its buffer is freed once the provider lets go.
                drop(pending);
                return None;
            }
            Err(pending) => request = pending,
        }
    }
}
