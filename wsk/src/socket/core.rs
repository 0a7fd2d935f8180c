//! The state of one socket shared by its handle, its requests and the
//! provider's callbacks.
//!
//! # Soundness
//!
//! A `SocketCore` is the `SocketContext` the provider passes to every event
//! callback of the socket, and what every request on the socket keeps
//! alive. Four parties touch it, each only through atomics (or immutable
//! fields):
//!
//! - **the handle** (`ConnectionSocket`, `ListenSocket`, …) makes provider
//!   calls, each inside [`SocketCore::enter`]; it closes the socket by
//!   value, so no call through it is in progress when it submits
//!   `WskCloseSocket`;
//! - **requests** hold a strong reference until their IRP completed, and
//!   record in the completion routine what the provider did
//!   ([`set_socket`](SocketCore::set_socket), [`set_flags`](SocketCore::set_flags));
//! - **callbacks** (the trampolines) read the handler and the state, and
//!   retain indication lists into [`SocketCore::retained`] slots;
//! - **deregistration** closes a socket whose close was never submitted
//!   ([`Tracked::shut_down`]): it shuts the run-down `calls` and waits for
//!   the calls in progress, then releases the retained lists and closes.
//!
//! The invariants that make the raw calls sound:
//!
//! - `socket` is null until the provider handed the socket over (the
//!   create or accept request's completion routine, or the accept
//!   callback), then fixed. A handle exists only after that, so every
//!   call through a handle has a socket; a callback may run before (static
//!   events, or events enabled on an accepted socket whose accept request
//!   the owner has not polled), so the callback side checks: retaining is
//!   refused while the socket is unknown.
//! - The provider calls on the socket other than `WskCloseSocket` and
//!   `WskRelease` happen between `enter` and the drop of its guard; once
//!   `SHUT` is set no new one starts, and `shut_down` closes only after the
//!   count drained. So no call is in progress when `WskCloseSocket` is
//!   submitted, and none follows it
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>).
//! - `gate` counts the retained lists (one per non-empty slot) plus the
//!   `CLOSING` bit; the party that brings it to exactly `CLOSING` submits
//!   the close, so every retained list is released before `WskCloseSocket`
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_data_indication_list>).
//!   A retain counts the gate, then takes a slot; if `CLOSING` appeared in
//!   between it gives the slot back, so deregistration's sweep (mark
//!   `CLOSING`, then empty every slot) never misses a list that would keep
//!   the gate from draining — the two sides are sequentially consistent.
//! - A non-zero slot holds one gate count, one live-handle count of the
//!   registration, and a list the provider indicated. Whoever swaps a slot
//!   back to zero — the handle's drop, or deregistration — owns the
//!   release: `WskRelease` if the slot was confirmed (the callback answered
//!   `STATUS_PENDING`), none if it still carried [`IN_CALLBACK`] (the
//!   callback then answers `STATUS_SUCCESS`: the provider never considered
//!   the list retained), then the gate and live counts.
//! - One strong reference is held by whoever will submit `WskCloseSocket`
//!   and dropped only when it completes (the close request holds one), so
//!   callbacks never see a freed core.

use alloc::sync::Arc;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use wsk_sys as sys;

use crate::core_ref::{CoreRef, RcInner};
use crate::error::{Error, Result};
use crate::irp::block::InFlight;
use crate::provider::npi::{ProviderInner, RegInner};
use crate::provider::tables::{ProviderTable, read_routine};
use crate::provider::teardown::{Links, SHUT, Tracked};

/// `gate` bit: closing has begun; no new retention is allowed.
const CLOSING: usize = 1 << (usize::BITS - 1);

/// `peer_disconnect` bit: a disconnect event arrived (its flags are the rest).
const PEER_DISCONNECTED: u32 = 1 << 31;

// Bits of `SocketCore::flags`, one word for every socket kind.

