//! Closure-scoped spin locks.

use core::cell::UnsafeCell;

use wsk_sys as sys;

use super::context::EventContext;
use super::token::{AtMostDispatch, Dispatch, Passive};

/// A spin lock (`KSPIN_LOCK`) protecting a `T`, usable at IRQL ≤
/// `DISPATCH_LEVEL` — the way to share state between event callbacks and
/// `PASSIVE_LEVEL` code.
///
/// The lock is held for exactly one closure: every method takes the
/// critical section as a closure, which gets the data and a [`Dispatch`]
/// token, and the lock is released when the closure returns (or unwinds).
/// Locks taken inside the closure are therefore released first — spin
/// locks are always released in the reverse order of acquisition, which
/// `KeReleaseSpinLock` needs to restore the right IRQL — and there is no
/// guard that `mem::forget` could leak with the IRQL raised.
///
/// | method | from | kernel routine |
/// |---|---|---|
/// | [`with`](Self::with) | `PASSIVE_LEVEL` code (borrows the [`Passive`] token mutably) | `KeAcquireSpinLockRaiseToDpc` |
/// | [`with_in_callback`](Self::with_in_callback) | an event callback | `KeAcquireSpinLockAtDpcLevel` when the provider said `DISPATCH_LEVEL`, else `KeAcquireSpinLockRaiseToDpc` |
/// | [`with_at_most_dispatch`](Self::with_at_most_dispatch) | any IRQL ≤ `DISPATCH_LEVEL` | `KeAcquireSpinLockRaiseToDpc` |
/// | [`with_at_dispatch`](Self::with_at_dispatch) | `DISPATCH_LEVEL`, for example inside another lock's closure | `KeAcquireSpinLockAtDpcLevel` |
///
/// Since `with` borrows the caller's `Passive` mutably for the whole
/// closure, nothing inside it can wait:
///
/// ```compile_fail,E0502
/// # use wsk::irql::{Passive, SpinLock};
/// fn wait_under_lock(lock: &SpinLock<u32>, passive: &mut Passive<'_>) {
///     lock.with(passive, |_, _| {
///         passive.sleep(core::time::Duration::from_millis(1)); // `passive` is borrowed by `with`
///     });
/// }
/// ```
///
/// The lock lives in the same allocation as its data; keep it in non-paged
/// memory (any heap allocation of a driver whose global allocator is
/// non-paged, or a `static`). Acquiring a lock this thread already holds
/// deadlocks, as with any spin lock.
///
/// ```
/// # let _sim = wsk_sim::Sim::start();
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let mut passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// use wsk::irql::SpinLock;
/// let counter = SpinLock::new(0u32);
/// counter.with(&mut passive, |n, _| *n += 1);
/// assert_eq!(counter.with(&mut passive, |n, _| *n), 1);
/// ```
pub struct SpinLock<T: ?Sized> {
    lock: UnsafeCell<sys::KSPIN_LOCK>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`; sending the lock sends the `T`.
unsafe impl<T: ?Sized + Send> Send for SpinLock<T> {}
// SAFETY: `&SpinLock` only gives access to `T` under the lock, one holder at a time.
unsafe impl<T: ?Sized + Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// Creates an unlocked spin lock.
    ///
    /// `KeInitializeSpinLock` only stores zero, so this is a `const fn`.
    ///
    /// # IRQL
    ///
    /// Any.
    pub const fn new(value: T) -> Self {
        Self {
            lock: UnsafeCell::new(0),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Runs `critical` with the lock held, acquired from `PASSIVE_LEVEL`
    /// (`KeAcquireSpinLockRaiseToDpc`); returns what it returns.
    ///
    /// `passive` stays borrowed until the lock is released, so the closure
    /// cannot wait; it gets a [`Dispatch`] token instead.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`); `critical` runs at
    /// `DISPATCH_LEVEL`.
    pub fn with<R>(
        &self,
        passive: &mut Passive<'_>,
        critical: impl FnOnce(&mut T, &Dispatch<'_>) -> R,
    ) -> R {
        let _ = passive;
        // SAFETY: PASSIVE_LEVEL (proven) is at most DISPATCH_LEVEL.
        unsafe { self.raise_and_run(critical) }
    }

    /// Runs `critical` with the lock held, acquired inside an event callback:
    /// with `KeAcquireSpinLockAtDpcLevel` when the provider said the callback
    /// runs at `DISPATCH_LEVEL` (`WSK_FLAG_AT_DISPATCH_LEVEL`), else with
    /// `KeAcquireSpinLockRaiseToDpc`.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (proven by `cx`); `critical` runs at
    /// `DISPATCH_LEVEL`.
    pub fn with_in_callback<R>(
        &self,
        cx: &EventContext<'_>,
        critical: impl FnOnce(&mut T, &Dispatch<'_>) -> R,
    ) -> R {
        match cx.at_dispatch() {
            Some(dispatch) => self.with_at_dispatch(dispatch, critical),
            None => self.with_at_most_dispatch(cx.at_most_dispatch(), critical),
        }
    }

    /// Runs `critical` with the lock held, acquired from any IRQL ≤
    /// `DISPATCH_LEVEL` (`KeAcquireSpinLockRaiseToDpc`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (proven by `context`); `critical` runs at
    /// `DISPATCH_LEVEL`.
    pub fn with_at_most_dispatch<R>(
        &self,
        context: &AtMostDispatch<'_>,
        critical: impl FnOnce(&mut T, &Dispatch<'_>) -> R,
    ) -> R {
        let _ = context;
        // SAFETY: the token proves IRQL <= DISPATCH_LEVEL.
        unsafe { self.raise_and_run(critical) }
    }

    /// Runs `critical` with the lock held, acquired when already at
    /// `DISPATCH_LEVEL` (`KeAcquireSpinLockAtDpcLevel`, no IRQL change) —
    /// for example inside another lock's closure.
    ///
    /// # IRQL
    ///
    /// `DISPATCH_LEVEL` (proven by `dispatch`).
    pub fn with_at_dispatch<R>(
        &self,
        dispatch: &Dispatch<'_>,
        critical: impl FnOnce(&mut T, &Dispatch<'_>) -> R,
    ) -> R {
        let _ = dispatch;
        // SAFETY: the lock is a valid KSPIN_LOCK in memory that outlives this
        // call; the token proves DISPATCH_LEVEL as the routine requires.
        unsafe { sys::KeAcquireSpinLockAtDpcLevel(self.lock.get()) };
        let held = Held {
            lock: self,
            old_irql: None,
        };
        held.run(critical)
    }

    /// Raises to `DISPATCH_LEVEL`, acquires the lock and runs `critical`.
    ///
    /// # Safety
    ///
    /// The current IRQL is at most `DISPATCH_LEVEL`.
    unsafe fn raise_and_run<R>(&self, critical: impl FnOnce(&mut T, &Dispatch<'_>) -> R) -> R {
        // SAFETY: the lock is a valid KSPIN_LOCK that outlives this call; the
        // caller guarantees IRQL <= DISPATCH_LEVEL.
        let old_irql = unsafe { sys::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        let held = Held {
            lock: self,
            old_irql: Some(old_irql),
        };
        held.run(critical)
    }

    /// Mutable access without locking: `&mut self` proves exclusivity.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

/// The lock held by one `with*` call; releases it when dropped, on return
/// or while unwinding (host tests), in the reverse order of acquisition
/// because each `Held` lives in its own call frame.
///
/// # Invariants
///
/// This thread holds `lock`, acquired with `KeAcquireSpinLockRaiseToDpc`
/// (which returned `old_irql`) or, if `old_irql` is `None`, with
/// `KeAcquireSpinLockAtDpcLevel`.
struct Held<'a, T: ?Sized> {
    lock: &'a SpinLock<T>,
    old_irql: Option<sys::KIRQL>,
}

impl<T: ?Sized> Held<'_, T> {
    fn run<R>(self, critical: impl FnOnce(&mut T, &Dispatch<'_>) -> R) -> R {
        // The lock raised (or found) the IRQL at DISPATCH_LEVEL, where it
        // stays until `self` drops after the closure.
        // SAFETY: the IRQL is DISPATCH_LEVEL until `self` drops, after the
        // closure, which cannot keep the token (it is lent for the call).
        let dispatch = unsafe { Dispatch::new_unchecked() };
        // SAFETY: the lock is held (invariant), so this is the only access
        // to the data until `self` drops, after the closure returned.
        let data = unsafe { &mut *self.lock.data.get() };
        critical(data, &dispatch)
    }
}

impl<T: ?Sized> Drop for Held<'_, T> {
    fn drop(&mut self) {
        match self.old_irql {
            // SAFETY: acquired with KeAcquireSpinLockRaiseToDpc, which
            // returned `old` (invariant); releasing restores that IRQL.
            Some(old) => unsafe { sys::KeReleaseSpinLock(self.lock.lock.get(), old) },
            // SAFETY: acquired with KeAcquireSpinLockAtDpcLevel (invariant).
            None => unsafe { sys::KeReleaseSpinLockFromDpcLevel(self.lock.lock.get()) },
        }
    }
}

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: ?Sized> core::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpinLock").finish_non_exhaustive()
    }
}
