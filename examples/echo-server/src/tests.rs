//! Host tests: the whole driver, `DriverEntry` to `DriverUnload`, against
//! `wsk-sim`, whose verifier checks IRQL rules, waits inside callbacks and
//! leaks; in both modes, under varied completions and IRQLs, with bulk
//! data, and unloading while clients stream.

use std::time::{Duration, Instant};
use std::vec::Vec;

use wsk::sys;
use wsk_sim::{
    Adversary, Behaviour, CompletionMode, DriverHost, EventDelivery, EventKind, Irql, PeerConn,
    Routine, Sim,
};

/// The driver, installed as the service `echo-server`.
fn driver(sim: &Sim) -> DriverHost<'_> {
    // SAFETY: `crate::DriverEntry` is this driver's DriverEntry, exported by
    // `wsk_driver::entry!`.
    unsafe { DriverHost::new(sim, "echo-server", crate::DriverEntry) }
}

/// `DriverEntry` with `Parameters` values.
fn load(driver: &mut DriverHost<'_>, port: u32, dwords: &[(&str, u32)]) -> sys::NTSTATUS {
    // The scenarios open several connections: the adversary must not
    // declare the listening socket broken at a random one (its failure has
    // a test of its own, on command).
    let sim = driver.sim();
    if let Some(adversary) = sim.adversary() {
        sim.set_adversary(Some(adversary.listener_failures_per_mille(0)));
    }
    driver.set_parameter_dword("Port", port);
    for (name, value) in dwords {
        driver.set_parameter_dword(name, *value);
    }
    driver.load()
}

fn connect(sim: &Sim, port: u32) -> PeerConn {
    sim.peer_connect(&format!("10.0.0.1:{port}"))
        .expect("the server accepts")
}

/// Every connection is closed, nothing leaked, nothing failed.
fn assert_clean(driver: &DriverHost<'_>) {
    let sim = driver.sim();
    // Late completions (delayed, or of requests abandoned at unload) first.
    sim.settle();
    assert_eq!(sim.open_sockets(), 0);
    assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
    let bad = ["failed", "cannot", "still running"];
    let lines = driver.lines();
    assert!(
        !lines.iter().any(|l| bad.iter().any(|b| l.contains(b))),
        "{lines:#?}"
    );
}

/// The number the driver gave `peer`'s connection (its "connection N from
/// ADDRESS" line). Not the order the peers connected in: accept callbacks
/// may overlap (the adversary's `concurrent-accepts`), and then the
/// connections are numbered in whichever order the callbacks count them.
fn connection_number(driver: &DriverHost<'_>, peer: &PeerConn) -> u32 {
    let from = format!(" from {}", peer.local_addr());
    let line = driver.wait_for_line(&from);
    line.strip_suffix(from.as_str())
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection number in {line:?}"))
}

/// Three connections open at once, served out of order; one closes
/// gracefully, one resets, one is still open at unload.
fn echo_scenario(sim: &Sim, mode: &str) {
    let mut driver = driver(sim);
    assert_eq!(load(&mut driver, 7007, &[]), sys::STATUS_SUCCESS);
    driver.wait_for_line(&format!(
        "listening on 0.0.0.0:7007 mode={mode} buffer=65536"
    ));
    let a = connect(sim, 7007);
    let b = connect(sim, 7007);
    let c = connect(sim, 7007);
    let [na, nb, nc] = [&a, &b, &c].map(|peer| connection_number(&driver, peer));
    let mut numbers = [na, nb, nc];
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3], "each connection numbered once");

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
    driver.wait_for_line(&format!(
        "echo-server: connection {na} closed graceful bytes=12"
    ));
    b.abort();
    driver.wait_for_line(&format!(
        "echo-server: connection {nb} closed abortive bytes=17"
    ));

    driver.unload();
    // The request-driven runs are against `wine_like`, whose close sends
    // FIN; Microsoft's providers reset a connection closed undisconnected.
    assert_eq!(
        c.wait_closed(),
        mode == "event-driven",
        "unloading closes open connections"
    );
    let stopped = driver.wait_for_line(&format!("connection {nc} closed"));
    assert!(
        stopped
            .trim_end()
            .ends_with(&format!("connection {nc} closed stopped bytes=5")),
        "{stopped}"
    );
    driver.wait_for_line(&format!(
        "echo-server: stopped connections=3 bytes=34 mode={mode}"
    ));
    assert_clean(&driver);
}

#[test]
fn event_driven_with_callbacks_at_passive() {
    let sim = Sim::start();
    sim.set_event_irql(Irql::Passive);
    echo_scenario(&sim, "event-driven");
}

