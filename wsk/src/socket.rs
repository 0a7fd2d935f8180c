//! What every socket kind shares: the core that outlives the handle until
//! `WskCloseSocket` completes, closing, and socket control.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use wsk_sys as sys;

use core::net::SocketAddr;

use crate::addr::SockAddr;
use crate::registration::{LiveHandle, ProviderInner};
use crate::request::{Operation, Request};
use crate::stream::StreamViews;
use crate::{Error, Result};

/// `gate` bit: closing has begun; no new retention is allowed.
const CLOSING: usize = 1 << (usize::BITS - 1);

/// `flags` bit: this side aborted the connection.
pub(crate) const ABORTED: u32 = 1 << 0;
/// `peer_disconnect` bit: a disconnect event arrived (its flags are the rest).
const PEER_DISCONNECTED: u32 = 1 << 31;
/// `flags` bit: the socket is being offered to an accept callback, which
/// has not returned yet.
pub(crate) const ACCEPTING: u32 = 1 << 2;
/// `flags` bit: the handle was dropped or closed during the accept callback.
const CLOSED_IN_ACCEPT: u32 = 1 << 3;
/// `flags` bit: a bind was submitted (or the socket came bound: accepted or
/// created by `WskSocketConnect`); options that must precede the bind are
/// refused from then on.
pub(crate) const BOUND: u32 = 1 << 8;

/// The state of one WSK socket shared by its handle, its requests and the
/// provider's callbacks (whose `SocketContext` is this struct's address).
///
/// # Invariants
///
/// - The core is always inside an `Arc`; the provider's `SocketContext` is
///   `Arc::as_ptr`. One strong reference is held by whoever will submit
///   `WskCloseSocket` and dropped only when it completes, so callbacks never
///   see a freed core.
/// - `socket` is null until the socket exists, then fixed.
/// - `gate` counts retained indications plus the `CLOSING` bit; the party that
///   brings it to exactly `CLOSING` submits the close.
pub(crate) struct SocketCore<H> {
    socket: AtomicPtr<sys::WSK_SOCKET>,
    pub(crate) provider: Arc<ProviderInner>,
    gate: AtomicUsize,
    flags: AtomicU32,
    /// The last disconnect event's flags with `PEER_DISCONNECTED`, written by
    /// the event trampoline alone: a plain store keeps the event path as
    /// cheap as a hand-written callback's.
    peer_disconnect: AtomicU32,
    pub(crate) handler: H,
}

