//! Listening sockets, accept requests and accept events, and a client/server
//! round trip between two `wsk` sockets over the simulated network.

mod common;
use common::{passive, setup, teardown};

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use wsk::events::{
    ConnectionEvents, DisconnectFlags, EventContext, Incoming, ListenEvents, NoEvents,
    NoListenEvents,
};
use wsk::irql::Passive;
use wsk::tcp::ConnectionSocket;
use wsk::{Buffer, Error, block_on};
use wsk_sim::{EventKind, Irql, Sim};
use wsk_sys as sys;

/// Sends all of `data` in chunks.
fn send_all(socket: &ConnectionSocket<NoEvents>, p: &Passive<'_>, data: &[u8]) {
    let mut buffer = Buffer::with_capacity(64 * 1024).unwrap();
    for chunk in data.chunks(buffer.capacity()) {
        buffer.clear();
        buffer.extend_from_slice(chunk);
        let mut offset = 0;
        while offset < chunk.len() {
            let (sent, b) = socket.send(buffer).wait(p);
            buffer = b;
            let n = sent.expect("send");
            offset += n;
            // A partial send leaves the tail to send again.
            let rest = buffer.as_slice()[n..].to_vec();
            buffer.clear();
            buffer.extend_from_slice(&rest);
        }
    }
}

/// Receives exactly `len` bytes.
fn receive_exactly(socket: &ConnectionSocket<NoEvents>, p: &Passive<'_>, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut buffer = Buffer::with_capacity(64 * 1024).unwrap();
    while out.len() < len {
        let (received, b) = socket.receive(buffer).wait(p);
        buffer = b;
        let n = received.expect("receive");
        assert_ne!(n, 0, "end of stream after {} of {len} bytes", out.len());
        out.extend_from_slice(buffer.as_slice());
    }
    out
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            u8::try_from(i % 251)
                .unwrap()
                .wrapping_mul(31)
                .wrapping_add(seed)
        })
        .collect()
}

#[test]
fn one_mebibyte_round_trip_between_wsk_sockets() {
    // Miri interprets every byte copy: a smaller transfer keeps it in minutes.
    const LEN: usize = if cfg!(miri) { 64 * 1024 } else { 1 << 20 };
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);

    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7007".parse().unwrap(),
            NoListenEvents::<NoEvents>::new(),
        ),
    )
    .expect("listen");
    let server = std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let p = passive();
            let (connection, remote) = listener.accept(NoEvents).wait(&p).expect("accept");
            assert_eq!(remote.ip().to_string(), "10.0.0.1");
            let upload = receive_exactly(&connection, &p, LEN);
            assert_eq!(upload, pattern(LEN, 1), "server got the client's bytes");
            send_all(&connection, &p, &pattern(LEN, 2));
            connection
                .disconnect(None)
                .wait(&p)
                .0
                .expect("server disconnect");
            connection
        });
        let client = block_on(
            &p,
            wsk::tcp::connect(&provider, "10.0.0.1:7007".parse().unwrap(), NoEvents),
        )
        .expect("connect");
        send_all(&client, &p, &pattern(LEN, 1));
        let download = receive_exactly(&client, &p, LEN);
        assert_eq!(download, pattern(LEN, 2), "client got the server's bytes");
        let (end, _) = client.receive(Buffer::with_capacity(16).unwrap()).wait(&p);
        assert_eq!(end, Ok(0), "graceful end of stream");
        client
            .disconnect(None)
            .wait(&p)
            .0
            .expect("client disconnect");
        client.close().wait(&p).expect("client close");
        server.join().unwrap()
    });
    server.close().wait(&p).expect("server close");
    listener.close().wait(&p).expect("listener close");
    drop(provider);
    registration.deregister(&p).expect("deregister");
    sim.finish();
}

