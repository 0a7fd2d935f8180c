//! The provider's dispatch routines (`WSK_PROVIDER_*_DISPATCH` of
//! `wsk.h`): socket creation, control, close, bind/listen/accept/inspect,
//! connect/send/receive/disconnect/release, datagrams.

use std::net::SocketAddr;

use wsk_sys::{
    ADDRESS_FAMILY, AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, NPI_WSK_INTERFACE_ID, NTSTATUS,
    PCMSGHDR, PCVOID, PEPROCESS, PETHREAD, PIRP, PSECURITY_DESCRIPTOR, PSIZE_T, PSOCKADDR, PULONG,
    PVOID, PWSK_BUF, PWSK_BUF_LIST, PWSK_CLIENT, PWSK_DATA_INDICATION, PWSK_DATAGRAM_INDICATION,
    PWSK_INSPECT_ID, PWSK_SOCKET, SIZE_T, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET,
    STATUS_CONNECTION_ABORTED, STATUS_CONNECTION_ACTIVE, STATUS_CONNECTION_RESET,
    STATUS_EVENT_PENDING, STATUS_INVALID_ADDRESS, STATUS_INVALID_ADDRESS_COMPONENT,
    STATUS_INVALID_CONNECTION, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_PENDING, STATUS_SUCCESS, ULONG, USHORT,
    WSK_CLIENT_CONNECTION_DISPATCH, WSK_CLIENT_STREAM_DISPATCH, WSK_CONTROL_SOCKET_TYPE,
    WSK_EVENT_DISABLE, WSK_EVENT_SEND_BACKLOG, WSK_FLAG_ABORTIVE, WSK_FLAG_WAITALL,
    WSK_INSPECT_ACTION, WSK_PROVIDER_BASIC_DISPATCH, WSK_PROVIDER_CONNECTION_DISPATCH,
    WSK_PROVIDER_DATAGRAM_DISPATCH, WSK_PROVIDER_DISPATCH, WSK_PROVIDER_LISTEN_DISPATCH,
    WSK_PROVIDER_STREAM_DISPATCH,
};

use crate::io::{self, Pending, Seg};
use crate::net::{self, Ev, Kind, Listener, Out, RecvFromReq, RecvReq, Socket, State, UdpEnd};
use crate::script::{Fault, Routine};
use crate::verifier::{self, DISPATCH_LEVEL, NoUnwind, Rule};
use crate::world::{self, WorldGuard, wviolation};

// ---------------------------------------------------------------------------
// Dispatch tables

static BASIC: WSK_PROVIDER_BASIC_DISPATCH = WSK_PROVIDER_BASIC_DISPATCH {
    WskControlSocket: Some(WskControlSocket),
    WskCloseSocket: Some(WskCloseSocket),
};

static LISTEN: WSK_PROVIDER_LISTEN_DISPATCH = WSK_PROVIDER_LISTEN_DISPATCH {
    Basic: BASIC,
    WskBind: Some(WskBind),
    WskAccept: Some(WskAccept),
    WskInspectComplete: Some(WskInspectComplete),
    WskGetLocalAddress: Some(WskGetLocalAddress),
};

static DATAGRAM: WSK_PROVIDER_DATAGRAM_DISPATCH = WSK_PROVIDER_DATAGRAM_DISPATCH {
    Basic: BASIC,
    WskBind: Some(WskBind),
    WskSendTo: Some(WskSendTo),
    WskReceiveFrom: Some(WskReceiveFrom),
    WskRelease: Some(WskReleaseDatagram),
    WskGetLocalAddress: Some(WskGetLocalAddress),
    WskSendMessages: Some(WskSendMessages),
};

static CONNECTION: WSK_PROVIDER_CONNECTION_DISPATCH = WSK_PROVIDER_CONNECTION_DISPATCH {
    Basic: BASIC,
    WskBind: Some(WskBind),
    WskConnect: Some(WskConnect),
    WskGetLocalAddress: Some(WskGetLocalAddress),
    WskGetRemoteAddress: Some(WskGetRemoteAddress),
    WskSend: Some(WskSend),
    WskReceive: Some(WskReceive),
    WskDisconnect: Some(WskDisconnect),
    WskRelease: Some(WskRelease),
    WskConnectEx: Some(WskConnectEx),
    WskSendEx: Some(WskSendEx),
    WskReceiveEx: Some(WskReceiveEx),
};

static STREAM: WSK_PROVIDER_STREAM_DISPATCH = WSK_PROVIDER_STREAM_DISPATCH {
    Basic: BASIC,
    WskBind: Some(WskBind),
    WskAccept: Some(WskAccept),
    WskConnect: Some(WskConnect),
    WskListen: Some(WskListen),
    WskSend: Some(WskSend),
    WskReceive: Some(WskReceive),
    WskDisconnect: Some(WskDisconnect),
    WskRelease: Some(WskRelease),
    WskGetLocalAddress: Some(WskGetLocalAddress),
    WskGetRemoteAddress: Some(WskGetRemoteAddress),
    WskConnectEx: Some(WskConnectEx),
    WskSendEx: Some(WskSendEx),
    WskReceiveEx: Some(WskReceiveEx),
};

/// The provider dispatch table of a socket kind.
pub(crate) fn dispatch_for(kind: Kind) -> PCVOID {
    match kind {
        Kind::Basic => (&raw const BASIC).cast(),
        Kind::Listen => (&raw const LISTEN).cast(),
        Kind::Connection => (&raw const CONNECTION).cast(),
        Kind::Datagram => (&raw const DATAGRAM).cast(),
        Kind::Stream => (&raw const STREAM).cast(),
    }
}

/// `WSK_PROVIDER_DISPATCH` (the version is filled in per world).
pub(crate) fn provider_dispatch_template() -> WSK_PROVIDER_DISPATCH {
    WSK_PROVIDER_DISPATCH {
        Version: 0x0100,
        Reserved: 0,
        WskSocket: Some(WskSocket),
        WskSocketConnect: Some(WskSocketConnect),
        WskControlClient: Some(WskControlClient),
        WskGetAddressInfo: Some(crate::names::WskGetAddressInfo),
        WskFreeAddressInfo: Some(crate::names::WskFreeAddressInfo),
        WskGetNameInfo: Some(crate::names::WskGetNameInfo),
    }
}

// ---------------------------------------------------------------------------
// Call plumbing

/// How a routine's operation ended.
pub(crate) enum Outcome {
    /// Finished: complete the IRP with this status and information.
    Done(NTSTATUS, usize),
    /// Registered as pending (see [`pend`]).
    Pended,
}

/// Registers `irp` as pending on socket `sid` (or on the client when
/// `sid == 0`). If it was already cancelled, returns the outcome to use.
pub(crate) fn pend(
    w: &mut WorldGuard,
    sid: u64,
    irp: PIRP,
    routine: &'static str,
) -> Option<Outcome> {
    let pending = Pending {
        socket: if sid == 0 { None } else { Some(sid) },
        routine,
    };
    if io::irp_pend(w, irp, pending) {
        None
    } else {
        Some(Outcome::Done(wsk_sys::STATUS_CANCELLED, 0))
    }
}

/// Looks a socket up and checks it is usable.
fn enter_socket(w: &mut WorldGuard, socket: PWSK_SOCKET, routine: &str) -> Result<u64, NTSTATUS> {
    let Some(sid) = net::socket_id(w, socket) else {
        wviolation!(
            w,
            Rule::Parameter,
            "{routine}({socket:p}): not a PWSK_SOCKET of this provider"
        );
        return Err(STATUS_INVALID_HANDLE);
    };
    let s = &w.net.sockets[&sid];
    if s.state == State::Closed {
        let kind = s.kind.name();
        wviolation!(
            w,
            Rule::SocketClosed,
            "{routine} on {kind} socket #{sid} after WskCloseSocket"
        );
        return Err(STATUS_INVALID_HANDLE);
    }
    Ok(sid)
}

/// `STATUS_FILE_FORCED_CLOSED` for a socket the provider declared no longer
/// functional ([`Behaviour::SocketFailure`](crate::Behaviour::SocketFailure)):
/// the status the socket routines document for a socket that no longer
/// works and must be closed, its IRP completed with it (for example
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>).
fn check_functional(w: &WorldGuard, sid: u64) -> Result<(), NTSTATUS> {
    if w.net.sockets[&sid].dead {
        Err(wsk_sys::STATUS_FILE_FORCED_CLOSED)
    } else {
        Ok(())
    }
}

/// `STATUS_FILE_FORCED_CLOSED` from a socket routine means "the socket is no
/// longer functional" and the client must close it as soon as possible
/// (for example <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>):
/// the socket is dead from then on, and not closing it is a
/// [`CLOSE_REQUIRED`](Rule::CloseRequired) violation at the end of the test.
fn declare_dead_on(w: &mut WorldGuard, sid: u64, status: NTSTATUS) {
    if status == wsk_sys::STATUS_FILE_FORCED_CLOSED {
        if let Some(s) = w.net.sockets.get_mut(&sid) {
            s.dead = true;
        }
    }
}

/// After `SIO_WSK_SET_TCP_SILENT_MODE` "`WskCloseSocket` is the only valid
/// operation", and sends and disconnects fail with
/// `STATUS_INVALID_DEVICE_STATE`
/// (<https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-tcp-silent-mode>).
fn check_not_silent(w: &mut WorldGuard, sid: u64, routine: &str) -> Result<(), NTSTATUS> {
    if !w.net.sockets[&sid].silent {
        return Ok(());
    }
    wviolation!(
        w,
        Rule::SocketState,
        "{routine} on socket #{sid} in TCP silent mode, where WskCloseSocket is the only valid operation (docs/conformance.md SIO-3, M-20)"
    );
    Err(STATUS_INVALID_DEVICE_STATE)
}

/// What a socket routine requires of its socket's state.
#[derive(Clone, Copy)]
enum Needs {
    /// Bound by the client (`WskBind`, or created bound).
    Bound,
    /// Connected (`WskConnect`, `WskSocketConnect`, accepted).
    Connected,
    /// Listening (a bound listening socket, a stream socket after `WskListen`).
    Listening,
}

/// Reports a [`SOCKET_STATE`](Rule::SocketState) violation (and answers
/// `STATUS_INVALID_DEVICE_STATE`) when socket `sid` is not in the state
/// `routine`'s page requires (`docs/conformance.md` M-13 lists the rows).
fn require(w: &mut WorldGuard, sid: u64, routine: &str, needs: Needs) -> Result<(), NTSTATUS> {
    let s = &w.net.sockets[&sid];
    let (ok, what) = match needs {
        Needs::Bound => (s.local.is_some(), "bound"),
        Needs::Connected => (s.conn.is_some(), "connected"),
        Needs::Listening => (s.listening, "listening"),
    };
    if ok {
        return Ok(());
    }
    let kind = s.kind.name();
    wviolation!(
        w,
        Rule::SocketState,
        "{routine} on {kind} socket #{sid}, which is not {what} (docs/conformance.md M-13)"
    );
    Err(STATUS_INVALID_DEVICE_STATE)
}

/// Reports a [`SOCKET_STATE`](Rule::SocketState) violation (and answers
/// `STATUS_INVALID_ADDRESS`) for an address of another family than socket
/// `sid`'s: the routines want "the specific SOCKADDR structure type that
/// corresponds to the address family that the WSK application specified
/// when it created the socket"
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>).
fn require_family(
    w: &mut WorldGuard,
    sid: u64,
    routine: &str,
    a: &SocketAddr,
) -> Result<(), NTSTATUS> {
    let family = w.net.sockets[&sid].family;
    if crate::addr::family(a) == family {
        return Ok(());
    }
    wviolation!(
        w,
        Rule::SocketState,
        "{routine} on socket #{sid} of family {family} with an address of family {} (docs/conformance.md M-14)",
        crate::addr::family(a)
    );
    Err(STATUS_INVALID_ADDRESS)
}

