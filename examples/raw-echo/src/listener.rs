//! The listening socket and the listener thread: one `WskAccept` at a time
//! (<https://learn.microsoft.com/windows-hardware/drivers/network/listening-for-and-accepting-incoming-connections>),
//! a system thread per accepted connection, and the shutdown that closes
//! the socket and joins every connection thread.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use wsk::irql::Passive;
use wsk_driver::dbg_println;
use wsk_driver::thread::SystemThread;
use wsk_sys as sys;

use crate::connection::Connection;
use crate::request::{Request, Wait};
use crate::{Shared, Status, addr, check};

/// `IPPROTO_TCP` as the `ULONG` `WskSocket` takes (6; `IPPROTO` is a C
/// `int` in `ws2def.h`).
#[allow(clippy::cast_sign_loss)] // 6 is positive.
const TCP: sys::ULONG = sys::IPPROTO_TCP as sys::ULONG;

/// How long the listener pauses after an accept failed for a reason other
/// than a client that went away (100 ns units: 100 ms), so that a lasting
/// failure does not spin.
const RETRY_PAUSE: i64 = 1_000_000;

/// `WskCloseSocket(socket)` with `request`'s IRP, waited for; returns its
/// status.
///
/// The caller makes no other call on `socket` now or later; pending IRPs of
/// the socket are allowed (the close completes them).
pub(crate) fn close_socket(socket: sys::PWSK_SOCKET, request: &Request) -> sys::NTSTATUS {
    // SAFETY: a socket the provider gave us and has not closed.
    let table = unsafe { (*socket).Dispatch };
    // SAFETY: every socket's table starts with the basic one.
    let close = unsafe { (*table.cast::<sys::WSK_PROVIDER_BASIC_DISPATCH>()).WskCloseSocket };
    let Some(close) = close else {
        return sys::STATUS_NOT_IMPLEMENTED;
    };
    let start = |irp| {
        // SAFETY: the socket is open and no other call on it is in progress
        // (the caller's contract); `irp` is the request's; PASSIVE_LEVEL.
        unsafe { close(socket, irp) }
    };
    // SAFETY: no call of `request` is out (its owner waits for each).
    unsafe { request.call(start) };
    request.finish().0
}

/// A connection thread and whether it has finished (so that it can be
/// joined without waiting).
struct Worker {
    done: Arc<AtomicBool>,
    thread: SystemThread,
}

/// The listening socket and what its thread needs.
pub(crate) struct Listener {
    socket: sys::PWSK_SOCKET,
    accept: sys::PFN_WSK_ACCEPT,
    /// Accepts (and, in `open`, the socket's creation and binding).
    request: Request,
    /// Closes: the listening socket's, and an accepted socket's that
    /// cannot be served.
    closing: Request,
    /// Where `WskAccept` writes the client's address; the provider holds
    /// its address while an accept is pending.
    remote: alloc::boxed::Box<UnsafeCell<sys::SOCKADDR_STORAGE>>,
}

// SAFETY: the socket and the requests are used by one thread at a time: the
// thread that opens the listener hands it whole to the listener thread.
unsafe impl Send for Listener {}