#[test]
fn accept_completes_with_cancelled_when_the_listener_closes() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7008".parse().unwrap(),
            NoListenEvents::<NoEvents>::new(),
        ),
    )
    .unwrap();
    let pending = listener.accept(NoEvents);
    let pending = pending
        .wait_timeout(&p, Duration::from_millis(20))
        .expect_err("nobody connects");
    listener.close().wait(&p).unwrap();
    match pending.wait(&p) {
        Err(e) => assert_eq!(e, Error::CANCELLED),
        Ok(_) => panic!("accept succeeded on a closed listener"),
    }
    drop(provider);
    registration.deregister(&p).unwrap();
    sim.finish();
}

#[test]
fn deregistration_closes_sockets_still_alive_and_says_so() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7009".parse().unwrap(),
            NoListenEvents::<NoEvents>::new(),
        ),
    )
    .unwrap();
    drop(provider);
    assert_eq!(registration.live_handles(), 1);
    let left = registration
        .deregister(&p)
        .expect_err("a listening socket was still open");
    assert_eq!((left.sockets, left.retained, left.providers), (1, 0, 1));
    // Deregistered: the handle is still safe to use, and tells the truth.
    assert!(listener.must_close());
    let refused = listener.accept(NoEvents).wait(&p);
    assert_eq!(refused.err(), Some(Error::FILE_FORCED_CLOSED));
    assert_eq!(listener.close().wait(&p), Err(Error::FILE_FORCED_CLOSED));
    assert!(
        sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains("deregister: closing a socket with handler")),
        "a DbgPrint line names the socket"
    );
    sim.finish();
}

/// An event-driven server: accepts everything, records disconnects.
struct Server {
    accepted: Mutex<Vec<ConnectionSocket<Peer>>>,
    remotes: Mutex<Vec<SocketAddr>>,
    reject_next: Mutex<bool>,
}

struct Peer {
    disconnects: Mutex<Vec<DisconnectFlags>>,
}

#[wsk::vtable]
impl ConnectionEvents for Peer {
    fn on_disconnect(&self, _: &EventContext<'_>, flags: DisconnectFlags) {
        self.disconnects.lock().unwrap().push(flags);
    }
}

#[wsk::vtable]
impl ListenEvents for Server {
    type Connection = Peer;

    fn on_accept(&self, _: &EventContext<'_>, incoming: Option<Incoming<'_, Peer>>) {
        let Some(incoming) = incoming else { return };
        self.remotes
            .lock()
            .unwrap()
            .push(incoming.peer_addr().unwrap());
        let socket = incoming
            .accept(Peer {
                disconnects: Mutex::new(Vec::new()),
            })
            .expect("memory for the socket");
        if std::mem::take(&mut *self.reject_next.lock().unwrap()) {
            drop(socket); // dropping inside the callback rejects the connection
        } else {
            self.accepted.lock().unwrap().push(socket);
        }
    }
}

fn accept_events(irql: Irql) {
    let sim = Sim::start();
    sim.set_event_irql(irql);
    let p = passive();
    let (registration, provider) = setup(&p);
    let server = Server {
        accepted: Mutex::new(Vec::new()),
        remotes: Mutex::new(Vec::new()),
        reject_next: Mutex::new(false),
    };
    let listener = block_on(
        &p,
        wsk::tcp::listen(&provider, "0.0.0.0:7010".parse().unwrap(), server),
    )
    .unwrap();

    let first = sim.peer_connect("10.0.0.1:7010").expect("accepted");
    *listener.handler().reject_next.lock().unwrap() = true;
    let rejected = sim.peer_connect("10.0.0.1:7010");
    assert!(
        rejected.is_err() || rejected.as_ref().is_ok_and(wsk_sim::PeerConn::wait_closed),
        "second connection rejected"
    );
    first.close();
    sim.settle();

    let accepted: Vec<_> = listener
        .handler()
        .accepted
        .lock()
        .unwrap()
        .drain(..)
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(listener.handler().remotes.lock().unwrap().len(), 2);
    // The accepted socket inherited the disconnect event from the listener.
    assert_eq!(accepted[0].handler().disconnects.lock().unwrap().len(), 1);
    let statuses = sim.stats().statuses(EventKind::Accept);
    assert_eq!(
        statuses,
        vec![sys::STATUS_SUCCESS, sys::STATUS_REQUEST_NOT_ACCEPTED]
    );
    let at_dispatch = sim
        .stats()
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Accept)
        .all(|e| e.at_dispatch);
    assert_eq!(at_dispatch, irql == Irql::Dispatch);

    for socket in accepted {
        socket.close().wait(&p).unwrap();
    }
    listener.close().wait(&p).unwrap();
    drop(provider);
    registration.deregister(&p).unwrap();
    sim.finish();
}

