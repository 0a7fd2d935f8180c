//! IRQL and blocking as types.
//!
//! Windows runs kernel code at an *interrupt request level* (IRQL). Code at
//! `PASSIVE_LEVEL` may wait; code at `DISPATCH_LEVEL` may not, and touches only
//! non-paged memory. The WSK DDI adds a rule of its own: an event callback must
//! never wait, even when the provider happens to call it at `PASSIVE_LEVEL`.
//!
//! This module turns those rules into zero-sized context tokens, in the style
//! of the `critical-section` crate:
//!
//! | token | proves | obtained from |
//! |---|---|---|
//! | [`Passive`] | IRQL is `PASSIVE_LEVEL` **and** this context may wait | work items ([`crate::defer`], `&mut Passive`), or [`Passive::new_unchecked`] in `DriverEntry`, `DriverUnload` and system-thread routines (which run at `PASSIVE_LEVEL`) — normally done once by the driver's runtime |
//! | [`Dispatch`] | IRQL is exactly `DISPATCH_LEVEL` | the closure of a [`SpinLock`] method, an event callback invoked with `WSK_FLAG_AT_DISPATCH_LEVEL`, or [`Dispatch::new_unchecked`] |
//! | [`AtMostDispatch`] | IRQL ≤ `DISPATCH_LEVEL`, no waiting | every event callback, and any of the above |
//!
//! Every operation that can wait takes `&Passive`. Event callbacks receive an
//! [`EventContext`](crate::EventContext), which yields a `&Dispatch` or an
//! `&AtMostDispatch` but never a `Passive`, so a wait inside a callback does not
//! compile:
//!
//! ```compile_fail,E0599
//! use wsk::{ConnectionEvents, DisconnectFlags, EventContext, Passive};
//! struct H;
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _flags: DisconnectFlags) {
//!         let p: &Passive<'_> = cx.passive(); // no such method: callbacks never wait
//!     }
//! }
//! ```
//!
//! Nor can a callback make one: there is no safe constructor (a run-time
//! IRQL check cannot see that it runs inside a callback the provider called
//! at `PASSIVE_LEVEL`):
//!
//! ```compile_fail,E0599
//! use wsk::{ConnectionEvents, DisconnectFlags, EventContext, Passive};
//! struct H;
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {
//!         let p = Passive::current(); // no such function
//!     }
//! }
//! ```
//!
//! A `Passive` is neither `Clone` nor `Copy`, so a second token cannot be
//! made from one that is lent out; while [`Passive::at_most_dispatch`] (or a
//! [`SpinLock`]) borrows it, it cannot be used to wait:
//!
//! ```compile_fail,E0502
//! # use wsk::Passive;
//! fn wait_while_lent(passive: &mut Passive<'_>) {
//!     let no_wait = passive.at_most_dispatch();
//!     passive.sleep(core::time::Duration::from_millis(1)); // `passive` is still lent
//!     drop(no_wait);
//! }
//! ```
//!
//! ```compile_fail,E0382
//! # use wsk::Passive;
//! fn two_tokens(passive: Passive<'_>) -> (Passive<'_>, Passive<'_>) {
//!     (passive, passive) // `Passive` is neither `Copy` nor `Clone`
//! }
//! ```
//!
//! Tokens are `!Send` and `!Sync`: IRQL is a property of the current processor
//! and thread, so a token may not travel to another thread.
//!
//! # What the tokens cannot prove
//!
//! Raw `wsk-sys` calls and the `unsafe` constructors are unchecked: whoever
//! calls [`Passive::new_unchecked`] promises the conditions in its `# Safety`
//! section for the token's whole lifetime. See `docs/irql.md` for the full
//! argument.

use core::cell::UnsafeCell;
use core::marker::PhantomData;

use wsk_sys as sys;

/// Marker that makes a token `!Send + !Sync` and ties it to a lifetime.
type NotSendSync<'a> = PhantomData<(&'a (), *mut ())>;

/// Proof that the current thread runs at `PASSIVE_LEVEL` and may wait.
///
/// Operations that can block — waiting on a request, capturing the provider
/// with a time-out, deregistering — take `&Passive`. See the [module
/// docs](self) for where tokens come from.
///
/// A `Passive` is neither `Clone` nor `Copy`: code that raises the IRQL (for
/// example [`SpinLock::with`]) borrows it mutably, so it cannot be used to
/// wait while the IRQL is raised.
#[derive(Debug)]
pub struct Passive<'a> {
    _not_send: NotSendSync<'a>,
}

impl Passive<'_> {
    /// Creates a token without checking.
    ///
    /// This is how a driver's entry points get their token: `DriverEntry`,
    /// `DriverUnload` and the start routine of a system thread the driver
    /// created run at `PASSIVE_LEVEL`, outside any WSK callback. Make one
    /// token there and pass it (or `&mut` of it) down; work items get theirs
    /// from [`crate::defer`].
    ///
    /// # Safety
    ///
    /// For the token's whole lifetime, on the current thread:
    ///
    /// - the IRQL is `PASSIVE_LEVEL`, and the code is not running inside a
    ///   WSK event callback (directly or through anything a callback calls);
    /// - the thread may wait: it holds no spin lock and nothing whose holder
    ///   must not block, and raises the IRQL only through this token (so no
    ///   other `Passive` of this thread is used to take a [`SpinLock`] while
    ///   this one is alive, and no raw `KeRaiseIrql` or spin-lock
    ///   acquisition is held across its use).
    #[must_use]
    pub const unsafe fn new_unchecked() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }

    /// Borrows this context as one that may not wait.
    ///
    /// The borrow is exclusive, so the `Passive` cannot be used to wait while
    /// the returned token is alive.
    #[must_use]
    pub fn at_most_dispatch(&mut self) -> AtMostDispatch<'_> {
        AtMostDispatch {
            _not_send: PhantomData,
        }
    }
}

