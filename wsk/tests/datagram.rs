//! Datagram sockets and their receive-from events through the simulated
//! provider.

mod common;
use common::{DatagramLog, passive, setup, teardown};

use std::sync::Mutex;
use std::time::Duration;

use wsk::AddressFamily;
use wsk::events::{
    DatagramAction, DatagramEvents, DatagramIndication, EventContext, NoDatagramEvents,
    RetainedDatagrams,
};
use wsk::udp::{DatagramFlags, DatagramSocket};
use wsk::{Buffer, Error, block_on};
use wsk_sim::{EventKind, Irql, Routine, Sim};
use wsk_sys as sys;

/// Control information, when the provider gives some (the adversary's
/// `control-info`), is one `IP_PKTINFO`/`IPV6_PKTINFO` object naming the
/// address the datagram arrived on.
fn check_pktinfo(control: &[u8], local: std::net::SocketAddr) {
    if control.is_empty() {
        return;
    }
    let header = size_of::<sys::CMSGHDR>();
    let len = usize::from_ne_bytes(control[..8].try_into().unwrap());
    let level = i32::from_ne_bytes(control[8..12].try_into().unwrap());
    let kind = u32::from_ne_bytes(control[12..16].try_into().unwrap());
    let data = &control[sys::CMSG_LEN(0)..len];
    assert!(len >= header && len <= control.len());
    match local.ip() {
        std::net::IpAddr::V4(ip) => {
            assert_eq!((level, kind), (sys::IPPROTO_IP, sys::IP_PKTINFO));
            assert_eq!(data[..4], ip.octets());
        }
        std::net::IpAddr::V6(ip) => {
            assert_eq!((level, kind), (sys::IPPROTO_IPV6, sys::IPV6_PKTINFO));
            assert_eq!(data[..16], ip.octets());
        }
    }
}

fn round_trip(local: &str, peer_addr: &str) {
    let sim = Sim::start();
    let peer = sim.peer_udp(peer_addr);
    let p = passive();
    let (registration, provider) = setup(&p);

    let socket = block_on(
        &p,
        wsk::udp::bind(&provider, local.parse().unwrap(), NoDatagramEvents),
    )
    .expect("open");
    assert!(socket.is_bound());
    let bound = socket.local_addr().wait(&p).expect("local address");
    assert_eq!(bound, local.parse().unwrap());

    // Every byte value, both ways.
    let payload: Vec<u8> = (0..=255u8).collect();
    let (sent, buffer) = socket
        .send_to(
            Buffer::from_slice(&payload).unwrap(),
            peer_addr.parse().unwrap(),
        )
        .wait(&p);
    assert_eq!(sent, Ok(256));
    assert_eq!(buffer.as_slice(), &payload[..], "the buffer comes back");
    drop(buffer);
    let (from, data) = peer.recv_from();
    assert_eq!(from, bound);
    assert_eq!(data, payload);

    let reply: Vec<u8> = payload.iter().rev().copied().collect();
    peer.send_to(local, &reply);
    let (received, buffer) = socket
        .receive_from(Buffer::with_capacity(512).unwrap())
        .wait(&p);
    let received = received.expect("receive_from");
    assert_eq!(received.len(), 256);
    assert_eq!(received.peer_addr(), peer.local_addr());
    assert_eq!(received.flags(), DatagramFlags::empty());
    check_pktinfo(received.control_info(), bound);
    assert_eq!(buffer.as_slice(), &reply[..]);
    drop(buffer);

    // A datagram larger than the buffer is truncated and says so.
    peer.send_to(local, b"0123456789");
    let (received, buffer) = socket
        .receive_from(Buffer::with_capacity(4).unwrap())
        .wait(&p);
    let received = received.expect("truncated receive_from");
    assert_eq!(received.len(), 4);
    assert!(received.flags().is_truncated());
    assert_eq!(buffer.as_slice(), b"0123");
    drop(buffer);

    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn send_to_and_receive_from_round_trip_ipv4() {
    round_trip("10.0.0.1:5000", "10.0.0.2:53");
}

#[test]
fn send_to_and_receive_from_round_trip_ipv6() {
    round_trip("[fd00::1]:5000", "[fd00::2]:53");
}

#[test]
fn wildcard_bind_gets_a_port() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(&provider, "0.0.0.0:0".parse().unwrap(), NoDatagramEvents),
    )
    .expect("open");
    let local = socket.local_addr().wait(&p).expect("local address");
    assert_ne!(local.port(), 0, "{local}");
    drop(socket); // closes in the background
    sim.settle();
    teardown(&p, registration, provider);
    sim.finish();
}

