//! A second adversarial review of the safe API after issues 11, 12 and 14
//! merged: each test drives safe code into a corner the review found and
//! checks, through `wsk-sim`'s verifier, that Microsoft's contract holds.

mod common;
use common::{passive, setup};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wsk::events::{EventContext, Incoming, ListenEvents, NoEvents};
use wsk::tcp::ConnectionSocket;
use wsk::block_on;
use wsk_sim::Sim;

/// Keeps every connection it accepts, holding the accept callback open
/// until the test lets it return.
#[derive(Default, Clone)]
struct SlowAcceptor(Arc<SlowAcceptorState>);

#[derive(Default)]
struct SlowAcceptorState {
    kept: Mutex<Vec<ConnectionSocket<NoEvents>>>,
    inside: AtomicBool,
    go: AtomicBool,
}

#[wsk::vtable]
impl ListenEvents for SlowAcceptor {
    type Connection = NoEvents;
    fn on_accept(&self, _: &EventContext<'_>, incoming: Option<Incoming<'_, NoEvents>>) {
        let Some(incoming) = incoming else { return };
        let socket = incoming.accept(NoEvents);
        self.0.kept.lock().unwrap().push(socket);
        self.0.inside.store(true, Ordering::Release);
        // A callback that takes its time (a host thread spinning: no wait
        // the verifier would see).
        while !self.0.go.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }
}

/// Deregistration closed a socket whose accept callback was still running:
/// the callback's answer rejects it (`STATUS_REQUEST_NOT_ACCEPTED`) and the
/// provider closes it. The handle the callback kept must not close it a
/// second time when it is dropped later (`WskCloseSocket` on a socket the
/// provider already closed and freed).
#[test]
fn a_socket_rejected_because_deregistration_met_its_accept_callback_is_not_closed_again() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let acceptor = SlowAcceptor::default();
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7100".parse().unwrap(),
            acceptor.clone(),
        ),
    )
    .expect("listening");
    std::thread::scope(|scope| {
        // The peer connects on a thread of its own: the simulator runs the
        // accept callback there.
        let peer = scope.spawn(|| sim.peer_connect_start("10.0.0.1:7100"));
        while !acceptor.0.inside.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        // Deregistration meets the accepted socket inside its callback,
        // which returns a little later.
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            acceptor.0.go.store(true, Ordering::Release);
        });
        drop(provider);
        let left = registration
            .deregister(&p)
            .expect_err("the listener and the accepted socket were open");
        assert!(left.sockets >= 1);
        drop(peer.join().unwrap());
    });
    // Dropped after deregistration: nothing may reach the provider.
    let kept: Vec<_> = acceptor.0.kept.lock().unwrap().drain(..).collect();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].must_close(), "deregistration closed it");
    drop(kept);
    drop(listener);
    sim.finish();
}
