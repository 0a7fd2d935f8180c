//! Listening sockets (`WSK_FLAG_LISTEN_SOCKET`) and the accept event.

use alloc::sync::Arc;
use core::cell::Cell;
use core::marker::PhantomData;
use core::net::SocketAddr;

use wsk_sys as sys;

use crate::addr::SockAddr;
use crate::connection::{ConnectionSocket, ConnectionVtable};
use crate::events::{ConnectionEvents, EventContext};
use crate::options::{self, ConditionalAccept, SocketOption};
use crate::registration::{HandleSource, LiveHandle, Provider, ProviderInner};
use crate::request::{Operation, Request};
use crate::socket::{
    ACCEPTING, BOUND, CloseOp, ControlOp, CreateOp, FromCore, SocketCore, close_in_background,
    disable_events, enable_events, submit_close, submit_create,
};
use crate::{Error, Result};

/// Event callbacks of a listening socket (`WSK_CLIENT_LISTEN_DISPATCH`).
///
/// `Connection` is the handler type of the connections it accepts: the
/// accept callback supplies one per connection through [`Incoming::accept`],
/// so the accepted socket's callbacks are typed by it.
///
/// ```
/// use wsk::{ConnectionSocket, EventContext, Incoming, ListenEvents, NoEvents, SpinLock};
/// extern crate alloc;
/// use alloc::vec::Vec;
///
/// struct Server {
///     connections: SpinLock<Vec<ConnectionSocket<NoEvents>>>,
/// }
///
/// #[wsk::vtable]
/// impl ListenEvents for Server {
///     type Connection = NoEvents;
///     fn on_accept(&self, cx: &EventContext<'_>, incoming: Option<Incoming<'_, NoEvents>>) {
///         let Some(incoming) = incoming else { return }; // the listener must be closed
///         // Keep the handle: dropping it here would reject the connection.
///         let socket = incoming.accept(NoEvents);
///         self.connections.with_in_callback(cx, |list, _| list.push(socket));
///     }
/// }
/// ```
pub trait ListenEvents: Send + Sync + 'static {
    /// Present only in impl blocks marked [`#[wsk::vtable]`](crate::vtable),
    /// which adds it: an impl without the attribute does not compile,
    /// instead of silently installing none of its callbacks.
    #[doc(hidden)]
    const USE_VTABLE_ATTR: ();

    /// The handler type of accepted connections.
    type Connection: ConnectionEvents;

    /// Whether [`on_accept`](Self::on_accept) is implemented (`WSK_EVENT_ACCEPT`).
    const HAS_ACCEPT: bool = false;

    /// A connection was accepted (`WskAcceptEvent`); the handshake is done.
    ///
    /// Call [`Incoming::accept`] to keep it (the provider is answered
    /// `STATUS_SUCCESS`); otherwise it is rejected
    /// (`STATUS_REQUEST_NOT_ACCEPTED`) and the provider closes it. `None`
    /// means the listening socket no longer works and must be closed.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`; see `cx`.
    fn on_accept(&self, cx: &EventContext<'_>, incoming: Option<Incoming<'_, Self::Connection>>) {
        let _ = (cx, incoming);
    }

    /// Whether [`on_inspect`](Self::on_inspect) is implemented: the listening
    /// socket then uses conditional accept (`SO_CONDITIONAL_ACCEPT`, which
    /// [`ListenSocket::open`] sets before binding).
    const HAS_INSPECT: bool = false;

    /// A connection request arrived on a conditional-accept socket, before
    /// the handshake (`WskInspectEvent`).
    ///
    /// Return [`InspectAction::Accept`] to let the handshake proceed (the
    /// connection then arrives through [`on_accept`](Self::on_accept) or
    /// [`ListenSocket::accept`]), [`InspectAction::Reject`] to refuse it, or
    /// [`InspectAction::Pend`] to decide later with
    /// [`ListenSocket::inspect_complete`] and `id`. Requests whose addresses
    /// cannot be read are rejected without calling this.
    ///
    /// Inspect and abort events are not enabled with `SO_WSK_EVENT_CALLBACK`:
    /// they are active on every conditional-accept socket whose dispatch
    /// table has them.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (the DDI does not report which).
    fn on_inspect(
        &self,
        cx: &EventContext<'_>,
        local: SocketAddr,
        remote: SocketAddr,
        id: InspectId,
    ) -> InspectAction {
        let _ = (cx, local, remote, id);
        InspectAction::Accept
    }

    /// Whether [`on_abort`](Self::on_abort) is implemented.
    const HAS_ABORT: bool = false;

    /// The peer dropped a connection request that
    /// [`on_inspect`](Self::on_inspect) accepted or pended, before it was
    /// accepted (`WskAbortEvent`). A pended `id` must not be completed any
    /// more. The trampoline always returns `STATUS_SUCCESS`, as the DDI
    /// requires.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    fn on_abort(&self, cx: &EventContext<'_>, id: InspectId) {
        let _ = (cx, id);
    }
}

