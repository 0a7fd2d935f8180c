//! The client against the simulated provider, with a scripted echo peer.

use alloc::string::String;
use std::thread;

use wsk::Error;
use wsk::irql::Passive;
use wsk_sim::{EventKind, Irql, Sim};

use crate::client::Config;
use crate::run_once;

/// The test thread's `PASSIVE_LEVEL` token: the one place these tests make one.
fn passive() -> Passive<'static> {
    // SAFETY: a host test thread runs at PASSIVE_LEVEL (the simulator raises
    // a thread's IRQL only inside its own calls and callbacks), never inside
    // a WSK callback, and the tests never hold a spin lock while they wait.
    unsafe { Passive::new_unchecked() }
}

fn config(host: &str, port: u16, message: &str) -> Config {
    Config {
        host: host.into(),
        port,
        message: message.into(),
    }
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
        let passive = passive();

        let report = run_once(&passive, &config("echo.test", 7, "ping!\n")).expect("run");
        assert_eq!(peer.join().unwrap(), b"ping!\n", "the peer got the message");
        assert_eq!(report.reply, b"ping!\n");
        assert_eq!(report.sent, 6);
        assert!(report.events, "the simulated provider supports events");
        assert_eq!(report.disconnect, Ok(()));
        assert_eq!(report.remote.to_string(), "10.0.0.7:7");
        sim.settle();
        let disconnects = sim.stats().statuses(EventKind::Disconnect);
        assert!(disconnects.iter().all(|&s| s == wsk::sys::STATUS_SUCCESS));
        sim.finish();
    }
}

#[test]
fn falls_back_to_requests_when_events_are_refused() {
    let sim = Sim::start();
    sim.add_name("echo.test", &["10.0.0.7"]);
    let peer = echo_peer(&sim, "10.0.0.7:7", 5);
    sim.fail_next(
        wsk_sim::Routine::WskControlSocket,
        wsk::sys::STATUS_NOT_IMPLEMENTED,
    );
    sim.fail_next(
        wsk_sim::Routine::WskDisconnect,
        wsk::sys::STATUS_NOT_IMPLEMENTED,
    );
    let passive = passive();

    let report = run_once(&passive, &config("echo.test", 7, "wine\n")).expect("run");
    assert!(!report.events);
    assert_eq!(report.reply, b"wine\n");
    assert_eq!(
        report.disconnect,
        Err(Error::NOT_IMPLEMENTED),
        "a clear error, not a hang"
    );
    peer.join().unwrap();
    sim.finish();
}

#[test]
fn tries_the_next_address_when_one_refuses() {
    let sim = Sim::start();
    sim.add_host("10.0.0.8"); // up, but nothing listens: refused
    sim.add_name("multi.test", &["10.0.0.8", "10.0.0.9"]);
    let peer = echo_peer(&sim, "10.0.0.9:7", 3);
    let passive = passive();

    let report = run_once(&passive, &config("multi.test", 7, "abc")).expect("run");
    assert_eq!(report.remote.to_string(), "10.0.0.9:7");
    peer.join().unwrap();
    sim.finish();
}

#[test]
fn an_unknown_host_is_a_clear_error() {
    let sim = Sim::start();
    let passive = passive();
    let err = run_once(&passive, &config("nowhere.test", 7, "x")).expect_err("unknown host");
    assert_ne!(
        err,
        Error::IO_TIMEOUT,
        "resolution fails, it does not hang: {err}"
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
