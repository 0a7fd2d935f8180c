//! Connection-oriented sockets (`WSK_FLAG_CONNECTION_SOCKET`): the socket
//! type and its control requests here, sending and receiving in
//! [`transfer`], its events in [`events`].

pub(crate) mod events;
pub(crate) mod queue;
pub(crate) mod transfer;

use core::net::SocketAddr;

use wsk_sys as sys;

use self::events::{ConnectionEvents, ConnectionVtable, NoEvents};
use crate::addr::{AddressFamily, SockAddr};
use crate::buffer::{BufResult, Buffer};
use crate::core_ref::CoreRef;
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation, has_deferred, run_deferred};
use crate::irp::handle::Request;
use crate::options::{SocketOption, is_conditional_accept};
use crate::provider::client::Provider;
use crate::provider::npi::LiveHandle;
use crate::provider::version::WindowsVersion;
use crate::socket::calls::{
    AddressCall, AddressOp, Control, ControlOp, control_now, disable_events, enable_events,
    get_option, ioctl, set_option, submit_address, submit_control,
};
use crate::socket::close::{CloseOp, close, close_in_background};
use crate::socket::core::{
    ABORTED, BOUND, CONNECTED, ClosedUnder, EVENTS_ON, SILENCING, SILENT, SocketCore, SocketRef,
};
use crate::socket::create::{CreateOp, How, Kind, Socket, submit_create};
use crate::tcp::inspect::InspectId;

/// A connection-oriented socket whose events go to `H`.
///
/// Dropping it closes the socket in the background (after any retained
/// indications are released); [`close`](Self::close) closes it as a request.
/// The handler lives until the provider has completed the close, so
/// callbacks never see freed state.
///
/// The socket keeps its state — bound, connected, in silent mode, declared
/// no longer functional by the provider — and refuses, without calling the
/// provider, what the DDI allows only in another state
/// ([`Error::INVALID_DEVICE_STATE`], [`Error::FILE_FORCED_CLOSED`]): a
/// connect needs a bind; sends, receives, disconnects, the remote address,
/// the backlog queries and events need a connection.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:80");
/// use wsk::{block_on, Buffer, Registration};
/// use wsk::events::NoEvents;
/// use wsk::irql::Passive;
/// use wsk::tcp::ConnectionSocket;
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let remote = "10.0.0.2:80".parse().unwrap();
/// let socket = block_on(&passive, wsk::tcp::connect(&provider, remote, NoEvents))?;
/// # let conn = peer.accept();
/// let (sent, buffer) = socket.send(Buffer::from_slice(b"GET /")?).wait(&passive);
/// assert_eq!(sent?, 5);
/// # assert_eq!(conn.recv_exact(5), b"GET /");
/// # conn.send(b"200 OK");
/// let (received, buffer) = socket.receive(buffer).wait(&passive);
/// assert_eq!(&buffer.as_slice()[..received?], b"200 O"); // up to the capacity
///
/// socket.close().wait(&passive)?;
/// drop((buffer, provider));
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct ConnectionSocket<H: ConnectionEvents = NoEvents> {
    core: Option<CoreRef<SocketCore<H>>>,
    /// `WskSend` and `WskReceive`, read from the provider's table once: the
    /// hot path of every transfer skips the table lookup.
    transfer: TransferCalls,
    _live: LiveHandle,
}

/// `WskSend` and `WskReceive` of one socket's provider table (present in
/// every WSK version).
#[derive(Clone, Copy)]
struct TransferCalls {
    send: sys::PFN_WSK_SEND,
    receive: sys::PFN_WSK_RECEIVE,
}

impl<H: ConnectionEvents> Socket for ConnectionSocket<H> {
    type Handler = H;

    #[allow(private_interfaces)]
    fn from_core(core: CoreRef<SocketCore<H>>, live: LiveHandle) -> Self {
        // SAFETY: every caller has set the provider's socket (and learned a
        // stream socket's table) first; a connection (or stream) socket.
        let table = unsafe { core.dispatch::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>() };
        let transfer = TransferCalls {
            send: table.WskSend,
            receive: table.WskReceive,
        };
        Self {
            core: Some(core),
            transfer,
            _live: live,
        }
    }

    fn close_request(self) -> Request<CloseOp> {
        self.close()
    }