/// Runs a socket routine that takes an IRP.
fn socket_irp_call(
    socket: PWSK_SOCKET,
    irp: PIRP,
    r: Routine,
    allowed: fn(&Socket) -> bool,
    body: impl FnOnce(&mut WorldGuard, u64, PIRP, &mut Out) -> Outcome,
) -> NTSTATUS {
    let name = r.name();
    verifier::check_irql_max(name, DISPATCH_LEVEL);
    verifier::check_not_in_completion(name);
    if let Some(st) = world::lock().faults.stubbed(r) {
        return st;
    }
    if let Err(st) = io::irp_enter(irp, name) {
        return st;
    }
    let mut out = Out::default();
    let mut w = world::lock();
    let sid = match enter_socket(&mut w, socket, name).and_then(|sid| {
        check_functional(&w, sid)?;
        check_not_silent(&mut w, sid, name)?;
        Ok(sid)
    }) {
        Ok(s) => s,
        Err(st) => {
            drop(w);
            return io::complete_dispatch(irp, st, 0);
        }
    };
    if !allowed(&w.net.sockets[&sid]) {
        let kind = w.net.sockets[&sid].kind.name();
        wviolation!(
            w,
            Rule::Parameter,
            "{name} is not valid on {kind} socket #{sid}"
        );
        drop(w);
        return io::complete_dispatch(irp, STATUS_NOT_SUPPORTED, 0);
    }
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.calls_in_progress += 1;
    }
    let outcome = match w.faults.take(r) {
        Some(Fault::Fail(st)) => {
            declare_dead_on(&mut w, sid, st);
            Outcome::Done(st, 0)
        }
        Some(Fault::Hang) => {
            if let Some(o) = pend(&mut w, sid, irp, name) {
                o
            } else {
                if let Some(s) = w.net.sockets.get_mut(&sid) {
                    s.hung.insert(irp as usize);
                }
                Outcome::Pended
            }
        }
        None => body(&mut w, sid, irp, &mut out),
    };
    drop(w);
    // Event deliveries this call caused run before it returns (and count as
    // inside it); its own completion runs after the call is over.
    net::flush(out);
    if let Some(s) = world::lock().net.sockets.get_mut(&sid) {
        s.calls_in_progress -= 1;
    }
    match outcome {
        Outcome::Done(st, info) => io::complete_dispatch(irp, st, info),
        Outcome::Pended => STATUS_PENDING,
    }
}

/// Resolves a `WSK_BUF`, reporting a violation on a bad one.
fn resolve_buf(
    w: &mut WorldGuard,
    buf: PWSK_BUF,
    routine: &str,
) -> Result<(Vec<Seg>, Vec<usize>), NTSTATUS> {
    if buf.is_null() {
        wviolation!(w, Rule::Parameter, "{routine} with a NULL WSK_BUF");
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: the client passes a valid WSK_BUF.
    let b = unsafe { buf.read() };
    match io::buf_segments(b.Mdl, b.Offset as usize, b.Length, routine) {
        Ok(v) => Ok(v),
        Err(msg) => {
            wviolation!(w, Rule::Mdl, "{msg}");
            Err(STATUS_INVALID_PARAMETER)
        }
    }
}

fn any_socket(_: &Socket) -> bool {
    true
}
fn bindable(s: &Socket) -> bool {
    s.kind != Kind::Basic
}
fn connection(s: &Socket) -> bool {
    s.is_connection()
}
fn listener(s: &Socket) -> bool {
    s.kind == Kind::Listen || s.kind == Kind::Stream
}
fn stream(s: &Socket) -> bool {
    s.kind == Kind::Stream
}
fn datagram(s: &Socket) -> bool {
    s.kind == Kind::Datagram
}

// ---------------------------------------------------------------------------
// Client-level routines

fn kind_from_flags(flags: ULONG) -> Option<Kind> {
    match flags {
        wsk_sys::WSK_FLAG_BASIC_SOCKET => Some(Kind::Basic),
        wsk_sys::WSK_FLAG_LISTEN_SOCKET => Some(Kind::Listen),
        wsk_sys::WSK_FLAG_CONNECTION_SOCKET => Some(Kind::Connection),
        wsk_sys::WSK_FLAG_DATAGRAM_SOCKET => Some(Kind::Datagram),
        wsk_sys::WSK_FLAG_STREAM_SOCKET => Some(Kind::Stream),
        _ => None,
    }
}

/// Runs a client-level routine that takes an IRP (for `names`).
pub(crate) fn client_irp_call_pub(
    client: PWSK_CLIENT,
    irp: PIRP,
    r: Routine,
    body: impl FnOnce(&mut WorldGuard, usize, PIRP, &mut Out) -> Outcome,
) -> NTSTATUS {
    client_irp_call(client, irp, r, body)
}

/// Runs a client-level routine that takes an IRP.
fn client_irp_call(
    client: PWSK_CLIENT,
    irp: PIRP,
    r: Routine,
    body: impl FnOnce(&mut WorldGuard, usize, PIRP, &mut Out) -> Outcome,
) -> NTSTATUS {
    let name = r.name();
    verifier::check_not_in_completion(name);
    if let Some(st) = world::lock().faults.stubbed(r) {
        return st;
    }
    if let Err(st) = io::irp_enter(irp, name) {
        return st;
    }
    let mut out = Out::default();
    let mut w = world::lock();
    let outcome = if crate::netio::check_client(&mut w, client, name).is_none() {
        Outcome::Done(STATUS_INVALID_HANDLE, 0)
    } else {
        match w.faults.take(r) {
            Some(Fault::Fail(st)) => Outcome::Done(st, 0),
            Some(Fault::Hang) => {
                if let Some(o) = pend(&mut w, 0, irp, name) {
                    o
                } else {
                    w.net.client_irps.insert(irp as usize);
                    Outcome::Pended
                }
            }
            None => body(&mut w, client as usize, irp, &mut out),
        }
    };
    drop(w);
    net::flush(out);
    match outcome {
        Outcome::Done(st, info) => io::complete_dispatch(irp, st, info),
        Outcome::Pended => STATUS_PENDING,
    }
}

/// `SocketContext` (and `AcceptSocketContext`) "should be NULL" when no
/// callback will be enabled, and always for a basic socket
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket>,
/// [`WskAccept`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept),
/// [`WskAcceptEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event)):
/// a context without a dispatch table is a [`PARAMETER`](Rule::Parameter)
/// violation (`docs/conformance.md` SOCK-4, ACC-2, ACC-EV-4, M-21).
pub(crate) fn check_context(
    w: &mut crate::world::World,
    routine: &str,
    context: PVOID,
    dispatch: PCVOID,
    basic: bool,
) {
    if !context.is_null() && (dispatch.is_null() || basic) {
        wviolation!(
            w,
            Rule::Parameter,
            "{routine}: a socket context ({context:p}) for a socket without callbacks (the \
             context should be NULL when no event callback will be enabled, and always for a \
             basic socket)"
        );
    }
}

/// `Flags` is reserved and must be 0 for `WskBind`, `WskConnect`,
/// `WskConnectEx`, `WskAccept`, `WskSocketConnect`, `WskSendTo`,
/// `WskReceiveFrom` and `WskSendMessages` (their pages): anything else is a
/// [`PARAMETER`](Rule::Parameter) violation (`docs/conformance.md` M-24).
fn reserved_flags(routine: &str, flags: ULONG) {
    if flags != 0 {
        verifier::report(
            Rule::Parameter,
            format_args!(
                "{routine} with Flags {flags:#x}: the parameter is reserved and must be 0"
            ),
        );
    }
}

/// Creates a socket and sets its client tables; `Err` is the failure status.
#[allow(clippy::too_many_arguments)] // mirrors WskSocket
fn new_socket(
    w: &mut WorldGuard,
    client: usize,
    family: u16,
    socktype: u16,
    protocol: u32,
    kind: Kind,
    context: PVOID,
    dispatch: PCVOID,
) -> Result<u64, NTSTATUS> {
    if kind == Kind::Stream && !w.cfg.stream_sockets {
        return Err(STATUS_INVALID_PARAMETER);
    }
    if let Some(st) = w.cfg.other_socket_kinds_refused {
        if kind != Kind::Listen && kind != Kind::Connection {
            return Err(st);
        }
    }
    if family != AF_INET && family != AF_INET6 {
        return Err(STATUS_NOT_SUPPORTED);
    }
    let tcp = IPPROTO_TCP as u32;
    let udp = IPPROTO_UDP as u32;
    let ok = match kind {
        Kind::Basic => true,
        Kind::Listen | Kind::Connection | Kind::Stream => {
            socktype == SOCK_STREAM && (protocol == tcp || protocol == 0)
        }
        Kind::Datagram => socktype == SOCK_DGRAM && (protocol == udp || protocol == 0),
    };
    if !ok {
        return Err(STATUS_NOT_SUPPORTED);
    }
    check_context(w, "WskSocket", context, dispatch, kind == Kind::Basic);
    let sid = net::create_socket(w, client, kind, family, socktype, protocol);
    let s = w
        .net
        .sockets
        .get_mut(&sid)
        .ok_or(STATUS_INVALID_PARAMETER)?;
    s.context = context as usize;
    let d = dispatch as usize;
    match kind {
        Kind::Listen => s.listen_dispatch = d,
        Kind::Connection => s.conn_dispatch = d,
        Kind::Datagram => s.dgram_dispatch = d,
        Kind::Stream => {
            if d != 0 {
                // SAFETY: a stream socket's dispatch is a
                // WSK_CLIENT_STREAM_DISPATCH the client keeps alive.
                let t = unsafe { (d as *const WSK_CLIENT_STREAM_DISPATCH).read() };
                s.listen_dispatch = t.Listen as usize;
                s.conn_dispatch = t.Connect as usize;
            }
        }
        Kind::Basic => {}
    }
    Ok(sid)
}

/// `WskSocket`: creates a basic, listen, connection, datagram or stream
/// socket; `Irp->IoStatus.Information` receives the `PWSK_SOCKET`.
///
/// # Safety
///
/// Provider routine: valid `Client` and IRP; `Dispatch` valid for the kind.
pub(crate) unsafe extern "system" fn WskSocket(
    Client: PWSK_CLIENT,
    AddressFamily: ADDRESS_FAMILY,
    SocketType: USHORT,
    Protocol: ULONG,
    Flags: ULONG,
    SocketContext: PVOID,
    Dispatch: PCVOID,
    OwningProcess: PEPROCESS,
    OwningThread: PETHREAD,
    SecurityDescriptor: PSECURITY_DESCRIPTOR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (OwningProcess, OwningThread, SecurityDescriptor);
    verifier::check_irql_max("WskSocket", DISPATCH_LEVEL);
    client_irp_call(Client, Irp, Routine::WskSocket, |w, client, _irp, _out| {
        let Some(kind) = kind_from_flags(Flags) else {
            wviolation!(w, Rule::Parameter, "WskSocket with Flags {Flags:#x}");
            return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
        };
        match new_socket(
            w,
            client,
            AddressFamily,
            SocketType,
            Protocol,
            kind,
            SocketContext,
            Dispatch,
        ) {
            Ok(sid) => Outcome::Done(STATUS_SUCCESS, w.net.sockets[&sid].obj),
            Err(st) => Outcome::Done(st, 0),
        }
    })
}

/// `WskSocketConnect`: creates a connection socket, binds it to
/// `LocalAddress` and connects it to `RemoteAddress`;
/// `Irp->IoStatus.Information` receives the `PWSK_SOCKET`.
///
/// # Safety
///
/// Provider routine: valid arguments and IRP.
pub(crate) unsafe extern "system" fn WskSocketConnect(
    Client: PWSK_CLIENT,
    SocketType: USHORT,
    Protocol: ULONG,
    LocalAddress: PSOCKADDR,
    RemoteAddress: PSOCKADDR,
    Flags: ULONG,
    SocketContext: PVOID,
    Dispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
    OwningProcess: PEPROCESS,
    OwningThread: PETHREAD,
    SecurityDescriptor: PSECURITY_DESCRIPTOR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (OwningProcess, OwningThread, SecurityDescriptor);
    reserved_flags("WskSocketConnect", Flags);
    verifier::check_irql_max("WskSocketConnect", DISPATCH_LEVEL);
    client_irp_call(
        Client,
        Irp,
        Routine::WskSocketConnect,
        |w, client, irp, out| {
            // SAFETY: the client passes valid socket addresses.
            let local = match unsafe { crate::addr::read(LocalAddress) } {
                Ok(a) => a,
                Err(st) => return Outcome::Done(st, 0),
            };
            // SAFETY: as above.
            let remote = match unsafe { crate::addr::read(RemoteAddress) } {
                Ok(a) => a,
                Err(st) => return Outcome::Done(st, 0),
            };
            let family = crate::addr::family(&local);
            let sid = match new_socket(
                w,
                client,
                family,
                SocketType,
                Protocol,
                Kind::Connection,
                SocketContext,
                Dispatch.cast(),
            ) {
                Ok(s) => s,
                Err(st) => return Outcome::Done(st, 0),
            };
            if let Err(st) = do_bind(w, sid, local) {
                net::close_socket(w, sid, out);
                forget_socket(w, sid);
                return Outcome::Done(st, 0);
            }
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                s.connect_is_socket_connect = true;
            }
            match do_connect(w, sid, remote, irp, "WskSocketConnect", out) {
                Outcome::Done(st, _) if st == STATUS_SUCCESS => {
                    Outcome::Done(STATUS_SUCCESS, w.net.sockets[&sid].obj)
                }
                Outcome::Done(st, _) => {
                    net::close_socket(w, sid, out);
                    forget_socket(w, sid);
                    Outcome::Done(st, 0)
                }
                Outcome::Pended => Outcome::Pended,
            }
        },
    )
}