/// This side aborted the connection.
pub(crate) const ABORTED: u32 = 1 << 0;
/// The socket is being offered to an accept callback, which has not
/// returned yet.
pub(crate) const ACCEPTING: u32 = 1 << 2;
/// The handle was dropped or closed during the accept callback.
const CLOSED_IN_ACCEPT: u32 = 1 << 3;
/// A bind was submitted (or the socket came bound: accepted or created by
/// `WskSocketConnect`); options that must precede the bind are refused from
/// then on.
pub(crate) const BIND_SUBMITTED: u32 = 1 << 8;
/// A bind succeeded (or the socket came bound): datagram sockets send and
/// receive only then, and connection and stream sockets connect or listen
/// only then.
pub(crate) const BOUND: u32 = 1 << 9;
/// The handler's callbacks are enabled (`enable_events` succeeded with a
/// non-empty mask, or an accepted socket inherited them).
pub(crate) const EVENTS_ON: u32 = 1 << 10;
/// A connection or stream socket is connected: a connect succeeded, or it
/// was created by `WskSocketConnect` or accepted. Sends, receives,
/// disconnects, the remote address and the backlog queries need it.
pub(crate) const CONNECTED: u32 = 1 << 11;
/// `SIO_WSK_SET_TCP_SILENT_MODE` is being requested: no send or disconnect
/// may start.
pub(crate) const SILENCING: u32 = 1 << 12;
/// The connection is in TCP silent mode: `WskCloseSocket` is the only valid
/// operation
/// (<https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-set-tcp-silent-mode>).
pub(crate) const SILENT: u32 = 1 << 13;
/// The provider declared the socket no longer functional (a routine failed
/// with `STATUS_FILE_FORCED_CLOSED`, or a callback got a NULL indication or
/// socket): it must be closed as soon as possible, and nothing else is
/// called on it.
pub(crate) const DEAD: u32 = 1 << 14;
/// A datagram socket has a fixed remote address (`SIO_WSK_SET_REMOTE_ADDRESS`
/// with an address), so `send` may omit the destination.
pub(crate) const FIXED_REMOTE: u32 = 1 << 17;
/// A datagram socket has a fixed destination (`SIO_WSK_SET_SENDTO_ADDRESS`
/// with an address), so `send` may omit it. Set and cleared independently
/// of [`FIXED_REMOTE`]: either lets `WskSendTo` go without an address
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>).
pub(crate) const FIXED_SENDTO: u32 = 1 << 18;

/// How many indication lists one socket can have retained at once
/// (`retain` answers `None` beyond).
pub(crate) const RETAIN_SLOTS: usize = 16;

/// Retained-slot tag: retained inside the callback still running, which has
/// not answered `STATUS_PENDING` yet. Indication lists are pointer-aligned,
/// so the low bit is free.
pub(super) const IN_CALLBACK: usize = 1;

/// The state of one WSK socket shared by its handle, its requests and the
/// provider's callbacks (whose `SocketContext` is this struct's address).
///
/// # Invariants
///
/// See the [module docs](self).
pub(crate) struct SocketCore<H: ?Sized> {
    socket: AtomicPtr<sys::WSK_SOCKET>,
    pub(crate) provider: Arc<ProviderInner>,
    /// The registration's in-flight count (`provider` keeps it alive), read
    /// on every request: one load instead of two.
    inflight: Inflight,
    /// Provider calls in progress on the socket (and reads of its retained
    /// lists), plus [`SHUT`] once deregistration closes it under its handle.
    pub(super) calls: AtomicU32,
    gate: AtomicUsize,
    flags: AtomicU32,
    /// The last disconnect event's flags with `PEER_DISCONNECTED`, written by
    /// the event trampoline alone: a plain store keeps the event path as
    /// cheap as a hand-written callback's.
    peer_disconnect: AtomicU32,
    /// Sends and disconnects submitted whose output was not taken or
    /// disposed of yet: silent mode is refused while any is.
    pending_sends: AtomicU32,
    /// The `ADDRESS_FAMILY` the socket was created with (an accepted socket:
    /// its listener's); addresses of another family are refused.
    family: u16,
    /// A datagram socket: its retained lists are `WSK_DATAGRAM_INDICATION`s,
    /// released with the datagram table's `WskRelease`.
    pub(super) datagram: bool,
    /// Indication lists retained from this socket (see the module docs).
    pub(super) retained: [AtomicUsize; RETAIN_SLOTS],
    /// Its place in the registration's list of open sockets.
    pub(super) links: Links,
    /// Tells the handler that deregistration closed the socket under its
    /// handle ([`ClosedUnder`]), so that futures waiting for its events
    /// (which will not come) end.
    pub(super) closed_under: Option<ClosedUnder>,
    pub(crate) handler: H,
}

