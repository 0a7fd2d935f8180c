//! The event side of listening sockets: [`ListenEvents`] (accept and
//! conditional accept), the constant dispatch table derived from it, the
//! trampolines the provider calls, and what they hand the handler.
//! Exported from [`crate::events`].

use alloc::sync::Arc;
use core::cell::Cell;
use core::marker::PhantomData;
use core::net::SocketAddr;

use wsk_sys as sys;

use crate::addr::SockAddr;
use crate::core_ref::CoreRef;
use crate::error::Result;
use crate::irql::context::EventContext;
use crate::provider::npi::ProviderInner;
use crate::socket::core::{
    ACCEPTING, BIND_SUBMITTED, BOUND, CONNECTED, DEAD, EVENTS_ON, SocketCore,
};
use crate::socket::create::Socket;
use crate::tcp::connection::ConnectionSocket;
use crate::tcp::connection::events::{ConnectionEvents, ConnectionVtable, NoEvents};
use crate::tcp::inspect::{InspectAction, InspectId};

/// Event callbacks of a listening socket (`WSK_CLIENT_LISTEN_DISPATCH`).
///
/// `Connection` is the handler type of the connections it accepts: the
/// accept callback supplies one per connection through [`Incoming::accept`],
/// so the accepted socket's callbacks are typed by it.
///
/// ```
/// use wsk::events::{EventContext, Incoming, ListenEvents, NoEvents};
/// use wsk::irql::SpinLock;
/// use wsk::tcp::ConnectionSocket;
/// extern crate alloc;
/// use alloc::vec::Vec;
///
/// struct Server {
///     connections: SpinLock<Vec<ConnectionSocket<NoEvents>>>,
/// }
///
/// #[wsk::vtable]
/// impl ListenEvents for Server {
///     type Connection = NoEvents;
///     fn on_accept(&self, cx: &EventContext<'_>, incoming: Option<Incoming<'_, NoEvents>>) {
///         let Some(incoming) = incoming else { return }; // the listener must be closed
///         // Keep the handle: dropping it here would reject the connection.
///         // Without memory for the socket, `Err`: the connection is rejected.
///         let Ok(socket) = incoming.accept(NoEvents) else { return };
///         self.connections.with_in_callback(cx, |list, _| list.push(socket));
///     }
/// }
/// ```
pub trait ListenEvents: Send + Sync + 'static {
    /// Present only in impl blocks marked [`#[wsk::vtable]`](crate::vtable),
    /// which adds it: an impl without the attribute does not compile,
    /// instead of silently installing none of its callbacks.
    #[doc(hidden)]
    const USE_VTABLE_ATTR: ();

    /// The handler type of accepted connections.
    type Connection: ConnectionEvents;

    /// Whether [`on_accept`](Self::on_accept) is implemented (`WSK_EVENT_ACCEPT`).
    const HAS_ACCEPT: bool = false;

    /// A connection was accepted (`WskAcceptEvent`); the handshake is done.
    ///
    /// Call [`Incoming::accept`] to keep it (the provider is answered
    /// `STATUS_SUCCESS`); otherwise, or if `accept` fails (no memory for the
    /// socket's state), it is rejected
    /// (`STATUS_REQUEST_NOT_ACCEPTED`) and the provider closes it. `None`
    /// means the listening socket no longer works and must be closed.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`; see `cx`.
    fn on_accept(&self, cx: &EventContext<'_>, incoming: Option<Incoming<'_, Self::Connection>>) {
        let _ = (cx, incoming);
    }

    /// Whether [`on_inspect`](Self::on_inspect) is implemented: the listening
    /// socket then uses conditional accept (`SO_CONDITIONAL_ACCEPT`, which
    /// [`tcp::listen`](crate::tcp::listen) sets before binding).
    const HAS_INSPECT: bool = false;

    /// A connection request arrived on a conditional-accept socket, before
    /// the handshake (`WskInspectEvent`).
    ///
    /// Return [`InspectAction::Accept`] to let the handshake proceed (the
    /// connection then arrives through [`on_accept`](Self::on_accept) or
    /// [`ListenSocket::accept`](crate::tcp::ListenSocket::accept)), [`InspectAction::Reject`] to refuse it, or
    /// [`InspectAction::Pend`] to decide later with
    /// [`ListenSocket::inspect_complete`](crate::tcp::ListenSocket::inspect_complete) and the request's
    /// [`id`](ConnectionRequest::id). Requests whose addresses cannot be
    /// read are rejected without calling this.
    ///
    /// `request` is `None` when the provider says the listening socket no
    /// longer works (a NULL `InspectID`): close it as soon as possible
    /// (from outside the callback, for example in a work item). The
    /// provider is then answered `WskInspectReject`, whatever this returns
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event>).
    ///
    /// Inspect and abort events are not enabled with `SO_WSK_EVENT_CALLBACK`:
    /// they are active on every conditional-accept socket. Implementing this
    /// method installs both (a default [`on_abort`](Self::on_abort) if the
    /// handler has none), as conditional accept requires.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (the DDI does not report which).
    fn on_inspect(
        &self,
        cx: &EventContext<'_>,
        request: Option<ConnectionRequest>,
    ) -> InspectAction {
        let _ = (cx, request);
        InspectAction::Accept
    }

    /// Whether [`on_abort`](Self::on_abort) is implemented.
    const HAS_ABORT: bool = false;

    /// The peer dropped a connection request that
    /// [`on_inspect`](Self::on_inspect) accepted or pended, before it was
    /// accepted (`WskAbortEvent`). A pended `id` must not be completed any
    /// more. The trampoline always returns `STATUS_SUCCESS`, as the DDI
    /// requires.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    fn on_abort(&self, cx: &EventContext<'_>, id: InspectId) {
        let _ = (cx, id);
    }
}