/// Identifies a connection request inspected by
/// [`ListenEvents::on_inspect`] (`WSK_INSPECT_ID`, compared by content).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InspectId {
    key: usize,
    serial: u32,
}

impl InspectId {
    fn from_raw(raw: &sys::WSK_INSPECT_ID) -> Self {
        Self {
            key: raw.Key,
            serial: raw.SerialNumber,
        }
    }

    fn to_raw(self) -> sys::WSK_INSPECT_ID {
        sys::WSK_INSPECT_ID {
            Key: self.key,
            SerialNumber: self.serial,
        }
    }
}

impl crate::socket::ControlValue for InspectId {
    /// A `WSK_INSPECT_ID` (`SIO_WSK_QUERY_INSPECT_ID`).
    fn from_output(output: &crate::socket::ControlOutput) -> Result<Self> {
        let bytes = output.as_bytes();
        if bytes.len() < size_of::<sys::WSK_INSPECT_ID>() {
            return Err(Error::BUFFER_TOO_SMALL);
        }
        // SAFETY: at least `size_of::<WSK_INSPECT_ID>()` readable bytes;
        // plain data, read unaligned.
        let raw = unsafe {
            bytes
                .as_ptr()
                .cast::<sys::WSK_INSPECT_ID>()
                .read_unaligned()
        };
        Ok(Self::from_raw(&raw))
    }
}

impl core::fmt::Debug for InspectId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "InspectId({:#x}:{})", self.key, self.serial)
    }
}

/// What to do with an inspected connection request (`WSK_INSPECT_ACTION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectAction {
    /// Refuse the connection (`WskInspectReject`).
    Reject,
    /// Proceed with the handshake (`WskInspectAccept`).
    Accept,
    /// Decide later with [`ListenSocket::inspect_complete`]
    /// (`WskInspectPend`; only as [`ListenEvents::on_inspect`]'s answer).
    Pend,
}

impl InspectAction {
    fn raw(self) -> sys::WSK_INSPECT_ACTION {
        match self {
            InspectAction::Reject => sys::WskInspectReject,
            InspectAction::Accept => sys::WskInspectAccept,
            InspectAction::Pend => sys::WskInspectPend,
        }
    }
}

/// The listen handler of sockets that enable no events (request-driven
/// accepting); `C` is the handler type of the connections accepted with
/// [`ListenSocket::accept`], whose events they enable themselves.
pub struct NoListenEvents<C = crate::NoEvents>(PhantomData<fn(C)>);

impl<C> NoListenEvents<C> {
    /// The handler.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<C> Default for NoListenEvents<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> core::fmt::Debug for NoListenEvents<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NoListenEvents")
    }
}

#[crate::vtable]
impl<C: ConnectionEvents> ListenEvents for NoListenEvents<C> {
    type Connection = C;
}

pub(crate) struct ListenVtable<L>(PhantomData<L>);

impl<L: ListenEvents> ListenVtable<L> {
    pub(crate) const DISPATCH: sys::WSK_CLIENT_LISTEN_DISPATCH = sys::WSK_CLIENT_LISTEN_DISPATCH {
        WskAcceptEvent: if L::HAS_ACCEPT {
            Some(accept_event::<L>)
        } else {
            None
        },
        WskInspectEvent: if L::HAS_INSPECT {
            Some(inspect_event::<L>)
        } else {
            None
        },
        WskAbortEvent: if L::HAS_ABORT {
            Some(abort_event::<L>)
        } else {
            None
        },
    };

