//! The task core: one allocation per task (a [`Header`] followed by one
//! slot for the future, then its output), an atomic state word, reference
//! counts, the run queues, the list of live tasks, and the waker.
//!
//! # State
//!
//! One `AtomicUsize` per task: six flag bits and a reference count above
//! them. Every transition is an atomic read-modify-write, and every decision
//! is taken on a value such an operation returned, or on a bit that is never
//! cleared (`COMPLETE`, `CANCELLED`): a plain load may show a `NOTIFIED` or
//! `RUNNING` that another processor has already cleared.
//!
//! | bit | meaning |
//! |---|---|
//! | `RUNNING` | one thread has exclusive access to the future (polling it, or dropping it to cancel) |
//! | `NOTIFIED` | a wake is pending: the task is in a run queue, or goes back to one when the current poll ends |
//! | `COMPLETE` | the future is gone; the stage holds the output or nothing; set once |
//! | `CANCELLED` | abort or shutdown asked for the future to be dropped instead of polled |
//! | `JOIN_INTEREST` | the `JoinHandle` is alive and will read the output |
//! | `JOIN_WAKER` | the `JoinHandle`'s waker is registered ([`super::waker_slot`]) |
//!
//! A wake sets `NOTIFIED` (one `fetch_or`). If the task was idle (neither
//! running nor notified nor complete) the waker adds a reference for the
//! queue and pushes the header; if it is running, the worker pushes it again when the poll
//! returns `Pending`; otherwise nothing happens. A wake never allocates,
//! never polls, and takes the queue's spin lock only around the push, so it
//! is legal from completion routines, event callbacks and DPCs, on any
//! processor, at any IRQL ≤ `DISPATCH_LEVEL`.
//!
//! # References
//!
//! The task's memory lives while any reference does: the list of live
//! tasks', the run queue's (while queued), the `JoinHandle`'s, each
//! `Waker`'s, and the one a thread holds while it runs or cancels the task.
//! The last one frees it, at whatever IRQL that happens — in an IRP
//! completion routine, if a request's task waker is the last reference; by
//! then the future has always been dropped, at `PASSIVE_LEVEL`, by a worker
//! or by shutdown, the output was read or dropped by the `JoinHandle`
//! (which holds a reference until then) or by the completer, and the
//! `JoinHandle`'s waker was taken by the completer or by the `JoinHandle`
//! itself ([`super::waker_slot`]), so freeing only releases memory and a
//! reference to the executor's shared state (queues, lock, event): no
//! driver type is dropped and no WSK call made. A waker therefore stays
//! harmless after the task completed and after the executor shut down: it
//! keeps the header and the executor's shared state alive, and its wake
//! finds `COMPLETE` and does nothing.
//!
//! # Who touches what
//!
//! - The future/output slot and its tag (`stage`): the spawner until the
//!   task is started, then the holder of `RUNNING` before
//!   `COMPLETE`; after `COMPLETE`, the `JoinHandle` if `JOIN_INTEREST` was
//!   set when `COMPLETE` was, else the completer.
//! - `queue_next`: the run queue the task is in, under its lock.
//! - `owned`: the live-task list, under its lock.
//! - `join_waker`: [`super::waker_slot`]'s protocol on `JOIN_WAKER`/`COMPLETE`.
//! - Functions take `NonNull<Header>`, never `&Header` as an argument: a
//!   task may be freed by another thread as soon as the caller's reference
//!   is handed over, and a reference argument would outlive that.

use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::future::Future;
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, offset_of};
use core::pin::Pin;
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::queue::{Linked, RunQueue};
use super::sys::{Event, RawSpinLock};
use super::waker_slot;
use crate::error::Error;
use crate::irql::Passive;

pub(super) const RUNNING: usize = 1 << 0;
pub(super) const NOTIFIED: usize = 1 << 1;
pub(super) const COMPLETE: usize = 1 << 2;
pub(super) const CANCELLED: usize = 1 << 3;
pub(super) const JOIN_INTEREST: usize = 1 << 4;
pub(super) const JOIN_WAKER: usize = 1 << 5;
const REF_ONE: usize = 1 << 6;
const REF_MASK: usize = !(REF_ONE - 1);

/// Polls a task may make on leaf futures before [`consume_budget`] makes it
/// yield (see [`super::consume_budget`]).
pub(super) const BUDGET: u32 = 128;

/// How a task's type-specific parts are reached from its header.
pub(super) struct Vtable {
    /// Polls the future (or calls the blocking closure) once; returns whether
    /// the stage now holds the output.
    run: unsafe fn(NonNull<Header>) -> bool,
    /// Drops whatever the stage holds (the future, the closure or the
    /// output), leaving it empty.
    drop_stage: unsafe fn(NonNull<Header>),
    /// Moves the output into `*out` (an `Option<T>`) if the stage holds it,
    /// leaving the stage empty.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Frees the allocation.
    dealloc: unsafe fn(NonNull<Header>),
}

