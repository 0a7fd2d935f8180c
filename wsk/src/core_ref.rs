//! [`CoreRef`]: the reference-counted pointer that holds socket cores,
//! with a constructor that reports allocation failure.
//!
//! # Why not `Arc`
//!
//! A socket's core is allocated inside the accept callback
//! (`Incoming::accept`), which runs at up to `DISPATCH_LEVEL` and can only
//! answer the provider: `STATUS_SUCCESS` to keep the connection, or
//! `STATUS_REQUEST_NOT_ACCEPTED` to reject it, after which the provider
//! closes the socket
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>).
//! `Arc::new` has no way to fail: on an empty pool it calls the allocation
//! error handler, which panics, and a driver's panic is a bug check. Stable
//! Rust has no `Arc::try_new`, and no way to build an `Arc` from memory
//! allocated by hand. So cores live in this type, which allocates with
//! [`alloc::alloc::alloc`] and turns a null answer into an error (as the
//! crate's IRP blocks and timers are allocated): under memory pressure the
//! connection is rejected and the handler told, the system keeps running.
//!
//! It is `Arc` reduced to what cores need — one strong count, no weak
//! references — so cloning and dropping cost what they cost with `Arc` (one
//! atomic operation each, the same orderings). Unsizing is stable for raw
//! pointers but not for user types (`CoerceUnsized`), so erasing the
//! handler type goes through [`into_inner`](CoreRef::into_inner) and
//! [`from_inner`](CoreRef::from_inner), where the compiler coerces the
//! `NonNull<RcInner<T>>`; the concrete conversions are written once each
//! (`SocketCore::erase`, `SocketCore::adopt`).

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering, fence};

use crate::error::{Error, Result};

/// The allocation behind a [`CoreRef`]: the strong count, then the value.
///
/// `repr(C)` so that the value's offset depends only on its alignment,
/// which [`CoreRef::from_raw`] relies on.
#[repr(C)]
pub(crate) struct RcInner<T: ?Sized> {
    strong: AtomicUsize,
    value: T,
}

impl<T: ?Sized> RcInner<T> {
    /// The value (for code that holds the allocation's pointer, like the
    /// registration's list of sockets).
    #[inline]
    pub(crate) fn value(&self) -> &T {
        &self.value
    }
}

/// A strong reference to a `T` in memory allocated with
/// [`alloc::alloc::alloc`]; the last one dropped drops the value and frees
/// the memory.
///
/// # Invariants
///
/// `ptr` points to a live `RcInner<T>`, allocated with
/// `Layout::for_value` of it, whose `strong` counts the `CoreRef`s
/// pointing to it, plus the references counted with
/// [`increment_strong_count`](Self::increment_strong_count) or given up
/// with [`into_inner`](Self::into_inner) and not yet taken back; this one
/// is among them, so `strong >= 1`.
pub(crate) struct CoreRef<T: ?Sized> {
    ptr: NonNull<RcInner<T>>,
    /// Owns an `RcInner<T>` for the drop check, as `Arc` does.
    _owns: PhantomData<RcInner<T>>,
}

// SAFETY: as `Arc<T>`: the value is shared between threads (`Sync`) and the
// last reference drops it on whatever thread that is (`Send`).
unsafe impl<T: ?Sized + Send + Sync> Send for CoreRef<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for CoreRef<T> {}

/// As `Arc`: the count never gets near this many references unless
/// references are leaked in a loop; stop there rather than overflow.
const MAX_REFS: usize = isize::MAX as usize;

impl<T> CoreRef<T> {
    /// The value `make` returns, in a new allocation with one reference;
    /// `make` runs only once the memory is there, so nothing is built (and
    /// dropped again) when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`] if the allocator has no memory
    /// (`make` is then dropped without being called).
    #[inline]
    pub(crate) fn try_new_with(make: impl FnOnce() -> T) -> Result<Self> {
        let layout = Layout::new::<RcInner<T>>();
        // SAFETY: the layout is not zero-sized (it has the count).
        let raw = unsafe { alloc::alloc::alloc(layout) };
        let ptr = NonNull::new(raw.cast::<RcInner<T>>()).ok_or(Error::INSUFFICIENT_RESOURCES)?;
        // SAFETY: freshly allocated for an `RcInner<T>`, so valid for the
        // write and aligned.
        unsafe {
            ptr.as_ptr().write(RcInner {
                strong: AtomicUsize::new(1),
                value: make(),
            });
        }
        // Invariant: allocated with `Layout::for_value` of the `RcInner<T>`
        // (the same as `Layout::new` for a sized type), one reference.
        Ok(Self {
            ptr,
            _owns: PhantomData,
        })
    }
}

