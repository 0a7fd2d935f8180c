//! Microsoft's contract where the simulator once had it wrong, the races
//! around accepting a connection, and the verifier rules for what a client
//! can get wrong under the adversary.
//!
//! Each test names the page it follows.
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
use std::sync::atomic::{AtomicI32, Ordering};

use common::recorder::*;
use common::*;
use wsk_sim::{Adversary, Behaviour, CompletionMode, EventDelivery, EventKind, Sim};
use wsk_sys::*;

// ---------------------------------------------------------------------------
// FIN and RST racing the accept event
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event
// https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback

/// A listener whose accept event is delivered only when the test runs the
/// simulator's pending jobs, with receive and disconnect events enabled on
/// the listener (inherited by sockets its accept event takes).
fn deferred_listener(sim: &Sim, c: &Client, port: u16, rec: &Recorder) -> PWSK_SOCKET {
    sim.set_event_delivery(EventDelivery::Worker);
    sim.set_completion_mode(CompletionMode::Manual);
    let l = rec.listener(c, &format!("0.0.0.0:{port}"));
    assert_eq!(
        enable_events(
            l,
            WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT
        ),
        STATUS_SUCCESS
    );
    l
}

#[test]
fn a_fin_before_the_accept_event_reaches_on_disconnect() {
    let sim = benign();
    let c = Client::new();
    let rec = Recorder::new();
    let l = deferred_listener(&sim, &c, 6100, &rec);
    let p = sim.peer_connect("10.0.0.1:6100").unwrap();
    p.send(b"early");
    p.close();
    assert!(rec.log().is_empty(), "nothing delivered yet");
    let _ = sim.run_pending();
    assert_eq!(
        rec.log(),
        vec!["accept", "receive 5", "disconnect graceful"],
        "the FIN that arrived before the accept event must still be indicated"
    );
    assert_eq!(rec.data(), b"early");
    for a in rec.accepted() {
        assert_eq!(close(a), STATUS_SUCCESS);
    }
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

/// The peer end of the connection being accepted, for hooks that run inside
/// the accept callback.
static PEER: Mutex<Option<wsk_sim::PeerConn>> = Mutex::new(None);

#[test]
fn a_fin_while_the_accept_event_runs_reaches_on_disconnect() {
    let sim = benign();
    let c = Client::new();
    let rec = Recorder::new();
    let l = deferred_listener(&sim, &c, 6101, &rec);
    *PEER.lock().unwrap() = Some(sim.peer_connect("10.0.0.1:6101").unwrap());
    rec.on_accept(Box::new(|_| {
        let p = PEER.lock().unwrap().take().unwrap();
        p.send(b"late");
        p.close();
    }));
    let _ = sim.run_pending();
    assert_eq!(
        rec.log(),
        vec!["accept", "receive 4", "disconnect graceful"]
    );
    for a in rec.accepted() {
        assert_eq!(close(a), STATUS_SUCCESS);
    }
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn an_rst_while_the_accept_event_runs_reaches_on_disconnect() {
    let sim = benign();
    let c = Client::new();
    let rec = Recorder::new();
    let l = deferred_listener(&sim, &c, 6102, &rec);
    *PEER.lock().unwrap() = Some(sim.peer_connect("10.0.0.1:6102").unwrap());
    rec.on_accept(Box::new(|_| PEER.lock().unwrap().take().unwrap().abort()));
    let _ = sim.run_pending();
    assert_eq!(rec.log(), vec!["accept", "disconnect abortive"]);
    let a = rec.accepted()[0];
    sim.set_completion_mode(CompletionMode::Inline);
    assert_eq!(recv(a, 8).0, STATUS_CONNECTION_RESET);
    assert_eq!(close(a), STATUS_SUCCESS);
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn an_rst_before_the_accept_event_withdraws_the_connection() {
    let sim = benign();
    let c = Client::new();
    let rec = Recorder::new();
    let l = deferred_listener(&sim, &c, 6103, &rec);
    let p = sim.peer_connect("10.0.0.1:6103").unwrap();
    p.abort();
    let _ = sim.run_pending();
    assert!(rec.log().is_empty(), "a reset connection is never offered");
    // The listener still accepts the next one.
    let _p2 = sim.peer_connect("10.0.0.1:6103").unwrap();
    let _ = sim.run_pending();
    assert_eq!(rec.log(), vec!["accept"]);
    for a in rec.accepted() {
        assert_eq!(close(a), STATUS_SUCCESS);
    }
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

// ---------------------------------------------------------------------------
// Helpers

/// A machine with one contract behaviour of the adversary on.
fn contract(b: Behaviour) -> Sim {
    let mut cfg = wsk_sim::Config::default();
    cfg.adversary = Some(Adversary::none(1).with(b));
    Sim::with_config(cfg)
}

/// `WskAccept` with a fresh request; the accepted socket.
fn accept(l: PWSK_SOCKET, ctx: PVOID, dispatch: PCVOID) -> (NTSTATUS, PWSK_SOCKET) {
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe {
        (listen(l).WskAccept.unwrap())(
            l,
            0,
            ctx,
            dispatch.cast(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    let (st, info) = r.wait(st);
    (st, info as PWSK_SOCKET)
}

/// `WSK_SET_STATIC_EVENT_CALLBACKS`.
fn set_static_events(c: &Client, mask: u32) -> NTSTATUS {
    let ctl = WSK_EVENT_CALLBACK_CONTROL {
        NpiId: &NPI_WSK_INTERFACE_ID,
        EventMask: mask,
    };
    unsafe {
        (c.dispatch().WskControlClient.unwrap())(
            c.npi.Client,
            WSK_SET_STATIC_EVENT_CALLBACKS,
            core::mem::size_of_val(&ctl),
            (&raw const ctl).cast_mut().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    }
}

/// A bound datagram socket with the recorder's dispatch.
fn datagram_socket(c: &Client, rec: &Recorder, addr: &str) -> PWSK_SOCKET {
    let d = c.socket(WSK_FLAG_DATAGRAM_SOCKET, rec.ptr(), datagram_dispatch());
    assert_eq!(bind(d, dgram(d).WskBind, addr), STATUS_SUCCESS);
    d
}

fn receive_from(d: PWSK_SOCKET, n: usize) -> (NTSTATUS, Vec<u8>) {
    let mut r = Req::new();
    let mut b = Buf::zeroed(n);
    let irp = r.arm();
    let st = unsafe {
        (dgram(d).WskReceiveFrom.unwrap())(
            d,
            b.ptr(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    let (st, info) = r.wait(st);
    (st, b.data[..info.min(n)].to_vec())
}

// ---------------------------------------------------------------------------
// Sockets from WskAccept start with their events disabled
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept
// https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback

#[test]
fn wsk_accept_sockets_do_not_inherit_the_listeners_events() {
    let sim = contract(Behaviour::AcceptDoesNotInherit);
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.listener(&c, "0.0.0.0:6200");
    // Connection events on the listener; no accept event: connections wait
    // in the backlog for WskAccept.
    assert_eq!(
        enable_events(l, WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT),
        STATUS_SUCCESS
    );
    let p = sim.peer_connect("10.0.0.1:6200").unwrap();
    let (st, a) = accept(l, rec.ptr(), connection_dispatch());
    assert_eq!(st, STATUS_SUCCESS);
    p.send(b"quiet");
    assert!(
        rec.log().is_empty(),
        "events start disabled on a WskAccept socket"
    );
    assert_eq!(recv(a, 5), (STATUS_SUCCESS, b"quiet".to_vec()));
    // The client enables them on the accepted socket itself.
    assert_eq!(
        enable_events(a, WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT),
        STATUS_SUCCESS
    );
    p.send(b"loud");
    p.close();
    assert_eq!(rec.log(), vec!["receive 4", "disconnect graceful"]);

    // A socket the accept event takes inherits them.
    assert_eq!(enable_events(l, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    let p2 = sim.peer_connect("10.0.0.1:6200").unwrap();
    p2.send(b"hi");
    assert_eq!(rec.log()[2..], ["accept", "receive 2"]);
    for s in rec.accepted().into_iter().chain([a, l]) {
        assert_eq!(close(s), STATUS_SUCCESS);
    }
    c.finish();
}

#[test]
fn a_pending_wsk_accept_also_starts_with_events_disabled() {
    let sim = contract(Behaviour::AcceptDoesNotInherit);
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.listener(&c, "0.0.0.0:6201");
    assert_eq!(enable_events(l, WSK_EVENT_RECEIVE), STATUS_SUCCESS);
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe {
        (listen(l).WskAccept.unwrap())(
            l,
            0,
            rec.ptr(),
            &CONNECTION_DISPATCH,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!(st, STATUS_PENDING);
    let p = sim.peer_connect("10.0.0.1:6201").unwrap();
    let (st, info) = r.wait(st);
    assert_eq!(st, STATUS_SUCCESS);
    p.send(b"x");
    assert!(rec.log().is_empty());
    let a = info as PWSK_SOCKET;
    assert_eq!(close(a), STATUS_SUCCESS);
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

// ---------------------------------------------------------------------------
// STATUS_DATA_NOT_ACCEPTED from WskReceiveFromEvent
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event

#[test]
fn a_refused_receive_from_disables_the_event_until_enabled_again() {
    let sim = contract(Behaviour::ReceiveFromDisabledOnRefusal);
    let peer = sim.peer_udp("10.0.0.2:0");
    let c = Client::new();
    let rec = Recorder::new();
    let d = datagram_socket(&c, &rec, "0.0.0.0:6300");
    assert_eq!(enable_events(d, WSK_EVENT_RECEIVE_FROM), STATUS_SUCCESS);
    rec.answer(Answer::Refuse);
    peer.send_to("10.0.0.1:6300", b"one");
    rec.answer(Answer::Take);
    peer.send_to("10.0.0.1:6300", b"two");
    peer.send_to("10.0.0.1:6300", b"three");
    sim.settle();
    assert_eq!(rec.log(), vec!["receive_from 1 refused"], "disabled");
    // The refused datagram stays buffered for WskReceiveFrom …
    assert_eq!(receive_from(d, 16), (STATUS_SUCCESS, b"one".to_vec()));
    sim.settle();
    assert_eq!(rec.log().len(), 1, "a WskReceiveFrom does not re-enable it");
    // … and enabling the event again resumes indications with the rest.
    assert_eq!(enable_events(d, WSK_EVENT_RECEIVE_FROM), STATUS_SUCCESS);
    sim.settle();
    assert_eq!(rec.log()[1..], ["receive_from 2"]);
    assert_eq!(rec.dgrams(), vec![b"two".to_vec(), b"three".to_vec()]);
    assert_eq!(close(d), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn a_refused_static_receive_from_stays_enabled() {
    let sim = contract(Behaviour::ReceiveFromDisabledOnRefusal);
    let peer = sim.peer_udp("10.0.0.2:0");
    let c = Client::new();
    assert_eq!(
        set_static_events(&c, WSK_EVENT_RECEIVE_FROM),
        STATUS_SUCCESS
    );
    let rec = Recorder::new();
    let d = datagram_socket(&c, &rec, "0.0.0.0:6301");
    rec.answer(Answer::Refuse);
    peer.send_to("10.0.0.1:6301", b"one");
    rec.answer(Answer::Take);
    sim.settle();
    assert_eq!(rec.log(), vec!["receive_from 1 refused"]);
    // Called again when the next datagram arrives, with the buffered one.
    peer.send_to("10.0.0.1:6301", b"two");
    sim.settle();
    assert_eq!(rec.log()[1..], ["receive_from 2"]);
    assert_eq!(rec.dgrams(), vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(close(d), STATUS_SUCCESS);
    c.finish();
}

// ---------------------------------------------------------------------------
// A socket the provider declares no longer functional
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept

#[test]
fn a_null_inspect_id_tells_a_conditional_listener_to_close() {
    let sim = contract(Behaviour::SocketFailure);
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.conditional_listener(&c, "0.0.0.0:6400");
    sim.indicate_close_required();
    assert_eq!(rec.log(), vec!["inspect(null)"]);
    let e = sim.events();
    assert!(e[0].kind == EventKind::Inspect && e[0].null_indication);
    // No longer functional: connections are refused, calls fail.
    assert_eq!(
        sim.peer_connect("10.0.0.1:6400").err(),
        Some(STATUS_CONNECTION_REFUSED)
    );
    assert_eq!(
        accept(l, ptr::null_mut(), ptr::null()).0,
        STATUS_FILE_FORCED_CLOSED
    );
    assert_eq!(local_addr_status(l), STATUS_FILE_FORCED_CLOSED);
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

fn local_addr_status(s: PWSK_SOCKET) -> NTSTATUS {
    let mut r = Req::new();
    let mut a = Sa::empty();
    let irp = r.arm();
    let st = unsafe { (listen(s).WskGetLocalAddress.unwrap())(s, a.ptr(), irp) };
    r.wait(st).0
}

#[test]
fn a_null_accept_socket_tells_a_listener_to_close() {
    let sim = contract(Behaviour::SocketFailure);
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.listener(&c, "0.0.0.0:6401");
    assert_eq!(enable_events(l, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    sim.indicate_close_required();
    assert_eq!(rec.log(), vec!["accept(null)"]);
    assert_eq!(
        enable_events(l, WSK_EVENT_ACCEPT),
        STATUS_FILE_FORCED_CLOSED
    );
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn listeners_fail_under_seeded_connections() {
    let mut cfg = wsk_sim::Config::default();
    cfg.adversary = Some(
        Adversary::none(3)
            .with(Behaviour::SocketFailure)
            .listener_failures_per_mille(1000),
    );
    let sim = Sim::with_config(cfg);
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.conditional_listener(&c, "0.0.0.0:6402");
    assert_eq!(
        sim.peer_connect("10.0.0.1:6402").err(),
        Some(STATUS_CONNECTION_REFUSED)
    );
    assert_eq!(rec.log(), vec!["inspect(null)"]);
    assert_eq!(close(l), STATUS_SUCCESS);
    // A listener without an inspect or accept event cannot be told, so it
    // is never failed.
    let quiet = c.socket(WSK_FLAG_LISTEN_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(
        bind(quiet, listen(quiet).WskBind, "0.0.0.0:6403"),
        STATUS_SUCCESS
    );
    let _p = sim.peer_connect("10.0.0.1:6403").unwrap();
    let (st, a) = accept(quiet, ptr::null_mut(), ptr::null());
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(close(a), STATUS_SUCCESS);
    assert_eq!(close(quiet), STATUS_SUCCESS);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: CLOSE_REQUIRED")]
fn a_listener_told_to_close_must_be_closed() {
    let sim = contract(Behaviour::SocketFailure);
    let c = Client::new();
    let rec = Recorder::new();
    let _l = rec.conditional_listener(&c, "0.0.0.0:6404");
    sim.indicate_close_required();
    drop(sim);
}

// ---------------------------------------------------------------------------
// Disabling an event while a call to it is in progress
// https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback

static DISABLE_STATUS: AtomicI32 = AtomicI32::new(0);
static DISABLE_RETURNED: AtomicI32 = AtomicI32::new(0);

unsafe extern "system" fn note_and_free(_d: PDEVICE_OBJECT, irp: PIRP, _c: PVOID) -> NTSTATUS {
    DISABLE_STATUS.store((*irp).IoStatus.Status, Ordering::SeqCst);
    IoFreeIrp(irp);
    STATUS_MORE_PROCESSING_REQUIRED
}

fn disable(s: PWSK_SOCKET, event: u32, irp: PIRP) -> NTSTATUS {
    event_callback(s, event | WSK_EVENT_DISABLE, irp)
}

/// Disables the receive event from inside its own callback, with an IRP
/// or without; returns what the disable returned, the status its IRP
/// completed with (-1: none) and the callbacks made.
fn disable_receive_from_inside(with_irp: bool) -> (NTSTATUS, NTSTATUS, Vec<String>) {
    let sim = contract(Behaviour::DisableWaitsForCallbacks);
    let rec = Recorder::new();
    let (c, s, p, _l) = recorded_connection(&sim, 6500, &rec);
    let sock = s as usize;
    DISABLE_STATUS.store(-1, Ordering::SeqCst);
    rec.on_receive(Box::new(move || {
        let s = sock as PWSK_SOCKET;
        let irp = if with_irp {
            let irp = unsafe { IoAllocateIrp(1, FALSE) };
            unsafe {
                IoSetCompletionRoutine(irp, Some(note_and_free), ptr::null_mut(), TRUE, TRUE, TRUE);
            }
            irp
        } else {
            ptr::null_mut()
        };
        DISABLE_RETURNED.store(disable(s, WSK_EVENT_RECEIVE, irp), Ordering::SeqCst);
        assert_eq!(
            DISABLE_STATUS.load(Ordering::SeqCst),
            -1,
            "not completed yet"
        );
    }));
    p.send(b"first");
    sim.settle();
    // Disabled once the callback returned.
    p.send(b"second");
    sim.settle();
    let log = rec.log();
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
    let result = (
        DISABLE_RETURNED.load(Ordering::SeqCst),
        DISABLE_STATUS.load(Ordering::SeqCst),
        log,
    );
    drop(sim);
    result
}

#[test]
fn disabling_an_event_from_inside_it_with_an_irp_pends_until_it_returns() {
    let (st, completed, log) = disable_receive_from_inside(true);
    assert_eq!(st, STATUS_PENDING);
    assert_eq!(
        completed, STATUS_SUCCESS,
        "completed once the callback returned"
    );
    assert_eq!(log, vec!["receive 5"]);
}

#[test]
fn disabling_an_event_from_inside_it_without_an_irp_returns_event_pending() {
    let (st, completed, log) = disable_receive_from_inside(false);
    assert_eq!(st, 0x4000_0013, "STATUS_EVENT_PENDING");
    assert_eq!(completed, -1);
    assert_eq!(log, vec!["receive 5"]);
}

// ---------------------------------------------------------------------------
// Events that cannot be disabled
// https://learn.microsoft.com/windows-hardware/drivers/network/wsk-set-static-event-callbacks
// https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback

#[test]
#[should_panic(
    expected = "statically enabled (WSK_SET_STATIC_EVENT_CALLBACKS) events cannot be disabled"
)]
fn static_events_cannot_be_disabled() {
    let sim = contract(Behaviour::FixedEvents);
    let c = Client::new();
    assert_eq!(
        set_static_events(&c, WSK_EVENT_RECEIVE_FROM),
        STATUS_SUCCESS
    );
    let rec = Recorder::new();
    let d = datagram_socket(&c, &rec, "0.0.0.0:6600");
    let _ = disable(d, WSK_EVENT_RECEIVE_FROM, ptr::null_mut());
    drop(sim);
}

#[test]
#[should_panic(expected = "connection events enabled on a listening socket cannot be disabled")]
fn a_listeners_connection_events_cannot_be_disabled() {
    let sim = contract(Behaviour::FixedEvents);
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.listener(&c, "0.0.0.0:6601");
    assert_eq!(
        enable_events(l, WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE),
        STATUS_SUCCESS
    );
    // The accept event itself can be disabled …
    assert_eq!(
        disable(l, WSK_EVENT_ACCEPT, ptr::null_mut()),
        STATUS_SUCCESS
    );
    // … the inherited connection events cannot.
    let _ = disable(l, WSK_EVENT_RECEIVE, ptr::null_mut());
    drop(sim);
}

// ---------------------------------------------------------------------------
// Verifier rules for indications and accept events

/// A connected socket with the recorder and receive events, and its peer.
fn recorded_connection(
    sim: &Sim,
    port: u16,
    rec: &Recorder,
) -> (
    Client,
    PWSK_SOCKET,
    wsk_sim::PeerConn,
    wsk_sim::PeerListener,
) {
    let peer = sim.peer_listen(&format!("10.0.0.2:{port}"));
    let c = Client::new();
    let s = connected(
        &c,
        &format!("10.0.0.2:{port}"),
        rec.ptr(),
        connection_dispatch(),
    );
    assert_eq!(enable_events(s, WSK_EVENT_RECEIVE), STATUS_SUCCESS);
    let p = peer.accept();
    (c, s, p, peer)
}

fn release(s: PWSK_SOCKET, ind: usize) -> NTSTATUS {
    unsafe { (conn(s).WskRelease.unwrap())(s, ind as PWSK_DATA_INDICATION) }
}

#[test]
#[should_panic(expected = "rule: RELEASE")]
fn releasing_an_indication_that_was_not_retained_is_reported() {
    let sim = benign();
    let rec = Recorder::new();
    let (c, s, p, _l) = recorded_connection(&sim, 6700, &rec);
    p.send(b"taken");
    // Answered STATUS_SUCCESS: the provider already took it back.
    let _ = release(s, rec.last_indication());
    close(s);
    c.finish();
}

#[test]
#[should_panic(expected = "rule: RETAINED_AT_CLOSE")]
fn closing_with_retained_indications_is_reported() {
    let sim = benign();
    let rec = Recorder::new();
    rec.answer(Answer::Retain);
    let (c, s, p, _l) = recorded_connection(&sim, 6701, &rec);
    p.send(b"kept");
    close(s);
    c.finish();
}

#[test]
fn releasing_after_close_is_reported_after_the_close_itself() {
    let sim = benign();
    let rec = Recorder::new();
    rec.answer(Answer::Retain);
    let (c, s, p, _l) = recorded_connection(&sim, 6702, &rec);
    p.send(b"kept");
    let _ = close(s);
    let _ = release(s, rec.take_retained()[0]);
    let v = sim.take_violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v[0].contains("rule: RETAINED_AT_CLOSE"), "{v:?}");
    assert!(v[1].contains("after WskCloseSocket") && v[1].contains("rule: SOCKET_CLOSED"));
    let leaks = sim.leaks();
    assert!(
        !leaks.iter().any(|l| l.contains("indication")),
        "the late release still freed it: {leaks:?}"
    );
    c.finish();
}

static IN_ACCEPT: Mutex<Vec<NTSTATUS>> = Mutex::new(Vec::new());

#[test]
fn calls_on_a_socket_inside_its_accept_event_are_not_violations() {
    // No page forbids them (the guide's sample makes some); enabling events
    // fails because the provider has no dispatch table for the socket yet.
    let sim = benign();
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.listener(&c, "0.0.0.0:6703");
    assert_eq!(enable_events(l, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    IN_ACCEPT.lock().unwrap().clear();
    rec.on_accept(Box::new(|a| {
        let events = enable_events(a, WSK_EVENT_RECEIVE);
        let mut r = Req::new();
        let mut sa = Sa::empty();
        let irp = r.arm();
        let st = unsafe { (conn(a).WskGetRemoteAddress.unwrap())(a, sa.ptr(), irp) };
        let remote = r.wait(st).0;
        IN_ACCEPT.lock().unwrap().extend([events, remote]);
    }));
    let _p = sim.peer_connect("10.0.0.1:6703").unwrap();
    assert_eq!(
        *IN_ACCEPT.lock().unwrap(),
        vec![STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS]
    );
    assert!(sim.take_violations().is_empty());
    for s in rec.accepted().into_iter().chain([l]) {
        assert_eq!(close(s), STATUS_SUCCESS);
    }
    c.finish();
}

// ---------------------------------------------------------------------------
// WskReceive: STATUS_DATA_NOT_ACCEPTED and WSK_FLAG_DRAIN
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive

/// Starts a `WskReceive` of `n` bytes (a NULL MDL when `n` is 0) with
/// `flags` on `r` and `b` (which must not move until it completes).
fn receive_with(s: PWSK_SOCKET, r: &mut Req, b: &mut Buf, n: usize, flags: u32) -> NTSTATUS {
    let irp = r.arm();
    b.wsk.Length = n;
    if n == 0 {
        b.wsk.Mdl = ptr::null_mut();
    }
    unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), flags, irp) }
}

#[test]
fn a_refused_receive_stops_indications_until_a_zero_length_receive() {
    let sim = benign();
    let rec = Recorder::new();
    let (c, s, p, _l) = recorded_connection(&sim, 6800, &rec);
    rec.answer(Answer::Refuse);
    p.send(b"one");
    rec.answer(Answer::Take);
    p.send(b"two");
    assert_eq!(
        rec.log(),
        vec!["receive 3 refused"],
        "no call until WskReceive"
    );
    // A zero-length WskReceive takes nothing and resumes the indications,
    // with the buffered data first.
    let (mut r, mut b) = (Req::new(), Buf::zeroed(1));
    let st = receive_with(s, &mut r, &mut b, 0, 0);
    assert_eq!(r.wait(st), (STATUS_SUCCESS, 0));
    assert_eq!(rec.log()[1..], ["receive 6"]);
    assert_eq!(rec.data(), b"onetwo");
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn a_drain_receive_discards_data_until_the_peer_closes() {
    let sim = benign();
    let peer = sim.peer_listen("10.0.0.2:6801");
    let c = Client::new();
    let s = connected(&c, "10.0.0.2:6801", ptr::null_mut(), ptr::null());
    let p = peer.accept();
    p.send(b"old");
    let (mut r, mut b) = (Req::new(), Buf::zeroed(1));
    let st = receive_with(s, &mut r, &mut b, 0, WSK_FLAG_DRAIN);
    assert_eq!(st, STATUS_PENDING);
    p.send(b"discarded");
    assert!(!r.done());
    p.close();
    assert_eq!(r.wait(st), (STATUS_SUCCESS, 0));
    // Nothing is left: the next receive sees the end of the stream.
    assert_eq!(recv(s, 8), (STATUS_SUCCESS, Vec::new()));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
#[should_panic(expected = "WSK_FLAG_DRAIN needs a zero-length buffer")]
fn a_drain_receive_with_a_buffer_is_reported() {
    let sim = benign();
    let peer = sim.peer_listen("10.0.0.2:6802");
    let c = Client::new();
    let s = connected(&c, "10.0.0.2:6802", ptr::null_mut(), ptr::null());
    let _p = peer.accept();
    let (mut r, mut b) = (Req::new(), Buf::zeroed(4));
    let st = receive_with(s, &mut r, &mut b, 4, WSK_FLAG_DRAIN);
    let _ = r.wait(st);
    drop(sim);
}

// ---------------------------------------------------------------------------
// Statuses as the pages name them
// https://learn.microsoft.com/windows-hardware/drivers/network/wsk-transport-list-query
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_remote_address
// https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-query-inspect-id
// https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_connect_ex

fn query_inspect_id(s: PWSK_SOCKET, irp: PIRP) -> NTSTATUS {
    let mut id = WSK_INSPECT_ID::default();
    let mut n: SIZE_T = 0;
    unsafe {
        (basic(s).WskControlSocket.unwrap())(
            s,
            WskIoctl,
            SIO_WSK_QUERY_INSPECT_ID,
            0,
            0,
            ptr::null_mut(),
            core::mem::size_of::<WSK_INSPECT_ID>(),
            (&raw mut id).cast(),
            &mut n,
            irp,
        )
    }
}

#[test]
fn statuses_are_the_documented_ones() {
    let sim = contract(Behaviour::DocumentedStatuses);
    let peer = sim.peer_listen("10.0.0.2:6900");
    let c = Client::new();
    let mut needed: SIZE_T = 0;
    let st = unsafe {
        (c.dispatch().WskControlClient.unwrap())(
            c.npi.Client,
            WSK_TRANSPORT_LIST_QUERY,
            0,
            ptr::null_mut(),
            0,
            ptr::null_mut(),
            &mut needed,
            ptr::null_mut(),
        )
    };
    assert_eq!(st, STATUS_BUFFER_OVERFLOW, "the size probe");
    assert!(needed > 0);

    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(bind(s, conn(s).WskBind, "0.0.0.0:0"), STATUS_SUCCESS);
    let mut r = Req::new();
    let mut sa = Sa::empty();
    let irp = r.arm();
    let st = unsafe { (conn(s).WskGetRemoteAddress.unwrap())(s, sa.ptr(), irp) };
    assert_eq!(r.wait(st).0, STATUS_INVALID_DEVICE_STATE, "not connected");
    // The status the page names, and a client that asked anyway is told.
    let broke = sim.take_violations();
    assert!(
        broke.len() == 1 && broke[0].contains("(rule: SOCKET_STATE)"),
        "{broke:?}"
    );
    assert_eq!(
        query_inspect_id(s, ptr::null_mut()),
        STATUS_INVALID_DEVICE_REQUEST,
        "not accepted through conditional accept"
    );
    let mut to = Sa::new("10.0.0.2:6900");
    let mut big = Buf::zeroed(65_536);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskConnectEx.unwrap())(s, to.ptr(), big.ptr(), 0, irp) };
    assert_eq!(
        r.wait(st).0,
        STATUS_BUFFER_OVERFLOW,
        "ConnectEx data > 65,535"
    );
    drop((r, big, peer));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
#[should_panic(expected = "SIO_WSK_QUERY_INSPECT_ID must be called with Irp == NULL")]
fn querying_the_inspect_id_with_an_irp_is_reported() {
    let sim = contract(Behaviour::DocumentedStatuses);
    let c = Client::new();
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    let mut r = Req::new();
    let irp = r.arm();
    let st = query_inspect_id(s, irp);
    let _ = r.wait(st);
    drop(sim);
}
