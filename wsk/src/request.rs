//! Requests: one IRP-based WSK call, owned until the provider completes it.
//!
//! Every WSK routine takes an IRP and completes it later (or at once). A
//! [`Request`] owns, in **one** non-paged heap allocation (the *block*), the IRP
//! with its single stack location, the completion state, a `KEVENT` for
//! blocking waits, a waker slot for `async` callers, and every buffer, MDL and
//! address the provider may touch (the operation's payload). The IRP comes
//! first in the block and its completion-routine context points at the block.
//!
//! # Lifecycle
//!
//! ```text
//!   submit ──► Pending ──completion routine──► Completed ──wait/poll──► output (block freed)
//!                │
//!                └─ Request dropped: IoCancelIrp, then Abandoned ──completion routine──► block freed
//! ```
//!
//! - The completion routine always returns `STATUS_MORE_PROCESSING_REQUIRED`:
//!   the IRP is this crate's memory, never the I/O manager's to free.
//! - Dropping a pending request cancels its IRP and hands the block to the
//!   completion routine, which frees it — buffers included — only when the
//!   provider is done. A provider that never completes (Wine ignores
//!   `IoCancelIrp`; closing the socket is what releases its IRPs) keeps the
//!   block alive forever rather than risk a use after free.
//! - A provider that returns a status other than `STATUS_PENDING` without
//!   completing the IRP (as Wine's stubs do) is treated as having completed it
//!   with that status, so waits end.
//! - Buffers come back to the caller with the result, on success and failure
//!   alike (`(Result<T>, B)`), as in other completion-based I/O APIs.

use core::cell::UnsafeCell;
use core::future::Future;
use core::mem::MaybeUninit;
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use wsk_sys as sys;

use crate::irql::Passive;
use crate::{Error, Result};

/// What a request's payload turns into when the IRP completes.
///
/// Implemented by each operation's payload type inside this crate.
pub trait Operation: Send + 'static {
    /// The value the request resolves to.
    type Output;

    /// Builds the output from the IRP's final `IoStatus`.
    ///
    /// `status` is the IRP's `IoStatus.Status`, `information` its
    /// `IoStatus.Information`. Runs at ≤ `DISPATCH_LEVEL` in the waiter's
    /// context, never in the completion routine.
    fn complete(self, status: sys::NTSTATUS, information: usize) -> Self::Output;

    /// Disposes of the payload of a request whose owner is gone, once the
    /// provider has completed it (in the completion routine, at ≤
    /// `DISPATCH_LEVEL`). The default drops it; operations that create
    /// resources (a socket) release them here.
    fn abandon(self, status: sys::NTSTATUS, information: usize)
    where
        Self: Sized,
    {
        let _ = (status, information);
    }
}

/// One IRP followed by its single stack location, as `IoSizeOfIrp(1)`
/// describes.
#[repr(C)]
struct IrpWithStack {
    irp: sys::IRP,
    stack: [sys::IO_STACK_LOCATION; 1],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Submitted; the provider owns the IRP.
    Pending,
    /// The provider completed the IRP (or returned without completing it).
    Completed {
        status: sys::NTSTATUS,
        information: usize,
    },
    /// The owner dropped the request; the completion routine frees the block.
    Abandoned,
}

/// The single allocation behind a request.
///
/// # Invariants
///
/// - `irp` is the first field, initialised by `IoInitializeIrp` before the
///   provider sees it, and its completion context is the block's address.
/// - `state`, `waker` are only accessed with `lock` held.
/// - While `state` is `Pending`, the provider may touch `irp` and anything in
///   `op`; neither is moved or freed.
/// - Exactly one party frees the block: the owner once `state` is `Completed`,
///   or the completion routine once it is `Abandoned`.
#[repr(C)]
struct Block<O> {
    irp: UnsafeCell<MaybeUninit<IrpWithStack>>,
    lock: UnsafeCell<sys::KSPIN_LOCK>,
    event: UnsafeCell<MaybeUninit<sys::KEVENT>>,
    state: UnsafeCell<State>,
    waker: UnsafeCell<Option<Waker>>,
    op: UnsafeCell<O>,
}