impl<H: Send + Sync + 'static> SocketCore<H> {
    pub(crate) fn new(provider: Arc<ProviderInner>, handler: H) -> Self {
        Self {
            socket: AtomicPtr::new(core::ptr::null_mut()),
            provider,
            gate: AtomicUsize::new(0),
            flags: AtomicU32::new(0),
            peer_disconnect: AtomicU32::new(0),
            handler,
        }
    }

    /// The socket context to hand to the provider.
    pub(crate) fn context(this: &Arc<Self>) -> sys::PVOID {
        Arc::as_ptr(this).cast_mut().cast()
    }

    /// The WSK socket (null before creation completes).
    pub(crate) fn socket(&self) -> sys::PWSK_SOCKET {
        self.socket.load(Ordering::Acquire)
    }

    pub(crate) fn set_socket(&self, socket: sys::PWSK_SOCKET) {
        self.socket.store(socket, Ordering::Release);
    }

    /// The provider's dispatch table of this socket, viewed as `T`.
    ///
    /// # Safety
    ///
    /// The socket exists and `T` is the dispatch table type of its kind.
    ///
    /// A stream socket's table (`WSK_PROVIDER_STREAM_DISPATCH`, learned when
    /// this crate created one) is seen through its connection or listen view
    /// (see [`StreamTables`](crate::stream::StreamTables)), so the connection
    /// and listen code works on stream sockets, and on the sockets a stream
    /// listener accepts, unchanged.
    pub(crate) unsafe fn dispatch<T: ProviderTable>(&self) -> &T {
        // SAFETY: per the caller, the socket exists.
        let table = unsafe { (*self.socket()).Dispatch };
        if let Some(view) = self
            .provider
            .stream_tables
            .find(table)
            .and_then(T::stream_view)
        {
            return view;
        }
        if let Some(view) = T::short_table_copy(&self.provider, table) {
            return view;
        }
        // SAFETY: per the caller, the table is a `T`, valid while the socket is.
        unsafe { &*table.cast::<T>() }
    }

    pub(crate) fn set_flags(&self, bits: u32) {
        self.flags.fetch_or(bits, Ordering::AcqRel);
    }

    pub(crate) fn clear_flags(&self, bits: u32) {
        self.flags.fetch_and(!bits, Ordering::AcqRel);
    }

    pub(crate) fn has_flags(&self, bits: u32) -> bool {
        self.flags.load(Ordering::Acquire) & bits != 0
    }

    /// Records a disconnect event (its `Flags`).
    ///
    /// Relaxed suffices: a send that misses a reset that has just happened
    /// gets the provider's error instead of ours.
    #[inline]
    pub(crate) fn record_peer_disconnect(&self, flags: u32) {
        self.peer_disconnect
            .store(flags | PEER_DISCONNECTED, Ordering::Relaxed);
    }

    /// The flags of the peer's disconnect event, if one arrived.
    pub(crate) fn peer_disconnect(&self) -> Option<u32> {
        let flags = self.peer_disconnect.load(Ordering::Relaxed);
        (flags & PEER_DISCONNECTED != 0).then_some(flags & !PEER_DISCONNECTED)
    }

    /// Whether either side aborted the connection.
    pub(crate) fn is_aborted(&self) -> bool {
        self.has_flags(ABORTED)
            || self
                .peer_disconnect()
                .is_some_and(|f| f & sys::WSK_FLAG_ABORTIVE != 0)
    }

    /// Ends the accept callback's window; true if the handle was dropped or
    /// closed inside it (the connection must then be rejected).
    pub(crate) fn finish_accept(&self) -> bool {
        self.flags.fetch_and(!ACCEPTING, Ordering::AcqRel) & CLOSED_IN_ACCEPT != 0
    }

    /// Records a close requested inside the accept callback; true if that is
    /// the case (the caller must then not close the socket itself).
    pub(crate) fn close_in_accept(&self) -> bool {
        let mut current = self.flags.load(Ordering::Acquire);
        while current & ACCEPTING != 0 {
            match self.flags.compare_exchange_weak(
                current,
                current | CLOSED_IN_ACCEPT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// Counts a retained indication unless closing has begun.
    pub(crate) fn try_retain(&self) -> bool {
        let mut current = self.gate.load(Ordering::Relaxed);
        loop {
            if current & CLOSING != 0 {
                return false;
            }
            match self.gate.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Uncounts a retained indication; true if the caller must now submit the
    /// deferred close.
    pub(crate) fn end_retain(&self) -> bool {
        self.gate.fetch_sub(1, Ordering::AcqRel) == CLOSING + 1
    }

    /// Marks the socket closing; true if no retained indication is
    /// outstanding, so the caller must submit the close now.
    pub(crate) fn begin_close(&self) -> bool {
        self.gate.fetch_or(CLOSING, Ordering::AcqRel) == 0
    }
}

/// A provider socket dispatch table type, and its view of a stream socket's
/// table (`None`: not applicable to stream sockets).
pub(crate) trait ProviderTable: Sized {
    /// This table as a view of a stream socket's table.
    fn stream_view(views: &StreamViews) -> Option<&Self>;

    /// A complete copy of `table` when the running Windows' tables of this
    /// type are shorter than the structure (so that no reference to the
    /// whole structure is made over a shorter table); `None` when `table`
    /// can be used directly.
    fn short_table_copy(
        provider: &ProviderInner,
        table: *const core::ffi::c_void,
    ) -> Option<&Self> {
        let _ = (provider, table);
        None
    }
}

impl ProviderTable for sys::WSK_PROVIDER_BASIC_DISPATCH {
    fn stream_view(views: &StreamViews) -> Option<&Self> {
        Some(&views.connection.Basic)
    }
}

impl ProviderTable for sys::WSK_PROVIDER_CONNECTION_DISPATCH {
    fn stream_view(views: &StreamViews) -> Option<&Self> {
        Some(&views.connection)
    }

    /// Before Windows 10 1803 connection tables end before `WskSendEx`
    /// (before 1703, before `WskConnectEx`).
    fn short_table_copy(
        provider: &ProviderInner,
        table: *const core::ffi::c_void,
    ) -> Option<&Self> {
        let windows = provider.windows();
        if windows.at_least(crate::WindowsVersion::WINDOWS_10_1803) {
            return None;
        }
        // SAFETY: only connection sockets' tables are read as connection
        // tables (stream tables were found above); valid while the NPI is
        // captured, which `provider` keeps.
        Some(unsafe { provider.stream_tables.connection_copy(table, windows) })
    }
}

impl ProviderTable for sys::WSK_PROVIDER_LISTEN_DISPATCH {
    fn stream_view(views: &StreamViews) -> Option<&Self> {
        Some(&views.listen)
    }
}

impl ProviderTable for sys::WSK_PROVIDER_DATAGRAM_DISPATCH {
    fn stream_view(_views: &StreamViews) -> Option<&Self> {
        None
    }
}

/// Submits `WskCloseSocket` for `core`.
///
/// The request holds the core until the provider completes the close, since
/// callbacks may run until then.
pub(crate) fn submit_close<H: Send + Sync + 'static>(
    core: Arc<SocketCore<H>>,
) -> Request<CloseOp<H>> {
    let socket = core.socket();
    if socket.is_null() {
        return Request::ready(Ok(()));
    }
    // SAFETY: the socket exists; every socket kind's table starts with the basic one.
    let close = unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }.WskCloseSocket;
    let Some(close) = close else {
        return Request::failed(CloseOp { _core: core }, Error::NOT_IMPLEMENTED);
    };
    Request::submit(CloseOp { _core: core }, |irp, _| {
        // SAFETY: the socket exists and no other call on it is in progress
        // from this handle; the payload keeps its core alive until completion.
        unsafe { close(socket, irp) }
    })
}

/// Starts closing a socket whose handle is gone; the close completes in the
/// background, or when the last retained indication is released.
pub(crate) fn close_in_background<H: Send + Sync + 'static>(core: Arc<SocketCore<H>>) {
    if core.close_in_accept() {
        // The accept trampoline rejects the connection instead.
        return;
    }
    if core.begin_close() {
        submit_close(core).detach();
    }
    // Otherwise the last RetainedIndication submits it (and holds a reference).
}

/// `WskCloseSocket`.
pub struct CloseOp<H> {
    _core: Arc<SocketCore<H>>,
}

impl<H: Send + Sync + 'static> Operation for CloseOp<H> {
    type Output = Result<()>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
}

