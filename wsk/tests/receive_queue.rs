//! `tcp::ReceiveQueue`: receive events into `async` reads. Data read in
//! order with events (split indications, small chunks) and with requests
//! (a provider without events), zero-copy pieces from `fill_buf`,
//! back-pressure by refusal and resumption by a zero-length receive, the
//! end of the stream (graceful, abortive, a NULL indication), data and a
//! FIN that arrived before the events were enabled, closing with
//! indications still queued, and many connections served by tasks.
//!
//! Every test holds with `WSK_SIM_ADVERSARY=on` (any seed), and with the
//! seeds of `under_every_adversary_seed`.

mod common;

use std::time::Duration;

use common::passive;
use wsk::events::NoEvents;
use wsk::tcp::{AcceptQueue, ConnectionSocket, ReceiveQueue};
use wsk::{AddressFamily, Buffer, Error, Provider, block_on};
use wsk_sim::{Adversary, Behaviour, CompletionMode, EventKind, Irql, PeerConn, Routine, Sim};
use wsk_sys as sys;

/// `n` bytes, or a fiftieth of them under Miri (which interprets every
/// byte's copy): the same paths, far fewer rounds.
fn sized(n: usize) -> usize {
    if cfg!(miri) { n / 50 } else { n }
}

/// A pattern that shows lost, repeated or reordered bytes.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap() ^ salt)
        .collect()
}

/// A client, a connection with a [`ReceiveQueue`] and its peer.
struct Queued {
    socket: ConnectionSocket<ReceiveQueue>,
    peer: PeerConn,
    provider: Provider,
    registration: wsk::Registration,
    sim: Sim,
}

fn queued_with(queue: ReceiveQueue, configure: impl FnOnce(&Sim)) -> Queued {
    let c = common::connected_to(queue, configure);
    Queued {
        socket: c.socket,
        peer: c.peer,
        provider: c.provider,
        registration: c.registration,
        sim: c.sim,
    }
}

impl Queued {
    fn finish(self) {
        let p = passive();
        self.socket.close().wait(&p).expect("close");
        common::teardown(&p, self.registration, self.provider);
        self.sim.finish();
    }
}

/// Reads with `read_into` until `len` bytes arrived or the stream ended.
fn read_all(socket: &mut ConnectionSocket<ReceiveQueue>, len: usize, chunk: usize) -> Vec<u8> {
    let p = passive();
    let mut got = Vec::new();
    let mut buffer = Buffer::with_capacity(chunk).unwrap();
    while got.len() < len {
        let (read, back) = block_on(&p, socket.read_into(buffer));
        let n = read.expect("read");
        assert_eq!(back.len(), n);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&back);
        buffer = back;
    }
    got
}

#[test]
fn reads_indications_in_order_with_events() {
    let mut q = queued_with(ReceiveQueue::new(), |sim| sim.set_indication_chunk(97));
    let data = pattern(sized(100_000), 0x21);
    q.peer.send(&data);
    let got = read_all(&mut q.socket, data.len(), 4096);
    assert!(got == data, "the bytes came in order");
    assert!(q.socket.events_enabled());
    let receives = q.sim.stats().statuses(EventKind::Receive);
    assert!(!receives.is_empty(), "indications served the reads");
    q.finish();
}

#[test]
fn reads_with_requests_where_the_provider_has_no_events() {
    let mut q = queued_with(ReceiveQueue::new(), Sim::imitate_wine_netio);
    assert!(!q.socket.events_enabled(), "like Wine");
    let data = pattern(sized(50_000), 0x42);
    q.peer.send(&data);
    // The reader tries to enable the events once more; Wine refuses again.
    let got = read_all(&mut q.socket, data.len(), 1000);
    assert!(got == data, "the bytes came in order");
    assert!(!q.socket.events_enabled(), "still request-driven");
    assert!(q.sim.stats().events.is_empty(), "no event callback ran");
    q.peer.close();
    assert_eq!(read_all(&mut q.socket, 1, 16), b"", "end of stream");
    assert_eq!(block_on(&passive(), q.socket.closed()), Ok(()));
    q.finish();
}

