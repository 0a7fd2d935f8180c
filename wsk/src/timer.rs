//! Timers: [`sleep`] and [`timeout`], on kernel timers.
//!
//! Each [`Sleep`] owns one small non-paged allocation holding a `KTIMER`, a
//! `KDPC`, a state word and a waker slot. Creating it sets the timer
//! (`KeSetTimer`, relative, with the DPC); when the timer expires the kernel
//! queues the DPC, which runs at `DISPATCH_LEVEL`, marks the sleep elapsed and
//! wakes whoever polled it. Nothing polls the clock. These futures work in
//! any executor — [`crate::task`]'s, [`block_on`](crate::block_on) — because
//! the DPC only calls a `Waker`.
//!
//! # Accuracy
//!
//! A relative kernel timer can expire up to one clock tick early
//! ([Timer Accuracy](https://learn.microsoft.com/windows-hardware/drivers/kernel/timer-accuracy)),
//! so a sleep adds one tick (`KeQueryTimeIncrement`) to its duration: it
//! lasts at least `duration`.
//!
//! # Memory and unload
//!
//! The timer's memory is freed only once the kernel can no longer touch it,
//! as [`KeCancelTimer`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kecanceltimer)
//! requires ("the driver must ensure that the DPC has completed before
//! freeing any resources used by the DPC"):
//!
//! - Dropping a sleep that has not expired cancels the timer; if
//!   `KeCancelTimer` returns `TRUE` the timer was still queued, its DPC will
//!   not run, and the memory is freed at once.
//! - Otherwise the timer expired and its DPC is queued, running or done. The
//!   DPC's last access to the allocation is one atomic OR that says it is
//!   done; the drop's is one atomic OR that says the sleep is gone; whichever
//!   comes second frees the memory (possibly the DPC itself, as the last
//!   thing it does).
//!
//! A DPC is driver code: a DPC still queued when the driver unloads would run
//! code that is gone, and so would the DPC of a sleep that was leaked
//! (`mem::forget`) with its timer still set — a leak the driver must not
//! unload over. [`Executor::shutdown`](crate::task::Executor::shutdown)
//! calls `KeFlushQueuedDpcs` for that; a driver using timers without an
//! executor calls [`flush_dpcs`] in `DriverUnload` after dropping its sleeps.
//!
//! Under Wine, `KeSetTimer` runs the DPC from a thread-pool timer callback,
//! and `KeCancelTimer` waits for that callback and returns `TRUE` for any
//! timer it did not cancel before (`dlls/ntoskrnl.exe/sync.c`); both cases
//! above remain safe.

use core::cell::UnsafeCell;
use core::future::{Future, IntoFuture};
use core::mem::{MaybeUninit, offset_of};
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::AcqRel;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use wsk_sys as sys;

use crate::irql::Passive;
use crate::task::waker_slot;
use crate::{Error, Result};

/// The DPC ran: the sleep elapsed.
const FIRED: usize = 1 << 0;
/// `waker` holds the owner's waker ([`waker_slot`]).
const WAKER: usize = 1 << 1;
/// The DPC no longer touches the block.
const DPC_DONE: usize = 1 << 2;
/// The `Sleep` is gone: whoever comes second frees the block.
const RELEASED: usize = 1 << 3;

