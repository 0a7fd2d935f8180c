//! The owner's side of a request: [`Request`], [`RequestSlot`] and
//! [`SlotRequest`], and the [`Waitable`] trait they share.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use wsk_sys as sys;

use super::block::{Operation, Payload, RawRequest, has_deferred, run_deferred};
use crate::error::{Error, Result};
use crate::irql::Passive;

/// Disposes of the requests whose owner let go before they completed, which
/// their completion routines queued (see [`run_deferred`]): every submission
/// does it first, outside any completion routine.
#[inline]
fn dispose_deferred() {
    if has_deferred() {
        run_deferred();
    }
}

/// The state a request handle is in: submitted (`raw`), finished before
/// reaching the provider (`ready`: validation or allocation failure), or
/// done (neither: the output was taken).
struct Inner<O: Operation> {
    raw: Option<RawRequest<O>>,
    ready: Option<O::Output>,
}

impl<O: Operation> Inner<O> {
    fn submitted(raw: RawRequest<O>) -> Self {
        Self {
            raw: Some(raw),
            ready: None,
        }
    }

    fn ready(output: O::Output) -> Self {
        Self {
            raw: None,
            ready: Some(output),
        }
    }

    /// Takes the output if the request completed; registers `waker` if not.
    /// A block the completion routine is done with goes to `home` (a slot)
    /// or is freed.
    #[inline]
    fn try_take(
        &mut self,
        waker: Option<&Waker>,
        home: Option<&mut Option<RawRequest<O>>>,
    ) -> Option<O::Output> {
        let Some(raw) = &self.raw else {
            let out = self.ready.take();
            assert!(out.is_some(), "wsk: request polled after completion");
            return out;
        };
        let complete = match waker {
            Some(w) => raw.header().register(w),
            None => raw.is_complete(),
        };
        if !complete {
            return None;
        }
        let (out, block) = self.raw.take()?.take();
        if let (Some(home), Some(block)) = (home, block) {
            *home = Some(block);
        }
        Some(out)
    }

    #[inline]
    fn wait(
        &mut self,
        passive: &Passive<'_>,
        timeout: Option<Duration>,
        home: Option<&mut Option<RawRequest<O>>>,
    ) -> Option<O::Output> {
        if let Some(raw) = &self.raw {
            if !raw.is_complete() && !raw.header().wait(passive, timeout) {
                return None;
            }
        }
        self.try_take(None, home)
    }

    fn is_complete(&self) -> bool {
        self.raw.as_ref().is_none_or(RawRequest::is_complete)
    }

    /// Gives a submitted request up (see [`RawRequest::release`]); an idle
    /// block goes to `home` (a slot) or is freed.
    #[inline]
    fn release(&mut self, cancel: bool, home: Option<&mut Option<RawRequest<O>>>) {
        if let Some(raw) = self.raw.take() {
            if let (Some(block), Some(home)) = (raw.release(cancel), home) {
                *home = Some(block);
            }
        }
    }
}

/// What [`Request`] and [`SlotRequest`] share: code that waits for either
/// takes `impl Waitable`. Both also implement [`Future`], so
/// [`block_on_until`](crate::block_on_until) waits for one until a
/// [`StopSignal`](crate::task::StopSignal) says to stop.
///
/// ```
/// use core::time::Duration;
/// use wsk::irql::Passive;
/// use wsk::request::Waitable;
///
/// /// Waits for a close, giving up after `limit` (the close then finishes
/// /// in the background).
/// fn close_quietly<R: Waitable>(passive: &Passive<'_>, close: R, limit: Duration) -> bool {
///     close.wait_or_cancel(passive, limit).is_some()
/// }
/// ```
pub trait Waitable: Sized {
    /// What the request resolves to.
    type Output;

    /// Waits until the provider completes the request.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    fn wait(self, passive: &Passive<'_>) -> Self::Output;

    /// Waits at most `timeout` for the provider to complete the request.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    ///
    /// # Errors
    ///
    /// Gives the request back if it has not completed in time.
    fn wait_timeout(self, passive: &Passive<'_>, timeout: Duration) -> Result<Self::Output, Self>;

    /// Whether the output is available without waiting.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    fn is_complete(&self) -> bool;

    /// Waits at most `timeout`; if the request has not completed by then,
    /// abandons it — drops it, which cancels the IRP (its memory and buffers
    /// are freed once the provider lets go of them) — and returns `None`.
    ///
    /// For requests whose outcome no longer matters once late, such as a
    /// close or a graceful disconnect during shutdown:
    /// `socket.close().wait_or_cancel(&passive, TIMEOUT)`.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    fn wait_or_cancel(self, passive: &Passive<'_>, timeout: Duration) -> Option<Self::Output> {
        self.wait_timeout(passive, timeout).ok()
    }
}