#[test]
fn read_with_lends_the_providers_pieces() {
    let mut q = queued_with(ReceiveQueue::new(), |sim| sim.set_indication_chunk(7));
    let p = passive();
    let data = pattern(sized(5_000), 0x07);
    q.peer.send(&data);
    let mut got = Vec::new();
    let (mut largest, mut first) = (0, true);
    while got.len() < data.len() {
        // Half of each piece at a time: the rest comes back first.
        let mut seen = 0;
        let used = block_on(
            &p,
            q.socket.read_with(|bytes| {
                assert!(!bytes.is_empty());
                seen = bytes.len();
                let half = bytes.len().div_ceil(2);
                got.extend_from_slice(&bytes[..half]);
                half
            }),
        )
        .expect("read_with");
        assert_eq!(used, seen.div_ceil(2));
        // The first read is a receive request into the queue's buffer (see
        // the design); every later piece is the provider's own, at most an
        // indication element long: nothing was copied into a buffer.
        if !first {
            largest = largest.max(seen);
        }
        first = false;
    }
    assert!(got == data);
    if q.sim.adversary().is_none() {
        assert!(largest <= 7, "pieces of indications: {largest}");
    }
    q.finish();
}

#[test]
fn a_slow_reader_refuses_and_resumes_without_losing_bytes() {
    // A small limit: the peer's megabyte cannot fit, the callback refuses,
    // and a zero-length receive resumes the indications each time the
    // reader has emptied the queue.
    let mut q = queued_with(ReceiveQueue::with_limit(8 * 1024), |sim| {
        sim.set_indication_chunk(1460);
    });
    let data = pattern(sized(1 << 20).max(32 * 1024), 0x5a);
    for chunk in data.chunks(64 * 1024) {
        q.peer.send(chunk);
    }
    let got = read_all(&mut q.socket, data.len(), 3000);
    assert!(got == data, "the bytes came in order");
    let refused = q
        .sim
        .stats()
        .statuses(EventKind::Receive)
        .into_iter()
        .filter(|&s| s == sys::STATUS_DATA_NOT_ACCEPTED)
        .count();
    // Under Miri the interpreter's pace lets receive requests take most
    // of the (smaller) stream; the refusals are checked natively.
    assert!(cfg!(miri) || refused > 0, "the limit was reached");
    q.finish();
}

#[test]
fn the_end_of_the_stream_follows_the_data() {
    let mut q = queued_with(ReceiveQueue::new(), |_| {});
    let p = passive();
    q.peer.send(b"last words");
    q.peer.close();
    assert_eq!(block_on(&p, q.socket.closed()), Ok(()), "graceful");
    assert_eq!(read_all(&mut q.socket, 100, 4), b"last words");
    let (read, _) = block_on(&p, q.socket.read_into(Buffer::with_capacity(8).unwrap()));
    assert_eq!(read, Ok(0), "still the end");
    let mut at_end = None;
    let used = block_on(
        &p,
        q.socket.read_with(|bytes| {
            at_end = Some(bytes.is_empty());
            bytes.len()
        }),
    );
    assert_eq!(
        (used, at_end),
        (Ok(0), Some(true)),
        "an empty slice at the end"
    );
    q.finish();
}

#[test]
fn a_reset_ends_the_reads_with_an_error() {
    let mut q = queued_with(ReceiveQueue::new(), |_| {});
    let p = passive();
    q.peer.send(b"abc");
    assert_eq!(read_all(&mut q.socket, 3, 8), b"abc");
    q.peer.abort();
    let (read, _) = block_on(&p, q.socket.read_into(Buffer::with_capacity(8).unwrap()));
    let e = read.expect_err("reset");
    assert!(e.is_connection_lost(), "{e}");
    assert!(block_on(&p, q.socket.closed()).is_err());
    q.finish();
}

#[test]
fn a_null_indication_ends_the_reads() {
    let mut q = queued_with(ReceiveQueue::new(), |_| {});
    let p = passive();
    q.peer.send(b"x");
    assert_eq!(read_all(&mut q.socket, 1, 8), b"x");
    q.sim.indicate_close_required();
    let (read, _) = block_on(&p, q.socket.read_into(Buffer::with_capacity(8).unwrap()));
    assert_eq!(read, Err(Error::CONNECTION_ABORTED));
    q.finish();
}

/// A connection socket connected without its events enabled, and its peer.
fn connected_quietly(
    sim: &Sim,
) -> (
    ConnectionSocket<ReceiveQueue>,
    PeerConn,
    Provider,
    wsk::Registration,
) {
    let listener = sim.peer_listen(common::PEER);
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let socket = ConnectionSocket::new(&provider, AddressFamily::V4, ReceiveQueue::new())
        .wait(&p)
        .expect("socket");
    socket
        .bind("0.0.0.0:0".parse().unwrap())
        .wait(&p)
        .expect("bind");
    socket
        .connect(common::PEER.parse().unwrap())
        .wait(&p)
        .expect("connect");
    assert!(!socket.events_enabled());
    (socket, listener.accept(), provider, registration)
}