/// `WskControlSocket` with small, inline input and output; `D` is what the
/// output decodes to ([`ControlOutput`]: the raw bytes).
pub struct ControlOp<H, D = ControlOutput> {
    _core: Arc<SocketCore<H>>,
    input: [u8; CONTROL_BYTES],
    output: [u8; CONTROL_BYTES],
    returned: sys::SIZE_T,
    _decode: core::marker::PhantomData<fn() -> D>,
}

/// Room for the option values and control structures this crate passes.
const CONTROL_BYTES: usize = 32;

impl<H: Send + Sync + 'static, D: ControlValue> Operation for ControlOp<H, D> {
    type Output = Result<D>;
    fn complete(self, status: sys::NTSTATUS, information: usize) -> Result<D> {
        Error::check(status)?;
        let len = if self.returned != 0 {
            self.returned
        } else {
            information
        };
        D::from_output(&ControlOutput {
            bytes: self.output,
            len: len.min(CONTROL_BYTES),
        })
    }
}

/// A value a socket control request's output decodes to.
pub trait ControlValue: Sized + Send + 'static {
    /// Decodes the output bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BUFFER_TOO_SMALL`] if the provider returned too few bytes.
    fn from_output(output: &ControlOutput) -> Result<Self>;
}

impl ControlValue for ControlOutput {
    fn from_output(output: &ControlOutput) -> Result<Self> {
        Ok(*output)
    }
}

impl ControlValue for () {
    fn from_output(_output: &ControlOutput) -> Result<Self> {
        Ok(())
    }
}

impl ControlValue for u32 {
    fn from_output(output: &ControlOutput) -> Result<Self> {
        output.as_u32()
    }
}

impl ControlValue for bool {
    fn from_output(output: &ControlOutput) -> Result<Self> {
        output.as_u32().map(|v| v != 0)
    }
}