/// The listen handler of sockets that enable no events (request-driven
/// accepting); `C` is the handler type of the connections accepted with
/// [`ListenSocket::accept`](crate::tcp::ListenSocket::accept), whose events they enable themselves.
pub struct NoListenEvents<C = NoEvents>(PhantomData<fn(C)>);

impl<C> NoListenEvents<C> {
    /// The handler.
    #[must_use]
    pub const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<C> Default for NoListenEvents<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> core::fmt::Debug for NoListenEvents<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("NoListenEvents")
    }
}

#[crate::vtable]
impl<C: ConnectionEvents> ListenEvents for NoListenEvents<C> {
    type Connection = C;
}

pub(crate) struct ListenVtable<L>(PhantomData<L>);

impl<L: ListenEvents> ListenVtable<L> {
    pub(crate) const DISPATCH: sys::WSK_CLIENT_LISTEN_DISPATCH = sys::WSK_CLIENT_LISTEN_DISPATCH {
        WskAcceptEvent: if L::HAS_ACCEPT {
            Some(accept_event::<L>)
        } else {
            None
        },
        WskInspectEvent: if L::HAS_INSPECT {
            Some(inspect_event::<L>)
        } else {
            None
        },
        // Conditional accept needs both callbacks: each "can be NULL" only
        // when conditional accept is not enabled
        // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_listen_dispatch),
        // and `tcp::listen` enables it for every inspecting handler.
        WskAbortEvent: if L::HAS_INSPECT || L::HAS_ABORT {
            Some(abort_event::<L>)
        } else {
            None
        },
    };

    /// Accept events, plus the accepted connections' events (inherited by
    /// accepted sockets).
    pub(crate) const EVENT_MASK: u32 = if L::HAS_ACCEPT {
        sys::WSK_EVENT_ACCEPT | ConnectionVtable::<L::Connection>::EVENT_MASK
    } else {
        0
    };

    /// Whether the table has no callback at all (then none is installed).
    pub(crate) const IS_EMPTY: bool = Self::EVENT_MASK == 0 && !L::HAS_INSPECT && !L::HAS_ABORT;

    pub(crate) fn dispatch_ptr() -> *const sys::WSK_CLIENT_LISTEN_DISPATCH {
        if Self::IS_EMPTY {
            core::ptr::null()
        } else {
            &Self::DISPATCH
        }
    }
}

/// A connection request offered to [`ListenEvents::on_inspect`]: its
/// addresses (copied: the provider's are valid only during the call) and
/// the ID that [`ListenSocket::inspect_complete`](crate::tcp::ListenSocket::inspect_complete)
/// and [`ListenEvents::on_abort`] use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionRequest {
    local: SocketAddr,
    remote: SocketAddr,
    id: InspectId,
}

impl ConnectionRequest {
    /// The local address the request arrived on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address of the peer asking to connect.
    #[must_use]
    pub fn peer_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The request's ID (`WSK_INSPECT_ID`, compared by content).
    #[must_use]
    pub fn id(&self) -> InspectId {
        self.id
    }
}

/// A connection offered to [`ListenEvents::on_accept`].
pub struct Incoming<'a, C: ConnectionEvents> {
    socket: sys::PWSK_SOCKET,
    /// The listening socket's family, which the accepted socket has.
    family: u16,
    local: *const sys::SOCKADDR,
    remote: *const sys::SOCKADDR,
    provider: &'a Arc<ProviderInner>,
    /// Set on acceptance: the new socket's core.
    accepted: &'a Cell<Option<CoreRef<SocketCore<C>>>>,
}

