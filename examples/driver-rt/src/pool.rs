//! A global allocator over the kernel's non-paged pool.
//!
//! `ExAllocatePoolWithTag(NonPagedPoolNx, …)` and `ExFreePoolWithTag`: memory
//! usable at any IRQL up to `DISPATCH_LEVEL`, not executable.
//! `ExAllocatePool2` (Windows 10 2004+) is not used because Wine 8's
//! `ntoskrnl.exe` does not export it: an image importing it loads, but the
//! first call aborts the driver host ("call to unimplemented function").
//! `ExAllocatePoolWithTag` is exported by every Windows version and by Wine. Unlike `ExAllocatePool2` it does not zero memory, which `GlobalAlloc`
//! does not require.

use crate::sys;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

/// The alignment every pool block has on 64-bit Windows
/// (`MEMORY_ALLOCATION_ALIGNMENT`). Larger alignments are handled by
/// over-allocating.
pub const POOL_ALIGNMENT: usize = 16;

/// A [`GlobalAlloc`] over the non-paged pool, tagging every block with a pool
/// tag (shown by `!pool`, `poolmon` and Driver Verifier).
///
/// Install it with [`driver_runtime!`](crate::driver_runtime), or by hand:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: wsk_driver_rt::pool::KernelAllocator =
///     wsk_driver_rt::pool::KernelAllocator::new(*b"Echo");
/// ```
///
/// Allocation and deallocation are legal at IRQL ≤ `DISPATCH_LEVEL`.
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
        let block =
            unsafe { sys::ExAllocatePoolWithTag(sys::NonPagedPoolNx, size, self.tag) }.cast::<u8>();
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
}
