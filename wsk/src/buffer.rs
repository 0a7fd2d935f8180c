//! Owned non-paged buffers described by an MDL.
//!
//! The provider reads and writes data through a `WSK_BUF`: an MDL chain, an
//! offset and a length. A [`Buffer`] owns its memory **and** its MDL, built
//! once at creation, so sending or receiving the same buffer again allocates
//! nothing. Requests take buffers by value and hand them back with the
//! result, so the memory stays alive while the provider may touch it.

use core::ptr::NonNull;

use wsk_sys as sys;

use crate::{Error, Result};

/// The largest buffer this crate creates: the largest buffer one MDL can
/// describe on every Windows version WSK runs on. `IoAllocateMdl` accepts at
/// most 2 GiB − `PAGE_SIZE` on Windows Vista and Server 2008, and 4 GiB −
/// `PAGE_SIZE` from Windows 7 on
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioallocatemdl>).
pub const MAX_BUFFER_LEN: usize = (2 << 30) - PAGE_SIZE;

/// `PAGE_SIZE` on `x86_64` and `aarch64` Windows.
const PAGE_SIZE: usize = 4096;

/// An owned, fixed-capacity, non-paged byte buffer with its MDL.
///
/// The bytes are allocated with the global allocator, which in a driver must
/// hand out non-paged memory (as `wdk-alloc` and this project's example
/// runtime do); the MDL is built with `MmBuildMdlForNonPagedPool`.
///
/// `len()` bytes are valid data; a receive fills the buffer from the start,
/// up to its capacity, and sets the length.
///
/// # Invariants
///
/// `ptr` points to `capacity` initialised bytes allocated with
/// `Layout::array::<u8>(capacity)`; `mdl` describes exactly those bytes;
/// `len <= capacity`; `0 < capacity <= MAX_BUFFER_LEN`.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::Buffer;
///
/// let mut buffer = Buffer::with_capacity(8)?;
/// assert!(buffer.is_empty());
/// assert_eq!(buffer.extend_from_slice(b"hello, world"), 8); // as much as fits
/// assert_eq!(buffer.as_slice(), b"hello, w");
///
/// buffer.clear();
/// buffer.as_mut_capacity()[..2].copy_from_slice(b"hi");
/// buffer.set_len(2);
/// assert_eq!((buffer.len(), buffer.capacity()), (2, 8));
/// assert_eq!(Buffer::from_slice(b"hi")?.as_slice(), buffer.as_slice());
/// # drop(buffer);
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct Buffer {
    ptr: NonNull<u8>,
    capacity: usize,
    len: usize,
    mdl: NonNull<sys::MDL>,
}

// SAFETY: the buffer owns its memory and MDL exclusively; neither is tied to a thread.
unsafe impl Send for Buffer {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Allocates a zeroed buffer of `capacity` bytes and its MDL.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (the allocator must allow it; non-paged pool does).
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_BUFFER_SIZE`]: `capacity` is 0 or above [`MAX_BUFFER_LEN`].
    /// - [`Error::INSUFFICIENT_RESOURCES`]: the memory or the MDL could not be allocated.
    pub fn with_capacity(capacity: usize) -> Result<Self> {
        if capacity == 0 || capacity > MAX_BUFFER_LEN {
            return Err(Error::INVALID_BUFFER_SIZE);
        }
        let layout =
            core::alloc::Layout::array::<u8>(capacity).map_err(|_| Error::INVALID_BUFFER_SIZE)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })
            .ok_or(Error::INSUFFICIENT_RESOURCES)?;
        #[allow(clippy::cast_possible_truncation)] // capacity <= MAX_BUFFER_LEN < u32::MAX
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
            capacity,
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

    /// The fixed capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sets the number of valid bytes.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= self.capacity,
            "wsk: Buffer::set_len({len}) beyond capacity {}",
            self.capacity
        );
        self.len = len;
    }

    /// Forgets the contents (the length becomes 0).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends as much of `data` as fits and returns how many bytes were copied.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity - self.len);
        let start = self.len;
        self.as_mut_capacity()[start..start + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    /// The valid bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: invariant: `capacity >= len` initialised bytes at `ptr`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The valid bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The whole capacity, mutably (to fill before [`set_len`](Self::set_len)).
    pub fn as_mut_capacity(&mut self) -> &mut [u8] {
        // SAFETY: invariant: `capacity` initialised bytes; `&mut self` is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity) }
    }

    /// The `WSK_BUF` for the valid bytes (sending).
    pub(crate) fn wsk_buf_data(&self) -> sys::WSK_BUF {
        sys::WSK_BUF {
            Mdl: self.mdl.as_ptr(),
            Offset: 0,
            Length: self.len,
        }
    }

    /// The `WSK_BUF` for the whole capacity (receiving).
    pub(crate) fn wsk_buf_capacity(&self) -> sys::WSK_BUF {
        sys::WSK_BUF {
            Mdl: self.mdl.as_ptr(),
            Offset: 0,
            Length: self.capacity,
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: we own the MDL (invariant) and no request holds the buffer
        // (requests own the buffer by value while pending).
        unsafe { sys::IoFreeMdl(self.mdl.as_ptr()) };
        // The layout was valid at allocation, so it still is.
        let layout =
            core::alloc::Layout::array::<u8>(self.capacity).unwrap_or_else(|_| unreachable!());
        // SAFETY: allocated in `with_capacity` with this layout (invariant).
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), layout) };
    }
}

impl core::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}
