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
//!   submit ──► pending ──completion routine──► completed ──wait/poll──► output (block freed or reused)
//!                │
//!                └─ Request dropped: IoCancelIrp, then released ──completion routine──► block freed
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
//!
//! # Reuse
//!
//! A [`RequestSlot`] keeps one block from one request to the next: the same
//! memory, the same IRP (reinitialised with `IoReuseIrp`, which
//! [Microsoft allows](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioreuseirp)
//! for IRPs a driver "allocated … as raw memory"), so a stream of sends or
//! receives through a slot allocates nothing. A request made in a slot
//! ([`SlotRequest`]) borrows the slot until it completes; dropping it while
//! the provider still owns the IRP behaves as for a [`Request`] and leaves
//! the slot empty, so that its next request allocates a fresh block instead
//! of reusing memory the provider may still touch. [`Waitable`] covers what
//! both kinds of request offer, for helpers that wait for either.
//!
//! # Completion without a lock
//!
//! The block's state is one atomic word. The completion routine marks the
//! IRP completed with one atomic OR; if the owner had registered a waker or
//! was blocked in a wait by then, the routine takes the waker and the
//! waiter's event, marks itself finished with a second OR, and only then
//! wakes the task or signals the event — so whoever it wakes finds the block
//! free to reuse. The waiter's `KEVENT` lives on the waiting thread's stack
//! (the classic pattern of a synchronous IRP), so a request that is never
//! waited on never initialises one. The owner never spins on the routine:
//! once the IRP is marked completed it takes the output, and if the routine
//! is still finishing, whichever of the two is last frees the block. An
//! inline completion therefore costs the completion routine one atomic
//! operation and the owner one load, with no kernel call.

use core::cell::UnsafeCell;
use core::future::Future;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Release};
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

// Bits of `Block::state`. The owner sets WAITER, WAKER, RELEASED and TAKEN
// (with compare-exchange or OR); the completion routine sets COMPLETING and
// COMPLETE (with OR). A failed compare-exchange by the owner therefore means
// the IRP completed.

/// The owner is blocked on the event `event` points to: the completion
/// routine signals it.
const WAITER: u32 = 1 << 0;
/// `waker` holds the owner's waker: the completion routine takes and wakes it.
const WAKER: u32 = 1 << 1;
/// The IRP completed: its `IoStatus` is final and the owner may take the
/// output.
const COMPLETING: u32 = 1 << 2;
/// The completion routine is done with the block. Set only when it had a
/// waker or a waiter to serve; without either, `COMPLETING` means the same.
const COMPLETE: u32 = 1 << 3;
/// The owner let go of the block: whichever party finishes last frees it.
const RELEASED: u32 = 1 << 4;
/// With `RELEASED`: the owner took the payload out before letting go.
const TAKEN: u32 = 1 << 5;

/// Whether the completion routine no longer touches the block.
const fn finished(state: u32) -> bool {
    state & COMPLETING != 0 && (state & COMPLETE != 0 || state & (WAITER | WAKER) == 0)
}

/// The part of a request's block that does not depend on the operation: the
/// IRP, the completion state and the hand-off to the owner. The completion
/// routine and the owner's state transitions are written once against it, not
/// once per operation.
///
/// # Invariants
///
/// - `irp` is the first field, initialised by `IoInitializeIrp` when the
///   block is allocated; while a request is in flight its completion context
///   is the header's (so the block's) address.
/// - `state` follows the bits above. While `COMPLETING` is clear the provider
///   may touch `irp` and anything in the payload; neither is moved or freed.
/// - `event` and `waker` are read by the completion routine only if it saw
///   `WAITER` (respectively `WAKER`), and written by the owner only while
///   that bit is clear. While `WAITER` is set, `event` points to an
///   initialised `KEVENT` on the waiting thread's stack, which stays valid
///   until the completion routine has signalled it or the owner has cleared
///   `WAITER`.
/// - `ops` is the block's [`BlockOps`], for the completion routine.
/// - Exactly one party frees the block: the owner if it sees the completion
///   routine `finished`, else the completion routine once `RELEASED` is set.
#[repr(C)]
struct Header {
    irp: UnsafeCell<MaybeUninit<IrpWithStack>>,
    state: AtomicU32,
    event: UnsafeCell<*mut sys::KEVENT>,
    waker: UnsafeCell<Option<Waker>>,
    ops: &'static BlockOps,
}

