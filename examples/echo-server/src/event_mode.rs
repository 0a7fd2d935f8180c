//! Event-driven mode: the provider calls us when a connection arrives
//! (`on_accept`), when data arrives (`on_receive`) and when the peer
//! disconnects (`on_disconnect`). Callbacks never wait: they copy the data,
//! queue it on the connection and hand the connection to a `PASSIVE_LEVEL`
//! work item, which sends the bytes back and, once the peer is gone, closes
//! the socket.
//!
//! Ownership: whoever holds a connection's socket closes it — the work item
//! while one runs, otherwise the server thread (when stopping, or for a
//! connection whose work item could not be queued).
//!
//! Flow control: a connection queues at most [`MAX_QUEUED`] bytes. Beyond
//! that the callback refuses the data (`STATUS_DATA_NOT_ACCEPTED`); the
//! provider then keeps it and indicates nothing more until a receive request
//! completes, which the work item posts once its queue is empty.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;

use wsk::defer::{IoObject, WorkItem};
use wsk::events::{
    ConnectionEvents, DisconnectFlags, EventContext, Incoming, Indication, ListenEvents,
    ReceiveAction,
};
use wsk::irql::{Passive, SpinLock};
use wsk::request::TransferSlot;
use wsk::tcp::{ConnectionSocket, ListenSocket, ReceiveFlags};
use wsk::{Buffer, Error};
use wsk_driver::dbg_println;

use crate::echo::{self, CLOSE_TIMEOUT, End, POLL, Session, Shared};

/// Bytes a connection may have queued for sending before it refuses more.
pub const MAX_QUEUED: usize = 64 * 1024;

/// Receive buffer of the work item after a refusal.
const BUFFER_SIZE: usize = 4096;

/// How long stopping waits for running work items.
const WORKERS_TIMEOUT: Duration = Duration::from_secs(10);

/// The event-driven server: the connection table and the work item count.
pub(crate) struct Events {
    shared: Arc<Shared>,
    io: IoObject,
    /// Open connections; lock order: this table, then a connection's state.
    table: SpinLock<Vec<Arc<Conn>>>,
    /// Work items queued or running.
    workers: AtomicUsize,
    /// The provider said the listening socket no longer works.
    listen_failed: AtomicBool,
}

impl Events {
    pub(crate) fn new(shared: Arc<Shared>, io: IoObject) -> Self {
        Events {
            shared,
            io,
            table: SpinLock::new(Vec::new()),
            workers: AtomicUsize::new(0),
            listen_failed: AtomicBool::new(false),
        }
    }

    /// Removes `conn` from the table.
    fn forget(&self, passive: &mut Passive<'_>, conn: &Arc<Conn>) {
        self.table
            .with(passive, |table, _| table.retain(|c| !Arc::ptr_eq(c, conn)));
    }
}

/// The listening socket's handler.
pub(crate) struct Listener(pub(crate) Arc<Events>);

/// One accepted connection.
pub(crate) struct Conn {
    session: Session,
    events: Arc<Events>,
    state: SpinLock<State>,
}

/// A connection's state, shared by its callbacks, its work item and the
/// server thread.
#[derive(Default)]
struct State {
    /// `None` while a work item holds it, and once closed.
    socket: Option<ConnectionSocket<Handler>>,
    /// The work items' request memory, reused by every send and receive;
    /// travels with `socket`. Made by the first work item.
    slot: Option<TransferSlot>,
    /// Received bytes waiting to be sent back, in order.
    queue: VecDeque<Buffer>,
    /// Bytes in `queue`.
    queued: usize,
    /// Data was refused: the provider holds it for a receive request.
    refused: bool,
    /// A work item is queued or running for this connection.
    worker: bool,
    /// How the connection ended, once known.
    end: Option<End>,
}

/// An accepted connection's handler.
pub(crate) struct Handler(Arc<Conn>);

#[wsk::vtable]
impl ListenEvents for Listener {
    type Connection = Handler;

    fn on_accept(&self, cx: &EventContext<'_>, incoming: Option<Incoming<'_, Handler>>) {
        let events = &self.0;
        let Some(incoming) = incoming else {
            // The server thread closes the listening socket.
            events.listen_failed.store(true, Ordering::Release);
            return;
        };
        let peer = incoming.peer_addr().ok();
        // Held across the accept, so that stopping (which sets the flag,
        // then empties the table under this lock) sees every connection.
        events.table.with_in_callback(cx, |table, dispatch| {
            if events.shared.stopping() {
                return; // Not accepting: the provider closes the connection.
            }
            let conn = Arc::new(Conn {
                session: Session::open(&events.shared, peer),
                events: Arc::clone(events),
                state: SpinLock::new(State::default()),
            });
            let socket = incoming.accept(Handler(Arc::clone(&conn)));
            conn.state
                .with_at_dispatch(dispatch, |state, _| state.socket = Some(socket));
            table.push(conn);
        });
    }
}

