//! System threads running Rust closures.
//!
//! Long-running work cannot stay in `DriverEntry` (Windows' service control
//! manager and Wine both give up on a driver whose `DriverEntry` does not
//! return), so drivers start a system thread there and join it in
//! `DriverUnload`:
//!
//! ```
//! use core::sync::atomic::{AtomicBool, Ordering};
//! use wsk::irql::Passive;
//! use wsk_driver::thread::SystemThread;
//!
//! static STOP: AtomicBool = AtomicBool::new(false);
//!
//! fn start(passive: &Passive<'_>) -> Result<SystemThread, wsk::Error> {
//!     SystemThread::spawn(passive, |passive| {
//!         while !STOP.load(Ordering::Acquire) {
//!             passive.sleep(core::time::Duration::from_millis(10));
//!         }
//!     })
//! }
//!
//! fn stop(thread: SystemThread, passive: &Passive<'_>) {
//!     STOP.store(true, Ordering::Release);
//!     thread.join(passive);
//! }
//! # let sim = wsk_sim::Sim::start();
//! # // SAFETY: a test thread runs at PASSIVE_LEVEL.
//! # let passive = unsafe { Passive::new_unchecked() };
//! # stop(start(&passive).unwrap(), &passive);
//! # sim.finish();
//! ```
//!
//! A thread must end before the driver image is unloaded: join every
//! [`SystemThread`] in `Driver::unload`. Dropping one without joining
//! detaches it (dropping never waits).

use alloc::boxed::Box;
use core::ptr;
use wsk::Error;
use wsk::irql::Passive;
use wsk_sys as sys;

/// A system thread started by [`SystemThread::spawn`]; holds a reference to
/// the thread object until [`join`](SystemThread::join) or drop (which
/// detaches: the thread keeps running).
#[derive(Debug)]
#[must_use = "a driver must join its threads before it unloads"]
pub struct SystemThread {
    thread: sys::PVOID,
}

// SAFETY: the thread object pointer is a referenced kernel object; waiting on
// it and dereferencing it are legal from any thread.
unsafe impl Send for SystemThread {}
// SAFETY: `&SystemThread` exposes no operation.
unsafe impl Sync for SystemThread {}

/// The thread's start routine: runs the boxed closure with a `Passive`
/// token, then ends the thread.
///
/// # Safety
///
/// `context` is the `Box<F>` leaked by [`SystemThread::spawn`], passed to
/// exactly one thread.
unsafe extern "system" fn start<F: FnOnce(&mut Passive<'_>) + Send + 'static>(context: sys::PVOID) {
    // SAFETY: `spawn` leaked exactly this box for exactly this thread.
    let f = unsafe { Box::from_raw(context.cast::<F>()) };
    // SAFETY: a system thread's start routine runs at PASSIVE_LEVEL, outside
    // any WSK callback, holding no lock, and may wait
    // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-pscreatesystemthread);
    // the token lives only for this call.
    let mut passive = unsafe { Passive::new_unchecked() };
    f(&mut passive);
    // SAFETY: a system thread ends itself with PsTerminateSystemThread, at
    // PASSIVE_LEVEL; it does not return, so no driver code runs after the
    // thread object is signalled.
    unsafe { sys::PsTerminateSystemThread(sys::STATUS_SUCCESS) };
}

impl SystemThread {
    /// Starts `f` on a new system thread (in the system process); `f`
    /// receives the thread's `PASSIVE_LEVEL` token (exclusively, so that it
    /// can also take spin locks).
    ///
    /// # Errors
    ///
    /// The status of `PsCreateSystemThread` (for example
    /// [`Error::INSUFFICIENT_RESOURCES`]) when the thread could not be
    /// created, or of `ObReferenceObjectByHandle`; in the latter case the
    /// thread runs detached.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    pub fn spawn<F>(passive: &Passive<'_>, f: F) -> Result<SystemThread, Error>
    where
        F: FnOnce(&mut Passive<'_>) + Send + 'static,
    {
        let _ = passive;
        let context = Box::into_raw(Box::new(f)).cast::<core::ffi::c_void>();
        let mut handle: sys::HANDLE = ptr::null_mut();
        // SAFETY: PASSIVE_LEVEL proven; `handle` is a live local; no object
        // attributes, process or client id (a system-process thread);
        // `start::<F>` takes ownership of `context` when the call succeeds.
        let status = unsafe {
            sys::PsCreateSystemThread(
                &raw mut handle,
                sys::THREAD_ALL_ACCESS,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                Some(start::<F>),
                context,
            )
        };
        if let Err(e) = Error::check(status) {
            // SAFETY: no thread was created, so the box is still ours.
            drop(unsafe { Box::from_raw(context.cast::<F>()) });
            return Err(e);
        }
        let mut thread: sys::PVOID = ptr::null_mut();
        // SAFETY: `handle` is the thread handle just returned (kernel mode, no
        // type check: a null object type is allowed for KernelMode callers).
        let status = unsafe {
            sys::ObReferenceObjectByHandle(
                handle,
                sys::THREAD_ALL_ACCESS,
                ptr::null_mut(),
                sys::KernelMode,
                &raw mut thread,
                ptr::null_mut(),
            )
        };
        // SAFETY: the handle is ours and closed once; the thread object (if
        // referenced) stays alive through `thread`.
        unsafe { sys::ZwClose(handle) };
        Error::check(status).map(|_| SystemThread { thread })
    }

    /// Waits until the thread has ended.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    pub fn join(self, passive: &Passive<'_>) {
        let _ = passive;
        // SAFETY: PASSIVE_LEVEL proven, so waiting without a timeout is
        // allowed; `thread` is a referenced thread object, a dispatcher
        // object that is signalled when the thread ends.
        unsafe {
            sys::KeWaitForSingleObject(
                self.thread,
                sys::Executive,
                sys::KernelMode,
                sys::FALSE,
                ptr::null_mut(),
            )
        };
        // `drop` releases the reference.
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        // SAFETY: releases the reference taken in `spawn`, once;
        // `ObDereferenceObject` is callable at IRQL <= DISPATCH_LEVEL and
        // does not wait.
        unsafe { sys::ObfDereferenceObject(self.thread) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn runs_the_closure_and_joins() {
        static RAN: AtomicU32 = AtomicU32::new(0);
        let sim = wsk_sim::Sim::start();
        // SAFETY: a test thread runs at PASSIVE_LEVEL.
        let passive = unsafe { Passive::new_unchecked() };
        let threads: alloc::vec::Vec<_> = (0..3)
            .map(|_| {
                SystemThread::spawn(&passive, |p| {
                    p.sleep(core::time::Duration::from_millis(5));
                    RAN.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
            })
            .collect();
        for t in threads {
            t.join(&passive);
        }
        assert_eq!(RAN.load(Ordering::SeqCst), 3);
        sim.finish();
    }

    #[test]
    fn a_failed_create_returns_the_status_and_frees_the_closure() {
        let sim = wsk_sim::Sim::start();
        sim.fail_next(
            wsk_sim::Routine::PsCreateSystemThread,
            sys::STATUS_INSUFFICIENT_RESOURCES,
        );
        // SAFETY: a test thread runs at PASSIVE_LEVEL.
        let passive = unsafe { Passive::new_unchecked() };
        let owned = alloc::vec![1u8; 64];
        let r = SystemThread::spawn(&passive, move |_| drop(owned));
        assert_eq!(r.unwrap_err(), Error::INSUFFICIENT_RESOURCES);
        sim.finish();
    }
}
