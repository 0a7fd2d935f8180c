//! Each adversarial behaviour of `wsk-sim` reaches the handler, and `wsk`
//! hands it the bytes exactly: indications split at arbitrary bytes, several
//! per callback, `WSK_BUF`s over several MDLs with a non-zero `Offset`,
//! unmapped MDLs and mapping failures (an error the handler sees, never
//! missing bytes), callbacks with and without `WSK_FLAG_AT_DISPATCH_LEVEL`,
//! a FIN or a reset racing the accept, and sends that complete only when the
//! peer reads. A NULL `InspectID` is `conditional_accept.rs`'s
//! `a_null_inspect_id_tells_the_handler_the_listener_is_dead`, a NULL
//! `AcceptSocket` `listen.rs`'s `a_null_accept_socket_is_reported_and_not_accepted`;
//! the interleavings test runs every behaviour together.
//!
//! The rules are those of `docs/conformance.md` (A-1, A-2, A-3, A-12, A-19,
//! M-01, M-05, M-19).

mod common;
use common::{passive, setup, teardown};

use std::sync::Mutex;
use std::time::Duration;

use wsk::events::{
    ConnectionEvents, DatagramAction, DatagramEvents, DatagramIndication, DisconnectFlags,
    EventContext, Incoming, Indication, ListenEvents, NoEvents, ReceiveAction, RetainedDatagrams,
    RetainedIndication,
};
use wsk::tcp::ConnectionSocket;
use wsk::udp::DatagramSocket;
use wsk::{AddressFamily, Buffer, Error, block_on};
use wsk_sim::{Adversary, Behaviour, CompletionMode, Config, EventDelivery, Sim};

/// A machine with only `behaviours` of the adversary, seeded with `seed`.
fn adversary(seed: u64, behaviours: &[Behaviour]) -> Sim {
    let mut a = Adversary::none(seed);
    for &b in behaviours {
        a = a.with(b);
    }
    with_adversary(a)
}

/// A machine with the adversary `a` (and the default configuration).
fn with_adversary(a: Adversary) -> Sim {
    let mut cfg = Config::default();
    cfg.adversary = Some(a);
    Sim::with_config(cfg)
}

/// Byte `i` of a test stream: a pattern whose every window is distinct
/// enough to show loss, duplication and reordering.
fn pattern(len: usize, salt: u32) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((u32::try_from(i).unwrap().wrapping_mul(7) ^ salt) % 251).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// Stream data

/// Keeps every byte indicated, by `copy_to` and by `segments` (which must
/// agree), and counts the pieces and callbacks.
#[derive(Default)]
struct Collect {
    bytes: Mutex<Vec<u8>>,
    pieces: Mutex<usize>,
    callbacks: Mutex<Vec<(usize, bool, bool)>>,
}

#[wsk::vtable]
impl ConnectionEvents for Collect {
    fn on_receive(&self, cx: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let Some(data) = data else {
            return ReceiveAction::Accept;
        };
        let mut copy = vec![0; data.len()];
        assert_eq!(data.copy_to(&mut copy), Ok(data.len()), "copy_to reads all");
        let segments = data.segments().expect("mapped");
        let mut joined = Vec::new();
        let mut n = 0;
        for piece in segments {
            assert!(!piece.is_empty(), "no empty pieces");
            joined.extend_from_slice(piece);
            n += 1;
        }
        assert_eq!(joined, copy, "segments and copy_to agree");
        self.bytes.lock().unwrap().extend_from_slice(&copy);
        *self.pieces.lock().unwrap() += n;
        self.callbacks.lock().unwrap().push((
            data.len(),
            cx.at_dispatch().is_some(),
            data.flags()
                .contains(wsk::events::IndicationFlags::AT_DISPATCH_LEVEL),
        ));
        ReceiveAction::Accept
    }
}