    /// Accept events, plus the accepted connections' events (inherited by
    /// accepted sockets).
    pub(crate) const EVENT_MASK: u32 = if L::HAS_ACCEPT {
        sys::WSK_EVENT_ACCEPT | ConnectionVtable::<L::Connection>::EVENT_MASK
    } else {
        0
    };

    /// Whether the table has no callback at all (then none is installed).
    pub(crate) const IS_EMPTY: bool = Self::EVENT_MASK == 0 && !L::HAS_INSPECT && !L::HAS_ABORT;

    pub(crate) fn dispatch_ptr() -> *const sys::WSK_CLIENT_LISTEN_DISPATCH {
        if Self::IS_EMPTY {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }
}

/// A connection offered to [`ListenEvents::on_accept`].
pub struct Incoming<'a, C: ConnectionEvents> {
    socket: sys::PWSK_SOCKET,
    local: *const sys::SOCKADDR,
    remote: *const sys::SOCKADDR,
    provider: &'a Arc<ProviderInner>,
    handles: &'a HandleSource,
    /// Set on acceptance: the new socket's core.
    accepted: &'a Cell<Option<Arc<SocketCore<C>>>>,
    _handler: PhantomData<fn(C)>,
}

impl<C: ConnectionEvents> Incoming<'_, C> {
    /// The local address the connection arrived on.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS_COMPONENT`] for an unexpected address family.
    pub fn local_address(&self) -> Result<SocketAddr> {
        // SAFETY: the provider passes valid addresses for the callback's duration.
        unsafe { SockAddr::copy_from_raw(self.local) }
    }

    /// The remote address of the connection.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS_COMPONENT`] for an unexpected address family.
    pub fn remote_address(&self) -> Result<SocketAddr> {
        // SAFETY: as above.
        unsafe { SockAddr::copy_from_raw(self.remote) }
    }

    /// Accepts the connection with `handler` for its events.
    ///
    /// The connection's events enabled on the listening socket (those `C`
    /// implements) are inherited by the accepted socket.
    ///
    /// Dropping or closing the returned socket before the callback returns
    /// rejects the connection instead (the provider closes it): the DDI
    /// allows no call on it until the callback has accepted it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (inside the accept callback).
    pub fn accept(self, handler: C) -> ConnectionSocket<C> {
        let core = Arc::new(SocketCore::new(Arc::clone(self.provider), handler));
        core.set_socket(self.socket);
        core.set_flags(ACCEPTING | BOUND);
        self.accepted.set(Some(Arc::clone(&core)));
        ConnectionSocket::from_core(core, self.handles.handle())
    }
}

impl<C: ConnectionEvents> core::fmt::Debug for Incoming<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Incoming")
            .field("remote", &self.remote_address())
            .finish_non_exhaustive()
    }
}

/// The state behind a listening socket: its handler, and where accepted
/// sockets get their handle count from.
pub struct ListenState<L> {
    handler: L,
    handles: HandleSource,
}

impl<L: ListenEvents> ListenState<L> {
    /// The state of a new listening socket of `provider` with `handler`.
    pub(crate) fn new(provider: &Provider, handler: L) -> Self {
        Self {
            handler,
            handles: provider.handle_source(),
        }
    }
}

/// `PFN_WSK_ACCEPT_EVENT` trampoline.
///
/// # Safety
///
/// Called by the provider with the context of a listening socket whose
/// handler is `L`; the out-parameters are writable.
unsafe extern "system" fn accept_event<L: ListenEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
    local: sys::PSOCKADDR,
    remote: sys::PSOCKADDR,
    accept_socket: sys::PWSK_SOCKET,
    accept_context: *mut sys::PVOID,
    accept_dispatch: *mut *const sys::WSK_CLIENT_CONNECTION_DISPATCH,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live core until the listening socket's close completes.
    let core = unsafe { &*context.cast::<SocketCore<ListenState<L>>>() };
    // SAFETY: inside the provider's callback; the flag tells DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(flags) };
    if accept_socket.is_null() {
        core.handler.handler.on_accept(&cx, None);
        return sys::STATUS_SUCCESS;
    }
    let accepted = Cell::new(None);
    let incoming = Incoming {
        socket: accept_socket,
        local,
        remote,
        provider: &core.provider,
        handles: &core.handler.handles,
        accepted: &accepted,
        _handler: PhantomData,
    };
    core.handler.handler.on_accept(&cx, Some(incoming));
    let Some(new_core) = accepted.take() else {
        return sys::STATUS_REQUEST_NOT_ACCEPTED;
    };
    if new_core.finish_accept() {
        // The handle was dropped or closed inside the callback: reject, and
        // the provider closes the socket; our last reference frees the core.
        return sys::STATUS_REQUEST_NOT_ACCEPTED;
    }
    // SAFETY: the provider passes writable out-parameters; the context stays
    // valid until the handle's close completes (the handle holds the core).
    unsafe { accept_context.write(SocketCore::context(&new_core)) };
    // SAFETY: as above.
    unsafe { accept_dispatch.write(ConnectionVtable::<L::Connection>::dispatch_ptr()) };
    sys::STATUS_SUCCESS
}

