//! The event side of connection sockets: [`ConnectionEvents`], the
//! constant dispatch table derived from it, the trampolines the provider
//! calls, and what they hand the handler (indications, flags, actions).
//! Exported from [`crate::events`].

use core::cell::Cell;
use core::marker::PhantomData;

use wsk_sys as sys;

use crate::buffer::Buffer;
use crate::error::Result;
use crate::irql::context::EventContext;
use crate::mdl::BufPieces;
use crate::socket::core::{DEAD, ErasedCore, SocketCore};
use crate::socket::retain::Retained;

bitflags::bitflags! {
    /// The `Flags` of a disconnect event (`PFN_WSK_DISCONNECT_EVENT`).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect_event>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DisconnectFlags: u32 {
        /// `WSK_FLAG_ABORTIVE`: the peer reset the connection.
        const ABORTIVE = sys::WSK_FLAG_ABORTIVE;
        /// `WSK_FLAG_AT_DISPATCH_LEVEL`: the callback runs at `DISPATCH_LEVEL`.
        const AT_DISPATCH_LEVEL = sys::WSK_FLAG_AT_DISPATCH_LEVEL;
        // Keep flags this crate does not know.
        const _ = !0;
    }
}

impl DisconnectFlags {
    /// The peer reset the connection: nothing more can be sent or received.
    #[must_use]
    pub fn is_abortive(self) -> bool {
        self.contains(Self::ABORTIVE)
    }

    /// The peer closed its sending direction: no more data will arrive, but
    /// this side may still send.
    #[must_use]
    pub fn is_graceful(self) -> bool {
        !self.is_abortive()
    }
}

bitflags::bitflags! {
    /// The `Flags` of a receive event (`PFN_WSK_RECEIVE_EVENT`): how the
    /// provider indicates an [`Indication`].
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct IndicationFlags: u32 {
        /// `WSK_FLAG_RELEASE_ASAP`: retain these buffers only briefly.
        const RELEASE_ASAP = sys::WSK_FLAG_RELEASE_ASAP;
        /// `WSK_FLAG_ENTIRE_MESSAGE`: the indication holds a whole message.
        const ENTIRE_MESSAGE = sys::WSK_FLAG_ENTIRE_MESSAGE;
        /// `WSK_FLAG_AT_DISPATCH_LEVEL`: the callback runs at `DISPATCH_LEVEL`.
        const AT_DISPATCH_LEVEL = sys::WSK_FLAG_AT_DISPATCH_LEVEL;
        // Keep flags this crate does not know.
        const _ = !0;
    }
}

/// What a receive callback did with the indicated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiveAction {
    /// Consumed all indicated bytes (`STATUS_SUCCESS`). More indications follow
    /// as data arrives.
    Accept,
    /// Consumed only the first `n` bytes (`STATUS_SUCCESS` with
    /// `*BytesAccepted = n`). No further indications are made until a receive
    /// request completes; the rest is delivered to it. `AcceptPartial(0)` is
    /// [`Refuse`](Self::Refuse); `n` above the indicated length is all of it.
    AcceptPartial(usize),
    /// Took nothing (`STATUS_DATA_NOT_ACCEPTED`). The provider keeps the data
    /// and makes no further indications until a receive request completes.
    Refuse,
}

