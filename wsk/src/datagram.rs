//! Datagram sockets (`WSK_FLAG_DATAGRAM_SOCKET`, UDP) and their receive-from
//! event trampoline.
//!
//! A datagram socket must be bound ([`DatagramSocket::bind`], or
//! [`DatagramSocket::open`] which also enables events) before it sends or
//! receives; until then those requests fail with
//! [`Error::ADDRESS_NOT_ASSOCIATED`] without reaching the provider.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::marker::PhantomData;
use core::mem::offset_of;
use core::net::SocketAddr;

use wsk_sys as sys;

use crate::addr::{SockAddr, family_of};
use crate::buffer::Buffer;
use crate::events::{
    DatagramAction, DatagramEvents, DatagramFlags, DatagramIndication, EventContext,
    NoDatagramEvents,
};
use crate::registration::{LiveHandle, Provider, WindowsVersion};
use crate::request::{Operation, Prepared, Request, RequestSlot, SlotRequest};
use crate::socket::{
    BOUND, CloseOp, CreateOp, FromCore, RetainOps, RetainedRaw, SocketCore, close_in_background,
    disable_events, enable_events, end_release, retain_core, retained_core, submit_close,
    submit_create,
};
use crate::{Error, Result};

/// `flags` bit of a datagram socket's core: a fixed destination is set
/// ([`DatagramSocket::set_remote_address`] or
/// [`DatagramSocket::set_send_to_address`] succeeded with an address), so
/// [`DatagramSocket::send`] may omit the address.
const FIXED_DESTINATION: u32 = 1 << 17;

/// Bytes of control information (`CMSGHDR` objects) a
/// [`receive_from`](DatagramSocket::receive_from) request can return, kept
/// inline in the request.
pub const RECEIVE_CONTROL_BYTES: usize = 64;

/// The dispatch table and event mask derived from a [`DatagramEvents`]
/// implementation, as constants.
pub(crate) struct DatagramVtable<H>(PhantomData<H>);

impl<H: DatagramEvents> DatagramVtable<H> {
    /// `WSK_CLIENT_DATAGRAM_DISPATCH` with only the implemented callback.
    pub(crate) const DISPATCH: sys::WSK_CLIENT_DATAGRAM_DISPATCH =
        sys::WSK_CLIENT_DATAGRAM_DISPATCH {
            WskReceiveFromEvent: if H::HAS_RECEIVE_FROM {
                Some(receive_from_event::<H>)
            } else {
                None
            },
        };

    /// The `SO_WSK_EVENT_CALLBACK` mask enabling exactly that callback.
    pub(crate) const EVENT_MASK: u32 = if H::HAS_RECEIVE_FROM {
        sys::WSK_EVENT_RECEIVE_FROM
    } else {
        0
    };

    /// The table to pass with the socket (null when nothing is enabled).
    pub(crate) fn dispatch_ptr() -> *const sys::WSK_CLIENT_DATAGRAM_DISPATCH {
        if Self::EVENT_MASK == 0 {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }
}

/// `PFN_WSK_RECEIVE_FROM_EVENT` trampoline.
///
/// Answers only `STATUS_SUCCESS` (accepted, or a null list),
/// `STATUS_PENDING` (retained) and `STATUS_DATA_NOT_ACCEPTED` (refused).
///
/// # Safety
///
/// Called by the provider with the context of a socket whose handler is `H`.
unsafe extern "system" fn receive_from_event<H: DatagramEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
    data: sys::PWSK_DATAGRAM_INDICATION,
) -> sys::NTSTATUS {
    let core_ptr = context.cast::<SocketCore<H>>().cast_const();
    // SAFETY: the context is a live SocketCore<H> until its close completes.
    let core = unsafe { &*core_ptr };
    // SAFETY: inside the provider's callback; the flag tells DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(flags) };
    if data.is_null() {
        core.handler.on_receive_from(&cx, None);
        return sys::STATUS_SUCCESS;
    }
    let retained = Cell::new(false);
    let indication = DatagramIndication {
        head: data,
        flags: DatagramFlags::from_bits_retain(flags),
        retained: &retained,
        // SAFETY: the context is a SocketCore<H> inside an Arc; OPS is H's.
        raw: unsafe { RetainedRaw::new(core_ptr.cast(), data, &RetainOpsFor::<H>::OPS) },
    };
    let action = core.handler.on_receive_from(&cx, Some(indication));
    if retained.get() {
        return sys::STATUS_PENDING;
    }
    match action {
        DatagramAction::Accept => sys::STATUS_SUCCESS,
        DatagramAction::Refuse => sys::STATUS_DATA_NOT_ACCEPTED,
    }
}

