//! Driving a future to completion from `PASSIVE_LEVEL`: without a limit,
//! with a total deadline, or until a [`StopSignal`] is set.

use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::future::Future;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::pin::{Pin, pin};
use core::ptr;
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use core::time::Duration;

use wsk_sys as sys;

use crate::error::Error;
use crate::irql::Passive;
use crate::task::StopSignal;
use crate::task::sys::{Deadline, wait_any};

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
pub fn block_on<F: Future>(passive: &Passive<'_>, mut future: F) -> F::Output {
    // SAFETY: pinned where the caller put it (see `pin_in_place`).
    let future = unsafe { pin_in_place(&mut future) };
    match run(passive, future, None, None) {
        Ok(out) => out,
        Err(Interrupted::TimedOut | Interrupted::Stopped) => {
            unreachable!("a wait without deadline or signal ends with the future")
        }
    }
}

/// Like [`block_on`] for a future that resolves to a `Result`, but gives up
/// once `timeout` has passed since the call — a total deadline, however
/// often the future makes progress meanwhile — dropping the future, which
/// cancels the requests it was waiting on.
///
/// The deadline is a `KTIMER` without a DPC, set once and waited on
/// together with the future's wake-up event (`KeWaitForMultipleObjects`),
/// so nothing polls the clock.
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
    mut future: F,
    timeout: Duration,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<Error>,
{
    // SAFETY: pinned where the caller put it (see `pin_in_place`).
    let future = unsafe { pin_in_place(&mut future) };
    run(passive, future, Some(timeout), None).unwrap_or_else(|_| Err(E::from(Error::IO_TIMEOUT)))
}

/// Runs `future` to completion on the current thread, unless `stop` is set
/// first: then the future is dropped — which cancels the requests it was
/// waiting on — and the result is `None`. A future that is ready when the
/// signal is set still returns its output.
///
/// The thread sleeps on the future's wake-up event and the signal's
/// notification event together (`KeWaitForMultipleObjects`): a
/// [`StopSignal::stop`] from `DriverUnload` (or any code at ≤
/// `DISPATCH_LEVEL`) ends the wait at once, with no polling interval. A
/// [`Request`](crate::request::Request) or [`SlotRequest`](crate::request::SlotRequest)
/// is a future, so this is also how a thread waits for one request until
/// told to stop:
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:7");
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// # let registration = wsk::Registration::register(&passive)?;
/// # let provider = registration.capture(&passive, None)?;
/// # let socket = wsk::block_on(&passive, wsk::tcp::connect(&provider, "10.0.0.2:7".parse().unwrap(), wsk::events::NoEvents))?;
/// use wsk::task::StopSignal;
/// use wsk::{Buffer, block_on_until};
///
/// let stop = StopSignal::new();
/// stop.stop(); // DriverUnload, say: nothing arrives, the receive is cancelled
/// let received = block_on_until(&passive, &stop, socket.receive(Buffer::with_capacity(64)?));
/// assert!(received.is_none());
/// # socket.close().wait(&passive)?;
/// # drop((provider, peer));
/// # registration.deregister(&passive).expect("no handles left");
/// # Ok::<(), wsk::Error>(())
/// ```
///
/// # IRQL
///
/// `PASSIVE_LEVEL` (proven by `passive`).
pub fn block_on_until<F: Future>(
    passive: &Passive<'_>,
    stop: &StopSignal,
    mut future: F,
) -> Option<F::Output> {
    // SAFETY: pinned where the caller put it (see `pin_in_place`).
    let future = unsafe { pin_in_place(&mut future) };
    run(passive, future, None, Some(stop)).ok()
}

/// Why [`run`] returned without the future's output.
enum Interrupted {
    TimedOut,
    Stopped,
}

/// Pins a future in the argument slot it was passed in, instead of moving it
/// into a local as `core::pin::pin!` does: in unoptimised builds each move
/// of a future is a copy on the stack, and a frame with a large future
/// (more than a page) needs the stack probe `__chkstk`, which
/// `cargo wsk build --strict` refuses (see `Executor::spawn`).
///
/// # Safety
///
/// `future` is a by-value parameter of the calling function, which shadows
/// it with the result and never moves it: the future then stays where it is
/// until it is dropped in place when the function returns.
unsafe fn pin_in_place<F>(future: &mut F) -> Pin<&mut F> {
    // SAFETY: never moved again (caller contract).
    unsafe { Pin::new_unchecked(future) }
}

