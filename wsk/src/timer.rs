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
//! requires (a DPC already running runs to completion, and the driver must
//! not free what it uses before then). Three parties may touch a block: its
//! [`Sleep`] (the owner), its DPC, and [`wsk::shutdown`](crate::shutdown).
//!
//! Every set timer is also linked into one registry of armed timers (an
//! intrusive list under a spin lock, no allocation beyond the block), so
//! that `DriverUnload` can cancel the timers of sleeps that were leaked
//! (`mem::forget`) or are still alive: "Drivers must cancel any active
//! timers in their Unload routines"
//! ([`KeSetTimer`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer)).
//! The block is linked and its timer set under the lock; the owner's drop
//! unlinks it and cancels its timer under the lock, first; and
//! `wsk::shutdown` touches a block only under the lock while it is linked.
//! The DPC never takes the lock: it frees the block only once the owner
//! has let go (`RELEASED`), which is after the owner unlinked it. So a block
//! is never freed while the registry can reach it, and:
//!
//! - Dropping a sleep that has not expired cancels the timer; if
//!   `KeCancelTimer` returns `TRUE` the timer was still queued, its DPC will
//!   not run, and the memory is freed at once.
//! - Otherwise the timer expired and its DPC is queued, running or done (or
//!   `wsk::shutdown` cancelled it, and acts as the DPC that will never run).
//!   The DPC's last access to the allocation is one atomic OR that sets
//!   `DPC_DONE`; the drop's is one atomic OR that sets `RELEASED`; whichever
//!   comes second frees the memory (possibly the DPC itself, as the last
//!   thing it does).
//! - `wsk::shutdown` unlinks each block it finds and calls `KeCancelTimer`
//!   under the lock. `TRUE` with `FIRED` clear: the DPC will never run; it
//!   sets `FIRED`, `CANCELLED` and `DPC_DONE` in one OR and takes the
//!   waker, as the DPC would have (exactly one of the two ever sets
//!   `FIRED`), so the owner's later drop — which then gets `FALSE` from
//!   `KeCancelTimer` — frees the block. `FALSE`: the timer expired and its
//!   DPC is queued, running or done; `wsk::shutdown` leaves the block alone
//!   and waits for the DPC with `KeFlushQueuedDpcs`.
//!
//! A sleep whose timer `wsk::shutdown` cancelled resolves to
//! [`Error::CANCELLED`] (and a [`Timeout`] around it to the same error,
//! dropping its future): teardown ends every wait, and a sleep that ended
//! before its time must not look like one that lasted it. Sleeps created
//! afterwards arm normally, so a task that sleeps in a loop waits again
//! rather than spins (and ends when its executor is shut down). Dropping
//! it later is safe and frees the block. A sleep leaked with `mem::forget`
//! keeps its (small) block forever; its timer no longer runs anything.
//!
//! Under Wine, `KeSetTimer` runs the DPC from a thread-pool timer callback,
//! and `KeCancelTimer` waits for that callback and returns `TRUE` for any
//! timer it did not cancel before (`dlls/ntoskrnl.exe/sync.c`); both cases
//! above remain safe: the DPC is then finished, and `wsk::shutdown` leaves a
//! block whose DPC set `FIRED` alone. That wait is also why the DPC takes no
//! lock: `KeCancelTimer` is called with the registry's lock held.

use core::cell::UnsafeCell;
use core::future::{Future, IntoFuture};
use core::mem::{MaybeUninit, offset_of};
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::{AcqRel, Acquire};
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use wsk_sys as sys;

use crate::task::sys::RawSpinLock;
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
/// `wsk::shutdown` cancelled the timer (set with `FIRED`): the sleep ended
/// early.
const CANCELLED: usize = 1 << 4;

/// The registry's links of a block, guarded by [`ARMED`]'s lock.
struct Links {
    prev: *mut TimerBlock,
    next: *mut TimerBlock,
    /// In the registry.
    linked: bool,
}

/// The registry of armed timers: every block whose timer was set and
/// whose owner has not dropped it (its timer may have expired since).
///
/// # Invariants
///
/// `head` starts (and `tail` ends) a doubly-linked list of `len` live
/// blocks through their [`Links`], newest first, each with `linked` set; a
/// block is unlinked before it is freed.
struct Armed {
    head: *mut TimerBlock,
    tail: *mut TimerBlock,
    len: usize,
}