/// BUF-1..3, IND-1 (M-01): every indicated byte reaches the
/// handler, in order, one borrowed slice per MDL piece.
#[test]
fn split_multi_mdl_stream_indications_are_read_whole() {
    // Under Miri a short stream: a seed whose 300 bytes get multi-MDL
    // elements (not every seed's do at that length).
    let seeds: &[u64] = if cfg!(miri) {
        &[1]
    } else {
        &[1, 2, 3, 4, 5, 6]
    };
    for &seed in seeds {
        let sim = adversary(
            seed,
            &[
                Behaviour::MdlChains,
                Behaviour::SplitIndications,
                Behaviour::IrqlMix,
            ],
        );
        let listener = sim.peer_listen("10.0.0.2:80");
        let p = passive();
        let (registration, provider) = setup(&p);
        let socket = block_on(
            &p,
            wsk::tcp::connect(
                &provider,
                "10.0.0.2:80".parse().unwrap(),
                Collect::default(),
            ),
        )
        .unwrap();
        let peer = listener.accept();
        let sent = pattern(
            if cfg!(miri) { 300 } else { 3000 },
            u32::try_from(seed).unwrap(),
        );
        for part in sent.chunks(700) {
            peer.send(part);
        }
        sim.settle();

        let stats = sim.stats();
        let handler = socket.handler();
        assert_eq!(*handler.bytes.lock().unwrap(), sent, "seed {seed}");
        assert!(
            stats.indication_mdls > stats.indication_elements,
            "seed {seed}: several MDLs per WSK_BUF"
        );
        assert!(stats.indication_offsets > 0, "seed {seed}: non-zero Offset");
        assert_eq!(
            *handler.pieces.lock().unwrap(),
            usize::try_from(stats.indication_mdls).unwrap(),
            "seed {seed}: one slice per MDL piece (no copy)"
        );
        let callbacks = handler.callbacks.lock().unwrap().clone();
        assert!(callbacks.len() > 1, "seed {seed}: split indications");
        for &(_, token, flag) in &callbacks {
            assert_eq!(token, flag, "a Dispatch token exactly with the flag");
        }
        socket.close().wait(&p).unwrap();
        teardown(&p, registration, provider);
        sim.finish();
    }
}

/// What [`Refusing`] did with each indication.
#[derive(Default)]
struct Refusing {
    failures: Mutex<usize>,
    retained: Mutex<Vec<RetainedIndication>>,
    retain: bool,
}

#[wsk::vtable]
impl ConnectionEvents for Refusing {
    fn on_receive(&self, _: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let Some(data) = data else {
            return ReceiveAction::Accept;
        };
        let mut copy = vec![0; data.len()];
        let copied = data.copy_to(&mut copy);
        assert_eq!(
            copied.map(drop),
            data.segments().map(drop),
            "copy_to and segments report the same"
        );
        match copied {
            // Every MDL happened to be mapped already: refused all the same.
            Ok(n) => {
                assert_eq!(n, data.len());
                return ReceiveAction::Refuse;
            }
            Err(e) => assert_eq!(e, Error::INSUFFICIENT_RESOURCES),
        }
        *self.failures.lock().unwrap() += 1;
        // Nothing is lost: refused data stays with the provider; retained
        // data stays in the retained list.
        if self.retain {
            if let Some(r) = data.retain() {
                self.retained.lock().unwrap().push(r);
            }
        }
        ReceiveAction::Refuse
    }
}

/// A-19, KRN-MDL-5 (M-01): a piece that cannot be mapped is an error the
/// handler sees; refused data then arrives whole through a receive request.
#[test]
fn mapping_failures_are_errors_and_refused_data_is_not_lost() {
    let sim = with_adversary(
        Adversary::none(11)
            .with(Behaviour::MdlChains)
            .with(Behaviour::UnmappedIndications)
            .with(Behaviour::MappingFailures)
            .mapping_failures_per_mille(1000),
    );
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(
            &provider,
            "10.0.0.2:80".parse().unwrap(),
            Refusing::default(),
        ),
    )
    .unwrap();
    let peer = listener.accept();
    let sent = pattern(2000, 5);
    // Send until an indication had an unmapped MDL (each is unmapped with
    // probability 1/2).
    let mut got = Vec::new();
    for part in sent.chunks(200) {
        peer.send(part);
        sim.settle();
        if *socket.handler().failures.lock().unwrap() > 0 {
            break;
        }
        // Mapped: nothing failed, but the handler refused; take it.
        let (n, buffer) = socket
            .receive(Buffer::with_capacity(4096).unwrap())
            .wait(&p);
        got.extend_from_slice(&buffer[..n.unwrap()]);
    }
    assert!(*socket.handler().failures.lock().unwrap() > 0);
    assert!(sim.stats().mapping_failures > 0);
    peer.close();
    loop {
        let (n, buffer) = socket
            .receive(Buffer::with_capacity(4096).unwrap())
            .wait(&p);
        if n.unwrap() == 0 {
            break;
        }
        got.extend_from_slice(&buffer);
    }
    assert_eq!(got, sent[..got.len()]);
    assert_eq!(got.len(), sent.len().min(got.len()));
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

