//! The completion routine's wake path: a receive that pends, then completes
//! when the peer's data arrives (`completion_wake`). `cargo xtask bench`
//! collects the peer's send, inside which the simulator completes the IRP,
//! so the completion routine and its wake, on both sides.
//!
//! - Safe: `ConnectionSocket::receive_in` over a slot, polled inside
//!   `block_on`: the routine finds `block_on`'s waker (one of the crate's
//!   own) and wakes it in place (`KeSetEvent`).
//! - Raw: the raw client's reused IRP, whose completion routine signals the
//!   client's event (`KeSetEvent`), as a C driver's does.
//!
//! Both sides include the simulator's delivery of the bytes; the difference
//! is the crate's completion routine. No target: reported to compare
//! trees. (In a bench binary of its own, so that the other benches' code
//! does not change.)

mod common;

use std::hint::black_box;
use std::ptr;

use wsk::Buffer;
use wsk::events::NoEvents;
use wsk::irql::Passive;
use wsk::request::TransferSlot;
use wsk::tcp::{ConnectionSocket, ReceiveFlags};
use wsk_sim::PeerConn;
use wsk_sys as sys;

use common::{Case, PEER, RawClient, SafeClient};

/// Bytes per receive.
const PAYLOAD: [u8; 16] = [0xa5; 16];

/// `WskReceive`'s signature.
type ReceiveFn = unsafe extern "system" fn(
    sys::PWSK_SOCKET,
    sys::PWSK_BUF,
    sys::ULONG,
    sys::PIRP,
) -> sys::NTSTATUS;

/// The peer's data for a pending safe receive: the simulator completes the
/// IRP here, so this counts the completion routine and its wake.
#[inline(never)]
fn safe_deliver(peer: &PeerConn) {
    peer.send(&PAYLOAD);
}

/// The same for a pending raw receive.
#[inline(never)]
fn raw_deliver(peer: &PeerConn) {
    peer.send(&PAYLOAD);
}

/// One pending receive through the safe layer, completed by the peer while
/// `block_on`'s waker is registered.
fn safe_round(
    socket: &ConnectionSocket<NoEvents>,
    slot: &mut TransferSlot,
    buffer: Buffer,
    peer: &PeerConn,
    passive: &Passive<'_>,
) -> Buffer {
    let mut receive = socket.receive_in(slot, buffer, ReceiveFlags::WAIT_ALL);
    let mut delivered = false;
    let (received, buffer) = wsk::block_on(
        passive,
        core::future::poll_fn(|cx| {
            let ready = core::pin::Pin::new(&mut receive).poll(cx);
            if ready.is_pending() {
                assert!(!delivered, "woken before the data came");
                delivered = true;
                safe_deliver(peer);
            }
            ready
        }),
    );
    assert!(delivered, "the receive pended");
    assert_eq!(received, Ok(PAYLOAD.len()), "WskReceive");
    buffer
}

/// The same with raw calls over the client's reused IRP.
fn raw_round(
    client: &mut RawClient,
    receive: ReceiveFn,
    socket: sys::PWSK_SOCKET,
    buf: &mut sys::WSK_BUF,
    peer: &PeerConn,
) {
    let buf = ptr::from_mut(buf);
    let (status, bytes) = client.call(|irp| {
        // SAFETY: the socket is connected; the WSK_BUF and its MDL outlive
        // the call, which completes before `call` returns.
        let status = unsafe { receive(socket, buf, sys::WSK_FLAG_WAITALL, irp) };
        assert_eq!(status, sys::STATUS_PENDING, "the receive pended");
        raw_deliver(peer);
        status
    });
    assert!(
        status == sys::STATUS_SUCCESS && bytes == PAYLOAD.len(),
        "WskReceive"
    );
}

/// `n` safe pending receives.
fn wake_safe(n: u64) -> u64 {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let client = SafeClient::new();
    let socket = client.connect(NoEvents);
    let peer = listener.accept();
    let p = common::passive();
    let mut slot = TransferSlot::new().expect("slot");
    let mut buffer = Buffer::with_capacity(PAYLOAD.len()).expect("buffer");
    for _ in 0..n {
        buffer = safe_round(&socket, &mut slot, buffer, &peer, &p);
    }
    drop((slot, buffer));
    socket.close().wait(&p).expect("close");
    client.finish();
    sim.finish();
    n
}

/// `n` raw pending receives.
fn wake_raw(n: u64) -> u64 {
    let sim = common::benign_sim();
    let listener = sim.peer_listen(PEER);
    let mut client = RawClient::new();
    let socket = client.connect(ptr::null_mut(), ptr::null(), 0);
    let peer = listener.accept();
    let mut data = PAYLOAD;
    let len = u32::try_from(data.len()).expect("small");
    // SAFETY: `data` outlives the MDL (freed below); no IRP is associated.
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
    // SAFETY: the MDL describes memory this function owns throughout.
    unsafe { sys::MmBuildMdlForNonPagedPool(mdl) };
    let mut buf = sys::WSK_BUF {
        Mdl: mdl,
        Offset: 0,
        Length: data.len(),
    };
    let receive = common::connection_table(socket).WskReceive.expect("table");
    for _ in 0..n {
        raw_round(&mut client, receive, socket, &mut buf, &peer);
    }
    client.close(socket);
    // SAFETY: no request uses the MDL any more.
    unsafe { sys::IoFreeMdl(mdl) };
    client.finish();
    sim.finish();
    black_box(&data);
    n
}

fn main() {
    common::main(
        &[
            Case {
                group: "completion_wake",
                role: "safe",
                name: "wake_safe",
                toggle: "completion::safe_deliver",
                iters: 2_000,
                run: wake_safe,
            },
            Case {
                group: "completion_wake",
                role: "raw",
                name: "wake_raw",
                toggle: "completion::raw_deliver",
                iters: 2_000,
                run: wake_raw,
            },
        ],
        &[],
    );
}
