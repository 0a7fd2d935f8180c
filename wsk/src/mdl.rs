//! Reading memory the provider describes with MDLs: the pieces of a
//! `WSK_BUF`.
//!
//! A `WSK_BUF` describes `Length` bytes that start `Offset` bytes into the
//! buffer of its first MDL and continue through the MDLs linked by
//! `Mdl->Next` (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf>).
//! Each MDL's buffer is reached through `MmGetSystemAddressForMdlSafe`,
//! which maps it if the provider has not and returns NULL when that fails
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe>):
//! a failure is reported, never skipped, so the bytes that follow never
//! shift. Only `Next` is read directly; the rest goes through the `Mm`
//! accessors (<https://learn.microsoft.com/windows-hardware/drivers/kernel/using-mdls>).

use core::marker::PhantomData;

use wsk_sys as sys;

use crate::error::{Error, Result};
use crate::provider::version::WindowsVersion;

/// The `Priority` argument of `MmGetSystemAddressForMdlSafe` for a system
/// running `windows`: `NormalPagePriority`, and from Windows 8
/// `MdlMappingNoExecute` (the data is never executed; the flag is accepted
/// "starting with Windows 8").
pub(crate) fn mapping_priority(windows: WindowsVersion) -> sys::ULONG {
    if windows.at_least(WindowsVersion::WINDOWS_8) {
        sys::NormalPagePriority | sys::MdlMappingNoExecute
    } else {
        sys::NormalPagePriority
    }
}

/// The pieces of one `WSK_BUF`: one borrowed slice per MDL that holds some
/// of its bytes, in order, or the error that stops the walk.
///
/// Yields [`Error::INSUFFICIENT_RESOURCES`] for a piece whose MDL cannot
/// be mapped, and [`Error::INVALID_BUFFER_SIZE`] if the chain ends before
/// `Length` bytes; after an error it yields nothing.
pub(crate) struct BufPieces<'a> {
    mdl: sys::PMDL,
    /// Bytes to skip in `mdl`'s buffer (`Offset`, for the first MDL only).
    skip: usize,
    remaining: usize,
    priority: sys::ULONG,
    _borrow: PhantomData<&'a [u8]>,
}

impl<'a> BufPieces<'a> {
    /// The pieces of `buf`.
    ///
    /// # Safety
    ///
    /// `buf` describes memory the provider keeps locked and valid for
    /// `'a` (an indication during its callback, or while retained), and no
    /// other thread maps its MDLs meanwhile (`MmGetSystemAddressForMdlSafe`
    /// allows one caller at a time per MDL).
    pub(crate) unsafe fn new(buf: &sys::WSK_BUF, priority: sys::ULONG) -> Self {
        Self {
            mdl: buf.Mdl,
            skip: buf.Offset as usize,
            remaining: buf.Length,
            priority,
            _borrow: PhantomData,
        }
    }

    /// Ends the walk with `e`.
    fn fail(&mut self, e: Error) -> Result<&'a [u8]> {
        self.remaining = 0;
        Err(e)
    }
}

impl<'a> Iterator for BufPieces<'a> {
    type Item = Result<&'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Result<&'a [u8]>> {
        while self.remaining != 0 {
            let mdl = self.mdl;
            if mdl.is_null() {
                // The chain describes fewer bytes than `Length`.
                return Some(self.fail(Error::INVALID_BUFFER_SIZE));
            }
            let skip = core::mem::take(&mut self.skip);
            // SAFETY: a valid MDL of the chain (contract of `new`).
            let count = unsafe { sys::MmGetMdlByteCount(mdl) } as usize;
            // SAFETY: as above; `Next` may be read directly.
            self.mdl = unsafe { (*mdl).Next };
            let n = count.saturating_sub(skip).min(self.remaining);
            if n == 0 {
                // `Offset` at the end of the first MDL's buffer: the data
                // starts in the next one.
                continue;
            }
            // SAFETY: the MDL describes locked pages (contract of `new`),
            // mapped by one thread at a time; legal at <= DISPATCH_LEVEL.
            let base = unsafe { sys::MmGetSystemAddressForMdlSafe(mdl, self.priority) };
            if base.is_null() {
                return Some(self.fail(Error::INSUFFICIENT_RESOURCES));
            }
            self.remaining -= n;
            let start = base.cast::<u8>().wrapping_add(skip);
            // SAFETY: `[skip, skip + n)` lies within the `count` mapped bytes
            // of the MDL's buffer, valid for 'a (contract of `new`).
            let piece = unsafe { core::slice::from_raw_parts(start, n) };
            return Some(Ok(piece));
        }
        None
    }
}

/// Copies the bytes of `pieces` into `out`, in order, until `out` is full;
/// returns how many. A piece that cannot be read fails the copy only if
/// `out` still has room for it.
///
/// # Errors
///
/// The first error of `pieces` met before `out` is full.
pub(crate) fn copy_pieces<'a>(
    pieces: impl Iterator<Item = Result<&'a [u8]>>,
    out: &mut [u8],
) -> Result<usize> {
    let mut copied = 0;
    if out.is_empty() {
        return Ok(0);
    }
    for piece in pieces {
        let piece = piece?;
        let n = piece.len().min(out.len() - copied);
        out[copied..copied + n].copy_from_slice(&piece[..n]);
        copied += n;
        if copied == out.len() {
            break;
        }
    }
    Ok(copied)
}

/// Walks `pieces` to the end; the first error if any, so that an
/// infallible iterator over the same pieces can follow.
///
/// # Errors
///
/// The first error of `pieces`.
pub(crate) fn check_pieces<'a>(pieces: impl Iterator<Item = Result<&'a [u8]>>) -> Result<()> {
    for piece in pieces {
        piece?;
    }
    Ok(())
}