impl ControlValue for usize {
    /// A `SIZE_T`; a provider that writes only a `ULONG` is accepted too.
    fn from_output(output: &ControlOutput) -> Result<Self> {
        if output.len >= size_of::<usize>() {
            let mut bytes = [0u8; size_of::<usize>()];
            bytes.copy_from_slice(&output.bytes[..size_of::<usize>()]);
            Ok(usize::from_ne_bytes(bytes))
        } else {
            output.as_u32().map(|v| v as usize)
        }
    }
}

/// What a socket control request returned.
#[derive(Clone, Copy, Debug)]
pub struct ControlOutput {
    bytes: [u8; CONTROL_BYTES],
    len: usize,
}

impl ControlOutput {
    /// The output bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The output as a `ULONG` option value.
    ///
    /// # Errors
    ///
    /// [`Error::BUFFER_TOO_SMALL`] if fewer than 4 bytes were returned.
    pub fn as_u32(&self) -> Result<u32> {
        let bytes: [u8; 4] = self.bytes[..4]
            .try_into()
            .map_err(|_| Error::BUFFER_TOO_SMALL)?;
        if self.len < 4 {
            return Err(Error::BUFFER_TOO_SMALL);
        }
        Ok(u32::from_ne_bytes(bytes))
    }
}

/// Submits `WskControlSocket` with `input` and room for `output_len` bytes.
pub(crate) fn submit_control<H: Send + Sync + 'static>(
    core: &Arc<SocketCore<H>>,
    request_type: sys::WSK_CONTROL_SOCKET_TYPE,
    control_code: u32,
    level: u32,
    input: &[u8],
    output_len: usize,
) -> Request<ControlOp<H>> {
    submit_control_as(core, request_type, control_code, level, input, output_len)
}

/// [`submit_control`] whose output decodes to `D`.
pub(crate) fn submit_control_as<H: Send + Sync + 'static, D: ControlValue>(
    core: &Arc<SocketCore<H>>,
    request_type: sys::WSK_CONTROL_SOCKET_TYPE,
    control_code: u32,
    level: u32,
    input: &[u8],
    output_len: usize,
) -> Request<ControlOp<H, D>> {
    let mut op = ControlOp {
        _core: Arc::clone(core),
        input: [0; CONTROL_BYTES],
        output: [0; CONTROL_BYTES],
        returned: 0,
        _decode: core::marker::PhantomData,
    };
    if input.len() > CONTROL_BYTES || output_len > CONTROL_BYTES {
        return Request::failed(op, Error::INVALID_BUFFER_SIZE);
    }
    op.input[..input.len()].copy_from_slice(input);
    let socket = core.socket();
    if socket.is_null() {
        return Request::failed(op, Error::INVALID_HANDLE);
    }
    // SAFETY: the socket exists; every table starts with the basic one.
    let Some(control) =
        (unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
    else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let input_len = input.len();
    Request::submit(op, |irp, op| {
        let input_ptr = if input_len == 0 {
            core::ptr::null_mut()
        } else {
            op.input.as_mut_ptr().cast()
        };
        let output_ptr = if output_len == 0 {
            core::ptr::null_mut()
        } else {
            op.output.as_mut_ptr().cast()
        };
        // SAFETY: the socket exists; the buffers live in the payload until completion.
        unsafe {
            control(
                socket,
                request_type,
                control_code,
                level,
                input_len,
                input_ptr,
                output_len,
                output_ptr,
                &raw mut op.returned,
                irp,
            )
        }
    })
}

/// Enables the events in `mask` (`SO_WSK_EVENT_CALLBACK`).
///
/// Enabling takes no IRP: `WskControlSocket` returns the final status
/// (<https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>).
/// Listening sockets must be bound and connection sockets connected first.
pub(crate) fn enable_events<H: Send + Sync + 'static>(
    core: &SocketCore<H>,
    mask: u32,
) -> Result<()> {
    // Events enabled statically are always on and may not be enabled again.
    let mask = mask & !core.provider.reg().static_events();
    if mask == 0 {
        return Ok(());
    }
    event_control(core, mask)
}

/// Disables every event in `mask` (`SO_WSK_EVENT_CALLBACK` with
/// `WSK_EVENT_DISABLE`, one event at a time as the DDI requires), without an
/// IRP: a callback already running may still finish after this returns
/// (`STATUS_EVENT_PENDING`, a success status).
pub(crate) fn disable_events<H: Send + Sync + 'static>(
    core: &SocketCore<H>,
    mask: u32,
) -> Result<()> {
    let mask = mask & !core.provider.reg().static_events();
    let mut remaining = mask;
    while remaining != 0 {
        let event = remaining & remaining.wrapping_neg();
        remaining &= !event;
        event_control(core, sys::WSK_EVENT_DISABLE | event)?;
    }
    Ok(())
}

