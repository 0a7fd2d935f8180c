//! Event dispatch: what the safe layer's `WskDisconnectEvent` and
//! `WskReceiveEvent` trampolines cost over hand-written C-style callbacks
//! doing the same user work, and whether they allocate.
//!
//! The provider (`wsk-sim`) calls each callback through the function pointer
//! the client installed. `cargo xtask bench` runs each case under callgrind
//! with `--toggle-collect` on the callback itself, so the count is exactly
//! the callback's instructions, inclusive of everything it calls (the
//! handler, inlined or not), from its first instruction to its `ret` — the
//! simulator's delivery machinery is not counted.
//!
//! - `disconnect_safe` / `receive_safe`: `ConnectionSocket<Counter>` through
//!   the simulator; collected: `wsk::tcp::connection::events::disconnect_event` /
//!   `receive_event` (the trampolines in `ConnectionVtable::<Counter>::DISPATCH`).
//! - `disconnect_raw` / `receive_raw`: the baseline, an `unsafe extern
//!   "system"` callback doing the same work, called `N` times through a
//!   function pointer with `black_box`ed arguments. For disconnects the same
//!   work includes what the safe trampoline records for the socket (the
//!   event's flags, with one relaxed store) so that sends after an abortive
//!   disconnect can be refused: a C driver offering that does it too.
//! - `disconnect_bare`: the raw disconnect callback without that socket
//!   bookkeeping, for interpretation: the price of the feature itself.
//! - `disconnect_raw_sim` / `receive_raw_sim`: the same raw callbacks
//!   installed on a raw (`wsk_sys`) socket and called by the simulator: a
//!   cross-check that the caller does not change the callee's count.
//!
//! - `receive_copy_safe` / `receive_copy_raw`: reading the data too — the
//!   safe handler calls `Indication::copy_to` (which walks every
//!   `WSK_DATA_INDICATION` and every MDL of its `WSK_BUF`, from `Offset` for
//!   `Length` bytes, mapping each with `MmGetSystemAddressForMdlSafe`), the
//!   raw callback walks the same chains by hand, as a careful C driver
//!   does; both installed on a socket and called by the simulator.
//!
//! The user work is identical: store the flags (disconnect) or add the
//! indicated byte count (receive) into an atomic, and count the event in
//! another; accept all data. The copying cases copy up to 64 bytes per
//! event and add the first and last byte and the count into the atomic.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext, Indication, ReceiveAction};
use wsk_sys as sys;

use common::{AllocGroup, Case, PEER, RawClient, SafeClient, counting};

/// The user's state, in the safe handler and behind the raw context alike.
#[derive(Default)]
struct Counter {
    /// Only the tracking baseline uses it: the socket state the safe
    /// trampoline keeps itself.
    state: AtomicU32,
    last_flags: AtomicU32,
    bytes: AtomicUsize,
    events: AtomicU64,
}

#[wsk::vtable]
impl ConnectionEvents for Counter {
    fn on_receive(&self, _cx: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        self.bytes
            .fetch_add(data.map_or(0, |d| d.len()), Ordering::Relaxed);
        self.events.fetch_add(1, Ordering::Relaxed);
        ReceiveAction::Accept
    }

    fn on_disconnect(&self, _cx: &EventContext<'_>, flags: DisconnectFlags) {
        self.last_flags.store(flags.bits(), Ordering::Relaxed);
        self.events.fetch_add(1, Ordering::Relaxed);
    }
}

/// The C-style `PFN_WSK_DISCONNECT_EVENT`: the same user work.
///
/// # Safety
///
/// `context` points to a live [`Counter`].
#[unsafe(no_mangle)]
unsafe extern "system" fn wsk_bench_raw_disconnect(
    context: sys::PVOID,
    flags: sys::ULONG,
) -> sys::NTSTATUS {
    // SAFETY: caller's contract.
    let c = unsafe { &*context.cast::<Counter>() };
    c.last_flags.store(flags, Ordering::Relaxed);
    c.events.fetch_add(1, Ordering::Relaxed);
    sys::STATUS_SUCCESS
}

/// The C-style `PFN_WSK_DISCONNECT_EVENT` that also records, as the safe
/// trampoline does, whether the connection was aborted or closed
/// the socket's disconnect state (the flags with a "disconnected" bit, one
/// relaxed store, as the safe trampoline does): the same work as the safe
/// path, and the baseline of the target.
///
/// # Safety
///
/// `context` points to a live [`Counter`].
#[unsafe(no_mangle)]
unsafe extern "system" fn wsk_bench_raw_disconnect_tracking(
    context: sys::PVOID,
    flags: sys::ULONG,
) -> sys::NTSTATUS {
    // SAFETY: caller's contract.
    let c = unsafe { &*context.cast::<Counter>() };
    c.state.store(flags | 1 << 31, Ordering::Relaxed);
    c.last_flags.store(flags, Ordering::Relaxed);
    c.events.fetch_add(1, Ordering::Relaxed);
    sys::STATUS_SUCCESS
}