/// What deregistration calls when it closes a socket under its handle,
/// with a pointer to the socket's handler: the event-queue handlers
/// (`tcp::ReceiveQueue`, `tcp::AcceptQueue`) end the futures that wait for
/// events, since a closed socket has no more callbacks.
///
/// # Safety
///
/// Called with the address of the handler of the core this function was
/// made for (its handler type), which stays alive during the call.
pub(crate) type ClosedUnder = unsafe fn(*const ());

/// A socket's core with its handler type erased: what requests and
/// retained indications keep alive, so that none of them is generic over
/// the handler. The fields before the handler are at the same offsets for
/// every handler type; only dropping the last reference goes through the
/// handler's vtable.
pub(crate) type ErasedCore = SocketCore<dyn Send + Sync>;

/// A strong reference to an [`ErasedCore`]: a pointer and a `'static`
/// vtable, cloned and dropped with one atomic operation each, as a
/// `CoreRef<SocketCore<H>>` is.
pub(crate) type SocketRef = CoreRef<ErasedCore>;

/// A pointer to the registration's in-flight count.
///
/// # Invariants
///
/// Points to the `socket_inflight` counter of the registration that the core's
/// `provider` holds, so it is valid as long as the core.
struct Inflight(NonNull<InFlight>);

// SAFETY: a pointer to the registration's (thread-safe) count, valid for
// the core's life (invariant).
unsafe impl Send for Inflight {}
// SAFETY: as above; only shared references are made from it.
unsafe impl Sync for Inflight {}