// SAFETY: the blocks it links are reached only under the lock, from any
// thread (they are non-paged and touched through kernel routines, atomics
// and the lock).
unsafe impl Send for Armed {}

static ARMED: RawSpinLock<Armed> = RawSpinLock::new(Armed {
    head: core::ptr::null_mut(),
    tail: core::ptr::null_mut(),
    len: 0,
});

impl Armed {
    /// Links `block` first.
    ///
    /// # Safety
    ///
    /// `block` is live and not linked; the caller holds the lock (`&mut self`).
    unsafe fn link(&mut self, block: NonNull<TimerBlock>) {
        let links = TimerBlock::links(block);
        // SAFETY: a live block; its links are guarded by the lock we hold.
        unsafe {
            *links = Links {
                prev: core::ptr::null_mut(),
                next: self.head,
                linked: true,
            };
        }
        match NonNull::new(self.head) {
            // SAFETY: linked, hence live (invariants); under the lock.
            Some(head) => unsafe { (*TimerBlock::links(head)).prev = block.as_ptr() },
            None => self.tail = block.as_ptr(),
        }
        self.head = block.as_ptr();
        self.len += 1;
    }

    /// Unlinks `block` if it is linked; whether it was.
    ///
    /// # Safety
    ///
    /// `block` is live; the caller holds the lock.
    unsafe fn unlink(&mut self, block: NonNull<TimerBlock>) -> bool {
        let links = TimerBlock::links(block);
        // SAFETY: a live block; under the lock.
        let Links { prev, next, linked } = unsafe { links.read() };
        if !linked {
            return false;
        }
        match NonNull::new(prev) {
            // SAFETY: its neighbours are linked, hence live; under the lock.
            Some(prev) => unsafe { (*TimerBlock::links(prev)).next = next },
            None => self.head = next,
        }
        match NonNull::new(next) {
            // SAFETY: as above.
            Some(next) => unsafe { (*TimerBlock::links(next)).prev = prev },
            None => self.tail = prev,
        }
        // SAFETY: as above.
        unsafe { (*links).linked = false };
        self.len -= 1;
        true
    }

    /// Unlinks and returns the oldest block: blocks linked meanwhile (by
    /// wakers [`cancel_all`] runs) come after every block linked before.
    fn pop_oldest(&mut self) -> Option<NonNull<TimerBlock>> {
        let block = NonNull::new(self.tail)?;
        // SAFETY: linked, hence live (invariants); under the lock.
        unsafe { self.unlink(block) };
        Some(block)
    }
}

/// The allocation behind a set timer.
///
/// # Invariants
///
/// `timer` and `dpc` are initialised, the timer set with the DPC, whose
/// context is the block. `DPC_DONE` is set once, by the DPC or by
/// [`cancel_all`] when its `KeCancelTimer` returned `TRUE` before the DPC
/// ran (then it never runs). The owner unlinks the block from [`ARMED`]
/// before it sets `RELEASED` or frees it, and the block is
/// freed once, by the `Sleep`'s drop if its `KeCancelTimer` returned `TRUE`
/// or `DPC_DONE` was set, else by the DPC once `RELEASED` is set.
#[repr(C)]
struct TimerBlock {
    timer: UnsafeCell<MaybeUninit<sys::KTIMER>>,
    dpc: UnsafeCell<MaybeUninit<sys::KDPC>>,
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
    links: UnsafeCell<Links>,
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
                links: UnsafeCell::new(Links {
                    prev: core::ptr::null_mut(),
                    next: core::ptr::null_mut(),
                    linked: false,
                }),
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
        // Linked and set in one step: `wsk::shutdown` finds every set timer.
        ARMED.with(|armed| {
            // SAFETY: a live block, not linked yet; under the lock.
            unsafe { armed.link(block) };
            // SAFETY: both initialised above; relative due time; the DPC's
            // memory outlives the timer (invariants); DISPATCH_LEVEL is fine.
            unsafe { sys::KeSetTimer(timer, due, Self::dpc(block)) };
        });
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