/// The retain/release functions of datagram sockets with handler `H`.
struct RetainOpsFor<H>(PhantomData<H>);

impl<H: DatagramEvents> RetainOpsFor<H> {
    const OPS: RetainOps<sys::WSK_DATAGRAM_INDICATION> = RetainOps {
        retain: retain_core::<H>,
        release: release_datagrams::<H>,
    };
}

/// Releases a retained list of a `SocketCore<H>` (`WskRelease`), submitting
/// the deferred close if this was the last retention.
///
/// # Safety
///
/// A matching `retain_core::<H>` succeeded and is not yet undone.
unsafe fn release_datagrams<H: DatagramEvents>(
    core: *const (),
    head: sys::PWSK_DATAGRAM_INDICATION,
) {
    // SAFETY: per the caller, a matching retain_core::<H> succeeded.
    let core = unsafe { retained_core::<H>(core) };
    // SAFETY: the socket exists (it indicated data) and is a datagram
    // socket; `WskRelease` exists in every version of the table.
    let release: sys::PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST = unsafe {
        routine(
            &core,
            offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskRelease),
        )
    };
    if let Some(release) = release {
        // SAFETY: `head` is a list this socket indicated and we retained; the
        // socket is not closed yet (the gate holds the close back).
        let _ = unsafe { release(core.socket(), head) };
    }
    end_release(core);
}

/// Reads one routine of a datagram socket's provider table.
///
/// Reads the field alone, never the whole table: an older provider's table
/// is shorter than `WSK_PROVIDER_DATAGRAM_DISPATCH`.
///
/// # Safety
///
/// The socket exists and is a datagram socket; `offset` is the offset of a
/// field of type `F` that the running provider's table has.
unsafe fn routine<H: Send + Sync + 'static, F: Copy>(core: &SocketCore<H>, offset: usize) -> F {
    // SAFETY: the socket exists (caller contract).
    let table = unsafe { (*core.socket()).Dispatch };
    let field = table.cast::<u8>().wrapping_add(offset).cast::<F>();
    // SAFETY: the field lies within the provider's table (caller contract),
    // which is aligned, initialised and valid while the socket is.
    unsafe { field.read() }
}

/// A datagram (UDP) socket whose receive-from events go to `H`.
///
/// Dropping it closes the socket in the background (after any retained
/// datagrams are released); [`close`](Self::close) closes it as a request.
/// The handler lives until the provider has completed the close, so
/// callbacks never see freed state.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_udp("10.0.0.2:53");
/// use wsk::{block_on, Buffer, DatagramSocket, NoDatagramEvents, Passive, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let local = "10.0.0.1:5353".parse().unwrap();
/// let socket = block_on(&passive, DatagramSocket::open(&provider, local, NoDatagramEvents))?;
/// let (sent, buffer) = socket
///     .send_to(Buffer::from_slice(b"query")?, "10.0.0.2:53".parse().unwrap())
///     .wait(&passive);
/// assert_eq!(sent?, 5);
/// # let (from, data) = peer.recv_from();
/// # peer.send_to(&from.to_string(), b"answer");
/// let (received, buffer) = socket.receive_from(buffer).wait(&passive);
/// let received = received?;
/// assert_eq!(received.remote(), "10.0.0.2:53".parse().unwrap());
/// assert_eq!(&buffer.as_slice()[..received.len()], b"answe"); // truncated to the capacity
/// assert!(received.flags().is_truncated());
///
/// socket.close().wait(&passive)?;
/// drop((buffer, provider));
/// registration.deregister(&passive).expect("no handles left");
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct DatagramSocket<H: DatagramEvents = NoDatagramEvents> {
    core: Option<Arc<SocketCore<H>>>,
    _live: LiveHandle,
}

impl<H: DatagramEvents> FromCore<H> for DatagramSocket<H> {
    #[allow(private_interfaces)]
    fn from_core(core: Arc<SocketCore<H>>, live: LiveHandle) -> Self {
        Self {
            core: Some(core),
            _live: live,
        }
    }
}

impl<H: DatagramEvents> DatagramSocket<H> {
    fn core(&self) -> &Arc<SocketCore<H>> {
        // Only `close` takes the core, and it consumes the handle.
        self.core.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Creates a datagram socket for `family` (`WskSocket` with
    /// `WSK_FLAG_DATAGRAM_SOCKET`, `SOCK_DGRAM`, `IPPROTO_UDP`), installing
    /// `handler`'s callback. Bind it, then
    /// [`enable_events`](Self::enable_events) — or use
    /// [`open`](Self::open), which does all of it.
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
            sys::SOCK_DGRAM,
            sys::IPPROTO_UDP as u32,
            sys::WSK_FLAG_DATAGRAM_SOCKET,
            DatagramVtable::<H>::dispatch_ptr().cast(),
            DatagramVtable::<H>::EVENT_MASK,
        )
    }

