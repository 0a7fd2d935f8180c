//! Host tests: the driver's own code against `wsk-sim`, whose verifier
//! checks IRQL rules, waits inside callbacks, and leaks when each test's
//! `Sim` guard drops.

use std::string::String;
use std::time::{Duration, Instant};
use std::vec::Vec;

use wsk::defer::IoObject;
use wsk::irql::Passive;
use wsk::sys;
use wsk_sim::{CompletionMode, EventDelivery, Irql, PeerConn, Routine, Sim};

use crate::{Config, Driver, Mode, Summary};

const SERVICE: &str = r"\Registry\Machine\System\CurrentControlSet\Services\echo-server";

/// The test thread's `PASSIVE_LEVEL` token: the one place these tests make one.
fn passive() -> Passive<'static> {
    // SAFETY: a host test thread runs at PASSIVE_LEVEL (the simulator raises
    // a thread's IRQL only inside its own calls and callbacks), never inside
    // a WSK callback, and the tests never hold a spin lock while they wait.
    unsafe { Passive::new_unchecked() }
}

fn start(sim: &Sim, port: u16) -> Driver {
    // SAFETY: the simulator's driver object lives as long as `sim`.
    let io = unsafe { IoObject::from_driver(sim.driver_object()) };
    let config = Config {
        address: ([0, 0, 0, 0], port).into(),
    };
    Driver::start(&mut passive(), io, &config).expect("the server starts")
}

fn lines(sim: &Sim) -> Vec<String> {
    sim.stats().debug_output
}

/// Waits until a `DbgPrint` line contains `text`.
fn wait_for_line(sim: &Sim, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = lines(sim).into_iter().find(|l| l.contains(text)) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no line containing {text:?} in {:#?}",
            lines(sim)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn connect(sim: &Sim, port: u16) -> PeerConn {
    sim.peer_connect(&format!("10.0.0.1:{port}"))
        .expect("the server accepts")
}

/// Three connections open at once, served out of order; one closes
/// gracefully, one resets, one is still open when the server stops.
fn echo_scenario(sim: &Sim, mode: Mode) {
    let driver = start(sim, 7007);
    assert_eq!(driver.mode(), mode);
    wait_for_line(
        sim,
        &format!("echo-server: listening on 0.0.0.0:7007 mode={mode}"),
    );
    let a = connect(sim, 7007);
    let b = connect(sim, 7007);
    let c = connect(sim, 7007);
    wait_for_line(sim, "connection 3 from 10.0.0.2:");

    c.send(b"third");
    assert_eq!(c.recv_exact(5), b"third");
    b.send(b"second ");
    a.send(b"first");
    b.send(b"connection");
    assert_eq!(a.recv_exact(5), b"first");
    assert_eq!(b.recv_exact(17), b"second connection");
    a.send(b", again");
    assert_eq!(a.recv_exact(7), b", again");

    a.close();
    assert!(!a.wait_closed(), "a graceful close is answered gracefully");
    wait_for_line(sim, "echo-server: connection 1 closed graceful bytes=12");
    b.abort();
    wait_for_line(sim, "echo-server: connection 2 closed abortive bytes=17");

    let summary = driver.stop(&passive());
    assert_eq!(
        summary,
        Summary {
            mode,
            connections: 3,
            bytes: 12 + 17 + 5
        }
    );
    assert!(c.wait_closed(), "stopping closes open connections (reset)");
    wait_for_line(sim, "echo-server: connection 3 closed stopped bytes=5");
    wait_for_line(
        sim,
        &format!("echo-server: stopped connections=3 bytes=34 mode={mode}"),
    );
    assert_eq!(sim.open_sockets(), 0);
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
    assert!(
        !lines(sim)
            .iter()
            .any(|l| l.contains("failed") || l.contains("cannot")),
        "{:#?}",
        lines(sim)
    );
}

#[test]
fn event_driven_with_callbacks_at_passive() {
    let sim = Sim::start();
    sim.set_event_irql(Irql::Passive);
    echo_scenario(&sim, Mode::EventDriven);
}

#[test]
fn event_driven_with_callbacks_at_dispatch() {
    let sim = Sim::start();
    sim.set_event_irql(Irql::Dispatch);
    sim.set_completion_irql(Irql::Dispatch);
    echo_scenario(&sim, Mode::EventDriven);
    let events = sim.events();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e.at_dispatch), "{events:#?}");
}

