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
//! | [`Passive`] | IRQL is `PASSIVE_LEVEL` **and** this context may wait | work items ([`crate::defer`]), [`Passive::current`], or [`Passive::new_unchecked`] in `DriverEntry`, `DriverUnload` and system-thread routines (which run at `PASSIVE_LEVEL`) |
//! | [`Dispatch`] | IRQL is exactly `DISPATCH_LEVEL` | a held [`SpinLock`] guard, an event callback invoked with `WSK_FLAG_AT_DISPATCH_LEVEL`, or [`Dispatch::new_unchecked`] |
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
//! Tokens are `!Send` and `!Sync`: IRQL is a property of the current processor
//! and thread, so a token may not travel to another thread.
//!
//! # What the tokens cannot prove
//!
//! Raw `wsk-sys` calls and `unsafe` constructors are unchecked. [`Passive::current`]
//! checks the IRQL at run time but cannot tell that it runs inside an event
//! callback that the provider invoked at `PASSIVE_LEVEL`: never call it from a
//! callback (`wsk-sim`'s verifier catches that in host tests).

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

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
/// example [`SpinLock::lock`]) borrows it mutably, so it cannot be used to
/// wait while the IRQL is raised.
#[derive(Debug)]
pub struct Passive<'a> {
    _not_send: NotSendSync<'a>,
}

impl Passive<'_> {
    /// Returns a token if the current IRQL is `PASSIVE_LEVEL`.
    ///
    /// Do not call this from a WSK event callback: the DDI forbids waiting
    /// there at any IRQL, and this check cannot see that it runs in one.
    ///
    /// # IRQL
    ///
    /// Any. Calls the exported `KeGetCurrentIrql`.
    #[must_use]
    pub fn current() -> Option<Self> {
        // SAFETY: KeGetCurrentIrql has no preconditions and is callable at any IRQL.
        let irql = unsafe { sys::KeGetCurrentIrql() };
        // SAFETY: just checked that the IRQL is PASSIVE_LEVEL; the caller's
        // promise not to be inside a WSK callback is documented above.
        (irql == sys::PASSIVE_LEVEL).then(|| unsafe { Self::new_unchecked() })
    }

    /// Creates a token without checking.
    ///
    /// # Safety
    ///
    /// For the token's whole lifetime the current thread runs at
    /// `PASSIVE_LEVEL`, is not inside a WSK event callback, and may wait
    /// (it holds no spin lock and no resource whose holder must not block).
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
/// Holding the lock raises the IRQL to `DISPATCH_LEVEL`; the guard hands out a
/// [`Dispatch`] token for the critical section. Locking from `PASSIVE_LEVEL`
/// borrows the caller's [`Passive`] token mutably, so nothing can wait while
/// the lock is held.
///
/// The lock lives in the same allocation as its data; keep it in non-paged
/// memory (any heap allocation of a driver whose global allocator is
/// non-paged, or a `static`).
///
/// ```
/// # let _sim = wsk_sim::Sim::start();
/// use wsk::{Passive, SpinLock};
/// let counter = SpinLock::new(0u32);
/// let mut passive = Passive::current().unwrap();
/// *counter.lock(&mut passive) += 1;
/// assert_eq!(*counter.lock(&mut passive), 1);
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
    /// Acquires the lock from `PASSIVE_LEVEL` (`KeAcquireSpinLockRaiseToDpc`).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`); runs at `DISPATCH_LEVEL` until the
    /// guard drops.
    pub fn lock<'g>(&'g self, passive: &'g mut Passive<'_>) -> SpinLockGuard<'g, T> {
        let _ = passive;
        self.raise_and_lock()
    }

    /// Acquires the lock from any IRQL ≤ `DISPATCH_LEVEL`
    /// (`KeAcquireSpinLockRaiseToDpc`), for example inside an event callback.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`; runs at `DISPATCH_LEVEL` until the guard drops.
    pub fn lock_at_most_dispatch<'g>(
        &'g self,
        context: &'g AtMostDispatch<'_>,
    ) -> SpinLockGuard<'g, T> {
        let _ = context;
        self.raise_and_lock()
    }

    /// Acquires the lock when already at `DISPATCH_LEVEL`
    /// (`KeAcquireSpinLockAtDpcLevel`), skipping the IRQL change.
    ///
    /// # IRQL
    ///
    /// `DISPATCH_LEVEL` (proven by `dispatch`).
    pub fn lock_at_dispatch<'g>(&'g self, dispatch: &'g Dispatch<'_>) -> SpinLockGuard<'g, T> {
        let _ = dispatch;
        // SAFETY: the lock is a valid KSPIN_LOCK in memory that outlives the
        // guard; the token proves DISPATCH_LEVEL as the routine requires.
        unsafe { sys::KeAcquireSpinLockAtDpcLevel(self.lock.get()) };
        SpinLockGuard {
            lock: self,
            old_irql: None,
            dispatch: Dispatch {
                _not_send: PhantomData,
            },
        }
    }

    fn raise_and_lock(&self) -> SpinLockGuard<'_, T> {
        // SAFETY: the lock is a valid KSPIN_LOCK that outlives the guard;
        // callers prove IRQL <= DISPATCH_LEVEL.
        let old_irql = unsafe { sys::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        SpinLockGuard {
            lock: self,
            old_irql: Some(old_irql),
            dispatch: Dispatch {
                _not_send: PhantomData,
            },
        }
    }

    /// Mutable access without locking: `&mut self` proves exclusivity.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
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

/// A held [`SpinLock`]; releases it (and restores the IRQL) on drop.
///
/// Dereferences to the protected data. [`SpinLockGuard::dispatch`] proves
/// `DISPATCH_LEVEL` inside the critical section.
pub struct SpinLockGuard<'g, T: ?Sized> {
    lock: &'g SpinLock<T>,
    /// `Some` when acquired with a raise, holding the IRQL to restore.
    old_irql: Option<sys::KIRQL>,
    dispatch: Dispatch<'g>,
}

impl<T: ?Sized> SpinLockGuard<'_, T> {
    /// The `DISPATCH_LEVEL` token valid while the lock is held.
    #[must_use]
    pub fn dispatch(&self) -> &Dispatch<'_> {
        &self.dispatch
    }
}

impl<T: ?Sized> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other reference to the data exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock and is borrowed mutably.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for SpinLockGuard<'_, T> {
    fn drop(&mut self) {
        match self.old_irql {
            // SAFETY: this guard acquired the lock with KeAcquireSpinLockRaiseToDpc,
            // which returned `old`; releasing restores that IRQL.
            Some(old) => unsafe { sys::KeReleaseSpinLock(self.lock.lock.get(), old) },
            // SAFETY: this guard acquired the lock with KeAcquireSpinLockAtDpcLevel.
            None => unsafe { sys::KeReleaseSpinLockFromDpcLevel(self.lock.lock.get()) },
        }
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