/// `WskControlSocket(WskSetOption, SO_WSK_EVENT_CALLBACK)` without an IRP.
fn event_control<H: Send + Sync + 'static>(core: &SocketCore<H>, mask: u32) -> Result<()> {
    let socket = core.socket();
    if socket.is_null() {
        return Err(Error::INVALID_HANDLE);
    }
    // SAFETY: the socket exists; every table starts with the basic one.
    let Some(control) =
        (unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
    else {
        return Err(Error::NOT_IMPLEMENTED);
    };
    let mut input = sys::WSK_EVENT_CALLBACK_CONTROL {
        NpiId: (&raw const NPI_WSK_INTERFACE_ID).cast_mut(),
        EventMask: mask,
    };
    // SAFETY: the socket exists; the input lives across this synchronous
    // call; enabling and disabling without an IRP take no output.
    let status = unsafe {
        control(
            socket,
            sys::WskSetOption,
            sys::SO_WSK_EVENT_CALLBACK,
            sys::SOL_SOCKET,
            size_of::<sys::WSK_EVENT_CALLBACK_CONTROL>(),
            (&raw mut input).cast(),
            0,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    };
    Error::check(status).map(drop)
}

/// `NPI_WSK_INTERFACE_ID` at a fixed address, for `WSK_EVENT_CALLBACK_CONTROL`.
static NPI_WSK_INTERFACE_ID: sys::NPIID = sys::NPI_WSK_INTERFACE_ID;

/// The events of a connection socket (`WSK_EVENT_*`).
pub(crate) const CONNECTION_EVENTS: u32 =
    sys::WSK_EVENT_RECEIVE | sys::WSK_EVENT_DISCONNECT | sys::WSK_EVENT_SEND_BACKLOG;

/// The events that static event callbacks may enable on a socket created
/// with `flags`: a listening (or stream) socket's accept event and the
/// connection events its accepted sockets inherit.
fn events_of_kind(flags: u32) -> u32 {
    match flags {
        sys::WSK_FLAG_LISTEN_SOCKET | sys::WSK_FLAG_STREAM_SOCKET => {
            sys::WSK_EVENT_ACCEPT | CONNECTION_EVENTS
        }
        sys::WSK_FLAG_CONNECTION_SOCKET => CONNECTION_EVENTS,
        sys::WSK_FLAG_DATAGRAM_SOCKET => sys::WSK_EVENT_RECEIVE_FROM,
        _ => 0,
    }
}

/// Creates a WSK socket whose context is `core` (`WskSocket`).
///
/// `dispatch` is the client dispatch table for the kind (null: no events),
/// whose implemented events are `supported` (`WSK_EVENT_*`): creation is
/// refused with [`Error::INVALID_PARAMETER`] if static event callbacks
/// ([`Provider::set_static_events`](crate::Provider::set_static_events))
/// enable an event of this kind the table lacks.
#[allow(clippy::too_many_arguments)] // mirrors WskSocket
pub(crate) fn submit_create<H, S>(
    core: Arc<SocketCore<H>>,
    live: LiveHandle,
    family: sys::ADDRESS_FAMILY,
    socket_type: u16,
    protocol: u32,
    flags: u32,
    dispatch: *const core::ffi::c_void,
    supported: u32,
) -> Request<CreateOp<H, S>>
where
    H: Send + Sync + 'static,
    S: FromCore<H>,
{
    let provider = Arc::clone(&core.provider);
    let stream = flags == sys::WSK_FLAG_STREAM_SOCKET;
    let op = CreateOp {
        core: Some(core),
        live: Some(live),
        local: SockAddr::UNSPECIFIED,
        remote: SockAddr::UNSPECIFIED,
        stream,
        _kind: core::marker::PhantomData,
    };
    if stream
        && !provider
            .windows()
            .at_least(crate::WindowsVersion::WINDOWS_10_1703)
    {
        return Request::failed(op, Error::NOT_SUPPORTED);
    }
    if let Err(e) = provider
        .reg()
        .begin_socket(events_of_kind(flags), supported)
    {
        return Request::failed(op, e);
    }
    let Some(create) = provider.dispatch().WskSocket else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let client = provider.client();
    Request::submit(op, |irp, op| {
        let context = op
            .core
            .as_ref()
            .map_or(core::ptr::null_mut(), SocketCore::context);
        // SAFETY: the context (the core) is kept alive by the payload and, on
        // success, by the new handle.
        unsafe {
            create(
                client,
                family,
                socket_type,
                protocol,
                flags,
                context,
                dispatch,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                irp,
            )
        }
    })
}

/// Creates a connection socket bound to `local` and connected to `remote`
/// in one call (`WskSocketConnect`); its context is `core`, its table
/// `dispatch`, implementing the events `supported` (see [`submit_create`]).
pub(crate) fn submit_socket_connect<H, S>(
    core: Arc<SocketCore<H>>,
    live: LiveHandle,
    local: SocketAddr,
    remote: SocketAddr,
    dispatch: *const sys::WSK_CLIENT_CONNECTION_DISPATCH,
    supported: u32,
) -> Request<CreateOp<H, S>>
where
    H: Send + Sync + 'static,
    S: FromCore<H>,
{
    let provider = Arc::clone(&core.provider);
    let op = CreateOp {
        core: Some(core),
        live: Some(live),
        local: SockAddr::from(local),
        remote: SockAddr::from(remote),
        stream: false,
        _kind: core::marker::PhantomData,
    };
    if local.is_ipv4() != remote.is_ipv4() {
        return Request::failed(op, Error::INVALID_PARAMETER);
    }
    if let Err(e) = provider.reg().begin_socket(CONNECTION_EVENTS, supported) {
        return Request::failed(op, e);
    }
    let Some(connect) = provider.dispatch().WskSocketConnect else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let client = provider.client();
    Request::submit(op, |irp, op| {
        let context = op
            .core
            .as_ref()
            .map_or(core::ptr::null_mut(), SocketCore::context);
        // SAFETY: the context (the core) and both addresses live in the
        // payload until completion, and the core, on success, in the new
        // handle; `Flags` is reserved (0).
        unsafe {
            connect(
                client,
                sys::SOCK_STREAM,
                sys::IPPROTO_TCP as u32,
                op.local.as_mut_ptr(),
                op.remote.as_mut_ptr(),
                0,
                context,
                dispatch,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                irp,
            )
        }
    })
}

/// Turns a created core into a socket handle.
pub trait FromCore<H>: Sized + Send + 'static {
    /// Builds the handle.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn from_core(core: Arc<SocketCore<H>>, live: LiveHandle) -> Self;
}