#[wsk::vtable]
impl ConnectionEvents for Handler {
    fn on_receive(&self, cx: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let conn = &self.0;
        let Some(data) = data else {
            // The provider says the socket no longer works.
            conn.ended(cx, End::Abortive);
            return ReceiveAction::Accept;
        };
        if data.is_empty() || conn.events.shared.stopping() {
            // Stopping: the socket is about to close; the data goes nowhere.
            return ReceiveAction::Accept;
        }
        // Copy before locking; an allocation or mapping failure leaves the
        // data with the provider, for the work item's receive request.
        let copy = data.to_buffer();
        conn.state.with_in_callback(cx, |state, _| {
            let fits = state.queued == 0 || state.queued + data.len() <= MAX_QUEUED;
            let action = match copy {
                Ok(buffer) if fits && !state.refused => {
                    state.queued += buffer.len();
                    state.queue.push_back(buffer);
                    ReceiveAction::Accept
                }
                _ => {
                    state.refused = true;
                    ReceiveAction::Refuse
                }
            };
            conn.schedule(state);
            action
        })
    }

    fn on_disconnect(&self, cx: &EventContext<'_>, flags: DisconnectFlags) {
        self.0.ended(cx, End::from_disconnect(flags));
    }
}

impl Conn {
    /// Records how the connection ended and lets a work item finish it.
    fn ended(self: &Arc<Self>, cx: &EventContext<'_>, end: End) {
        self.state.with_in_callback(cx, |state, _| {
            state.end.get_or_insert(end);
            self.schedule(state);
        });
    }

    /// Queues a work item for the connection unless one is queued or
    /// running, or the server is stopping (it then closes the socket).
    fn schedule(self: &Arc<Self>, state: &mut State) {
        if state.worker || self.events.shared.stopping() {
            return;
        }
        let Ok(item) = WorkItem::new(self.events.io) else {
            // The server thread's sweep closes it.
            state
                .end
                .get_or_insert(End::Failed(Error::INSUFFICIENT_RESOURCES));
            return;
        };
        state.worker = true;
        self.events.workers.fetch_add(1, Ordering::AcqRel);
        let conn = Arc::clone(self);
        if item.try_queue(move |passive| work(passive, &conn)).is_err() {
            state.worker = false;
            self.events.workers.fetch_sub(1, Ordering::AcqRel);
            state
                .end
                .get_or_insert(End::Failed(Error::INSUFFICIENT_RESOURCES));
        }
    }
}

/// What a work item does next.
enum Step {
    Send(Buffer),
    /// Pull the data the provider holds after a refusal.
    Receive,
    Finish(End),
    Idle,
}

/// A connection's work item: sends the queued bytes back, receives refused
/// data, and closes the socket once the connection has ended.
fn work(passive: &mut Passive<'_>, conn: &Arc<Conn>) {
    let mut socket: Option<ConnectionSocket<Handler>> = None;
    let mut slot: Option<TransferSlot> = None;
    let end = loop {
        let step = conn.state.with(passive, |state, _| {
            if socket.is_none() {
                socket = state.socket.take();
                slot = state.slot.take();
            }
            if conn.events.shared.stopping() {
                Step::Finish(state.end.unwrap_or(End::Stopped))
            } else if let Some(end @ (End::Abortive | End::Failed(_))) = state.end {
                // Nothing can be sent any more.
                Step::Finish(end)
            } else if let Some(buffer) = state.queue.pop_front() {
                state.queued -= buffer.len();
                Step::Send(buffer)
            } else if state.refused {
                // Cleared before the receive is posted: the provider makes
                // no indication until it completes, and a refusal after
                // that must be seen again.
                state.refused = false;
                Step::Receive
            } else if let Some(end) = state.end {
                Step::Finish(end)
            } else {
                // Idle: hand the socket back before anyone can see `worker`
                // cleared.
                state.worker = false;
                state.socket = socket.take();
                state.slot = slot.take();
                Step::Idle
            }
        });
        let Some(live) = socket.as_ref() else {
            break match step {
                Step::Idle => None,
                Step::Finish(end) => Some(end),
                _ => Some(End::Failed(Error::INVALID_HANDLE)),
            };
        };
        let memory = match (&step, &mut slot) {
            (Step::Send(_) | Step::Receive, None) => TransferSlot::new().map(|s| slot.insert(s)),
            (_, Some(s)) => Ok(s),
            (_, None) => Err(Error::INSUFFICIENT_RESOURCES),
        };
        match (step, memory) {
            (Step::Idle, _) => break None,
            (Step::Finish(end), _) => break Some(end),
            (Step::Send(_) | Step::Receive, Err(e)) => break Some(End::Failed(e)),
            (Step::Send(buffer), Ok(slot)) => {
                if let Err(end) = echo::echo(passive, live, slot, buffer, &conn.session) {
                    break Some(end);
                }
            }
            (Step::Receive, Ok(slot)) => {
                if let Some(end) = receive_refused(passive, live, slot, conn) {
                    break Some(end);
                }
            }
        }
    };
    if let Some(end) = end {
        if let Some(socket) = socket.take() {
            echo::finish(passive, socket, end, &conn.session);
        } else {
            conn.session.closed(end);
        }
        conn.events.forget(passive, conn);
    }
    conn.events.workers.fetch_sub(1, Ordering::AcqRel);
}