/// A provider call in progress on a socket (see [`SocketCore::enter`]);
/// dropping it ends the call.
pub(crate) struct Entered<'a>(&'a AtomicU32);

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl<H: Send + Sync + 'static> SocketCore<H> {
    /// A core for a socket of `family` (`ADDRESS_FAMILY`), in its own
    /// allocation; `datagram` for a datagram socket.
    ///
    /// Fallible, because the accept callback makes cores and must be able
    /// to reject the connection instead of bug-checking when the pool is
    /// empty (see [`CoreRef`]). Built here, out of line, so that the
    /// callers' frames hold no copy of the core and its handler (debug
    /// builds of drivers would otherwise need stack probes, `__chkstk`,
    /// which the kernel does not export).
    ///
    /// `closed_under`, if any, must have been made for `H` (see
    /// [`ClosedUnder`]).
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`] without memory for the core
    /// (`handler` is dropped).
    #[inline(never)]
    pub(crate) fn try_new(
        provider: Arc<ProviderInner>,
        family: u16,
        datagram: bool,
        handler: H,
        closed_under: Option<ClosedUnder>,
    ) -> Result<CoreRef<Self>> {
        CoreRef::try_new_with(move || Self::new(provider, family, datagram, handler, closed_under))
    }

    /// A core for a socket of `family` (`ADDRESS_FAMILY`); `datagram` for
    /// a datagram socket.
    fn new(
        provider: Arc<ProviderInner>,
        family: u16,
        datagram: bool,
        handler: H,
        closed_under: Option<ClosedUnder>,
    ) -> Self {
        let inflight = Inflight(NonNull::from(provider.reg().socket_inflight()));
        Self {
            socket: AtomicPtr::new(core::ptr::null_mut()),
            provider,
            inflight,
            calls: AtomicU32::new(0),
            gate: AtomicUsize::new(0),
            flags: AtomicU32::new(0),
            peer_disconnect: AtomicU32::new(0),
            pending_sends: AtomicU32::new(0),
            family,
            datagram,
            retained: [const { AtomicUsize::new(0) }; RETAIN_SLOTS],
            links: Links::new(),
            closed_under,
            handler,
        }
    }

    /// The socket context to hand to the provider.
    ///
    /// The pointer has the provenance of the whole allocation, so the
    /// callbacks can count references from it (`Retained::retain`).
    pub(crate) fn context(this: &CoreRef<Self>) -> sys::PVOID {
        CoreRef::as_ptr(this).cast_mut().cast()
    }

    /// A handler-free strong reference (for a request's payload).
    #[inline]
    pub(crate) fn erase(this: &CoreRef<Self>) -> SocketRef {
        Self::into_erased(CoreRef::clone(this))
    }

    /// This reference, with the handler type erased.
    #[inline]
    pub(crate) fn into_erased(this: CoreRef<Self>) -> SocketRef {
        let erased: NonNull<RcInner<ErasedCore>> = CoreRef::<Self>::into_inner(this);
        // SAFETY: the reference just given up, only unsized.
        unsafe { CoreRef::from_inner(erased) }
    }

    /// Records the socket the provider handed over and has the registration
    /// track it until its close is submitted (deregistration closes it if
    /// the driver never does). Called once, in the completion routine of
    /// the request that made it or in the accept callback.
    pub(crate) fn adopt(this: &CoreRef<Self>, socket: sys::PWSK_SOCKET) {
        this.set_socket(socket);
        let tracked: NonNull<RcInner<dyn Tracked>> =
            CoreRef::<Self>::into_inner(CoreRef::clone(this));
        // SAFETY: the reference just given up, only unsized.
        let tracked = unsafe { CoreRef::from_inner(tracked) };
        this.provider.reg().teardown.track(tracked);
    }

    /// This core with its handler type erased.
    pub(super) fn as_erased(&self) -> &ErasedCore {
        self
    }
}

impl<H: ?Sized> SocketCore<H> {
    /// The WSK socket (null before the provider handed it over).
    #[inline]
    pub(crate) fn socket(&self) -> sys::PWSK_SOCKET {
        self.socket.load(Ordering::Acquire)
    }

    pub(crate) fn set_socket(&self, socket: sys::PWSK_SOCKET) {
        self.socket.store(socket, Ordering::Release);
    }

    /// Its place in the registration's list of open sockets.
    pub(crate) fn links_of(&self) -> &Links {
        &self.links
    }

    /// The socket's `ADDRESS_FAMILY`.
    pub(crate) fn family(&self) -> u16 {
        self.family
    }

    /// Refuses `addr` unless it is of the socket's family: the DDI wants
    /// "the specific SOCKADDR structure type that corresponds to the address
    /// family that the WSK application specified when it created the
    /// socket" (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_bind>,
    /// and the connect and send-to pages).
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS_COMPONENT`] for an address of another family.
    pub(crate) fn check_family(&self, addr: &core::net::SocketAddr) -> Result<()> {
        if crate::addr::AddressFamily::of(addr).raw() == self.family {
            Ok(())
        } else {
            Err(Error::INVALID_ADDRESS_COMPONENT)
        }
    }

    /// The registration's count of socket-level IRPs whose completion
    /// routine has not finished.
    #[inline]
    pub(crate) fn inflight(&self) -> &InFlight {
        // SAFETY: the registration's counter, kept alive by `provider`,
        // which this core holds.
        unsafe { self.inflight.0.as_ref() }
    }

    /// The registration.
    pub(crate) fn reg(&self) -> &RegInner {
        self.provider.reg()
    }

    /// Starts a provider call on the socket that needs the state bits
    /// `need` (for example [`CONNECTED`]); the returned guard ends it.
    ///
    /// # Errors
    ///
    /// Without calling the provider:
    /// - [`Error::FILE_FORCED_CLOSED`]: the provider declared the socket no
    ///   longer functional (it must be closed), or deregistration closed it.
    /// - [`Error::INVALID_DEVICE_STATE`]: the socket is not in the state
    ///   the routine requires (not bound, not connected), or is in TCP
    ///   silent mode, where closing is the only valid operation.
    #[inline]
    pub(crate) fn enter(&self, need: u32) -> Result<Entered<'_>> {
        let flags = self.flags.load(Ordering::Acquire);
        if flags & need != need || flags & (DEAD | SILENT | SILENCING) != 0 {
            return Err(refusal(flags));
        }
        self.enter_rundown()
    }

    /// [`enter`](Self::enter) for a `WskSend` (`send`) or `WskReceive` on
    /// a connection socket, the hot path: one load of the state for every
    /// check. A send is counted pending (see
    /// [`begin_send`](Self::begin_send)) when this succeeds.
    ///
    /// # Errors
    ///
    /// As [`enter`](Self::enter); for a send also
    /// [`Error::CONNECTION_ABORTED`] once either side aborted the
    /// connection.
    #[inline]
    pub(crate) fn enter_transfer(&self, send: bool) -> Result<Entered<'_>> {
        if send {
            // Counted before the state is read (sequentially consistent
            // with `begin_silent`, which sets SILENCING then reads the count).
            self.pending_sends.fetch_add(1, Ordering::SeqCst);
        }
        let flags = self.flags.load(Ordering::SeqCst);
        let refused = DEAD | SILENT | SILENCING | if send { ABORTED } else { 0 };
        if flags & (CONNECTED | refused) != CONNECTED
            || (send
                && self
                    .peer_disconnect()
                    .is_some_and(|f| f & sys::WSK_FLAG_ABORTIVE != 0))
        {
            if send {
                self.end_send();
            }
            return Err(transfer_refusal(flags));
        }
        match self.enter_rundown() {
            Ok(entered) => Ok(entered),
            Err(e) => {
                if send {
                    self.end_send();
                }
                Err(e)
            }
        }
    }

    /// Starts a call that the socket's state does not restrict (releasing
    /// or reading a retained list, the silent-mode request itself): only
    /// refused once deregistration closed the socket.
    ///
    /// # Errors
    ///
    /// [`Error::FILE_FORCED_CLOSED`] once deregistration closed the socket.
    #[inline]
    pub(crate) fn enter_rundown(&self) -> Result<Entered<'_>> {
        if self.calls.fetch_add(1, Ordering::Acquire) & SHUT != 0 {
            self.calls.fetch_sub(1, Ordering::Release);
            return Err(Error::FILE_FORCED_CLOSED);
        }
        Ok(Entered(&self.calls))
    }

    /// Whether deregistration closed the socket under its handle.
    pub(crate) fn is_shut(&self) -> bool {
        self.calls.load(Ordering::Acquire) & SHUT != 0
    }

    /// The provider's dispatch table of this socket, viewed as `T`.
    ///
    /// # Safety
    ///
    /// The socket exists and `T` is the dispatch table type of its kind.
    ///
    /// A stream socket's table (`WSK_PROVIDER_STREAM_DISPATCH`, learned when
    /// this crate created one) is seen through its connection or listen view
    /// (see `StreamTables`), so the connection and listen code works on
    /// stream sockets, and on the sockets a stream listener accepts,
    /// unchanged.
    pub(crate) unsafe fn dispatch<T: ProviderTable>(&self) -> &T {
        // SAFETY: per the caller, the socket exists.
        let table = unsafe { (*self.socket()).Dispatch };
        if let Some(view) = self
            .provider
            .stream_tables
            .find(table)
            .and_then(T::stream_view)
        {
            return view;
        }
        let windows = self.provider.windows();
        if let Some(view) = T::short_table_copy(&self.provider.stream_tables, windows, table) {
            return view;
        }
        // SAFETY: per the caller, the table is a `T`, valid while the socket is.
        unsafe { &*table.cast::<T>() }
    }

    pub(crate) fn set_flags(&self, bits: u32) {
        self.flags.fetch_or(bits, Ordering::AcqRel);
    }

    pub(crate) fn clear_flags(&self, bits: u32) {
        self.flags.fetch_and(!bits, Ordering::AcqRel);
    }

    pub(crate) fn has_flags(&self, bits: u32) -> bool {
        self.flags.load(Ordering::Acquire) & bits != 0
    }

    /// Records the status a routine on this socket completed with: after
    /// `STATUS_FILE_FORCED_CLOSED` the socket "is no longer functional" and
    /// must be closed (for example
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>).
    #[inline]
    pub(crate) fn note_status(&self, status: sys::NTSTATUS) {
        if status == sys::STATUS_FILE_FORCED_CLOSED {
            self.set_flags(DEAD);
        }
    }

    /// Whether nothing but closing is left to do with the socket: the
    /// provider declared it no longer functional, or deregistration closed
    /// it.
    pub(crate) fn must_close(&self) -> bool {
        self.has_flags(DEAD) || self.is_shut()
    }

    /// Counts a send or disconnect submitted (silent mode is refused while
    /// one is pending); `Err` if silent mode is being set or is on.
    ///
    /// Sequentially consistent with [`begin_silent`](Self::begin_silent):
    /// of a send and a silent-mode request racing, at least one sees the
    /// other.
    pub(crate) fn begin_send(&self) -> Result<()> {
        self.pending_sends.fetch_add(1, Ordering::SeqCst);
        if self.flags.load(Ordering::SeqCst) & (SILENCING | SILENT) != 0 {
            self.end_send();
            return Err(Error::INVALID_DEVICE_STATE);
        }
        Ok(())
    }

    /// Uncounts a send or disconnect counted by
    /// [`begin_send`](Self::begin_send).
    #[inline]
    pub(crate) fn end_send(&self) {
        self.pending_sends.fetch_sub(1, Ordering::Release);
    }

    /// Marks silent mode as being requested; `Err` (and nothing marked) if
    /// a send or disconnect is pending or silent mode was requested before.
    pub(crate) fn begin_silent(&self) -> Result<()> {
        let before = self.flags.fetch_or(SILENCING, Ordering::SeqCst);
        if before & (SILENCING | SILENT) != 0 {
            return Err(Error::INVALID_DEVICE_STATE);
        }
        if self.pending_sends.load(Ordering::SeqCst) != 0 {
            self.clear_flags(SILENCING);
            return Err(Error::INVALID_DEVICE_STATE);
        }
        Ok(())
    }

    /// Records a disconnect event (its `Flags`).
    ///
    /// Relaxed suffices: a send that misses a reset that has just happened
    /// gets the provider's error instead of ours.
    #[inline]
    pub(crate) fn record_peer_disconnect(&self, flags: u32) {
        self.peer_disconnect
            .store(flags | PEER_DISCONNECTED, Ordering::Relaxed);
    }

    /// The flags of the peer's disconnect event, if one arrived.
    pub(crate) fn peer_disconnect(&self) -> Option<u32> {
        let flags = self.peer_disconnect.load(Ordering::Relaxed);
        (flags & PEER_DISCONNECTED != 0).then_some(flags & !PEER_DISCONNECTED)
    }

    /// A provider table routine read on its own, at `offset` (see
    /// [`read_routine`]).
    ///
    /// # Safety
    ///
    /// The socket exists; `offset` is the offset of a field of type `F` its
    /// provider table has on the running Windows.
    pub(crate) unsafe fn routine<F: Copy>(&self, offset: usize) -> F {
        // SAFETY: the socket exists (caller contract).
        let table = unsafe { (*self.socket()).Dispatch };
        // SAFETY: per the caller, the table has the field.
        unsafe { read_routine(table, offset) }
    }

    /// Whether either side aborted the connection.
    pub(crate) fn is_aborted(&self) -> bool {
        self.has_flags(ABORTED)
            || self
                .peer_disconnect()
                .is_some_and(|f| f & sys::WSK_FLAG_ABORTIVE != 0)
    }

    /// Ends the accept callback's window; true if the handle was dropped or
    /// closed inside it, or deregistration closed it (the connection must
    /// then be rejected).
    ///
    /// A rejected socket is closed by the provider, so nobody may submit
    /// `WskCloseSocket` for it afterwards: it is marked closing (the
    /// retain gate's `CLOSING`, which makes every later
    /// [`begin_close`](Self::begin_close) answer false) *before* `ACCEPTING`
    /// is cleared. Whoever finds `ACCEPTING` clear — a handle dropped after
    /// the callback, deregistration's `shut_down` — then finds `CLOSING`
    /// set too, and closes nothing.
    pub(crate) fn finish_accept(&self) -> bool {
        let mut current = self.flags.load(Ordering::Acquire);
        loop {
            if current & CLOSED_IN_ACCEPT != 0 {
                // CLOSED_IN_ACCEPT is only set while ACCEPTING and never
                // cleared: the rejection is decided.
                self.gate.fetch_or(CLOSING, Ordering::AcqRel);
                self.flags.fetch_and(!ACCEPTING, Ordering::AcqRel);
                return true;
            }
            match self.flags.compare_exchange_weak(
                current,
                current & !ACCEPTING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return false,
                Err(actual) => current = actual,
            }
        }
    }

    /// Records a close requested inside the accept callback; true if that is
    /// the case (the caller must then not close the socket itself).
    pub(crate) fn close_in_accept(&self) -> bool {
        let mut current = self.flags.load(Ordering::Acquire);
        while current & ACCEPTING != 0 {
            match self.flags.compare_exchange_weak(
                current,
                current | CLOSED_IN_ACCEPT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// Marks the socket closing; true if no retained indication is
    /// outstanding, so the caller must submit the close now. False too if
    /// closing had begun already (deregistration closed the socket, or its
    /// close waits for the last retained list).
    pub(crate) fn begin_close(&self) -> bool {
        // Sequentially consistent with `claim_slot`'s re-check (see there).
        self.gate.fetch_or(CLOSING, Ordering::SeqCst) == 0
    }

    /// Uncounts a retained list; true if the caller must now submit the
    /// deferred close.
    pub(crate) fn end_retain(&self) -> bool {
        self.gate.fetch_sub(1, Ordering::AcqRel) == CLOSING + 1
    }

    /// Takes a retained-list slot for `head`, indicated to the callback
    /// running now, and counts it in the gate. `None` while the socket is
    /// unknown (the list could not be released on it), once closing has
    /// begun (the DDI wants every retained list released before
    /// `WskCloseSocket`), or when every slot is taken — then the callback's
    /// own answer applies, so the provider keeps or drops the data as if
    /// nothing was retained.
    ///
    /// The second element is true if the caller must submit the close: the
    /// socket started closing between the count and the refusal.
    pub(crate) fn claim_slot(&self, head: usize) -> (Option<u8>, bool) {
        if self.socket().is_null() {
            return (None, false);
        }
        let mut current = self.gate.load(Ordering::Relaxed);
        loop {
            if current & CLOSING != 0 {
                return (None, false);
            }
            match self.gate.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        #[cfg(test)]
        tests::after_gate_count();
        for (i, slot) in self.retained.iter().enumerate() {
            if slot
                .compare_exchange(0, head | IN_CALLBACK, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                // Closing may have begun since the gate was counted, and
                // deregistration's sweep of the slots (`shut_down`) may have
                // passed this one already: then nobody would empty it, the
                // gate would never drain and the close would never be
                // submitted. Sequentially consistent with the sweep (which
                // marks CLOSING, then empties every slot): either this load
                // sees CLOSING, or the sweep sees this slot.
                if self.gate.load(Ordering::SeqCst) & CLOSING != 0
                    && slot
                        .compare_exchange(
                            head | IN_CALLBACK,
                            0,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    // Taken back before anyone else emptied it: refused,
                    // and the count goes back (closing if it was the last).
                    return (None, self.end_retain());
                }
                // Still ours, or emptied by the sweep (which gave the counts
                // back, and the handle's drop then releases nothing).
                #[allow(clippy::cast_possible_truncation)] // RETAIN_SLOTS < 256
                return (Some(i as u8), false);
            }
        }
        (None, self.end_retain())
    }

    /// After the callback that retained `head` into `slot` returned: true
    /// if the list is still retained (answer `STATUS_PENDING`), false if it
    /// was released before (answer `STATUS_SUCCESS`: the data was taken).
    #[inline]
    pub(crate) fn confirm_slot(&self, slot: u8, head: usize) -> bool {
        self.retained[usize::from(slot)]
            .compare_exchange(
                head | IN_CALLBACK,
                head,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Empties `slot`, which held `head` for a retained handle being
    /// dropped: `Some(true)` if the provider considers the list retained
    /// (the caller must `WskRelease` it), `Some(false)` if its callback is
    /// still running (nothing to release: the callback answers
    /// `STATUS_SUCCESS`), `None` if deregistration released it already
    /// (nothing left to do). In both `Some` cases the caller then gives back
    /// the slot's gate and live counts.
    pub(crate) fn take_slot(&self, slot: u8, head: usize) -> Option<bool> {
        let cell = &self.retained[usize::from(slot)];
        let mut current = cell.load(Ordering::Acquire);
        loop {
            if current & !IN_CALLBACK != head {
                return None;
            }
            match cell.compare_exchange_weak(current, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(current & IN_CALLBACK == 0),
                Err(actual) => current = actual,
            }
        }
    }
}

/// The error for a send or receive refused by the socket's state `flags`.
#[cold]
fn transfer_refusal(flags: u32) -> Error {
    if flags & DEAD != 0 {
        Error::FILE_FORCED_CLOSED
    } else if flags & (CONNECTED | SILENT | SILENCING) != CONNECTED {
        Error::INVALID_DEVICE_STATE
    } else {
        // Aborted, by this side or the peer.
        Error::CONNECTION_ABORTED
    }
}

/// The error for a call refused by the socket's state `flags`.
#[cold]
fn refusal(flags: u32) -> Error {
    if flags & DEAD != 0 {
        Error::FILE_FORCED_CLOSED
    } else {
        Error::INVALID_DEVICE_STATE
    }
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;
    use core::cell::Cell;
    use core::time::Duration;

    use super::*;
    use crate::events::NoEvents;
    use crate::irql::Passive;

    std::thread_local! {
        /// Run by `claim_slot` right after it counted the retained list in
        /// the gate, before it takes a slot: what another processor may do
        /// in that moment.
        static AFTER_GATE_COUNT: Cell<Option<Box<dyn FnOnce()>>> = const { Cell::new(None) };
    }

    pub(super) fn after_gate_count() {
        if let Some(step) = AFTER_GATE_COUNT.with(Cell::take) {
            step();
        }
    }

    /// Deregistration closes a socket (`shut_down`) while its receive
    /// callback is retaining a list: between the callback's gate count and
    /// its slot. Whatever the interleaving, the list must end up either
    /// refused or in a slot deregistration empties; a list retained into a
    /// slot deregistration already passed would keep the close back (the
    /// gate never drains) and `deregister` would wait forever.
    #[test]
    fn a_list_retained_while_deregistration_closes_the_socket_does_not_keep_the_close_back() {
        let sim = wsk_sim::Sim::start();
        let peer = sim.peer_listen("10.0.0.2:80");
        // SAFETY: a host test thread: PASSIVE_LEVEL, outside any callback.
        let passive = unsafe { Passive::new_unchecked() };
        let registration = crate::Registration::register(&passive).expect("register");
        let provider = registration
            .capture(&passive, Some(Duration::from_secs(10)))
            .expect("capture");
        let socket = crate::block_on(
            &passive,
            crate::tcp::connect(&provider, "10.0.0.2:80".parse().unwrap(), NoEvents),
        )
        .expect("connected");
        let _conn = peer.accept();
        let core = CoreRef::clone(socket.core());
        let closing = CoreRef::clone(&core);
        AFTER_GATE_COUNT.with(|h| {
            h.set(Some(Box::new(move || {
                // SAFETY: the test thread, as above.
                let passive = unsafe { Passive::new_unchecked() };
                let released = SocketCore::close_under_handle(closing, &passive);
                assert_eq!(released, 0, "no list was in a slot yet");
            })));
        });
        // A list pointer as the provider would indicate one (never released:
        // it is refused, or still tagged as in its callback).
        let head = 0x1000;
        let (slot, close) = core.claim_slot(head);
        assert!(AFTER_GATE_COUNT.with(Cell::take).is_none(), "the step ran");
        if let Some(slot) = slot {
            // Retained: deregistration must still own the slot, or the close
            // waits for a release nobody will make.
            assert_eq!(
                core.retained[usize::from(slot)].load(Ordering::Acquire),
                0,
                "a list retained into a slot deregistration had passed already"
            );
        } else {
            assert!(
                close,
                "the refusal handed back the last gate count: it closes"
            );
            crate::socket::close::submit_close(SocketCore::erase(&core)).detach();
        }
        assert_eq!(
            core.gate.load(Ordering::Acquire),
            CLOSING,
            "the gate drained"
        );
        drop((core, socket, provider));
        // The close was submitted (by the refusal): nothing is left open.
        registration.deregister(&passive).expect("closed");
        sim.finish();
    }
}
