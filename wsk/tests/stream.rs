//! Stream sockets (`WSK_FLAG_STREAM_SOCKET`) and the Windows-version gates,
//! through the simulated provider.

mod common;
use common::{StreamLog, TIMEOUT, passive, setup, teardown};

use std::sync::Mutex;
use std::time::Duration;

use wsk::AddressFamily;
use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext, NoEvents, NoListenEvents};
use wsk::provider::{NameInfoFlags, WindowsVersion};
use wsk::tcp::StreamSocket;
use wsk::{Buffer, Error, Registration, block_on, block_on_timeout};
use wsk_sim::Sim;
use wsk_sys as sys;

#[derive(Default)]
struct Disconnects(Mutex<Vec<DisconnectFlags>>);

#[wsk::vtable]
impl ConnectionEvents for Disconnects {
    fn on_disconnect(&self, _cx: &EventContext<'_>, flags: DisconnectFlags) {
        self.0.lock().unwrap().push(flags);
    }
}

#[test]
fn the_windows_version_is_recorded_at_registration() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    // wsk-sim's default: a current Windows 11.
    let current = provider.windows_version();
    assert_eq!(current.major, 10);
    assert!(current.at_least(WindowsVersion::WINDOWS_10_1803));
    // Changing the simulated version later does not change a registration's.
    sim.set_windows_version(6, 0, 6002);
    assert_eq!(provider.windows_version(), current);
    let again = registration
        .capture(&p, Some(TIMEOUT))
        .expect("second capture");
    assert_eq!(again.windows_version(), current);
    drop(again);
    teardown(&p, registration, provider);

    // A new registration sees the new version, also when captured at
    // DISPATCH_LEVEL (where RtlGetVersion may not be called).
    let registration = Registration::register(&p).expect("register");
    let provider = sim.at_irql(wsk_sim::Irql::Dispatch, || {
        // SAFETY: `at_irql` runs this at the simulated DISPATCH_LEVEL.
        let cx = unsafe { wsk::irql::AtMostDispatch::new_unchecked() };
        registration.try_capture(&cx).expect("try_capture")
    });
    assert_eq!(provider.windows_version(), WindowsVersion::new(6, 0, 6002));
    assert_eq!(provider.windows_version().to_string(), "6.0.6002");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn version_ordering() {
    use WindowsVersion as V;
    assert!(V::WINDOWS_7.at_least(V::VISTA));
    assert!(!V::VISTA.at_least(V::WINDOWS_7));
    assert!(V::new(6, 3, 9600).at_least(V::WINDOWS_8));
    assert!(!V::new(6, 3, 9600).at_least(V::WINDOWS_10_1703));
    assert!(!V::new(10, 0, 14393).at_least(V::WINDOWS_10_1703));
    assert!(V::new(10, 0, 15063).at_least(V::WINDOWS_10_1703));
    assert!(V::new(11, 0, 0).at_least(V::WINDOWS_10_1803));
    assert!(V::WINDOWS_10_1703 < V::WINDOWS_10_1803);
}