/// Receives the data the provider kept after a refusal and sends it back;
/// indications resume once the receive request has completed.
fn receive_refused(
    passive: &Passive<'_>,
    socket: &ConnectionSocket<Handler>,
    slot: &mut TransferSlot,
    conn: &Conn,
) -> Option<End> {
    let buffer = match Buffer::with_capacity(BUFFER_SIZE) {
        Ok(b) => b,
        Err(e) => return Some(End::Failed(e)),
    };
    let shared = conn.session.shared();
    let request = socket.receive_in(slot, buffer, ReceiveFlags::empty());
    let Some((received, buffer)) = echo::wait_or_stop(passive, request, shared) else {
        return Some(End::Stopped);
    };
    // Indications made from now on queue behind these bytes, which go out
    // first.
    match received {
        Ok(0) => Some(End::Graceful),
        Ok(_) => echo::echo(passive, socket, slot, buffer, &conn.session).err(),
        Err(e) => Some(End::from_error(e)),
    }
}

/// Serves until the server stops: closes the listening socket if the
/// provider reports it broken, and closes connections that ended without a
/// work item. Then closes the listening socket, and everything else with
/// [`close_all`].
pub(crate) fn serve(
    passive: &mut Passive<'_>,
    listener: ListenSocket<Listener>,
    events: &Arc<Events>,
) {
    let mut listener = Some(listener);
    while !events.shared.stopping() {
        echo::sleep(passive, POLL);
        if events.listen_failed.load(Ordering::Acquire) {
            if let Some(l) = listener.take() {
                dbg_println!("echo-server: the listening socket failed; serving open connections");
                close_listener(passive, l);
            }
        }
        sweep(passive, events);
    }
    if let Some(l) = listener.take() {
        close_listener(passive, l);
    }
    close_all(passive, events);
}

/// Closes every connection and waits for the work items, once the server
/// is stopping: the accept callback then accepts nothing more (it checks
/// the flag under the table lock), so the table taken here is final.
pub(crate) fn close_all(passive: &mut Passive<'_>, events: &Events) {
    debug_assert!(events.shared.stopping());
    let conns = events
        .table
        .with(passive, |table, _| core::mem::take(table));
    for conn in conns {
        let taken = conn.state.with(passive, |state, _| {
            if state.worker {
                None // The work item sees the stop and closes it.
            } else {
                state
                    .socket
                    .take()
                    .map(|s| (s, state.end.unwrap_or(End::Stopped)))
            }
        });
        if let Some((socket, end)) = taken {
            echo::finish(passive, socket, end, &conn.session);
        }
    }
    let mut waited = Duration::ZERO;
    while events.workers.load(Ordering::Acquire) != 0 {
        if waited >= WORKERS_TIMEOUT {
            dbg_println!(
                "echo-server: work items still running after {} ms",
                waited.as_millis()
            );
            break;
        }
        echo::sleep(passive, POLL);
        waited += POLL;
    }
}

fn close_listener(passive: &Passive<'_>, listener: ListenSocket<Listener>) {
    let _ = listener.close().wait_or_cancel(passive, CLOSE_TIMEOUT);
}

/// Closes connections that ended while no work item runs for them (their
/// work item could not be queued).
fn sweep(passive: &mut Passive<'_>, events: &Arc<Events>) {
    loop {
        let found = events.table.with(passive, |table, dispatch| {
            table
                .iter()
                .find(|c| {
                    c.state.with_at_dispatch(dispatch, |state, _| {
                        state.end.is_some() && !state.worker && state.socket.is_some()
                    })
                })
                .cloned()
        });
        let Some(conn) = found else { return };
        let taken = conn.state.with(passive, |state, _| {
            if state.worker {
                None
            } else {
                state
                    .socket
                    .take()
                    .map(|s| (s, state.end.unwrap_or(End::Stopped)))
            }
        });
        // A work item started meanwhile closes it instead.
        if let Some((socket, end)) = taken {
            echo::finish(passive, socket, end, &conn.session);
            events.forget(passive, &conn);
        }
    }
}