/// The allocation behind a set timer.
///
/// # Invariants
///
/// `timer` and `dpc` are initialised, the timer set with the DPC, whose
/// context is the block. The block is freed once, by the `Sleep`'s drop if
/// `KeCancelTimer` returned `TRUE` or the DPC had set `DPC_DONE`, else by the
/// DPC once `RELEASED` is set.
#[repr(C)]
struct TimerBlock {
    timer: UnsafeCell<MaybeUninit<sys::KTIMER>>,
    dpc: UnsafeCell<MaybeUninit<sys::KDPC>>,
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

impl TimerBlock {
    /// Allocates a block and sets its timer to expire after `duration` plus
    /// one clock tick; `None` if memory runs out.
    #[allow(
        clippy::cast_ptr_alignment,
        reason = "`alloc` returns memory aligned for the layout it is given"
    )]
    fn start(duration: Duration) -> Option<NonNull<Self>> {
        let layout = core::alloc::Layout::new::<Self>();
        // SAFETY: the layout has a non-zero size.
        let block = NonNull::new(unsafe { alloc::alloc::alloc(layout) }.cast::<Self>())?;
        // SAFETY: fresh memory with the block's layout.
        unsafe {
            block.write(Self {
                timer: UnsafeCell::new(MaybeUninit::uninit()),
                dpc: UnsafeCell::new(MaybeUninit::uninit()),
                state: AtomicUsize::new(0),
                waker: UnsafeCell::new(None),
            });
        }
        let timer = Self::timer(block);
        // SAFETY: KTIMER storage in the (non-paged) block.
        unsafe { sys::KeInitializeTimer(timer) };
        // SAFETY: KDPC storage in the block, which outlives every run of the
        // DPC (invariants); the context is the block.
        unsafe {
            sys::KeInitializeDpc(Self::dpc(block), Some(timer_expired), block.as_ptr().cast());
        }
        // SAFETY: no preconditions.
        let tick = i64::from(unsafe { sys::KeQueryTimeIncrement() });
        let due = crate::time::relative_timeout(duration).saturating_sub(tick);
        // SAFETY: both initialised above; relative due time; the DPC's memory
        // outlives the timer (invariants).
        unsafe { sys::KeSetTimer(timer, due, Self::dpc(block)) };
        Some(block)
    }

    /// The block's `KTIMER` (computed, not read).
    fn timer(block: NonNull<Self>) -> *mut sys::KTIMER {
        let field = block.as_ptr().wrapping_byte_add(offset_of!(Self, timer));
        UnsafeCell::raw_get(field.cast::<UnsafeCell<MaybeUninit<sys::KTIMER>>>()).cast()
    }

    /// The block's `KDPC` (computed, not read).
    fn dpc(block: NonNull<Self>) -> *mut sys::KDPC {
        let field = block.as_ptr().wrapping_byte_add(offset_of!(Self, dpc));
        UnsafeCell::raw_get(field.cast::<UnsafeCell<MaybeUninit<sys::KDPC>>>()).cast()
    }

    /// Frees the block and the waker left in it.
    ///
    /// # Safety
    ///
    /// Neither the kernel nor anyone else touches the block any more.
    unsafe fn free(block: NonNull<Self>) {
        // SAFETY: allocated with the block's layout (as a Box is); unshared.
        drop(unsafe { alloc::boxed::Box::from_raw(block.as_ptr()) });
    }
}

/// The `CustomTimerDpc` of every sleep: marks it elapsed, wakes the owner,
/// and frees the block if the owner is gone.
///
/// # Safety
///
/// Called by the kernel at `DISPATCH_LEVEL` for a `TimerBlock`'s DPC, with
/// the block as context.
unsafe extern "system" fn timer_expired(
    _dpc: *mut sys::KDPC,
    context: sys::PVOID,
    _argument1: sys::PVOID,
    _argument2: sys::PVOID,
) {
    // SAFETY: the context is the block's non-null address (set in `start`).
    let block = unsafe { NonNull::new_unchecked(context.cast::<TimerBlock>()) };
    // SAFETY: the block lives until DPC_DONE is set (invariants); the
    // references below end before that.
    let live = unsafe { block.as_ref() };
    let previous = live.state.fetch_or(FIRED, AcqRel);
    // SAFETY: FIRED was just set, once.
    let waker = unsafe { waker_slot::take(&live.waker, previous, WAKER) };
    let previous = live.state.fetch_or(DPC_DONE, AcqRel);
    if previous & RELEASED != 0 {
        // SAFETY: the owner is gone and this DPC is done with the block.
        unsafe { TimerBlock::free(block) };
    }
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// What a [`Sleep`] is.
enum SleepState {
    /// A set timer.
    Armed(NonNull<TimerBlock>),
    /// A zero duration: elapsed without a timer.
    Elapsed,
    /// The timer could not be allocated.
    Failed(Error),
}

/// A future that resolves once a duration has passed; see [`sleep`].
///
/// Dropping it before it elapsed cancels the timer.
#[must_use = "futures do nothing unless polled; dropping a Sleep cancels its timer"]
pub struct Sleep {
    state: SleepState,
}

// SAFETY: the block is only touched through its atomic state, the waker slot
// protocol, and kernel routines callable from any thread.
unsafe impl Send for Sleep {}
// SAFETY: `&Sleep` gives access to nothing.
unsafe impl Sync for Sleep {}

/// Waits for at least `duration` (see the [module docs](self) for the
/// accuracy), on a kernel timer whose DPC wakes the task.
///
/// The timer starts now, not at the first poll. A zero duration resolves at
/// the first poll without a timer.
///
/// ```
/// # let _sim = wsk_sim::Sim::start();
/// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// use core::time::Duration;
///
/// wsk::block_on(&passive, wsk::timer::sleep(Duration::from_millis(2)))?;
/// # Ok::<(), wsk::Error>(())
/// ```
///
/// # IRQL
///
/// ≤ `DISPATCH_LEVEL` (creating, polling and dropping it).
///
/// # Errors
///
/// The future resolves to [`Error::INSUFFICIENT_RESOURCES`] if the timer
/// could not be allocated.
pub fn sleep(duration: Duration) -> Sleep {
    let state = if duration.is_zero() {
        SleepState::Elapsed
    } else {
        match TimerBlock::start(duration) {
            Some(block) => SleepState::Armed(block),
            None => SleepState::Failed(Error::INSUFFICIENT_RESOURCES),
        }
    };
    Sleep { state }
}

impl Sleep {
    /// Whether the timer has expired (the future is ready).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_elapsed(&self) -> bool {
        match self.state {
            SleepState::Armed(block) => {
                // SAFETY: the block lives while the Sleep does (invariants).
                let state = unsafe { block.as_ref() }
                    .state
                    .load(core::sync::atomic::Ordering::Acquire);
                state & FIRED != 0
            }
            SleepState::Elapsed => true,
            SleepState::Failed(_) => false,
        }
    }
}

