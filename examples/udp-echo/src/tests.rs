//! Host tests: the driver from `DriverEntry` to `DriverUnload` against
//! `wsk-sim`, with scripted UDP peers.

use std::string::{String, ToString};
use std::time::{Duration, Instant};
use std::vec::Vec;

use wsk::Error;
use wsk::sys;
use wsk_sim::{Routine, Sim};

use crate::echo::Config;

const SERVICE: &str = r"\Registry\Machine\System\CurrentControlSet\Services\udp-echo";

/// `DriverEntry` with `Port`, as the I/O manager calls it.
fn load(sim: &Sim, port: u32) -> sys::NTSTATUS {
    sim.registry_set_dword(&format!(r"{SERVICE}\Parameters"), "Port", port);
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

/// The `DriverUnload` that `DriverEntry` installed; how long it took.
fn unload(sim: &Sim) -> Duration {
    let driver = sim.driver_object();
    // SAFETY: the simulator's driver object is valid; DriverEntry set it up.
    let unload = unsafe { (*driver).DriverUnload }.expect("DriverEntry sets DriverUnload");
    let started = Instant::now();
    // SAFETY: once, after a successful DriverEntry, at PASSIVE_LEVEL.
    unsafe { unload(driver) };
    started.elapsed()
}

fn lines(sim: &Sim) -> Vec<String> {
    sim.stats().debug_output
}

fn wait_for_line(sim: &Sim, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(l) = lines(sim).into_iter().find(|l| l.contains(text)) {
            return l.trim_end().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {text:?}: {:#?}",
            lines(sim)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn echoes_several_datagrams_byte_exact() {
    let sim = Sim::start();
    let peer = sim.peer_udp("10.0.0.2:9000");
    assert_eq!(load(&sim, 7008), sys::STATUS_SUCCESS);
    wait_for_line(&sim, "udp-echo: listening on 0.0.0.0:7008");
    let payloads: [&[u8]; 4] = [b"one", b"\x00\xff binary \r\n", &[0x5a; 1400], b"last"];
    for (i, payload) in payloads.iter().enumerate() {
        peer.send_to("10.0.0.1:7008", payload);
        let (from, data) = peer.recv_from();
        assert_eq!(&data, payload, "datagram {i} comes back unchanged");
        assert_eq!(from.to_string(), "10.0.0.1:7008", "from the bound port");
        let n = i + 1;
        let line = wait_for_line(&sim, &format!("udp-echo: datagram {n} from "));
        assert!(
            line.ends_with(&format!("bytes={}", payload.len())),
            "{line}"
        );
    }
    let took = unload(&sim);
    assert!(took < Duration::from_secs(2), "unload took {took:?}");
    wait_for_line(&sim, "udp-echo: stopped datagrams=4 bytes=1419");
    wait_for_line(&sim, "udp-echo: unloaded");
    sim.settle();
    assert_eq!(sim.open_sockets(), 0, "the socket is closed");
    assert!(
        !lines(&sim)
            .iter()
            .any(|l| l.contains("failed") || l.contains("cannot"))
    );
    sim.finish();
}

#[test]
fn echoes_to_each_sender() {
    let sim = Sim::start();
    let a = sim.peer_udp("10.0.0.2:9000");
    let b = sim.peer_udp("10.0.0.3:9001");
    assert_eq!(load(&sim, 4242), sys::STATUS_SUCCESS);
    wait_for_line(&sim, "listening on 0.0.0.0:4242");
    a.send_to("127.0.0.1:4242", b"from a");
    assert_eq!(a.recv_from().1, b"from a");
    b.send_to("10.0.0.1:4242", b"from b");
    assert_eq!(b.recv_from().1, b"from b");
    assert!(a.try_recv_from().is_none(), "b's echo went to b only");
    unload(&sim);
    wait_for_line(&sim, "stopped datagrams=2 bytes=12");
    sim.finish();
}

#[test]
fn a_provider_without_datagram_sockets_is_reported_and_unloads() {
    let sim = Sim::start();
    sim.fail_next(Routine::WskSocket, sys::STATUS_NOT_IMPLEMENTED);
    assert_eq!(load(&sim, 7008), sys::STATUS_SUCCESS, "stays loaded");
    wait_for_line(
        &sim,
        "udp-echo: datagram sockets unavailable: STATUS_NOT_IMPLEMENTED",
    );
    wait_for_line(&sim, "udp-echo: not serving: STATUS_NOT_IMPLEMENTED");
    unload(&sim);
    wait_for_line(&sim, "udp-echo: unloaded");
    assert!(!lines(&sim).iter().any(|l| l.contains("listening on")));
    sim.finish();
}

#[test]
fn a_port_in_use_fails_the_load() {
    let sim = Sim::start();
    let _holder = sim.peer_udp("0.0.0.0:7008");
    assert_ne!(load(&sim, 7008), sys::STATUS_SUCCESS);
    wait_for_line(&sim, "udp-echo: cannot bind 0.0.0.0:7008: ");
    sim.settle();
    assert_eq!(sim.open_sockets(), 0);
    sim.finish();
}

#[test]
fn invalid_parameters_are_rejected() {
    let sim = Sim::start();
    assert_eq!(load(&sim, 70_000), sys::STATUS_INVALID_PARAMETER);
    assert_eq!(Config::new(Some(0)), Err(Error::INVALID_PARAMETER));
    assert_eq!(Config::new(None), Ok(Config::default()));
    assert_eq!(Config::new(Some(53)).map(|c| c.port), Ok(53));
    assert_eq!(Config::default().port, 7008);
}
