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
use crate::core_ref::CoreRef;
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;
use crate::options::{SocketOption, is_conditional_accept};
use crate::provider::client::Provider;
use crate::provider::control::CachedSecurityDescriptor;
use crate::provider::npi::{LiveHandle, check_static};
use crate::socket::calls::{
    AddressCall, AddressOp, ControlOp, SecurityOp, disable_events, enable_events,
    enable_events_if_supported, get_option, set_option, submit_address, submit_security,
};
use crate::socket::close::{CloseOp, close, close_in_background};
use crate::socket::core::{
    BIND_SUBMITTED, BOUND, CONNECTED, ClosedUnder, EVENTS_ON, SocketCore, SocketRef,
};
use crate::socket::create::{
    CONNECTION_EVENTS, CreateOp, How, Kind, Socket, close_abandoned, submit_create,
};
use crate::tcp::connection::ConnectionSocket;
use crate::tcp::connection::events::{ConnectionEvents, ConnectionVtable};
use crate::tcp::inspect::{InspectAction, InspectId};

/// A listening socket whose accept events go to `L`.
///
/// Binding it ([`bind`](Self::bind)) starts listening; events, accepts,
/// [`inspect_complete`](Self::inspect_complete) and the local address need
/// it, and are refused without a provider call before
/// ([`Error::INVALID_DEVICE_STATE`]). Dropping it closes it in the
/// background; [`close`](Self::close) closes it as a request.
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
    core: Option<CoreRef<SocketCore<L>>>,
    _live: LiveHandle,
}

impl<L: ListenEvents> Socket for ListenSocket<L> {
    type Handler = L;

    #[allow(private_interfaces)]
    fn from_core(core: CoreRef<SocketCore<L>>, live: LiveHandle) -> Self {
        Self {
            core: Some(core),
            _live: live,
        }
    }

    fn close_request(self) -> Request<CloseOp> {
        self.close()
    }

    #[allow(private_interfaces)]
    const CLOSED_UNDER: Option<ClosedUnder> = Some(queue::closed_under::<L>);
}

impl<L: ListenEvents> ListenSocket<L> {
    pub(crate) fn core(&self) -> &CoreRef<SocketCore<L>> {
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
    /// The status of `WskSocket`; [`Error::INSUFFICIENT_RESOURCES`] without a provider call when no memory is left for the socket's state or its request;
    /// [`Error::INVALID_PARAMETER`] without a
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
        enable_events(&**self.core(), ListenVtable::<L>::EVENT_MASK, BOUND)
    }

    /// Disables the accept event (`SO_WSK_EVENT_CALLBACK` with
    /// `WSK_EVENT_ACCEPT | WSK_EVENT_DISABLE`), without an IRP. A callback
    /// already running may still finish after this returns
    /// (`STATUS_EVENT_PENDING`).
    ///
    /// The accepted connections' events that [`enable_events`](Self::enable_events)
    /// enabled stay enabled on the listening socket: Microsoft allows no
    /// disabling them there
    /// (<https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>);
    /// they apply again to the sockets accept events deliver once
    /// [`enable_events`](Self::enable_events) turns the accept event back on.
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
        // Connection events enabled on a listening socket cannot be disabled
        // there (https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback):
        // only the accept event is.
        disable_events(
            &**self.core(),
            ListenVtable::<L>::EVENT_MASK & sys::WSK_EVENT_ACCEPT,
            BOUND,
        )
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

    /// Whether the socket must be closed and nothing else works on it any
    /// more: the provider declared it no longer functional — a request
    /// failed with [`Error::FILE_FORCED_CLOSED`], or a callback got a NULL
    /// indication or socket — or deregistration closed it. Calls other than
    /// `close` then fail with [`Error::FILE_FORCED_CLOSED`] without reaching
    /// the provider; the DDI wants the socket closed "as soon as possible"
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn must_close(&self) -> bool {
        self.core().must_close()
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
        submit_address(self.erased(), AddressCall::Bind(bind), Some(local), 0)
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
        const {
            assert!(
                !is_conditional_accept::<O>() || L::HAS_INSPECT,
                "SO_CONDITIONAL_ACCEPT needs a handler with on_inspect: in conditional accept \
                 mode the provider calls WskInspectEvent and WskAbortEvent"
            );
        };
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
            core: self.erased(),
            id: id.to_raw(),
        };
        if action == InspectAction::Pend {
            return Request::failed(op, Error::INVALID_PARAMETER);
        }
        let entered = match self.core().enter(BOUND) {
            Ok(entered) => entered,
            Err(e) => return Request::failed(op, e),
        };
        let Some(complete) = self.table().WskInspectComplete else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = self.core().socket();
        let _entered = entered;
        Request::submit(op, |irp, op| {
            let op = op.into_mut();
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
        submit_address(self.erased(), AddressCall::Query(query), None, BOUND)
    }

    /// Accepts one connection (`WskAccept`) with `handler` for its events;
    /// resolves to the connection, with `handler`'s callbacks enabled, and
    /// its remote address.
    ///
    /// A socket `WskAccept` returns starts with every callback disabled — it
    /// does not inherit the listening socket's, as one delivered by the
    /// accept event does
    /// (<https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>,
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>) —
    /// so the request enables them ([`ConnectionSocket::enable_events`])
    /// when it completes, as [`tcp::connect`](crate::tcp::connect) does. A
    /// provider without event support leaves them off
    /// ([`ConnectionSocket::events_enabled`] says so). Microsoft does not
    /// say whether data or a disconnect that arrived before the callbacks
    /// were enabled is indicated afterwards: a handler that must see
    /// everything also issues a receive request.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - Provider statuses, for example [`Error::INVALID_CONNECTION`] when
    ///   the client reset before it was accepted (try again), or
    ///   [`Error::CANCELLED`] when the listening socket closed.
    /// - The status of enabling the callbacks (other than
    ///   [`Error::NOT_IMPLEMENTED`]); the accepted socket is then closed.
    /// - [`Error::INSUFFICIENT_RESOURCES`] without a provider call when no memory is left for the socket's state or its request.
    pub fn accept(&self, handler: L::Connection) -> Request<AcceptOp<L::Connection>> {
        submit_accept(self.erased(), self.table().WskAccept, handler, BOUND)
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
    core: SocketRef,
    id: sys::WSK_INSPECT_ID,
}

impl Operation for InspectCompleteOp {
    type Output = Result<()>;
    fn complete(self, status: i32, _information: usize) -> Result<()> {
        self.core.note_status(status);
        Error::check(status).map(drop)
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}

/// `WskAccept`, on a [`ListenSocket`] or a
/// [`StreamListener`](crate::tcp::StreamListener): the new socket's core
/// and addresses until completion.
pub struct AcceptOp<C: ConnectionEvents> {
    core: Option<CoreRef<SocketCore<C>>>,
    live: Option<LiveHandle>,
    local: SockAddr,
    remote: SockAddr,
    /// Keeps the listening socket's core (and its provider) alive until
    /// completion.
    listener: SocketRef,
}

impl<C: ConnectionEvents> Operation for AcceptOp<C> {
    /// The accepted connection and its remote address.
    type Output = Result<(ConnectionSocket<C>, SocketAddr)>;

