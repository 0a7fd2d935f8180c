//! Indication lists kept past their callback (`WskRelease` when dropped),
//! written once for data and datagram indications.

use alloc::sync::Arc;
use core::mem::ManuallyDrop;

use super::calls::submit_close;
use super::core::{ErasedCore, SocketRef};

/// A provider indication list (`WSK_DATA_INDICATION` or
/// `WSK_DATAGRAM_INDICATION` chain), released with its socket kind's
/// `WskRelease`.
pub(crate) trait IndicationList: 'static {
    /// Releases `head` to the provider (`WskRelease` of the socket kind).
    ///
    /// # Safety
    ///
    /// `head` is a list `core`'s socket indicated and a [`Retained`]
    /// retained, released once; the socket is not closed (the retain gate
    /// holds the close back).
    unsafe fn release(core: &ErasedCore, head: *mut Self);
}

/// An indication list retained past its callback.
///
/// # Invariants
///
/// `core` is one strong reference to the core of the socket that indicated
/// `head`, which also counts one live handle of the registration and one
/// retain-gate count; dropping releases the list and gives all three back.
pub(crate) struct Retained<T: IndicationList> {
    core: ManuallyDrop<SocketRef>,
    head: *mut T,
}

// SAFETY: the list and the core are usable from any thread at <= DISPATCH_LEVEL.
unsafe impl<T: IndicationList> Send for Retained<T> {}
// Not `Sync`: reading the list maps its MDLs with
// `MmGetSystemAddressForMdlSafe`, which "only one thread at a time can
// safely call" for one MDL
// (https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe);
// without `Sync`, only the thread holding the list reads it.

impl<T: IndicationList> Retained<T> {
    /// Retains `head`, which `core`'s socket indicated; `None` when the
    /// socket is closing (the DDI requires every retained indication to be
    /// released before `WskCloseSocket`).
    ///
    /// # Safety
    ///
    /// Called inside the callback that indicated `head`, with `ptr` the
    /// socket's context, a core inside an `Arc` (and a pointer with the
    /// provenance of the whole `Arc` allocation, not one derived from a
    /// reference to the core).
    pub(crate) unsafe fn retain(ptr: *const ErasedCore, head: *mut T) -> Option<Self> {
        // SAFETY: the core is alive during the callback (caller contract).
        if !unsafe { &*ptr }.try_retain() {
            return None;
        }
        // SAFETY: the context is a core inside an Arc, alive during the
        // callback (caller contract).
        unsafe { Arc::increment_strong_count(ptr) };
        // SAFETY: the strong reference just taken, now owned here.
        let core = unsafe { Arc::from_raw(ptr) };
        // A retained list holds its socket open, so deregistration must wait
        // for it.
        core.provider.add_live();
        Some(Self {
            core: ManuallyDrop::new(core),
            head,
        })
    }

    /// The retained list.
    pub(crate) fn head(&self) -> *mut T {
        self.head
    }

    /// The core of the socket that indicated the list.
    pub(crate) fn core(&self) -> &ErasedCore {
        &self.core
    }
}

impl<T: IndicationList> Drop for Retained<T> {
    fn drop(&mut self) {
        // SAFETY: dropped once; the field is not used again.
        let core = unsafe { ManuallyDrop::take(&mut self.core) };
        // SAFETY: retained by `retain` and released only here; the gate count
        // held keeps the socket from closing.
        unsafe { T::release(&core, self.head) };
        core.provider.remove_live();
        if core.end_retain() {
            // The handle was closed meanwhile: the last release closes.
            submit_close(core).detach();
        }
    }
}