#[test]
fn event_driven_with_callbacks_and_completions_at_dispatch() {
    let sim = Sim::start();
    sim.set_event_irql(Irql::Dispatch);
    sim.set_completion_irql(Irql::Dispatch);
    echo_scenario(&sim, "event-driven");
    let events = sim.events();
    assert!(events.iter().any(|e| e.kind == EventKind::Receive));
    assert!(events.iter().all(|e| e.at_dispatch), "{events:#?}");
}

#[test]
fn event_driven_with_completions_and_callbacks_on_other_threads() {
    let sim = Sim::start();
    sim.set_completion_mode(CompletionMode::Worker);
    sim.set_event_delivery(EventDelivery::Worker);
    echo_scenario(&sim, "event-driven");
}

/// Overlapping accept callbacks (the adversary's `concurrent-accepts`, in
/// which the later connection's callback often begins first) number the
/// connections in either order; every connection is still served whole.
#[test]
fn event_driven_when_accept_callbacks_overlap() {
    for seed in 1..=12 {
        let sim = Sim::start();
        sim.set_adversary(Some(
            Adversary::none(seed).with(Behaviour::ConcurrentAccepts),
        ));
        sim.set_completion_mode(CompletionMode::Worker);
        sim.set_event_delivery(EventDelivery::Worker);
        echo_scenario(&sim, "event-driven");
    }
}

#[test]
fn event_driven_under_varied_completions_and_irqls() {
    for seed in 1..=4 {
        let sim = Sim::with_seed(seed);
        echo_scenario(&sim, "event-driven");
    }
}

/// Like Wine: no event callbacks, no `WskDisconnect` (closing sends FIN),
/// every request returns `STATUS_PENDING` even when complete, and
/// `IoCancelIrp` does nothing.
fn wine_like(sim: &Sim) {
    sim.imitate_wine_netio();
}

#[test]
fn request_driven_when_the_provider_refuses_events() {
    let sim = Sim::start();
    wine_like(&sim);
    echo_scenario(&sim, "request-driven");
    assert!(sim.events().is_empty(), "no callback ran");
}

#[test]
fn request_driven_with_slow_completions_on_other_threads() {
    let sim = Sim::start();
    wine_like(&sim);
    sim.set_completion_mode(CompletionMode::Delayed(Duration::from_millis(3)));
    sim.set_completion_irql(Irql::Dispatch);
    echo_scenario(&sim, "request-driven");
}

/// A pattern that shows lost, repeated or reordered chunks.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap() ^ salt)
        .collect()
}

/// Bulk data on two connections at once, echoed through `BufferSize`
/// buffers (and receive queues) far smaller than the data.
fn bulk_scenario(sim: &Sim, mode: &str) {
    const LEN: usize = 300 * 1024;
    let mut driver = driver(sim);
    assert_eq!(
        load(&mut driver, 7008, &[("BufferSize", 4096)]),
        sys::STATUS_SUCCESS
    );
    driver.wait_for_line(&format!("mode={mode} buffer=4096"));
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
    driver.wait_for_line("connection 1 closed graceful bytes=307200");
    driver.wait_for_line("connection 2 closed graceful bytes=307200");
    driver.unload();
    driver.wait_for_line("stopped connections=2 bytes=614400");
    assert_clean(&driver);
}

#[test]
fn event_driven_bulk_refuses_and_resumes() {
    let sim = Sim::start();
    // Sends complete late: the queues fill faster than the tasks empty
    // them, so the receive callback refuses data and a zero-length receive
    // resumes the indications.
    sim.set_completion_mode(CompletionMode::Delayed(Duration::from_millis(2)));
    bulk_scenario(&sim, "event-driven");
    let refused = sim
        .stats()
        .statuses(EventKind::Receive)
        .into_iter()
        .filter(|&s| s == sys::STATUS_DATA_NOT_ACCEPTED)
        .count();
    assert!(refused > 0, "the queue limit was never reached");
}

#[test]
fn request_driven_bulk() {
    let sim = Sim::start();
    wine_like(&sim);
    bulk_scenario(&sim, "request-driven");
    assert!(sim.events().is_empty(), "no callback ran");
}

