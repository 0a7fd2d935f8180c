//! The server against the simulated provider, with a scripted UDP peer.

use std::string::{String, ToString};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use std::vec::Vec;

use wsk::Error;
use wsk::irql::Passive;
use wsk_sim::{Routine, Sim};

use crate::echo::{self, Config, Summary};

/// The test thread's `PASSIVE_LEVEL` token: the one place these tests make one.
fn passive() -> Passive<'static> {
    // SAFETY: a host test thread runs at PASSIVE_LEVEL (the simulator raises
    // a thread's IRQL only inside its own calls and callbacks), never inside
    // a WSK callback, and the tests never hold a spin lock while they wait.
    unsafe { Passive::new_unchecked() }
}

/// A running server: its thread, its stop flag and its log lines.
struct Running {
    stop: Arc<AtomicBool>,
    lines: Receiver<String>,
    thread: JoinHandle<Result<Summary, Error>>,
}

impl Running {
    fn start(port: u16) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, lines) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let passive = passive();
            echo::run(&passive, &Config { port }, &flag, &mut |line| {
                let _ = tx.send(line.to_string());
            })
        });
        Running {
            stop,
            lines,
            thread,
        }
    }

    /// The next log line.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a log line")
    }

    /// Sets the stop flag and joins; returns the result and the remaining lines.
    fn stop(self) -> (Result<Summary, Error>, Vec<String>) {
        self.stop.store(true, Ordering::Release);
        let result = self.thread.join().expect("the server thread");
        (result, self.lines.try_iter().collect())
    }
}

#[test]
fn echoes_several_datagrams_byte_exact() {
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:9000");
    let server = Running::start(7008);
    assert_eq!(server.line(), "listening on 0.0.0.0:7008");

    let payloads: [&[u8]; 4] = [b"one", b"\x00\xff binary \r\n", &[0x5a; 1400], b"last"];
    for (i, payload) in payloads.iter().enumerate() {
        peer.send_to("10.0.0.1:7008", payload);
        let (from, data) = peer.recv_from();
        assert_eq!(&data, payload, "datagram {i} comes back unchanged");
        assert_eq!(from.to_string(), "10.0.0.1:7008", "from the bound port");
        assert_eq!(
            server.line(),
            format!(
                "datagram {} from 10.0.0.2:9000 bytes={}",
                i + 1,
                payload.len()
            )
        );
    }

    let (result, rest) = server.stop();
    let bytes: usize = payloads.iter().map(|p| p.len()).sum();
    assert_eq!(
        result,
        Ok(Summary {
            datagrams: 4,
            bytes: bytes as u64
        })
    );
    assert!(rest.is_empty(), "no failures: {rest:?}");
    assert_eq!(sim.open_sockets(), 0);
    sim.finish();
}

#[test]
fn echoes_to_each_sender() {
    let sim = Sim::start();
    let a = sim.peer_udp("10.0.0.2:9000");
    let b = sim.peer_udp("10.0.0.3:9001");
    let server = Running::start(4242);
    assert_eq!(server.line(), "listening on 0.0.0.0:4242");
    a.send_to("127.0.0.1:4242", b"from a");
    assert_eq!(a.recv_from().1, b"from a");
    b.send_to("10.0.0.1:4242", b"from b");
    assert_eq!(b.recv_from().1, b"from b");
    assert!(a.try_recv_from().is_none(), "b's echo went to b only");
    let (result, _) = server.stop();
    assert_eq!(result.map(|s| s.datagrams), Ok(2));
    sim.finish();
}

#[test]
fn stops_promptly_while_idle() {
    let sim = Sim::start();
    let server = Running::start(7008);
    assert_eq!(server.line(), "listening on 0.0.0.0:7008");
    let asked = Instant::now();
    let (result, rest) = server.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "a stop takes about one poll slice, took {:?}",
        asked.elapsed()
    );
    assert_eq!(result, Ok(Summary::default()));
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(sim.open_sockets(), 0, "the socket is closed");
    sim.finish();
}

#[test]
fn a_provider_without_datagram_sockets_is_reported() {
    let sim = Sim::start();
    sim.fail_next(Routine::WskSocket, wsk::sys::STATUS_NOT_SUPPORTED);
    let server = Running::start(7008);
    let line = server.line();
    assert!(
        line.starts_with("datagram sockets unavailable: STATUS_NOT_SUPPORTED"),
        "{line}"
    );
    let (result, _) = server.stop();
    assert_eq!(result, Err(Error::NOT_SUPPORTED));
    sim.finish();
}

#[test]
fn a_port_in_use_is_reported() {
    let sim = Sim::start();
    let _holder = sim.peer_udp("0.0.0.0:7008");
    let server = Running::start(7008);
    let line = server.line();
    assert!(line.starts_with("cannot bind 0.0.0.0:7008: "), "{line}");
    let (result, _) = server.stop();
    assert!(result.is_err());
    assert_eq!(sim.open_sockets(), 0);
    sim.finish();
}

#[test]
fn invalid_parameters_are_rejected() {
    assert_eq!(Config::new(Some(70000)), Err(Error::INVALID_PARAMETER));
    assert_eq!(Config::new(Some(0)), Err(Error::INVALID_PARAMETER));
    assert_eq!(Config::new(None), Ok(Config::default()));
    assert_eq!(Config::new(Some(53)).map(|c| c.port), Ok(53));
    assert_eq!(Config::default().port, 7008);
}
