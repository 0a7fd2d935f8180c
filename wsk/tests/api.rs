//! The shape of the public API: every event trait resolves from
//! `wsk::events`, payload and slot types are free of the handler type, the
//! one-call openers tolerate a provider without events, and the small
//! conveniences (`wait_or_cancel`, flat `block_on_timeout`, work items of a
//! driver or device object) do what they say.

mod common;
use common::{PEER, passive, setup, teardown};

use std::sync::mpsc;
use std::time::Duration;

use wsk::defer::{IoObject, WorkItem};
use wsk::events::{
    ConnectionEvents, DatagramAction, DatagramEvents, DatagramIndication, DisconnectFlags,
    EventContext, ListenEvents, NoEvents,
};
use wsk::request::ops::TransferOp;
use wsk::request::{Request, SlotRequest, TransferSlot};
use wsk::tcp::{ConnectionSocket, SendFlags};
use wsk::{Buffer, Error, block_on, block_on_timeout};
use wsk_sim::{Routine, Sim};
use wsk_sys as sys;

#[test]
fn every_event_trait_resolves_from_the_events_module() {
    fn is_connection_events<T: wsk::events::ConnectionEvents>() {}
    fn is_listen_events<T: wsk::events::ListenEvents>() {}
    fn is_datagram_events<T: wsk::events::DatagramEvents>() {}
    // The prelude names the same traits.
    fn is_prelude_connection_events<T: wsk::prelude::ConnectionEvents>() {}
    is_connection_events::<wsk::events::NoEvents>();
    is_listen_events::<wsk::events::NoListenEvents>();
    is_datagram_events::<wsk::events::NoDatagramEvents>();
    is_prelude_connection_events::<NoEvents>();
}

/// A handler with events, to show that helpers need not name it.
struct Counting;

#[wsk::vtable]
impl ConnectionEvents for Counting {
    fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
}

/// Sends through any connection socket, in the caller's slot: neither the
/// payload, the request nor the slot names the socket's handler.
fn send_through<'s, H: ConnectionEvents>(
    socket: &ConnectionSocket<H>,
    slot: &'s mut TransferSlot,
    data: &[u8],
) -> SlotRequest<'s, TransferOp> {
    socket.send_in(slot, Buffer::from_slice(data).unwrap(), SendFlags::empty())
}

/// The one-shot form names the same payload type.
fn send_once<H: ConnectionEvents>(
    socket: &ConnectionSocket<H>,
    data: &[u8],
) -> Request<TransferOp> {
    socket.send(Buffer::from_slice(data).unwrap())
}

