//! Listening sockets (`WSK_FLAG_LISTEN_SOCKET`): the socket type and its
//! requests here, its events in [`events`]; and the accept request, which
//! stream listeners share.

pub(crate) mod events;
pub(crate) mod queue;

use alloc::sync::Arc;
use core::net::SocketAddr;

use wsk_sys as sys;

use self::events::{ListenEvents, ListenVtable, NoListenEvents};
use crate::addr::{AddressFamily, SockAddr};
use crate::error::{Error, Result};
use crate::irp::block::Operation;
use crate::irp::handle::Request;
use crate::options::SocketOption;
use crate::provider::client::Provider;
use crate::provider::control::CachedSecurityDescriptor;
use crate::provider::npi::{LiveHandle, check_static};
use crate::socket::calls::{
    AddressCall, AddressOp, CloseOp, ControlOp, SecurityOp, close, close_in_background,
    disable_events, enable_events, get_option, set_option, submit_address, submit_security,
};
use crate::socket::core::{BIND_SUBMITTED, BOUND, EVENTS_ON, SocketCore, SocketRef};
use crate::socket::create::{
    CONNECTION_EVENTS, CreateOp, How, Kind, Socket, close_abandoned, submit_create,
};
use crate::tcp::connection::ConnectionSocket;
use crate::tcp::connection::events::{ConnectionEvents, ConnectionVtable};
use crate::tcp::inspect::{InspectAction, InspectId};

/// A listening socket whose accept events go to `L`.
///
/// Binding it ([`bind`](Self::bind)) starts listening. Dropping it closes it
/// in the background; [`close`](Self::close) closes it as a request.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::events::{NoEvents, NoListenEvents};
/// use wsk::{block_on, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let local = "10.0.0.1:8080".parse().unwrap();
/// let handler = NoListenEvents::<NoEvents>::new();
/// let listener = block_on(&passive, wsk::tcp::listen(&provider, local, handler))?;
/// let accept = listener.accept(NoEvents);
/// # let peer = sim.peer_connect("10.0.0.1:8080").expect("accepted");
/// let (connection, remote) = accept.wait(&passive)?;
/// # assert_eq!(remote, peer.local_addr());
/// assert_eq!(remote.ip(), "10.0.0.2".parse::<core::net::IpAddr>().unwrap());
///
/// connection.close().wait(&passive)?;
/// listener.close().wait(&passive)?;
/// drop(provider);
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct ListenSocket<L: ListenEvents = NoListenEvents> {
    core: Option<Arc<SocketCore<L>>>,
    _live: LiveHandle,
}

impl<L: ListenEvents> Socket for ListenSocket<L> {
    type Handler = L;

    #[allow(private_interfaces)]
    fn from_core(core: Arc<SocketCore<L>>, live: LiveHandle) -> Self {
        Self {
            core: Some(core),
            _live: live,
        }
    }

    fn close_request(self) -> Request<CloseOp> {
        self.close()
    }
}

impl<L: ListenEvents> ListenSocket<L> {
    pub(crate) fn core(&self) -> &Arc<SocketCore<L>> {
        // Only `close` takes the core, and it consumes the handle.
        self.core.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// A handler-free reference to the core, for a request's payload.
    fn erased(&self) -> SocketRef {
        SocketCore::erase(self.core())
    }

    /// The provider's table of this socket: a listen table, or a stream
    /// table's listen view.
    fn table(&self) -> &sys::WSK_PROVIDER_LISTEN_DISPATCH {
        // SAFETY: the socket exists (a handle exists only after creation); a
        // listening socket, or a stream socket seen through its listen view.
        unsafe { self.core().dispatch::<sys::WSK_PROVIDER_LISTEN_DISPATCH>() }
    }

    /// Creates a listening TCP socket for `family` (`WskSocket` with
    /// `WSK_FLAG_LISTEN_SOCKET`) with `handler`. Bind it to start listening,
    /// then [`enable_events`](Self::enable_events) — or use
    /// [`tcp::listen`](crate::tcp::listen), which does all of it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskSocket`; [`Error::INVALID_PARAMETER`] without a
    /// provider call if static event callbacks
    /// ([`Provider::set_static_events`]) enable an event `L` lacks.
    pub fn new(provider: &Provider, family: AddressFamily, handler: L) -> Request<CreateOp<Self>> {
        let kind = Kind {
            flags: sys::WSK_FLAG_LISTEN_SOCKET,
            dispatch: ListenVtable::<L>::dispatch_ptr().cast(),
            events: ListenVtable::<L>::EVENT_MASK,
        };
        submit_create(provider, handler, kind, How::Socket(family))
    }

    /// Enables the accept event and the accepted connections' events
    /// (`SO_WSK_EVENT_CALLBACK`; nothing if `L` has no accept callback). The
    /// socket must be bound.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`. Takes no IRP: returns at once.
    ///
    /// # Errors
    ///
    /// The status of `WskControlSocket` ([`Error::NOT_IMPLEMENTED`] on Wine).
    pub fn enable_events(&self) -> Result<()> {
        enable_events(&**self.core(), ListenVtable::<L>::EVENT_MASK)
    }

    /// Disables the callbacks [`enable_events`](Self::enable_events)
    /// enabled (`SO_WSK_EVENT_CALLBACK` with `WSK_EVENT_DISABLE`, one event
    /// at a time), without an IRP. A callback already running may still
    /// finish after this returns (`STATUS_EVENT_PENDING`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskControlSocket`; [`Error::NOT_IMPLEMENTED`] where the
    /// provider has no event support (Wine).
    pub fn disable_events(&self) -> Result<()> {
        disable_events(&**self.core(), ListenVtable::<L>::EVENT_MASK)
    }

    /// Whether the handler's callbacks are enabled:
    /// [`enable_events`](Self::enable_events) succeeded (and
    /// [`disable_events`](Self::disable_events) was not called since).
    /// `false` for a handler without accept callback, and for a socket
    /// [`tcp::listen`](crate::tcp::listen) opened on a provider without event
    /// support (Wine's): accept with [`accept`](Self::accept) there.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn events_enabled(&self) -> bool {
        self.core().has_flags(EVENTS_ON)
    }

