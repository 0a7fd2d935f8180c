//! What an event callback knows about its IRQL.

use wsk_sys as sys;

use super::token::{AtMostDispatch, Dispatch};

/// What an event callback knows about its context.
///
/// Borrowed for the duration of one callback; it cannot escape (it is `!Send`
/// and only ever handed out by reference with a callback-local lifetime).
///
/// ```compile_fail
/// use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
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
