//! Accept events into `async`: [`AcceptQueue`], a listen handler that keeps
//! the connections the provider's accept callback offers in a fixed ring
//! and wakes the task that accepts, and
//! [`ListenSocket::accept_next`], which takes them from there where the
//! provider has events and accepts with requests (`WskAccept`) where it has
//! none — one task body for both.
//!
//! Connections accepted by the callback start with the connection events
//! the listening socket enabled: "enabled by default on all
//! connection-oriented sockets that are accepted on that listening socket"
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>,
//! remarks). A [`ReceiveQueue`] on such a socket therefore hears of its data
//! and its disconnect from the start, with no window in which they could
//! arrive unannounced (`docs/conformance.md`, G-1).

use alloc::boxed::Box;
use core::future::poll_fn;
use core::net::SocketAddr;
use core::task::{Poll, Waker};

use super::ListenSocket;
use super::events::{Incoming, ListenEvents};
use crate::error::{Error, Result};
use crate::irql::context::EventContext;
use crate::irql::{AtMostDispatch, SpinLock};
use crate::tcp::connection::ConnectionSocket;
use crate::tcp::connection::events::ConnectionEvents;
use crate::tcp::connection::queue::ReceiveQueue;
use crate::tcp::waiter::{poll_registered, wake};

/// How many accepted connections an [`AcceptQueue`] holds.
const BACKLOG: usize = 16;

/// A listen handler that queues the connections the provider's accept
/// callback offers, for [`ListenSocket::accept_next`] — which accepts with
/// requests where the provider has no event callbacks, so the same code
/// serves both. Each connection gets a handler made by the function given
/// to [`new`](Self::new).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// # let registration = wsk::Registration::register(&passive)?;
/// # let provider = registration.capture(&passive, None)?;
/// use wsk::tcp::{AcceptQueue, ReceiveQueue};
///
/// let local = "10.0.0.1:7".parse().unwrap();
/// let mut listener = wsk::block_on(&passive, wsk::tcp::listen(&provider, local, AcceptQueue::new(ReceiveQueue::new)))?;
/// # let peer = sim.peer_connect("10.0.0.1:7").expect("accepted");
/// let (connection, from) = wsk::block_on(&passive, listener.accept_next())?;
/// assert_eq!(from, peer.local_addr());
/// assert_eq!(connection.events_enabled(), listener.events_enabled());
/// connection.close().wait(&passive)?;
/// listener.close().wait(&passive)?;
/// # drop(provider);
/// # registration.deregister(&passive).expect("no handles left");
/// # Ok::<(), wsk::Error>(())
/// ```
///
/// With the ring full ([`BACKLOG`](Self::BACKLOG) connections not taken
/// yet), the callback rejects further connections
/// (`STATUS_REQUEST_NOT_ACCEPTED`: the provider closes them) until the
/// task takes some. So does it when no memory is left for a connection's
/// state ([`Incoming::accept`] fails); `accept_next` then waits for the
/// next connection.
pub struct AcceptQueue<C: ConnectionEvents = ReceiveQueue> {
    /// Makes the handler of each accepted connection.
    make: Box<dyn Fn() -> C + Send + Sync>,
    shared: SpinLock<Shared<C>>,
}

/// An accepted connection and its remote address.
type Accepted<C> = (ConnectionSocket<C>, SocketAddr);

/// What the accept callback shares with the task that accepts.
struct Shared<C: ConnectionEvents> {
    /// Accepted connections and their remote addresses, oldest at `head`
    /// (allocated with the queue).
    ring: Box<[Option<Accepted<C>>; BACKLOG]>,
    head: usize,
    len: usize,
    /// The provider said the listening socket no longer works.
    failed: bool,
    /// Deregistration closed the listening socket under its handle.
    closed_under: bool,
    waker: Option<Waker>,
}

impl<C: ConnectionEvents> AcceptQueue<C> {
    /// How many accepted connections the queue holds at most (a fixed
    /// ring: an accept costs no allocation beyond the connection's own).
    pub const BACKLOG: usize = BACKLOG;

    /// A queue whose connections get the handler `make()` returns (called
    /// in the accept callback, at IRQL ≤ `DISPATCH_LEVEL`, or by
    /// [`ListenSocket::accept_next`] for a request).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (allocates `make`'s box and the ring, once).
    pub fn new(make: impl Fn() -> C + Send + Sync + 'static) -> Self {
        Self {
            make: Box::new(make),
            shared: SpinLock::new(Shared {
                ring: Box::new([const { None }; BACKLOG]),
                head: 0,
                len: 0,
                failed: false,
                closed_under: false,
                waker: None,
            }),
        }
    }

