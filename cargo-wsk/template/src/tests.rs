//! Host tests: the whole driver, from `DriverEntry` to `DriverUnload`,
//! against `wsk-sim` (its verifier checks every WSK and kernel rule it
//! knows). The driver's host is 10.0.0.1 (and 127.0.0.1); simulated peers
//! connect from 10.0.0.2.

use std::time::{Duration, Instant};

use wsk::sys;
use wsk_sim::{Routine, Sim};

/// The service key `DriverEntry` receives.
const SERVICE: &str = r"\Registry\Machine\System\CurrentControlSet\Services\testdrv";

/// Calls `DriverEntry` as the I/O manager does.
fn driver_entry(sim: &Sim) -> sys::NTSTATUS {
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

/// Calls the `DriverUnload` that `DriverEntry` installed.
fn driver_unload(sim: &Sim) {
    let driver = sim.driver_object();
    // SAFETY: the simulator's driver object is valid; DriverEntry set it up.
    let unload = unsafe { (*driver).DriverUnload }.expect("DriverEntry sets DriverUnload");
    // SAFETY: once, after a successful DriverEntry, at PASSIVE_LEVEL.
    unsafe { unload(driver) };
}

/// Waits until the driver has printed a line containing `text`.
fn wait_for_line(sim: &Sim, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if sim.stats().debug_output.iter().any(|l| l.contains(text)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "no line containing {text:?} in {:#?}",
        sim.stats().debug_output
    );
}

fn echo_once(sim: &Sim, port: u16, data: &[u8]) {
    let peer = sim
        .peer_connect(&format!("127.0.0.1:{port}"))
        .expect("the driver listens");
    assert_eq!(peer.local_addr().ip().to_string(), "10.0.0.2");
    peer.send(data);
    assert_eq!(peer.recv_exact(data.len()), data);
    peer.close();
    assert!(
        !peer.wait_closed(),
        "the driver closes gracefully, no reset"
    );
}

#[test]
fn echoes_with_events() {
    let sim = Sim::start();
    sim.registry_set_dword(&format!(r"{SERVICE}\Parameters"), "Port", 7100);
    assert_eq!(driver_entry(&sim), sys::STATUS_SUCCESS);
    wait_for_line(&sim, "listening on 127.0.0.1:7100 mode=event-driven");
    echo_once(&sim, 7100, b"hello through wsk-sim");
    wait_for_line(&sim, "connection 1 closed graceful bytes=21");
    driver_unload(&sim);
    wait_for_line(&sim, "stopped connections=1 bytes=21");
    wait_for_line(&sim, "unloaded");
    sim.finish();
}

#[test]
fn echoes_without_events_like_wine() {
    let sim = Sim::start();
    // Wine's netio.sys has no event callbacks: every enable is refused.
    for _ in 0..4 {
        sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    }
    assert_eq!(driver_entry(&sim), sys::STATUS_SUCCESS);
    wait_for_line(&sim, "listening on 127.0.0.1:7007 mode=request-driven");
    echo_once(&sim, 7007, b"no events");
    wait_for_line(&sim, "connection 1 closed graceful bytes=9");
    driver_unload(&sim);
    wait_for_line(&sim, "unloaded");
    sim.finish();
}

#[test]
fn unloads_with_a_connection_open() {
    let sim = Sim::start();
    assert_eq!(driver_entry(&sim), sys::STATUS_SUCCESS);
    let peer = sim
        .peer_connect("127.0.0.1:7007")
        .expect("the driver listens");
    peer.send(b"ping");
    assert_eq!(peer.recv_exact(4), b"ping");
    driver_unload(&sim);
    assert!(peer.wait_closed(), "unloading closes it");
    wait_for_line(&sim, "stopped connections=1 bytes=4");
    sim.finish();
}

#[test]
fn rejects_a_bad_port() {
    let sim = Sim::start();
    sim.registry_set_dword(&format!(r"{SERVICE}\Parameters"), "Port", 70_000);
    assert_eq!(driver_entry(&sim), sys::STATUS_INVALID_PARAMETER);
    wait_for_line(&sim, "invalid Parameters");
    sim.finish();
}