impl<T: ?Sized> CoreRef<T> {
    #[inline]
    fn inner(&self) -> &RcInner<T> {
        // SAFETY: live while this reference exists (invariant).
        unsafe { self.ptr.as_ref() }
    }

    /// The address of the value, with the provenance of the whole
    /// allocation (so [`from_raw`](Self::from_raw) may go back to the
    /// count). Does not count a reference.
    #[inline]
    pub(crate) fn as_ptr(this: &Self) -> *const T {
        // SAFETY: in bounds of the live allocation (invariant); no
        // reference is made.
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    /// Takes back a reference counted with
    /// [`increment_strong_count`](Self::increment_strong_count).
    ///
    /// # Safety
    ///
    /// `ptr` came from [`as_ptr`](Self::as_ptr) on a `CoreRef<T>` (possibly
    /// unsized since), and stands for a reference counted for it and given
    /// back once.
    #[inline]
    pub(crate) unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: the value is alive: `ptr` stands for a reference to it
        // (caller contract).
        let align = core::mem::align_of_val(unsafe { &*ptr });
        // `RcInner` is `repr(C)`: the value follows the count, at the
        // count's size rounded up to the value's alignment.
        let offset = size_of::<AtomicUsize>().next_multiple_of(align);
        // SAFETY: `ptr` is `offset` bytes into its `RcInner<T>`, whose
        // allocation its provenance covers (it came from `as_ptr`).
        let inner = unsafe { ptr.byte_sub(offset) } as *mut RcInner<T>;
        Self {
            // SAFETY: derived from a non-null allocation.
            ptr: unsafe { NonNull::new_unchecked(inner) },
            _owns: PhantomData,
        }
    }

    /// Counts one more reference to the value at `ptr`, for a later
    /// [`from_raw`](Self::from_raw).
    ///
    /// # Safety
    ///
    /// `ptr` came from [`as_ptr`](Self::as_ptr) on a `CoreRef<T>`
    /// (possibly unsized since), and a reference to its allocation exists
    /// for the whole call.
    #[inline]
    pub(crate) unsafe fn increment_strong_count(ptr: *const T) {
        // SAFETY: per the caller; the reference made here is given back
        // (forgotten) below, so the count only rises.
        let this = core::mem::ManuallyDrop::new(unsafe { Self::from_raw(ptr) });
        let _more = core::mem::ManuallyDrop::new(CoreRef::clone(&this));
    }

    /// Gives up this reference as a pointer to the whole allocation, to be
    /// unsized (the compiler coerces `NonNull<RcInner<T>>` to
    /// `NonNull<RcInner<U>>` where `T: Unsize<U>`) and given to
    /// [`from_inner`](Self::from_inner).
    #[inline]
    pub(crate) fn into_inner(this: Self) -> NonNull<RcInner<T>> {
        let ptr = this.ptr;
        core::mem::forget(this);
        ptr
    }

    /// Takes back a reference given up with [`into_inner`](Self::into_inner).
    ///
    /// # Safety
    ///
    /// `ptr` came from `into_inner` on a `CoreRef` of the same value,
    /// possibly unsized since (the value has not changed, only the pointer's
    /// metadata was added), or it was cast to the concrete type the value
    /// has; the reference it stands for is given back once.
    #[inline]
    pub(crate) unsafe fn from_inner(ptr: NonNull<RcInner<T>>) -> Self {
        // Invariant: per the caller, the allocation and its count are
        // those of the reference given up.
        Self {
            ptr,
            _owns: PhantomData,
        }
    }

    /// How many references exist now (for tests and assertions: it may
    /// change at once).
    #[cfg(test)]
    pub(crate) fn strong_count(this: &Self) -> usize {
        this.inner().strong.load(Ordering::Acquire)
    }

    /// Drops the value and frees the memory: the last reference is gone.
    #[inline(never)]
    #[cold]
    fn drop_slow(&mut self) {
        // SAFETY: the allocation is alive until freed below.
        let layout = Layout::for_value(unsafe { self.ptr.as_ref() });
        // SAFETY: the last reference: nobody else reads the value; dropped
        // once.
        unsafe { core::ptr::drop_in_place(self.ptr.as_ptr()) };
        // SAFETY: allocated with `alloc` and this layout (invariant: the
        // layout of the value, whatever its type was when allocated,
        // `for_value` reads it from the metadata); freed once.
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
    }
}

