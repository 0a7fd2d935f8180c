//! [`StopSignal`]: a flag that ends waits — blocking ones, on a kernel
//! event, and `async` ones, through wakers — set once from any IRQL ≤
//! `DISPATCH_LEVEL`.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use super::sys::{Event, RawSpinLock};

/// A signal that tells waiting code to stop (tokio-util's
/// `CancellationToken`, without the tree): set once with
/// [`stop`](Self::stop), from any IRQL ≤ `DISPATCH_LEVEL`; clones share it.
///
/// Three kinds of waiter see it:
///
/// - a thread blocked in [`block_on_until`](crate::block_on_until) (also the
///   way to wait for one request: a [`Request`](crate::request::Request) is
///   a future) — the signal is a notification `KEVENT` waited on together
///   with the future's wake-up event (`KeWaitForMultipleObjects`), so the
///   wait ends the moment the signal is set, without polling;
/// - a task awaiting [`stopped`](Self::stopped);
/// - anyone who checks [`is_stopped`](Self::is_stopped).
///
/// ```
/// # let _sim = wsk_sim::Sim::start();
/// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// use core::future::pending;
/// use wsk::task::StopSignal;
///
/// let stop = StopSignal::new();
/// let unload = stop.clone(); // DriverUnload keeps one
/// std::thread::spawn(move || unload.stop());
/// // Ends when the other thread stops it: the pending future is dropped.
/// assert_eq!(wsk::block_on_until(&passive, &stop, pending::<()>()), None);
/// assert!(stop.is_stopped());
/// ```
///
/// # Memory
///
/// One allocation, by [`new`](Self::new). A task awaiting
/// [`stopped`](Self::stopped) takes a place in a list of wakers, which grows
/// (outside the signal's spin lock) when it is full.
#[derive(Clone)]
pub struct StopSignal {
    inner: Arc<Inner>,
}

/// What the clones of a [`StopSignal`] share.
///
/// # Invariants
///
/// `event` is initialised (in [`StopSignal::new`], before the `Arc` is
/// shared) and set exactly when `stopped` is, after it.
struct Inner {
    stopped: AtomicBool,
    event: Event,
    waiters: RawSpinLock<Waiters>,
}

/// The wakers of the [`Stopped`] futures that returned `Pending`.
struct Waiters {
    /// Each waiter's id and waker.
    list: Vec<(u64, Waker)>,
    /// The id of the next waiter.
    next: u64,
}

impl StopSignal {
    /// A signal not set yet.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (one non-paged allocation).
    #[must_use]
    pub fn new() -> Self {
        let inner = Arc::new(Inner {
            stopped: AtomicBool::new(false),
            event: Event::uninit(),
            waiters: RawSpinLock::new(Waiters {
                list: Vec::new(),
                next: 0,
            }),
        });
        // SAFETY: once, at the event's final address inside the Arc (non-paged
        // heap memory), before any clone exists.
        unsafe { inner.event.init() };
        Self { inner }
    }

    /// Sets the signal: every wait on it ends, now and from now on. Calling
    /// it again does nothing.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (`KeSetEvent` without a wait; wakers are callable
    /// there).
    pub fn stop(&self) {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: initialised in `new` (invariant).
        unsafe { self.inner.event.set() };
        // Wake outside the lock: a waker may take other locks (the
        // executor's run queue).
        let waiters = self.inner.waiters.with(|w| core::mem::take(&mut w.list));
        for (_, waker) in waiters {
            waker.wake();
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }

    /// A future that resolves once the signal is set (at once if it is).
    ///
    /// # IRQL
    ///
    /// Polled and dropped at ≤ `DISPATCH_LEVEL`.
    pub fn stopped(&self) -> Stopped<'_> {
        Stopped {
            signal: self,
            id: None,
        }
    }

