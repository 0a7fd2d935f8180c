//! Seeded property test: random interleavings of requests, drops, peer
//! actions, injected faults and closes, checked for leaks, verifier
//! violations and byte-stream integrity.
//!
//! Every seed builds one random scenario through the safe API against the
//! simulated provider with the verifier on, and with the adversary (every
//! behaviour `WSK_SIM_ADVERSARY` names — all by default — seeded from the
//! scenario's seed, rare events included: callbacks racing pending
//! requests, graceful disconnects that never complete). `cargo test` runs
//! 500 seeds (Miri: a handful); `WSK_INTERLEAVINGS=N` runs `N` seeds,
//! `WSK_SEED=s` replays seed `s` alone. A failure prints the seed and the
//! action log.
//!
//! Byte streams are self-describing: byte `i` of a direction's stream is
//! `i as u8 ^ salt`, and each direction carries at most 256 bytes, so every
//! received byte names its offset. That makes duplication, reordering,
//! cross-talk and loss checkable even when requests are dropped at random.

// A scenario is one long script and its state a bag of flags; splitting
// them would only scatter the log.
#![allow(clippy::too_many_lines, clippy::struct_excessive_bools)]

mod common;
use common::passive;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wsk::events::{
    ConnectionEvents, DisconnectFlags, EventContext, Indication, NoListenEvents, ReceiveAction,
    RetainedIndication,
};
use wsk::irql::Passive;
use wsk::request::ops::TransferOp;
use wsk::request::{Request, SlotRequest, TransferSlot};
use wsk::tcp::{ConnectionSocket, ListenSocket, ReceiveFlags, SendFlags};
use wsk::{Buffer, Error, Registration, block_on};
use wsk_sim::{
    Adversary, CompletionMode, Config, EventKind, Irql, PeerConn, PeerListener, Routine, Sim,
};
use wsk_sys as sys;

/// Bytes per direction per connection: every byte value names its offset.
const STREAM_CAP: usize = 256;
/// How long a request that must resolve may take.
const RESOLVE: Duration = Duration::from_secs(10);
/// How long a graceful disconnect may take before the scenario takes it
/// for stuck and aborts.
const STUCK: Duration = Duration::from_millis(200);
/// Rare adversarial events per 1000 chances: callbacks racing pending
/// requests, stuck graceful disconnects (the adversary's
/// `rare_events_per_mille`).
const RARE_EVENTS: u16 = 100;

// ---------------------------------------------------------------------------
// PRNG

/// `SplitMix64`: small, deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

// ---------------------------------------------------------------------------
// Coverage counters, printed at the end

#[derive(Default, Debug)]
struct Coverage {
    connections: usize,
    sends_ok: usize,
    sends_failed: usize,
    receives_with_data: usize,
    receives_failed: usize,
    end_of_stream: usize,
    dropped: usize,
    slot_requests: usize,
    slot_memory_lost: usize,
    event_chunks: usize,
    abort_refusals: usize,
    mapping_failures: usize,
    stuck_disconnects: usize,
    indication_mdls: u64,
    indication_elements: u64,
    indication_offsets: u64,
    provider_mapping_failures: u64,
    peer_bytes_checked: usize,
    driver_bytes_checked: usize,
}

static COVERAGE: Mutex<Coverage> = Mutex::new(Coverage {
    connections: 0,
    sends_ok: 0,
    sends_failed: 0,
    receives_with_data: 0,
    receives_failed: 0,
    end_of_stream: 0,
    dropped: 0,
    slot_requests: 0,
    slot_memory_lost: 0,
    event_chunks: 0,
    abort_refusals: 0,
    mapping_failures: 0,
    stuck_disconnects: 0,
    indication_mdls: 0,
    indication_elements: 0,
    indication_offsets: 0,
    provider_mapping_failures: 0,
    peer_bytes_checked: 0,
    driver_bytes_checked: 0,
});

fn cover(f: impl FnOnce(&mut Coverage)) {
    f(&mut COVERAGE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner));
}

// ---------------------------------------------------------------------------
// Action log, printed when a seed fails

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(entry: String) {
    LOG.with(|l| l.borrow_mut().push(entry));
}

/// Prints the seed and the log if the scenario panics.
struct FailureReport {
    seed: u64,
}

