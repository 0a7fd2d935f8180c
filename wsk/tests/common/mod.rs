//! Set-up shared by the integration tests: each test binary uses a subset.
#![allow(dead_code)]

use std::time::Duration;

use wsk::events::{ConnectionEvents, NoEvents};
use wsk::irql::Passive;
use wsk::tcp::ConnectionSocket;
use wsk::{Provider, Registration, block_on};
use wsk_sim::{PeerConn, Sim};

/// How long a test waits for the simulated provider to become ready.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The test thread's `PASSIVE_LEVEL` token: the one place tests make one.
pub(crate) fn passive() -> Passive<'static> {
    // SAFETY: a host test thread runs at PASSIVE_LEVEL (the simulator raises
    // a thread's IRQL only inside its own calls and callbacks), never inside
    // a WSK callback, and the tests never hold a spin lock while they wait.
    unsafe { Passive::new_unchecked() }
}

/// Registers a client and captures the provider.
pub(crate) fn setup(passive: &Passive<'_>) -> (Registration, Provider) {
    let registration = Registration::register(passive).expect("register");
    let provider = registration
        .capture(passive, Some(TIMEOUT))
        .expect("capture");
    (registration, provider)
}

/// Releases the provider and deregisters (no handle may be left).
pub(crate) fn teardown(passive: &Passive<'_>, registration: Registration, provider: Provider) {
    drop(provider);
    registration.deregister(passive).expect("no handles left");
}

/// The simulated peer that [`connected`] connects to.
pub(crate) const PEER: &str = "10.0.0.2:80";

/// A registered client with one connection to a simulated peer.
///
/// The fields drop in order, the simulator last: a test that panics still
/// closes its socket before the simulator frees the provider's memory.
pub(crate) struct Connected<H: ConnectionEvents = NoEvents> {
    pub(crate) socket: ConnectionSocket<H>,
    pub(crate) peer: PeerConn,
    pub(crate) provider: Provider,
    pub(crate) registration: Registration,
    pub(crate) sim: Sim,
}

/// Starts a simulator, registers, and connects to [`PEER`].
pub(crate) fn connected() -> Connected {
    connected_with(|_| {})
}

/// As [`connected`], with `configure` applied to the simulator first.
pub(crate) fn connected_with(configure: impl FnOnce(&Sim)) -> Connected {
    connected_to(NoEvents, configure)
}

/// As [`connected_with`], with `handler`'s events on the socket.
pub(crate) fn connected_to<H: ConnectionEvents>(
    handler: H,
    configure: impl FnOnce(&Sim),
) -> Connected<H> {
    let sim = Sim::start();
    configure(&sim);
    let listener = sim.peer_listen(PEER);
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(&provider, PEER.parse().unwrap(), handler),
    )
    .expect("connect");
    let peer = listener.accept();
    Connected {
        socket,
        peer,
        provider,
        registration,
        sim,
    }
}

impl<H: ConnectionEvents> Connected<H> {
    /// Closes the socket, deregisters and runs the simulator's leak checks.
    pub(crate) fn finish(self) {
        let p = passive();
        self.socket.close().wait(&p).expect("close");
        teardown(&p, self.registration, self.provider);
        self.sim.finish();
    }
}

// ---------------------------------------------------------------------------
// Reading indications whatever the provider does
//
// The adversarial simulator (on by default) spreads indications over MDL
// chains and lets mapping them fail now and then
// (`MmGetSystemAddressForMdlSafe` may return NULL). A handler that must see
// every byte reads what it can in the callback and retains what it cannot
// map yet; the test reads the retained lists afterwards, retrying the
// mapping.

/// How many times a retained list is read before a mapping failure is
/// taken as final.
const MAPPING_RETRIES: usize = 10_000;

/// Datagrams as a handler was given them, in order.
#[derive(Default)]
pub(crate) struct DatagramLog {
    entries: std::sync::Mutex<Vec<DatagramEntry>>,
}

