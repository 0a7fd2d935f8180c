//! Creating sockets, written once for every kind: `WskSocket` and
//! `WskSocketConnect` through one path, and the opener that closes a
//! socket whose set-up failed.

use alloc::sync::Arc;
use core::ffi::c_void;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::close::{CloseOp, close_in_background};
use super::core::{BIND_SUBMITTED, BOUND, CONNECTED, ClosedUnder, SocketCore};
use crate::addr::{AddressFamily, SockAddr};
use crate::core_ref::CoreRef;
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;
use crate::provider::client::Provider;
use crate::provider::npi::{LiveHandle, ProviderInner, RegInner};
use crate::provider::teardown::ClientCall;
use crate::provider::version::WindowsVersion;

/// A socket handle type, built from the core of a created or accepted
/// socket. Implemented by the socket types of [`crate::tcp`] and
/// [`crate::udp`]; not nameable outside this crate.
pub trait Socket: Sized + Send + 'static {
    /// What the core holds besides the socket: the event handler.
    #[doc(hidden)]
    type Handler: Send + Sync + 'static;

    /// Builds the handle.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn from_core(core: CoreRef<SocketCore<Self::Handler>>, live: LiveHandle) -> Self;

    /// Closes the socket as a request (the handle's `close`).
    #[doc(hidden)]
    fn close_request(self) -> Request<CloseOp>;

    /// What deregistration tells the handler when it closes the socket
    /// under its handle, made for [`Handler`](Self::Handler).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    const CLOSED_UNDER: Option<ClosedUnder> = None;
}

/// The events of a connection socket (`WSK_EVENT_*`).
pub(crate) const CONNECTION_EVENTS: u32 =
    sys::WSK_EVENT_RECEIVE | sys::WSK_EVENT_DISCONNECT | sys::WSK_EVENT_SEND_BACKLOG;

/// What `WskSocket` creates: the socket kind and the client dispatch table
/// that goes with the handler.
#[derive(Clone, Copy)]
pub(crate) struct Kind {
    /// `WSK_FLAG_*_SOCKET`.
    pub(crate) flags: u32,
    /// The client dispatch table of the kind (null: no callbacks), a
    /// `'static` constant.
    pub(crate) dispatch: *const c_void,
    /// The events the table implements (`WSK_EVENT_*`).
    pub(crate) events: u32,
}

impl Kind {
    /// The events that static event callbacks may enable on a socket of
    /// this kind: a listening (or stream) socket's accept event and the
    /// connection events its accepted sockets inherit.
    fn static_events(self) -> u32 {
        match self.flags {
            sys::WSK_FLAG_LISTEN_SOCKET | sys::WSK_FLAG_STREAM_SOCKET => {
                sys::WSK_EVENT_ACCEPT | CONNECTION_EVENTS
            }
            sys::WSK_FLAG_CONNECTION_SOCKET => CONNECTION_EVENTS,
            sys::WSK_FLAG_DATAGRAM_SOCKET => sys::WSK_EVENT_RECEIVE_FROM,
            _ => 0,
        }
    }

    /// `SOCK_STREAM`/`IPPROTO_TCP` or `SOCK_DGRAM`/`IPPROTO_UDP`.
    fn transport(self) -> (u16, u32) {
        if self.flags == sys::WSK_FLAG_DATAGRAM_SOCKET {
            (sys::SOCK_DGRAM, sys::IPPROTO_UDP as u32)
        } else {
            (sys::SOCK_STREAM, sys::IPPROTO_TCP as u32)
        }
    }
}