    #[allow(private_interfaces)]
    const CLOSED_UNDER: Option<ClosedUnder> = Some(queue::closed_under::<H>);
}

impl<H: ConnectionEvents> ConnectionSocket<H> {
    /// The most data [`connect_with_data`](Self::connect_with_data) sends
    /// with a connect: 65,535 bytes
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>).
    pub const MAX_CONNECT_DATA: usize = 65_535;

    pub(crate) fn core(&self) -> &CoreRef<SocketCore<H>> {
        // Only `close` takes the core, and it consumes the handle.
        self.core.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// A handler-free reference to the core, for a request's payload.
    #[inline]
    fn erased(&self) -> SocketRef {
        SocketCore::erase(self.core())
    }

    /// The provider's table of this socket: a connection table (copied
    /// whole where the running Windows' tables are shorter), or a stream
    /// table's connection view.
    fn table(&self) -> &sys::WSK_PROVIDER_CONNECTION_DISPATCH {
        // SAFETY: the socket exists (a handle exists only after creation); a
        // connection socket, or a stream socket seen through its view.
        unsafe {
            self.core()
                .dispatch::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>()
        }
    }

    /// The socket kind, with `H`'s table.
    fn kind() -> Kind {
        Kind {
            flags: sys::WSK_FLAG_CONNECTION_SOCKET,
            dispatch: ConnectionVtable::<H>::dispatch_ptr().cast(),
            events: ConnectionVtable::<H>::EVENT_MASK,
        }
    }

    /// Creates a connection socket for `family` (`WskSocket`), installing
    /// `handler`'s callbacks. Bind it, connect it, then
    /// [`enable_events`](Self::enable_events) — or use
    /// [`tcp::connect`](crate::tcp::connect), which does all of it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The request resolves to the status of `WskSocket`, for example
    /// [`Error::INSUFFICIENT_RESOURCES`] (also without a provider call when no memory is left for the socket's state or its request) or [`Error::NOT_SUPPORTED`];
    /// [`Error::INVALID_PARAMETER`] without a provider call if static event
    /// callbacks ([`Provider::set_static_events`]) enable a connection event
    /// `H` does not implement.
    pub fn new(provider: &Provider, family: AddressFamily, handler: H) -> Request<CreateOp<Self>> {
        submit_create(provider, handler, Self::kind(), How::Socket(family))
    }

    /// Creates a connection socket, binds it to `local` and connects it to
    /// `remote` in one provider call (`WskSocketConnect`), installing
    /// `handler`'s callbacks. Enable them with
    /// [`enable_events`](Self::enable_events) once the request resolves.
    ///
    /// `local` may be the wildcard address of `remote`'s family (port 0: the
    /// stack chooses).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`] at once if `local` and `remote` are of
    ///   different families.
    /// - [`Error::NOT_IMPLEMENTED`]: the provider lacks `WskSocketConnect`
    ///   (Wine's `netio.sys` stub).
    /// - [`Error::INSUFFICIENT_RESOURCES`] without a provider call when no memory is left for the socket's state or its request.
    /// - Provider statuses, as for [`bind`](Self::bind) and
    ///   [`connect`](Self::connect), for example [`Error::CONNECTION_REFUSED`].
    ///   On failure the provider has already closed the socket.
    pub fn socket_connect(
        provider: &Provider,
        local: SocketAddr,
        remote: SocketAddr,
        handler: H,
    ) -> Request<CreateOp<Self>> {
        submit_create(
            provider,
            handler,
            Self::kind(),
            How::Connect { local, remote },
        )
    }

    /// Enables every callback the handler implements (`SO_WSK_EVENT_CALLBACK`
    /// with the mask derived from its `HAS_*` constants; nothing for a handler
    /// without callbacks). The socket must be connected: events start
    /// disabled on every socket
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>),
    /// including one made by [`socket_connect`](Self::socket_connect)
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket_connect>).
    /// [`tcp::connect`](crate::tcp::connect) and the accept requests
    /// ([`ListenSocket::accept`](crate::tcp::ListenSocket::accept),
    /// [`StreamListener::accept`](crate::tcp::StreamListener::accept)) call
    /// it, and tolerate a provider without event support
    /// ([`events_enabled`](Self::events_enabled) then says so); sockets
    /// delivered by an accept *event*
    /// ([`Incoming::accept`](crate::events::Incoming::accept)) inherit their
    /// events from the listening socket instead.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`. Takes no IRP: returns at once.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_DEVICE_STATE`] without calling the provider on a
    /// socket that is not connected, or inside its own accept callback (the
    /// provider learns the socket's table from the callback's answer). The
    /// status of `WskControlSocket` otherwise; [`Error::NOT_IMPLEMENTED`]
    /// where the provider has no event support (Wine).
    pub fn enable_events(&self) -> Result<()> {
        enable_events(&**self.core(), ConnectionVtable::<H>::EVENT_MASK, CONNECTED)
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
        disable_events(&**self.core(), ConnectionVtable::<H>::EVENT_MASK, CONNECTED)
    }

    /// Whether the handler's callbacks are enabled: [`enable_events`](Self::enable_events)
    /// succeeded (and [`disable_events`](Self::disable_events) was not
    /// called since) — it is called for accept requests too —, or the socket
    /// was delivered by an accept event, which gives it the events enabled
    /// on its listening socket. `false` for a handler without callbacks, and
    /// for a socket [`tcp::connect`](crate::tcp::connect) opened on a
    /// provider without event support (Wine's): use requests there.
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
    pub fn handler(&self) -> &H {
        &self.core().handler
    }

    /// Binds to a local address (`WskBind`); `0.0.0.0:0` or `[::]:0` lets the
    /// stack choose. Required before [`connect`](Self::connect).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS_COMPONENT`] without calling the provider for
    /// an address of another family than the socket's; provider statuses
    /// otherwise, for example [`Error::ADDRESS_ALREADY_EXISTS`].
    pub fn bind(&self, local: SocketAddr) -> Request<AddressOp> {
        submit_address(
            self.erased(),
            AddressCall::Bind(self.table().WskBind),
            Some(local),
            0,
        )
    }

    /// Connects to `remote` (`WskConnect`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - Without calling the provider: [`Error::INVALID_DEVICE_STATE`] before
    ///   [`bind`](Self::bind) succeeded (the DDI requires a bound socket);
    ///   [`Error::INVALID_ADDRESS_COMPONENT`] for an address of another
    ///   family than the socket's.
    /// - Provider statuses, for example [`Error::CONNECTION_REFUSED`],
    ///   [`Error::HOST_UNREACHABLE`], [`Error::IO_TIMEOUT`].
    pub fn connect(&self, remote: SocketAddr) -> Request<AddressOp> {
        submit_address(
            self.erased(),
            AddressCall::Connect(self.table().WskConnect),
            Some(remote),
            BOUND,
        )
    }

    /// The local address (`WskGetLocalAddress`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_DEVICE_STATE`] without calling the provider before
    /// [`bind`](Self::bind) succeeded; provider statuses otherwise.
    pub fn local_addr(&self) -> Request<AddressOp> {
        submit_address(
            self.erased(),
            AddressCall::Query(self.table().WskGetLocalAddress),
            None,
            BOUND,
        )
    }

    /// The remote address (`WskGetRemoteAddress`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_DEVICE_STATE`] without calling the provider on a
    /// socket that is not connected; provider statuses otherwise.
    pub fn peer_addr(&self) -> Request<AddressOp> {
        submit_address(
            self.erased(),
            AddressCall::Query(self.table().WskGetRemoteAddress),
            None,
            CONNECTED,
        )
    }

    /// Disconnects gracefully (`WskDisconnect`), after sending `final_data`
    /// if given: the peer sees end of stream; this side may still receive.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::CONNECTION_ABORTED`] without calling the provider after an
    /// abortive disconnect; provider statuses otherwise (Wine's stub:
    /// [`Error::NOT_IMPLEMENTED`]).
    pub fn disconnect(&self, final_data: Option<Buffer>) -> Request<DisconnectOp> {
        self.disconnect_with(final_data, 0)
    }

    /// Aborts the connection (`WskDisconnect` with `WSK_FLAG_ABORTIVE`): the
    /// peer sees a reset; once the request has succeeded, later sends fail
    /// with [`Error::CONNECTION_ABORTED`] without calling the provider.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses (Wine's stub: [`Error::NOT_IMPLEMENTED`]).
    pub fn abort(&self) -> Request<DisconnectOp> {
        self.disconnect_with(None, sys::WSK_FLAG_ABORTIVE)
    }

    fn disconnect_with(&self, final_data: Option<Buffer>, flags: u32) -> Request<DisconnectOp> {
        let core = self.core();
        let wsk_buf = final_data.as_ref().map(Buffer::wsk_buf_data);
        let mut op = DisconnectOp {
            core: SocketCore::erase(core),
            buffer: final_data,
            wsk_buf,
            abortive: flags & sys::WSK_FLAG_ABORTIVE != 0,
            counted: false,
        };
        let entered = match core.enter(CONNECTED) {
            Ok(entered) => entered,
            Err(e) => return Request::failed(op, e),
        };
        if flags == 0 && core.is_aborted() {
            return Request::failed(op, Error::CONNECTION_ABORTED);
        }
        let Some(call) = self.table().WskDisconnect else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        // Pending until it completes: silent mode waits for none.
        if let Err(e) = core.begin_send() {
            return Request::failed(op, e);
        }
        op.counted = true;
        let socket = core.socket();
        let _entered = entered;
        Request::submit(op, |irp, op| {
            let op = op.into_mut();
            let buf = op
                .wsk_buf
                .as_mut()
                .map_or(core::ptr::null_mut(), core::ptr::from_mut);
            // SAFETY: the socket exists; the buffer lives in the payload until completion.
            unsafe { call(socket, buf, flags, irp) }
        })
    }

    /// Connects to `remote` and sends `data` once connected, in one call
    /// (`WskConnectEx`, Windows 10 1703 and later); resolves to the address
    /// connected to and the buffer.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_SUPPORTED`] without calling the provider on Windows
    ///   before 10 1703, whose provider tables lack `WskConnectEx`.
    /// - [`Error::INVALID_PARAMETER`] for an empty buffer.
    /// - [`Error::BUFFER_OVERFLOW`] without calling the provider for more
    ///   than [`MAX_CONNECT_DATA`](Self::MAX_CONNECT_DATA) bytes: the status
    ///   the provider would give
    ///   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex>).
    /// - As [`connect`](Self::connect) and [`send`](Self::send).
    pub fn connect_with_data(&self, remote: SocketAddr, data: Buffer) -> Request<ConnectExOp> {
        let core = self.core();
        let wsk_buf = data.wsk_buf_data();
        let op = ConnectExOp {
            core: SocketCore::erase(core),
            buffer: data,
            wsk_buf,
            addr: SockAddr::from(remote),
        };
        if op.buffer.is_empty() {
            return Request::failed(op, Error::INVALID_PARAMETER);
        }
        if op.buffer.len() > Self::MAX_CONNECT_DATA {
            return Request::failed(op, Error::BUFFER_OVERFLOW);
        }
        if let Err(e) = core.check_family(&remote) {
            return Request::failed(op, e);
        }
        let entered = match core.enter(BOUND) {
            Ok(entered) => entered,
            Err(e) => return Request::failed(op, e),
        };
        // The table has only the fields the running Windows has: `None`
        // before 10 1703.
        let Some(call) = self.table().WskConnectEx else {
            return Request::failed(op, Error::NOT_SUPPORTED);
        };
        let socket = core.socket();
        let _entered = entered;
        Request::submit(op, |irp, op| {
            let op = op.into_mut();
            let addr = op.addr.as_mut_ptr();
            // SAFETY: the socket exists; the address, the WSK_BUF and the
            // memory it describes live in the payload until completion.
            unsafe { call(socket, addr, &raw mut op.wsk_buf, 0, irp) }
        })
    }

    /// Whether the connection was aborted (by either side).
    #[must_use]
    pub fn is_aborted(&self) -> bool {
        self.core().is_aborted()
    }

    /// Whether the peer disconnected gracefully (as a disconnect event reported).
    #[must_use]
    pub fn is_peer_closed(&self) -> bool {
        self.core()
            .peer_disconnect()
            .is_some_and(|f| f & sys::WSK_FLAG_ABORTIVE == 0)
    }

    /// Sets the typed socket option `O` (`WskControlSocket`,
    /// `WskSetOption`), for example `socket.set::<NoDelay>(true)`; see
    /// [`options`](crate::options).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] at once for an option that must
    ///   precede the bind ([`SocketOption::BEFORE_BIND`]) on a bound socket.
    /// - Provider statuses, for example [`Error::NOT_SUPPORTED`] or
    ///   [`Error::INVALID_PARAMETER`] for an option it does not know, and
    ///   [`Error::NOT_IMPLEMENTED`] on Wine.
    pub fn set<O: SocketOption>(&self, value: O::Value) -> Request<ControlOp<()>> {
        const {
            assert!(
                !is_conditional_accept::<O>(),
                "SO_CONDITIONAL_ACCEPT is for listening sockets only"
            );
        };
        set_option::<O>(self.erased(), value)
    }

    /// Reads the typed socket option `O` (`WskControlSocket`,
    /// `WskGetOption`), for example `socket.get::<ReceiveBuffer>()`.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::NOT_SUPPORTED`] for an option
    /// it does not know; [`Error::BUFFER_TOO_SMALL`] if it returned fewer
    /// than 4 bytes.
    pub fn get<O: SocketOption>(&self) -> Request<ControlOp<O::Value>> {
        get_option::<O>(self.erased())
    }

    /// The ideal send backlog in bytes (`SIO_WSK_QUERY_IDEAL_SEND_BACKLOG`):
    /// how much data to keep queued in sends for the best throughput.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::INVALID_DEVICE_STATE`] when not
    /// connected, [`Error::NOT_IMPLEMENTED`] on Wine.
    pub fn ideal_send_backlog(&self) -> Request<ControlOp<usize>> {
        ioctl(
            self.erased(),
            sys::SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
            size_of::<usize>(),
            CONNECTED,
        )
    }

    /// Puts the TCP connection in silent mode (`SIO_WSK_SET_TCP_SILENT_MODE`,
    /// Windows 8 and later): nothing more is sent on the wire, not even
    /// control packets, and incoming packets are dropped. Afterwards closing
    /// is the only valid operation: every other call on the socket fails
    /// with [`Error::INVALID_DEVICE_STATE`] without reaching the provider.
    /// Not supported on loopback.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-tcp-silent-mode>
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Without calling the provider:
    /// - [`Error::NOT_SUPPORTED`] before Windows 8.
    /// - [`Error::INVALID_DEVICE_STATE`] when not connected, while a send or
    ///   disconnect request is pending (the page allows none: their output
    ///   must have been taken, or the request dropped and completed), or when
    ///   silent mode was requested before.
    ///
    /// Provider statuses otherwise ([`Error::NOT_IMPLEMENTED`] on Wine); on
    /// failure the socket is usable as before.
    pub fn set_tcp_silent_mode(&self) -> Request<ControlOp<()>> {
        // Sends completed and abandoned are uncounted when disposed of.
        if has_deferred() {
            run_deferred();
        }
        let core = self.core();
        let refused = if core.provider.windows().at_least(WindowsVersion::WINDOWS_8) {
            if core.has_flags(CONNECTED) {
                core.begin_silent().err()
            } else {
                Some(Error::INVALID_DEVICE_STATE)
            }
        } else {
            Some(Error::NOT_SUPPORTED)
        };
        if let Some(e) = refused {
            return Request::ready(Err(e));
        }
        // SILENCING refuses every other call now; the request reaches the
        // provider through the run-down only, and its completion sets
        // SILENT (success) or clears SILENCING (failure).
        let control = Control {
            request_type: sys::WskIoctl,
            code: sys::SIO_WSK_SET_TCP_SILENT_MODE,
            level: 0,
            input: &[],
            output_len: 0,
            silent_mode: true,
        };
        let request = submit_control(self.erased(), control, 0);
        if request.is_complete() && !core.has_flags(SILENT) {
            // Refused before the provider saw it: usable as before.
            core.clear_flags(SILENCING);
        }
        request
    }

    /// The bytes received and not yet taken by a receive or receive event
    /// (`SIO_WSK_QUERY_RECEIVE_BACKLOG`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::NOT_IMPLEMENTED`] on Wine.
    pub fn receive_backlog(&self) -> Request<ControlOp<usize>> {
        ioctl(
            self.erased(),
            sys::SIO_WSK_QUERY_RECEIVE_BACKLOG,
            size_of::<usize>(),
            CONNECTED,
        )
    }

    /// The [`InspectId`] the connection had when
    /// [`ListenEvents::on_inspect`](crate::events::ListenEvents::on_inspect) saw its
    /// request (`SIO_WSK_QUERY_INSPECT_ID`), for a connection accepted on a
    /// conditional-accept listening socket: it ties the accepted socket to
    /// the decision made about it.
    ///
    /// The DDI defines this control without an IRP
    /// (<https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-query-inspect-id>):
    /// it returns at once.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses: [`Error::INVALID_DEVICE_REQUEST`] for a socket not
    /// accepted through conditional accept (the DDI's status);
    /// [`Error::BUFFER_TOO_SMALL`] if it returned less than a
    /// `WSK_INSPECT_ID`; [`Error::NOT_IMPLEMENTED`] on Wine.
    pub fn inspect_id(&self) -> Result<InspectId> {
        let mut raw = sys::WSK_INSPECT_ID {
            Key: 0,
            SerialNumber: 0,
        };
        let size = size_of::<sys::WSK_INSPECT_ID>();
        // SAFETY: `raw` is a writable WSK_INSPECT_ID across this synchronous
        // call; no input.
        let returned = unsafe {
            control_now(
                &**self.core(),
                sys::WskIoctl,
                sys::SIO_WSK_QUERY_INSPECT_ID,
                0,
                (core::ptr::null_mut(), 0),
                ((&raw mut raw).cast(), size),
                CONNECTED,
            )
        }?;
        if returned < size {
            return Err(Error::BUFFER_TOO_SMALL);
        }
        Ok(InspectId::from_raw(&raw))
    }

    /// Closes the socket (`WskCloseSocket`); the handler is freed when the
    /// provider completes the close. Pending requests on the socket complete
    /// (typically with [`Error::CANCELLED`]).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] at once if retained indications are
    ///   still held: the close then happens in the background when the last
    ///   one is released (the DDI forbids closing before).
    /// - The status of `WskCloseSocket`.
    pub fn close(mut self) -> Request<CloseOp> {
        let core = self.core.take().unwrap_or_else(|| unreachable!());
        queue::before_close(&core);
        close(SocketCore::erase(&core))
    }
}