    /// Runs `f` on the shared state, from the accepting task's side.
    fn with_shared<R>(&self, f: impl FnOnce(&mut Shared<C>) -> R) -> R {
        // SAFETY: futures are polled at IRQL <= DISPATCH_LEVEL.
        let irql = unsafe { AtMostDispatch::new_unchecked() };
        self.shared
            .with_at_most_dispatch(&irql, |shared, _| f(shared))
    }
}

impl<C: ConnectionEvents> core::fmt::Debug for AcceptQueue<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcceptQueue").finish_non_exhaustive()
    }
}

#[crate::vtable]
impl<C: ConnectionEvents> ListenEvents for AcceptQueue<C> {
    type Connection = C;

    fn on_accept(&self, cx: &EventContext<'_>, incoming: Option<Incoming<'_, C>>) {
        let Some(incoming) = incoming else {
            let waker = self.shared.with_in_callback(cx, |shared, _| {
                shared.failed = true;
                shared.waker.take()
            });
            wake(waker);
            return;
        };
        let full = |shared: &Shared<C>| shared.len == Self::BACKLOG;
        if self.shared.with_in_callback(cx, |shared, _| full(shared)) {
            // Not accepted: the provider closes the connection.
            return;
        }
        let Ok(peer) = incoming.peer_addr() else {
            return;
        };
        // Made outside the lock: `make` is the driver's code.
        let Ok(socket) = incoming.accept((self.make)()) else {
            // No memory for the socket: rejected (the provider closes it);
            // `accept_next` waits for the next connection, as it would
            // have without this one.
            return;
        };
        let mut entry = Some((socket, peer));
        let waker = self.shared.with_in_callback(cx, |shared, _| {
            // Accept callbacks may run concurrently: look again.
            if full(shared) {
                return None;
            }
            let at = (shared.head + shared.len) % Self::BACKLOG;
            shared.ring[at] = entry.take();
            shared.len += 1;
            shared.waker.take()
        });
        // Still here if the ring filled meanwhile: dropping the handle inside
        // the callback rejects the connection (the provider closes it).
        drop(entry);
        wake(waker);
    }
}

/// Deregistration closed the listening socket under its handle: an
/// [`AcceptQueue`] ends [`ListenSocket::accept_next`]'s wait with
/// [`Error::FILE_FORCED_CLOSED`] (no accept event will come any more);
/// nothing for other handlers. A [`ClosedUnder`](crate::socket::core::ClosedUnder)
/// for listen handlers of type `L` (an `AcceptQueue` among them is an
/// `AcceptQueue<L::Connection>`).
///
/// # Safety
///
/// `handler` is the address of a live `L`.
pub(crate) unsafe fn closed_under<L: ListenEvents>(handler: *const ()) {
    // SAFETY: per the caller.
    let handler = unsafe { &*handler.cast::<L>() };
    let any: &dyn core::any::Any = handler;
    let Some(queue) = any.downcast_ref::<AcceptQueue<L::Connection>>() else {
        return;
    };
    let waker = queue.with_shared(|shared| {
        shared.closed_under = true;
        shared.waker.take()
    });
    wake(waker);
}

impl<C: ConnectionEvents> ListenSocket<AcceptQueue<C>> {
    /// The next connection and its remote address: one the accept callback
    /// queued, where the provider has event callbacks
    /// ([`events_enabled`](Self::events_enabled)); otherwise one
    /// [`accept`](Self::accept) request, with a handler from the queue's
    /// function.
    ///
    /// Dropping the future loses no queued connection.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::FILE_CLOSED`] once the provider declared the listening
    ///   socket unusable (a NULL `AcceptSocket`): close it.
    /// - [`Error::FILE_FORCED_CLOSED`] once
    ///   [`Registration::deregister`](crate::Registration::deregister)
    ///   closed the listening socket (connections queued before are still
    ///   handed out first).
    /// - As [`accept`](Self::accept) with requests, for example
    ///   [`Error::INVALID_CONNECTION`] when a client reset before its
    ///   connection was accepted (accept again).
    pub async fn accept_next(&mut self) -> Result<(ConnectionSocket<C>, SocketAddr)> {
        let queue = self.handler();
        if !self.events_enabled() {
            return self.accept((queue.make)()).await;
        }
        poll_fn(|cx| {
            poll_registered(cx, |fresh| {
                queue.with_shared(|shared| {
                    if shared.len > 0 {
                        let taken = shared.ring[shared.head].take();
                        shared.head = (shared.head + 1) % BACKLOG;
                        shared.len -= 1;
                        if let Some(taken) = taken {
                            return Poll::Ready(Ok(taken));
                        }
                    }
                    if shared.failed {
                        return Poll::Ready(Err(Error::FILE_CLOSED));
                    }
                    if shared.closed_under {
                        return Poll::Ready(Err(Error::FILE_FORCED_CLOSED));
                    }
                    fresh.register(&mut shared.waker);
                    Poll::Pending
                })
            })
        })
        .await
    }
}
