//! Executive pool: `ExAllocatePoolWithTag`, `ExAllocatePool2`,
//! `ExFreePoolWithTag`, `ExFreePool`, with tag and leak tracking.

use std::alloc::Layout;
use std::collections::BTreeMap;

use wsk_sys::{PVOID, SIZE_T, ULONG};

use crate::script::Routine;
use crate::verifier::{self, NoUnwind, Rule, violation};
use crate::world::{self, wviolation};

/// `MEMORY_ALLOCATION_ALIGNMENT` on 64-bit Windows.
pub(crate) const POOL_ALIGN: usize = 16;

/// One live pool block.
#[derive(Clone, Debug)]
pub(crate) struct PoolBlock {
    pub(crate) size: usize,
    pub(crate) tag: u32,
    pub(crate) paged: bool,
}

/// Live pool blocks by address.
#[derive(Default)]
pub(crate) struct PoolState {
    pub(crate) blocks: BTreeMap<usize, PoolBlock>,
}

/// Renders a pool tag the way `!poolused` does (`'Tag '`).
pub(crate) fn tag_string(tag: u32) -> String {
    let b = tag.to_le_bytes();
    let s: String = b
        .iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    format!("'{s}'")
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size.max(1), POOL_ALIGN).expect("pool layout")
}

/// Allocates simulator-internal zeroed memory (IRPs, MDLs, sockets…), not
/// counted as client pool.
pub(crate) fn raw_alloc_zeroed(size: usize) -> *mut u8 {
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout(size)) };
    assert!(!p.is_null(), "wsk-sim: host out of memory");
    p
}

/// Frees memory from [`raw_alloc_zeroed`].
///
/// # Safety
///
/// `p` came from `raw_alloc_zeroed(size)` and is not used afterwards.
pub(crate) unsafe fn raw_free(p: *mut u8, size: usize) {
    // SAFETY: the caller passes the pointer and size of a live allocation.
    unsafe { std::alloc::dealloc(p, layout(size)) }
}

fn allocate(routine: Routine, size: usize, tag: u32, paged: bool, zero: bool) -> PVOID {
    let name = routine.name();
    if paged {
        verifier::check_irql_max(name, verifier::APC_LEVEL);
    } else {
        verifier::check_irql_max(name, verifier::DISPATCH_LEVEL);
    }
    let mut w = world::lock();
    if tag == 0 {
        wviolation!(w, Rule::Pool, "{name} with tag 0");
    }
    if w.faults.take_alloc_failure(routine) {
        return core::ptr::null_mut();
    }
    let p = if zero {
        raw_alloc_zeroed(size)
    } else {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc(layout(size)) };
        assert!(!p.is_null(), "wsk-sim: host out of memory");
        // Real pool is not zeroed: make reads of unset memory visible
        // (Miri sees them as uninitialized instead).
        #[cfg(not(miri))]
        // SAFETY: `p` is valid for `size` bytes.
        unsafe {
            core::ptr::write_bytes(p, 0xAA, size);
        }
        p
    };
    w.pool
        .blocks
        .insert(p as usize, PoolBlock { size, tag, paged });
    w.stats.pool_allocations += 1;
    p.cast()
}

fn free(routine: &str, p: PVOID, tag: Option<u32>) {
    verifier::check_irql_max(routine, verifier::DISPATCH_LEVEL);
    if p.is_null() {
        violation!(Rule::DoubleFree, "{routine}(NULL)");
        return;
    }
    let mut w = world::lock();
    let Some(block) = w.pool.blocks.get(&(p as usize)).cloned() else {
        wviolation!(
            w,
            Rule::DoubleFree,
            "{routine}({p:p}): not a live pool block (freed twice, or never allocated)"
        );
        return;
    };
    if let Some(t) = tag {
        if t != block.tag {
            wviolation!(
                w,
                Rule::Pool,
                "{routine}({p:p}) with tag {} but the block was allocated with tag {}",
                tag_string(t),
                tag_string(block.tag)
            );
            return;
        }
    }
    w.pool.blocks.remove(&(p as usize));
    drop(w);
    // SAFETY: the block was allocated by `allocate` with this size and is no
    // longer tracked, so nothing frees it again.
    unsafe { std::alloc::dealloc(p.cast(), layout(block.size)) };
}

