//! The server's tasks: one accepts (`accept_loop`), one per connection
//! echoes; the configuration, the counters, and the lines reported.
//!
//! Report lines (one `DbgPrint` each, parsed by `cargo xtask wine` and the
//! host tests), each printed before the peer can see what it reports:
//!
//! ```text
//! echo-server: listening on 127.0.0.1:7007 mode=request-driven buffer=65536
//! echo-server: connection 1 from 127.0.0.1:50312
//! echo-server: connection 1 closed graceful bytes=29
//! echo-server: stopped connections=2 bytes=52 mode=request-driven
//! ```

use alloc::sync::Arc;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use wsk::request::TransferSlot;
use wsk::task::{Handle, StopSignal};
use wsk::tcp::{AcceptQueue, ConnectionSocket, ListenSocket, ReceiveQueue};
use wsk::timer::{sleep, timeout};
use wsk::{Buffer, Error};
use wsk_driver::dbg_println;
use wsk_driver::registry::Parameters;

/// The port served when the `Port` parameter is absent.
pub const DEFAULT_PORT: u16 = 7007;

/// The echo buffer when `BufferSize` is absent: with 4 KiB the example
/// echoed bulk data 3–6 times slower than a hand-written driver (issue 14).
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;

/// The largest `BufferSize` accepted (a typo should not take the pool).
pub const MAX_BUFFER_SIZE: usize = 16 << 20;

/// The longest a graceful disconnect or a close may take.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What to serve, from the service's `Parameters` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `Address` (`REG_SZ`, IPv4 or IPv6, default `0.0.0.0`) and `Port`
    /// (`REG_DWORD`, default [`DEFAULT_PORT`]).
    pub address: SocketAddr,
    /// `BufferSize` (`REG_DWORD`, default [`DEFAULT_BUFFER_SIZE`]): each
    /// connection's echo buffer, and the bytes its receive queue holds.
    pub buffer_size: usize,
}

impl Config {
    /// Reads `Address`, `Port` and `BufferSize`; absent values take their
    /// defaults.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_PARAMETER`] for a port above 65535, an address that
    /// does not parse, or a buffer size of 0 or above [`MAX_BUFFER_SIZE`].
    pub fn from_parameters(params: Option<&Parameters<'_>>) -> Result<Config, Error> {
        let dword = |name| params.and_then(|p| p.dword(name));
        let port = dword("Port").map_or(Ok(DEFAULT_PORT), u16::try_from);
        let ip = params
            .and_then(|p| p.string("Address"))
            .map_or(Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), |a| a.trim().parse());
        let size = dword("BufferSize").map_or(DEFAULT_BUFFER_SIZE, |n| n as usize);
        match (port, ip) {
            (Ok(port), Ok(ip)) if (1..=MAX_BUFFER_SIZE).contains(&size) => Ok(Config {
                address: SocketAddr::new(ip, port),
                buffer_size: size,
            }),
            _ => Err(Error::INVALID_PARAMETER),
        }
    }
}

/// How the provider serves the server: by events, or by requests only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept and receive events (`tcp::AcceptQueue`, `tcp::ReceiveQueue`).
    EventDriven,
    /// Accept and receive requests (providers without event callbacks,
    /// such as Wine's).
    RequestDriven,
}

impl Mode {
    /// The mode the listening socket's events say.
    pub(crate) fn of(listener: &ListenSocket<AcceptQueue>) -> Mode {
        if listener.events_enabled() {
            Mode::EventDriven
        } else {
            Mode::RequestDriven
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::EventDriven => "event-driven",
            Mode::RequestDriven => "request-driven",
        })
    }
}

/// The server's counters.
#[derive(Debug)]
pub struct Stats {
    /// The mode it runs in.
    pub mode: Mode,
    connections: AtomicU64,
    bytes: AtomicU64,
}