impl Future for Sleep {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.state {
            SleepState::Armed(block) => {
                // SAFETY: the block lives while the Sleep does (invariants).
                let live = unsafe { block.as_ref() };
                // SAFETY: the Sleep is the slot's only owner.
                let fired = unsafe {
                    waker_slot::register(&live.state, &live.waker, WAKER, FIRED, cx.waker())
                };
                if fired {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }
            SleepState::Elapsed => Poll::Ready(Ok(())),
            SleepState::Failed(error) => Poll::Ready(Err(error)),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let SleepState::Armed(block) = self.state else {
            return;
        };
        // SAFETY: an initialised timer (invariants); <= DISPATCH_LEVEL.
        if unsafe { sys::KeCancelTimer(TimerBlock::timer(block)) } != sys::FALSE {
            // Still queued: removed, so its DPC will not run.
            // SAFETY: nothing else touches the block.
            unsafe { TimerBlock::free(block) };
            return;
        }
        // SAFETY: the block lives until this OR hands it over (invariants).
        let previous = unsafe { block.as_ref() }.state.fetch_or(RELEASED, AcqRel);
        if previous & DPC_DONE != 0 {
            // SAFETY: the DPC is done with the block and the owner lets go.
            unsafe { TimerBlock::free(block) };
        }
    }
}

impl core::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sleep")
            .field("elapsed", &self.is_elapsed())
            .finish()
    }
}

/// Runs `future` for at most `duration`: resolves to its output, or to
/// [`Error::IO_TIMEOUT`] once the time has passed, dropping the future (which
/// cancels the requests it waits on).
///
/// ```
/// # let _sim = wsk_sim::Sim::start();
/// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// use core::future::pending;
/// use core::time::Duration;
///
/// let never = wsk::timer::timeout(Duration::from_millis(2), pending::<()>());
/// assert_eq!(wsk::block_on(&passive, never), Err(wsk::Error::IO_TIMEOUT));
/// let quick = wsk::timer::timeout(Duration::from_secs(5), async { 7 });
/// assert_eq!(wsk::block_on(&passive, quick), Ok(7));
/// ```
///
/// # IRQL
///
/// ≤ `DISPATCH_LEVEL` (creating, polling and dropping it).
///
/// # Errors
///
/// [`Error::IO_TIMEOUT`] when the time is up first;
/// [`Error::INSUFFICIENT_RESOURCES`] if the timer could not be allocated
/// (after polling `future` once).
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        future: future.into_future(),
        sleep: sleep(duration),
    }
}

/// The future of [`timeout`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F> Timeout<F> {
    /// The wrapped future.
    ///
    /// # IRQL
    ///
    /// Any.
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned (never moved out while
        // pinned: `into_inner` takes `self` by value, which requires Unpin
        // or an unpinned Timeout); `sleep` is Unpin.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(Error::IO_TIMEOUT)),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Waits until every DPC already queued on any processor has run
/// (`KeFlushQueuedDpcs`): after the last [`Sleep`] is dropped, a driver
/// calls it in `DriverUnload` so that no timer DPC runs after its code is
/// gone. [`Executor::shutdown`](crate::task::Executor::shutdown) does it.
///
/// # IRQL
///
/// `PASSIVE_LEVEL` (proven by `passive`). Slow: not for hot paths.
pub fn flush_dpcs(passive: &Passive<'_>) {
    crate::task::sys::flush_queued_dpcs(passive);
}