/// Polls `future` until it is ready, sleeping between polls until its waker
/// is called, the deadline `timeout` from now passes, or `stop` is set.
fn run<F: Future>(
    passive: &Passive<'_>,
    mut future: Pin<&mut F>,
    timeout: Option<Duration>,
    stop: Option<&StopSignal>,
) -> Result<F::Output, Interrupted> {
    let _ = passive;
    let signal = Arc::new(EventWake(UnsafeCell::new(MaybeUninit::uninit())));
    // SAFETY: the KEVENT lives in the Arc, which every waker clone keeps alive.
    unsafe { sys::KeInitializeEvent(signal.event(), sys::SynchronizationEvent, sys::FALSE) };
    let waker = EventWake::waker(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    let deadline = pin!(Deadline::new());
    if let Some(timeout) = timeout {
        deadline.as_ref().arm(timeout);
    }
    // Index 0: the wake-up event (the lowest index wins when several objects
    // are signalled, so a wake-up is always polled first); then the signal's
    // event and the deadline, when there are.
    let mut objects = [
        signal.event().cast(),
        core::ptr::null_mut(),
        core::ptr::null_mut(),
    ];
    let mut count = 1;
    let stop_at = stop.map(|stop| {
        objects[count] = stop.event_object();
        count += 1;
        count - 1
    });
    if timeout.is_some() {
        objects[count] = deadline.as_ref().object();
        count += 1;
    }
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Ok(out);
        }
        // SAFETY: PASSIVE_LEVEL proven; the wake-up event is initialised and
        // kept alive by `signal`, the signal's event by `stop`'s `Arc`, the
        // deadline (armed when listed) is pinned on this frame; all of them
        // outlive the wait.
        let woken = unsafe { wait_any(&mut objects[..count]) };
        if woken == 0 {
            continue;
        }
        // Dropping the future (on return) cancels what it waits on.
        return Err(if Some(woken) == stop_at {
            Interrupted::Stopped
        } else {
            Interrupted::TimedOut
        });
    }
}

/// A waker that signals a synchronization `KEVENT` in the heap, so that a
/// waker kept beyond [`block_on`] stays harmless.
///
/// Its own [`RawWakerVTable`] (not `alloc::task::Wake`), so that
/// [`is_block_on_waker`] can recognise it: an IRP completion routine wakes
/// and drops it itself (a `KeSetEvent`, or freeing the `Arc`'s memory),
/// where it hands any waker it does not know to a DPC.
struct EventWake(UnsafeCell<MaybeUninit<sys::KEVENT>>);

// SAFETY: the KEVENT is only touched through kernel routines, which are thread-safe.
unsafe impl Send for EventWake {}
// SAFETY: as above.
unsafe impl Sync for EventWake {}

/// The vtable of every `block_on` waker; its address identifies them.
/// The data pointer is an `Arc<EventWake>`'s (`Arc::into_raw`), one strong
/// reference per waker.
static EVENT_WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(clone_event, wake_event, wake_event_by_ref, drop_event);

impl EventWake {
    fn event(&self) -> *mut sys::KEVENT {
        self.0.get().cast()
    }

    /// A waker owning `this`.
    fn waker(this: Arc<Self>) -> Waker {
        let raw = RawWaker::new(Arc::into_raw(this).cast(), &EVENT_WAKER_VTABLE);
        // SAFETY: the vtable's contract holds for an `Arc::into_raw` pointer
        // (see its functions).
        unsafe { Waker::from_raw(raw) }
    }

    /// Sets the event: without waiting, legal at ≤ `DISPATCH_LEVEL`.
    fn set(&self) {
        // SAFETY: initialised before any waker exists.
        unsafe { sys::KeSetEvent(self.event(), 0, sys::FALSE) };
    }
}

/// Whether `waker` is a `block_on` waker (see [`EventWake`]).
pub(crate) fn is_block_on_waker(waker: &Waker) -> bool {
    ptr::eq(waker.vtable(), &raw const EVENT_WAKER_VTABLE)
}

/// The waker's `Arc`, borrowed.
///
/// # Safety
///
/// `data` comes from [`EventWake::waker`] (or a clone) still holding its
/// reference.
unsafe fn borrowed(data: *const ()) -> ManuallyDrop<Arc<EventWake>> {
    // SAFETY: an `Arc::into_raw` pointer with a live reference (caller
    // contract), not dropped (ManuallyDrop).
    ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<EventWake>()) })
}

/// # Safety
///
/// As [`borrowed`].
unsafe fn clone_event(data: *const ()) -> RawWaker {
    // SAFETY: forwarded.
    let this = unsafe { borrowed(data) };
    RawWaker::new(Arc::into_raw(Arc::clone(&this)).cast(), &EVENT_WAKER_VTABLE)
}

/// # Safety
///
/// As [`borrowed`]; consumes the reference.
unsafe fn wake_event(data: *const ()) {
    // SAFETY: forwarded; the waker's reference is dropped here.
    let this = unsafe { Arc::from_raw(data.cast::<EventWake>()) };
    this.set();
}

/// # Safety
///
/// As [`borrowed`].
unsafe fn wake_event_by_ref(data: *const ()) {
    // SAFETY: forwarded.
    unsafe { borrowed(data) }.set();
}

/// # Safety
///
/// As [`borrowed`]; consumes the reference.
unsafe fn drop_event(data: *const ()) {
    // SAFETY: forwarded; the waker's reference is dropped here.
    drop(unsafe { Arc::from_raw(data.cast::<EventWake>()) });
}