impl Stats {
    pub(crate) fn new(mode: Mode) -> Self {
        Stats {
            mode,
            connections: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Bytes echoed over all connections.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// The listener's task: accepts until `stop` is set, spawning a task per
/// connection, then closes the listening socket — awaited, so that a
/// pending accept request, which Wine completes only then, is gone before
/// `DriverUnload` deregisters.
pub(crate) async fn accept_loop(
    mut listener: ListenSocket<AcceptQueue>,
    tasks: Handle,
    config: Config,
    stats: Arc<Stats>,
    stop: StopSignal,
) {
    loop {
        let Some(accepted) = stop.run_until(listener.accept_next()).await else {
            break;
        };
        match accepted {
            Ok((socket, peer)) => {
                let session = Session::open(&stats, peer);
                // Refused only while shutting down: the socket closes.
                let _ = tasks.spawn(echo(socket, session, config.buffer_size));
            }
            Err(Error::FILE_CLOSED) => {
                dbg_println!("echo-server: the listening socket failed; serving open connections");
                break;
            }
            // The client reset before it was accepted: take the next one.
            Err(e) if e.is_connection_lost() => {}
            Err(e) => {
                dbg_println!("echo-server: accept failed: {e}");
                // Keep a persistent failure from spinning.
                let _ = stop.run_until(sleep(Duration::from_millis(100))).await;
            }
        }
    }
    let _ = timeout(CLOSE_TIMEOUT, listener.close()).await;
}

/// A connection's task: echoes until the peer closes or a request fails,
/// reports, disconnects gracefully after a graceful end, and closes.
/// Dropped by the executor's shutdown instead, it reports `stopped` (the
/// session's drop) and closes the socket (its drop).
async fn echo(socket: ConnectionSocket<ReceiveQueue>, session: Session, size: usize) {
    // Declared in this order, the session drops first: its report precedes
    // the close the peer sees.
    let mut socket = socket;
    let mut session = session;
    let end = echo_until_end(&mut socket, &session, size).await;
    session.close(end);
    if end == End::Graceful {
        // WskCloseSocket alone would reset a connection still up on
        // Windows; Wine refuses WskDisconnect and sends FIN on close.
        let _ = timeout(CLOSE_TIMEOUT, socket.disconnect(None)).await;
    }
    let _ = timeout(CLOSE_TIMEOUT, socket.close()).await;
}

/// Reads what arrived (by events or by requests, `tcp::ReceiveQueue`
/// decides) and sends it back, with one buffer and one request slot: no
/// allocation per round.
async fn echo_until_end(
    socket: &mut ConnectionSocket<ReceiveQueue>,
    session: &Session,
    size: usize,
) -> End {
    let (mut buffer, mut slot) = match (Buffer::with_capacity(size), TransferSlot::new()) {
        (Ok(buffer), Ok(slot)) => (buffer, slot),
        (Err(e), _) | (_, Err(e)) => return End::Failed(e),
    };
    loop {
        let (read, back) = socket.read_into(buffer).await;
        match read {
            Ok(0) => return End::Graceful,
            Ok(_) => {}
            Err(e) => return End::from_error(e),
        }
        let (sent, back) = socket.send_all_in(&mut slot, back).await;
        if let Err(e) = sent {
            return End::from_error(e);
        }
        session.echoed(back.len());
        buffer = back;
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The peer closed its side (FIN). Wine reports a reset this way too.
    Graceful,
    /// The peer reset the connection.
    Abortive,
    /// The server stopped while the connection was open.
    Stopped,
    /// A request failed with this error.
    Failed(Error),
}

impl End {
    fn from_error(error: Error) -> End {
        if error.is_connection_lost() {
            End::Abortive
        } else {
            End::Failed(error)
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Graceful => f.write_str("graceful"),
            End::Abortive => f.write_str("abortive"),
            End::Stopped => f.write_str("stopped"),
            End::Failed(e) => write!(f, "failed:{e}"),
        }
    }
}

/// One connection's number and counter; reports its end once, `stopped`
/// if it is dropped first.
struct Session {
    id: u64,
    echoed: AtomicU64,
    stats: Arc<Stats>,
    reported: bool,
}

impl Session {
    /// Numbers a new connection and reports it.
    fn open(stats: &Arc<Stats>, peer: SocketAddr) -> Session {
        let id = stats.connections.fetch_add(1, Ordering::Relaxed) + 1;
        dbg_println!("echo-server: connection {id} from {peer}");
        Session {
            id,
            echoed: AtomicU64::new(0),
            stats: Arc::clone(stats),
            reported: false,
        }
    }

    fn echoed(&self, n: usize) {
        self.echoed.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn close(&mut self, end: End) {
        let bytes = self.echoed.load(Ordering::Relaxed);
        dbg_println!(
            "echo-server: connection {} closed {end} bytes={bytes}",
            self.id
        );
        self.reported = true;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.reported {
            self.close(End::Stopped);
        }
    }
}
