//! A global allocator over the kernel's non-paged pool.
//!
//! `ExAllocatePoolWithTag` and `ExFreePoolWithTag`: memory usable at any
//! IRQL up to `DISPATCH_LEVEL`. Both routines exist on every Windows release
//! with WSK and under Wine; `ExAllocatePool2` exists only from Windows 10
//! version 2004
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepool2>)
//! and Wine 8's `ntoskrnl.exe` does not export it. Unlike `ExAllocatePool2`
//! it does not zero memory, which `GlobalAlloc` does not require.
//!
//! # The pool type
//!
//! No-execute non-paged pool (`NonPagedPoolNx`) exists from Windows 8 on;
//! "the pool allocators in these earlier versions of Windows do not operate
//! correctly" when given it
//! (<https://learn.microsoft.com/windows-hardware/drivers/kernel/nx-pool-compatibility-issues>).
//! So, as Microsoft's single-binary opt-in does
//! (`ExInitializeDriverRuntime(DrvRtPoolNxOptIn)`,
//! <https://learn.microsoft.com/windows-hardware/drivers/kernel/single-binary-opt-in-pool-nx-optin>),
//! the allocator starts with `NonPagedPool` (executable) on `x86_64` and
//! [`opt_in_nx`] — which the [`entry!`](macro@crate::entry) macro calls before
//! anything else in `DriverEntry` — switches it to `NonPagedPoolNx` when
//! `RtlGetVersion` reports 6.2 (Windows 8) or later. On `aarch64`, whose
//! first release is Windows 10, it is `NonPagedPoolNx` from the start.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicI32, Ordering};
use wsk::irql::Passive;
use wsk_sys as sys;

/// The pool type [`KernelAllocator`] allocates from.
static POOL_TYPE: AtomicI32 = AtomicI32::new(if cfg!(target_arch = "aarch64") {
    sys::NonPagedPoolNx
} else {
    sys::NonPagedPool
});

/// Switches the allocator to no-execute pool when the running Windows
/// release has it (Windows 8, NT 6.2, and later); leaves it unchanged
/// otherwise. Call it once, first thing in `DriverEntry` (the
/// [`entry!`](macro@crate::entry) macro does), before memory allocated from the
/// old type is expected to be non-executable.
///
/// Blocks allocated before the switch stay valid: `ExFreePoolWithTag` does
/// not take the pool type.
///
/// # IRQL
///
/// `PASSIVE_LEVEL` (`RtlGetVersion`).
pub fn opt_in_nx(passive: &Passive<'_>) {
    let _ = passive;
    let mut info = sys::RTL_OSVERSIONINFOW::default();
    // SAFETY: PASSIVE_LEVEL proven by the token; the structure is writable
    // and its size field set by `default()`.
    let status = unsafe { sys::RtlGetVersion(&raw mut info) };
    if sys::NT_SUCCESS(status) && (info.dwMajorVersion, info.dwMinorVersion) >= (6, 2) {
        POOL_TYPE.store(sys::NonPagedPoolNx, Ordering::Relaxed);
    }
}

/// The pool type allocations use now: `NonPagedPoolNx` (512) or
/// `NonPagedPool` (0).
#[must_use]
pub fn pool_type() -> sys::POOL_TYPE {
    POOL_TYPE.load(Ordering::Relaxed)
}

/// The alignment every pool block has on 64-bit Windows
/// (`MEMORY_ALLOCATION_ALIGNMENT`). Larger alignments are handled by
/// over-allocating.
pub const POOL_ALIGNMENT: usize = 16;

/// A [`GlobalAlloc`] over the non-paged pool, tagging every block with a pool
/// tag (shown by `!pool`, `poolmon` and Driver Verifier).
///
/// Installed by [`runtime!`](macro@crate::runtime) (and so by
/// [`entry!`](macro@crate::entry)), or by hand:
///
/// ```
/// #[cfg(all(windows, not(test)))]
/// #[global_allocator]
/// static ALLOCATOR: wsk_driver::pool::KernelAllocator =
///     wsk_driver::pool::KernelAllocator::new(*b"Echo");
/// ```
///
/// Allocation and deallocation are legal at IRQL ≤ `DISPATCH_LEVEL`; the
/// pool type is [`pool_type`].
#[derive(Debug)]
pub struct KernelAllocator {
    tag: u32,
}

impl KernelAllocator {
    /// An allocator tagging its blocks with `tag`, four ASCII bytes written
    /// in the order tools display them (`*b"Echo"` shows as `Echo`).
    #[must_use]
    pub const fn new(tag: [u8; 4]) -> Self {
        Self {
            tag: u32::from_le_bytes(tag),
        }
    }

    /// The pool tag as the `ULONG` the pool routines take.
    #[must_use]
    pub const fn tag(&self) -> u32 {
        self.tag
    }
}