/// Makes a socket the client never received invisible to leak checks.
fn forget_socket(w: &mut WorldGuard, sid: u64) {
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.state = State::Closed;
    }
    w.stats.sockets_closed = w.stats.sockets_closed.saturating_sub(1);
}

const TRANSPORTS: [(u16, u32, u16); 4] = [
    (SOCK_STREAM, IPPROTO_TCP as u32, AF_INET),
    (SOCK_STREAM, IPPROTO_TCP as u32, AF_INET6),
    (SOCK_DGRAM, IPPROTO_UDP as u32, AF_INET),
    (SOCK_DGRAM, IPPROTO_UDP as u32, AF_INET6),
];

/// `WskControlClient`: `WSK_TRANSPORT_LIST_QUERY` (inline, no IRP),
/// `WSK_TRANSPORT_LIST_CHANGE` (an IRP that stays pending until cancelled),
/// `WSK_SET_STATIC_EVENT_CALLBACKS` (before any socket is created),
/// `WSK_CACHE_SD`/`WSK_RELEASE_SD`; the TDI codes are not supported.
///
/// # Safety
///
/// Provider routine: valid buffers of the given sizes.
#[allow(clippy::too_many_lines)] // one arm per control code
pub(crate) unsafe extern "system" fn WskControlClient(
    Client: PWSK_CLIENT,
    ControlCode: ULONG,
    InputSize: SIZE_T,
    InputBuffer: PVOID,
    OutputSize: SIZE_T,
    OutputBuffer: PVOID,
    OutputSizeReturned: PSIZE_T,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("WskControlClient", DISPATCH_LEVEL);
    if ControlCode != wsk_sys::WSK_TRANSPORT_LIST_CHANGE {
        verifier::check_not_in_completion("WskControlClient");
    }
    if ControlCode == wsk_sys::WSK_TRANSPORT_LIST_CHANGE {
        return client_irp_call(
            Client,
            Irp,
            Routine::WskControlClient,
            |w, client, irp, _out| {
                if let Some(o) = pend(w, 0, irp, "WskControlClient(WSK_TRANSPORT_LIST_CHANGE)") {
                    return o;
                }
                w.net.client_irps.insert(irp as usize);
                w.net.transport_change_irps.insert(irp as usize, client);
                Outcome::Pended
            },
        );
    }
    let mut w = world::lock();
    if crate::netio::check_client(&mut w, Client, "WskControlClient").is_none() {
        return STATUS_INVALID_HANDLE;
    }
    if let Some(Fault::Fail(st)) = w.faults.take(Routine::WskControlClient) {
        return st;
    }
    let (status, written) = match ControlCode {
        wsk_sys::WSK_TRANSPORT_LIST_QUERY => {
            if !Irp.is_null() || OutputSizeReturned.is_null() {
                wviolation!(
                    w,
                    Rule::Parameter,
                    "WSK_TRANSPORT_LIST_QUERY needs Irp == NULL and OutputSizeReturned != NULL"
                );
                return STATUS_INVALID_PARAMETER;
            }
            let need = TRANSPORTS.len() * core::mem::size_of::<wsk_sys::WSK_TRANSPORT>();
            if OutputSize < need || OutputBuffer.is_null() {
                let too_small = if w.adversary(crate::Behaviour::DocumentedStatuses) {
                    wsk_sys::STATUS_BUFFER_OVERFLOW
                } else {
                    wsk_sys::STATUS_BUFFER_TOO_SMALL
                };
                (too_small, need)
            } else {
                let out: *mut wsk_sys::WSK_TRANSPORT = OutputBuffer.cast();
                for (i, (st, proto, af)) in TRANSPORTS.iter().enumerate() {
                    let t = wsk_sys::WSK_TRANSPORT {
                        Version: 0x0100,
                        SocketType: *st,
                        Protocol: *proto,
                        AddressFamily: *af,
                        // The simulator's own transport-provider GUID,
                        // {5753494D-0001-4000-8000-77736B2D7369}: not
                        // Microsoft's, which no client should depend on.
                        ProviderId: wsk_sys::GUID {
                            Data1: 0x5753_494D,
                            Data2: 0x0001,
                            Data3: 0x4000,
                            Data4: [0x80, 0x00, 0x77, 0x73, 0x6B, 0x2D, 0x73, 0x69],
                        },
                    };
                    let slot = out.wrapping_add(i);
                    // SAFETY: `OutputSize >= need`: room for every entry.
                    unsafe { slot.write_unaligned(t) };
                }
                (STATUS_SUCCESS, need)
            }
        }
        wsk_sys::WSK_SET_STATIC_EVENT_CALLBACKS => {
            if InputBuffer.is_null()
                || InputSize < core::mem::size_of::<wsk_sys::WSK_EVENT_CALLBACK_CONTROL>()
            {
                return STATUS_INVALID_PARAMETER;
            }
            // SAFETY: checked size; the client passes a valid structure.
            let ctl = unsafe {
                InputBuffer
                    .cast::<wsk_sys::WSK_EVENT_CALLBACK_CONTROL>()
                    .read_unaligned()
            };
            let has_sockets = w.net.sockets.values().any(|s| s.client == Client as usize);
            if has_sockets {
                // "before the client creates any socket"
                // (https://learn.microsoft.com/windows-hardware/drivers/network/wsk-set-static-event-callbacks;
                // docs/conformance.md CC-STATIC-1, M-24).
                wviolation!(
                    w,
                    Rule::Parameter,
                    "WSK_SET_STATIC_EVENT_CALLBACKS after the client created a socket"
                );
                (STATUS_INVALID_DEVICE_STATE, 0)
            } else {
                w.net
                    .static_events
                    .insert(Client as usize, ctl.EventMask & !WSK_EVENT_DISABLE);
                (STATUS_SUCCESS, 0)
            }
        }
        wsk_sys::WSK_CACHE_SD | wsk_sys::WSK_RELEASE_SD => {
            match security_descriptor_control(
                &mut w,
                ControlCode,
                (InputBuffer, InputSize),
                (OutputBuffer, OutputSize),
                Irp,
            ) {
                Ok(done) => done,
                Err(st) => return st,
            }
        }
        wsk_sys::WSK_TDI_DEVICENAME_MAPPING | wsk_sys::WSK_TDI_BEHAVIOR => {
            (STATUS_NOT_SUPPORTED, 0)
        }
        _ => (STATUS_INVALID_PARAMETER, 0),
    };
    drop(w);
    if !OutputSizeReturned.is_null() {
        // SAFETY: the client passes a writable SIZE_T.
        unsafe { OutputSizeReturned.write(written) };
    }
    if Irp.is_null() {
        status
    } else {
        match io::irp_enter(Irp, "WskControlClient") {
            Ok(()) => io::complete_dispatch(Irp, status, written),
            Err(st) => st,
        }
    }
}

/// `WSK_CACHE_SD` and `WSK_RELEASE_SD` (no IRP): `Err` is returned at once.
fn security_descriptor_control(
    w: &mut WorldGuard,
    code: ULONG,
    input: (PVOID, SIZE_T),
    output: (PVOID, SIZE_T),
    irp: PIRP,
) -> Result<(NTSTATUS, usize), NTSTATUS> {
    match code {
        wsk_sys::WSK_CACHE_SD => {
            // In: a PSECURITY_DESCRIPTOR; out: the cached copy's address.
            let psd = core::mem::size_of::<PVOID>();
            if !irp.is_null()
                || input.0.is_null()
                || input.1 < psd
                || output.0.is_null()
                || output.1 < psd
            {
                wviolation!(
                    w,
                    Rule::Parameter,
                    "WSK_CACHE_SD needs Irp == NULL and PSECURITY_DESCRIPTOR input and output"
                );
                return Err(STATUS_INVALID_PARAMETER);
            }
            // SAFETY: checked size; the client passes a PSECURITY_DESCRIPTOR.
            let sd = unsafe { input.0.cast::<PVOID>().read_unaligned() };
            if sd.is_null() {
                Ok((STATUS_INVALID_PARAMETER, 0))
            } else {
                // The "copy": a distinct heap cell, released by WSK_RELEASE_SD.
                let copy = Box::new(sd as u64);
                let addr = core::ptr::from_ref::<u64>(&copy) as usize;
                w.net.cached_sds.insert(addr, copy);
                // SAFETY: checked size; the client passes a writable PSECURITY_DESCRIPTOR.
                unsafe { output.0.cast::<PVOID>().write_unaligned(addr as PVOID) };
                Ok((STATUS_SUCCESS, 0))
            }
        }
        wsk_sys::WSK_RELEASE_SD => {
            let psd = core::mem::size_of::<PVOID>();
            if !irp.is_null() || input.0.is_null() || input.1 < psd {
                wviolation!(
                    w,
                    Rule::Parameter,
                    "WSK_RELEASE_SD needs Irp == NULL and a PSECURITY_DESCRIPTOR input"
                );
                return Err(STATUS_INVALID_PARAMETER);
            }
            // SAFETY: checked size; the client passes a PSECURITY_DESCRIPTOR.
            let sd = unsafe { input.0.cast::<PVOID>().read_unaligned() } as usize;
            if w.net.cached_sds.remove(&sd).is_none() {
                wviolation!(
                    w,
                    Rule::Parameter,
                    "WSK_RELEASE_SD of {sd:#x}, which is not a cached security descriptor (released twice?)"
                );
                return Err(STATUS_INVALID_PARAMETER);
            }
            Ok((STATUS_SUCCESS, 0))
        }
        _ => Err(STATUS_INVALID_PARAMETER),
    }
}

// ---------------------------------------------------------------------------
// Basic: control and close

fn read_ulong(buf: PVOID, size: SIZE_T) -> Option<u32> {
    if buf.is_null() || size < 4 {
        return None;
    }
    // SAFETY: at least 4 readable bytes.
    Some(unsafe { buf.cast::<u32>().read_unaligned() })
}

fn default_option(s: &Socket, level: u32, code: u32) -> Option<Vec<u8>> {
    let v: u32 = match (level, code) {
        (SOL_SOCKET, wsk_sys::SO_RCVBUF | wsk_sys::SO_SNDBUF) => 65536,
        (SOL_SOCKET, wsk_sys::SO_TYPE) => u32::from(s.socktype),
        (SOL_SOCKET, wsk_sys::SO_CONDITIONAL_ACCEPT) => u32::from(s.conditional),
        (
            SOL_SOCKET,
            wsk_sys::SO_REUSEADDR | wsk_sys::SO_KEEPALIVE | wsk_sys::SO_EXCLUSIVEADDRUSE,
        )
        | (6, wsk_sys::TCP_NODELAY) => 0,
        (41, wsk_sys::IPV6_V6ONLY) => 1,
        _ => return None,
    };
    Some(v.to_le_bytes().to_vec())
}

