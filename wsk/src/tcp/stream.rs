//! Stream sockets (`WSK_FLAG_STREAM_SOCKET`, Windows 10 1703 and later): TCP
//! sockets created before their role is chosen, that then either listen
//! (`WskListen`) or connect (`WskConnect`).
//!
//! See [`StreamSocket`] for the design.

use core::marker::PhantomData;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::connection::ConnectionSocket;
use super::connection::events::{ConnectionEvents, ConnectionVtable, NoEvents};
use super::listen::events::{ListenEvents, ListenVtable};
use super::listen::{AcceptOp, submit_accept};
use crate::addr::AddressFamily;
use crate::core_ref::CoreRef;
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;
use crate::options::SocketOption;
use crate::provider::client::Provider;
use crate::provider::npi::LiveHandle;
use crate::provider::tables::stream_listen;
use crate::socket::calls::{AddressOp, ControlOp};
use crate::socket::close::CloseOp;
use crate::socket::core::{BOUND, ClosedUnder, SocketCore, SocketRef};
use crate::socket::create::{CreateOp, How, Kind, Socket, submit_create};

/// The `WSK_CLIENT_STREAM_DISPATCH` of a stream socket with connection
/// handler `H`, as a constant.
struct StreamVtable<H>(PhantomData<H>);

