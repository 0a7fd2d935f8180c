//! TCP: connection, listening and stream sockets.
//!
//! WSK has three kinds of TCP socket, and this module keeps the DDI's names
//! for them, so that Microsoft's pages and a C driver's code map one to one:
//!
//! | type | WSK kind | what it does |
//! |---|---|---|
//! | [`ConnectionSocket`] | `WSK_FLAG_CONNECTION_SOCKET` | binds, connects, sends, receives, disconnects (tokio's `TcpStream`, created unconnected) |
//! | [`ListenSocket`] | `WSK_FLAG_LISTEN_SOCKET` | listens once bound; accepts by request or through accept *events* (tokio's `TcpListener`) |
//! | [`StreamSocket`] | `WSK_FLAG_STREAM_SOCKET` (Windows 10 1703+) | created before its role is chosen, then connects or listens (tokio's `TcpSocket`); a listening one is a [`StreamListener`] |
//!
//! The one-call openers take the std/tokio verbs: [`connect`] (create, bind
//! the wildcard address, connect, enable events), [`listen`] (create, bind —
//! which starts listening —, enable events) and [`listen_stream`] (the same
//! on a stream socket, `WskListen`). Each closes the socket, and awaits the
//! close, if a step fails. A provider without event callbacks (Wine's) does
//! not fail them: the socket comes back with its events off, which its
//! `events_enabled()` reports, so the driver can fall back on requests.
//!
//! Each socket type lives with its event trait, trampolines and constant
//! dispatch table in one module (the event traits are exported from
//! [`crate::events`]); the calls every kind shares are written once,
//! against the socket's core with the handler type erased, so no request
//! type is generic over the handler.
//!
//! ```
//! # let sim = wsk_sim::Sim::start();
//! # let peer = sim.peer_listen("10.0.0.2:7");
//! # let echo = std::thread::spawn(move || { let c = peer.accept(); let d = c.recv_exact(5); c.send(&d); c });
//! use wsk::events::NoEvents;
//! use wsk::{block_on, Buffer, Registration};
//!
//! # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
//! # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
//! let registration = Registration::register(&passive)?;
//! let provider = registration.capture(&passive, None)?;
//! let socket = block_on(&passive, wsk::tcp::connect(&provider, "10.0.0.2:7".parse().unwrap(), NoEvents))?;
//! let (sent, buffer) = block_on(&passive, socket.send_all(Buffer::from_slice(b"hello")?));
//! sent?;
//! let (received, buffer) = block_on(&passive, socket.receive_exact(buffer));
//! received?;
//! assert_eq!(&buffer[..], b"hello");
//! socket.close().wait(&passive)?;
//! # drop((buffer, provider, echo.join()));
//! registration.deregister(&passive).expect("no handles left");
//! # Ok::<(), wsk::Error>(())
//! ```

pub(crate) mod connection;
pub(crate) mod inspect;
pub(crate) mod listen;
pub(crate) mod stream;
mod waiter;

use core::net::SocketAddr;

pub use connection::ConnectionSocket;
pub use connection::queue::{Closed, ReceiveQueue};
pub use connection::transfer::{ReceiveFlags, SendFlags};
pub use listen::ListenSocket;
pub use listen::queue::AcceptQueue;
pub use stream::{StreamListener, StreamSocket};

use self::connection::events::{ConnectionEvents, ConnectionVtable};
use self::listen::events::{ListenEvents, ListenVtable};
use self::stream::{StreamListenVtable, start_listen};
use crate::addr::AddressFamily;
use crate::error::{Error, Result};
use crate::options::ConditionalAccept;
use crate::provider::client::Provider;
use crate::socket::calls::{enable_events_if_supported, set_option};
use crate::socket::core::{BOUND, CONNECTED, SocketCore};
use crate::socket::create::{How, Kind, open, submit_create};

/// Connects to `remote`: creates a connection socket for its family
/// (`WskSocket`), binds it to the wildcard address (`WskBind`), connects
/// (`WskConnect`) and enables `handler`'s callbacks.
///
/// A provider without event support (Wine's, whose `WskControlSocket`
/// answers `STATUS_NOT_IMPLEMENTED`) does not fail the connect: the socket
/// comes back with its events off —
/// [`events_enabled`](ConnectionSocket::events_enabled) says so — and the
/// driver uses requests.
///
/// # IRQL
///
/// ≤ `DISPATCH_LEVEL` (poll it there; block on it with
/// [`block_on`](crate::block_on) at `PASSIVE_LEVEL`).
///
/// # Errors
///
/// As [`ConnectionSocket::new`], [`ConnectionSocket::bind`],
/// [`ConnectionSocket::connect`] and (other than `NOT_IMPLEMENTED`)
/// [`ConnectionSocket::enable_events`]; on failure the socket is closed (and
/// the close awaited) before the error is returned.
pub async fn connect<H: ConnectionEvents>(
    provider: &Provider,
    remote: SocketAddr,
    handler: H,
) -> Result<ConnectionSocket<H>> {
    let family = AddressFamily::of(&remote);
    let created = ConnectionSocket::new(provider, family, handler);
    open(created, async |socket: &ConnectionSocket<H>| {
        socket.bind(family.unspecified()).await?;
        socket.connect(remote).await?;
        enable_events_if_supported(
            &**socket.core(),
            ConnectionVtable::<H>::EVENT_MASK,
            CONNECTED,
        )
    })
    .await
}

