//! Request round trips through the safe layer and through raw `wsk_sys`
//! calls on the same simulator, with the simulator completing inline.
//!
//! - `request_round_trip`: one `WskSend` of 16 bytes with memory of its own.
//!   Safe: `ConnectionSocket::send(buffer).wait(&passive)` (one block
//!   allocated and freed per request). Raw: what a C driver's synchronous
//!   helper does — `IoAllocateIrp`, a `KEVENT` on the stack,
//!   `IoSetCompletionRoutine`, `WskSend`, a wait only if it pended,
//!   `IoFreeIrp`.
//! - `reused_request`: the same send with memory reused from one request to
//!   the next. Safe: `ConnectionSocket::send_in(&mut slot, buffer, …)`.
//!   Raw: one IRP from `IoAllocateIrp`, per request `IoReuseIrp` +
//!   `IoSetCompletionRoutine` + `WskSend` + (a wait only if it pended) +
//!   `KeClearEvent`.
//! - `streaming`: an echo loop over reused memory — per round the peer sends
//!   1 KiB, the client receives it (`WSK_FLAG_WAITALL`) and sends it back —
//!   through a slot and one buffer, against the raw client's reused IRP.
//!
//! In every case the buffer (and its MDL) is built once and reused, on both
//! sides. `cargo xtask bench` collects the inclusive instructions of each
//! case's `*_once`/`*_round` function, one whole request or round; the peer's
//! side between rounds is not counted. Both sides include the simulator's
//! `WskSend`/`WskReceive`, so the difference is the safe layer's cost
//! (including any extra kernel routines it calls, which the simulator
//! implements more expensively than Windows does).

mod common;

use std::hint::black_box;
use std::ptr;

use wsk::Buffer;
use wsk::events::NoEvents;
use wsk::irql::Passive;
use wsk::request::TransferSlot;
use wsk::tcp::{ConnectionSocket, ReceiveFlags, SendFlags};
use wsk_sim::{PeerConn, Sim};
use wsk_sys as sys;

use common::{AllocGroup, Case, PEER, RawClient, SafeClient, counting};

/// Bytes per request of the request cases.
const PAYLOAD: [u8; 16] = [0xa5; 16];

/// Bytes per direction per round of the streaming case.
const CHUNK: usize = 1024;

/// Drain the peer's receive queue every this many requests.
const DRAIN_EVERY: u64 = 64;

/// `WskSend`/`WskReceive`'s signature.
type TransferFn = unsafe extern "system" fn(
    sys::PWSK_SOCKET,
    sys::PWSK_BUF,
    sys::ULONG,
    sys::PIRP,
) -> sys::NTSTATUS;

// ---------------------------------------------------------------------------
// The measured functions

/// One request through the safe layer, with a block of its own.
#[inline(never)]
fn safe_send_once(
    socket: &ConnectionSocket<NoEvents>,
    buffer: Buffer,
    passive: &Passive<'_>,
) -> Buffer {
    let (sent, buffer) = socket.send(buffer).wait(passive);
    assert_eq!(sent, Ok(PAYLOAD.len()), "WskSend");
    buffer
}

/// One request with raw calls and an IRP of its own.
#[inline(never)]
fn raw_send_once(send: TransferFn, socket: sys::PWSK_SOCKET, buf: &mut sys::WSK_BUF) {
    let buf = ptr::from_mut(buf);
    // SAFETY: the socket is connected; the WSK_BUF and its MDL outlive the
    // call, which completes before `call_once` returns.
    let (status, bytes) = RawClient::call_once(|irp| unsafe { send(socket, buf, 0, irp) });
    assert!(
        status == sys::STATUS_SUCCESS && bytes == PAYLOAD.len(),
        "WskSend"
    );
}

/// One request through the safe layer, in a slot.
#[inline(never)]
fn safe_send_in_slot(
    socket: &ConnectionSocket<NoEvents>,
    slot: &mut TransferSlot,
    buffer: Buffer,
    passive: &Passive<'_>,
) -> Buffer {
    let (sent, buffer) = socket
        .send_in(slot, buffer, SendFlags::empty())
        .wait(passive);
    assert_eq!(sent, Ok(PAYLOAD.len()), "WskSend");
    buffer
}

