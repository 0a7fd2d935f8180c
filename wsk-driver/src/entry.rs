//! `DriverEntry` and `DriverUnload` for a driver written as
//! `fn driver_entry(driver, registry_path, &mut Passive) -> Result<impl Driver>`
//! plus [`Driver::unload`]: the glue the [`entry!`](macro@crate::entry) macro
//! expands to.
//!
//! Both receive the token as `&mut Passive`: it reborrows as `&Passive`
//! for everything that waits, and taking a spin lock at `PASSIVE_LEVEL`
//! needs it exclusively (see `wsk::irql`).
//!
//! The I/O manager calls `DriverEntry` "at IRQL = `PASSIVE_LEVEL`" in a
//! system thread
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_initialize>),
//! and `DriverUnload` at `PASSIVE_LEVEL` as well
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-driver_unload>):
//! those are the two places a [`Passive`] token is minted here, each living
//! only for the call. The running driver value is kept in one static slot of
//! this crate (one per driver image) between the two.

use alloc::boxed::Box;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use core::time::Duration;
use wsk::irql::Passive;
use wsk_sys as sys;

use crate::registry::RegistryPath;

/// A running driver: what `DriverEntry` started and `DriverUnload` stops.
///
/// `unload` must leave nothing behind that runs the driver's code or holds
/// its memory: close sockets, join threads, wait for work items, shut
/// executors down, release the provider and deregister (each of those takes
/// the `&Passive` given here). After it returns, `DriverUnload` calls
/// [`wsk::shutdown`], which cancels the timers of sleeps still set, waits
/// for the threads of executors dropped without shutdown and flushes DPCs
/// (see [`SHUTDOWN_TIMEOUT`]); it does the same after a failed
/// `driver_entry`, whose driver is unloaded without `DriverUnload`.
pub trait Driver: Send + 'static {
    /// Stops everything `driver_entry` started. Called once, by
    /// `DriverUnload`.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (proven by `passive`).
    fn unload(self, passive: &mut Passive<'_>);
}

/// How long [`wsk::shutdown`] waits, at the end of `DriverUnload` (and of a
/// failed `DriverEntry`), for executor threads still running.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// [`wsk::shutdown`], with a `DbgPrint` line when it had to clean up (it
/// prints the details itself). A thread still running past the bound is the
/// driver's bug; waiting longer than a bound would hang the unload.
fn shut_down_crate(passive: &Passive<'_>) {
    if let Err(left) = wsk::shutdown(passive, SHUTDOWN_TIMEOUT) {
        crate::dbg_println!(
            "wsk-driver: the driver left timers or executors behind ({} timer(s), {} executor(s) not shut down, {} thread(s)); {}",
            left.timers,
            left.executors_stopped,
            left.orphaned_threads + left.running_threads,
            if left.may_unload() {
                "cleaned up"
            } else {
                "threads still run the driver's code, or timers are still set"
            }
        );
    }
}

/// The driver's `DRIVER_OBJECT`, valid from `DriverEntry` until the driver
/// unloads.
#[derive(Debug, Clone, Copy)]
pub struct DriverObject(NonNull<sys::DRIVER_OBJECT>);

// SAFETY: a driver object is a kernel object usable from any thread.
unsafe impl Send for DriverObject {}
// SAFETY: as above; `&DriverObject` only hands out the pointer.
unsafe impl Sync for DriverObject {}

impl DriverObject {
    /// Wraps `DriverEntry`'s `DriverObject` argument.
    ///
    /// # Safety
    ///
    /// `driver` is the calling driver's object, as `DriverEntry` received
    /// it; it is valid until the driver unloads.
    ///
    /// # Panics
    ///
    /// If `driver` is null.
    #[must_use]
    pub unsafe fn from_raw(driver: sys::PDRIVER_OBJECT) -> Self {
        Self(NonNull::new(driver).expect("wsk_driver: DriverObject::from_raw(null)"))
    }

    /// The `DRIVER_OBJECT` pointer.
    #[must_use]
    pub fn as_raw(self) -> sys::PDRIVER_OBJECT {
        self.0.as_ptr()
    }

    /// The object work items are created from ([`wsk::defer`]).
    #[must_use]
    pub fn io_object(self) -> wsk::defer::IoObject {
        // SAFETY: this is the calling driver's own driver object (non-null),
        // valid until it unloads; `Driver::unload` runs before that and must
        // wait for the work items it queued (IoObject::from_driver's contract).
        unsafe { wsk::defer::IoObject::from_driver(self.as_raw()) }
    }
}