/// A-19, KRN-MDL-5 (M-01, M-19): a retained indication whose MDLs could not
/// be mapped during the callback is read once mapping works again.
#[test]
fn retained_indications_are_mapped_when_read() {
    let failing = Adversary::none(12)
        .with(Behaviour::MdlChains)
        .with(Behaviour::UnmappedIndications)
        .with(Behaviour::MappingFailures)
        .mapping_failures_per_mille(1000);
    let sim = with_adversary(failing);
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(
            &provider,
            "10.0.0.2:80".parse().unwrap(),
            Refusing {
                retain: true,
                ..Refusing::default()
            },
        ),
    )
    .unwrap();
    let peer = listener.accept();
    let mut sent = Vec::new();
    for i in 0..40 {
        let part = pattern(100, i);
        peer.send(&part);
        sent.extend_from_slice(&part);
        sim.settle();
        if !socket.handler().retained.lock().unwrap().is_empty() {
            break;
        }
        // This piece happened to be mapped (and refused): read it.
        let (n, buffer) = socket
            .receive(Buffer::with_capacity(4096).unwrap())
            .wait(&p);
        let n = n.unwrap();
        assert_eq!(buffer[..n], sent[sent.len() - n..]);
        sent.clear();
    }
    let retained: Vec<_> = socket
        .handler()
        .retained
        .lock()
        .unwrap()
        .drain(..)
        .collect();
    assert_eq!(retained.len(), 1, "an unmapped indication was retained");
    let kept = &retained[0];
    assert_eq!(
        kept.with_segments(|_| ()),
        Err(Error::INSUFFICIENT_RESOURCES)
    );
    // Mapping works again: the retained bytes are all there.
    sim.set_adversary(Some(failing.mapping_failures_per_mille(0)));
    let mut copy = vec![0; kept.len()];
    assert_eq!(kept.copy_to(&mut copy), Ok(kept.len()));
    let joined: Vec<u8> = kept
        .with_segments(|segments| segments.flatten().copied().collect())
        .unwrap();
    assert_eq!(joined, copy);
    assert_eq!(copy, sent);
    drop(retained);
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

// ---------------------------------------------------------------------------
// Datagrams

/// Keeps every datagram indicated; one it cannot map yet is retained and
/// read by the test later, in order.
#[derive(Default)]
struct Datagrams {
    seen: Mutex<Vec<Entry>>,
    pieces: Mutex<usize>,
    per_callback: Mutex<Vec<usize>>,
}

enum Entry {
    Bytes(Vec<u8>),
    Kept(RetainedDatagrams),
}

#[wsk::vtable]
impl DatagramEvents for Datagrams {
    fn on_receive_from(
        &self,
        _: &EventContext<'_>,
        data: Option<DatagramIndication<'_>>,
    ) -> DatagramAction {
        let Some(data) = data else {
            return DatagramAction::Accept;
        };
        let mut read = Vec::new();
        let mut pieces = 0;
        for d in &data {
            let mut v = vec![0; d.len()];
            match d.copy_to(&mut v) {
                Ok(n) => assert_eq!(n, d.len()),
                Err(e) => {
                    assert_eq!(e, Error::INSUFFICIENT_RESOURCES);
                    let kept = data.retain().expect("the socket is open");
                    self.seen.lock().unwrap().push(Entry::Kept(kept));
                    return DatagramAction::Refuse; // ignored: retained
                }
            }
            let joined: Vec<u8> = d.segments().unwrap().flatten().copied().collect();
            assert_eq!(joined, v);
            pieces += d.segments().unwrap().count();
            read.push(v);
        }
        *self.pieces.lock().unwrap() += pieces;
        self.per_callback.lock().unwrap().push(read.len());
        self.seen
            .lock()
            .unwrap()
            .extend(read.into_iter().map(Entry::Bytes));
        DatagramAction::Accept
    }
}