/// Frees every tracked block (end of test, after the leak report).
pub(crate) fn free_all(state: &mut PoolState) {
    for (addr, b) in core::mem::take(&mut state.blocks) {
        // SAFETY: every tracked block came from `allocate` with its size.
        unsafe { std::alloc::dealloc(addr as *mut u8, layout(b.size)) };
    }
}

/// `POOL_TYPE` values that are paged (`PagedPool` and its variants).
fn pool_type_is_paged(pool_type: i32) -> bool {
    // Base types: NonPagedPool 0, PagedPool 1, NonPagedPoolMustSucceed 2,
    // DontUseThisType 3, NonPagedPoolCacheAligned 4, PagedPoolCacheAligned 5,
    // NonPagedPoolCacheAlignedMustS 6, MaxPoolType 7; +32 session; 512 Nx.
    let base = pool_type & 0x1F;
    base == 1 || base == 5
}

/// `POOL_FLAG_*` (`wdm.h`).
const POOL_FLAG_UNINITIALIZED: u64 = 0x2;
const POOL_FLAG_NON_PAGED: u64 = 0x40;
const POOL_FLAG_NON_PAGED_EXECUTE: u64 = 0x80;
const POOL_FLAG_PAGED: u64 = 0x100;

/// `ExAllocatePoolWithTag`: allocates `NumberOfBytes` of (uninitialized)
/// pool tagged `Tag`. Returns NULL when a test injected an allocation failure.
///
/// # Safety
///
/// Callable from any context; the block must be freed with
/// [`ExFreePoolWithTag`] or [`ExFreePool`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ExAllocatePoolWithTag(
    PoolType: wsk_sys::POOL_TYPE,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
) -> PVOID {
    let _g = NoUnwind::enter();
    #[allow(clippy::unnecessary_cast)]
    let paged = pool_type_is_paged(PoolType as i32);
    allocate(
        Routine::ExAllocatePoolWithTag,
        NumberOfBytes,
        Tag,
        paged,
        false,
    )
}

/// `ExAllocatePool2`: allocates zeroed (unless `POOL_FLAG_UNINITIALIZED`)
/// pool of the kind `Flags` names.
///
/// # Safety
///
/// As [`ExAllocatePoolWithTag`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ExAllocatePool2(
    Flags: wsk_sys::POOL_FLAGS,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
) -> PVOID {
    let _g = NoUnwind::enter();
    #[allow(clippy::unnecessary_cast)]
    let flags = Flags as u64;
    let kinds = [
        POOL_FLAG_NON_PAGED,
        POOL_FLAG_NON_PAGED_EXECUTE,
        POOL_FLAG_PAGED,
    ]
    .iter()
    .filter(|&&k| flags & k != 0)
    .count();
    if kinds != 1 {
        violation!(
            Rule::Pool,
            "ExAllocatePool2 with flags {flags:#x}: exactly one of POOL_FLAG_NON_PAGED, \
             POOL_FLAG_NON_PAGED_EXECUTE, POOL_FLAG_PAGED is required"
        );
        return core::ptr::null_mut();
    }
    let paged = flags & POOL_FLAG_PAGED != 0;
    let zero = flags & POOL_FLAG_UNINITIALIZED == 0;
    allocate(Routine::ExAllocatePool2, NumberOfBytes, Tag, paged, zero)
}

/// `ExFreePoolWithTag`: frees a pool block; the tag must match.
///
/// # Safety
///
/// `P` must be a live block from the pool routines.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ExFreePoolWithTag(P: PVOID, Tag: ULONG) {
    let _g = NoUnwind::enter();
    free("ExFreePoolWithTag", P, Some(Tag));
}

/// `ExFreePool`: frees a pool block.
///
/// # Safety
///
/// `P` must be a live block from the pool routines.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ExFreePool(P: PVOID) {
    let _g = NoUnwind::enter();
    free("ExFreePool", P, None);
}
