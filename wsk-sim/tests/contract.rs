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
    assert_eq!(st, STATUS_EVENT_PENDING);
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
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:6801");
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
    let (_c, s, _p) = client_connected_to_peer(&sim, "10.0.0.2:6802");
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

// ---------------------------------------------------------------------------
// Adversarial behaviours of docs/conformance.md (A-4, A-6, A-7, A-9, A-10,
// ) and the sim-side mismatches M-23, M-24

/// Every behaviour off but `b`, with rare events always happening.
fn always(b: Behaviour) -> Sim {
    let mut cfg = wsk_sim::Config::default();
    cfg.adversary = Some(Adversary::none(1).with(b).rare_events_per_mille(1000));
    Sim::with_config(cfg)
}

/// `WskControlSocket` with an IRP and a `ULONG` input or output.
fn control_ulong(
    s: PWSK_SOCKET,
    ty: WSK_CONTROL_SOCKET_TYPE,
    code: u32,
    level: u32,
    value: u32,
) -> (NTSTATUS, u32) {
    let mut v = value;
    let mut r = Req::new();
    let irp = r.arm();
    let (input, output) = if ty == WskSetOption {
        ((4, (&raw mut v).cast()), (0, ptr::null_mut()))
    } else {
        ((0, ptr::null_mut()), (4, (&raw mut v).cast()))
    };
    let st = unsafe {
        (basic(s).WskControlSocket.unwrap())(
            s,
            ty,
            code,
            level,
            input.0,
            input.1,
            output.0,
            output.1,
            ptr::null_mut(),
            irp,
        )
    };
    (r.wait(st).0, v)
}