    /// Creates a socket for `local`'s family, binds it to `local` (port 0
    /// lets the stack choose), and enables the handler's events.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (poll it there; block on it with [`crate::block_on`]
    /// at `PASSIVE_LEVEL`).
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create), [`bind`](Self::bind) and
    /// [`enable_events`](Self::enable_events); on failure the socket is
    /// closed (and the close awaited) before the error is returned.
    pub async fn open(provider: &Provider, local: SocketAddr, handler: H) -> Result<Self> {
        let socket = Self::create(provider, family_of(&local), handler).await?;
        let ready = match socket.bind(local).await {
            Ok(_) => socket.enable_events(),
            Err(e) => Err(e),
        };
        match ready {
            Ok(()) => Ok(socket),
            Err(e) => {
                // Close before returning, so nothing of it outlives the error.
                let _ = socket.close().await;
                Err(e)
            }
        }
    }

    /// Enables the receive-from callback if the handler implements it
    /// (`SO_WSK_EVENT_CALLBACK` with `WSK_EVENT_RECEIVE_FROM`; nothing for a
    /// handler without callbacks). The socket must be bound.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`. Takes no IRP: returns at once.
    ///
    /// # Errors
    ///
    /// The status of `WskControlSocket`, for example
    /// [`Error::INVALID_DEVICE_STATE`] before [`bind`](Self::bind);
    /// [`Error::NOT_IMPLEMENTED`] where the provider has no event support
    /// (Wine).
    pub fn enable_events(&self) -> Result<()> {
        enable_events(self.core(), DatagramVtable::<H>::EVENT_MASK)
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
        disable_events(self.core(), DatagramVtable::<H>::EVENT_MASK)
    }

    /// Sets the typed socket option `O` (`WskControlSocket`, `WskSetOption`),
    /// for example `socket.set::<ReceiveBuffer>(1 << 16)`.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] at once for an option that must
    ///   precede the bind on a bound socket.
    /// - Provider statuses, for example [`Error::NOT_SUPPORTED`] for an
    ///   option it does not know.
    pub fn set<O: crate::options::SocketOption>(
        &self,
        value: O::Value,
    ) -> crate::Request<crate::ControlOp<H, ()>> {
        crate::options::set::<H, O>(self.core(), value)
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
    pub fn get<O: crate::options::SocketOption>(
        &self,
    ) -> crate::Request<crate::ControlOp<H, O::Value>> {
        crate::options::get::<H, O>(self.core())
    }

    /// The handler.
    #[must_use]
    pub fn handler(&self) -> &H {
        &self.core().handler
    }

    /// Whether [`bind`](Self::bind) has succeeded.
    #[must_use]
    pub fn is_bound(&self) -> bool {
        self.core().has_flags(BOUND)
    }

    /// Binds to a local address (`WskBind`); `0.0.0.0:0` or `[::]:0` lets the
    /// stack choose. Required before sending or receiving.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// For example [`Error::ADDRESS_ALREADY_EXISTS`],
    /// [`Error::INVALID_ADDRESS_COMPONENT`] (another family),
    /// [`Error::INVALID_DEVICE_STATE`] (already bound).
    pub fn bind(&self, local: SocketAddr) -> Request<DatagramAddressOp<H>> {
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskBind);
        // SAFETY: the socket exists (a handle exists only after creation); a
        // datagram table; `WskBind` exists in every version.
        let bind: sys::PFN_WSK_BIND = unsafe { routine(self.core(), offset) };
        let op = DatagramAddressOp {
            core: Arc::clone(self.core()),
            addr: SockAddr::from(local),
            bind: true,
        };
        let Some(bind) = bind else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = self.core().socket();
        Request::submit(op, |irp, op| {
            // SAFETY: the socket exists; the address lives in the payload
            // until completion; the IRP goes to this routine only.
            unsafe { bind(socket, op.addr.as_mut_ptr(), 0, irp) }
        })
    }

    /// The local address (`WskGetLocalAddress`): after binding to port 0,
    /// the port the stack chose.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// For example [`Error::INVALID_DEVICE_STATE`] (not bound).
    pub fn local_address(&self) -> Request<DatagramAddressOp<H>> {
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskGetLocalAddress);
        // SAFETY: the socket exists; a datagram table; `WskGetLocalAddress`
        // exists in every version.
        let query: sys::PFN_WSK_GET_LOCAL_ADDRESS = unsafe { routine(self.core(), offset) };
        let op = DatagramAddressOp {
            core: Arc::clone(self.core()),
            addr: SockAddr::UNSPECIFIED,
            bind: false,
        };
        let Some(query) = query else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let socket = self.core().socket();
        Request::submit(op, |irp, op| {
            // SAFETY: the socket exists; the address lives in the payload
            // until completion.
            unsafe { query(socket, op.addr.as_mut_ptr(), irp) }
        })
    }

    /// Sends the bytes of `buffer` as one datagram to `remote` (`WskSendTo`);
    /// resolves to the bytes sent and the buffer.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - [`Error::INVALID_PARAMETER`] for an empty buffer.
    /// - Provider statuses such as [`Error::INVALID_ADDRESS`] (a `remote` of
    ///   another family) or [`Error::HOST_UNREACHABLE`].
    pub fn send_to(&self, buffer: Buffer, remote: SocketAddr) -> Request<SendToOp<H>> {
        Request::prepared(self.prepare_send_to(buffer, Some(remote)))
    }

    /// [`send_to`](Self::send_to) with the memory of `slot` instead of a new
    /// allocation: a stream of datagrams sent through one slot allocates
    /// nothing. The request borrows the slot until it completes; see
    /// [`RequestSlot`](crate::RequestSlot).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to); [`Error::INSUFFICIENT_RESOURCES`] if
    /// the slot lost its memory (a request in it was dropped while pending)
    /// and allocating it again failed.
    #[inline]
    pub fn send_to_in<'s>(
        &self,
        slot: &'s mut SendToSlot<H>,
        buffer: Buffer,
        remote: SocketAddr,
    ) -> SlotRequest<'s, SendToOp<H>> {
        SlotRequest::prepared(slot, self.prepare_send_to(buffer, Some(remote)))
    }

    /// Sends the bytes of `buffer` as one datagram to the socket's fixed
    /// destination (`WskSendTo` without a `RemoteAddress`), set with
    /// [`set_remote_address`](Self::set_remote_address) or
    /// [`set_send_to_address`](Self::set_send_to_address); resolves to the
    /// bytes sent and the buffer.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - [`Error::INVALID_DEVICE_STATE`] without calling the provider while
    ///   no fixed destination is set (none was, or it was cleared).
    /// - As [`send_to`](Self::send_to).
    pub fn send(&self, buffer: Buffer) -> Request<SendToOp<H>> {
        Request::prepared(self.prepare_send_to(buffer, None))
    }

    /// The payload of a `WskSendTo` and the call that starts it, or the
    /// payload and why the provider must not be called.
    #[inline]
    #[allow(clippy::result_large_err)] // the payload goes back whole; boxing it would allocate
    fn prepare_send_to(
        &self,
        buffer: Buffer,
        remote: Option<SocketAddr>,
    ) -> Prepared<SendToOp<H>, impl FnOnce(sys::PIRP, &mut SendToOp<H>) -> sys::NTSTATUS + use<H>>
    {
        let core = self.core();
        let op = SendToOp {
            _core: Arc::clone(core),
            wsk_buf: buffer.wsk_buf_data(),
            buffer,
            remote: remote.map_or(SockAddr::UNSPECIFIED, SockAddr::from),
            has_remote: remote.is_some(),
        };
        if op.buffer.is_empty() {
            return Err((op, Error::INVALID_PARAMETER));
        }
        if !core.has_flags(BOUND) {
            return Err((op, Error::ADDRESS_NOT_ASSOCIATED));
        }
        if remote.is_none() && !core.has_flags(FIXED_DESTINATION) {
            return Err((op, Error::INVALID_DEVICE_STATE));
        }
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskSendTo);
        // SAFETY: the socket exists; a datagram table; `WskSendTo` exists in
        // every version.
        let send: sys::PFN_WSK_SEND_TO = unsafe { routine(core, offset) };
        let Some(send) = send else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        let socket = core.socket();
        Ok((op, move |irp, op: &mut SendToOp<H>| {
            let remote = if op.has_remote {
                op.remote.as_mut_ptr()
            } else {
                core::ptr::null_mut()
            };
            // SAFETY: the socket exists; the WSK_BUF, the memory it describes
            // and the address live in the payload until completion; no
            // control information.
            unsafe {
                send(
                    socket,
                    &raw mut op.wsk_buf,
                    0,
                    remote,
                    0,
                    core::ptr::null_mut(),
                    irp,
                )
            }
        }))
    }

    /// Sets the socket's security descriptor (`SO_WSK_SECURITY`) to a
    /// descriptor cached with [`Provider::cache_security_descriptor`]. Must
    /// precede the bind: create the socket with [`create`](Self::create),
    /// set this, then [`bind`](Self::bind).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] at once once bound.
    /// - [`Error::INVALID_PARAMETER`] at once for a descriptor another
    ///   client cached.
    /// - Provider statuses ([`Error::NOT_IMPLEMENTED`] on Wine).
    pub fn set_security(
        &self,
        descriptor: &crate::CachedSecurityDescriptor,
    ) -> Request<crate::SecurityOp<H>> {
        let core = self.core();
        crate::client_control::submit_security(core, descriptor, core.has_flags(BOUND))
    }

    /// Sets (`Some`) or clears (`None`) the socket's fixed *remote* address
    /// (`SIO_WSK_SET_REMOTE_ADDRESS`): [`send`](Self::send) then sends to
    /// it, and only datagrams **from** it are received. A
    /// [`send_to`](Self::send_to) to another address still works, but
    /// replies from there are not accepted. For a fixed destination that
    /// keeps receiving from anyone, see
    /// [`set_send_to_address`](Self::set_send_to_address).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded (the DDI requires a bound
    ///   socket).
    /// - Provider statuses, for example [`Error::INVALID_ADDRESS`] for an
    ///   address of another family; [`Error::NOT_IMPLEMENTED`] if the
    ///   provider lacks `WskControlSocket`.
    pub fn set_remote_address(&self, remote: Option<SocketAddr>) -> Request<FixedAddressOp<H>> {
        self.submit_fixed_address(sys::SIO_WSK_SET_REMOTE_ADDRESS, remote)
    }

    /// Sets (`Some`) or clears (`None`) the socket's fixed *destination*
    /// (`SIO_WSK_SET_SENDTO_ADDRESS`): [`send`](Self::send) then sends to
    /// it, while datagrams are still received from any address;
    /// [`send_to`](Self::send_to) overrides it per datagram.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`set_remote_address`](Self::set_remote_address).
    pub fn set_send_to_address(
        &self,
        destination: Option<SocketAddr>,
    ) -> Request<FixedAddressOp<H>> {
        self.submit_fixed_address(sys::SIO_WSK_SET_SENDTO_ADDRESS, destination)
    }

    fn submit_fixed_address(
        &self,
        ioctl: u32,
        addr: Option<SocketAddr>,
    ) -> Request<FixedAddressOp<H>> {
        let core = self.core();
        let op = FixedAddressOp {
            core: Arc::clone(core),
            addr: addr.map_or(SockAddr::UNSPECIFIED, SockAddr::from),
            set: addr.is_some(),
        };
        if !core.has_flags(BOUND) {
            return Request::failed(op, Error::ADDRESS_NOT_ASSOCIATED);
        }
        // SAFETY: the socket exists; every table starts with the basic one.
        let Some(control) =
            (unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let length = match addr {
            Some(SocketAddr::V4(_)) => size_of::<sys::SOCKADDR_IN>(),
            Some(SocketAddr::V6(_)) => size_of::<sys::SOCKADDR_IN6>(),
            None => 0,
        };
        let socket = core.socket();
        Request::submit(op, |irp, op| {
            let input = if op.set {
                op.addr.as_mut_ptr().cast()
            } else {
                core::ptr::null_mut()
            };
            // SAFETY: the socket exists; the address lives in the payload
            // until completion; no output; the IRP the DDI requires.
            unsafe {
                control(
                    socket,
                    sys::WskIoctl,
                    ioctl,
                    0,
                    length,
                    input,
                    0,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    irp,
                )
            }
        })
    }

    /// Receives one datagram into `buffer`'s whole capacity
    /// (`WskReceiveFrom`); resolves to what was received — its length,
    /// sender, flags ([`DatagramFlags::TRUNC`] if it did not fit) and up to
    /// [`RECEIVE_CONTROL_BYTES`] of control information — and the buffer,
    /// whose length is set accordingly.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - Provider statuses such as [`Error::CANCELLED`] (the request was
    ///   dropped or the socket closed).
    pub fn receive_from(&self, buffer: Buffer) -> Request<ReceiveFromOp<H>> {
        Request::prepared(self.prepare_receive_from(buffer))
    }

    /// [`receive_from`](Self::receive_from) with the memory of `slot` instead
    /// of a new allocation; see [`send_to_in`](Self::send_to_in).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`receive_from`](Self::receive_from) and
    /// [`send_to_in`](Self::send_to_in).
    #[inline]
    pub fn receive_from_in<'s>(
        &self,
        slot: &'s mut ReceiveFromSlot<H>,
        buffer: Buffer,
    ) -> SlotRequest<'s, ReceiveFromOp<H>> {
        SlotRequest::prepared(slot, self.prepare_receive_from(buffer))
    }

    /// The payload of a `WskReceiveFrom` and the call that starts it, or the
    /// payload and why the provider must not be called.
    #[inline]
    #[allow(clippy::result_large_err)] // the payload goes back whole; boxing it would allocate
    fn prepare_receive_from(
        &self,
        buffer: Buffer,
    ) -> Prepared<
        ReceiveFromOp<H>,
        impl FnOnce(sys::PIRP, &mut ReceiveFromOp<H>) -> sys::NTSTATUS + use<H>,
    > {
        let core = self.core();
        let op = ReceiveFromOp {
            _core: Arc::clone(core),
            wsk_buf: buffer.wsk_buf_capacity(),
            buffer,
            remote: SockAddr::UNSPECIFIED,
            #[allow(clippy::cast_possible_truncation)] // a small constant
            control_len: RECEIVE_CONTROL_BYTES as u32,
            control_flags: 0,
            control: ControlStorage([0; RECEIVE_CONTROL_BYTES]),
        };
        if !core.has_flags(BOUND) {
            return Err((op, Error::ADDRESS_NOT_ASSOCIATED));
        }
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskReceiveFrom);
        // SAFETY: the socket exists; a datagram table; `WskReceiveFrom`
        // exists in every version.
        let receive: sys::PFN_WSK_RECEIVE_FROM = unsafe { routine(core, offset) };
        let Some(receive) = receive else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        let socket = core.socket();
        Ok((op, move |irp, op: &mut ReceiveFromOp<H>| {
            let remote = op.remote.as_mut_ptr();
            let control = (&raw mut op.control).cast::<sys::CMSGHDR>();
            // SAFETY: the socket exists; the WSK_BUF, the buffer, the address,
            // the control length, storage (aligned for CMSGHDR) and flags all
            // live in the payload until completion.
            unsafe {
                receive(
                    socket,
                    &raw mut op.wsk_buf,
                    0,
                    remote,
                    &raw mut op.control_len,
                    control,
                    &raw mut op.control_flags,
                    irp,
                )
            }
        }))
    }

    /// Sends each buffer of `datagrams` as one datagram to `remote`, in one
    /// call (`WskSendMessages`, Windows 8 and later, over a `WSK_BUF_LIST`
    /// chain owned by the request); resolves to the total bytes sent and the
    /// buffers.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_SUPPORTED`] without calling the provider before
    ///   Windows 8 ([`Provider::windows_version`](crate::Provider::windows_version);
    ///   older providers' tables end before the routine), or if the provider
    ///   leaves it null.
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - [`Error::INVALID_PARAMETER`] for no buffers or an empty one.
    /// - [`Error::INSUFFICIENT_RESOURCES`] if the list cannot be allocated.
    /// - Provider statuses, as [`send_to`](Self::send_to).
    pub fn send_messages(
        &self,
        datagrams: Vec<Buffer>,
        remote: SocketAddr,
    ) -> Request<SendMessagesOp<H>> {
        let core = self.core();
        let mut op = SendMessagesOp {
            _core: Arc::clone(core),
            buffers: datagrams,
            list: Vec::new(),
            remote: SockAddr::from(remote),
        };
        if op.buffers.is_empty() || op.buffers.iter().any(Buffer::is_empty) {
            return Request::failed(op, Error::INVALID_PARAMETER);
        }
        if !core.has_flags(BOUND) {
            return Request::failed(op, Error::ADDRESS_NOT_ASSOCIATED);
        }
        if !core.provider.windows().at_least(WindowsVersion::WINDOWS_8) {
            return Request::failed(op, Error::NOT_SUPPORTED);
        }
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskSendMessages);
        // SAFETY: the socket exists; a datagram table, which has its Windows 8
        // field `WskSendMessages` (the system is Windows 8 or later).
        let send: sys::PFN_WSK_SEND_MESSAGES = unsafe { routine(core, offset) };
        let Some(send) = send else {
            return Request::failed(op, Error::NOT_SUPPORTED);
        };
        if op.list.try_reserve_exact(op.buffers.len()).is_err() {
            return Request::failed(op, Error::INSUFFICIENT_RESOURCES);
        }
        op.list
            .extend(op.buffers.iter().map(|buffer| sys::WSK_BUF_LIST {
                Next: core::ptr::null_mut(),
                Buffer: buffer.wsk_buf_data(),
            }));
        // Chain the nodes in place: the list's heap block never moves again
        // (nothing is pushed after this), moving the Vec does not move it.
        let base = op.list.as_mut_ptr();
        let count = op.list.len();
        for (i, node) in op.list.iter_mut().enumerate() {
            if i + 1 < count {
                node.Next = base.wrapping_add(i + 1);
            }
        }
        let socket = core.socket();
        Request::submit(op, |irp, op| {
            let head = op.list.as_mut_ptr();
            let remote = op.remote.as_mut_ptr();
            // SAFETY: the socket exists; the list, the buffers it describes
            // and the address live in the payload until completion; no
            // control information.
            unsafe { send(socket, head, 0, remote, 0, core::ptr::null_mut(), irp) }
        })
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
    /// - [`Error::INVALID_DEVICE_STATE`] at once if retained datagrams are
    ///   still held: the close then happens in the background when the last
    ///   one is released (the DDI forbids closing before).
    /// - The status of `WskCloseSocket`.
    pub fn close(mut self) -> Request<CloseOp<H>> {
        let core = self.core.take().unwrap_or_else(|| unreachable!());
        if core.begin_close() {
            submit_close(core)
        } else {
            // The last RetainedDatagrams submits the close.
            Request::ready(Err(Error::INVALID_DEVICE_STATE))
        }
    }
}