#[test]
fn event_driven_with_completions_on_another_thread() {
    let sim = Sim::start();
    sim.set_completion_mode(CompletionMode::Worker);
    echo_scenario(&sim, Mode::EventDriven);
}

#[test]
fn event_driven_with_callbacks_on_another_thread() {
    let sim = Sim::start();
    sim.set_event_delivery(EventDelivery::Worker);
    sim.set_event_irql(Irql::Dispatch);
    echo_scenario(&sim, Mode::EventDriven);
}

/// Like Wine: no event callbacks, every request returns `STATUS_PENDING`
/// even when complete, and `IoCancelIrp` does nothing.
fn wine_like(sim: &Sim) {
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    sim.set_completion_mode(CompletionMode::InlineReturnPending);
    sim.set_ignore_cancel(true);
}

#[test]
fn request_driven_when_the_provider_refuses_events() {
    let sim = Sim::start();
    wine_like(&sim);
    echo_scenario(&sim, Mode::RequestDriven);
}

#[test]
fn request_driven_with_completions_on_another_thread() {
    let sim = Sim::start();
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    sim.set_completion_mode(CompletionMode::Worker);
    sim.set_completion_irql(Irql::Dispatch);
    echo_scenario(&sim, Mode::RequestDriven);
}

#[test]
fn request_driven_with_slow_completions() {
    let sim = Sim::start();
    wine_like(&sim);
    sim.set_completion_mode(CompletionMode::Delayed(Duration::from_millis(3)));
    echo_scenario(&sim, Mode::RequestDriven);
}

#[test]
fn event_driven_under_varied_completions_and_irqls() {
    for seed in 1..=6 {
        let sim = Sim::with_seed(seed);
        echo_scenario(&sim, Mode::EventDriven);
    }
}

/// A pattern that shows lost, repeated or reordered chunks.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    #[allow(clippy::cast_possible_truncation)] // i % 251 < 256
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

