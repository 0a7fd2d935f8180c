//! The server: opens the listening socket, picks the mode the provider
//! supports, serves on a system thread, and stops on request.

use alloc::sync::Arc;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use wsk::AddressFamily;
use wsk::defer::IoObject;
use wsk::events::NoListenEvents;
use wsk::irql::Passive;
use wsk::tcp::ListenSocket;
use wsk::{Error, Provider};
use wsk_driver::dbg_println;
use wsk_driver::registry::Parameters;
use wsk_driver::thread::SystemThread;

use crate::echo::{Mode, Shared};
use crate::{event_mode, request_mode};

/// The port served when the `Port` parameter is absent.
pub const DEFAULT_PORT: u16 = 7007;

/// The longest wait for the listening socket to be created and bound.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to listen, from the service's `Parameters` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `Address` (`REG_SZ`, an IPv4 or IPv6 address, default `0.0.0.0`)
    /// and `Port` (`REG_DWORD`, default [`DEFAULT_PORT`]).
    pub address: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
        }
    }
}

impl Config {
    /// Reads `Address` and `Port`; absent values take their defaults.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_PARAMETER`] for a port above 65535 or an address
    /// that does not parse (a typo should not silently listen elsewhere).
    pub fn from_parameters(params: Option<&Parameters<'_>>) -> Result<Config, Error> {
        let mut config = Config::default();
        let Some(params) = params else {
            return Ok(config);
        };
        if let Some(port) = params.dword("Port") {
            config
                .address
                .set_port(u16::try_from(port).map_err(|_| Error::INVALID_PARAMETER)?);
        }
        if let Some(address) = params.string("Address") {
            config.address.set_ip(
                address
                    .trim()
                    .parse()
                    .map_err(|_| Error::INVALID_PARAMETER)?,
            );
        }
        Ok(config)
    }
}

/// Creates a listening socket, binds it to `address` and enables accept
/// and connection events; `None` (with the socket closed, so the address
/// is free again) when the provider has no event support
/// ([`Error::NOT_IMPLEMENTED`], as on Wine).
fn open_with_events(
    passive: &Passive<'_>,
    provider: &Provider,
    address: SocketAddr,
    events: &Arc<event_mode::Events>,
) -> Result<Option<ListenSocket<event_mode::Listener>>, Error> {
    let listener = event_mode::Listener(Arc::clone(events));
    let family = AddressFamily::of(&address);
    let socket = wsk::block_on_timeout(
        passive,
        ListenSocket::new(provider, family, listener),
        OPEN_TIMEOUT,
    )?;
    let bound = match socket.bind(address).wait_timeout(passive, OPEN_TIMEOUT) {
        Ok(result) => result.map(drop),
        Err(_pending) => Err(Error::IO_TIMEOUT),
    };
    match bound.and_then(|()| socket.enable_events()) {
        Ok(()) => Ok(Some(socket)),
        Err(e) => {
            // Closed and waited for, not dropped: the request-driven socket
            // binds the same address next.
            let _ = socket.close().wait_or_cancel(passive, OPEN_TIMEOUT);
            if e == Error::NOT_IMPLEMENTED {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// What a stopped server did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The mode it ran in.
    pub mode: Mode,
    /// Connections accepted.
    pub connections: u64,
    /// Bytes echoed over all connections.
    pub bytes: u64,
}

/// A running echo server.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    mode: Mode,
    thread: SystemThread,
}

impl Server {
    /// Opens a listening socket on `address` with accept and receive events
    /// (event-driven mode), or without them where the provider has no event
    /// support (request-driven mode), reports it, and serves on a new
    /// system thread until [`stop`](Self::stop).
    ///
    /// `io` owns the work items of the event-driven mode.
    ///
    /// # Errors
    ///
    /// Opening the listening socket failed (for example
    /// [`Error::ADDRESS_ALREADY_EXISTS`], or [`Error::IO_TIMEOUT`] after
    /// 5 s), or the system thread could not be created.
    pub fn start(
        passive: &mut Passive<'_>,
        provider: &Provider,
        io: IoObject,
        address: SocketAddr,
    ) -> Result<Server, Error> {
        let shared = Arc::new(Shared::new());
        let events = Arc::new(event_mode::Events::new(Arc::clone(&shared), io));
        let thread = if let Some(listener) = open_with_events(passive, provider, address, &events)?
        {
            let serving = Arc::clone(&events);
            let spawned = SystemThread::spawn(passive, move |passive| {
                event_mode::serve(passive, listener, &serving);
            });
            if spawned.is_err() {
                // The listening socket went with the closure (closing in
                // the background), but connections may have been accepted
                // already: close them before the caller deregisters.
                shared.stop();
                event_mode::close_all(passive, &events);
            }
            spawned.map(|t| (Mode::EventDriven, t))
        } else {
            let listener = wsk::block_on_timeout(
                passive,
                wsk::tcp::listen(provider, address, NoListenEvents::new()),
                OPEN_TIMEOUT,
            )?;
            let worker = Arc::clone(&shared);
            SystemThread::spawn(passive, move |passive| {
                request_mode::serve(passive, listener, &worker);
            })
            .map(|t| (Mode::RequestDriven, t))
        };
        let (mode, thread) = thread?;
        dbg_println!("echo-server: listening on {address} mode={mode}");
        Ok(Server {
            shared,
            mode,
            thread,
        })
    }

    /// The mode the server runs in.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Stops serving: closes the listening socket and every connection,
    /// waits for the server's threads and work items, and reports.
    #[allow(clippy::must_use_candidate)] // Stopping is the point; the summary is extra.
    pub fn stop(self, passive: &Passive<'_>) -> Summary {
        self.shared.stop();
        self.thread.join(passive);
        let summary = Summary {
            mode: self.mode,
            connections: self.shared.connections(),
            bytes: self.shared.bytes(),
        };
        dbg_println!(
            "echo-server: stopped connections={} bytes={} mode={}",
            summary.connections,
            summary.bytes,
            summary.mode
        );
        summary
    }
}
