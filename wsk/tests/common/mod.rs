//! Set-up shared by the integration tests: each test binary uses a subset.
#![allow(dead_code)]

use std::time::Duration;

use wsk::{Passive, Provider, Registration};

/// How long a test waits for the simulated provider to become ready.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The test thread's `PASSIVE_LEVEL` token.
pub(crate) fn passive() -> Passive<'static> {
    Passive::current().expect("test threads run at PASSIVE_LEVEL")
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