impl<H: DatagramEvents> Drop for DatagramSocket<H> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            close_in_background(core);
        }
    }
}

impl<H: DatagramEvents> core::fmt::Debug for DatagramSocket<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DatagramSocket")
            .field("bound", &self.is_bound())
            .finish_non_exhaustive()
    }
}

/// `WskBind` and `WskGetLocalAddress` on a datagram socket.
pub struct DatagramAddressOp<H> {
    core: Arc<SocketCore<H>>,
    addr: SockAddr,
    bind: bool,
}

impl<H: Send + Sync + 'static> Operation for DatagramAddressOp<H> {
    /// The address bound to, or the one queried.
    type Output = Result<SocketAddr>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<SocketAddr> {
        Error::check(status)?;
        if self.bind {
            self.core.set_flags(BOUND);
        }
        self.addr.to_socket_addr()
    }
}

/// The memory of one `WskSendTo` at a time, reused by
/// [`DatagramSocket::send_to_in`].
pub type SendToSlot<H = NoDatagramEvents> = RequestSlot<SendToOp<H>>;

/// The memory of one `WskReceiveFrom` at a time, reused by
/// [`DatagramSocket::receive_from_in`].
pub type ReceiveFromSlot<H = NoDatagramEvents> = RequestSlot<ReceiveFromOp<H>>;