/// Event callbacks of a connection-oriented socket
/// (`WSK_CLIENT_CONNECTION_DISPATCH`).
///
/// Implement the methods you need in an impl block marked
/// [`#[wsk::vtable]`](crate::vtable), which sets the matching `HAS_*`
/// constants; only those callbacks are installed and enabled. All callbacks
/// run at IRQL ≤ `DISPATCH_LEVEL` and must not block.
///
/// ```
/// use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
/// use core::sync::atomic::{AtomicBool, Ordering};
///
/// struct Peer { closed: AtomicBool }
///
/// #[wsk::vtable]
/// impl ConnectionEvents for Peer {
///     fn on_disconnect(&self, cx: &EventContext<'_>, flags: DisconnectFlags) {
///         let _irql_is_dispatch = cx.at_dispatch().is_some();
///         self.closed.store(flags.is_graceful(), Ordering::Release);
///     }
/// }
/// ```
pub trait ConnectionEvents: Send + Sync + 'static {
    /// Present only in impl blocks marked [`#[wsk::vtable]`](crate::vtable),
    /// which adds it: an impl without the attribute does not compile,
    /// instead of silently installing none of its callbacks.
    #[doc(hidden)]
    const USE_VTABLE_ATTR: ();

    /// Whether [`on_receive`](Self::on_receive) is implemented
    /// (`WSK_EVENT_RECEIVE`).
    const HAS_RECEIVE: bool = false;
    /// Whether [`on_disconnect`](Self::on_disconnect) is implemented
    /// (`WSK_EVENT_DISCONNECT`).
    const HAS_DISCONNECT: bool = false;
    /// Whether [`on_send_backlog`](Self::on_send_backlog) is implemented
    /// (`WSK_EVENT_SEND_BACKLOG`).
    const HAS_SEND_BACKLOG: bool = false;

    /// Data arrived (`WskReceiveEvent`).
    ///
    /// `data` is `None` when the provider says the socket must be closed.
    /// Return what was consumed, or call [`Indication::retain`] to keep the
    /// provider's buffers (the trampoline then returns `STATUS_PENDING`, and
    /// the returned action is ignored).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`; see `cx`.
    fn on_receive(&self, cx: &EventContext<'_>, data: Option<Indication<'_>>) -> ReceiveAction {
        let _ = (cx, data);
        ReceiveAction::Refuse
    }

    /// The peer disconnected (`WskDisconnectEvent`), gracefully or abortively.
    ///
    /// After a graceful disconnect this side may still send; after an abortive
    /// one the socket refuses sends with
    /// [`Error::CONNECTION_ABORTED`](crate::Error::CONNECTION_ABORTED) without
    /// calling the provider. The provider is always answered `STATUS_SUCCESS`,
    /// the only status the DDI allows.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`; `flags` and `cx` say whether it is exactly `DISPATCH_LEVEL`.
    fn on_disconnect(&self, cx: &EventContext<'_>, flags: DisconnectFlags) {
        let _ = (cx, flags);
    }

    /// The ideal amount of outstanding send data changed (`WskSendBacklogEvent`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    fn on_send_backlog(&self, cx: &EventContext<'_>, ideal_backlog: usize) {
        let _ = (cx, ideal_backlog);
    }
}

/// The handler of sockets that enable no events.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

#[crate::vtable]
impl ConnectionEvents for NoEvents {}

/// Data indicated to a receive callback: a chain of provider-owned buffers
/// (`WSK_DATA_INDICATION`), valid during the callback.
///
/// The chain may hold several elements, each of whose `WSK_BUF` may span
/// several MDLs and start at an offset into the first
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf>);
/// this type reads all of them, in order. Iterate the pieces with
/// [`segments`](Self::segments) (no copy), copy with
/// [`copy_to`](Self::copy_to), or keep them past the callback with
/// [`retain`](Self::retain). Reading maps the provider's MDLs, which can
/// fail for lack of resources: that is an error the handler sees, never
/// missing bytes.
pub struct Indication<'a> {
    pub(crate) head: *mut sys::WSK_DATA_INDICATION,
    pub(crate) total: usize,
    pub(crate) flags: IndicationFlags,
    /// The retained slot, set when the callback retains the chain: the
    /// trampoline then answers `STATUS_PENDING`, or `STATUS_SUCCESS` if the
    /// chain was released before the callback returned.
    pub(crate) retained: &'a Cell<Option<u8>>,
    /// The indicating socket's core (the callback's context, with the
    /// provenance of the whole `CoreRef` allocation), to retain the chain with.
    pub(crate) core: *const ErasedCore,
}

