//! The WSK provider: registration, every socket kind, events, datagrams,
//! name resolution, options, completion modes — and the verifier rules.
// Raw FFI test code: pointers to locals go straight to C-ABI routines, as
// in a C driver; short names (c = client, s = socket, p = peer, r = request,
// b = buffer) keep the scenarios readable.
#![allow(
    clippy::borrow_as_ptr,
    clippy::ref_as_ptr,
    clippy::many_single_char_names
)]
#![allow(clippy::cast_possible_truncation, clippy::struct_field_names)]
#![allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
#![allow(missing_docs, clippy::missing_safety_doc, unsafe_op_in_unsafe_fn)]

mod common;

use core::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use wsk_sim::{CompletionMode, EventKind, Irql, Readiness, Routine, Sim};
use wsk_sys::*;

// ---------------------------------------------------------------------------
// A recording client: the socket context of every event-driven socket.

const RECV_ACCEPT_ALL: usize = 0;
const RECV_ACCEPT_SOME: usize = 1;
const RECV_RETAIN: usize = 2;
const RECV_REFUSE: usize = 3;
const RECV_BAD_STATUS: usize = 4;
const RECV_OVER_ACCEPT: usize = 5;

#[derive(Default)]
struct Ctx {
    log: Mutex<Vec<String>>,
    data: Mutex<Vec<u8>>,
    recv_mode: AtomicUsize,
    accept_bytes: AtomicUsize,
    retained: Mutex<Vec<usize>>,
    disconnect_status: AtomicI32,
    accept_status: AtomicI32,
    accept_ctx: AtomicUsize,
    accepted: Mutex<Vec<usize>>,
    inspect_action: AtomicI32,
    inspect_ids: Mutex<Vec<WSK_INSPECT_ID>>,
    irql_seen: AtomicUsize,
    wait_inside: AtomicUsize,
    close_inside: AtomicUsize,
    dgrams: Mutex<Vec<(Vec<u8>, std::net::SocketAddr)>>,
}

