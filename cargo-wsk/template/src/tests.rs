//! Host tests: the whole driver, from `DriverEntry` to `DriverUnload`,
//! against `wsk-sim` (its verifier checks every WSK and kernel rule it
//! knows). The driver's host is 10.0.0.1 (and 127.0.0.1); simulated peers
//! connect from 10.0.0.2.

use wsk::sys;
use wsk_sim::{DriverHost, Sim};

/// The driver, installed as the service named like the crate: `load` calls
/// its `DriverEntry` and `unload` its `DriverUnload`, as Windows does.
fn driver(sim: &Sim) -> DriverHost<'_> {
    // SAFETY: `crate::DriverEntry` is this driver's DriverEntry, exported by
    // `wsk_driver::entry!`.
    unsafe { DriverHost::new(sim, crate::NAME, crate::DriverEntry) }
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
    let mut driver = driver(&sim);
    driver.set_parameter_dword("Port", 7100);
    assert_eq!(driver.load(), sys::STATUS_SUCCESS);
    driver.wait_for_line("listening on 127.0.0.1:7100 mode=event-driven");
    echo_once(&sim, 7100, b"hello through wsk-sim");
    driver.wait_for_line("connection 1 closed graceful bytes=21");
    driver.unload();
    driver.wait_for_line("stopped connections=1 bytes=21");
    driver.wait_for_line("unloaded");
    sim.finish();
}

#[test]
fn echoes_without_events_like_wine() {
    let sim = Sim::start();
    // A provider like Wine's netio.sys: no event callbacks (it refuses
    // every `WskControlSocket`), no `WskDisconnect` (closing sends FIN),
    // every request pending, cancellation ignored.
    sim.imitate_wine_netio();
    let mut driver = driver(&sim);
    assert_eq!(driver.load(), sys::STATUS_SUCCESS);
    driver.wait_for_line("listening on 127.0.0.1:7007 mode=request-driven");
    echo_once(&sim, 7007, b"no events");
    driver.wait_for_line("connection 1 closed graceful bytes=9");
    driver.unload();
    driver.wait_for_line("unloaded");
    // Every byte went through requests: no callback was made.
    let events = sim.stats().events;
    assert!(events.is_empty(), "event callbacks without events: {events:?}");
    sim.finish();
}

#[test]
fn unloads_with_a_connection_open() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    assert_eq!(driver.load(), sys::STATUS_SUCCESS);
    let peer = sim
        .peer_connect("127.0.0.1:7007")
        .expect("the driver listens");
    // A round is counted once its send completes, which the peer may see
    // first; the second echo is sent only after the first was counted.
    peer.send(b"ping");
    assert_eq!(peer.recv_exact(4), b"ping");
    peer.send(b"pong");
    assert_eq!(peer.recv_exact(4), b"pong");
    driver.unload();
    assert!(peer.wait_closed(), "unloading closes it");
    driver.wait_for_any_line(&[
        "stopped connections=1 bytes=4",
        "stopped connections=1 bytes=8",
    ]);
    sim.finish();
}

#[test]
fn rejects_a_bad_port() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    driver.set_parameter_dword("Port", 70_000);
    assert_eq!(driver.load(), sys::STATUS_INVALID_PARAMETER);
    driver.wait_for_line("invalid Parameters");
    sim.finish();
}
