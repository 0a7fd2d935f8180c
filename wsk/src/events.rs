//! Event callbacks as traits.
//!
//! The WSK provider calls a client's event callbacks — data arrived, the peer
//! disconnected, a connection was accepted — through `WSK_CLIENT_*_DISPATCH`
//! tables, with the socket's context pointer, in arbitrary thread context at
//! IRQL ≤ `DISPATCH_LEVEL`. This crate generates those tables from trait
//! implementations:
//!
//! - Each trait method has a default; a `HAS_*` associated constant says
//!   whether the implementation provides it. The dispatch table and the event
//!   mask passed with `SO_WSK_EVENT_CALLBACK` are `const` items computed from
//!   those constants, so only implemented callbacks are installed and enabled,
//!   nothing is allocated per event, and the provider's call lands in a
//!   monomorphised trampoline that calls the method directly.
//! - Callbacks get an [`EventContext`]: the IRQL knowledge the provider gave
//!   (`WSK_FLAG_AT_DISPATCH_LEVEL`), as a [`Dispatch`] or [`AtMostDispatch`]
//!   token — never a [`Passive`](crate::Passive), because the DDI forbids
//!   waiting in a callback at any IRQL. Work that must wait goes to a work item
//!   ([`crate::defer`]).
//! - Callbacks whose only legal result is `STATUS_SUCCESS` (disconnect, send
//!   backlog, abort) return `()`: the trampoline returns `STATUS_SUCCESS`, so
//!   the contract holds by construction.
//!
//! # `#[wsk::vtable]` is required
//!
//! An impl block of an event trait without [`#[wsk::vtable]`](crate::vtable)
//! does not compile: the attribute supplies a hidden item the traits require,
//! so a forgotten attribute cannot leave every `HAS_*` constant false and
//! every callback silently uninstalled.
//!
//! ```compile_fail,E0046
//! use wsk::{ConnectionEvents, DisconnectFlags, EventContext};
//! struct Peer;
//! impl ConnectionEvents for Peer { // missing #[wsk::vtable]
//!     fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
//! }
//! ```
//!
//! # Callbacks cannot wait
//!
//! Everything that can block takes `&Passive`, which no callback has. Waiting
//! on a request inside `on_disconnect` does not compile:
//!
//! ```compile_fail,E0308
//! use wsk::{CloseOp, ConnectionEvents, DisconnectFlags, EventContext, NoEvents, Request, SpinLock};
//! struct H { closing: SpinLock<Option<Request<CloseOp<NoEvents>>>> }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let request = self.closing.with_in_callback(cx, |slot, _| slot.take());
//!         if let Some(request) = request {
//!             let _ = request.wait(cx.at_most_dispatch()); // expected `&Passive`
//!         }
//!     }
//! }
//! ```
//!
//! Nor does capturing the provider with a time-out:
//!
//! ```compile_fail,E0308
//! use wsk::{ConnectionEvents, DisconnectFlags, EventContext, Registration};
//! struct H { registration: Registration }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let timeout = Some(core::time::Duration::from_secs(1));
//!         let _ = self.registration.capture(cx.at_most_dispatch(), timeout); // expected `&Passive`
//!     }
//! }
//! ```
//!
//! Nor does deregistering:
//!
//! ```compile_fail,E0308
//! use wsk::{ConnectionEvents, DisconnectFlags, EventContext, Registration, SpinLock};
//! struct H { registration: SpinLock<Option<Registration>> }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let registration = self.registration.with_in_callback(cx, |slot, _| slot.take());
//!         if let Some(r) = registration {
//!             let _ = r.deregister(cx.at_most_dispatch()); // expected `&Passive`
//!         }
//!     }
//! }
//! ```
//!
//! The non-blocking variant of the same capture compiles, and so does the
//! waiting code once it is deferred to a work item, where a `Passive` exists:
//!
//! ```
//! use wsk::{ConnectionEvents, DisconnectFlags, EventContext, Registration};
//! struct H { registration: Registration }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let _ = self.registration.try_capture(cx.at_most_dispatch()); // WSK_NO_WAIT
//!     }
//! }
//! ```

use core::marker::PhantomData;

use wsk_sys as sys;

pub use crate::irql::EventContext;