/// How the completion routine frees a block whose owner let go.
struct BlockOps {
    /// Frees a block without a payload.
    free: unsafe fn(*mut Header),
    /// Takes the payload out, frees the block and runs
    /// [`Operation::abandon`].
    dispose: unsafe fn(*mut Header),
}

/// The single allocation behind a request: the [`Header`], then the payload.
///
/// # Invariants
///
/// `op` holds a payload from submission until the owner takes it (after
/// `COMPLETING`) or the disposing party drops it.
#[repr(C)]
struct Block<O> {
    header: Header,
    op: UnsafeCell<MaybeUninit<O>>,
}

impl<O: Operation> Block<O> {
    const OPS: BlockOps = BlockOps {
        free: Self::free,
        dispose: Self::dispose,
    };

    /// Frees a block with no payload.
    ///
    /// # Safety
    ///
    /// `this` is the header of a block from [`RawRequest::alloc`] that holds
    /// no payload; the provider and the completion routine are done with it,
    /// and no other pointer to it will be used again.
    unsafe fn free(this: *mut Header) {
        // SAFETY: sole ownership of a block allocated as a Box (caller
        // contract); dropping it drops the waker, never the (absent) payload.
        drop(unsafe { alloc::boxed::Box::from_raw(this.cast::<Self>()) });
    }

    /// Takes the payload out, frees the block and lets the payload dispose of
    /// itself.
    ///
    /// # Safety
    ///
    /// As [`free`](Self::free), except that the block holds a payload and its
    /// IRP has completed.
    unsafe fn dispose(this: *mut Header) {
        // SAFETY: live block (caller contract).
        let block = unsafe { &*this.cast::<Self>() };
        let (status, information) = block.header.io_status();
        // SAFETY: the payload is there and nobody else reads it.
        let op = unsafe { block.take_op() };
        // SAFETY: the payload is out; caller contract otherwise.
        unsafe { Self::free(this) };
        op.abandon(status, information);
    }

    /// Moves the payload out.
    ///
    /// # Safety
    ///
    /// The block holds a payload that nobody else reads or writes; it holds
    /// none afterwards.
    #[inline]
    unsafe fn take_op(&self) -> O {
        // SAFETY: the payload cell is not borrowed elsewhere (caller contract).
        let slot = unsafe { &*self.op.get() };
        // SAFETY: initialised (caller contract).
        unsafe { slot.assume_init_read() }
    }
}

impl Header {
    #[inline]
    fn irp(&self) -> sys::PIRP {
        self.irp.get().cast()
    }

    /// The IRP's final `IoStatus`.
    #[inline]
    fn io_status(&self) -> (sys::NTSTATUS, usize) {
        // SAFETY: the IRP is initialised (invariant); callers read it only
        // once it completed, when nobody writes it.
        let io = unsafe { (*self.irp()).IoStatus };
        (io.Status, io.Information)
    }

    /// Whether the IRP completed.
    #[inline]
    fn is_complete(&self) -> bool {
        self.state.load(Acquire) & COMPLETING != 0
    }

    /// Readies the idle block's IRP for one submission; `block` becomes the
    /// completion routine's context.
    ///
    /// # Safety
    ///
    /// The block is idle: neither the provider nor the completion routine
    /// touches it. `block` points to the whole block this header starts, with
    /// the right to access all of it (not derived from `&self`, which covers
    /// only the header).
    #[inline]
    unsafe fn arm(&self, reuse: bool, block: sys::PVOID) -> sys::PIRP {
        self.state.store(0, Release);
        let irp = self.irp();
        if reuse {
            // SAFETY: an initialised IRP in raw memory that nobody owns now
            // (caller contract).
            unsafe { sys::IoReuseIrp(irp, sys::STATUS_SUCCESS) };
        }
        // SAFETY: the IRP has one stack location; the block, the routine's
        // context, lives until the routine has run (invariants).
        unsafe {
            sys::IoSetCompletionRoutine(
                irp,
                Some(on_complete),
                block,
                sys::TRUE,
                sys::TRUE,
                sys::TRUE,
            );
        }
        irp
    }