impl Drop for FailureReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let entries = LOG.with(|l| l.borrow().join("\n  "));
            eprintln!(
                "\n=== interleavings: seed {} failed; replay with WSK_SEED={} ===\n  {entries}\n",
                self.seed, self.seed
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The connection handler

/// What the receive callback does with indicated data.
#[derive(Clone, Copy, Debug)]
enum RecvMode {
    /// Takes everything.
    Accept,
    /// Takes nothing: the data waits for receive requests.
    Refuse,
    /// Takes at most this many bytes.
    Partial(usize),
    /// Keeps the provider's buffers; the test releases them later.
    Retain,
}

/// State shared between a connection's handler and the test.
#[derive(Default)]
struct Shared {
    /// Bytes taken by receive callbacks (accepted or retained), in callback order.
    event_chunks: Mutex<Vec<Vec<u8>>>,
    /// Disconnect callbacks seen.
    disconnects: Mutex<Vec<DisconnectFlags>>,
    /// Retained indications not yet released (kept outside the handler, so
    /// they do not keep the socket from closing).
    retained: Mutex<Vec<RetainedIndication>>,
    /// NULL indications ("close the socket").
    null_indications: Mutex<usize>,
}

struct Handler {
    mode: RecvMode,
    shared: Arc<Shared>,
}

#[wsk::vtable]
impl ConnectionEvents for Handler {
    fn on_receive(&self, _cx: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let Some(data) = data else {
            *self.shared.null_indications.lock().unwrap() += 1;
            return ReceiveAction::Accept;
        };
        match self.mode {
            RecvMode::Accept => {
                let mut v = vec![0; data.len()];
                match data.copy_to(&mut v) {
                    Ok(n) => assert_eq!(n, data.len(), "copy_to copies the whole indication"),
                    Err(e) => return Self::mapping_failed(e),
                }
                self.shared.event_chunks.lock().unwrap().push(v);
                ReceiveAction::Accept
            }
            RecvMode::Refuse => ReceiveAction::Refuse,
            RecvMode::Partial(k) => {
                let k = k.min(data.len());
                if k == 0 {
                    return ReceiveAction::Refuse;
                }
                let mut v = vec![0; k];
                match data.copy_to(&mut v) {
                    Ok(n) => assert_eq!(n, k),
                    Err(e) => return Self::mapping_failed(e),
                }
                self.shared.event_chunks.lock().unwrap().push(v);
                ReceiveAction::AcceptPartial(k)
            }
            RecvMode::Retain => {
                let mut v = vec![0; data.len()];
                if let Err(e) = data.copy_to(&mut v) {
                    return Self::mapping_failed(e);
                }
                // Hold the lock across retain, so the chunk order matches
                // the order in which indications were taken.
                let mut chunks = self.shared.event_chunks.lock().unwrap();
                if let Some(r) = data.retain() {
                    assert_eq!(r.len(), v.len());
                    chunks.push(v);
                    self.shared.retained.lock().unwrap().push(r);
                }
                // If the socket is closing, the data is refused.
                ReceiveAction::Refuse
            }
        }
    }

    fn on_disconnect(&self, _cx: &EventContext<'_>, flags: DisconnectFlags) {
        self.shared.disconnects.lock().unwrap().push(flags);
    }
}

impl Handler {
    /// A piece of the indication could not be mapped: the data stays with
    /// the provider, for a receive request.
    fn mapping_failed(e: Error) -> ReceiveAction {
        assert_eq!(e, Error::INSUFFICIENT_RESOURCES, "mapping failures only");
        cover(|c| c.mapping_failures += 1);
        ReceiveAction::Refuse
    }
}

// ---------------------------------------------------------------------------
// Scenario state

type Transfer = Request<TransferOp>;

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Still held by the test.
    Pending,
    /// Resolved: bytes transferred (receive: and the bytes).
    Done(Result<usize, Error>),
    /// Dropped before its result was seen.
    Dropped,
}

struct SendRec {
    start: usize,
    len: usize,
    outcome: Outcome,
}

struct RecvRec {
    capacity: usize,
    outcome: Outcome,
    data: Vec<u8>,
}

struct Held {
    send: bool,
    index: usize,
    request: Transfer,
}

struct Conn {
    name: String,
    socket: Option<ConnectionSocket<Handler>>,
    events_enabled: bool,
    peer: PeerConn,
    shared: Arc<Shared>,
    /// Salt of the peer → driver stream.
    salt_in: u8,
    /// Salt of the driver → peer stream.
    salt_out: u8,
    peer_sent: usize,
    peer_closed: bool,
    peer_aborted: bool,
    driver_aborted: bool,
    driver_disconnected: bool,
    next_out: usize,
    sends: Vec<SendRec>,
    recvs: Vec<RecvRec>,
    held: Vec<Held>,
    /// Reused memory for requests resolved within one step.
    slot: TransferSlot,
    peer_received: Vec<u8>,
}

fn encode(start: usize, len: usize, salt: u8) -> Vec<u8> {
    (start..start + len)
        .map(|i| u8::try_from(i).unwrap() ^ salt)
        .collect()
}

impl Conn {
    fn new(
        name: String,
        socket: ConnectionSocket<Handler>,
        peer: PeerConn,
        shared: Arc<Shared>,
        rng: &mut Rng,
        events_enabled: bool,
    ) -> Self {
        let salt_in = u8::try_from(rng.below(256)).unwrap();
        let salt_out = u8::try_from(rng.below(256)).unwrap();
        Conn {
            name,
            socket: Some(socket),
            events_enabled,
            peer,
            shared,
            salt_in,
            salt_out,
            peer_sent: 0,
            peer_closed: false,
            peer_aborted: false,
            driver_aborted: false,
            driver_disconnected: false,
            next_out: 0,
            sends: Vec::new(),
            recvs: Vec::new(),
            held: Vec::new(),
            slot: TransferSlot::new().expect("slot"),
            peer_received: Vec::new(),
        }
    }

