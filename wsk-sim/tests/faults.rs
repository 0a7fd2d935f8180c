//! Persistent faults: `Sim::fail_always`, `Sim::stub_out`,
//! `Sim::clear_faults`, and the provider profile built on them,
//! `Sim::imitate_wine_netio`.
// Raw FFI test code: pointers to locals go straight to C-ABI routines, as
// in a C driver; short names (c = client, s = socket, p = peer, r = request,
// b = buffer) keep the scenarios readable.
#![allow(clippy::borrow_as_ptr, clippy::many_single_char_names)]
#![allow(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
#![allow(missing_docs, clippy::missing_safety_doc)]

mod common;

use core::ptr;

use common::*;
use wsk_sim::{Routine, WINE_NETIO_STUBS};
use wsk_sys::*;

fn stream_socket(c: &Client, flags: u32) -> (NTSTATUS, PWSK_SOCKET) {
    c.try_socket(
        AF_INET,
        SOCK_STREAM,
        IPPROTO_TCP as u32,
        flags,
        ptr::null_mut(),
        ptr::null(),
    )
}

#[test]
fn fail_always_fails_every_call_after_the_queued_ones_until_cleared() {
    let sim = benign();
    let c = Client::new();
    sim.fail_always(Routine::WskSocket, STATUS_INSUFFICIENT_RESOURCES);
    sim.fail_next(Routine::WskSocket, STATUS_NETWORK_UNREACHABLE);
    // The queued fault first, then the persistent one, on every call; each
    // completes its IRP (`Req::wait` checks that a non-pending return came
    // with a completed IRP of the same status).
    assert_eq!(
        stream_socket(&c, WSK_FLAG_CONNECTION_SOCKET).0,
        STATUS_NETWORK_UNREACHABLE
    );
    for _ in 0..5 {
        assert_eq!(
            stream_socket(&c, WSK_FLAG_CONNECTION_SOCKET).0,
            STATUS_INSUFFICIENT_RESOURCES
        );
    }
    // Other routines are untouched.
    assert!(allocates_an_irp());
    sim.clear_faults(Routine::WskSocket);
    let (st, s) = stream_socket(&c, WSK_FLAG_CONNECTION_SOCKET);
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(close(s), STATUS_SUCCESS);
    assert_eq!(sim.stats().sockets_created, 1);
    c.finish();
}

#[test]
fn fail_always_makes_an_allocation_routine_return_null() {
    let sim = benign();
    sim.fail_always(Routine::IoAllocateIrp, STATUS_INSUFFICIENT_RESOURCES);
    for _ in 0..3 {
        assert!(!allocates_an_irp());
    }
    sim.clear_faults(Routine::IoAllocateIrp);
    assert!(allocates_an_irp());
}

