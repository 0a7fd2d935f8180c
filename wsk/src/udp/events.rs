//! The event side of datagram sockets: [`DatagramEvents`], the constant
//! dispatch table derived from it, the trampoline the provider calls, and
//! what it hands the handler (indicated datagrams, flags, the action).
//! Exported from [`crate::events`].

use core::cell::Cell;
use core::marker::PhantomData;
use core::net::SocketAddr;

use wsk_sys as sys;

use crate::addr::SockAddr;
use crate::buffer::Buffer;
use crate::error::Result;
use crate::irql::context::EventContext;
use crate::mdl::BufPieces;
use crate::socket::core::{DEAD, EVENTS_ON, ErasedCore, SocketCore};
use crate::socket::retain::Retained;

bitflags::bitflags! {
    /// Flags of a received datagram: the `Flags` of a receive-from event
    /// (`PFN_WSK_RECEIVE_FROM_EVENT`) or the `*ControlFlags` a
    /// `WskReceiveFrom` request reports.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct DatagramFlags: u32 {
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
    /// Took none (`STATUS_DATA_NOT_ACCEPTED`). The provider keeps what it
    /// can for [`receive_from`](crate::udp::DatagramSocket::receive_from)
    /// requests, and **disables the receive-from event**: no further
    /// indication comes until
    /// [`enable_events`](crate::udp::DatagramSocket::enable_events) turns it
    /// on again (call it once the callback has returned, from a work item or
    /// the owner's code), when the kept and new datagrams are indicated.
    /// [`events_enabled`](crate::udp::DatagramSocket::events_enabled) is then
    /// `false`. An event enabled statically
    /// ([`Provider::set_static_events`](crate::Provider::set_static_events))
    /// stays enabled: indications continue as datagrams arrive.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event>
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
/// use wsk::events::{DatagramAction, DatagramEvents, DatagramIndication, EventContext};
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
    /// The retained slot, set when the callback retains the list: the
    /// trampoline then answers `STATUS_PENDING`, or `STATUS_SUCCESS` if the
    /// list was released before the callback returned.
    pub(crate) retained: &'a Cell<Option<u8>>,
    /// The indicating socket's core (the callback's context, with the
    /// provenance of the whole `CoreRef` allocation), to retain the list with.
    pub(crate) core: *const ErasedCore,
}

impl DatagramIndication<'_> {
    /// The indicated datagrams, in order.
    #[must_use]
    pub fn iter(&self) -> Datagrams<'_> {
        // SAFETY: the core is the callback's context, alive during it.
        let core = unsafe { &*self.core };
        Datagrams {
            next: self.head,
            priority: core.provider.mapping_priority(),
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
    /// Dropped before the callback returns, it releases nothing and the
    /// trampoline answers `STATUS_SUCCESS` instead: every datagram was
    /// taken.
    ///
    /// Returns `None` — and the callback's action applies — when the list
    /// could not be released later: the socket is already closing (the DDI
    /// requires every retained indication to be released before
    /// `WskCloseSocket`), its `PWSK_SOCKET` is not known yet, or 16 lists of
    /// this socket are retained already (callbacks of one datagram socket
    /// may run concurrently; each retains into its own slot).
    #[must_use]
    pub fn retain(self) -> Option<RetainedDatagrams> {
        let count = self.count();
        // SAFETY: inside the receive-from callback that indicated `head`,
        // whose context `core` is (the trampoline builds indications only
        // there).
        let raw = unsafe { Retained::retain(self.core, self.head) }?;
        self.retained.set(Some(raw.slot()));
        Some(RetainedDatagrams { raw, count })
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
    /// `MmGetSystemAddressForMdlSafe`'s `Priority` on this system.
    priority: sys::ULONG,
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
        Some(Datagram {
            node,
            priority: self.priority,
        })
    }
}

/// One indicated datagram: its sender, bytes and control information.
///
/// Its `WSK_BUF` may span several MDLs and start at an offset into the
/// first (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf>);
/// [`segments`](Self::segments) and [`copy_to`](Self::copy_to) read all of
/// it, and a piece that cannot be mapped is an error, never missing bytes.
#[derive(Clone, Copy)]
pub struct Datagram<'a> {
    node: &'a sys::WSK_DATAGRAM_INDICATION,
    priority: sys::ULONG,
}

