//! System threads running Rust closures.
//!
//! Long-running work cannot stay in `DriverEntry` (Wine fails `sc start`
//! after 10 s; Windows service control has similar limits), so drivers start
//! a system thread there and join it in `DriverUnload`:
//!
//! ```ignore
//! // DriverEntry:
//! let worker = SystemThread::spawn(move || serve(port))?;
//! // keep `worker` somewhere DriverUnload finds it, then in DriverUnload:
//! // make `serve` return (set a stop flag, close its sockets), and
//! worker.join();
//! ```
//!
//! `spawn` and `join` run at `PASSIVE_LEVEL` only.

use crate::sys;
use alloc::boxed::Box;
use core::ptr;

/// A system thread started by [`SystemThread::spawn`]; holds a reference to
/// the thread object until [`join`](SystemThread::join) or drop (which
/// detaches: the thread keeps running).
#[derive(Debug)]
pub struct SystemThread {
    thread: sys::PVOID,
}

// SAFETY: the thread object pointer is a referenced kernel object; waiting on
// it and dereferencing it are legal from any thread.
unsafe impl Send for SystemThread {}
// SAFETY: `&SystemThread` exposes no operation.
unsafe impl Sync for SystemThread {}

/// The thread's start routine: runs the boxed closure, then ends the thread.
///
/// # Safety
///
/// `context` is the `Box<F>` leaked by [`SystemThread::spawn`], passed to
/// exactly one thread.
unsafe extern "system" fn start<F: FnOnce() + Send + 'static>(context: sys::PVOID) {
    // SAFETY: `spawn` leaked exactly this box for exactly this thread.
    let f = unsafe { Box::from_raw(context.cast::<F>()) };
    f();
    // SAFETY: a system thread ends itself with PsTerminateSystemThread.
    unsafe { sys::PsTerminateSystemThread(sys::STATUS_SUCCESS) };
}

impl SystemThread {
    /// Starts `f` on a new system thread (in the system process).
    ///
    /// # Errors
    ///
    /// The `NTSTATUS` of `PsCreateSystemThread` (for example
    /// `STATUS_INSUFFICIENT_RESOURCES`) when the thread could not be created,
    /// or of `ObReferenceObjectByHandle`; in the latter case the thread runs
    /// detached.
    pub fn spawn<F: FnOnce() + Send + 'static>(f: F) -> Result<SystemThread, sys::NTSTATUS> {
        let context = Box::into_raw(Box::new(f)).cast::<core::ffi::c_void>();
        let mut handle: sys::HANDLE = ptr::null_mut();
        // SAFETY: `handle` is a live local; no object attributes, process or
        // client id (a system-process thread); `start::<F>` takes ownership
        // of `context` when the call succeeds.
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
        if !sys::NT_SUCCESS(status) {
            // SAFETY: no thread was created, so the box is still ours.
            drop(unsafe { Box::from_raw(context.cast::<F>()) });
            return Err(status);
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
        if sys::NT_SUCCESS(status) {
            Ok(SystemThread { thread })
        } else {
            Err(status)
        }
    }

    /// Waits until the thread has ended.
    pub fn join(self) {
        // SAFETY: `thread` is a referenced thread object, a dispatcher object
        // that is signalled when the thread ends; no timeout.
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
        // SAFETY: releases the reference taken in `spawn`, once.
        unsafe { sys::ObfDereferenceObject(self.thread) };
    }
}