/// The running driver and how to unload it, type-erased.
struct Running {
    driver: *mut (),
    unload: unsafe fn(*mut (), &mut Passive<'_>),
}

/// The driver `DriverEntry` started; null before and after.
static RUNNING: AtomicPtr<Running> = AtomicPtr::new(ptr::null_mut());

/// # Safety
///
/// `driver` is a `Box<D>` leaked by [`driver_entry`], unloaded once.
unsafe fn unload_boxed<D: Driver>(driver: *mut (), passive: &mut Passive<'_>) {
    // SAFETY: the caller's contract: this is the leaked box, taken once.
    let driver = unsafe { Box::from_raw(driver.cast::<D>()) };
    driver.unload(passive);
}

/// `DriverEntry`'s body: mints the `PASSIVE_LEVEL` token, opts the pool
/// allocator into no-execute pool ([`crate::pool::opt_in_nx`]), runs `start`
/// and, when it succeeds, keeps the driver for [`driver_unload`] and
/// installs that as the `DriverUnload` routine. Returns `start`'s error as
/// the `NTSTATUS` (`STATUS_UNSUCCESSFUL` if it converts to a success code).
///
/// The kernel never calls `DriverEntry` twice without `DriverUnload` in
/// between; a host test can (one that failed before unloading). The driver
/// such a test left running is then leaked, never unloaded: its resources
/// belong to a simulated machine that is gone.
///
/// # Safety
///
/// Called as `DriverEntry`: at `PASSIVE_LEVEL`, in a thread that may wait,
/// with the calling driver's valid `driver` object and `registry_path`.
pub unsafe fn driver_entry<D, E, F>(
    driver: sys::PDRIVER_OBJECT,
    registry_path: sys::PUNICODE_STRING,
    start: F,
) -> sys::NTSTATUS
where
    D: Driver,
    E: Into<sys::NTSTATUS>,
    F: FnOnce(DriverObject, RegistryPath<'_>, &mut Passive<'_>) -> Result<D, E>,
{
    // SAFETY: DriverEntry runs at PASSIVE_LEVEL in a system thread, outside
    // any WSK callback, holding no lock, and may wait (the caller's
    // contract); the token lives for this call only.
    let mut passive = unsafe { Passive::new_unchecked() };
    crate::pool::opt_in_nx(&passive);
    // Leaking is always safe; see above.
    let _leaked = RUNNING.swap(ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: the caller passes DriverEntry's own arguments.
    let object = unsafe { DriverObject::from_raw(driver) };
    // SAFETY: DriverEntry's RegistryPath is a valid string during
    // DriverEntry, which outlives this borrow.
    let registry_path = unsafe { &*registry_path };
    // SAFETY: as above.
    let path = unsafe { RegistryPath::from_raw(registry_path) };
    match start(object, path, &mut passive) {
        Ok(d) => {
            let running = Box::new(Running {
                driver: Box::into_raw(Box::new(d)).cast(),
                unload: unload_boxed::<D>,
            });
            RUNNING.store(Box::into_raw(running), Ordering::Release);
            // SAFETY: the driver object is ours to set up during DriverEntry.
            unsafe { (*driver).DriverUnload = Some(driver_unload) };
            sys::STATUS_SUCCESS
        }
        Err(e) => {
            // No DriverUnload follows: the image goes once this returns.
            shut_down_crate(&passive);
            let status = e.into();
            if sys::NT_SUCCESS(status) {
                sys::STATUS_UNSUCCESSFUL
            } else {
                status
            }
        }
    }
}

/// The `DriverUnload` routine [`driver_entry`] installs: mints the
/// `PASSIVE_LEVEL` token, calls [`Driver::unload`] on the running driver,
/// then [`wsk::shutdown`].
///
/// # Safety
///
/// Called by the I/O manager as `DriverUnload`, at `PASSIVE_LEVEL`, once
/// after a successful `DriverEntry`.
pub unsafe extern "system" fn driver_unload(_driver: sys::PDRIVER_OBJECT) {
    // SAFETY: DriverUnload runs at PASSIVE_LEVEL in a system thread, outside
    // any WSK callback, holding no lock, and may wait (the caller's
    // contract); the token lives for this call only.
    let mut passive = unsafe { Passive::new_unchecked() };
    let running = RUNNING.swap(ptr::null_mut(), Ordering::AcqRel);
    if !running.is_null() {
        // SAFETY: `driver_entry` leaked this box; the swap took it exactly once.
        let running = unsafe { Box::from_raw(running) };
        // SAFETY: `running.driver` is the `Box<D>` matching `running.unload`,
        // unloaded once (the box above was taken once).
        unsafe { (running.unload)(running.driver, &mut passive) };
    }
    shut_down_crate(&passive);
}