impl Indication<'_> {
    /// Total number of bytes indicated.
    #[must_use]
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no bytes were indicated.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The indication's flags.
    #[must_use]
    pub fn flags(&self) -> IndicationFlags {
        self.flags
    }

    /// The indicated bytes, one borrowed slice per MDL piece, in order
    /// (no copy).
    ///
    /// Every piece is mapped first (`MmGetSystemAddressForMdlSafe`), so the
    /// iteration itself cannot fail.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (inside the callback).
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES)
    /// if a piece cannot be mapped into system space (low resources): the
    /// data is still the provider's; refuse it ([`ReceiveAction::Refuse`])
    /// and read it with a receive request, or [`retain`](Self::retain) it
    /// and try again later.
    pub fn segments(&self) -> Result<Segments<'_>> {
        let priority = self.mapping_priority();
        // SAFETY: the chain is the provider's during the callback, mapped
        // by this thread only (an `Indication` is neither `Send` nor `Sync`).
        let pieces = || unsafe { DataPieces::new(self.head, priority) };
        crate::mdl::check_pieces(pieces())?;
        Ok(Segments { pieces: pieces() })
    }

    /// Copies the first `out.len()` indicated bytes (or all of them, if
    /// fewer) into `out`; returns how many.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (inside the callback).
    ///
    /// # Errors
    ///
    /// As [`segments`](Self::segments), for a piece `out` has room for.
    #[inline]
    pub fn copy_to(&self, out: &mut [u8]) -> Result<usize> {
        // SAFETY: as in `segments`.
        unsafe { copy_chain(self.head, self.mapping_priority(), out) }
    }

    /// Copies the indicated bytes into a new [`Buffer`](crate::Buffer) (one
    /// allocation for the bytes, one MDL).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (non-paged allocation).
    ///
    /// # Errors
    ///
    /// As [`Buffer::with_capacity`](crate::Buffer::with_capacity) for the
    /// indicated length ([`Error::INVALID_BUFFER_SIZE`](crate::Error::INVALID_BUFFER_SIZE)
    /// for an empty indication), and as [`copy_to`](Self::copy_to).
    pub fn to_buffer(&self) -> Result<Buffer> {
        let mut buffer = Buffer::with_capacity(self.total)?;
        let n = self.copy_to(buffer.as_mut_capacity())?;
        buffer.set_len(n);
        Ok(buffer)
    }

    #[inline]
    fn mapping_priority(&self) -> sys::ULONG {
        // SAFETY: the core is the callback's context, alive during it.
        let core = unsafe { &*self.core };
        core.provider.mapping_priority()
    }

    /// Keeps the provider's buffers after the callback returns.
    ///
    /// The trampoline answers `STATUS_PENDING` (the callback's
    /// [`ReceiveAction`] is then ignored); the returned handle calls
    /// `WskRelease` when dropped, at IRQL ≤ `DISPATCH_LEVEL`. Honour
    /// [`IndicationFlags::RELEASE_ASAP`]. Dropped before the callback
    /// returns (handed to a work item that was quick, say), it releases
    /// nothing and the trampoline answers `STATUS_SUCCESS` instead: all the
    /// data was taken.
    ///
    /// Returns `None` — and the callback's action applies — when the list
    /// could not be released later: the socket is already closing (the DDI
    /// requires every retained indication to be released before
    /// `WskCloseSocket`), its `PWSK_SOCKET` is not known yet (the request
    /// that created or accepted it has not completed), or 16 lists of this
    /// socket are retained already.
    #[must_use]
    pub fn retain(self) -> Option<RetainedIndication> {
        // SAFETY: inside the receive callback that indicated `head`, whose
        // context `core` is (the trampoline builds indications only there).
        let raw = unsafe { Retained::retain(self.core, self.head) }?;
        self.retained.set(Some(raw.slot()));
        Some(RetainedIndication {
            raw,
            total: self.total,
        })
    }
}

impl core::fmt::Debug for Indication<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Indication")
            .field("len", &self.total)
            .field("flags", &self.flags)
            .finish()
    }
}

/// The indicated bytes of a data indication chain, one borrowed slice per
/// MDL piece: the `WSK_DATA_INDICATION`s in order (`Next`), and within each
/// its `WSK_BUF`'s MDL chain from `Offset` for `Length` bytes. Every piece
/// was mapped when the iterator was made
/// ([`Indication::segments`], [`RetainedIndication::with_segments`]).
pub struct Segments<'a> {
    pieces: DataPieces<'a>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        // Every piece was mapped and checked when the iterator was made, and
        // stays mapped while the indication is held: no error remains.
        self.pieces.next()?.ok()
    }
}

