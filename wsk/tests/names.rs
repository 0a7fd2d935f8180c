//! Address-to-name translation (`WskGetNameInfo`) and the transport list
//! (`WskControlClient`).

mod common;
use common::passive;

use std::time::Duration;

use wsk::provider::NameInfoFlags;
use wsk::{AddressFamily, Error, Registration};
use wsk_sim::{Routine, Sim};
use wsk_sys as sys;

#[test]
fn name_info_finds_names_and_services() {
    let sim = Sim::start();
    sim.add_name("server.example.test", &["10.0.0.7", "fd00::7"]);
    let p = passive();
    let registration = Registration::register(&p).unwrap();
    let provider = registration
        .capture(&p, Some(Duration::from_secs(5)))
        .unwrap();

    let (host, service) = provider
        .name_info(&p, "10.0.0.7:80".parse().unwrap(), NameInfoFlags::empty())
        .unwrap();
    assert_eq!(host, "server.example.test");
    assert_eq!(service.as_deref(), Some("http"));

    let (host, _) = provider
        .name_info(&p, "[fd00::7]:443".parse().unwrap(), NameInfoFlags::empty())
        .unwrap();
    assert_eq!(host, "server.example.test");

    let (host, service) = provider
        .name_info(
            &p,
            "10.0.0.7:80".parse().unwrap(),
            NameInfoFlags::NUMERIC_HOST | NameInfoFlags::NUMERIC_SERVICE,
        )
        .unwrap();
    assert_eq!(host, "10.0.0.7");
    assert_eq!(service.as_deref(), Some("80"));

    // Without a name: the numeric form, or with NI_NAMEREQD the status the
    // page names, STATUS_NO_MATCH (the benign simulator: STATUS_NOT_FOUND).
    let (host, _) = provider
        .name_info(&p, "10.0.0.9:80".parse().unwrap(), NameInfoFlags::empty())
        .unwrap();
    assert_eq!(host, "10.0.0.9");
    let unnamed = provider.name_info(
        &p,
        "10.0.0.9:80".parse().unwrap(),
        NameInfoFlags::NAME_REQUIRED,
    );
    assert!(
        matches!(unnamed, Err(e) if Some(e) == Error::from_raw(sys::STATUS_NO_MATCH) || e == Error::NOT_FOUND),
        "{unnamed:?}"
    );

    // Wine's stub.
    sim.fail_next(Routine::WskGetNameInfo, sys::STATUS_NOT_IMPLEMENTED);
    assert_eq!(
        provider.name_info(&p, "10.0.0.7:80".parse().unwrap(), NameInfoFlags::empty()),
        Err(Error::NOT_IMPLEMENTED)
    );

    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

#[test]
fn transport_list_query() {
    let sim = Sim::start();
    let p = passive();
    let registration = Registration::register(&p).unwrap();
    let provider = registration
        .capture(&p, Some(Duration::from_secs(5)))
        .unwrap();
    let transports = provider.transports().expect("transports");
    assert!(transports.iter().any(|t| t.is_stream()
        && t.protocol() == sys::IPPROTO_TCP as u32
        && t.family() == Some(AddressFamily::V6)));
    assert!(
        transports
            .iter()
            .any(|t| t.is_datagram() && t.family() == Some(AddressFamily::V4))
    );
    sim.fail_next(Routine::WskControlClient, sys::STATUS_NOT_IMPLEMENTED);
    assert_eq!(provider.transports().err(), Some(Error::NOT_IMPLEMENTED));
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}