/// `WskSendTo`.
pub struct SendToOp<H> {
    _core: Arc<SocketCore<H>>,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    remote: SockAddr,
    /// Whether `remote` is passed (otherwise the fixed destination is used).
    has_remote: bool,
}

// SAFETY: the WSK_BUF points into the owned buffer; moving the op between
// threads moves both.
unsafe impl<H: Send + Sync> Send for SendToOp<H> {}

impl<H: Send + Sync + 'static> Operation for SendToOp<H> {
    /// Bytes sent, and the buffer.
    type Output = (Result<usize>, Buffer);
    fn complete(self, status: sys::NTSTATUS, information: usize) -> Self::Output {
        match Error::check(status) {
            Ok(_) => (Ok(information.min(self.buffer.len())), self.buffer),
            Err(e) => (Err(e), self.buffer),
        }
    }
}

/// `SIO_WSK_SET_REMOTE_ADDRESS` / `SIO_WSK_SET_SENDTO_ADDRESS`.
pub struct FixedAddressOp<H> {
    core: Arc<SocketCore<H>>,
    addr: SockAddr,
    /// Set (`true`) or clear.
    set: bool,
}

impl<H: Send + Sync + 'static> Operation for FixedAddressOp<H> {
    type Output = Result<()>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<()> {
        Error::check(status)?;
        if self.set {
            self.core.set_flags(FIXED_DESTINATION);
        } else {
            self.core.clear_flags(FIXED_DESTINATION);
        }
        Ok(())
    }
}