/// Reads and checks a `WSK_EVENT_CALLBACK_CONTROL`: `(disable, mask)`, or
/// the status to fail with.
fn read_event_control(
    w: &mut WorldGuard,
    sid: u64,
    input: PVOID,
    size: SIZE_T,
) -> Result<(bool, u32), NTSTATUS> {
    if input.is_null() || size < core::mem::size_of::<wsk_sys::WSK_EVENT_CALLBACK_CONTROL>() {
        wviolation!(
            w,
            Rule::Parameter,
            "SO_WSK_EVENT_CALLBACK without a WSK_EVENT_CALLBACK_CONTROL"
        );
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: checked size; the client passes a valid structure.
    let ctl = unsafe {
        input
            .cast::<wsk_sys::WSK_EVENT_CALLBACK_CONTROL>()
            .read_unaligned()
    };
    // SAFETY: `NpiId` points to an NPIID (a GUID) or is NULL.
    let npi = (!ctl.NpiId.is_null()).then(|| unsafe { ctl.NpiId.read_unaligned() });
    if npi != Some(NPI_WSK_INTERFACE_ID) {
        return Err(STATUS_NOT_SUPPORTED);
    }
    let kind = w.net.sockets[&sid].kind;
    let disable = ctl.EventMask & WSK_EVENT_DISABLE != 0;
    let mask = ctl.EventMask & !WSK_EVENT_DISABLE;
    let valid = net::valid_events(kind);
    if mask == 0 || mask & !valid != 0 {
        wviolation!(
            w,
            Rule::Parameter,
            "SO_WSK_EVENT_CALLBACK mask {:#x} is not valid for a {} socket",
            ctl.EventMask,
            kind.name()
        );
        return Err(STATUS_INVALID_PARAMETER);
    }
    Ok((disable, mask))
}

/// Handles `SO_WSK_EVENT_CALLBACK`.
fn event_callback_option(
    w: &mut WorldGuard,
    sid: u64,
    input: PVOID,
    size: SIZE_T,
    irp: PIRP,
    out: &mut Out,
) -> Outcome {
    let done = |st| Outcome::Done(st, 0);
    let (disable, mask) = match read_event_control(w, sid, input, size) {
        Ok(v) => v,
        Err(st) => return done(st),
    };
    let kind = w.net.sockets[&sid].kind;
    // Enabling and disabling: listening and datagram sockets once bound,
    // connection sockets once connected
    // (<https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>).
    let needs = match kind {
        Kind::Listen | Kind::Datagram => Needs::Bound,
        Kind::Stream if w.net.sockets[&sid].listening => Needs::Listening,
        Kind::Connection | Kind::Stream | Kind::Basic => Needs::Connected,
    };
    if let Err(st) = require(w, sid, "SO_WSK_EVENT_CALLBACK", needs) {
        return done(st);
    }
    if disable {
        if mask.count_ones() != 1 {
            wviolation!(
                w,
                Rule::Parameter,
                "SO_WSK_EVENT_CALLBACK disables one event at a time (mask {:#x})",
                mask | WSK_EVENT_DISABLE
            );
            return done(STATUS_INVALID_PARAMETER);
        }
        if let Some(refused) = fixed_event_refusal(w, sid, mask, "disabled") {
            return refused;
        }
        return disable_event(w, sid, mask, irp);
    }
    if !irp.is_null() {
        wviolation!(
            w,
            Rule::Parameter,
            "SO_WSK_EVENT_CALLBACK enabling events must pass Irp == NULL"
        );
    }
    if w.net.sockets[&sid].state == State::Unaccepted {
        // Enabling events on a socket inside its own WskAcceptEvent: no page
        // forbids calls there (the guide's sample makes some), but the
        // provider learns the socket's dispatch table only when the callback
        // returns. Microsoft says nothing of this case: fail it, the harder
        // answer, without calling it a violation.
        return done(STATUS_INVALID_DEVICE_STATE);
    }
    if let Some(refused) = fixed_event_refusal(w, sid, mask, "re-enabled") {
        return refused;
    }
    // The client's table must have each callback it enables.
    let missing = missing_callback(&w.net.sockets[&sid], mask);
    if let Some(cb) = missing {
        wviolation!(
            w,
            Rule::Parameter,
            "SO_WSK_EVENT_CALLBACK enables an event whose {cb} is NULL"
        );
        return done(STATUS_INVALID_PARAMETER);
    }
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return done(STATUS_INVALID_PARAMETER);
    };
    let newly = mask & !s.events;
    s.events |= mask;
    s.blocked = false;
    if newly & WSK_EVENT_SEND_BACKLOG != 0 && s.is_connection() {
        let n = w.cfg.ideal_send_backlog;
        if let Some(s) = w.net.sockets.get_mut(&sid) {
            s.ev_queue.push_back(Ev::SendBacklog(n));
        }
    }
    if !out.deliver_later.contains(&sid) {
        out.deliver_later.push(sid);
    }
    done(STATUS_SUCCESS)
}

/// [`Behaviour::FixedEvents`](crate::Behaviour::FixedEvents): statically
/// enabled events cannot be disabled or enabled again
/// (<https://learn.microsoft.com/windows-hardware/drivers/network/wsk-set-static-event-callbacks>),
/// and connection events enabled on a listening socket cannot be disabled
/// there (<https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>).
/// Microsoft names no status for trying: the simulator reports a
/// [`PARAMETER`](Rule::Parameter) violation and fails with
/// `STATUS_INVALID_PARAMETER`.
fn fixed_event_refusal(w: &mut WorldGuard, sid: u64, mask: u32, how: &str) -> Option<Outcome> {
    if !w.adversary(crate::Behaviour::FixedEvents) {
        return None;
    }
    let s = &w.net.sockets[&sid];
    let conn_events =
        wsk_sys::WSK_EVENT_RECEIVE | wsk_sys::WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG;
    let inherited_fixed = if how == "disabled" && s.listen_kind() == Kind::Listen {
        s.events & conn_events & mask
    } else {
        0
    };
    let fixed = s.static_events & mask;
    if fixed == 0 && inherited_fixed == 0 {
        return None;
    }
    let why = if fixed != 0 {
        "statically enabled (WSK_SET_STATIC_EVENT_CALLBACKS) events"
    } else {
        "connection events enabled on a listening socket"
    };
    wviolation!(
        w,
        Rule::Parameter,
        "SO_WSK_EVENT_CALLBACK on socket #{sid}: {why} cannot be {how} (mask {mask:#x})"
    );
    Some(Outcome::Done(STATUS_INVALID_PARAMETER, 0))
}

/// Disables one event. While a call to that callback is in progress, under
/// [`Behaviour::DisableWaitsForCallbacks`](crate::Behaviour::DisableWaitsForCallbacks)
/// the disable completes once the call returns: the IRP pends
/// (`STATUS_PENDING`), or without an IRP the routine returns
/// `STATUS_EVENT_PENDING`
/// (<https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback>).
fn disable_event(w: &mut WorldGuard, sid: u64, mask: u32, irp: PIRP) -> Outcome {
    let contract = w.adversary(crate::Behaviour::DisableWaitsForCallbacks);
    let s = &w.net.sockets[&sid];
    let in_progress = s.callbacks_in_progress > 0 && s.running_event & mask != 0;
    if !(contract && in_progress) {
        if let Some(s) = w.net.sockets.get_mut(&sid) {
            s.events &= !mask;
        }
        return Outcome::Done(STATUS_SUCCESS, 0);
    }
    if irp.is_null() {
        if let Some(s) = w.net.sockets.get_mut(&sid) {
            s.deferred_disables.push((mask, 0));
        }
        return Outcome::Done(STATUS_EVENT_PENDING, 0);
    }
    if let Some(o) = pend(w, sid, irp, "WskControlSocket(SO_WSK_EVENT_CALLBACK)") {
        return o;
    }
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.deferred_disables.push((mask, irp as usize));
    }
    Outcome::Pended
}

fn missing_callback(s: &Socket, mask: u32) -> Option<&'static str> {
    use wsk_sys::{
        WSK_EVENT_ACCEPT, WSK_EVENT_DISCONNECT, WSK_EVENT_RECEIVE, WSK_EVENT_RECEIVE_FROM,
    };
    let read_conn = || -> Option<WSK_CLIENT_CONNECTION_DISPATCH> {
        (s.conn_dispatch != 0).then(|| {
            // SAFETY: the client's table, kept alive while the socket is open.
            unsafe { (s.conn_dispatch as *const WSK_CLIENT_CONNECTION_DISPATCH).read() }
        })
    };
    if s.is_connection() {
        let t = read_conn();
        if mask & WSK_EVENT_RECEIVE != 0 && t.and_then(|t| t.WskReceiveEvent).is_none() {
            return Some("WskReceiveEvent");
        }
        if mask & WSK_EVENT_DISCONNECT != 0 && t.and_then(|t| t.WskDisconnectEvent).is_none() {
            return Some("WskDisconnectEvent");
        }
        if mask & WSK_EVENT_SEND_BACKLOG != 0 && t.and_then(|t| t.WskSendBacklogEvent).is_none() {
            return Some("WskSendBacklogEvent");
        }
    }
    if mask & WSK_EVENT_ACCEPT != 0 {
        let ok = s.listen_dispatch != 0 && {
            // SAFETY: as above.
            let t =
                unsafe { (s.listen_dispatch as *const wsk_sys::WSK_CLIENT_LISTEN_DISPATCH).read() };
            t.WskAcceptEvent.is_some()
        };
        if !ok {
            return Some("WskAcceptEvent");
        }
    }
    if mask & WSK_EVENT_RECEIVE_FROM != 0 {
        let ok = s.dgram_dispatch != 0 && {
            // SAFETY: as above.
            let t = unsafe {
                (s.dgram_dispatch as *const wsk_sys::WSK_CLIENT_DATAGRAM_DISPATCH).read()
            };
            t.WskReceiveFromEvent.is_some()
        };
        if !ok {
            return Some("WskReceiveFromEvent");
        }
    }
    None
}

/// Runs a `WskControlSocket` request.
#[allow(clippy::too_many_arguments)] // mirrors WskControlSocket
fn control_request(
    w: &mut WorldGuard,
    sid: u64,
    ty: WSK_CONTROL_SOCKET_TYPE,
    code: ULONG,
    level: ULONG,
    input: (PVOID, SIZE_T),
    output: (PVOID, SIZE_T),
    irp: PIRP,
    out: &mut Out,
) -> Outcome {
    if ty == wsk_sys::WskSetOption && level == SOL_SOCKET && code == wsk_sys::SO_WSK_EVENT_CALLBACK
    {
        return event_callback_option(w, sid, input.0, input.1, irp, out);
    }
    if ty == wsk_sys::WskIoctl
        && code == wsk_sys::SIO_WSK_QUERY_INSPECT_ID
        && !irp.is_null()
        && w.adversary(crate::Behaviour::DocumentedStatuses)
    {
        // https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-query-inspect-id
        wviolation!(
            w,
            Rule::Parameter,
            "SIO_WSK_QUERY_INSPECT_ID must be called with Irp == NULL"
        );
    }
    if irp.is_null() {
        if let Some(page) = irp_required(ty, level, code) {
            wviolation!(
                w,
                Rule::Parameter,
                "WskControlSocket(type {ty}, level {level:#x}, code {code:#x}) without an IRP: \
                 the page requires one \
                 (https://learn.microsoft.com/windows-hardware/drivers/network/{page}; \
                 docs/conformance.md M-24)"
            );
        }
    }
    let (st, n) = control(w, sid, ty, code, level, input, output);
    Outcome::Done(st, n)
}

/// The network-guide page (its name) that requires an IRP for this
/// option or IOCTL, if one does (`SO_WSK_EVENT_CALLBACK` and
/// `SIO_WSK_QUERY_INSPECT_ID` take none; options without a WSK page are not
/// checked).
fn irp_required(ty: WSK_CONTROL_SOCKET_TYPE, level: ULONG, code: ULONG) -> Option<&'static str> {
    if ty == wsk_sys::WskIoctl {
        return match code {
            wsk_sys::SIO_WSK_SET_REMOTE_ADDRESS => Some("sio-wsk-set-remote-address"),
            wsk_sys::SIO_WSK_SET_SENDTO_ADDRESS => Some("sio-wsk-set-sendto-address"),
            wsk_sys::SIO_WSK_QUERY_IDEAL_SEND_BACKLOG => Some("sio-wsk-query-ideal-send-backlog"),
            wsk_sys::SIO_WSK_QUERY_RECEIVE_BACKLOG => Some("sio-wsk-query-receive-backlog"),
            wsk_sys::SIO_WSK_SET_TCP_SILENT_MODE => Some("sio-wsk-set-tcp-silent-mode"),
            _ => None,
        };
    }
    if level != SOL_SOCKET {
        return None;
    }
    match code {
        wsk_sys::SO_REUSEADDR => Some("so-reuseaddr"),
        wsk_sys::SO_EXCLUSIVEADDRUSE => Some("so-exclusiveaddruse"),
        wsk_sys::SO_KEEPALIVE => Some("so-keepalive"),
        wsk_sys::SO_RCVBUF => Some("so-rcvbuf"),
        wsk_sys::SO_BROADCAST => Some("so-broadcast"),
        wsk_sys::SO_CONDITIONAL_ACCEPT => Some("so-conditional-accept"),
        wsk_sys::SO_WSK_SECURITY => Some("so-wsk-security"),
        _ => None,
    }
}

