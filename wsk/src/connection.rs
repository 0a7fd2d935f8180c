//! Connection-oriented sockets (`WSK_FLAG_CONNECTION_SOCKET`) and their
//! event trampolines.

use alloc::sync::Arc;
use core::cell::Cell;
use core::marker::PhantomData;
use core::net::SocketAddr;

use wsk_sys as sys;

use crate::addr::{SockAddr, family_of, wildcard_for};
use crate::buffer::Buffer;
use crate::events::{
    ConnectionEvents, DisconnectFlags, EventContext, Indication, NoEvents, ReceiveAction,
    ReceiveFlags,
};
use crate::options::{self, SocketOption};
use crate::registration::{LiveHandle, Provider};
use crate::request::{Operation, Prepared, Request, RequestSlot, SlotRequest};
use crate::socket::{
    ABORTED, BOUND, CloseOp, ControlOp, CreateOp, FromCore, RetainOps, RetainedRaw, SocketCore,
    close_in_background, disable_events, enable_events, end_release, retain_core, retained_core,
    submit_close, submit_control, submit_create, submit_socket_connect,
};
use crate::{Error, Result};

/// The dispatch table and event mask derived from a [`ConnectionEvents`]
/// implementation, as constants.
pub(crate) struct ConnectionVtable<H>(PhantomData<H>);

impl<H: ConnectionEvents> ConnectionVtable<H> {
    /// `WSK_CLIENT_CONNECTION_DISPATCH` with only the implemented callbacks.
    pub(crate) const DISPATCH: sys::WSK_CLIENT_CONNECTION_DISPATCH =
        sys::WSK_CLIENT_CONNECTION_DISPATCH {
            WskReceiveEvent: if H::HAS_RECEIVE {
                Some(receive_event::<H>)
            } else {
                None
            },
            WskDisconnectEvent: if H::HAS_DISCONNECT {
                Some(disconnect_event::<H>)
            } else {
                None
            },
            WskSendBacklogEvent: if H::HAS_SEND_BACKLOG {
                Some(send_backlog_event::<H>)
            } else {
                None
            },
        };

    /// The `SO_WSK_EVENT_CALLBACK` mask enabling exactly those callbacks.
    pub(crate) const EVENT_MASK: u32 = (if H::HAS_RECEIVE {
        sys::WSK_EVENT_RECEIVE
    } else {
        0
    }) | (if H::HAS_DISCONNECT {
        sys::WSK_EVENT_DISCONNECT
    } else {
        0
    }) | (if H::HAS_SEND_BACKLOG {
        sys::WSK_EVENT_SEND_BACKLOG
    } else {
        0
    });

    /// The table to pass with the socket (null when nothing is enabled).
    pub(crate) fn dispatch_ptr() -> *const sys::WSK_CLIENT_CONNECTION_DISPATCH {
        if Self::EVENT_MASK == 0 {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }
}

/// `PFN_WSK_DISCONNECT_EVENT` trampoline.
///
/// # Safety
///
/// Called by the provider with the context of a socket whose handler is `H`.
unsafe extern "system" fn disconnect_event<H: ConnectionEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live SocketCore<H> until its close completes.
    let core = unsafe { &*context.cast::<SocketCore<H>>() };
    let flags = DisconnectFlags::from_bits_retain(flags);
    core.record_peer_disconnect(flags.bits());
    // SAFETY: inside the provider's callback; the flag tells DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(flags.bits()) };
    core.handler.on_disconnect(&cx, flags);
    sys::STATUS_SUCCESS
}

/// `PFN_WSK_SEND_BACKLOG_EVENT` trampoline.
///
/// # Safety
///
/// As [`disconnect_event`].
unsafe extern "system" fn send_backlog_event<H: ConnectionEvents>(
    context: sys::PVOID,
    ideal_backlog: sys::SIZE_T,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live SocketCore<H> until its close completes.
    let core = unsafe { &*context.cast::<SocketCore<H>>() };
    // SAFETY: inside the provider's callback; no flags: IRQL <= DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(0) };
    core.handler.on_send_backlog(&cx, ideal_backlog);
    sys::STATUS_SUCCESS
}