/// Records every datagram a receive-from event indicated, and whether the
/// context offered a `Dispatch` token.
#[derive(Default)]
struct Recorder {
    seen: DatagramLog,
    dispatch: Mutex<Vec<(bool, bool)>>,
}

#[wsk::vtable]
impl DatagramEvents for Recorder {
    fn on_receive_from(
        &self,
        cx: &EventContext<'_>,
        data: Option<DatagramIndication<'_>>,
    ) -> DatagramAction {
        let Some(data) = data else {
            return DatagramAction::Accept;
        };
        self.dispatch.lock().unwrap().push((
            cx.at_dispatch().is_some(),
            data.flags().contains(DatagramFlags::AT_DISPATCH_LEVEL),
        ));
        for d in &data {
            // Control information, when the provider gives some, is whole
            // CMSGHDR objects.
            let control = d.control_info();
            assert_eq!(control.len(), d.control_info_len());
            if !control.is_empty() {
                let header = size_of::<sys::CMSGHDR>();
                assert!(control.len() >= header);
                let len = usize::from_ne_bytes(control[..8].try_into().unwrap());
                assert!(len >= header && len <= control.len(), "cmsg_len {len}");
            }
            // Where every piece is mapped, the pieces are the bytes.
            if let (Ok(segments), Ok(bytes)) = (d.segments(), d.to_buffer()) {
                let joined: Vec<u8> = segments.flatten().copied().collect();
                assert_eq!(joined, bytes.as_slice());
            }
        }
        self.seen.record(data)
    }
}

fn receive_from_events(irql: Irql) {
    let sim = Sim::start();
    sim.set_event_irql(irql);
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6000".parse().unwrap(),
            Recorder::default(),
        ),
    )
    .expect("open");

    peer.send_to("10.0.0.1:6000", b"first");
    peer.send_to("10.0.0.1:6000", b"second");
    sim.settle();

    let seen = socket.handler().seen.take();
    assert_eq!(
        seen,
        vec![
            (peer.local_addr(), b"first".to_vec()),
            (peer.local_addr(), b"second".to_vec()),
        ]
    );
    let at_dispatch = irql == Irql::Dispatch;
    for &(token, flag) in socket.handler().dispatch.lock().unwrap().iter() {
        assert_eq!(flag, at_dispatch);
        assert_eq!(
            token, at_dispatch,
            "Dispatch token only when the flag says so"
        );
    }
    let statuses = sim.stats().statuses(EventKind::ReceiveFrom);
    assert!(!statuses.is_empty());
    // Accepted, or retained where a piece could not be mapped yet.
    assert!(
        statuses
            .iter()
            .all(|&s| s == sys::STATUS_SUCCESS || s == sys::STATUS_PENDING),
        "{statuses:?}"
    );

    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn receive_from_events_at_passive() {
    receive_from_events(Irql::Passive);
}

#[test]
fn receive_from_events_at_dispatch() {
    receive_from_events(Irql::Dispatch);
}

#[derive(Default)]
struct Keeper {
    held: Mutex<Vec<RetainedDatagrams>>,
}

#[wsk::vtable]
impl DatagramEvents for Keeper {
    fn on_receive_from(
        &self,
        _: &EventContext<'_>,
        data: Option<DatagramIndication<'_>>,
    ) -> DatagramAction {
        if let Some(retained) = data.and_then(DatagramIndication::retain) {
            self.held.lock().unwrap().push(retained);
        }
        DatagramAction::Accept
    }
}

