//! Requests made in a `RequestSlot`: one block and one IRP reused from one
//! send or receive to the next (stream and datagram sockets), and the slot's
//! behaviour when a request in it is dropped, fails, or outlives its socket.

mod common;
use common::{connected, connected_with, passive, setup, teardown};

use std::time::Duration;

use wsk::events::NoDatagramEvents;
use wsk::request::{ReceiveFromSlot, SendToSlot, TransferSlot};
use wsk::tcp::{ReceiveFlags, SendFlags};
use wsk::{Buffer, Error, block_on};
use wsk_sim::{CompletionMode, Routine, Sim};
use wsk_sys as sys;

/// Send/receive rounds of the streaming tests.
const ROUNDS: u8 = 50;

/// Sends and receives alternately through one slot and one buffer; every
/// request after the slot's creation reuses its IRP, none initialises one.
fn stream_through_one_slot(mode: CompletionMode) {
    let c = connected_with(|sim| {
        sim.set_completion_mode(mode);
    });
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();

    let mut slot = TransferSlot::new().expect("slot");
    let mut buffer = Buffer::with_capacity(8).unwrap();
    let before = sim.stats();
    for round in 0..ROUNDS {
        buffer.clear();
        buffer.extend_from_slice(&[round; 8]);
        let (sent, back) = socket
            .send_in(&mut slot, buffer, SendFlags::empty())
            .wait(&p);
        assert_eq!(sent, Ok(8), "round {round}");
        assert_eq!(peer.recv_exact(8), [round; 8], "round {round}");
        peer.send(&[!round; 8]);
        let (received, back) = socket
            .receive_in(&mut slot, back, ReceiveFlags::WAIT_ALL)
            .wait(&p);
        assert_eq!(received, Ok(8), "round {round}");
        assert_eq!(back.as_slice(), [!round; 8], "round {round}");
        buffer = back;
    }
    let after = sim.stats();
    let requests = 2 * u64::from(ROUNDS);
    assert_eq!(
        after.irps_initialized - before.irps_initialized,
        0,
        "{mode:?}: no request initialised a new IRP"
    );
    assert_eq!(
        after.irps_reused - before.irps_reused,
        requests,
        "{mode:?}: every request reused the slot's IRP"
    );
    assert!(slot.is_ready(), "{mode:?}");

    drop((slot, buffer));
    c.finish();
}

#[test]
fn a_stream_through_one_slot_reuses_its_irp_inline() {
    stream_through_one_slot(CompletionMode::Inline);
}

#[test]
fn a_stream_through_one_slot_reuses_its_irp_when_the_provider_pends() {
    stream_through_one_slot(CompletionMode::InlineReturnPending);
}

#[test]
fn a_stream_through_one_slot_reuses_its_irp_on_a_worker_thread() {
    stream_through_one_slot(CompletionMode::Worker);
}

#[test]
fn a_stream_through_one_slot_reuses_its_irp_with_manual_completion() {
    stream_through_one_slot(CompletionMode::Manual);
}

#[test]
fn awaited_slot_requests_wake_their_task_and_keep_the_memory() {
    let c = connected_with(|sim| {
        sim.set_completion_mode(CompletionMode::Delayed(Duration::from_millis(2)));
    });
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();

    let mut slot = TransferSlot::new().expect("slot");
    let before = sim.stats();
    let buffer = block_on(&p, async {
        let mut buffer = Buffer::from_slice(b"ping").unwrap();
        for _ in 0..5 {
            let (sent, back) = socket.send_in(&mut slot, buffer, SendFlags::empty()).await;
            assert_eq!(sent, Ok(4));
            buffer = back;
        }
        buffer
    });
    assert_eq!(peer.recv_exact(20), b"ping".repeat(5));
    // The completion routine wakes the task only after it is done with the
    // block, so the task always finds the memory reusable.
    assert!(slot.is_ready());
    let after = sim.stats();
    assert_eq!(after.irps_initialized, before.irps_initialized);
    assert_eq!(after.irps_reused - before.irps_reused, 5);

    drop((slot, buffer));
    c.finish();
}

