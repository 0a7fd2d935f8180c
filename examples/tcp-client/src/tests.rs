//! Host tests: the driver from `DriverEntry` to `DriverUnload` against
//! `wsk-sim`, with a scripted echo peer; the report is read from the
//! driver's `DbgPrint` lines.

use alloc::string::String;
use std::string::ToString;
use std::thread;
use std::time::Duration;
use std::vec::Vec;

use wsk::Error;
use wsk::sys;
use wsk_sim::{DriverHost, EventKind, Irql, Sim};

use crate::client::Config;

/// Runs the driver once — `DriverEntry` with `Host`, `Port` and `Message`,
/// then `DriverUnload`, which waits for the client — and returns its lines.
fn run(sim: &Sim, host: &str, port: u32, message: &str) -> Vec<String> {
    // SAFETY: `crate::DriverEntry` is this driver's DriverEntry, exported by
    // `wsk_driver::entry!`.
    let mut driver = unsafe { DriverHost::new(sim, "tcp-client", crate::DriverEntry) };
    driver.set_parameter_sz("Host", host);
    driver.set_parameter_dword("Port", port);
    driver.set_parameter_sz("Message", message);
    assert_eq!(driver.load(), sys::STATUS_SUCCESS);
    driver.set_line_timeout(Duration::from_secs(20));
    driver.wait_for_any_line(&["tcp-client: done ", "tcp-client: failed: "]);
    driver.unload();
    let lines = driver.lines();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("tcp-client: unloaded")
    );
    lines
}

fn has(lines: &[String], line: &str) -> bool {
    lines.iter().any(|l| l == line)
}

/// A peer at `addr` that echoes one message of `len` bytes, then closes gracefully.
fn echo_peer(sim: &Sim, addr: &str, len: usize) -> thread::JoinHandle<Vec<u8>> {
    let listener = sim.peer_listen(addr);
    thread::spawn(move || {
        let conn = listener.accept();
        let data = conn.recv_exact(len);
        conn.send(&data);
        conn.close();
        data
    })
}

#[test]
fn resolves_connects_and_reads_the_echo() {
    for irql in [Irql::Passive, Irql::Dispatch] {
        let sim = Sim::start();
        sim.set_event_irql(irql);
        sim.add_name("echo.test", &["10.0.0.7"]);
        let peer = echo_peer(&sim, "10.0.0.7:7", 6);
        let lines = run(&sim, "echo.test", 7, "ping!\n");
        assert_eq!(peer.join().unwrap(), b"ping!\n", "the peer got the message");
        assert!(
            has(&lines, "tcp-client: connected to 10.0.0.7:7"),
            "{lines:#?}"
        );
        assert!(has(&lines, "tcp-client: received 6 bytes identical=true"));
        assert!(has(&lines, "tcp-client: disconnect: graceful"));
        assert!(
            has(
                &lines,
                "tcp-client: done remote=10.0.0.7:7 events=true sent=6 received=6"
            ),
            "the simulated provider supports events: {lines:#?}"
        );
        sim.settle();
        let disconnects = sim.stats().statuses(EventKind::Disconnect);
        assert!(disconnects.iter().all(|&s| s == sys::STATUS_SUCCESS));
        sim.finish();
    }
}

#[test]
fn falls_back_to_requests_when_events_are_refused() {
    let sim = Sim::start();
    sim.add_name("echo.test", &["10.0.0.7"]);
    let peer = echo_peer(&sim, "10.0.0.7:7", 5);
    // No event callbacks, no WskDisconnect (closing sends FIN).
    sim.imitate_wine_netio();
    let lines = run(&sim, "echo.test", 7, "wine\n");
    assert!(has(&lines, "tcp-client: received 5 bytes identical=true"));
    // A clear error, not a hang.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tcp-client: disconnect: STATUS_NOT_IMPLEMENTED"))
    );
    assert!(has(
        &lines,
        "tcp-client: done remote=10.0.0.7:7 events=false sent=5 received=5"
    ));
    assert!(sim.events().is_empty(), "requests only");
    peer.join().unwrap();
    sim.finish();
}

#[test]
fn tries_the_next_address_when_one_refuses() {
    let sim = Sim::start();
    sim.add_host("10.0.0.8"); // up, but nothing listens: refused
    sim.add_name("multi.test", &["10.0.0.8", "10.0.0.9"]);
    let peer = echo_peer(&sim, "10.0.0.9:7", 3);
    let lines = run(&sim, "multi.test", 7, "abc");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tcp-client: connect to 10.0.0.8:7 failed: "))
    );
    assert!(has(
        &lines,
        "tcp-client: done remote=10.0.0.9:7 events=true sent=3 received=3"
    ));
    peer.join().unwrap();
    sim.finish();
}

#[test]
fn an_unknown_host_is_a_clear_error() {
    let sim = Sim::start();
    let lines = run(&sim, "nowhere.test", 7, "x");
    let failed = lines
        .iter()
        .find(|l| l.starts_with("tcp-client: failed: "))
        .expect("reported");
    assert!(
        !failed.contains(&Error::IO_TIMEOUT.to_string()),
        "resolution fails, it does not hang: {failed}"
    );
    sim.finish();
}

#[test]
fn invalid_parameters_are_rejected() {
    assert_eq!(
        Config::new(None, Some(70000), None),
        Err(Error::INVALID_PARAMETER)
    );
    assert_eq!(
        Config::new(None, Some(0), None),
        Err(Error::INVALID_PARAMETER)
    );
    assert_eq!(
        Config::new(Some(String::new()), None, None),
        Err(Error::INVALID_PARAMETER)
    );
    assert_eq!(Config::new(None, None, None), Ok(Config::default()));
}