/// The target: unloading returns within 2 s while clients stream
/// continuously (sending and reading), every connection closed.
#[test]
fn unloads_promptly_while_clients_stream() {
    for wine in [false, true] {
        let sim = Sim::start();
        if wine {
            wine_like(&sim);
        }
        let mut driver = driver(&sim);
        assert_eq!(load(&mut driver, 7009, &[]), sys::STATUS_SUCCESS);
        let streams: Vec<_> = (0..8)
            .map(|i| {
                let peer = connect(&sim, 7009);
                std::thread::spawn(move || {
                    let chunk = pattern(16 * 1024, i);
                    // Until the driver closes: each round sends and reads back.
                    while !peer.is_closed_by_driver() {
                        peer.send(&chunk);
                        if peer.recv(chunk.len()).is_empty() {
                            break;
                        }
                    }
                    peer
                })
            })
            .collect();
        driver.wait_for_line("connection 8 from");
        std::thread::sleep(Duration::from_millis(50));
        let took = driver.unload();
        assert!(took < Duration::from_secs(2), "unload took {took:?}");
        for stream in streams {
            let peer = stream.join().unwrap();
            // Reset, except where closing sends FIN (Wine).
            assert_eq!(peer.wait_closed(), !wine);
        }
        driver.wait_for_line("stopped connections=8");
        for n in 1..=8 {
            driver.wait_for_line(&format!("connection {n} closed stopped"));
        }
        assert_clean(&driver);
    }
}

#[test]
fn a_provider_close_request_ends_the_connection_and_the_listener() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    assert_eq!(load(&mut driver, 7010, &[]), sys::STATUS_SUCCESS);
    let peer = connect(&sim, 7010);
    peer.send(b"x");
    assert_eq!(peer.recv_exact(1), b"x");
    // NULL indications: the listening socket and the connection must close.
    sim.indicate_close_required();
    assert!(peer.wait_closed());
    let closed = driver.wait_for_line("connection 1 closed ");
    // Under the adversary's socket failures, every call on the socket after
    // the NULL indication fails with STATUS_FILE_FORCED_CLOSED, which a
    // read may meet before the indication itself.
    let forced = sim
        .adversary()
        .is_some_and(|a| a.has(wsk_sim::Behaviour::SocketFailure))
        && closed.contains("closed failed:STATUS_FILE_FORCED_CLOSED (0xC00000B6) bytes=1");
    assert!(
        forced || closed.contains("closed abortive bytes=1"),
        "{closed}"
    );
    driver.wait_for_line("the listening socket failed");
    driver.unload();
    driver.wait_for_line("stopped connections=1 bytes=1");
}

#[test]
fn driver_entry_reads_every_parameter() {
    let sim = Sim::start();
    wine_like(&sim);
    let mut driver = driver(&sim);
    driver.set_parameter_sz("Address", "10.0.0.1");
    assert_eq!(
        load(&mut driver, 7100, &[("BufferSize", 1000)]),
        sys::STATUS_SUCCESS
    );
    driver.wait_for_line("listening on 10.0.0.1:7100 mode=request-driven buffer=1000");
    let peer = connect(&sim, 7100);
    let data = pattern(5000, 3);
    peer.send(&data);
    assert!(peer.recv_exact(5000) == data);
    driver.unload();
    assert!(!peer.wait_closed(), "closed with FIN, as Wine closes");
    driver.wait_for_line("stopped connections=1 bytes=5000 mode=request-driven");
    assert_clean(&driver);
}

#[test]
fn driver_entry_rejects_bad_parameters() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    assert_eq!(
        load(&mut driver, 70_000, &[]),
        sys::STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        load(&mut driver, 7101, &[("BufferSize", 0)]),
        sys::STATUS_INVALID_PARAMETER
    );
    driver.set_parameter_dword("BufferSize", 4096);
    driver.set_parameter_sz("Address", "10.0.0.one");
    assert_eq!(load(&mut driver, 7101, &[]), sys::STATUS_INVALID_PARAMETER);
    driver.wait_for_line("invalid Parameters");
}

#[test]
fn driver_entry_fails_cleanly_without_a_provider() {
    let sim = Sim::start();
    sim.set_provider_ready(wsk_sim::Readiness::Never);
    let mut driver = driver(&sim);
    let t = Instant::now();
    assert_eq!(load(&mut driver, 7102, &[]), sys::STATUS_DEVICE_NOT_READY);
    assert!(t.elapsed() < Duration::from_secs(8));
    driver.wait_for_line("failed to start: STATUS_DEVICE_NOT_READY");
}

#[test]
fn driver_entry_fails_cleanly_without_threads() {
    for wine in [false, true] {
        let sim = Sim::start();
        if wine {
            wine_like(&sim);
        }
        sim.fail_next(
            Routine::PsCreateSystemThread,
            sys::STATUS_INSUFFICIENT_RESOURCES,
        );
        let mut driver = driver(&sim);
        assert_eq!(
            load(&mut driver, 7103, &[]),
            sys::STATUS_INSUFFICIENT_RESOURCES
        );
        driver.wait_for_line("failed to start: STATUS_INSUFFICIENT_RESOURCES");
        assert!(
            !driver
                .lines()
                .iter()
                .any(|l| l.contains("cannot deregister"))
        );
        assert!(sim.leaks().is_empty(), "{:#?}", sim.leaks());
    }
}