bitflags::bitflags! {
    /// The `Flags` of a disconnect event (`PFN_WSK_DISCONNECT_EVENT`).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect_event>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DisconnectFlags: sys::ULONG {
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
    /// The `Flags` of a receive event (`PFN_WSK_RECEIVE_EVENT`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ReceiveFlags: sys::ULONG {
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
/// use wsk::{ConnectionEvents, DisconnectFlags, EventContext};
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
/// Iterate the segments with [`segments`](Self::segments), copy with
/// [`copy_to`](Self::copy_to), or keep them past the callback with
/// [`retain`](Self::retain).
pub struct Indication<'a> {
    pub(crate) head: *mut sys::WSK_DATA_INDICATION,
    pub(crate) total: usize,
    pub(crate) flags: ReceiveFlags,
    /// Set when the callback retains the chain: the trampoline then answers
    /// `STATUS_PENDING`.
    pub(crate) retained: &'a core::cell::Cell<bool>,
    pub(crate) raw: crate::socket::RetainedRaw<sys::WSK_DATA_INDICATION>,
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
    pub fn flags(&self) -> ReceiveFlags {
        self.flags
    }

    /// The indicated bytes, segment by segment.
    #[must_use]
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: self.head,
            _borrow: PhantomData,
        }
    }

    /// Copies up to `out.len()` indicated bytes into `out`; returns how many.
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        copy_segments(self.segments(), out)
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
    /// for an empty indication).
    pub fn to_buffer(&self) -> crate::Result<crate::Buffer> {
        let mut buffer = crate::Buffer::with_capacity(self.total)?;
        let n = self.copy_to(buffer.as_mut_capacity());
        buffer.set_len(n);
        Ok(buffer)
    }

    /// Keeps the provider's buffers after the callback returns.
    ///
    /// The trampoline answers `STATUS_PENDING` (the callback's
    /// [`ReceiveAction`] is then ignored); the returned handle calls
    /// `WskRelease` when dropped, at IRQL ≤ `DISPATCH_LEVEL`. Honour
    /// [`ReceiveFlags::RELEASE_ASAP`].
    ///
    /// Returns `None` — and the callback's action applies — when the socket
    /// is already closing: the DDI requires every retained indication to be
    /// released before `WskCloseSocket`.
    #[must_use]
    pub fn retain(self) -> Option<RetainedIndication> {
        if !self.raw.try_retain() {
            return None;
        }
        self.retained.set(true);
        Some(RetainedIndication {
            raw: self.raw,
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

/// Iterator over the byte segments of a data indication chain.
pub struct Segments<'a> {
    next: *mut sys::WSK_DATA_INDICATION,
    _borrow: PhantomData<&'a [u8]>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.next.is_null() {
            let node = self.next;
            // SAFETY: the provider guarantees the chain is valid while indicated
            // or retained; `'a` borrows the indication or retained handle.
            let node = unsafe { &*node };
            let (buf, next) = (node.Buffer, node.Next);
            self.next = next;
            // SAFETY: as above, the WSK_BUF describes locked, mapped memory.
            if let Some(bytes) = unsafe { crate::mdl::wsk_buf_bytes(&buf) } {
                return Some(bytes);
            }
        }
        None
    }
}

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

/// Data indications kept past the receive callback; released to the provider
/// with `WskRelease` when dropped.
///
/// # IRQL
///
/// Dropping it is legal at IRQL ≤ `DISPATCH_LEVEL`.
pub struct RetainedIndication {
    raw: crate::socket::RetainedRaw<sys::WSK_DATA_INDICATION>,
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

    /// The retained bytes, segment by segment.
    #[must_use]
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            next: self.raw.head(),
            _borrow: PhantomData,
        }
    }

    /// Copies up to `out.len()` retained bytes into `out`; returns how many.
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        copy_segments(self.segments(), out)
    }
}

impl core::fmt::Debug for RetainedIndication {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetainedIndication")
            .field("len", &self.total)
            .finish_non_exhaustive()
    }
}

impl Drop for RetainedIndication {
    fn drop(&mut self) {
        self.raw.release();
    }
}

// ---------------------------------------------------------------------------
// Datagram sockets