/// One request with raw calls, reusing the client's IRP.
#[inline(never)]
fn raw_send_reused(
    client: &mut RawClient,
    send: TransferFn,
    socket: sys::PWSK_SOCKET,
    buf: &mut sys::WSK_BUF,
) {
    let buf = ptr::from_mut(buf);
    // SAFETY: as in `raw_send_once`.
    let (status, bytes) = client.call(|irp| unsafe { send(socket, buf, 0, irp) });
    assert!(
        status == sys::STATUS_SUCCESS && bytes == PAYLOAD.len(),
        "WskSend"
    );
}

/// One echo round through the safe layer: receive a chunk, send it back.
#[inline(never)]
fn safe_stream_round(
    socket: &ConnectionSocket<NoEvents>,
    slot: &mut TransferSlot,
    buffer: Buffer,
    passive: &Passive<'_>,
) -> Buffer {
    let (received, buffer) = socket
        .receive_in(slot, buffer, ReceiveFlags::WAIT_ALL)
        .wait(passive);
    assert_eq!(received, Ok(CHUNK), "WskReceive");
    let (sent, buffer) = socket
        .send_in(slot, buffer, SendFlags::empty())
        .wait(passive);
    assert_eq!(sent, Ok(CHUNK), "WskSend");
    buffer
}

/// The same round with raw calls over the client's reused IRP.
#[inline(never)]
fn raw_stream_round(
    client: &mut RawClient,
    (receive, send): (TransferFn, TransferFn),
    socket: sys::PWSK_SOCKET,
    buf: &mut sys::WSK_BUF,
) {
    let buf = ptr::from_mut(buf);
    // SAFETY: the socket is connected; the WSK_BUF and its MDL outlive the
    // calls, which complete before `call` returns.
    let (status, bytes) =
        client.call(|irp| unsafe { receive(socket, buf, sys::WSK_FLAG_WAITALL, irp) });
    assert!(
        status == sys::STATUS_SUCCESS && bytes == CHUNK,
        "WskReceive"
    );
    // SAFETY: as above.
    let (status, bytes) = client.call(|irp| unsafe { send(socket, buf, 0, irp) });
    assert!(status == sys::STATUS_SUCCESS && bytes == CHUNK, "WskSend");
}

// ---------------------------------------------------------------------------
// Drivers of the measured functions

/// A connected safe socket and its peer, torn down by `finish`.
struct SafeSide {
    sim: Sim,
    client: SafeClient,
    socket: ConnectionSocket<NoEvents>,
    peer: PeerConn,
}

impl SafeSide {
    fn new() -> Self {
        let sim = common::benign_sim();
        let listener = sim.peer_listen(PEER);
        let client = SafeClient::new();
        let socket = client.connect(NoEvents);
        let peer = listener.accept();
        Self {
            sim,
            client,
            socket,
            peer,
        }
    }

    fn finish(self) {
        self.socket.close().wait(&common::passive()).expect("close");
        self.client.finish();
        self.sim.finish();
    }
}

/// A connected raw socket, its peer and a `WSK_BUF` over `data`.
struct RawSide {
    sim: Sim,
    client: RawClient,
    socket: sys::PWSK_SOCKET,
    peer: PeerConn,
    mdl: sys::PMDL,
    buf: sys::WSK_BUF,
}

impl RawSide {
    fn new(data: &mut [u8]) -> Self {
        let sim = common::benign_sim();
        let listener = sim.peer_listen(PEER);
        let mut client = RawClient::new();
        let socket = client.connect(ptr::null_mut(), ptr::null(), 0);
        let peer = listener.accept();
        let len = u32::try_from(data.len()).expect("small");
        // SAFETY: `data` outlives the MDL (the caller keeps it until
        // `finish`); no IRP is associated.
        let mdl = unsafe {
            sys::IoAllocateMdl(
                data.as_mut_ptr().cast(),
                len,
                sys::FALSE,
                sys::FALSE,
                ptr::null_mut(),
            )
        };
        assert!(!mdl.is_null(), "IoAllocateMdl");
        // SAFETY: the MDL describes memory the caller owns for its whole life.
        unsafe { sys::MmBuildMdlForNonPagedPool(mdl) };
        let buf = sys::WSK_BUF {
            Mdl: mdl,
            Offset: 0,
            Length: data.len(),
        };
        Self {
            sim,
            client,
            socket,
            peer,
            mdl,
            buf,
        }
    }