/// The C-style `PFN_WSK_RECEIVE_EVENT`: the same user work, accepting all.
///
/// # Safety
///
/// `context` points to a live [`Counter`].
#[unsafe(no_mangle)]
unsafe extern "system" fn wsk_bench_raw_receive(
    context: sys::PVOID,
    _flags: sys::ULONG,
    data: sys::PWSK_DATA_INDICATION,
    bytes_indicated: sys::SIZE_T,
    _bytes_accepted: *mut sys::SIZE_T,
) -> sys::NTSTATUS {
    // SAFETY: caller's contract.
    let c = unsafe { &*context.cast::<Counter>() };
    c.bytes.fetch_add(
        if data.is_null() { 0 } else { bytes_indicated },
        Ordering::Relaxed,
    );
    c.events.fetch_add(1, Ordering::Relaxed);
    sys::STATUS_SUCCESS
}

/// Copies up to 64 indicated bytes per event and adds them up.
#[derive(Default)]
struct Copier {
    sum: AtomicU64,
    events: AtomicU64,
}

/// What both copying handlers copy into.
const COPY_BYTES: usize = 64;

/// The copying handlers' user work on the `n` bytes copied: the first and
/// last byte and the count (enough to show every byte arrived, little
/// enough to leave the cost of reading in front).
#[inline]
fn edges(buf: &[u8; COPY_BYTES], n: usize) -> u64 {
    match n {
        0 => 0,
        n => u64::from(buf[0]) + u64::from(buf[n - 1]) + n as u64,
    }
}

#[wsk::vtable]
impl ConnectionEvents for Copier {
    fn on_receive(&self, _cx: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        if let Some(data) = data {
            let mut buf = [0u8; COPY_BYTES];
            let Ok(n) = data.copy_to(&mut buf) else {
                return ReceiveAction::Refuse;
            };
            self.sum.fetch_add(edges(&buf, n), Ordering::Relaxed);
        }
        self.events.fetch_add(1, Ordering::Relaxed);
        ReceiveAction::Accept
    }
}

/// The C-style `PFN_WSK_RECEIVE_EVENT` that reads the data as a careful C
/// driver does: every element, every MDL of its `WSK_BUF` from `Offset` for
/// `Length` bytes, each mapped with `MmGetSystemAddressForMdlSafe`.
///
/// # Safety
///
/// `context` points to a live [`Copier`]; `data` is a valid indication.
#[unsafe(no_mangle)]
unsafe extern "system" fn wsk_bench_raw_receive_copy(
    context: sys::PVOID,
    _flags: sys::ULONG,
    data: sys::PWSK_DATA_INDICATION,
    _bytes_indicated: sys::SIZE_T,
    _bytes_accepted: *mut sys::SIZE_T,
) -> sys::NTSTATUS {
    // SAFETY: caller's contract.
    let c = unsafe { &*context.cast::<Copier>() };
    let mut buf = [0u8; COPY_BYTES];
    let mut copied = 0;
    let mut node = data;
    while !node.is_null() && copied < COPY_BYTES {
        // SAFETY: a valid element of the provider's chain.
        let wsk_buf = unsafe { (*node).Buffer };
        let (mut mdl, mut skip, mut left) = (wsk_buf.Mdl, wsk_buf.Offset as usize, wsk_buf.Length);
        while left != 0 && !mdl.is_null() && copied < COPY_BYTES {
            // SAFETY: a valid MDL of the chain.
            let count = unsafe { sys::MmGetMdlByteCount(mdl) } as usize;
            let n = count.saturating_sub(skip).min(left);
            let priority = sys::NormalPagePriority | sys::MdlMappingNoExecute;
            // SAFETY: the MDL describes locked pages.
            let va = unsafe { sys::MmGetSystemAddressForMdlSafe(mdl, priority) };
            if va.is_null() {
                return sys::STATUS_DATA_NOT_ACCEPTED;
            }
            let take = n.min(COPY_BYTES - copied);
            let (from, to) = (
                va.cast::<u8>().wrapping_add(skip),
                buf.as_mut_ptr().wrapping_add(copied),
            );
            // SAFETY: `[skip, skip + take)` lies within the mapped buffer,
            // and `take` bytes fit in `buf` after `copied`.
            unsafe { core::ptr::copy_nonoverlapping(from, to, take) };
            copied += take;
            left -= n;
            skip = 0;
            // SAFETY: `Next` may be read directly.
            mdl = unsafe { (*mdl).Next };
        }
        // SAFETY: as above.
        node = unsafe { (*node).Next };
    }
    c.sum.fetch_add(edges(&buf, copied), Ordering::Relaxed);
    c.events.fetch_add(1, Ordering::Relaxed);
    sys::STATUS_SUCCESS
}

