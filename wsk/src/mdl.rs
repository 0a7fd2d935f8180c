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
#[inline]
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

/// Copies the first bytes of the `WSK_BUF` `buf` into `out` (as many as
/// both have), MDL by MDL; returns how many. A piece that cannot be mapped
/// fails the copy only if `out` still has room for it.
///
/// The hand-written loop of [`BufPieces`], for the copying path: the same
/// walk, without the iterator's state between pieces.
///
/// # Errors
///
/// As [`BufPieces`]: [`Error::INSUFFICIENT_RESOURCES`] for a piece that
/// cannot be mapped, [`Error::INVALID_BUFFER_SIZE`] if the chain ends
/// before `Length` bytes.
///
/// # Safety
///
/// As [`BufPieces::new`].
#[inline]
pub(crate) unsafe fn copy_buf(
    buf: &sys::WSK_BUF,
    priority: sys::ULONG,
    out: &mut [u8],
) -> Result<usize> {
    let (mut mdl, mut skip, mut left) = (buf.Mdl, buf.Offset as usize, buf.Length);
    let mut copied = 0;
    while left != 0 && copied < out.len() {
        if mdl.is_null() {
            return Err(Error::INVALID_BUFFER_SIZE);
        }
        // SAFETY: a valid MDL of the chain (caller contract).
        let count = unsafe { sys::MmGetMdlByteCount(mdl) } as usize;
        let n = count.saturating_sub(skip).min(left);
        if n != 0 {
            // SAFETY: the MDL describes locked pages, mapped by one thread at
            // a time (caller contract); legal at <= DISPATCH_LEVEL.
            let base = unsafe { sys::MmGetSystemAddressForMdlSafe(mdl, priority) };
            if base.is_null() {
                return Err(Error::INSUFFICIENT_RESOURCES);
            }
            let take = n.min(out.len() - copied);
            let from = base.cast::<u8>().wrapping_add(skip);
            let to = out.as_mut_ptr().wrapping_add(copied);
            // SAFETY: `[skip, skip + take)` lies within the `count` mapped
            // bytes; `out[copied..copied + take]` is in bounds (`take` is at
            // most the room left) and does not overlap provider memory.
            unsafe { core::ptr::copy_nonoverlapping(from, to, take) };
            copied += take;
            left -= n;
        }
        skip = 0;
        // SAFETY: as above; `Next` may be read directly.
        mdl = unsafe { (*mdl).Next };
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
