//! Connection sockets and their events through the simulated provider.

mod common;
use common::{connected, connected_to, passive, setup, teardown};

use std::sync::Mutex;
use std::time::Duration;

use wsk::AddressFamily;
use wsk::events::{
    ConnectionEvents, DisconnectFlags, EventContext, Indication, NoEvents, ReceiveAction,
};
use wsk::tcp::{ConnectionSocket, ReceiveFlags, SendFlags};
use wsk::{Buffer, Error, block_on};
use wsk_sim::{EventKind, Irql, Routine, Sim};
use wsk_sys as sys;

/// Records every disconnect callback: its flags and whether the context
/// offered a `Dispatch` token.
#[derive(Default)]
struct Recorder {
    disconnects: Mutex<Vec<(DisconnectFlags, bool)>>,
}

#[wsk::vtable]
impl ConnectionEvents for Recorder {
    fn on_disconnect(&self, cx: &EventContext<'_>, flags: DisconnectFlags) {
        self.disconnects
            .lock()
            .unwrap()
            .push((flags, cx.at_dispatch().is_some()));
    }
}

fn disconnect_reaches_handler(irql: Irql, abortive: bool) {
    let sim = Sim::start();
    sim.set_event_irql(irql);
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);

    let socket = block_on(
        &p,
        wsk::tcp::connect(
            &provider,
            "10.0.0.2:80".parse().unwrap(),
            Recorder::default(),
        ),
    )
    .expect("connect");
    let peer = listener.accept();
    if abortive {
        peer.abort();
    } else {
        peer.close();
    }
    sim.settle();

    let seen = socket.handler().disconnects.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "exactly one disconnect event: {seen:?}");
    let (flags, had_dispatch) = seen[0];
    assert_eq!(flags.is_abortive(), abortive);
    assert_eq!(flags.is_graceful(), !abortive);
    let at_dispatch = irql == Irql::Dispatch;
    assert_eq!(
        flags.contains(DisconnectFlags::AT_DISPATCH_LEVEL),
        at_dispatch
    );
    assert_eq!(
        had_dispatch, at_dispatch,
        "Dispatch token only when the flag says so"
    );
    assert_eq!(socket.is_aborted(), abortive);
    assert_eq!(socket.is_peer_closed(), !abortive);

    let statuses = sim.stats().statuses(EventKind::Disconnect);
    assert_eq!(
        statuses,
        vec![sys::STATUS_SUCCESS],
        "the provider always gets STATUS_SUCCESS"
    );

    socket.close().wait(&p).expect("close");
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn graceful_disconnect_at_passive() {
    disconnect_reaches_handler(Irql::Passive, false);
}

#[test]
fn graceful_disconnect_at_dispatch() {
    disconnect_reaches_handler(Irql::Dispatch, false);
}

#[test]
fn abortive_disconnect_at_passive() {
    disconnect_reaches_handler(Irql::Passive, true);
}

#[test]
fn abortive_disconnect_at_dispatch() {
    disconnect_reaches_handler(Irql::Dispatch, true);
}

#[test]
fn send_after_graceful_remote_disconnect_works() {
    let c = connected_to(Recorder::default(), |_| {});
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();
    peer.close();
    sim.settle();
    assert!(socket.is_peer_closed());

    let (sent, buffer) = socket
        .send(Buffer::from_slice(b"still here").unwrap())
        .wait(&p);
    assert_eq!(sent, Ok(10));
    assert_eq!(buffer.as_slice(), b"still here");
    assert_eq!(peer.recv_exact(10), b"still here");
    drop(buffer);

    // The receive side reports end of stream.
    let (received, _) = socket.receive(Buffer::with_capacity(16).unwrap()).wait(&p);
    assert_eq!(received, Ok(0));

    c.finish();
}

#[test]
fn send_after_abortive_remote_disconnect_is_refused_without_provider_call() {
    let sim = Sim::start();
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(
            &provider,
            "10.0.0.2:80".parse().unwrap(),
            Recorder::default(),
        ),
    )
    .unwrap();
    listener.accept().abort();
    sim.settle();
    assert!(socket.is_aborted());

    // Were WskSend called, this injected hang would keep the request pending.
    sim.hang_next(Routine::WskSend);
    let request = socket.send(Buffer::from_slice(b"lost?").unwrap());
    assert!(
        request.is_complete(),
        "refused before reaching the provider"
    );
    let (sent, buffer) = request.wait(&p);
    assert_eq!(sent, Err(Error::CONNECTION_ABORTED));
    assert_eq!(buffer.as_slice(), b"lost?", "the buffer comes back intact");
    drop(buffer);

    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    // The unused hang injection must not count as a failure.
    sim.finish();
}

