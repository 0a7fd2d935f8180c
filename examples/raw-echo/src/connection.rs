//! One connection's thread: receive into the buffer, send it back, until
//! the peer closes, a request fails or the driver stops; then disconnect
//! (after a graceful end) and close.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::{self, NonNull};

use wsk::irql::Passive;
use wsk_driver::dbg_println;
use wsk_sys as sys;

use crate::listener::close_socket;
use crate::request::{Request, Wait};
use crate::{Shared, Status};

/// How a connection ended (the word in its `closed` line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The peer closed its sending side (a receive completed with 0 bytes;
    /// under Wine a peer's RST can do that too).
    Graceful,
    /// The peer reset or the connection broke.
    Abortive,
    /// The driver stopped while the connection was open.
    Stopped,
    /// A request failed with this status.
    Failed(sys::NTSTATUS),
}

impl End {
    fn from_status(status: sys::NTSTATUS) -> End {
        match status {
            sys::STATUS_CONNECTION_RESET
            | sys::STATUS_CONNECTION_ABORTED
            | sys::STATUS_CONNECTION_DISCONNECTED => End::Abortive,
            // Only our own close cancels a request: the driver is stopping.
            sys::STATUS_CANCELLED => End::Stopped,
            status => End::Failed(status),
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Graceful => f.write_str("graceful"),
            End::Abortive => f.write_str("abortive"),
            End::Stopped => f.write_str("stopped"),
            End::Failed(status) => write!(f, "failed:{}", Status(*status)),
        }
    }
}

/// The connection routines this driver calls, read once from the socket's
/// table (one field at a time: a table from an older provider may end
/// before the fields later WDKs appended, none of which is used here).
#[derive(Clone, Copy)]
struct Routines {
    send: unsafe extern "system" fn(
        sys::PWSK_SOCKET,
        sys::PWSK_BUF,
        sys::ULONG,
        sys::PIRP,
    ) -> sys::NTSTATUS,
    receive: unsafe extern "system" fn(
        sys::PWSK_SOCKET,
        sys::PWSK_BUF,
        sys::ULONG,
        sys::PIRP,
    ) -> sys::NTSTATUS,
    disconnect: unsafe extern "system" fn(
        sys::PWSK_SOCKET,
        sys::PWSK_BUF,
        sys::ULONG,
        sys::PIRP,
    ) -> sys::NTSTATUS,
}

/// An accepted connection: its socket, two IRPs, the buffer and its MDL.
///
/// # Invariants
///
/// `buffer` is a live block of `len` bytes from the global (non-paged)
/// allocator and `mdl` an MDL describing exactly it, built with
/// `MmBuildMdlForNonPagedPool`; both belong to this connection. While a
/// call of `data` is pending the provider may read or write the buffer and
/// read `wsk_buf`.
pub(crate) struct Connection {
    socket: sys::PWSK_SOCKET,
    routines: Routines,
    /// Receives, sends and the disconnect.
    data: Request,
    /// The close (allocated up front, so that closing cannot fail for lack
    /// of an IRP).
    closing: Request,
    buffer: NonNull<u8>,
    /// The buffer's layout: `len` bytes.
    layout: Layout,
    len: usize,
    mdl: sys::PMDL,
    /// The `WSK_BUF` of the pending transfer.
    wsk_buf: UnsafeCell<sys::WSK_BUF>,
    id: u64,
    echoed: u64,
    /// The length of a send the stop abandoned while it was pending (0:
    /// none); counted if it completes successfully after all.
    abandoned_send: usize,
    shared: Arc<Shared>,
}

// SAFETY: the connection is used by one thread at a time (made by the
// listener, then moved whole to its own thread); the kernel objects it
// points to have no thread affinity.
unsafe impl Send for Connection {}

