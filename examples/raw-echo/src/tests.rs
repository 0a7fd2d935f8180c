//! Host tests: the whole driver, `DriverEntry` to `DriverUnload`, against
//! `wsk-sim` (whose verifier checks IRQL rules, IRP ownership and leaks).
//! The baseline's behaviour under Wine is what `cargo xtask wine raw-echo`
//! and the Wine scenarios check; these tests keep its logic honest on the
//! host.

use std::string::String;
use std::time::{Duration, Instant};
use std::vec::Vec;

use wsk_sim::{PeerConn, Routine, Sim};
use wsk_sys as sys;

use crate::{Config, MAX_BUFFER_SIZE};

const SERVICE: &str = r"\Registry\Machine\System\CurrentControlSet\Services\raw-echo";

fn parameters() -> String {
    format!(r"{SERVICE}\Parameters")
}

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

fn lines(sim: &Sim) -> Vec<String> {
    sim.stats().debug_output
}

fn wait_for_line(sim: &Sim, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if lines(sim).iter().any(|l| l.contains(text)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no line containing {text:?} in {:#?}", lines(sim));
}

fn start(sim: &Sim, port: u32, buffer: u32) {
    sim.registry_set_dword(&parameters(), "Port", port);
    sim.registry_set_sz(&parameters(), "Address", "10.0.0.1");
    sim.registry_set_dword(&parameters(), "BufferSize", buffer);
    assert_eq!(driver_entry(sim), sys::STATUS_SUCCESS);
    wait_for_line(
        sim,
        &format!("raw-echo: listening on 10.0.0.1:{port} buffer={buffer}"),
    );
}

fn connect(sim: &Sim, port: u32) -> PeerConn {
    sim.peer_connect(&format!("10.0.0.1:{port}"))
        .expect("the driver accepts")
}

/// Two connections at once: one echoes more than a buffer's worth and
/// closes gracefully (the driver disconnects gracefully too); the other is
/// still open when the driver unloads, which closes it.
#[test]
fn echoes_and_unloads_with_a_connection_open() {
    let sim = Sim::start();
    start(&sim, 7200, 16);
    let held = connect(&sim, 7200);
    let peer = connect(&sim, 7200);
    wait_for_line(&sim, "raw-echo: connection 2 from 10.0.0.2:");
    let message: Vec<u8> = (0..100u8).collect();
    peer.send(&message);
    assert_eq!(peer.recv_exact(message.len()), message);
    held.send(b"held");
    assert_eq!(held.recv_exact(4), b"held");
    peer.close();
    assert!(!peer.wait_closed(), "a graceful end is answered by a FIN");
    wait_for_line(&sim, "raw-echo: connection 2 closed graceful bytes=100");

    driver_unload(&sim);
    assert!(held.wait_closed(), "closing without a disconnect resets");
    wait_for_line(&sim, "raw-echo: connection 1 closed stopped bytes=4");
    wait_for_line(&sim, "raw-echo: stopped connections=2 bytes=104");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

/// A peer that resets: the connection ends abortively.
#[test]
fn a_reset_ends_the_connection() {
    let sim = Sim::start();
    start(&sim, 7201, 4096);
    let peer = connect(&sim, 7201);
    peer.send(b"x");
    assert_eq!(peer.recv_exact(1), b"x");
    peer.abort();
    wait_for_line(&sim, "raw-echo: connection 1 closed abortive bytes=1");
    driver_unload(&sim);
    wait_for_line(&sim, "raw-echo: stopped connections=1 bytes=1");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

/// Unloading while a client streams: every request completes at once, and
/// the driver still stops promptly (the stop event is part of every wait).
#[test]
fn unloads_while_a_client_streams() {
    let sim = Sim::start();
    start(&sim, 7202, 4096);
    let peer = connect(&sim, 7202);
    let streamer = std::thread::spawn(move || {
        let mut echoed = 0usize;
        loop {
            if peer.is_closed_by_driver() {
                return echoed;
            }
            peer.send(&[7u8; 512]);
            let back = peer.recv(512);
            if back.is_empty() {
                return echoed;
            }
            echoed += back.len();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().debug_output.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    driver_unload(&sim);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let echoed = streamer.join().unwrap();
    assert!(echoed > 0);
    wait_for_line(&sim, "raw-echo: connection 1 closed stopped");
    wait_for_line(&sim, "raw-echo: stopped connections=1");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

/// A connection whose thread cannot be created is reported and closed;
/// the next one is served.
#[test]
fn a_connection_without_a_thread_is_closed() {
    let sim = Sim::start();
    start(&sim, 7203, 4096);
    sim.fail_next(
        Routine::PsCreateSystemThread,
        sys::STATUS_INSUFFICIENT_RESOURCES,
    );
    let first = connect(&sim, 7203);
    assert!(first.wait_closed());
    wait_for_line(
        &sim,
        "raw-echo: connection 1 closed failed:0xC000009A bytes=0",
    );
    let second = connect(&sim, 7203);
    second.send(b"ok");
    assert_eq!(second.recv_exact(2), b"ok");
    driver_unload(&sim);
    wait_for_line(&sim, "raw-echo: stopped connections=2 bytes=2");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

#[test]
fn rejects_bad_parameters() {
    let sim = Sim::start();
    for (name, value) in [
        ("Port", 70_000),
        ("BufferSize", 0),
        ("BufferSize", u32::try_from(MAX_BUFFER_SIZE).unwrap() + 1),
    ] {
        sim.registry_set_dword(&parameters(), "Port", 7204);
        sim.registry_set_dword(&parameters(), "BufferSize", 4096);
        sim.registry_set_dword(&parameters(), name, value);
        assert_eq!(driver_entry(&sim), sys::STATUS_INVALID_PARAMETER);
    }
    sim.registry_set_dword(&parameters(), "BufferSize", 4096);
    sim.registry_set_sz(&parameters(), "Address", "10.0.0.one");
    assert_eq!(driver_entry(&sim), sys::STATUS_INVALID_PARAMETER);
    wait_for_line(&sim, "raw-echo: invalid Parameters");
}

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c.address.to_string(), "0.0.0.0:7007");
    assert_eq!(c.buffer_size, 64 * 1024);
}

/// Without a provider, `DriverEntry` fails after the capture timeout and
/// leaves nothing registered.
#[test]
fn fails_cleanly_without_a_provider() {
    let sim = Sim::start();
    sim.set_provider_ready(wsk_sim::Readiness::Never);
    assert_eq!(driver_entry(&sim), sys::STATUS_DEVICE_NOT_READY);
    wait_for_line(&sim, "raw-echo: failed to start: 0xC00000A3");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}