impl<C: ConnectionEvents> Incoming<'_, C> {
    /// The local address the connection arrived on.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS_COMPONENT`](crate::Error::INVALID_ADDRESS_COMPONENT) for an unexpected address family.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        // SAFETY: the provider passes valid addresses for the callback's duration.
        unsafe { SockAddr::copy_from_raw(self.local) }
    }

    /// The remote address of the connection.
    ///
    /// # Errors
    ///
    /// [`Error::INVALID_ADDRESS_COMPONENT`](crate::Error::INVALID_ADDRESS_COMPONENT) for an unexpected address family.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        // SAFETY: as above.
        unsafe { SockAddr::copy_from_raw(self.remote) }
    }

    /// Accepts the connection with `handler` for its events.
    ///
    /// The connection's events enabled on the listening socket (those `C`
    /// implements) are inherited by the accepted socket.
    ///
    /// The socket is usable at once, inside the callback: Microsoft's own
    /// accept-callback sample "performs additional operations on the
    /// accepted socket" before returning
    /// (<https://learn.microsoft.com/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections>),
    /// so requests (send, receive, options, addresses) reach the provider.
    /// Two things wait for the callback to return:
    ///
    /// - [`enable_events`](ConnectionSocket::enable_events) and
    ///   [`disable_events`](ConnectionSocket::disable_events) fail with
    ///   [`Error::INVALID_DEVICE_STATE`](crate::Error::INVALID_DEVICE_STATE)
    ///   without a provider call: the provider learns the socket's context
    ///   and dispatch table only from the callback's answer.
    /// - Dropping or closing the returned socket before the callback returns
    ///   rejects the connection (`STATUS_REQUEST_NOT_ACCEPTED`): the
    ///   provider then closes the socket itself, so closing it here too would
    ///   close it twice. Requests still pending on it complete when the
    ///   provider closes it.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (inside the accept callback).
    ///
    /// # Errors
    ///
    /// [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES)
    /// if no memory is left for the socket's state: the connection is
    /// rejected (`STATUS_REQUEST_NOT_ACCEPTED`, and the provider closes the
    /// socket,
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>)
    /// and `handler` is dropped. The callback cannot wait for memory: it
    /// can count the refusal or leave a note for a task, and the listener
    /// keeps accepting. A `Result` rather than a separate `try_accept`:
    /// every accept callback runs where the pool can be empty, so every
    /// caller decides what a refusal means to it.
    pub fn accept(self, handler: C) -> Result<ConnectionSocket<C>> {
        let core = SocketCore::try_new(
            Arc::clone(self.provider),
            self.family,
            false,
            handler,
            <ConnectionSocket<C> as Socket>::CLOSED_UNDER,
        )?;
        let inherited = if ConnectionVtable::<C>::EVENT_MASK == 0 {
            0
        } else {
            EVENTS_ON
        };
        core.set_flags(ACCEPTING | BIND_SUBMITTED | BOUND | CONNECTED | inherited);
        // Tracked (and counted open) until its close is submitted, or until
        // the trampoline rejects it.
        self.provider.reg().socket_opening();
        SocketCore::adopt(&core, self.socket);
        self.accepted.set(Some(CoreRef::clone(&core)));
        let live = self.provider.live_handle();
        Ok(ConnectionSocket::from_core(core, live))
    }
}

impl<C: ConnectionEvents> core::fmt::Debug for Incoming<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.peer_addr())
            .finish_non_exhaustive()
    }
}

/// `PFN_WSK_ACCEPT_EVENT` trampoline.
///
/// # Safety
///
/// Called by the provider with the context of a listening socket whose
/// handler is `L`; the out-parameters are writable.
unsafe extern "system" fn accept_event<L: ListenEvents>(
    context: sys::PVOID,
    flags: sys::ULONG,
    local: sys::PSOCKADDR,
    remote: sys::PSOCKADDR,
    accept_socket: sys::PWSK_SOCKET,
    accept_context: *mut sys::PVOID,
    accept_dispatch: *mut *const sys::WSK_CLIENT_CONNECTION_DISPATCH,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live core until the listening socket's close completes.
    let core = unsafe { &*context.cast::<SocketCore<L>>() };
    // SAFETY: inside the provider's callback; the flag tells DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(flags) };
    if accept_socket.is_null() {
        // The listening socket no longer works and must be closed: nothing
        // but the close is called on it from now on. Nothing was accepted,
        // so the answer is the one Microsoft's sample gives
        // (https://learn.microsoft.com/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections).
        core.set_flags(DEAD);
        core.handler.on_accept(&cx, None);
        return sys::STATUS_REQUEST_NOT_ACCEPTED;
    }
    if core.is_shut() {
        // Deregistration is closing the listener: no new connection.
        return sys::STATUS_REQUEST_NOT_ACCEPTED;
    }
    let accepted = Cell::new(None);
    let incoming = Incoming {
        socket: accept_socket,
        family: core.family(),
        local,
        remote,
        provider: &core.provider,
        accepted: &accepted,
    };
    core.handler.on_accept(&cx, Some(incoming));
    let Some(new_core) = accepted.take() else {
        return sys::STATUS_REQUEST_NOT_ACCEPTED;
    };
    if new_core.finish_accept() {
        // The handle was dropped or closed inside the callback (or
        // deregistration closed it): reject, and the provider closes the
        // socket; our last reference frees the core.
        let tracked = new_core.reg().teardown.untrack(new_core.links_of());
        new_core.reg().socket_gone();
        drop(tracked);
        return sys::STATUS_REQUEST_NOT_ACCEPTED;
    }
    let dispatch = ConnectionVtable::<L::Connection>::dispatch_ptr();
    // NULL for a handler without callbacks, as it should be
    // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event).
    let context = if dispatch.is_null() {
        core::ptr::null_mut()
    } else {
        SocketCore::context(&new_core)
    };
    // SAFETY: the provider passes writable out-parameters; the context stays
    // valid until the handle's close completes (the handle holds the core).
    unsafe { accept_context.write(context) };
    // SAFETY: as above.
    unsafe { accept_dispatch.write(dispatch) };
    sys::STATUS_SUCCESS
}