#[test]
fn receive_from_indications_can_be_retained_and_released() {
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6001".parse().unwrap(),
            Keeper::default(),
        ),
    )
    .expect("open");
    peer.send_to("10.0.0.1:6001", b"keep me");
    sim.settle();

    let retained: Vec<_> = socket.handler().held.lock().unwrap().drain(..).collect();
    assert_eq!(retained.len(), 1);
    assert_eq!(retained[0].count(), 1);
    let (from, bytes) = retained[0]
        .with_datagrams(|mut datagrams| {
            let datagram = datagrams.next().unwrap();
            (datagram.peer_addr(), common::read_datagram(&datagram))
        })
        .expect("socket open");
    assert_eq!(from, Ok(peer.local_addr()));
    assert_eq!(bytes, b"keep me");
    assert_eq!(
        sim.stats().statuses(EventKind::ReceiveFrom),
        vec![sys::STATUS_PENDING]
    );

    // Closing waits for the release; the retained list counts as a handle.
    assert_eq!(socket.close().wait(&p), Err(Error::INVALID_DEVICE_STATE));
    drop(provider);
    assert_eq!(registration.live_handles(), 1);
    drop(retained); // WskRelease, then the deferred close
    sim.settle();
    registration.deregister(&p).expect("all released");
    sim.finish();
}