/// The completion state, borrowed while the block's lock is held.
struct Locked<'a> {
    state: &'a mut State,
    waker: &'a mut Option<Waker>,
    event: *mut sys::KEVENT,
}

impl Locked<'_> {
    /// Records completion, signals waiters and takes the waker to wake once
    /// the lock is released.
    fn complete(&mut self, status: sys::NTSTATUS, information: usize) -> Option<Waker> {
        *self.state = State::Completed {
            status,
            information,
        };
        // SAFETY: the event was initialised at submission and lives in the
        // block, which cannot be freed while its lock is held; setting it
        // without waiting is legal at DISPATCH_LEVEL.
        unsafe { sys::KeSetEvent(self.event, 0, sys::FALSE) };
        self.waker.take()
    }
}

impl<O> Block<O> {
    fn irp(&self) -> sys::PIRP {
        self.irp.get().cast()
    }

    fn event(&self) -> *mut sys::KEVENT {
        self.event.get().cast()
    }

    /// Runs `f` with the block's spin lock held.
    ///
    /// Takes a raw pointer, not `&self`: once the lock is released another
    /// party may free the block, which no reference may outlive.
    ///
    /// # Safety
    ///
    /// `this` points to a live block; IRQL ≤ `DISPATCH_LEVEL`.
    unsafe fn locked<R>(this: *const Self, f: impl FnOnce(&mut Locked<'_>) -> R) -> R {
        // SAFETY: `this` is a live block (caller contract); taking a field's
        // address reads nothing. Likewise for the next three fields.
        let lock = UnsafeCell::raw_get(unsafe { &raw const (*this).lock });
        // SAFETY: as above.
        let state = UnsafeCell::raw_get(unsafe { &raw const (*this).state });
        // SAFETY: as above.
        let waker = UnsafeCell::raw_get(unsafe { &raw const (*this).waker });
        // SAFETY: as above.
        let event = UnsafeCell::raw_get(unsafe { &raw const (*this).event }).cast::<sys::KEVENT>();
        // SAFETY: a valid KSPIN_LOCK in the live block; IRQL <= DISPATCH_LEVEL.
        let old = unsafe { sys::KeAcquireSpinLockRaiseToDpc(lock) };
        // SAFETY: the lock is held, so no one else accesses the state (invariant).
        let state = unsafe { &mut *state };
        // SAFETY: as above, for the waker.
        let waker = unsafe { &mut *waker };
        let r = f(&mut Locked {
            state,
            waker,
            event,
        });
        // SAFETY: acquired above with the returned IRQL; nothing of the block
        // is touched after this call.
        unsafe { sys::KeReleaseSpinLock(lock, old) };
        r
    }

    /// Frees a block nobody else can reach, returning its payload.
    ///
    /// # Safety
    ///
    /// `this` came from [`Request::submit`]'s allocation, the provider is done
    /// with it, and no other pointer to it will be used again.
    unsafe fn free(this: *mut Self) -> O {
        // SAFETY: the caller hands over sole ownership of a block allocated as a Box.
        let block = unsafe { alloc::boxed::Box::from_raw(this) };
        block.op.into_inner()
    }
}

/// A submitted WSK request: a [`Future`] and a blocking waitable.
///
/// Resolve it with `.await` (any IRQL ≤ `DISPATCH_LEVEL`; the waker must be
/// callable at `DISPATCH_LEVEL`), [`wait`](Self::wait) or
/// [`wait_timeout`](Self::wait_timeout) (`PASSIVE_LEVEL`). Dropping it before
/// it completes cancels the IRP; see the [module docs](self).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:7");
/// use wsk::{block_on, Buffer, ConnectionSocket, NoEvents, Passive, Registration};
/// use core::time::Duration;
///
/// let passive = Passive::current().expect("PASSIVE_LEVEL");
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
/// let remote = "10.0.0.2:7".parse().unwrap();
/// let socket = block_on(&passive, ConnectionSocket::connect_to(&provider, remote, NoEvents))?;
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

enum Inner<O: Operation> {
    /// Owns the block (see [`Block`]'s invariants).
    Submitted(NonNull<Block<O>>),
    /// Finished before reaching the provider (validation or allocation failure).
    Ready(Option<O::Output>),
    /// Output already taken.
    Done,
}

// SAFETY: the block is only reached through this handle or the provider's
// completion, both synchronised by the block's spin lock; the payload is Send.
unsafe impl<O: Operation> Send for Request<O> where O::Output: Send {}
// SAFETY: `&Request` exposes no access to the block.
unsafe impl<O: Operation> Sync for Request<O> {}
impl<O: Operation> Unpin for Request<O> {}

impl<O: Operation> Request<O> {
    /// A request that finished before reaching the provider.
    pub(crate) fn ready(output: O::Output) -> Self {
        Self {
            inner: Inner::Ready(Some(output)),
        }
    }