    fn complete(mut self, status: i32, _information: usize) -> Self::Output {
        self.listener.note_status(status);
        Error::check(status)?;
        let (Some(core), Some(live)) = (self.core.take(), self.live.take()) else {
            unreachable!("completed once")
        };
        if core.socket().is_null() {
            return Err(Error::UNSUCCESSFUL);
        }
        let remote = self.remote.to_socket_addr();
        let connection = ConnectionSocket::from_core(core, live);
        // Events start disabled on a socket WskAccept returns: enable the
        // handler's (dropping the handle on failure closes the socket).
        enable_events_if_supported(
            &**connection.core(),
            ConnectionVtable::<C>::EVENT_MASK,
            CONNECTED,
        )?;
        Ok((connection, remote?))
    }

    fn abandon(mut self, _status: i32, _information: usize) {
        close_abandoned(self.core.take());
    }

    fn inflight(&self) -> &InFlight {
        self.listener.inflight()
    }

    const ON_COMPLETION: bool = true;
    fn completed(&self, status: i32, information: usize) {
        let socket = information as sys::PWSK_SOCKET;
        match &self.core {
            // The socket is known from now on (its events may fire before
            // the owner takes it), and closed by deregistration if nobody
            // ever does.
            Some(core) if sys::NT_SUCCESS(status) && !socket.is_null() => {
                SocketCore::adopt(core, socket);
            }
            _ => self.listener.reg().socket_gone(),
        }
    }
}

/// Submits `WskAccept` (`accept`, from the listening socket's table) on
/// `listener` for a connection whose events go to `handler` (enabled when
/// the request completes).
///
/// Refused without a provider call with [`Error::INVALID_PARAMETER`] if
/// static event callbacks enable a connection event `C` lacks (they apply
/// to accepted sockets too).
pub(crate) fn submit_accept<C: ConnectionEvents>(
    listener: SocketRef,
    accept: sys::PFN_WSK_ACCEPT,
    handler: C,
    need: u32,
) -> Request<AcceptOp<C>> {
    // An accepted socket has its listener's family.
    let family = listener.family();
    let core = match SocketCore::try_new(
        Arc::clone(&listener.provider),
        family,
        false,
        handler,
        <ConnectionSocket<C> as Socket>::CLOSED_UNDER,
    ) {
        Ok(core) => core,
        Err(e) => return Request::ready(Err(e)),
    };
    // An accepted socket is bound and connected; its events start disabled
    // (a socket WskAccept returns inherits none of the listener's).
    core.set_flags(BIND_SUBMITTED | BOUND | CONNECTED);
    let socket = listener.socket();
    let statics = listener.provider.reg().static_events();
    let op = AcceptOp {
        core: Some(core),
        live: Some(listener.provider.live_handle()),
        local: SockAddr::UNSPECIFIED,
        remote: SockAddr::UNSPECIFIED,
        listener,
    };
    if let Err(e) = check_static(
        statics,
        CONNECTION_EVENTS,
        ConnectionVtable::<C>::EVENT_MASK,
    ) {
        return Request::failed(op, e);
    }
    let listener = SocketRef::clone(&op.listener);
    let entered = match listener.enter(need) {
        Ok(entered) => entered,
        Err(e) => return Request::failed(op, e),
    };
    let Some(accept) = accept else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let _entered = entered;
    Request::submit(op, |irp, op| {
        let op = op.into_mut();
        // The provider may hand a socket over with the IRP: deregistration
        // waits for it (the completion routine uncounts it if none comes).
        op.listener.reg().socket_opening();
        // NULL for a handler without callbacks, as it should be
        // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept).
        let context = op
            .core
            .as_ref()
            .filter(|_| !ConnectionVtable::<C>::dispatch_ptr().is_null())
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