    fn table(&self) -> sys::WSK_PROVIDER_CONNECTION_DISPATCH {
        common::connection_table(self.socket)
    }

    fn finish(mut self) {
        self.client.close(self.socket);
        // SAFETY: no request uses the MDL any more.
        unsafe { sys::IoFreeMdl(self.mdl) };
        self.client.finish();
        self.sim.finish();
    }
}

/// Drains the peer every [`DRAIN_EVERY`] requests and at the end, checking
/// that every byte sent arrived.
struct Drain {
    received: u64,
}

impl Drain {
    fn after(&mut self, i: u64, peer: &PeerConn) {
        if i % DRAIN_EVERY == DRAIN_EVERY - 1 {
            self.received += peer.try_recv().len() as u64;
        }
    }

    fn finish(mut self, n: u64, peer: &PeerConn) {
        self.received += peer.try_recv().len() as u64;
        assert_eq!(
            self.received,
            n * PAYLOAD.len() as u64,
            "every byte arrived"
        );
    }
}

/// How a request is measured: `run_once` runs it, `count_allocs` counts its
/// allocations.
type Measure<'a> = &'a mut dyn FnMut(&mut dyn FnMut()) -> u64;

/// `n` one-shot safe requests; returns the requests made and the measure's total.
fn send_safe_with(n: u64, measure: Measure<'_>) -> (u64, u64) {
    let side = SafeSide::new();
    let p = common::passive();
    let mut buffer = Some(Buffer::from_slice(&PAYLOAD).expect("buffer"));
    let (mut drain, mut total) = (Drain { received: 0 }, 0);
    for i in 0..n {
        total += measure(&mut || {
            let b = buffer.take().expect("buffer");
            buffer = Some(safe_send_once(&side.socket, b, &p));
        });
        drain.after(i, &side.peer);
    }
    drain.finish(n, &side.peer);
    drop(buffer);
    side.finish();
    (n, total)
}

/// `n` one-shot raw requests.
fn send_raw_with(n: u64, measure: Measure<'_>) -> (u64, u64) {
    let mut data = PAYLOAD;
    let mut side = RawSide::new(&mut data);
    let send = side.table().WskSend.expect("table");
    let (mut drain, mut total) = (Drain { received: 0 }, 0);
    for i in 0..n {
        total += measure(&mut || raw_send_once(send, side.socket, &mut side.buf));
        drain.after(i, &side.peer);
    }
    drain.finish(n, &side.peer);
    side.finish();
    black_box(&data);
    (n, total)
}

/// `n` safe requests in one slot.
fn send_slot_with(n: u64, measure: Measure<'_>) -> (u64, u64) {
    let side = SafeSide::new();
    let p = common::passive();
    let mut slot = TransferSlot::new().expect("slot");
    let mut buffer = Some(Buffer::from_slice(&PAYLOAD).expect("buffer"));
    let (mut drain, mut total) = (Drain { received: 0 }, 0);
    for i in 0..n {
        total += measure(&mut || {
            let b = buffer.take().expect("buffer");
            buffer = Some(safe_send_in_slot(&side.socket, &mut slot, b, &p));
        });
        drain.after(i, &side.peer);
    }
    drain.finish(n, &side.peer);
    assert!(slot.is_ready(), "the slot kept its memory");
    drop((slot, buffer));
    side.finish();
    (n, total)
}

/// `n` raw requests over one reused IRP.
fn send_reused_with(n: u64, measure: Measure<'_>) -> (u64, u64) {
    let mut data = PAYLOAD;
    let mut side = RawSide::new(&mut data);
    let send = side.table().WskSend.expect("table");
    let (mut drain, mut total) = (Drain { received: 0 }, 0);
    for i in 0..n {
        total += measure(&mut || {
            raw_send_reused(&mut side.client, send, side.socket, &mut side.buf);
        });
        drain.after(i, &side.peer);
    }
    drain.finish(n, &side.peer);
    side.finish();
    black_box(&data);
    (n, total)
}

/// The peer's chunk of round `i`: distinct per round, so a stale buffer shows.
fn chunk(i: u64) -> Vec<u8> {
    (0..CHUNK)
        .map(|k| u8::try_from((k as u64 + i) % 251).expect("< 251"))
        .collect()
}