impl<H: ConnectionEvents> StreamVtable<H> {
    /// The table to pass with the socket: a promoted, `'static` constant,
    /// or NULL when the handler has no callback (nothing will be enabled).
    fn dispatch_ptr() -> *const sys::WSK_CLIENT_STREAM_DISPATCH {
        if ConnectionVtable::<H>::EVENT_MASK == 0 {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }

    const DISPATCH: sys::WSK_CLIENT_STREAM_DISPATCH = sys::WSK_CLIENT_STREAM_DISPATCH {
        Listen: core::ptr::null(),
        Connect: if ConnectionVtable::<H>::EVENT_MASK == 0 {
            core::ptr::null()
        } else {
            &ConnectionVtable::<H>::DISPATCH
        },
    };
}

/// The `WSK_CLIENT_STREAM_DISPATCH` of a stream socket created to listen
/// with listen handler `L` ([`tcp::listen_stream`](crate::tcp::listen_stream)): `L`'s listen
/// callbacks, no connection callbacks.
pub(crate) struct StreamListenVtable<L>(PhantomData<L>);

impl<L: ListenEvents> StreamListenVtable<L> {
    /// The table to pass with the socket: a promoted, `'static` constant,
    /// or NULL when the handler has no callback.
    pub(crate) fn dispatch_ptr() -> *const sys::WSK_CLIENT_STREAM_DISPATCH {
        if ListenVtable::<L>::IS_EMPTY {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }

    const DISPATCH: sys::WSK_CLIENT_STREAM_DISPATCH = sys::WSK_CLIENT_STREAM_DISPATCH {
        Listen: if ListenVtable::<L>::IS_EMPTY {
            core::ptr::null()
        } else {
            &ListenVtable::<L>::DISPATCH
        },
        Connect: core::ptr::null(),
    };
}

/// Starts listening on the stream socket of `core` (`WskListen`) without
/// waiting for the IRP: its `STATUS_PENDING` means "waiting for an incoming
/// connection" (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen>),
/// so a pending listen is left to complete on its own (it holds the socket
/// core until then); only a failure inside the call is reported.
///
/// # Errors
///
/// [`Error::NOT_SUPPORTED`] without a provider call if the provider's stream
/// table lacks `WskListen`; the status of a `WskListen` that failed at once.
pub(crate) fn start_listen(core: &SocketRef) -> Result<()> {
    let socket = core.socket();
    // `WskListen` "is only on a stream socket the client bound".
    let entered = core.enter(BOUND)?;
    // SAFETY: the socket exists (created by the caller's request).
    let table = unsafe { (*socket).Dispatch };
    // SAFETY: a stream socket (created with WSK_FLAG_STREAM_SOCKET): its table
    // is a WSK_PROVIDER_STREAM_DISPATCH.
    let Some(listen) = (unsafe { stream_listen(table) }) else {
        return Err(Error::NOT_SUPPORTED);
    };
    let _entered = entered;
    let request = Request::submit(ListenOp { core: core.clone() }, |irp, _| {
        // SAFETY: the socket exists; the payload keeps it open until
        // completion.
        unsafe { listen(socket, irp) }
    });
    request.now_or_detach().unwrap_or(Ok(()))
}

/// `WskListen`: keeps the socket core alive until the IRP completes.
struct ListenOp {
    core: SocketRef,
}

impl Operation for ListenOp {
    type Output = Result<()>;
    fn complete(self, status: i32, _information: usize) -> Result<()> {
        self.core.note_status(status);
        Error::check(status).map(drop)
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}

/// A stream socket (`WSK_FLAG_STREAM_SOCKET`, Windows 10 1703 and later)
/// whose connection events go to `H`, before it has chosen its role.
///
/// Bind it, then either [`connect`](Self::connect) and
/// [`into_connection`](Self::into_connection), or [`listen`](Self::listen).
/// Dropping it closes the socket in the background.
///
/// # Design
///
/// The provider gives a stream socket one `SocketContext` for both its
/// listen and its connection callbacks, and one table,
/// `WSK_PROVIDER_STREAM_DISPATCH`, whose routines are those of a listening
/// and of a connection socket in another order. This binding therefore
/// reuses the connection code unchanged:
///
/// - A `StreamSocket` owns a socket whose context is the connection
///   state of handler `H` and whose `WSK_CLIENT_STREAM_DISPATCH` installs
///   `H`'s connection callbacks (the same constant table and trampolines as
///   [`ConnectionSocket<H>`]).
/// - Once connected, [`StreamSocket::into_connection`] turns it into a
///   plain [`ConnectionSocket<H>`]: send, receive, disconnect, options and
///   close work as for a connection socket.
/// - [`StreamSocket::listen`] turns it into a [`StreamListener`], which
///   accepts connections by request ([`StreamListener::accept`]), each with
///   its own handler, as [`ConnectionSocket`]s.
///
/// The connection code reads the provider's table through a *view*: when
/// this crate creates a stream socket it copies the provider's stream table
/// once per provider into a connection-shaped and a listen-shaped table,
/// and every socket whose table is that stream table —
/// the stream socket itself and the connections its listener accepts — is
/// read through them. Fields the running Windows lacks (`WskSendEx` and
/// `WskReceiveEx` before 1803) are never read.
///
/// Accept *events* on a stream listener (`WSK_CLIENT_STREAM_DISPATCH.Listen`)
/// need the socket's context to be the listen state of a
/// [`ListenEvents`] handler from the start, which a `StreamSocket` (whose
/// context is connection state) cannot change into: use
/// [`tcp::listen_stream`](crate::tcp::listen_stream), which creates a stream
/// socket with that context, binds it, listens and enables the accept
/// events.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::events::NoEvents;
/// use wsk::tcp::StreamSocket;
/// use wsk::{AddressFamily, Buffer, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// // Created before its role is chosen: options could be set here.
/// let socket = StreamSocket::new(&provider, AddressFamily::V4, NoEvents).wait(&passive)?;
/// socket.bind("10.0.0.1:9000".parse().unwrap()).wait(&passive)?;
/// let listener = socket.listen().map_err(|(e, _socket)| e)?;
/// let accept = listener.accept(NoEvents);
/// # let peer = sim.peer_connect("10.0.0.1:9000").expect("accepted");
/// let (connection, _remote) = accept.wait(&passive)?;
/// # peer.send(b"hi");
/// let (received, buffer) = connection.receive(Buffer::with_capacity(16)?).wait(&passive);
/// assert_eq!((received?, &buffer[..]), (2, &b"hi"[..]));
///
/// connection.close().wait(&passive)?;
/// listener.close().wait(&passive)?;
/// drop((buffer, provider));
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct StreamSocket<H: ConnectionEvents = NoEvents> {
    /// The same socket seen as a connection socket (through the connection
    /// view of its table).
    socket: ConnectionSocket<H>,
}

impl<H: ConnectionEvents> Socket for StreamSocket<H> {
    type Handler = H;