    /// After the WSK routine returned `status`: a provider that returned a
    /// final status without completing the IRP (Wine's stubs) is treated as
    /// having completed it with that status.
    #[inline]
    fn submitted(&self, status: sys::NTSTATUS) {
        if status != sys::STATUS_PENDING && !self.is_complete() {
            // A real provider completes the IRP before returning a final
            // status, so nobody else touches the block now.
            // SAFETY: the IRP is ours again; writing its status races with nothing.
            unsafe {
                (*self.irp()).IoStatus = sys::IO_STATUS_BLOCK {
                    Status: status,
                    Information: 0,
                };
            }
            self.state.store(COMPLETING, Release);
        }
    }

    /// Makes `waker` the one the completion routine wakes; returns whether
    /// the IRP already completed (then nothing is registered).
    fn register(&self, waker: &Waker) -> bool {
        let mut state = self.state.load(Acquire);
        if state & COMPLETING != 0 {
            return true;
        }
        if state & WAKER != 0 {
            // Take the slot back before touching it; failing means the IRP
            // completed (only the completion routine changes the state now).
            let cleared = state & !WAKER;
            if self
                .state
                .compare_exchange(state, cleared, Acquire, Acquire)
                .is_err()
            {
                return true;
            }
            state = cleared;
        }
        // SAFETY: WAKER is clear, so the completion routine does not touch the
        // slot (invariants), and the owner is its only other user.
        let slot = unsafe { &mut *self.waker.get() };
        if !slot.as_ref().is_some_and(|old| old.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
        // Publish the waker; failing means the IRP completed meanwhile and the
        // completion routine did not look at the slot.
        self.state
            .compare_exchange(state, state | WAKER, AcqRel, Acquire)
            .is_err()
    }

    /// Blocks until the IRP completes or `timeout` passes; returns whether it
    /// completed.
    #[cold]
    fn wait(&self, passive: &Passive<'_>, timeout: Option<Duration>) -> bool {
        let _ = passive;
        let state = self.state.load(Acquire);
        if state & COMPLETING != 0 {
            return true;
        }
        let mut event = MaybeUninit::<sys::KEVENT>::uninit();
        let event = event.as_mut_ptr();
        // SAFETY: KEVENT storage on this thread's stack, which is resident
        // while the thread waits in kernel mode.
        unsafe { sys::KeInitializeEvent(event, sys::NotificationEvent, sys::FALSE) };
        // SAFETY: WAITER is clear (only `wait` sets it, and it clears or
        // consumes it before returning), so the completion routine does not
        // read the pointer now.
        unsafe { *self.event.get() = event };
        if self
            .state
            .compare_exchange(state, state | WAITER, AcqRel, Acquire)
            .is_err()
        {
            // Completed meanwhile, without looking at the event.
            return true;
        }
        if wait_event(event, timeout) {
            return true;
        }
        // Timed out: withdraw the event before its stack frame goes.
        let mut state = self.state.load(Acquire);
        while state & COMPLETING == 0 {
            match self
                .state
                .compare_exchange(state, state & !WAITER, AcqRel, Acquire)
            {
                Ok(_) => return false,
                Err(now) => state = now,
            }
        }
        // The completion routine saw WAITER: it signals the event once it is
        // done with the block, moments from now.
        wait_event(event, None);
        true
    }

    /// Lets go of a completed request whose payload the owner took; returns
    /// whether the owner may reuse or free the block (the completion
    /// routine is done), else the routine frees it.
    #[inline]
    fn release_taken(&self) -> bool {
        finished(self.state.load(Acquire))
            || finished(self.state.fetch_or(RELEASED | TAKEN, AcqRel))
    }

    /// Lets go of a request with its payload inside: cancels the IRP first if
    /// `cancel` and it has not completed; returns whether the owner must
    /// dispose of the payload (the completion routine is done), else the
    /// routine does.
    fn release(&self, cancel: bool) -> bool {
        if cancel && !self.is_complete() {
            // Cancel while the block is certainly ours: once RELEASED is set the
            // completion routine may free it at any moment.
            // SAFETY: the IRP lives in our block and was submitted; IoCancelIrp
            // is callable at <= DISPATCH_LEVEL and harmless on a completed IRP.
            unsafe { sys::IoCancelIrp(self.irp()) };
        }
        finished(self.state.fetch_or(RELEASED, AcqRel))
    }
}

/// Waits on a `KEVENT`; returns whether it was signalled.
fn wait_event(event: *mut sys::KEVENT, timeout: Option<Duration>) -> bool {
    let mut relative = timeout.map(crate::time::relative_timeout);
    let timeout_ptr = relative.as_mut().map_or(ptr::null_mut(), ptr::from_mut);
    // SAFETY: callers hold a Passive token; the event is initialised and
    // outlives the wait.
    let status = unsafe {
        sys::KeWaitForSingleObject(
            event.cast(),
            sys::Executive,
            sys::KernelMode,
            sys::FALSE,
            timeout_ptr,
        )
    };
    status != sys::STATUS_TIMEOUT
}

/// The owner's handle on a block.
///
/// # Invariants
///
/// Points to a live block that this handle may free or reuse according to
/// [`Header`]'s invariants; at most one `RawRequest` exists per block.
struct RawRequest<O: Operation>(NonNull<Block<O>>);

// SAFETY: the handle owns the block; the payload is Send, and the waker and
// state are thread-safe.
unsafe impl<O: Operation> Send for RawRequest<O> {}
// SAFETY: `&RawRequest` only reads the atomic state.
unsafe impl<O: Operation> Sync for RawRequest<O> {}

impl<O: Operation> RawRequest<O> {
    /// Allocates a block without a payload and initialises its IRP.
    fn alloc() -> Option<Self> {
        let layout = core::alloc::Layout::new::<Block<O>>();
        // SAFETY: Block has a non-zero size.
        let block = NonNull::new(unsafe { alloc::alloc::alloc(layout) }.cast::<Block<O>>())?;
        // SAFETY: freshly allocated with Block's layout; nothing else refers to it.
        unsafe {
            block.write(Block {
                header: Header {
                    irp: UnsafeCell::new(MaybeUninit::uninit()),
                    state: AtomicU32::new(0),
                    event: UnsafeCell::new(ptr::null_mut()),
                    waker: UnsafeCell::new(None),
                    ops: &const { Block::<O>::OPS },
                },
                op: UnsafeCell::new(MaybeUninit::uninit()),
            });
        }
        let this = Self(block);
        #[allow(clippy::cast_possible_truncation)] // IrpWithStack is a few hundred bytes.
        let size = size_of::<IrpWithStack>() as u16;
        // SAFETY: storage for an IRP with one stack location of `size` bytes,
        // in non-paged memory that nobody else uses.
        unsafe { sys::IoInitializeIrp(this.header().irp(), size, 1) };
        Some(this)
    }