    /// The block's registry links (computed, not read).
    fn links(block: NonNull<Self>) -> *mut Links {
        let field = block.as_ptr().wrapping_byte_add(offset_of!(Self, links));
        UnsafeCell::raw_get(field.cast::<UnsafeCell<Links>>())
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
// protocol, the registry's lock, and kernel routines callable from any thread.
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
/// could not be allocated, and to [`Error::CANCELLED`] if
/// [`wsk::shutdown`](crate::shutdown) cancelled it (see the
/// [module docs](self)).
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
    /// Whether the timer has expired (the future is ready with `Ok`).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_elapsed(&self) -> bool {
        match self.state {
            SleepState::Armed(block) => {
                // SAFETY: the block lives while the Sleep does (invariants).
                let state = unsafe { block.as_ref() }.state.load(Acquire);
                state & (FIRED | CANCELLED) == FIRED
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
                if !fired {
                    Poll::Pending
                } else if live.state.load(Acquire) & CANCELLED != 0 {
                    Poll::Ready(Err(Error::CANCELLED))
                } else {
                    Poll::Ready(Ok(()))
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
        // Unlinked and cancelled in one step: once `wsk::shutdown` has
        // walked the registry, no timer of a sleep is set any more, even one
        // being dropped meanwhile.
        let cancelled = ARMED.with(|armed| {
            // SAFETY: the block lives while the Sleep does; under the lock.
            unsafe { armed.unlink(block) };
            // SAFETY: an initialised timer (invariants); DISPATCH_LEVEL.
            unsafe { sys::KeCancelTimer(TimerBlock::timer(block)) != sys::FALSE }
        });
        if cancelled {
            // Still queued: removed, so its DPC will not run.
            // SAFETY: nothing else touches the block (unlinked, no DPC).
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
/// (after polling `future` once); [`Error::CANCELLED`] if
/// [`wsk::shutdown`](crate::shutdown) cancelled the timer (the future is
/// dropped as on a time-out).
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

/// Cancels the timer of every sleep armed when it starts — leaked or alive
/// — as `DriverUnload` must ([`KeSetTimer`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer)),
/// wakes their owners (the sleeps resolve to [`Error::CANCELLED`]) and
/// returns how many it cancelled. Timers that had already expired are left
/// to their DPCs, which the caller flushes (`KeFlushQueuedDpcs`) afterwards.
///
/// A woken owner may set a new timer at once, on this thread: the walk
/// takes at most as many blocks as were linked when it started, oldest
/// first, so it ends however often that happens (the caller checks
/// [`armed`] and walks again a bounded number of times).
///
/// IRQL: ≤ `DISPATCH_LEVEL`.
pub(crate) fn cancel_all() -> usize {
    let mut cancelled = 0;
    let mut left = ARMED.with(|armed| armed.len);
    while left > 0 {
        left -= 1;
        let found = ARMED.with(|armed| {
            let block = armed.pop_oldest()?;
            // SAFETY: it was linked, hence live (its owner's drop unlinks it
            // under this lock before letting go, and the DPC frees it only
            // after that); an initialised timer; DISPATCH_LEVEL is fine.
            if unsafe { sys::KeCancelTimer(TimerBlock::timer(block)) } == sys::FALSE {
                // Expired: its DPC is queued, running or done.
                return Some(None);
            }
            // SAFETY: as above.
            let live = unsafe { block.as_ref() };
            if live.state.load(Acquire) & FIRED != 0 {
                // Wine's `TRUE` for an expired timer, after its DPC finished
                // (module docs): nothing to do.
                return Some(None);
            }
            // The DPC will never run: this is its part, done once. Nobody
            // else sets FIRED now; the owner may flip WAKER meanwhile.
            let previous = live.state.fetch_or(FIRED | CANCELLED | DPC_DONE, AcqRel);
            // SAFETY: FIRED was just set, once (the DPC never will).
            Some(Some(unsafe {
                waker_slot::take(&live.waker, previous, WAKER)
            }))
        });
        match found {
            None => break,
            Some(None) => {}
            Some(Some(waker)) => {
                cancelled += 1;
                // Outside the lock: a waker runs foreign code.
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }
    cancelled
}

/// How many timers are still armed (set after [`cancel_all`] ran).
///
/// IRQL: ≤ `DISPATCH_LEVEL`.
pub(crate) fn armed() -> usize {
    ARMED.with(|armed| armed.len)
}