/// `PFN_WSK_RECEIVE_EVENT` trampoline.
///
/// # Safety
///
/// As [`disconnect_event`]; `bytes_accepted` is writable.
unsafe extern "system" fn receive_event<H: ConnectionEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
    data: sys::PWSK_DATA_INDICATION,
    bytes_indicated: sys::SIZE_T,
    bytes_accepted: *mut sys::SIZE_T,
) -> sys::NTSTATUS {
    let core_ptr = context.cast::<SocketCore<H>>().cast_const();
    // SAFETY: the context is a live SocketCore<H> until its close completes.
    let core = unsafe { &*core_ptr };
    // SAFETY: inside the provider's callback; the flag tells DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(flags) };
    if data.is_null() {
        core.handler.on_receive(&cx, None);
        return sys::STATUS_SUCCESS;
    }
    let retained = Cell::new(false);
    let indication = Indication {
        head: data,
        total: bytes_indicated,
        flags: ReceiveFlags::from_bits_retain(flags),
        retained: &retained,
        // SAFETY: the context is a SocketCore<H> inside an Arc; OPS is H's.
        raw: unsafe { RetainedRaw::new(core_ptr.cast(), data, &RetainOpsFor::<H>::OPS) },
    };
    let action = core.handler.on_receive(&cx, Some(indication));
    if retained.get() {
        return sys::STATUS_PENDING;
    }
    match action {
        ReceiveAction::Accept => sys::STATUS_SUCCESS,
        // Accepting nothing is refusing: success must mean some bytes were taken.
        ReceiveAction::Refuse | ReceiveAction::AcceptPartial(0) => sys::STATUS_DATA_NOT_ACCEPTED,
        ReceiveAction::AcceptPartial(n) => {
            // SAFETY: the provider passes a writable BytesAccepted.
            unsafe { *bytes_accepted = n.min(bytes_indicated) };
            sys::STATUS_SUCCESS
        }
    }
}

/// The retain/release functions of connection sockets with handler `H`.
struct RetainOpsFor<H>(PhantomData<H>);

impl<H: ConnectionEvents> RetainOpsFor<H> {
    const OPS: RetainOps<sys::WSK_DATA_INDICATION> = RetainOps {
        retain: retain_core::<H>,
        release: release_indication::<H>,
    };
}

/// Releases a retained chain of a `SocketCore<H>` (`WskRelease`), submitting
/// the deferred close if this was the last one.
///
/// # Safety
///
/// A matching `retain_core::<H>` succeeded and is not yet undone.
unsafe fn release_indication<H: ConnectionEvents>(
    core: *const (),
    head: sys::PWSK_DATA_INDICATION,
) {
    // SAFETY: per the caller, a matching retain_core::<H> succeeded.
    let core = unsafe { retained_core::<H>(core) };
    // SAFETY: the socket exists (it indicated data); its table is a connection table.
    let table = unsafe { core.dispatch::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>() };
    if let Some(release) = table.WskRelease {
        // SAFETY: `head` is a chain this socket indicated and we retained; the
        // socket is not closed yet (the gate holds the close back).
        let _ = unsafe { release(core.socket(), head) };
    }
    end_release(core);
}

/// A connection-oriented socket whose events go to `H`.
///
/// Dropping it closes the socket in the background (after any retained
/// indications are released); [`close`](Self::close) closes it as a request.
/// The handler lives until the provider has completed the close, so
/// callbacks never see freed state.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:80");
/// use wsk::{block_on, Buffer, ConnectionSocket, NoEvents, Passive, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let remote = "10.0.0.2:80".parse().unwrap();
/// let socket = block_on(&passive, ConnectionSocket::connect_to(&provider, remote, NoEvents))?;
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
    core: Option<Arc<SocketCore<H>>>,
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