impl core::fmt::Debug for Segments<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Segments").finish_non_exhaustive()
    }
}

/// Copies the first bytes of the chain at `node` into `out`; returns how
/// many (each element's `WSK_BUF` through [`crate::mdl::copy_buf`]). Kept
/// out of line, so that a handler calling it still inlines into the
/// trampoline (measured: `cargo xtask bench`, `receive_copy`).
///
/// # Errors
///
/// As [`crate::mdl::copy_buf`].
///
/// # Safety
///
/// As [`DataPieces::new`].
#[inline(never)]
unsafe fn copy_chain(
    mut node: *mut sys::WSK_DATA_INDICATION,
    priority: sys::ULONG,
    out: &mut [u8],
) -> Result<usize> {
    let mut copied = 0;
    while !node.is_null() && copied < out.len() {
        // SAFETY: the provider keeps the chain valid (caller contract).
        let element = unsafe { &*node };
        // SAFETY: the element's WSK_BUF, mapped by this thread only (caller
        // contract); the slice is the room left.
        copied += unsafe { crate::mdl::copy_buf(&element.Buffer, priority, &mut out[copied..]) }?;
        node = element.Next;
    }
    Ok(copied)
}

/// The pieces of every `WSK_DATA_INDICATION` of a data indication chain, or the error
/// that stops the walk.
struct DataPieces<'a> {
    next: *mut sys::WSK_DATA_INDICATION,
    current: Option<BufPieces<'a>>,
    priority: sys::ULONG,
}

impl DataPieces<'_> {
    /// # Safety
    ///
    /// `head` is a chain the provider keeps valid for `'a`, whose MDLs no
    /// other thread maps meanwhile.
    unsafe fn new(head: *mut sys::WSK_DATA_INDICATION, priority: sys::ULONG) -> Self {
        Self {
            next: head,
            current: None,
            priority,
        }
    }
}

impl<'a> Iterator for DataPieces<'a> {
    type Item = Result<&'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Result<&'a [u8]>> {
        loop {
            if let Some(piece) = self.current.as_mut().and_then(Iterator::next) {
                if piece.is_err() {
                    self.next = core::ptr::null_mut();
                }
                return Some(piece);
            }
            if self.next.is_null() {
                return None;
            }
            // SAFETY: the provider keeps the chain valid for 'a (contract of
            // `new`).
            let node = unsafe { &*self.next };
            self.next = node.Next;
            // SAFETY: the element's WSK_BUF lives as long as the chain;
            // mapped by this thread only (contract of `new`).
            self.current = Some(unsafe { BufPieces::new(&node.Buffer, self.priority) });
        }
    }
}

/// Data indications kept past the receive callback; released to the provider
/// with `WskRelease` when dropped.
///
/// It may move to another thread (`Send`) but not be shared between threads
/// (not `Sync`): reading it maps the provider's MDLs with
/// `MmGetSystemAddressForMdlSafe`, which only one thread at a time may call
/// for an MDL
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe>).
///
/// ```
/// fn movable<T: Send>() {}
/// movable::<wsk::events::RetainedIndication>();
/// ```
///
/// ```compile_fail,E0277
/// fn shareable<T: Sync>() {}
/// shareable::<wsk::events::RetainedIndication>(); // two threads could map one MDL
/// ```
///
/// # IRQL
///
/// Dropping it is legal at IRQL ≤ `DISPATCH_LEVEL`.
pub struct RetainedIndication {
    raw: Retained<sys::WSK_DATA_INDICATION>,
    total: usize,
}