impl Ctx {
    fn new() -> Box<Ctx> {
        Box::default()
    }
    fn ptr(&self) -> PVOID {
        (self as *const Ctx).cast_mut().cast()
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn push(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }
}

unsafe fn ctx<'a>(p: PVOID) -> &'a Ctx {
    &*p.cast::<Ctx>()
}

unsafe fn mdl_bytes(b: &WSK_BUF) -> Vec<u8> {
    let mut out = Vec::new();
    let mut m = b.Mdl;
    let mut off = b.Offset as usize;
    let mut left = b.Length;
    while left > 0 && !m.is_null() {
        let base = MmGetSystemAddressForMdlSafe(m, NormalPagePriority).cast::<u8>();
        let n = ((*m).ByteCount as usize - off).min(left);
        out.extend_from_slice(core::slice::from_raw_parts(base.add(off), n));
        left -= n;
        off = 0;
        m = (*m).Next;
    }
    out
}

fn wait_inside_if_asked(c: &Ctx) {
    if c.wait_inside.load(Ordering::SeqCst) != 0 {
        let mut d: i64 = -10_000;
        unsafe { KeDelayExecutionThread(KernelMode, FALSE, &mut d) };
    }
}

unsafe extern "system" fn on_receive(
    sc: PVOID,
    flags: ULONG,
    ind: PWSK_DATA_INDICATION,
    indicated: SIZE_T,
    accepted: PSIZE_T,
) -> NTSTATUS {
    let c = ctx(sc);
    c.irql_seen
        .store(usize::from(KeGetCurrentIrql()), Ordering::SeqCst);
    wait_inside_if_asked(c);
    if ind.is_null() {
        c.push("receive(null)".into());
        return STATUS_SUCCESS;
    }
    let mut bytes = Vec::new();
    let mut p = ind;
    while !p.is_null() {
        bytes.extend(mdl_bytes(&(*p).Buffer));
        p = (*p).Next;
    }
    assert_eq!(bytes.len(), indicated);
    c.push(format!("receive {indicated} flags={flags:#x}"));
    let close = c.close_inside.swap(0, Ordering::SeqCst);
    if close != 0 {
        close_from_callback(close as PWSK_SOCKET);
    }
    match c.recv_mode.load(Ordering::SeqCst) {
        RECV_ACCEPT_ALL => {
            c.data.lock().unwrap().extend(bytes);
            STATUS_SUCCESS
        }
        RECV_ACCEPT_SOME => {
            let n = c.accept_bytes.load(Ordering::SeqCst).min(indicated);
            c.data.lock().unwrap().extend(&bytes[..n]);
            *accepted = n;
            STATUS_SUCCESS
        }
        RECV_RETAIN => {
            c.data.lock().unwrap().extend(bytes);
            c.retained.lock().unwrap().push(ind as usize);
            STATUS_PENDING
        }
        RECV_REFUSE => STATUS_DATA_NOT_ACCEPTED,
        RECV_OVER_ACCEPT => {
            *accepted = indicated + 1;
            STATUS_SUCCESS
        }
        _ => STATUS_UNSUCCESSFUL,
    }
}

fn close_from_callback(s: PWSK_SOCKET) {
    // A fresh IRP freed by its own completion.
    unsafe extern "system" fn free_it(_d: PDEVICE_OBJECT, irp: PIRP, _c: PVOID) -> NTSTATUS {
        IoFreeIrp(irp);
        STATUS_MORE_PROCESSING_REQUIRED
    }
    unsafe {
        let irp = IoAllocateIrp(1, FALSE);
        IoSetCompletionRoutine(irp, Some(free_it), ptr::null_mut(), TRUE, TRUE, TRUE);
        (basic(s).WskCloseSocket.unwrap())(s, irp);
    }
}

unsafe extern "system" fn on_disconnect(sc: PVOID, flags: ULONG) -> NTSTATUS {
    let c = ctx(sc);
    c.push(format!("disconnect flags={flags:#x}"));
    c.disconnect_status.load(Ordering::SeqCst)
}

unsafe extern "system" fn on_backlog(sc: PVOID, n: SIZE_T) -> NTSTATUS {
    ctx(sc).push(format!("backlog {n}"));
    STATUS_SUCCESS
}

unsafe extern "system" fn on_accept(
    sc: PVOID,
    flags: ULONG,
    _local: PSOCKADDR,
    _remote: PSOCKADDR,
    socket: PWSK_SOCKET,
    actx: *mut PVOID,
    adisp: *mut *const WSK_CLIENT_CONNECTION_DISPATCH,
) -> NTSTATUS {
    let c = ctx(sc);
    if socket.is_null() {
        c.push("accept(null)".into());
        return STATUS_SUCCESS;
    }
    c.push(format!("accept flags={flags:#x}"));
    let st = c.accept_status.load(Ordering::SeqCst);
    if st == STATUS_SUCCESS {
        c.accepted.lock().unwrap().push(socket as usize);
        *actx = c.accept_ctx.load(Ordering::SeqCst) as PVOID;
        *adisp = &CONN_DISPATCH;
    }
    st
}

unsafe extern "system" fn on_inspect(
    sc: PVOID,
    _l: PSOCKADDR,
    _r: PSOCKADDR,
    id: PWSK_INSPECT_ID,
) -> WSK_INSPECT_ACTION {
    let c = ctx(sc);
    c.push("inspect".into());
    c.inspect_ids.lock().unwrap().push(*id);
    c.inspect_action.load(Ordering::SeqCst)
}

unsafe extern "system" fn on_abort(sc: PVOID, _id: PWSK_INSPECT_ID) -> NTSTATUS {
    ctx(sc).push("abort".into());
    STATUS_SUCCESS
}

unsafe extern "system" fn on_receive_from(
    sc: PVOID,
    flags: ULONG,
    ind: PWSK_DATAGRAM_INDICATION,
) -> NTSTATUS {
    let c = ctx(sc);
    if ind.is_null() {
        c.push("receive_from(null)".into());
        return STATUS_SUCCESS;
    }
    let mut p = ind;
    while !p.is_null() {
        let data = mdl_bytes(&(*p).Buffer);
        let mut sa = Sa::empty();
        ptr::copy_nonoverlapping((*p).RemoteAddress.cast::<u8>(), sa.0.as_mut_ptr(), 28);
        c.dgrams.lock().unwrap().push((data, sa.get()));
        p = (*p).Next;
    }
    c.push(format!("receive_from flags={flags:#x}"));
    match c.recv_mode.load(Ordering::SeqCst) {
        RECV_RETAIN => {
            c.retained.lock().unwrap().push(ind as usize);
            STATUS_PENDING
        }
        _ => STATUS_SUCCESS,
    }
}

static CONN_DISPATCH: WSK_CLIENT_CONNECTION_DISPATCH = WSK_CLIENT_CONNECTION_DISPATCH {
    WskReceiveEvent: Some(on_receive),
    WskDisconnectEvent: Some(on_disconnect),
    WskSendBacklogEvent: Some(on_backlog),
};

static LISTEN_DISPATCH: WSK_CLIENT_LISTEN_DISPATCH = WSK_CLIENT_LISTEN_DISPATCH {
    WskAcceptEvent: Some(on_accept),
    WskInspectEvent: Some(on_inspect),
    WskAbortEvent: Some(on_abort),
};

static DGRAM_DISPATCH: WSK_CLIENT_DATAGRAM_DISPATCH = WSK_CLIENT_DATAGRAM_DISPATCH {
    WskReceiveFromEvent: Some(on_receive_from),
};

fn conn_disp() -> PCVOID {
    (&raw const CONN_DISPATCH).cast()
}

const ALL_CONN_EVENTS: u32 = WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT;

/// A listen socket bound at `addr` with the recording listen dispatch.
fn listener(c: &Client, addr: &str, ctx: &Ctx) -> PWSK_SOCKET {
    let l = c.socket(
        WSK_FLAG_LISTEN_SOCKET,
        ctx.ptr(),
        (&raw const LISTEN_DISPATCH).cast(),
    );
    assert_eq!(bind(l, listen(l).WskBind, addr), STATUS_SUCCESS);
    l
}

fn release(s: PWSK_SOCKET, ind: usize) -> NTSTATUS {
    unsafe { (conn(s).WskRelease.unwrap())(s, ind as PWSK_DATA_INDICATION) }
}

// ---------------------------------------------------------------------------
// Registration

#[test]
fn register_capture_query_release_deregister() {
    let _sim = benign();
    let c = Client::new();
    let d = c.dispatch();
    assert_eq!(d.Version, MAKE_WSK_VERSION(1, 0));
    let mut chars = WSK_PROVIDER_CHARACTERISTICS::default();
    let mut reg = c.reg;
    unsafe {
        assert_eq!(
            WskQueryProviderCharacteristics(&mut *reg, &mut chars),
            STATUS_SUCCESS
        );
        // A second capture is allowed; each needs its release.
        let mut npi2 = WSK_PROVIDER_NPI {
            Client: ptr::null_mut(),
            Dispatch: ptr::null(),
        };
        assert_eq!(
            WskCaptureProviderNPI(&mut *reg, WSK_NO_WAIT, &mut npi2),
            STATUS_SUCCESS
        );
        WskReleaseProviderNPI(&mut *reg);
        WskReleaseProviderNPI(&mut *reg);
        WskDeregister(&mut *reg);
        // After deregistration captures fail.
        assert_eq!(
            WskCaptureProviderNPI(&mut *reg, WSK_NO_WAIT, &mut npi2),
            STATUS_DEVICE_NOT_READY
        );
    }
    assert_eq!(chars.HighestVersion, 0x0100);
}

#[allow(clippy::unnecessary_box_returns)] // the block must not move
fn register_only() -> Box<WSK_REGISTRATION> {
    let mut reg = Box::new(WSK_REGISTRATION::ZEROED);
    let mut cnpi = WSK_CLIENT_NPI {
        ClientContext: ptr::null_mut(),
        Dispatch: &CLIENT_DISPATCH,
    };
    assert_eq!(unsafe { WskRegister(&mut cnpi, &mut *reg) }, STATUS_SUCCESS);
    reg
}

#[test]
fn capture_waits_for_the_provider() {
    let sim = benign();
    sim.set_provider_ready(Readiness::Never);
    let mut reg = register_only();
    let mut npi = WSK_PROVIDER_NPI {
        Client: ptr::null_mut(),
        Dispatch: ptr::null(),
    };
    unsafe {
        assert_eq!(
            WskCaptureProviderNPI(&mut *reg, WSK_NO_WAIT, &mut npi),
            STATUS_DEVICE_NOT_READY
        );
        assert_eq!(
            WskCaptureProviderNPI(&mut *reg, 20, &mut npi),
            STATUS_DEVICE_NOT_READY
        );
        sim.set_provider_ready(Readiness::After(Duration::from_millis(30)));
        assert_eq!(
            WskCaptureProviderNPI(&mut *reg, 5000, &mut npi),
            STATUS_SUCCESS
        );
        WskReleaseProviderNPI(&mut *reg);
        WskDeregister(&mut *reg);
    }
}

#[test]
fn deregister_wakes_a_blocked_capture() {
    let sim = benign();
    sim.set_provider_ready(Readiness::Never);
    let reg = Box::leak(register_only());
    let addr = reg as *mut WSK_REGISTRATION as usize;
    let t = std::thread::spawn(move || {
        let mut npi = WSK_PROVIDER_NPI {
            Client: ptr::null_mut(),
            Dispatch: ptr::null(),
        };
        unsafe { WskCaptureProviderNPI(addr as PWSK_REGISTRATION, WSK_INFINITE_WAIT, &mut npi) }
    });
    std::thread::sleep(Duration::from_millis(20));
    unsafe { WskDeregister(addr as PWSK_REGISTRATION) };
    assert_eq!(t.join().unwrap(), STATUS_DEVICE_NOT_READY);
    drop(unsafe { Box::from_raw(addr as *mut WSK_REGISTRATION) });
}

static V2: WSK_CLIENT_DISPATCH = WSK_CLIENT_DISPATCH {
    Version: MAKE_WSK_VERSION(2, 0),
    Reserved: 0,
    WskClientEvent: None,
};

#[test]
fn version_outside_the_provider_range_is_refused() {
    let sim = benign();
    sim.set_provider_version(MAKE_WSK_VERSION(1, 0), MAKE_WSK_VERSION(1, 0));
    let mut reg = Box::new(WSK_REGISTRATION::ZEROED);
    let mut cnpi = WSK_CLIENT_NPI {
        ClientContext: ptr::null_mut(),
        Dispatch: &V2,
    };
    let mut npi = WSK_PROVIDER_NPI {
        Client: ptr::null_mut(),
        Dispatch: ptr::null(),
    };
    unsafe {
        assert_eq!(WskRegister(&mut cnpi, &mut *reg), STATUS_SUCCESS);
        assert_eq!(
            WskCaptureProviderNPI(&mut *reg, WSK_NO_WAIT, &mut npi),
            STATUS_NOINTERFACE
        );
        WskDeregister(&mut *reg);
    }
}

#[test]
#[should_panic(expected = "rule: DEREGISTER")]
fn deregister_with_a_captured_npi_is_reported() {
    let sim = benign();
    sim.set_deregister_timeout(Duration::from_millis(20));
    let mut c = Client::new();
    unsafe { WskDeregister(&mut *c.reg) };
}

#[test]
#[should_panic(expected = "socket #")]
fn deregister_with_an_open_socket_is_reported() {
    let sim = benign();
    sim.set_deregister_timeout(Duration::from_millis(20));
    let c = Client::new();
    let _s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    c.finish();
}

#[test]
#[should_panic(expected = "rule: NPI")]
fn release_without_capture_is_reported() {
    let _sim = benign();
    let mut reg = register_only();
    unsafe {
        WskReleaseProviderNPI(&mut *reg);
        WskDeregister(&mut *reg);
    }
}

#[test]
#[should_panic(expected = "not deregistered")]
fn registration_leak_is_reported() {
    let _sim = benign();
    let _reg = register_only();
}

// ---------------------------------------------------------------------------
// Sockets

#[test]
fn every_socket_kind_can_be_created_and_closed() {
    let sim = benign();
    let c = Client::new();
    for flags in [
        WSK_FLAG_BASIC_SOCKET,
        WSK_FLAG_LISTEN_SOCKET,
        WSK_FLAG_CONNECTION_SOCKET,
        WSK_FLAG_DATAGRAM_SOCKET,
        WSK_FLAG_STREAM_SOCKET,
    ] {
        let s = c.socket(flags, ptr::null_mut(), ptr::null());
        assert_eq!(close(s), STATUS_SUCCESS);
    }
    // Wrong type for the kind.
    let (st, _) = c.try_socket(
        AF_INET,
        SOCK_DGRAM,
        IPPROTO_UDP as u32,
        WSK_FLAG_CONNECTION_SOCKET,
        ptr::null_mut(),
        ptr::null(),
    );
    assert_eq!(st, STATUS_NOT_SUPPORTED);
    sim.set_stream_sockets(false);
    let (st, _) = c.try_socket(
        AF_INET,
        SOCK_STREAM,
        IPPROTO_TCP as u32,
        WSK_FLAG_STREAM_SOCKET,
        ptr::null_mut(),
        ptr::null(),
    );
    assert_eq!(st, STATUS_INVALID_PARAMETER);
    sim.fail_next(Routine::WskSocket, STATUS_INSUFFICIENT_RESOURCES);
    let (st, _) = c.try_socket(
        AF_INET,
        SOCK_STREAM,
        IPPROTO_TCP as u32,
        WSK_FLAG_CONNECTION_SOCKET,
        ptr::null_mut(),
        ptr::null(),
    );
    assert_eq!(st, STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(sim.stats().sockets_created, 5);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: PARAMETER")]
fn bad_socket_flags_are_reported() {
    let _sim = benign();
    let c = Client::new();
    let _ = c.try_socket(
        AF_INET,
        SOCK_STREAM,
        IPPROTO_TCP as u32,
        0x30,
        ptr::null_mut(),
        ptr::null(),
    );
    c.finish();
}

#[test]
fn connect_send_receive_half_close() {
    let sim = benign();
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:80");
    assert_eq!(p.remote_addr().ip().to_string(), "10.0.0.1");
    assert_eq!(local_addr(s, conn(s).WskGetLocalAddress), p.remote_addr());

    assert_eq!(send(s, b"hello"), (STATUS_SUCCESS, 5));
    assert_eq!(p.recv_exact(5), b"hello");
    p.send(b"world!");
    assert_eq!(recv(s, 64), (STATUS_SUCCESS, b"world!".to_vec()));

    // Peer half-closes: receive completes with 0 bytes, sending still works.
    p.close();
    assert_eq!(recv(s, 64), (STATUS_SUCCESS, Vec::new()));
    assert_eq!(recv(s, 64), (STATUS_SUCCESS, Vec::new()));
    assert_eq!(send(s, b"bye").0, STATUS_SUCCESS);
    assert_eq!(disconnect(s, 0), STATUS_SUCCESS);
    assert_eq!(p.recv_until_closed(), b"bye");
    assert!(!p.was_reset());
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn abortive_peer_close_resets_a_pending_receive() {
    let sim = benign();
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:81");
    let mut r = Req::new();
    let mut b = Buf::zeroed(16);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    assert!(!r.done());
    p.abort();
    assert_eq!(r.wait(st).0, STATUS_CONNECTION_RESET);
    assert_eq!(send(s, b"x").0, STATUS_CONNECTION_RESET);
    drop((r, b));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn refused_and_unreachable_connects() {
    let sim = benign();
    sim.add_host("10.0.0.9");
    let c = Client::new();
    for (to, want) in [
        ("10.0.0.9:1", STATUS_CONNECTION_REFUSED),
        ("10.9.9.9:1", STATUS_HOST_UNREACHABLE),
    ] {
        let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
        assert_eq!(bind(s, conn(s).WskBind, "0.0.0.0:0"), STATUS_SUCCESS);
        let mut r = Req::new();
        let mut a = Sa::new(to);
        let irp = r.arm();
        let st = unsafe { (conn(s).WskConnect.unwrap())(s, a.ptr(), 0, irp) };
        assert_eq!(r.wait(st).0, want);
        drop(r);
        assert_eq!(close(s), STATUS_SUCCESS);
    }
    // Connecting an unbound socket is refused by the provider, and reported
    // (WskConnect needs a bound socket: docs/conformance.md M-13).
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    let mut r = Req::new();
    let mut a = Sa::new("10.0.0.9:1");
    let irp = r.arm();
    let st = unsafe { (conn(s).WskConnect.unwrap())(s, a.ptr(), 0, irp) };
    assert_eq!(r.wait(st).0, STATUS_INVALID_DEVICE_STATE);
    let broke = sim.take_violations();
    assert!(
        broke.len() == 1 && broke[0].contains("(rule: SOCKET_STATE)"),
        "{broke:?}"
    );
    drop(r);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn listen_and_accept_with_irps() {
    let sim = benign();
    let c = Client::new();
    let l = c.socket(WSK_FLAG_LISTEN_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(bind(l, listen(l).WskBind, "0.0.0.0:5000"), STATUS_SUCCESS);
    // A second bind of the port fails.
    let l2 = c.socket(WSK_FLAG_LISTEN_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(
        bind(l2, listen(l2).WskBind, "0.0.0.0:5000"),
        STATUS_ADDRESS_ALREADY_EXISTS
    );
    assert_eq!(close(l2), STATUS_SUCCESS);

    let mut r = Req::new();
    let mut la = Sa::empty();
    let mut ra = Sa::empty();
    let irp = r.arm();
    let st = unsafe {
        (listen(l).WskAccept.unwrap())(l, 0, ptr::null_mut(), ptr::null(), la.ptr(), ra.ptr(), irp)
    };
    assert_eq!(st, STATUS_PENDING);
    let p = sim.peer_connect("10.0.0.1:5000").unwrap();
    let (st, info) = r.wait(st);
    assert_eq!(st, STATUS_SUCCESS);
    let a = info as PWSK_SOCKET;
    assert_eq!(la.get().to_string(), "10.0.0.1:5000");
    assert_eq!(ra.get(), p.local_addr());
    p.send(b"ping");
    assert_eq!(recv(a, 4), (STATUS_SUCCESS, b"ping".to_vec()));
    assert_eq!(send(a, b"pong").0, STATUS_SUCCESS);
    assert_eq!(p.recv_exact(4), b"pong");

    // A connection waiting in the backlog is accepted at once.
    let p2 = sim.peer_connect("10.0.0.1:5000").unwrap();
    let irp = r.arm();
    let st = unsafe {
        (listen(l).WskAccept.unwrap())(
            l,
            0,
            ptr::null_mut(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    let a2 = r.result().1 as PWSK_SOCKET;
    drop(r);
    assert_eq!(close(a2), STATUS_SUCCESS);
    assert!(p2.wait_closed(), "closing without disconnect resets");
    assert_eq!(close(a), STATUS_SUCCESS);
    assert_eq!(close(l), STATUS_SUCCESS);
    // The port is free again: connects are refused.
    assert_eq!(
        sim.peer_connect("10.0.0.1:5000").err(),
        Some(STATUS_CONNECTION_REFUSED)
    );
    c.finish();
}

#[test]
fn accept_event_with_inherited_receive_and_disconnect_events() {
    let sim = benign();
    let c = Client::new();
    let lctx = Ctx::new();
    let actx = Ctx::new();
    lctx.accept_ctx.store(actx.ptr() as usize, Ordering::SeqCst);
    let l = listener(&c, "0.0.0.0:6000", &lctx);
    assert_eq!(
        enable_events(l, WSK_EVENT_ACCEPT | ALL_CONN_EVENTS),
        STATUS_SUCCESS
    );
    let p = sim.peer_connect("10.0.0.1:6000").unwrap();
    assert_eq!(lctx.log(), vec!["accept flags=0x0"]);
    p.send(b"abc");
    p.send(b"def");
    p.close();
    assert_eq!(
        actx.log(),
        vec![
            "receive 3 flags=0x0",
            "receive 3 flags=0x0",
            "disconnect flags=0x0"
        ]
    );
    assert_eq!(*actx.data.lock().unwrap(), b"abcdef");
    let a = lctx.accepted.lock().unwrap()[0] as PWSK_SOCKET;
    let stats = sim.stats();
    assert_eq!(stats.count(EventKind::Accept), 1);
    assert_eq!(stats.statuses(EventKind::Disconnect), vec![STATUS_SUCCESS]);
    assert_eq!(close(a), STATUS_SUCCESS);
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn rejected_accept_resets_the_peer() {
    let sim = benign();
    let c = Client::new();
    let lctx = Ctx::new();
    lctx.accept_status
        .store(STATUS_REQUEST_NOT_ACCEPTED, Ordering::SeqCst);
    let l = listener(&c, "0.0.0.0:6001", &lctx);
    assert_eq!(enable_events(l, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    let p = sim.peer_connect("10.0.0.1:6001").unwrap();
    assert!(p.was_reset());
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

fn connected_with_events(
    sim: &Sim,
    port: u16,
    ctx: &Ctx,
    mask: u32,
) -> (
    Client,
    PWSK_SOCKET,
    wsk_sim::PeerConn,
    wsk_sim::PeerListener,
) {
    let peer = sim.peer_listen(&format!("10.0.0.2:{port}"));
    let c = Client::new();
    let s = connected(&c, &format!("10.0.0.2:{port}"), ctx.ptr(), conn_disp());
    assert_eq!(enable_events(s, mask), STATUS_SUCCESS);
    let p = peer.accept();
    (c, s, p, peer)
}

#[test]
fn partial_accept_stops_indications_until_a_receive_completes() {
    let sim = benign();
    let x = Ctx::new();
    x.recv_mode.store(RECV_ACCEPT_SOME, Ordering::SeqCst);
    x.accept_bytes.store(2, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7000, &x, WSK_EVENT_RECEIVE);
    p.send(b"12345");
    p.send(b"678");
    assert_eq!(
        x.log(),
        vec!["receive 5 flags=0x0"],
        "no indication after a partial accept"
    );
    assert_eq!(recv(s, 100), (STATUS_SUCCESS, b"345678".to_vec()));
    x.recv_mode.store(RECV_ACCEPT_ALL, Ordering::SeqCst);
    p.send(b"9");
    assert_eq!(x.log().len(), 2);
    assert_eq!(*x.data.lock().unwrap(), b"129");
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn refused_indication_is_buffered_for_wsk_receive() {
    let sim = benign();
    let x = Ctx::new();
    x.recv_mode.store(RECV_REFUSE, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7001, &x, WSK_EVENT_RECEIVE);
    p.send(b"data");
    p.send(b"more");
    assert_eq!(x.log().len(), 1);
    assert_eq!(recv(s, 3), (STATUS_SUCCESS, b"dat".to_vec()));
    assert_eq!(recv(s, 100), (STATUS_SUCCESS, b"amore".to_vec()));
    // The completed receive re-enabled indications: the rest was offered
    // (and refused) once more before the second receive took it.
    assert_eq!(
        sim.stats().statuses(EventKind::Receive),
        vec![STATUS_DATA_NOT_ACCEPTED; 2]
    );
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn retained_indications_are_released() {
    let sim = benign();
    sim.set_indication_chunk(2);
    let x = Ctx::new();
    x.recv_mode.store(RECV_RETAIN, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7002, &x, WSK_EVENT_RECEIVE);
    p.send(b"hello");
    p.send(b"!");
    assert_eq!(*x.data.lock().unwrap(), b"hello!");
    let inds: Vec<usize> = x.retained.lock().unwrap().clone();
    assert_eq!(inds.len(), 2);
    assert!(!sim.leaks().is_empty(), "retained indications are held");
    for i in inds {
        assert_eq!(release(s, i), STATUS_SUCCESS);
    }
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: RELEASE")]
fn releasing_an_indication_twice_is_reported() {
    let sim = benign();
    let x = Ctx::new();
    x.recv_mode.store(RECV_RETAIN, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7003, &x, WSK_EVENT_RECEIVE);
    p.send(b"x");
    let i = x.retained.lock().unwrap()[0];
    release(s, i);
    release(s, i);
    close(s);
    c.finish();
}

#[test]
fn events_at_dispatch_carry_the_flag() {
    let sim = benign();
    sim.set_event_irql(Irql::Dispatch);
    let x = Ctx::new();
    let (c, s, p, _l) = connected_with_events(&sim, 7004, &x, ALL_CONN_EVENTS);
    p.send(b"z");
    assert_eq!(
        x.irql_seen.load(Ordering::SeqCst),
        usize::from(DISPATCH_LEVEL)
    );
    p.abort();
    assert_eq!(
        x.log(),
        vec![
            format!("receive 1 flags={WSK_FLAG_AT_DISPATCH_LEVEL:#x}"),
            format!(
                "disconnect flags={:#x}",
                WSK_FLAG_AT_DISPATCH_LEVEL | WSK_FLAG_ABORTIVE
            )
        ]
    );
    assert!(sim.events().iter().all(|e| e.at_dispatch));
    assert_eq!(unsafe { KeGetCurrentIrql() }, PASSIVE_LEVEL);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: CALLBACK_STATUS")]
fn disconnect_callback_must_return_success() {
    let sim = benign();
    let x = Ctx::new();
    x.disconnect_status
        .store(STATUS_UNSUCCESSFUL, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7005, &x, WSK_EVENT_DISCONNECT);
    p.close();
    close(s);
    c.finish();
}

#[test]
#[should_panic(expected = "BytesAccepted > BytesIndicated")]
fn over_accepting_is_reported() {
    let sim = benign();
    let x = Ctx::new();
    x.recv_mode.store(RECV_OVER_ACCEPT, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7006, &x, WSK_EVENT_RECEIVE);
    p.send(b"abc");
    close(s);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: CALLBACK_STATUS")]
fn receive_callback_with_a_forbidden_status_is_reported() {
    let sim = benign();
    let x = Ctx::new();
    x.recv_mode.store(RECV_BAD_STATUS, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7007, &x, WSK_EVENT_RECEIVE);
    p.send(b"abc");
    close(s);
    c.finish();
}

#[test]
#[should_panic(expected = "inside the WskReceiveEvent callback")]
fn waiting_inside_a_callback_is_reported() {
    let sim = benign();
    let x = Ctx::new();
    x.wait_inside.store(1, Ordering::SeqCst);
    let (c, s, p, _l) = connected_with_events(&sim, 7008, &x, WSK_EVENT_RECEIVE);
    p.send(b"abc");
    close(s);
    c.finish();
}

#[test]
fn send_backlog_events() {
    let sim = benign();
    let x = Ctx::new();
    let (c, s, p, _l) = connected_with_events(&sim, 7009, &x, WSK_EVENT_SEND_BACKLOG);
    sim.settle();
    p.indicate_send_backlog(1000);
    sim.change_ideal_send_backlog(2000);
    assert_eq!(
        x.log(),
        vec!["backlog 65536", "backlog 1000", "backlog 2000"]
    );
    let mut out = 0usize;
    // The IRP the page requires; the size comes back in IoStatus.Information.
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe {
        (basic(s).WskControlSocket.unwrap())(
            s,
            WskIoctl,
            SIO_WSK_QUERY_IDEAL_SEND_BACKLOG,
            0,
            0,
            ptr::null_mut(),
            core::mem::size_of::<usize>(),
            (&raw mut out).cast(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!((r.wait(st), out), ((STATUS_SUCCESS, 8), 2000));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn disconnect_with_final_data_and_abortive_disconnect() {
    let sim = benign();
    let peer = sim.peer_listen("10.0.0.2:90");
    let c = Client::new();
    let s = connected(&c, "10.0.0.2:90", ptr::null_mut(), ptr::null());
    let p = peer.accept();
    let mut r = Req::new();
    let mut b = Buf::new(b"last words");
    let irp = r.arm();
    let st = unsafe { (conn(s).WskDisconnect.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(r.wait(st), (STATUS_SUCCESS, 10));
    assert_eq!(p.recv_until_closed(), b"last words");
    assert!(!p.was_reset());
    // After a graceful disconnect, sends fail; receives still work.
    assert_eq!(send(s, b"x").0, STATUS_INVALID_DEVICE_STATE);
    p.send(b"ok");
    assert_eq!(recv(s, 8), (STATUS_SUCCESS, b"ok".to_vec()));
    drop((r, b));
    assert_eq!(close(s), STATUS_SUCCESS);

    let s2 = connected(&c, "10.0.0.2:90", ptr::null_mut(), ptr::null());
    let p2 = peer.accept();
    let mut r = Req::new();
    let mut b = Buf::zeroed(4);
    let irp = r.arm();
    let pending = unsafe { (conn(s2).WskReceive.unwrap())(s2, b.ptr(), 0, irp) };
    assert_eq!(disconnect(s2, WSK_FLAG_ABORTIVE), STATUS_SUCCESS);
    assert_eq!(r.wait(pending).0, STATUS_CONNECTION_ABORTED);
    assert!(p2.was_reset());
    assert_eq!(send(s2, b"x").0, STATUS_CONNECTION_ABORTED);
    drop((r, b));
    assert_eq!(close(s2), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn close_and_cancel_complete_pending_irps() {
    let sim = benign();
    let (c, s, _p) = client_connected_to_peer(&sim, "10.0.0.2:91");
    let mut b = Buf::zeroed(4);
    let mut r1 = Req::new();
    let irp = r1.arm();
    let st1 = unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(st1, STATUS_PENDING);
    // Cancel: the provider's cancel routine completes it.
    assert_eq!(unsafe { IoCancelIrp(r1.irp) }, TRUE);
    assert_eq!(r1.wait(st1).0, STATUS_CANCELLED);

    // Ignoring cancellation (Wine): only close completes it.
    sim.set_ignore_cancel(true);
    let irp = r1.arm();
    let st2 = unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(unsafe { IoCancelIrp(r1.irp) }, FALSE);
    assert!(!r1.done());
    assert_eq!(close(s), STATUS_SUCCESS);
    assert_eq!(r1.wait(st2).0, STATUS_CANCELLED);
    assert_eq!(sim.stats().irps_cancelled, 2);
    drop((r1, b));
    c.finish();
}

#[test]
fn hung_requests_complete_only_when_cancelled() {
    let sim = benign();
    let (c, s, _p) = client_connected_to_peer(&sim, "10.0.0.2:92");
    sim.hang_next(Routine::WskSend);
    let mut r = Req::new();
    let mut b = Buf::new(b"stuck");
    let irp = r.arm();
    let st = unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    std::thread::sleep(Duration::from_millis(5));
    assert!(!r.done());
    unsafe { IoCancelIrp(r.irp) };
    assert_eq!(r.wait(st).0, STATUS_CANCELLED);
    sim.fail_next(Routine::WskSend, STATUS_NETWORK_UNREACHABLE);
    assert_eq!(send(s, b"x").0, STATUS_NETWORK_UNREACHABLE);
    drop((r, b));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: SOCKET_CLOSED")]
fn using_a_closed_socket_is_reported() {
    let _sim = benign();
    let c = Client::new();
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    close(s);
    bind(s, conn(s).WskBind, "0.0.0.0:0");
    c.finish();
}

#[test]
#[should_panic(expected = "rule: CLOSE_IN_PROGRESS")]
fn closing_a_socket_during_another_call_on_it_is_reported() {
    let sim = benign();
    let c = Client::new();
    let lctx = Ctx::new();
    let actx = Ctx::new();
    lctx.accept_ctx.store(actx.ptr() as usize, Ordering::SeqCst);
    let l = listener(&c, "127.0.0.1:7100", &lctx);
    assert_eq!(
        enable_events(l, WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE),
        STATUS_SUCCESS
    );
    let s = connected(&c, "127.0.0.1:7100", ptr::null_mut(), ptr::null());
    // The accepted socket's receive callback closes `s` while `WskSend(s)`
    // (which delivers the data) has not returned.
    actx.close_inside.store(s as usize, Ordering::SeqCst);
    let _ = send(s, b"boom");
    let _ = sim;
}

#[test]
#[should_panic(expected = "no IoCompletion routine")]
fn an_irp_without_completion_routine_is_reported() {
    let _sim = benign();
    let c = Client::new();
    unsafe {
        let irp = IoAllocateIrp(1, FALSE);
        (c.dispatch().WskSocket.unwrap())(
            c.npi.Client,
            AF_INET,
            SOCK_STREAM,
            IPPROTO_TCP as u32,
            WSK_FLAG_CONNECTION_SOCKET,
            ptr::null_mut(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        IoFreeIrp(irp);
    }
    c.finish();
}

#[test]
#[should_panic(expected = "still owned by a pending WskReceive")]
fn reusing_a_pending_irp_is_reported() {
    let sim = benign();
    let (c, s, _p) = client_connected_to_peer(&sim, "10.0.0.2:93");
    let mut r = Req::new();
    let mut b = Buf::zeroed(4);
    let irp = r.arm();
    unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
    unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
    close(s);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: MDL")]
fn an_unmapped_mdl_is_reported() {
    let sim = benign();
    let (c, s, _p) = client_connected_to_peer(&sim, "10.0.0.2:94");
    let mut data = [1u8; 4];
    unsafe {
        let mdl = IoAllocateMdl(data.as_mut_ptr().cast(), 4, FALSE, FALSE, ptr::null_mut());
        let mut wb = WSK_BUF {
            Mdl: mdl,
            Offset: 0,
            Length: 4,
        };
        let mut r = Req::new();
        let irp = r.arm();
        let st = (conn(s).WskSend.unwrap())(s, &mut wb, 0, irp);
        r.wait(st);
        IoFreeMdl(mdl);
    }
    close(s);
    c.finish();
}

// ---------------------------------------------------------------------------
// Datagrams

#[test]
fn datagrams_both_ways_with_truncation() {
    let sim = benign();
    let peer = sim.peer_udp("10.0.0.2:53");
    let c = Client::new();
    let d = c.socket(WSK_FLAG_DATAGRAM_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(bind(d, dgram(d).WskBind, "0.0.0.0:5353"), STATUS_SUCCESS);
    unsafe {
        let mut r = Req::new();
        let mut b = Buf::new(b"query");
        let mut to = Sa::new("10.0.0.2:53");
        let irp = r.arm();
        let st = (dgram(d).WskSendTo.unwrap())(d, b.ptr(), 0, to.ptr(), 0, ptr::null_mut(), irp);
        assert_eq!(r.wait(st), (STATUS_SUCCESS, 5));
        let (from, data) = peer.recv_from();
        assert_eq!(
            (from.to_string().as_str(), data.as_slice()),
            ("10.0.0.1:5353", &b"query"[..])
        );

        peer.send_to("10.0.0.1:5353", b"answer-too-long");
        let mut rb = Buf::zeroed(6);
        let mut from = Sa::empty();
        let mut clen: ULONG = 64;
        let mut cflags: ULONG = 0;
        let irp = r.arm();
        let st = (dgram(d).WskReceiveFrom.unwrap())(
            d,
            rb.ptr(),
            0,
            from.ptr(),
            &mut clen,
            ptr::null_mut(),
            &mut cflags,
            irp,
        );
        assert_eq!(r.wait(st), (STATUS_SUCCESS, 6));
        assert_eq!(&rb.data, b"answer");
        assert_eq!(from.get(), peer.local_addr());
        assert_eq!((clen, cflags), (0, MSG_TRUNC));

        // A pending receive completes when a datagram arrives.
        let irp = r.arm();
        let st = (dgram(d).WskReceiveFrom.unwrap())(
            d,
            rb.ptr(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        assert_eq!(st, STATUS_PENDING);
        peer.send_to("10.0.0.1:5353", b"late");
        assert_eq!(r.wait(st), (STATUS_SUCCESS, 4));

        // SendMessages to the address set with SIO_WSK_SET_REMOTE_ADDRESS.
        let mut ctl = Sa::new("10.0.0.2:53");
        let irp = r.arm();
        let st = (basic(d).WskControlSocket.unwrap())(
            d,
            WskIoctl,
            SIO_WSK_SET_REMOTE_ADDRESS,
            0,
            16,
            ctl.ptr().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        assert_eq!(r.wait(st).0, STATUS_SUCCESS);
        let mut b1 = Buf::new(b"one");
        let mut b2 = Buf::new(b"two");
        let mut second = WSK_BUF_LIST {
            Next: ptr::null_mut(),
            Buffer: *b2.wsk,
        };
        let mut first = WSK_BUF_LIST {
            Next: &mut second,
            Buffer: *b1.wsk,
        };
        let irp = r.arm();
        let st = (dgram(d).WskSendMessages.unwrap())(
            d,
            &mut first,
            0,
            ptr::null_mut(),
            0,
            ptr::null_mut(),
            irp,
        );
        assert_eq!(r.wait(st), (STATUS_SUCCESS, 6));
        assert_eq!(peer.recv_from().1, b"one");
        assert_eq!(peer.recv_from().1, b"two");
        let _ = (b1.ptr(), b2.ptr());
    }
    assert_eq!(close(d), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn receive_from_events_and_release() {
    let sim = benign();
    let peer = sim.peer_udp("10.0.0.2:0");
    let c = Client::new();
    let x = Ctx::new();
    let d = c.socket(
        WSK_FLAG_DATAGRAM_SOCKET,
        x.ptr(),
        (&raw const DGRAM_DISPATCH).cast(),
    );
    assert_eq!(bind(d, dgram(d).WskBind, "0.0.0.0:5454"), STATUS_SUCCESS);
    assert_eq!(enable_events(d, WSK_EVENT_RECEIVE_FROM), STATUS_SUCCESS);
    peer.send_to("10.0.0.1:5454", b"a");
    x.recv_mode.store(RECV_RETAIN, Ordering::SeqCst);
    peer.send_to("10.0.0.1:5454", b"bc");
    let got: Vec<Vec<u8>> = x
        .dgrams
        .lock()
        .unwrap()
        .iter()
        .map(|(d, _)| d.clone())
        .collect();
    assert_eq!(got, vec![b"a".to_vec(), b"bc".to_vec()]);
    assert_eq!(x.dgrams.lock().unwrap()[0].1, peer.local_addr());
    let ind = x.retained.lock().unwrap()[0];
    assert_eq!(
        unsafe { (dgram(d).WskRelease.unwrap())(d, ind as PWSK_DATAGRAM_INDICATION) },
        STATUS_SUCCESS
    );
    assert_eq!(sim.stats().count(EventKind::ReceiveFrom), 2);
    assert_eq!(close(d), STATUS_SUCCESS);
    c.finish();
}

// ---------------------------------------------------------------------------
// Names, options, client control

fn unicode(s: &str) -> (Vec<u16>, UNICODE_STRING) {
    let v: Vec<u16> = s.encode_utf16().chain([0]).collect();
    let us = UNICODE_STRING {
        Length: ((v.len() - 1) * 2) as u16,
        MaximumLength: (v.len() * 2) as u16,
        Buffer: v.as_ptr().cast_mut(),
    };
    (v, us)
}

#[test]
fn address_and_name_resolution() {
    let sim = benign();
    sim.add_name("server.test", &["10.0.0.7", "fd00::7"]);
    let c = Client::new();
    let d = c.dispatch();
    unsafe {
        let (_n, mut node) = unicode("SERVER.test");
        let (_s, mut svc) = unicode("http");
        let mut hints: ADDRINFOEXW = core::mem::zeroed();
        hints.ai_family = i32::from(AF_INET);
        let mut result: PADDRINFOEXW = ptr::null_mut();
        let mut r = Req::new();
        let irp = r.arm();
        let st = (d.WskGetAddressInfo.unwrap())(
            c.npi.Client,
            &mut node,
            &mut svc,
            NS_ALL,
            ptr::null_mut(),
            &mut hints,
            &mut result,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        assert_eq!(r.wait(st).0, STATUS_SUCCESS);
        assert!(!result.is_null());
        assert!((*result).ai_next.is_null(), "IPv4 only");
        let mut sa = Sa::empty();
        ptr::copy_nonoverlapping(
            (*result).ai_addr.cast::<u8>(),
            sa.0.as_mut_ptr(),
            (*result).ai_addrlen,
        );
        assert_eq!(sa.get().to_string(), "10.0.0.7:80");
        (d.WskFreeAddressInfo.unwrap())(c.npi.Client, result);

        let (_u, mut unknown) = unicode("nowhere.test");
        let irp = r.arm();
        let st = (d.WskGetAddressInfo.unwrap())(
            c.npi.Client,
            &mut unknown,
            ptr::null_mut(),
            NS_ALL,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut result,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        assert_eq!(r.wait(st).0, STATUS_NOT_FOUND);

        let mut host = [0u16; 64];
        let mut serv = [0u16; 16];
        let mut hs = UNICODE_STRING {
            Length: 0,
            MaximumLength: 128,
            Buffer: host.as_mut_ptr(),
        };
        let mut ss = UNICODE_STRING {
            Length: 0,
            MaximumLength: 32,
            Buffer: serv.as_mut_ptr(),
        };
        let mut a = Sa::new("10.0.0.7:443");
        let irp = r.arm();
        let st = (d.WskGetNameInfo.unwrap())(
            c.npi.Client,
            a.ptr(),
            16,
            &mut hs,
            &mut ss,
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        assert_eq!(r.wait(st).0, STATUS_SUCCESS);
        assert_eq!(
            String::from_utf16_lossy(&host[..usize::from(hs.Length) / 2]),
            "server.test"
        );
        assert_eq!(
            String::from_utf16_lossy(&serv[..usize::from(ss.Length) / 2]),
            "https"
        );
    }
    c.finish();
}

#[test]
#[should_panic(expected = "WskFreeAddressInfo")]
fn an_address_list_not_freed_is_a_leak() {
    let _sim = benign();
    let c = Client::new();
    unsafe {
        let (_n, mut node) = unicode("127.0.0.1");
        let mut result: PADDRINFOEXW = ptr::null_mut();
        let mut r = Req::new();
        let irp = r.arm();
        let st = (c.dispatch().WskGetAddressInfo.unwrap())(
            c.npi.Client,
            &mut node,
            ptr::null_mut(),
            NS_ALL,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut result,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        r.wait(st);
    }
    c.finish();
}

/// SOCK-4 (conformance M-21): a socket context "should be NULL" when no
/// callback will be enabled.
#[test]
#[should_panic(expected = "rule: PARAMETER")]
fn a_socket_context_without_callbacks_is_reported() {
    let _sim = benign();
    let c = Client::new();
    let mut context = 0u64;
    let _s = c.socket(
        WSK_FLAG_CONNECTION_SOCKET,
        (&raw mut context).cast(),
        ptr::null(),
    );
}

/// CTL-4 (conformance M-21): `OutputSizeReturned` "should be NULL" with an
/// IRP; the simulator does not write it then.
#[test]
#[should_panic(expected = "rule: PARAMETER")]
fn an_output_size_pointer_with_an_irp_is_reported() {
    let _sim = benign();
    let c = Client::new();
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    let mut v: u32 = 0;
    let mut n: SIZE_T = 7;
    let mut r = Req::new();
    let irp = r.arm();
    // SAFETY: a live socket; the buffers outlive the call.
    let st = unsafe {
        (basic(s).WskControlSocket.unwrap())(
            s,
            WskGetOption,
            SO_KEEPALIVE,
            SOL_SOCKET,
            0,
            ptr::null_mut(),
            4,
            (&raw mut v).cast(),
            &mut n,
            irp,
        )
    };
    assert_eq!(r.wait(st), (STATUS_SUCCESS, 4));
    assert_eq!(n, 7, "not written with an IRP");
}

#[test]
fn socket_options_and_transport_list() {
    let _sim = benign();
    let c = Client::new();
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    unsafe {
        let ctl = basic(s).WskControlSocket.unwrap();
        let on: u32 = 1;
        // SO_KEEPALIVE takes an IRP (its page).
        let mut r = Req::new();
        let irp = r.arm();
        let st = ctl(
            s,
            WskSetOption,
            SO_KEEPALIVE,
            SOL_SOCKET,
            4,
            (&raw const on).cast_mut().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
        assert_eq!(r.wait(st).0, STATUS_SUCCESS);
        let mut v: u32 = 0;
        let mut n: SIZE_T = 0;
        // With an IRP: IoStatus.Information is the output size, and
        // OutputSizeReturned is NULL.
        let irp = r.arm();
        let st = ctl(
            s,
            WskGetOption,
            SO_KEEPALIVE,
            SOL_SOCKET,
            0,
            ptr::null_mut(),
            4,
            (&raw mut v).cast(),
            ptr::null_mut(),
            irp,
        );
        assert_eq!(r.wait(st), (STATUS_SUCCESS, 4));
        assert_eq!(v, 1);
        let st = ctl(
            s,
            WskSetOption,
            SO_SNDBUF,
            SOL_SOCKET,
            4,
            (&raw const on).cast_mut().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        assert_eq!(st, STATUS_SUCCESS);
        // Without an IRP (SO_SNDBUF has no WSK page demanding one): the size
        // comes back in *OutputSizeReturned.
        let st = ctl(
            s,
            WskGetOption,
            SO_SNDBUF,
            SOL_SOCKET,
            0,
            ptr::null_mut(),
            4,
            (&raw mut v).cast(),
            &mut n,
            ptr::null_mut(),
        );
        assert_eq!((st, v, n), (STATUS_SUCCESS, 1, 4));

        let mut list = [WSK_TRANSPORT::default(); 8];
        let st = (c.dispatch().WskControlClient.unwrap())(
            c.npi.Client,
            WSK_TRANSPORT_LIST_QUERY,
            0,
            ptr::null_mut(),
            core::mem::size_of_val(&list),
            list.as_mut_ptr().cast(),
            &mut n,
            ptr::null_mut(),
        );
        assert_eq!(st, STATUS_SUCCESS);
        assert_eq!(n, 4 * core::mem::size_of::<WSK_TRANSPORT>());
        assert_eq!(
            (list[0].SocketType, list[2].SocketType),
            (SOCK_STREAM, SOCK_DGRAM)
        );
    }
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

// ---------------------------------------------------------------------------
// Conditional accept, stream sockets, WskSocketConnect

fn conditional_listener(c: &Client, addr: &str, ctx: &Ctx) -> PWSK_SOCKET {
    let l = c.socket(
        WSK_FLAG_LISTEN_SOCKET,
        ctx.ptr(),
        (&raw const LISTEN_DISPATCH).cast(),
    );
    set_conditional_accept(l);
    assert_eq!(bind(l, listen(l).WskBind, addr), STATUS_SUCCESS);
    assert_eq!(enable_events(l, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    l
}

#[test]
fn conditional_accept_inspect_accept_reject_pend_abort() {
    let sim = benign();
    let c = Client::new();
    let x = Ctx::new();
    let l = conditional_listener(&c, "0.0.0.0:8000", &x);

    x.inspect_action.store(WskInspectAccept, Ordering::SeqCst);
    let p1 = sim.peer_connect("10.0.0.1:8000").unwrap();
    assert_eq!(x.log(), vec!["inspect", "accept flags=0x0"]);

    x.inspect_action.store(WskInspectReject, Ordering::SeqCst);
    assert_eq!(
        sim.peer_connect("10.0.0.1:8000").err(),
        Some(STATUS_CONNECTION_REFUSED)
    );

    x.inspect_action.store(WskInspectPend, Ordering::SeqCst);
    let p3 = sim.peer_connect_start("10.0.0.1:8000").unwrap();
    let id = *x.inspect_ids.lock().unwrap().last().unwrap();
    let mut r = Req::new();
    let irp = r.arm();
    let mut idc = id;
    let st = unsafe { (listen(l).WskInspectComplete.unwrap())(l, &mut idc, WskInspectAccept, irp) };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);
    assert_eq!(p3.established(), Ok(()));

    let p4 = sim.peer_connect_start("10.0.0.1:8000").unwrap();
    p4.abort();
    assert_eq!(x.log().last().map(String::as_str), Some("abort"));

    let accepted: Vec<usize> = x.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 2);
    // SIO_WSK_QUERY_INSPECT_ID on an accepted socket.
    let a = accepted[1] as PWSK_SOCKET;
    let mut got = WSK_INSPECT_ID::default();
    let mut n: SIZE_T = 0;
    let st = unsafe {
        (basic(a).WskControlSocket.unwrap())(
            a,
            WskIoctl,
            SIO_WSK_QUERY_INSPECT_ID,
            0,
            0,
            ptr::null_mut(),
            core::mem::size_of::<WSK_INSPECT_ID>(),
            (&raw mut got).cast(),
            &mut n,
            ptr::null_mut(),
        )
    };
    assert_eq!((st, got), (STATUS_SUCCESS, id));
    for s in accepted {
        assert_eq!(close(s as PWSK_SOCKET), STATUS_SUCCESS);
    }
    drop((p1, p3, r));
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn stream_sockets_listen_and_connect_over_loopback() {
    let sim = benign();
    let c = Client::new();
    let ls = c.socket(WSK_FLAG_STREAM_SOCKET, ptr::null_mut(), ptr::null());
    let sd = stream(ls);
    assert_eq!(bind(ls, sd.WskBind, "127.0.0.1:9000"), STATUS_SUCCESS);
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe { (sd.WskListen.unwrap())(ls, irp) };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);

    // WskSocketConnect from the same client.
    let mut local = Sa::new("0.0.0.0:0");
    let mut remote = Sa::new("127.0.0.1:9000");
    let irp = r.arm();
    let st = unsafe {
        (c.dispatch().WskSocketConnect.unwrap())(
            c.npi.Client,
            SOCK_STREAM,
            IPPROTO_TCP as u32,
            local.ptr(),
            remote.ptr(),
            0,
            ptr::null_mut(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    let (st, info) = r.wait(st);
    assert_eq!(st, STATUS_SUCCESS);
    let cs = info as PWSK_SOCKET;

    let irp = r.arm();
    let st = unsafe {
        (sd.WskAccept.unwrap())(
            ls,
            0,
            ptr::null_mut(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    let (st, info) = r.wait(st);
    assert_eq!(st, STATUS_SUCCESS);
    let acc = info as PWSK_SOCKET;
    assert_eq!(send(cs, b"loop").0, STATUS_SUCCESS);
    // The accepted socket is a stream socket: use the stream table.
    let mut b = Buf::zeroed(4);
    let irp = r.arm();
    let st = unsafe { (stream(acc).WskReceive.unwrap())(acc, b.ptr(), 0, irp) };
    assert_eq!(r.wait(st), (STATUS_SUCCESS, 4));
    assert_eq!(&b.data, b"loop");
    drop((r, b));
    for s in [cs, acc, ls] {
        assert_eq!(close(s), STATUS_SUCCESS);
    }
    c.finish();
    let _ = sim;
}

// ---------------------------------------------------------------------------
// Completion modes and seeds

fn echo_once(sim: &Sim, port: u16) {
    let peer = sim.peer_listen(&format!("10.0.0.2:{port}"));
    let c = Client::new();
    let s = connected(
        &c,
        &format!("10.0.0.2:{port}"),
        ptr::null_mut(),
        ptr::null(),
    );
    let p = peer.accept();
    assert_eq!(send(s, b"echo").0, STATUS_SUCCESS);
    p.send(&p.recv_exact(4));
    assert_eq!(recv(s, 4), (STATUS_SUCCESS, b"echo".to_vec()));
    p.close();
    assert_eq!(recv(s, 4), (STATUS_SUCCESS, Vec::new()));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn every_completion_mode_runs_the_echo() {
    for (i, mode) in [
        CompletionMode::Inline,
        CompletionMode::InlineReturnPending,
        CompletionMode::Worker,
        CompletionMode::Delayed(Duration::from_millis(1)),
        CompletionMode::Manual,
    ]
    .into_iter()
    .enumerate()
    {
        let sim = benign();
        sim.set_completion_mode(mode);
        sim.set_completion_irql(if i % 2 == 0 {
            Irql::Passive
        } else {
            Irql::Dispatch
        });
        echo_once(&sim, 9100 + i as u16);
    }
}

#[test]
fn manual_mode_completes_only_on_request() {
    let sim = benign();
    let c = Client::new();
    sim.set_completion_mode(CompletionMode::Manual);
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe {
        (c.dispatch().WskSocket.unwrap())(
            c.npi.Client,
            AF_INET,
            SOCK_DGRAM,
            IPPROTO_UDP as u32,
            WSK_FLAG_DATAGRAM_SOCKET,
            ptr::null_mut(),
            ptr::null(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!(st, STATUS_PENDING);
    assert!(!r.done());
    assert_eq!(sim.run_pending(), 1);
    assert!(r.done());
    let s = r.result().1 as PWSK_SOCKET;
    drop(r);
    sim.set_completion_mode(CompletionMode::Inline);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn seeded_runs_are_reproducible_and_pass() {
    for seed in 0..4 {
        let sim = Sim::with_seed(seed);
        echo_once(&sim, 9200 + seed as u16);
    }
}

#[test]
fn null_indications_ask_the_client_to_close() {
    let sim = benign();
    let x = Ctx::new();
    let (c, s, _p, _l) = connected_with_events(&sim, 9300, &x, WSK_EVENT_RECEIVE);
    sim.indicate_close_required();
    assert_eq!(x.log(), vec!["receive(null)"]);
    assert!(sim.events()[0].null_indication);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn events_can_be_delivered_on_the_worker_thread() {
    let sim = benign();
    sim.set_event_delivery(wsk_sim::EventDelivery::Worker);
    let x = Ctx::new();
    let (c, s, p, _l) = connected_with_events(&sim, 9400, &x, ALL_CONN_EVENTS);
    p.send(b"async");
    p.close();
    sim.settle();
    assert_eq!(x.log(), vec!["receive 5 flags=0x0", "disconnect flags=0x0"]);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
#[should_panic(expected = "WskGetAddressInfo called at IRQL DISPATCH_LEVEL")]
fn passive_only_routines_at_dispatch_are_reported() {
    let sim = benign();
    let c = Client::new();
    let (_n, mut node) = unicode("localhost");
    let mut result: PADDRINFOEXW = ptr::null_mut();
    let mut r = Req::new();
    let irp = r.arm();
    sim.at_irql(Irql::Dispatch, || unsafe {
        (c.dispatch().WskGetAddressInfo.unwrap())(
            c.npi.Client,
            &mut node,
            ptr::null_mut(),
            NS_ALL,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut result,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        );
    });
}