/// Runs a `WskControlSocket` request other than `SO_WSK_EVENT_CALLBACK`;
/// returns (status, bytes written).
fn control(
    w: &mut WorldGuard,
    sid: u64,
    ty: WSK_CONTROL_SOCKET_TYPE,
    code: ULONG,
    level: ULONG,
    input: (PVOID, SIZE_T),
    output: (PVOID, SIZE_T),
) -> (NTSTATUS, usize) {
    let write_out = |bytes: &[u8]| -> (NTSTATUS, usize) {
        if output.0.is_null() || output.1 < bytes.len() {
            return (wsk_sys::STATUS_BUFFER_TOO_SMALL, bytes.len());
        }
        // SAFETY: the client's output buffer holds `output.1` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), output.0.cast::<u8>(), bytes.len());
        };
        (STATUS_SUCCESS, bytes.len())
    };
    match ty {
        wsk_sys::WskSetOption => {
            let Some(s) = w.net.sockets.get_mut(&sid) else {
                return (STATUS_INVALID_HANDLE, 0);
            };
            if level == SOL_SOCKET && code == wsk_sys::SO_WSK_SECURITY {
                // A cached descriptor (WSK_CACHE_SD), on a listening or
                // datagram socket, before the bind.
                if input.0.is_null() || input.1 < core::mem::size_of::<PVOID>() {
                    return (STATUS_INVALID_PARAMETER, 0);
                }
                // SAFETY: checked size; the client passes a PSECURITY_DESCRIPTOR.
                let sd = unsafe { input.0.cast::<PVOID>().read_unaligned() } as usize;
                // Listening, datagram and connection sockets
                // (https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-security;
                // docs/conformance.md OPT-5).
                if s.kind == Kind::Basic {
                    return (STATUS_NOT_SUPPORTED, 0);
                }
                if s.local.is_some() {
                    return (STATUS_INVALID_DEVICE_STATE, 0);
                }
                if !w.net.cached_sds.contains_key(&sd) {
                    wviolation!(
                        w,
                        Rule::Parameter,
                        "SO_WSK_SECURITY with {sd:#x}, which is not a cached security descriptor (WSK_CACHE_SD)"
                    );
                    return (STATUS_INVALID_PARAMETER, 0);
                }
                let Some(s) = w.net.sockets.get_mut(&sid) else {
                    return (STATUS_INVALID_HANDLE, 0);
                };
                s.options.insert((level, code), sd.to_le_bytes().to_vec());
                return (STATUS_SUCCESS, 0);
            }
            if level == SOL_SOCKET && code == wsk_sys::SO_CONDITIONAL_ACCEPT {
                if !(s.kind == Kind::Listen || s.kind == Kind::Stream) || s.local.is_some() {
                    return (STATUS_INVALID_DEVICE_STATE, 0);
                }
                s.conditional = read_ulong(input.0, input.1).unwrap_or(0) != 0;
                // In conditional accept mode WskInspectEvent and WskAbortEvent
                // "can be NULL" only when the mode is off
                // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_listen_dispatch;
                // docs/conformance.md INS-6, M-08).
                let table = net::listen_table(s);
                let complete =
                    table.is_some_and(|t| t.WskInspectEvent.is_some() && t.WskAbortEvent.is_some());
                if s.conditional && !complete {
                    wviolation!(
                        w,
                        Rule::Parameter,
                        "SO_CONDITIONAL_ACCEPT on socket #{sid}, whose listen dispatch table lacks \
                         WskInspectEvent or WskAbortEvent"
                    );
                    return (STATUS_INVALID_PARAMETER, 0);
                }
            }
            let bytes = if input.0.is_null() {
                Vec::new()
            } else {
                // SAFETY: the client's input buffer holds `input.1` bytes.
                unsafe { core::slice::from_raw_parts(input.0.cast::<u8>(), input.1) }.to_vec()
            };
            s.options.insert((level, code), bytes);
            (STATUS_SUCCESS, 0)
        }
        wsk_sys::WskGetOption => {
            let s = &w.net.sockets[&sid];
            let v = s
                .options
                .get(&(level, code))
                .cloned()
                .or_else(|| default_option(s, level, code));
            match v {
                Some(bytes) => write_out(&bytes),
                None => (STATUS_NOT_SUPPORTED, 0),
            }
        }
        wsk_sys::WskIoctl => ioctl(w, sid, code, input, &write_out),
        _ => {
            wviolation!(w, Rule::Parameter, "WskControlSocket with RequestType {ty}");
            (STATUS_INVALID_PARAMETER, 0)
        }
    }
}

fn ioctl(
    w: &mut WorldGuard,
    sid: u64,
    code: ULONG,
    input: (PVOID, SIZE_T),
    write_out: &dyn Fn(&[u8]) -> (NTSTATUS, usize),
) -> (NTSTATUS, usize) {
    match code {
        wsk_sys::SIO_WSK_SET_REMOTE_ADDRESS | wsk_sys::SIO_WSK_SET_SENDTO_ADDRESS => {
            // Microsoft's pages: datagram sockets only, after the bind; a
            // NULL input clears the address; SET_REMOTE_ADDRESS also accepts
            // only datagrams from it, SET_SENDTO_ADDRESS from anyone.
            let clear = input.0.is_null() || input.1 == 0;
            let addr = if clear {
                None
            } else {
                // SAFETY: the client passes a socket address.
                match unsafe { crate::addr::read(input.0.cast()) } {
                    Ok(a) => Some(a),
                    Err(st) => return (st, 0),
                }
            };
            let Some(s) = w.net.sockets.get_mut(&sid) else {
                return (STATUS_INVALID_HANDLE, 0);
            };
            if s.kind != Kind::Datagram {
                return (STATUS_NOT_SUPPORTED, 0);
            }
            if s.local.is_none() {
                return (STATUS_INVALID_DEVICE_STATE, 0);
            }
            if let Some(a) = addr {
                if let Err(st) = require_family(w, sid, "SIO_WSK_SET_REMOTE_ADDRESS", &a) {
                    return (st, 0);
                }
            }
            let Some(s) = w.net.sockets.get_mut(&sid) else {
                return (STATUS_INVALID_HANDLE, 0);
            };
            // The two addresses are set and cleared independently
            // (docs/conformance.md DG-SND-2, M-25).
            if code == wsk_sys::SIO_WSK_SET_REMOTE_ADDRESS {
                s.remote_filter = addr;
            } else {
                s.fixed_remote = addr;
            }
            (STATUS_SUCCESS, 0)
        }
        wsk_sys::SIO_WSK_QUERY_IDEAL_SEND_BACKLOG => {
            if let Err(st) = require(w, sid, "SIO_WSK_QUERY_IDEAL_SEND_BACKLOG", Needs::Connected) {
                return (st, 0);
            }
            let n = w.net.sockets[&sid]
                .ideal_send_backlog
                .unwrap_or(w.cfg.ideal_send_backlog);
            write_out(&n.to_le_bytes())
        }
        wsk_sys::SIO_WSK_QUERY_RECEIVE_BACKLOG => {
            let connection = w.net.sockets[&sid].kind != Kind::Datagram;
            if connection {
                if let Err(st) = require(w, sid, "SIO_WSK_QUERY_RECEIVE_BACKLOG", Needs::Connected)
                {
                    return (st, 0);
                }
            }
            let s = &w.net.sockets[&sid];
            let n = match s.conn {
                Some((c, e)) => w.net.conns.get(&c).map_or(0, |c| c.ends[e].rx.len()),
                None => s.dgrams.iter().map(|d| d.data.len()).sum(),
            };
            write_out(&n.to_le_bytes())
        }
        wsk_sys::SIO_WSK_QUERY_INSPECT_ID => {
            let s = &w.net.sockets[&sid];
            match s.inspect_id {
                Some(id) => {
                    let mut b = vec![0u8; core::mem::size_of::<wsk_sys::WSK_INSPECT_ID>()];
                    b[0..8].copy_from_slice(&id.Key.to_le_bytes());
                    b[8..12].copy_from_slice(&id.SerialNumber.to_le_bytes());
                    write_out(&b)
                }
                None if w.adversary(crate::Behaviour::DocumentedStatuses) => {
                    (wsk_sys::STATUS_INVALID_DEVICE_REQUEST, 0)
                }
                None => (STATUS_INVALID_DEVICE_STATE, 0),
            }
        }
        wsk_sys::SIO_WSK_SET_TCP_SILENT_MODE => {
            // Windows 8 and later; connected TCP sockets only, not
            // loopback; afterwards nothing goes on the wire, closing is the
            // only valid operation (check_not_silent), sends and disconnects
            // fail with STATUS_INVALID_DEVICE_STATE and what arrives is
            // dropped
            // (https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-tcp-silent-mode;
            // docs/conformance.md SIO-3). The page names no status for a
            // socket that is not connected (INVALID_DEVICE_STATE here) or for
            // loopback (NOT_SUPPORTED here).
            if w.cfg.windows_version < (6, 2, 0) {
                return (STATUS_NOT_SUPPORTED, 0);
            }
            if let Err(st) = require(w, sid, "SIO_WSK_SET_TCP_SILENT_MODE", Needs::Connected) {
                return (st, 0);
            }
            let s = &w.net.sockets[&sid];
            if !s.is_connection() {
                return (STATUS_INVALID_DEVICE_STATE, 0);
            }
            if s.remote.is_some_and(|r| r.ip().is_loopback()) {
                return (STATUS_NOT_SUPPORTED, 0);
            }
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                s.silent = true;
            }
            (STATUS_SUCCESS, 0)
        }
        _ => (STATUS_NOT_SUPPORTED, 0),
    }
}

/// `WskControlSocket`: socket options (`SO_WSK_EVENT_CALLBACK`,
/// `SO_CONDITIONAL_ACCEPT` and any option, stored and returned), and the
/// `SIO_WSK_*` IOCTLs. Completes the IRP when one is given; otherwise
/// returns the status and writes `*OutputSizeReturned`.
///
/// # Safety
///
/// Provider routine: valid socket and buffers of the given sizes.
pub(crate) unsafe extern "system" fn WskControlSocket(
    Socket: PWSK_SOCKET,
    RequestType: WSK_CONTROL_SOCKET_TYPE,
    ControlCode: ULONG,
    Level: ULONG,
    InputSize: SIZE_T,
    InputBuffer: PVOID,
    OutputSize: SIZE_T,
    OutputBuffer: PVOID,
    OutputSizeReturned: PSIZE_T,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    if !Irp.is_null() {
        let mut written = 0usize;
        let st = socket_irp_call(
            Socket,
            Irp,
            Routine::WskControlSocket,
            any_socket,
            |w, sid, irp, out| {
                let outcome = control_request(
                    w,
                    sid,
                    RequestType,
                    ControlCode,
                    Level,
                    (InputBuffer, InputSize),
                    (OutputBuffer, OutputSize),
                    irp,
                    out,
                );
                if let Outcome::Done(_, n) = outcome {
                    written = n;
                }
                outcome
            },
        );
        // With an IRP the size goes to `IoStatus.Information` only:
        // `OutputSizeReturned` should then be NULL
        // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_control_socket)
        // and `wsk.h` says it is ignored, so it is not written
        // (docs/conformance.md CTL-4, M-21).
        let _ = written;
        if !OutputSizeReturned.is_null() {
            crate::verifier::report(
                Rule::Parameter,
                format_args!(
                    "WskControlSocket with an IRP and an OutputSizeReturned ({OutputSizeReturned:p}): \
                     it should be NULL unless the IRP is NULL (the size comes back in \
                     IoStatus.Information)"
                ),
            );
        }
        return st;
    }
    verifier::check_irql_max("WskControlSocket", DISPATCH_LEVEL);
    verifier::check_not_in_completion("WskControlSocket");
    let mut out = Out::default();
    let mut w = world::lock();
    let sid = match enter_socket(&mut w, Socket, "WskControlSocket") {
        Ok(s) => s,
        Err(st) => return st,
    };
    if let Err(st) = check_functional(&w, sid) {
        return st;
    }
    if let Err(st) = check_not_silent(&mut w, sid, "WskControlSocket") {
        return st;
    }
    if let Some(Fault::Fail(st)) = w.faults.take(Routine::WskControlSocket) {
        declare_dead_on(&mut w, sid, st);
        return st;
    }
    // Without an IRP nothing can pend (a disable that must wait returns
    // STATUS_EVENT_PENDING instead).
    let (st, n) = match control_request(
        &mut w,
        sid,
        RequestType,
        ControlCode,
        Level,
        (InputBuffer, InputSize),
        (OutputBuffer, OutputSize),
        Irp,
        &mut out,
    ) {
        Outcome::Done(st, n) => (st, n),
        Outcome::Pended => (STATUS_PENDING, 0),
    };
    drop(w);
    net::flush(out);
    if !OutputSizeReturned.is_null() {
        // SAFETY: the client passes a writable SIZE_T.
        unsafe { OutputSizeReturned.write(n) };
    }
    st
}

