//! The memory of the provider's indications: each `WSK_DATA_INDICATION` or
//! `WSK_DATAGRAM_INDICATION` is one allocation holding the header, its MDL
//! chain, optional extra bytes (the datagram's remote address) and the data
//! the MDLs describe; and the shapes the adversary gives them.
//!
//! A plain shape is what a simple provider would build: one MDL over exactly
//! the data, `Offset` 0, mapped into system space. The adversary's shapes
//! ([`Behaviour::MdlChains`](crate::Behaviour::MdlChains),
//! [`Behaviour::UnmappedIndications`](crate::Behaviour::UnmappedIndications))
//! spread the data over several MDLs at arbitrary byte boundaries, start it
//! at a non-zero `Offset`, surround each MDL's bytes with unrelated bytes
//! and leave pages unmapped, all within what `WSK_BUF` allows
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf>).

use wsk_sys::{
    MDL, MDL_ALLOCATED_FIXED_SIZE, MDL_PAGES_LOCKED, MDL_SOURCE_IS_NONPAGED_POOL, PMDL, WSK_BUF,
    WSK_DATA_INDICATION, WSK_DATAGRAM_INDICATION,
};

use crate::pool::{raw_alloc_zeroed, raw_free};
use crate::world::Rng;

/// How one indicated `WSK_BUF` lies in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BufShape {
    /// Bytes of the data in each MDL, in chain order (empty for a zero-length
    /// buffer without an MDL).
    pub(crate) pieces: Vec<usize>,
    /// `WSK_BUF.Offset`: unrelated bytes the first MDL describes before the
    /// data.
    pub(crate) offset: usize,
    /// Unrelated bytes between one MDL's buffer and the next (no MDL
    /// describes them).
    pub(crate) gap: usize,
    /// Unrelated bytes the last MDL describes after the data.
    pub(crate) tail: usize,
    /// Per MDL: mapped into system space (`MDL_SOURCE_IS_NONPAGED_POOL`) or
    /// only locked (`MDL_PAGES_LOCKED`, `MappedSystemVa` NULL).
    pub(crate) mapped: Vec<bool>,
}

impl BufShape {
    /// One mapped MDL over exactly `len` bytes.
    pub(crate) fn plain(len: usize) -> BufShape {
        BufShape {
            pieces: vec![len],
            offset: 0,
            gap: 0,
            tail: 0,
            mapped: vec![true],
        }
    }

    /// The adversary's shape for `len` bytes: `chains` spreads them over up
    /// to 4 MDLs with an offset, gaps and a tail; `unmapped` leaves each MDL
    /// unmapped with probability 1/2.
    pub(crate) fn hostile(rng: &mut Rng, len: usize, chains: bool, unmapped: bool) -> BufShape {
        let mut s = if chains {
            if len == 0 {
                // "If the Length member is zero, this pointer can be NULL."
                return BufShape {
                    pieces: Vec::new(),
                    mapped: Vec::new(),
                    ..BufShape::default()
                };
            }
            BufShape {
                pieces: cut(rng, len, 4),
                offset: 1 + below(rng, 64),
                gap: below(rng, 24),
                tail: below(rng, 24),
                mapped: Vec::new(),
            }
        } else {
            BufShape::plain(len)
        };
        s.mapped = s
            .pieces
            .iter()
            .map(|_| !unmapped || rng.below(2) == 0)
            .collect();
        s
    }

    fn len(&self) -> usize {
        self.pieces.iter().sum()
    }
}

/// A number in `0..n` (`0` when `n == 0`).
pub(crate) fn below(rng: &mut Rng, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    usize::try_from(rng.below(n as u64)).unwrap_or(0)
}

/// Cuts `total > 0` bytes into 1 to `max_parts` non-empty pieces at random
/// boundaries; a quarter of the time the first pieces are single bytes.
pub(crate) fn cut(rng: &mut Rng, total: usize, max_parts: usize) -> Vec<usize> {
    let parts = 1 + below(rng, max_parts.min(total));
    let mut points: Vec<usize> = if rng.below(4) == 0 {
        (1..parts).collect()
    } else {
        let mut v: Vec<usize> = Vec::with_capacity(parts);
        while v.len() + 1 < parts {
            let p = 1 + below(rng, total - 1);
            if !v.contains(&p) {
                v.push(p);
            }
        }
        v
    };
    points.sort_unstable();
    points.push(total);
    let mut prev = 0;
    points
        .into_iter()
        .map(|p| {
            let n = p - prev;
            prev = p;
            n
        })
        .collect()
}