    /// Records the result of a resolved request.
    fn record(&mut self, send: bool, index: usize, output: (Result<usize, Error>, Buffer)) {
        let (result, buffer) = output;
        if send {
            let rec = &mut self.sends[index];
            assert_eq!(
                buffer.as_slice(),
                encode(rec.start, rec.len, self.salt_out).as_slice(),
                "{}: send #{index} returned its buffer altered",
                self.name
            );
            if let Ok(n) = result {
                assert!(
                    n <= rec.len,
                    "{}: send #{index} sent {n} > {}",
                    self.name,
                    rec.len
                );
            }
            log(format!("  {} send #{index} -> {result:?}", self.name));
            rec.outcome = Outcome::Done(result);
        } else {
            let rec = &mut self.recvs[index];
            assert!(
                buffer.capacity() >= rec.capacity,
                "{}: receive buffer shrank",
                self.name
            );
            if let Ok(n) = result {
                assert_eq!(buffer.len(), n, "{}: receive #{index} length", self.name);
                assert!(n <= rec.capacity);
                rec.data = buffer.as_slice().to_vec();
                if n == 0 {
                    assert!(
                        self.peer_closed,
                        "{}: receive #{index} reported end of stream but the peer did not close",
                        self.name
                    );
                }
            }
            log(format!("  {} recv #{index} -> {result:?}", self.name));
            rec.outcome = Outcome::Done(result);
        }
    }