/// A-10, STR-2 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen>):
/// `WskListen` waits for the first connection.
#[test]
fn a_listen_pends_until_the_first_connection() {
    let sim = contract(Behaviour::ListenPends);
    let c = Client::new();
    let s = c.socket(WSK_FLAG_STREAM_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(bind(s, stream(s).WskBind, "10.0.0.1:6400"), STATUS_SUCCESS);
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe { (stream(s).WskListen.unwrap())(s, irp) };
    assert_eq!(st, STATUS_PENDING);
    assert!(!r.done(), "pending until a connection arrives");
    let _p = sim.peer_connect("10.0.0.1:6400").expect("connected");
    assert_eq!(r.wait(st), (STATUS_SUCCESS, 0));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

/// A-4, EV-GEN-7 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>):
/// the receive event can be called while a `WskReceive` is pending.
#[test]
fn a_receive_event_can_race_a_pending_receive() {
    let sim = always(Behaviour::CallbacksRaceRequests);
    let rec = Recorder::new();
    let (c, s, p, _l) = recorded_connection(&sim, 6401, &rec);
    let mut r = Req::new();
    let mut b = Buf::zeroed(16);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    p.send(b"raced");
    sim.settle();
    assert_eq!(rec.log(), vec!["receive 5"], "the callback took the data");
    assert!(!r.done(), "the request waits for more");
    p.send(b"next");
    sim.settle();
    assert!(r.done() || rec.log().len() > 1);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

/// A-7, DSC-4 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect>):
/// a graceful disconnect that never completes is completed by an abortive
/// one.
#[test]
fn a_stuck_graceful_disconnect_completes_when_aborted() {
    let sim = always(Behaviour::GracefulDisconnectStuck);
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:6402");
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe { (conn(s).WskDisconnect.unwrap())(s, ptr::null_mut(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    sim.settle();
    assert!(!r.done() && !p.is_closed_by_driver(), "stuck: no FIN sent");
    assert_eq!(disconnect(s, WSK_FLAG_ABORTIVE), STATUS_SUCCESS);
    assert_eq!(r.wait(st).0, STATUS_CONNECTION_ABORTED);
    assert!(p.was_reset());
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

/// A-9, INS-3, ABT-1 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_abort_event>):
/// a request accepted by the inspect callback can still be dropped before
/// it is established; the abort callback follows.
#[test]
fn an_accepted_inspection_can_still_be_aborted() {
    let sim = always(Behaviour::AbortAfterInspect);
    let c = Client::new();
    let rec = Recorder::new();
    let l = rec.conditional_listener(&c, "0.0.0.0:6403");
    assert_eq!(enable_events(l, WSK_EVENT_ACCEPT), STATUS_SUCCESS);
    assert!(sim.peer_connect("10.0.0.1:6403").is_err(), "dropped");
    sim.settle();
    assert_eq!(rec.log(), vec!["inspect", "abort"]);
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

/// A-21, SBL-EV-1 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_backlog_event>):
/// the ideal send backlog changes as sends complete, and the query agrees.
#[test]
fn the_send_backlog_changes_as_sends_complete() {
    let sim = contract(Behaviour::SendBacklogChanges);
    let peer = sim.peer_listen("10.0.0.2:6404");
    let c = Client::new();
    let rec = Recorder::new();
    let s = connected(&c, "10.0.0.2:6404", rec.ptr(), connection_dispatch());
    assert_eq!(enable_events(s, WSK_EVENT_SEND_BACKLOG), STATUS_SUCCESS);
    let _p = peer.accept();
    for _ in 0..40 {
        assert_eq!(send(s, b"x").0, STATUS_SUCCESS);
    }
    sim.settle();
    let changes: Vec<String> = rec
        .log()
        .into_iter()
        .filter(|l| l.starts_with("backlog"))
        .collect();
    assert!(changes.len() > 2, "{changes:?}");
    let last: usize = changes.last().unwrap()[8..].parse().unwrap();
    let mut out = 0usize;
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
            8,
            (&raw mut out).cast(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);
    assert_eq!(out, last, "the query reports the last change");
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

/// NAME-3 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_get_address_info>):
/// a name that does not resolve is `STATUS_NO_MATCH`.
#[test]
fn an_unknown_name_is_no_match() {
    let _sim = contract(Behaviour::DocumentedStatuses);
    let c = Client::new();
    let d = c.dispatch();
    let mut name: Vec<u16> = "nowhere.test".encode_utf16().collect();
    let len = u16::try_from(name.len() * 2).unwrap();
    let mut node = UNICODE_STRING {
        Length: len,
        MaximumLength: len,
        Buffer: name.as_mut_ptr(),
    };
    let mut result: PADDRINFOEXW = ptr::null_mut();
    let mut r = Req::new();
    let irp = r.arm();
    // SAFETY: valid strings, result and IRP, alive until completion.
    let st = unsafe {
        (d.WskGetAddressInfo.unwrap())(
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
        )
    };
    assert_eq!(r.wait(st).0, STATUS_NO_MATCH);
    assert!(result.is_null());
    c.finish();
}

/// A-22, SND-4 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>):
/// no buffering — a send completes once its bytes fit in the receiver's
/// window, on the thread that reads them; a reset fails it.
#[test]
fn a_send_completes_only_when_the_receiver_reads() {
    let sim = contract(Behaviour::LateSends);
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:6409");
    // More than the largest window (64 KiB).
    let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let mut r = Req::new();
    let mut b = Buf::new(&data);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    sim.settle();
    assert!(!r.done(), "pending while the peer does not read");
    assert!(p.recv_exact(data.len()) == data);
    assert_eq!(r.wait(st), (STATUS_SUCCESS, data.len()));

    // Sends queue behind a pending one; a reset fails them.
    let mut r1 = Req::new();
    let mut b1 = Buf::new(&data);
    let irp1 = r1.arm();
    let st1 = unsafe { (conn(s).WskSend.unwrap())(s, b1.ptr(), 0, irp1) };
    let mut r2 = Req::new();
    let mut b2 = Buf::new(b"x");
    let irp2 = r2.arm();
    let st2 = unsafe { (conn(s).WskSend.unwrap())(s, b2.ptr(), 0, irp2) };
    assert_eq!((st1, st2), (STATUS_PENDING, STATUS_PENDING));
    p.abort();
    assert_eq!(r1.wait(st1).0, STATUS_CONNECTION_RESET);
    assert_eq!(r2.wait(st2).0, STATUS_CONNECTION_RESET);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

/// a close cancels the sends still waiting for the receiver.
#[test]
fn closing_cancels_sends_waiting_for_the_receiver() {
    let sim = contract(Behaviour::LateSends);
    let (c, s, _p) = client_connected_to_peer(&sim, "10.0.0.2:6410");
    let data = vec![7u8; 100_000];
    let mut r = Req::new();
    let mut b = Buf::new(&data);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    assert_eq!(close(s), STATUS_SUCCESS);
    assert_eq!(r.wait(st).0, STATUS_CANCELLED);
    c.finish();
}

/// A-24, OPT-2, OPT-3 (<https://learn.microsoft.com/windows-hardware/drivers/network/so-keepalive>,
/// <https://learn.microsoft.com/windows-hardware/drivers/network/so-rcvbuf>): accepted sockets
/// inherit `SO_KEEPALIVE` and `SO_RCVBUF` from their listener.
#[test]
fn accepted_sockets_inherit_keepalive_and_the_receive_buffer() {
    let sim = benign();
    let c = Client::new();
    let l = c.socket(WSK_FLAG_LISTEN_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(
        control_ulong(l, WskSetOption, SO_KEEPALIVE, SOL_SOCKET, 1).0,
        STATUS_SUCCESS
    );
    assert_eq!(
        control_ulong(l, WskSetOption, SO_RCVBUF, SOL_SOCKET, 12345).0,
        STATUS_SUCCESS
    );
    assert_eq!(bind(l, listen(l).WskBind, "0.0.0.0:6405"), STATUS_SUCCESS);
    let _p = sim.peer_connect("10.0.0.1:6405").expect("connected");
    let (st, a) = accept(l, ptr::null_mut(), ptr::null());
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(
        control_ulong(a, WskGetOption, SO_KEEPALIVE, SOL_SOCKET, 0),
        (STATUS_SUCCESS, 1)
    );
    assert_eq!(
        control_ulong(a, WskGetOption, SO_RCVBUF, SOL_SOCKET, 0),
        (STATUS_SUCCESS, 12345)
    );
    assert_eq!(close(a), STATUS_SUCCESS);
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

/// A-26, REG-17 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_dispatch>):
/// a provider may report a higher minor version than the client asked for.
#[test]
fn the_provider_may_report_a_newer_minor_version() {
    let _sim = contract(Behaviour::NewerMinorVersion);
    let c = Client::new();
    let v = c.dispatch().Version;
    assert_eq!(WSK_MAJOR_VERSION(v), 1);
    assert!(WSK_MINOR_VERSION(v) > 0, "{v:#x}");
    c.finish();
}

/// A-6, DG-RCV-1 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>):
/// datagrams carry `IP_PKTINFO` control information, cut with `MSG_CTRUNC`
/// when the buffer is too small.
#[test]
fn datagrams_carry_packet_information() {
    let sim = contract(Behaviour::ControlInfo);
    let peer = sim.peer_udp("10.0.0.2:53");
    let c = Client::new();
    let d = c.socket(WSK_FLAG_DATAGRAM_SOCKET, ptr::null_mut(), ptr::null());
    assert_eq!(bind(d, dgram(d).WskBind, "10.0.0.1:6406"), STATUS_SUCCESS);
    for (room, truncated) in [(64u32, false), (8, true)] {
        peer.send_to("10.0.0.1:6406", b"hi");
        let mut r = Req::new();
        let mut b = Buf::zeroed(8);
        let mut control = [0u64; 8];
        let mut len = room;
        let mut flags = 0u32;
        let irp = r.arm();
        let st = unsafe {
            (dgram(d).WskReceiveFrom.unwrap())(
                d,
                b.ptr(),
                0,
                ptr::null_mut(),
                &mut len,
                control.as_mut_ptr().cast(),
                &mut flags,
                irp,
            )
        };
        assert_eq!(r.wait(st), (STATUS_SUCCESS, 2));
        assert_eq!(flags & MSG_CTRUNC != 0, truncated);
        if !truncated {
            let h: CMSGHDR = unsafe { control.as_ptr().cast::<CMSGHDR>().read() };
            assert_eq!(
                (h.cmsg_level, u32::try_from(h.cmsg_type)),
                (IPPROTO_IP, Ok(IP_PKTINFO))
            );
            assert_eq!(h.cmsg_len, CMSG_LEN(core::mem::size_of::<IN_PKTINFO>()));
            assert_eq!(len as usize, CMSG_SPACE(core::mem::size_of::<IN_PKTINFO>()));
            let addr = unsafe {
                WSA_CMSG_DATA(control.as_ptr().cast())
                    .cast::<[u8; 4]>()
                    .read()
            };
            assert_eq!(addr, [10, 0, 0, 1]);
        }
    }
    assert_eq!(close(d), STATUS_SUCCESS);
    c.finish();
}

/// CC-TLC-2 (<https://learn.microsoft.com/windows-hardware/drivers/network/wsk-transport-list-change>):
/// `WskDeregister` cancels a pending `WSK_TRANSPORT_LIST_CHANGE`.
#[test]
fn deregistering_cancels_a_pending_transport_list_change() {
    let _sim = benign();
    let mut c = Client::new();
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe {
        (c.dispatch().WskControlClient.unwrap())(
            c.npi.Client,
            WSK_TRANSPORT_LIST_CHANGE,
            0,
            ptr::null_mut(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!(st, STATUS_PENDING);
    unsafe {
        WskReleaseProviderNPI(&mut *c.reg);
        WskDeregister(&mut *c.reg);
    }
    assert_eq!(r.wait(st).0, STATUS_CANCELLED);
    // Deregistered by hand: `Client`'s drop must not do it again, but the
    // registration's memory is freed (Miri reports a leak otherwise).
    let c = core::mem::ManuallyDrop::new(c);
    // SAFETY: `c` is never used or dropped again; the box is read out once.
    drop(unsafe { core::ptr::read(&c.reg) });
}

/// Puts connected socket `s` in TCP silent mode (`SIO_WSK_SET_TCP_SILENT_MODE`).
fn set_silent_mode(s: PWSK_SOCKET) {
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe {
        (basic(s).WskControlSocket.unwrap())(
            s,
            WskIoctl,
            SIO_WSK_SET_TCP_SILENT_MODE,
            0,
            0,
            ptr::null_mut(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);
}

/// SIO-3 (<https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-tcp-silent-mode>):
/// in silent mode nothing goes on the wire — what the peer sends is
/// dropped, and the close sends not even a reset.
#[test]
fn silent_mode_puts_nothing_on_the_wire() {
    let sim = benign();
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:6407");
    set_silent_mode(s);
    p.send(b"dropped");
    p.close();
    sim.settle();
    assert_eq!(close(s), STATUS_SUCCESS);
    sim.settle();
    assert!(!p.was_reset(), "nothing goes on the wire, not even a reset");
    c.finish();
}

/// SIO-3, M-20: after silent mode `WskCloseSocket` is the only valid
/// operation; a send is reported (and fails with
/// `STATUS_INVALID_DEVICE_STATE`).
#[test]
#[should_panic(expected = "rule: SOCKET_STATE")]
fn a_send_in_silent_mode_is_reported() {
    let sim = benign();
    let (_c, s, _p) = client_connected_to_peer(&sim, "10.0.0.2:6408");
    set_silent_mode(s);
    let _ = send(s, b"x");
    close(s);
}

/// M-24: an option whose page requires an IRP, set without one.
#[test]
#[should_panic(expected = "rule: PARAMETER")]
fn an_option_that_needs_an_irp_without_one_is_reported() {
    let _sim = benign();
    let c = Client::new();
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    let on = 1u32;
    let _ = unsafe {
        (basic(s).WskControlSocket.unwrap())(
            s,
            WskSetOption,
            SO_REUSEADDR,
            SOL_SOCKET,
            4,
            (&raw const on).cast_mut().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    close(s);
}

/// M-24: reserved `Flags` are 0.
#[test]
#[should_panic(expected = "rule: PARAMETER")]
fn reserved_flags_are_reported() {
    let _sim = benign();
    let c = Client::new();
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    let mut r = Req::new();
    let mut a = Sa::new("0.0.0.0:0");
    let irp = r.arm();
    let st = unsafe { (conn(s).WskBind.unwrap())(s, a.ptr(), 1, irp) };
    r.wait(st);
    close(s);
}

/// M-24, CC-STATIC-1: static event callbacks after a socket exists.
#[test]
#[should_panic(expected = "rule: PARAMETER")]
fn static_events_after_a_socket_are_reported() {
    let _sim = benign();
    let c = Client::new();
    let s = c.socket(WSK_FLAG_DATAGRAM_SOCKET, ptr::null_mut(), ptr::null());
    let _ = set_static_events(&c, WSK_EVENT_RECEIVE_FROM);
    close(s);
}

/// M-24, EVT-3, M-13: events enabled before the bind.
#[test]
#[should_panic(expected = "rule: SOCKET_STATE")]
fn enabling_events_before_the_bind_is_reported() {
    let _sim = benign();
    let c = Client::new();
    let rec = Recorder::new();
    let d = c.socket(WSK_FLAG_DATAGRAM_SOCKET, rec.ptr(), datagram_dispatch());
    let _ = enable_events(d, WSK_EVENT_RECEIVE_FROM);
    close(d);
}

/// M-24, M-08, INS-6: conditional accept on a listener without an abort
/// callback.
#[test]
#[should_panic(expected = "rule: PARAMETER")]
fn conditional_accept_without_an_abort_callback_is_reported() {
    static NO_ABORT: WSK_CLIENT_LISTEN_DISPATCH = WSK_CLIENT_LISTEN_DISPATCH {
        WskAcceptEvent: None,
        WskInspectEvent: Some(reject_all),
        WskAbortEvent: None,
    };
    unsafe extern "system" fn reject_all(
        _: PVOID,
        _: PSOCKADDR,
        _: PSOCKADDR,
        _: PWSK_INSPECT_ID,
    ) -> WSK_INSPECT_ACTION {
        WskInspectReject
    }
    let _sim = benign();
    let c = Client::new();
    let mut ctx = 0u8;
    let l = c.socket(
        WSK_FLAG_LISTEN_SOCKET,
        (&raw mut ctx).cast(),
        (&raw const NO_ABORT).cast(),
    );
    let _ = control_ulong(l, WskSetOption, SO_CONDITIONAL_ACCEPT, SOL_SOCKET, 1);
    close(l);
}

/// M-24, KRN-WI-1 (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem>):
/// `IoQueueWorkItem` takes work items of device objects only.
#[test]
#[should_panic(expected = "rule: WORK_ITEM")]
fn a_driver_objects_work_item_in_io_queue_work_item_is_reported() {
    unsafe extern "system" fn nothing(_: PDEVICE_OBJECT, _: PVOID) {}
    let sim = benign();
    let item = unsafe { IoAllocateWorkItem(sim.driver_object().cast()) };
    unsafe { IoQueueWorkItem(item, Some(nothing), DelayedWorkQueue, ptr::null_mut()) };
    sim.settle();
    unsafe { IoFreeWorkItem(item) };
    sim.check();
}