/// One indication element in provider memory.
pub(crate) struct Element {
    /// Start of the allocation (the indication header).
    pub(crate) base: *mut u8,
    /// Size of the allocation.
    pub(crate) size: usize,
    /// The `extra` bytes reserved after the MDLs.
    pub(crate) extra: *mut u8,
    /// The `WSK_BUF` describing the data.
    pub(crate) buf: WSK_BUF,
}

/// Fills unrelated bytes with a pattern unlike typical test data.
fn junk(p: *mut u8, n: usize) {
    for (i, b) in (0..n).zip((0..=255u8).cycle()) {
        let at = p.wrapping_add(i);
        // SAFETY: callers pass `n` writable bytes at `p`.
        unsafe { at.write(0xA5 ^ b.wrapping_mul(31)) };
    }
}

const ALIGN: usize = 16;

fn mdl_size(start: usize, len: usize) -> usize {
    let pages = ((start & 0xFFF) + len).div_ceil(0x1000).max(1);
    (core::mem::size_of::<MDL>() + pages * 8).next_multiple_of(ALIGN)
}

/// Allocates an element: a zeroed `hdr`-byte header, the MDL chain of
/// `shape` over a copy of `data`, and `extra` zeroed bytes.
pub(crate) fn alloc_element(hdr: usize, data: &[u8], extra: usize, shape: &BufShape) -> Element {
    debug_assert_eq!(shape.len(), data.len());
    let n_mdl = shape.pieces.len();
    // Byte ranges (relative to the data area) each MDL describes.
    let mut ranges = Vec::with_capacity(n_mdl);
    let mut at = 0;
    for (i, &piece) in shape.pieces.iter().enumerate() {
        let lead = if i == 0 { shape.offset } else { 0 };
        let tail = if i + 1 == n_mdl { shape.tail } else { 0 };
        ranges.push((at, lead, piece, lead + piece + tail));
        at += lead + piece + tail + shape.gap;
    }
    let data_len = at;
    let mdl_off = hdr.next_multiple_of(ALIGN);
    // MDL sizes depend on page offsets, which depend on where the data
    // lands; reserve the worst case (every range spanning one more page).
    let mdl_bytes: usize = ranges
        .iter()
        .map(|&(_, _, _, count)| mdl_size(0xFFF, count))
        .sum();
    let extra_off = (mdl_off + mdl_bytes).next_multiple_of(ALIGN);
    let data_off = (extra_off + extra).next_multiple_of(ALIGN);
    let size = data_off + data_len.max(1);
    let base = raw_alloc_zeroed(size);
    let area = base.wrapping_add(data_off);
    junk(area, data_len);
    let mut head: PMDL = core::ptr::null_mut();
    let mut prev: PMDL = core::ptr::null_mut();
    let mut mdl_at = mdl_off;
    let mut copied = 0;
    for (i, &(start, lead, piece, count)) in ranges.iter().enumerate() {
        let described = area.wrapping_add(start);
        // SAFETY: `[start + lead, + piece)` lies in the data area, disjoint
        // from `data` (host memory).
        unsafe {
            core::ptr::copy_nonoverlapping(
                data[copied..].as_ptr(),
                described.wrapping_add(lead),
                piece,
            );
        }
        copied += piece;
        let mdl: PMDL = base.wrapping_add(mdl_at).cast();
        let size_here = mdl_size(described as usize, count);
        mdl_at += size_here;
        let page_offset = (described as usize) & 0xFFF;
        let mapped = shape.mapped.get(i).copied().unwrap_or(true);
        let header = MDL {
            Next: core::ptr::null_mut(),
            Size: i16::try_from(size_here).unwrap_or(i16::MAX),
            MdlFlags: MDL_ALLOCATED_FIXED_SIZE
                | if mapped {
                    MDL_SOURCE_IS_NONPAGED_POOL
                } else {
                    MDL_PAGES_LOCKED
                },
            Process: core::ptr::null_mut(),
            MappedSystemVa: if mapped {
                described.cast()
            } else {
                core::ptr::null_mut()
            },
            StartVa: described.wrapping_sub(page_offset).cast(),
            ByteCount: u32::try_from(count).unwrap_or(u32::MAX),
            ByteOffset: u32::try_from(page_offset).unwrap_or(0),
        };
        // SAFETY: `mdl` is 16-aligned inside the element with room for the
        // header and its page array (reserved above).
        unsafe { mdl.write(header) };
        if prev.is_null() {
            head = mdl;
        } else {
            // SAFETY: `prev` is the previous MDL of this chain.
            unsafe { (*prev).Next = mdl };
        }
        prev = mdl;
    }
    Element {
        base,
        size,
        extra: base.wrapping_add(extra_off),
        buf: WSK_BUF {
            Mdl: head,
            Offset: u32::try_from(shape.offset).unwrap_or(0),
            Length: data.len(),
        },
    }
}

