//! Socket-state preconditions (`docs/conformance.md` M-13, M-14, M-20,
//! M-22): a call the DDI allows only in another state is refused with an
//! `Error` before it reaches the provider; the simulator's verifier reports
//! the calls that would (`SOCKET_STATE`).

mod common;
use common::{connected, passive, setup, teardown};

use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext, Incoming, ListenEvents};
use wsk::events::{NoDatagramEvents, NoEvents, NoListenEvents};
use wsk::tcp::{ConnectionSocket, ListenSocket};
use wsk::udp::DatagramSocket;
use wsk::{AddressFamily, Buffer, Error, block_on};
use wsk_sim::{Routine, Sim};

/// Requests completed by the provider so far: a refused call completes
/// none.
fn provider_calls(sim: &Sim) -> u64 {
    sim.stats().irps_completed
}

/// Asserts that the provider completed no request since `before`.
fn assert_untouched(sim: &Sim, before: u64) {
    assert_eq!(provider_calls(sim), before, "nothing reached the provider");
}

/// A handler with a disconnect callback, so that events are enabled.
struct Events;
#[wsk::vtable]
impl ConnectionEvents for Events {
    fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
}

/// M-13: a connection socket just created is neither bound nor connected:
/// connecting, sending, receiving, disconnecting, the addresses, the
/// backlog queries and events are refused without a provider call.
#[test]
fn an_unconnected_socket_refuses_what_needs_a_connection() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = ConnectionSocket::new(&provider, AddressFamily::V4, Events)
        .wait(&p)
        .expect("created");
    let before = provider_calls(&sim);
    let state = Err(Error::INVALID_DEVICE_STATE);
    assert_eq!(
        socket
            .connect("10.0.0.2:80".parse().unwrap())
            .wait(&p)
            .map(drop),
        state
    );
    assert_eq!(socket.local_addr().wait(&p).map(drop), state);
    assert_eq!(socket.peer_addr().wait(&p).map(drop), state);
    assert_eq!(
        socket
            .send(Buffer::from_slice(b"x").unwrap())
            .wait(&p)
            .0
            .map(drop),
        state
    );
    assert_eq!(
        socket
            .receive(Buffer::with_capacity(4).unwrap())
            .wait(&p)
            .0
            .map(drop),
        state
    );
    assert_eq!(socket.disconnect(None).wait(&p).0, state);
    assert_eq!(socket.abort().wait(&p).0, state);
    assert_eq!(socket.ideal_send_backlog().wait(&p).map(drop), state);
    assert_eq!(socket.receive_backlog().wait(&p).map(drop), state);
    assert_eq!(socket.enable_events(), state);
    assert_eq!(socket.disable_events(), state);
    assert_untouched(&sim, before);
    // Bound: connecting is allowed (and, once connected, the rest).
    socket
        .bind("0.0.0.0:0".parse().unwrap())
        .wait(&p)
        .expect("bound");
    let _listener = sim.peer_listen("10.0.0.2:80");
    socket
        .connect("10.0.0.2:80".parse().unwrap())
        .wait(&p)
        .expect("connected");
    socket.enable_events().expect("events once connected");
    socket.peer_addr().wait(&p).expect("connected");
    socket.close().wait(&p).expect("closed");
    teardown(&p, registration, provider);
    sim.finish();
}

/// M-13: listening and datagram sockets: events, accepts and the local
/// address wait for the bind.
#[test]
fn unbound_listening_and_datagram_sockets_refuse_what_needs_a_bind() {
    struct Accepts;
    #[wsk::vtable]
    impl ListenEvents for Accepts {
        type Connection = NoEvents;
        fn on_accept(&self, _: &EventContext<'_>, _: Option<Incoming<'_, NoEvents>>) {}
    }
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = ListenSocket::new(&provider, AddressFamily::V4, Accepts)
        .wait(&p)
        .expect("created");
    let datagram = DatagramSocket::new(&provider, AddressFamily::V4, NoDatagramEvents)
        .wait(&p)
        .expect("created");
    let before = provider_calls(&sim);
    let state = Err(Error::INVALID_DEVICE_STATE);
    assert_eq!(listener.enable_events(), state);
    assert_eq!(listener.accept(NoEvents).wait(&p).map(drop), state);
    assert_eq!(listener.local_addr().wait(&p).map(drop), state);
    assert_eq!(datagram.local_addr().wait(&p).map(drop), state);
    assert_untouched(&sim, before);
    listener.close().wait(&p).expect("closed");
    datagram.close().wait(&p).expect("closed");
    let _ = NoListenEvents::<NoEvents>::new();
    teardown(&p, registration, provider);
    sim.finish();
}

/// M-14: an address of another family than the socket's is refused
/// without a provider call.
#[test]
fn addresses_of_another_family_are_refused() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = ConnectionSocket::new(&provider, AddressFamily::V4, NoEvents)
        .wait(&p)
        .expect("created");
    let before = provider_calls(&sim);
    assert_eq!(
        socket.bind("[::]:0".parse().unwrap()).wait(&p).map(drop),
        Err(Error::INVALID_ADDRESS_COMPONENT)
    );
    socket
        .bind("0.0.0.0:0".parse().unwrap())
        .wait(&p)
        .expect("bound");
    let before_connect = provider_calls(&sim);
    assert_eq!(
        socket
            .connect("[fd00::2]:80".parse().unwrap())
            .wait(&p)
            .map(drop),
        Err(Error::INVALID_ADDRESS_COMPONENT)
    );
    assert_eq!(provider_calls(&sim), before_connect);
    assert!(before_connect > before);
    socket.close().wait(&p).expect("closed");
    teardown(&p, registration, provider);
    sim.finish();
}

