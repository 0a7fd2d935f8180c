//! Conditional accept: `WskInspectEvent`, `WskAbortEvent` and
//! `WskInspectComplete`, with events at `PASSIVE_LEVEL` and `DISPATCH_LEVEL`.

mod common;
use common::{passive, setup};

use std::net::SocketAddr;
use std::sync::Mutex;

use wsk::events::{
    ConnectionRequest, EventContext, Incoming, InspectAction, InspectId, ListenEvents, NoEvents,
};
use wsk::options::ConditionalAccept;
use wsk::tcp::ConnectionSocket;
use wsk::{Error, block_on};
use wsk_sim::{EventKind, Irql, Sim};
use wsk_sys as sys;

struct Gate {
    decision: Mutex<InspectAction>,
    inspected: Mutex<Vec<(InspectId, SocketAddr, SocketAddr)>>,
    aborted: Mutex<Vec<InspectId>>,
    accepted: Mutex<Vec<ConnectionSocket<NoEvents>>>,
    /// NULL `InspectID`s and NULL `AcceptSocket`s: the listener is dead.
    dead: Mutex<usize>,
}

impl Gate {
    fn new(decision: InspectAction) -> Self {
        Self {
            decision: Mutex::new(decision),
            inspected: Mutex::new(Vec::new()),
            aborted: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
            dead: Mutex::new(0),
        }
    }

    fn last_id(&self) -> InspectId {
        self.inspected.lock().unwrap().last().expect("inspected").0
    }
}

#[wsk::vtable]
impl ListenEvents for Gate {
    type Connection = NoEvents;

    fn on_accept(&self, _cx: &EventContext<'_>, incoming: Option<Incoming<'_, NoEvents>>) {
        if let Some(incoming) = incoming {
            let socket = incoming.accept(NoEvents).expect("memory for the socket");
            self.accepted.lock().unwrap().push(socket);
        } else {
            *self.dead.lock().unwrap() += 1;
        }
    }

    fn on_inspect(
        &self,
        _cx: &EventContext<'_>,
        request: Option<ConnectionRequest>,
    ) -> InspectAction {
        let Some(request) = request else {
            *self.dead.lock().unwrap() += 1;
            return InspectAction::Reject;
        };
        self.inspected.lock().unwrap().push((
            request.id(),
            request.local_addr(),
            request.peer_addr(),
        ));
        *self.decision.lock().unwrap()
    }

    fn on_abort(&self, _cx: &EventContext<'_>, id: InspectId) {
        self.aborted.lock().unwrap().push(id);
    }
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Reject,
    Accept,
    PendThenAccept,
    PendThenReject,
    AbortWhilePended,
}

fn run(irql: Irql, scenario: Scenario, port: u16) {
    let sim = Sim::start();
    sim.set_event_irql(irql);
    let p = passive();
    let (registration, provider) = setup(&p);
    let decision = match scenario {
        Scenario::Reject => InspectAction::Reject,
        Scenario::Accept => InspectAction::Accept,
        _ => InspectAction::Pend,
    };
    let local: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();
    let listener =
        block_on(&p, wsk::tcp::listen(&provider, local, Gate::new(decision))).expect("open");
    assert!(
        listener.get::<ConditionalAccept>().wait(&p).unwrap(),
        "open turned conditional accept on"
    );
    let target = format!("10.0.0.1:{port}");
    let conn = sim.peer_connect_start(&target).expect("connection request");
    sim.settle();
    let gate = listener.handler();
    assert_eq!(gate.inspected.lock().unwrap().len(), 1, "{scenario:?}");
    let (id, seen_local, seen_remote) = gate.inspected.lock().unwrap()[0];
    assert_eq!(seen_local.port(), port);
    assert_eq!(seen_remote, conn.local_addr());
    match scenario {
        Scenario::Reject => {
            assert_eq!(conn.established(), Err(sys::STATUS_CONNECTION_REFUSED));
        }
        Scenario::Accept => {
            conn.established().expect("accepted");
        }
        Scenario::PendThenAccept => {
            listener
                .inspect_complete(id, InspectAction::Accept)
                .wait(&p)
                .expect("complete");
            conn.established().expect("accepted");
        }
        Scenario::PendThenReject => {
            listener
                .inspect_complete(id, InspectAction::Reject)
                .wait(&p)
                .expect("complete");
            assert_eq!(conn.established(), Err(sys::STATUS_CONNECTION_REFUSED));
        }
        Scenario::AbortWhilePended => {
            conn.abort();
            sim.settle();
            assert_eq!(*gate.aborted.lock().unwrap(), vec![id]);
            assert_eq!(sim.stats().count(EventKind::Abort), 1);
            // The request is gone: completing it now is a provider error.
            assert!(
                listener
                    .inspect_complete(gate.last_id(), InspectAction::Accept)
                    .wait(&p)
                    .is_err()
            );
        }
    }
    sim.settle();
    let accepted: Vec<_> = gate.accepted.lock().unwrap().drain(..).collect();
    let expect_accepted = matches!(scenario, Scenario::Accept | Scenario::PendThenAccept);
    assert_eq!(accepted.len(), usize::from(expect_accepted), "{scenario:?}");
    for socket in &accepted {
        // SIO_WSK_QUERY_INSPECT_ID: the ID on_inspect saw.
        assert_eq!(socket.inspect_id(), Ok(id), "{scenario:?}");
    }
    assert_eq!(sim.stats().count(EventKind::Inspect), 1);
    assert!(
        sim.stats()
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Inspect)
            .all(|e| e.at_dispatch == matches!(irql, Irql::Dispatch)),
        "inspect events ran at {irql:?}"
    );
    for socket in accepted {
        socket.close().wait(&p).expect("close accepted");
    }
    listener.close().wait(&p).expect("close listener");
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

