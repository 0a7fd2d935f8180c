//! `echo-minimal`: a TCP echo server in one file — the smallest useful WSK
//! driver. Requests only (no event callbacks), one task accepts and one task
//! per connection echoes. `echo-server` is the production version (events
//! where the provider has them, configuration, reports).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::time::Duration;

use wsk::events::{NoEvents, NoListenEvents};
use wsk::irql::Passive;
use wsk::task::{Executor, Handle};
use wsk::tcp::{ConnectionSocket, ListenSocket};
use wsk::{Buffer, Error, Provider, Registration};
use wsk_driver::dbg_println;
use wsk_driver::entry::{Driver, DriverObject};
use wsk_driver::registry::{Parameters, RegistryPath};

// DriverEntry (`start`) and DriverUnload (`Echo::unload`), the pool
// allocator and the panic handler; the runtime hands out the IRQL tokens.
wsk_driver::entry!(start, pool_tag: *b"EchM");

/// How long `DriverEntry` waits for the provider and for the listening socket.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What runs between `DriverEntry` and `DriverUnload`: the executor, the
/// listening socket, the provider and the registration.
pub struct Echo(
    Executor,
    Arc<ListenSocket<NoListenEvents>>,
    Provider,
    Registration,
);

fn start(_: DriverObject, key: RegistryPath<'_>, p: &mut Passive<'_>) -> Result<Echo, Error> {
    let port = Parameters::open(key, p).and_then(|params| params.dword("Port"));
    let port = u16::try_from(port.unwrap_or(7007)).map_err(|_| Error::INVALID_PARAMETER)?;
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    let registration = Registration::register(p)?;
    let started = (|| {
        let provider = registration.capture(p, Some(TIMEOUT))?;
        let listen = wsk::tcp::listen(&provider, at, NoListenEvents::new());
        let listener = Arc::new(wsk::block_on_timeout(p, listen, TIMEOUT)?);
        let executor = Executor::builder().build(p)?;
        if let Err(e) = executor.spawn(accept(listener.clone(), executor.handle())) {
            let _ = executor.shutdown(p); // no thread may outlive DriverEntry
            return Err(e.error());
        }
        Ok((executor, listener, provider))
    })();
    match started {
        Ok((executor, listener, provider)) => {
            dbg_println!("echo-minimal: listening on {at}");
            Ok(Echo(executor, listener, provider, registration))
        }
        Err(e) => {
            let _ = registration.deregister(p); // nothing of it is left open
            Err(e)
        }
    }
}

/// Accepts connections (`WskAccept`), a task for each.
async fn accept(listener: Arc<ListenSocket<NoListenEvents>>, tasks: Handle) {
    loop {
        match listener.accept(NoEvents).await {
            Ok((socket, peer)) => {
                dbg_println!("echo-minimal: connection from {peer}");
                let _ = tasks.spawn(echo(socket));
            }
            Err(e) if e.is_connection_lost() => {} // gone before it was accepted
            Err(e) => return dbg_println!("echo-minimal: accept failed: {e}"),
        }
    }
}

/// Sends back what arrives until the peer closes, then closes.
async fn echo(socket: ConnectionSocket) -> Result<(), Error> {
    let (mut buffer, mut echoed) = (Buffer::with_capacity(64 * 1024)?, 0);
    loop {
        let (received, back) = socket.receive(buffer).await;
        if received.unwrap_or(0) == 0 {
            break; // 0: the peer closed its side; an error: the connection is gone
        }
        let (sent, back) = socket.send_all(back).await;
        (echoed, buffer) = (echoed + back.len(), back);
        if sent.is_err() {
            break;
        }
    }
    dbg_println!("echo-minimal: connection closed bytes={echoed}");
    let _ = socket.disconnect(None).await; // FIN (Wine: not implemented; the close sends it)
    socket.close().await
}

impl Driver for Echo {
    fn unload(self, p: &mut Passive<'_>) {
        let Echo(executor, listener, provider, registration) = self;
        // Drops every task, which closes its socket; deregistering waits for the closes.
        let _ = executor.shutdown(p);
        // Closing completes an accept still pending (Wine ignores its cancellation).
        if let Some(listener) = Arc::into_inner(listener) {
            let _ = listener.close().wait_or_cancel(p, TIMEOUT);
        }
        drop(provider);
        if let Err(left) = registration.deregister(p) {
            // A handle outlived the tasks: a bug, which deregistration
            // closed or released itself.
            dbg_println!("echo-minimal: {left}");
        }
        dbg_println!("echo-minimal: unloaded");
    }
}
