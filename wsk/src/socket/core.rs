//! The state of one socket shared by its handle, its requests and the
//! provider's callbacks.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use wsk_sys as sys;

use crate::provider::npi::ProviderInner;
use crate::provider::tables::{ProviderTable, read_routine};

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
/// receive only then.
pub(crate) const BOUND: u32 = 1 << 9;
/// The handler's callbacks are enabled (`enable_events` succeeded with a
/// non-empty mask, or an accepted socket inherited them).
pub(crate) const EVENTS_ON: u32 = 1 << 10;
/// A datagram socket has a fixed remote address (`SIO_WSK_SET_REMOTE_ADDRESS`
/// with an address), so `send` may omit the destination.
pub(crate) const FIXED_REMOTE: u32 = 1 << 17;
/// A datagram socket has a fixed destination (`SIO_WSK_SET_SENDTO_ADDRESS`
/// with an address), so `send` may omit it. Set and cleared independently
/// of [`FIXED_REMOTE`]: either lets `WskSendTo` go without an address
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_to>).
pub(crate) const FIXED_SENDTO: u32 = 1 << 18;

/// The state of one WSK socket shared by its handle, its requests and the
/// provider's callbacks (whose `SocketContext` is this struct's address).
///
/// # Invariants
///
/// - The core is always inside an `Arc`; the provider's `SocketContext` is
///   `Arc::as_ptr`. One strong reference is held by whoever will submit
///   `WskCloseSocket` and dropped only when it completes, so callbacks never
///   see a freed core.
/// - `socket` is null until the socket exists, then fixed.
/// - `gate` counts retained indications plus the `CLOSING` bit; the party that
///   brings it to exactly `CLOSING` submits the close.
pub(crate) struct SocketCore<H: ?Sized> {
    socket: AtomicPtr<sys::WSK_SOCKET>,
    pub(crate) provider: Arc<ProviderInner>,
    gate: AtomicUsize,
    flags: AtomicU32,
    /// The last disconnect event's flags with `PEER_DISCONNECTED`, written by
    /// the event trampoline alone: a plain store keeps the event path as
    /// cheap as a hand-written callback's.
    peer_disconnect: AtomicU32,
    pub(crate) handler: H,
}

/// A socket's core with its handler type erased: what requests and
/// retained indications keep alive, so that none of them is generic over
/// the handler. The fields before the handler are at the same offsets for
/// every handler type; only dropping the last reference goes through the
/// handler's vtable.
pub(crate) type ErasedCore = SocketCore<dyn Send + Sync>;

/// A strong reference to an [`ErasedCore`]: a pointer and a `'static`
/// vtable, cloned and dropped with one atomic operation each, as an
/// `Arc<SocketCore<H>>` is.
pub(crate) type SocketRef = Arc<ErasedCore>;

impl<H: Send + Sync + 'static> SocketCore<H> {
    pub(crate) fn new(provider: Arc<ProviderInner>, handler: H) -> Self {
        Self {
            socket: AtomicPtr::new(core::ptr::null_mut()),
            provider,
            gate: AtomicUsize::new(0),
            flags: AtomicU32::new(0),
            peer_disconnect: AtomicU32::new(0),
            handler,
        }
    }

    /// The socket context to hand to the provider.
    pub(crate) fn context(this: &Arc<Self>) -> sys::PVOID {
        Arc::as_ptr(this).cast_mut().cast()
    }

    /// A handler-free strong reference (for a request's payload).
    #[inline]
    pub(crate) fn erase(this: &Arc<Self>) -> SocketRef {
        Arc::clone(this) as SocketRef
    }
}

impl<H: ?Sized> SocketCore<H> {
    /// The WSK socket (null before creation completes).
    pub(crate) fn socket(&self) -> sys::PWSK_SOCKET {
        self.socket.load(Ordering::Acquire)
    }

    pub(crate) fn set_socket(&self, socket: sys::PWSK_SOCKET) {
        self.socket.store(socket, Ordering::Release);
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
    /// closed inside it (the connection must then be rejected).
    pub(crate) fn finish_accept(&self) -> bool {
        self.flags.fetch_and(!ACCEPTING, Ordering::AcqRel) & CLOSED_IN_ACCEPT != 0
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

    /// Counts a retained indication unless closing has begun.
    pub(crate) fn try_retain(&self) -> bool {
        let mut current = self.gate.load(Ordering::Relaxed);
        loop {
            if current & CLOSING != 0 {
                return false;
            }
            match self.gate.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Uncounts a retained indication; true if the caller must now submit the
    /// deferred close.
    pub(crate) fn end_retain(&self) -> bool {
        self.gate.fetch_sub(1, Ordering::AcqRel) == CLOSING + 1
    }

    /// Marks the socket closing; true if no retained indication is
    /// outstanding, so the caller must submit the close now.
    pub(crate) fn begin_close(&self) -> bool {
        self.gate.fetch_or(CLOSING, Ordering::AcqRel) == 0
    }
}