/// `WskCloseSocket`: completes every pending IRP of the socket with
/// `STATUS_CANCELLED`, disconnects abortively unless the connection is
/// already closed both ways, waits for running event callbacks, then
/// completes.
///
/// # Safety
///
/// Provider routine: a socket of this provider and a valid IRP.
pub(crate) unsafe extern "system" fn WskCloseSocket(Socket: PWSK_SOCKET, Irp: PIRP) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("WskCloseSocket", DISPATCH_LEVEL);
    verifier::check_not_in_completion("WskCloseSocket");
    if let Err(st) = io::irp_enter(Irp, "WskCloseSocket") {
        return st;
    }
    let mut out = Out::default();
    let mut w = world::lock();
    let sid = match enter_socket(&mut w, Socket, "WskCloseSocket") {
        Ok(s) => s,
        Err(st) => {
            drop(w);
            return io::complete_dispatch(Irp, st, 0);
        }
    };
    let calls = w.net.sockets[&sid].calls_in_progress;
    if calls > 0 {
        wviolation!(
            w,
            Rule::CloseInProgress,
            "WskCloseSocket on socket #{sid} while {calls} other call(s) on it have not returned"
        );
    }
    // An indication whose callback is still running is not retained yet.
    let retained = w.net.sockets[&sid]
        .retained
        .len()
        .saturating_sub(w.net.sockets[&sid].in_callback);
    if retained > 0 {
        wviolation!(
            w,
            Rule::RetainedAtClose,
            "WskCloseSocket on socket #{sid} with {retained} retained indication(s) not released \
             (WskRelease them first)"
        );
    }
    if let Some(Fault::Fail(st)) = w.faults.take(Routine::WskCloseSocket) {
        drop(w);
        return io::complete_dispatch(Irp, st, 0);
    }
    net::close_socket(&mut w, sid, &mut out);
    let wait_callbacks = w
        .net
        .sockets
        .get(&sid)
        .is_some_and(|s| s.callbacks_in_progress > 0);
    let outcome = if wait_callbacks {
        io::irp_mark_pending(Irp);
        w.io.pending.insert(
            Irp as usize,
            Pending {
                socket: Some(sid),
                routine: "WskCloseSocket",
            },
        );
        if let Some(s) = w.net.sockets.get_mut(&sid) {
            s.close_irp = Some(Irp as usize);
        }
        Outcome::Pended
    } else {
        Outcome::Done(STATUS_SUCCESS, 0)
    };
    drop(w);
    net::flush(out);
    match outcome {
        Outcome::Done(st, info) => io::complete_dispatch(Irp, st, info),
        Outcome::Pended => STATUS_PENDING,
    }
}

// ---------------------------------------------------------------------------
// Bind, listen, accept, inspect, addresses

fn do_bind(w: &mut WorldGuard, sid: u64, a: SocketAddr) -> Result<(), NTSTATUS> {
    require_family(w, sid, "WskBind", &a)?;
    let s = &w.net.sockets[&sid];
    if s.local.is_some() {
        return Err(STATUS_INVALID_DEVICE_STATE);
    }
    if !a.ip().is_unspecified() && !w.net.is_local(a.ip()) {
        return Err(STATUS_INVALID_ADDRESS_COMPONENT);
    }
    let reuse = s
        .options
        .get(&(SOL_SOCKET, wsk_sys::SO_REUSEADDR))
        .is_some_and(|v| v.iter().any(|&b| b != 0));
    let kind = s.kind;
    let port = if a.port() == 0 {
        w.net.ephemeral(a.ip())
    } else {
        a.port()
    };
    let a = SocketAddr::new(a.ip(), port);
    let taken = match kind {
        Kind::Listen | Kind::Stream | Kind::Connection => {
            w.net.listeners.contains_key(&a) || w.net.bound.contains(&a)
        }
        Kind::Datagram => w.net.udp.contains_key(&a),
        Kind::Basic => return Err(STATUS_NOT_SUPPORTED),
    };
    if taken && !reuse {
        return Err(wsk_sys::STATUS_ADDRESS_ALREADY_EXISTS);
    }
    match kind {
        Kind::Listen => {
            w.net.listeners.insert(a, Listener::Socket(sid));
        }
        Kind::Datagram => {
            w.net.udp.insert(a, UdpEnd::Socket(sid));
        }
        _ => {
            w.net.bound.insert(a);
        }
    }
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.local = Some(a);
        if kind == Kind::Listen {
            s.listening = true;
        }
    }
    Ok(())
}

/// `WskBind`: binds a listen (and starts listening), connection, datagram or
/// stream socket; port 0 picks an ephemeral port.
///
/// # Safety
///
/// Provider routine: valid socket, address and IRP.
pub(crate) unsafe extern "system" fn WskBind(
    Socket: PWSK_SOCKET,
    LocalAddress: PSOCKADDR,
    Flags: ULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    reserved_flags("WskBind", Flags);
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskBind,
        bindable,
        |w, sid, _irp, _out| {
            // SAFETY: the client passes a valid socket address.
            let a = match unsafe { crate::addr::read(LocalAddress) } {
                Ok(a) => a,
                Err(st) => return Outcome::Done(st, 0),
            };
            match do_bind(w, sid, a) {
                Ok(()) => Outcome::Done(STATUS_SUCCESS, 0),
                Err(st) => Outcome::Done(st, 0),
            }
        },
    )
}

/// `WskListen` (stream sockets): starts listening on the bound address.
///
/// # Safety
///
/// Provider routine: valid socket and IRP.
pub(crate) unsafe extern "system" fn WskListen(Socket: PWSK_SOCKET, Irp: PIRP) -> NTSTATUS {
    let _g = NoUnwind::enter();
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskListen,
        stream,
        |w, sid, irp, _out| {
            if let Err(st) = require(w, sid, "WskListen", Needs::Bound) {
                return Outcome::Done(st, 0);
            }
            let s = &w.net.sockets[&sid];
            let Some(a) = s.local else {
                return Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0);
            };
            if s.conn.is_some() || s.listening {
                return Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0);
            }
            w.net.bound.remove(&a);
            w.net.listeners.insert(a, Listener::Socket(sid));
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                s.listening = true;
            }
            // Listening from now on; the IRP waits for the first connection
            // (docs/conformance.md A-10, STR-2).
            if w.adversary(crate::Behaviour::ListenPends) {
                if let Some(o) = pend(w, sid, irp, "WskListen") {
                    return o;
                }
                if let Some(s) = w.net.sockets.get_mut(&sid) {
                    s.listen_irp = Some(irp as usize);
                }
                return Outcome::Pended;
            }
            Outcome::Done(STATUS_SUCCESS, 0)
        },
    )
}

/// `WskAccept`: takes a connection from the backlog (or pends until one
/// arrives); `Irp->IoStatus.Information` receives the accepted
/// `PWSK_SOCKET`.
///
/// # Safety
///
/// Provider routine: valid socket, IRP, and optional address buffers that
/// stay valid until completion.
pub(crate) unsafe extern "system" fn WskAccept(
    ListenSocket: PWSK_SOCKET,
    Flags: ULONG,
    AcceptSocketContext: PVOID,
    AcceptSocketDispatch: *const WSK_CLIENT_CONNECTION_DISPATCH,
    LocalAddress: PSOCKADDR,
    RemoteAddress: PSOCKADDR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    reserved_flags("WskAccept", Flags);
    socket_irp_call(
        ListenSocket,
        Irp,
        Routine::WskAccept,
        listener,
        |w, sid, irp, out| {
            if let Err(st) = require(w, sid, "WskAccept", Needs::Listening) {
                return Outcome::Done(st, 0);
            }
            check_context(
                w,
                "WskAccept",
                AcceptSocketContext,
                AcceptSocketDispatch.cast(),
                false,
            );
            if let Some(Some(child)) = w.net.sockets.get_mut(&sid).map(|s| s.backlog.pop_front()) {
                let inherit = !w.adversary(crate::Behaviour::AcceptDoesNotInherit);
                net::accept_into(
                    w,
                    child,
                    AcceptSocketContext as usize,
                    AcceptSocketDispatch as usize,
                    inherit,
                );
                let c = &w.net.sockets[&child];
                if let Some(a) = c.local {
                    // SAFETY: optional output, valid when non-NULL.
                    unsafe { crate::addr::write(LocalAddress, a) };
                }
                if let Some(a) = c.remote {
                    // SAFETY: as above.
                    unsafe { crate::addr::write(RemoteAddress, a) };
                }
                out.deliver(child);
                return Outcome::Done(STATUS_SUCCESS, c.obj);
            }
            if let Some(o) = pend(w, sid, irp, "WskAccept") {
                return o;
            }
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                s.accept_irps.push_back(net::AcceptReq {
                    irp: irp as usize,
                    context: AcceptSocketContext as usize,
                    dispatch: AcceptSocketDispatch as usize,
                    local: LocalAddress as usize,
                    remote: RemoteAddress as usize,
                });
            }
            Outcome::Pended
        },
    )
}

/// `WskInspectComplete`: resumes a connection request pended by
/// `WskInspectEvent` with `WskInspectAccept` or `WskInspectReject`.
///
/// # Safety
///
/// Provider routine: valid socket, inspect ID and IRP.
pub(crate) unsafe extern "system" fn WskInspectComplete(
    ListenSocket: PWSK_SOCKET,
    InspectID: PWSK_INSPECT_ID,
    Action: WSK_INSPECT_ACTION,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    socket_irp_call(
        ListenSocket,
        Irp,
        Routine::WskInspectComplete,
        listener,
        |w, sid, _irp, out| {
            if InspectID.is_null() {
                wviolation!(
                    w,
                    Rule::Parameter,
                    "WskInspectComplete with a NULL InspectID"
                );
                return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
            }
            // SAFETY: the client passes a valid WSK_INSPECT_ID.
            let id = unsafe { InspectID.read_unaligned() };
            if Action != wsk_sys::WskInspectAccept && Action != wsk_sys::WskInspectReject {
                wviolation!(
                    w,
                    Rule::Parameter,
                    "WskInspectComplete with action {Action}: only WskInspectAccept or WskInspectReject"
                );
                return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
            }
            let conn = w
                .net
                .sockets
                .get_mut(&sid)
                .and_then(|s| s.inspecting.remove(&(id.Key, id.SerialNumber)));
            let Some(conn) = conn else {
                return Outcome::Done(STATUS_INVALID_CONNECTION, 0);
            };
            if Action == wsk_sys::WskInspectAccept {
                net::establish(w, conn, out);
            } else {
                net::refuse(w, conn, wsk_sys::STATUS_CONNECTION_REFUSED, out);
            }
            Outcome::Done(STATUS_SUCCESS, 0)
        },
    )
}

/// `WskGetLocalAddress`: the bound (and, once connected, actual) local
/// address.
///
/// # Safety
///
/// Provider routine: valid socket, output buffer and IRP.
pub(crate) unsafe extern "system" fn WskGetLocalAddress(
    Socket: PWSK_SOCKET,
    LocalAddress: PSOCKADDR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskGetLocalAddress,
        bindable,
        |w, sid, _irp, _out| {
            if let Err(st) = require(w, sid, "WskGetLocalAddress", Needs::Bound) {
                return Outcome::Done(st, 0);
            }
            match w.net.sockets[&sid].local {
                Some(a) => {
                    // SAFETY: the client passes a writable address buffer.
                    unsafe { crate::addr::write(LocalAddress, a) };
                    Outcome::Done(STATUS_SUCCESS, 0)
                }
                None => Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0),
            }
        },
    )
}

/// `WskGetRemoteAddress`: the connected peer's address.
///
/// # Safety
///
/// Provider routine: valid socket, output buffer and IRP.
pub(crate) unsafe extern "system" fn WskGetRemoteAddress(
    Socket: PWSK_SOCKET,
    RemoteAddress: PSOCKADDR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskGetRemoteAddress,
        connection,
        |w, sid, _irp, _out| {
            if let Err(st) = require(w, sid, "WskGetRemoteAddress", Needs::Connected) {
                return Outcome::Done(st, 0);
            }
            let s = &w.net.sockets[&sid];
            match (s.conn, s.remote) {
                (Some(_), Some(a)) => {
                    // SAFETY: the client passes a writable address buffer.
                    unsafe { crate::addr::write(RemoteAddress, a) };
                    Outcome::Done(STATUS_SUCCESS, 0)
                }
                _ if w.adversary(crate::Behaviour::DocumentedStatuses) => {
                    Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0)
                }
                _ => Outcome::Done(STATUS_INVALID_CONNECTION, 0),
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Connections

fn do_connect(
    w: &mut WorldGuard,
    sid: u64,
    remote: SocketAddr,
    irp: PIRP,
    routine: &'static str,
    out: &mut Out,
) -> Outcome {
    if let Err(st) = require(w, sid, routine, Needs::Bound)
        .and_then(|()| require_family(w, sid, routine, &remote))
    {
        return Outcome::Done(st, 0);
    }
    let s = &w.net.sockets[&sid];
    let Some(bound) = s.local else {
        return Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0);
    };
    if s.conn.is_some() || s.connect_irp.is_some() || s.listening {
        return Outcome::Done(STATUS_CONNECTION_ACTIVE, 0);
    }
    let src = SocketAddr::new(w.net.source_for(bound.ip(), remote.ip()), bound.port());
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.local = Some(src);
        s.remote = Some(remote);
    }
    match net::connect_to(w, net::Owner::Socket(sid), src, remote, out) {
        Ok(conn) => {
            let established = w
                .net
                .conns
                .get(&conn)
                .is_some_and(|c| c.state == net::ConnState::Established);
            if established {
                let data = w.net.sockets.get_mut(&sid).map(|s| {
                    s.conn = Some((conn, 0));
                    core::mem::take(&mut s.connect_data)
                });
                let sent = data.as_ref().map_or(0, Vec::len);
                if let Some(d) = data.filter(|d| !d.is_empty()) {
                    net::conn_send(w, conn, 0, &d, out);
                }
                Outcome::Done(STATUS_SUCCESS, sent)
            } else {
                if let Some(o) = pend(w, sid, irp, routine) {
                    return o;
                }
                if let Some(s) = w.net.sockets.get_mut(&sid) {
                    s.connect_irp = Some(irp as usize);
                }
                Outcome::Pended
            }
        }
        Err(st) => {
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                s.remote = None;
                s.connect_data.clear();
            }
            Outcome::Done(st, 0)
        }
    }
}