impl Connection {
    /// Reads the socket's routines and allocates the IRPs, the buffer
    /// (`shared.buffer_size` bytes) and its MDL; `None` when any of that
    /// fails (the socket then stays the caller's to close).
    pub(crate) fn new(
        socket: sys::PWSK_SOCKET,
        id: u64,
        shared: Arc<Shared>,
    ) -> Option<Box<Connection>> {
        // SAFETY: an accepted socket, open.
        let table = unsafe { (*socket).Dispatch }.cast::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>();
        // SAFETY: an accepted socket's `Dispatch` is a connection table,
        // read one field at a time (all present since WSK 1.0).
        let send = unsafe { (*table).WskSend };
        // SAFETY: as above.
        let receive = unsafe { (*table).WskReceive };
        // SAFETY: as above.
        let disconnect = unsafe { (*table).WskDisconnect };
        let routines = Routines {
            send: send?,
            receive: receive?,
            disconnect: disconnect?,
        };
        let data = Request::new()?;
        let closing = Request::new()?;
        let len = shared.buffer_size;
        let layout = Layout::array::<u8>(len).ok()?;
        // SAFETY: `len` is not zero (Config checks it).
        let buffer = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        let Ok(mdl_len) = u32::try_from(len) else {
            // SAFETY: allocated just above with `layout`, not shared.
            unsafe { dealloc(buffer.as_ptr(), layout) };
            return None;
        };
        // SAFETY: a non-paged block of `mdl_len` bytes; no IRP to attach to;
        // IRQL <= DISPATCH_LEVEL.
        let mdl = unsafe {
            sys::IoAllocateMdl(
                buffer.as_ptr().cast(),
                mdl_len,
                sys::FALSE,
                sys::FALSE,
                ptr::null_mut(),
            )
        };
        if mdl.is_null() {
            // SAFETY: as above.
            unsafe { dealloc(buffer.as_ptr(), layout) };
            return None;
        }
        // SAFETY: the MDL describes non-paged pool (the global allocator's
        // blocks are non-paged); IRQL <= DISPATCH_LEVEL.
        unsafe { sys::MmBuildMdlForNonPagedPool(mdl) };
        Some(Box::new(Connection {
            socket,
            routines,
            data,
            closing,
            buffer,
            layout,
            len,
            mdl,
            wsk_buf: UnsafeCell::new(sys::WSK_BUF {
                Mdl: mdl,
                Offset: 0,
                Length: 0,
            }),
            id,
            echoed: 0,
            abandoned_send: 0,
            shared,
        }))
    }

    /// The connection thread's body: echo, report, disconnect, close.
    pub(crate) fn serve(mut self: Box<Self>, passive: &Passive<'_>) {
        let _ = passive;
        let end = self.echo();
        self.finish(end);
        if self.data.is_pending() || self.closing.is_pending() {
            // Never: `finish` waits for both. Leak rather than free what
            // the provider could still touch.
            Box::leak(self);
        }
    }

    /// Receives and echoes until the connection ends.
    fn echo(&mut self) -> End {
        loop {
            if self.shared.stop.is_set() {
                return End::Stopped;
            }
            let received = match self.transfer(self.routines.receive, 0, self.len) {
                Ok(0) => return End::Graceful,
                Ok(n) => n.min(self.len),
                Err(end) => return end,
            };
            let mut offset = 0;
            while offset < received {
                let len = received - offset;
                match self.transfer(self.routines.send, offset, len) {
                    // A stream send completes with everything or fails;
                    // a short count is handled anyway.
                    Ok(0) => return End::Failed(sys::STATUS_CONNECTION_DISCONNECTED),
                    Ok(n) => {
                        offset += n.min(len);
                        self.count(n.min(len));
                    }
                    Err(End::Stopped) => {
                        self.abandoned_send = len;
                        return End::Stopped;
                    }
                    Err(end) => return end,
                }
            }
        }
    }

    fn count(&mut self, n: usize) {
        self.echoed += n as u64;
        self.shared.echoed(n);
    }

