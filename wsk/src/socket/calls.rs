//! The calls every socket kind makes, written once against the
//! handler-free [`SocketRef`]: socket control (options, IOCTLs, event
//! enabling), the address calls (bind, connect, local and remote address)
//! and the security descriptor. Closing has a module of its own
//! ([`close`](super::close)).

use core::marker::PhantomData;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::core::{
    ACCEPTING, BIND_SUBMITTED, BOUND, CONNECTED, EVENTS_ON, ErasedCore, SILENCING, SILENT,
    SocketRef,
};
use crate::addr::SockAddr;
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;
use crate::options::{CONTROL_BYTES, ControlOutput, ControlValue, OptionValue, SocketOption};
use crate::provider::control::CachedSecurityDescriptor;
use crate::provider::npi::event_callback_control;

// ---------------------------------------------------------------------------
// Socket control

/// `WskControlSocket` with small, inline input and output; `D` is what the
/// output decodes to ([`ControlOutput`]: the raw bytes; `()`: nothing).
pub struct ControlOp<D = ControlOutput> {
    core: SocketRef,
    input: ControlBytes,
    output: ControlBytes,
    /// `SIO_WSK_SET_TCP_SILENT_MODE`: the socket is silent once it
    /// succeeded, and usable again if it failed.
    silent_mode: bool,
    _decode: PhantomData<fn() -> D>,
}

/// The inline input or output of a control request, aligned for the
/// `ULONG`, `SIZE_T` and structure variables the option and IOCTL pages
/// name (<https://learn.microsoft.com/windows-hardware/drivers/network/so-keepalive>,
/// <https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-query-ideal-send-backlog>).
#[repr(C, align(8))]
struct ControlBytes([u8; CONTROL_BYTES]);

impl<D: ControlValue> Operation for ControlOp<D> {
    type Output = Result<D>;
    fn complete(self, status: i32, information: usize) -> Result<D> {
        self.core.note_status(status);
        Error::check(status)?;
        // With an IRP, the output size is `IoStatus.Information`
        // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket).
        D::from_output(&ControlOutput::new(self.output.0, information))
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
    const ON_COMPLETION: bool = true;
    fn completed(&self, status: i32, _information: usize) {
        if self.silent_mode {
            if sys::NT_SUCCESS(status) {
                self.core.set_flags(SILENT);
            }
            self.core.clear_flags(SILENCING);
        }
    }
}

/// What a control request is: its type, code, level, input and output
/// size.
#[derive(Clone, Copy)]
pub(crate) struct Control<'a> {
    pub(crate) request_type: sys::WSK_CONTROL_SOCKET_TYPE,
    pub(crate) code: u32,
    pub(crate) level: u32,
    pub(crate) input: &'a [u8],
    pub(crate) output_len: usize,
    /// `SIO_WSK_SET_TCP_SILENT_MODE`, whose caller marked the socket
    /// `SILENCING`: admitted through the run-down only (the state refuses
    /// every other call meanwhile), and its completion settles the state.
    pub(crate) silent_mode: bool,
}

/// Submits `WskControlSocket` with `control`'s input and room for its output
/// bytes, whose output decodes to `D`, on a socket in the state `need`
/// (see [`SocketCore::enter`](super::core::SocketCore::enter)).
pub(crate) fn submit_control<D: ControlValue>(
    core: SocketRef,
    control: Control<'_>,
    need: u32,
) -> Request<ControlOp<D>> {
    let Control {
        request_type,
        code: control_code,
        level,
        input,
        output_len,
        silent_mode,
    } = control;
    let socket = core.socket();
    let mut op = ControlOp {
        core,
        input: ControlBytes([0; CONTROL_BYTES]),
        output: ControlBytes([0; CONTROL_BYTES]),
        silent_mode,
        _decode: PhantomData,
    };
    if input.len() > CONTROL_BYTES || output_len > CONTROL_BYTES {
        return Request::failed(op, Error::INVALID_BUFFER_SIZE);
    }
    op.input.0[..input.len()].copy_from_slice(input);
    if socket.is_null() {
        return Request::failed(op, Error::INVALID_HANDLE);
    }
    let core = SocketRef::clone(&op.core);
    let admitted = if silent_mode {
        core.enter_rundown()
    } else {
        core.enter(need)
    };
    let entered = match admitted {
        Ok(entered) => entered,
        Err(e) => return Request::failed(op, e),
    };
    // SAFETY: the socket exists; every table starts with the basic one.
    let Some(control) =
        (unsafe { op.core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
    else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let input_len = input.len();
    let _entered = entered;
    Request::submit(op, |irp, op| {
        let op = op.into_mut();
        let input_ptr = if input_len == 0 {
            core::ptr::null_mut()
        } else {
            op.input.0.as_mut_ptr().cast()
        };
        let output_ptr = if output_len == 0 {
            core::ptr::null_mut()
        } else {
            op.output.0.as_mut_ptr().cast()
        };
        // SAFETY: the socket exists; the buffers live in the payload until
        // completion; `OutputSizeReturned` is NULL, as it should be with an
        // IRP (the size comes back in `IoStatus.Information`).
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
                core::ptr::null_mut(),
                irp,
            )
        }
    })
}