/// Links of the live-task list.
struct OwnedLinks {
    prev: Option<NonNull<Header>>,
    next: Option<NonNull<Header>>,
    linked: bool,
}

/// The type-independent first part of every task.
///
/// # Invariants
///
/// See the module docs: `state` follows the table, the stage is reached
/// only by its current owner, `queue_next` and `owned` only under their
/// locks, `join_waker` only through [`waker_slot`].
#[repr(C)]
pub(super) struct Header {
    state: AtomicUsize,
    vtable: &'static Vtable,
    shared: Arc<Shared>,
    /// Whether the task runs a blocking closure (on the blocking queue)
    /// rather than a future.
    blocking: bool,
    /// What the task's [`Slot`] holds.
    stage: UnsafeCell<Stage>,
    queue_next: UnsafeCell<Option<NonNull<Header>>>,
    owned: UnsafeCell<OwnedLinks>,
    budget: AtomicU32,
    join_waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: `queue_next` is the link field, owned by the queue the header is in.
unsafe impl Linked for Header {
    fn next(item: NonNull<Self>) -> *mut Option<NonNull<Self>> {
        let field = item
            .as_ptr()
            .wrapping_byte_add(offset_of!(Header, queue_next));
        UnsafeCell::raw_get(field.cast())
    }
}

/// The address of a task's live-list links (computed, not read).
fn owned_links(task: NonNull<Header>) -> *mut OwnedLinks {
    let field = task.as_ptr().wrapping_byte_add(offset_of!(Header, owned));
    UnsafeCell::raw_get(field.cast())
}

/// The address of a task's stage tag (computed, not read).
fn stage(task: NonNull<Header>) -> *mut Stage {
    let field = task.as_ptr().wrapping_byte_add(offset_of!(Header, stage));
    UnsafeCell::raw_get(field.cast())
}

/// The address of the future or closure of a task that is a `Cell<P, T>`
/// (computed, not read; valid while the stage is [`Stage::Pending`]).
pub(super) fn pending<P, T>(task: NonNull<Header>) -> *mut P {
    slot::<P, T>(task).cast()
}

/// The address of the output of a task that is a `Cell<P, T>` (computed, not
/// read; valid while the stage is [`Stage::Finished`]).
fn finished<P, T>(task: NonNull<Header>) -> *mut T {
    slot::<P, T>(task).cast()
}

fn slot<P, T>(task: NonNull<Header>) -> *mut Slot<P, T> {
    let field = task
        .as_ptr()
        .wrapping_byte_add(offset_of!(Cell<P, T>, slot));
    UnsafeCell::raw_get(field.cast())
}

/// What a task's [`Slot`] holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// The future or closure, not finished.
    Pending,
    /// The output, not read yet.
    Finished,
    /// Nothing (not written yet, read, dropped or cancelled).
    Consumed,
}

/// The future or closure, then its output, as the header's [`Stage`] says.
///
/// A union with a separate tag rather than an enum, so that each is written,
/// polled, read and dropped in place. Unoptimised code (`opt-level = 0`,
/// the dev profile) builds every enum value whole in a temporary of the
/// enum's size — the size of the future — before moving it, so writing
/// `Finished(output)` or `Consumed` over a large future would cost a stack
/// frame of the future's size on the worker, and a frame over a page makes
/// the compiler call `__chkstk` (see `Executor::spawn`).
///
/// Both fields start at offset 0 (`repr(C)`), so [`pending`] and
/// [`finished`] are casts of the union's address.
#[repr(C)]
union Slot<P, T> {
    pending: ManuallyDrop<P>,
    finished: ManuallyDrop<T>,
}

/// The whole allocation of a task running `P` to produce `T`.
#[repr(C)]
struct Cell<P, T> {
    header: Header,
    slot: UnsafeCell<Slot<P, T>>,
}

/// A borrowed view of a live header.
///
/// # Safety
///
/// The caller holds a reference to the task for as long as it uses the
/// result (which must not be passed as a function argument across a hand-off
/// of that reference).
unsafe fn header<'a>(task: NonNull<Header>) -> &'a Header {
    // SAFETY: live (caller contract).
    unsafe { task.as_ref() }
}

impl Header {
    /// The current state, for reads outside a transition.
    pub(super) fn load(task: NonNull<Self>) -> usize {
        // SAFETY: callers hold a reference.
        unsafe { header(task) }.state.load(Acquire)
    }

    /// Adds a reference.
    fn ref_inc(task: NonNull<Self>) {
        // SAFETY: the caller holds a reference, so the task is live.
        unsafe { header(task) }.state.fetch_add(REF_ONE, Relaxed);
    }