    /// The handler.
    #[must_use]
    pub fn handler(&self) -> &L {
        &self.core().handler
    }

    /// Binds to `local` and starts listening (`WskBind`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// For example [`Error::ADDRESS_ALREADY_EXISTS`] or [`Error::ACCESS_DENIED`].
    pub fn bind(&self, local: SocketAddr) -> Request<AddressOp> {
        let bind = self.table().WskBind;
        submit_address(self.erased(), AddressCall::Bind(bind), Some(local))
    }

    /// Sets the typed socket option `O` (`WskControlSocket`,
    /// `WskSetOption`); see [`options`](crate::options).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] at once for an option that must
    ///   precede the bind ([`SocketOption::BEFORE_BIND`]) once
    ///   [`bind`](Self::bind) was called.
    /// - Provider statuses, for example [`Error::NOT_SUPPORTED`] for an
    ///   option it does not know, [`Error::NOT_IMPLEMENTED`] on Wine.
    pub fn set<O: SocketOption>(&self, value: O::Value) -> Request<ControlOp<()>> {
        set_option::<O>(self.erased(), value)
    }

    /// Reads the typed socket option `O` (`WskControlSocket`,
    /// `WskGetOption`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::NOT_SUPPORTED`] for an option
    /// it does not know.
    pub fn get<O: SocketOption>(&self) -> Request<ControlOp<O::Value>> {
        get_option::<O>(self.erased())
    }

    /// Sets the socket's security descriptor (`SO_WSK_SECURITY`), which
    /// decides who may connect, to a descriptor cached with
    /// [`Provider::cache_security_descriptor`]. Must precede the bind: so
    /// create the socket with [`new`](Self::new), set this, then
    /// [`bind`](Self::bind) and [`enable_events`](Self::enable_events).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] at once once [`bind`](Self::bind)
    ///   was called.
    /// - [`Error::INVALID_PARAMETER`] at once for a descriptor another
    ///   client cached.
    /// - Provider statuses ([`Error::NOT_IMPLEMENTED`] on Wine).
    pub fn set_security(&self, descriptor: &CachedSecurityDescriptor) -> Request<SecurityOp> {
        submit_security(self.erased(), descriptor)
    }

    /// Completes a connection request that [`ListenEvents::on_inspect`]
    /// pended (`WskInspectComplete`) with [`InspectAction::Accept`] or
    /// [`InspectAction::Reject`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`] at once for [`InspectAction::Pend`].
    /// - Provider statuses, for example [`Error::INVALID_CONNECTION`] when the
    ///   request is unknown or was already aborted ([`ListenEvents::on_abort`]).
    pub fn inspect_complete(
        &self,
        id: InspectId,
        action: InspectAction,
    ) -> Request<InspectCompleteOp> {
        let op = InspectCompleteOp {
            _core: self.erased(),
            id: id.to_raw(),
        };
        if action == InspectAction::Pend {
            return Request::failed(op, Error::INVALID_PARAMETER);
        }
        let Some(complete) = self.table().WskInspectComplete else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = self.core().socket();
        Request::submit(op, |irp, op| {
            // SAFETY: the socket exists; the ID lives in the payload until completion.
            unsafe { complete(socket, &raw mut op.id, action.raw(), irp) }
        })
    }

    /// The local address (`WskGetLocalAddress`), for example the port the
    /// stack chose for a bind to port 0.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses (Wine's stub: [`Error::NOT_IMPLEMENTED`]).
    pub fn local_addr(&self) -> Request<AddressOp> {
        let query = self.table().WskGetLocalAddress;
        submit_address(self.erased(), AddressCall::Query(query), None)
    }