/// Submits `WskSetOption` for `O`, refused without a provider call for an
/// option that must precede the bind once a bind was submitted.
pub(crate) fn set_option<O: SocketOption>(
    core: SocketRef,
    value: O::Value,
) -> Request<ControlOp<()>> {
    if O::BEFORE_BIND && core.has_flags(BIND_SUBMITTED) {
        return Request::ready(Err(Error::INVALID_DEVICE_STATE));
    }
    let control = Control {
        request_type: sys::WskSetOption,
        code: O::CODE,
        level: O::LEVEL,
        input: &value.to_ulong().to_ne_bytes(),
        output_len: 0,
        silent_mode: false,
    };
    submit_control(core, control, 0)
}

/// Submits `WskGetOption` for `O`.
pub(crate) fn get_option<O: SocketOption>(core: SocketRef) -> Request<ControlOp<O::Value>> {
    let control = Control {
        request_type: sys::WskGetOption,
        code: O::CODE,
        level: O::LEVEL,
        input: &[],
        output_len: size_of::<u32>(),
        silent_mode: false,
    };
    submit_control(core, control, 0)
}

/// Submits a `WskIoctl` without input whose output decodes to `D` (of at
/// most `output_len` bytes), on a socket in the state `need`.
pub(crate) fn ioctl<D: ControlValue>(
    core: SocketRef,
    ioctl_code: u32,
    output_len: usize,
    need: u32,
) -> Request<ControlOp<D>> {
    let control = Control {
        request_type: sys::WskIoctl,
        code: ioctl_code,
        level: 0,
        input: &[],
        output_len,
        silent_mode: false,
    };
    submit_control(core, control, need)
}

// ---------------------------------------------------------------------------
// Event callbacks