impl<H: ConnectionEvents> FromCore<H> for ConnectionSocket<H> {
    #[allow(private_interfaces)]
    fn from_core(core: Arc<SocketCore<H>>, live: LiveHandle) -> Self {
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
}

impl<H: ConnectionEvents> ConnectionSocket<H> {
    fn core(&self) -> &Arc<SocketCore<H>> {
        // Only `close` takes the core, and it consumes the handle.
        self.core.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Creates a connection socket for `family` (`WskSocket`), installing
    /// `handler`'s callbacks. Bind it, connect it, then
    /// [`enable_events`](Self::enable_events) — or use
    /// [`connect_to`](Self::connect_to), which does all of it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The request resolves to the status of `WskSocket`, for example
    /// [`Error::INSUFFICIENT_RESOURCES`] or [`Error::NOT_SUPPORTED`].
    pub fn create(
        provider: &Provider,
        family: sys::ADDRESS_FAMILY,
        handler: H,
    ) -> Request<CreateOp<H, Self>> {
        let core = Arc::new(SocketCore::new(Arc::clone(&provider.inner), handler));
        submit_create(
            core,
            provider.live_handle(),
            family,
            sys::SOCK_STREAM,
            sys::IPPROTO_TCP as u32,
            sys::WSK_FLAG_CONNECTION_SOCKET,
            ConnectionVtable::<H>::dispatch_ptr().cast(),
            ConnectionVtable::<H>::EVENT_MASK,
        )
    }

    /// Creates a socket, binds it to the wildcard address of `remote`'s
    /// family, connects it to `remote`, and enables the handler's events.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (poll it there; block on it with [`crate::block_on`]
    /// at `PASSIVE_LEVEL`).
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create), [`bind`](Self::bind),
    /// [`connect`](Self::connect) and [`enable_events`](Self::enable_events);
    /// on failure the socket is closed (and the close awaited) before the
    /// error is returned. A provider without event support
    /// (Wine's) fails with [`Error::NOT_IMPLEMENTED`] if `H` has events.
    pub async fn connect_to(provider: &Provider, remote: SocketAddr, handler: H) -> Result<Self> {
        let socket = Self::create(provider, family_of(&remote), handler).await?;
        let connected = match socket.bind(wildcard_for(&remote)).await {
            Ok(_) => socket.connect(remote).await.map(drop),
            Err(e) => Err(e),
        };
        match connected.and_then(|()| socket.enable_events()) {
            Ok(()) => Ok(socket),
            Err(e) => {
                // Close before returning, so nothing of it outlives the error.
                let _ = socket.close().await;
                Err(e)
            }
        }
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
    /// - Provider statuses, as for [`bind`](Self::bind) and
    ///   [`connect`](Self::connect), for example [`Error::CONNECTION_REFUSED`].
    ///   On failure the provider has already closed the socket.
    pub fn socket_connect(
        provider: &Provider,
        local: SocketAddr,
        remote: SocketAddr,
        handler: H,
    ) -> Request<CreateOp<H, Self>> {
        let core = Arc::new(SocketCore::new(Arc::clone(&provider.inner), handler));
        core.set_flags(BOUND);
        submit_socket_connect(
            core,
            provider.live_handle(),
            local,
            remote,
            ConnectionVtable::<H>::dispatch_ptr(),
            ConnectionVtable::<H>::EVENT_MASK,
        )
    }

    /// Enables every callback the handler implements (`SO_WSK_EVENT_CALLBACK`
    /// with the mask derived from its `HAS_*` constants; nothing for a handler
    /// without callbacks). The socket must be connected. Sockets accepted
    /// through [`ListenEvents`](crate::ListenEvents) inherit their events from
    /// the listening socket and need not call this.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`. Takes no IRP: returns at once.
    ///
    /// # Errors
    ///
    /// The status of `WskControlSocket`; [`Error::NOT_IMPLEMENTED`] where the
    /// provider has no event support (Wine).
    pub fn enable_events(&self) -> Result<()> {
        enable_events(self.core(), ConnectionVtable::<H>::EVENT_MASK)
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
        disable_events(self.core(), ConnectionVtable::<H>::EVENT_MASK)
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
    /// For example [`Error::ADDRESS_ALREADY_EXISTS`], [`Error::INVALID_ADDRESS_COMPONENT`].
    pub fn bind(&self, local: SocketAddr) -> Request<AddressOp<H>> {
        self.address_op(local, |d| d.WskBind.map(AddressCall::Bind))
    }

    /// Connects to `remote` (`WskConnect`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// For example [`Error::CONNECTION_REFUSED`], [`Error::HOST_UNREACHABLE`],
    /// [`Error::IO_TIMEOUT`], [`Error::ADDRESS_NOT_ASSOCIATED`] (not bound).
    pub fn connect(&self, remote: SocketAddr) -> Request<AddressOp<H>> {
        self.address_op(remote, |d| d.WskConnect.map(AddressCall::Connect))
    }

    /// The local address (`WskGetLocalAddress`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// For example [`Error::INVALID_DEVICE_STATE`] (not bound).
    pub fn local_address(&self) -> Request<AddressOp<H>> {
        self.address_op(SocketAddr::from(([0, 0, 0, 0], 0)), |d| {
            d.WskGetLocalAddress.map(AddressCall::Query)
        })
    }

    /// The remote address (`WskGetRemoteAddress`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// For example [`Error::INVALID_DEVICE_STATE`] (not connected).
    pub fn remote_address(&self) -> Request<AddressOp<H>> {
        self.address_op(SocketAddr::from(([0, 0, 0, 0], 0)), |d| {
            d.WskGetRemoteAddress.map(AddressCall::Query)
        })
    }

    fn address_op(
        &self,
        addr: SocketAddr,
        pick: impl FnOnce(&sys::WSK_PROVIDER_CONNECTION_DISPATCH) -> Option<AddressCall>,
    ) -> Request<AddressOp<H>> {
        let core = self.core();
        let op = AddressOp {
            _core: Arc::clone(core),
            addr: SockAddr::from(addr),
        };
        // SAFETY: the socket exists (a handle exists only after creation); connection table.
        let Some(call) = pick(unsafe { core.dispatch::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>() })
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = core.socket();
        if matches!(call, AddressCall::Bind(_)) {
            core.set_flags(BOUND);
        }
        Request::submit(op, |irp, op| {
            let addr = op.addr.as_mut_ptr();
            match call {
                // SAFETY: the socket exists; the address lives in the payload
                // until completion; the IRP goes to this routine only.
                AddressCall::Bind(f) | AddressCall::Connect(f) => unsafe {
                    f(socket, addr, 0, irp)
                },
                // SAFETY: as above.
                AddressCall::Query(f) => unsafe { f(socket, addr, irp) },
            }
        })
    }

    /// Sends the bytes of `buffer` (`WskSend`); resolves to the bytes sent
    /// and the buffer.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::CONNECTION_ABORTED`] without calling the provider once the
    ///   connection was aborted (by the peer, as an abortive disconnect event
    ///   reported, or by [`abort`](Self::abort)).
    /// - [`Error::INVALID_PARAMETER`] for an empty buffer.
    /// - Provider statuses such as [`Error::CONNECTION_RESET`].
    pub fn send(&self, buffer: Buffer) -> Request<TransferOp<H>> {
        self.transfer(buffer, true, 0)
    }

    /// [`send`](Self::send) with `WskSend` flags (`WSK_FLAG_NODELAY`,
    /// `WSK_FLAG_OOB`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_with(&self, buffer: Buffer, flags: SendFlags) -> Request<TransferOp<H>> {
        self.transfer(buffer, true, flags.bits())
    }

    /// Receives into `buffer`'s whole capacity (`WskReceive`); resolves to
    /// the bytes received (0: the peer closed its side) and the buffer, whose
    /// length is set accordingly.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses such as [`Error::CONNECTION_RESET`] (abortive
    /// disconnect) or [`Error::CANCELLED`] (the socket closed).
    pub fn receive(&self, buffer: Buffer) -> Request<TransferOp<H>> {
        self.transfer(buffer, false, 0)
    }

    /// [`receive`](Self::receive) with `WskReceive` flags
    /// (`WSK_FLAG_WAITALL`: complete only when the buffer is full or the
    /// connection ends; `WSK_FLAG_DRAIN`: discard incoming data).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`receive`](Self::receive).
    pub fn receive_with(
        &self,
        buffer: Buffer,
        flags: ReceiveRequestFlags,
    ) -> Request<TransferOp<H>> {
        self.transfer(buffer, false, flags.bits())
    }

    /// Sends `buffer`'s data as [`send_with`](Self::send_with) does, with
    /// the memory of `slot` instead of a new allocation: a stream of sends
    /// through one slot allocates nothing. The request borrows the slot until
    /// it completes; see [`RequestSlot`](crate::RequestSlot).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`Error::INSUFFICIENT_RESOURCES`] if the slot
    /// lost its memory (a request in it was dropped while pending) and
    /// allocating it again failed.
    #[inline]
    pub fn send_in<'s>(
        &self,
        slot: &'s mut TransferSlot<H>,
        buffer: Buffer,
        flags: SendFlags,
    ) -> SlotRequest<'s, TransferOp<H>> {
        SlotRequest::prepared(slot, self.prepare_transfer(buffer, true, flags.bits()))
    }

