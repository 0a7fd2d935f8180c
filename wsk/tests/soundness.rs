//! Issue 11: what safe code must not be able to do — each test drives the
//! crate through `wsk-sim` into a situation an adversarial review found
//! and checks that nothing breaks Microsoft's contract.

mod common;
use common::{TIMEOUT, passive, setup};

use std::sync::{Arc, Mutex};

use wsk::events::{
    ConnectionEvents, EventContext, Indication, ReceiveAction, RetainedIndication, StaticEvents,
};
use wsk::tcp::ConnectionSocket;
use wsk_sim::Sim;

/// Retains every indication and keeps it for the test.
#[derive(Default, Clone)]
struct Keeper(Arc<Kept>);

#[derive(Default)]
struct Kept {
    held: Mutex<Vec<RetainedIndication>>,
    refused_retains: Mutex<usize>,
}

#[wsk::vtable]
impl ConnectionEvents for Keeper {
    fn on_receive(&self, _: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let Some(data) = data else {
            return ReceiveAction::Accept;
        };
        match data.retain() {
            Some(kept) => self.0.held.lock().unwrap().push(kept),
            None => *self.0.refused_retains.lock().unwrap() += 1,
        }
        ReceiveAction::Refuse
    }
}

/// 11.1: with static receive events, data that arrives before the owner
/// has polled its `socket_connect` request is indicated to a socket whose
/// `PWSK_SOCKET` the crate did not know yet; releasing a list retained then
/// read a null socket.
#[test]
fn a_list_retained_before_the_create_request_is_polled_is_released_on_its_socket() {
    let sim = Sim::start();
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    provider
        .set_static_events(StaticEvents::RECEIVE)
        .expect("before any socket");
    let keeper = Keeper::default();
    let request = ConnectionSocket::socket_connect(
        &provider,
        "0.0.0.0:0".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
        keeper.clone(),
    );
    let peer = listener.accept();
    peer.send(b"early");
    sim.settle();
    // The request completed, but its owner has not taken the socket yet:
    // whatever was retained meanwhile is released on the socket it came from.
    let held: Vec<_> = keeper.0.held.lock().unwrap().drain(..).collect();
    let refused = *keeper.0.refused_retains.lock().unwrap();
    assert_eq!(held.len() + refused, 1, "one indication");
    drop(held);
    sim.settle();
    let socket = request.wait(&p).expect("connected");
    socket.close().wait(&p).expect("closed");
    drop(provider);
    registration.deregister(&p).expect("nothing left");
    sim.finish();
    let _ = TIMEOUT;
}

/// Retains each indication, copies it and drops the handle before the
/// callback returns (the pattern `if let Some(k) = data.retain() { … }`).
struct CopyThenDrop(Arc<Mutex<Vec<u8>>>);

#[wsk::vtable]
impl ConnectionEvents for CopyThenDrop {
    fn on_receive(&self, _: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let Some(data) = data else {
            return ReceiveAction::Accept;
        };
        if let Some(kept) = data.retain() {
            let mut bytes = vec![0; kept.len()];
            let n = kept.copy_to(&mut bytes).expect("socket open");
            self.0.lock().unwrap().extend_from_slice(&bytes[..n]);
        }
        ReceiveAction::Refuse
    }
}

/// 11.2: a retained indication dropped before its callback returns was
/// released (`WskRelease`) although the provider did not consider it
/// retained yet, and the trampoline still answered `STATUS_PENDING`.
#[test]
fn a_list_released_before_its_callback_returns_is_answered_as_taken() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let c = common::connected_to(CopyThenDrop(Arc::clone(&seen)), |_| {});
    let p = passive();
    c.peer.send(b"abc");
    c.sim.settle();
    assert_eq!(&seen.lock().unwrap()[..], b"abc");
    assert_eq!(
        c.sim.stats().statuses(wsk_sim::EventKind::Receive),
        vec![wsk::sys::STATUS_SUCCESS],
        "everything was taken"
    );
    c.peer.send(b"de");
    c.sim.settle();
    assert_eq!(&seen.lock().unwrap()[..], b"abcde");
    let common::Connected {
        socket,
        peer,
        provider,
        registration,
        sim,
    } = c;
    socket.close().wait(&p).expect("closed");
    drop((peer, provider));
    registration.deregister(&p).expect("nothing left");
    sim.finish();
}