    #[inline]
    fn block(&self) -> &Block<O> {
        // SAFETY: the handle keeps the block alive (invariant); every field
        // written after allocation is atomic or in an UnsafeCell.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn header(&self) -> &Header {
        &self.block().header
    }

    /// Puts `op` in the idle block and passes the IRP to `call`, which starts
    /// one WSK routine with it and returns that routine's status.
    ///
    /// `reuse`: the IRP served an earlier request and is reinitialised with
    /// `IoReuseIrp`; otherwise it is fresh from [`alloc`](Self::alloc).
    #[inline]
    fn start(&mut self, op: O, reuse: bool, call: impl FnOnce(sys::PIRP, &mut O) -> sys::NTSTATUS) {
        let block = self.block();
        // SAFETY: the block is idle (a fresh one, or one given back by `take`
        // or `release` once the completion routine finished): this handle has
        // it to itself until `call` hands the IRP over.
        let irp = unsafe { block.header.arm(reuse, self.0.as_ptr().cast()) };
        // SAFETY: idle block: the payload cell is empty and unshared.
        let slot = unsafe { &mut *block.op.get() };
        // Only `call` (and then the provider, through pointers it derives)
        // uses the payload until completion.
        let status = call(irp, slot.write(op));
        block.header.submitted(status);
    }