impl Listener {
    /// `WskSocket` (a listening socket, no event callbacks) and `WskBind`
    /// to `address`, which starts listening.
    ///
    /// # Errors
    ///
    /// `STATUS_INSUFFICIENT_RESOURCES` without IRPs, or the status of
    /// `WskSocket` or `WskBind` (the socket is closed again).
    pub(crate) fn open(
        provider: &sys::WSK_PROVIDER_NPI,
        address: core::net::SocketAddr,
    ) -> Result<Listener, Status> {
        let no_memory = Status(sys::STATUS_INSUFFICIENT_RESOURCES);
        let request = Request::new().ok_or(no_memory)?;
        let closing = Request::new().ok_or(no_memory)?;
        // SAFETY: a captured provider's dispatch table, valid until released.
        let Some(socket_fn) = (unsafe { (*provider.Dispatch).WskSocket }) else {
            return Err(Status(sys::STATUS_NOT_IMPLEMENTED));
        };
        let start = |irp| {
            // SAFETY: the captured provider's client; every pointer argument
            // is null (no context, no dispatch table: no event callbacks; the
            // system process; no security descriptor); PASSIVE_LEVEL.
            unsafe {
                socket_fn(
                    provider.Client,
                    addr::family(&address),
                    sys::SOCK_STREAM,
                    TCP,
                    sys::WSK_FLAG_LISTEN_SOCKET,
                    ptr::null_mut(),
                    ptr::null(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    irp,
                )
            }
        };
        // SAFETY: a new request, no call out.
        unsafe { request.call(start) };
        let (status, information) = request.finish();
        check(status)?;
        // On success `IoStatus.Information` is the new socket
        // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_socket).
        let socket = information as sys::PWSK_SOCKET;
        // SAFETY: the socket just created.
        let table = unsafe { (*socket).Dispatch }.cast::<sys::WSK_PROVIDER_LISTEN_DISPATCH>();
        // SAFETY: a listening socket's `Dispatch` is a listen table.
        let bind = unsafe { (*table).WskBind };
        // SAFETY: as above.
        let accept = unsafe { (*table).WskAccept };
        let bound = match bind {
            Some(bind) if accept.is_some() => {
                let mut local = addr::to_sockaddr(address);
                let start = |irp| {
                    // SAFETY: the open listening socket; `local` lives until
                    // `finish` below returns; PASSIVE_LEVEL.
                    unsafe { bind(socket, (&raw mut local).cast(), 0, irp) }
                };
                // SAFETY: the request's last call completed (`finish`).
                unsafe { request.call(start) };
                check(request.finish().0)
            }
            _ => Err(Status(sys::STATUS_NOT_IMPLEMENTED)),
        };
        if let Err(e) = bound {
            close_socket(socket, &closing);
            return Err(e);
        }
        Ok(Listener {
            socket,
            accept,
            request,
            closing,
            remote: alloc::boxed::Box::new(UnsafeCell::new(sys::SOCKADDR_STORAGE::ZEROED)),
        })
    }

    /// The listening socket.
    pub(crate) fn socket(&self) -> sys::PWSK_SOCKET {
        self.socket
    }

    /// The listener thread: accepts until the stop event, then closes the
    /// listening socket and joins every connection thread.
    pub(crate) fn serve(self, passive: &Passive<'_>, shared: &Arc<Shared>) {
        let Some(accept) = self.accept else {
            return;
        };
        let mut workers: Vec<Worker> = Vec::new();
        while !shared.stop.is_set() {
            reap(passive, &mut workers);
            let (socket, remote) = (self.socket, self.remote.get());
            let start = |irp| {
                // SAFETY: the open listening socket, with no other call in
                // progress (this thread makes them all); `remote` is ours
                // and lives until the accept completes (the close below
                // completes a pending one, and `finish` waits for it); no
                // context or dispatch table for the new socket (no event
                // callbacks); PASSIVE_LEVEL.
                unsafe {
                    accept(
                        socket,
                        0,
                        ptr::null_mut(),
                        ptr::null(),
                        ptr::null_mut(),
                        remote.cast(),
                        irp,
                    )
                }
            };
            // SAFETY: the request's last call completed (every loop waits
            // for it, or leaves the loop).
            unsafe { self.request.call(start) };
            match self.request.wait(Some(&shared.stop)) {
                Wait::Stopped => break,
                Wait::Done(sys::STATUS_SUCCESS, socket) if socket != 0 => {
                    self.serve_connection(
                        passive,
                        socket as sys::PWSK_SOCKET,
                        shared,
                        &mut workers,
                    );
                }
                // The client went away before its connection was accepted
                // (Wine: STATUS_INVALID_CONNECTION); accept the next one.
                Wait::Done(
                    sys::STATUS_INVALID_CONNECTION
                    | sys::STATUS_CONNECTION_RESET
                    | sys::STATUS_CONNECTION_ABORTED,
                    _,
                ) => {}
                Wait::Done(status, _) => {
                    dbg_println!("raw-echo: accept failed: {}", Status(status));
                    shared.stop.wait_for(RETRY_PAUSE);
                }
            }
        }
        let accept_pending = self.request.is_pending();
        // Completes a pending accept with STATUS_CANCELLED.
        close_socket(self.socket, &self.closing);
        if accept_pending {
            // A connection may have been accepted just as the stop came.
            if let (sys::STATUS_SUCCESS, socket) = self.request.finish() {
                if socket != 0 {
                    close_socket(socket as sys::PWSK_SOCKET, &self.closing);
                }
            }
        }
        for worker in workers {
            worker.thread.join(passive);
        }
    }

    /// Reports a new connection and starts its thread; closes it when its
    /// memory or thread cannot be had.
    fn serve_connection(
        &self,
        passive: &Passive<'_>,
        socket: sys::PWSK_SOCKET,
        shared: &Arc<Shared>,
        workers: &mut Vec<Worker>,
    ) {
        let id = shared.next_id();
        // SAFETY: the accept completed, so the provider no longer writes the
        // storage, and no other reference to it exists.
        match addr::from_storage(unsafe { &*self.remote.get() }) {
            Some(peer) => dbg_println!("raw-echo: connection {id} from {peer}"),
            None => dbg_println!("raw-echo: connection {id} from an unknown address"),
        }
        let failed = match Connection::new(socket, id, Arc::clone(shared)) {
            None => sys::STATUS_INSUFFICIENT_RESOURCES,
            Some(connection) => {
                let done = Arc::new(AtomicBool::new(false));
                let finished = Arc::clone(&done);
                let spawned = SystemThread::spawn(passive, move |passive| {
                    connection.serve(passive);
                    finished.store(true, Ordering::Release);
                });
                match spawned {
                    Ok(thread) => {
                        workers.push(Worker { done, thread });
                        return;
                    }
                    // The closure, and the connection's memory with it, is
                    // gone; it never called the provider.
                    Err(e) => e.into(),
                }
            }
        };
        dbg_println!(
            "raw-echo: connection {id} closed failed:{} bytes=0",
            Status(failed)
        );
        close_socket(socket, &self.closing);
    }
}

/// Joins the connection threads that have finished.
fn reap(passive: &Passive<'_>, workers: &mut Vec<Worker>) {
    let mut i = 0;
    while i < workers.len() {
        if workers[i].done.load(Ordering::Acquire) {
            workers.swap_remove(i).thread.join(passive);
        } else {
            i += 1;
        }
    }
}
