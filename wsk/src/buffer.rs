//! Owned non-paged buffers described by an MDL.
//!
//! The provider reads and writes data through a `WSK_BUF`: an MDL chain, an
//! offset and a length. A [`Buffer`] owns its memory **and** its MDL, built
//! once at creation, so sending or receiving the same buffer again allocates
//! nothing. Requests take buffers by value and hand them back with the
//! result ([`BufResult`]), so the memory stays alive while the provider may
//! touch it.

use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use wsk_sys as sys;

use crate::error::{Error, Result};

/// `PAGE_SIZE` on `x86_64` and `aarch64` Windows.
const PAGE_SIZE: usize = 4096;

/// What a request that carries a [`Buffer`] resolves to: its result, and the
/// buffer back — on success and on failure alike (tokio-uring's
/// `BufResult`).
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// # let peer = sim.peer_listen("10.0.0.2:7");
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
/// # let registration = wsk::Registration::register(&passive)?;
/// # let provider = registration.capture(&passive, None)?;
/// # let socket = wsk::block_on(&passive, wsk::tcp::connect(&provider, "10.0.0.2:7".parse().unwrap(), wsk::events::NoEvents))?;
/// use wsk::{Buffer, BufResult};
///
/// let (sent, buffer): BufResult<usize> = socket.send(Buffer::from_slice(b"ping")?).wait(&passive);
/// assert_eq!(sent?, 4);
/// assert_eq!(&buffer[..], b"ping"); // the buffer is back, for the next request
/// # socket.close().wait(&passive)?;
/// # drop((buffer, provider, peer));
/// # registration.deregister(&passive).expect("no handles left");
/// # Ok::<(), wsk::Error>(())
/// ```
pub type BufResult<T> = (Result<T>, Buffer);

/// An owned, fixed-capacity, non-paged byte buffer with its MDL.
///
/// The bytes are allocated with the global allocator, which in a driver must
/// hand out non-paged memory (as `wdk-alloc` and this project's example
/// runtime do); the MDL is built with `MmBuildMdlForNonPagedPool`.
///
/// The buffer dereferences to its `len()` valid bytes. A send sends them; a
/// receive fills the buffer from the start, up to its capacity, and sets the
/// length. [`advance`](Self::advance) drops bytes from the front *without
/// copying*: the buffer then starts later in the same memory, and a request
/// passes the provider that position as the `WSK_BUF`'s `Offset` — how
/// [`send_all`](crate::tcp::ConnectionSocket::send_all) sends the rest of a
/// buffer after a short send. [`clear`](Self::clear) makes the whole
/// allocation available again.
///
/// # Invariants
///
/// `ptr` points to `allocated` initialised bytes allocated with
/// `Layout::array::<u8>(allocated)`; `mdl` describes exactly those bytes;
/// `start + len <= allocated`; `0 < allocated <= MAX_LEN`.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::Buffer;
///
/// let mut buffer = Buffer::with_capacity(8)?;
/// assert!(buffer.is_empty());
/// assert_eq!(buffer.extend_from_slice(b"hello, world"), 8); // as much as fits
/// assert_eq!(&buffer[..], b"hello, w");
///
/// buffer.advance(7); // no copy: the buffer now starts at the `w`
/// assert_eq!((&buffer[..], buffer.capacity()), (&b"w"[..], 1));
///
/// buffer.clear(); // the whole allocation again
/// buffer.as_mut_capacity()[..2].copy_from_slice(b"hi");
/// buffer.set_len(2);
/// assert_eq!((buffer.len(), buffer.capacity()), (2, 8));
/// assert_eq!(Buffer::from_slice(b"hi")?, buffer);
/// # drop(buffer);
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct Buffer {
    ptr: NonNull<u8>,
    /// Bytes allocated (and described by the MDL).
    allocated: usize,
    /// Where the buffer starts in the allocation (the `WSK_BUF` offset).
    start: usize,
    /// Valid bytes from `start`.
    len: usize,
    mdl: NonNull<sys::MDL>,
}