impl RetainedIndication {
    /// Total number of bytes retained.
    #[must_use]
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no bytes were retained.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Runs `read` with the retained bytes, one borrowed slice per MDL
    /// piece, in order (no copy; see [`Indication::segments`]); returns what
    /// it returns.
    ///
    /// The provider's memory is lent to the closure only: no borrow of it
    /// outlives the call, so the list can be released — by this handle's
    /// drop, or by [`Registration::deregister`](crate::Registration::deregister)
    /// if the handle was leaked — without leaving a dangling slice behind.
    ///
    /// ```compile_fail
    /// # use wsk::events::RetainedIndication;
    /// fn first(retained: &RetainedIndication) -> &[u8] {
    ///     retained.with_segments(|mut segments| segments.next().unwrap()).unwrap()
    /// }
    /// ```
    ///
    /// `read` runs inside the socket's run-down, which deregistration waits
    /// for before it can release the list and close the socket; so it must
    /// not wait, and it cannot: it is `Send`, and the [`Passive`](crate::irql::Passive)
    /// token everything that waits takes is not (nor is a reference to it).
    /// A closure that waited for a receive on the same socket would hold
    /// deregistration — a hung `DriverUnload` — until the peer sent data:
    ///
    /// ```compile_fail,E0277
    /// # use wsk::events::{NoEvents, RetainedIndication};
    /// # use wsk::irql::Passive;
    /// # use wsk::tcp::ConnectionSocket;
    /// fn head_then_body(
    ///     kept: &RetainedIndication,
    ///     socket: &ConnectionSocket<NoEvents>,
    ///     passive: &Passive<'_>,
    /// ) {
    ///     let _ = kept.with_segments(|_head| {
    ///         // Waits inside the run-down: `&Passive` is not `Send`.
    ///         socket.receive(wsk::Buffer::with_capacity(64).unwrap()).wait(passive)
    ///     });
    /// }
    /// ```
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::FILE_FORCED_CLOSED`](crate::Error::FILE_FORCED_CLOSED) once
    /// deregistration closed the socket (and released the list);
    /// [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES)
    /// if a piece cannot be mapped into system space now (nothing is
    /// consumed and the call may be made again; whether a later mapping
    /// succeeds is not documented: `docs/conformance.md` G-18).
    pub fn with_segments<R>(&self, read: impl FnOnce(Segments<'_>) -> R + Send) -> Result<R> {
        let priority = self.mapping_priority();
        self.raw.read(|head| {
            // SAFETY: retained, and read inside the socket's run-down: the
            // provider keeps the chain until `WskRelease` (our drop, or
            // deregistration, which waits for the run-down); a
            // `RetainedIndication` is not `Sync`, so only the thread holding
            // it maps its MDLs.
            let pieces = || unsafe { DataPieces::new(head, priority) };
            crate::mdl::check_pieces(pieces())?;
            Ok(read(Segments { pieces: pieces() }))
        })?
    }

    /// Copies the first `out.len()` retained bytes (or all of them, if
    /// fewer) into `out`; returns how many.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`with_segments`](Self::with_segments), for a piece `out` has room
    /// for.
    #[inline]
    pub fn copy_to(&self, out: &mut [u8]) -> Result<usize> {
        let priority = self.mapping_priority();
        self.raw.read(|head| {
            // SAFETY: as in `with_segments`.
            unsafe { copy_chain(head, priority, out) }
        })?
    }

    /// Copies into `out` the retained bytes from `at` on, mapping only the
    /// MDLs it copies from (those before `at` are skipped by their byte
    /// counts); how many, and whether that reached the last byte. A mapping
    /// that fails after some bytes were copied ends the copy there (the
    /// error comes with the next call).
    ///
    /// For readers that consume a list in parts (`tcp::ReceiveQueue`): a
    /// mapping failure costs them only the MDLs they need next, and what an
    /// earlier call mapped stays mapped.
    pub(crate) fn copy_from(&self, at: usize, out: &mut [u8]) -> Result<(usize, bool)> {
        let priority = self.mapping_priority();
        let copied = self.raw.read(|head| {
            let mut copied = 0;
            // SAFETY: as in `with_segments`.
            for span in unsafe { Spans::new(head, at) } {
                if copied == out.len() {
                    break;
                }
                // SAFETY: as in `with_segments`.
                let bytes = match span.and_then(|span| unsafe { span.map(priority) }) {
                    Ok(bytes) => bytes,
                    // What was copied counts; the error comes next time.
                    Err(_) if copied > 0 => break,
                    Err(e) => return Err(e),
                };
                let n = bytes.len().min(out.len() - copied);
                out[copied..copied + n].copy_from_slice(&bytes[..n]);
                copied += n;
            }
            Ok(copied)
        })??;
        Ok((copied, at + copied >= self.total))
    }

    /// Runs `f` with the bytes from `at` to the end of the MDL that holds
    /// byte `at` (empty at or past the end) and whether no byte follows
    /// them; maps that MDL only.
    pub(crate) fn with_piece_at<R>(
        &self,
        at: usize,
        f: impl FnOnce(&[u8], bool) -> R + Send,
    ) -> Result<R> {
        let priority = self.mapping_priority();
        let total = self.total;
        self.raw.read(|head| {
            // SAFETY: as in `with_segments`.
            let Some(span) = (unsafe { Spans::new(head, at) }).next() else {
                return Ok(f(&[], true));
            };
            // SAFETY: as in `with_segments`.
            let bytes = unsafe { span?.map(priority) }?;
            Ok(f(bytes, at + bytes.len() >= total))
        })?
    }

    fn mapping_priority(&self) -> sys::ULONG {
        self.raw.core().provider.mapping_priority()
    }
}

/// One MDL's share of a data indication chain, not mapped yet: `len` bytes
/// from `skip` in the MDL's buffer.
struct Span<'a> {
    mdl: sys::PMDL,
    skip: usize,
    len: usize,
    _chain: PhantomData<&'a [u8]>,
}

impl<'a> Span<'a> {
    /// The span's bytes, mapped into system space.
    ///
    /// # Safety
    ///
    /// No other thread maps the MDL meanwhile (`MmGetSystemAddressForMdlSafe`
    /// allows one caller at a time per MDL).
    unsafe fn map(&self, priority: sys::ULONG) -> Result<&'a [u8]> {
        // SAFETY: the MDL describes locked pages of the chain, valid for 'a
        // (contract of `Spans::new`), mapped by this thread only (caller
        // contract); legal at <= DISPATCH_LEVEL.
        let base = unsafe { sys::MmGetSystemAddressForMdlSafe(self.mdl, priority) };
        if base.is_null() {
            return Err(crate::Error::INSUFFICIENT_RESOURCES);
        }
        let start = base.cast::<u8>().wrapping_add(self.skip);
        // SAFETY: `[skip, skip + len)` lies within the MDL's mapped bytes,
        // valid for 'a.
        Ok(unsafe { core::slice::from_raw_parts(start, self.len) })
    }
}

/// The non-empty [`Span`]s of a data indication chain from a byte offset
/// on, found from the MDLs' byte counts without mapping any; an error ends
/// the walk.
struct Spans<'a> {
    node: *mut sys::WSK_DATA_INDICATION,
    mdl: sys::PMDL,
    /// Bytes still to skip in the current MDL: `Offset` for an element's
    /// first MDL, plus what is left of the offset the walk starts at.
    skip: usize,
    /// Bytes of the current element not walked yet.
    left: usize,
    /// Bytes of the chain still to pass over before the first span.
    pass: usize,
    _chain: PhantomData<&'a [u8]>,
}

impl Spans<'_> {
    /// The spans of `head` from byte `at` on.
    ///
    /// # Safety
    ///
    /// `head` is a chain the provider keeps valid for `'a`.
    unsafe fn new(head: *mut sys::WSK_DATA_INDICATION, at: usize) -> Self {
        Self {
            node: head,
            mdl: core::ptr::null_mut(),
            skip: 0,
            left: 0,
            pass: at,
            _chain: PhantomData,
        }
    }
}