/// Data that arrived before the events were enabled: Microsoft does not say
/// it is indicated afterwards (conformance G-1), so the reader's first read
/// is a receive request, which takes it; the rest comes by events.
#[test]
fn data_from_before_the_events_is_read() {
    let sim = Sim::start();
    let (mut socket, peer, provider, registration) = connected_quietly(&sim);
    let p = passive();
    peer.send(b"early bytes");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(read_all(&mut socket, 11, 64), b"early bytes");
    assert!(socket.events_enabled(), "the first read enabled them");
    peer.send(b", then more");
    assert_eq!(read_all(&mut socket, 11, 64), b", then more");
    peer.close();
    let (read, _) = block_on(&p, socket.read_into(Buffer::with_capacity(8).unwrap()));
    assert_eq!(read, Ok(0), "the FIN was indicated");
    socket.close().wait(&p).expect("close");
    common::teardown(&p, registration, provider);
    sim.finish();
}

/// A FIN that arrived before the events were enabled is seen by the first
/// read's receive request.
#[test]
fn a_fin_from_before_the_events_is_read() {
    let sim = Sim::start();
    let (mut socket, peer, provider, registration) = connected_quietly(&sim);
    let p = passive();
    peer.close();
    std::thread::sleep(Duration::from_millis(5));
    let (read, _) = block_on(&p, socket.read_into(Buffer::with_capacity(8).unwrap()));
    assert_eq!(read, Ok(0), "the end of the stream");
    assert_eq!(block_on(&p, socket.closed()), Ok(()));
    socket.close().wait(&p).expect("close");
    common::teardown(&p, registration, provider);
    sim.finish();
}

/// A connection taken by the accept event has its events from the start:
/// data and a FIN sent at once are read, then the end.
#[test]
fn accepted_by_the_accept_event_data_and_fin_at_once() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let mut listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "10.0.0.1:9000".parse().unwrap(),
            AcceptQueue::new(ReceiveQueue::new),
        ),
    )
    .expect("listen");
    assert!(listener.events_enabled());
    let peer = sim.peer_connect("10.0.0.1:9000").expect("connect");
    peer.send(b"request");
    peer.close();
    let (mut socket, from) = block_on(&p, listener.accept_next()).expect("accepted");
    assert_eq!(from, peer.local_addr());
    assert!(socket.events_enabled(), "inherited");
    assert_eq!(read_all(&mut socket, 100, 64), b"request");
    let (read, _) = block_on(&p, socket.read_into(Buffer::with_capacity(8).unwrap()));
    assert_eq!(read, Ok(0));
    socket.close().wait(&p).expect("close");
    listener.close().wait(&p).expect("close");
    common::teardown(&p, registration, provider);
    sim.finish();
}

/// Connections queued by the accept event and not taken are closed with
/// the listening socket; a full queue rejects.
#[test]
fn an_accept_queue_rejects_when_full_and_closes_what_it_holds() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "10.0.0.1:9001".parse().unwrap(),
            AcceptQueue::new(ReceiveQueue::new),
        ),
    )
    .expect("listen");
    let backlog = AcceptQueue::<ReceiveQueue>::BACKLOG;
    let peers: Vec<_> = (0..backlog + 3)
        .filter_map(|_| sim.peer_connect("10.0.0.1:9001").ok())
        .collect();
    // Every connection is offered once (possibly later, on another thread).
    let offered = || {
        sim.stats()
            .events
            .into_iter()
            .filter(|e| e.kind == EventKind::Accept)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while offered().len() < peers.len() && !offered().iter().any(|e| e.null_indication) {
        assert!(std::time::Instant::now() < deadline, "not all offered");
        std::thread::sleep(Duration::from_millis(1));
    }
    let offered = offered();
    if !offered.iter().any(|e| e.null_indication) {
        // (The adversary may declare the listening socket broken instead.)
        let accepted = offered
            .iter()
            .filter(|e| e.status == sys::STATUS_SUCCESS)
            .count();
        assert_eq!(accepted, backlog, "the ring took {backlog}, then rejected");
        assert_eq!(offered.len() - accepted, peers.len() - backlog);
    }
    listener.close().wait(&p).expect("close");
    for peer in &peers {
        assert!(peer.wait_closed());
    }
    drop(peers);
    common::teardown(&p, registration, provider);
    sim.finish();
}