/// `WskConnect`: connects a bound connection (or stream) socket.
///
/// # Safety
///
/// Provider routine: valid socket, address and IRP.
pub(crate) unsafe extern "system" fn WskConnect(
    Socket: PWSK_SOCKET,
    RemoteAddress: PSOCKADDR,
    Flags: ULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    reserved_flags("WskConnect", Flags);
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskConnect,
        connection,
        |w, sid, irp, out| {
            // SAFETY: the client passes a valid socket address.
            match unsafe { crate::addr::read(RemoteAddress) } {
                Ok(a) => match do_connect(w, sid, a, irp, "WskConnect", out) {
                    Outcome::Done(st, _) => Outcome::Done(st, 0),
                    Outcome::Pended => Outcome::Pended,
                },
                Err(st) => Outcome::Done(st, 0),
            }
        },
    )
}

/// `WskConnectEx`: connects and sends `Buffer` once connected.
///
/// # Safety
///
/// Provider routine: valid socket, address, optional buffer and IRP.
pub(crate) unsafe extern "system" fn WskConnectEx(
    Socket: PWSK_SOCKET,
    RemoteAddress: PSOCKADDR,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    reserved_flags("WskConnectEx", Flags);
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskConnectEx,
        connection,
        |w, sid, irp, out| {
            // SAFETY: the client passes a valid socket address.
            let a = match unsafe { crate::addr::read(RemoteAddress) } {
                Ok(a) => a,
                Err(st) => return Outcome::Done(st, 0),
            };
            if !Buffer.is_null() {
                let segs = match resolve_buf(w, Buffer, "WskConnectEx") {
                    Ok((s, _)) => s,
                    Err(st) => return Outcome::Done(st, 0),
                };
                let data = io::read_segs(&segs);
                if data.len() > 65_535 && w.adversary(crate::Behaviour::DocumentedStatuses) {
                    // "The maximum allowed size in bytes is 65,535."
                    return Outcome::Done(wsk_sys::STATUS_BUFFER_OVERFLOW, 0);
                }
                if let Some(s) = w.net.sockets.get_mut(&sid) {
                    s.connect_data = data;
                }
            }
            do_connect(w, sid, a, irp, "WskConnectEx", out)
        },
    )
}

/// The connection end of a socket, or the status a data call fails with.
fn conn_of(w: &WorldGuard, sid: u64) -> Result<(u64, usize), NTSTATUS> {
    let s = &w.net.sockets[&sid];
    if s.aborted_locally {
        return Err(STATUS_CONNECTION_ABORTED);
    }
    s.conn.ok_or(STATUS_INVALID_CONNECTION)
}

fn send_body(w: &mut WorldGuard, sid: u64, buf: PWSK_BUF, routine: &str, out: &mut Out) -> Outcome {
    if let Err(st) = require(w, sid, routine, Needs::Connected) {
        return Outcome::Done(st, 0);
    }
    let (c, e) = match conn_of(w, sid) {
        Ok(v) => v,
        Err(st) => return Outcome::Done(st, 0),
    };
    let segs = match resolve_buf(w, buf, routine) {
        Ok((s, _)) => s,
        Err(st) => return Outcome::Done(st, 0),
    };
    let Some(conn) = w.net.conns.get(&c) else {
        return Outcome::Done(STATUS_INVALID_CONNECTION, 0);
    };
    if conn.ends[e].rx_reset {
        return Outcome::Done(STATUS_CONNECTION_RESET, 0);
    }
    if conn.ends[e].tx_fin || w.net.sockets[&sid].silent {
        return Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0);
    }
    let data = io::read_segs(&segs);
    net::conn_send(w, c, e, &data, out);
    change_send_backlog(w, sid, out);
    Outcome::Done(STATUS_SUCCESS, data.len())
}

/// [`Behaviour::LateSends`](crate::Behaviour::LateSends): a send whose
/// bytes (with what the socket sent before) exceed the receiver's window
/// ([`net::receive_window`]) stays pending until the receiver reads enough
/// (A-22, SND-4): the
/// provider "will not [complete it] until all of the data has actually been
/// sent" (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>).
fn hold_send(
    w: &mut WorldGuard,
    sid: u64,
    irp: PIRP,
    sent: Outcome,
    routine: &'static str,
) -> Outcome {
    let Outcome::Done(STATUS_SUCCESS, n) = sent else {
        return sent;
    };
    if n == 0 || !w.adversary(crate::Behaviour::LateSends) {
        return sent;
    }
    let Some((c, e)) = w.net.sockets.get(&sid).and_then(|s| s.conn) else {
        return sent;
    };
    let Some(rx) = w.net.conns.get(&c).map(|cc| &cc.ends[1 - e]) else {
        return sent;
    };
    if rx.owner == net::Owner::Gone || rx.rx_reset {
        return sent;
    }
    let (unread, mark) = (rx.rx.len() as u64, rx.rx_added);
    let window = net::receive_window(w, c, 1 - e);
    let Some(s) = w.net.sockets.get(&sid) else {
        return sent;
    };
    if unread <= window && s.unsent.is_empty() {
        return sent;
    }
    if let Some(o) = pend(w, sid, irp, routine) {
        return o;
    }
    w.net.sends_held = true;
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.unsent.push_back(net::UnsentReq {
            irp: irp as usize,
            mark,
            len: n,
            window,
        });
    }
    Outcome::Pended
}

/// [`Behaviour::SendBacklogChanges`](crate::Behaviour::SendBacklogChanges):
/// one send in four changes the socket's ideal send backlog, which
/// `WskSendBacklogEvent` reports where it is enabled (A-21, SBL-EV-1), from
/// the thread that made or completes the send.
fn change_send_backlog(w: &mut WorldGuard, sid: u64, out: &mut Out) {
    if !w.adversary(crate::Behaviour::SendBacklogChanges) {
        return;
    }
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    if s.rng.below(4) != 0 {
        return;
    }
    // 1 KiB to 256 KiB: what a TCP window can be.
    let n = 1024 << s.rng.below(9);
    s.ideal_send_backlog = Some(usize::try_from(n).unwrap_or(1024));
    if s.events & WSK_EVENT_SEND_BACKLOG != 0 {
        s.ev_queue
            .push_back(Ev::SendBacklog(usize::try_from(n).unwrap_or(1024)));
        out.deliver(sid);
    }
}

/// `WskSend`: sends the buffer on a connected socket (completes once the
/// data is in the peer's receive queue).
///
/// # Safety
///
/// Provider routine: valid socket, buffer and IRP.
pub(crate) unsafe extern "system" fn WskSend(
    Socket: PWSK_SOCKET,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = Flags;
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskSend,
        connection,
        |w, sid, irp, out| {
            let sent = send_body(w, sid, Buffer, "WskSend", out);
            hold_send(w, sid, irp, sent, "WskSend")
        },
    )
}

/// `WskSendEx`: as [`WskSend`] (control information is ignored).
///
/// # Safety
///
/// Provider routine: valid socket, buffer and IRP.
pub(crate) unsafe extern "system" fn WskSendEx(
    Socket: PWSK_SOCKET,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    ControlInfoLength: ULONG,
    ControlInfo: PCMSGHDR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (Flags, ControlInfoLength, ControlInfo);
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskSend,
        connection,
        |w, sid, irp, out| {
            let sent = send_body(w, sid, Buffer, "WskSendEx", out);
            hold_send(w, sid, irp, sent, "WskSendEx")
        },
    )
}

fn receive_body(
    w: &mut WorldGuard,
    sid: u64,
    buf: PWSK_BUF,
    flags: ULONG,
    irp: PIRP,
    routine: &'static str,
    out: &mut Out,
) -> Outcome {
    if let Err(st) = require(w, sid, routine, Needs::Connected) {
        return Outcome::Done(st, 0);
    }
    let (c, e) = match conn_of(w, sid) {
        Ok(v) => v,
        Err(st) => return Outcome::Done(st, 0),
    };
    let (segs, mdls) = match resolve_buf(w, buf, routine) {
        Ok(v) => v,
        Err(st) => return Outcome::Done(st, 0),
    };
    let cap: usize = segs.iter().map(|s| s.len).sum();
    let waitall = flags & WSK_FLAG_WAITALL != 0;
    let drain = flags & wsk_sys::WSK_FLAG_DRAIN != 0;
    if drain && (waitall || cap != 0) {
        // https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive
        wviolation!(
            w,
            Rule::Parameter,
            "{routine} with WSK_FLAG_DRAIN needs a zero-length buffer and no WSK_FLAG_WAITALL"
        );
        return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
    }
    // While an indication is out, its bytes are still the connection's
    // next: the request waits for the callback's answer.
    let queue_empty = w.net.sockets[&sid].recv_irps.is_empty() && !w.net.sockets[&sid].indicating;
    let mut filled = 0;
    if queue_empty && drain {
        // Discard what is buffered; complete at the end of the stream.
        let Some(conn) = w.net.conns.get_mut(&c) else {
            return Outcome::Done(STATUS_INVALID_CONNECTION, 0);
        };
        let end = &mut conn.ends[e];
        end.rx.clear();
        if end.rx_reset {
            return Outcome::Done(STATUS_CONNECTION_RESET, 0);
        }
        if end.rx_fin {
            return Outcome::Done(STATUS_SUCCESS, 0);
        }
    } else if queue_empty {
        let Some(conn) = w.net.conns.get_mut(&c) else {
            return Outcome::Done(STATUS_INVALID_CONNECTION, 0);
        };
        let end = &mut conn.ends[e];
        if end.rx_reset {
            return Outcome::Done(STATUS_CONNECTION_RESET, 0);
        }
        let n = cap.min(end.rx.len());
        let chunk: Vec<u8> = end.rx.drain(..n).collect();
        io::copy_to_segs(&segs, &chunk);
        filled = n;
        let eof = end.rx.is_empty() && end.rx_fin;
        if n > 0 && (!waitall || n == cap || eof) || (n == 0 && eof) || cap == 0 {
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                s.blocked = false;
            }
            net::acknowledge(w, c, e, out);
            out.deliver(sid);
            return Outcome::Done(STATUS_SUCCESS, n);
        }
    }
    if let Some(o) = pend(w, sid, irp, routine) {
        return o;
    }
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.recv_irps.push_back(RecvReq {
            irp: irp as usize,
            segs,
            mdls,
            waitall,
            drain,
            filled,
        });
    }
    net::progress_conn_socket(w, sid, out);
    Outcome::Pended
}

/// `WskReceive`: receives into the buffer: completes at once with buffered
/// data, with 0 bytes after the peer's graceful disconnect, with
/// `STATUS_CONNECTION_RESET` after an abortive one, or pends.
/// `WSK_FLAG_DRAIN` (zero-length buffer) discards data until the
/// connection ends.
///
/// # Safety
///
/// Provider routine: valid socket, buffer (valid until completion) and IRP.
pub(crate) unsafe extern "system" fn WskReceive(
    Socket: PWSK_SOCKET,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskReceive,
        connection,
        |w, sid, irp, out| receive_body(w, sid, Buffer, Flags, irp, "WskReceive", out),
    )
}