/// `WskSocket`.
pub struct CreateOp<H, S> {
    core: Option<Arc<SocketCore<H>>>,
    live: Option<LiveHandle>,
    /// `WskSocketConnect`'s addresses (unused by `WskSocket`).
    local: SockAddr,
    remote: SockAddr,
    /// A stream socket (`WSK_FLAG_STREAM_SOCKET`) is being created.
    stream: bool,
    _kind: core::marker::PhantomData<fn() -> S>,
}

impl<H: Send + Sync + 'static, S: FromCore<H>> Operation for CreateOp<H, S> {
    type Output = Result<S>;
    fn abandon(mut self, status: sys::NTSTATUS, information: usize) {
        // Nobody waits for the socket any more: close it if it was created.
        if sys::NT_SUCCESS(status) && information != 0 {
            if let Some(core) = self.core.take() {
                core.set_socket(information as sys::PWSK_SOCKET);
                close_in_background(core);
            }
        }
    }
    fn complete(mut self, status: sys::NTSTATUS, information: usize) -> Result<S> {
        if self.stream && status == sys::STATUS_INVALID_PARAMETER {
            // A provider that does not know WSK_FLAG_STREAM_SOCKET.
            return Err(Error::NOT_SUPPORTED);
        }
        Error::check(status)?;
        let socket = information as sys::PWSK_SOCKET;
        if socket.is_null() {
            return Err(Error::UNSUCCESSFUL);
        }
        let (Some(core), Some(live)) = (self.core.take(), self.live.take()) else {
            unreachable!("completed once")
        };
        if self.stream {
            // Before any call through the socket's table: from now on it is
            // seen through its connection and listen views.
            // SAFETY: the provider just created the socket.
            let table = unsafe { (*socket).Dispatch };
            // SAFETY: a stream socket: its table is a
            // WSK_PROVIDER_STREAM_DISPATCH of the running Windows, valid while
            // the NPI is captured (the core holds the provider).
            unsafe {
                core.provider
                    .stream_tables
                    .learn(table.cast(), core.provider.windows());
            }
        }
        core.set_socket(socket);
        Ok(S::from_core(core, live))
    }
}