#[test]
fn provider_failure_returns_the_buffer() {
    let c = connected();
    let (sim, socket) = (&c.sim, &c.socket);
    let p = passive();

    sim.fail_next(Routine::WskSend, sys::STATUS_INSUFFICIENT_RESOURCES);
    let (sent, buffer) = socket
        .send(Buffer::from_slice(b"payload").unwrap())
        .wait(&p);
    assert_eq!(sent, Err(Error::INSUFFICIENT_RESOURCES));
    assert_eq!(buffer.as_slice(), b"payload");
    drop(buffer);

    c.finish();
}

#[test]
fn dropping_a_pending_receive_cancels_it() {
    let c = connected();
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();

    let pending = socket.receive(Buffer::with_capacity(64).unwrap());
    let pending = pending
        .wait_timeout(&p, Duration::from_millis(20))
        .expect_err("no data yet");
    drop(pending);
    sim.settle();
    let stats = sim.stats();
    assert!(
        stats.cancel_calls >= 1 && stats.irps_cancelled >= 1,
        "{stats:?}"
    );

    // The socket still works afterwards.
    peer.send(b"after");
    let (n, buffer) = socket.receive(Buffer::with_capacity(64).unwrap()).wait(&p);
    assert_eq!(&buffer.as_slice()[..n.unwrap()], b"after");
    drop(buffer);

    c.finish();
}

#[test]
fn a_request_that_ignores_cancel_is_freed_when_the_socket_closes() {
    let sim = Sim::start();
    sim.set_ignore_cancel(true); // like Wine's netio.sys
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(&provider, "10.0.0.2:80".parse().unwrap(), NoEvents),
    )
    .unwrap();
    let _peer = listener.accept();

    sim.hang_next(Routine::WskReceive);
    let pending = socket.receive(Buffer::with_capacity(64).unwrap());
    let pending = pending
        .wait_timeout(&p, Duration::from_millis(20))
        .expect_err("hangs");
    // Dropped while the provider still owns the IRP and the buffer: freed
    // only when the close completes it.
    drop(pending);
    socket.close().wait(&p).unwrap();
    sim.settle();
    assert!(sim.stats().irps_cancelled >= 1);

    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn receive_indications_can_be_retained_and_released() {
    #[derive(Default)]
    struct Keeper {
        held: Mutex<Vec<wsk::events::RetainedIndication>>,
        bytes: Mutex<Vec<u8>>,
    }
    #[wsk::vtable]
    impl ConnectionEvents for Keeper {
        fn on_receive(&self, _: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
            let Some(data) = data else {
                return ReceiveAction::Accept;
            };
            let mut copy = vec![0; data.len()];
            data.copy_to(&mut copy);
            self.bytes.lock().unwrap().extend_from_slice(&copy);
            if let Some(retained) = data.retain() {
                self.held.lock().unwrap().push(retained);
            }
            ReceiveAction::Accept
        }
    }

    let sim = Sim::start();
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(&provider, "10.0.0.2:80".parse().unwrap(), Keeper::default()),
    )
    .unwrap();
    let peer = listener.accept();
    peer.send(b"keep me");
    sim.settle();

    let retained: Vec<_> = socket.handler().held.lock().unwrap().drain(..).collect();
    assert_eq!(retained.len(), 1);
    assert_eq!(retained[0].len(), 7);
    let mut copy = [0u8; 7];
    assert_eq!(retained[0].copy_to(&mut copy), Ok(7));
    assert_eq!(&copy, b"keep me");
    assert_eq!(
        sim.stats().statuses(EventKind::Receive),
        vec![sys::STATUS_PENDING]
    );

    // Deregistration refuses while a retained indication holds the socket.
    drop(socket);
    let registration = registration;
    drop(provider);
    assert_eq!(registration.live_handles(), 1);
    drop(retained); // WskRelease, then the deferred close
    sim.settle();
    registration.deregister(&p).expect("all released");
    sim.finish();
}