/// DG-IND-1 (M-01): datagrams over several MDLs, several
/// per callback, some unmappable, are all read exactly.
#[test]
fn multi_mdl_datagrams_are_read_exactly() {
    // Under Miri 6 datagrams: a seed that puts several in one callback.
    let sim = with_adversary(
        Adversary::none(if cfg!(miri) { 1 } else { 5 })
            .with(Behaviour::MdlChains)
            .with(Behaviour::SplitIndications)
            .with(Behaviour::UnmappedIndications)
            .with(Behaviour::MappingFailures),
    );
    let peer = sim.peer_udp("10.0.0.2:53");
    let p = passive();
    let (registration, provider) = setup(&p);
    // Datagrams queue while the event is off, so that one callback can
    // carry several.
    let socket = DatagramSocket::new(&provider, AddressFamily::V4, Datagrams::default())
        .wait(&p)
        .unwrap();
    socket
        .bind("10.0.0.1:6000".parse().unwrap())
        .wait(&p)
        .unwrap();
    let count = if cfg!(miri) { 6 } else { 40 };
    let sent: Vec<Vec<u8>> = (0..count)
        .map(|i| pattern(20 + 37 * i, u32::try_from(i).unwrap()))
        .collect();
    for d in &sent {
        peer.send_to("10.0.0.1:6000", d);
    }
    socket.enable_events().unwrap();
    sim.settle();
    let stats = sim.stats();
    assert!(stats.indication_mdls > stats.indication_elements);

    let entries: Vec<Entry> = socket.handler().seen.lock().unwrap().drain(..).collect();
    sim.set_adversary(None); // mapping works: read what was kept
    let mut got = Vec::new();
    for e in entries {
        match e {
            Entry::Bytes(b) => got.push(b),
            Entry::Kept(list) => list
                .with_datagrams(|datagrams| {
                    for d in datagrams {
                        got.push(d.to_buffer().unwrap().to_vec());
                    }
                })
                .unwrap(),
        }
    }
    assert_eq!(got, sent);
    {
        assert!(
            socket
                .handler()
                .per_callback
                .lock()
                .unwrap()
                .iter()
                .any(|&n| n > 1),
            "several datagrams per callback"
        );
    }
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}

// ---------------------------------------------------------------------------
// A FIN or a reset racing the accept (A-12, DSC-EV-3, M-05)

/// What the accepted connections saw, in order.
#[derive(Default)]
struct RaceLog {
    log: Mutex<Vec<String>>,
}

/// The connection handler of [`Racing`]: logs data and disconnects.
struct RaceConn(std::sync::Arc<RaceLog>);

#[wsk::vtable]
impl ConnectionEvents for RaceConn {
    fn on_receive(&self, _: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let Some(data) = data else {
            return ReceiveAction::Accept;
        };
        let mut bytes = vec![0; data.len()];
        assert_eq!(data.copy_to(&mut bytes), Ok(data.len()));
        self.0
            .log
            .lock()
            .unwrap()
            .push(format!("receive {}", String::from_utf8(bytes).unwrap()));
        ReceiveAction::Accept
    }

    fn on_disconnect(&self, _: &EventContext<'_>, flags: DisconnectFlags) {
        let kind = if flags.contains(DisconnectFlags::ABORTIVE) {
            "abortive"
        } else {
            "graceful"
        };
        self.0
            .log
            .lock()
            .unwrap()
            .push(format!("disconnect {kind}"));
    }
}

/// The peer end of the connection being accepted, for what [`Racing`]
/// does inside its accept callback.
static RACING_PEER: Mutex<Option<(wsk_sim::PeerConn, bool)>> = Mutex::new(None);

/// A listener that accepts everything (after closing or resetting
/// [`RACING_PEER`]'s end, if set, inside the callback) and keeps the sockets.
#[derive(Default)]
struct Racing {
    shared: std::sync::Arc<RaceLog>,
    accepted: Mutex<Vec<ConnectionSocket<RaceConn>>>,
}

#[wsk::vtable]
impl ListenEvents for Racing {
    type Connection = RaceConn;

    fn on_accept(&self, _: &EventContext<'_>, incoming: Option<Incoming<'_, RaceConn>>) {
        let incoming = incoming.expect("a live listener");
        if let Some((peer, reset)) = RACING_PEER.lock().unwrap().take() {
            peer.send(b"late");
            if reset {
                peer.abort();
            } else {
                peer.close();
            }
        }
        self.shared.log.lock().unwrap().push("accept".into());
        let socket = incoming
            .accept(RaceConn(std::sync::Arc::clone(&self.shared)))
            .expect("memory for the socket");
        self.accepted.lock().unwrap().push(socket);
    }
}