enum DatagramEntry {
    Read(std::net::SocketAddr, Vec<u8>),
    Kept(wsk::events::RetainedDatagrams),
}

impl DatagramLog {
    /// Reads every datagram of `data`, or retains the whole list if one
    /// cannot be mapped now; the answer for the callback.
    pub(crate) fn record(
        &self,
        data: wsk::events::DatagramIndication<'_>,
    ) -> wsk::events::DatagramAction {
        let mut read = Vec::new();
        for d in &data {
            match d.to_buffer() {
                Ok(b) => read.push((d.peer_addr().expect("sender"), b.to_vec())),
                Err(wsk::Error::INVALID_BUFFER_SIZE) if d.is_empty() => {
                    read.push((d.peer_addr().expect("sender"), Vec::new()));
                }
                Err(e) => {
                    assert_eq!(
                        e,
                        wsk::Error::INSUFFICIENT_RESOURCES,
                        "mapping failures only"
                    );
                    let mut entries = self.entries.lock().unwrap();
                    if let Some(kept) = data.retain() {
                        entries.push(DatagramEntry::Kept(kept));
                        return wsk::events::DatagramAction::Accept; // ignored: retained
                    }
                    // Closing: nothing can be kept any more.
                    return wsk::events::DatagramAction::Refuse;
                }
            }
        }
        self.entries
            .lock()
            .unwrap()
            .extend(read.into_iter().map(|(a, b)| DatagramEntry::Read(a, b)));
        wsk::events::DatagramAction::Accept
    }

    /// Every datagram so far, in order, with its sender; retained lists
    /// are read (retrying mappings that fail) and released.
    pub(crate) fn take(&self) -> Vec<(std::net::SocketAddr, Vec<u8>)> {
        let entries: Vec<_> = self.entries.lock().unwrap().drain(..).collect();
        let mut out = Vec::new();
        for e in entries {
            match e {
                DatagramEntry::Read(a, b) => out.push((a, b)),
                DatagramEntry::Kept(list) => {
                    list.with_datagrams(|datagrams| {
                        for d in datagrams {
                            out.push((d.peer_addr().expect("sender"), read_datagram(&d)));
                        }
                    })
                    .expect("socket open");
                }
            }
        }
        out
    }

    /// The bytes of every datagram so far (see [`take`](Self::take)).
    pub(crate) fn take_bytes(&self) -> Vec<Vec<u8>> {
        self.take().into_iter().map(|(_, b)| b).collect()
    }
}

/// Stream data as a handler was given it, in order.
#[derive(Default)]
pub(crate) struct StreamLog {
    entries: std::sync::Mutex<Vec<StreamEntry>>,
}

enum StreamEntry {
    Read(Vec<u8>),
    Kept(wsk::events::RetainedIndication),
}

impl StreamLog {
    /// Reads the indication, or retains it if a piece cannot be mapped now;
    /// the answer for the callback (everything taken).
    pub(crate) fn record(&self, data: wsk::events::Indication<'_>) -> wsk::events::ReceiveAction {
        let mut bytes = vec![0; data.len()];
        match data.copy_to(&mut bytes) {
            Ok(n) => {
                assert_eq!(n, bytes.len(), "copy_to reads every byte");
                self.entries.lock().unwrap().push(StreamEntry::Read(bytes));
                wsk::events::ReceiveAction::Accept
            }
            Err(e) => {
                assert_eq!(
                    e,
                    wsk::Error::INSUFFICIENT_RESOURCES,
                    "mapping failures only"
                );
                let mut entries = self.entries.lock().unwrap();
                match data.retain() {
                    Some(kept) => {
                        entries.push(StreamEntry::Kept(kept));
                        wsk::events::ReceiveAction::Accept // ignored: retained
                    }
                    None => wsk::events::ReceiveAction::Refuse,
                }
            }
        }
    }