/// Inline storage for received control information, aligned for `CMSGHDR`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlStorage([u8; RECEIVE_CONTROL_BYTES]);

const _: () = assert!(align_of::<ControlStorage>() >= align_of::<sys::CMSGHDR>());

/// `WskReceiveFrom`.
pub struct ReceiveFromOp<H> {
    _core: Arc<SocketCore<H>>,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    remote: SockAddr,
    control_len: sys::ULONG,
    control_flags: sys::ULONG,
    control: ControlStorage,
}

// SAFETY: as SendToOp.
unsafe impl<H: Send + Sync> Send for ReceiveFromOp<H> {}

impl<H: Send + Sync + 'static> Operation for ReceiveFromOp<H> {
    /// What was received, and the buffer.
    type Output = (Result<ReceivedFrom>, Buffer);
    fn complete(mut self, status: sys::NTSTATUS, information: usize) -> Self::Output {
        // A provider may report a truncated datagram as STATUS_BUFFER_OVERFLOW.
        let overflow = status == sys::STATUS_BUFFER_OVERFLOW;
        if !overflow {
            if let Err(e) = Error::check(status) {
                return (Err(e), self.buffer);
            }
        }
        let len = information.min(self.buffer.capacity());
        self.buffer.set_len(len);
        let remote = match self.remote.to_socket_addr() {
            Ok(remote) => remote,
            Err(e) => return (Err(e), self.buffer),
        };
        let mut flags = DatagramFlags::from_bits_retain(self.control_flags);
        if overflow {
            flags |= DatagramFlags::TRUNC;
        }
        let received = ReceivedFrom {
            len,
            remote,
            flags,
            control_len: (self.control_len as usize).min(RECEIVE_CONTROL_BYTES),
            control: self.control,
        };
        (Ok(received), self.buffer)
    }
}