impl<'a> Iterator for Spans<'a> {
    type Item = Result<Span<'a>>;

    fn next(&mut self) -> Option<Result<Span<'a>>> {
        loop {
            if self.left == 0 {
                if self.node.is_null() {
                    return None;
                }
                // SAFETY: the provider keeps the chain valid (contract of
                // `new`).
                let element = unsafe { &*self.node };
                self.node = element.Next;
                self.mdl = element.Buffer.Mdl;
                self.skip = element.Buffer.Offset as usize;
                self.left = element.Buffer.Length;
                continue;
            }
            if self.mdl.is_null() {
                // The chain describes fewer bytes than `Length`.
                self.node = core::ptr::null_mut();
                self.left = 0;
                return Some(Err(crate::Error::INVALID_BUFFER_SIZE));
            }
            let mdl = self.mdl;
            // SAFETY: a valid MDL of the chain (contract of `new`).
            let count = unsafe { sys::MmGetMdlByteCount(mdl) } as usize;
            // SAFETY: as above; `Next` may be read directly.
            self.mdl = unsafe { (*mdl).Next };
            let skip = core::mem::take(&mut self.skip);
            let n = count.saturating_sub(skip).min(self.left);
            self.left -= n;
            if n <= self.pass {
                // Before the start (or empty): passed over unmapped.
                self.pass -= n;
                continue;
            }
            let pass = core::mem::take(&mut self.pass);
            return Some(Ok(Span {
                mdl,
                skip: skip + pass,
                len: n - pass,
                _chain: PhantomData,
            }));
        }
    }
}