#[test]
fn dropping_a_pending_slot_request_cancels_it_and_keeps_the_memory() {
    let c = connected();
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();

    let mut slot = TransferSlot::new().expect("slot");
    let before = sim.stats();
    let pending = socket.receive_in(
        &mut slot,
        Buffer::with_capacity(16).unwrap(),
        ReceiveFlags::empty(),
    );
    let pending = pending
        .wait_timeout(&p, Duration::from_millis(10))
        .expect_err("nothing to receive yet");
    assert!(!pending.is_complete());
    drop(pending);
    // The provider completed the cancelled IRP inside IoCancelIrp: the
    // memory is free again and stays in the slot; the buffer was freed.
    assert!(slot.is_ready());
    assert!(sim.stats().irps_cancelled > before.irps_cancelled);

    peer.send(b"after");
    let (received, buffer) = socket
        .receive_in(
            &mut slot,
            Buffer::with_capacity(16).unwrap(),
            ReceiveFlags::empty(),
        )
        .wait(&p);
    assert_eq!(received, Ok(5));
    assert_eq!(buffer.as_slice(), b"after");
    let after = sim.stats();
    assert_eq!(after.irps_initialized, before.irps_initialized);
    assert_eq!(after.irps_reused - before.irps_reused, 2);

    drop((slot, buffer));
    c.finish();
}

