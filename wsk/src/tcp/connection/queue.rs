//! Receive events into `async`: [`ReceiveQueue`], a connection handler
//! that keeps the provider's indications in a fixed ring and wakes the
//! reader, and the reading methods of `ConnectionSocket<ReceiveQueue>`,
//! which take data from that ring where the provider has events and from
//! receive requests where it has none — one task body for both.
//!
//! # Design
//!
//! - **The callback** (`on_receive`, ≤ `DISPATCH_LEVEL`, called serially)
//!   retains each indication (`STATUS_PENDING`) into a ring of
//!   [`ReceiveQueue::SLOTS`] places under a spin lock, and wakes the reader outside it.
//!   Nothing is allocated or copied: the reader reads the provider's buffers.
//!   The ring is allocated with the queue, which may happen inside an
//!   accept callback; if no memory is left for it, the queue refuses every
//!   indication and wakes the reader, whose reads are then receive requests.
//! - **Wakers** are cloned, woken and dropped outside the lock
//!   (`tcp::waiter`): they run the driver's code, which may take the lock
//!   again or cause a callback of this socket on the same thread.
//! - **Back-pressure.** With the ring full, or more than the queue's
//!   `limit` bytes retained, the callback answers `STATUS_DATA_NOT_ACCEPTED`:
//!   the transport keeps the data and indicates nothing more "until after the
//!   WSK application calls the `WskReceive` function"
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>,
//!   return values). So once the reader has emptied the ring, its next read
//!   is a receive request (into the caller's buffer), which takes the data
//!   the transport kept; reads go on that way until a callback takes data
//!   again. Indications flagged `WSK_FLAG_RELEASE_ASAP` are retained only
//!   into an empty ring (the reader takes them next), refused otherwise.
//!   The page also allows a zero-length `WskReceive` to resume indications
//!   without taking data; the queue does not use it, because it would race
//!   with the refusing callback: issued on the reader's processor after the
//!   callback decided to refuse but before the provider saw the status (the
//!   callback's return), it may not count, and then nothing would ever
//!   resume. A receive that takes data makes progress whatever the order.
//! - **The reader** (`&mut` the socket, so there is one) takes the oldest
//!   indication out of the ring, reads it where it lies, and releases it
//!   (`WskRelease`) as soon as it has read it all.
//! - **The disconnect** event (and a NULL indication) is recorded and wakes
//!   the reader, which reports it after the data queued before it. A
//!   graceful disconnect says that no *further* data will be received
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect_event>),
//!   not that the transport delivered what it kept — indications the queue
//!   refused, or buffered bytes not indicated yet — so the reader reports
//!   it only once a receive request found nothing left (completed with no
//!   data); an abortive one at once.
//! - **Data and disconnects from before the events were on.** Microsoft does
//!   not say whether data or a FIN that arrived before the receive and
//!   disconnect callbacks were enabled is indicated once they are
//!   (`docs/conformance.md`, G-1). So the first time the reader would wait
//!   for an indication, it issues a `WskReceive` instead (a pending
//!   receive takes precedence over the receive event, same page, remarks).
//! - **Order.** While a receive request of the reader's is pending, the
//!   callback refuses every indication, so that nothing can overtake the
//!   data the request takes; what the ring holds was indicated before the
//!   request was issued, and is read first.
//! - **Releasing.** An indication read to its end goes back to the provider
//!   (`WskRelease`) once a later receive callback has begun: callbacks are
//!   serial, so the one that retained it has returned `STATUS_PENDING` by
//!   then. Released earlier, the list could reach the provider before the
//!   status that made it ours; so the newest one read waits for the next
//!   indication, or the close.
//! - **Requests.** Where the provider has no event callbacks (Wine's
//!   `WskControlSocket` answers `STATUS_NOT_IMPLEMENTED`), every read is a
//!   `WskReceive` in one reused [`TransferSlot`]: nothing is allocated per
//!   read either.
//! - **Closing.** A retained indication holds its socket's state, which
//!   holds the queue: closing or dropping the socket releases every
//!   indication the queue holds, and the callback retains no more, so the
//!   close is not held back (the retain gate, `docs/events.md`).

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::future::{Future, poll_fn};
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll, Waker};

use super::ConnectionSocket;
use super::events::{
    ConnectionEvents, DisconnectFlags, Indication, IndicationFlags, ReceiveAction,
    RetainedIndication,
};
use super::transfer::{ReceiveFlags, TransferSlot};
use crate::buffer::{BufResult, Buffer};
use crate::error::{Error, Result};
use crate::irql::context::EventContext;
use crate::irql::{AtMostDispatch, SpinLock};
use crate::socket::core::SocketCore;
use crate::tcp::waiter::{poll_registered, wake};

/// How many indications a [`ReceiveQueue`] holds at most.
const SLOTS: usize = ReceiveQueue::SLOTS;