/// `PFN_WSK_INSPECT_EVENT` trampoline.
///
/// # Safety
///
/// Called by the provider with the context of a listening socket whose
/// handler is `L`; the addresses and ID are valid for the call.
unsafe extern "system" fn inspect_event<L: ListenEvents>(
    context: sys::PVOID,
    local: sys::PSOCKADDR,
    remote: sys::PSOCKADDR,
    id: sys::PWSK_INSPECT_ID,
) -> sys::WSK_INSPECT_ACTION {
    // SAFETY: the context is a live core until the listening socket's close completes.
    let core = unsafe { &*context.cast::<SocketCore<ListenState<L>>>() };
    if id.is_null() {
        return sys::WskInspectReject;
    }
    // SAFETY: the provider passes a valid WSK_INSPECT_ID for the call.
    let id = InspectId::from_raw(unsafe { &*id });
    // SAFETY: the provider passes valid addresses for the call.
    let local = unsafe { SockAddr::copy_from_raw(local) };
    // SAFETY: as above.
    let remote = unsafe { SockAddr::copy_from_raw(remote) };
    let (Ok(local), Ok(remote)) = (local, remote) else {
        return sys::WskInspectReject;
    };
    // SAFETY: inside the provider's callback; no flags: IRQL <= DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(0) };
    core.handler
        .handler
        .on_inspect(&cx, local, remote, id)
        .raw()
}

/// `PFN_WSK_ABORT_EVENT` trampoline; always `STATUS_SUCCESS`.
///
/// # Safety
///
/// As [`inspect_event`].
unsafe extern "system" fn abort_event<L: ListenEvents>(
    context: sys::PVOID,
    id: sys::PWSK_INSPECT_ID,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live core until the listening socket's close completes.
    let core = unsafe { &*context.cast::<SocketCore<ListenState<L>>>() };
    if id.is_null() {
        return sys::STATUS_SUCCESS;
    }
    // SAFETY: the provider passes a valid WSK_INSPECT_ID for the call.
    let id = InspectId::from_raw(unsafe { &*id });
    // SAFETY: inside the provider's callback; no flags: IRQL <= DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(0) };
    core.handler.handler.on_abort(&cx, id);
    sys::STATUS_SUCCESS
}

/// A listening socket whose accept events go to `L`.
///
/// Binding it ([`bind`](Self::bind)) starts listening. Dropping it closes it
/// in the background; [`close`](Self::close) closes it as a request.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::{block_on, ListenSocket, NoEvents, NoListenEvents, Passive, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let local = "10.0.0.1:8080".parse().unwrap();
/// let handler = NoListenEvents::<NoEvents>::new();
/// let listener = block_on(&passive, ListenSocket::open(&provider, local, handler))?;
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
    core: Option<Arc<SocketCore<ListenState<L>>>>,
    _live: LiveHandle,
}

impl<L: ListenEvents> FromCore<ListenState<L>> for ListenSocket<L> {
    #[allow(private_interfaces)]
    fn from_core(core: Arc<SocketCore<ListenState<L>>>, live: LiveHandle) -> Self {
        Self {
            core: Some(core),
            _live: live,
        }
    }
}

