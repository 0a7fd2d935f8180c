//! What both modes share: one connection's echo (the bytes received go back
//! unchanged, in order), the counters, how a connection ended, and the lines
//! the driver reports.
//!
//! Report lines (one `DbgPrint` each, parsed by `cargo xtask wine` and the
//! host tests):
//!
//! ```text
//! echo-server: listening on 127.0.0.1:7007 mode=request-driven
//! echo-server: connection 1 from 127.0.0.1:50312
//! echo-server: connection 1 closed graceful bytes=29
//! echo-server: stopped connections=2 bytes=52 mode=request-driven
//! ```

use alloc::sync::Arc;
use core::fmt;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;

use wsk::events::{ConnectionEvents, DisconnectFlags};
use wsk::irql::Passive;
use wsk::request::{TransferSlot, Waitable};
use wsk::tcp::{ConnectionSocket, SendFlags};
use wsk::{Buffer, Error};
use wsk_driver::dbg_println;

/// How long one wait lasts before the stop flag is checked again: the bound
/// on how late a blocked thread notices a stop request.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// The longest wait for a graceful disconnect or a close to complete.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the server handles its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept, receive and disconnect events; sends from work items.
    EventDriven,
    /// Accept and receive requests, one system thread per connection (for
    /// providers without event callbacks, such as Wine's).
    RequestDriven,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::EventDriven => "event-driven",
            Mode::RequestDriven => "request-driven",
        })
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The peer closed its sending side (FIN). Wine reports a peer's reset
    /// this way too: its pending receive completes with 0 bytes.
    Graceful,
    /// The peer reset the connection (RST).
    Abortive,
    /// The server stopped while the connection was open.
    Stopped,
    /// A request failed with this error.
    Failed(Error),
}

impl End {
    /// The end a disconnect event reports.
    pub(crate) fn from_disconnect(flags: DisconnectFlags) -> End {
        if flags.is_abortive() {
            End::Abortive
        } else {
            End::Graceful
        }
    }

    /// The end a failed receive or send means.
    pub(crate) fn from_error(error: Error) -> End {
        match error {
            Error::CONNECTION_RESET
            | Error::CONNECTION_ABORTED
            | Error::CONNECTION_DISCONNECTED => End::Abortive,
            // Our own close completed the request: only stopping closes
            // sockets under a pending request.
            Error::CANCELLED => End::Stopped,
            e => End::Failed(e),
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Graceful => f.write_str("graceful"),
            End::Abortive => f.write_str("abortive"),
            End::Stopped => f.write_str("stopped"),
            End::Failed(e) => write!(f, "failed:{e}"),
        }
    }
}