/// A connection handler that queues the data the provider indicates, for a
/// task (or a thread) to read with [`ConnectionSocket::read_into`] or
/// [`ConnectionSocket::read_with`] — and that reads with receive requests
/// where the provider has no event callbacks, so the same code serves both.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:7");
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// # let registration = wsk::Registration::register(&passive)?;
/// # let provider = registration.capture(&passive, None)?;
/// use wsk::tcp::{ConnectionSocket, ReceiveQueue};
/// use wsk::{Buffer, BufResult};
///
/// /// Sends back everything received, until the peer closes: with receive
/// /// events where the provider has them, with requests where it has none.
/// async fn echo(socket: &mut ConnectionSocket<ReceiveQueue>) -> wsk::Result<u64> {
///     let mut buffer = Buffer::with_capacity(64 * 1024)?;
///     let mut echoed = 0;
///     loop {
///         let (read, back) = socket.read_into(buffer).await;
///         if read? == 0 {
///             return Ok(echoed); // the peer closed its side
///         }
///         let (sent, back) = socket.send_all(back).await;
///         sent?;
///         echoed += back.len() as u64;
///         buffer = back;
///     }
/// }
///
/// let remote = "10.0.0.2:7".parse().unwrap();
/// let mut socket = wsk::block_on(&passive, wsk::tcp::connect(&provider, remote, ReceiveQueue::new()))?;
/// # let conn = peer.accept();
/// # conn.send(b"ping");
/// # conn.close();
/// let echoed = wsk::block_on(&passive, echo(&mut socket))?;
/// # assert_eq!((echoed, conn.recv_exact(4)), (4, b"ping".to_vec()));
/// socket.close().wait(&passive)?;
/// # drop(provider);
/// # registration.deregister(&passive).expect("no handles left");
/// # Ok::<(), wsk::Error>(())
/// ```
///
/// Read the socket only through these methods: a
/// [`receive`](ConnectionSocket::receive) of your own could take bytes out
/// of order. The module documentation (`wsk/src/tcp/connection/queue.rs`)
/// and `docs/tasks.md` give the design.
pub struct ReceiveQueue {
    /// Retained bytes above which indications are refused.
    limit: usize,
    /// What the callbacks and the reader share.
    shared: SpinLock<Shared>,
    /// The reader's own state.
    ///
    /// # Invariants
    ///
    /// Only reached through `&mut ConnectionSocket<ReceiveQueue>` (the
    /// reading methods) or by the socket handle's close (which owns it), so
    /// never from two threads at once.
    reader: UnsafeCell<Reader>,
}

// SAFETY: `shared` is behind a spin lock; `reader` is reached by one thread
// at a time (its invariant).
unsafe impl Sync for ReceiveQueue {}

/// The state the receive and disconnect callbacks share with the reader.
struct Shared {
    /// Retained indications, oldest at `head` (allocated with the queue:
    /// nothing is allocated per indication); `None` if that allocation
    /// failed: every indication is then refused, and the reader reads with
    /// receive requests.
    ring: Option<Box<Ring>>,
    head: usize,
    len: usize,
    /// Bytes in `ring`.
    bytes: usize,
    /// An indication was refused and none taken since: the provider may
    /// indicate nothing more until a receive request, so the reader's next
    /// read is one.
    refused: bool,
    /// A receive request of the reader's is pending: refuse everything.
    refusing: bool,
    /// The handle is closing: the callback retains nothing more.
    closed: bool,
    /// Receive callbacks entered so far.
    calls: u64,
    /// An indication read to its end whose callback may not have returned
    /// yet: released by the next receive callback (or the close).
    deferred: Option<Held>,
    /// How the connection ended, once known: `Ok` for a graceful
    /// disconnect, the error otherwise.
    end: Option<Result<()>>,
    /// The reader's waker.
    reader: Option<Waker>,
    /// The waker of [`Closed`].
    closer: Option<Waker>,
}

/// The places of [`Shared::ring`].
type Ring = [Option<Held>; SLOTS];

/// An empty ring, or `None` if no memory is left for one. Fallible, unlike
/// `Box::new`, whose failure would panic — a bug check in a driver — and
/// the queue may be made inside an accept callback (an
/// [`AcceptQueue`](crate::tcp::AcceptQueue)'s connection handlers are).
fn try_ring() -> Option<Box<Ring>> {
    let layout = core::alloc::Layout::new::<Ring>();
    // SAFETY: the layout is not zero-sized (a ring holds `SLOTS` places).
    let ring = NonNull::new(unsafe { alloc::alloc::alloc(layout) })?.cast::<Ring>();
    // SAFETY: freshly allocated for a `Ring`, valid for writes and aligned.
    unsafe { ring.as_ptr().write([const { None }; SLOTS]) };
    // SAFETY: allocated by the global allocator with `Layout::new::<Ring>()`
    // and initialised: what `Box::from_raw` accepts (`Box`'s "Memory
    // layout").
    Some(unsafe { Box::from_raw(ring.as_ptr()) })
}