impl<L: ListenEvents> ListenSocket<L> {
    pub(crate) fn core(&self) -> &Arc<SocketCore<ListenState<L>>> {
        self.core.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Creates a listening TCP socket for `family` (`WskSocket`) with `handler`.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskSocket`.
    pub fn create(
        provider: &Provider,
        family: sys::ADDRESS_FAMILY,
        handler: L,
    ) -> Request<CreateOp<ListenState<L>, Self>> {
        let state = ListenState::new(provider, handler);
        let core = Arc::new(SocketCore::new(Arc::clone(&provider.inner), state));
        submit_create(
            core,
            provider.live_handle(),
            family,
            sys::SOCK_STREAM,
            sys::IPPROTO_TCP as u32,
            sys::WSK_FLAG_LISTEN_SOCKET,
            ListenVtable::<L>::dispatch_ptr().cast(),
            ListenVtable::<L>::EVENT_MASK,
        )
    }

    /// Creates a listening socket, turns on conditional accept if `L`
    /// implements [`on_inspect`](ListenEvents::on_inspect), binds it to
    /// `local`, which starts listening, and enables its events (if `L` has
    /// any).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (block on it with [`crate::block_on`]).
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create), [`set`](Self::set), [`bind`](Self::bind)
    /// and [`enable_events`](Self::enable_events); on failure the socket is closed
    /// (and the close awaited, so the address is free again) before the
    /// error is returned.
    pub async fn open(provider: &Provider, local: SocketAddr, handler: L) -> Result<Self> {
        let socket = Self::create(provider, crate::addr::family_of(&local), handler).await?;
        let conditional = if L::HAS_INSPECT {
            socket.set::<ConditionalAccept>(true).await
        } else {
            Ok(())
        };
        let bound = match conditional {
            Ok(()) => match socket.bind(local).await {
                Ok(_) => socket.enable_events(),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match bound {
            Ok(()) => Ok(socket),
            Err(e) => {
                // Close before returning, so that the address is free again
                // for a retry (a background close could still hold it).
                let _ = socket.close().await;
                Err(e)
            }
        }
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
        enable_events(self.core(), ListenVtable::<L>::EVENT_MASK)
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
        disable_events(self.core(), ListenVtable::<L>::EVENT_MASK)
    }

    /// The handler.
    #[must_use]
    pub fn handler(&self) -> &L {
        &self.core().handler.handler
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
    pub fn bind(&self, local: SocketAddr) -> Request<ListenAddressOp<L>> {
        let core = self.core();
        let op = ListenAddressOp {
            _core: Arc::clone(core),
            addr: SockAddr::from(local),
        };
        // SAFETY: the socket exists; listen table.
        let Some(bind) = (unsafe { core.dispatch::<sys::WSK_PROVIDER_LISTEN_DISPATCH>() }).WskBind
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = core.socket();
        core.set_flags(BOUND);
        Request::submit(op, |irp, op| {
            // SAFETY: the socket exists; the address lives in the payload until completion.
            unsafe { bind(socket, op.addr.as_mut_ptr(), 0, irp) }
        })
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
    pub fn set<O: SocketOption>(&self, value: O::Value) -> Request<ControlOp<ListenState<L>, ()>> {
        options::set::<_, O>(self.core(), value)
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
    pub fn get<O: SocketOption>(&self) -> Request<ControlOp<ListenState<L>, O::Value>> {
        options::get::<_, O>(self.core())
    }

    /// Sets the socket's security descriptor (`SO_WSK_SECURITY`), which
    /// decides who may connect, to a descriptor cached with
    /// [`Provider::cache_security_descriptor`]. Must precede the bind: so
    /// create the socket with [`create`](Self::create), set this, then
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
    pub fn set_security(
        &self,
        descriptor: &crate::CachedSecurityDescriptor,
    ) -> Request<crate::SecurityOp<ListenState<L>>> {
        let core = self.core();
        crate::client_control::submit_security(core, descriptor, core.has_flags(BOUND))
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
    ) -> Request<InspectCompleteOp<L>> {
        let core = self.core();
        let op = InspectCompleteOp {
            _core: Arc::clone(core),
            id: id.to_raw(),
        };
        if action == InspectAction::Pend {
            return Request::failed(op, Error::INVALID_PARAMETER);
        }
        // SAFETY: the socket exists; listen table.
        let Some(complete) =
            (unsafe { core.dispatch::<sys::WSK_PROVIDER_LISTEN_DISPATCH>() }).WskInspectComplete
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = core.socket();
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
    pub fn local_address(&self) -> Request<ListenAddressOp<L>> {
        let core = self.core();
        let op = ListenAddressOp {
            _core: Arc::clone(core),
            addr: SockAddr::UNSPECIFIED,
        };
        // SAFETY: the socket exists; listen table.
        let Some(query) =
            (unsafe { core.dispatch::<sys::WSK_PROVIDER_LISTEN_DISPATCH>() }).WskGetLocalAddress
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = core.socket();
        Request::submit(op, |irp, op| {
            // SAFETY: the socket exists; the address lives in the payload until completion.
            unsafe { query(socket, op.addr.as_mut_ptr(), irp) }
        })
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
        let listen = self.core();
        let core = Arc::new(SocketCore::new(Arc::clone(&listen.provider), handler));
        let op = AcceptOp {
            core: Some(core),
            live: Some(listen.handler.handles.handle()),
            local: SockAddr::UNSPECIFIED,
            remote: SockAddr::UNSPECIFIED,
        };
        // SAFETY: the socket exists; listen table.
        let Some(accept) =
            (unsafe { listen.dispatch::<sys::WSK_PROVIDER_LISTEN_DISPATCH>() }).WskAccept
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = listen.socket();
        Request::submit(op, |irp, op| {
            let context = op
                .core
                .as_ref()
                .map_or(core::ptr::null_mut(), SocketCore::context);
            // SAFETY: the socket exists; the context (the new core) and the
            // addresses live in the payload until completion.
            unsafe {
                accept(
                    socket,
                    0,
                    context,
                    ConnectionVtable::<L::Connection>::dispatch_ptr(),
                    op.local.as_mut_ptr(),
                    op.remote.as_mut_ptr(),
                    irp,
                )
            }
        })
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
    pub fn close(mut self) -> Request<CloseOp<ListenState<L>>> {
        let core = self.core.take().unwrap_or_else(|| unreachable!());
        let _ = core.begin_close();
        submit_close(core)
    }
}

impl<L: ListenEvents> Drop for ListenSocket<L> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            close_in_background(core);
        }
    }
}

impl<L: ListenEvents> core::fmt::Debug for ListenSocket<L> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ListenSocket").finish_non_exhaustive()
    }
}

/// `WskBind` and `WskGetLocalAddress` on a listening socket.
pub struct ListenAddressOp<L> {
    _core: Arc<SocketCore<ListenState<L>>>,
    addr: SockAddr,
}

impl<L: ListenEvents> Operation for ListenAddressOp<L> {
    type Output = Result<SocketAddr>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<SocketAddr> {
        Error::check(status)?;
        self.addr.to_socket_addr()
    }
}

/// `WskInspectComplete`.
pub struct InspectCompleteOp<L> {
    _core: Arc<SocketCore<ListenState<L>>>,
    id: sys::WSK_INSPECT_ID,
}

impl<L: ListenEvents> Operation for InspectCompleteOp<L> {
    type Output = Result<()>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
}

/// `WskAccept`.
pub struct AcceptOp<C> {
    core: Option<Arc<SocketCore<C>>>,
    live: Option<LiveHandle>,
    local: SockAddr,
    remote: SockAddr,
}

impl<C: ConnectionEvents> Operation for AcceptOp<C> {
    /// The accepted connection and its remote address.
    type Output = Result<(ConnectionSocket<C>, SocketAddr)>;

    fn complete(mut self, status: sys::NTSTATUS, information: usize) -> Self::Output {
        Error::check(status)?;
        let socket = information as sys::PWSK_SOCKET;
        if socket.is_null() {
            return Err(Error::UNSUCCESSFUL);
        }
        let (Some(core), Some(live)) = (self.core.take(), self.live.take()) else {
            unreachable!("completed once")
        };
        core.set_socket(socket);
        core.set_flags(BOUND);
        let remote = self.remote.to_socket_addr();
        let connection = ConnectionSocket::from_core(core, live);
        Ok((connection, remote?))
    }

    fn abandon(mut self, status: sys::NTSTATUS, information: usize) {
        if sys::NT_SUCCESS(status) && information != 0 {
            if let Some(core) = self.core.take() {
                core.set_socket(information as sys::PWSK_SOCKET);
                close_in_background(core);
            }
        }
    }
}
