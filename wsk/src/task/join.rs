//! [`JoinHandle`]: a task's output, as a future.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll};

use super::raw::{self, COMPLETE, Header};
use crate::Result;
use crate::error::Error;
use crate::irql::Passive;

/// The output of a spawned task: a future resolving to `Ok(output)`, or to
/// `Err(`[`Error::CANCELLED`]`)` if the task was aborted or the executor
/// shut down before it finished.
///
/// Dropping it detaches the task, which runs on; its output is dropped when
/// it finishes. Polling it again after it resolved gives
/// `Err(Error::CANCELLED)`.
///
/// # Invariants
///
/// `task` is a task whose output type is `T`; this handle owns one reference
/// to it and the right to read its output (`JOIN_INTEREST`).
#[must_use = "dropping a JoinHandle detaches the task"]
pub struct JoinHandle<T> {
    task: NonNull<Header>,
    _output: PhantomData<T>,
}

// SAFETY: the handle only reaches the task through its atomic state and, once
// the task is complete, its output, which is `Send`.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the atomic state or aborts (atomic ops).
unsafe impl<T: Send> Sync for JoinHandle<T> {}
impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    ///
    /// `task` carries a reference and `JOIN_INTEREST` for this handle, and
    /// its output type is `T`.
    pub(super) unsafe fn from_raw(task: NonNull<Header>) -> Self {
        Self {
            task,
            _output: PhantomData,
        }
    }

    /// Asks for the task to be dropped instead of run: if it is waiting, a
    /// worker drops its future soon (at `PASSIVE_LEVEL`); if it is being
    /// polled, right after that poll. The handle then resolves to
    /// `Err(Error::CANCELLED)`, unless the task finished first. A blocking
    /// closure that has started runs to its end.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (nothing is dropped in this call).
    pub fn abort(&self) {
        raw::abort(self.task);
    }

    /// Whether the task has finished (run to its end, or been cancelled).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        Header::load(self.task) & COMPLETE != 0
    }

    /// Waits for the task on this thread ([`block_on`](crate::block_on)).
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`). Tasks have no token, so they
    /// `.await` the handle instead.
    ///
    /// # Errors
    ///
    /// [`Error::CANCELLED`] if the task was aborted or the executor shut
    /// down before it finished.
    pub fn join(self, passive: &Passive<'_>) -> Result<T> {
        crate::block_on(passive, self)
    }

    fn take_output(&self) -> Result<T> {
        let mut output: Option<T> = None;
        // SAFETY: COMPLETE was seen; the output type is `T` (invariants).
        unsafe { raw::take_join_output(self.task, (&raw mut output).cast()) };
        output.ok_or(Error::CANCELLED)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        // SAFETY: this handle's reference; only it registers.
        if unsafe { raw::register_join(self.task, cx.waker()) } {
            Poll::Ready(self.take_output())
        } else {
            Poll::Pending
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle lets go once, with its reference.
        unsafe { raw::drop_join(self.task) };
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