/// Enables the events in `mask` (`SO_WSK_EVENT_CALLBACK`), the handler's
/// implemented callbacks, on a socket in the state `need`: listening and
/// datagram sockets must be bound and connection sockets connected first
/// (<https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>).
///
/// Enabling takes no IRP: `WskControlSocket` returns the final status.
/// Refused with [`Error::INVALID_DEVICE_STATE`] without a provider call on
/// a socket whose accept callback has not returned: the provider learns the
/// socket's context and dispatch table only from that callback's answer.
pub(crate) fn enable_events(core: &ErasedCore, mask: u32, need: u32) -> Result<()> {
    if core.has_flags(ACCEPTING) {
        return Err(Error::INVALID_DEVICE_STATE);
    }
    if mask == 0 {
        return Ok(());
    }
    // Marked on before the call: a callback may run inside it, and one that
    // refuses datagrams clears the mark (the provider then disables the
    // event again).
    let was_on = core.has_flags(EVENTS_ON);
    core.set_flags(EVENTS_ON);
    // Events enabled statically are always on and may not be enabled again.
    let dynamic = mask & !core.provider.reg().static_events();
    if dynamic != 0 {
        if let Err(e) = event_control(core, dynamic, need) {
            if !was_on {
                core.clear_flags(EVENTS_ON);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// As [`enable_events`], but a provider without event support
/// ([`Error::NOT_IMPLEMENTED`], as Wine's) is not an error: the events stay
/// off, which the handle's `events_enabled` reports.
pub(crate) fn enable_events_if_supported(core: &ErasedCore, mask: u32, need: u32) -> Result<()> {
    match enable_events(core, mask, need) {
        Err(Error::NOT_IMPLEMENTED) => Ok(()),
        other => other,
    }
}

/// Disables every event in `mask` (`SO_WSK_EVENT_CALLBACK` with
/// `WSK_EVENT_DISABLE`, one event at a time as the DDI requires), without an
/// IRP: a callback already running may still finish after this returns
/// (`STATUS_EVENT_PENDING`, a success status). The same state rules as
/// [`enable_events`] apply.
pub(crate) fn disable_events(core: &ErasedCore, mask: u32, need: u32) -> Result<()> {
    if core.has_flags(ACCEPTING) {
        return Err(Error::INVALID_DEVICE_STATE);
    }
    let mut remaining = mask & !core.provider.reg().static_events();
    while remaining != 0 {
        let event = remaining & remaining.wrapping_neg();
        remaining &= !event;
        event_control(core, sys::WSK_EVENT_DISABLE | event, need)?;
    }
    if mask != 0 && mask & core.provider.reg().static_events() == 0 {
        core.clear_flags(EVENTS_ON);
    }
    Ok(())
}

/// `WskControlSocket(WskSetOption, SO_WSK_EVENT_CALLBACK)` without an IRP.
fn event_control(core: &ErasedCore, mask: u32, need: u32) -> Result<()> {
    let mut input = event_callback_control(mask);
    let input = (&raw mut input).cast();
    let size = size_of::<sys::WSK_EVENT_CALLBACK_CONTROL>();
    // SAFETY: the input lives across this synchronous call; enabling and
    // disabling without an IRP take no output.
    unsafe {
        control_now(
            core,
            sys::WskSetOption,
            sys::SO_WSK_EVENT_CALLBACK,
            sys::SOL_SOCKET,
            (input, size),
            (core::ptr::null_mut(), 0),
            need,
        )
    }
    .map(drop)
}

/// `WskControlSocket` without an IRP, for the controls the DDI defines that
/// way (`SO_WSK_EVENT_CALLBACK`, `SIO_WSK_QUERY_INSPECT_ID`): the routine
/// completes before it returns. Returns the bytes written to the output.
///
/// # Errors
///
/// [`Error::INVALID_HANDLE`] before the socket exists, the refusals of
/// [`SocketCore::enter`](super::core::SocketCore::enter) for `need`,
/// [`Error::NOT_IMPLEMENTED`] without `WskControlSocket`, or the routine's
/// status.
///
/// # Safety
///
/// `input` and `output` are pointers to that many readable (respectively
/// writable) bytes, or null with 0, valid across the call.
pub(crate) unsafe fn control_now(
    core: &ErasedCore,
    request_type: sys::WSK_CONTROL_SOCKET_TYPE,
    control_code: u32,
    level: u32,
    input: (sys::PVOID, usize),
    output: (sys::PVOID, usize),
    need: u32,
) -> Result<usize> {
    let socket = core.socket();
    if socket.is_null() {
        return Err(Error::INVALID_HANDLE);
    }
    let _entered = core.enter(need)?;
    // SAFETY: the socket exists; every table starts with the basic one.
    let Some(control) =
        (unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
    else {
        return Err(Error::NOT_IMPLEMENTED);
    };
    let mut returned: sys::SIZE_T = 0;
    let returned_ptr = if output.1 == 0 {
        core::ptr::null_mut()
    } else {
        &raw mut returned
    };
    // SAFETY: the socket exists; the buffers are valid across this
    // synchronous call (caller contract); no IRP, as the control requires.
    let status = unsafe {
        control(
            socket,
            request_type,
            control_code,
            level,
            input.1,
            input.0,
            output.1,
            output.0,
            returned_ptr,
            core::ptr::null_mut(),
        )
    };
    core.note_status(status);
    Error::check(status)?;
    Ok(returned.min(output.1))
}

// ---------------------------------------------------------------------------
// Addresses

/// A routine taking or returning one socket address, from the socket
/// kind's provider table.
#[derive(Clone, Copy)]
pub(crate) enum AddressCall {
    /// `WskBind`: on success the socket is bound.
    Bind(sys::PFN_WSK_BIND),
    /// `WskConnect`.
    Connect(sys::PFN_WSK_CONNECT),
    /// `WskGetLocalAddress` or `WskGetRemoteAddress` (one signature).
    Query(sys::PFN_WSK_GET_LOCAL_ADDRESS),
}

/// `WskBind`, `WskConnect`, `WskGetLocalAddress`, `WskGetRemoteAddress`,
/// on any socket kind.
pub struct AddressOp {
    core: SocketRef,
    addr: SockAddr,
    /// `BOUND` for a bind, `CONNECTED` for a connect: the state the
    /// socket is in once the IRP succeeded; 0 for queries.
    reaches: u32,
}

impl Operation for AddressOp {
    /// The address involved: the one bound or connected to, or the one queried.
    type Output = Result<SocketAddr>;
    fn complete(self, status: i32, _information: usize) -> Result<SocketAddr> {
        self.core.note_status(status);
        Error::check(status)?;
        self.addr.to_socket_addr()
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
    const ON_COMPLETION: bool = true;
    fn completed(&self, status: i32, _information: usize) {
        // The socket is bound or connected from now on, whether or not the
        // owner takes the output: calls that need it may follow at once.
        if sys::NT_SUCCESS(status) && self.reaches != 0 {
            self.core.set_flags(self.reaches);
        }
    }
}

/// Submits `call` with `addr` (the address to bind or connect to; ignored
/// by queries, which fill it in), on a socket in the state `need`.
///
/// A bind marks the socket `BIND_SUBMITTED` at once (options that must
/// precede it are refused from then on) and `BOUND` when it succeeds; a
/// connect marks it `CONNECTED` when it succeeds. An address of another
/// family than the socket's is refused without a provider call.
pub(crate) fn submit_address(
    core: SocketRef,
    call: AddressCall,
    addr: Option<SocketAddr>,
    need: u32,
) -> Request<AddressOp> {
    let socket = core.socket();
    let reaches = match call {
        AddressCall::Bind(_) => BOUND,
        AddressCall::Connect(_) => CONNECTED,
        AddressCall::Query(_) => 0,
    };
    let family = addr.map(|a| core.check_family(&a));
    let op = AddressOp {
        core,
        addr: addr.map_or(SockAddr::UNSPECIFIED, SockAddr::from),
        reaches,
    };
    if let Some(Err(e)) = family {
        return Request::failed(op, e);
    }
    let core = SocketRef::clone(&op.core);
    let entered = match core.enter(need) {
        Ok(entered) => entered,
        Err(e) => return Request::failed(op, e),
    };
    if reaches == BOUND {
        op.core.set_flags(BIND_SUBMITTED);
    }
    let routine = match call {
        AddressCall::Bind(f) | AddressCall::Connect(f) => f.map(Routine::Set),
        AddressCall::Query(f) => f.map(Routine::Query),
    };
    let Some(routine) = routine else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let _entered = entered;
    Request::submit(op, |irp, op| {
        let op = op.into_mut();
        let addr = op.addr.as_mut_ptr();
        match routine {
            // SAFETY: the socket exists; the address lives in the payload
            // until completion; the IRP goes to this routine only; `Flags`
            // is reserved (0).
            Routine::Set(f) => unsafe { f(socket, addr, 0, irp) },
            // SAFETY: as above.
            Routine::Query(f) => unsafe { f(socket, addr, irp) },
        }
    })
}

/// An [`AddressCall`]'s routine, present.
#[derive(Clone, Copy)]
enum Routine {
    Set(
        unsafe extern "system" fn(
            sys::PWSK_SOCKET,
            sys::PSOCKADDR,
            sys::ULONG,
            sys::PIRP,
        ) -> sys::NTSTATUS,
    ),
    Query(unsafe extern "system" fn(sys::PWSK_SOCKET, sys::PSOCKADDR, sys::PIRP) -> sys::NTSTATUS),
}

// ---------------------------------------------------------------------------
// Security descriptor

/// `SO_WSK_SECURITY`: the cached descriptor stays alive (held by the op)
/// until the provider completes.
pub struct SecurityOp {
    core: SocketRef,
    _descriptor: CachedSecurityDescriptor,
    input: sys::PSECURITY_DESCRIPTOR,
}

// SAFETY: `input` is the provider's cached descriptor, usable from any thread.
unsafe impl Send for SecurityOp {}

impl Operation for SecurityOp {
    type Output = Result<()>;
    fn complete(self, status: i32, _information: usize) -> Result<()> {
        self.core.note_status(status);
        Error::check(status).map(drop)
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}

/// Sets `SO_WSK_SECURITY` on `core`'s socket to `descriptor`, refused
/// without a provider call once a bind was submitted or for a descriptor
/// another client cached.
pub(crate) fn submit_security(
    core: SocketRef,
    descriptor: &CachedSecurityDescriptor,
) -> Request<SecurityOp> {
    let socket = core.socket();
    let bound = core.has_flags(BIND_SUBMITTED);
    let foreign = descriptor.inner.provider.client() != core.provider.client();
    let op = SecurityOp {
        core,
        input: descriptor.as_raw(),
        _descriptor: descriptor.clone(),
    };
    if bound {
        return Request::failed(op, Error::INVALID_DEVICE_STATE);
    }
    if foreign {
        // A descriptor cached by another registration's client.
        return Request::failed(op, Error::INVALID_PARAMETER);
    }
    let core = SocketRef::clone(&op.core);
    let entered = match core.enter(0) {
        Ok(entered) => entered,
        Err(e) => return Request::failed(op, e),
    };
    // SAFETY: the socket exists; every table starts with the basic one.
    let Some(control) =
        (unsafe { op.core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }).WskControlSocket
    else {
        return Request::failed(op, Error::NOT_IMPLEMENTED);
    };
    let _entered = entered;
    Request::submit(op, |irp, op| {
        let op = op.into_mut();
        // SAFETY: the socket exists; the PSECURITY_DESCRIPTOR variable and
        // the cached descriptor it names live in the payload until
        // completion; no output.
        unsafe {
            control(
                socket,
                sys::WskSetOption,
                sys::SO_WSK_SECURITY,
                sys::SOL_SOCKET,
                size_of::<sys::PSECURITY_DESCRIPTOR>(),
                (&raw mut op.input).cast(),
                0,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                irp,
            )
        }
    })
}