    /// Accepts one connection (`WskAccept`) with `handler` for its events;
    /// resolves to the connection and its remote address.
    ///
    /// The handler type is the listener's `Connection` type, so the accepted
    /// socket's dispatch table always matches the events it may inherit from
    /// the listening socket. With [`NoListenEvents`] nothing is inherited:
    /// call [`ConnectionSocket::enable_events`] on the accepted socket.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::INVALID_CONNECTION`] when the
    /// client reset before it was accepted (try again), or
    /// [`Error::CANCELLED`] when the listening socket closed.
    pub fn accept(&self, handler: L::Connection) -> Request<AcceptOp<L::Connection>> {
        let inherit = self.core().has_flags(EVENTS_ON);
        submit_accept(self.erased(), self.table().WskAccept, handler, inherit)
    }

    /// Closes the listening socket (`WskCloseSocket`); pending accepts
    /// complete with [`Error::CANCELLED`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskCloseSocket`.
    pub fn close(mut self) -> Request<CloseOp> {
        let core = self.core.take().unwrap_or_else(|| unreachable!());
        close(SocketCore::erase(&core))
    }
}

impl<L: ListenEvents> Drop for ListenSocket<L> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            close_in_background(SocketCore::erase(&core));
        }
    }
}

impl<L: ListenEvents> core::fmt::Debug for ListenSocket<L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ListenSocket")
            .field("events_enabled", &self.events_enabled())
            .finish_non_exhaustive()
    }
}

/// `WskInspectComplete`.
pub struct InspectCompleteOp {
    _core: SocketRef,
    id: sys::WSK_INSPECT_ID,
}

impl Operation for InspectCompleteOp {
    type Output = Result<()>;
    fn complete(self, status: i32, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
}

/// `WskAccept`, on a [`ListenSocket`] or a
/// [`StreamListener`](crate::tcp::StreamListener): the new socket's core
/// and addresses until completion.
pub struct AcceptOp<C: ConnectionEvents> {
    core: Option<Arc<SocketCore<C>>>,
    live: Option<LiveHandle>,
    local: SockAddr,
    remote: SockAddr,
    /// Keeps the listening socket's core (and its provider) alive until
    /// completion.
    _listener: SocketRef,
}

impl<C: ConnectionEvents> Operation for AcceptOp<C> {
    /// The accepted connection and its remote address.
    type Output = Result<(ConnectionSocket<C>, SocketAddr)>;

    fn complete(mut self, status: i32, information: usize) -> Self::Output {
        Error::check(status)?;
        let socket = information as sys::PWSK_SOCKET;
        if socket.is_null() {
            return Err(Error::UNSUCCESSFUL);
        }
        let (Some(core), Some(live)) = (self.core.take(), self.live.take()) else {
            unreachable!("completed once")
        };
        core.set_socket(socket);
        let remote = self.remote.to_socket_addr();
        let connection = ConnectionSocket::from_core(core, live);
        Ok((connection, remote?))
    }

    fn abandon(mut self, status: i32, information: usize) {
        close_abandoned(self.core.take(), status, information);
    }
}

/// Submits `WskAccept` (`accept`, from the listening socket's table) on
/// `listener` for a connection whose events go to `handler`.
///
/// `inherit`: the listening socket has its events enabled, so the accepted
/// socket inherits the connection events `C` implements.
///
/// Refused without a provider call with [`Error::INVALID_PARAMETER`] if
/// static event callbacks enable a connection event `C` lacks (they apply
/// to accepted sockets too).
pub(crate) fn submit_accept<C: ConnectionEvents>(
    listener: SocketRef,
    accept: sys::PFN_WSK_ACCEPT,
    handler: C,
    inherit: bool,
) -> Request<AcceptOp<C>> {
    let core = Arc::new(SocketCore::new(Arc::clone(&listener.provider), handler));
    let inherited = if inherit && ConnectionVtable::<C>::EVENT_MASK != 0 {
        EVENTS_ON
    } else {
        0
    };
    // An accepted socket is bound (and connected).
    core.set_flags(BIND_SUBMITTED | BOUND | inherited);
    let socket = listener.socket();
    let statics = listener.provider.reg().static_events();
    let op = AcceptOp {
        core: Some(core),
        live: Some(listener.provider.live_handle()),
        local: SockAddr::UNSPECIFIED,
        remote: SockAddr::UNSPECIFIED,
        _listener: listener,
    };
    if let Err(e) = check_static(
        statics,
        CONNECTION_EVENTS,
        ConnectionVtable::<C>::EVENT_MASK,
    ) {
        return Request::failed(op, e);
    }
    let Some(accept) = accept else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    Request::submit(op, |irp, op| {
        let context = op
            .core
            .as_ref()
            .map_or(core::ptr::null_mut(), SocketCore::context);
        // SAFETY: the socket exists; the context (the new core) and the
        // addresses live in the payload until completion; the dispatch table
        // is a 'static constant; `Flags` is reserved (0).
        unsafe {
            accept(
                socket,
                0,
                context,
                ConnectionVtable::<C>::dispatch_ptr(),
                op.local.as_mut_ptr(),
                op.remote.as_mut_ptr(),
                irp,
            )
        }
    })
}