/// `PFN_WSK_INSPECT_EVENT` trampoline.
///
/// # Safety
///
/// Called by the provider with the context of a listening socket whose
/// handler is `L`; the addresses and ID are valid for the call.
unsafe extern "system" fn inspect_event<L: ListenEvents>(
    context: sys::PVOID,
    local: sys::PSOCKADDR,
    remote: sys::PSOCKADDR,
    id: sys::PWSK_INSPECT_ID,
) -> sys::WSK_INSPECT_ACTION {
    // SAFETY: the context is a live core until the listening socket's close completes.
    let core = unsafe { &*context.cast::<SocketCore<L>>() };
    // SAFETY: inside the provider's callback; no flags: IRQL <= DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(0) };
    if id.is_null() {
        // The listening socket no longer works and must be closed; reject,
        // as Microsoft's sample does.
        let _ = core.handler.on_inspect(&cx, None);
        return sys::WskInspectReject;
    }
    // SAFETY: the provider passes a valid WSK_INSPECT_ID for the call.
    let id = InspectId::from_raw(unsafe { &*id });
    // SAFETY: the provider passes valid addresses for the call.
    let local = unsafe { SockAddr::copy_from_raw(local) };
    // SAFETY: as above.
    let remote = unsafe { SockAddr::copy_from_raw(remote) };
    let (Ok(local), Ok(remote)) = (local, remote) else {
        return sys::WskInspectReject;
    };
    let request = ConnectionRequest { local, remote, id };
    core.handler.on_inspect(&cx, Some(request)).raw()
}

/// `PFN_WSK_ABORT_EVENT` trampoline; always `STATUS_SUCCESS`.
///
/// # Safety
///
/// As [`inspect_event`].
unsafe extern "system" fn abort_event<L: ListenEvents>(
    context: sys::PVOID,
    id: sys::PWSK_INSPECT_ID,
) -> sys::NTSTATUS {
    // SAFETY: the context is a live core until the listening socket's close completes.
    let core = unsafe { &*context.cast::<SocketCore<L>>() };
    if id.is_null() {
        return sys::STATUS_SUCCESS;
    }
    // SAFETY: the provider passes a valid WSK_INSPECT_ID for the call.
    let id = InspectId::from_raw(unsafe { &*id });
    // SAFETY: inside the provider's callback; no flags: IRQL <= DISPATCH_LEVEL.
    let cx = unsafe { EventContext::new(0) };
    core.handler.on_abort(&cx, id);
    sys::STATUS_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OnlyInspect;
    #[crate::vtable]
    impl ListenEvents for OnlyInspect {
        type Connection = NoEvents;
        fn on_inspect(&self, _: &EventContext<'_>, _: Option<ConnectionRequest>) -> InspectAction {
            InspectAction::Accept
        }
    }

    /// INS-6 (M-08): conditional accept never runs with a NULL inspect or
    /// abort callback.
    #[test]
    fn inspecting_handlers_install_both_conditional_accept_callbacks() {
        let table = ListenVtable::<OnlyInspect>::DISPATCH;
        assert!(table.WskInspectEvent.is_some());
        assert!(table.WskAbortEvent.is_some(), "a default on_abort");
        assert!(table.WskAcceptEvent.is_none());
        const { assert!(!ListenVtable::<OnlyInspect>::IS_EMPTY) };
        let none = ListenVtable::<NoListenEvents>::DISPATCH;
        assert!(none.WskInspectEvent.is_none() && none.WskAbortEvent.is_none());
        assert!(ListenVtable::<NoListenEvents>::dispatch_ptr().is_null());
    }
}