impl<T: ?Sized> Clone for CoreRef<T> {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed as in `Arc`: a new reference is made from an existing
        // one, which keeps the value alive; no other memory is published.
        let old = self.inner().strong.fetch_add(1, Ordering::Relaxed);
        if old > MAX_REFS {
            // References leaked in a loop: overflowing the count would free
            // the value under live references. The system cannot go on
            // (as `Arc`, which aborts).
            overflow();
        }
        Self {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

/// The count overflowed: a bug in the driver that would free memory still
/// in use; stop (in a driver, a bug check).
#[cold]
#[inline(never)]
fn overflow() -> ! {
    panic!("socket core reference count overflow")
}

impl<T: ?Sized> Deref for CoreRef<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T: ?Sized> Drop for CoreRef<T> {
    #[inline]
    fn drop(&mut self) {
        // Release, then an Acquire fence for the last one, as `Arc`: every
        // use of the value through other references happens before it is
        // dropped.
        if self.inner().strong.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        self.drop_slow();
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;
    use core::sync::atomic::AtomicBool;

    use super::*;

    /// Counts its drops; a large alignment makes the value's offset in the
    /// allocation differ from a plain one.
    #[repr(align(64))]
    struct Probe<'a> {
        dropped: &'a AtomicUsize,
        payload: [u8; 100],
    }

    impl Drop for Probe<'_> {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    trait Named: Send + Sync {
        fn byte(&self) -> u8;
    }

    impl Named for Probe<'_> {
        fn byte(&self) -> u8 {
            self.payload[99]
        }
    }

    /// A probe whose payload is all `byte`, in a new `CoreRef`.
    fn probe(dropped: &AtomicUsize, byte: u8) -> CoreRef<Probe<'_>> {
        CoreRef::try_new_with(|| Probe {
            dropped,
            payload: [byte; 100],
        })
        .expect("memory")
    }

    /// `typed`, with its type erased to `dyn Named`.
    fn erase(typed: CoreRef<Probe<'_>>) -> CoreRef<dyn Named + '_> {
        let inner: NonNull<RcInner<dyn Named + '_>> = CoreRef::<Probe<'_>>::into_inner(typed);
        // SAFETY: from `into_inner`, only unsized.
        unsafe { CoreRef::from_inner(inner) }
    }

    #[test]
    fn clones_dropped_on_other_threads_drop_the_value_once() {
        let dropped = AtomicUsize::new(0);
        let first = probe(&dropped, 7);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let mine = first.clone();
                s.spawn(move || {
                    let more: Vec<_> = (0..8).map(|_| mine.clone()).collect();
                    assert!(
                        more.iter()
                            .all(|r| CoreRef::as_ptr(r) == CoreRef::as_ptr(&mine))
                    );
                    assert_eq!(mine.payload[0], 7);
                });
            }
        });
        assert_eq!(CoreRef::strong_count(&first), 1, "every clone dropped");
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(first);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_erased_reference_frees_with_the_values_layout() {
        let dropped = AtomicUsize::new(0);
        let typed = probe(&dropped, 42);
        let keep = typed.clone();
        let erased = erase(typed);
        assert_eq!(erased.byte(), 42);
        assert!(core::ptr::addr_eq(
            CoreRef::as_ptr(&erased),
            CoreRef::as_ptr(&keep)
        ));
        drop(keep);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        // The last reference is the erased one: Miri checks the layout of
        // the deallocation against the allocation's.
        drop(erased);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn raw_pointers_go_back_to_the_count_through_an_erased_type() {
        let dropped = AtomicUsize::new(0);
        let erased = erase(probe(&dropped, 3));
        let raw = CoreRef::as_ptr(&erased);
        // SAFETY: from `as_ptr`; `erased` keeps the allocation alive.
        unsafe { CoreRef::increment_strong_count(raw) };
        // SAFETY: the reference just counted, taken back once.
        let again = unsafe { CoreRef::from_raw(raw) };
        assert_eq!(CoreRef::strong_count(&erased), 2);
        assert_eq!(again.byte(), 3);
        drop(erased);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(again);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_value_made_in_place_is_made_once() {
        let made = AtomicBool::new(false);
        let r = CoreRef::try_new_with(|| {
            made.store(true, Ordering::SeqCst);
            5_u64
        })
        .expect("memory");
        assert!(made.load(Ordering::SeqCst));
        assert_eq!(*r, 5);
    }
}
