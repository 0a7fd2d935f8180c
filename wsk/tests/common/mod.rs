//! Set-up shared by the integration tests: each test binary uses a subset.
#![allow(dead_code)]

use std::time::Duration;

use wsk::events::{ConnectionEvents, NoEvents};
use wsk::irql::Passive;
use wsk::tcp::ConnectionSocket;
use wsk::{Provider, Registration, block_on};
use wsk_sim::{PeerConn, Sim};

/// How long a test waits for the simulated provider to become ready.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The test thread's `PASSIVE_LEVEL` token: the one place tests make one.
pub(crate) fn passive() -> Passive<'static> {
    // SAFETY: a host test thread runs at PASSIVE_LEVEL (the simulator raises
    // a thread's IRQL only inside its own calls and callbacks), never inside
    // a WSK callback, and the tests never hold a spin lock while they wait.
    unsafe { Passive::new_unchecked() }
}

/// Registers a client and captures the provider.
pub(crate) fn setup(passive: &Passive<'_>) -> (Registration, Provider) {
    let registration = Registration::register(passive).expect("register");
    let provider = registration
        .capture(passive, Some(TIMEOUT))
        .expect("capture");
    (registration, provider)
}

/// Releases the provider and deregisters (no handle may be left).
pub(crate) fn teardown(passive: &Passive<'_>, registration: Registration, provider: Provider) {
    drop(provider);
    registration.deregister(passive).expect("no handles left");
}

/// The simulated peer that [`connected`] connects to.
pub(crate) const PEER: &str = "10.0.0.2:80";

/// A registered client with one connection to a simulated peer.
///
/// The fields drop in order, the simulator last: a test that panics still
/// closes its socket before the simulator frees the provider's memory.
pub(crate) struct Connected<H: ConnectionEvents = NoEvents> {
    pub(crate) socket: ConnectionSocket<H>,
    pub(crate) peer: PeerConn,
    pub(crate) provider: Provider,
    pub(crate) registration: Registration,
    pub(crate) sim: Sim,
}

/// Starts a simulator, registers, and connects to [`PEER`].
pub(crate) fn connected() -> Connected {
    connected_with(|_| {})
}

/// As [`connected`], with `configure` applied to the simulator first.
pub(crate) fn connected_with(configure: impl FnOnce(&Sim)) -> Connected {
    connected_to(NoEvents, configure)
}

/// As [`connected_with`], with `handler`'s events on the socket.
pub(crate) fn connected_to<H: ConnectionEvents>(
    handler: H,
    configure: impl FnOnce(&Sim),
) -> Connected<H> {
    let sim = Sim::start();
    configure(&sim);
    let listener = sim.peer_listen(PEER);
    let p = passive();
    let (registration, provider) = setup(&p);
    let socket = block_on(
        &p,
        wsk::tcp::connect(&provider, PEER.parse().unwrap(), handler),
    )
    .expect("connect");
    let peer = listener.accept();
    Connected {
        socket,
        peer,
        provider,
        registration,
        sim,
    }
}

impl<H: ConnectionEvents> Connected<H> {
    /// Closes the socket, deregisters and runs the simulator's leak checks.
    pub(crate) fn finish(self) {
        let p = passive();
        self.socket.close().wait(&p).expect("close");
        teardown(&p, self.registration, self.provider);
        self.sim.finish();
    }
}