    /// Runs `future` until the signal is set: resolves to `Some(output)`,
    /// or to `None` once the signal is set first — `future` is then
    /// dropped, which cancels the requests it waits on (tokio-util's
    /// `run_until_cancelled`).
    ///
    /// ```
    /// # let _sim = wsk_sim::Sim::start();
    /// # // SAFETY: the doctest's main thread runs at PASSIVE_LEVEL, outside any callback.
    /// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
    /// use core::future::pending;
    /// use wsk::task::StopSignal;
    ///
    /// let stop = StopSignal::new();
    /// assert_eq!(wsk::block_on(&passive, stop.run_until(async { 5 })), Some(5));
    /// stop.stop();
    /// assert_eq!(wsk::block_on(&passive, stop.run_until(pending::<()>())), None);
    /// ```
    ///
    /// # IRQL
    ///
    /// Polled and dropped at ≤ `DISPATCH_LEVEL`.
    pub fn run_until<F: Future>(&self, future: F) -> RunUntil<'_, F> {
        RunUntil {
            future,
            stopped: self.stopped(),
        }
    }

    /// The notification event set with the signal, for
    /// `KeWaitForMultipleObjects`.
    pub(crate) fn event_object(&self) -> *mut core::ffi::c_void {
        self.inner.event.raw().cast()
    }
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StopSignal")
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

/// The future of [`StopSignal::stopped`].
#[must_use = "futures do nothing unless polled"]
pub struct Stopped<'a> {
    signal: &'a StopSignal,
    /// Our place in the waiter list, once we took one.
    id: Option<u64>,
}

/// What registering a waker under the lock found.
enum Registered {
    /// The waker is in the list.
    Yes,
    /// The list is full: allocate one of this capacity (outside the lock)
    /// and try again.
    Grow(usize),
}

impl Stopped<'_> {
    /// Records `waker` as this future's in the waiter list, moving the list
    /// into `spare` first if it is full and `spare` is larger.
    fn register(&mut self, waker: &Waker, spare: &mut Option<Vec<(u64, Waker)>>) -> Registered {
        let id = &mut self.id;
        // What the lock section lets go of, dropped after it: a waker's drop
        // may free a task, and the old list's memory is freed.
        let mut garbage: (Option<Waker>, Option<Vec<(u64, Waker)>>) = (None, None);
        // Cloning a waker does not allocate (the executor's and `block_on`'s
        // count a reference); the list only grows into `spare`.
        let registered = self.signal.inner.waiters.with(|w| {
            if let Some(mine) = id.and_then(|id| w.list.iter_mut().find(|(i, _)| *i == id)) {
                if !mine.1.will_wake(waker) {
                    garbage.0 = Some(core::mem::replace(&mut mine.1, waker.clone()));
                }
                return Registered::Yes;
            }
            if w.list.len() == w.list.capacity() {
                match spare.take() {
                    Some(mut bigger) if bigger.capacity() > w.list.len() => {
                        bigger.append(&mut w.list);
                        garbage.1 = Some(core::mem::replace(&mut w.list, bigger));
                    }
                    _ => return Registered::Grow((w.list.len() * 2).max(4)),
                }
            }
            let new = w.next;
            w.next += 1;
            w.list.push((new, waker.clone()));
            *id = Some(new);
            Registered::Yes
        });
        drop(garbage);
        registered
    }
}

impl Future for Stopped<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut spare = None;
        loop {
            if this.signal.is_stopped() {
                return Poll::Ready(());
            }
            match this.register(cx.waker(), &mut spare) {
                Registered::Yes => break,
                Registered::Grow(capacity) => spare = Some(Vec::with_capacity(capacity)),
            }
        }
        // `stop` may have taken the list before the waker was in it.
        if this.signal.is_stopped() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let removed = self.signal.inner.waiters.with(|w| {
            let at = w.list.iter().position(|(i, _)| *i == id)?;
            Some(w.list.swap_remove(at))
        });
        drop(removed);
    }
}

impl core::fmt::Debug for Stopped<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stopped")
            .field("stopped", &self.signal.is_stopped())
            .finish()
    }
}

/// The future of [`StopSignal::run_until`].
#[must_use = "futures do nothing unless polled"]
pub struct RunUntil<'a, F> {
    future: F,
    stopped: Stopped<'a>,
}

impl<F: Future> Future for RunUntil<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: never moved out or
        // accessed unpinned; `stopped` is `Unpin`.
        let this = unsafe { self.get_unchecked_mut() };
        if Pin::new(&mut this.stopped).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        // SAFETY: as above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        future.poll(cx).map(Some)
    }
}

impl<F> core::fmt::Debug for RunUntil<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RunUntil")
            .field("stopped", &self.stopped.signal.is_stopped())
            .finish_non_exhaustive()
    }
}
