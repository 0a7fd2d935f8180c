//! Datagram sockets (`WSK_FLAG_DATAGRAM_SOCKET`): the socket type and its
//! requests.
//!
//! A datagram socket must be bound ([`DatagramSocket::bind`], or
//! [`udp::bind`](crate::udp::bind) which also enables events) before it
//! sends or receives; until then those requests fail with
//! [`Error::ADDRESS_NOT_ASSOCIATED`] without reaching the provider.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::mem::offset_of;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::events::{DatagramEvents, DatagramFlags, DatagramVtable, NoDatagramEvents};
use crate::addr::{AddressFamily, SockAddr};
use crate::buffer::{BufResult, Buffer};
use crate::error::{Error, Result};
use crate::irp::block::Operation;
use crate::irp::handle::{Prepared, Request, RequestSlot, SlotRequest};
use crate::options::SocketOption;
use crate::provider::client::Provider;
use crate::provider::control::CachedSecurityDescriptor;
use crate::provider::npi::LiveHandle;
use crate::provider::version::WindowsVersion;
use crate::socket::calls::{
    AddressCall, AddressOp, CloseOp, ControlOp, SecurityOp, close, close_in_background,
    disable_events, enable_events, get_option, set_option, submit_address, submit_security,
};
use crate::socket::core::{BOUND, EVENTS_ON, FIXED_DESTINATION, SocketCore, SocketRef};
use crate::socket::create::{CreateOp, How, Kind, Socket, submit_create};

/// Bytes of control information (`CMSGHDR` objects) a
/// [`receive_from`](DatagramSocket::receive_from) request can return, kept
/// inline in the request.
pub const RECEIVE_CONTROL_BYTES: usize = 64;

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
/// use wsk::events::NoDatagramEvents;
/// use wsk::{block_on, Buffer, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let local = "10.0.0.1:5353".parse().unwrap();
/// let socket = block_on(&passive, wsk::udp::bind(&provider, local, NoDatagramEvents))?;
/// let (sent, buffer) = socket
///     .send_to(Buffer::from_slice(b"query")?, "10.0.0.2:53".parse().unwrap())
///     .wait(&passive);
/// assert_eq!(sent?, 5);
/// # let (from, data) = peer.recv_from();
/// # peer.send_to(&from.to_string(), b"answer");
/// let (received, buffer) = socket.receive_from(buffer).wait(&passive);
/// let received = received?;
/// assert_eq!(received.peer_addr(), "10.0.0.2:53".parse().unwrap());
/// assert_eq!(&buffer[..], b"answe"); // truncated to the capacity
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

impl<H: DatagramEvents> Socket for DatagramSocket<H> {
    type Handler = H;

    #[allow(private_interfaces)]
    fn from_core(core: Arc<SocketCore<H>>, live: LiveHandle) -> Self {
        Self {
            core: Some(core),
            _live: live,
        }
    }

    fn close_request(self) -> Request<CloseOp> {
        self.close()
    }
}

