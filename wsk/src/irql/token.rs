//! The three context tokens.

use core::marker::PhantomData;

use wsk_sys as sys;

/// Marker that makes a token `!Send + !Sync` and ties it to a lifetime.
type NotSendSync<'a> = PhantomData<(&'a (), *mut ())>;

/// Proof that the current thread runs at `PASSIVE_LEVEL` and may wait.
///
/// Operations that can block — waiting on a request, capturing the provider
/// with a time-out, deregistering — take `&Passive`. See the [module
/// docs](super) for where tokens come from.
///
/// A `Passive` is neither `Clone` nor `Copy`: code that raises the IRQL (for
/// example [`SpinLock::with`](super::SpinLock::with)) borrows it mutably, so it cannot be used to
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
    ///   other `Passive` of this thread is used to take a [`SpinLock`](super::SpinLock) while
    ///   this one is alive, and no raw `KeRaiseIrql` or spin-lock
    ///   acquisition is held across its use).
    #[must_use]
    pub const unsafe fn new_unchecked() -> Self {
        Self {
            _not_send: PhantomData,
        }
    }

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
/// [`EventContext`](crate::events::EventContext).
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