static RAW_COPY_DISPATCH: sys::WSK_CLIENT_CONNECTION_DISPATCH =
    sys::WSK_CLIENT_CONNECTION_DISPATCH {
        WskReceiveEvent: Some(wsk_bench_raw_receive_copy),
        WskDisconnectEvent: None,
        WskSendBacklogEvent: None,
    };

static RAW_DISPATCH: sys::WSK_CLIENT_CONNECTION_DISPATCH = sys::WSK_CLIENT_CONNECTION_DISPATCH {
    WskReceiveEvent: Some(wsk_bench_raw_receive),
    WskDisconnectEvent: Some(wsk_bench_raw_disconnect),
    WskSendBacklogEvent: None,
};

const RAW_MASK: u32 = sys::WSK_EVENT_RECEIVE | sys::WSK_EVENT_DISCONNECT;

/// Bytes per receive event.
const PAYLOAD: [u8; 16] = [0x5a; 16];

// --- disconnect ------------------------------------------------------------

/// `n` connections through the safe layer, each disconnected gracefully by
/// the peer; `measure` wraps the peer's close (which delivers the event).
/// Returns the events the handlers saw and the measure's total.
fn disconnect_safe_with(n: u64, mut measure: impl FnMut(&dyn Fn()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let client = SafeClient::new();
    let p = common::passive();
    let (mut events, mut total) = (0, 0);
    for _ in 0..n {
        let socket = client.connect(Counter::default());
        let peer = listener.accept();
        total += measure(&|| peer.close());
        events += socket.handler().events.load(Ordering::Relaxed);
        socket.close().wait(&p).expect("close");
    }
    client.finish();
    sim.finish();
    (events, total)
}

/// The same with the raw client and callbacks.
fn disconnect_raw_sim_with(n: u64, mut measure: impl FnMut(&dyn Fn()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let mut client = RawClient::new();
    let (mut events, mut total) = (0, 0);
    for _ in 0..n {
        let counter = Box::new(Counter::default());
        let context = (&raw const *counter).cast_mut().cast();
        let socket = client.connect(context, &raw const RAW_DISPATCH, RAW_MASK);
        let peer = listener.accept();
        total += measure(&|| peer.close());
        events += counter.events.load(Ordering::Relaxed);
        client.close(socket);
    }
    client.finish();
    sim.finish();
    (events, total)
}

fn disconnect_safe(n: u64) -> u64 {
    disconnect_safe_with(n, |f| {
        f();
        0
    })
    .0
}

fn disconnect_raw_sim(n: u64) -> u64 {
    disconnect_raw_sim_with(n, |f| {
        f();
        0
    })
    .0
}

/// Calls `f` `n` times through a function pointer, as a provider would.
fn call_disconnect(
    n: u64,
    f: unsafe extern "system" fn(sys::PVOID, sys::ULONG) -> sys::NTSTATUS,
) -> u64 {
    let counter = Counter::default();
    let f = black_box(f);
    let context: sys::PVOID = (&raw const counter).cast_mut().cast();
    for _ in 0..n {
        // SAFETY: the context is a live Counter.
        black_box(unsafe { f(black_box(context), black_box(0)) });
    }
    counter.events.load(Ordering::Relaxed)
}

fn disconnect_raw(n: u64) -> u64 {
    call_disconnect(n, wsk_bench_raw_disconnect)
}

fn disconnect_raw_tracking(n: u64) -> u64 {
    call_disconnect(n, wsk_bench_raw_disconnect_tracking)
}

// --- receive ---------------------------------------------------------------

/// One connection through the safe layer receiving `n` indications of
/// [`PAYLOAD`]; `measure` wraps each peer send (which delivers the event).
fn receive_safe_with(n: u64, mut measure: impl FnMut(&dyn Fn()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let client = SafeClient::new();
    let p = common::passive();
    let socket = client.connect(Counter::default());
    let peer = listener.accept();
    let mut total = 0;
    for _ in 0..n {
        total += measure(&|| peer.send(&PAYLOAD));
    }
    let events = socket.handler().events.load(Ordering::Relaxed);
    assert_eq!(
        socket.handler().bytes.load(Ordering::Relaxed) as u64,
        events * PAYLOAD.len() as u64,
        "one indication per send"
    );
    socket.close().wait(&p).expect("close");
    client.finish();
    sim.finish();
    (events, total)
}

/// The same with the raw client and callbacks.
fn receive_raw_sim_with(n: u64, mut measure: impl FnMut(&dyn Fn()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let mut client = RawClient::new();
    let counter = Box::new(Counter::default());
    let context = (&raw const *counter).cast_mut().cast();
    let socket = client.connect(context, &raw const RAW_DISPATCH, RAW_MASK);
    let peer = listener.accept();
    let mut total = 0;
    for _ in 0..n {
        total += measure(&|| peer.send(&PAYLOAD));
    }
    let events = counter.events.load(Ordering::Relaxed);
    client.close(socket);
    client.finish();
    sim.finish();
    (events, total)
}

fn receive_safe(n: u64) -> u64 {
    receive_safe_with(n, |f| {
        f();
        0
    })
    .0
}

fn receive_raw_sim(n: u64) -> u64 {
    receive_raw_sim_with(n, |f| {
        f();
        0
    })
    .0
}

fn receive_raw(n: u64) -> u64 {
    let counter = Counter::default();
    let f: unsafe extern "system" fn(
        sys::PVOID,
        sys::ULONG,
        sys::PWSK_DATA_INDICATION,
        sys::SIZE_T,
        *mut sys::SIZE_T,
    ) -> sys::NTSTATUS = black_box(wsk_bench_raw_receive);
    let context: sys::PVOID = (&raw const counter).cast_mut().cast();
    // Never read by the callback; only its non-nullness matters.
    let mut indication = core::mem::MaybeUninit::<sys::WSK_DATA_INDICATION>::uninit();
    let mut accepted: sys::SIZE_T = 0;
    for _ in 0..n {
        // SAFETY: the context is a live Counter; the other pointers are valid.
        black_box(unsafe {
            f(
                black_box(context),
                black_box(0),
                black_box(indication.as_mut_ptr()),
                black_box(PAYLOAD.len()),
                black_box(&raw mut accepted),
            )
        });
    }
    counter.events.load(Ordering::Relaxed)
}

// --- receive and read --------------------------------------------------------

/// What [`edges`] gives for [`PAYLOAD`].
fn payload_edges() -> u64 {
    let mut buf = [0u8; COPY_BYTES];
    buf[..PAYLOAD.len()].copy_from_slice(&PAYLOAD);
    edges(&buf, PAYLOAD.len())
}

/// `n` indications of [`PAYLOAD`] to a `ConnectionSocket<Copier>`; the
/// events seen.
fn receive_copy_safe(n: u64) -> u64 {
    receive_copy_safe_with(n, |f| {
        f();
        0
    })
    .0
}

/// As [`receive_copy_safe`]; `measure` wraps each peer send; returns the
/// events and the measure's total.
fn receive_copy_safe_with(n: u64, mut measure: impl FnMut(&dyn Fn()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let client = SafeClient::new();
    let p = common::passive();
    let socket = client.connect(Copier::default());
    let peer = listener.accept();
    let mut total = 0;
    for _ in 0..n {
        total += measure(&|| peer.send(&PAYLOAD));
    }
    let events = socket.handler().events.load(Ordering::Relaxed);
    assert_eq!(
        socket.handler().sum.load(Ordering::Relaxed),
        events * payload_edges(),
        "every byte read"
    );
    socket.close().wait(&p).expect("close");
    client.finish();
    sim.finish();
    (events, total)
}

/// The same with the raw client and [`wsk_bench_raw_receive_copy`].
fn receive_copy_raw(n: u64) -> u64 {
    receive_copy_raw_with(n, |f| {
        f();
        0
    })
    .0
}

/// As [`receive_copy_raw`], with a measure around each peer send.
fn receive_copy_raw_with(n: u64, mut measure: impl FnMut(&dyn Fn()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let mut client = RawClient::new();
    let copier = Box::new(Copier::default());
    let context = (&raw const *copier).cast_mut().cast();
    let socket = client.connect(
        context,
        &raw const RAW_COPY_DISPATCH,
        sys::WSK_EVENT_RECEIVE,
    );
    let peer = listener.accept();
    let mut total = 0;
    for _ in 0..n {
        total += measure(&|| peer.send(&PAYLOAD));
    }
    let events = copier.events.load(Ordering::Relaxed);
    assert_eq!(
        copier.sum.load(Ordering::Relaxed),
        events * payload_edges(),
        "every byte read"
    );
    client.close(socket);
    client.finish();
    sim.finish();
    (events, total)
}

// --- allocations -----------------------------------------------------------

fn count_allocs(f: &dyn Fn()) -> u64 {
    counting(f).1
}

fn disconnect_allocs_safe(n: u64) -> u64 {
    let (events, allocs) = disconnect_safe_with(n, count_allocs);
    assert_eq!(events, n, "one disconnect event per connection");
    allocs
}

fn disconnect_allocs_raw(n: u64) -> u64 {
    let (events, allocs) = disconnect_raw_sim_with(n, count_allocs);
    assert_eq!(events, n, "one disconnect event per connection");
    allocs
}

fn receive_allocs_safe(n: u64) -> u64 {
    let (events, allocs) = receive_safe_with(n, count_allocs);
    assert_eq!(events, n, "one receive event per send");
    allocs
}

fn receive_allocs_raw(n: u64) -> u64 {
    let (events, allocs) = receive_raw_sim_with(n, count_allocs);
    assert_eq!(events, n, "one receive event per send");
    allocs
}

fn receive_copy_allocs_safe(n: u64) -> u64 {
    let (events, allocs) = receive_copy_safe_with(n, count_allocs);
    assert_eq!(events, n, "one receive event per send");
    allocs
}

fn receive_copy_allocs_raw(n: u64) -> u64 {
    let (events, allocs) = receive_copy_raw_with(n, count_allocs);
    assert_eq!(events, n, "one receive event per send");
    allocs
}

const DISCONNECT_TRAMPOLINE: &str = "wsk::tcp::connection::events::disconnect_event*";
const RECEIVE_TRAMPOLINE: &str = "wsk::tcp::connection::events::receive_event*";

fn main() {
    common::main(
        &[
            Case {
                group: "event_dispatch",
                role: "safe",
                name: "disconnect_safe",
                toggle: DISCONNECT_TRAMPOLINE,
                iters: 200,
                run: disconnect_safe,
            },
            Case {
                group: "event_dispatch",
                role: "bare",
                name: "disconnect_bare",
                toggle: "wsk_bench_raw_disconnect",
                iters: 10_000,
                run: disconnect_raw,
            },
            Case {
                group: "event_dispatch",
                role: "raw",
                name: "disconnect_raw",
                toggle: "wsk_bench_raw_disconnect_tracking",
                iters: 10_000,
                run: disconnect_raw_tracking,
            },
            Case {
                group: "event_dispatch",
                role: "raw_sim",
                name: "disconnect_raw_sim",
                toggle: "wsk_bench_raw_disconnect",
                iters: 200,
                run: disconnect_raw_sim,
            },
            Case {
                group: "receive_dispatch",
                role: "safe",
                name: "receive_safe",
                toggle: RECEIVE_TRAMPOLINE,
                iters: 2_000,
                run: receive_safe,
            },
            Case {
                group: "receive_dispatch",
                role: "raw",
                name: "receive_raw",
                toggle: "wsk_bench_raw_receive",
                iters: 10_000,
                run: receive_raw,
            },
            Case {
                group: "receive_dispatch",
                role: "raw_sim",
                name: "receive_raw_sim",
                toggle: "wsk_bench_raw_receive",
                iters: 2_000,
                run: receive_raw_sim,
            },
            Case {
                group: "receive_copy",
                role: "safe",
                name: "receive_copy_safe",
                toggle: RECEIVE_TRAMPOLINE,
                iters: 2_000,
                run: receive_copy_safe,
            },
            Case {
                group: "receive_copy",
                role: "raw",
                name: "receive_copy_raw",
                toggle: "wsk_bench_raw_receive_copy",
                iters: 2_000,
                run: receive_copy_raw,
            },
        ],
        &[
            AllocGroup {
                group: "event_dispatch",
                unit: "event",
                ops: 200,
                safe: disconnect_allocs_safe,
                raw: disconnect_allocs_raw,
            },
            AllocGroup {
                group: "receive_dispatch",
                unit: "event",
                ops: 2_000,
                safe: receive_allocs_safe,
                raw: receive_allocs_raw,
            },
            AllocGroup {
                group: "receive_copy",
                unit: "event",
                ops: 2_000,
                safe: receive_copy_allocs_safe,
                raw: receive_copy_allocs_raw,
            },
        ],
    );
}