impl<O: Operation> Waitable for Request<O> {
    type Output = O::Output;
    fn wait(self, passive: &Passive<'_>) -> O::Output {
        Request::wait(self, passive)
    }
    fn wait_timeout(self, passive: &Passive<'_>, timeout: Duration) -> Result<O::Output, Self> {
        Request::wait_timeout(self, passive, timeout)
    }
    fn is_complete(&self) -> bool {
        Request::is_complete(self)
    }
}

impl<O: Operation> Waitable for SlotRequest<'_, O> {
    type Output = O::Output;
    fn wait(self, passive: &Passive<'_>) -> O::Output {
        SlotRequest::wait(self, passive)
    }
    fn wait_timeout(self, passive: &Passive<'_>, timeout: Duration) -> Result<O::Output, Self> {
        SlotRequest::wait_timeout(self, passive, timeout)
    }
    fn is_complete(&self) -> bool {
        SlotRequest::is_complete(self)
    }
}

/// A request ready to submit — its payload and the call that starts the WSK
/// routine with an IRP — or its payload and why the provider must not be
/// called. Built once per operation, submitted as a [`Request`] or in a
/// [`RequestSlot`].
pub(crate) type Prepared<O, F> = core::result::Result<(O, F), (O, Error)>;

/// A submitted WSK request: a [`Future`] and a blocking waitable.
///
/// Resolve it with `.await` (any IRQL ≤ `DISPATCH_LEVEL`; the waker must be
/// callable at `DISPATCH_LEVEL`), [`wait`](Self::wait) or
/// [`wait_timeout`](Self::wait_timeout) (`PASSIVE_LEVEL`). Dropping it before
/// it completes cancels the IRP; see the [module docs](crate::request).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:7");
/// use wsk::{block_on, Buffer, Registration};
/// use wsk::events::NoEvents;
/// use wsk::irql::Passive;
/// use wsk::tcp::ConnectionSocket;
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
/// let remote = "10.0.0.2:7".parse().unwrap();
/// let socket = block_on(&passive, wsk::tcp::connect(&provider, remote, NoEvents))?;
/// # let conn = peer.accept();
///
/// // Nothing arrives: the time-out gives the request back, still pending.
/// let request = socket.receive(Buffer::with_capacity(64)?);
/// let request = request.wait_timeout(&passive, Duration::from_millis(10)).unwrap_err();
/// assert!(!request.is_complete());
/// drop(request); // cancels the IRP; the buffer is freed once the provider lets go
///
/// // A request that completes: `wait` returns its output and the buffer.
/// let (sent, buffer) = socket.send(Buffer::from_slice(b"ping")?).wait(&passive);
/// assert_eq!(sent?, 4);
/// # assert_eq!(conn.recv_exact(4), b"ping");
/// socket.close().wait(&passive)?;
/// drop((buffer, provider));
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
#[must_use = "a request does nothing useful unless awaited; dropping it cancels the IRP"]
pub struct Request<O: Operation> {
    inner: Inner<O>,
}

// SAFETY: the block is only reached through this handle or the provider's
// completion, synchronised by the block's atomic state; the payload is Send.
unsafe impl<O: Operation> Send for Request<O> where O::Output: Send {}
// SAFETY: `&Request` only reads the block's atomic state.
unsafe impl<O: Operation> Sync for Request<O> {}
impl<O: Operation> Unpin for Request<O> {}

impl<O: Operation> Request<O> {
    /// A request that finished before reaching the provider.
    pub(crate) fn ready(output: O::Output) -> Self {
        Self {
            inner: Inner::ready(output),
        }
    }

    /// A request that failed before reaching the provider with `error`,
    /// handing the payload (and so the caller's buffers) back.
    pub(crate) fn failed(op: O, error: Error) -> Self {
        Self::ready(op.complete(error.as_raw(), 0))
    }