#[test]
fn refused_datagrams_go_to_the_next_receive_from() {
    struct Refuser;
    #[wsk::vtable]
    impl DatagramEvents for Refuser {
        fn on_receive_from(
            &self,
            _: &EventContext<'_>,
            _: Option<DatagramIndication<'_>>,
        ) -> DatagramAction {
            DatagramAction::Refuse
        }
    }
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(&provider, "10.0.0.1:6002".parse().unwrap(), Refuser),
    )
    .expect("open");
    peer.send_to("10.0.0.1:6002", b"refused");
    sim.settle();
    assert_eq!(
        sim.stats().statuses(EventKind::ReceiveFrom),
        vec![sys::STATUS_DATA_NOT_ACCEPTED]
    );

    let (received, buffer) = socket
        .receive_from(Buffer::with_capacity(64).unwrap())
        .wait(&p);
    assert_eq!(received.unwrap().peer_addr(), peer.local_addr());
    assert_eq!(buffer.as_slice(), b"refused");
    drop(buffer);

    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn send_messages_sends_each_buffer_as_a_datagram() {
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6003".parse().unwrap(),
            NoDatagramEvents,
        ),
    )
    .expect("open");
    let remote = "10.0.0.2:53".parse().unwrap();
    let datagrams = || {
        vec![
            Buffer::from_slice(b"one").unwrap(),
            Buffer::from_slice(b"two!").unwrap(),
            Buffer::from_slice(b"three").unwrap(),
        ]
    };

    // The simulated Windows is current: WskSendMessages exists.
    assert!(
        provider
            .windows_version()
            .at_least(wsk::provider::WindowsVersion::WINDOWS_8)
    );
    let (sent, buffers) = socket.send_messages(datagrams(), remote).wait(&p);
    assert_eq!(sent, Ok(12));
    assert_eq!(buffers.len(), 3, "the buffers come back");
    for expected in [&b"one"[..], b"two!", b"three"] {
        let (from, data) = peer.recv_from();
        assert_eq!(from, "10.0.0.1:6003".parse().unwrap());
        assert_eq!(data, expected);
    }
    assert!(peer.try_recv_from().is_none());

    // A provider failure returns them too.
    sim.fail_next(Routine::WskSendMessages, sys::STATUS_INSUFFICIENT_RESOURCES);
    let (sent, buffers) = socket.send_messages(buffers, remote).wait(&p);
    assert_eq!(sent, Err(Error::INSUFFICIENT_RESOURCES));
    assert_eq!(buffers[2].as_slice(), b"three");
    drop(buffers);

    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn bad_input_is_refused_without_calling_the_provider() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let remote = "10.0.0.2:53".parse().unwrap();

    // Created but not bound: sending, receiving and events are refused.
    let socket = DatagramSocket::new(&provider, AddressFamily::V4, NoDatagramEvents)
        .wait(&p)
        .expect("create");
    assert!(!socket.is_bound());
    let (sent, buffer) = socket
        .send_to(Buffer::from_slice(b"early").unwrap(), remote)
        .wait(&p);
    assert_eq!(sent, Err(Error::ADDRESS_NOT_ASSOCIATED));
    assert_eq!(buffer.as_slice(), b"early");
    let (received, buffer) = socket.receive_from(buffer).wait(&p);
    assert_eq!(received.err(), Some(Error::ADDRESS_NOT_ASSOCIATED));
    drop(buffer);
    let (sent, buffers) = socket
        .send_messages(vec![Buffer::from_slice(b"x").unwrap()], remote)
        .wait(&p);
    assert_eq!(sent, Err(Error::ADDRESS_NOT_ASSOCIATED));
    assert_eq!(buffers.len(), 1);
    drop(buffers);

    socket
        .bind("10.0.0.1:6004".parse().unwrap())
        .wait(&p)
        .expect("bind");
    // An empty buffer, an empty list, a list with an empty buffer.
    let mut empty = Buffer::with_capacity(8).unwrap();
    empty.clear();
    let (sent, _) = socket.send_to(empty, remote).wait(&p);
    assert_eq!(sent, Err(Error::INVALID_PARAMETER));
    let (sent, _) = socket.send_messages(Vec::new(), remote).wait(&p);
    assert_eq!(sent, Err(Error::INVALID_PARAMETER));
    let (sent, _) = socket
        .send_messages(
            vec![
                Buffer::from_slice(b"x").unwrap(),
                Buffer::with_capacity(1).unwrap(),
            ],
            remote,
        )
        .wait(&p);
    assert_eq!(sent, Err(Error::INVALID_PARAMETER));
    // A remote of the other family: refused without a provider call (the
    // DDI wants the SOCKADDR type of the socket's family; M-14).
    let (sent, _) = socket
        .send_to(
            Buffer::from_slice(b"v6").unwrap(),
            "[fd00::2]:53".parse().unwrap(),
        )
        .wait(&p);
    assert_eq!(sent, Err(Error::INVALID_ADDRESS_COMPONENT));
    assert_eq!(
        sim.stats().sockets_created,
        1,
        "one socket, no other created"
    );

    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn open_failure_closes_the_socket() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    sim.fail_next(Routine::WskBind, sys::STATUS_ADDRESS_ALREADY_EXISTS);
    let err = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6005".parse().unwrap(),
            Recorder::default(),
        ),
    )
    .expect_err("bind fails");
    assert_eq!(err, Error::ADDRESS_ALREADY_EXISTS);
    assert_eq!(sim.open_sockets(), 0);
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn dropping_a_pending_receive_from_cancels_it() {
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6006".parse().unwrap(),
            NoDatagramEvents,
        ),
    )
    .expect("open");

    let pending = socket.receive_from(Buffer::with_capacity(64).unwrap());
    let pending = pending
        .wait_timeout(&p, Duration::from_millis(20))
        .expect_err("no datagram yet");
    drop(pending);
    sim.settle();
    let stats = sim.stats();
    assert!(
        stats.cancel_calls >= 1 && stats.irps_cancelled >= 1,
        "{stats:?}"
    );

    // The socket still works afterwards.
    peer.send_to("10.0.0.1:6006", b"after");
    let (received, buffer) = socket
        .receive_from(Buffer::with_capacity(64).unwrap())
        .wait(&p);
    assert_eq!(received.unwrap().len(), 5);
    assert_eq!(buffer.as_slice(), b"after");
    drop(buffer);

    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn a_receive_from_that_ignores_cancel_is_freed_when_the_socket_closes() {
    let sim = Sim::start();
    sim.set_ignore_cancel(true); // like Wine's netio.sys
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6007".parse().unwrap(),
            NoDatagramEvents,
        ),
    )
    .expect("open");

    sim.hang_next(Routine::WskReceiveFrom);
    let pending = socket
        .receive_from(Buffer::with_capacity(64).unwrap())
        .wait_timeout(&p, Duration::from_millis(20))
        .expect_err("hangs");
    drop(pending);
    socket.close().wait(&p).unwrap();
    sim.settle();
    assert!(sim.stats().irps_cancelled >= 1);

    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn send_messages_is_refused_before_windows_8() {
    let sim = Sim::start();
    // Windows 7 SP1: the datagram table ends before WskSendMessages.
    sim.set_windows_version(6, 1, 7601);
    let p = passive();
    let (registration, provider) = setup(&p);
    assert_eq!(
        provider.windows_version(),
        wsk::provider::WindowsVersion::new(6, 1, 7601)
    );
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6010".parse().unwrap(),
            NoDatagramEvents,
        ),
    )
    .expect("open");
    let before = sim.stats();
    let (sent, buffers) = socket
        .send_messages(
            vec![Buffer::from_slice(b"old").unwrap()],
            "10.0.0.2:53".parse().unwrap(),
        )
        .wait(&p);
    assert_eq!(sent, Err(Error::NOT_SUPPORTED));
    assert_eq!(buffers[0].as_slice(), b"old", "the buffers come back");
    let after = sim.stats();
    assert_eq!(
        (after.irps_completed, after.pool_allocations),
        (before.irps_completed, before.pool_allocations),
        "the provider was not called (no IRP)"
    );
    drop(buffers);
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn fixed_remote_and_send_to_addresses() {
    let sim = Sim::start();
    let a = sim.peer_udp("10.0.0.2:53");
    let b = sim.peer_udp("10.0.0.3:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let local = "10.0.0.1:5310";
    let socket = block_on(
        &p,
        wsk::udp::bind(&provider, local.parse().unwrap(), NoDatagramEvents),
    )
    .expect("open");
    let send = |data: &[u8]| socket.send(Buffer::from_slice(data).unwrap()).wait(&p).0;
    let receive = || {
        let (received, buffer) = socket
            .receive_from(Buffer::with_capacity(64).unwrap())
            .wait(&p);
        (
            received.expect("receive_from").peer_addr(),
            buffer.as_slice().to_vec(),
        )
    };

    // No fixed destination yet: refused without calling the provider.
    assert_eq!(send(b"x"), Err(Error::INVALID_DEVICE_STATE));

    // SIO_WSK_SET_SENDTO_ADDRESS: sends go to `a`, datagrams come from anyone.
    socket
        .set_destination(Some(a.local_addr()))
        .wait(&p)
        .expect("set sendto address");
    assert_eq!(send(b"to a"), Ok(4));
    assert_eq!(a.recv_from().1, b"to a");
    b.send_to(local, b"from b");
    assert_eq!(receive(), (b.local_addr(), b"from b".to_vec()));

    // SIO_WSK_SET_REMOTE_ADDRESS: sends go to `b`, and only `b` is heard.
    socket
        .connect(b.local_addr())
        .wait(&p)
        .expect("set remote address");
    assert_eq!(send(b"to b"), Ok(4));
    assert_eq!(b.recv_from().1, b"to b");
    a.send_to(local, b"dropped");
    b.send_to(local, b"kept");
    assert_eq!(receive(), (b.local_addr(), b"kept".to_vec()));
    // send_to still overrides the fixed address.
    let (overridden, _) = socket
        .send_to(Buffer::from_slice(b"override").unwrap(), a.local_addr())
        .wait(&p);
    assert_eq!(overridden, Ok(8));
    assert_eq!(a.recv_from().1, b"override");

    // DG-SND-2 (M-25): clearing the remote address leaves the fixed
    // destination, so `send` goes to `a` again; datagrams from anyone are
    // heard again.
    socket.disconnect().wait(&p).expect("clear");
    assert_eq!(send(b"to a again"), Ok(10));
    assert_eq!(a.recv_from().1, b"to a again");
    a.send_to(local, b"heard again");
    assert_eq!(receive(), (a.local_addr(), b"heard again".to_vec()));
    // Both cleared: `send` has nowhere to go.
    socket.set_destination(None).wait(&p).expect("clear");
    assert_eq!(send(b"x"), Err(Error::INVALID_DEVICE_STATE));

    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn datagram_sockets_take_typed_options() {
    use wsk::options::{ReceiveBuffer, ReuseAddress};
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        DatagramSocket::new(&provider, AddressFamily::V4, NoDatagramEvents),
    )
    .unwrap();
    socket
        .set::<ReuseAddress>(true)
        .wait(&p)
        .expect("before bind");
    socket.bind("0.0.0.0:0".parse().unwrap()).wait(&p).unwrap();
    assert_eq!(
        socket.set::<ReuseAddress>(true).wait(&p).err(),
        Some(Error::INVALID_DEVICE_STATE),
        "SO_REUSEADDR must precede the bind"
    );
    socket.set::<ReceiveBuffer>(32 * 1024).wait(&p).unwrap();
    assert_eq!(socket.get::<ReceiveBuffer>().wait(&p), Ok(32 * 1024));
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

/// Refuses every indication; counts them.
#[derive(Default)]
struct Refuser(Mutex<Vec<usize>>);

#[wsk::vtable]
impl DatagramEvents for Refuser {
    fn on_receive_from(
        &self,
        _: &EventContext<'_>,
        data: Option<DatagramIndication<'_>>,
    ) -> DatagramAction {
        self.0
            .lock()
            .unwrap()
            .push(data.as_ref().map_or(0, DatagramIndication::count));
        DatagramAction::Refuse
    }
}

/// DG-EV-4 (M-03): a refused receive-from indication disables the event
/// until `enable_events`: `events_enabled()` says so, no indication comes
/// meanwhile (the datagrams wait), and enabling again indicates them.
#[test]
fn a_refusal_disables_receive_from_events_until_enabled_again() {
    let sim = Sim::with_config({
        let mut cfg = wsk_sim::Config::default();
        cfg.adversary = Some(
            wsk_sim::Adversary::none(3).with(wsk_sim::Behaviour::ReceiveFromDisabledOnRefusal),
        );
        cfg
    });
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6020".parse().unwrap(),
            Refuser::default(),
        ),
    )
    .expect("open");
    peer.send_to("10.0.0.1:6020", b"one");
    sim.settle();
    assert_eq!(*socket.handler().0.lock().unwrap(), vec![1]);
    assert!(!socket.events_enabled(), "the refusal disabled the event");
    peer.send_to("10.0.0.1:6020", b"two");
    sim.settle();
    assert_eq!(socket.handler().0.lock().unwrap().len(), 1, "disabled");
    socket.enable_events().expect("enable again");
    sim.settle();
    let seen = socket.handler().0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "indicated again once enabled: {seen:?}");
    assert_eq!(seen[1], 2, "both kept datagrams");
    // The refusal disabled it again; the datagrams wait for a request.
    assert!(!socket.events_enabled());
    let (got, buffer) = socket
        .receive_from(Buffer::with_capacity(16).unwrap())
        .wait(&p);
    got.expect("receive_from");
    assert_eq!(buffer.as_slice(), b"one");
    drop(buffer);
    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

/// DG-EV-5 (M-03): a statically enabled receive-from event stays enabled
/// after a refusal.
#[test]
fn a_refusal_leaves_a_static_receive_from_event_enabled() {
    let sim = Sim::with_config({
        let mut cfg = wsk_sim::Config::default();
        cfg.adversary = Some(
            wsk_sim::Adversary::none(3).with(wsk_sim::Behaviour::ReceiveFromDisabledOnRefusal),
        );
        cfg
    });
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    provider
        .set_static_events(wsk::events::StaticEvents::RECEIVE_FROM)
        .expect("static events");
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:6021".parse().unwrap(),
            Refuser::default(),
        ),
    )
    .expect("open");
    peer.send_to("10.0.0.1:6021", b"one");
    sim.settle();
    assert!(socket.events_enabled(), "static: still enabled");
    peer.send_to("10.0.0.1:6021", b"two");
    sim.settle();
    assert!(
        socket.handler().0.lock().unwrap().len() >= 2,
        "indications go on"
    );
    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}
