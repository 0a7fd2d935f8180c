//! Reading memory the provider describes with MDLs.

use wsk_sys as sys;

/// The bytes a `WSK_BUF` describes in its first MDL, or `None` if the MDL
/// cannot be mapped.
///
/// Only the first MDL of a chain is read: WSK data indications put each
/// segment in its own `WSK_DATA_INDICATION` with one MDL.
///
/// # Safety
///
/// `buf` describes locked memory that stays valid for `'a` (an indication
/// during its callback, or while retained).
pub(crate) unsafe fn wsk_buf_bytes<'a>(buf: &sys::WSK_BUF) -> Option<&'a [u8]> {
    if buf.Mdl.is_null() || buf.Length == 0 {
        return None;
    }
    // SAFETY: the MDL describes locked pages (caller contract); mapping is
    // legal at <= DISPATCH_LEVEL.
    let base = unsafe { sys::MmGetSystemAddressForMdlSafe(buf.Mdl, sys::NormalPagePriority) };
    if base.is_null() {
        return None;
    }
    // SAFETY: the MDL is valid (caller contract).
    let mdl_len = unsafe { sys::MmGetMdlByteCount(buf.Mdl) } as usize;
    let offset = buf.Offset as usize;
    let len = buf.Length.min(mdl_len.saturating_sub(offset));
    let start = base.cast::<u8>().wrapping_add(offset);
    // SAFETY: [start, start + len) lies within the mapped MDL and stays valid for 'a.
    Some(unsafe { core::slice::from_raw_parts(start, len) })
}

/// Copies up to `out.len()` bytes of `segments` into `out`, in order;
/// returns how many.
pub(crate) fn copy_segments<'a>(segments: impl Iterator<Item = &'a [u8]>, out: &mut [u8]) -> usize {
    let mut copied = 0;
    for segment in segments {
        let n = segment.len().min(out.len() - copied);
        out[copied..copied + n].copy_from_slice(&segment[..n]);
        copied += n;
        if copied == out.len() {
            break;
        }
    }
    copied
}
