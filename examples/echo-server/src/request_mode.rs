//! Request-driven mode, for providers without event callbacks (Wine): the
//! server thread keeps one accept request outstanding (Wine allows no more
//! per listening socket) and starts a system thread per connection, which
//! alternates receive and send requests.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use wsk::events::{NoEvents, NoListenEvents};
use wsk::irql::Passive;
use wsk::request::TransferSlot;
use wsk::tcp::{ConnectionSocket, ListenSocket, ReceiveFlags};
use wsk::{Buffer, Error};
use wsk_driver::dbg_println;
use wsk_driver::thread::SystemThread;

use crate::echo::{self, CLOSE_TIMEOUT, End, POLL, Session, Shared};

/// Receive buffer per connection, reused for the echo.
const BUFFER_SIZE: usize = 4096;

/// A connection's thread and whether it has finished (so it can be joined
/// without waiting).
struct Worker {
    done: Arc<AtomicBool>,
    thread: SystemThread,
}

/// Accepts connections until the server stops, then closes the listening
/// socket and joins every connection thread (each closes its own socket).
pub(crate) fn serve(
    passive: &Passive<'_>,
    listener: ListenSocket<NoListenEvents>,
    shared: &Arc<Shared>,
) {
    let mut workers: Vec<Worker> = Vec::new();
    while !shared.stopping() {
        reap(passive, &mut workers);
        let Some(accepted) = echo::wait_or_stop(passive, listener.accept(NoEvents), shared) else {
            break;
        };
        match accepted {
            Ok((socket, peer)) => {
                let session = Session::open(shared, Some(peer));
                if let Some(worker) = spawn(passive, socket, session) {
                    workers.push(worker);
                }
            }
            // The client reset before its connection was accepted (Wine);
            // the next accept gets the next client.
            Err(
                Error::INVALID_CONNECTION | Error::CONNECTION_RESET | Error::CONNECTION_ABORTED,
            ) => {}
            Err(_) if shared.stopping() => break,
            Err(e) => {
                dbg_println!("echo-server: accept failed: {e}");
                // Keep a persistent failure from spinning.
                echo::sleep(passive, POLL);
            }
        }
    }
    // Closing completes the accept request that stopping abandoned (Wine
    // ignores its cancellation).
    let _ = listener.close().wait_or_cancel(passive, CLOSE_TIMEOUT);
    for worker in workers {
        worker.thread.join(passive);
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

/// Starts the thread serving one connection; closes the connection if no
/// thread can be created.
fn spawn(
    passive: &Passive<'_>,
    socket: ConnectionSocket<NoEvents>,
    session: Session,
) -> Option<Worker> {
    let done = Arc::new(AtomicBool::new(false));
    let finished = Arc::clone(&done);
    // The socket travels into the thread's closure; if spawning fails the
    // closure, and so the socket, is dropped, which closes it.
    let spawned = SystemThread::spawn(passive, move |passive| {
        let end = echo_until_end(passive, &socket, &session);
        echo::finish(passive, socket, end, &session);
        finished.store(true, Ordering::Release);
    });
    match spawned {
        Ok(thread) => Some(Worker { done, thread }),
        Err(e) => {
            dbg_println!("echo-server: no thread for a connection: {e}");
            None
        }
    }
}

/// Receives and echoes until the peer closes, a request fails or the server
/// stops.
fn echo_until_end(
    passive: &Passive<'_>,
    socket: &ConnectionSocket<NoEvents>,
    session: &Session,
) -> End {
    // One buffer and one request slot serve the whole connection: the loop
    // allocates nothing per request.
    let (mut buffer, mut slot) = match (Buffer::with_capacity(BUFFER_SIZE), TransferSlot::new()) {
        (Ok(b), Ok(s)) => (b, s),
        (Err(e), _) | (_, Err(e)) => return End::Failed(e),
    };
    loop {
        buffer.clear();
        let request = socket.receive_in(&mut slot, buffer, ReceiveFlags::empty());
        let Some((received, back)) = echo::wait_or_stop(passive, request, session.shared()) else {
            return End::Stopped;
        };
        buffer = back;
        match received {
            Ok(0) => return End::Graceful,
            Ok(_) => {}
            Err(e) => return End::from_error(e),
        }
        buffer = match echo::echo(passive, socket, &mut slot, buffer, session) {
            Ok(b) => b,
            Err(end) => return end,
        };
    }
}
