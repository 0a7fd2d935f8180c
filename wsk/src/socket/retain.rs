//! Indication lists kept past their callback (`WskRelease` when dropped),
//! written once for data and datagram indications.
//!
//! # Soundness
//!
//! A retained list lives in one of its socket's retained slots
//! ([`SocketCore::claim_slot`](super::core::SocketCore::claim_slot)); the
//! slot, not the handle, says who releases it:
//!
//! - Retaining happens inside the callback that indicated the list. The
//!   slot then carries the `IN_CALLBACK` tag: the provider does not
//!   consider the list retained until the callback answers
//!   `STATUS_PENDING`.
//! - When the callback returns, its trampoline swaps the tag out
//!   ([`confirm_slot`](super::core::SocketCore::confirm_slot)) and answers
//!   `STATUS_PENDING`; if the handle was dropped before (the slot is no
//!   longer tagged with this list), nothing is retained any more and it
//!   answers `STATUS_SUCCESS` — the data was taken. Either way `WskRelease`
//!   is called only for a list the provider was told is retained
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_data_indication_list>).
//!   Between the swap and the trampoline's return (a few instructions) a
//!   release on another processor can reach the provider while its call
//!   of our callback is returning `STATUS_PENDING`; no contract says the
//!   provider must have seen the status first, and no protocol without a
//!   wait can close that window.
//! - Whoever empties the slot — the handle's drop, or deregistration
//!   closing the socket — releases the list (if it was confirmed) and gives
//!   back the slot's gate count, so the close waits for it.
//! - Reading the list (`with_segments`, `with_datagrams`, `copy_to`) runs
//!   inside the socket's run-down and lends the provider's memory to a
//!   closure only: deregistration shuts the run-down and waits for readers
//!   before it releases, and no borrow of the memory outlives the closure.
//!   The closure is `Send`, so it cannot hold the `!Send` `Passive` token
//!   and cannot wait: the readers deregistration waits for always end.
//!   A plain `&[u8]` borrowed from the handle would outlive a release made
//!   by deregistration under a `Box::leak`ed handle.

use core::mem::ManuallyDrop;

use wsk_sys as sys;

use super::close::{release_list, submit_close};
use super::core::{ErasedCore, SocketRef};
use crate::core_ref::CoreRef;
use crate::error::Result;

/// A provider indication list (`WSK_DATA_INDICATION` or
/// `WSK_DATAGRAM_INDICATION` chain), released with its socket kind's
/// `WskRelease`.
pub(crate) trait IndicationList: 'static {
    /// Whether the list is a datagram socket's.
    const DATAGRAM: bool;
}

impl IndicationList for sys::WSK_DATA_INDICATION {
    const DATAGRAM: bool = false;
}

impl IndicationList for sys::WSK_DATAGRAM_INDICATION {
    const DATAGRAM: bool = true;
}

/// An indication list retained past its callback.
///
/// # Invariants
///
/// `core` is one strong reference to the core of the socket that indicated
/// `head`; while the core's retained slot `slot` holds `head`, that slot
/// also counts one live handle of the registration and one retain-gate
/// count (see the module docs for who gives them back).
pub(crate) struct Retained<T: IndicationList> {
    core: ManuallyDrop<SocketRef>,
    head: *mut T,
    slot: u8,
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
    /// socket is unknown yet, closing, or has every retained slot taken.
    ///
    /// # Safety
    ///
    /// Called inside the callback that indicated `head`, with `ptr` the
    /// socket's context, a core inside a [`CoreRef`] (and a pointer with the
    /// provenance of the whole allocation, not one derived from a
    /// reference to the core).
    pub(crate) unsafe fn retain(ptr: *const ErasedCore, head: *mut T) -> Option<Self> {
        // SAFETY: the core is alive during the callback (caller contract).
        let (slot, close) = unsafe { &*ptr }.claim_slot(head as usize);
        if close {
            // The socket started closing while the count was taken; the
            // refusal handed back the last count, so the close is ours.
            // SAFETY: a core inside a CoreRef, alive during the callback.
            unsafe { CoreRef::increment_strong_count(ptr) };
            // SAFETY: the strong reference just taken.
            submit_close(unsafe { CoreRef::from_raw(ptr) }).detach();
        }
        let slot = slot?;
        // SAFETY: the context is a core inside a CoreRef, alive during the
        // callback (caller contract).
        unsafe { CoreRef::increment_strong_count(ptr) };
        // SAFETY: the strong reference just taken, now owned here.
        let core = unsafe { CoreRef::from_raw(ptr) };
        // Diagnostics count retained lists as live handles.
        core.provider.add_live();
        Some(Self {
            core: ManuallyDrop::new(core),
            head,
            slot,
        })
    }

    /// The slot the list occupies (the trampoline confirms it).
    pub(crate) fn slot(&self) -> u8 {
        self.slot
    }

    /// Runs `f` with the retained list, inside the socket's run-down, so
    /// deregistration cannot release the list meanwhile; `f` must not let a
    /// borrow of the list's memory escape.
    ///
    /// `f` is `Send`: the driver's code it runs (a `with_segments` or
    /// `read_with` closure) then cannot hold a [`Passive`](crate::irql::Passive)
    /// token, which is neither `Send` nor `Sync`, and so cannot wait —
    /// deregistration waits for this run-down to drain before it releases
    /// the list, and a reader waiting for something only the close would
    /// end (a receive on the same socket) would hold it forever.
    ///
    /// # Errors
    ///
    /// [`Error::FILE_FORCED_CLOSED`](crate::Error::FILE_FORCED_CLOSED) once
    /// deregistration closed the socket (and released the list).
    pub(crate) fn read<R>(&self, f: impl FnOnce(*mut T) -> R + Send) -> Result<R> {
        let _reading = self.core.enter_rundown()?;
        Ok(f(self.head))
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
        let Some(confirmed) = core.take_slot(self.slot, self.head as usize) else {
            // Deregistration released it and gave the counts back.
            return;
        };
        if confirmed {
            // SAFETY: emptying the confirmed slot made the release ours,
            // once; the gate count the slot held keeps the socket open.
            unsafe { release_list(&core, self.head as usize, T::DATAGRAM) };
        }
        // Else released before its callback returned: the trampoline
        // answers STATUS_SUCCESS and the provider never held it for us.
        core.provider.remove_live();
        if core.end_retain() {
            // The handle was closed meanwhile: the last release closes.
            submit_close(core).detach();
        }
    }
}
