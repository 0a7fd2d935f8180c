//! Closing a socket, written once for every socket kind: the close a
//! handle asks for (`WskCloseSocket` once no retained list holds it back),
//! the release of retained lists (`WskRelease`), and what deregistration
//! does to a socket the driver never closed ([`Tracked::shut_down`]).
//!
//! Kept apart from [`core`](super::core), whose state it reads and
//! changes, so that the state module makes no provider call: `core`
//! imports nothing from here, and the modules that close (the socket
//! kinds, `create`, `retain`) import this one.

use core::mem::offset_of;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use wsk_sys as sys;

use super::core::{ErasedCore, IN_CALLBACK, RETAIN_SLOTS, SocketCore, SocketRef};
use crate::core_ref::{CoreRef, RcInner};
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation};
use crate::irp::handle::Request;
use crate::irql::Passive;
use crate::provider::teardown::{Links, SHUT, Tracked, drain};

/// Submits `WskCloseSocket` for `core`.
///
/// The request holds the core until the provider completes the close, since
/// callbacks may run until then. The registration stops tracking the socket
/// (its close is submitted) and counts it gone once the close completed.
pub(crate) fn submit_close(core: SocketRef) -> Request<CloseOp> {
    let socket = core.socket();
    if socket.is_null() {
        return Request::ready(Ok(()));
    }
    // Dropped after the list's lock is released, and not the last reference
    // (the close request holds one).
    let tracked = core.reg().teardown.untrack(core.links_of());
    drop(tracked);
    // SAFETY: the socket exists; every socket kind's table starts with the basic one.
    let close = unsafe { core.dispatch::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }.WskCloseSocket;
    let Some(close) = close else {
        // A provider without WskCloseSocket cannot close anything: do not
        // let deregistration wait for this socket.
        core.reg().socket_gone();
        return Request::failed(CloseOp { core }, Error::NOT_IMPLEMENTED);
    };
    Request::submit(CloseOp { core }, |irp, _| {
        // SAFETY: the socket exists and no other call on it is in progress:
        // the handle was given up by value, or deregistration shut and
        // drained the socket's run-down; every retained list was released
        // (the gate); the payload keeps the core alive until completion.
        unsafe { close(socket, irp) }
    })
}

/// Closes the socket of a handle that is being closed explicitly: the
/// close request, or — inside the accept callback — nothing (the connection
/// is rejected instead), or — while retained indications are held — an
/// [`Error::INVALID_DEVICE_STATE`] request (the last release closes), or —
/// once deregistration closed it — an [`Error::FILE_FORCED_CLOSED`] request.
pub(crate) fn close(core: SocketRef) -> Request<CloseOp> {
    if core.close_in_accept() {
        // Inside its accept callback: the connection is rejected instead.
        return Request::ready(Ok(()));
    }
    if core.is_shut() {
        return Request::ready(Err(Error::FILE_FORCED_CLOSED));
    }
    if core.begin_close() {
        submit_close(core)
    } else {
        // The last retained indication submits the close.
        Request::ready(Err(Error::INVALID_DEVICE_STATE))
    }
}

/// Starts closing a socket whose handle is gone; the close completes in the
/// background, or when the last retained indication is released.
pub(crate) fn close_in_background(core: SocketRef) {
    if core.close_in_accept() {
        // The accept trampoline rejects the connection instead.
        return;
    }
    if core.begin_close() {
        submit_close(core).detach();
    }
    // Otherwise the last retained indication submits it (and holds a
    // reference), or deregistration closed it already.
}

/// `WskCloseSocket`.
pub struct CloseOp {
    core: SocketRef,
}

