//! Host tests: the driver from `DriverEntry` to `DriverUnload` against
//! `wsk-sim`, with scripted UDP peers.

use std::string::ToString;
use std::time::Duration;

use wsk::Error;
use wsk::sys;
use wsk_sim::{DriverHost, Sim};

use crate::echo::Config;

/// The driver, installed as the service `udp-echo`.
fn driver(sim: &Sim) -> DriverHost<'_> {
    // SAFETY: `crate::DriverEntry` is this driver's DriverEntry, exported by
    // `wsk_driver::entry!`.
    unsafe { DriverHost::new(sim, "udp-echo", crate::DriverEntry) }
}

/// `DriverEntry` with `Port`.
fn load(driver: &mut DriverHost<'_>, port: u32) -> sys::NTSTATUS {
    driver.set_parameter_dword("Port", port);
    driver.load()
}

#[test]
fn echoes_several_datagrams_byte_exact() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    let peer = sim.peer_udp("10.0.0.2:9000");
    assert_eq!(load(&mut driver, 7008), sys::STATUS_SUCCESS);
    driver.wait_for_line("udp-echo: listening on 0.0.0.0:7008");
    let payloads: [&[u8]; 4] = [b"one", b"\x00\xff binary \r\n", &[0x5a; 1400], b"last"];
    for (i, payload) in payloads.iter().enumerate() {
        peer.send_to("10.0.0.1:7008", payload);
        let (from, data) = peer.recv_from();
        assert_eq!(&data, payload, "datagram {i} comes back unchanged");
        assert_eq!(from.to_string(), "10.0.0.1:7008", "from the bound port");
        let n = i + 1;
        let line = driver.wait_for_line(&format!("udp-echo: datagram {n} from "));
        assert!(
            line.ends_with(&format!("bytes={}", payload.len())),
            "{line}"
        );
    }
    let took = driver.unload();
    assert!(took < Duration::from_secs(2), "unload took {took:?}");
    driver.wait_for_line("udp-echo: stopped datagrams=4 bytes=1419");
    driver.wait_for_line("udp-echo: unloaded");
    sim.settle();
    assert_eq!(sim.open_sockets(), 0, "the socket is closed");
    assert!(
        !driver
            .lines()
            .iter()
            .any(|l| l.contains("failed") || l.contains("cannot"))
    );
    sim.finish();
}

#[test]
fn echoes_to_each_sender() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    let a = sim.peer_udp("10.0.0.2:9000");
    let b = sim.peer_udp("10.0.0.3:9001");
    assert_eq!(load(&mut driver, 4242), sys::STATUS_SUCCESS);
    driver.wait_for_line("listening on 0.0.0.0:4242");
    a.send_to("127.0.0.1:4242", b"from a");
    assert_eq!(a.recv_from().1, b"from a");
    b.send_to("10.0.0.1:4242", b"from b");
    assert_eq!(b.recv_from().1, b"from b");
    assert!(a.try_recv_from().is_none(), "b's echo went to b only");
    driver.unload();
    driver.wait_for_line("stopped datagrams=2 bytes=12");
    sim.finish();
}

#[test]
fn a_provider_without_datagram_sockets_is_reported_and_unloads() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    // Wine's netio.sys creates listen and connection sockets only.
    sim.imitate_wine_netio();
    assert_eq!(load(&mut driver, 7008), sys::STATUS_SUCCESS, "stays loaded");
    driver.wait_for_line("udp-echo: datagram sockets unavailable: STATUS_NOT_IMPLEMENTED");
    driver.wait_for_line("udp-echo: not serving: STATUS_NOT_IMPLEMENTED");
    driver.unload();
    driver.wait_for_line("udp-echo: unloaded");
    assert!(!driver.lines().iter().any(|l| l.contains("listening on")));
    sim.finish();
}

#[test]
fn a_port_in_use_fails_the_load() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    let _holder = sim.peer_udp("0.0.0.0:7008");
    assert_ne!(load(&mut driver, 7008), sys::STATUS_SUCCESS);
    driver.wait_for_line("udp-echo: cannot bind 0.0.0.0:7008: ");
    sim.settle();
    assert_eq!(sim.open_sockets(), 0);
    sim.finish();
}

#[test]
fn invalid_parameters_are_rejected() {
    let sim = Sim::start();
    let mut driver = driver(&sim);
    assert_eq!(load(&mut driver, 70_000), sys::STATUS_INVALID_PARAMETER);
    assert_eq!(Config::new(Some(0)), Err(Error::INVALID_PARAMETER));
    assert_eq!(Config::new(None), Ok(Config::default()));
    assert_eq!(Config::new(Some(53)).map(|c| c.port), Ok(53));
    assert_eq!(Config::default().port, 7008);
}