impl core::fmt::Debug for RetainedIndication {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetainedIndication")
            .field("len", &self.total)
            .finish_non_exhaustive()
    }
}

/// The dispatch table and event mask derived from a [`ConnectionEvents`]
/// implementation, as constants.
pub(crate) struct ConnectionVtable<H>(PhantomData<H>);

impl<H: ConnectionEvents> ConnectionVtable<H> {
    /// `WSK_CLIENT_CONNECTION_DISPATCH` with only the implemented callbacks.
    pub(crate) const DISPATCH: sys::WSK_CLIENT_CONNECTION_DISPATCH =
        sys::WSK_CLIENT_CONNECTION_DISPATCH {
            WskReceiveEvent: if H::HAS_RECEIVE {
                Some(receive_event::<H>)
            } else {
                None
            },
            WskDisconnectEvent: if H::HAS_DISCONNECT {
                Some(disconnect_event::<H>)
            } else {
                None
            },
            WskSendBacklogEvent: if H::HAS_SEND_BACKLOG {
                Some(send_backlog_event::<H>)
            } else {
                None
            },
        };

    /// The `SO_WSK_EVENT_CALLBACK` mask enabling exactly those callbacks.
    pub(crate) const EVENT_MASK: u32 = (if H::HAS_RECEIVE {
        sys::WSK_EVENT_RECEIVE
    } else {
        0
    }) | (if H::HAS_DISCONNECT {
        sys::WSK_EVENT_DISCONNECT
    } else {
        0
    }) | (if H::HAS_SEND_BACKLOG {
        sys::WSK_EVENT_SEND_BACKLOG
    } else {
        0
    });

    /// The table to pass with the socket (null when nothing is enabled).
    pub(crate) fn dispatch_ptr() -> *const sys::WSK_CLIENT_CONNECTION_DISPATCH {
        if Self::EVENT_MASK == 0 {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }
}

/// `PFN_WSK_DISCONNECT_EVENT` trampoline.
///
/// # Safety
///
/// Called by the provider with the context of a socket whose handler is `H`.
unsafe extern "system" fn disconnect_event<H: ConnectionEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live SocketCore<H> until its close completes.
    let core = unsafe { &*context.cast::<SocketCore<H>>() };
    let flags = DisconnectFlags::from_bits_retain(flags);
    core.record_peer_disconnect(flags.bits());
    // SAFETY: inside the provider's callback; the flag tells DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(flags.bits()) };
    core.handler.on_disconnect(&cx, flags);
    sys::STATUS_SUCCESS
}

/// `PFN_WSK_SEND_BACKLOG_EVENT` trampoline.
///
/// # Safety
///
/// As [`disconnect_event`].
unsafe extern "system" fn send_backlog_event<H: ConnectionEvents>(
    context: sys::PVOID,
    ideal_backlog: sys::SIZE_T,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live SocketCore<H> until its close completes.
    let core = unsafe { &*context.cast::<SocketCore<H>>() };
    // SAFETY: inside the provider's callback; no flags: IRQL <= DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(0) };
    core.handler.on_send_backlog(&cx, ideal_backlog);
    sys::STATUS_SUCCESS
}