/// Where a datagram element's control information starts in its extra
/// bytes (after room for any socket address).
pub(crate) const CONTROL_AT: usize = 128;

/// An indication structure the provider links into a chain.
pub(crate) trait Link: Sized {
    /// Bytes reserved after the MDLs for [`header`](Link::header)'s `extra`.
    const EXTRA: usize;
    /// The header of an element whose data `buf` describes; `control`
    /// bytes of control information were written at
    /// `extra + CONTROL_AT` (datagrams only).
    fn header(buf: WSK_BUF, extra: *mut u8, control: usize) -> Self;
    /// The address of the element's `Next` field.
    fn next(p: *mut Self) -> *mut *mut Self;
}

impl Link for WSK_DATA_INDICATION {
    const EXTRA: usize = 0;
    fn header(buf: WSK_BUF, _extra: *mut u8, _control: usize) -> Self {
        WSK_DATA_INDICATION {
            Next: core::ptr::null_mut(),
            Buffer: buf,
        }
    }
    fn next(p: *mut Self) -> *mut *mut Self {
        // SAFETY: only computes a field address.
        unsafe { &raw mut (*p).Next }
    }
}

impl Link for WSK_DATAGRAM_INDICATION {
    /// The remote address (a `SOCKADDR` of any family), then up to 64 bytes
    /// of control information.
    const EXTRA: usize = CONTROL_AT + 64;
    fn header(buf: WSK_BUF, extra: *mut u8, control: usize) -> Self {
        WSK_DATAGRAM_INDICATION {
            Next: core::ptr::null_mut(),
            Buffer: buf,
            // "NULL … if there is no control information"
            // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_datagram_indication).
            ControlInfo: if control == 0 {
                core::ptr::null_mut()
            } else {
                extra.wrapping_add(CONTROL_AT).cast()
            },
            ControlInfoLength: u32::try_from(control).unwrap_or(0),
            RemoteAddress: extra.cast(),
        }
    }
    fn next(p: *mut Self) -> *mut *mut Self {
        // SAFETY: only computes a field address.
        unsafe { &raw mut (*p).Next }
    }
}

/// Builds a chain of `T`, one element per `(data, shape)`; `fill(i, extra)`
/// writes element `i`'s [`Link::EXTRA`] bytes and returns how many bytes of
/// control information it wrote at `extra + CONTROL_AT`. Returns the head
/// and each element's address and size (for [`free_elements`] or
/// retention).
pub(crate) fn build_chain<'a, T: Link>(
    items: impl IntoIterator<Item = (&'a [u8], &'a BufShape)>,
    mut fill: impl FnMut(usize, *mut u8) -> usize,
) -> (*mut T, Vec<(usize, usize)>) {
    let mut head: *mut T = core::ptr::null_mut();
    let mut prev: *mut T = core::ptr::null_mut();
    let mut elems = Vec::new();
    for (i, (data, shape)) in items.into_iter().enumerate() {
        let el = alloc_element(core::mem::size_of::<T>(), data, T::EXTRA, shape);
        let control = fill(i, el.extra);
        let ind: *mut T = el.base.cast();
        // SAFETY: `ind` starts a fresh element sized and aligned for a `T`.
        unsafe { ind.write(T::header(el.buf, el.extra, control)) };
        if prev.is_null() {
            head = ind;
        } else {
            // SAFETY: `prev` is the previous element of this chain.
            unsafe { T::next(prev).write(ind) };
        }
        prev = ind;
        elems.push((el.base as usize, el.size));
    }
    (head, elems)
}

/// Frees elements from [`alloc_element`].
pub(crate) fn free_elements(elems: &[(usize, usize)]) {
    for &(p, size) in elems {
        // SAFETY: allocated by `alloc_element` with this size.
        unsafe { raw_free(p as *mut u8, size) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_cover_the_total_with_non_empty_pieces() {
        let mut rng = Rng::new(3);
        let (totals, tries) = if cfg!(miri) { (20, 3) } else { (200, 20) };
        for total in 1..totals {
            for _ in 0..tries {
                let p = cut(&mut rng, total, 6);
                assert!(!p.is_empty() && p.len() <= 6);
                assert!(p.iter().all(|&n| n > 0));
                assert_eq!(p.iter().sum::<usize>(), total);
            }
        }
    }
}
