//! Dropping a `Registration`: never waits, deregisters or panics; a
//! registration dropped without `deregister` is leaked and says so.

mod common;
use common::{passive, setup};

use std::panic::{AssertUnwindSafe, catch_unwind};

use wsk_sim::{Irql, Sim};

/// The line `Drop for Registration` prints.
const LEAK_LINE: &str = "wsk: Registration dropped without deregister(&Passive)";

/// Drops `sim` and returns the panic message of its end-of-test checks.
fn end_of_test_report(sim: Sim) -> String {
    let report = catch_unwind(AssertUnwindSafe(|| drop(sim))).expect_err("the leak is reported");
    report
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| report.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a registration on purpose: the leak is what it checks"
)]
fn dropping_with_a_live_provider_leaks_instead_of_panicking() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    // Before this change, this panicked ("handles are alive").
    drop(registration);
    let lines = sim.stats().debug_output;
    assert!(
        lines.iter().any(|l| l.contains(LEAK_LINE)),
        "a DbgPrint line says what happened: {lines:?}"
    );
    // The provider stays usable: the registration's memory was not freed.
    assert!(provider.windows_version().major >= 6);
    drop(provider);
    let report = end_of_test_report(sim);
    assert!(
        report.to_lowercase().contains("regist"),
        "the simulator sees the registration that was never deregistered: {report}"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a registration on purpose: the leak is what it checks"
)]
fn dropping_at_dispatch_level_neither_waits_nor_deregisters() {
    let sim = Sim::start();
    let registration = wsk::Registration::register(&passive()).expect("register");
    // WskDeregister at DISPATCH_LEVEL would be a verifier violation (it
    // waits); the drop must not call it.
    sim.at_irql(Irql::Dispatch, || drop(registration));
    assert!(
        sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains(LEAK_LINE))
    );
    assert!(sim.take_violations().is_empty(), "no IRQL rule broken");
    let report = end_of_test_report(sim);
    assert!(report.to_lowercase().contains("regist"), "{report}");
}

#[test]
fn dropping_after_deregister_says_nothing() {
    let sim = Sim::start();
    let p = passive();
    let registration = wsk::Registration::register(&p).expect("register");
    registration.deregister(&p).expect("no handles");
    assert!(
        !sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains(LEAK_LINE))
    );
    sim.finish();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "leaks a registration on purpose: the leak is what it checks"
)]
fn a_handler_dropping_the_registration_inside_a_callback_neither_waits_nor_panics() {
    use std::sync::Mutex;
    use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};

    /// Owns the registration, and drops it when the peer disconnects.
    struct Owner(Mutex<Option<wsk::Registration>>);
    #[wsk::vtable]
    impl ConnectionEvents for Owner {
        fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {
            drop(self.0.lock().unwrap().take());
        }
    }

    let sim = Sim::start();
    let listener = sim.peer_listen("10.0.0.2:80");
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = wsk::block_on(
        &p,
        wsk::tcp::connect(
            &provider,
            "10.0.0.2:80".parse().unwrap(),
            Owner(Mutex::new(Some(registration))),
        ),
    )
    .expect("connect");
    let peer = listener.accept();
    // The callback may run at DISPATCH_LEVEL: WskDeregister there would be a
    // violation, and so would a wait.
    sim.set_event_irql(Irql::Dispatch);
    peer.close();
    sim.settle();
    assert!(socket.handler().0.lock().unwrap().is_none(), "dropped");
    assert!(
        sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains(LEAK_LINE))
    );
    assert!(
        sim.take_violations().is_empty(),
        "no wait, no WskDeregister"
    );
    socket.close().wait(&p).expect("closed");
    drop(provider);
    let report = end_of_test_report(sim);
    assert!(report.to_lowercase().contains("regist"), "{report}");
}
