//! The echo server: one listening socket, connections served one at a time
//! on a system thread with receive and send requests. Where the provider
//! has event callbacks, each connection also enables the disconnect event,
//! which tells a graceful close (FIN) from an abortive one (RST); where it
//! has none (Wine), the server says so and goes on with requests only.

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext, NoListenEvents};
use wsk::irql::Passive;
use wsk::request::{TransferSlot, Waitable};
use wsk::tcp::{ConnectionSocket, ListenSocket, ReceiveFlags, SendFlags};
use wsk::{Buffer, Error, Provider};
use wsk_driver::dbg_println;
use wsk_driver::registry::Parameters;
use wsk_driver::thread::SystemThread;

use crate::NAME;

/// The port when `Parameters\Port` is absent.
pub const DEFAULT_PORT: u16 = 7007;
/// How long each wait lasts before the stop flag is checked again.
const POLL: Duration = Duration::from_millis(100);
/// The longest opening the listening socket or closing a socket may take.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive buffer per connection, reused for the echo.
const BUFFER_SIZE: usize = 4096;

/// Where to listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The local address and port.
    pub address: SocketAddr,
}

impl Config {
    /// `Port` (`REG_DWORD`, default 7007) and `Address` (`REG_SZ`, default
    /// `127.0.0.1`).
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_PARAMETER`] for a port outside 1..=65535 or an
    /// address that does not parse.
    pub fn from_parameters(params: Option<&Parameters<'_>>) -> Result<Config, Error> {
        let port = match params.and_then(|p| p.dword("Port")) {
            None => DEFAULT_PORT,
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|&p| p != 0)
                .ok_or(Error::INVALID_PARAMETER)?,
        };
        let ip = match params.and_then(|p| p.string("Address")) {
            None => core::net::IpAddr::from([127, 0, 0, 1]),
            Some(text) => text.parse().map_err(|_| Error::INVALID_PARAMETER)?,
        };
        Ok(Config {
            address: SocketAddr::new(ip, port),
        })
    }
}

/// The connection handler: records how the peer disconnected, where the
/// provider delivers the disconnect event.
#[derive(Default)]
pub struct Peer {
    abortive: AtomicBool,
}

#[wsk::vtable]
impl ConnectionEvents for Peer {
    fn on_disconnect(&self, _cx: &EventContext<'_>, flags: DisconnectFlags) {
        // At IRQL <= DISPATCH_LEVEL, without a token that could wait.
        if flags.is_abortive() {
            self.abortive.store(true, Ordering::Relaxed);
        }
    }
}

/// Counters the server thread and `stop` share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    connections: AtomicU64,
    bytes: AtomicU64,
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    thread: SystemThread,
}

impl Server {
    /// Opens the listening socket and serves on a new system thread until
    /// [`stop`](Self::stop).
    ///
    /// # Errors
    ///
    /// Opening the socket failed (for example
    /// [`Error::ADDRESS_ALREADY_EXISTS`]) or timed out, or the thread could
    /// not be created.
    pub fn start(passive: &Passive<'_>, provider: &Provider, config: &Config) -> Result<Server, Error> {
        let listener = wsk::block_on_timeout(
            passive,
            wsk::tcp::listen(provider, config.address, NoListenEvents::<Peer>::new()),
            SOCKET_TIMEOUT,
        )?;
        dbg_println!("{NAME}: listening on {}", config.address);
        let shared = Arc::new(Shared::default());
        let serving = Arc::clone(&shared);
        let thread = SystemThread::spawn(passive, move |passive| serve(passive, listener, &serving))?;
        Ok(Server { shared, thread })
    }

    /// Stops serving, waits for the server thread, and returns the number
    /// of connections and bytes echoed.
    pub fn stop(self, passive: &Passive<'_>) -> (u64, u64) {
        self.shared.stop.store(true, Ordering::Release);
        self.thread.join(passive);
        let totals = (
            self.shared.connections.load(Ordering::Relaxed),
            self.shared.bytes.load(Ordering::Relaxed),
        );
        dbg_println!("{NAME}: stopped connections={} bytes={}", totals.0, totals.1);
        totals
    }
}

/// Waits for `request` in [`POLL`] slices until it completes or the server
/// stops; then the request is dropped (which cancels it) and `None`
/// returned.
fn wait_or_stop<R: Waitable>(passive: &Passive<'_>, mut request: R, shared: &Shared) -> Option<R::Output> {
    loop {
        match request.wait_timeout(passive, POLL) {
            Ok(output) => return Some(output),
            Err(pending) if shared.stop.load(Ordering::Acquire) => {
                drop(pending);
                return None;
            }
            Err(pending) => request = pending,
        }
    }
}

/// The server thread: accepts and serves connections until stopped, then
/// closes the listening socket (which also completes an accept that
/// cancelling did not, as on Wine).
fn serve(passive: &Passive<'_>, listener: ListenSocket<NoListenEvents<Peer>>, shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        let Some(accepted) = wait_or_stop(passive, listener.accept(Peer::default()), shared) else {
            break;
        };
        match accepted {
            Ok((socket, remote)) => {
                let n = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                dbg_println!("{NAME}: connection {n} from {remote}");
                let (bytes, how) = echo(passive, &socket, shared);
                dbg_println!("{NAME}: connection {n} closed {how} bytes={bytes}");
                close(passive, socket, how == "graceful");
            }
            // The client reset before its connection was accepted.
            Err(e) if e.is_connection_lost() => {}
            Err(e) => {
                dbg_println!("{NAME}: accept failed: {e}");
                passive.sleep(POLL);
            }
        }
    }
    // A close that does not finish in time stays submitted; its memory is
    // freed when it completes.
    let _ = listener.close().wait_or_cancel(passive, SOCKET_TIMEOUT);
}

/// Echoes until the peer closes, a request fails or the server stops;
/// returns the bytes echoed and how the connection ended.
fn echo(passive: &Passive<'_>, socket: &ConnectionSocket<Peer>, shared: &Shared) -> (u64, &'static str) {
    match socket.enable_events() {
        Ok(()) => dbg_println!("{NAME}: disconnect event enabled"),
        Err(e) => dbg_println!("{NAME}: no event callbacks ({e}): requests only"),
    }
    let (mut buffer, mut slot) = match (Buffer::with_capacity(BUFFER_SIZE), TransferSlot::new()) {
        (Ok(b), Ok(s)) => (b, s),
        _ => return (0, "failed"),
    };
    let mut bytes = 0;
    loop {
        buffer.clear();
        let request = socket.receive_in(&mut slot, buffer, ReceiveFlags::empty());
        let Some((received, back)) = wait_or_stop(passive, request, shared) else {
            return (bytes, "stopped");
        };
        buffer = back;
        match received {
            Ok(0) if socket.handler().abortive.load(Ordering::Relaxed) => return (bytes, "abortive"),
            Ok(0) => return (bytes, "graceful"),
            Ok(_) => {}
            Err(e) if e.is_connection_lost() => return (bytes, "abortive"),
            Err(_) => return (bytes, "failed"),
        }
        while !buffer.is_empty() {
            let len = buffer.len();
            let request = socket.send_in(&mut slot, buffer, SendFlags::empty());
            let Some((sent, back)) = wait_or_stop(passive, request, shared) else {
                return (bytes, "stopped");
            };
            buffer = back;
            match sent {
                Ok(n) if n > 0 => {
                    let n = n.min(len);
                    bytes += n as u64;
                    shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    // The rest goes next, from where this send ended (no copy).
                    buffer.advance(n);
                }
                _ => return (bytes, "failed"),
            }
        }
    }
}

/// Disconnects gracefully after a graceful end (closing alone would reset
/// a connection that is still up), then closes the socket.
fn close(passive: &Passive<'_>, socket: ConnectionSocket<Peer>, graceful: bool) {
    if graceful {
        // Wine refuses WskDisconnect (and sends FIN on close): errors do not
        // matter, the close follows in any case.
        let _ = socket.disconnect(None).wait_or_cancel(passive, SOCKET_TIMEOUT);
    }
    let _ = socket.close().wait_or_cancel(passive, SOCKET_TIMEOUT);
}