impl<'a> Datagram<'a> {
    /// The sender's address.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS`](crate::Error::INVALID_ADDRESS) if the
    /// provider gave none, [`Error::INVALID_ADDRESS_COMPONENT`](crate::Error::INVALID_ADDRESS_COMPONENT)
    /// for a family other than IPv4 and IPv6.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        // SAFETY: the provider's RemoteAddress is null or a socket address of
        // the socket's family, valid as long as the datagram.
        unsafe { SockAddr::copy_from_raw(self.node.RemoteAddress) }
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

    /// The datagram's bytes, one borrowed slice per MDL piece, in order (no
    /// copy). Every piece is mapped first, so the iteration cannot fail.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES)
    /// if a piece cannot be mapped into system space (low resources); the
    /// datagram is still the provider's (refuse it, or retain it and try
    /// again later).
    pub fn segments(&self) -> Result<DatagramSegments<'a>> {
        crate::mdl::check_pieces(self.pieces())?;
        Ok(DatagramSegments {
            pieces: self.pieces(),
        })
    }

    /// Copies the first `out.len()` bytes of the datagram (or all of them,
    /// if fewer) into `out`; returns how many.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`segments`](Self::segments), for a piece `out` has room for.
    #[inline]
    pub fn copy_to(&self, out: &mut [u8]) -> Result<usize> {
        // SAFETY: as in `pieces`.
        unsafe { crate::mdl::copy_buf(&self.node.Buffer, self.priority, out) }
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
    /// for an empty datagram), and as [`copy_to`](Self::copy_to).
    pub fn to_buffer(&self) -> Result<Buffer> {
        let mut buffer = Buffer::with_capacity(self.len())?;
        let n = self.copy_to(buffer.as_mut_capacity())?;
        buffer.set_len(n);
        Ok(buffer)
    }

    fn pieces(&self) -> BufPieces<'a> {
        // SAFETY: the provider keeps the datagram's MDLs valid while it is
        // indicated or retained (`'a`); the indication and the retained
        // list are not `Sync`, so only the thread holding them maps the MDLs.
        unsafe { BufPieces::new(&self.node.Buffer, self.priority) }
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
            .field("peer", &self.peer_addr())
            .field("len", &self.len())
            .field("control_info_len", &self.control_info_len())
            .finish()
    }
}

/// The bytes of one datagram, one borrowed slice per MDL piece; every piece
/// was mapped when the iterator was made ([`Datagram::segments`]).
pub struct DatagramSegments<'a> {
    pieces: BufPieces<'a>,
}

impl<'a> Iterator for DatagramSegments<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        // Mapped and checked when the iterator was made: no error remains.
        self.pieces.next()?.ok()
    }
}

impl core::fmt::Debug for DatagramSegments<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DatagramSegments").finish_non_exhaustive()
    }
}

/// Datagrams kept past the receive-from callback; released to the provider
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
/// movable::<wsk::events::RetainedDatagrams>();
/// ```
///
/// ```compile_fail,E0277
/// fn shareable<T: Sync>() {}
/// shareable::<wsk::events::RetainedDatagrams>(); // two threads could map one MDL
/// ```
///
/// # IRQL
///
/// Dropping it is legal at IRQL ≤ `DISPATCH_LEVEL`.
pub struct RetainedDatagrams {
    raw: Retained<sys::WSK_DATAGRAM_INDICATION>,
    count: usize,
}

impl RetainedDatagrams {
    /// Runs `read` with the retained datagrams, in order; returns what it
    /// returns.
    ///
    /// The provider's memory is lent to the closure only: no borrow of it
    /// outlives the call, so the list can be released — by this handle's
    /// drop, or by [`Registration::deregister`](crate::Registration::deregister)
    /// if the handle was leaked — without leaving a dangling slice behind.
    ///
    /// ```compile_fail
    /// # use wsk::events::RetainedDatagrams;
    /// fn first(retained: &RetainedDatagrams) -> &[u8] {
    ///     retained.with_datagrams(|mut datagrams| datagrams.next().unwrap().control_info()).unwrap()
    /// }
    /// ```
    ///
    /// `read` runs inside the socket's run-down, which deregistration waits
    /// for, so it is `Send`: it cannot hold the (`!Send`)
    /// [`Passive`](crate::irql::Passive) token that waiting takes, as
    /// [`RetainedIndication::with_segments`](crate::events::RetainedIndication::with_segments)
    /// explains.
    ///
    /// ```compile_fail,E0277
    /// # use wsk::events::RetainedDatagrams;
    /// # use wsk::irql::Passive;
    /// fn wait_inside(kept: &RetainedDatagrams, passive: &Passive<'_>) {
    ///     let _ = kept.with_datagrams(|_| passive.sleep(core::time::Duration::from_secs(1)));
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
    /// deregistration closed the socket (and released the list).
    pub fn with_datagrams<R>(&self, read: impl FnOnce(Datagrams<'_>) -> R + Send) -> Result<R> {
        let priority = self.raw.core().provider.mapping_priority();
        self.raw.read(|head| {
            read(Datagrams {
                next: head,
                priority,
                _borrow: PhantomData,
            })
        })
    }

    /// The number of datagrams retained.
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }
}

