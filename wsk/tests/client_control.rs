//! `WskControlClient`: static event callbacks, transport list change
//! notification, cached security descriptors and `SO_WSK_SECURITY`,
//! through the simulated provider.

mod common;
use common::{DatagramLog, TIMEOUT, passive, setup, teardown};

use wsk::AddressFamily;
use wsk::events::{
    DatagramAction, DatagramEvents, DatagramIndication, EventContext, NoDatagramEvents,
    NoListenEvents, StaticEvents,
};
use wsk::tcp::ListenSocket;
use wsk::udp::DatagramSocket;
use wsk::{Error, block_on};
use wsk_sim::Sim;

#[derive(Default)]
struct Recorder {
    seen: DatagramLog,
}

#[wsk::vtable]
impl DatagramEvents for Recorder {
    fn on_receive_from(
        &self,
        _cx: &EventContext<'_>,
        data: Option<DatagramIndication<'_>>,
    ) -> DatagramAction {
        data.map_or(DatagramAction::Accept, |d| self.seen.record(d))
    }
}

#[test]
fn static_events_are_set_before_any_socket_and_checked_against_handlers() {
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    assert_eq!(
        provider.set_static_events(StaticEvents::empty()),
        Err(Error::INVALID_PARAMETER)
    );
    provider
        .set_static_events(StaticEvents::RECEIVE_FROM)
        .expect("before any socket");
    // Once only.
    assert_eq!(
        provider.set_static_events(StaticEvents::RECEIVE_FROM),
        Err(Error::INVALID_DEVICE_STATE)
    );
    // A handler without on_receive_from cannot own a datagram socket now.
    let refused = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:5400".parse().unwrap(),
            NoDatagramEvents,
        ),
    );
    assert_eq!(refused.err(), Some(Error::INVALID_PARAMETER));
    // Listening sockets have no RECEIVE_FROM: unaffected.
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "10.0.0.1:5401".parse().unwrap(),
            NoListenEvents::<wsk::events::NoEvents>::new(),
        ),
    )
    .expect("listener");
    // The event is on without SO_WSK_EVENT_CALLBACK.
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:5400".parse().unwrap(),
            Recorder::default(),
        ),
    )
    .expect("a handler with the static event");
    peer.send_to("10.0.0.1:5400", b"static");
    sim.settle();
    assert_eq!(socket.handler().seen.take_bytes(), vec![b"static".to_vec()]);
    socket.close().wait(&p).unwrap();
    listener.close().wait(&p).unwrap();
    teardown(&p, registration, provider);

    // After a socket was created, it is too late (for every provider of
    // the registration).
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::udp::bind(
            &provider,
            "10.0.0.1:5402".parse().unwrap(),
            NoDatagramEvents,
        ),
    )
    .unwrap();
    let second = registration.capture(&p, Some(TIMEOUT)).unwrap();
    assert_eq!(
        second.set_static_events(StaticEvents::RECEIVE_FROM),
        Err(Error::INVALID_DEVICE_STATE)
    );
    drop(second);
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn transport_list_change_completes_on_change_and_cancels_on_drop() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let change = provider.transport_list_change();
    assert!(!change.is_complete());
    sim.change_transports();
    assert_eq!(change.wait(&p), Ok(()));
    let transports = provider.transports().unwrap();
    assert_eq!(transports.len(), 4);
    assert!(transports.iter().all(|t| t.is_stream() != t.is_datagram()));
    assert_eq!(
        format!("{:032X}", transports[0].provider_id()),
        "5753494D00014000800077736B2D7369",
        "the simulator's GUID, digits in text order"
    );

    // Dropping a pending notification cancels it; the IRP is freed.
    let pending = provider.transport_list_change();
    assert!(!pending.is_complete());
    drop(pending);
    sim.settle();
    sim.change_transports(); // nothing left to complete
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn cached_security_descriptors_are_released_on_drop_and_set_before_bind() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    // The simulated provider copies nothing; any valid address will do.
    let mut descriptor = [0u64; 4];
    // SAFETY: a readable buffer standing in for a SECURITY_DESCRIPTOR,
    // alive across the call.
    let cached = unsafe {
        provider.cache_security_descriptor(descriptor.as_mut_ptr().cast::<core::ffi::c_void>())
    }
    .expect("WSK_CACHE_SD");
    assert_eq!(sim.cached_security_descriptors(), 1);

    // SO_WSK_SECURITY before the bind, on a datagram and a listening socket.
    let socket = DatagramSocket::new(&provider, AddressFamily::V4, NoDatagramEvents)
        .wait(&p)
        .unwrap();
    socket
        .set_security(&cached)
        .wait(&p)
        .expect("SO_WSK_SECURITY");
    socket
        .bind("10.0.0.1:5410".parse().unwrap())
        .wait(&p)
        .unwrap();
    assert_eq!(
        socket.set_security(&cached).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    socket.close().wait(&p).unwrap();

    let listener = ListenSocket::new(
        &provider,
        AddressFamily::V4,
        NoListenEvents::<wsk::events::NoEvents>::new(),
    )
    .wait(&p)
    .unwrap();
    let clone = cached.clone();
    listener
        .set_security(&clone)
        .wait(&p)
        .expect("SO_WSK_SECURITY");
    listener
        .bind("10.0.0.1:5411".parse().unwrap())
        .wait(&p)
        .unwrap();
    assert_eq!(
        listener.set_security(&clone).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    listener.close().wait(&p).unwrap();

    // Released with the last clone.
    drop(cached);
    assert_eq!(sim.cached_security_descriptors(), 1);
    // One still held at deregistration is released there, and reported.
    drop(provider);
    let left = registration
        .deregister(&p)
        .expect_err("a cached descriptor was still held");
    assert_eq!((left.security_descriptors, left.providers), (1, 1));
    assert_eq!(sim.cached_security_descriptors(), 0);
    drop(clone); // releases nothing more
    sim.finish();
}
