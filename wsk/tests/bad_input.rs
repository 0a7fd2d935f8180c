//! Bad input gets a clear error and loses nothing; requests dropped at every
//! stage free their memory exactly once (Miri checks the latter too).

mod common;
use common::{connected, passive};

use std::time::Duration;

use wsk::events::NoEvents;
use wsk::{AddressFamily, Buffer, Error, Registration, block_on};
use wsk_sim::{Routine, Sim};
use wsk_sys as sys;

#[test]
fn buffers_reject_empty_and_oversize_capacities() {
    let _sim = Sim::start();
    assert_eq!(
        Buffer::with_capacity(0).err(),
        Some(Error::INVALID_BUFFER_SIZE)
    );
    assert_eq!(
        Buffer::with_capacity(Buffer::MAX_LEN + 1).err(),
        Some(Error::INVALID_BUFFER_SIZE)
    );
    assert_eq!(
        Buffer::from_slice(b"").err(),
        Some(Error::INVALID_BUFFER_SIZE)
    );
    let mut b = Buffer::with_capacity(4).unwrap();
    assert_eq!(b.extend_from_slice(b"abcdef"), 4, "copies what fits");
    assert_eq!(b.as_slice(), b"abcd");
}

#[test]
fn mdl_allocation_failure_is_a_clear_error() {
    let sim = Sim::start();
    sim.fail_next(Routine::IoAllocateMdl, sys::STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(
        Buffer::with_capacity(16).err(),
        Some(Error::INSUFFICIENT_RESOURCES)
    );
    sim.finish();
}

#[test]
fn registration_and_capture_failures_are_clear_errors() {
    let sim = Sim::start();
    let p = passive();
    sim.fail_next(Routine::WskRegister, sys::STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(
        Registration::register(&p).err(),
        Some(Error::INSUFFICIENT_RESOURCES)
    );

    let registration = Registration::register(&p).unwrap();
    sim.set_provider_ready(wsk_sim::Readiness::Never);
    let err = registration
        .capture(&p, Some(Duration::from_millis(30)))
        .err();
    assert_eq!(err, Some(Error::DEVICE_NOT_READY));
    registration.deregister(&p).unwrap();
    sim.finish();
}

#[test]
fn sending_an_empty_buffer_is_refused_and_returns_it() {
    let c = connected();
    let p = passive();
    let mut buffer = Buffer::with_capacity(8).unwrap();
    buffer.clear();
    let (sent, buffer) = c.socket.send(buffer).wait(&p);
    assert_eq!(sent, Err(Error::INVALID_PARAMETER));
    assert_eq!(buffer.capacity(), 8);
    drop(buffer);
    c.finish();
}

#[test]
fn connecting_to_a_refusing_host_is_a_clear_error() {
    let sim = Sim::start();
    sim.add_host("10.0.0.3");
    let p = passive();
    let registration = Registration::register(&p).unwrap();
    let provider = registration.capture(&p, None).unwrap();
    let result = block_on(
        &p,
        wsk::tcp::connect(&provider, "10.0.0.3:9".parse().unwrap(), NoEvents),
    );
    assert_eq!(result.err(), Some(Error::CONNECTION_REFUSED));
    sim.settle();
    drop(provider);
    registration
        .deregister(&p)
        .expect("the failed socket was closed");
    sim.finish();
}

#[test]
fn resolving_bad_names_is_a_clear_error() {
    let sim = Sim::start();
    let p = passive();
    let registration = Registration::register(&p).unwrap();
    let provider = registration.capture(&p, None).unwrap();
    assert_eq!(
        provider.resolve(&p, "", None, None).err(),
        Some(Error::INVALID_PARAMETER)
    );
    assert_eq!(
        provider.resolve(&p, "a\0b", None, None).err(),
        Some(Error::INVALID_PARAMETER)
    );
    let long = "x".repeat(40_000);
    assert_eq!(
        provider.resolve(&p, &long, None, None).err(),
        Some(Error::INVALID_PARAMETER)
    );
    sim.add_name("two.test", &["10.0.0.4", "fd00::4"]);
    let v4 = provider
        .resolve(&p, "two.test", Some("80"), Some(AddressFamily::V4))
        .unwrap();
    assert_eq!(v4, vec!["10.0.0.4:80".parse().unwrap()]);
    let any = provider.resolve(&p, "two.test", Some("80"), None).unwrap();
    assert_eq!(any.len(), 2, "{any:?}");
    drop(provider);
    registration.deregister(&p).unwrap();
    sim.finish();
}

#[test]
fn requests_dropped_at_every_stage_free_their_memory() {
    let c = connected();

    // 1. Dropped before reaching the provider (refused at once).
    let empty = {
        let mut b = Buffer::with_capacity(4).unwrap();
        b.clear();
        b
    };
    drop(c.socket.send(empty));

    // 2. Dropped while pending: cancelled, freed by the completion routine.
    drop(c.socket.receive(Buffer::with_capacity(32).unwrap()));
    c.sim.settle();

    // 3. Dropped after completion, output never taken.
    let done = c.socket.send(Buffer::from_slice(b"x").unwrap());
    c.sim.settle();
    assert!(done.is_complete());
    drop(done);
    assert_eq!(c.peer.recv_exact(1), b"x");

    // 4. Dropped while the provider ignores cancellation; the close frees it.
    c.sim.set_ignore_cancel(true);
    c.sim.hang_next(Routine::WskReceive);
    drop(c.socket.receive(Buffer::with_capacity(32).unwrap()));
    c.finish();
}

#[test]
fn a_timed_wait_gives_the_request_back() {
    let c = connected();
    let p = passive();
    let pending = c.socket.receive(Buffer::with_capacity(8).unwrap());
    let pending = pending
        .wait_timeout(&p, Duration::from_millis(10))
        .expect_err("no data");
    c.peer.send(b"late");
    let (n, buffer) = pending.wait(&p);
    assert_eq!(&buffer.as_slice()[..n.unwrap()], b"late");
    drop(buffer);
    c.finish();
}