impl<H: ConnectionEvents> Drop for ConnectionSocket<H> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            queue::before_close(&core);
            close_in_background(SocketCore::erase(&core));
        }
    }
}

impl<H: ConnectionEvents> core::fmt::Debug for ConnectionSocket<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConnectionSocket")
            .field("aborted", &self.is_aborted())
            .field("peer_closed", &self.is_peer_closed())
            .finish_non_exhaustive()
    }
}

/// `WskConnectEx`.
pub struct ConnectExOp {
    core: SocketRef,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    addr: SockAddr,
}

// SAFETY: as TransferOp.
unsafe impl Send for ConnectExOp {}

impl Operation for ConnectExOp {
    /// The address connected to, and the buffer that was sent.
    type Output = BufResult<SocketAddr>;
    fn complete(self, status: i32, _information: usize) -> Self::Output {
        self.core.note_status(status);
        let result = Error::check(status).and_then(|_| self.addr.to_socket_addr());
        (result, self.buffer)
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
    const ON_COMPLETION: bool = true;
    fn completed(&self, status: i32, _information: usize) {
        if sys::NT_SUCCESS(status) {
            self.core.set_flags(CONNECTED);
        }
    }
}

/// `WskDisconnect`.
pub struct DisconnectOp {
    core: SocketRef,
    buffer: Option<Buffer>,
    wsk_buf: Option<sys::WSK_BUF>,
    abortive: bool,
    /// Counted as a pending send until its output is taken or disposed of.
    counted: bool,
}

// SAFETY: as TransferOp.
unsafe impl Send for DisconnectOp {}

impl Operation for DisconnectOp {
    /// The outcome, and the final-data buffer if one was given.
    type Output = (Result<()>, Option<Buffer>);
    fn complete(self, status: i32, _information: usize) -> Self::Output {
        if self.counted {
            self.core.end_send();
        }
        self.core.note_status(status);
        let result = Error::check(status).map(drop);
        if result.is_ok() && self.abortive {
            // Only a reset that happened refuses later sends.
            self.core.set_flags(ABORTED);
        }
        (result, self.buffer)
    }
    fn abandon(self, _status: i32, _information: usize) {
        if self.counted {
            self.core.end_send();
        }
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}