bitflags::bitflags! {
    /// Flags of a received datagram: the `Flags` of a receive-from event
    /// (`PFN_WSK_RECEIVE_FROM_EVENT`) or the `*ControlFlags` a
    /// `WskReceiveFrom` request reports.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct DatagramFlags: sys::ULONG {
        /// `MSG_TRUNC`: the datagram was larger than the buffer and was truncated.
        const TRUNC = sys::MSG_TRUNC;
        /// `MSG_CTRUNC`: the control information was larger than its buffer
        /// and was truncated.
        const CTRUNC = sys::MSG_CTRUNC;
        /// `MSG_BCAST`: received as a broadcast.
        const BCAST = sys::MSG_BCAST;
        /// `MSG_MCAST`: received on a multicast address.
        const MCAST = sys::MSG_MCAST;
        /// `WSK_FLAG_AT_DISPATCH_LEVEL`: the callback runs at `DISPATCH_LEVEL`.
        const AT_DISPATCH_LEVEL = sys::WSK_FLAG_AT_DISPATCH_LEVEL;
        // Keep flags this crate does not know.
        const _ = !0;
    }
}

impl DatagramFlags {
    /// `MSG_TRUNC`: the datagram did not fit and its tail was lost.
    #[must_use]
    pub fn is_truncated(self) -> bool {
        self.contains(Self::TRUNC)
    }
}

/// What a receive-from callback did with the indicated datagrams.
///
/// Datagrams are taken whole: there is no partial accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatagramAction {
    /// Consumed every indicated datagram (`STATUS_SUCCESS`).
    Accept,
    /// Took none (`STATUS_DATA_NOT_ACCEPTED`). The provider keeps them and
    /// makes no further indications until a
    /// [`receive_from`](crate::DatagramSocket::receive_from) request
    /// completes; the kept datagrams go to such requests.
    Refuse,
}

/// Event callbacks of a datagram socket (`WSK_CLIENT_DATAGRAM_DISPATCH`).
///
/// Implement [`on_receive_from`](Self::on_receive_from) in an impl block
/// marked [`#[wsk::vtable]`](crate::vtable), which sets `HAS_RECEIVE_FROM`;
/// only then is the callback installed and enabled. It runs at IRQL ≤
/// `DISPATCH_LEVEL` and must not block.
///
/// ```
/// use wsk::{DatagramAction, DatagramEvents, DatagramIndication, EventContext};
/// use core::sync::atomic::{AtomicUsize, Ordering};
///
/// struct Counter { bytes: AtomicUsize }
///
/// #[wsk::vtable]
/// impl DatagramEvents for Counter {
///     fn on_receive_from(&self, _: &EventContext<'_>, data: Option<DatagramIndication<'_>>) -> DatagramAction {
///         for datagram in data.iter().flat_map(DatagramIndication::iter) {
///             self.bytes.fetch_add(datagram.len(), Ordering::Relaxed);
///         }
///         DatagramAction::Accept
///     }
/// }
/// ```
pub trait DatagramEvents: Send + Sync + 'static {
    /// Present only in impl blocks marked [`#[wsk::vtable]`](crate::vtable),
    /// which adds it: an impl without the attribute does not compile,
    /// instead of silently installing none of its callbacks.
    #[doc(hidden)]
    const USE_VTABLE_ATTR: ();

    /// Whether [`on_receive_from`](Self::on_receive_from) is implemented
    /// (`WSK_EVENT_RECEIVE_FROM`).
    const HAS_RECEIVE_FROM: bool = false;

    /// Datagrams arrived (`WskReceiveFromEvent`).
    ///
    /// `data` is `None` when the provider says the socket is no longer
    /// functional and must be closed. Return what was done with the
    /// datagrams, or call [`DatagramIndication::retain`] to keep the
    /// provider's buffers (the trampoline then returns `STATUS_PENDING`, and
    /// the returned action is ignored).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`; see `cx`.
    fn on_receive_from(
        &self,
        cx: &EventContext<'_>,
        data: Option<DatagramIndication<'_>>,
    ) -> DatagramAction {
        let _ = (cx, data);
        DatagramAction::Refuse
    }
}

/// The handler of datagram sockets that enable no events.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDatagramEvents;