    /// A request that failed before reaching the provider with `error`,
    /// handing the payload (and so the caller's buffers) back.
    pub(crate) fn failed(op: O, error: Error) -> Self {
        Self::ready(op.complete(error.ntstatus(), 0))
    }

    /// Allocates the block for `op`, prepares its IRP and passes it to `call`,
    /// which starts one WSK routine with it and returns that routine's status.
    ///
    /// `call` gets the IRP and the payload inside the block; pointers it
    /// derives from the payload stay valid until the request completes, so
    /// they may be handed to the provider. If `call` does not pass the IRP to
    /// a routine it must return a status other than `STATUS_PENDING`.
    pub(crate) fn submit(op: O, call: impl FnOnce(sys::PIRP, &mut O) -> sys::NTSTATUS) -> Self {
        let layout = core::alloc::Layout::new::<Block<O>>();
        // SAFETY: Block has a non-zero size.
        let raw = unsafe { alloc::alloc::alloc(layout) }.cast::<Block<O>>();
        if raw.is_null() {
            return Self::failed(op, Error::INSUFFICIENT_RESOURCES);
        }
        let block = raw;
        // SAFETY: freshly allocated with Block's layout; nothing else refers to it.
        unsafe {
            block.write(Block {
                irp: UnsafeCell::new(MaybeUninit::uninit()),
                lock: UnsafeCell::new(0),
                event: UnsafeCell::new(MaybeUninit::uninit()),
                state: UnsafeCell::new(State::Pending),
                waker: UnsafeCell::new(None),
                op: UnsafeCell::new(op),
            });
        }
        // SAFETY: the block is live; every field that is written later sits in an
        // UnsafeCell, so a shared reference is sound for the block's lifetime.
        let this = unsafe { &*block };
        // SAFETY: `event` is writable KEVENT storage in non-paged memory.
        unsafe { sys::KeInitializeEvent(this.event(), sys::NotificationEvent, sys::FALSE) };
        let irp = this.irp();
        #[allow(clippy::cast_possible_truncation)] // IrpWithStack is a few hundred bytes.
        let size = size_of::<IrpWithStack>() as u16;
        // SAFETY: `irp` is storage for an IRP with one stack location of `size` bytes.
        unsafe { sys::IoInitializeIrp(irp, size, 1) };
        // SAFETY: the IRP has one stack location, which the routine's context
        // (the block) outlives: the block is freed only after completion.
        unsafe {
            sys::IoSetCompletionRoutine(
                irp,
                Some(on_complete::<O>),
                block.cast(),
                sys::TRUE,
                sys::TRUE,
                sys::TRUE,
            );
        }
        // SAFETY: nothing else refers to the payload until the provider gets the
        // IRP; it is not moved until the block is freed.
        let op_ref = unsafe { &mut *this.op.get() };
        let status = call(irp, op_ref);
        if status != sys::STATUS_PENDING {
            // A real provider has completed the IRP before returning a final
            // status; one that returns without completing (Wine's stubs) is
            // treated as having completed it with that status. Nothing to wake.
            // SAFETY: the block is ours (no one can have abandoned it yet).
            unsafe {
                Block::locked(block, |l| {
                    if *l.state == State::Pending {
                        drop(l.complete(status, 0));
                    }
                });
            }
        }
        // SAFETY: `block` is the non-null allocation checked above.
        let block = unsafe { NonNull::new_unchecked(block) };
        Self {
            inner: Inner::Submitted(block),
        }
    }