/// Proof that the current thread runs at exactly `DISPATCH_LEVEL`.
///
/// Only routines documented as callable at `DISPATCH_LEVEL` accept it; none of
/// them waits.
#[derive(Debug)]
pub struct Dispatch<'a> {
    _not_send: NotSendSync<'a>,
}

impl Dispatch<'_> {
    /// Creates a token without checking.
    ///
    /// # Safety
    ///
    /// The current thread runs at `DISPATCH_LEVEL` for the token's whole
    /// lifetime.
    #[must_use]
    pub const unsafe fn new_unchecked() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }

    /// This context as one at most at `DISPATCH_LEVEL`.
    #[must_use]
    pub fn at_most_dispatch(&self) -> &AtMostDispatch<'_> {
        // SAFETY: both tokens are zero-sized and have no invariant beyond the
        // IRQL bound, which DISPATCH_LEVEL satisfies.
        unsafe { &*core::ptr::from_ref(self).cast::<AtMostDispatch<'_>>() }
    }
}

/// Proof that the current thread runs at `DISPATCH_LEVEL` or below and must not
/// wait.
///
/// Every WSK event callback gets one through its
/// [`EventContext`](crate::EventContext).
#[derive(Debug)]
pub struct AtMostDispatch<'a> {
    _not_send: NotSendSync<'a>,
}

impl AtMostDispatch<'_> {
    /// Creates a token without checking.
    ///
    /// # Safety
    ///
    /// The current thread runs at `DISPATCH_LEVEL` or below for the token's
    /// whole lifetime.
    #[must_use]
    pub const unsafe fn new_unchecked() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }
}

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
/// # use wsk::{Passive, SpinLock};
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
/// # let mut passive = unsafe { wsk::Passive::new_unchecked() };
/// use wsk::SpinLock;
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
        let dispatch = Dispatch {
            _not_send: PhantomData,
        };
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

impl Passive<'_> {
    /// Sleeps for at least `duration` (`KeDelayExecutionThread`, kernel
    /// mode, not alertable).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `self`).
    pub fn sleep(&self, duration: core::time::Duration) {
        let mut interval = crate::time::relative_timeout(duration);
        // SAFETY: PASSIVE_LEVEL is proven; the interval lives across the call.
        unsafe { sys::KeDelayExecutionThread(sys::KernelMode, sys::FALSE, &raw mut interval) };
    }
}

/// What an event callback knows about its context.
///
/// Borrowed for the duration of one callback; it cannot escape (it is `!Send`
/// and only ever handed out by reference with a callback-local lifetime).
///
/// ```compile_fail
/// use wsk::{ConnectionEvents, DisconnectFlags, EventContext};
/// use std::sync::Mutex;
/// struct H(Mutex<Option<&'static EventContext<'static>>>);
/// #[wsk::vtable]
/// impl ConnectionEvents for H {
///     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
///         *self.0.lock().unwrap() = Some(cx); // the context cannot outlive the callback
///     }
/// }
/// ```
#[derive(Debug)]
pub struct EventContext<'a> {
    at_dispatch: bool,
    dispatch: Dispatch<'a>,
    at_most_dispatch: AtMostDispatch<'a>,
}

impl EventContext<'_> {
    /// Builds the context for a callback whose flags are `flags`.
    ///
    /// # Safety
    ///
    /// Called only by a trampoline, inside the provider's callback, at IRQL ≤
    /// `DISPATCH_LEVEL`; when `flags` contains `WSK_FLAG_AT_DISPATCH_LEVEL` the
    /// IRQL is `DISPATCH_LEVEL`.
    pub(crate) unsafe fn new(flags: sys::ULONG) -> Self {
        Self {
            at_dispatch: flags & sys::WSK_FLAG_AT_DISPATCH_LEVEL != 0,
            // SAFETY: only reachable through `at_dispatch()`, which checks the flag.
            dispatch: unsafe { Dispatch::new_unchecked() },
            // SAFETY: every WSK callback runs at <= DISPATCH_LEVEL.
            at_most_dispatch: unsafe { AtMostDispatch::new_unchecked() },
        }
    }

    /// A `DISPATCH_LEVEL` token if the provider said it called at
    /// `DISPATCH_LEVEL` (`WSK_FLAG_AT_DISPATCH_LEVEL`).
    ///
    /// `None` means the IRQL is anything ≤ `DISPATCH_LEVEL`.
    #[must_use]
    pub fn at_dispatch(&self) -> Option<&Dispatch<'_>> {
        self.at_dispatch.then_some(&self.dispatch)
    }

    /// The token every callback has: IRQL ≤ `DISPATCH_LEVEL`, no waiting.
    #[must_use]
    pub fn at_most_dispatch(&self) -> &AtMostDispatch<'_> {
        &self.at_most_dispatch
    }
}