    #[allow(private_interfaces)]
    fn from_core(core: CoreRef<SocketCore<H>>, live: LiveHandle) -> Self {
        Self {
            socket: ConnectionSocket::from_core(core, live),
        }
    }

    fn close_request(self) -> Request<CloseOp> {
        self.close()
    }

    #[allow(private_interfaces)]
    const CLOSED_UNDER: Option<ClosedUnder> = <ConnectionSocket<H> as Socket>::CLOSED_UNDER;
}

impl<H: ConnectionEvents> StreamSocket<H> {
    /// Creates a stream socket for `family` (`WskSocket` with
    /// `WSK_FLAG_STREAM_SOCKET`), installing `handler`'s connection
    /// callbacks.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_SUPPORTED`] without calling the provider before
    ///   Windows 10 1703 ([`Provider::windows_version`]), and when the
    ///   provider does not know stream sockets (it answers
    ///   `STATUS_INVALID_PARAMETER`).
    /// - Other statuses of `WskSocket`, for example
    ///   [`Error::INSUFFICIENT_RESOURCES`] (also without a provider call when no memory is left for the socket's state or its request).
    pub fn new(provider: &Provider, family: AddressFamily, handler: H) -> Request<CreateOp<Self>> {
        let kind = Kind {
            flags: sys::WSK_FLAG_STREAM_SOCKET,
            dispatch: StreamVtable::<H>::dispatch_ptr().cast(),
            events: ConnectionVtable::<H>::EVENT_MASK,
        };
        submit_create(provider, handler, kind, How::Socket(family))
    }

    /// The handler.
    #[must_use]
    pub fn handler(&self) -> &H {
        self.socket.handler()
    }

    /// Binds to a local address (`WskBind`); required before
    /// [`connect`](Self::connect) and [`listen`](Self::listen).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::bind`], for example
    /// [`Error::ADDRESS_ALREADY_EXISTS`].
    pub fn bind(&self, local: SocketAddr) -> Request<AddressOp> {
        self.socket.bind(local)
    }

    /// Sets the typed socket option `O` (`WskControlSocket`), for example
    /// `socket.set::<Ipv6Only>(false)` before binding an IPv6 socket that
    /// should also take IPv4 traffic; see [`options`](crate::options).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::set`].
    pub fn set<O: SocketOption>(&self, value: O::Value) -> Request<ControlOp<()>> {
        self.socket.set::<O>(value)
    }

    /// Reads the typed socket option `O` (`WskControlSocket`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::get`].
    pub fn get<O: SocketOption>(&self) -> Request<ControlOp<O::Value>> {
        self.socket.get::<O>()
    }

    /// Connects to `remote` (`WskConnect`); then use
    /// [`into_connection`](Self::into_connection).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::connect`], for example
    /// [`Error::CONNECTION_REFUSED`].
    pub fn connect(&self, remote: SocketAddr) -> Request<AddressOp> {
        self.socket.connect(remote)
    }

    /// The socket as a connection socket, for sending, receiving,
    /// disconnecting and closing once [`connect`](Self::connect) succeeded
    /// (enable its events with [`ConnectionSocket::enable_events`]).
    #[must_use]
    pub fn into_connection(self) -> ConnectionSocket<H> {
        self.socket
    }

    /// Starts listening on the bound address (`WskListen`) and returns the
    /// listener at once, or the error and this socket if `WskListen` failed
    /// inside the call.
    ///
    /// `WskListen` may stay pending "waiting for an incoming connection"
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen>),
    /// so the listener does not wait for it: accept requests can be made
    /// before the first peer connects. A pending `WskListen` runs on until
    /// it completes (at the first connection, or when the socket closes); a
    /// failure it reports then is not surfaced here — accept requests fail
    /// instead.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] without a provider call before a
    ///   [`bind`](Self::bind) succeeded.
    /// - [`Error::NOT_SUPPORTED`] if the provider's table lacks `WskListen`.
    /// - Provider statuses, for example [`Error::INVALID_DEVICE_STATE`] when
    ///   already connected, when `WskListen` fails inside the call.
    pub fn listen(self) -> core::result::Result<StreamListener<H>, (Error, StreamSocket<H>)> {
        let core = SocketCore::erase(self.socket.core());
        if !core.has_flags(BOUND) {
            // `WskListen` needs a bound socket; refused here, since a
            // provider that pends the call would report it only later.
            return Err((Error::INVALID_DEVICE_STATE, self));
        }
        match start_listen(&core) {
            Ok(()) => Ok(StreamListener { socket: self }),
            Err(e) => Err((e, self)),
        }
    }