#[test]
fn a_slot_whose_request_ignores_cancel_allocates_again_and_the_block_is_freed_on_close() {
    let c = connected_with(|sim| {
        sim.set_ignore_cancel(true); // like Wine's netio.sys
    });
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();

    let mut slot = TransferSlot::new().expect("slot");
    sim.hang_next(Routine::WskReceive);
    let pending = socket
        .receive_in(
            &mut slot,
            Buffer::with_capacity(16).unwrap(),
            ReceiveFlags::empty(),
        )
        .wait_timeout(&p, Duration::from_millis(10))
        .expect_err("hangs");
    drop(pending);
    // The provider still owns the IRP and the buffer: the slot lets go of
    // the memory rather than reuse it.
    assert!(!slot.is_ready());

    // The slot's next request gets fresh memory and keeps it.
    let before = sim.stats();
    let (sent, buffer) = socket
        .send_in(
            &mut slot,
            Buffer::from_slice(b"next").unwrap(),
            SendFlags::empty(),
        )
        .wait(&p);
    assert_eq!(sent, Ok(4));
    assert_eq!(peer.recv_exact(4), b"next");
    assert_eq!(sim.stats().irps_initialized - before.irps_initialized, 1);
    assert!(slot.is_ready());

    drop((slot, buffer));
    // Closing the socket completes the held IRP; its completion routine
    // frees the abandoned block and buffer (checked by the leak checks).
    let common::Connected {
        sim,
        registration,
        provider,
        socket,
        ..
    } = c;
    socket.close().wait(&p).unwrap();
    sim.settle();
    assert!(
        sim.stats().irps_cancelled >= 1,
        "the close completed the held IRP"
    );
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn refused_and_failed_slot_requests_return_the_buffer_and_keep_the_memory() {
    let c = connected();
    let (sim, socket, peer) = (&c.sim, &c.socket, &c.peer);
    let p = passive();
    let mut slot = TransferSlot::new().expect("slot");

    // Refused before the provider sees it: an empty send.
    let before = sim.stats();
    let request = socket.send_in(
        &mut slot,
        Buffer::with_capacity(4).unwrap(),
        SendFlags::empty(),
    );
    assert!(request.is_complete());
    let (sent, buffer) = request.wait(&p);
    assert_eq!(sent, Err(Error::INVALID_PARAMETER));
    assert_eq!(buffer.capacity(), 4);
    drop(buffer);
    assert_eq!(sim.stats().irps_reused, before.irps_reused, "no IRP used");
    assert!(slot.is_ready());

    // Failed by the provider.
    sim.fail_next(Routine::WskSend, sys::STATUS_INSUFFICIENT_RESOURCES);
    let (sent, buffer) = socket
        .send_in(
            &mut slot,
            Buffer::from_slice(b"data").unwrap(),
            SendFlags::empty(),
        )
        .wait(&p);
    assert_eq!(sent, Err(Error::INSUFFICIENT_RESOURCES));
    assert_eq!(buffer.as_slice(), b"data");
    assert!(slot.is_ready());

    // Completed but never read: dropping it keeps the memory in the slot.
    // This step needs a send the provider completes inside the call, so it
    // pins inline completions (the adversary's completion mix would pend it).
    sim.set_completion_mode(CompletionMode::Inline);
    let request = socket.send_in(&mut slot, buffer, SendFlags::empty());
    assert!(request.is_complete(), "inline completion");
    drop(request);
    assert!(slot.is_ready());
    assert_eq!(peer.recv_exact(4), b"data");

    // A request the provider holds, dropped: cancelled, and the slot's next
    // request works with fresh memory.
    sim.hang_next(Routine::WskSend);
    let hung = socket
        .send_in(
            &mut slot,
            Buffer::from_slice(b"x").unwrap(),
            SendFlags::empty(),
        )
        .wait_timeout(&p, Duration::from_millis(5))
        .expect_err("hangs");
    drop(hung);
    assert!(slot.is_ready(), "the cancel completed inside IoCancelIrp");
    sim.settle();
    let (sent, buffer) = socket
        .send_in(
            &mut slot,
            Buffer::from_slice(b"y").unwrap(),
            SendFlags::empty(),
        )
        .wait(&p);
    assert_eq!(sent, Ok(1));
    assert_eq!(peer.recv_exact(1), b"y");

    drop((slot, buffer));
    c.finish();
}

#[test]
fn a_send_after_an_abortive_disconnect_is_refused_in_a_slot_too() {
    let c = connected();
    let (sim, socket) = (&c.sim, &c.socket);
    let p = passive();
    let mut slot = TransferSlot::new().expect("slot");

    let (aborted, _) = socket.abort().wait(&p);
    aborted.expect("abort");
    let before = sim.stats();
    let request = socket.send_in(
        &mut slot,
        Buffer::from_slice(b"late").unwrap(),
        SendFlags::empty(),
    );
    assert!(request.is_complete(), "refused without a provider call");
    let (sent, buffer) = request.wait(&p);
    assert_eq!(sent, Err(Error::CONNECTION_ABORTED));
    assert_eq!(buffer.as_slice(), b"late");
    assert!(slot.is_ready());
    assert_eq!(sim.stats().irps_reused, before.irps_reused);

    drop((slot, buffer));
    c.finish();
}

#[test]
fn datagrams_through_slots_reuse_their_irps() {
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    let local: std::net::SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let socket = block_on(&p, wsk::udp::bind(&provider, local, NoDatagramEvents)).expect("open");

    let mut receive_slot = ReceiveFromSlot::new().expect("slot");
    let mut send_slot = SendToSlot::new().expect("slot");
    let mut buffer = Buffer::with_capacity(64).unwrap();
    let before = sim.stats();
    for round in 0..ROUNDS {
        peer.send_to("10.0.0.1:5000", &[round; 12]);
        let (received, back) = socket.receive_from_in(&mut receive_slot, buffer).wait(&p);
        let received = received.expect("receive_from_in");
        assert_eq!(received.len(), 12, "round {round}");
        assert_eq!(received.peer_addr(), peer.local_addr());
        assert_eq!(back.as_slice(), [round; 12]);
        let (sent, back) = socket
            .send_to_in(&mut send_slot, back, received.peer_addr())
            .wait(&p);
        assert_eq!(sent, Ok(12), "round {round}");
        assert_eq!(peer.recv_from(), (local, vec![round; 12]));
        buffer = back;
    }
    let after = sim.stats();
    assert_eq!(after.irps_initialized, before.irps_initialized);
    assert_eq!(
        after.irps_reused - before.irps_reused,
        2 * u64::from(ROUNDS)
    );
    assert!(receive_slot.is_ready() && send_slot.is_ready());

    // Refused before the provider: an empty datagram; the slot keeps its memory.
    let (sent, empty) = socket
        .send_to_in(
            &mut send_slot,
            Buffer::with_capacity(1).unwrap(),
            peer.local_addr(),
        )
        .wait(&p);
    assert_eq!(sent, Err(Error::INVALID_PARAMETER));
    assert!(send_slot.is_ready());

    // A pending receive dropped: cancelled, and the slot keeps working.
    let pending = socket
        .receive_from_in(&mut receive_slot, buffer)
        .wait_timeout(&p, Duration::from_millis(10))
        .expect_err("nothing to receive");
    drop(pending);
    peer.send_to("10.0.0.1:5000", b"late");
    let (received, buffer) = socket
        .receive_from_in(&mut receive_slot, Buffer::with_capacity(8).unwrap())
        .wait(&p);
    assert_eq!(received.expect("receive").len(), 4);
    assert_eq!(buffer.as_slice(), b"late");

    drop((receive_slot, send_slot, buffer, empty));
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}