/// What the reader alone touches.
struct Reader {
    mode: Mode,
    /// The indication being read, and how much of it was read.
    current: Option<Held>,
    consumed: usize,
    /// The first receive request (see the module docs) completed.
    probed: bool,
    /// A receive request completed with no data: the transport holds
    /// nothing more, so a graceful disconnect can be reported.
    drained: bool,
    /// The memory of the reader's receive requests.
    slot: Option<TransferSlot>,
    /// Received bytes not read yet ([`ConnectionSocket::read_with`] reads
    /// requests into it).
    buffer: Option<Buffer>,
}

impl Reader {
    /// The memory of the reader's receive requests, allocated once.
    fn slot(&mut self) -> Result<&mut TransferSlot> {
        if self.slot.is_none() {
            self.slot = Some(TransferSlot::new()?);
        }
        self.slot.as_mut().ok_or(Error::INSUFFICIENT_RESOURCES)
    }
}

/// A retained indication, and the receive callback that retained it.
struct Held {
    indication: RetainedIndication,
    /// The value of [`Shared::calls`] in that callback.
    call: u64,
}

/// How the reader gets data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not decided: the first read enables the events if they are not on.
    Undecided,
    Events,
    Requests,
}

impl ReceiveQueue {
    /// How many indications a queue holds at most: a fixed ring allocated
    /// with the queue, so that an indication costs no allocation.
    pub const SLOTS: usize = 16;

    /// How long a read waits in all, trying again, for a queued indication
    /// whose mapping into system space failed (waits doubling from 1 ms to
    /// 16 ms) before it returns [`Error::INSUFFICIENT_RESOURCES`]; nothing
    /// queued is lost either way.
    ///
    /// That trying again can help is an assumption: Microsoft documents that
    /// `MmGetSystemAddressForMdlSafe` returns NULL when the mapping fails
    /// and that a `NormalPagePriority` mapping "can fail if the system is
    /// very low on resources"
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe>),
    /// not whether a later call for the same MDL may succeed
    /// (`docs/conformance.md` G-18). Calling again is allowed (the same page
    /// lets one thread call it more than once for an MDL), so the cost of a
    /// wrong assumption is this wait, once per read that meets the failure.
    pub const MAPPING_PATIENCE: core::time::Duration = core::time::Duration::from_secs(1);

    /// The byte limit of [`new`](Self::new), and the size of the buffer
    /// its reader allocates where it reads with requests and
    /// [`read_with`](ConnectionSocket::read_with).
    pub const DEFAULT_LIMIT: usize = 64 * 1024;

    /// A queue that refuses indications once
    /// [`DEFAULT_LIMIT`](Self::DEFAULT_LIMIT) bytes (or
    /// [`SLOTS`](Self::SLOTS) indications) are waiting to be read.
    ///
    /// It allocates its ring of [`SLOTS`](Self::SLOTS) places, once, and
    /// does not fail if no memory is left for it: it then refuses every
    /// indication, and its reads are receive requests, which take the data
    /// the provider kept — slower, nothing lost (see
    /// [`with_limit`](Self::with_limit)).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (one non-paged allocation).
    #[must_use]
    pub fn new() -> Self {
        Self::with_limit(Self::DEFAULT_LIMIT)
    }

    /// A queue that refuses indications once `limit` bytes (or
    /// [`SLOTS`](Self::SLOTS) indications) are waiting to be read. An indication arriving at an
    /// empty queue is always taken, however large. The reader's buffer for
    /// requests and [`read_with`](ConnectionSocket::read_with) has `limit`
    /// bytes (at least 1).
    ///
    /// If the ring cannot be allocated (low memory), the queue still works,
    /// reading with receive requests only, and says so on the kernel
    /// debugger (`DbgPrint`): an accept callback that makes one under
    /// memory pressure must not bug-check the system.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (one non-paged allocation).
    #[must_use]
    pub fn with_limit(limit: usize) -> Self {
        let ring = try_ring();
        if ring.is_none() {
            crate::debug::line(format_args!(
                "ReceiveQueue: no memory for its ring: it refuses indications and reads with receive requests"
            ));
        }
        Self {
            limit: limit.clamp(1, Buffer::MAX_LEN),
            shared: SpinLock::new(Shared {
                ring,
                head: 0,
                len: 0,
                bytes: 0,
                refused: false,
                refusing: false,
                closed: false,
                calls: 0,
                deferred: None,
                end: None,
                reader: None,
                closer: None,
            }),
            reader: UnsafeCell::new(Reader {
                mode: Mode::Undecided,
                current: None,
                consumed: 0,
                probed: false,
                drained: false,
                slot: None,
                buffer: None,
            }),
        }
    }

    /// The byte limit.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Runs `f` on the shared state, from the reader's side.
    fn with_shared<R>(&self, f: impl FnOnce(&mut Shared) -> R) -> R {
        // SAFETY: the reader's side runs at IRQL <= DISPATCH_LEVEL: futures
        // are polled there, sockets closed and dropped there.
        let irql = unsafe { AtMostDispatch::new_unchecked() };
        self.shared
            .with_at_most_dispatch(&irql, |shared, _| f(shared))
    }

    /// The reader's state.
    ///
    /// # Safety
    ///
    /// The caller holds the socket exclusively (`&mut` or by value), and no
    /// other reference from this function is alive.
    #[allow(clippy::mut_from_ref)] // the cell's invariant makes it exclusive
    unsafe fn reader(&self) -> &mut Reader {
        // SAFETY: exclusive per the caller (the cell's invariant).
        unsafe { &mut *self.reader.get() }
    }

    /// Records how the connection ended (the first report wins, except that
    /// an abortive end replaces a graceful one not yet read) and wakes both
    /// waiters.
    fn end(&self, cx: Option<&EventContext<'_>>, end: Result<()>) {
        let record = |shared: &mut Shared| {
            match (&shared.end, &end) {
                (None, _) | (Some(Ok(())), Err(_)) => shared.end = Some(end),
                _ => {}
            }
            (shared.reader.take(), shared.closer.take())
        };
        let (reader, closer) = match cx {
            Some(cx) => self.shared.with_in_callback(cx, |shared, _| record(shared)),
            None => self.with_shared(record),
        };
        wake(reader);
        wake(closer);
    }

    /// Records the end of the stream a receive request met.
    fn note_end(&self, received: &Result<usize>) {
        match received {
            Ok(0) => self.end(None, Ok(())),
            Err(e) if e.is_connection_lost() => self.end(None, Err(*e)),
            _ => {}
        }
    }

    /// The socket's handle is closing: release every indication held and
    /// retain no more, so that the close is not held back.
    fn close(&self) {
        let mut held: [Option<Held>; SLOTS] = [const { None }; SLOTS];
        let (deferred, wakers) = self.with_shared(|shared| {
            shared.closed = true;
            shared.refusing = false;
            if let Some(ring) = shared.ring.as_deref_mut() {
                core::mem::swap(&mut held, ring);
            }
            shared.len = 0;
            shared.bytes = 0;
            let wakers = (shared.reader.take(), shared.closer.take());
            (shared.deferred.take(), wakers)
        });
        // SAFETY: called by the handle's close or drop, which own the socket.
        let reader = unsafe { self.reader() };
        let current = reader.current.take();
        // Released outside the lock: `WskRelease` calls the provider.
        drop((held, deferred, current, wakers));
    }

    /// Releases an indication read to its end (`WskRelease`): at once if a
    /// later receive callback has begun — callbacks are serial, so the one
    /// that retained it has returned `STATUS_PENDING` —, else when the next
    /// one begins. Releasing a list before the provider has seen that
    /// status would give back a list it does not yet hold for us.
    fn release(&self, held: Held) {
        let mut held = Some(held);
        let now = self.with_shared(|shared| {
            let held = held.take()?;
            if held.call < shared.calls {
                return Some(held);
            }
            // Only ever the newest: an earlier deferred one is older still.
            shared.deferred.replace(held)
        });
        // Released outside the lock: `WskRelease` calls the provider.
        drop(now);
    }

    /// Releases the indication the reader has read to its end.
    fn release_current(&self, reader: &mut Reader) {
        if let Some(held) = reader.current.take() {
            self.release(held);
        }
        reader.consumed = 0;
    }
}