    /// Closes the socket (`WskCloseSocket`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::close`].
    pub fn close(self) -> Request<CloseOp> {
        self.socket.close()
    }
}

impl<H: ConnectionEvents> core::fmt::Debug for StreamSocket<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamSocket").finish_non_exhaustive()
    }
}

/// A stream socket listening for connections (after `WskListen`); accepts
/// them by request, each with its own handler.
///
/// `H` is the handler the stream socket was created with; a listening
/// socket receives no connection events, so [`NoEvents`] is the usual
/// choice.
///
/// Dropping it closes the socket in the background; pending accepts then
/// complete with [`Error::CANCELLED`].
pub struct StreamListener<H: ConnectionEvents = NoEvents> {
    socket: StreamSocket<H>,
}

impl<H: ConnectionEvents> StreamListener<H> {
    /// Accepts the next connection (`WskAccept`) with `handler` for its
    /// events, enabled when the request completes (as
    /// [`ListenSocket::accept`](crate::tcp::ListenSocket::accept) does);
    /// resolves to the connection and its remote address.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`] without calling the provider if static
    ///   event callbacks ([`Provider::set_static_events`]) enable a
    ///   connection event `C` does not implement.
    /// - Provider statuses, for example [`Error::CANCELLED`] when the
    ///   listener closed; [`Error::NOT_IMPLEMENTED`] if the provider's table
    ///   lacks `WskAccept`.
    /// - [`Error::INSUFFICIENT_RESOURCES`] without a provider call when no memory is left for the socket's state or its request.
    pub fn accept<C: ConnectionEvents>(&self, handler: C) -> Request<AcceptOp<C>> {
        let core = self.socket.socket.core();
        // SAFETY: the socket exists; a stream socket, seen through its listen view.
        let accept = unsafe { core.dispatch::<sys::WSK_PROVIDER_LISTEN_DISPATCH>() }.WskAccept;
        submit_accept(SocketCore::erase(core), accept, handler, BOUND)
    }

    /// The local address listened on (`WskGetLocalAddress`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses.
    pub fn local_addr(&self) -> Request<AddressOp> {
        self.socket.socket.local_addr()
    }

    /// Closes the listener (`WskCloseSocket`); pending accepts complete with
    /// [`Error::CANCELLED`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskCloseSocket`.
    pub fn close(self) -> Request<CloseOp> {
        self.socket.close()
    }
}

impl<H: ConnectionEvents> core::fmt::Debug for StreamListener<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamListener").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Receiver;
    #[crate::vtable]
    impl ConnectionEvents for Receiver {
        fn on_receive(
            &self,
            _: &crate::irql::context::EventContext<'_>,
            _: Option<crate::tcp::connection::events::Indication<'_>>,
        ) -> crate::tcp::connection::events::ReceiveAction {
            crate::tcp::connection::events::ReceiveAction::Accept
        }
    }

    #[test]
    fn client_stream_tables_are_static_and_install_only_connection_callbacks() {
        let a = StreamVtable::<Receiver>::dispatch_ptr();
        // SAFETY: a pointer to a promoted ('static) constant.
        let table = unsafe { &*a };
        assert!(table.Listen.is_null());
        assert!(!table.Connect.is_null());
        // SAFETY: as above (a constant `ConnectionVtable` table).
        let connect = unsafe { &*table.Connect };
        assert!(connect.WskReceiveEvent.is_some());
        assert!(connect.WskDisconnectEvent.is_none());
        assert!(StreamVtable::<NoEvents>::dispatch_ptr().is_null());
    }
}