/// Bulk data on two connections at once: in event-driven mode more than
/// `MAX_QUEUED` arrives before the work item sends any, so the callback
/// refuses data and the work item pulls it with receive requests.
fn bulk_scenario(sim: &Sim, mode: Mode) {
    const LEN: usize = 300 * 1024;
    let driver = start(sim, 7008);
    assert_eq!(driver.mode(), mode);
    let peers = [connect(sim, 7008), connect(sim, 7008)];
    let data = [pattern(LEN, 0), pattern(LEN, 0x5a)];
    for (peer, data) in peers.iter().zip(&data) {
        for chunk in data.chunks(50_000) {
            peer.send(chunk);
        }
    }
    for (peer, data) in peers.iter().zip(&data) {
        assert!(peer.recv_exact(LEN) == *data, "echo differs");
        peer.close();
        assert!(!peer.wait_closed());
    }
    wait_for_line(sim, "connection 1 closed graceful bytes=307200");
    wait_for_line(sim, "connection 2 closed graceful bytes=307200");
    let summary = driver.stop(&passive());
    assert_eq!(summary.bytes, 2 * LEN as u64);
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

#[test]
fn event_driven_bulk_with_flow_control() {
    let sim = Sim::start();
    // Sends complete 2 ms late, so the work item cannot drain the queue as
    // fast as the peer fills it: the receive callback must refuse data, and
    // the work item pull it with receive requests. (With inline completions
    // whether the limit is reached would depend on thread scheduling.)
    sim.set_completion_mode(CompletionMode::Delayed(Duration::from_millis(2)));
    bulk_scenario(&sim, Mode::EventDriven);
    let refused = sim
        .stats()
        .statuses(wsk_sim::EventKind::Receive)
        .iter()
        .filter(|&&s| s == sys::STATUS_DATA_NOT_ACCEPTED)
        .count();
    assert!(refused > 0, "the queue limit was never reached");
}

#[test]
fn request_driven_bulk() {
    let sim = Sim::start();
    wine_like(&sim);
    bulk_scenario(&sim, Mode::RequestDriven);
}

#[test]
fn stops_promptly_with_idle_connections_and_nothing_else() {
    for refuse_events in [false, true] {
        let sim = Sim::start();
        if refuse_events {
            wine_like(&sim);
        }
        let driver = start(&sim, 7009);
        let peers: Vec<PeerConn> = (0..4).map(|_| connect(&sim, 7009)).collect();
        wait_for_line(&sim, "connection 4 from");
        let t = Instant::now();
        let summary = driver.stop(&passive());
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(summary.connections, 4);
        for p in &peers {
            assert!(p.wait_closed());
        }
        assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
    }
}

#[test]
fn a_provider_close_request_ends_the_connection() {
    let sim = Sim::start();
    let driver = start(&sim, 7010);
    let peer = connect(&sim, 7010);
    peer.send(b"x");
    assert_eq!(peer.recv_exact(1), b"x");
    // NULL indications: the listening socket and the connection must close.
    sim.indicate_close_required();
    assert!(peer.wait_closed());
    wait_for_line(&sim, "connection 1 closed abortive bytes=1");
    wait_for_line(&sim, "the listening socket failed");
    let summary = driver.stop(&passive());
    assert_eq!(summary.connections, 1);
}

/// `DriverEntry` with a registry path, as the I/O manager calls it.
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

#[test]
fn driver_entry_reads_parameters_and_unload_stops_everything() {
    let sim = Sim::start();
    sim.fail_next(Routine::WskControlSocket, sys::STATUS_NOT_IMPLEMENTED);
    let params = format!(r"{SERVICE}\Parameters");
    sim.registry_set_dword(&params, "Port", 7100);
    sim.registry_set_sz(&params, "Address", "10.0.0.1");
    assert_eq!(driver_entry(&sim), sys::STATUS_SUCCESS);
    wait_for_line(
        &sim,
        "echo-server: listening on 10.0.0.1:7100 mode=request-driven",
    );
    let peer = connect(&sim, 7100);
    peer.send(b"through DriverEntry");
    assert_eq!(peer.recv_exact(19), b"through DriverEntry");

    let driver = sim.driver_object();
    // SAFETY: the simulator's driver object is valid; DriverEntry set it up.
    let unload = unsafe { (*driver).DriverUnload }.expect("DriverEntry sets DriverUnload");
    // SAFETY: called once after a successful DriverEntry, at PASSIVE_LEVEL.
    unsafe { unload(driver) };
    assert!(peer.wait_closed());
    wait_for_line(
        &sim,
        "echo-server: stopped connections=1 bytes=19 mode=request-driven",
    );
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
}

#[test]
fn driver_entry_defaults_to_port_7007_on_every_address() {
    let sim = Sim::start();
    assert_eq!(driver_entry(&sim), sys::STATUS_SUCCESS);
    wait_for_line(&sim, "listening on 0.0.0.0:7007 mode=event-driven");
    let driver = sim.driver_object();
    // SAFETY: as above.
    let unload = unsafe { (*driver).DriverUnload }.expect("DriverUnload set");
    // SAFETY: as above.
    unsafe { unload(driver) };
    wait_for_line(&sim, "stopped connections=0 bytes=0 mode=event-driven");
}

#[test]
fn driver_entry_rejects_bad_parameters() {
    let sim = Sim::start();
    let params = format!(r"{SERVICE}\Parameters");
    sim.registry_set_dword(&params, "Port", 70_000);
    assert_eq!(driver_entry(&sim), sys::STATUS_INVALID_PARAMETER);
    sim.registry_set_dword(&params, "Port", 7101);
    sim.registry_set_sz(&params, "Address", "10.0.0.one");
    assert_eq!(driver_entry(&sim), sys::STATUS_INVALID_PARAMETER);
    wait_for_line(&sim, "invalid Parameters");
}

#[test]
fn driver_entry_fails_cleanly_without_a_provider() {
    let sim = Sim::start();
    sim.set_provider_ready(wsk_sim::Readiness::Never);
    let t = Instant::now();
    assert_eq!(driver_entry(&sim), sys::STATUS_DEVICE_NOT_READY);
    assert!(t.elapsed() < Duration::from_secs(8));
    wait_for_line(&sim, "failed to start: STATUS_DEVICE_NOT_READY");
}

#[test]
fn driver_entry_fails_cleanly_without_a_server_thread() {
    for refuse_events in [false, true] {
        let sim = Sim::start();
        if refuse_events {
            wine_like(&sim);
        }
        sim.fail_next(
            Routine::PsCreateSystemThread,
            sys::STATUS_INSUFFICIENT_RESOURCES,
        );
        assert_eq!(driver_entry(&sim), sys::STATUS_INSUFFICIENT_RESOURCES);
        wait_for_line(&sim, "failed to start: STATUS_INSUFFICIENT_RESOURCES");
        assert!(
            !lines(&sim)
                .iter()
                .any(|l| l.contains("deregistered after closing"))
        );
        assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
    }
}