    /// Whether the IRP completed, so [`take`](Self::take) may be called.
    #[inline]
    fn is_complete(&self) -> bool {
        self.header().is_complete()
    }

    /// Takes the output of a completed request, and the block back if the
    /// completion routine is done with it (else the routine frees it).
    #[inline]
    fn take(self) -> (O::Output, Option<Self>) {
        let this = ManuallyDrop::new(self);
        let block = this.block();
        assert!(
            block.header.is_complete(),
            "wsk: request taken before completion"
        );
        let (status, information) = block.header.io_status();
        // SAFETY: COMPLETING: the provider is done with the payload and the
        // completion routine never reads it unless RELEASED without TAKEN.
        let op = unsafe { block.take_op() };
        // If the routine had not finished, it frees the block: our handle is
        // no longer valid.
        let back = block.header.release_taken().then(|| Self(this.0));
        (op.complete(status, information), back)
    }

    /// Gives the request up: cancels the IRP first if `cancel`, and leaves
    /// the payload's disposal to whichever party finishes last. Returns the
    /// idle block if that was this handle (the completion routine was done).
    fn release(self, cancel: bool) -> Option<Self> {
        let this = ManuallyDrop::new(self);
        let block = this.block();
        if !block.header.release(cancel) {
            // The completion routine disposes of the payload and frees the block.
            return None;
        }
        let (status, information) = block.header.io_status();
        // SAFETY: the completion routine is done and saw no RELEASED, so the
        // payload, still inside, is this handle's alone.
        let op = unsafe { block.take_op() };
        op.abandon(status, information);
        Some(Self(this.0))
    }
}

impl<O: Operation> Drop for RawRequest<O> {
    /// Frees an idle block (no payload), such as a [`RequestSlot`]'s.
    fn drop(&mut self) {
        // SAFETY: an idle block this handle owns (only `take` and `release`
        // end a handle on a busy block, and they do not drop it).
        unsafe { Block::<O>::free(self.0.as_ptr().cast()) };
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
/// (a helper that waits in slices and gives up on a stop flag, say) takes
/// `impl Waitable`. Both also implement [`Future`].
///
/// ```
/// use core::time::Duration;
/// use wsk::{Passive, Waitable};
///
/// /// Waits in 100 ms slices until the request completes or `stop()` says so;
/// /// dropping the request then cancels it.
/// fn wait_or_stop<R: Waitable>(passive: &Passive<'_>, mut request: R, stop: impl Fn() -> bool) -> Option<R::Output> {
///     loop {
///         match request.wait_timeout(passive, Duration::from_millis(100)) {
///             Ok(output) => return Some(output),
///             Err(_) if stop() => return None,
///             Err(pending) => request = pending,
///         }
///     }
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
/// it completes cancels the IRP; see the [module docs](self).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:7");
/// use wsk::{block_on, Buffer, ConnectionSocket, NoEvents, Passive, Registration};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
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
        F: FnOnce(sys::PIRP, &mut O) -> sys::NTSTATUS,
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
}

impl<O: Operation> Future for Request<O> {
    type Output = O::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
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
/// [`ConnectionSocket::send_in`](crate::ConnectionSocket::send_in)) borrow
/// it mutably until they complete: one request at a time per slot. A slot is
/// typed by the operation it serves ([`TransferSlot`](crate::TransferSlot)
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
/// use wsk::{block_on, Buffer, ConnectionSocket, NoEvents, Passive, Registration};
/// use wsk::{ReceiveRequestFlags, SendFlags, TransferSlot};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
/// let remote = "10.0.0.2:7".parse().unwrap();
/// let socket = block_on(&passive, ConnectionSocket::connect_to(&provider, remote, NoEvents))?;
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
///     socket.receive_in(&mut slot, buffer, ReceiveRequestFlags::WAIT_ALL).wait(&passive);
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
        call: impl FnOnce(sys::PIRP, &mut O) -> sys::NTSTATUS,
    ) -> Self {
        let (raw, reuse) = match slot.block.take() {
            Some(raw) => (Some(raw), true),
            None => (RawRequest::alloc(), false),
        };
        let inner = match raw {
            Some(mut raw) => {
                raw.start(op, reuse, call);
                Inner::submitted(raw)
            }
            None => Inner::ready(op.complete(Error::INSUFFICIENT_RESOURCES.ntstatus(), 0)),
        };
        Self { slot, inner }
    }

