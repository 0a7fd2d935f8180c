//! Deferring work that must wait to a `PASSIVE_LEVEL` system worker thread.
//!
//! Event callbacks run at IRQL ≤ `DISPATCH_LEVEL` and may never wait. Work
//! that must — waiting on a request, deregistering — is handed to an I/O
//! work item (`IoAllocateWorkItem` + `IoQueueWorkItem`), whose closure gets a
//! [`Passive`] token. The I/O manager keeps the driver loaded until the
//! routine returns.
//!
//! ```
//! # let _sim = wsk_sim::Sim::start();
//! # let io_object = unsafe { wsk::defer::IoObject::from_raw(_sim.driver_object().cast()) };
//! use wsk::defer::WorkItem;
//! use wsk::Passive;
//! use std::sync::mpsc;
//!
//! let (done, finished) = mpsc::channel();
//! let item = WorkItem::new(io_object)?; // allocate where failure can be handled
//! item.queue(move |passive: &mut Passive<'_>| {
//!     // May wait here: requests, block_on, deregistration.
//!     done.send(()).unwrap();
//! });
//! finished.recv().unwrap();
//! # Ok::<(), wsk::Error>(())
//! ```

use alloc::boxed::Box;
use core::ptr::NonNull;

use wsk_sys as sys;

use crate::irql::Passive;
use crate::{Error, Result};

/// The driver or device object that owns work items (`IoAllocateWorkItem`
/// takes either): the I/O manager keeps it, and so the driver, referenced
/// while a work item is queued.
#[derive(Clone, Copy, Debug)]
pub struct IoObject(NonNull<sys::DEVICE_OBJECT>);

// SAFETY: a driver or device object is a kernel object usable from any thread.
unsafe impl Send for IoObject {}
// SAFETY: as above.
unsafe impl Sync for IoObject {}

impl IoObject {
    /// Wraps the driver's `DRIVER_OBJECT` or one of its `DEVICE_OBJECT`s.
    ///
    /// # Safety
    ///
    /// `object` is the calling driver's driver object or one of its device
    /// objects, valid for as long as work items are created from it.
    ///
    /// # Panics
    ///
    /// If `object` is null.
    #[must_use]
    pub unsafe fn from_raw(object: *mut sys::DEVICE_OBJECT) -> Self {
        Self(NonNull::new(object).expect("wsk: IoObject::from_raw(null)"))
    }
}

/// An allocated, not yet queued, I/O work item.
///
/// Allocate it where failure can still be handled (allocation may fail), then
/// [`queue`](Self::queue) it, for example from an event callback.
///
/// # Invariants
///
/// `item` is a work item from `IoAllocateWorkItem` that is not queued.
#[derive(Debug)]
pub struct WorkItem {
    item: NonNull<sys::IO_WORKITEM>,
}

// SAFETY: an unqueued work item is plain kernel memory usable from any thread.
unsafe impl Send for WorkItem {}

impl WorkItem {
    /// Allocates a work item owned by `object` (`IoAllocateWorkItem`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`] if allocation fails.
    pub fn new(object: IoObject) -> Result<Self> {
        // SAFETY: `object` is a valid driver or device object (IoObject's contract).
        let item = unsafe { sys::IoAllocateWorkItem(object.0.as_ptr()) };
        NonNull::new(item)
            .map(|item| Self { item })
            .ok_or(Error::INSUFFICIENT_RESOURCES)
    }

    /// Runs `work` once in a system worker thread at `PASSIVE_LEVEL`
    /// (`IoQueueWorkItem`, `DelayedWorkQueue`); the work item frees itself
    /// afterwards.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Panics
    ///
    /// If the closure's storage cannot be allocated; use
    /// [`try_queue`](Self::try_queue) to handle that.
    pub fn queue(self, work: impl FnOnce(&mut Passive<'_>) + Send + 'static) {
        if let Err((_, e)) = self.try_queue(work) {
            panic!("wsk: WorkItem::queue: {e}");
        }
    }

    /// Like [`queue`](Self::queue), returning the work item on failure.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`] (with the unqueued work item) if the
    /// closure's storage cannot be allocated.
    pub fn try_queue<F>(self, work: F) -> core::result::Result<(), (Self, Error)>
    where
        F: FnOnce(&mut Passive<'_>) + Send + 'static,
    {
        let layout = core::alloc::Layout::new::<Job<F>>();
        // SAFETY: Job<F> has a non-zero size (it holds a pointer).
        let job = unsafe { alloc::alloc::alloc(layout) }.cast::<Job<F>>();
        if job.is_null() {
            return Err((self, Error::INSUFFICIENT_RESOURCES));
        }
        // SAFETY: freshly allocated with Job<F>'s layout.
        unsafe {
            job.write(Job {
                item: self.item,
                work,
            });
        };
        // SAFETY: the work item is allocated and not queued (invariant); the
        // job lives until the routine takes it back.
        unsafe {
            sys::IoQueueWorkItem(
                self.item.as_ptr(),
                Some(run_job::<F>),
                sys::DelayedWorkQueue,
                job.cast(),
            );
        }
        // Queued: the routine frees the work item.
        core::mem::forget(self);
        Ok(())
    }
}

impl Drop for WorkItem {
    fn drop(&mut self) {
        // SAFETY: not queued (invariant), so it may be freed.
        unsafe { sys::IoFreeWorkItem(self.item.as_ptr()) };
    }
}

/// A queued work item's closure and the item to free afterwards.
struct Job<F> {
    item: NonNull<sys::IO_WORKITEM>,
    work: F,
}

/// The `IO_WORKITEM_ROUTINE` of work items running an `F`.
///
/// # Safety
///
/// Called once by the I/O manager with the `Job<F>` queued in `try_queue`.
unsafe extern "system" fn run_job<F: FnOnce(&mut Passive<'_>)>(
    _object: sys::PDEVICE_OBJECT,
    context: sys::PVOID,
) {
    // SAFETY: the context is the Job<F> allocated (with the global
    // allocator, Box's layout) in try_queue and handed over once.
    let job = unsafe { Box::from_raw(context.cast::<Job<F>>()) };
    // SAFETY: work item routines run at PASSIVE_LEVEL in a system worker
    // thread, outside any WSK callback, and may wait.
    let mut passive = unsafe { Passive::new_unchecked() };
    let Job { item, work } = *job;
    work(&mut passive);
    // SAFETY: the I/O manager no longer uses the work item once its routine
    // runs, so the routine may free it (the usual pattern for one-shot items).
    unsafe { sys::IoFreeWorkItem(item.as_ptr()) };
}