    /// Takes the results of held requests that have completed.
    fn harvest(&mut self, p: &Passive<'_>) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].request.is_complete() {
                let h = self.held.remove(i);
                let out = h.request.wait(p);
                self.record(h.send, h.index, out);
            } else {
                i += 1;
            }
        }
    }

    /// What happens to a freshly submitted request.
    fn dispose(
        &mut self,
        p: &Passive<'_>,
        rng: &mut Rng,
        send: bool,
        index: usize,
        request: Transfer,
    ) {
        match rng.below(10) {
            // Keep it.
            0..=4 => {
                self.held.push(Held {
                    send,
                    index,
                    request,
                });
                log("  -> held".to_owned());
            }
            // Drop it at once.
            5 | 6 => {
                log(format!(
                    "  -> dropped at once (complete: {})",
                    request.is_complete()
                ));
                drop(request);
                self.mark_dropped(send, index);
            }
            // Wait briefly; on timeout keep or drop it.
            _ => match request.wait_timeout(p, Duration::from_millis(1)) {
                Ok(out) => self.record(send, index, out),
                Err(request) => {
                    if rng.chance(50) {
                        log("  -> wait_timeout expired, dropped".to_owned());
                        drop(request);
                        self.mark_dropped(send, index);
                    } else {
                        log("  -> wait_timeout expired, held".to_owned());
                        self.held.push(Held {
                            send,
                            index,
                            request,
                        });
                    }
                }
            },
        }
    }

    /// Makes a send (`Some(data)`) or a receive in the connection's slot and
    /// resolves it within this step: waited for, polled then waited for, or
    /// dropped.
    fn slot_request(
        &mut self,
        p: &Passive<'_>,
        rng: &mut Rng,
        index: usize,
        data: Option<Vec<u8>>,
        capacity: usize,
    ) {
        let send = data.is_some();
        let socket = self.socket.as_ref().unwrap();
        let request = match data {
            Some(data) => socket.send_in(
                &mut self.slot,
                Buffer::from_slice(&data).unwrap(),
                SendFlags::empty(),
            ),
            None => socket.receive_in(
                &mut self.slot,
                Buffer::with_capacity(capacity).unwrap(),
                ReceiveFlags::empty(),
            ),
        };
        let resolved = resolve_slot_request(p, rng, request);
        cover(|c| c.slot_requests += 1);
        if !self.slot.is_ready() {
            cover(|c| c.slot_memory_lost += 1);
        }
        match resolved {
            Some(out) => self.record(send, index, out),
            None => self.mark_dropped(send, index),
        }
    }

    fn mark_dropped(&mut self, send: bool, index: usize) {
        if send {
            self.sends[index].outcome = Outcome::Dropped;
        } else {
            self.recvs[index].outcome = Outcome::Dropped;
        }
    }

    fn drain_peer(&mut self) {
        if !self.peer_aborted {
            let got = self.peer.try_recv();
            self.peer_received.extend(got);
        }
    }

    /// After an abortive disconnect that this side observed, sends fail at once.
    fn check_abort_refuses_sends(&mut self, p: &Passive<'_>) {
        let Some(socket) = &self.socket else { return };
        if !socket.is_aborted() {
            return;
        }
        let request = socket.send(Buffer::from_slice(b"x").unwrap());
        assert!(
            request.is_complete(),
            "{}: send after abortive disconnect reached the provider",
            self.name
        );
        let (result, buffer) = request.wait(p);
        assert_eq!(result, Err(Error::CONNECTION_ABORTED), "{}", self.name);
        assert_eq!(buffer.as_slice(), b"x");
        log(format!("  {}: send after abort refused", self.name));
        cover(|c| c.abort_refusals += 1);
    }

    fn release_retained(&self, all: bool, rng: &mut Rng) {
        let mut retained = self.shared.retained.lock().unwrap();
        let n = if all {
            retained.len()
        } else {
            rng.range(0, retained.len())
        };
        let released: Vec<_> = retained.drain(..n).collect();
        drop(retained);
        log(format!("  {}: release {n} retained", self.name));
        drop(released);
    }

    /// Checks the byte streams once everything has resolved.
    fn verify(&self) {
        cover(|cov| {
            cov.connections += 1;
            for s in &self.sends {
                match s.outcome {
                    Outcome::Done(Ok(_)) => cov.sends_ok += 1,
                    Outcome::Done(Err(_)) => cov.sends_failed += 1,
                    _ => cov.dropped += 1,
                }
            }
            for r in &self.recvs {
                match r.outcome {
                    Outcome::Done(Ok(0)) => cov.end_of_stream += 1,
                    Outcome::Done(Ok(_)) => cov.receives_with_data += 1,
                    Outcome::Done(Err(_)) => cov.receives_failed += 1,
                    _ => cov.dropped += 1,
                }
            }
            cov.event_chunks += self.shared.event_chunks.lock().unwrap().len();
            cov.peer_bytes_checked += self.peer_received.len();
            cov.driver_bytes_checked += self.recvs.iter().map(|r| r.data.len()).sum::<usize>()
                + self
                    .shared
                    .event_chunks
                    .lock()
                    .unwrap()
                    .iter()
                    .map(Vec::len)
                    .sum::<usize>();
        });
        // Driver → peer: each received byte names its offset.
        let offsets: Vec<usize> = self
            .peer_received
            .iter()
            .map(|b| usize::from(b ^ self.salt_out))
            .collect();
        for w in offsets.windows(2) {
            assert!(
                w[0] < w[1],
                "{}: peer received bytes out of order or twice: offsets {offsets:?}",
                self.name
            );
        }
        for (i, s) in self.sends.iter().enumerate() {
            let got: Vec<usize> = offsets
                .iter()
                .copied()
                .filter(|&o| o >= s.start && o < s.start + s.len)
                .collect();
            let prefix: Vec<usize> = (s.start..s.start + got.len()).collect();
            assert_eq!(
                got, prefix,
                "{}: send #{i} arrived with a hole: {got:?}",
                self.name
            );
            match &s.outcome {
                Outcome::Done(Ok(n)) if !self.peer_aborted && !self.driver_aborted => assert_eq!(
                    got.len(),
                    *n,
                    "{}: send #{i} reported {n} bytes, peer got {}",
                    self.name,
                    got.len()
                ),
                Outcome::Done(Err(e)) => assert!(
                    got.is_empty(),
                    "{}: send #{i} failed ({e:?}) but {} bytes arrived",
                    self.name,
                    got.len()
                ),
                Outcome::Pending => panic!("{}: send #{i} never resolved", self.name),
                _ => {}
            }
        }
        for &o in &offsets {
            assert!(
                self.sends
                    .iter()
                    .any(|s| o >= s.start && o < s.start + s.len),
                "{}: peer received byte {o} nobody sent",
                self.name
            );
        }

        // Peer → driver: event chunks in callback order, request chunks in
        // submission order; each contiguous, all disjoint.
        let decode = |chunk: &[u8], what: &str| -> (usize, usize) {
            let offs: Vec<usize> = chunk
                .iter()
                .map(|b| usize::from(b ^ self.salt_in))
                .collect();
            for w in offs.windows(2) {
                assert_eq!(
                    w[0] + 1,
                    w[1],
                    "{}: {what} is not contiguous: {offs:?}",
                    self.name
                );
            }
            let end = offs[0] + offs.len();
            assert!(
                end <= self.peer_sent,
                "{}: {what} has bytes the peer never sent",
                self.name
            );
            (offs[0], end)
        };
        let mut intervals = Vec::new();
        let mut last = 0;
        for (i, c) in self.shared.event_chunks.lock().unwrap().iter().enumerate() {
            let (s, e) = decode(c, &format!("event chunk {i}"));
            assert!(s >= last, "{}: event chunks out of order", self.name);
            last = e;
            intervals.push((s, e));
        }
        let mut last = 0;
        let mut uncertain = false;
        for (i, r) in self.recvs.iter().enumerate() {
            match &r.outcome {
                Outcome::Done(Ok(n)) if *n > 0 => {
                    let (s, e) = decode(&r.data, &format!("receive #{i}"));
                    assert!(
                        s >= last,
                        "{}: receive #{i} data precedes an earlier receive's",
                        self.name
                    );
                    last = e;
                    intervals.push((s, e));
                }
                Outcome::Dropped => uncertain = true,
                Outcome::Pending => panic!("{}: receive #{i} never resolved", self.name),
                Outcome::Done(_) => {}
            }
        }
        intervals.sort_unstable();
        for w in intervals.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "{}: bytes delivered twice: {intervals:?}",
                self.name
            );
        }
        if !uncertain {
            let mut end = 0;
            for &(s, e) in &intervals {
                assert_eq!(
                    s, end,
                    "{}: a hole in the received stream: {intervals:?}",
                    self.name
                );
                end = e;
            }
        }
    }
}

