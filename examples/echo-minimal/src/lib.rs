//! `echo-minimal`: a TCP echo server in one file — the smallest useful WSK
//! driver. Requests only (no event callbacks), one task accepts and one task
//! per connection echoes. `echo-server` is the production version (events
//! where the provider has them, configuration, reports).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::sync::Arc;
#[cfg(test)]
mod tests;

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

// DriverEntry (`driver_entry`) and DriverUnload (`Echo::unload`), the pool
// allocator and the panic handler; the runtime hands out the IRQL tokens.
wsk_driver::entry!(driver_entry, pool_tag: *b"EchM");

/// What runs between `DriverEntry` and `DriverUnload`.
pub struct Echo {
    executor: Executor,
    listener: Arc<ListenSocket<NoListenEvents>>,
    provider: Provider,
    registration: Registration,
}

fn driver_entry(
    _: DriverObject,
    path: RegistryPath<'_>,
    passive: &mut Passive<'_>,
) -> Result<Echo, Error> {
    let port = Parameters::open(path, passive)
        .and_then(|p| p.dword("Port"))
        .unwrap_or(7007);
    let port = u16::try_from(port).map_err(|_| Error::INVALID_PARAMETER)?;
    let registration = Registration::register(passive)?;
    match start(
        passive,
        &registration,
        SocketAddr::from(([127, 0, 0, 1], port)),
    ) {
        Ok((executor, listener, provider)) => Ok(Echo {
            executor,
            listener,
            provider,
            registration,
        }),
        Err(e) => {
            let _ = registration.deregister(passive);
            Err(e)
        }
    }
}

type Started = (Executor, Arc<ListenSocket<NoListenEvents>>, Provider);

/// Captures the provider, listens, and starts the tasks.
fn start(
    passive: &Passive<'_>,
    registration: &Registration,
    at: SocketAddr,
) -> Result<Started, Error> {
    let provider = registration.capture(passive, Some(Duration::from_secs(5)))?;
    let listen = wsk::tcp::listen(&provider, at, NoListenEvents::new());
    let listener = Arc::new(wsk::block_on_timeout(
        passive,
        listen,
        Duration::from_secs(5),
    )?);
    let executor = Executor::builder().build(passive)?;
    if let Err(e) = executor.spawn(accept(listener.clone(), executor.handle())) {
        let _ = executor.shutdown(passive); // no thread may outlive DriverEntry
        return Err(e.error());
    }
    dbg_println!("echo-minimal: listening on {at}");
    Ok((executor, listener, provider))
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
async fn echo(socket: ConnectionSocket) {
    let Ok(mut buffer) = Buffer::with_capacity(64 * 1024) else {
        return;
    };
    let mut echoed = 0;
    loop {
        let (received, back) = socket.receive(buffer).await;
        if !matches!(received, Ok(n) if n > 0) {
            break; // 0: the peer closed its side; an error: the connection is gone
        }
        let (sent, back) = socket.send_all(back).await;
        if sent.is_err() {
            break;
        }
        echoed += back.len();
        buffer = back;
    }
    dbg_println!("echo-minimal: connection closed bytes={echoed}");
    let _ = socket.disconnect(None).await; // FIN (Wine: not implemented; the close sends it)
    let _ = socket.close().await;
}

impl Driver for Echo {
    fn unload(self, passive: &mut Passive<'_>) {
        // Drops every task, which closes its socket; deregistering waits for the closes.
        let _ = self.executor.shutdown(passive);
        // Closing completes an accept still pending (Wine ignores its cancellation).
        if let Some(listener) = Arc::into_inner(self.listener) {
            let _ = listener
                .close()
                .wait_or_cancel(passive, Duration::from_secs(2));
        }
        drop(self.provider);
        if let Err(registration) = self.registration.deregister(passive) {
            dbg_println!(
                "echo-minimal: {} handle(s) still alive",
                registration.live_handles()
            );
        }
        dbg_println!("echo-minimal: unloaded");
    }
}