#[test]
fn stream_socket_as_client_connects_sends_receives_and_closes() {
    let sim = Sim::start();
    let peer = sim.peer_listen("10.0.0.2:7000");
    let p = passive();
    let (registration, provider) = setup(&p);

    let socket =
        connect_stream(&p, &provider, "10.0.0.2:7000", Disconnects::default()).expect("connect");
    let conn = peer.accept();

    let (sent, buffer) = socket.send(Buffer::from_slice(b"hello").unwrap()).wait(&p);
    assert_eq!(sent, Ok(5));
    assert_eq!(conn.recv_exact(5), b"hello");

    conn.send(b"world!");
    let mut buffer = buffer;
    buffer.clear();
    let mut got = Vec::new();
    while got.len() < 6 {
        let (received, b) = socket.receive(buffer).wait(&p);
        let n = received.expect("receive");
        assert!(n > 0);
        got.extend_from_slice(&b.as_slice()[..n]);
        buffer = b;
    }
    assert_eq!(got, b"world!");

    let remote = socket.peer_addr().wait(&p).expect("remote address");
    assert_eq!(remote, "10.0.0.2:7000".parse().unwrap());

    // The connection callbacks installed through WSK_CLIENT_STREAM_DISPATCH
    // run with the stream socket's context.
    conn.close();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while socket.handler().0.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no disconnect event");
        sim.settle();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(socket.handler().0.lock().unwrap()[0].is_graceful());
    assert!(socket.is_peer_closed());

    let (done, _) = socket.disconnect(None).wait(&p);
    done.expect("disconnect");
    socket.close().wait(&p).expect("close");
    drop(buffer);
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn stream_socket_step_by_step_with_retained_indication() {
    // Receive events on a stream socket: releasing a retained indication
    // must call the stream table's WskRelease (through the connection view).
    #[derive(Default)]
    struct Retainer(StreamLog);
    #[wsk::vtable]
    impl ConnectionEvents for Retainer {
        fn on_receive(
            &self,
            _cx: &EventContext<'_>,
            data: Option<wsk::events::Indication<'_>>,
        ) -> wsk::events::ReceiveAction {
            data.map_or(wsk::events::ReceiveAction::Accept, |d| self.0.retain(d))
        }
    }

    let sim = Sim::start();
    let peer = sim.peer_listen("10.0.0.2:7001");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = StreamSocket::new(&provider, AddressFamily::V4, Retainer::default())
        .wait(&p)
        .expect("create");
    socket
        .bind("0.0.0.0:0".parse().unwrap())
        .wait(&p)
        .expect("bind");
    socket
        .connect("10.0.0.2:7001".parse().unwrap())
        .wait(&p)
        .expect("connect");
    let socket = socket.into_connection();
    socket.enable_events().expect("enable events");
    let conn = peer.accept();
    conn.send(b"kept");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while socket.handler().0.len() < 4 {
        assert!(std::time::Instant::now() < deadline, "no receive event");
        sim.settle();
        std::thread::sleep(Duration::from_millis(1));
    }
    // However the provider split the bytes, each piece was retained; the
    // log reads them and drops the retained lists (WskRelease).
    assert!(socket.handler().0.retained() >= 1);
    assert_eq!(socket.handler().0.take(), b"kept");
    socket.close().wait(&p).expect("close");
    let _ = conn;
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn stream_socket_as_listener_accepts_by_request() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);

    let listener = listen_stream_by_request(&p, &provider, "10.0.0.1:8000").expect("listen");
    assert_eq!(
        listener.local_addr().wait(&p).expect("local address"),
        "10.0.0.1:8000".parse().unwrap()
    );

    let accept = listener.accept(Disconnects::default());
    let peer = sim.peer_connect("10.0.0.1:8000").expect("peer connects");
    let (connection, remote) = accept.wait(&p).expect("accept");
    assert_eq!(remote, peer.local_addr());

    // The accepted socket (a stream socket in wsk-sim) sends and receives.
    let (sent, buffer) = connection
        .send(Buffer::from_slice(b"ping").unwrap())
        .wait(&p);
    assert_eq!(sent, Ok(4));
    assert_eq!(peer.recv_exact(4), b"ping");
    peer.send(b"pong");
    let (received, buffer) = connection.receive(buffer).wait(&p);
    let n = received.expect("receive");
    assert_eq!(&buffer.as_slice()[..n], &b"pong"[..n]);

    // A pending accept completes with CANCELLED when the listener closes.
    let pending = listener.accept(NoEvents);
    listener.close().wait(&p).expect("close listener");
    assert_eq!(pending.wait(&p).err(), Some(Error::CANCELLED));

    connection.close().wait(&p).expect("close connection");
    drop(buffer);
    let _ = peer;
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn listening_twice_is_refused_and_hands_the_socket_back() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = StreamSocket::new(&provider, AddressFamily::V4, NoEvents)
        .wait(&p)
        .expect("create");
    // Not bound: the provider refuses WskListen.
    let Err((error, socket)) = socket.listen() else {
        panic!("listening unbound succeeded")
    };
    assert_eq!(error, Error::INVALID_DEVICE_STATE);
    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn stream_sockets_are_refused_before_windows_10_1703() {
    let sim = Sim::start();
    // Windows 10 1607: no stream sockets yet.
    sim.set_windows_version(10, 0, 14393);
    let p = passive();
    let (registration, provider) = setup(&p);
    let before = sim.stats();
    let created = StreamSocket::new(&provider, AddressFamily::V4, NoEvents).wait(&p);
    assert_eq!(created.err(), Some(Error::NOT_SUPPORTED));
    let listening = block_on(
        &p,
        wsk::tcp::listen_stream(
            &provider,
            "10.0.0.1:8001".parse().unwrap(),
            NoListenEvents::<NoEvents>::new(),
        ),
    );
    assert_eq!(listening.err(), Some(Error::NOT_SUPPORTED));
    assert_eq!(
        sim.stats().sockets_created,
        before.sockets_created,
        "the provider was not called"
    );
    assert_eq!(registration.live_handles(), 1, "only the provider");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn stream_sockets_disabled_in_the_provider_are_not_supported() {
    let sim = Sim::start();
    sim.set_stream_sockets(false);
    let p = passive();
    let (registration, provider) = setup(&p);
    let created = StreamSocket::new(&provider, AddressFamily::V4, NoEvents).wait(&p);
    assert_eq!(created.err(), Some(Error::NOT_SUPPORTED));
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn name_resolution_is_refused_on_vista() {
    let sim = Sim::start();
    sim.add_name("example.test", &["10.0.0.9"]);
    // Windows Vista SP2: the provider table ends after WskControlClient.
    sim.set_windows_version(6, 0, 6002);
    let p = passive();
    let (registration, provider) = setup(&p);
    // WskGetAddressInfo and WskGetNameInfo are Windows 7 fields: the
    // provider table is not read past its Vista end: NOT_SUPPORTED, like
    // the other version gates.
    let resolved = provider.resolve(&p, "example.test", None, Some(AddressFamily::V4));
    assert_eq!(resolved.err(), Some(Error::NOT_SUPPORTED));
    let name = provider.name_info(&p, "10.0.0.9:80".parse().unwrap(), NameInfoFlags::empty());
    assert_eq!(name.err(), Some(Error::NOT_SUPPORTED));
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn dual_stack_ipv6_listener_accepts_ipv4_peers_as_v4_mapped() {
    use wsk::events::NoListenEvents;
    use wsk::options::Ipv6Only;
    use wsk::tcp::ListenSocket;

    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);

    // IPV6_V6ONLY = 0 before the bind: the [::] wildcard takes IPv4 too.
    let listener = ListenSocket::new(
        &provider,
        AddressFamily::V6,
        NoListenEvents::<NoEvents>::new(),
    )
    .wait(&p)
    .expect("create");
    listener.set::<Ipv6Only>(false).wait(&p).expect("Ipv6Only");
    assert!(!listener.get::<Ipv6Only>().wait(&p).expect("read back"));
    listener
        .bind("[::]:9100".parse().unwrap())
        .wait(&p)
        .expect("bind");
    let accept = listener.accept(NoEvents);
    let peer = sim
        .peer_connect("10.0.0.1:9100")
        .expect("IPv4 peer connects");
    let (connection, remote) = accept.wait(&p).expect("accept");
    let std::net::SocketAddr::V4(peer_v4) = peer.local_addr() else {
        panic!("the peer is IPv4")
    };
    let mapped = std::net::SocketAddr::new(peer_v4.ip().to_ipv6_mapped().into(), peer_v4.port());
    assert_eq!(remote, mapped, "remote reported as ::ffff:a.b.c.d");
    assert_eq!(connection.peer_addr().wait(&p).expect("remote"), mapped);
    assert_eq!(
        connection.local_addr().wait(&p).expect("local"),
        "[::ffff:10.0.0.1]:9100".parse().unwrap()
    );
    let (sent, buffer) = connection
        .send(Buffer::from_slice(b"v4 over v6").unwrap())
        .wait(&p);
    assert_eq!(sent, Ok(10));
    assert_eq!(peer.recv_exact(10), b"v4 over v6");
    connection.close().wait(&p).expect("close connection");
    listener.close().wait(&p).expect("close listener");
    drop(buffer);
    let _ = peer;
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn ipv6_only_listener_refuses_ipv4_peers() {
    use wsk::events::NoListenEvents;

    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    // The default, as on Windows: IPV6_V6ONLY = 1.
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "[::]:9101".parse().unwrap(),
            NoListenEvents::<NoEvents>::new(),
        ),
    )
    .expect("open");
    assert!(sim.peer_connect("10.0.0.1:9101").is_err());
    // IPv6 peers still reach it.
    let accept = listener.accept(NoEvents);
    let peer = sim
        .peer_connect("[fd00::1]:9101")
        .expect("IPv6 peer connects");
    let (connection, remote) = accept.wait(&p).expect("accept");
    assert_eq!(remote, peer.local_addr());
    connection.close().wait(&p).expect("close connection");
    listener.close().wait(&p).expect("close listener");
    let _ = peer;
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn dual_stack_stream_listener_accepts_ipv4_peers() {
    use wsk::options::Ipv6Only;

    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = StreamSocket::new(&provider, AddressFamily::V6, NoEvents)
        .wait(&p)
        .expect("create");
    socket.set::<Ipv6Only>(false).wait(&p).expect("Ipv6Only");
    socket
        .bind("[::]:9102".parse().unwrap())
        .wait(&p)
        .expect("bind");
    let listener = socket.listen().map_err(|(e, _)| e).expect("listen");
    let accept = listener.accept(NoEvents);
    let peer = sim
        .peer_connect("10.0.0.1:9102")
        .expect("IPv4 peer connects");
    let (connection, remote) = accept.wait(&p).expect("accept");
    let std::net::SocketAddr::V4(peer_v4) = peer.local_addr() else {
        panic!("the peer is IPv4")
    };
    assert_eq!(
        remote,
        std::net::SocketAddr::new(peer_v4.ip().to_ipv6_mapped().into(), peer_v4.port())
    );
    connection.close().wait(&p).expect("close connection");
    listener.close().wait(&p).expect("close listener");
    let _ = peer;
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn connection_sockets_work_on_windows_7_tables() {
    let sim = Sim::start();
    // Windows 7 SP1: connection tables end after WskRelease; the crate
    // reads them through a copy of the fields they have.
    sim.set_windows_version(6, 1, 7601);
    let peer = sim.peer_listen("10.0.0.2:7100");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(
            &provider,
            "10.0.0.2:7100".parse().unwrap(),
            Disconnects::default(),
        ),
    )
    .expect("connect");
    let conn = peer.accept();
    let (sent, buffer) = socket.send(Buffer::from_slice(b"win7").unwrap()).wait(&p);
    assert_eq!(sent, Ok(4));
    assert_eq!(conn.recv_exact(4), b"win7");
    conn.send(b"ok");
    let (received, buffer) = socket.receive(buffer).wait(&p);
    let n = received.expect("receive");
    assert_eq!(&buffer.as_slice()[..n], &b"ok"[..n]);
    socket.close().wait(&p).expect("close");
    drop(buffer);
    let _ = conn;
    teardown(&p, registration, provider);
    sim.finish();
}

#[derive(Default)]
struct StreamServer {
    accepted: Mutex<Vec<wsk::tcp::ConnectionSocket<Disconnects>>>,
    remotes: Mutex<Vec<std::net::SocketAddr>>,
}

#[wsk::vtable]
impl wsk::events::ListenEvents for StreamServer {
    type Connection = Disconnects;

    fn on_accept(
        &self,
        _: &EventContext<'_>,
        incoming: Option<wsk::events::Incoming<'_, Disconnects>>,
    ) {
        let Some(incoming) = incoming else { return };
        self.remotes
            .lock()
            .unwrap()
            .push(incoming.peer_addr().unwrap());
        let socket = incoming
            .accept(Disconnects::default())
            .expect("memory for the socket");
        self.accepted.lock().unwrap().push(socket);
    }
}

#[test]
fn stream_listener_runs_accept_events() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen_stream(
            &provider,
            "10.0.0.1:8010".parse().unwrap(),
            StreamServer::default(),
        ),
    )
    .expect("stream listener with accept events");
    let peer = sim.peer_connect("10.0.0.1:8010").expect("accepted");
    peer.close();
    sim.settle();
    let accepted: Vec<_> = listener
        .handler()
        .accepted
        .lock()
        .unwrap()
        .drain(..)
        .collect();
    assert_eq!(accepted.len(), 1);
    assert_eq!(listener.handler().remotes.lock().unwrap().len(), 1);
    // The accepted socket inherited the disconnect event.
    assert_eq!(accepted[0].handler().0.lock().unwrap().len(), 1);
    assert_eq!(
        sim.stats().statuses(wsk_sim::EventKind::Accept),
        vec![sys::STATUS_SUCCESS]
    );
    for socket in accepted {
        socket.close().wait(&p).unwrap();
    }
    listener.close().wait(&p).unwrap();

    // Before Windows 10 1703 no stream socket is created.
    sim.set_windows_version(6, 3, 9600);
    teardown(&p, registration, provider);
    let (registration, provider) = setup(&p);
    let old = block_on(
        &p,
        wsk::tcp::listen_stream(
            &provider,
            "10.0.0.1:8011".parse().unwrap(),
            StreamServer::default(),
        ),
    );
    assert_eq!(old.err(), Some(Error::NOT_SUPPORTED));
    teardown(&p, registration, provider);
    sim.finish();
}

/// A stream socket connected to `remote` (created, bound to the wildcard
/// address, connected), as a connection socket with its events enabled.
fn connect_stream<H: ConnectionEvents>(
    p: &wsk::irql::Passive<'_>,
    provider: &wsk::Provider,
    remote: &str,
    handler: H,
) -> Result<wsk::tcp::ConnectionSocket<H>, Error> {
    let remote: std::net::SocketAddr = remote.parse().unwrap();
    let family = AddressFamily::of(&remote);
    let socket = StreamSocket::new(provider, family, handler).wait(p)?;
    socket.bind(family.unspecified()).wait(p)?;
    socket.connect(remote).wait(p)?;
    let connection = socket.into_connection();
    connection.enable_events()?;
    Ok(connection)
}

/// A stream socket bound to `local` and listening (`WskListen`), accepting
/// by request.
fn listen_stream_by_request(
    p: &wsk::irql::Passive<'_>,
    provider: &wsk::Provider,
    local: &str,
) -> Result<wsk::tcp::StreamListener, Error> {
    let socket = StreamSocket::new(provider, AddressFamily::V4, NoEvents).wait(p)?;
    socket.bind(local.parse().unwrap()).wait(p)?;
    socket.listen().map_err(|(e, _socket)| e)
}

/// STR-2 (M-07): `WskListen` may stay pending until the first connection
/// (the adversary's `listen-pends`); neither `tcp::listen_stream` nor
/// `StreamSocket::listen` waits for it, and both take that first connection
/// (by accept event, by accept request).
#[test]
fn listening_does_not_wait_for_the_first_connection() {
    let sim = Sim::with_config({
        let mut cfg = wsk_sim::Config::default();
        cfg.adversary = Some(wsk_sim::Adversary::none(1).with(wsk_sim::Behaviour::ListenPends));
        cfg
    });
    let p = passive();
    let (registration, provider) = setup(&p);
    let server = StreamServer::default();
    let events = block_on_timeout(
        &p,
        wsk::tcp::listen_stream(&provider, "10.0.0.1:9200".parse().unwrap(), server),
        TIMEOUT,
    )
    .expect("listening before any connection");
    let socket = StreamSocket::new(&provider, AddressFamily::V4, NoEvents)
        .wait(&p)
        .expect("create");
    socket
        .bind("10.0.0.1:9201".parse().unwrap())
        .wait(&p)
        .expect("bind");
    let requests = socket.listen().map_err(|(e, _)| e).expect("listening");
    let accept = requests.accept(NoEvents);

    let first = sim.peer_connect("10.0.0.1:9200").expect("connected");
    let second = sim.peer_connect("10.0.0.1:9201").expect("connected");
    sim.settle();
    let by_event: Vec<_> = events
        .handler()
        .accepted
        .lock()
        .unwrap()
        .drain(..)
        .collect();
    assert_eq!(by_event.len(), 1, "accept event");
    let (accepted, _) = accept.wait(&p).expect("accept request");
    let _ = (first, second);
    accepted.close().wait(&p).expect("close");
    for socket in by_event {
        socket.close().wait(&p).expect("close");
    }
    events.close().wait(&p).expect("close");
    requests.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}