/// Without event support, `accept_next` accepts with requests.
#[test]
fn an_accept_queue_accepts_with_requests_without_events() {
    let sim = Sim::start();
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let mut listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "10.0.0.1:9002".parse().unwrap(),
            AcceptQueue::new(ReceiveQueue::new),
        ),
    )
    .expect("listen");
    assert!(!listener.events_enabled());
    let peer = sim.peer_connect("10.0.0.1:9002").expect("connect");
    peer.send(b"hi");
    peer.close();
    let (mut socket, from) = block_on(&p, listener.accept_next()).expect("accepted");
    assert_eq!(from, peer.local_addr());
    assert_eq!(read_all(&mut socket, 2, 8), b"hi");
    socket.close().wait(&p).expect("close");
    listener.close().wait(&p).expect("close");
    common::teardown(&p, registration, provider);
    sim.finish();
}

#[test]
fn closing_with_indications_queued_releases_them() {
    for drop_it in [false, true] {
        let q = queued_with(ReceiveQueue::with_limit(4096), |sim| {
            sim.set_indication_chunk(512);
        });
        let p = passive();
        // Nothing reads: the queue fills, then refuses.
        q.peer.send(&pattern(sized(20_000).max(3 * 4096), 1));
        // The first read enables nothing here (the events are on): make sure
        // indications were retained before closing.
        let retained = || {
            q.sim
                .stats()
                .statuses(EventKind::Receive)
                .contains(&sys::STATUS_PENDING)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !retained() {
            assert!(std::time::Instant::now() < deadline, "nothing retained");
            std::thread::sleep(Duration::from_millis(1));
        }
        let Queued {
            socket,
            peer,
            provider,
            registration,
            sim,
        } = q;
        if drop_it {
            drop(socket);
        } else {
            // Not held back by the retained indications.
            socket.close().wait(&p).expect("close");
        }
        assert!(peer.wait_closed());
        common::teardown(&p, registration, provider);
        sim.finish();
    }
}

#[test]
fn reads_at_dispatch_level_callbacks_and_completions() {
    let mut q = queued_with(ReceiveQueue::with_limit(2048), |sim| {
        sim.set_event_irql(Irql::Dispatch);
        sim.set_completion_irql(Irql::Dispatch);
        sim.set_completion_mode(CompletionMode::Worker);
        sim.set_indication_chunk(300);
    });
    let data = pattern(sized(200_000), 0x33);
    q.peer.send(&data);
    let got = read_all(&mut q.socket, data.len(), 5000);
    assert!(got == data);
    q.finish();
}

/// Many connections, each echoed by a task with one body, on two workers.
fn echo_tasks(sim: &Sim, connections: usize, len: usize) {
    let listener = sim.peer_listen(common::PEER);
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let executor = common::executor(&p, 2);
    let mut peers = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..connections {
        let socket = block_on(
            &p,
            wsk::tcp::connect(
                &provider,
                common::PEER.parse().unwrap(),
                ReceiveQueue::with_limit(4096),
            ),
        )
        .expect("connect");
        peers.push((listener.accept(), pattern(len, u8::try_from(i).unwrap())));
        tasks.push(
            executor
                .spawn(async move {
                    let mut socket = socket;
                    let mut buffer = Buffer::with_capacity(1500).unwrap();
                    let mut echoed = 0;
                    loop {
                        let (read, back) = socket.read_into(buffer).await;
                        if read? == 0 {
                            break;
                        }
                        let (sent, back) = socket.send_all(back).await;
                        sent?;
                        echoed += back.len();
                        buffer = back;
                    }
                    socket.close().await?;
                    Ok::<_, Error>(echoed)
                })
                .unwrap(),
        );
    }
    for (peer, data) in &peers {
        peer.send(data);
    }
    for (peer, data) in &peers {
        assert!(peer.recv_exact(data.len()) == *data, "echoed in order");
        peer.close();
    }
    for task in tasks {
        assert_eq!(task.join(&p), Ok(Ok(len)));
    }
    executor.shutdown(&p).unwrap();
    drop(peers);
    common::teardown(&p, registration, provider);
}

#[test]
fn tasks_echo_many_connections() {
    let sim = Sim::start();
    echo_tasks(&sim, if cfg!(miri) { 4 } else { 16 }, sized(20_000));
    sim.finish();
}

/// Every behaviour of the adversary, MDL chains, unmapped pages and
/// mapping failures included, with `seed`.
fn hostile(seed: u64) -> Sim {
    let adversary = Adversary::all(seed);
    let mut config = wsk_sim::Config::default();
    config.adversary = Some(adversary);
    Sim::with_config(config)
}

#[test]
fn tasks_echo_under_every_adversary_seed() {
    for seed in 1..=if cfg!(miri) { 1 } else { 4 } {
        let sim = hostile(seed);
        echo_tasks(&sim, 4, sized(30_000));
        sim.finish();
    }
}

#[test]
fn tasks_echo_without_events() {
    let sim = Sim::start();
    // Every connect's enable and every reader's retry: Wine refuses them all.
    sim.imitate_wine_netio();
    let connections = if cfg!(miri) { 2 } else { 8 };
    echo_tasks(&sim, connections, sized(10_000));
    assert!(sim.stats().events.is_empty(), "requests only");
    sim.finish();
}

#[test]
fn a_plain_socket_is_not_touched() {
    // The close hook resolves to nothing for other handlers.
    let c = common::connected_to(NoEvents, |_| {});
    c.finish();
}

/// Mapping a queued indication fails now and then
/// (`MmGetSystemAddressForMdlSafe` may return NULL when resources are
/// short; that a later call may succeed is the crate's assumption,
/// conformance G-18, and the sim's seeded failures let it): the reads wait
/// and try again, and every byte arrives in order.
#[test]
fn reads_wait_out_mapping_failures() {
    let flaky = Adversary::none(31)
        .with(Behaviour::MdlChains)
        .with(Behaviour::UnmappedIndications)
        .with(Behaviour::MappingFailures)
        .mapping_failures_per_mille(250);
    let mut q = queued_with(ReceiveQueue::new(), |sim| {
        sim.set_adversary(Some(flaky));
        sim.set_indication_chunk(97);
    });
    let data = pattern(sized(20_000).max(4_000), 0x5a);
    q.peer.send(&data);
    let got = read_all(&mut q.socket, data.len(), 1500);
    assert!(got == data, "the bytes came in order");
    assert!(q.sim.stats().mapping_failures > 0, "mappings failed");
    let mut lent = Vec::new();
    q.peer.send(b"lent too");
    while lent.len() < 8 {
        let used = block_on(
            &passive(),
            q.socket.read_with(|bytes| {
                lent.extend_from_slice(bytes);
                bytes.len()
            }),
        )
        .expect("read_with waits out failures too");
        assert!(used > 0);
    }
    assert_eq!(lent, b"lent too");
    q.finish();
}

/// A mapping that keeps failing: after its waits the read reports
/// `STATUS_INSUFFICIENT_RESOURCES` and loses nothing — once mapping works
/// again the same bytes are read.
#[test]
fn a_mapping_that_keeps_failing_is_an_error_that_loses_nothing() {
    let failing = Adversary::none(32)
        .with(Behaviour::UnmappedIndications)
        .with(Behaviour::MappingFailures)
        .mapping_failures_per_mille(1000);
    let mut q = queued_with(ReceiveQueue::new(), |_| {});
    let p = passive();
    // Events on, with a first read that finds nothing yet.
    q.peer.send(b"x");
    assert_eq!(read_all(&mut q.socket, 1, 16), b"x");
    q.sim.set_adversary(Some(failing));
    // Half the indicated MDLs come unmapped: among eight indications some
    // must be mapped by the reader, which fails.
    let mut sent = Vec::new();
    for i in 0..8u8 {
        let part = [b'a' + i; 5];
        q.peer.send(&part);
        sent.extend_from_slice(&part);
        q.sim.settle();
    }
    let mut got = Vec::new();
    let mut buffer = Buffer::with_capacity(64).unwrap();
    let mut failed = false;
    while got.len() < sent.len() {
        let (read, back) = block_on(&p, q.socket.read_into(buffer));
        buffer = back;
        match read {
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) => {
                assert_eq!(e, Error::INSUFFICIENT_RESOURCES);
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "a mapping failed for good");
    q.sim
        .set_adversary(Some(failing.mapping_failures_per_mille(0)));
    while got.len() < sent.len() {
        let (read, back) = block_on(&p, q.socket.read_into(buffer));
        buffer = back;
        let n = read.expect("mapping works again");
        got.extend_from_slice(&buffer[..n]);
    }
    assert_eq!(got, sent, "nothing lost, nothing reordered");
    drop(buffer);
    q.finish();
}