#[crate::vtable]
impl DatagramEvents for NoDatagramEvents {}

/// Datagrams indicated to a receive-from callback: a list of provider-owned
/// datagrams (`WSK_DATAGRAM_INDICATION`), valid during the callback.
///
/// Iterate them with [`iter`](Self::iter), or keep them past the callback
/// with [`retain`](Self::retain).
pub struct DatagramIndication<'a> {
    pub(crate) head: *mut sys::WSK_DATAGRAM_INDICATION,
    pub(crate) flags: DatagramFlags,
    /// Set when the callback retains the list: the trampoline then answers
    /// `STATUS_PENDING`.
    pub(crate) retained: &'a core::cell::Cell<bool>,
    pub(crate) raw: crate::socket::RetainedRaw<sys::WSK_DATAGRAM_INDICATION>,
}

impl DatagramIndication<'_> {
    /// The indicated datagrams, in order.
    #[must_use]
    pub fn iter(&self) -> Datagrams<'_> {
        Datagrams {
            next: self.head,
            _borrow: PhantomData,
        }
    }

    /// The number of datagrams indicated.
    #[must_use]
    pub fn count(&self) -> usize {
        self.iter().count()
    }

    /// The event's flags (`MSG_BCAST`, `MSG_MCAST`,
    /// `WSK_FLAG_AT_DISPATCH_LEVEL`).
    #[must_use]
    pub fn flags(&self) -> DatagramFlags {
        self.flags
    }

    /// Keeps the provider's datagrams after the callback returns.
    ///
    /// The trampoline answers `STATUS_PENDING` (the callback's
    /// [`DatagramAction`] is then ignored); the returned handle calls the
    /// datagram socket's `WskRelease` when dropped, at IRQL ≤
    /// `DISPATCH_LEVEL`. A retained list holds its socket open (its close
    /// waits for the release) and counts as a live handle of the
    /// registration.
    ///
    /// Returns `None` — and the callback's action applies — when the socket
    /// is already closing: the DDI requires every retained indication to be
    /// released before `WskCloseSocket`.
    #[must_use]
    pub fn retain(self) -> Option<RetainedDatagrams> {
        if !self.raw.try_retain() {
            return None;
        }
        self.retained.set(true);
        Some(RetainedDatagrams { raw: self.raw })
    }
}

impl<'a> IntoIterator for &'a DatagramIndication<'_> {
    type Item = Datagram<'a>;
    type IntoIter = Datagrams<'a>;

    fn into_iter(self) -> Datagrams<'a> {
        self.iter()
    }
}

impl core::fmt::Debug for DatagramIndication<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DatagramIndication")
            .field("count", &self.count())
            .field("flags", &self.flags)
            .finish()
    }
}

/// Iterator over the datagrams of an indication list.
pub struct Datagrams<'a> {
    next: *mut sys::WSK_DATAGRAM_INDICATION,
    _borrow: PhantomData<&'a sys::WSK_DATAGRAM_INDICATION>,
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = Datagram<'a>;

    fn next(&mut self) -> Option<Datagram<'a>> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: the provider guarantees the list is valid while indicated
        // or retained; `'a` borrows the indication or the retained handle.
        let node = unsafe { &*self.next };
        self.next = node.Next;
        Some(Datagram { node })
    }
}

/// One indicated datagram: its sender, bytes and control information.
#[derive(Clone, Copy)]
pub struct Datagram<'a> {
    node: &'a sys::WSK_DATAGRAM_INDICATION,
}

impl<'a> Datagram<'a> {
    /// The sender's address.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS`](crate::Error::INVALID_ADDRESS) if the
    /// provider gave none, [`Error::INVALID_ADDRESS_COMPONENT`](crate::Error::INVALID_ADDRESS_COMPONENT)
    /// for a family other than IPv4 and IPv6.
    pub fn remote_address(&self) -> crate::Result<core::net::SocketAddr> {
        // SAFETY: the provider's RemoteAddress is null or a socket address of
        // the socket's family, valid as long as the datagram.
        unsafe { crate::addr::SockAddr::copy_from_raw(self.node.RemoteAddress) }
    }