#[test]
fn payloads_and_slots_are_free_of_the_handler_type() {
    let sim = Sim::start();
    let peer = sim.peer_listen(PEER);
    let p = passive();
    let (registration, provider) = setup(&p);
    let mut slot = TransferSlot::new().unwrap();
    let plain = block_on(
        &p,
        wsk::tcp::connect(&provider, PEER.parse().unwrap(), NoEvents),
    )
    .expect("connect");
    let plain_peer = peer.accept();
    let counting = block_on(
        &p,
        wsk::tcp::connect(&provider, PEER.parse().unwrap(), Counting),
    )
    .expect("connect");
    let counting_peer = peer.accept();
    assert!(counting.events_enabled() && !plain.events_enabled());
    // One slot and one request type serve sockets of different handlers.
    assert_eq!(send_through(&plain, &mut slot, b"one").wait(&p).0, Ok(3));
    assert_eq!(send_through(&counting, &mut slot, b"two").wait(&p).0, Ok(3));
    assert!(
        slot.is_ready(),
        "the slot kept its memory across both sockets"
    );
    let requests: [Request<TransferOp>; 2] = [send_once(&plain, b"1"), send_once(&counting, b"2")];
    for request in requests {
        assert_eq!(request.wait(&p).0, Ok(1));
    }
    assert_eq!(plain_peer.recv_exact(4), b"one1");
    assert_eq!(counting_peer.recv_exact(4), b"two2");
    plain.close().wait(&p).expect("close");
    counting.close().wait(&p).expect("close");
    drop((slot, plain_peer, counting_peer));
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn connect_on_a_provider_without_events_returns_the_socket_with_events_off() {
    let sim = Sim::start();
    let peer = sim.peer_listen(PEER);
    let p = passive();
    let (registration, provider) = setup(&p);
    // Wine's WskControlSocket: STATUS_NOT_IMPLEMENTED for every event mask.
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    let socket = block_on(
        &p,
        wsk::tcp::connect(&provider, PEER.parse().unwrap(), Counting),
    )
    .expect("connected although events are unavailable");
    assert!(!socket.events_enabled(), "the driver learns events are off");
    let conn = peer.accept();
    let (sent, buffer) = socket.send(Buffer::from_slice(b"ping").unwrap()).wait(&p);
    assert_eq!(sent, Ok(4), "requests work");
    assert_eq!(conn.recv_exact(4), b"ping");
    socket.close().wait(&p).expect("close");
    drop((buffer, conn));
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn other_event_failures_still_fail_connect_and_close_the_socket() {
    let sim = Sim::start();
    let peer = sim.peer_listen(PEER);
    let p = passive();
    let (registration, provider) = setup(&p);
    sim.fail_next(
        Routine::WskControlSocket,
        sys::STATUS_INSUFFICIENT_RESOURCES,
    );
    let result = block_on(
        &p,
        wsk::tcp::connect(&provider, PEER.parse().unwrap(), Counting),
    );
    assert_eq!(result.err(), Some(Error::INSUFFICIENT_RESOURCES));
    drop(peer);
    teardown(&p, registration, provider);
    sim.finish();
}

struct Datagrams;

#[wsk::vtable]
impl DatagramEvents for Datagrams {
    fn on_receive_from(
        &self,
        _: &EventContext<'_>,
        _: Option<DatagramIndication<'_>>,
    ) -> DatagramAction {
        DatagramAction::Accept
    }
}

#[test]
fn udp_bind_on_a_provider_without_events_returns_the_socket_with_events_off() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    let socket = block_on(
        &p,
        wsk::udp::bind(&provider, "10.0.0.1:0".parse().unwrap(), Datagrams),
    )
    .expect("bound although events are unavailable");
    assert!(!socket.events_enabled());
    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn wait_or_cancel_abandons_a_late_request() {
    let c = common::connected();
    let p = passive();
    // Nothing arrives: the receive is cancelled, its buffer freed later.
    let late = c
        .socket
        .receive(Buffer::with_capacity(16).unwrap())
        .wait_or_cancel(&p, Duration::from_millis(10));
    assert!(late.is_none());
    c.peer.send(b"now");
    let (received, buffer) = c
        .socket
        .receive(Buffer::with_capacity(16).unwrap())
        .wait_or_cancel(&p, Duration::from_secs(10))
        .expect("completed in time");
    assert_eq!(received, Ok(3));
    assert_eq!(&buffer[..], b"now");
    drop(buffer);
    c.finish();
}

#[test]
fn block_on_timeout_is_flat() {
    let sim = Sim::start();
    let listener = sim.peer_listen(PEER);
    let p = passive();
    let (registration, provider) = setup(&p);
    let connect = wsk::tcp::connect(&provider, PEER.parse().unwrap(), NoEvents);
    // The socket itself, not a Result of a Result.
    let socket: ConnectionSocket = block_on_timeout(&p, connect, Duration::from_secs(10)).unwrap();
    let never = core::future::pending::<Result<(), Error>>();
    let timed_out = block_on_timeout(&p, never, Duration::from_millis(5));
    assert_eq!(timed_out, Err(Error::IO_TIMEOUT));
    assert!(Error::IO_TIMEOUT.is_timeout());
    socket.close().wait(&p).expect("close");
    drop(listener.accept());
    teardown(&p, registration, provider);
    sim.finish();
}

fn run_work_item(io: IoObject) {
    let (done, finished) = mpsc::channel();
    WorkItem::new(io).expect("allocated").queue(move |passive| {
        passive.sleep(Duration::from_millis(1)); // may wait: PASSIVE_LEVEL
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the work item ran");
}

#[test]
fn work_items_run_for_a_driver_object_and_for_a_device_object() {
    let sim = Sim::start();
    // SAFETY: the simulator's driver object lives as long as `sim`.
    run_work_item(unsafe { IoObject::from_driver(sim.driver_object()) });
    // SAFETY: as above, for its device object.
    run_work_item(unsafe { IoObject::from_device(sim.device_object()) });
    // Both ran (each signalled from inside its routine); `finish` waits for
    // the routines to return and checks that both work items were freed.
    sim.finish();
}

#[test]
fn listen_events_trait_is_implementable_from_the_events_module() {
    struct Server;
    #[wsk::vtable]
    impl ListenEvents for Server {
        type Connection = NoEvents;
    }
    const { assert!(!Server::HAS_ACCEPT) };
}