/// `WskReceiveEx`: as [`WskReceive`]; no control information is returned.
///
/// # Safety
///
/// Provider routine: valid socket, buffer, outputs and IRP.
pub(crate) unsafe extern "system" fn WskReceiveEx(
    Socket: PWSK_SOCKET,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    ControlInfoLength: PULONG,
    ControlInfo: PCMSGHDR,
    ControlFlags: PULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = ControlInfo;
    if !ControlInfoLength.is_null() {
        // SAFETY: the client passes a writable ULONG.
        unsafe { ControlInfoLength.write_unaligned(0) };
        if !ControlFlags.is_null() {
            // SAFETY: as above.
            unsafe { ControlFlags.write_unaligned(0) };
        }
    }
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskReceive,
        connection,
        |w, sid, irp, out| receive_body(w, sid, Buffer, Flags, irp, "WskReceiveEx", out),
    )
}

/// `WskDisconnect`: graceful (optionally sending `Buffer` first, then FIN) or
/// abortive (`WSK_FLAG_ABORTIVE`: reset; the socket's pending receives
/// complete with `STATUS_CONNECTION_ABORTED`).
///
/// # Safety
///
/// Provider routine: valid socket, optional buffer and IRP.
pub(crate) unsafe extern "system" fn WskDisconnect(
    Socket: PWSK_SOCKET,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskDisconnect,
        connection,
        |w, sid, irp, out| {
            if let Err(st) = require(w, sid, "WskDisconnect", Needs::Connected) {
                return Outcome::Done(st, 0);
            }
            let (c, e) = match conn_of(w, sid) {
                Ok(v) => v,
                Err(st) => return Outcome::Done(st, 0),
            };
            if w.net.sockets[&sid].silent {
                // SIO_WSK_SET_TCP_SILENT_MODE: disconnects fail (SIO-3).
                return Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0);
            }
            if Flags & WSK_FLAG_ABORTIVE != 0 {
                if !Buffer.is_null() {
                    wviolation!(
                        w,
                        Rule::Parameter,
                        "WskDisconnect(WSK_FLAG_ABORTIVE) with a Buffer"
                    );
                }
                let reqs: Vec<usize> = w
                    .net
                    .sockets
                    .get_mut(&sid)
                    .map(|s| {
                        s.aborted_locally = true;
                        // A stuck graceful disconnect is forced to complete
                        // (docs/conformance.md DSC-4, A-7).
                        s.recv_irps
                            .drain(..)
                            .map(|r| r.irp)
                            .chain(s.stuck_disconnect.take())
                            .chain(s.unsent.drain(..).map(|u| u.irp))
                            .collect()
                    })
                    .unwrap_or_default();
                for irp in reqs {
                    io::finish_pending(w, irp, STATUS_CONNECTION_ABORTED, 0, &mut out.done);
                }
                net::conn_reset(w, c, e, out);
                return Outcome::Done(STATUS_SUCCESS, 0);
            }
            let mut sent = 0;
            if !Buffer.is_null() {
                match send_body(w, sid, Buffer, "WskDisconnect", out) {
                    Outcome::Done(st, n) if st == STATUS_SUCCESS => sent = n,
                    other => return other,
                }
            }
            let reset = w.net.conns.get(&c).is_some_and(|cc| cc.ends[e].rx_reset);
            if reset {
                return Outcome::Done(STATUS_CONNECTION_RESET, 0);
            }
            if w.rare_event(crate::Behaviour::GracefulDisconnectStuck) {
                // Transmitting "fails": the FIN never goes out and the IRP
                // waits for an abortive disconnect or the close.
                if let Some(o) = pend(w, sid, irp, "WskDisconnect") {
                    return o;
                }
                if let Some(s) = w.net.sockets.get_mut(&sid) {
                    s.stuck_disconnect = Some(irp as usize);
                }
                return Outcome::Pended;
            }
            net::conn_fin(w, c, e, out);
            Outcome::Done(STATUS_SUCCESS, sent)
        },
    )
}

fn release_list(socket: PWSK_SOCKET, head: usize, datagram: bool, routine: &str) -> NTSTATUS {
    verifier::check_irql_max(routine, DISPATCH_LEVEL);
    verifier::check_not_in_completion(routine);
    let mut w = world::lock();
    let Some(sid) = net::socket_id(&w, socket) else {
        wviolation!(
            w,
            Rule::Parameter,
            "{routine}({socket:p}): not a PWSK_SOCKET of this provider"
        );
        return STATUS_INVALID_HANDLE;
    };
    if w.net.sockets[&sid].state == State::Closed {
        // The indications are still freed: the provider keeps them until
        // released, closed socket or not.
        wviolation!(
            w,
            Rule::SocketClosed,
            "{routine} on socket #{sid} after WskCloseSocket (release retained indications \
             before closing)"
        );
    }
    let mut cur = head;
    let mut freed: Vec<(usize, usize)> = Vec::new();
    let mut bad = None;
    while cur != 0 {
        let next = if datagram {
            // SAFETY: retained elements are live provider memory; an
            // unknown pointer is reported before being followed.
            (w.net.sockets[&sid].retained.contains_key(&cur))
                .then(|| unsafe { (*(cur as PWSK_DATAGRAM_INDICATION)).Next as usize })
        } else {
            // SAFETY: as above.
            (w.net.sockets[&sid].retained.contains_key(&cur))
                .then(|| unsafe { (*(cur as PWSK_DATA_INDICATION)).Next as usize })
        };
        let Some(next) = next else {
            bad = Some(cur);
            break;
        };
        if let Some(s) = w.net.sockets.get_mut(&sid) {
            if let Some((size, _)) = s.retained.remove(&cur) {
                freed.push((cur, size));
            }
        }
        cur = next;
    }
    if let Some(b) = bad {
        wviolation!(
            w,
            Rule::Release,
            "{routine}: indication {b:#x} on socket #{sid} is not retained (released twice, or \
             its receive callback did not return STATUS_PENDING)"
        );
    }
    drop(w);
    for (p, size) in freed {
        // SAFETY: allocated by the indication builder with this size and no
        // longer tracked.
        unsafe { crate::pool::raw_free(p as *mut u8, size) };
    }
    if bad.is_some() {
        STATUS_INVALID_PARAMETER
    } else {
        STATUS_SUCCESS
    }
}

/// `WskRelease` (connection and stream sockets): gives back data indications
/// retained by returning `STATUS_PENDING` from `WskReceiveEvent`.
///
/// # Safety
///
/// Provider routine: `DataIndication` must be a retained list.
pub(crate) unsafe extern "system" fn WskRelease(
    Socket: PWSK_SOCKET,
    DataIndication: PWSK_DATA_INDICATION,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    release_list(Socket, DataIndication as usize, false, "WskRelease")
}

/// `WskRelease` of datagram sockets (`PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST`).
///
/// # Safety
///
/// Provider routine: `DatagramIndication` must be a retained list.
pub(crate) unsafe extern "system" fn WskReleaseDatagram(
    Socket: PWSK_SOCKET,
    DatagramIndication: PWSK_DATAGRAM_INDICATION,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    release_list(Socket, DatagramIndication as usize, true, "WskRelease")
}

// ---------------------------------------------------------------------------
// Datagrams

fn send_to_body(
    w: &mut WorldGuard,
    sid: u64,
    datas: Vec<Vec<u8>>,
    remote: PSOCKADDR,
    out: &mut Out,
) -> Outcome {
    let s = &w.net.sockets[&sid];
    let Some(local) = s.local else {
        return Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0);
    };
    let to = if remote.is_null() {
        // A fixed remote address or a fixed destination (which wins when
        // both are set, no page says: the remote address here).
        if let Some(a) = s.remote_filter.or(s.fixed_remote) {
            a
        } else {
            wviolation!(
                w,
                Rule::Parameter,
                "WskSendTo without a RemoteAddress and without SIO_WSK_SET_REMOTE_ADDRESS or \
                 SIO_WSK_SET_SENDTO_ADDRESS"
            );
            return Outcome::Done(STATUS_INVALID_PARAMETER, 0);
        }
    } else {
        // SAFETY: the client passes a valid socket address.
        match unsafe { crate::addr::read(remote) } {
            Ok(a) => a,
            Err(st) => return Outcome::Done(st, 0),
        }
    };
    if let Err(st) = require_family(w, sid, "WskSendTo", &to) {
        return Outcome::Done(st, 0);
    }
    let from = SocketAddr::new(w.net.source_for(local.ip(), to.ip()), local.port());
    let mut total = 0;
    for d in datas {
        total += d.len();
        net::udp_deliver(w, from, to, d, out);
    }
    Outcome::Done(STATUS_SUCCESS, total)
}

/// `WskSendTo`: sends one datagram (to `RemoteAddress`, or the address set
/// with `SIO_WSK_SET_REMOTE_ADDRESS`); datagrams to no endpoint are dropped.
///
/// # Safety
///
/// Provider routine: valid socket, buffer, address and IRP.
pub(crate) unsafe extern "system" fn WskSendTo(
    Socket: PWSK_SOCKET,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    RemoteAddress: PSOCKADDR,
    ControlInfoLength: ULONG,
    ControlInfo: PCMSGHDR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (ControlInfoLength, ControlInfo);
    reserved_flags("WskSendTo", Flags);
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskSendTo,
        datagram,
        |w, sid, _irp, out| {
            let segs = match resolve_buf(w, Buffer, "WskSendTo") {
                Ok((s, _)) => s,
                Err(st) => return Outcome::Done(st, 0),
            };
            send_to_body(w, sid, vec![io::read_segs(&segs)], RemoteAddress, out)
        },
    )
}

/// `WskSendMessages`: sends each buffer of the list as a datagram.
///
/// # Safety
///
/// Provider routine: valid socket, list, address and IRP.
pub(crate) unsafe extern "system" fn WskSendMessages(
    Socket: PWSK_SOCKET,
    BufferList: PWSK_BUF_LIST,
    Flags: ULONG,
    RemoteAddress: PSOCKADDR,
    ControlInfoLength: ULONG,
    ControlInfo: PCMSGHDR,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    let _ = (ControlInfoLength, ControlInfo);
    reserved_flags("WskSendMessages", Flags);
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskSendMessages,
        datagram,
        |w, sid, _irp, out| {
            let mut datas = Vec::new();
            let mut cur = BufferList;
            while !cur.is_null() {
                // SAFETY: the client passes a valid WSK_BUF_LIST chain.
                let b = unsafe { &raw mut (*cur).Buffer };
                let segs = match resolve_buf(w, b, "WskSendMessages") {
                    Ok((s, _)) => s,
                    Err(st) => return Outcome::Done(st, 0),
                };
                datas.push(io::read_segs(&segs));
                // SAFETY: as above.
                cur = unsafe { (*cur).Next };
            }
            send_to_body(w, sid, datas, RemoteAddress, out)
        },
    )
}

/// `WskReceiveFrom`: receives one datagram (truncated ones set `MSG_TRUNC`
/// in `*ControlFlags`), or pends.
///
/// # Safety
///
/// Provider routine: valid socket, buffer and outputs (valid until
/// completion) and IRP.
pub(crate) unsafe extern "system" fn WskReceiveFrom(
    Socket: PWSK_SOCKET,
    Buffer: PWSK_BUF,
    Flags: ULONG,
    RemoteAddress: PSOCKADDR,
    ControlLength: PULONG,
    ControlInfo: PCMSGHDR,
    ControlFlags: PULONG,
    Irp: PIRP,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    reserved_flags("WskReceiveFrom", Flags);
    socket_irp_call(
        Socket,
        Irp,
        Routine::WskReceiveFrom,
        datagram,
        |w, sid, irp, out| {
            if w.net.sockets[&sid].local.is_none() {
                return Outcome::Done(STATUS_INVALID_DEVICE_STATE, 0);
            }
            let (segs, mdls) = match resolve_buf(w, Buffer, "WskReceiveFrom") {
                Ok(v) => v,
                Err(st) => return Outcome::Done(st, 0),
            };
            let req = RecvFromReq {
                irp: irp as usize,
                segs,
                mdls,
                remote: RemoteAddress as usize,
                control_len: ControlLength as usize,
                control_info: ControlInfo as usize,
                control_flags: ControlFlags as usize,
            };
            let s = w.net.sockets.get_mut(&sid).expect("socket");
            // While datagrams are out in an indication, they come first: the
            // request waits for the callback's answer.
            if s.recv_from_irps.is_empty() && !s.indicating {
                if let Some(d) = s.dgrams.pop_front() {
                    s.blocked = false;
                    let n = io::copy_to_segs(&req.segs, &d.data);
                    let control = net::control_info(w, sid, &d);
                    net::write_recv_from_outputs(
                        &req,
                        d.from,
                        n < d.data.len(),
                        control.as_deref(),
                    );
                    out.deliver(sid);
                    return Outcome::Done(STATUS_SUCCESS, n);
                }
            }
            if let Some(o) = pend(w, sid, irp, "WskReceiveFrom") {
                return o;
            }
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                s.recv_from_irps.push_back(req);
            }
            Outcome::Pended
        },
    )
}
