//! Host tests: the driver from `DriverEntry` to `DriverUnload` against
//! `wsk-sim`, with and without event support (it uses requests either way).

use std::vec::Vec;

use wsk::sys;
use wsk_sim::{DriverHost, Sim};

/// The driver, installed as the service `echo-minimal`.
fn driver(sim: &Sim) -> DriverHost<'_> {
    // SAFETY: `crate::DriverEntry` is this driver's DriverEntry, exported by
    // `wsk_driver::entry!`.
    unsafe { DriverHost::new(sim, "echo-minimal", crate::DriverEntry) }
}

/// `DriverEntry` with `Port`.
fn load(driver: &mut DriverHost<'_>, port: u32) -> sys::NTSTATUS {
    driver.set_parameter_dword("Port", port);
    driver.load()
}

/// The whole life of the driver; `close_sends_fin`: the provider's
/// `WskCloseSocket` ends a connection with FIN (Wine) rather than a reset
/// (Microsoft's providers).
fn scenario(sim: &Sim, close_sends_fin: bool) {
    let mut driver = driver(sim);
    assert_eq!(load(&mut driver, 7200), sys::STATUS_SUCCESS);
    driver.wait_for_line("echo-minimal: listening on 127.0.0.1:7200");
    let a = sim.peer_connect("127.0.0.1:7200").expect("accepted");
    let b = sim.peer_connect("127.0.0.1:7200").expect("accepted");
    // The second is served while the first is open and idle.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    b.send(&data);
    assert!(b.recv_exact(data.len()) == data);
    b.close();
    assert!(!b.wait_closed(), "a graceful close is answered gracefully");
    driver.wait_for_line("echo-minimal: connection closed bytes=100000");
    a.send(b"hi");
    assert_eq!(a.recv_exact(2), b"hi");
    driver.unload();
    assert_eq!(
        a.wait_closed(),
        !close_sends_fin,
        "unloading closes the open connection (reset unless close sends FIN)"
    );
    driver.wait_for_line("echo-minimal: unloaded");
    sim.settle();
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
    assert_eq!(sim.open_sockets(), 0);
    assert!(
        !driver
            .lines()
            .iter()
            .any(|l| l.contains("alive") || l.contains("failed"))
    );
}

#[test]
fn echoes_with_a_provider_that_has_events() {
    scenario(&Sim::start(), false);
}

#[test]
fn echoes_like_under_wine() {
    let sim = Sim::start();
    // No event callbacks, no WskDisconnect, requests pending even when
    // complete, cancellation ignored.
    sim.imitate_wine_netio();
    scenario(&sim, true);
    assert!(sim.events().is_empty(), "served by requests alone");
}

#[test]
fn rejects_a_bad_port() {
    let sim = Sim::start();
    assert_eq!(
        load(&mut driver(&sim), 70_000),
        sys::STATUS_INVALID_PARAMETER
    );
}
