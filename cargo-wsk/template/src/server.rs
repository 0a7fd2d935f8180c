//! The echo server: a task that accepts connections and a task per
//! connection that sends back what it receives.
//!
//! `tcp::AcceptQueue` and `tcp::ReceiveQueue` take connections and data
//! from the provider's event callbacks where it has them, and from accept
//! and receive requests where it has none (Wine): the tasks are the same
//! either way. Nothing waits inside a task; `DriverUnload` stops the
//! listener's task with a `StopSignal` and shuts the executor down, which
//! drops (and so closes) every connection.

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use wsk::irql::Passive;
use wsk::request::TransferSlot;
use wsk::task::{Executor, Handle, JoinHandle, StopSignal};
use wsk::tcp::{AcceptQueue, ConnectionSocket, ListenSocket, ReceiveQueue};
use wsk::timer::timeout;
use wsk::{Buffer, Error, Provider};
use wsk_driver::dbg_println;
use wsk_driver::registry::Parameters;

use crate::NAME;

/// The port when `Parameters\Port` is absent.
pub const DEFAULT_PORT: u16 = 7007;
/// The longest opening the listening socket or closing a socket may take.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
/// Each connection's echo buffer.
const BUFFER_SIZE: usize = 64 * 1024;

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

/// Counters the tasks and `stop` share.
#[derive(Default)]
struct Totals {
    connections: AtomicU64,
    bytes: AtomicU64,
}

/// A running server.
pub struct Server {
    executor: Executor,
    stop: StopSignal,
    listener: JoinHandle<()>,
    totals: Arc<Totals>,
}

impl Server {
    /// Listens on `config.address` and starts the tasks.
    ///
    /// # Errors
    ///
    /// Opening the socket failed (for example
    /// [`Error::ADDRESS_ALREADY_EXISTS`]) or timed out, or the executor's
    /// threads could not be created.
    pub fn start(
        passive: &Passive<'_>,
        provider: &Provider,
        config: &Config,
    ) -> Result<Server, Error> {
        let queue = AcceptQueue::new(ReceiveQueue::new);
        let listen = wsk::tcp::listen(provider, config.address, queue);
        let listener = wsk::block_on_timeout(passive, listen, SOCKET_TIMEOUT)?;
        // Events where the provider has them; requests otherwise (Wine).
        let mode = if listener.events_enabled() {
            "event-driven"
        } else {
            "request-driven"
        };
        dbg_println!("{NAME}: listening on {} mode={mode}", config.address);
        let executor = Executor::builder()
            .workers(2)
            .blocking_threads(0)
            .build(passive)?;
        let (stop, totals) = (StopSignal::new(), Arc::new(Totals::default()));
        let accepting = accept(listener, executor.handle(), totals.clone(), stop.clone());
        let listener = match executor.spawn(accepting) {
            Ok(task) => task,
            Err(refused) => {
                let _ = executor.shutdown(passive); // no thread may outlive DriverEntry
                return Err(refused.error());
            }
        };
        Ok(Server {
            executor,
            stop,
            listener,
            totals,
        })
    }

    /// Stops the tasks — the listener's first, which closes its socket,
    /// then the connections' (dropped: their sockets close) — and returns
    /// the number of connections and bytes echoed.
    pub fn stop(self, passive: &Passive<'_>) -> (u64, u64) {
        self.stop.stop();
        let _ = wsk::block_on_timeout(passive, self.listener, SOCKET_TIMEOUT);
        if let Err(e) = self.executor.shutdown(passive) {
            dbg_println!("{NAME}: tasks still running after shutdown: {e}");
        }
        let totals = (
            self.totals.connections.load(Ordering::Relaxed),
            self.totals.bytes.load(Ordering::Relaxed),
        );
        dbg_println!(
            "{NAME}: stopped connections={} bytes={}",
            totals.0,
            totals.1
        );
        totals
    }
}

/// The listener's task: a task per connection until `stop` is set, then
/// closes the listening socket (which completes a pending accept request).
async fn accept(
    mut listener: ListenSocket<AcceptQueue>,
    tasks: Handle,
    totals: Arc<Totals>,
    stop: StopSignal,
) {
    while let Some(accepted) = stop.run_until(listener.accept_next()).await {
        match accepted {
            Ok((socket, remote)) => {
                let n = totals.connections.fetch_add(1, Ordering::Relaxed) + 1;
                dbg_println!("{NAME}: connection {n} from {remote}");
                let _ = tasks.spawn(echo(socket, n, totals.clone()));
            }
            // The client reset before its connection was accepted.
            Err(e) if e.is_connection_lost() => {}
            Err(e) => {
                dbg_println!("{NAME}: accept failed: {e}");
                break;
            }
        }
    }
    let _ = timeout(SOCKET_TIMEOUT, listener.close()).await;
}

/// A connection's task: echoes until the peer closes or a request fails,
/// then disconnects gracefully (after a graceful end) and closes.
async fn echo(mut socket: ConnectionSocket<ReceiveQueue>, n: u64, totals: Arc<Totals>) {
    let (mut buffer, mut slot) = match (Buffer::with_capacity(BUFFER_SIZE), TransferSlot::new()) {
        (Ok(b), Ok(s)) => (b, s),
        _ => return dbg_println!("{NAME}: connection {n} closed failed"),
    };
    let mut bytes = 0;
    let how = loop {
        // By receive events or receive requests: the queue decides.
        let (read, back) = socket.read_into(buffer).await;
        match read {
            Ok(0) => break "graceful",
            Ok(_) => {}
            Err(e) if e.is_connection_lost() => break "abortive",
            Err(_) => break "failed",
        }
        // The rest of a short send goes out from the same memory (no copy).
        let (sent, back) = socket.send_all_in(&mut slot, back).await;
        if sent.is_err() {
            break "failed";
        }
        bytes += back.len() as u64;
        totals.bytes.fetch_add(back.len() as u64, Ordering::Relaxed);
        buffer = back;
    };
    dbg_println!("{NAME}: connection {n} closed {how} bytes={bytes}");
    if how == "graceful" {
        // Closing alone would reset a connection that is still up (Wine
        // refuses WskDisconnect and sends FIN on close).
        let _ = timeout(SOCKET_TIMEOUT, socket.disconnect(None)).await;
    }
    let _ = timeout(SOCKET_TIMEOUT, socket.close()).await;
}