    /// Allocates the block for `op`, prepares its IRP and passes it to `call`,
    /// which starts one WSK routine with it and returns that routine's status.
    ///
    /// `call` gets the IRP and the payload inside the block; pointers it
    /// derives from the payload stay valid until the request completes, so
    /// they may be handed to the provider. If `call` does not pass the IRP to
    /// a routine it must return a status other than `STATUS_PENDING`.
    pub(crate) fn submit(
        op: O,
        call: impl FnOnce(sys::PIRP, Payload<'_, O>) -> sys::NTSTATUS,
    ) -> Self {
        dispose_deferred();
        let Some(mut raw) = RawRequest::alloc() else {
            return Self::failed(op, Error::INSUFFICIENT_RESOURCES);
        };
        raw.start(op, false, call);
        Self {
            inner: Inner::submitted(raw),
        }
    }

    /// Submits a prepared request, or resolves it with its error.
    #[inline]
    pub(crate) fn prepared<F>(prepared: Prepared<O, F>) -> Self
    where
        F: FnOnce(sys::PIRP, Payload<'_, O>) -> sys::NTSTATUS,
    {
        match prepared {
            Ok((op, call)) => Self::submit(op, call),
            Err((op, error)) => Self::failed(op, error),
        }
    }

    /// Waits until the provider completes the request.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    pub fn wait(mut self, passive: &Passive<'_>) -> O::Output {
        match self.inner.wait(passive, None, None) {
            Some(out) => out,
            None => unreachable!("an infinite wait ends with the request complete"),
        }
    }

    /// Waits at most `timeout` for the provider to complete the request.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    ///
    /// # Errors
    ///
    /// Gives the request back if it has not completed in time: wait again, or
    /// drop it to cancel the IRP (its buffers are freed once the provider lets
    /// go of them).
    pub fn wait_timeout(
        mut self,
        passive: &Passive<'_>,
        timeout: Duration,
    ) -> Result<O::Output, Self> {
        self.inner.wait(passive, Some(timeout), None).ok_or(self)
    }

    /// Waits at most `timeout`; abandons the request if it has not
    /// completed by then (see [`Waitable::wait_or_cancel`]).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    pub fn wait_or_cancel(self, passive: &Passive<'_>, timeout: Duration) -> Option<O::Output> {
        self.wait_timeout(passive, timeout).ok()
    }

    /// Whether the output is available without waiting.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    /// Lets the request run to completion without an owner: no cancellation;
    /// the completion routine frees the block (and runs
    /// [`Operation::abandon`]).
    pub(crate) fn detach(mut self) {
        self.inner.release(false, None);
    }

    /// The output if the request has completed (inside the call, or
    /// already); otherwise [`detach`](Self::detach)es it and returns `None`.
    pub(crate) fn now_or_detach(mut self) -> Option<O::Output> {
        if let Some(output) = self.inner.try_take(None, None) {
            return Some(output);
        }
        self.detach();
        None
    }
}

impl<O: Operation> Future for Request<O> {
    type Output = O::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
        // A task whose requests always complete inline still yields now and
        // then, so that abort and shutdown reach it (`wsk::task`).
        core::task::ready!(crate::task::consume_budget(cx));
        match self.inner.try_take(Some(cx.waker()), None) {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }
}

impl<O: Operation> Drop for Request<O> {
    fn drop(&mut self) {
        self.inner.release(true, None);
    }
}

impl<O: Operation> core::fmt::Debug for Request<O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Request")
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// The memory of one request — IRP, completion state, event, payload —
/// kept from one request to the next, so that a stream of requests
/// allocates nothing.
///
/// Requests made in a slot (such as
/// [`ConnectionSocket::send_in`](crate::tcp::ConnectionSocket::send_in)) borrow
/// it mutably until they complete: one request at a time per slot. A slot is
/// typed by the operation it serves ([`TransferSlot`](crate::request::TransferSlot)
/// for sends and receives); its block is allocated by [`new`](Self::new), and
/// again only after a request in it was dropped while pending.
///
/// # Invariants
///
/// `block`, when present, is idle: no payload, and neither the provider nor
/// a completion routine touches it.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:7");
/// use wsk::{block_on, Buffer, Registration};
/// use wsk::events::NoEvents;
/// use wsk::irql::Passive;
/// use wsk::tcp::ConnectionSocket;
/// use wsk::request::TransferSlot;
/// use wsk::tcp::{ReceiveFlags, SendFlags};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
/// let remote = "10.0.0.2:7".parse().unwrap();
/// let socket = block_on(&passive, wsk::tcp::connect(&provider, remote, NoEvents))?;
/// # let conn = peer.accept();
///
/// // One slot and one buffer serve every send: no allocation per request.
/// let mut slot = TransferSlot::new()?;
/// let mut buffer = Buffer::with_capacity(4)?;
/// for round in 0..3_u8 {
///     buffer.clear();
///     buffer.extend_from_slice(&[round; 4]);
///     let (sent, back) = socket.send_in(&mut slot, buffer, SendFlags::empty()).wait(&passive);
///     assert_eq!(sent?, 4);
///     buffer = back;
/// }
/// # assert_eq!(conn.recv_exact(12), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
/// # conn.send(b"pong");
/// let (received, buffer) =
///     socket.receive_in(&mut slot, buffer, ReceiveFlags::WAIT_ALL).wait(&passive);
/// assert_eq!((received?, buffer.as_slice()), (4, &b"pong"[..]));
/// socket.close().wait(&passive)?;
/// drop((slot, buffer, provider));
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct RequestSlot<O: Operation> {
    block: Option<RawRequest<O>>,
}