    /// The datagram's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.node.Buffer.Length
    }

    /// Whether the datagram is empty (UDP allows zero-length datagrams).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The datagram's bytes, MDL by MDL.
    #[must_use]
    pub fn segments(&self) -> DatagramSegments<'a> {
        let buf = self.node.Buffer;
        DatagramSegments {
            mdl: buf.Mdl,
            offset: buf.Offset,
            remaining: buf.Length,
            _borrow: PhantomData,
        }
    }

    /// Copies up to `out.len()` bytes of the datagram into `out`; returns how many.
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        copy_segments(self.segments(), out)
    }

    /// Copies the datagram into a new [`Buffer`](crate::Buffer).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (non-paged allocation).
    ///
    /// # Errors
    ///
    /// As [`Buffer::with_capacity`](crate::Buffer::with_capacity) for the
    /// datagram's length ([`Error::INVALID_BUFFER_SIZE`](crate::Error::INVALID_BUFFER_SIZE)
    /// for an empty datagram).
    pub fn to_buffer(&self) -> crate::Result<crate::Buffer> {
        let mut buffer = crate::Buffer::with_capacity(self.len())?;
        let n = self.copy_to(buffer.as_mut_capacity());
        buffer.set_len(n);
        Ok(buffer)
    }

    /// The length of the datagram's control information (`ControlInfoLength`).
    #[must_use]
    pub fn control_info_len(&self) -> usize {
        self.node.ControlInfoLength as usize
    }

    /// The datagram's control information: `CMSGHDR`-headed control data
    /// objects (empty when there is none).
    #[must_use]
    pub fn control_info(&self) -> &'a [u8] {
        let len = self.control_info_len();
        if self.node.ControlInfo.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: the provider's ControlInfo holds ControlInfoLength readable
        // bytes, valid as long as the datagram (`'a`).
        unsafe { core::slice::from_raw_parts(self.node.ControlInfo.cast::<u8>(), len) }
    }
}

impl core::fmt::Debug for Datagram<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Datagram")
            .field("remote", &self.remote_address())
            .field("len", &self.len())
            .field("control_info_len", &self.control_info_len())
            .finish()
    }
}

/// Iterator over the byte segments of one datagram (its MDL chain).
pub struct DatagramSegments<'a> {
    mdl: sys::PMDL,
    offset: sys::ULONG,
    remaining: usize,
    _borrow: PhantomData<&'a [u8]>,
}

impl<'a> Iterator for DatagramSegments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.remaining != 0 && !self.mdl.is_null() {
            let mdl = self.mdl;
            // SAFETY: the provider's MDL chain is valid while the datagram is
            // indicated or retained (`'a`).
            self.mdl = unsafe { (*mdl).Next };
            let buf = sys::WSK_BUF {
                Mdl: mdl,
                Offset: self.offset,
                Length: self.remaining,
            };
            self.offset = 0;
            // SAFETY: as above: locked, mapped memory valid for `'a`.
            if let Some(bytes) = unsafe { crate::mdl::wsk_buf_bytes(&buf) } {
                self.remaining -= bytes.len();
                return Some(bytes);
            }
        }
        None
    }
}

/// Datagrams kept past the receive-from callback; released to the provider
/// with `WskRelease` when dropped.
///
/// # IRQL
///
/// Dropping it is legal at IRQL ≤ `DISPATCH_LEVEL`.
pub struct RetainedDatagrams {
    raw: crate::socket::RetainedRaw<sys::WSK_DATAGRAM_INDICATION>,
}

impl RetainedDatagrams {
    /// The retained datagrams, in order.
    #[must_use]
    pub fn iter(&self) -> Datagrams<'_> {
        Datagrams {
            next: self.raw.head(),
            _borrow: PhantomData,
        }
    }

    /// The number of datagrams retained.
    #[must_use]
    pub fn count(&self) -> usize {
        self.iter().count()
    }
}

impl<'a> IntoIterator for &'a RetainedDatagrams {
    type Item = Datagram<'a>;
    type IntoIter = Datagrams<'a>;

    fn into_iter(self) -> Datagrams<'a> {
        self.iter()
    }
}

impl core::fmt::Debug for RetainedDatagrams {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetainedDatagrams")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl Drop for RetainedDatagrams {
    fn drop(&mut self) {
        self.raw.release();
    }
}
