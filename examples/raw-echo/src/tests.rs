//! Host tests: the whole driver, `DriverEntry` to `DriverUnload`, against
//! `wsk-sim` (whose verifier checks IRQL rules, IRP ownership and leaks).
//! The baseline's behaviour under Wine is what `cargo xtask wine raw-echo`
//! and the Wine scenarios check; these tests keep its logic honest on the
//! host.

use std::time::{Duration, Instant};
use std::vec::Vec;

use wsk_sim::{DriverHost, PeerConn, Routine, Sim};
use wsk_sys as sys;

use crate::{Config, MAX_BUFFER_SIZE};

/// The driver, installed as the service `raw-echo`.
fn driver(sim: &Sim) -> DriverHost<'_> {
    // SAFETY: `crate::DriverEntry` is this driver's DriverEntry, exported by
    // `wsk_driver::entry!`.
    unsafe { DriverHost::new(sim, "raw-echo", crate::DriverEntry) }
}

/// Loads the driver on `10.0.0.1:port` with `BufferSize` `buffer`.
fn start(sim: &Sim, port: u32, buffer: u32) -> DriverHost<'_> {
    let mut driver = driver(sim);
    driver.set_parameter_dword("Port", port);
    driver.set_parameter_sz("Address", "10.0.0.1");
    driver.set_parameter_dword("BufferSize", buffer);
    assert_eq!(driver.load(), sys::STATUS_SUCCESS);
    driver.wait_for_line(&format!(
        "raw-echo: listening on 10.0.0.1:{port} buffer={buffer}"
    ));
    driver
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
    let mut driver = start(&sim, 7200, 16);
    let held = connect(&sim, 7200);
    let peer = connect(&sim, 7200);
    driver.wait_for_line("raw-echo: connection 2 from 10.0.0.2:");
    let message: Vec<u8> = (0..100u8).collect();
    peer.send(&message);
    assert_eq!(peer.recv_exact(message.len()), message);
    held.send(b"held");
    assert_eq!(held.recv_exact(4), b"held");
    peer.close();
    assert!(!peer.wait_closed(), "a graceful end is answered by a FIN");
    driver.wait_for_line("raw-echo: connection 2 closed graceful bytes=100");

    driver.unload();
    assert!(held.wait_closed(), "closing without a disconnect resets");
    driver.wait_for_line("raw-echo: connection 1 closed stopped bytes=4");
    driver.wait_for_line("raw-echo: stopped connections=2 bytes=104");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

/// A peer that resets: the connection ends abortively.
#[test]
fn a_reset_ends_the_connection() {
    let sim = Sim::start();
    let mut driver = start(&sim, 7201, 4096);
    let peer = connect(&sim, 7201);
    peer.send(b"x");
    assert_eq!(peer.recv_exact(1), b"x");
    peer.abort();
    driver.wait_for_line("raw-echo: connection 1 closed abortive bytes=1");
    driver.unload();
    driver.wait_for_line("raw-echo: stopped connections=1 bytes=1");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

/// Unloading while a client streams: every request completes at once, and
/// the driver still stops promptly (the stop event is part of every wait).
#[test]
fn unloads_while_a_client_streams() {
    let sim = Sim::start();
    let mut driver = start(&sim, 7202, 4096);
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
    while driver.lines().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let took = driver.unload();
    assert!(took < Duration::from_secs(5), "{took:?}");
    let echoed = streamer.join().unwrap();
    assert!(echoed > 0);
    driver.wait_for_line("raw-echo: connection 1 closed stopped");
    driver.wait_for_line("raw-echo: stopped connections=1");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

/// A connection whose thread cannot be created is reported and closed;
/// the next one is served.
#[test]
fn a_connection_without_a_thread_is_closed() {
    let sim = Sim::start();
    let mut driver = start(&sim, 7203, 4096);
    sim.fail_next(
        Routine::PsCreateSystemThread,
        sys::STATUS_INSUFFICIENT_RESOURCES,
    );
    let first = connect(&sim, 7203);
    assert!(first.wait_closed());
    driver.wait_for_line("raw-echo: connection 1 closed failed:0xC000009A bytes=0");
    let second = connect(&sim, 7203);
    second.send(b"ok");
    assert_eq!(second.recv_exact(2), b"ok");
    driver.unload();
    driver.wait_for_line("raw-echo: stopped connections=2 bytes=2");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

#[test]
fn rejects_bad_parameters() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    for (name, value) in [
        ("Port", 70_000),
        ("BufferSize", 0),
        ("BufferSize", u32::try_from(MAX_BUFFER_SIZE).unwrap() + 1),
    ] {
        driver.set_parameter_dword("Port", 7204);
        driver.set_parameter_dword("BufferSize", 4096);
        driver.set_parameter_dword(name, value);
        assert_eq!(driver.load(), sys::STATUS_INVALID_PARAMETER);
    }
    driver.set_parameter_dword("BufferSize", 4096);
    driver.set_parameter_sz("Address", "10.0.0.one");
    assert_eq!(driver.load(), sys::STATUS_INVALID_PARAMETER);
    driver.wait_for_line("raw-echo: invalid Parameters");
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
    let mut driver = driver(&sim);
    assert_eq!(driver.load(), sys::STATUS_DEVICE_NOT_READY);
    driver.wait_for_line("raw-echo: failed to start: 0xC00000A3");
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}