impl<O: Operation> RequestSlot<O> {
    /// Allocates the slot's memory and initialises its IRP.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (the allocator must allow it; non-paged pool does).
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`] if the memory could not be allocated.
    pub fn new() -> Result<Self> {
        let block = RawRequest::alloc().ok_or(Error::INSUFFICIENT_RESOURCES)?;
        Ok(Self { block: Some(block) })
    }

    /// Whether the slot holds its memory, so its next request allocates
    /// nothing. False only after a request in the slot was dropped (or
    /// forgotten) while pending, or an allocation failed; the next request
    /// then allocates again.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.block.is_some()
    }
}

impl<O: Operation> core::fmt::Debug for RequestSlot<O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RequestSlot")
            .field("ready", &self.is_ready())
            .finish()
    }
}

/// A request made in a [`RequestSlot`]: as a [`Request`], but on completion
/// its memory goes back to the slot instead of being freed.
///
/// Dropping it while pending cancels the IRP as for a [`Request`]; the slot
/// then loses its memory (the completion routine frees it once the provider
/// is done) and its next request allocates. Dropping it once complete
/// discards the output and keeps the memory in the slot.
#[must_use = "a request does nothing useful unless awaited; dropping it cancels the IRP"]
pub struct SlotRequest<'s, O: Operation> {
    slot: &'s mut RequestSlot<O>,
    inner: Inner<O>,
}

// SAFETY: as for Request; the slot's block is idle.
unsafe impl<O: Operation> Send for SlotRequest<'_, O> where O::Output: Send {}
// SAFETY: `&SlotRequest` only reads the block's atomic state.
unsafe impl<O: Operation> Sync for SlotRequest<'_, O> {}
impl<O: Operation> Unpin for SlotRequest<'_, O> {}

impl<'s, O: Operation> SlotRequest<'s, O> {
    /// As [`Request::submit`], with the slot's memory (allocated if the slot
    /// lost it).
    pub(crate) fn submit(
        slot: &'s mut RequestSlot<O>,
        op: O,
        call: impl FnOnce(sys::PIRP, Payload<'_, O>) -> sys::NTSTATUS,
    ) -> Self {
        dispose_deferred();
        let (raw, reuse) = match slot.block.take() {
            Some(raw) => (Some(raw), true),
            None => (RawRequest::alloc(), false),
        };
        let inner = match raw {
            Some(mut raw) => {
                raw.start(op, reuse, call);
                Inner::submitted(raw)
            }
            None => Inner::ready(op.complete(Error::INSUFFICIENT_RESOURCES.as_raw(), 0)),
        };
        Self { slot, inner }
    }

    /// Submits a prepared request in `slot`, or resolves it with its error
    /// (the slot keeps its memory).
    #[inline]
    pub(crate) fn prepared<F>(slot: &'s mut RequestSlot<O>, prepared: Prepared<O, F>) -> Self
    where
        F: FnOnce(sys::PIRP, Payload<'_, O>) -> sys::NTSTATUS,
    {
        match prepared {
            Ok((op, call)) => Self::submit(slot, op, call),
            Err((op, error)) => Self {
                slot,
                inner: Inner::ready(op.complete(error.as_raw(), 0)),
            },
        }
    }

    /// Waits until the provider completes the request.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    pub fn wait(mut self, passive: &Passive<'_>) -> O::Output {
        match self.inner.wait(passive, None, Some(&mut self.slot.block)) {
            Some(out) => out,
            None => unreachable!("an infinite wait ends with the request complete"),
        }
    }

    /// Waits at most `timeout` for the provider to complete the request.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    ///
    /// # Errors
    ///
    /// Gives the request back if it has not completed in time, as
    /// [`Request::wait_timeout`] does.
    pub fn wait_timeout(
        mut self,
        passive: &Passive<'_>,
        timeout: Duration,
    ) -> Result<O::Output, Self> {
        let out = self
            .inner
            .wait(passive, Some(timeout), Some(&mut self.slot.block));
        out.ok_or(self)
    }

    /// Waits at most `timeout`; abandons the request if it has not
    /// completed by then (see [`Waitable::wait_or_cancel`]).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    pub fn wait_or_cancel(self, passive: &Passive<'_>, timeout: Duration) -> Option<O::Output> {
        self.wait_timeout(passive, timeout).ok()
    }

    /// Whether the output is available without waiting.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }
}

impl<O: Operation> Future for SlotRequest<'_, O> {
    type Output = O::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
        // As in `Request::poll`.
        core::task::ready!(crate::task::consume_budget(cx));
        let this = self.get_mut();
        match this
            .inner
            .try_take(Some(cx.waker()), Some(&mut this.slot.block))
        {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }
}

impl<O: Operation> Drop for SlotRequest<'_, O> {
    fn drop(&mut self) {
        self.inner.release(true, Some(&mut self.slot.block));
    }
}

impl<O: Operation> core::fmt::Debug for SlotRequest<'_, O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlotRequest")
            .field("complete", &self.is_complete())
            .finish_non_exhaustive()
    }
}