macro_rules! scenarios {
    ($($name:ident: $scenario:ident, $irql:ident, $port:literal;)*) => {
        $(
            #[test]
            fn $name() {
                run(Irql::$irql, Scenario::$scenario, $port);
            }
        )*
    };
}

scenarios! {
    reject_at_passive: Reject, Passive, 7101;
    reject_at_dispatch: Reject, Dispatch, 7102;
    accept_at_passive: Accept, Passive, 7103;
    accept_at_dispatch: Accept, Dispatch, 7104;
    pend_then_accept_at_passive: PendThenAccept, Passive, 7105;
    pend_then_accept_at_dispatch: PendThenAccept, Dispatch, 7106;
    pend_then_reject_at_passive: PendThenReject, Passive, 7107;
    pend_then_reject_at_dispatch: PendThenReject, Dispatch, 7108;
    abort_while_pended_at_passive: AbortWhilePended, Passive, 7109;
    abort_while_pended_at_dispatch: AbortWhilePended, Dispatch, 7110;
}

#[test]
fn inspect_complete_refuses_pend_and_conditional_accept_must_precede_bind() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7111".parse().unwrap(),
            Gate::new(InspectAction::Pend),
        ),
    )
    .unwrap();
    let conn = sim.peer_connect_start("10.0.0.1:7111").unwrap();
    sim.settle();
    let id = listener.handler().last_id();
    assert_eq!(
        listener.inspect_complete(id, InspectAction::Pend).wait(&p),
        Err(Error::INVALID_PARAMETER)
    );
    // Bound: the option can no longer change.
    assert_eq!(
        listener.set::<ConditionalAccept>(false).wait(&p),
        Err(Error::INVALID_DEVICE_STATE)
    );
    listener
        .inspect_complete(id, InspectAction::Reject)
        .wait(&p)
        .unwrap();
    assert!(conn.established().is_err());
    listener.close().wait(&p).unwrap();
    drop(provider);
    registration.deregister(&p).expect("no handles left");
    sim.finish();
}

/// INS-2 (M-04): a NULL `InspectID` tells the handler the listening socket
/// no longer works (`on_inspect(cx, None)`), and the provider is answered
/// `WskInspectReject`.
#[test]
fn a_null_inspect_id_tells_the_handler_the_listener_is_dead() {
    let sim = Sim::start();
    let p = passive();
    let (registration, provider) = setup(&p);
    let listener = block_on(
        &p,
        wsk::tcp::listen(
            &provider,
            "0.0.0.0:7300".parse().unwrap(),
            Gate::new(InspectAction::Accept),
        ),
    )
    .expect("open");
    sim.indicate_close_required();
    sim.settle();
    assert_eq!(*listener.handler().dead.lock().unwrap(), 1);
    let inspects: Vec<_> = sim
        .stats()
        .events
        .into_iter()
        .filter(|e| e.kind == EventKind::Inspect)
        .collect();
    assert_eq!(inspects.len(), 1);
    assert!(inspects[0].null_indication);
    assert_eq!(inspects[0].status, sys::WskInspectReject);
    listener.close().wait(&p).expect("close");
    common::teardown(&p, registration, provider);
    sim.finish();
}