/// State of the whole server, shared by its threads, work items and callbacks.
#[derive(Debug)]
pub(crate) struct Shared {
    stopping: AtomicBool,
    connections: AtomicU64,
    bytes: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            stopping: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Asks every thread and work item to finish.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Counts a new connection and returns its number (from 1).
    pub(crate) fn next_id(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// One connection's number, peer and echo counter.
#[derive(Debug)]
pub(crate) struct Session {
    id: u64,
    echoed: AtomicU64,
    shared: Arc<Shared>,
}

impl Session {
    /// Numbers a new connection and reports it.
    pub(crate) fn open(shared: &Arc<Shared>, peer: Option<SocketAddr>) -> Session {
        let id = shared.next_id();
        match peer {
            Some(peer) => dbg_println!("echo-server: connection {id} from {peer}"),
            None => dbg_println!("echo-server: connection {id} from an unknown address"),
        }
        Session {
            id,
            echoed: AtomicU64::new(0),
            shared: Arc::clone(shared),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn echoed(&self, n: usize) {
        let n = n as u64;
        self.echoed.fetch_add(n, Ordering::Relaxed);
        self.shared.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Reports the end of the connection.
    pub(crate) fn closed(&self, end: End) {
        let bytes = self.echoed.load(Ordering::Relaxed);
        dbg_println!(
            "echo-server: connection {} closed {end} bytes={bytes}",
            self.id
        );
    }
}

/// Waits for `request` in [`POLL`] slices until it completes, or until the
/// server stops: then the request is dropped, which cancels it, and `None`
/// returned. Where cancelling has no effect (Wine), closing the socket
/// afterwards completes the IRP and frees the request's memory.
pub(crate) fn wait_or_stop<R: Waitable>(
    passive: &Passive<'_>,
    mut request: R,
    shared: &Shared,
) -> Option<R::Output> {
    loop {
        match request.wait_timeout(passive, POLL) {
            Ok(output) => return Some(output),
            Err(pending) if shared.stopping() => {
                drop(pending);
                return None;
            }
            Err(pending) => request = pending,
        }
    }
}

/// Sleeps for `duration`.
pub(crate) fn sleep(passive: &Passive<'_>, duration: Duration) {
    passive.sleep(duration);
}

/// Sends all of `buffer` back to the peer, with the memory of `slot`;
/// returns the buffer for reuse, or how the connection ended.
pub(crate) fn echo<H: ConnectionEvents>(
    passive: &Passive<'_>,
    socket: &ConnectionSocket<H>,
    slot: &mut TransferSlot,
    mut buffer: Buffer,
    session: &Session,
) -> Result<Buffer, End> {
    while !buffer.is_empty() {
        let len = buffer.len();
        let request = socket.send_in(slot, buffer, SendFlags::empty());
        let (sent, back) = wait_or_stop(passive, request, &session.shared).ok_or(End::Stopped)?;
        buffer = back;
        match sent {
            // A stream send completes with everything sent unless it fails;
            // a short count is handled anyway by sending the rest.
            Ok(0) => return Err(End::Failed(Error::CONNECTION_DISCONNECTED)),
            Ok(n) => {
                let n = n.min(len);
                session.echoed(n);
                buffer.as_mut_slice().copy_within(n.., 0);
                buffer.set_len(len - n);
            }
            Err(e) => return Err(End::from_error(e)),
        }
    }
    Ok(buffer)
}

/// Ends a connection: reports it (first, so that the line precedes
/// anything the peer can observe), after a graceful end disconnects
/// gracefully (`WskCloseSocket` alone would reset a connection that is
/// still up on Windows; Wine refuses `WskDisconnect` with
/// `STATUS_NOT_IMPLEMENTED` and sends FIN on close), then closes the socket.
pub(crate) fn finish<H: ConnectionEvents>(
    passive: &Passive<'_>,
    socket: ConnectionSocket<H>,
    end: End,
    session: &Session,
) {
    session.closed(end);
    if end == End::Graceful {
        // Errors do not matter here: the close follows in any case.
        let _ = socket
            .disconnect(None)
            .wait_or_cancel(passive, CLOSE_TIMEOUT);
    }
    // A late close is abandoned (dropped, which cancels its IRP); its memory
    // is freed when the provider completes it.
    let _ = socket.close().wait_or_cancel(passive, CLOSE_TIMEOUT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_ends() {
        assert_eq!(
            End::from_disconnect(DisconnectFlags::empty()),
            End::Graceful
        );
        assert_eq!(
            End::from_disconnect(DisconnectFlags::ABORTIVE | DisconnectFlags::AT_DISPATCH_LEVEL),
            End::Abortive
        );
        assert_eq!(End::from_error(Error::CONNECTION_RESET), End::Abortive);
        assert_eq!(End::from_error(Error::CANCELLED), End::Stopped);
        assert_eq!(
            End::from_error(Error::IO_TIMEOUT),
            End::Failed(Error::IO_TIMEOUT)
        );
    }

    #[test]
    fn formats_report_words() {
        assert_eq!(alloc::format!("{}", Mode::RequestDriven), "request-driven");
        assert_eq!(alloc::format!("{}", Mode::EventDriven), "event-driven");
        assert_eq!(alloc::format!("{}", End::Abortive), "abortive");
        assert_eq!(
            alloc::format!("{}", End::Failed(Error::IO_TIMEOUT)),
            "failed:STATUS_IO_TIMEOUT (0xC00000B5)"
        );
    }
}