/// What a [`receive_from`](DatagramSocket::receive_from) request received.
#[derive(Clone, Copy)]
pub struct ReceivedFrom {
    len: usize,
    remote: SocketAddr,
    flags: DatagramFlags,
    control_len: usize,
    control: ControlStorage,
}

impl ReceivedFrom {
    /// Bytes received into the buffer (at most its capacity).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the datagram was empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sender.
    #[must_use]
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The `*ControlFlags` the provider reported: [`DatagramFlags::TRUNC`]
    /// (the datagram did not fit the buffer), [`DatagramFlags::CTRUNC`] (nor
    /// did its control information), [`DatagramFlags::BCAST`],
    /// [`DatagramFlags::MCAST`].
    #[must_use]
    pub fn flags(&self) -> DatagramFlags {
        self.flags
    }

    /// The control information received: `CMSGHDR`-headed control data
    /// objects, at most [`RECEIVE_CONTROL_BYTES`] (empty when there is none).
    #[must_use]
    pub fn control_info(&self) -> &[u8] {
        &self.control.0[..self.control_len]
    }
}

impl core::fmt::Debug for ReceivedFrom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReceivedFrom")
            .field("len", &self.len)
            .field("remote", &self.remote)
            .field("flags", &self.flags)
            .field("control_len", &self.control_len)
            .finish_non_exhaustive()
    }
}