    /// The block this handle owns, by shared reference.
    fn block<'b>(block: *mut Block<O>) -> &'b Block<O> {
        // SAFETY: called only with the block of `Inner::Submitted`, which this
        // handle owns and keeps alive; all mutable fields are UnsafeCells.
        unsafe { &*block }
    }

    /// Takes the output if the provider has completed the request.
    fn try_take(&mut self, waker: Option<&Waker>) -> Option<O::Output> {
        match &mut self.inner {
            Inner::Ready(out) => {
                let out = out.take();
                self.inner = Inner::Done;
                out
            }
            Inner::Done => panic!("wsk: request polled after completion"),
            Inner::Submitted(block) => {
                let block = block.as_ptr();
                // SAFETY: we own the live block; requests are used at <= DISPATCH_LEVEL.
                let done = unsafe {
                    Block::locked(block, |l| match *l.state {
                        State::Completed {
                            status,
                            information,
                        } => Some((status, information)),
                        State::Pending => {
                            if let Some(w) = waker {
                                if !l.waker.as_ref().is_some_and(|old| old.will_wake(w)) {
                                    *l.waker = Some(w.clone());
                                }
                            }
                            None
                        }
                        State::Abandoned => unreachable!("owner still holds the request"),
                    })
                };
                let (status, information) = done?;
                self.inner = Inner::Done;
                // SAFETY: Completed: the provider is done and the completion
                // routine no longer touches the block; we are its sole owner.
                let op = unsafe { Block::free(block) };
                Some(op.complete(status, information))
            }
        }
    }

    /// Waits until the provider completes the request.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    pub fn wait(self, passive: &Passive<'_>) -> O::Output {
        match self.wait_inner(passive, None) {
            Ok(out) => out,
            Err(_) => unreachable!("an infinite wait cannot time out"),
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
    pub fn wait_timeout(self, passive: &Passive<'_>, timeout: Duration) -> Result<O::Output, Self> {
        self.wait_inner(passive, Some(timeout))
    }

    fn wait_inner(
        mut self,
        passive: &Passive<'_>,
        timeout: Option<Duration>,
    ) -> Result<O::Output, Self> {
        let _ = passive;
        // Most requests have completed by now (inline completions): take the
        // output without a kernel wait.
        if let Some(out) = self.try_take(None) {
            return Ok(out);
        }
        if let Inner::Submitted(block) = &self.inner {
            let event = Self::block(block.as_ptr()).event();
            let mut relative = timeout.map(crate::time::relative_timeout);
            let timeout_ptr = relative.as_mut().map_or(ptr::null_mut(), ptr::from_mut);
            // SAFETY: PASSIVE_LEVEL is proven by the token; the event lives as
            // long as the block, which we own for the duration of the wait.
            let status = unsafe {
                sys::KeWaitForSingleObject(
                    event.cast(),
                    sys::Executive,
                    sys::KernelMode,
                    sys::FALSE,
                    timeout_ptr,
                )
            };
            if status == sys::STATUS_TIMEOUT {
                return Err(self);
            }
        }
        match self.try_take(None) {
            Some(out) => Ok(out),
            None => Err(self),
        }
    }

    /// Whether the output is available without waiting.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        match &self.inner {
            Inner::Ready(_) | Inner::Done => true,
            // SAFETY: we own the live block; IRQL <= DISPATCH_LEVEL.
            Inner::Submitted(block) => unsafe {
                Block::locked(block.as_ptr(), |l| {
                    matches!(l.state, State::Completed { .. })
                })
            },
        }
    }
}