/// A retained indication list (`WSK_DATA_INDICATION` or
/// `WSK_DATAGRAM_INDICATION` chain) of one socket, type-erased over the
/// handler, so that the public retained handles need no type parameter.
///
/// # Invariants
///
/// `core` points to a `SocketCore<H>` inside an `Arc`, and `ops` holds the
/// functions monomorphised for the same `H`. Once [`try_retain`] succeeded,
/// the value owns one strong reference, one live-handle count and one
/// retain-gate count, all given back by [`release`].
///
/// [`try_retain`]: Self::try_retain
/// [`release`]: Self::release
pub(crate) struct RetainedRaw<T: 'static> {
    core: *const (),
    head: *mut T,
    ops: &'static RetainOps<T>,
}

/// Monomorphised retain/release functions for one handler type.
pub(crate) struct RetainOps<T> {
    /// [`retain_core`] for the handler type.
    pub(crate) retain: unsafe fn(*const ()) -> bool,
    /// Calls the socket kind's `WskRelease`, then [`end_release`].
    pub(crate) release: unsafe fn(*const (), *mut T),
}

// SAFETY: the list and the core are usable from any thread at <= DISPATCH_LEVEL.
unsafe impl<T> Send for RetainedRaw<T> {}
// SAFETY: shared access only reads the list.
unsafe impl<T> Sync for RetainedRaw<T> {}

impl<T> RetainedRaw<T> {
    /// The list `head` of the core at `core`, not yet retained.
    ///
    /// # Safety
    ///
    /// As the type's invariants: `core` is a `SocketCore<H>` inside an `Arc`
    /// and `ops` belongs to the same `H`.
    pub(crate) unsafe fn new(core: *const (), head: *mut T, ops: &'static RetainOps<T>) -> Self {
        Self { core, head, ops }
    }

    pub(crate) fn head(&self) -> *mut T {
        self.head
    }

    /// Takes the references a retained list owns; false when the socket is
    /// closing and retention is no longer allowed.
    ///
    /// Called only inside the indicating callback, where the core is live.
    pub(crate) fn try_retain(&self) -> bool {
        // SAFETY: invariant: `ops` matches the live core's handler type.
        unsafe { (self.ops.retain)(self.core) }
    }

    /// Releases the list (`WskRelease`) and the references.
    ///
    /// Called once, by the retained handle that `try_retain` armed.
    pub(crate) fn release(&self) {
        // SAFETY: invariant: the armed value owns a reference and a gate count.
        unsafe { (self.ops.release)(self.core, self.head) };
    }
}

/// Counts a retention on a `SocketCore<H>`, takes a strong reference and
/// counts a live handle (a retained list holds its socket open, so
/// deregistration must wait for it).
///
/// # Safety
///
/// `core` points to a live `SocketCore<H>` inside an `Arc`.
pub(crate) unsafe fn retain_core<H: Send + Sync + 'static>(core: *const ()) -> bool {
    let core = core.cast::<SocketCore<H>>();
    // SAFETY: live core (caller contract).
    let live = unsafe { &*core };
    if !live.try_retain() {
        return false;
    }
    // SAFETY: the core is inside an Arc (caller contract).
    unsafe { Arc::increment_strong_count(core) };
    live.provider.add_live();
    true
}

/// Takes back the strong reference a [`retain_core`] took.
///
/// # Safety
///
/// A matching [`retain_core`] for this `H` succeeded and is not yet undone.
pub(crate) unsafe fn retained_core<H>(core: *const ()) -> Arc<SocketCore<H>> {
    // SAFETY: the retain took one strong reference, which the caller now owns.
    unsafe { Arc::from_raw(core.cast::<SocketCore<H>>()) }
}

/// Ends a retention after the list was released with `WskRelease`: uncounts
/// the live handle and submits the deferred close if this was the last one.
pub(crate) fn end_release<H: Send + Sync + 'static>(core: Arc<SocketCore<H>>) {
    core.provider.remove_live();
    if core.end_retain() {
        submit_close(core).detach();
    }
}
