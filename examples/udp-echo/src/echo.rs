//! The server's logic: open a datagram socket, then a task that receives a
//! datagram and sends it back to its sender, until the executor shuts down.

use alloc::sync::Arc;
use core::fmt;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use wsk::events::NoDatagramEvents;
use wsk::irql::Passive;
use wsk::request::{ReceiveFromSlot, SendToSlot};
use wsk::udp::DatagramSocket;
use wsk::{AddressFamily, Buffer, Error, Provider};
use wsk_driver::dbg_println;

/// Default `Port`.
pub const DEFAULT_PORT: u16 = 7008;

/// The largest UDP payload over IPv4; longer datagrams cannot exist, so a
/// buffer this large never truncates one.
pub const MAX_DATAGRAM: usize = 65_507;

/// Consecutive receive failures after which the task gives up.
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

/// What the task did.
#[derive(Debug, Default)]
pub struct Stats {
    datagrams: AtomicU64,
    bytes: AtomicU64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let datagrams = self.datagrams.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        write!(f, "datagrams={datagrams} bytes={bytes}")
    }
}

/// Whether `error` says the provider has no datagram sockets (Wine 8's
/// `netio.sys` answers `STATUS_NOT_IMPLEMENTED`).
pub(crate) fn unavailable(error: Error) -> bool {
    matches!(error, Error::NOT_SUPPORTED | Error::NOT_IMPLEMENTED)
}

/// Creates the datagram socket and binds it to [`Config::local`].
///
/// # Errors
///
/// The status of `WskSocket` — for example [`Error::NOT_IMPLEMENTED`] from
/// a provider without datagram sockets, reported as `datagram sockets
/// unavailable: …` — or of `WskBind` (for example
/// [`Error::ADDRESS_ALREADY_EXISTS`]); [`Error::IO_TIMEOUT`] after `limit`.
pub(crate) fn open(
    passive: &Passive<'_>,
    provider: &Provider,
    config: Config,
    limit: Duration,
) -> Result<DatagramSocket, Error> {
    let created = DatagramSocket::new(provider, AddressFamily::V4, NoDatagramEvents);
    let socket = wsk::block_on_timeout(passive, created, limit).inspect_err(|e| {
        dbg_println!("udp-echo: datagram sockets unavailable: {e}");
    })?;
    let local = config.local();
    if let Err(e) = wsk::block_on_timeout(passive, socket.bind(local), limit) {
        dbg_println!("udp-echo: cannot bind {local}: {e}");
        // Closed (and awaited) so that the port is free again.
        let _ = socket.close().wait_or_cancel(passive, limit);
        return Err(e);
    }
    dbg_println!("udp-echo: listening on {local}");
    Ok(socket)
}

/// The echo task: receives a datagram, sends it back to its sender, with one
/// buffer and two reused request slots (nothing allocated per datagram).
/// Ends after [`MAX_RECEIVE_FAILURES`] failed receives in a row; otherwise
/// runs until the executor drops it, which cancels the pending receive and
/// closes the socket.
pub(crate) async fn serve(socket: DatagramSocket, stats: Arc<Stats>) {
    let (mut buffer, mut receiving, mut sending) = match (
        Buffer::with_capacity(MAX_DATAGRAM),
        ReceiveFromSlot::new(),
        SendToSlot::new(),
    ) {
        (Ok(b), Ok(r), Ok(s)) => (b, r, s),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            return dbg_println!("udp-echo: not serving: {e}");
        }
    };
    let mut failures = 0;
    loop {
        let (received, back) = socket.receive_from_in(&mut receiving, buffer).await;
        buffer = back;
        let received = match received {
            Ok(r) => r,
            Err(e) => {
                // For example STATUS_PORT_UNREACHABLE after an earlier echo
                // met an ICMP error: the socket itself is fine.
                failures += 1;
                dbg_println!("udp-echo: receive failed: {e}");
                if failures >= MAX_RECEIVE_FAILURES {
                    return dbg_println!("udp-echo: giving up after {failures} failures");
                }
                let _ = wsk::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        failures = 0;
        let remote = received.peer_addr();
        let n = stats.datagrams.fetch_add(1, Ordering::Relaxed) + 1;
        stats
            .bytes
            .fetch_add(received.len() as u64, Ordering::Relaxed);
        dbg_println!(
            "udp-echo: datagram {n} from {remote} bytes={}",
            received.len()
        );
        if received.is_empty() {
            continue; // `send_to` refuses an empty buffer; nothing to echo
        }
        let (sent, back) = socket.send_to_in(&mut sending, buffer, remote).await;
        buffer = back;
        if let Err(e) = sent {
            dbg_println!("udp-echo: echo to {remote} failed: {e}");
        }
    }
}