impl Default for ReceiveQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ReceiveQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReceiveQueue")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

#[crate::vtable]
impl ConnectionEvents for ReceiveQueue {
    fn on_receive(&self, cx: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let Some(data) = data else {
            // The socket no longer works and must be closed. (A list left
            // deferred goes back with the close.)
            self.end(Some(cx), Err(Error::CONNECTION_ABORTED));
            return ReceiveAction::Accept;
        };
        let asap = data.flags().contains(IndicationFlags::RELEASE_ASAP);
        let mut data = Some(data);
        let (action, reader) = self.shared.with_in_callback(cx, |shared, _| {
            // This call proves the previous one returned (they are serial):
            // the list it left deferred goes back now — under the lock, so
            // that a close that finds no deferred list finds it released
            // (and its own close request is not held back by it). That
            // runs no client code: no waker, no handler — `WskRelease` is
            // legal at DISPATCH_LEVEL and calls no callback of ours (this
            // one is running); it cannot submit the close (the handle's
            // close empties `deferred` before it begins closing) nor drop
            // the last reference to this core (the socket is open).
            shared.calls += 1;
            drop(shared.deferred.take());
            if shared.closed {
                // Nobody reads any more: the data goes nowhere.
                return (ReceiveAction::Accept, None);
            }
            let Some(indication) = data.take() else {
                return (ReceiveAction::Refuse, None);
            };
            let Some(ring) = shared.ring.as_deref_mut() else {
                // No ring (no memory when the queue was made): the provider
                // keeps the data for the reader, whom this wakes to take it
                // with a receive request.
                shared.refused = true;
                return (ReceiveAction::Refuse, shared.reader.take());
            };
            let len = indication.len();
            let full = shared.len == SLOTS
                || (shared.len > 0 && (asap || shared.bytes.saturating_add(len) > self.limit));
            if shared.refusing || full {
                shared.refused = true;
                return (ReceiveAction::Refuse, None);
            }
            // Retained under the lock, so that a close cannot come between
            // the retain and the push (it would never release this one).
            let Some(indication) = indication.retain() else {
                // The socket is closing, or cannot retain more: the
                // provider keeps the data for a later receive.
                shared.refused = true;
                return (ReceiveAction::Refuse, None);
            };
            let at = (shared.head + shared.len) % SLOTS;
            ring[at] = Some(Held {
                indication,
                call: shared.calls,
            });
            shared.len += 1;
            shared.bytes += len;
            // Indications flow again.
            shared.refused = false;
            (ReceiveAction::Accept, shared.reader.take())
        });
        wake(reader);
        action
    }