// SAFETY: the buffer owns its memory and MDL exclusively; neither is tied to a thread.
unsafe impl Send for Buffer {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// The largest buffer this crate creates: the largest buffer one MDL can
    /// describe on every Windows version WSK runs on. `IoAllocateMdl`
    /// accepts at most 2 GiB − `PAGE_SIZE` on Windows Vista and Server 2008,
    /// and 4 GiB − `PAGE_SIZE` from Windows 7 on
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocatemdl>).
    pub const MAX_LEN: usize = (2 << 30) - PAGE_SIZE;

    /// Allocates a zeroed buffer of `capacity` bytes and its MDL.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (the allocator must allow it; non-paged pool does).
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_BUFFER_SIZE`]: `capacity` is 0 or above [`MAX_LEN`](Self::MAX_LEN).
    /// - [`Error::INSUFFICIENT_RESOURCES`]: the memory or the MDL could not be allocated.
    pub fn with_capacity(capacity: usize) -> Result<Self> {
        if capacity == 0 || capacity > Self::MAX_LEN {
            return Err(Error::INVALID_BUFFER_SIZE);
        }
        let layout =
            core::alloc::Layout::array::<u8>(capacity).map_err(|_| Error::INVALID_BUFFER_SIZE)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })
            .ok_or(Error::INSUFFICIENT_RESOURCES)?;
        #[allow(clippy::cast_possible_truncation)] // capacity <= MAX_LEN < u32::MAX
        let length = capacity as u32;
        // SAFETY: `ptr` is `capacity` bytes of non-paged memory we own; no IRP is associated.
        let mdl = unsafe {
            sys::IoAllocateMdl(
                ptr.as_ptr().cast(),
                length,
                sys::FALSE,
                sys::FALSE,
                core::ptr::null_mut(),
            )
        };
        let Some(mdl) = NonNull::new(mdl) else {
            // SAFETY: allocated above with this layout and not shared.
            unsafe { alloc::alloc::dealloc(ptr.as_ptr(), layout) };
            return Err(Error::INSUFFICIENT_RESOURCES);
        };
        // SAFETY: the MDL describes non-paged memory we own.
        unsafe { sys::MmBuildMdlForNonPagedPool(mdl.as_ptr()) };
        Ok(Self {
            ptr,
            allocated: capacity,
            start: 0,
            len: 0,
            mdl,
        })
    }

    /// Allocates a buffer holding a copy of `data`.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`Buffer::with_capacity`] for `data.len()`.
    pub fn from_slice(data: &[u8]) -> Result<Self> {
        let mut buffer = Self::with_capacity(data.len())?;
        buffer.as_mut_capacity()[..data.len()].copy_from_slice(data);
        buffer.len = data.len();
        Ok(buffer)
    }

    /// The number of valid bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no valid bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes the buffer can hold from its start: the whole allocation,
    /// less what [`advance`](Self::advance) skipped since the last
    /// [`clear`](Self::clear).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.allocated - self.start
    }

    /// Sets the number of valid bytes.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= self.capacity(),
            "wsk: Buffer::set_len({len}) beyond capacity {}",
            self.capacity()
        );
        self.len = len;
    }

    /// Keeps the first `len` valid bytes (no effect if there are fewer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Drops the first `n` valid bytes without copying: the buffer now
    /// starts `n` bytes later in the same memory, and the next request passes
    /// that position to the provider as the `WSK_BUF`'s `Offset`. Capacity
    /// and length shrink by `n`; [`clear`](Self::clear) gives the skipped
    /// memory back.
    ///
    /// # Panics
    ///
    /// If `n` exceeds the length.
    pub fn advance(&mut self, n: usize) {
        assert!(
            n <= self.len,
            "wsk: Buffer::advance({n}) beyond length {}",
            self.len
        );
        self.start += n;
        self.len -= n;
    }

    /// Forgets the contents and makes the whole allocation available again
    /// (the length becomes 0, the capacity the allocated size).
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
    }

    /// Appends as much of `data` as fits and returns how many bytes were copied.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity() - self.len);
        let at = self.len;
        self.as_mut_capacity()[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// The valid bytes (also through `Deref`).
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: invariant: `start + len <= allocated` initialised bytes at `ptr`.
        unsafe { core::slice::from_raw_parts(self.data_ptr(), self.len) }
    }

    /// The valid bytes, mutably (also through `DerefMut`).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.data_ptr(), self.len) }
    }

    /// The whole capacity, mutably (to fill before [`set_len`](Self::set_len)).
    pub fn as_mut_capacity(&mut self) -> &mut [u8] {
        let capacity = self.capacity();
        // SAFETY: invariant: `allocated` initialised bytes, of which the
        // last `capacity` start at `start`; `&mut self` is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.data_ptr(), capacity) }
    }

    /// Where the buffer starts in its allocation.
    fn data_ptr(&self) -> *mut u8 {
        // In bounds: `start <= allocated` (invariant).
        self.ptr.as_ptr().wrapping_add(self.start)
    }

    /// The `WSK_BUF` for the valid bytes (sending).
    pub(crate) fn wsk_buf_data(&self) -> sys::WSK_BUF {
        self.wsk_buf(self.start, self.len)
    }

    /// The `WSK_BUF` for the whole capacity (receiving into the buffer from
    /// its start).
    pub(crate) fn wsk_buf_capacity(&self) -> sys::WSK_BUF {
        self.wsk_buf(self.start, self.capacity())
    }

    /// The `WSK_BUF` for the capacity after the valid bytes (receiving more).
    pub(crate) fn wsk_buf_spare(&self) -> sys::WSK_BUF {
        self.wsk_buf(self.start + self.len, self.capacity() - self.len)
    }

    fn wsk_buf(&self, offset: usize, length: usize) -> sys::WSK_BUF {
        #[allow(clippy::cast_possible_truncation)] // offset < allocated <= MAX_LEN < u32::MAX
        let offset = offset as u32;
        sys::WSK_BUF {
            Mdl: self.mdl.as_ptr(),
            Offset: offset,
            Length: length,
        }
    }

    /// Where the buffer starts and how long it is, to restore after
    /// [`advance`](Self::advance)s with [`set_span`](Self::set_span).
    pub(crate) fn span(&self) -> (usize, usize) {
        (self.start, self.len)
    }

    /// Restores a span [`span`](Self::span) returned for this buffer.
    pub(crate) fn set_span(&mut self, (start, len): (usize, usize)) {
        debug_assert!(start + len <= self.allocated);
        self.start = start;
        self.len = len;
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: we own the MDL (invariant) and no request holds the buffer
        // (requests own the buffer by value while pending).
        unsafe { sys::IoFreeMdl(self.mdl.as_ptr()) };
        // The layout was valid at allocation, so it still is.
        let layout =
            core::alloc::Layout::array::<u8>(self.allocated).unwrap_or_else(|_| unreachable!());
        // SAFETY: allocated in `with_capacity` with this layout (invariant).
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), layout) };
    }
}

impl core::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl Deref for Buffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for Buffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsMut<[u8]> for Buffer {
    fn as_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl PartialEq for Buffer {
    /// Buffers are equal when their valid bytes are.
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Buffer {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_the_wsk_buf_offset_without_copying() {
        let _sim = wsk_sim::Sim::start();
        let mut buffer = Buffer::from_slice(b"0123456789").unwrap();
        let base = buffer.as_ptr();
        buffer.advance(4);
        assert_eq!(&buffer[..], b"456789");
        assert_eq!(buffer.as_ptr(), base.wrapping_add(4), "the same memory");
        let sent = buffer.wsk_buf_data();
        assert_eq!((sent.Offset, sent.Length), (4, 6));
        let receive = buffer.wsk_buf_capacity();
        assert_eq!((receive.Offset, receive.Length), (4, 6));
        buffer.truncate(2);
        let spare = buffer.wsk_buf_spare();
        assert_eq!((spare.Offset, spare.Length), (6, 4));
        buffer.clear();
        assert_eq!((buffer.len(), buffer.capacity()), (0, 10));
        assert_eq!(buffer.wsk_buf_capacity().Offset, 0);
    }

    #[test]
    fn span_round_trips() {
        let _sim = wsk_sim::Sim::start();
        let mut buffer = Buffer::from_slice(b"abcdef").unwrap();
        let span = buffer.span();
        buffer.advance(5);
        buffer.set_span(span);
        assert_eq!(&buffer[..], b"abcdef");
    }

    #[test]
    #[should_panic(expected = "beyond length")]
    fn advance_past_the_data_panics() {
        let _sim = wsk_sim::Sim::start();
        let mut buffer = Buffer::from_slice(b"ab").unwrap();
        buffer.advance(3);
    }
}