impl<O: Operation> Future for Request<O> {
    type Output = O::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
        match self.try_take(Some(cx.waker())) {
            Some(out) => Poll::Ready(out),
            None => Poll::Pending,
        }
    }
}

impl<O: Operation> Drop for Request<O> {
    fn drop(&mut self) {
        let Inner::Submitted(block) = self.inner else {
            return;
        };
        let block = block.as_ptr();
        // Cancel first, while the block is certainly ours: once it is marked
        // Abandoned the completion routine may free it at any moment.
        // SAFETY: the IRP lives in our block and was submitted; IoCancelIrp is
        // callable at <= DISPATCH_LEVEL and harmless on a completed IRP.
        unsafe { sys::IoCancelIrp(Self::block(block).irp()) };
        // SAFETY: we own the live block; IRQL <= DISPATCH_LEVEL.
        let completed = unsafe {
            Block::locked(block, |l| {
                *l.waker = None;
                match *l.state {
                    State::Pending => {
                        *l.state = State::Abandoned;
                        false
                    }
                    State::Completed { .. } => true,
                    State::Abandoned => unreachable!("dropped twice"),
                }
            })
        };
        if completed {
            Self::dispose(block);
        }
    }
}

impl<O: Operation> Request<O> {
    /// Lets the request run to completion without an owner: no cancellation;
    /// the completion routine frees the block (and runs
    /// [`Operation::abandon`]).
    pub(crate) fn detach(mut self) {
        let Inner::Submitted(block) = self.inner else {
            return;
        };
        self.inner = Inner::Done;
        let block = block.as_ptr();
        // SAFETY: we own the live block; IRQL <= DISPATCH_LEVEL.
        let completed = unsafe {
            Block::locked(block, |l| {
                *l.waker = None;
                if *l.state == State::Pending {
                    *l.state = State::Abandoned;
                    false
                } else {
                    true
                }
            })
        };
        if completed {
            Self::dispose(block);
        }
    }

    /// Frees a completed block whose output nobody will take.
    fn dispose(block: *mut Block<O>) {
        // SAFETY: the caller owns the live block; IRQL <= DISPATCH_LEVEL.
        let state = unsafe { Block::locked(block, |l| *l.state) };
        let State::Completed {
            status,
            information,
        } = state
        else {
            unreachable!("disposed before completion")
        };
        // SAFETY: completed: the provider and completion routine are done
        // with the block, and the caller owned it.
        let op = unsafe { Block::free(block) };
        op.abandon(status, information);
    }
}

impl<O: Operation> core::fmt::Debug for Request<O> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Request")
            .field("complete", &self.is_complete())
            .finish()
    }
}

/// The completion routine of every request.
///
/// # Safety
///
/// Called by the provider (through the I/O manager's completion logic) for an
/// IRP prepared by [`Request::submit`], whose context is its block.
unsafe extern "system" fn on_complete<O: Operation>(
    _device: sys::PDEVICE_OBJECT,
    irp: sys::PIRP,
    context: sys::PVOID,
) -> sys::NTSTATUS {
    let block = context.cast::<Block<O>>();
    // SAFETY: the provider completed this IRP, so its IoStatus is final and readable.
    let io_status = unsafe { (*irp).IoStatus };
    let (status, information) = (io_status.Status, io_status.Information);
    // SAFETY: the block stays live until we (Abandoned) or the owner (after
    // seeing Completed under the lock) free it; the completion routine runs
    // at <= DISPATCH_LEVEL.
    let action = unsafe {
        Block::locked(block, |l| match *l.state {
            State::Pending => Some(l.complete(status, information)),
            State::Abandoned => None,
            State::Completed { .. } => panic!("wsk: IRP completed twice"),
        })
    };
    // After the lock is released the owner may free the block: touch only the waker.
    if let Some(waker) = action {
        if let Some(w) = waker {
            w.wake();
        }
    } else {
        {
            // SAFETY: Abandoned: the owner is gone and the provider is done; we free it.
            let op = unsafe { Block::free(block) };
            op.abandon(status, information);
        }
    }
    sys::STATUS_MORE_PROCESSING_REQUIRED
}
