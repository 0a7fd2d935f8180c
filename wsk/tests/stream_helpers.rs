//! Stream conveniences: `send_all`, `receive_exact`, buffers advanced in
//! place (the `WSK_BUF` offset), and the error classification examples use.

mod common;
use common::{Connected, connected, passive, teardown};

use std::thread;
use std::time::Duration;

use wsk::request::TransferSlot;
use wsk::{Buffer, Error, block_on};

#[test]
fn send_all_sends_everything_and_gives_the_buffer_back_whole() {
    let c = connected();
    let p = passive();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let (sent, buffer) = block_on(&p, c.socket.send_all(Buffer::from_slice(&data).unwrap()));
    sent.expect("sent");
    assert_eq!(&buffer[..], &data[..], "the buffer comes back as given");
    assert_eq!(c.peer.recv_exact(data.len()), data);
    drop(buffer);
    c.finish();
}

#[test]
fn an_advanced_buffer_sends_its_tail_from_the_same_memory() {
    let c = connected();
    let p = passive();
    let mut buffer = Buffer::from_slice(b"skip this, send that").unwrap();
    buffer.advance(11);
    let (sent, buffer) = c.socket.send(buffer).wait(&p);
    assert_eq!(sent, Ok(9));
    assert_eq!(c.peer.recv_exact(9), b"send that");
    // send_all restores exactly the span it was given, advanced or not.
    let (sent, buffer) = block_on(&p, c.socket.send_all(buffer));
    sent.expect("sent");
    assert_eq!(&buffer[..], b"send that");
    assert_eq!(c.peer.recv_exact(9), b"send that");
    drop(buffer);
    c.finish();
}

#[test]
fn send_all_of_nothing_sends_nothing() {
    let c = connected();
    let p = passive();
    let (sent, buffer) = block_on(&p, c.socket.send_all(Buffer::with_capacity(4).unwrap()));
    assert_eq!(sent, Ok(()));
    assert!(buffer.is_empty());
    drop(buffer);
    c.finish();
}

#[test]
fn send_all_reports_a_lost_connection_and_returns_the_buffer() {
    let c = connected();
    let p = passive();
    let (aborted, _) = c.socket.abort().wait(&p);
    aborted.expect("abort");
    let mut slot = TransferSlot::new().unwrap();
    let (sent, buffer) = block_on(
        &p,
        c.socket
            .send_all_in(&mut slot, Buffer::from_slice(b"late").unwrap()),
    );
    let e = sent.expect_err("the connection is gone");
    assert_eq!(e, Error::CONNECTION_ABORTED);
    assert!(e.is_connection_lost());
    assert_eq!(&buffer[..], b"late", "nothing is lost");
    drop((buffer, slot));
    c.finish();
}

#[test]
fn receive_exact_fills_the_buffer_across_pieces() {
    let Connected {
        sim,
        registration,
        provider,
        socket,
        peer,
    } = connected();
    let p = passive();
    let writer = thread::spawn(move || {
        for piece in [&b"abc"[..], b"defgh", b"ij"] {
            peer.send(piece);
            thread::sleep(Duration::from_millis(5));
        }
        peer
    });
    let (received, buffer) = block_on(&p, socket.receive_exact(Buffer::with_capacity(10).unwrap()));
    received.expect("received");
    assert_eq!(&buffer[..], b"abcdefghij");
    let peer = writer.join().unwrap();
    socket.close().wait(&p).expect("close");
    drop((buffer, peer));
    teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn receive_exact_keeps_what_the_buffer_holds_and_fills_the_rest() {
    let c = connected();
    let p = passive();
    let mut buffer = Buffer::with_capacity(6).unwrap();
    buffer.extend_from_slice(b"he");
    c.peer.send(b"llo!");
    let mut slot = TransferSlot::new().unwrap();
    let (received, buffer) = block_on(&p, c.socket.receive_exact_in(&mut slot, buffer));
    received.expect("received");
    assert_eq!(
        &buffer[..],
        b"hello!",
        "received after the bytes already there"
    );
    drop((buffer, slot));
    c.finish();
}

#[test]
fn receive_exact_reports_an_early_end_with_what_arrived() {
    let c = connected();
    let p = passive();
    c.peer.send(b"abc");
    c.peer.close();
    let (received, buffer) = block_on(
        &p,
        c.socket.receive_exact(Buffer::with_capacity(8).unwrap()),
    );
    let e = received.expect_err("the peer closed first");
    assert_eq!(e, Error::GRACEFUL_DISCONNECT);
    assert!(e.is_connection_lost());
    assert_eq!(&buffer[..], b"abc");
    drop(buffer);
    c.finish();
}

#[test]
fn a_buffer_derefs_to_its_valid_bytes() {
    let _sim = wsk_sim::Sim::start();
    let mut buffer = Buffer::from_slice(b"hello").unwrap();
    buffer[0] = b'j';
    assert_eq!(&*buffer, b"jello");
    assert!(buffer.starts_with(b"je"));
    buffer.truncate(4);
    assert_eq!(buffer, Buffer::from_slice(b"jell").unwrap());
}