/// `n` safe echo rounds.
fn stream_safe_with(n: u64, measure: Measure<'_>) -> (u64, u64) {
    let side = SafeSide::new();
    let p = common::passive();
    let mut slot = TransferSlot::new().expect("slot");
    let mut buffer = Some(Buffer::with_capacity(CHUNK).expect("buffer"));
    let mut total = 0;
    for i in 0..n {
        let data = chunk(i);
        side.peer.send(&data);
        total += measure(&mut || {
            let b = buffer.take().expect("buffer");
            buffer = Some(safe_stream_round(&side.socket, &mut slot, b, &p));
        });
        assert_eq!(side.peer.recv_exact(CHUNK), data, "round {i} echoed");
    }
    assert!(slot.is_ready(), "the slot kept its memory");
    drop((slot, buffer));
    side.finish();
    (n, total)
}

/// `n` raw echo rounds.
fn stream_raw_with(n: u64, measure: Measure<'_>) -> (u64, u64) {
    let mut data = vec![0; CHUNK];
    let mut side = RawSide::new(&mut data);
    let table = side.table();
    let calls = (
        table.WskReceive.expect("table"),
        table.WskSend.expect("table"),
    );
    let mut total = 0;
    for i in 0..n {
        let sent = chunk(i);
        side.peer.send(&sent);
        total += measure(&mut || {
            raw_stream_round(&mut side.client, calls, side.socket, &mut side.buf);
        });
        assert_eq!(side.peer.recv_exact(CHUNK), sent, "round {i} echoed");
    }
    side.finish();
    black_box(&data);
    (n, total)
}

fn run_once(f: &mut dyn FnMut()) -> u64 {
    f();
    0
}

fn count_allocs(f: &mut dyn FnMut()) -> u64 {
    counting(f).1
}

macro_rules! entry_points {
    ($($with:ident => $run:ident, $allocs:ident;)*) => {$(
        fn $run(n: u64) -> u64 {
            $with(n, &mut run_once).0
        }
        fn $allocs(n: u64) -> u64 {
            $with(n, &mut count_allocs).1
        }
    )*};
}

entry_points! {
    send_safe_with => send_safe, send_allocs_safe;
    send_raw_with => send_raw, send_allocs_raw;
    send_slot_with => send_slot, send_allocs_slot;
    send_reused_with => send_reused, send_allocs_reused;
    stream_safe_with => stream_safe, stream_allocs_safe;
    stream_raw_with => stream_raw, stream_allocs_raw;
}

fn main() {
    common::main(
        &[
            Case {
                group: "request_round_trip",
                role: "safe",
                name: "send_safe",
                toggle: "request::safe_send_once",
                iters: 2_000,
                run: send_safe,
            },
            Case {
                group: "request_round_trip",
                role: "raw",
                name: "send_raw",
                toggle: "request::raw_send_once",
                iters: 2_000,
                run: send_raw,
            },
            Case {
                group: "reused_request",
                role: "safe",
                name: "send_slot",
                toggle: "request::safe_send_in_slot",
                iters: 2_000,
                run: send_slot,
            },
            Case {
                group: "reused_request",
                role: "raw",
                name: "send_reused",
                toggle: "request::raw_send_reused",
                iters: 2_000,
                run: send_reused,
            },
            Case {
                group: "streaming",
                role: "safe",
                name: "stream_safe",
                toggle: "request::safe_stream_round",
                iters: 500,
                run: stream_safe,
            },
            Case {
                group: "streaming",
                role: "raw",
                name: "stream_raw",
                toggle: "request::raw_stream_round",
                iters: 500,
                run: stream_raw,
            },
        ],
        &[
            AllocGroup {
                group: "request_round_trip",
                unit: "request",
                ops: 2_000,
                safe: send_allocs_safe,
                raw: send_allocs_raw,
            },
            AllocGroup {
                group: "reused_request",
                unit: "request",
                ops: 2_000,
                safe: send_allocs_slot,
                raw: send_allocs_reused,
            },
            AllocGroup {
                group: "streaming",
                unit: "round",
                ops: 500,
                safe: stream_allocs_safe,
                raw: stream_allocs_raw,
            },
        ],
    );
}