    /// Receives into `buffer` as [`receive_with`](Self::receive_with) does,
    /// with the memory of `slot` instead of a new allocation; see
    /// [`send_in`](Self::send_in).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`receive`](Self::receive) and [`send_in`](Self::send_in).
    #[inline]
    pub fn receive_in<'s>(
        &self,
        slot: &'s mut TransferSlot<H>,
        buffer: Buffer,
        flags: ReceiveRequestFlags,
    ) -> SlotRequest<'s, TransferOp<H>> {
        SlotRequest::prepared(slot, self.prepare_transfer(buffer, false, flags.bits()))
    }

    #[inline]
    fn transfer(&self, buffer: Buffer, send: bool, flags: u32) -> Request<TransferOp<H>> {
        Request::prepared(self.prepare_transfer(buffer, send, flags))
    }

    /// The payload of a `WskSend` or `WskReceive` and the call that starts
    /// it, or the payload and why the provider must not be called.
    #[inline]
    fn prepare_transfer(
        &self,
        buffer: Buffer,
        send: bool,
        flags: u32,
    ) -> Prepared<TransferOp<H>, impl FnOnce(sys::PIRP, &mut TransferOp<H>) -> sys::NTSTATUS + use<H>>
    {
        let core = self.core();
        let wsk_buf = if send {
            buffer.wsk_buf_data()
        } else {
            buffer.wsk_buf_capacity()
        };
        let op = TransferOp {
            _core: Arc::clone(core),
            buffer,
            wsk_buf,
            receive: !send,
        };
        if send && core.is_aborted() {
            return Err((op, Error::CONNECTION_ABORTED));
        }
        if send && op.buffer.is_empty() {
            return Err((op, Error::INVALID_PARAMETER));
        }
        let Some(call) = (if send {
            self.transfer.send
        } else {
            self.transfer.receive
        }) else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        let socket = core.socket();
        Ok((op, move |irp, op: &mut TransferOp<H>| {
            // SAFETY: the socket exists; the WSK_BUF and the memory it
            // describes live in the payload until completion.
            unsafe { call(socket, &raw mut op.wsk_buf, flags, irp) }
        }))
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
    pub fn disconnect(&self, final_data: Option<Buffer>) -> Request<DisconnectOp<H>> {
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
    pub fn abort(&self) -> Request<DisconnectOp<H>> {
        self.disconnect_with(None, sys::WSK_FLAG_ABORTIVE)
    }

    fn disconnect_with(&self, final_data: Option<Buffer>, flags: u32) -> Request<DisconnectOp<H>> {
        let core = self.core();
        let wsk_buf = final_data.as_ref().map(Buffer::wsk_buf_data);
        let op = DisconnectOp {
            core: Arc::clone(core),
            buffer: final_data,
            wsk_buf,
            abortive: flags & sys::WSK_FLAG_ABORTIVE != 0,
        };
        if flags == 0 && core.is_aborted() {
            return Request::failed(op, Error::CONNECTION_ABORTED);
        }
        // SAFETY: the socket exists; connection table.
        let Some(call) =
            (unsafe { core.dispatch::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>() }).WskDisconnect
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = core.socket();
        Request::submit(op, |irp, op| {
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
    /// - As [`connect`](Self::connect) and [`send`](Self::send).
    pub fn connect_with_data(&self, remote: SocketAddr, data: Buffer) -> Request<ConnectExOp<H>> {
        let core = self.core();
        let wsk_buf = data.wsk_buf_data();
        let op = ConnectExOp {
            _core: Arc::clone(core),
            buffer: data,
            wsk_buf,
            addr: SockAddr::from(remote),
        };
        if op.buffer.is_empty() {
            return Request::failed(op, Error::INVALID_PARAMETER);
        }
        // SAFETY: the socket exists; connection table (copied with only the
        // fields the running Windows has).
        let Some(call) =
            (unsafe { core.dispatch::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>() }).WskConnectEx
        else {
            return Request::failed(op, Error::NOT_SUPPORTED);
        };
        let socket = core.socket();
        Request::submit(op, |irp, op| {
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

    /// Sets a `ULONG` socket option (`WskControlSocket`, `WskSetOption`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::INVALID_PARAMETER`] for an
    /// unknown option.
    pub fn set_option(&self, level: u32, option: u32, value: u32) -> Request<ControlOp<H>> {
        submit_control(
            self.core(),
            sys::WskSetOption,
            option,
            level,
            &value.to_ne_bytes(),
            0,
        )
    }

    /// Reads a `ULONG` socket option (`WskControlSocket`, `WskGetOption`);
    /// use [`ControlOutput::as_u32`](crate::ControlOutput::as_u32).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses.
    pub fn get_option(&self, level: u32, option: u32) -> Request<ControlOp<H>> {
        submit_control(self.core(), sys::WskGetOption, option, level, &[], 4)
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
    pub fn set<O: SocketOption>(&self, value: O::Value) -> Request<ControlOp<H, ()>> {
        options::set::<H, O>(self.core(), value)
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
    pub fn get<O: SocketOption>(&self) -> Request<ControlOp<H, O::Value>> {
        options::get::<H, O>(self.core())
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
    pub fn ideal_send_backlog(&self) -> Request<ControlOp<H, usize>> {
        options::query_size(self.core(), sys::SIO_WSK_QUERY_IDEAL_SEND_BACKLOG)
    }

    /// Puts the TCP connection in silent mode (`SIO_WSK_SET_TCP_SILENT_MODE`):
    /// nothing more is sent on the wire, not even control packets; later
    /// sends and disconnects fail with [`Error::INVALID_DEVICE_STATE`]. No send
    /// or disconnect request may be pending when it is called. Not supported
    /// on loopback.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-tcp-silent-mode>
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::INVALID_DEVICE_STATE`] when not
    /// connected or with sends pending, [`Error::NOT_IMPLEMENTED`] on Wine.
    pub fn set_tcp_silent_mode(&self) -> Request<ControlOp<H>> {
        submit_control(
            self.core(),
            sys::WskIoctl,
            sys::SIO_WSK_SET_TCP_SILENT_MODE,
            0,
            &[],
            0,
        )
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
    pub fn receive_backlog(&self) -> Request<ControlOp<H, usize>> {
        options::query_size(self.core(), sys::SIO_WSK_QUERY_RECEIVE_BACKLOG)
    }

    /// The [`InspectId`](crate::InspectId) the connection had when
    /// [`ListenEvents::on_inspect`](crate::ListenEvents::on_inspect) saw its
    /// request (`SIO_WSK_QUERY_INSPECT_ID`), for a connection accepted on a
    /// conditional-accept listening socket: it ties the accepted socket to
    /// the decision made about it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::INVALID_DEVICE_STATE`] (the
    /// simulated provider) for a socket not accepted through conditional
    /// accept; [`Error::BUFFER_TOO_SMALL`] if it returned less than a
    /// `WSK_INSPECT_ID`.
    pub fn inspect_id(&self) -> Request<ControlOp<H, crate::InspectId>> {
        crate::socket::submit_control_as(
            self.core(),
            sys::WskIoctl,
            sys::SIO_WSK_QUERY_INSPECT_ID,
            0,
            &[],
            size_of::<sys::WSK_INSPECT_ID>(),
        )
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
    pub fn close(mut self) -> Request<CloseOp<H>> {
        let core = self.core.take().unwrap_or_else(|| unreachable!());
        if core.close_in_accept() {
            // Inside its accept callback: the connection is rejected instead.
            return Request::ready(Ok(()));
        }
        if core.begin_close() {
            submit_close(core)
        } else {
            // The last RetainedIndication submits the close.
            Request::ready(Err(Error::INVALID_DEVICE_STATE))
        }
    }
}

impl<H: ConnectionEvents> Drop for ConnectionSocket<H> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            close_in_background(core);
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

#[derive(Clone, Copy)]
enum AddressCall {
    Bind(
        unsafe extern "system" fn(
            sys::PWSK_SOCKET,
            sys::PSOCKADDR,
            sys::ULONG,
            sys::PIRP,
        ) -> sys::NTSTATUS,
    ),
    Connect(
        unsafe extern "system" fn(
            sys::PWSK_SOCKET,
            sys::PSOCKADDR,
            sys::ULONG,
            sys::PIRP,
        ) -> sys::NTSTATUS,
    ),
    Query(unsafe extern "system" fn(sys::PWSK_SOCKET, sys::PSOCKADDR, sys::PIRP) -> sys::NTSTATUS),
}

/// `WskBind`, `WskConnect`, `WskGetLocalAddress`, `WskGetRemoteAddress`.
pub struct AddressOp<H> {
    _core: Arc<SocketCore<H>>,
    addr: SockAddr,
}

impl<H: Send + Sync + 'static> Operation for AddressOp<H> {
    /// The address involved: the one bound or connected to, or the one queried.
    type Output = Result<SocketAddr>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<SocketAddr> {
        Error::check(status)?;
        self.addr.to_socket_addr()
    }
}

/// The memory of one `WskSend` or `WskReceive` at a time, reused by
/// [`ConnectionSocket::send_in`] and [`ConnectionSocket::receive_in`].
pub type TransferSlot<H = NoEvents> = RequestSlot<TransferOp<H>>;

/// `WskSend` and `WskReceive`.
pub struct TransferOp<H> {
    _core: Arc<SocketCore<H>>,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    receive: bool,
}

// SAFETY: the WSK_BUF points into the owned buffer; moving the op between
// threads moves both.
unsafe impl<H: Send + Sync> Send for TransferOp<H> {}

impl<H: Send + Sync + 'static> Operation for TransferOp<H> {
    /// Bytes transferred, and the buffer.
    type Output = (Result<usize>, Buffer);
    fn complete(mut self, status: sys::NTSTATUS, information: usize) -> (Result<usize>, Buffer) {
        match Error::check(status) {
            Ok(_) => {
                let n = information.min(self.buffer.capacity());
                if self.receive {
                    self.buffer.set_len(n);
                }
                (Ok(n), self.buffer)
            }
            Err(e) => (Err(e), self.buffer),
        }
    }
}

/// `WskConnectEx`.
pub struct ConnectExOp<H> {
    _core: Arc<SocketCore<H>>,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    addr: SockAddr,
}

// SAFETY: as TransferOp.
unsafe impl<H: Send + Sync> Send for ConnectExOp<H> {}

impl<H: Send + Sync + 'static> Operation for ConnectExOp<H> {
    /// The address connected to, and the buffer that was sent.
    type Output = (Result<SocketAddr>, Buffer);
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Self::Output {
        let result = Error::check(status).and_then(|_| self.addr.to_socket_addr());
        (result, self.buffer)
    }
}

/// `WskDisconnect`.
pub struct DisconnectOp<H> {
    core: Arc<SocketCore<H>>,
    buffer: Option<Buffer>,
    wsk_buf: Option<sys::WSK_BUF>,
    abortive: bool,
}

// SAFETY: as TransferOp.
unsafe impl<H: Send + Sync> Send for DisconnectOp<H> {}

impl<H: Send + Sync + 'static> Operation for DisconnectOp<H> {
    /// The outcome, and the final-data buffer if one was given.
    type Output = (Result<()>, Option<Buffer>);
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Self::Output {
        let result = Error::check(status).map(drop);
        if result.is_ok() && self.abortive {
            // Only a reset that happened refuses later sends.
            self.core.set_flags(ABORTED);
        }
        (result, self.buffer)
    }
}

bitflags::bitflags! {
    /// The `Flags` of a send request (`PFN_WSK_SEND`).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SendFlags: sys::ULONG {
        /// `WSK_FLAG_NODELAY`: send this and queued data at once (no Nagle delay).
        const NO_DELAY = sys::WSK_FLAG_NODELAY;
        /// `WSK_FLAG_OOB`: send as out-of-band data (WDK 10.0.16299 and later).
        const OUT_OF_BAND = sys::WSK_FLAG_OOB;
    }
}

bitflags::bitflags! {
    /// The `Flags` of a receive request (`PFN_WSK_RECEIVE`).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ReceiveRequestFlags: sys::ULONG {
        /// `WSK_FLAG_WAITALL`: complete only when the buffer is full or the
        /// connection ends.
        const WAIT_ALL = sys::WSK_FLAG_WAITALL;
        /// `WSK_FLAG_DRAIN`: discard existing and future incoming data.
        const DRAIN = sys::WSK_FLAG_DRAIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OnlyDisconnect;
    #[crate::vtable]
    impl ConnectionEvents for OnlyDisconnect {
        fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
    }

    struct All;
    #[crate::vtable]
    impl ConnectionEvents for All {
        fn on_receive(&self, _: &EventContext<'_>, _: Option<Indication<'_>>) -> ReceiveAction {
            ReceiveAction::Accept
        }
        fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
        fn on_send_backlog(&self, _: &EventContext<'_>, _: usize) {}
    }

    #[test]
    fn vtable_installs_and_enables_only_implemented_callbacks() {
        const { assert!(OnlyDisconnect::HAS_DISCONNECT && !OnlyDisconnect::HAS_RECEIVE) };
        let table = ConnectionVtable::<OnlyDisconnect>::DISPATCH;
        assert!(table.WskDisconnectEvent.is_some());
        assert!(table.WskReceiveEvent.is_none() && table.WskSendBacklogEvent.is_none());
        assert_eq!(
            ConnectionVtable::<OnlyDisconnect>::EVENT_MASK,
            sys::WSK_EVENT_DISCONNECT
        );

        assert_eq!(
            ConnectionVtable::<All>::EVENT_MASK,
            sys::WSK_EVENT_RECEIVE | sys::WSK_EVENT_DISCONNECT | sys::WSK_EVENT_SEND_BACKLOG
        );
        assert_eq!(ConnectionVtable::<NoEvents>::EVENT_MASK, 0);
        assert!(ConnectionVtable::<NoEvents>::dispatch_ptr().is_null());
    }

    #[test]
    fn dispatch_tables_are_static() {
        // The provider keeps the pointer for the socket's lifetime: it must
        // be the same 'static table every time, not a temporary.
        let a = ConnectionVtable::<All>::dispatch_ptr();
        let b = ConnectionVtable::<All>::dispatch_ptr();
        assert!(!a.is_null());
        assert_eq!(a, b);
    }
}