    /// One `WskReceive` or `WskSend` of `len` bytes of the buffer from
    /// `offset`, waited for (or abandoned, pending, when the driver stops).
    fn transfer(
        &mut self,
        op: unsafe extern "system" fn(
            sys::PWSK_SOCKET,
            sys::PWSK_BUF,
            sys::ULONG,
            sys::PIRP,
        ) -> sys::NTSTATUS,
        offset: usize,
        len: usize,
    ) -> Result<usize, End> {
        let Ok(offset) = u32::try_from(offset) else {
            return Err(End::Failed(sys::STATUS_INVALID_PARAMETER));
        };
        let buf = self.wsk_buf.get();
        // SAFETY: no call of `data` is out, so the provider does not read
        // the WSK_BUF now.
        unsafe {
            buf.write(sys::WSK_BUF {
                Mdl: self.mdl,
                Offset: offset,
                Length: len,
            });
        };
        let socket = self.socket;
        let start = |irp| {
            // SAFETY: the open socket, called by this thread only;
            // `offset + len <= self.len`, so the WSK_BUF describes part of
            // the buffer, which like the WSK_BUF stays alive until the call
            // completes (`finish` waits for it before the connection is
            // freed); PASSIVE_LEVEL.
            unsafe { op(socket, buf, 0, irp) }
        };
        // SAFETY: no call of `data` is out (every transfer waits for its
        // call, or ends the echo).
        unsafe { self.data.call(start) };
        match self.data.wait(Some(&self.shared.stop)) {
            Wait::Stopped => Err(End::Stopped),
            Wait::Done(sys::STATUS_SUCCESS, n) => Ok(n),
            Wait::Done(status, _) => Err(End::from_status(status)),
        }
    }

    /// Reports the end, disconnects gracefully after a graceful end
    /// (`WskCloseSocket` alone resets a connection that is still up on
    /// Windows; Wine refuses `WskDisconnect` with `STATUS_NOT_IMPLEMENTED`
    /// and sends FIN on close), then closes the socket, which completes
    /// whatever request is still pending, and waits for that request.
    ///
    /// The report comes first, so that it precedes anything the peer can
    /// observe, except after a stop: then a send may still be pending, and
    /// the line, after the close, counts it if it completed.
    fn finish(&mut self, end: End) {
        if end != End::Stopped {
            self.report(end);
        }
        if end == End::Graceful {
            let (socket, disconnect) = (self.socket, self.routines.disconnect);
            let start = |irp| {
                // SAFETY: the open socket, called by this thread only; no
                // buffer (a plain FIN); PASSIVE_LEVEL.
                unsafe { disconnect(socket, ptr::null_mut(), 0, irp) }
            };
            // SAFETY: no call of `data` is out (the last transfer completed
            // with 0 bytes).
            unsafe { self.data.call(start) };
            // Whatever the outcome, the close follows; a disconnect still
            // pending at a stop is completed by it.
            let _ = self.data.wait(Some(&self.shared.stop));
        }
        close_socket(self.socket, &self.closing);
        if self.data.is_pending() {
            let (status, sent) = self.data.finish();
            if self.abandoned_send > 0 && status == sys::STATUS_SUCCESS {
                self.count(sent.min(self.abandoned_send));
            }
        }
        if end == End::Stopped {
            self.report(end);
        }
    }

    fn report(&self, end: End) {
        dbg_println!(
            "raw-echo: connection {} closed {end} bytes={}",
            self.id,
            self.echoed
        );
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.data.is_pending() || self.closing.is_pending() {
            // The provider could still use the buffer: leak it.
            return;
        }
        // SAFETY: our MDL, no longer used by any request; freed once.
        unsafe { sys::IoFreeMdl(self.mdl) };
        // SAFETY: `buffer` came from `alloc_zeroed` with this layout and is
        // freed once.
        unsafe { dealloc(self.buffer.as_ptr(), self.layout) };
    }
}
