//! Typed socket options, the WSK query IOCTLs, and `WskSocketConnect`.

mod common;
use common::{passive, setup};

use wsk::AddressFamily;
use wsk::events::{NoEvents, NoListenEvents};
use wsk::options::{
    ExclusiveAddressUse, Ipv6Only, KeepAlive, NoDelay, ReceiveBuffer, ReuseAddress, SendBuffer,
    SocketOption,
};
use wsk::tcp::{ConnectionSocket, ListenSocket};
use wsk::{Buffer, Error, block_on};
use wsk_sim::{Routine, Sim};
use wsk_sys as sys;

/// An option no provider knows.
struct Unknown;

impl SocketOption for Unknown {
    type Value = u32;
    const LEVEL: u32 = sys::SOL_SOCKET;
    const CODE: u32 = 0x7777;
}

#[test]
fn connection_options_round_trip() {
    let sim = Sim::start();
    let peer = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(&provider, "10.0.0.2:80".parse().unwrap(), NoEvents),
    )
    .unwrap();
    let conn = peer.accept();

    // Defaults, then set-get round trips.
    assert!(!socket.get::<NoDelay>().wait(&p).unwrap());
    for on in [true, false, true] {
        socket.set::<NoDelay>(on).wait(&p).unwrap();
        assert_eq!(socket.get::<NoDelay>().wait(&p).unwrap(), on);
        socket.set::<KeepAlive>(on).wait(&p).unwrap();
        assert_eq!(socket.get::<KeepAlive>().wait(&p).unwrap(), on);
    }
    socket.set::<ReceiveBuffer>(128 * 1024).wait(&p).unwrap();
    assert_eq!(socket.get::<ReceiveBuffer>().wait(&p).unwrap(), 128 * 1024);
    socket.set::<SendBuffer>(32 * 1024).wait(&p).unwrap();
    assert_eq!(socket.get::<SendBuffer>().wait(&p).unwrap(), 32 * 1024);

    // Bound (and connected): options that must precede the bind are refused
    // without a provider call; reading them still works.
    assert_eq!(
        socket.set::<ReuseAddress>(true).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    assert_eq!(
        socket.set::<ExclusiveAddressUse>(true).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    assert!(!socket.get::<ReuseAddress>().wait(&p).unwrap());

    // An unknown option is the provider's error.
    assert_eq!(socket.get::<Unknown>().wait(&p), Err(Error::NOT_SUPPORTED));

    // IOCTLs.
    assert_eq!(socket.ideal_send_backlog().wait(&p).unwrap(), 65536);
    assert_eq!(socket.receive_backlog().wait(&p).unwrap(), 0);
    conn.send(b"hello");
    sim.settle();
    assert_eq!(socket.receive_backlog().wait(&p).unwrap(), 5);
    let (n, buffer) = socket.receive(Buffer::with_capacity(16).unwrap()).wait(&p);
    assert_eq!(n.unwrap(), 5);
    drop(buffer);
    assert_eq!(socket.receive_backlog().wait(&p).unwrap(), 0);

    socket.close().wait(&p).unwrap();
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

#[test]
fn pre_bind_options_on_listening_sockets() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener =
        ListenSocket::<NoListenEvents>::new(&provider, AddressFamily::V6, NoListenEvents::new())
            .wait(&p)
            .unwrap();
    assert!(listener.get::<Ipv6Only>().wait(&p).unwrap(), "default on");
    listener.set::<Ipv6Only>(false).wait(&p).unwrap();
    assert!(!listener.get::<Ipv6Only>().wait(&p).unwrap());
    listener.set::<ReuseAddress>(true).wait(&p).unwrap();
    assert!(listener.get::<ReuseAddress>().wait(&p).unwrap());
    listener.set::<ExclusiveAddressUse>(false).wait(&p).unwrap();
    assert!(!listener.get::<ExclusiveAddressUse>().wait(&p).unwrap());
    listener.set::<ReceiveBuffer>(4096).wait(&p).unwrap();
    assert_eq!(listener.get::<ReceiveBuffer>().wait(&p).unwrap(), 4096);

    listener
        .bind("[::]:7200".parse().unwrap())
        .wait(&p)
        .unwrap();
    assert_eq!(
        listener.set::<Ipv6Only>(true).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    assert_eq!(
        listener.set::<ReuseAddress>(false).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    // Others may still change after the bind.
    listener.set::<KeepAlive>(true).wait(&p).unwrap();
    assert_eq!(
        listener.get::<Unknown>().wait(&p),
        Err(Error::NOT_SUPPORTED)
    );

    listener.close().wait(&p).unwrap();
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

#[test]
fn options_fail_clearly_when_control_fails() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = ConnectionSocket::new(&provider, AddressFamily::V4, NoEvents)
        .wait(&p)
        .unwrap();
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    assert_eq!(
        socket.set::<NoDelay>(true).wait(&p),
        Err(Error::NOT_IMPLEMENTED)
    );
    socket.close().wait(&p).unwrap();
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

#[test]
fn socket_connect_creates_binds_and_connects_in_one_call() {
    let sim = Sim::start();
    let peer = sim.peer_listen("10.0.0.2:81");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = ConnectionSocket::socket_connect(
        &provider,
        "0.0.0.0:0".parse().unwrap(),
        "10.0.0.2:81".parse().unwrap(),
        NoEvents,
    )
    .wait(&p)
    .expect("socket connect");
    let conn = peer.accept();
    assert_eq!(
        socket.peer_addr().wait(&p).unwrap(),
        "10.0.0.2:81".parse().unwrap()
    );
    assert_eq!(socket.local_addr().wait(&p).unwrap(), conn.remote_addr());
    let (sent, buffer) = socket.send(Buffer::from_slice(b"ping").unwrap()).wait(&p);
    assert_eq!(sent.unwrap(), 4);
    drop(buffer);
    assert_eq!(conn.recv_exact(4), b"ping");
    // It came bound: pre-bind options are refused.
    assert_eq!(
        socket.set::<ReuseAddress>(true).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    socket.close().wait(&p).unwrap();

    // Refused: the provider closes the socket it created.
    let refused = ConnectionSocket::socket_connect(
        &provider,
        "0.0.0.0:0".parse().unwrap(),
        "10.0.0.2:82".parse().unwrap(),
        NoEvents,
    )
    .wait(&p);
    assert!(refused.is_err());

    // Mixed families never reach the provider.
    let mixed = ConnectionSocket::socket_connect(
        &provider,
        "[::]:0".parse().unwrap(),
        "10.0.0.2:81".parse().unwrap(),
        NoEvents,
    )
    .wait(&p);
    assert_eq!(mixed.err(), Some(Error::INVALID_PARAMETER));

    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

#[test]
fn socket_connect_not_implemented_is_a_clear_error() {
    let sim = Sim::start();
    let _peer = sim.peer_listen("10.0.0.2:83");
    let p = passive();
    let (registration, provider) = setup(&p);
    // Wine's stub returns STATUS_NOT_IMPLEMENTED without completing the IRP.
    sim.fail_next(Routine::WskSocketConnect, sys::STATUS_NOT_IMPLEMENTED);
    let result = ConnectionSocket::socket_connect(
        &provider,
        "0.0.0.0:0".parse().unwrap(),
        "10.0.0.2:83".parse().unwrap(),
        NoEvents,
    )
    .wait(&p);
    assert_eq!(result.err(), Some(Error::NOT_IMPLEMENTED));
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

/// SOCK-4, ACC-2, CTL-4, CONNX-2 (M-21): the "should" parameters as
/// Microsoft gives them — no socket context for sockets without callbacks
/// (created, accepted by request), no `OutputSizeReturned` with an IRP
/// (the simulator's verifier reports both), and `WskConnectEx` data over
/// 65,535 bytes refused without a call, with the status the provider would
/// give.
#[test]
fn should_parameters_are_as_microsoft_gives_them() {
    let sim = Sim::start();
    let peer = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let connection = block_on(
        &p,
        wsk::tcp::connect(&provider, "10.0.0.2:80".parse().unwrap(), NoEvents),
    )
    .expect("connect");
    let _peer_side = peer.accept();
    // Control requests with an IRP (get and set): no OutputSizeReturned.
    connection.set::<KeepAlive>(true).wait(&p).expect("set");
    assert!(connection.get::<KeepAlive>().wait(&p).expect("get"));
    assert!(connection.ideal_send_backlog().wait(&p).expect("query") > 0);

    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7400".parse().unwrap(),
            NoListenEvents::<NoEvents>::new(),
        ),
    )
    .expect("listen");
    let accept = listener.accept(NoEvents);
    let _client = sim.peer_connect("10.0.0.1:7400").expect("connect");
    let (accepted, _) = accept.wait(&p).expect("accept");

    let socket = ConnectionSocket::new(&provider, AddressFamily::V4, NoEvents)
        .wait(&p)
        .expect("create");
    socket
        .bind("0.0.0.0:0".parse().unwrap())
        .wait(&p)
        .expect("bind");
    let before = sim.stats();
    let mut big =
        Buffer::with_capacity(ConnectionSocket::<NoEvents>::MAX_CONNECT_DATA + 1).unwrap();
    big.set_len(big.capacity());
    let request = socket.connect_with_data("10.0.0.2:80".parse().unwrap(), big);
    assert!(request.is_complete(), "refused without a provider call");
    let (r, buffer) = request.wait(&p);
    assert_eq!(r, Err(Error::BUFFER_OVERFLOW));
    assert_eq!(sim.stats().irps_completed, before.irps_completed);
    drop(buffer);

    for request in [
        socket.close(),
        accepted.close(),
        listener.close(),
        connection.close(),
    ] {
        request.wait(&p).expect("close");
    }
    common::teardown(&p, registration, provider);
    sim.finish();
}