    /// Records bytes the handler read itself (from a list it released).
    pub(crate) fn push_read(&self, bytes: Vec<u8>) {
        self.entries.lock().unwrap().push(StreamEntry::Read(bytes));
    }

    /// Records a list the handler retained, to be read by [`take`](Self::take).
    pub(crate) fn push_kept(&self, kept: wsk::events::RetainedIndication) {
        self.entries.lock().unwrap().push(StreamEntry::Kept(kept));
    }

    /// Keeps the indication (retains it); the answer for the callback.
    pub(crate) fn retain(&self, data: wsk::events::Indication<'_>) -> wsk::events::ReceiveAction {
        let mut entries = self.entries.lock().unwrap();
        match data.retain() {
            Some(kept) => {
                entries.push(StreamEntry::Kept(kept));
                wsk::events::ReceiveAction::Accept // ignored: retained
            }
            None => wsk::events::ReceiveAction::Refuse,
        }
    }

    /// How many indications were retained and not yet taken.
    pub(crate) fn retained(&self) -> usize {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, StreamEntry::Kept(_)))
            .count()
    }

    /// How many bytes were recorded so far (read or retained).
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                StreamEntry::Read(b) => b.len(),
                StreamEntry::Kept(k) => k.len(),
            })
            .sum()
    }

    /// The retained indications, taken out (what was read stays).
    pub(crate) fn take_retained(&self) -> Vec<wsk::events::RetainedIndication> {
        let mut entries = self.entries.lock().unwrap();
        let (kept, read): (Vec<_>, Vec<_>) = entries
            .drain(..)
            .partition(|e| matches!(e, StreamEntry::Kept(_)));
        *entries = read;
        kept.into_iter()
            .filter_map(|e| match e {
                StreamEntry::Kept(k) => Some(k),
                StreamEntry::Read(_) => None,
            })
            .collect()
    }

    /// Every byte so far, in order; retained indications are read (retrying
    /// mappings that fail) and released.
    pub(crate) fn take(&self) -> Vec<u8> {
        let entries: Vec<_> = self.entries.lock().unwrap().drain(..).collect();
        let mut out = Vec::new();
        for e in entries {
            match e {
                StreamEntry::Read(b) => out.extend_from_slice(&b),
                StreamEntry::Kept(k) => out.extend_from_slice(&read_retained(&k)),
            }
        }
        out
    }
}

/// The bytes of a retained indication, retrying mappings that fail.
pub(crate) fn read_retained(kept: &wsk::events::RetainedIndication) -> Vec<u8> {
    let mut bytes = vec![0; kept.len()];
    retry_mapping(|| kept.copy_to(&mut bytes));
    bytes
}

/// The bytes of a datagram of a retained list, retrying mappings that
/// fail.
pub(crate) fn read_datagram(d: &wsk::events::Datagram<'_>) -> Vec<u8> {
    let mut bytes = vec![0; d.len()];
    retry_mapping(|| d.copy_to(&mut bytes));
    bytes
}

/// Runs `read` until no mapping fails.
fn retry_mapping(mut read: impl FnMut() -> wsk::Result<usize>) -> usize {
    for _ in 0..MAPPING_RETRIES {
        match read() {
            Ok(n) => return n,
            Err(wsk::Error::INSUFFICIENT_RESOURCES) => {}
            Err(e) => panic!("reading a retained list: {e:?}"),
        }
    }
    panic!("a retained list never mapped")
}

/// An executor with `workers` workers for a test. Its shutdown bound is the
/// default's (5 s) natively and a minute under Miri, which runs the same
/// steps hundreds of times slower on a loaded machine: the tests check that
/// shutdown ends within a bound, not how fast it is.
pub(crate) fn executor(p: &Passive<'_>, workers: usize) -> wsk::task::Executor {
    let bound = if cfg!(miri) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(5)
    };
    wsk::task::Executor::builder()
        .workers(workers)
        .shutdown_timeout(bound)
        .build(p)
        .expect("executor")
}