/// A waker that counts its wakes.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Resolves a slot request within the step, one of four ways; `None` if it
/// was dropped unresolved.
fn resolve_slot_request(
    p: &Passive<'_>,
    rng: &mut Rng,
    mut request: SlotRequest<'_, TransferOp>,
) -> Option<(Result<usize, Error>, Buffer)> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    match rng.below(4) {
        0 => {
            log(format!(
                "  -> slot: dropped at once (complete: {})",
                request.is_complete()
            ));
            None
        }
        1 => {
            // Poll with a waker first: the completion routine takes it.
            let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
            let waker = Waker::from(Arc::clone(&counter));
            let mut cx = Context::from_waker(&waker);
            match std::pin::Pin::new(&mut request).poll(&mut cx) {
                Poll::Ready(out) => {
                    log("  -> slot: ready on first poll".to_owned());
                    Some(out)
                }
                Poll::Pending => match request.wait_timeout(p, Duration::from_millis(1)) {
                    Ok(out) => {
                        log("  -> slot: polled, then waited".to_owned());
                        Some(out)
                    }
                    Err(request) => {
                        log("  -> slot: polled, wait expired, dropped".to_owned());
                        drop(request);
                        None
                    }
                },
            }
        }
        _ => match request.wait_timeout(p, Duration::from_millis(1)) {
            Ok(out) => {
                log("  -> slot: waited".to_owned());
                Some(out)
            }
            Err(request) => {
                log("  -> slot: wait expired, dropped".to_owned());
                drop(request);
                None
            }
        },
    }
}

// ---------------------------------------------------------------------------
// One scenario