/// How many bytes to request from the pool for `layout`: alignments above
/// [`POOL_ALIGNMENT`] get `align` extra bytes, room to align up and to keep
/// the block's address just below the returned pointer.
#[must_use]
pub const fn request_size(layout: Layout) -> Option<usize> {
    if layout.align() <= POOL_ALIGNMENT {
        Some(layout.size())
    } else {
        layout.size().checked_add(layout.align())
    }
}

/// The offset from a pool block at address `block` to the pointer handed out
/// for alignment `align` (> [`POOL_ALIGNMENT`]): the next multiple of `align`
/// strictly above `block`, so at least 16 bytes (one pointer) lie between
/// them, and `offset + size <= request_size`.
#[must_use]
pub const fn aligned_offset(block: usize, align: usize) -> usize {
    align - (block & (align - 1))
}

// SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes
// aligned to `layout.align()` that nothing else uses until `dealloc`, which
// frees exactly what `alloc` obtained from the pool.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(size) = request_size(layout) else {
            return ptr::null_mut();
        };
        // SAFETY: a plain pool request; the caller's IRQL contract
        // (≤ DISPATCH_LEVEL) is the allocator's documented requirement.
        let block = unsafe { sys::ExAllocatePoolWithTag(pool_type(), size, self.tag) }.cast::<u8>();
        if block.is_null() || layout.align() <= POOL_ALIGNMENT {
            return block;
        }
        let offset = aligned_offset(block.addr(), layout.align());
        // SAFETY: `offset <= align`, inside the `size + align` bytes requested.
        let aligned = unsafe { block.add(offset) };
        // SAFETY: `offset >= 16`: the 8 bytes below `aligned` are in the block.
        let slot = unsafe { aligned.sub(size_of::<*mut u8>()) };
        // SAFETY: `slot` is writable (above) and nothing else uses it.
        unsafe { slot.cast::<*mut u8>().write_unaligned(block) };
        aligned
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let block = if layout.align() <= POOL_ALIGNMENT {
            ptr
        } else {
            // SAFETY: `alloc` handed out `ptr` at least 16 bytes into the block.
            let slot = unsafe { ptr.sub(size_of::<*mut u8>()) };
            // SAFETY: `alloc` stored the block address in this slot.
            unsafe { slot.cast::<*mut u8>().read_unaligned() }
        };
        // SAFETY: `block` came from `ExAllocatePoolWithTag` with this tag and
        // is freed once, as the `GlobalAlloc` contract guarantees.
        unsafe { sys::ExFreePoolWithTag(block.cast(), self.tag) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_alignments_pass_through() {
        let l = Layout::from_size_align(24, 8).unwrap();
        assert_eq!(request_size(l), Some(24));
        let l = Layout::from_size_align(24, 16).unwrap();
        assert_eq!(request_size(l), Some(24));
    }

    #[test]
    fn large_alignments_fit() {
        for align in [32usize, 64, 4096] {
            let size = 100;
            let l = Layout::from_size_align(size, align).unwrap();
            let req = request_size(l).unwrap();
            for block in (0x1_0000..0x1_0000 + 2 * align).step_by(16) {
                let off = aligned_offset(block, align);
                assert_eq!((block + off) % align, 0);
                assert!(off >= 16, "room for the header");
                assert!(off + size <= req, "fits in the request");
            }
        }
    }

    #[test]
    fn tag_byte_order() {
        assert_eq!(KernelAllocator::new(*b"Echo").tag(), 0x6F68_6345);
    }

    #[test]
    fn nx_pool_from_windows_8_on() {
        for (version, nx) in [
            ((6, 0), false),
            ((6, 1), false),
            ((6, 2), true),
            ((10, 0), true),
        ] {
            let sim = wsk_sim::Sim::start();
            sim.set_windows_version(version.0, version.1, 0);
            POOL_TYPE.store(sys::NonPagedPool, Ordering::Relaxed);
            // SAFETY: a test thread runs at PASSIVE_LEVEL.
            opt_in_nx(&unsafe { Passive::new_unchecked() });
            let want = if nx {
                sys::NonPagedPoolNx
            } else {
                sys::NonPagedPool
            };
            assert_eq!(pool_type(), want, "Windows {version:?}");
            let a = KernelAllocator::new(*b"Test");
            for align in [8, 64] {
                let layout = Layout::from_size_align(100, align).unwrap();
                // SAFETY: a non-zero size; freed below with the same layout.
                let p = unsafe { a.alloc(layout) };
                assert!(!p.is_null() && p.addr() % align == 0);
                // SAFETY: allocated above with `layout`.
                unsafe { a.dealloc(p, layout) };
            }
            sim.finish();
        }
    }
}