    /// Drops one reference, freeing the task if it was the last.
    ///
    /// # Safety
    ///
    /// The caller owns the reference and does not use `task` afterwards.
    pub(super) unsafe fn ref_dec(task: NonNull<Self>) {
        // SAFETY: live until this decrement (caller's reference).
        let previous = unsafe { header(task) }.state.fetch_sub(REF_ONE, AcqRel);
        debug_assert!(
            previous & REF_MASK >= REF_ONE,
            "wsk: task reference underflow"
        );
        if previous & REF_MASK == REF_ONE {
            // SAFETY: that was the last reference: the task is this thread's.
            let dealloc = unsafe { header(task) }.vtable.dealloc;
            // SAFETY: unshared, so its vtable may free it.
            unsafe { dealloc(task) };
        }
    }

    /// The executor the task belongs to.
    fn shared<'a>(task: NonNull<Self>) -> &'a Arc<Shared> {
        // SAFETY: callers hold a reference; `shared` never changes.
        &unsafe { header(task) }.shared
    }
}

// ---------------------------------------------------------------------------
// The executor's shared state

/// The live-task list and the executor's open/closed state.
struct Owned {
    head: Option<NonNull<Header>>,
    /// Tasks spawned and not complete (linked or not).
    live: usize,
    closed: bool,
}

// SAFETY: the pointers are task headers, shared across threads by design and
// only followed under the lock.
unsafe impl Send for Owned {}

/// What every task, waker and worker of one executor shares.
pub(super) struct Shared {
    /// Ready futures, run by the workers.
    pub(super) tasks: RunQueue<Header>,
    /// Blocking closures, run by the blocking threads.
    pub(super) blocking: RunQueue<Header>,
    owned: RawSpinLock<Owned>,
    /// Set (with the live-task list closed) once no live task is left.
    all_done: Event,
    /// No new tasks; tasks not started yet are dropped instead of run.
    closed: AtomicBool,
    /// [`wsk::shutdown`](crate::shutdown) took the executor's thread set
    /// out of the registry of listed executors (`executor::LISTED`), so
    /// the executor must not touch it again. Read and written only under
    /// that registry's lock, which orders it.
    pub(super) taken_at_teardown: AtomicBool,
}

impl Shared {
    /// The shared state of a new executor, with its kernel objects
    /// initialised.
    ///
    /// IRQL: `PASSIVE_LEVEL` (proven by `passive`).
    pub(super) fn new(passive: &Passive<'_>) -> Arc<Self> {
        let _ = passive;
        let shared = Arc::new(Self {
            tasks: RunQueue::new(),
            blocking: RunQueue::new(),
            owned: RawSpinLock::new(Owned {
                head: None,
                live: 0,
                closed: false,
            }),
            all_done: Event::uninit(),
            closed: AtomicBool::new(false),
            taken_at_teardown: AtomicBool::new(false),
        });
        // SAFETY: once, at the final (heap) address, at PASSIVE_LEVEL, before
        // the state is shared with any thread.
        unsafe { shared.tasks.init() };
        // SAFETY: as above.
        unsafe { shared.blocking.init() };
        // SAFETY: as above.
        unsafe { shared.all_done.init() };
        shared
    }