/// M-20: TCP silent mode needs Windows 8, a connection and no send pending;
/// afterwards only closing reaches the provider.
#[test]
fn silent_mode_preconditions_and_aftermath() {
    let c = connected();
    let p = passive();
    // Before Windows 8 (a registration made on Windows 7): not supported,
    // nothing called.
    c.sim.set_windows_version(6, 1, 7601);
    let (seven, seven_provider) = setup(&p);
    c.sim.set_windows_version(10, 0, 19045);
    let old = ConnectionSocket::new(&seven_provider, AddressFamily::V4, NoEvents)
        .wait(&p)
        .expect("created");
    assert_eq!(
        old.set_tcp_silent_mode().wait(&p),
        Err(Error::NOT_SUPPORTED)
    );
    old.close().wait(&p).expect("closed");
    teardown(&p, seven, seven_provider);

    // A send pending: refused; once it is over: accepted.
    c.sim.hang_next(Routine::WskSend);
    let pending = c.socket.send(Buffer::from_slice(b"stuck").unwrap());
    assert!(!pending.is_complete());
    assert_eq!(
        c.socket.set_tcp_silent_mode().wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    drop(pending); // cancelled
    c.sim.settle();
    c.socket.set_tcp_silent_mode().wait(&p).expect("silent");

    // Afterwards: nothing but closing.
    let before = provider_calls(&c.sim);
    let (sent, _) = c.socket.send(Buffer::from_slice(b"x").unwrap()).wait(&p);
    assert_eq!(sent, Err(Error::INVALID_DEVICE_STATE));
    assert_eq!(
        c.socket.disconnect(None).wait(&p).0,
        Err(Error::INVALID_DEVICE_STATE)
    );
    assert_eq!(
        c.socket.peer_addr().wait(&p).map(drop),
        Err(Error::INVALID_DEVICE_STATE)
    );
    assert_untouched(&c.sim, before);
    c.finish();
}

/// M-22: a routine failing with `STATUS_FILE_FORCED_CLOSED` means the
/// socket no longer works and must be closed: the owner sees the named
/// error and `must_close()`, and nothing but the close is called on it.
#[test]
fn a_socket_the_provider_closed_refuses_everything_but_close() {
    let c = connected();
    let p = passive();
    c.sim
        .fail_next(Routine::WskSend, wsk::sys::STATUS_FILE_FORCED_CLOSED);
    let (sent, _) = c.socket.send(Buffer::from_slice(b"x").unwrap()).wait(&p);
    assert_eq!(sent, Err(Error::FILE_FORCED_CLOSED));
    assert_eq!(
        Error::FILE_FORCED_CLOSED.name(),
        Some("STATUS_FILE_FORCED_CLOSED")
    );
    assert!(c.socket.must_close());
    let before = provider_calls(&c.sim);
    let (sent, _) = c.socket.send(Buffer::from_slice(b"y").unwrap()).wait(&p);
    assert_eq!(sent, Err(Error::FILE_FORCED_CLOSED));
    assert_eq!(
        c.socket.set::<wsk::options::NoDelay>(true).wait(&p),
        Err(Error::FILE_FORCED_CLOSED)
    );
    assert_untouched(&c.sim, before);
    // Closing works (and the simulator checks it happened).
    c.finish();
}

/// 11.8: inside `WskAcceptEvent`, the accepted socket may be used (Microsoft's
/// sample makes calls there), except for event enabling, which waits for the
/// provider to learn the socket's table from the callback's answer.
#[test]
fn the_accepted_socket_is_usable_inside_its_accept_callback() {
    use std::sync::Mutex;

    #[derive(Default)]
    struct Greeter {
        kept: Mutex<Vec<ConnectionSocket<Events>>>,
        enable_in_callback: Mutex<Option<Result<(), Error>>>,
    }
    #[wsk::vtable]
    impl ListenEvents for Greeter {
        type Connection = Events;
        fn on_accept(&self, _: &EventContext<'_>, incoming: Option<Incoming<'_, Events>>) {
            let Some(incoming) = incoming else { return };
            let socket = incoming.accept(Events).expect("memory for the socket");
            *self.enable_in_callback.lock().unwrap() = Some(socket.enable_events());
            // A request started inside the callback reaches the provider.
            drop(socket.send(Buffer::from_slice(b"hello").unwrap()));
            self.kept.lock().unwrap().push(socket);
        }
    }
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "10.0.0.1:7300".parse().unwrap(),
            Greeter::default(),
        ),
    )
    .expect("listen");
    let peer = sim.peer_connect("10.0.0.1:7300").expect("connected");
    sim.settle();
    assert_eq!(peer.recv_exact(5), b"hello");
    let handler = listener.handler();
    assert_eq!(
        *handler.enable_in_callback.lock().unwrap(),
        Some(Err(Error::INVALID_DEVICE_STATE))
    );
    let socket = handler.kept.lock().unwrap().pop().expect("accepted");
    socket.enable_events().expect("after the callback");
    socket.close().wait(&p).expect("closed");
    listener.close().wait(&p).expect("closed");
    teardown(&p, registration, provider);
    sim.finish();
}