#[test]
fn accept_events_at_passive() {
    accept_events(Irql::Passive);
}

#[test]
fn accept_events_at_dispatch() {
    accept_events(Irql::Dispatch);
}

fn server() -> Server {
    Server {
        accepted: Mutex::new(Vec::new()),
        remotes: Mutex::new(Vec::new()),
        reject_next: Mutex::new(false),
    }
}

#[test]
fn a_provider_without_events_listens_with_events_off() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    // Wine's WskControlSocket: no event callbacks at all.
    sim.fail_next(
        wsk_sim::Routine::WskControlSocket,
        sys::STATUS_NOT_IMPLEMENTED,
    );
    let listener = block_on(
        &p,
        wsk::tcp::listen(&provider, "0.0.0.0:7011".parse().unwrap(), server()),
    )
    .expect("listening, events off");
    assert!(
        !listener.events_enabled(),
        "the driver learns events are off"
    );
    // Connections are taken by request instead.
    let accept = listener.accept(Peer {
        disconnects: Mutex::new(Vec::new()),
    });
    let peer = sim.peer_connect("127.0.0.1:7011").expect("peer connects");
    // The accept request enables the connection's events: Wine refuses
    // that too, which does not fail the accept.
    sim.fail_next(
        wsk_sim::Routine::WskControlSocket,
        sys::STATUS_NOT_IMPLEMENTED,
    );
    let (connection, remote) = accept.wait(&p).expect("accepted by request");
    assert_eq!(remote, peer.local_addr());
    assert!(
        !connection.events_enabled(),
        "a provider without events: the connection's events stay off"
    );
    connection.close().wait(&p).expect("close");
    listener.close().wait(&p).expect("close");
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

#[test]
fn events_refused_by_the_provider_are_a_clear_error() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    sim.fail_next(
        wsk_sim::Routine::WskControlSocket,
        sys::STATUS_INVALID_DEVICE_STATE,
    );
    let result = block_on(
        &p,
        wsk::tcp::listen(&provider, "0.0.0.0:7012".parse().unwrap(), server()),
    );
    assert_eq!(result.err(), Some(Error::INVALID_DEVICE_STATE));
    sim.settle();
    drop(provider);
    registration
        .deregister(&p)
        .expect("the failed socket was closed");
    sim.finish();
}

/// Counts the NULL `AcceptSocket`s an accept callback is given.
#[derive(Default)]
struct Dead(Mutex<usize>);

#[wsk::vtable]
impl ListenEvents for Dead {
    type Connection = Peer;
    fn on_accept(&self, _: &EventContext<'_>, incoming: Option<Incoming<'_, Peer>>) {
        if incoming.is_none() {
            *self.0.lock().unwrap() += 1;
        }
    }
}

/// ACC-EV-3 (M-17): a NULL `AcceptSocket` reaches the handler as `None`
/// and is answered `STATUS_REQUEST_NOT_ACCEPTED`, as Microsoft's sample
/// does: nothing was accepted.
#[test]
fn a_null_accept_socket_is_reported_and_not_accepted() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen(&provider, "0.0.0.0:7020".parse().unwrap(), Dead::default()),
    )
    .unwrap();
    sim.indicate_close_required();
    sim.settle();
    assert_eq!(*listener.handler().0.lock().unwrap(), 1);
    let accepts: Vec<_> = sim
        .stats()
        .events
        .into_iter()
        .filter(|e| e.kind == EventKind::Accept)
        .collect();
    assert_eq!(accepts.len(), 1);
    assert!(accepts[0].null_indication);
    assert_eq!(accepts[0].status, sys::STATUS_REQUEST_NOT_ACCEPTED);
    listener.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