impl Operation for CloseOp {
    type Output = Result<()>;
    fn complete(self, status: i32, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
    const ON_COMPLETION: bool = true;
    fn completed(&self, _status: i32, _information: usize) {
        // The socket is gone, whatever the status: deregistration no longer
        // waits for it.
        self.core.reg().socket_gone();
    }
}

/// Releases `head` to the provider: the `WskRelease` of a connection (or
/// stream, or listening) socket, or of a datagram socket if `datagram`.
///
/// # Safety
///
/// `head` is a list `core`'s socket indicated, retained by answering
/// `STATUS_PENDING` and released once, now; the socket is not closed (the
/// retain gate holds the close back).
pub(crate) unsafe fn release_list(core: &ErasedCore, head: usize, datagram: bool) {
    if datagram {
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskRelease);
        // SAFETY: the socket exists (it indicated data) and is a datagram
        // socket; `WskRelease` exists in every version of the table.
        let release: sys::PFN_WSK_RELEASE_DATAGRAM_INDICATION_LIST =
            unsafe { core.routine(offset) };
        if let Some(release) = release {
            // SAFETY: per the caller.
            let _ = unsafe { release(core.socket(), head as sys::PWSK_DATAGRAM_INDICATION) };
        }
    } else {
        // SAFETY: the socket exists (it indicated data); a connection socket
        // (or a stream socket seen through its connection view).
        let table = unsafe { core.dispatch::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>() };
        if let Some(release) = table.WskRelease {
            // SAFETY: per the caller.
            let _ = unsafe { release(core.socket(), head as sys::PWSK_DATA_INDICATION) };
        }
    }
}

impl<H: Send + Sync + 'static> SocketCore<H> {
    /// Deregistration: empties `slot` whatever it holds, releasing the list
    /// to the provider if it was confirmed, and gives back its counts
    /// (submitting the close if that was the last); true if it held one.
    fn release_slot_forced(this: &CoreRef<Self>, slot: usize) -> bool {
        // Sequentially consistent with `claim_slot`'s re-check (see there).
        let held = this.retained[slot].swap(0, Ordering::SeqCst);
        if held == 0 {
            return false;
        }
        if held & IN_CALLBACK == 0 {
            // SAFETY: a list this socket indicated and the callback
            // confirmed (answered STATUS_PENDING); emptying the slot made it
            // ours to release, once; the gate count it holds keeps the
            // close back.
            unsafe { release_list(this.as_erased(), held, this.datagram) };
        }
        crate::debug::line(format_args!(
            "deregister: released an indication list retained from a socket with handler {}",
            core::any::type_name::<H>()
        ));
        this.provider.remove_live();
        if this.end_retain() {
            submit_close(SocketCore::erase(this)).detach();
        }
        true
    }

    /// Deregistration closes the socket under its handle (see
    /// [`Tracked::shut_down`]); how many retained lists were released.
    pub(crate) fn close_under_handle(this: CoreRef<Self>, passive: &Passive<'_>) -> usize {
        // No call starts from now on; those in progress end quickly (calls
        // never wait).
        this.calls.fetch_or(SHUT, Ordering::AcqRel);
        drain(&this.calls, passive);
        if let Some(closed_under) = this.closed_under {
            // SAFETY: made for this core's handler type (`try_new`'s
            // contract); the handler lives as long as the core we hold.
            unsafe { closed_under(core::ptr::from_ref(&this.handler).cast()) };
        }
        if this.close_in_accept() {
            // Its accept callback is running: the trampoline rejects it and
            // the provider closes it (marked closing first, so that the
            // handle's later drop closes nothing; `finish_accept`).
            return 0;
        }
        // From here on `ACCEPTING` is clear: an accepted socket closes
        // below; one the trampoline rejected is marked closing already, so
        // `begin_close` answers false and nothing is closed twice.
        // No retention from now on; the party that brings the gate to
        // exactly CLOSING submits the close.
        let close_now = this.begin_close();
        let mut released = 0;
        for slot in 0..RETAIN_SLOTS {
            if Self::release_slot_forced(&this, slot) {
                released += 1;
            }
        }
        if close_now {
            submit_close(SocketCore::into_erased(this)).detach();
        }
        released
    }
}

impl<H: Send + Sync + 'static> Tracked for SocketCore<H> {
    fn links(&self) -> &Links {
        &self.links
    }

    unsafe fn shut_down(&self, this: CoreRef<dyn Tracked>, passive: &Passive<'_>) -> usize {
        let this: NonNull<RcInner<Self>> = CoreRef::into_inner(this).cast();
        // SAFETY: `this` points to `self` (caller contract), a
        // `SocketCore<H>`: the reference given up, cast back to the type it
        // was made with.
        Self::close_under_handle(unsafe { CoreRef::from_inner(this) }, passive)
    }

    fn describe(&self) -> &'static str {
        core::any::type_name::<H>()
    }
}