/// How the socket comes into being.
#[derive(Clone, Copy)]
pub(crate) enum How {
    /// `WskSocket` for a family.
    Socket(AddressFamily),
    /// `WskSocketConnect`: a connection socket, bound to `local` and
    /// connected to `remote` in one call.
    Connect {
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// `WskSocket` and `WskSocketConnect`.
pub struct CreateOp<S: Socket> {
    core: Option<CoreRef<SocketCore<S::Handler>>>,
    live: Option<LiveHandle>,
    /// `WskSocketConnect`'s addresses (unused by `WskSocket`).
    local: SockAddr,
    remote: SockAddr,
    /// A stream socket (`WSK_FLAG_STREAM_SOCKET`) is being created.
    stream: bool,
    /// `WskSocketConnect`: the socket comes bound and connected.
    connect: bool,
    /// The registration, for the in-flight count (the core holds it too,
    /// but is taken out on completion).
    reg: Arc<RegInner>,
}

impl<S: Socket> Operation for CreateOp<S> {
    type Output = Result<S>;

    fn abandon(mut self, _status: i32, _information: usize) {
        close_abandoned(self.core.take());
    }

    fn complete(mut self, status: i32, _information: usize) -> Result<S> {
        if self.stream && status == sys::STATUS_INVALID_PARAMETER {
            // A provider that does not know WSK_FLAG_STREAM_SOCKET.
            return Err(Error::NOT_SUPPORTED);
        }
        Error::check(status)?;
        let (Some(core), Some(live)) = (self.core.take(), self.live.take()) else {
            unreachable!("completed once")
        };
        if core.socket().is_null() {
            return Err(Error::UNSUCCESSFUL);
        }
        Ok(S::from_core(core, live))
    }

    fn inflight(&self) -> &InFlight {
        self.reg.inflight()
    }

    const ON_COMPLETION: bool = true;
    fn completed(&self, status: i32, information: usize) {
        let socket = information as sys::PWSK_SOCKET;
        let Some(core) = self
            .core
            .as_ref()
            .filter(|_| sys::NT_SUCCESS(status) && !socket.is_null())
        else {
            // No socket: deregistration need not wait for one.
            self.reg.socket_gone();
            return;
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
        if self.connect {
            // WskSocketConnect succeeded: bound and connected.
            core.set_flags(CONNECTED);
        }
        // Known from now on: callbacks (static events) may fire before the
        // owner takes the socket; closed by deregistration if nobody ever
        // does.
        SocketCore::adopt(core, socket);
    }
}

/// Closes in the background the socket an abandoned create or accept
/// request made (its completion routine recorded it): nobody waits for it
/// any more.
pub(crate) fn close_abandoned<H: Send + Sync + 'static>(core: Option<CoreRef<SocketCore<H>>>) {
    if let Some(core) = core {
        if !core.socket().is_null() {
            close_in_background(SocketCore::erase(&core));
        }
    }
}

/// Creates a socket of `kind` whose context is a new core holding
/// `handler` (`WskSocket`, or `WskSocketConnect` for [`How::Connect`]).
///
/// Creation is refused without a provider call with
/// [`Error::INVALID_PARAMETER`] if static event callbacks
/// ([`Provider::set_static_events`]) enable an event of this kind that
/// `kind` does not implement, and with [`Error::NOT_SUPPORTED`] for a stream
/// socket before Windows 10 1703.
pub(crate) fn submit_create<S: Socket>(
    provider: &Provider,
    handler: S::Handler,
    kind: Kind,
    how: How,
) -> Request<CreateOp<S>> {
    let family = match how {
        How::Socket(family) => family,
        // WskSocketConnect: "the address family … of LocalAddress".
        How::Connect { local, .. } => AddressFamily::of(&local),
    };
    let datagram = kind.flags == sys::WSK_FLAG_DATAGRAM_SOCKET;
    let core = match SocketCore::try_new(
        Arc::clone(&provider.inner),
        family.raw(),
        datagram,
        handler,
        S::CLOSED_UNDER,
    ) {
        Ok(core) => core,
        Err(e) => return Request::ready(Err(e)),
    };
    let stream = kind.flags == sys::WSK_FLAG_STREAM_SOCKET;
    let (local, remote) = match how {
        How::Socket(_) => (SockAddr::UNSPECIFIED, SockAddr::UNSPECIFIED),
        How::Connect { local, remote } => {
            // WskSocketConnect binds and connects: the socket comes bound
            // (and connected once it succeeds).
            core.set_flags(BIND_SUBMITTED | BOUND);
            (SockAddr::from(local), SockAddr::from(remote))
        }
    };
    let op = CreateOp {
        core: Some(core),
        live: Some(provider.live_handle()),
        local,
        remote,
        stream,
        connect: matches!(how, How::Connect { .. }),
        reg: provider.inner.reg_arc(),
    };
    let inner = &provider.inner;
    // One refusal path: debug builds keep a stack slot per moved payload.
    let (call, routine) = match admit_create(inner, kind, how) {
        Ok(admitted) => admitted,
        Err(e) => return Request::failed(op, e),
    };
    // Until the provider returned: a client-level call in progress.
    let _call = call;
    let client = inner.client();
    let (socket_type, protocol) = kind.transport();
    Request::submit(op, |irp, op| {
        let op = op.into_mut();
        // Deregistration waits for the socket this may create.
        op.reg.socket_opening();
        let context = op.context(kind.dispatch);
        match routine {
            // SAFETY: the context (the core) is kept alive by the payload
            // and, on success, by the new handle; the dispatch table is a
            // 'static constant.
            CreateRoutine::Socket(create, family) => unsafe {
                create(
                    client,
                    family,
                    socket_type,
                    protocol,
                    kind.flags,
                    context,
                    kind.dispatch,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    irp,
                )
            },
            // SAFETY: the context (the core) and both addresses live in the
            // payload until completion, and the core, on success, in the new
            // handle; `Flags` is reserved (0); the dispatch table (a
            // connection table: `kind` is a connection kind) is a 'static
            // constant.
            CreateRoutine::Connect(connect) => unsafe {
                connect(
                    client,
                    socket_type,
                    protocol,
                    op.local.as_mut_ptr(),
                    op.remote.as_mut_ptr(),
                    0,
                    context,
                    kind.dispatch.cast(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    irp,
                )
            },
        }
    })
}

/// The provider routine a creation calls.
#[derive(Clone, Copy)]
enum CreateRoutine {
    /// `WskSocket`, with the family.
    Socket(
        unsafe extern "system" fn(
            sys::PWSK_CLIENT,
            sys::ADDRESS_FAMILY,
            sys::USHORT,
            sys::ULONG,
            sys::ULONG,
            sys::PVOID,
            *const core::ffi::c_void,
            sys::PEPROCESS,
            sys::PETHREAD,
            sys::PSECURITY_DESCRIPTOR,
            sys::PIRP,
        ) -> sys::NTSTATUS,
        sys::ADDRESS_FAMILY,
    ),
    /// `WskSocketConnect`.
    Connect(
        unsafe extern "system" fn(
            sys::PWSK_CLIENT,
            sys::USHORT,
            sys::ULONG,
            sys::PSOCKADDR,
            sys::PSOCKADDR,
            sys::ULONG,
            sys::PVOID,
            *const sys::WSK_CLIENT_CONNECTION_DISPATCH,
            sys::PEPROCESS,
            sys::PETHREAD,
            sys::PSECURITY_DESCRIPTOR,
            sys::PIRP,
        ) -> sys::NTSTATUS,
    ),
}

/// Whether a socket of `kind` may be created `how` now, and with which
/// routine; the client-level call it starts.
///
/// # Errors
///
/// [`Error::NOT_SUPPORTED`] for a stream socket before Windows 10 1703,
/// [`Error::INVALID_PARAMETER`] for `WskSocketConnect` addresses of two
/// families or a static event the handler lacks,
/// [`Error::DEVICE_NOT_READY`] once deregistration began,
/// [`Error::INVALID_DEVICE_STATE`] while static events are being set,
/// [`Error::NOT_IMPLEMENTED`] without the routine.
fn admit_create(
    inner: &ProviderInner,
    kind: Kind,
    how: How,
) -> Result<(ClientCall<'_>, CreateRoutine)> {
    if kind.flags == sys::WSK_FLAG_STREAM_SOCKET
        && !inner.windows().at_least(WindowsVersion::WINDOWS_10_1703)
    {
        return Err(Error::NOT_SUPPORTED);
    }
    if let How::Connect { local, remote } = how {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(Error::INVALID_PARAMETER);
        }
    }
    let call = inner.reg().teardown.enter()?;
    inner
        .reg()
        .begin_socket(kind.static_events(), kind.events)?;
    let routine = match how {
        How::Socket(family) => inner
            .dispatch()
            .WskSocket
            .map(|create| CreateRoutine::Socket(create, family.raw())),
        How::Connect { .. } => inner
            .dispatch()
            .WskSocketConnect
            .map(CreateRoutine::Connect),
    };
    Ok((call, routine.ok_or(Error::NOT_IMPLEMENTED)?))
}

impl<S: Socket> CreateOp<S> {
    /// The socket context to pass: the new core, or NULL for a socket
    /// without callbacks (`dispatch` NULL), as it should be
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>);
    /// the handle reaches the core without it.
    fn context(&self, dispatch: *const c_void) -> sys::PVOID {
        if dispatch.is_null() {
            return core::ptr::null_mut();
        }
        self.core
            .as_ref()
            .map_or(core::ptr::null_mut(), SocketCore::context)
    }
}

/// Awaits `created`, then runs `setup` on the socket; if `setup` fails, the
/// socket is closed — and the close awaited, so that nothing of it (an
/// address, a port) outlives the error — before the error is returned.
///
/// # Errors
///
/// The creation's error, or `setup`'s.
pub(crate) async fn open<S: Socket>(
    created: Request<CreateOp<S>>,
    setup: impl AsyncFnOnce(&S) -> Result<()>,
) -> Result<S> {
    let socket = created.await?;
    match setup(&socket).await {
        Ok(()) => Ok(socket),
        Err(e) => {
            let _ = socket.close_request().await;
            Err(e)
        }
    }
}