/// `peer` acts (`early`) before the accept event runs, or (`RACING_PEER`)
/// while it runs; the log of what the handlers saw.
fn race_accept(port: u16, act: impl FnOnce(&Sim, &str)) -> Vec<String> {
    // Benign but for the data path: the test holds the accept event back
    // itself (worker delivery, manual completion).
    let sim = adversary(3, &[Behaviour::MdlChains, Behaviour::IrqlMix]);
    let p = passive();
    let (registration, provider) = setup(&p);
    let address = format!("0.0.0.0:{port}");
    let listener = block_on(
        &p,
        wsk::tcp::listen(&provider, address.parse().unwrap(), Racing::default()),
    )
    .unwrap();
    assert!(listener.events_enabled());
    // Enabling the events left a delivery for the worker: let it run before
    // deliveries are held back, or it would take the connection early.
    sim.settle();
    sim.set_event_delivery(EventDelivery::Worker);
    sim.set_completion_mode(CompletionMode::Manual);
    act(&sim, &format!("10.0.0.1:{port}"));
    let _ = sim.run_pending();
    sim.set_completion_mode(CompletionMode::Inline);
    sim.set_event_delivery(EventDelivery::Inline);
    let log = listener.handler().shared.log.lock().unwrap().clone();
    let accepted: Vec<_> = listener
        .handler()
        .accepted
        .lock()
        .unwrap()
        .drain(..)
        .collect();
    for socket in accepted {
        socket.close().wait(&p).unwrap();
    }
    listener.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
    log
}

#[test]
fn a_fin_before_the_accept_reaches_the_accepted_socket() {
    let log = race_accept(6301, |sim, to| {
        let peer = sim.peer_connect(to).unwrap();
        peer.send(b"early");
        peer.close();
    });
    assert_eq!(log, ["accept", "receive early", "disconnect graceful"]);
}

#[test]
fn a_fin_while_the_accept_runs_reaches_the_accepted_socket() {
    let log = race_accept(6302, |sim, to| {
        *RACING_PEER.lock().unwrap() = Some((sim.peer_connect(to).unwrap(), false));
    });
    assert_eq!(log, ["accept", "receive late", "disconnect graceful"]);
}

#[test]
fn a_reset_while_the_accept_runs_reaches_the_accepted_socket() {
    let log = race_accept(6303, |sim, to| {
        *RACING_PEER.lock().unwrap() = Some((sim.peer_connect(to).unwrap(), true));
    });
    // The reset discards the data sent before it.
    assert_eq!(log, ["accept", "disconnect abortive"]);
}

#[test]
fn a_reset_before_the_accept_withdraws_the_connection() {
    let log = race_accept(6304, |sim, to| {
        sim.peer_connect(to).unwrap().abort();
    });
    assert!(log.is_empty(), "{log:?}");
}

// ---------------------------------------------------------------------------
// Sends wait for the receiver (A-22, SND-4)

/// A send completes only once the peer reads: `wsk` hands the buffer back
/// then, whatever thread completes it.
#[test]
fn a_send_completes_when_the_peer_reads() {
    let sim = adversary(4, &[Behaviour::LateSends, Behaviour::CompletionMix]);
    let listener = sim.peer_listen("10.0.0.2:81");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(&provider, "10.0.0.2:81".parse().unwrap(), NoEvents),
    )
    .unwrap();
    let peer = listener.accept();
    let data = pattern(if cfg!(miri) { 70_000 } else { 200_000 }, 11);
    let mut buffer = Buffer::with_capacity(data.len()).unwrap();
    buffer.extend_from_slice(&data);
    let Err(request) = socket
        .send(buffer)
        .wait_timeout(&p, Duration::from_millis(20))
    else {
        panic!("the send completed before the peer read")
    };
    let len = data.len();
    let reader = std::thread::spawn(move || peer.recv_exact(len));
    let (sent, buffer) = request.wait(&p);
    assert_eq!(sent, Ok(len));
    assert_eq!(buffer.as_slice(), &data[..], "the buffer comes back");
    drop(buffer);
    assert!(reader.join().unwrap() == data);
    socket.close().wait(&p).unwrap();
    teardown(&p, registration, provider);
    sim.finish();
}
