//! Host tests: the driver from `DriverEntry` to `DriverUnload` against
//! `wsk-sim`, with and without event support (it uses requests either way).

use std::time::{Duration, Instant};
use std::vec::Vec;

use wsk::sys;
use wsk_sim::{CompletionMode, Routine, Sim};

const SERVICE: &str = r"\Registry\Machine\System\CurrentControlSet\Services\echo-minimal";

/// `DriverEntry` with `Port`, as the I/O manager calls it.
fn load(sim: &Sim, port: u32) -> sys::NTSTATUS {
    sim.registry_set_dword(&format!(r"{SERVICE}\Parameters"), "Port", port);
    let mut path: Vec<u16> = SERVICE.encode_utf16().collect();
    let bytes = u16::try_from(path.len() * 2).unwrap();
    let mut registry_path = sys::UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: path.as_mut_ptr(),
    };
    // SAFETY: a valid driver object and registry path, at PASSIVE_LEVEL.
    unsafe { crate::DriverEntry(sim.driver_object(), &raw mut registry_path) }
}

fn unload(sim: &Sim) {
    let driver = sim.driver_object();
    // SAFETY: the simulator's driver object is valid; DriverEntry set it up.
    let unload = unsafe { (*driver).DriverUnload }.expect("DriverEntry sets DriverUnload");
    // SAFETY: once, after a successful DriverEntry, at PASSIVE_LEVEL.
    unsafe { unload(driver) };
}

fn wait_for_line(sim: &Sim, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sim.stats().debug_output.iter().any(|l| l.contains(text)) {
        assert!(
            Instant::now() < deadline,
            "no line with {text:?}: {:#?}",
            sim.stats().debug_output
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn scenario(sim: &Sim) {
    assert_eq!(load(sim, 7200), sys::STATUS_SUCCESS);
    wait_for_line(sim, "echo-minimal: listening on 127.0.0.1:7200");
    let a = sim.peer_connect("127.0.0.1:7200").expect("accepted");
    let b = sim.peer_connect("127.0.0.1:7200").expect("accepted");
    // The second is served while the first is open and idle.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    b.send(&data);
    assert!(b.recv_exact(data.len()) == data);
    b.close();
    assert!(!b.wait_closed(), "a graceful close is answered gracefully");
    wait_for_line(sim, "echo-minimal: connection closed bytes=100000");
    a.send(b"hi");
    assert_eq!(a.recv_exact(2), b"hi");
    unload(sim);
    assert!(a.wait_closed(), "unloading closes the open connection");
    wait_for_line(sim, "echo-minimal: unloaded");
    sim.settle();
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
    assert_eq!(sim.open_sockets(), 0);
    assert!(
        !sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains("alive") || l.contains("failed"))
    );
}

#[test]
fn echoes_with_a_provider_that_has_events() {
    scenario(&Sim::start());
}

#[test]
fn echoes_like_under_wine() {
    let sim = Sim::start();
    // No event callbacks, requests pending even when complete, cancellation ignored.
    for _ in 0..8 {
        sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    }
    sim.set_completion_mode(CompletionMode::InlineReturnPending);
    sim.set_ignore_cancel(true);
    scenario(&sim);
}

#[test]
fn rejects_a_bad_port() {
    let sim = Sim::start();
    assert_eq!(load(&sim, 70_000), sys::STATUS_INVALID_PARAMETER);
}