/// `PFN_WSK_RECEIVE_EVENT` trampoline.
///
/// # Safety
///
/// As [`disconnect_event`]; `bytes_accepted` is writable.
unsafe extern "system" fn receive_event<H: ConnectionEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
    data: sys::PWSK_DATA_INDICATION,
    bytes_indicated: sys::SIZE_T,
    bytes_accepted: *mut sys::SIZE_T,
) -> sys::NTSTATUS {
    // The context pointer itself (not one derived from a reference) keeps
    // the provenance of the whole `CoreRef` allocation, which retaining needs.
    let core_ptr = context.cast::<SocketCore<H>>().cast_const();
    // SAFETY: the context is a live SocketCore<H> until its close completes.
    let core = unsafe { &*core_ptr };
    // SAFETY: inside the provider's callback; the flag tells DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(flags) };
    if data.is_null() {
        // "The socket is no longer functional": nothing but the close is
        // called on it from now on.
        core.set_flags(DEAD);
        core.handler.on_receive(&cx, None);
        return sys::STATUS_SUCCESS;
    }
    let retained = Cell::new(None);
    let indication = Indication {
        head: data,
        total: bytes_indicated,
        flags: IndicationFlags::from_bits_retain(flags),
        retained: &retained,
        core: core_ptr,
    };
    let action = core.handler.on_receive(&cx, Some(indication));
    if let Some(slot) = retained.get() {
        // Still retained: the provider keeps the list for us until
        // `WskRelease`. Released already: nothing is kept, all was taken.
        return if core.confirm_slot(slot, data as usize) {
            sys::STATUS_PENDING
        } else {
            sys::STATUS_SUCCESS
        };
    }
    match action {
        ReceiveAction::Accept => sys::STATUS_SUCCESS,
        // Accepting nothing is refusing: success must mean some bytes were taken.
        ReceiveAction::Refuse | ReceiveAction::AcceptPartial(0) => sys::STATUS_DATA_NOT_ACCEPTED,
        ReceiveAction::AcceptPartial(n) => {
            // SAFETY: the provider passes a writable BytesAccepted.
            unsafe { *bytes_accepted = n.min(bytes_indicated) };
            sys::STATUS_SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OnlyDisconnect;
    #[crate::vtable]
    impl ConnectionEvents for OnlyDisconnect {
        fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
    }

    struct All;
    #[crate::vtable]
    impl ConnectionEvents for All {
        fn on_receive(&self, _: &EventContext<'_>, _: Option<Indication<'_>>) -> ReceiveAction {
            ReceiveAction::Accept
        }
        fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
        fn on_send_backlog(&self, _: &EventContext<'_>, _: usize) {}
    }

    #[test]
    fn vtable_installs_and_enables_only_implemented_callbacks() {
        const { assert!(OnlyDisconnect::HAS_DISCONNECT && !OnlyDisconnect::HAS_RECEIVE) };
        let table = ConnectionVtable::<OnlyDisconnect>::DISPATCH;
        assert!(table.WskDisconnectEvent.is_some());
        assert!(table.WskReceiveEvent.is_none() && table.WskSendBacklogEvent.is_none());
        assert_eq!(
            ConnectionVtable::<OnlyDisconnect>::EVENT_MASK,
            sys::WSK_EVENT_DISCONNECT
        );

        assert_eq!(
            ConnectionVtable::<All>::EVENT_MASK,
            sys::WSK_EVENT_RECEIVE | sys::WSK_EVENT_DISCONNECT | sys::WSK_EVENT_SEND_BACKLOG
        );
        assert_eq!(ConnectionVtable::<NoEvents>::EVENT_MASK, 0);
        assert!(ConnectionVtable::<NoEvents>::dispatch_ptr().is_null());
    }

    #[test]
    fn dispatch_tables_are_static() {
        // The provider keeps the pointer for the socket's lifetime: it must
        // be the same 'static table every time, not a temporary.
        let a = ConnectionVtable::<All>::dispatch_ptr();
        let b = ConnectionVtable::<All>::dispatch_ptr();
        assert!(!a.is_null());
        assert_eq!(a, b);
    }
}