#[test]
fn partial_accept_and_refuse_report_the_right_statuses() {
    struct Half;
    #[wsk::vtable]
    impl ConnectionEvents for Half {
        fn on_receive(&self, _: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
            match data {
                Some(d) if d.len() > 1 => ReceiveAction::AcceptPartial(d.len() / 2),
                _ => ReceiveAction::Refuse,
            }
        }
    }
    let c = connected_to(Half, |_| {});
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();
    peer.send(b"abcdef");
    sim.settle();
    let events = sim.stats().events;
    let receive = events
        .iter()
        .find(|e| e.kind == EventKind::Receive)
        .expect("a receive event");
    assert_eq!(
        (receive.status, receive.indicated, receive.accepted),
        (sys::STATUS_SUCCESS, 6, 3)
    );

    // The rest goes to the next receive request.
    let (n, buffer) = socket.receive(Buffer::with_capacity(16).unwrap()).wait(&p);
    assert_eq!(&buffer.as_slice()[..n.unwrap()], b"def");
    drop(buffer);

    c.finish();
}

#[test]
fn receive_with_wait_all_fills_the_buffer_and_send_flags_pass_through() {
    let c = connected();
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();

    let pending = socket.receive_with(Buffer::with_capacity(6).unwrap(), ReceiveFlags::WAIT_ALL);
    peer.send(b"abc");
    sim.settle();
    let pending = pending
        .wait_timeout(&p, Duration::from_millis(20))
        .expect_err("WAIT_ALL waits for a full buffer");
    peer.send(b"def");
    let (n, buffer) = pending.wait(&p);
    assert_eq!(n, Ok(6));
    assert_eq!(buffer.as_slice(), b"abcdef");
    drop(buffer);

    let (sent, buffer) = socket
        .send_with(Buffer::from_slice(b"now").unwrap(), SendFlags::NO_DELAY)
        .wait(&p);
    assert_eq!(sent, Ok(3));
    assert_eq!(peer.recv_exact(3), b"now");
    drop(buffer);

    c.finish();
}

#[test]
fn connect_with_data_sends_on_connect_and_is_gated_by_windows_version() {
    let p = passive();
    for (build, supported) in [(22631, true), (14393, false)] {
        let sim = Sim::start();
        sim.set_windows_version(10, 0, build);
        let listener = sim.peer_listen("10.0.0.2:80");
        let (registration, provider) = setup(&p);
        let socket = block_on(
            &p,
            ConnectionSocket::new(&provider, AddressFamily::V4, NoEvents),
        )
        .unwrap();
        socket.bind("0.0.0.0:0".parse().unwrap()).wait(&p).unwrap();
        let request = socket.connect_with_data(
            "10.0.0.2:80".parse().unwrap(),
            Buffer::from_slice(b"hi").unwrap(),
        );
        let (result, buffer) = request.wait(&p);
        drop(buffer);
        if supported {
            assert_eq!(result, Ok("10.0.0.2:80".parse().unwrap()));
            let peer = listener.accept();
            assert_eq!(peer.recv_exact(2), b"hi");
        } else {
            assert_eq!(
                result,
                Err(Error::NOT_SUPPORTED),
                "Windows 10 1607 has no WskConnectEx"
            );
        }
        socket.close().wait(&p).unwrap();
        teardown(&p, registration, provider);
        sim.finish();
    }
}

#[test]
fn disabled_events_are_no_longer_delivered() {
    let c = connected_to(Recorder::default(), |_| {});
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    socket.disable_events().expect("disable");
    peer.close();
    sim.settle();
    assert!(
        socket.handler().disconnects.lock().unwrap().is_empty(),
        "no callback after disabling"
    );
    assert_eq!(sim.stats().count(EventKind::Disconnect), 0);

    c.finish();
}

#[test]
fn tcp_silent_mode_is_requested_with_an_ioctl() {
    let c = connected();
    let (sim, socket) = (&c.sim, &c.socket);
    let p = passive();
    assert!(socket.set_tcp_silent_mode().wait(&p).is_ok());
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_INVALID_DEVICE_STATE);
    assert_eq!(
        socket.set_tcp_silent_mode().wait(&p).err(),
        Some(Error::INVALID_DEVICE_STATE)
    );
    c.finish();
}