/// EVT-10 (M-12): disabling a listening socket's events disables only its
/// accept event; the connection events enabled on it stay (Microsoft allows
/// no disabling them there, which the adversary's `fixed-events` reports as
/// a violation). Accept events resume once re-enabled, and accepted sockets
/// still inherit the connection events.
#[test]
fn disabling_a_listener_disables_only_its_accept_event() {
    let sim = Sim::with_config({
        let mut cfg = wsk_sim::Config::default();
        cfg.adversary = Some(wsk_sim::Adversary::none(1).with(wsk_sim::Behaviour::FixedEvents));
        cfg
    });
    let p = passive();
    let (registration, provider) = setup(&p);
    let server = Server {
        accepted: Mutex::new(Vec::new()),
        remotes: Mutex::new(Vec::new()),
        reject_next: Mutex::new(false),
    };
    let listener = block_on(
        &p,
        wsk::tcp::listen(&provider, "0.0.0.0:7021".parse().unwrap(), server),
    )
    .unwrap();
    listener.disable_events().expect("disable the accept event");
    assert!(!listener.events_enabled());
    // Not offered through the (disabled) accept event: it waits in the
    // backlog for a WskAccept.
    let early = sim.peer_connect("10.0.0.1:7021").expect("connected");
    sim.settle();
    assert_eq!(sim.stats().count(EventKind::Accept), 0);
    listener.enable_events().expect("enable again");
    let peer = sim.peer_connect("10.0.0.1:7021").expect("connected");
    sim.settle();
    let accepted: Vec<_> = listener
        .handler()
        .accepted
        .lock()
        .unwrap()
        .drain(..)
        .collect();
    assert!(!accepted.is_empty(), "accept events resumed");
    peer.close();
    early.close();
    sim.settle();
    let disconnects: usize = accepted
        .iter()
        .map(|s| s.handler().disconnects.lock().unwrap().len())
        .sum();
    assert_eq!(disconnects, accepted.len(), "connection events inherited");
    drop(accepted);
    listener.close().wait(&p).expect("close");
    sim.settle();
    teardown(&p, registration, provider);
    sim.finish();
}

/// EVT-9, ACC-5 (M-02): a socket `WskAccept` returns starts with its events
/// disabled (the adversary's `accept-does-not-inherit`); the accept request
/// enables the handler's, so its disconnect event fires.
#[test]
fn sockets_accepted_by_request_get_their_handlers_events() {
    let sim = Sim::with_config({
        let mut cfg = wsk_sim::Config::default();
        cfg.adversary =
            Some(wsk_sim::Adversary::none(2).with(wsk_sim::Behaviour::AcceptDoesNotInherit));
        cfg
    });
    let p = passive();
    let (registration, provider) = setup(&p);
    // Both a listener without events and one with accept events enabled
    // (whose connection events a WskAccept socket does not inherit either).
    let plain = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7030".parse().unwrap(),
            NoListenEvents::<Peer>::new(),
        ),
    )
    .unwrap();
    let server = Server {
        accepted: Mutex::new(Vec::new()),
        remotes: Mutex::new(Vec::new()),
        reject_next: Mutex::new(false),
    };
    let eventful = block_on(
        &p,
        wsk::tcp::listen(&provider, "0.0.0.0:7031".parse().unwrap(), server),
    )
    .unwrap();
    eventful.disable_events().unwrap(); // leave connections to WskAccept
    for (port, accept) in [
        (
            7030,
            plain.accept(Peer {
                disconnects: Mutex::new(Vec::new()),
            }),
        ),
        (
            7031,
            eventful.accept(Peer {
                disconnects: Mutex::new(Vec::new()),
            }),
        ),
    ] {
        let peer = sim
            .peer_connect(&format!("10.0.0.1:{port}"))
            .expect("connected");
        let (connection, _) = accept.wait(&p).expect("accepted");
        assert!(connection.events_enabled(), "{port}");
        peer.close();
        sim.settle();
        assert_eq!(
            connection.handler().disconnects.lock().unwrap().len(),
            1,
            "{port}: on_disconnect"
        );
        connection.close().wait(&p).expect("close");
    }
    plain.close().wait(&p).expect("close");
    eventful.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}
