//! Request round trip: one `WskSend` of 16 bytes on a connected socket with
//! the simulator completing inline — allocate, submit, complete, free —
//! through the safe layer and through raw `wsk_sys` calls on the same
//! simulator.
//!
//! - `send_safe`: `ConnectionSocket::send(buffer).wait(&passive)`, the buffer
//!   reused from one request to the next (it comes back with the result).
//! - `send_raw`: what a C driver writes: one IRP from `IoAllocateIrp`, per
//!   request `IoReuseIrp` + `IoSetCompletionRoutine` + `WskSend` + (a wait
//!   only if it pended) + `KeClearEvent`, over one MDL built once.
//!
//! `cargo xtask bench` collects the inclusive instructions of
//! `request::safe_send_once` / `request::raw_send_once`, each one whole
//! request; the peer draining its receive queue between requests is not
//! counted. Both include the simulator's `WskSend`, so the difference is the
//! safe layer's cost (including the extra kernel routines it calls, which
//! the simulator implements more expensively than Windows does).

mod common;

use std::hint::black_box;
use std::ptr;

use wsk::{Buffer, ConnectionSocket, NoEvents, Passive};
use wsk_sim::Sim;
use wsk_sys as sys;

use common::{AllocGroup, Case, PEER, RawClient, SafeClient, counting};

/// Bytes per request.
const PAYLOAD: [u8; 16] = [0xa5; 16];

/// Drain the peer's receive queue every this many requests.
const DRAIN_EVERY: u64 = 64;

/// One request through the safe layer.
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

/// One request with raw calls.
#[inline(never)]
fn raw_send_once(
    client: &mut RawClient,
    send: unsafe extern "system" fn(
        sys::PWSK_SOCKET,
        sys::PWSK_BUF,
        sys::ULONG,
        sys::PIRP,
    ) -> sys::NTSTATUS,
    socket: sys::PWSK_SOCKET,
    buf: &mut sys::WSK_BUF,
) {
    let buf = ptr::from_mut(buf);
    // SAFETY: the socket is connected; the WSK_BUF and its MDL outlive the
    // call, which completes before `call` returns.
    let (status, bytes) = client.call(|irp| unsafe { send(socket, buf, 0, irp) });
    assert!(
        status == sys::STATUS_SUCCESS && bytes == PAYLOAD.len(),
        "WskSend"
    );
}

/// `n` safe requests; `measure` wraps each. Returns the requests made and
/// the measure's total.
fn send_safe_with(n: u64, mut measure: impl FnMut(&mut dyn FnMut()) -> u64) -> (u64, u64) {
    let sim = Sim::start();
    let listener = sim.peer_listen(PEER);
    let client = SafeClient::new();
    let p = common::passive();
    let socket = client.connect(NoEvents);
    let peer = listener.accept();
    let mut buffer = Some(Buffer::from_slice(&PAYLOAD).expect("buffer"));
    let (mut received, mut total) = (0, 0);
    for i in 0..n {
        total += measure(&mut || {
            let b = buffer.take().expect("buffer");
            buffer = Some(safe_send_once(&socket, b, &p));
        });
        if i % DRAIN_EVERY == DRAIN_EVERY - 1 {
            received += peer.try_recv().len();
        }
    }
    received += peer.try_recv().len();
    assert_eq!(
        received as u64,
        n * PAYLOAD.len() as u64,
        "every byte arrived"
    );
    drop(buffer);
    socket.close().wait(&p).expect("close");
    client.finish();
    sim.finish();
    (n, total)
}

/// The same with raw calls.
fn send_raw_with(n: u64, mut measure: impl FnMut(&mut dyn FnMut()) -> u64) -> (u64, u64) {
    let sim = Sim::start();
    let listener = sim.peer_listen(PEER);
    let mut client = RawClient::new();
    let socket = client.connect(ptr::null_mut(), ptr::null(), 0);
    let peer = listener.accept();
    let mut data = PAYLOAD;
    let len = u32::try_from(data.len()).expect("small");
    // SAFETY: `data` outlives the MDL; no IRP is associated.
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
    // SAFETY: the MDL describes memory we own for its whole life.
    unsafe { sys::MmBuildMdlForNonPagedPool(mdl) };
    let mut buf = sys::WSK_BUF {
        Mdl: mdl,
        Offset: 0,
        Length: data.len(),
    };
    let send = common::connection_table(socket).WskSend.expect("table");
    let (mut received, mut total) = (0, 0);
    for i in 0..n {
        total += measure(&mut || raw_send_once(&mut client, send, socket, &mut buf));
        if i % DRAIN_EVERY == DRAIN_EVERY - 1 {
            received += peer.try_recv().len();
        }
    }
    received += peer.try_recv().len();
    assert_eq!(
        received as u64,
        n * PAYLOAD.len() as u64,
        "every byte arrived"
    );
    client.close(socket);
    // SAFETY: no request uses the MDL any more.
    unsafe { sys::IoFreeMdl(mdl) };
    black_box(&data);
    client.finish();
    sim.finish();
    (n, total)
}

fn run_once(f: &mut dyn FnMut()) -> u64 {
    f();
    0
}

fn count_allocs(f: &mut dyn FnMut()) -> u64 {
    counting(f).1
}

fn send_safe(n: u64) -> u64 {
    send_safe_with(n, run_once).0
}

fn send_raw(n: u64) -> u64 {
    send_raw_with(n, run_once).0
}

fn send_allocs_safe(n: u64) -> u64 {
    send_safe_with(n, count_allocs).1
}

fn send_allocs_raw(n: u64) -> u64 {
    send_raw_with(n, count_allocs).1
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
        ],
        &[AllocGroup {
            group: "request_round_trip",
            unit: "request",
            ops: 2_000,
            safe: send_allocs_safe,
            raw: send_allocs_raw,
        }],
    );
}
