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

use common::recorder::*;
use common::*;
use wsk_sim::{CompletionMode, EventDelivery, EventKind, Sim};
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
    let sim = Sim::start();
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
    let sim = Sim::start();
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
    let sim = Sim::start();
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
    let sim = Sim::start();
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