    fn on_disconnect(&self, cx: &EventContext<'_>, flags: DisconnectFlags) {
        let end = if flags.is_abortive() {
            Err(Error::CONNECTION_RESET)
        } else {
            Ok(())
        };
        self.end(Some(cx), end);
    }
}

/// Deregistration closed the socket under its handle: a [`ReceiveQueue`]
/// ends its reader's and `closed()`'s waits with
/// [`Error::FILE_FORCED_CLOSED`] (no event will come any more); nothing
/// for other handlers. A [`ClosedUnder`](crate::socket::core::ClosedUnder)
/// for connection handlers of type `H`.
///
/// # Safety
///
/// `handler` is the address of a live `H`.
pub(crate) unsafe fn closed_under<H: ConnectionEvents>(handler: *const ()) {
    // SAFETY: per the caller.
    let handler = unsafe { &*handler.cast::<H>() };
    if let Some(queue) = (handler as &dyn core::any::Any).downcast_ref::<ReceiveQueue>() {
        queue.end(None, Err(Error::FILE_FORCED_CLOSED));
    }
}

/// Releases every indication a [`ReceiveQueue`] holds when the socket's
/// handle closes; nothing for other handlers (the test is resolved at
/// compile time).
pub(crate) fn before_close<H: ConnectionEvents>(core: &SocketCore<H>) {
    if let Some(queue) = (&core.handler as &dyn core::any::Any).downcast_ref::<ReceiveQueue>() {
        queue.close();
    }
}

/// What waiting for the queue found.
enum Next {
    /// Data is queued.
    Data,
    /// The connection ended (after everything queued was read).
    End(Result<()>),
    /// Nothing is queued and a receive request is due: the first read, or
    /// the provider may be waiting for one after a refusal.
    Request,
}

impl ConnectionSocket<ReceiveQueue> {
    /// Reads what has arrived into `buffer`'s capacity (from its start, as
    /// [`receive`](Self::receive) does); resolves to the bytes read and the
    /// buffer, whose length is set accordingly. `Ok(0)` means the peer
    /// closed its side (and everything it sent was read).
    ///
    /// With receive events (where the provider has them: see
    /// [`ReceiveQueue`]), it copies every queued indication that fits —
    /// waiting only if none is queued — and releases each one read;
    /// elsewhere it is one `WskReceive` into `buffer` through the queue's
    /// reused request memory. The first read enables the handler's events
    /// if the socket does not have them on yet.
    ///
    /// Dropping the future before it resolves loses nothing queued, but
    /// a receive request it had issued is cancelled with whatever it had
    /// taken.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::CONNECTION_RESET`] after an abortive disconnect,
    ///   [`Error::CONNECTION_ABORTED`] when the provider declared the socket
    ///   unusable (a NULL indication); statuses of `WskReceive`.
    /// - [`Error::FILE_FORCED_CLOSED`] once
    ///   [`Registration::deregister`](crate::Registration::deregister)
    ///   closed the socket (a read waiting for data then ends).
    /// - [`Error::INSUFFICIENT_RESOURCES`] if the provider's buffer still
    ///   could not be mapped after waiting [`MAPPING_PATIENCE`](ReceiveQueue::MAPPING_PATIENCE)
    ///   for it (the data stays queued: read again), or request memory could
    ///   not be allocated.
    pub async fn read_into(&mut self, mut buffer: Buffer) -> BufResult<usize> {
        let this = &*self;
        let queue = this.handler();
        // SAFETY: `&mut self` for the whole call: the only reader.
        let reader = unsafe { queue.reader() };
        if this.decide_mode(reader) == Mode::Requests {
            return this.receive_request(reader, buffer).await;
        }
        let mut mapping = MappingRetry::default();
        loop {
            match this.copy_queued(reader, buffer.as_mut_capacity()) {
                Ok(0) => {}
                Ok(n) => {
                    buffer.set_len(n);
                    return (Ok(n), buffer);
                }
                Err(Error::INSUFFICIENT_RESOURCES) if mapping.wait().await => continue,
                Err(e) => return (Err(e), buffer),
            }
            match poll_fn(|cx| this.poll_next(reader, cx)).await {
                Next::Data => {}
                Next::End(end) => {
                    buffer.set_len(0);
                    return (end.map(|()| 0), buffer);
                }
                // Into the queue's buffer; the loop copies from there.
                Next::Request => match this.probe(reader).await {
                    Ok(0) => {
                        buffer.set_len(0);
                        return (Ok(0), buffer);
                    }
                    Ok(_) => {}
                    Err(e) => return (Err(e), buffer),
                },
            }
        }
    }