impl core::fmt::Debug for RetainedDatagrams {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RetainedDatagrams")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// The dispatch table and event mask derived from a [`DatagramEvents`]
/// implementation, as constants.
pub(crate) struct DatagramVtable<H>(PhantomData<H>);

impl<H: DatagramEvents> DatagramVtable<H> {
    /// `WSK_CLIENT_DATAGRAM_DISPATCH` with only the implemented callback.
    pub(crate) const DISPATCH: sys::WSK_CLIENT_DATAGRAM_DISPATCH =
        sys::WSK_CLIENT_DATAGRAM_DISPATCH {
            WskReceiveFromEvent: if H::HAS_RECEIVE_FROM {
                Some(receive_from_event::<H>)
            } else {
                None
            },
        };

    /// The `SO_WSK_EVENT_CALLBACK` mask enabling exactly that callback.
    pub(crate) const EVENT_MASK: u32 = if H::HAS_RECEIVE_FROM {
        sys::WSK_EVENT_RECEIVE_FROM
    } else {
        0
    };

    /// The table to pass with the socket (null when nothing is enabled).
    pub(crate) fn dispatch_ptr() -> *const sys::WSK_CLIENT_DATAGRAM_DISPATCH {
        if Self::EVENT_MASK == 0 {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }
}

/// `PFN_WSK_RECEIVE_FROM_EVENT` trampoline.
///
/// Answers only `STATUS_SUCCESS` (accepted, or a null list),
/// `STATUS_PENDING` (retained) and `STATUS_DATA_NOT_ACCEPTED` (refused).
///
/// # Safety
///
/// Called by the provider with the context of a socket whose handler is `H`.
unsafe extern "system" fn receive_from_event<H: DatagramEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
    data: sys::PWSK_DATAGRAM_INDICATION,
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
        core.handler.on_receive_from(&cx, None);
        return sys::STATUS_SUCCESS;
    }
    let retained = Cell::new(None);
    let indication = DatagramIndication {
        head: data,
        flags: DatagramFlags::from_bits_retain(flags),
        retained: &retained,
        core: core_ptr,
    };
    let action = core.handler.on_receive_from(&cx, Some(indication));
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
        DatagramAction::Accept => sys::STATUS_SUCCESS,
        DatagramAction::Refuse => {
            // The provider disables the event until `SO_WSK_EVENT_CALLBACK`
            // enables it again, unless it was enabled statically
            // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event).
            if core.provider.reg().static_events() & sys::WSK_EVENT_RECEIVE_FROM == 0 {
                core.clear_flags(EVENTS_ON);
            }
            sys::STATUS_DATA_NOT_ACCEPTED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Receiver;
    #[crate::vtable]
    impl DatagramEvents for Receiver {
        fn on_receive_from(
            &self,
            _: &EventContext<'_>,
            _: Option<DatagramIndication<'_>>,
        ) -> DatagramAction {
            DatagramAction::Accept
        }
    }

    #[test]
    fn vtable_installs_and_enables_only_implemented_callbacks() {
        const { assert!(Receiver::HAS_RECEIVE_FROM && !NoDatagramEvents::HAS_RECEIVE_FROM) };
        assert!(
            DatagramVtable::<Receiver>::DISPATCH
                .WskReceiveFromEvent
                .is_some()
        );
        assert_eq!(
            DatagramVtable::<Receiver>::EVENT_MASK,
            sys::WSK_EVENT_RECEIVE_FROM
        );
        assert_eq!(DatagramVtable::<NoDatagramEvents>::EVENT_MASK, 0);
        assert!(DatagramVtable::<NoDatagramEvents>::dispatch_ptr().is_null());
        let a = DatagramVtable::<Receiver>::dispatch_ptr();
        assert!(!a.is_null());
        assert_eq!(a, DatagramVtable::<Receiver>::dispatch_ptr());
    }
}