/// Listens on `local`: creates a listening socket for its family
/// (`WskSocket`), turns on conditional accept if `L` implements
/// [`on_inspect`](crate::events::ListenEvents::on_inspect)
/// (`SO_CONDITIONAL_ACCEPT`), binds it to `local` (`WskBind`, which starts
/// listening) and enables `handler`'s callbacks.
///
/// As for [`connect`], a provider without event support does not fail it:
/// [`events_enabled`](ListenSocket::events_enabled) is then `false`, and
/// connections are taken with [`accept`](ListenSocket::accept) requests.
///
/// # IRQL
///
/// ≤ `DISPATCH_LEVEL` (block on it with [`block_on`](crate::block_on)).
///
/// # Errors
///
/// As [`ListenSocket::new`], [`ListenSocket::set`], [`ListenSocket::bind`]
/// (for example [`Error::ADDRESS_ALREADY_EXISTS`]) and (other than
/// `NOT_IMPLEMENTED`) [`ListenSocket::enable_events`]; on failure the socket
/// is closed (and the close awaited, so that the address is free again)
/// before the error is returned.
pub async fn listen<L: ListenEvents>(
    provider: &Provider,
    local: SocketAddr,
    handler: L,
) -> Result<ListenSocket<L>> {
    let created = ListenSocket::new(provider, AddressFamily::of(&local), handler);
    open(created, async |socket: &ListenSocket<L>| {
        if L::HAS_INSPECT {
            // Not `ListenSocket::set`, whose compile-time check would be
            // instantiated for every handler type.
            set_option::<ConditionalAccept>(SocketCore::erase(socket.core()), true).await?;
        }
        socket.bind(local).await?;
        enable_events_if_supported(&**socket.core(), ListenVtable::<L>::EVENT_MASK, BOUND)
    })
    .await
}

/// Listens on `local` with a *stream* socket (`WskSocket` with
/// `WSK_FLAG_STREAM_SOCKET`, Windows 10 1703 and later) whose context is
/// `handler`: binds it (`WskBind`), starts listening (`WskListen`, not
/// waited for: it may stay pending until the first connection, see
/// [`StreamSocket::listen`]) and enables the accept events (and the accepted
/// connections' events) `L` implements.
///
/// The result is an ordinary [`ListenSocket`]: accept events go to
/// `handler` as on a `WSK_FLAG_LISTEN_SOCKET` socket, and
/// [`accept`](ListenSocket::accept) works too. Stream sockets have no
/// `WskInspectComplete`, so a handler with
/// [`on_inspect`](crate::events::ListenEvents::on_inspect) is refused;
/// [`inspect_complete`](ListenSocket::inspect_complete) fails with
/// [`Error::NOT_IMPLEMENTED`].
///
/// # IRQL
///
/// ≤ `DISPATCH_LEVEL` (block on it with [`block_on`](crate::block_on)).
///
/// # Errors
///
/// - [`Error::NOT_SUPPORTED`] without calling the provider if `L`
///   implements `on_inspect`, before Windows 10 1703, or when the provider
///   does not know stream sockets (as [`StreamSocket::new`]) or its table
///   lacks `WskListen`.
/// - As [`listen`] otherwise; on failure the socket is closed (and the
///   close awaited, so the address is free again) before the error is
///   returned.
pub async fn listen_stream<L: ListenEvents>(
    provider: &Provider,
    local: SocketAddr,
    handler: L,
) -> Result<ListenSocket<L>> {
    if L::HAS_INSPECT {
        return Err(Error::NOT_SUPPORTED);
    }
    let kind = Kind {
        flags: wsk_sys::WSK_FLAG_STREAM_SOCKET,
        dispatch: StreamListenVtable::<L>::dispatch_ptr().cast(),
        events: ListenVtable::<L>::EVENT_MASK,
    };
    let created = submit_create(
        provider,
        handler,
        kind,
        How::Socket(AddressFamily::of(&local)),
    );
    open(created, async |socket: &ListenSocket<L>| {
        socket.bind(local).await?;
        let core = SocketCore::erase(socket.core());
        // Not awaited: WskListen may pend until the first connection.
        start_listen(&core)?;
        enable_events_if_supported(&core, ListenVtable::<L>::EVENT_MASK, BOUND)
    })
    .await
}