#[test]
fn clear_faults_also_forgets_queued_faults() {
    let sim = benign();
    let c = Client::new();
    sim.fail_next(Routine::WskSocket, STATUS_NETWORK_UNREACHABLE);
    sim.fail_next(Routine::WskSocket, STATUS_NETWORK_UNREACHABLE);
    sim.clear_faults(Routine::WskSocket);
    let (st, s) = stream_socket(&c, WSK_FLAG_CONNECTION_SOCKET);
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn a_stub_returns_at_once_and_never_completes_its_irp() {
    let sim = benign();
    let (c, s, p) = client_connected_to_peer(&sim, "10.0.0.2:80");
    sim.stub_out(Routine::WskDisconnect, STATUS_NOT_IMPLEMENTED);
    let mut r = Req::new();
    for _ in 0..3 {
        let irp = r.arm();
        let st = unsafe { (conn(s).WskDisconnect.unwrap())(s, ptr::null_mut(), 0, irp) };
        assert_eq!(st, STATUS_NOT_IMPLEMENTED);
        assert!(!r.done(), "a stub never completes the IRP");
        // `IoReuseIrp` in `arm` left this status; nothing wrote it since.
        assert_eq!(r.result(), (STATUS_UNSUCCESSFUL, 0));
    }
    // The IRP was never the provider's: it can go to another call at once.
    let mut b = Buf::new(b"still");
    let irp = r.arm();
    let st = unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(r.wait(st), (STATUS_SUCCESS, 5));
    assert_eq!(p.recv_exact(5), b"still");
    // A stub without an IRP just returns the status, every time.
    sim.stub_out(Routine::WskControlSocket, STATUS_NOT_IMPLEMENTED);
    for _ in 0..3 {
        assert_eq!(enable_events(s, WSK_EVENT_RECEIVE), STATUS_NOT_IMPLEMENTED);
    }
    // A queued fault comes before the stub, and completes its IRP.
    sim.fail_next(Routine::WskDisconnect, STATUS_NETWORK_UNREACHABLE);
    assert_eq!(disconnect(s, 0), STATUS_NETWORK_UNREACHABLE);
    sim.clear_faults(Routine::WskDisconnect);
    assert_eq!(disconnect(s, 0), STATUS_SUCCESS);
    assert_eq!(p.recv_until_closed(), b"");
    drop((r, b));
    assert_eq!(close(s), STATUS_SUCCESS);
    c.finish();
}

#[test]
fn imitating_wine_netio_stubs_what_it_lacks_and_keeps_the_rest() {
    let sim = benign();
    sim.imitate_wine_netio();
    let peer = sim.peer_listen("10.0.0.2:80");
    let c = Client::new();
    // Listen and connection sockets work; every request returns
    // STATUS_PENDING even when complete.
    let (st, l) = stream_socket(&c, WSK_FLAG_LISTEN_SOCKET);
    assert_eq!(st, STATUS_SUCCESS);
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ptr::null_mut(), ptr::null());
    let mut r = Req::new();
    let mut a = Sa::new("0.0.0.0:0");
    let irp = r.arm();
    let st = unsafe { (conn(s).WskBind.unwrap())(s, a.ptr(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);
    let mut a = Sa::new("10.0.0.2:80");
    let irp = r.arm();
    let st = unsafe { (conn(s).WskConnect.unwrap())(s, a.ptr(), 0, irp) };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);
    let p = peer.accept();
    assert_eq!(send(s, b"hi"), (STATUS_SUCCESS, 2));
    assert_eq!(p.recv_exact(2), b"hi");

    // Other kinds are refused, the IRP completed.
    for flags in [
        WSK_FLAG_BASIC_SOCKET,
        WSK_FLAG_STREAM_SOCKET,
        WSK_FLAG_DATAGRAM_SOCKET,
    ] {
        let (ty, proto) = if flags == WSK_FLAG_DATAGRAM_SOCKET {
            (SOCK_DGRAM, IPPROTO_UDP as u32)
        } else {
            (SOCK_STREAM, IPPROTO_TCP as u32)
        };
        let (st, _) = c.try_socket(AF_INET, ty, proto, flags, ptr::null_mut(), ptr::null());
        assert_eq!(st, STATUS_NOT_IMPLEMENTED, "flags {flags:#x}");
    }

    // No event callbacks, no disconnect, no addresses: stubs.
    assert!(WINE_NETIO_STUBS.contains(&Routine::WskControlSocket));
    assert_eq!(enable_events(s, WSK_EVENT_RECEIVE), STATUS_NOT_IMPLEMENTED);
    assert_eq!(enable_events(l, WSK_EVENT_ACCEPT), STATUS_NOT_IMPLEMENTED);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskDisconnect.unwrap())(s, ptr::null_mut(), 0, irp) };
    assert_eq!(st, STATUS_NOT_IMPLEMENTED);
    assert!(!r.done());
    let mut a = Sa::empty();
    let irp = r.arm();
    let st = unsafe { (conn(s).WskGetLocalAddress.unwrap())(s, a.ptr(), irp) };
    assert_eq!(st, STATUS_NOT_IMPLEMENTED);
    assert!(!r.done());

    // `IoCancelIrp` does nothing; closing the socket completes the request.
    let mut b = Buf::zeroed(4);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
    assert_eq!(st, STATUS_PENDING);
    assert_eq!(unsafe { IoCancelIrp(r.irp) }, FALSE);
    assert!(!r.done());
    assert_eq!(close(s), STATUS_SUCCESS);
    assert_eq!(r.wait(st).0, STATUS_CANCELLED);
    // Closing without `WskDisconnect` ended the connection with FIN.
    assert!(!p.wait_closed(), "FIN, not a reset");
    drop((r, b));
    assert_eq!(close(l), STATUS_SUCCESS);
    c.finish();
}

/// Whether `IoAllocateIrp` succeeds now (the IRP is freed again).
fn allocates_an_irp() -> bool {
    let irp = unsafe { IoAllocateIrp(1, FALSE) };
    if irp.is_null() {
        return false;
    }
    unsafe { IoFreeIrp(irp) };
    true
}