impl<H: DatagramEvents> DatagramSocket<H> {
    pub(crate) fn core(&self) -> &Arc<SocketCore<H>> {
        // Only `close` takes the core, and it consumes the handle.
        self.core.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// A handler-free reference to the core, for a request's payload.
    #[inline]
    fn erased(&self) -> SocketRef {
        SocketCore::erase(self.core())
    }

    /// A routine of the socket's provider table, read on its own (datagram
    /// tables grew over Windows versions).
    ///
    /// # Safety
    ///
    /// `offset` is the offset of a field of type `F` that the running
    /// provider's datagram table has.
    unsafe fn routine<F: Copy>(&self, offset: usize) -> F {
        // SAFETY: the socket exists (a handle exists only after creation);
        // the field exists (caller contract).
        unsafe { self.core().routine(offset) }
    }

    /// Creates a datagram socket for `family` (`WskSocket` with
    /// `WSK_FLAG_DATAGRAM_SOCKET`, `SOCK_DGRAM`, `IPPROTO_UDP`), installing
    /// `handler`'s callback. Bind it, then
    /// [`enable_events`](Self::enable_events) — or use
    /// [`udp::bind`](crate::udp::bind), which does all of it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The request resolves to the status of `WskSocket`, for example
    /// [`Error::INSUFFICIENT_RESOURCES`] or [`Error::NOT_SUPPORTED`].
    pub fn new(provider: &Provider, family: AddressFamily, handler: H) -> Request<CreateOp<Self>> {
        let kind = Kind {
            flags: sys::WSK_FLAG_DATAGRAM_SOCKET,
            dispatch: DatagramVtable::<H>::dispatch_ptr().cast(),
            events: DatagramVtable::<H>::EVENT_MASK,
        };
        submit_create(provider, handler, kind, How::Socket(family))
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
        enable_events(&**self.core(), DatagramVtable::<H>::EVENT_MASK)
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
        disable_events(&**self.core(), DatagramVtable::<H>::EVENT_MASK)
    }

    /// Whether the handler's callback is enabled:
    /// [`enable_events`](Self::enable_events) succeeded (and
    /// [`disable_events`](Self::disable_events) was not called since).
    /// `false` for a handler without callback, and for a socket
    /// [`udp::bind`](crate::udp::bind) opened on a provider without event
    /// support (Wine's): receive with [`receive_from`](Self::receive_from)
    /// there.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn events_enabled(&self) -> bool {
        self.core().has_flags(EVENTS_ON)
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
    pub fn bind(&self, local: SocketAddr) -> Request<AddressOp> {
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskBind);
        // SAFETY: `WskBind` exists in every version of the table.
        let bind: sys::PFN_WSK_BIND = unsafe { self.routine(offset) };
        submit_address(self.erased(), AddressCall::Bind(bind), Some(local))
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
    pub fn local_addr(&self) -> Request<AddressOp> {
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskGetLocalAddress);
        // SAFETY: `WskGetLocalAddress` exists in every version of the table.
        let query: sys::PFN_WSK_GET_LOCAL_ADDRESS = unsafe { self.routine(offset) };
        submit_address(self.erased(), AddressCall::Query(query), None)
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
    pub fn send_to(&self, buffer: Buffer, remote: SocketAddr) -> Request<SendToOp> {
        Request::prepared(self.prepare_send_to(buffer, Some(remote)))
    }

    /// [`send_to`](Self::send_to) with the memory of `slot` instead of a new
    /// allocation: a stream of datagrams sent through one slot allocates
    /// nothing. The request borrows the slot until it completes; see
    /// [`RequestSlot`](crate::request::RequestSlot).
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
        slot: &'s mut SendToSlot,
        buffer: Buffer,
        remote: SocketAddr,
    ) -> SlotRequest<'s, SendToOp> {
        SlotRequest::prepared(slot, self.prepare_send_to(buffer, Some(remote)))
    }

    /// Sends the bytes of `buffer` as one datagram to the socket's fixed
    /// destination (`WskSendTo` without a `RemoteAddress`), set with
    /// [`connect`](Self::connect) or
    /// [`set_destination`](Self::set_destination); resolves to the
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
    pub fn send(&self, buffer: Buffer) -> Request<SendToOp> {
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
    ) -> Prepared<SendToOp, impl FnOnce(sys::PIRP, &mut SendToOp) -> sys::NTSTATUS + use<H>> {
        let core = self.core();
        let op = SendToOp {
            _core: SocketCore::erase(core),
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
        let send: sys::PFN_WSK_SEND_TO = unsafe { self.routine(offset) };
        let Some(send) = send else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        let socket = core.socket();
        Ok((op, move |irp, op: &mut SendToOp| {
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
    /// precede the bind: create the socket with [`new`](Self::new),
    /// set this, then [`bind`](Self::bind).
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

    /// Sets the socket's fixed remote address (`SIO_WSK_SET_REMOTE_ADDRESS`),
    /// as std's `UdpSocket::connect` does: [`send`](Self::send) then sends to
    /// it, and only datagrams **from** it are received. A
    /// [`send_to`](Self::send_to) to another address still works, but
    /// replies from there are not accepted. [`disconnect`](Self::disconnect)
    /// clears it. For a fixed destination that keeps receiving from anyone,
    /// see [`set_destination`](Self::set_destination).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-remote-address>
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
    pub fn connect(&self, remote: SocketAddr) -> Request<FixedAddressOp> {
        self.submit_fixed_address(sys::SIO_WSK_SET_REMOTE_ADDRESS, Some(remote))
    }

    /// Clears the fixed remote address [`connect`](Self::connect) set
    /// (`SIO_WSK_SET_REMOTE_ADDRESS` without an address): datagrams from
    /// anyone are received again, and [`send`](Self::send) has no
    /// destination.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn disconnect(&self) -> Request<FixedAddressOp> {
        self.submit_fixed_address(sys::SIO_WSK_SET_REMOTE_ADDRESS, None)
    }

    /// Sets (`Some`) or clears (`None`) the socket's fixed *destination*
    /// (`SIO_WSK_SET_SENDTO_ADDRESS`): [`send`](Self::send) then sends to
    /// it, while datagrams are still received from any address;
    /// [`send_to`](Self::send_to) overrides it per datagram.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-sendto-address>
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub fn set_destination(&self, destination: Option<SocketAddr>) -> Request<FixedAddressOp> {
        self.submit_fixed_address(sys::SIO_WSK_SET_SENDTO_ADDRESS, destination)
    }

    fn submit_fixed_address(
        &self,
        ioctl: u32,
        addr: Option<SocketAddr>,
    ) -> Request<FixedAddressOp> {
        let core = self.core();
        let op = FixedAddressOp {
            core: SocketCore::erase(core),
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
        let length = op.addr.len();
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
    pub fn receive_from(&self, buffer: Buffer) -> Request<ReceiveFromOp> {
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
        slot: &'s mut ReceiveFromSlot,
        buffer: Buffer,
    ) -> SlotRequest<'s, ReceiveFromOp> {
        SlotRequest::prepared(slot, self.prepare_receive_from(buffer))
    }

    /// The payload of a `WskReceiveFrom` and the call that starts it, or the
    /// payload and why the provider must not be called.
    #[inline]
    #[allow(clippy::result_large_err)] // the payload goes back whole; boxing it would allocate
    fn prepare_receive_from(
        &self,
        buffer: Buffer,
    ) -> Prepared<ReceiveFromOp, impl FnOnce(sys::PIRP, &mut ReceiveFromOp) -> sys::NTSTATUS + use<H>>
    {
        let core = self.core();
        let op = ReceiveFromOp {
            _core: SocketCore::erase(core),
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
        let receive: sys::PFN_WSK_RECEIVE_FROM = unsafe { self.routine(offset) };
        let Some(receive) = receive else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        let socket = core.socket();
        Ok((op, move |irp, op: &mut ReceiveFromOp| {
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
    ///   Windows 8 ([`Provider::windows_version`];
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
    ) -> Request<SendMessagesOp> {
        let core = self.core();
        let mut op = SendMessagesOp {
            _core: SocketCore::erase(core),
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
        let send: sys::PFN_WSK_SEND_MESSAGES = unsafe { self.routine(offset) };
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
    pub fn close(mut self) -> Request<CloseOp> {
        let core = self.core.take().unwrap_or_else(|| unreachable!());
        close(SocketCore::erase(&core))
    }
}

impl<H: DatagramEvents> Drop for DatagramSocket<H> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            close_in_background(SocketCore::erase(&core));
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

/// The memory of one `WskSendTo` at a time, reused by
/// [`DatagramSocket::send_to_in`] of any datagram socket.
pub type SendToSlot = RequestSlot<SendToOp>;

/// The memory of one `WskReceiveFrom` at a time, reused by
/// [`DatagramSocket::receive_from_in`] of any datagram socket.
pub type ReceiveFromSlot = RequestSlot<ReceiveFromOp>;

/// `WskSendTo`.
pub struct SendToOp {
    _core: SocketRef,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    remote: SockAddr,
    /// Whether `remote` is passed (otherwise the fixed destination is used).
    has_remote: bool,
}

// SAFETY: the WSK_BUF points into the owned buffer; moving the op between
// threads moves both.
unsafe impl Send for SendToOp {}

impl Operation for SendToOp {
    /// Bytes sent, and the buffer.
    type Output = BufResult<usize>;
    fn complete(self, status: i32, information: usize) -> Self::Output {
        match Error::check(status) {
            Ok(_) => (Ok(information.min(self.buffer.len())), self.buffer),
            Err(e) => (Err(e), self.buffer),
        }
    }
}

/// `SIO_WSK_SET_REMOTE_ADDRESS` / `SIO_WSK_SET_SENDTO_ADDRESS`.
pub struct FixedAddressOp {
    core: SocketRef,
    addr: SockAddr,
    /// Set (`true`) or clear.
    set: bool,
}

impl Operation for FixedAddressOp {
    type Output = Result<()>;
    fn complete(self, status: i32, _information: usize) -> Result<()> {
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
pub struct ReceiveFromOp {
    _core: SocketRef,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    remote: SockAddr,
    control_len: sys::ULONG,
    control_flags: sys::ULONG,
    control: ControlStorage,
}

// SAFETY: as SendToOp.
unsafe impl Send for ReceiveFromOp {}

impl Operation for ReceiveFromOp {
    /// What was received, and the buffer.
    type Output = BufResult<ReceivedFrom>;
    fn complete(mut self, status: i32, information: usize) -> Self::Output {
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
    pub fn peer_addr(&self) -> SocketAddr {
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
pub struct SendMessagesOp {
    _core: SocketRef,
    buffers: Vec<Buffer>,
    /// One node per buffer, chained through `Next`; points into `buffers`.
    list: Vec<sys::WSK_BUF_LIST>,
    remote: SockAddr,
}

// SAFETY: the list points into itself and the owned buffers; moving the op
// between threads moves all of them (their heap blocks stay put).
unsafe impl Send for SendMessagesOp {}

impl Operation for SendMessagesOp {
    /// Total bytes sent, and the buffers.
    type Output = (Result<usize>, Vec<Buffer>);
    fn complete(self, status: i32, information: usize) -> Self::Output {
        match Error::check(status) {
            Ok(_) => (Ok(information), self.buffers),
            Err(e) => (Err(e), self.buffers),
        }
    }
}
