//! Driving a future to completion from `PASSIVE_LEVEL`.

use alloc::sync::Arc;
use alloc::task::Wake;
use core::cell::UnsafeCell;
use core::future::Future;
use core::mem::MaybeUninit;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use wsk_sys as sys;

use crate::error::Error;
use crate::irql::Passive;

/// Runs `future` to completion on the current thread, sleeping on a
/// `KEVENT` between polls.
///
/// This is how `PASSIVE_LEVEL` code uses the `async` helpers
/// ([`tcp::connect`](crate::tcp::connect), …) without an executor. The waker
/// may be called from any thread at ≤ `DISPATCH_LEVEL`.
///
/// # IRQL
///
/// `PASSIVE_LEVEL` (proven by `passive`).
pub fn block_on<F: Future>(passive: &Passive<'_>, future: F) -> F::Output {
    match run(passive, future, None) {
        Ok(out) => out,
        Err(()) => unreachable!("an infinite wait cannot time out"),
    }
}

/// Like [`block_on`] for a future that resolves to a `Result`, but gives up
/// when no wake-up arrives for `timeout` (the limit applies to each wait
/// between polls, so a future that keeps making progress is not cut off),
/// dropping the future — which cancels the requests it was waiting on.
///
/// The time-out joins the future's own errors, so the result is flat:
/// `block_on_timeout(&passive, tcp::connect(..), timeout)?` is the socket.
///
/// # IRQL
///
/// `PASSIVE_LEVEL` (proven by `passive`).
///
/// # Errors
///
/// The future's error, or [`Error::IO_TIMEOUT`](crate::Error::IO_TIMEOUT) if
/// it did not finish in time.
pub fn block_on_timeout<F, T, E>(
    passive: &Passive<'_>,
    future: F,
    timeout: Duration,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    run(passive, future, Some(timeout)).unwrap_or_else(|()| Err(E::from(Error::IO_TIMEOUT)))
}

fn run<F: Future>(
    passive: &Passive<'_>,
    future: F,
    timeout: Option<Duration>,
) -> Result<F::Output, ()> {
    let _ = passive;
    let signal = Arc::new(EventWake(UnsafeCell::new(MaybeUninit::uninit())));
    // SAFETY: the KEVENT lives in the Arc, which every waker clone keeps alive.
    unsafe { sys::KeInitializeEvent(signal.event(), sys::SynchronizationEvent, sys::FALSE) };
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut timeout = timeout.map(crate::time::relative_timeout);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Ok(out);
        }
        let timeout_ptr = timeout
            .as_mut()
            .map_or(core::ptr::null_mut(), core::ptr::from_mut);
        // SAFETY: PASSIVE_LEVEL proven; the event is initialised and kept alive by `signal`.
        let status = unsafe {
            sys::KeWaitForSingleObject(
                signal.event().cast(),
                sys::Executive,
                sys::KernelMode,
                sys::FALSE,
                timeout_ptr,
            )
        };
        if status == sys::STATUS_TIMEOUT {
            // Dropping the future (on return) cancels what it waits on.
            return Err(());
        }
    }
}

/// A waker that signals a synchronization `KEVENT` in the heap, so that a
/// waker kept beyond [`block_on`] stays harmless.
struct EventWake(UnsafeCell<MaybeUninit<sys::KEVENT>>);

// SAFETY: the KEVENT is only touched through kernel routines, which are thread-safe.
unsafe impl Send for EventWake {}
// SAFETY: as above.
unsafe impl Sync for EventWake {}

impl EventWake {
    fn event(&self) -> *mut sys::KEVENT {
        self.0.get().cast()
    }
}

impl Wake for EventWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // SAFETY: initialised before any waker exists; KeSetEvent without
        // waiting is legal at <= DISPATCH_LEVEL.
        unsafe { sys::KeSetEvent(self.event(), 0, sys::FALSE) };
    }
}