    /// Submits a prepared request in `slot`, or resolves it with its error
    /// (the slot keeps its memory).
    #[inline]
    pub(crate) fn prepared<F>(slot: &'s mut RequestSlot<O>, prepared: Prepared<O, F>) -> Self
    where
        F: FnOnce(sys::PIRP, &mut O) -> sys::NTSTATUS,
    {
        match prepared {
            Ok((op, call)) => Self::submit(slot, op, call),
            Err((op, error)) => Self {
                slot,
                inner: Inner::ready(op.complete(error.ntstatus(), 0)),
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

/// The completion routine of every request.
///
/// # Safety
///
/// Called by the provider (through the I/O manager's completion logic) for an
/// IRP armed by [`Header::arm`], whose context is its block's header.
unsafe extern "system" fn on_complete(
    _device: sys::PDEVICE_OBJECT,
    _irp: sys::PIRP,
    context: sys::PVOID,
) -> sys::NTSTATUS {
    let header = context.cast::<Header>();
    // SAFETY: the block lives until this routine has finished with it
    // (Header's invariants); the reference is not used after the OR that
    // hands the block over.
    let live = unsafe { &*header };
    let state = &live.state;
    let old = state.fetch_or(COMPLETING, AcqRel);
    assert!(old & COMPLETING == 0, "wsk: IRP completed twice");
    if old & RELEASED != 0 {
        // SAFETY: the owner is gone and the provider is done; the payload is
        // still inside (TAKEN needs COMPLETING).
        unsafe { (live.ops.dispose)(header) };
        return sys::STATUS_MORE_PROCESSING_REQUIRED;
    }
    if old & (WAKER | WAITER) == 0 {
        // Nobody to wake: the owner may take and free the block from now on.
        return sys::STATUS_MORE_PROCESSING_REQUIRED;
    }
    let waker = if old & WAKER != 0 {
        // SAFETY: WAKER was set, so the owner leaves the slot alone and the
        // block stays alive until COMPLETE (Header's invariants).
        unsafe { (*live.waker.get()).take() }
    } else {
        None
    };
    let event = if old & WAITER != 0 {
        // SAFETY: WAITER was set, so the owner leaves the pointer alone and
        // the block stays alive until COMPLETE.
        Some(unsafe { *live.event.get() })
    } else {
        None
    };
    let old = state.fetch_or(COMPLETE, AcqRel);
    if old & RELEASED != 0 {
        // The owner let go while this routine was finishing: it frees the
        // block, with the payload unless the owner took it. (Never while a
        // waiter is blocked: the owner cannot let go from inside `wait`.)
        // The owner is gone, so the block is this routine's to read.
        let free = if old & TAKEN != 0 {
            live.ops.free
        } else {
            live.ops.dispose
        };
        // SAFETY: nobody else will touch the block; `free` finds no payload,
        // `dispose` one.
        unsafe { free(header) };
    }
    // The block may be gone or reused: only the waiter's event and the
    // waker are touched from here on.
    if let Some(event) = event {
        // SAFETY: the waiter keeps its event alive until it is signalled
        // (Header's invariants); setting it without waiting is legal at
        // DISPATCH_LEVEL.
        unsafe { sys::KeSetEvent(event, 0, sys::FALSE) };
    }
    if let Some(waker) = waker {
        waker.wake();
    }
    sys::STATUS_MORE_PROCESSING_REQUIRED
}
