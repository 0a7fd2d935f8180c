//! The client's logic, independent of how the driver starts: resolve,
//! connect, send, read the reply, disconnect, close.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
use wsk::irql::Passive;
use wsk::tcp::ConnectionSocket;
use wsk::{Buffer, Error, Provider, block_on_timeout};

/// Default `Host`.
pub const DEFAULT_HOST: &str = "localhost";
/// Default `Port` (the echo service).
pub const DEFAULT_PORT: u16 = 7;
/// Default `Message`.
pub const DEFAULT_MESSAGE: &str = "hello from the driver\n";

/// How long one network step may take before the client gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client does, from the service's `Parameters` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `Host` (`REG_SZ`): a name or an address literal.
    pub host: String,
    /// `Port` (`REG_DWORD`).
    pub port: u16,
    /// `Message` (`REG_SZ`): sent once; the reply must be as long.
    pub message: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: DEFAULT_HOST.into(),
            port: DEFAULT_PORT,
            message: DEFAULT_MESSAGE.into(),
        }
    }
}

impl Config {
    /// Builds the configuration from the registry values, falling back to the
    /// defaults for missing ones.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_PARAMETER`] for a `Port` above 65535 or 0, an empty
    /// `Host` or an empty `Message`.
    pub fn new(
        host: Option<String>,
        port: Option<u32>,
        message: Option<String>,
    ) -> Result<Config, Error> {
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|&p| p != 0)
                .ok_or(Error::INVALID_PARAMETER)?,
        };
        let host = host.unwrap_or_else(|| DEFAULT_HOST.into());
        let message = message.unwrap_or_else(|| DEFAULT_MESSAGE.into());
        if host.is_empty() || message.is_empty() {
            return Err(Error::INVALID_PARAMETER);
        }
        Ok(Config {
            host,
            port,
            message,
        })
    }
}

/// The connection's event handler: counts the peer's disconnects.
///
/// Runs at IRQL ≤ `DISPATCH_LEVEL` and only touches atomics.
#[derive(Debug, Default)]
pub struct Events {
    graceful: AtomicU32,
    abortive: AtomicU32,
}

#[wsk::vtable]
impl ConnectionEvents for Events {
    fn on_disconnect(&self, _cx: &EventContext<'_>, flags: DisconnectFlags) {
        let counter = if flags.is_abortive() {
            &self.abortive
        } else {
            &self.graceful
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The address connected to.
    pub remote: SocketAddr,
    /// Whether the provider accepted event callbacks.
    pub events: bool,
    /// Bytes sent.
    pub sent: usize,
    /// The reply.
    pub reply: Vec<u8>,
    /// The outcome of the graceful disconnect.
    pub disconnect: Result<(), Error>,
    /// Disconnect events seen: (graceful, abortive).
    pub peer_disconnects: (u32, u32),
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remote={} events={} sent={} received={}",
            self.remote,
            self.events,
            self.sent,
            self.reply.len()
        )
    }
}

/// Runs the client once, reporting each step through `log`.
///
/// # Errors
///
/// The first step that failed: resolution, connection, sending or
/// receiving (a disconnect failure is reported, not an error: Wine's
/// provider does not implement `WskDisconnect`).
pub fn run(
    passive: &Passive<'_>,
    provider: &Provider,
    config: &Config,
    log: &mut dyn FnMut(fmt::Arguments<'_>),
) -> Result<Report, Error> {
    let service = alloc::format!("{}", config.port);
    let addresses = provider.resolve(passive, &config.host, Some(&service), None)?;
    log(format_args!(
        "resolved {} to {} address(es), first {}",
        config.host,
        addresses.len(),
        addresses[0]
    ));

    let (socket, remote, events) = connect_any(passive, provider, &addresses, log)?;
    let message = Buffer::from_slice(config.message.as_bytes())?;
    let (sent, _) = socket.send(message).wait(passive);
    let sent = sent?;
    log(format_args!("sent {sent} bytes"));

    let reply = receive_reply(passive, &socket, sent)?;
    log(format_args!(
        "received {} bytes identical={}",
        reply.len(),
        reply == config.message.as_bytes()
    ));

    let disconnect = socket.disconnect(None).wait(passive).0;
    match disconnect {
        Ok(()) => log(format_args!("disconnect: graceful")),
        Err(e) => log(format_args!("disconnect: {e}")),
    }
    let handler = socket.handler();
    let peer_disconnects = (
        handler.graceful.load(Ordering::Relaxed),
        handler.abortive.load(Ordering::Relaxed),
    );
    socket.close().wait(passive)?;
    Ok(Report {
        remote,
        events,
        sent,
        reply,
        disconnect,
        peer_disconnects,
    })
}

/// Connects to the first address that accepts; enables the disconnect event
/// where the provider supports events.
fn connect_any(
    passive: &Passive<'_>,
    provider: &Provider,
    addresses: &[SocketAddr],
    log: &mut dyn FnMut(fmt::Arguments<'_>),
) -> Result<(ConnectionSocket<Events>, SocketAddr, bool), Error> {
    let mut last = Error::NOT_FOUND;
    for &remote in addresses {
        let connect = wsk::tcp::connect(provider, remote, Events::default());
        match block_on_timeout(passive, connect, STEP_TIMEOUT) {
            Ok(socket) => {
                log(format_args!("connected to {remote}"));
                // `tcp::connect` tolerates a provider without event support
                // (Wine's `WskControlSocket` answers STATUS_NOT_IMPLEMENTED).
                let events = socket.events_enabled();
                if !events {
                    log(format_args!(
                        "event callbacks unavailable ({}): using requests only",
                        Error::NOT_IMPLEMENTED
                    ));
                }
                return Ok((socket, remote, events));
            }
            Err(e) => {
                log(format_args!("connect to {remote} failed: {e}"));
                last = e;
            }
        }
    }
    Err(last)
}

/// Receives until `expected` bytes arrived or the peer closed.
fn receive_reply(
    passive: &Passive<'_>,
    socket: &ConnectionSocket<Events>,
    expected: usize,
) -> Result<Vec<u8>, Error> {
    let mut reply = Vec::with_capacity(expected);
    let mut buffer = Buffer::with_capacity(expected.max(1))?;
    while reply.len() < expected {
        let request = socket.receive(buffer);
        let Ok((received, returned)) = request.wait_timeout(passive, STEP_TIMEOUT) else {
            // The dropped request is cancelled; its buffer is freed once the
            // provider lets go of it.
            return Err(Error::IO_TIMEOUT);
        };
        buffer = returned;
        match received? {
            0 => break,
            _ => reply.extend_from_slice(buffer.as_slice()),
        }
    }
    Ok(reply)
}