    /// Calls `read` once with the next received bytes, where they lie, and
    /// resolves to how many of them it used (what it returns, at most the
    /// slice's length); bytes it did not use come back at the next read.
    /// With receive events the slice is a piece of the provider's own
    /// buffer — nothing is copied — and an indication read to its end is
    /// released to the provider (`WskRelease`) at once; with requests it is
    /// the queue's buffer, filled by one `WskReceive`. At the end of the
    /// stream `read` gets an empty slice (and the result is `Ok(0)`).
    ///
    /// The bytes are lent to the closure only, so no borrow of the
    /// provider's memory outlives the call.
    ///
    /// ```
    /// # let sim = wsk_sim::Sim::start();
    /// # let peer = sim.peer_listen("10.0.0.2:7");
    /// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
    /// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
    /// # let registration = wsk::Registration::register(&passive)?;
    /// # let provider = registration.capture(&passive, None)?;
    /// use wsk::tcp::{ConnectionSocket, ReceiveQueue};
    ///
    /// /// Counts the lines the peer sends, without copying a byte.
    /// async fn count_lines(socket: &mut ConnectionSocket<ReceiveQueue>) -> wsk::Result<usize> {
    ///     let mut lines = 0;
    ///     loop {
    ///         let used = socket
    ///             .read_with(|bytes| {
    ///                 lines += bytes.iter().filter(|&&b| b == b'\n').count();
    ///                 bytes.len()
    ///             })
    ///             .await?;
    ///         if used == 0 {
    ///             return Ok(lines); // the end of the stream
    ///         }
    ///     }
    /// }
    ///
    /// # let remote = "10.0.0.2:7".parse().unwrap();
    /// let mut socket = wsk::block_on(&passive, wsk::tcp::connect(&provider, remote, ReceiveQueue::new()))?;
    /// # let conn = peer.accept();
    /// # conn.send(b"one\ntwo\nthree\n");
    /// # conn.close();
    /// assert_eq!(wsk::block_on(&passive, count_lines(&mut socket))?, 3);
    /// socket.close().wait(&passive)?;
    /// # drop(provider);
    /// # registration.deregister(&passive).expect("no handles left");
    /// # Ok::<(), wsk::Error>(())
    /// ```
    ///
    /// With receive events `read` runs inside the socket's run-down, which
    /// deregistration waits for before it releases the indication; so it
    /// is `Send`, and cannot hold the (`!Send`) [`Passive`](crate::irql::Passive)
    /// token that every wait takes:
    ///
    /// ```compile_fail,E0277
    /// # use wsk::irql::Passive;
    /// # use wsk::tcp::{ConnectionSocket, ReceiveQueue};
    /// fn wait_inside(socket: &mut ConnectionSocket<ReceiveQueue>, passive: &Passive<'_>) {
    ///     let _ = wsk::block_on(passive, socket.read_with(|bytes| {
    ///         passive.sleep(core::time::Duration::from_secs(1)); // `&Passive` is not `Send`
    ///         bytes.len()
    ///     }));
    /// }
    /// ```
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`; `read` runs at the caller's IRQL.
    ///
    /// # Errors
    ///
    /// As [`read_into`](Self::read_into) (`read` is not called); also
    /// [`Error::INSUFFICIENT_RESOURCES`] if the queue's buffer cannot be
    /// allocated.
    pub async fn read_with(&mut self, read: impl FnOnce(&[u8]) -> usize + Send) -> Result<usize> {
        let this = &*self;
        let queue = this.handler();
        // SAFETY: `&mut self` for the whole call: the only reader.
        let reader = unsafe { queue.reader() };
        let mode = this.decide_mode(reader);
        let mut read = Some(read);
        let mut lend = |bytes: &[u8]| read.take().map_or(0, |read| read(bytes).min(bytes.len()));
        let mut mapping = MappingRetry::default();
        loop {
            if let Some(buffer) = reader.buffer.as_mut().filter(|b| !b.is_empty()) {
                let used = lend(&buffer[..]);
                buffer.advance(used);
                if buffer.is_empty() {
                    buffer.clear();
                }
                return Ok(used);
            }
            if mode == Mode::Events {
                if let Some(current) = reader.current.as_ref() {
                    let at = reader.consumed;
                    let used = match current.indication.with_piece_at(at, |piece, last| {
                        (!piece.is_empty()).then(|| {
                            let used = lend(piece);
                            (used, last && used == piece.len())
                        })
                    }) {
                        Ok(used) => used,
                        Err(Error::INSUFFICIENT_RESOURCES) if mapping.wait().await => continue,
                        Err(e) => return Err(e),
                    };
                    let Some((used, done)) = used else {
                        // Read to its end already.
                        this.handler().release_current(reader);
                        continue;
                    };
                    reader.consumed += used;
                    if done {
                        this.handler().release_current(reader);
                    }
                    return Ok(used);
                }
                if this.pop(reader) {
                    continue;
                }
                match poll_fn(|cx| this.poll_next(reader, cx)).await {
                    Next::Data => continue,
                    Next::End(end) => {
                        end?;
                        return Ok(lend(&[]));
                    }
                    Next::Request => {
                        if this.probe(reader).await? == 0 {
                            return Ok(lend(&[]));
                        }
                        continue;
                    }
                }
            }
            // Request mode: a receive into the queue's buffer.
            let buffer = match reader.buffer.take() {
                Some(b) => b,
                None => Buffer::with_capacity(queue.limit)?,
            };
            let (received, back) = this.receive_request(reader, buffer).await;
            reader.buffer = Some(back);
            if received? == 0 {
                return Ok(lend(&[]));
            }
        }
    }

    /// Resolves once the peer has disconnected: `Ok(())` after a graceful
    /// disconnect, the error after an abortive one (as
    /// [`read_into`](Self::read_into) reports them). With receive events
    /// the disconnect event says so at once, even with data still queued;
    /// with requests, only a read that met the end knows it, so a socket
    /// that is not read never resolves this there (Wine).
    ///
    /// One future at a time: a second one polled replaces the first's
    /// waker.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    pub fn closed(&self) -> Closed<'_> {
        Closed {
            queue: self.handler(),
        }
    }

    /// Decides, at the first read, whether events or requests serve it.
    fn decide_mode(&self, reader: &mut Reader) -> Mode {
        if reader.mode == Mode::Undecided {
            // A provider without event support refuses: requests then.
            let on = self.events_enabled() || self.enable_events().is_ok();
            reader.mode = if on { Mode::Events } else { Mode::Requests };
        }
        reader.mode
    }

    /// One `WskReceive` into `buffer` in the queue's slot; records the end
    /// of the stream it meets.
    async fn receive_request(&self, reader: &mut Reader, buffer: Buffer) -> BufResult<usize> {
        let slot = match reader.slot() {
            Ok(slot) => slot,
            Err(e) => return (Err(e), buffer),
        };
        let (received, buffer) = self.receive_in(slot, buffer, ReceiveFlags::empty()).await;
        self.handler().note_end(&received);
        (received, buffer)
    }

    /// A receive request in event mode (see the module docs), into the
    /// queue's buffer (empty when this is called); every indication is
    /// refused while it is pending. How many bytes it took.
    ///
    /// It ends early — dropped, which cancels it (its buffer is freed when
    /// the provider completes it, at the latest when the socket closes) —
    /// if the connection ends abortively meanwhile: after a NULL indication
    /// the provider may never complete it before the socket is closed, which
    /// the reader's own task does.
    async fn probe(&self, reader: &mut Reader) -> Result<usize> {
        let queue = self.handler();
        let result = self.probe_request(reader).await;
        queue.with_shared(|shared| shared.refusing = false);
        reader.probed = true;
        if result == Ok(0) {
            reader.drained = true;
        }
        result
    }

    async fn probe_request(&self, reader: &mut Reader) -> Result<usize> {
        let queue = self.handler();
        let buffer = match reader.buffer.take() {
            Some(b) => b,
            None => Buffer::with_capacity(queue.limit)?,
        };
        let slot = reader.slot()?;
        let mut request = self.receive_in(slot, buffer, ReceiveFlags::empty());
        let out = poll_fn(|cx| {
            if let Poll::Ready(out) = Pin::new(&mut request).poll(cx) {
                return Poll::Ready(Some(out));
            }
            poll_registered(cx, |fresh| {
                queue.with_shared(|shared| {
                    if let Some(Err(_)) = shared.end {
                        return Poll::Ready(None);
                    }
                    fresh.register(&mut shared.reader);
                    Poll::Pending
                })
            })
        })
        .await;
        drop(request);
        let Some((received, buffer)) = out else {
            // Abandoned: the end says why.
            let end = queue.with_shared(|shared| shared.end);
            return Err(end
                .and_then(Result::err)
                .unwrap_or(Error::CONNECTION_ABORTED));
        };
        reader.buffer = Some(buffer);
        queue.note_end(&received);
        // A request failed on a socket the provider declared unusable: the
        // end says why.
        match (received, queue.with_shared(|shared| shared.end)) {
            (Err(_), Some(Err(end))) => Err(end),
            (received, _) => received,
        }
    }

    /// Copies queued bytes into `out` until it is full or nothing is queued;
    /// how many.
    fn copy_queued(&self, reader: &mut Reader, out: &mut [u8]) -> Result<usize> {
        let mut copied = 0;
        if let Some(buffer) = reader.buffer.as_mut().filter(|b| !b.is_empty()) {
            copied = buffer.len().min(out.len());
            out[..copied].copy_from_slice(&buffer[..copied]);
            buffer.advance(copied);
            if buffer.is_empty() {
                buffer.clear();
            }
        }
        while copied < out.len() {
            if reader.current.is_none() && !self.pop(reader) {
                break;
            }
            let Some(current) = reader.current.as_ref() else {
                break;
            };
            let (n, done) = match current
                .indication
                .copy_from(reader.consumed, &mut out[copied..])
            {
                Ok(copy) => copy,
                // What was copied is returned; the error comes next time.
                Err(_) if copied > 0 => break,
                Err(e) => return Err(e),
            };
            copied += n;
            reader.consumed += n;
            if done {
                self.handler().release_current(reader);
            }
        }
        Ok(copied)
    }

    /// Moves the oldest queued indication to `current`; false if none.
    fn pop(&self, reader: &mut Reader) -> bool {
        let queue = self.handler();
        let popped = queue.with_shared(|shared| {
            if shared.len == 0 {
                return None;
            }
            let taken = shared.ring.as_deref_mut()?[shared.head].take();
            shared.head = (shared.head + 1) % SLOTS;
            shared.len -= 1;
            if let Some(taken) = &taken {
                shared.bytes -= taken.indication.len();
            }
            taken
        });
        let found = popped.is_some();
        reader.current = popped;
        reader.consumed = 0;
        found
    }

    /// Waits until data is queued, the connection ended, or a receive
    /// request is due.
    fn poll_next(&self, reader: &mut Reader, cx: &mut Context<'_>) -> Poll<Next> {
        let first = !reader.probed;
        let drained = reader.drained;
        let queue = self.handler();
        poll_registered(cx, |fresh| {
            queue.with_shared(|shared| {
                if shared.len > 0 {
                    return Poll::Ready(Next::Data);
                }
                match shared.end {
                    // A graceful disconnect says no further data will come,
                    // not that the transport delivered what it kept (refused
                    // indications, or buffered bytes not indicated yet): a
                    // receive request takes them, and completes with no data
                    // once there are none.
                    Some(Ok(())) if !drained => {
                        shared.refusing = true;
                        return Poll::Ready(Next::Request);
                    }
                    // After an abortive end nothing more is received.
                    Some(end) => return Poll::Ready(Next::End(end)),
                    None => {}
                }
                if first || shared.refused {
                    shared.refusing = true;
                    return Poll::Ready(Next::Request);
                }
                fresh.register(&mut shared.reader);
                Poll::Pending
            })
        })
    }
}

/// The future of [`ConnectionSocket::closed`].
#[must_use = "futures do nothing unless polled"]
pub struct Closed<'a> {
    queue: &'a ReceiveQueue,
}

impl Future for Closed<'_> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        poll_registered(cx, |fresh| {
            self.queue.with_shared(|shared| {
                if let Some(end) = shared.end {
                    return Poll::Ready(end);
                }
                fresh.register(&mut shared.closer);
                Poll::Pending
            })
        })
    }
}

impl core::fmt::Debug for Closed<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Closed").finish_non_exhaustive()
    }
}

/// The waits of a read between attempts to map a queued indication whose
/// mapping failed: `MmGetSystemAddressForMdlSafe` returns NULL when the
/// mapping fails, which a `NormalPagePriority` request may do when the
/// system is very low on resources
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe>).
///
/// **Assumption** (`docs/conformance.md` G-18): that a later call for the
/// same MDL may succeed. No Microsoft page says so, nor the opposite; the
/// crate retries because resources short now may be freed, because calling
/// again is allowed (one thread may call it more than once for an MDL, same
/// page), and because giving up at once would make a transient shortage a
/// read error. If the mapping keeps failing, the read returns
/// [`Error::INSUFFICIENT_RESOURCES`] after [`ReceiveQueue::MAPPING_PATIENCE`]
/// and the indication stays queued: nothing is lost and a later read tries
/// again; the connection is not ended.
///
/// An attempt maps the pieces it can, which stay mapped, so each failure
/// is met further along the chain. Waits double from 1 ms up to 16 ms; once
/// they add up to [`ReceiveQueue::MAPPING_PATIENCE`] the reader gets the
/// error.
#[derive(Default)]
struct MappingRetry {
    waited: core::time::Duration,
    next: u32,
}

impl MappingRetry {
    /// Waits before the next attempt; false (at once) when the patience is
    /// spent or no timer could be had.
    async fn wait(&mut self) -> bool {
        if self.waited >= ReceiveQueue::MAPPING_PATIENCE {
            return false;
        }
        let delay = core::time::Duration::from_millis(1 << self.next);
        self.next = (self.next + 1).min(4);
        self.waited += delay;
        crate::timer::sleep(delay).await.is_ok()
    }
}