/// `WskSendMessages`.
pub struct SendMessagesOp<H> {
    _core: Arc<SocketCore<H>>,
    buffers: Vec<Buffer>,
    /// One node per buffer, chained through `Next`; points into `buffers`.
    list: Vec<sys::WSK_BUF_LIST>,
    remote: SockAddr,
}

// SAFETY: the list points into itself and the owned buffers; moving the op
// between threads moves all of them (their heap blocks stay put).
unsafe impl<H: Send + Sync> Send for SendMessagesOp<H> {}

impl<H: Send + Sync + 'static> Operation for SendMessagesOp<H> {
    /// Total bytes sent, and the buffers.
    type Output = (Result<usize>, Vec<Buffer>);
    fn complete(self, status: sys::NTSTATUS, information: usize) -> Self::Output {
        match Error::check(status) {
            Ok(_) => (Ok(information), self.buffers),
            Err(e) => (Err(e), self.buffers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::DatagramIndication;

    struct Receiver;
    #[crate::vtable]
    impl DatagramEvents for Receiver {
        fn on_receive_from(
            &self,
            _: &EventContext<'_>,
            _: Option<DatagramIndication<'_>>,
        ) -> DatagramAction {
            DatagramAction::Accept
        }
    }

    #[test]
    fn vtable_installs_and_enables_only_implemented_callbacks() {
        const { assert!(Receiver::HAS_RECEIVE_FROM && !NoDatagramEvents::HAS_RECEIVE_FROM) };
        assert!(
            DatagramVtable::<Receiver>::DISPATCH
                .WskReceiveFromEvent
                .is_some()
        );
        assert_eq!(
            DatagramVtable::<Receiver>::EVENT_MASK,
            sys::WSK_EVENT_RECEIVE_FROM
        );
        assert_eq!(DatagramVtable::<NoDatagramEvents>::EVENT_MASK, 0);
        assert!(DatagramVtable::<NoDatagramEvents>::dispatch_ptr().is_null());
        let a = DatagramVtable::<Receiver>::dispatch_ptr();
        assert!(!a.is_null());
        assert_eq!(a, DatagramVtable::<Receiver>::dispatch_ptr());
    }
}
