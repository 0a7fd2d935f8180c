//! Event-fed reads (`tcp::ReceiveQueue`): what one indication costs from
//! the receive callback to the reader's copy and `WskRelease`, in
//! allocations (the target: none) and in instructions (for the record).
//!
//! One operation: the peer sends [`PAYLOAD`]; the simulator indicates it
//! inline (on the bench thread); the receive callback retains it into the
//! queue; the reader copies it out and releases it.
//!
//! - *Safe*: `ConnectionSocket<ReceiveQueue>` and `read_into`, polled once
//!   with a no-op waker (the data is queued, so the read is ready at once;
//!   `block_on` would allocate its wake-up event per call). The first read,
//!   a receive request by design, runs before the measurement.
//! - *Raw*: a C-style `PFN_WSK_RECEIVE_EVENT` that keeps the list
//!   (`STATUS_PENDING`), then a copy from its MDL and `WskRelease` — the
//!   same work written against `wsk-sys` — on the same simulator, whose
//!   own allocations it counts.
//!
//! Instructions: callgrind collects `wsk_bench_queue_round` and
//! `wsk_bench_raw_queue_round` (the send, the callback, the read and the
//! release), so the simulator's
//! delivery is counted on both sides alike.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use wsk::Buffer;
use wsk::tcp::{ConnectionSocket, ReceiveQueue};
use wsk_sim::PeerConn;
use wsk_sys as sys;

use common::{AllocGroup, Case, PEER, RawClient, SafeClient, counting};

/// Bytes per indication.
const PAYLOAD: [u8; 1024] = [0x5a; 1024];

/// One round through the queue: indicate, read, release.
#[inline(never)]
fn wsk_bench_queue_round(
    peer: &PeerConn,
    socket: &mut ConnectionSocket<ReceiveQueue>,
    buffer: Buffer,
) -> Buffer {
    peer.send(&PAYLOAD);
    let mut read = std::pin::pin!(socket.read_into(buffer));
    match read.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready((Ok(n), buffer)) => {
            assert_eq!(n, PAYLOAD.len(), "one indication per send");
            buffer
        }
        Poll::Ready((Err(e), _)) => panic!("read_into: {e}"),
        Poll::Pending => panic!("the indication is queued"),
    }
}