fn scenario(seed: u64, steps: usize) {
    LOG.with(|l| l.borrow_mut().clear());
    let _report = FailureReport { seed };
    let mut rng = Rng(seed ^ 0x5EED_0000_0000_0000);

    let per_request = rng.chance(15);
    // The adversary draws from the scenario's seed too (whatever
    // WSK_SIM_ADVERSARY names, seeded per scenario), rare events included.
    let adversary = Adversary::from_env().map(|a| {
        a.with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ a.seed())
            .rare_events_per_mille(RARE_EVENTS)
    });
    let sim = Sim::with_config({
        let mut cfg = Config::default();
        cfg.adversary = adversary;
        cfg.seed = per_request.then_some(seed);
        cfg
    });
    let mode = match rng.below(5) {
        0 => CompletionMode::Inline,
        1 => CompletionMode::InlineReturnPending,
        2 => CompletionMode::Worker,
        3 => CompletionMode::Delayed(Duration::from_micros(
            u64::try_from(rng.range(50, 1500)).unwrap(),
        )),
        _ => CompletionMode::Manual,
    };
    let manual = mode == CompletionMode::Manual;
    let irql = if rng.chance(50) {
        Irql::Dispatch
    } else {
        Irql::Passive
    };
    let ignore_cancel = rng.chance(30);
    if !per_request {
        sim.set_completion_mode(mode);
        sim.set_event_irql(irql);
    }
    sim.set_ignore_cancel(ignore_cancel);
    log(format!(
        "seed {seed}: per_request={per_request} mode={mode:?} event_irql={irql:?} \
         ignore_cancel={ignore_cancel} adversary={}",
        adversary.map_or_else(|| "off".to_owned(), |a| a.to_string())
    ));

    let p = passive();
    let registration = Registration::register(&p).expect("register");
    let provider = registration.capture(&p, Some(RESOLVE)).expect("capture");

    let mut conns: Vec<Conn> = Vec::new();
    let mut peer_listeners: Vec<PeerListener> = Vec::new();
    let mut listen: Option<ListenSocket<NoListenEvents<Handler>>> = None;
    let max_conns = rng.range(1, 3);

    let new_handler = |rng: &mut Rng| {
        let mode = match rng.below(4) {
            0 => RecvMode::Accept,
            1 => RecvMode::Refuse,
            2 => RecvMode::Partial(rng.range(0, 24)),
            _ => RecvMode::Retain,
        };
        let shared = Arc::new(Shared::default());
        (
            Handler {
                mode,
                shared: Arc::clone(&shared),
            },
            shared,
            mode,
        )
    };

    for step in 0..steps {
        let live: Vec<usize> = (0..conns.len())
            .filter(|&i| conns[i].socket.is_some())
            .collect();
        let action = if live.is_empty() || (conns.len() < max_conns && rng.chance(8)) {
            0
        } else {
            rng.range(1, 20)
        };
        let pick = if live.is_empty() {
            0
        } else {
            live[rng.below(live.len())]
        };
        match action {
            // A new connection, client or server side.
            0 => {
                if conns.len() >= max_conns {
                    break;
                }
                let (handler, shared, rmode) = new_handler(&mut rng);
                let id = conns.len();
                if rng.chance(50) {
                    let addr = format!("10.0.0.2:{}", 8000 + peer_listeners.len());
                    log(format!("[{step}] client conn c{id} to {addr} ({rmode:?})"));
                    let peer_listener = sim.peer_listen(&addr);
                    let remote: SocketAddr = addr.parse().unwrap();
                    match block_on(&p, wsk::tcp::connect(&provider, remote, handler)) {
                        Ok(socket) => {
                            let peer = peer_listener.accept();
                            conns.push(Conn::new(
                                format!("c{id}"),
                                socket,
                                peer,
                                shared,
                                &mut rng,
                                true,
                            ));
                        }
                        Err(e) => {
                            log(format!("  connect failed: {e:?}"));
                            // Only injected control failures may fail it.
                            let _ = peer_listener.try_accept();
                        }
                    }
                    peer_listeners.push(peer_listener);
                } else {
                    log(format!("[{step}] server conn c{id} ({rmode:?})"));
                    if listen.is_none() {
                        match block_on(
                            &p,
                            wsk::tcp::listen(
                                &provider,
                                "0.0.0.0:7000".parse().unwrap(),
                                NoListenEvents::new(),
                            ),
                        ) {
                            Ok(l) => listen = Some(l),
                            Err(e) => {
                                log(format!("  listen failed: {e:?}"));
                                continue;
                            }
                        }
                    }
                    let Ok(peer) = sim.peer_connect("10.0.0.1:7000") else {
                        log("  peer_connect refused".to_owned());
                        continue;
                    };
                    let accept = listen.as_ref().unwrap().accept(handler);
                    match accept.wait_timeout(&p, RESOLVE) {
                        Ok(Ok((socket, _remote))) => {
                            let enabled = match socket.enable_events() {
                                Ok(()) => true,
                                Err(e) => {
                                    log(format!("  enable_events failed: {e:?}"));
                                    false
                                }
                            };
                            conns.push(Conn::new(
                                format!("c{id}"),
                                socket,
                                peer,
                                shared,
                                &mut rng,
                                enabled,
                            ));
                        }
                        Ok(Err(e)) => log(format!("  accept failed: {e:?}")),
                        Err(pending) => {
                            panic!(
                                "accept of an established connection never resolved: {pending:?}"
                            )
                        }
                    }
                }
            }
            // Driver send.
            1..=4 => {
                let c = &mut conns[pick];
                let len = rng.range(1, 24);
                if c.next_out + len > STREAM_CAP {
                    continue;
                }
                let start = c.next_out;
                c.next_out += len;
                let index = c.sends.len();
                c.sends.push(SendRec {
                    start,
                    len,
                    outcome: Outcome::Pending,
                });
                log(format!(
                    "[{step}] {} send #{index} [{start}, {})",
                    c.name,
                    start + len
                ));
                if rng.chance(30) {
                    log("  (in the slot)".to_owned());
                    let data = encode(start, len, c.salt_out);
                    c.slot_request(&p, &mut rng, index, Some(data), 0);
                    continue;
                }
                let socket = c.socket.as_ref().unwrap();
                let aborted_before = socket.is_aborted();
                let request =
                    socket.send(Buffer::from_slice(&encode(start, len, c.salt_out)).unwrap());
                if aborted_before {
                    assert!(
                        request.is_complete(),
                        "{}: send after abort reached the provider",
                        c.name
                    );
                }
                c.dispose(&p, &mut rng, true, index, request);
                if aborted_before {
                    if let Outcome::Done(r) = &c.sends[index].outcome {
                        assert_eq!(r, &Err(Error::CONNECTION_ABORTED), "{}", c.name);
                    }
                }
            }
            // Driver receive.
            5..=8 => {
                let c = &mut conns[pick];
                let capacity = rng.range(1, 48);
                let index = c.recvs.len();
                c.recvs.push(RecvRec {
                    capacity,
                    outcome: Outcome::Pending,
                    data: Vec::new(),
                });
                log(format!("[{step}] {} recv #{index} cap {capacity}", c.name));
                if rng.chance(30) {
                    log("  (in the slot)".to_owned());
                    c.slot_request(&p, &mut rng, index, None, capacity);
                    continue;
                }
                let request = c
                    .socket
                    .as_ref()
                    .unwrap()
                    .receive(Buffer::with_capacity(capacity).unwrap());
                c.dispose(&p, &mut rng, false, index, request);
            }
            // Peer sends.
            9 | 10 => {
                let c = &mut conns[pick];
                let len = rng.range(1, 32);
                if c.peer_closed || c.peer_aborted || c.peer_sent + len > STREAM_CAP {
                    continue;
                }
                log(format!(
                    "[{step}] {} peer send [{}, {})",
                    c.name,
                    c.peer_sent,
                    c.peer_sent + len
                ));
                c.peer.send(&encode(c.peer_sent, len, c.salt_in));
                c.peer_sent += len;
            }
            // Peer closes or aborts.
            11 => {
                let c = &mut conns[pick];
                if c.peer_closed || c.peer_aborted {
                    continue;
                }
                if rng.chance(60) {
                    log(format!("[{step}] {} peer close", c.name));
                    c.peer.close();
                    c.peer_closed = true;
                } else {
                    c.drain_peer();
                    log(format!("[{step}] {} peer abort", c.name));
                    c.peer.abort();
                    c.peer_aborted = true;
                }
            }
            // Injected faults.
            12 => {
                let routine = match rng.below(5) {
                    0 => Routine::WskSend,
                    1 => Routine::WskReceive,
                    2 => Routine::WskControlSocket,
                    3 => {
                        log(format!("[{step}] hang_next WskReceive"));
                        sim.hang_next(Routine::WskReceive);
                        continue;
                    }
                    _ => {
                        log(format!("[{step}] hang_next WskSend"));
                        sim.hang_next(Routine::WskSend);
                        continue;
                    }
                };
                log(format!("[{step}] fail_next {routine:?}"));
                sim.fail_next(routine, sys::STATUS_INSUFFICIENT_RESOURCES);
            }
            // Harvest, run pending completions, settle.
            13 => {
                if manual && rng.chance(60) {
                    let n = sim.run_pending();
                    log(format!("[{step}] run_pending: {n}"));
                } else if rng.chance(30) {
                    log(format!("[{step}] settle"));
                    sim.settle();
                }
                for c in &mut conns {
                    c.harvest(&p);
                }
            }
            // Release retained indications.
            14 => {
                log(format!("[{step}] release"));
                conns[pick].release_retained(rng.chance(50), &mut rng);
            }
            // A socket option round trip through WskControlSocket.
            15 => {
                let c = &conns[pick];
                let r = c
                    .socket
                    .as_ref()
                    .unwrap()
                    .receive_backlog()
                    .wait_timeout(&p, RESOLVE);
                log(format!(
                    "[{step}] {} receive_backlog -> {:?}",
                    c.name,
                    r.as_ref().ok()
                ));
                assert!(r.is_ok(), "receive_backlog never resolved");
            }
            // Check abort handling after events settled.
            16 => {
                log(format!("[{step}] settle + abort check"));
                sim.settle();
                let c = &mut conns[pick];
                if c.peer_aborted && c.events_enabled {
                    let socket = c.socket.as_ref().unwrap();
                    let flags_seen = c.shared.disconnects.lock().unwrap().clone();
                    assert!(
                        flags_seen.iter().any(|f| f.is_abortive()),
                        "{}: the peer aborted but no abortive disconnect event: {flags_seen:?}",
                        c.name
                    );
                    assert!(
                        socket.is_aborted(),
                        "{}: aborted peer, socket not aborted",
                        c.name
                    );
                }
                c.check_abort_refuses_sends(&p);
            }
            // Driver disconnect: graceful or abortive.
            17 => {
                let c = &mut conns[pick];
                let socket = c.socket.as_ref().unwrap();
                let abortive = rng.chance(40);
                log(format!(
                    "[{step}] {} driver {}",
                    c.name,
                    if abortive { "abort" } else { "disconnect" }
                ));
                let request = if abortive {
                    socket.abort()
                } else {
                    socket.disconnect(None)
                };
                let resolved = match request
                    .wait_timeout(&p, if abortive { RESOLVE } else { STUCK })
                {
                    Ok(out) => out,
                    Err(pending) if !abortive => {
                        // A graceful disconnect may never complete on its own
                        // (the adversary's graceful-disconnect-stuck, DSC-4):
                        // an abortive one forces it.
                        log("  -> graceful disconnect still pending: abort".to_owned());
                        let (aborted, _) = socket
                            .abort()
                            .wait_timeout(&p, RESOLVE)
                            .unwrap_or_else(|_| panic!("{}: abort never resolved", c.name));
                        log(format!("  abort -> {aborted:?}"));
                        if aborted.is_ok() {
                            c.driver_aborted = true;
                        }
                        cover(|cov| cov.stuck_disconnects += 1);
                        pending.wait_timeout(&p, RESOLVE).unwrap_or_else(|_| {
                            panic!("{}: the abort did not complete the disconnect", c.name)
                        })
                    }
                    Err(pending) => panic!("{}: disconnect never resolved: {pending:?}", c.name),
                };
                let (r, _) = resolved;
                log(format!("  -> {r:?}"));
                if r.is_ok() {
                    if abortive {
                        c.driver_aborted = true;
                        assert!(socket.is_aborted());
                        c.check_abort_refuses_sends(&p);
                    } else if !c.driver_aborted {
                        c.driver_disconnected = true;
                    }
                }
            }
            // Detach: drop the socket with requests outstanding.
            18 => {
                let c = &mut conns[pick];
                log(format!(
                    "[{step}] {} drop socket ({} held)",
                    c.name,
                    c.held.len()
                ));
                // A close without a graceful disconnect resets the peer,
                // which discards what it has not read: read it first.
                sim.settle();
                c.drain_peer();
                c.socket = None;
            }
            // Close explicitly.
            _ => {
                sim.settle();
                let c = &mut conns[pick];
                c.drain_peer();
                let socket = c.socket.take().unwrap();
                let r = socket.close().wait_timeout(&p, RESOLVE);
                log(format!(
                    "[{step}] {} close -> {:?}",
                    c.name,
                    r.as_ref().ok()
                ));
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => assert!(
                        e == Error::INVALID_DEVICE_STATE
                            && !c.shared.retained.lock().unwrap().is_empty(),
                        "{}: close failed with {e:?}",
                        c.name
                    ),
                    Err(pending) => panic!("{}: close never resolved: {pending:?}", c.name),
                }
            }
        }
        for c in &mut conns {
            c.drain_peer();
        }
    }

    // Teardown: release everything, close every socket, resolve every request.
    log("teardown".to_owned());
    sim.settle();
    for c in &mut conns {
        c.drain_peer();
        c.release_retained(true, &mut rng);
        if let Some(socket) = c.socket.take() {
            if rng.chance(50) {
                let r = socket.close().wait_timeout(&p, RESOLVE);
                log(format!("  {} close -> {:?}", c.name, r.as_ref().ok()));
                // A retained indication may have arrived after the release.
                assert!(r.is_ok(), "{}: close never resolved", c.name);
            } else {
                log(format!("  {} drop", c.name));
                drop(socket);
            }
        }
        c.release_retained(true, &mut rng);
    }
    sim.settle();
    for c in &mut conns {
        let start = Instant::now();
        for h in std::mem::take(&mut c.held) {
            match h.request.wait_timeout(&p, RESOLVE) {
                Ok(out) => c.record(h.send, h.index, out),
                Err(pending) => panic!(
                    "{}: {} #{} did not resolve {:?} after its socket closed: {pending:?}",
                    c.name,
                    if h.send { "send" } else { "receive" },
                    h.index,
                    start.elapsed()
                ),
            }
        }
        c.drain_peer();
        assert_eq!(
            *c.shared.null_indications.lock().unwrap(),
            0,
            "{}: unexpected NULL indication",
            c.name
        );
        assert!(c.shared.retained.lock().unwrap().is_empty());
        c.verify();
    }
    if let Some(l) = listen.take() {
        let r = l.close().wait_timeout(&p, RESOLVE);
        assert!(matches!(r, Ok(Ok(()))), "listen close");
    }
    sim.settle();

    let stats = sim.stats();
    cover(|c| {
        c.indication_mdls += stats.indication_mdls;
        c.indication_elements += stats.indication_elements;
        c.indication_offsets += stats.indication_offsets;
        c.provider_mapping_failures += stats.mapping_failures;
    });
    for status in stats.statuses(EventKind::Disconnect) {
        assert_eq!(
            status,
            sys::STATUS_SUCCESS,
            "disconnect callbacks return success"
        );
    }
    for status in stats.statuses(EventKind::Receive) {
        assert!(
            [
                sys::STATUS_SUCCESS,
                sys::STATUS_DATA_NOT_ACCEPTED,
                sys::STATUS_PENDING
            ]
            .contains(&status),
            "receive callback returned {status:#x}"
        );
    }
    // Every connection of this test sees each disconnect at most once per kind.
    for c in &conns {
        let d = c.shared.disconnects.lock().unwrap();
        assert!(d.len() <= 2, "{}: disconnect events {d:?}", c.name);
    }

    drop(conns);
    drop(peer_listeners);
    drop(provider);
    if let Err(left) = registration.deregister(&p) {
        panic!("deregister found handles left: {left}");
    }
    sim.finish();
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn random_interleavings() {
    let (default_seeds, steps) = if cfg!(miri) { (10, 40) } else { (500, 80) };
    let seeds: Vec<u64> = if let Some(seed) = env_u64("WSK_SEED") {
        vec![seed]
    } else {
        (0..env_u64("WSK_INTERLEAVINGS").unwrap_or(default_seeds)).collect()
    };
    let started = Instant::now();
    for &seed in &seeds {
        scenario(seed, steps);
    }
    let coverage = COVERAGE.lock().unwrap();
    eprintln!(
        "interleavings: {} seed(s) in {:?}; {:?}",
        seeds.len(),
        started.elapsed(),
        *coverage
    );
    if seeds.len() >= 100 && Adversary::from_env().is_some() {
        // Over many seeds the adversary's data-path behaviours all reached
        // the handlers.
        assert!(coverage.indication_mdls > coverage.indication_elements);
        assert!(coverage.indication_offsets > 0);
        assert!(coverage.provider_mapping_failures > 0);
        assert!(
            coverage.mapping_failures > 0,
            "a handler saw a mapping failure"
        );
    }
}
