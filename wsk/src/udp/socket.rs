//! Datagram sockets (`WSK_FLAG_DATAGRAM_SOCKET`): the socket type and its
//! control requests; sending and receiving are in [`transfer`](super::transfer).
//!
//! A datagram socket must be bound ([`DatagramSocket::bind`], or
//! [`udp::bind`](crate::udp::bind) which also enables events) before it
//! sends or receives; until then those requests fail with
//! [`Error::ADDRESS_NOT_ASSOCIATED`] without reaching the provider (events
//! and the local address with [`Error::INVALID_DEVICE_STATE`]).

use core::mem::offset_of;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::events::{DatagramEvents, DatagramVtable, NoDatagramEvents};
use crate::addr::{AddressFamily, SockAddr};
use crate::core_ref::CoreRef;
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;
use crate::options::{SocketOption, is_conditional_accept};
use crate::provider::client::Provider;
use crate::provider::control::CachedSecurityDescriptor;
use crate::provider::npi::LiveHandle;
use crate::socket::calls::{
    AddressCall, AddressOp, ControlOp, SecurityOp, disable_events, enable_events, get_option,
    set_option, submit_address, submit_security,
};
use crate::socket::close::{CloseOp, close, close_in_background};
use crate::socket::core::{BOUND, EVENTS_ON, FIXED_REMOTE, FIXED_SENDTO, SocketCore, SocketRef};
use crate::socket::create::{CreateOp, How, Kind, Socket, submit_create};

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
    core: Option<CoreRef<SocketCore<H>>>,
    _live: LiveHandle,
}

impl<H: DatagramEvents> Socket for DatagramSocket<H> {
    type Handler = H;

    #[allow(private_interfaces)]
    fn from_core(core: CoreRef<SocketCore<H>>, live: LiveHandle) -> Self {
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
    pub(crate) fn core(&self) -> &CoreRef<SocketCore<H>> {
        // Only `close` takes the core, and it consumes the handle.
        self.core.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// A handler-free reference to the core, for a request's payload.
    #[inline]
    pub(super) fn erased(&self) -> SocketRef {
        SocketCore::erase(self.core())
    }

    /// A routine of the socket's provider table, read on its own (datagram
    /// tables grew over Windows versions).
    ///
    /// # Safety
    ///
    /// `offset` is the offset of a field of type `F` that the running
    /// provider's datagram table has.
    pub(super) unsafe fn routine<F: Copy>(&self, offset: usize) -> F {
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
    /// [`Error::INSUFFICIENT_RESOURCES`] (also without a provider call when no memory is left for the socket's state or its request) or [`Error::NOT_SUPPORTED`].
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
    /// handler without callbacks). The socket must be bound. Also what
    /// resumes indications after the callback refused datagrams
    /// ([`DatagramAction::Refuse`](crate::events::DatagramAction::Refuse)),
    /// which disables the event.
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
        enable_events(&**self.core(), DatagramVtable::<H>::EVENT_MASK, BOUND)
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
        disable_events(&**self.core(), DatagramVtable::<H>::EVENT_MASK, BOUND)
    }

    /// Whether the handler's callback is enabled:
    /// [`enable_events`](Self::enable_events) succeeded (and neither
    /// [`disable_events`](Self::disable_events) was called since nor did the
    /// callback refuse datagrams, which disables it:
    /// [`DatagramAction::Refuse`](crate::events::DatagramAction::Refuse)).
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
        const {
            assert!(
                !is_conditional_accept::<O>(),
                "SO_CONDITIONAL_ACCEPT is for listening sockets only"
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
        submit_address(self.erased(), AddressCall::Bind(bind), Some(local), 0)
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
        submit_address(self.erased(), AddressCall::Query(query), None, BOUND)
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
    /// anyone are received again, and [`send`](Self::send) goes to the
    /// fixed destination of [`set_destination`](Self::set_destination) if
    /// there is one, and is refused otherwise.
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
            flag: if ioctl == sys::SIO_WSK_SET_REMOTE_ADDRESS {
                FIXED_REMOTE
            } else {
                FIXED_SENDTO
            },
        };
        if !core.has_flags(BOUND) {
            return Request::failed(op, Error::ADDRESS_NOT_ASSOCIATED);
        }
        if let Some(Err(e)) = addr.map(|a| core.check_family(&a)) {
            return Request::failed(op, e);
        }
        let entered = match core.enter(BOUND) {
            Ok(entered) => entered,
            Err(e) => return Request::failed(op, e),
        };
        // SAFETY: the socket exists; every table starts with the basic one.
        let Some(control) =
            (unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
        else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let length = op.addr.len();
        let socket = core.socket();
        let _entered = entered;
        Request::submit(op, |irp, op| {
            let op = op.into_mut();
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

/// `SIO_WSK_SET_REMOTE_ADDRESS` / `SIO_WSK_SET_SENDTO_ADDRESS`.
pub struct FixedAddressOp {
    core: SocketRef,
    addr: SockAddr,
    /// Set (`true`) or clear.
    set: bool,
    /// The flag of this IOCTL's address (`FIXED_REMOTE` or `FIXED_SENDTO`).
    flag: u32,
}

impl Operation for FixedAddressOp {
    type Output = Result<()>;
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
    fn complete(self, status: i32, _information: usize) -> Result<()> {
        self.core.note_status(status);
        Error::check(status)?;
        if self.set {
            self.core.set_flags(self.flag);
        } else {
            self.core.clear_flags(self.flag);
        }
        Ok(())
    }
}