/// `n` rounds through the safe layer; `measure` wraps each round.
fn queue_safe_with(n: u64, mut measure: impl FnMut(&mut dyn FnMut()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let client = SafeClient::new();
    let p = common::passive();
    let mut socket = client.connect(ReceiveQueue::new());
    let peer = listener.accept();
    assert!(socket.events_enabled());
    // The first read is a receive request (the design): not measured.
    peer.send(b"first");
    let (first, buffer) = wsk::block_on(
        &p,
        socket.read_into(Buffer::with_capacity(PAYLOAD.len()).unwrap()),
    );
    assert_eq!(first, Ok(5));
    let mut buffer = Some(buffer);
    let mut total = 0;
    for _ in 0..n {
        total += measure(&mut || {
            let b = buffer.take().expect("buffer");
            buffer = Some(wsk_bench_queue_round(&peer, &mut socket, b));
        });
    }
    drop(buffer);
    socket.close().wait(&p).expect("close");
    client.finish();
    sim.finish();
    (n, total)
}

// --- raw ---------------------------------------------------------------------

thread_local! {
    /// The list the raw callback kept.
    static KEPT: Cell<usize> = const { Cell::new(0) };
}

/// The C-style receive callback: keeps the list.
///
/// # Safety
///
/// Called by the provider for a socket whose events go here.
unsafe extern "system" fn wsk_bench_raw_keep(
    _context: sys::PVOID,
    _flags: sys::ULONG,
    data: sys::PWSK_DATA_INDICATION,
    _bytes_indicated: sys::SIZE_T,
    _bytes_accepted: *mut sys::SIZE_T,
) -> sys::NTSTATUS {
    if data.is_null() {
        return sys::STATUS_SUCCESS;
    }
    KEPT.with(|k| k.set(data as usize));
    sys::STATUS_PENDING
}

static RAW_DISPATCH: sys::WSK_CLIENT_CONNECTION_DISPATCH = sys::WSK_CLIENT_CONNECTION_DISPATCH {
    WskReceiveEvent: Some(wsk_bench_raw_keep),
    WskDisconnectEvent: None,
    WskSendBacklogEvent: None,
};

/// The raw round: the same work against `wsk-sys`.
fn raw_round(peer: &PeerConn, socket: sys::PWSK_SOCKET, out: &mut [u8]) {
    peer.send(&PAYLOAD);
    let head = KEPT.with(|k| k.replace(0)) as sys::PWSK_DATA_INDICATION;
    assert!(!head.is_null(), "the callback kept the list");
    let mut copied = 0;
    let mut next = head;
    while !next.is_null() {
        // SAFETY: a list the provider indicated and we kept.
        let node = unsafe { &*next };
        let mut mdl = node.Buffer.Mdl;
        let mut skip = node.Buffer.Offset as usize;
        let mut left = node.Buffer.Length;
        while left > 0 && !mdl.is_null() {
            // SAFETY: a locked MDL of the kept list.
            let count = unsafe { sys::MmGetMdlByteCount(mdl) } as usize;
            // SAFETY: as above.
            let base = unsafe { sys::MmGetSystemAddressForMdlSafe(mdl, sys::NormalPagePriority) };
            assert!(!base.is_null());
            let n = count.saturating_sub(skip).min(left);
            // SAFETY: `n` mapped bytes of the MDL after `skip`.
            let bytes =
                unsafe { std::slice::from_raw_parts(base.cast::<u8>().wrapping_add(skip), n) };
            out[copied..copied + n].copy_from_slice(bytes);
            copied += n;
            left -= n;
            skip = 0;
            // SAFETY: as above.
            mdl = unsafe { (*mdl).Next };
        }
        next = node.Next;
    }
    assert_eq!(copied, PAYLOAD.len());
    let release = common::connection_table(socket).WskRelease.expect("table");
    // SAFETY: the list this socket indicated and the callback kept.
    let _ = unsafe { release(socket, head) };
}

fn queue_raw_with(n: u64, mut measure: impl FnMut(&mut dyn FnMut()) -> u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let mut client = RawClient::new();
    let socket = client.connect(
        std::ptr::null_mut(),
        &raw const RAW_DISPATCH,
        sys::WSK_EVENT_RECEIVE,
    );
    let peer = listener.accept();
    let mut out = vec![0u8; PAYLOAD.len()];
    let mut total = 0;
    for _ in 0..n {
        total += measure(&mut || raw_round(&peer, socket, &mut out));
    }
    black_box(&out);
    client.close(socket);
    client.finish();
    sim.finish();
    (n, total)
}

// --- instructions and allocations --------------------------------------------

fn run_once(f: &mut dyn FnMut()) -> u64 {
    f();
    0
}

fn queue_safe(n: u64) -> u64 {
    queue_safe_with(n, run_once).0
}

fn queue_raw(n: u64) -> u64 {
    queue_raw_with(n, |f| {
        wsk_bench_raw_queue_round(f);
        0
    })
    .0
}

/// The raw round, under a name callgrind can collect.
#[inline(never)]
fn wsk_bench_raw_queue_round(f: &mut dyn FnMut()) {
    f();
}

fn count(f: &mut dyn FnMut()) -> u64 {
    counting(f).1
}

fn queue_allocs_safe(n: u64) -> u64 {
    queue_safe_with(n, count).1
}

fn queue_allocs_raw(n: u64) -> u64 {
    queue_raw_with(n, count).1
}

fn main() {
    common::main(
        &[
            Case {
                group: "queue_read",
                role: "safe",
                name: "queue_read_safe",
                toggle: "*wsk_bench_queue_round*",
                iters: 1_000,
                run: queue_safe,
            },
            Case {
                group: "queue_read",
                role: "raw",
                name: "queue_read_raw",
                toggle: "*wsk_bench_raw_queue_round*",
                iters: 1_000,
                run: queue_raw,
            },
        ],
        &[AllocGroup {
            group: "queue_read",
            unit: "indication",
            ops: 1_000,
            safe: queue_allocs_safe,
            raw: queue_allocs_raw,
        }],
    );
}