    /// Refuses new tasks from now on; tasks not started yet are dropped
    /// instead of run. Signals `all_done` if nothing is live.
    ///
    /// IRQL: ≤ `DISPATCH_LEVEL`.
    pub(super) fn close(&self) {
        self.closed.store(true, Relaxed);
        let done = self.owned.with(|owned| {
            owned.closed = true;
            owned.live == 0
        });
        if done {
            // SAFETY: initialised in `new`.
            unsafe { self.all_done.set() };
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// The event set once the executor is closed and no task is live.
    pub(super) fn all_done(&self) -> *mut core::ffi::c_void {
        self.all_done.raw().cast()
    }

    /// Cancels every live task: drops, on this thread, the future or closure
    /// of every task no thread is running, and marks the running ones so
    /// that their thread drops them when the current poll returns.
    ///
    /// IRQL: `PASSIVE_LEVEL` (proven by `passive`): futures are dropped here.
    pub(super) fn cancel_all(&self, passive: &Passive<'_>) {
        let _ = passive;
        loop {
            // Unlinking hands the list's reference to this thread.
            let Some(task) = self.owned.with(|owned| {
                let task = owned.head?;
                // SAFETY: a live task of the list (it holds a reference).
                unsafe { unlink(owned, task) };
                Some(task)
            }) else {
                return;
            };
            // SAFETY: this thread holds the list's reference.
            let state = &unsafe { header(task) }.state;
            let claimed = state
                .fetch_update(AcqRel, Acquire, |s| {
                    if s & COMPLETE != 0 {
                        None
                    } else if s & RUNNING != 0 {
                        Some(s | CANCELLED)
                    } else {
                        Some(s | RUNNING | CANCELLED)
                    }
                })
                .is_ok_and(|s| s & RUNNING == 0);
            if claimed {
                // SAFETY: this thread set RUNNING, so it owns the stage.
                unsafe { cancel_in_place(task) };
            }
            // SAFETY: the list's reference, handed over above.
            unsafe { Header::ref_dec(task) };
        }
    }
}

/// Removes `task` from the live-task list.
///
/// # Safety
///
/// `task` is live and linked in `owned` (whose lock the caller holds).
unsafe fn unlink(owned: &mut Owned, task: NonNull<Header>) {
    // SAFETY: the list's links are ours under the lock (caller contract).
    let links = unsafe { &mut *owned_links(task) };
    match links.prev {
        // SAFETY: a live linked task; its links are ours under the lock.
        Some(prev) => unsafe { (*owned_links(prev)).next = links.next },
        None => owned.head = links.next,
    }
    if let Some(next) = links.next {
        // SAFETY: as above.
        unsafe { (*owned_links(next)).prev = links.prev };
    }
    *links = OwnedLinks {
        prev: None,
        next: None,
        linked: false,
    };
}

// ---------------------------------------------------------------------------
// Spawning

// The future (or closure) is moved by value only in the public spawn
// functions (`executor.rs`, `spawn_task!`), straight into the allocation
// these functions prepare: unoptimised code copies a by-value argument onto
// the caller's stack at every call, so each frame that passed the future on
// would hold one more copy of it.

/// Allocates a task for a `P` producing `T`, with its header written and its
/// stage empty: the caller writes the future or closure at [`pending`] and
/// then calls [`start`] (or [`unspawn`] if that fails). The task is not shared
/// yet.
///
/// IRQL: ≤ `DISPATCH_LEVEL`.
///
/// # Errors
///
/// [`Error::INSUFFICIENT_RESOURCES`] if the allocation fails.
pub(super) fn allocate<P, T>(
    shared: &Arc<Shared>,
    vtable: &'static Vtable,
    blocking: bool,
) -> Result<NonNull<Header>, Error> {
    let layout = core::alloc::Layout::new::<Cell<P, T>>();
    // SAFETY: the layout has a non-zero size (it holds a header).
    let cell = unsafe { alloc::alloc::alloc(layout) }.cast::<Cell<P, T>>();
    let task = NonNull::new(cell.cast::<Header>()).ok_or(Error::INSUFFICIENT_RESOURCES)?;
    // SAFETY: fresh memory with the cell's layout, whose header is first.
    unsafe {
        task.write(Header {
            // The list's, the queue's and the JoinHandle's references.
            state: AtomicUsize::new(NOTIFIED | JOIN_INTEREST | (3 * REF_ONE)),
            vtable,
            shared: Arc::clone(shared),
            blocking,
            stage: UnsafeCell::new(Stage::Consumed),
            queue_next: UnsafeCell::new(None),
            owned: UnsafeCell::new(OwnedLinks {
                prev: None,
                next: None,
                linked: false,
            }),
            budget: AtomicU32::new(BUDGET),
            join_waker: UnsafeCell::new(None),
        });
    }
    Ok(task)
}

/// Starts a task [`allocate`]d and given its future or closure: links it
/// into the live-task list and queues it, on the blocking queue if it is a
/// blocking task. On success the pointer carries the `JoinHandle`'s
/// reference.
///
/// IRQL: ≤ `DISPATCH_LEVEL`.
///
/// # Errors
///
/// `STATUS_DELETE_PENDING` if the executor is closed: the task is not
/// shared, and the caller takes its future or closure back with
/// [`unspawn`].
///
/// # Safety
///
/// `task` comes from [`allocate`], is not shared, and its future or closure
/// has been written at [`pending`].
pub(super) unsafe fn start(task: NonNull<Header>) -> Result<(), Error> {
    // SAFETY: not shared yet: the stage is this thread's.
    unsafe { *stage(task) = Stage::Pending };
    let shared = Header::shared(task);
    let linked = shared.owned.with(|owned| {
        if owned.closed {
            return false;
        }
        // SAFETY: the new task is not shared yet.
        unsafe {
            *owned_links(task) = OwnedLinks {
                prev: None,
                next: owned.head,
                linked: true,
            };
        }
        if let Some(head) = owned.head {
            // SAFETY: a live linked task, whose links are ours under the lock.
            unsafe { (*owned_links(head)).prev = Some(task) };
        }
        owned.head = Some(task);
        owned.live += 1;
        true
    });
    if !linked {
        return Err(super::SHUT_DOWN);
    }
    // SAFETY: the caller's reference (the task is live).
    let queue = if unsafe { header(task) }.blocking {
        &shared.blocking
    } else {
        &shared.tasks
    };
    // SAFETY: the task is live and in no queue; the queue takes the
    // reference counted for it in `allocate`.
    unsafe { queue.push(task) };
    Ok(())
}

/// Takes the future or closure back out of a task [`start`] refused, and
/// frees the task.
///
/// # Safety
///
/// `task` is a `Cell<P, T>` [`start`] refused (so never shared).
pub(super) unsafe fn unspawn<P, T>(task: NonNull<Header>) -> P {
    // SAFETY: never shared; `start` marked the stage pending after the
    // caller wrote the future there.
    let pending = unsafe { pending::<P, T>(task).read() };
    // SAFETY: never shared; the slot was just read out.
    unsafe { free::<P, T>(task) };
    pending
}

/// The vtable of tasks running the future `F`.
pub(super) fn future_vtable<F: Future>() -> &'static Vtable {
    &FutureTask::<F>::VTABLE
}

/// The vtable of blocking tasks running the closure `F`.
pub(super) fn blocking_vtable<F: FnOnce(&mut Passive<'_>) -> R, R>() -> &'static Vtable {
    &BlockingTask::<F, R>::VTABLE
}

// ---------------------------------------------------------------------------
// The per-type parts

/// The vtable of tasks running a future `F`.
struct FutureTask<F>(PhantomData<F>);

impl<F: Future> FutureTask<F> {
    const VTABLE: Vtable = Vtable {
        run: Self::poll,
        drop_stage: drop_stage::<F, F::Output>,
        take_output: take_output::<F, F::Output>,
        dealloc: dealloc::<F, F::Output>,
    };

    /// Polls the future once with the task's waker.
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING` and a reference; the stage holds the
    /// future.
    unsafe fn poll(task: NonNull<Header>) -> bool {
        // SAFETY: RUNNING gives this thread the stage (caller contract).
        let held = unsafe { *stage(task) };
        assert!(held == Stage::Pending, "a running task holds its future");
        // SAFETY: the slot holds the future; RUNNING makes this the only
        // reference to it.
        let future = unsafe { &mut *pending::<F, F::Output>(task) };
        // The caller's reference keeps the task alive during the poll, so the
        // waker handed to it borrows that reference; clones add their own.
        let raw = RawWaker::new(task.as_ptr().cast_const().cast(), &WAKER_VTABLE);
        // SAFETY: the vtable's contract holds (see its functions).
        let waker = core::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the future is never moved out of the task's allocation
        // while it is pending.
        let future = unsafe { Pin::new_unchecked(future) };
        let Poll::Ready(output) = future.poll(&mut cx) else {
            return false;
        };
        // SAFETY: RUNNING is still held; the poll is over.
        unsafe { Self::finish(task, output) };
        true
    }

    /// Replaces the future by its output, in place. Not inlined: the poll
    /// that returns `Pending`, the common case, keeps a smaller frame.
    ///
    /// # Safety
    ///
    /// The caller holds `RUNNING` and a reference; the stage holds the
    /// future, which is not borrowed any more.
    #[inline(never)]
    unsafe fn finish(task: NonNull<Header>, output: F::Output) {
        // SAFETY: RUNNING gives this thread the stage (caller contract).
        let stage = unsafe { &mut *stage(task) };
        *stage = Stage::Consumed;
        // Drops the future here, at PASSIVE_LEVEL, on the worker, in place.
        // SAFETY: the future was there (and is no longer marked so).
        unsafe { ptr::drop_in_place(pending::<F, F::Output>(task)) };
        // SAFETY: the slot is empty and sized for the output.
        unsafe { finished::<F, F::Output>(task).write(output) };
        *stage = Stage::Finished;
    }
}

/// The vtable of blocking tasks running a closure `F` that returns `R`.
struct BlockingTask<F, R>(PhantomData<(F, R)>);

impl<F: FnOnce(&mut Passive<'_>) -> R, R> BlockingTask<F, R> {
    const VTABLE: Vtable = Vtable {
        run: Self::call,
        drop_stage: drop_stage::<F, R>,
        take_output: take_output::<F, R>,
        dealloc: dealloc::<F, R>,
    };

    /// Calls the closure with a `Passive` token.
    ///
    /// # Safety
    ///
    /// As for [`FutureTask::poll`], and the caller is a blocking thread:
    /// blocking tasks are only ever pushed on the blocking queue, whose
    /// threads run at `PASSIVE_LEVEL`, outside any WSK callback, holding no
    /// lock, and may wait.
    unsafe fn call(task: NonNull<Header>) -> bool {
        // SAFETY: RUNNING gives this thread the stage (caller contract).
        let stage = unsafe { &mut *stage(task) };
        assert!(*stage == Stage::Pending, "a running task holds its closure");
        *stage = Stage::Consumed;
        // SAFETY: the closure was there, and is read out once (the stage now
        // says the slot is empty).
        let f = unsafe { pending::<F, R>(task).read() };
        // SAFETY: a blocking thread may wait (caller contract).
        let mut passive = unsafe { Passive::new_unchecked() };
        let output = f(&mut passive);
        // SAFETY: the slot is empty and sized for the output.
        unsafe { finished::<F, R>(task).write(output) };
        *stage = Stage::Finished;
        true
    }
}

/// Drops the stage's contents.
///
/// # Safety
///
/// `task` is a live `Cell<P, T>` whose stage the caller owns.
unsafe fn drop_stage<P, T>(task: NonNull<Header>) {
    // SAFETY: the caller owns the stage.
    let stage = unsafe { &mut *stage(task) };
    let held = core::mem::replace(stage, Stage::Consumed);
    match held {
        // SAFETY: the slot holds the future or closure, dropped once (the
        // stage now says the slot is empty).
        Stage::Pending => unsafe { ptr::drop_in_place(pending::<P, T>(task)) },
        // SAFETY: as above, for the output.
        Stage::Finished => unsafe { ptr::drop_in_place(finished::<P, T>(task)) },
        Stage::Consumed => {}
    }
}

/// Moves the output out, into `*out: Option<T>`.
///
/// # Safety
///
/// `task` is a live `Cell<P, T>` whose stage the caller owns; `out` points
/// to an `Option<T>`.
unsafe fn take_output<P, T>(task: NonNull<Header>, out: *mut ()) {
    // SAFETY: the caller owns the stage.
    let stage = unsafe { &mut *stage(task) };
    if *stage == Stage::Finished {
        *stage = Stage::Consumed;
        // SAFETY: the slot holds the output, read out once (the stage now
        // says the slot is empty).
        let output = unsafe { finished::<P, T>(task).read() };
        // SAFETY: `out` is an `Option<T>` (caller contract).
        unsafe { *out.cast::<Option<T>>() = Some(output) };
    }
}

/// Frees the allocation, dropping what is left in it.
///
/// # Safety
///
/// `task` is a `Cell<P, T>` with no reference left.
unsafe fn dealloc<P, T>(task: NonNull<Header>) {
    // SAFETY: unshared, so the stage is this thread's.
    unsafe { drop_stage::<P, T>(task) };
    // SAFETY: unshared, the stage emptied.
    unsafe { free::<P, T>(task) };
}

/// Drops the header and frees the memory of a task whose slot is empty.
///
/// # Safety
///
/// `task` is an unshared `Cell<P, T>` from [`allocate`], its slot empty (or
/// moved out); it is not used afterwards.
unsafe fn free<P, T>(task: NonNull<Header>) {
    // SAFETY: unshared: the header is dropped once (the slot has no drop glue
    // of its own).
    unsafe { ptr::drop_in_place(task.as_ptr()) };
    let layout = core::alloc::Layout::new::<Cell<P, T>>();
    // SAFETY: allocated by `allocate` with this layout.
    unsafe { alloc::alloc::dealloc(task.as_ptr().cast(), layout) };
}

// ---------------------------------------------------------------------------
// Running, waking, cancelling, completing

/// Runs a task taken from a run queue: polls its future (or calls its
/// closure) once, or drops it if it was cancelled or the executor closed.
///
/// Never inlined: benchmarks count the instructions of one run.
///
/// # Safety
///
/// Called by the thread that popped `task` from the queue matching its
/// kind, which owns the queue's reference; `PASSIVE_LEVEL`.
#[inline(never)]
pub(super) unsafe fn run(task: NonNull<Header>) {
    // SAFETY: the queue's reference keeps the task alive throughout.
    let head = unsafe { header(task) };
    let claimed = head.state.fetch_update(AcqRel, Acquire, |s| {
        // A canceller got there first (it holds RUNNING or set COMPLETE).
        if s & (RUNNING | COMPLETE) != 0 {
            return None;
        }
        Some((s & !NOTIFIED) | RUNNING)
    });
    let Ok(state) = claimed else {
        // SAFETY: the queue's reference.
        unsafe { Header::ref_dec(task) };
        return;
    };
    if state & CANCELLED != 0 || head.shared.is_closed() {
        // SAFETY: this thread holds RUNNING.
        unsafe { cancel_in_place(task) };
        // SAFETY: the queue's reference.
        unsafe { Header::ref_dec(task) };
        return;
    }
    head.budget.store(BUDGET, Relaxed);
    // SAFETY: RUNNING and a reference are held; the stage holds the future
    // or closure (not COMPLETE); the queue matched the kind (caller).
    if unsafe { (head.vtable.run)(task) } {
        // SAFETY: RUNNING is held; the stage holds the output.
        unsafe { complete(task) };
        // SAFETY: the queue's reference.
        unsafe { Header::ref_dec(task) };
        return;
    }
    // Pending: go idle, or back to the queue if woken meanwhile, or drop the
    // future if cancelled meanwhile.
    let after = head.state.fetch_update(AcqRel, Acquire, |s| {
        if s & CANCELLED != 0 {
            None
        } else {
            Some(s & !RUNNING)
        }
    });
    match after {
        Err(_) => {
            // SAFETY: RUNNING is still held.
            unsafe { cancel_in_place(task) };
            // SAFETY: the queue's reference.
            unsafe { Header::ref_dec(task) };
        }
        // SAFETY: NOTIFIED was set while running: the queue's reference goes
        // back to the queue with the task, which is in no queue now.
        Ok(s) if s & NOTIFIED != 0 => unsafe { head.shared.tasks.push(task) },
        // SAFETY: the queue's reference.
        Ok(_) => unsafe { Header::ref_dec(task) },
    }
}

/// Drops the future (or closure) of a task without running it, and
/// completes the task without output.
///
/// # Safety
///
/// The caller holds `RUNNING` and a reference; `PASSIVE_LEVEL` (the future
/// is dropped here).
unsafe fn cancel_in_place(task: NonNull<Header>) {
    // SAFETY: the caller's reference.
    let drop_stage = unsafe { header(task) }.vtable.drop_stage;
    // SAFETY: RUNNING gives this thread the stage.
    unsafe { drop_stage(task) };
    // SAFETY: RUNNING is held; the stage is empty.
    unsafe { complete(task) };
}

/// Marks the task complete, hands the output to the `JoinHandle` (or drops
/// it if there is none), wakes the `JoinHandle`, and takes the task off the
/// live-task list.
///
/// # Safety
///
/// The caller holds `RUNNING` and a reference.
unsafe fn complete(task: NonNull<Header>) {
    // SAFETY: the caller's reference.
    let head = unsafe { header(task) };
    // RUNNING is set and COMPLETE clear: one XOR clears one and sets the other.
    let previous = head.state.fetch_xor(RUNNING | COMPLETE, AcqRel);
    debug_assert!(previous & (RUNNING | COMPLETE) == RUNNING);
    // SAFETY: COMPLETE was just set by this thread.
    let waker = unsafe { waker_slot::take(&head.join_waker, previous, JOIN_WAKER) };
    if previous & JOIN_INTEREST == 0 {
        // Nobody will read the output: drop it now, on this thread, and
        // the waker a JoinHandle dropped since left behind (the driver's,
        // which may drop driver types): not with the task's memory, which
        // the last task waker may free inside a completion routine.
        // SAFETY: without JOIN_INTEREST the completer owns the stage.
        unsafe { (head.vtable.drop_stage)(task) };
        drop(waker);
    } else if let Some(waker) = waker {
        waker.wake();
    }
    let shared = Header::shared(task);
    let (was_linked, all_done) = shared.owned.with(|owned| {
        // SAFETY: the list's links are ours under the lock.
        let linked = unsafe { (*owned_links(task)).linked };
        if linked {
            // SAFETY: linked in this list.
            unsafe { unlink(owned, task) };
        }
        owned.live -= 1;
        (linked, owned.closed && owned.live == 0)
    });
    if all_done {
        // SAFETY: initialised when the executor was built.
        unsafe { shared.all_done.set() };
    }
    if was_linked {
        // SAFETY: the list's reference, released with the link; the caller
        // still holds its own.
        unsafe { Header::ref_dec(task) };
    }
}

/// Asks for the task to be dropped instead of polled (`JoinHandle::abort`):
/// an idle task is queued so that a worker drops it; a running one is
/// dropped by its worker when the poll returns; a queued one when a worker
/// takes it.
///
/// IRQL: ≤ `DISPATCH_LEVEL` (nothing is dropped here).
pub(super) fn abort(task: NonNull<Header>) {
    // SAFETY: the caller (a JoinHandle) holds a reference.
    let head = unsafe { header(task) };
    let queue_it = !head.blocking;
    let previous = head.state.fetch_update(AcqRel, Acquire, |s| {
        if s & (COMPLETE | CANCELLED) != 0 {
            return None;
        }
        if queue_it && s & (RUNNING | NOTIFIED) == 0 {
            return Some((s | CANCELLED | NOTIFIED) + REF_ONE);
        }
        Some(s | CANCELLED)
    });
    if let Ok(s) = previous {
        if queue_it && s & (RUNNING | NOTIFIED) == 0 {
            // SAFETY: the task was idle, so in no queue; the queue takes the
            // reference added above.
            unsafe { head.shared.tasks.push(task) };
        }
    }
}

// ---------------------------------------------------------------------------
// The waker

/// The vtable of every task waker; its address identifies task wakers
/// ([`budget`]).
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_waker, wake_by_value, wake_by_ref, drop_waker);

/// # Safety
///
/// `data` is a task header and the caller holds a reference (the waker's).
unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: a task waker's data is its non-null header (caller contract).
    let task = unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) };
    Header::ref_inc(task);
    RawWaker::new(data, &WAKER_VTABLE)
}

/// The waker's transition: sets `NOTIFIED` with one read-modify-write (a
/// plain load could show a `NOTIFIED` or `RUNNING` a worker has already
/// cleared, and lose the wake); returns whether the task was idle, so that
/// the caller must queue it.
fn notify(task: NonNull<Header>) -> bool {
    // SAFETY: the caller (a waker) holds a reference.
    let previous = unsafe { header(task) }.state.fetch_or(NOTIFIED, AcqRel);
    previous & (COMPLETE | NOTIFIED | RUNNING) == 0
}

/// # Safety
///
/// As [`clone_waker`]; consumes the waker's reference.
unsafe fn wake_by_value(data: *const ()) {
    // SAFETY: a task waker's data is its non-null header.
    let task = unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) };
    if notify(task) {
        // SAFETY: the task was idle, so in no queue (a worker requeues a
        // running one; a complete one is never queued again): the waker's
        // reference becomes the queue's.
        unsafe { Header::shared(task).tasks.push(task) };
    } else {
        // SAFETY: the waker's reference.
        unsafe { Header::ref_dec(task) };
    }
}

/// # Safety
///
/// As [`clone_waker`].
unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: a task waker's data is its non-null header.
    let task = unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) };
    if notify(task) {
        // The queue's reference; the waker's keeps the task alive until then.
        Header::ref_inc(task);
        // SAFETY: idle, so in no queue (as in `wake_by_value`).
        unsafe { Header::shared(task).tasks.push(task) };
    }
}

/// # Safety
///
/// As [`clone_waker`]; consumes the waker's reference.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: a task waker's data is its non-null header.
    let task = unsafe { NonNull::new_unchecked(data.cast_mut().cast::<Header>()) };
    // SAFETY: the waker's reference is dropped.
    unsafe { Header::ref_dec(task) };
}

/// Whether `waker` is a task waker of an executor (of this crate). Its wake
/// queues the task or does nothing, and its drop may free the task, which
/// releases only memory and the executor's shared state (see the module
/// docs): an IRP completion routine may wake and drop it itself.
pub(crate) fn is_task_waker(waker: &Waker) -> bool {
    ptr::eq(waker.vtable(), &raw const WAKER_VTABLE)
}

/// The budget of the task whose waker `cx` carries: `false` (and a wake, so
/// the task runs again soon) once it polled [`BUDGET`] leaf futures in this
/// run. Always `true` outside this executor's tasks.
pub(super) fn budget(cx: &Context<'_>) -> bool {
    let waker = cx.waker();
    if !is_task_waker(waker) {
        return true;
    }
    // SAFETY: a task waker's data is the header of a live task (the waker
    // holds, or borrows from the running worker, a reference).
    let head = unsafe { &*waker.data().cast::<Header>() };
    let left = head.budget.load(Relaxed);
    if left == 0 {
        waker.wake_by_ref();
        return false;
    }
    head.budget.store(left - 1, Relaxed);
    true
}

// ---------------------------------------------------------------------------
// The JoinHandle's side

/// Registers the `JoinHandle`'s waker; returns whether the task is complete.
///
/// # Safety
///
/// Called by the task's `JoinHandle`, which holds a reference.
pub(super) unsafe fn register_join(task: NonNull<Header>, waker: &Waker) -> bool {
    // SAFETY: the JoinHandle's reference.
    let head = unsafe { header(task) };
    // SAFETY: only the JoinHandle registers.
    unsafe { waker_slot::register(&head.state, &head.join_waker, JOIN_WAKER, COMPLETE, waker) }
}

/// Moves the output of a complete task into `out` (`None` if it was
/// cancelled or already read).
///
/// # Safety
///
/// Called by the task's `JoinHandle` after seeing `COMPLETE`; `out` is an
/// `Option<T>` for the task's output type.
pub(super) unsafe fn take_join_output(task: NonNull<Header>, out: *mut ()) {
    // SAFETY: the JoinHandle's reference.
    let take_output = unsafe { header(task) }.vtable.take_output;
    // SAFETY: with COMPLETE and JOIN_INTEREST the JoinHandle owns the stage.
    unsafe { take_output(task, out) };
}

/// The `JoinHandle` lets go: clears `JOIN_INTEREST` so that the completer
/// drops the output, or drops it here if the task already completed; then
/// drops the `JoinHandle`'s reference.
///
/// # Safety
///
/// Called once, by the task's `JoinHandle`, which holds a reference.
pub(super) unsafe fn drop_join(task: NonNull<Header>) {
    // SAFETY: the JoinHandle's reference.
    let head = unsafe { header(task) };
    let detached = head.state.fetch_update(AcqRel, Acquire, |s| {
        if s & COMPLETE != 0 {
            None
        } else {
            Some(s & !JOIN_INTEREST)
        }
    });
    if detached.is_err() {
        // SAFETY: complete with JOIN_INTEREST: the JoinHandle owns the stage.
        unsafe { (head.vtable.drop_stage)(task) };
    }
    // SAFETY: the JoinHandle's reference.
    unsafe { Header::ref_dec(task) };
}
