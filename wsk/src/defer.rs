//! Deferring work that must wait to a `PASSIVE_LEVEL` system worker thread.
//!
//! Event callbacks run at IRQL ≤ `DISPATCH_LEVEL` and may never wait. Work
//! that must — waiting on a request, deregistering — is handed to an I/O
//! work item (`IoAllocateWorkItem` + `IoQueueWorkItem`), whose closure gets a
//! [`Passive`] token. The I/O manager keeps the driver loaded until the
//! routine returns.
//!
//! The work item is allocated for the driver's `DRIVER_OBJECT`
//! ([`IoObject::from_driver`]) or one of its `DEVICE_OBJECT`s
//! ([`IoObject::from_device`]).
//!
//! ```
//! # let sim = wsk_sim::Sim::start();
//! # let driver = sim.driver_object();
//! use wsk::defer::{IoObject, WorkItem};
//! use wsk::irql::Passive;
//! use std::sync::mpsc;
//!
//! // In DriverEntry: the driver object outlives every work item (DriverUnload waits for them).
//! // SAFETY: the driver's own driver object, valid while work items exist.
//! let io_object = unsafe { IoObject::from_driver(driver) };
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

use crate::error::{Error, Result};
use crate::irql::Passive;

/// The driver or device object that owns work items: the I/O manager keeps
/// it, and so the driver, referenced while a work item is queued.
///
/// `IoAllocateWorkItem` takes "the caller's driver object or … one of the
/// caller's device objects", but a work item queued with `IoQueueWorkItem`
/// must have been allocated for a *device* object
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocateworkitem>).
/// So work items of a driver object are queued with `IoQueueWorkItemEx`
/// (Windows Vista and later, as WSK itself;
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioqueueworkitemex>),
/// whose routine may take a driver object, and those of a device object
/// with `IoQueueWorkItem`. (Wine 8 does not export `IoQueueWorkItemEx`: a
/// driver that queues work items there needs a device object.)
#[derive(Clone, Copy, Debug)]
pub struct IoObject {
    object: NonNull<core::ffi::c_void>,
    /// A `DRIVER_OBJECT` (queued with `IoQueueWorkItemEx`), not a
    /// `DEVICE_OBJECT`.
    driver: bool,
}

// SAFETY: a driver or device object is a kernel object usable from any thread.
unsafe impl Send for IoObject {}
// SAFETY: as above.
unsafe impl Sync for IoObject {}

impl IoObject {
    /// The driver's `DRIVER_OBJECT` (as `DriverEntry` receives it).
    ///
    /// # Safety
    ///
    /// `driver` is the calling driver's driver object, valid for as long as
    /// work items are created from it or queued (the driver's unload waits
    /// for its work items).
    ///
    /// # Panics
    ///
    /// If `driver` is null.
    #[must_use]
    pub unsafe fn from_driver(driver: sys::PDRIVER_OBJECT) -> Self {
        let object = NonNull::new(driver.cast()).expect("wsk: IoObject::from_driver(null)");
        Self {
            object,
            driver: true,
        }
    }

    /// One of the driver's `DEVICE_OBJECT`s.
    ///
    /// # Safety
    ///
    /// `device` is a device object of the calling driver, valid for as long
    /// as work items are created from it or queued.
    ///
    /// # Panics
    ///
    /// If `device` is null.
    #[must_use]
    pub unsafe fn from_device(device: sys::PDEVICE_OBJECT) -> Self {
        let object = NonNull::new(device.cast()).expect("wsk: IoObject::from_device(null)");
        Self {
            object,
            driver: false,
        }
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
    /// Allocated for a driver object: queued with `IoQueueWorkItemEx`.
    driver: bool,
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
        // SAFETY: `object` is a valid driver or device object of the caller
        // (IoObject's contract); the routine takes either.
        let item = unsafe { sys::IoAllocateWorkItem(object.object.as_ptr().cast()) };
        NonNull::new(item)
            .map(|item| Self {
                item,
                driver: object.driver,
            })
            .ok_or(Error::INSUFFICIENT_RESOURCES)
    }

    /// Runs `work` once in a system worker thread at `PASSIVE_LEVEL`
    /// (`IoQueueWorkItem`, or `IoQueueWorkItemEx` for a driver object;
    /// `DelayedWorkQueue`); the work item frees itself afterwards.
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
        if self.driver {
            // SAFETY: the work item is allocated and not queued (invariant);
            // the job lives until the routine takes it back; the Ex routine
            // accepts a work item of a driver object.
            unsafe {
                sys::IoQueueWorkItemEx(
                    self.item.as_ptr(),
                    Some(run_job_ex::<F>),
                    sys::DelayedWorkQueue,
                    job.cast(),
                );
            }
        } else {
            // SAFETY: as above, for a work item of a device object.
            unsafe {
                sys::IoQueueWorkItem(
                    self.item.as_ptr(),
                    Some(run_job::<F>),
                    sys::DelayedWorkQueue,
                    job.cast(),
                );
            }
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

/// The `IO_WORKITEM_ROUTINE` of work items (of a device object) running an
/// `F`.
///
/// # Safety
///
/// Called once by the I/O manager with the `Job<F>` queued in `try_queue`.
unsafe extern "system" fn run_job<F: FnOnce(&mut Passive<'_>)>(
    _object: sys::PDEVICE_OBJECT,
    context: sys::PVOID,
) {
    // SAFETY: forwarded contract.
    unsafe { run::<F>(context) };
}

/// The `IO_WORKITEM_ROUTINE_EX` of work items (of a driver object) running
/// an `F`.
///
/// # Safety
///
/// As [`run_job`].
unsafe extern "system" fn run_job_ex<F: FnOnce(&mut Passive<'_>)>(
    _object: sys::PVOID,
    context: sys::PVOID,
    _item: sys::PIO_WORKITEM,
) {
    // SAFETY: forwarded contract.
    unsafe { run::<F>(context) };
}

/// Runs the job `context` and frees its work item.
///
/// # Safety
///
/// `context` is the `Job<F>` queued in `try_queue`, handed over once; the
/// call is a work item routine's.
unsafe fn run<F: FnOnce(&mut Passive<'_>)>(context: sys::PVOID) {
    // SAFETY: the context is the Job<F> allocated (with the global
    // allocator, Box's layout) in try_queue and handed over once.
    let job = unsafe { Box::from_raw(context.cast::<Job<F>>()) };
    // SAFETY: work item routines run at PASSIVE_LEVEL in a system worker
    // thread, outside any WSK callback, and may wait.
    let mut passive = unsafe { Passive::new_unchecked() };
    let Job { item, work } = *job;
    work(&mut passive);
    // SAFETY: the system dequeues a work item before it calls the routine,
    // so the routine may free it
    // (<https://learn.microsoft.com/windows-hardware/drivers/kernel/system-worker-threads>).
    unsafe { sys::IoFreeWorkItem(item.as_ptr()) };
}
