//! Safe Rust for the Windows **Winsock Kernel** (WSK): TCP, UDP and name
//! resolution for kernel drivers.
//!
//! # Where to look
//!
//! | to … | open |
//! |---|---|
//! | register, capture the provider, resolve names, deregister | [`Registration`], [`Provider`] (and [`provider`] for what they report) |
//! | connect, listen, accept, send and receive over TCP | [`tcp`] ([`tcp::connect`], [`tcp::listen`], [`tcp::ConnectionSocket`]) |
//! | send and receive datagrams | [`udp`] ([`udp::bind`], [`udp::DatagramSocket`]) |
//! | be called when data arrives, a peer disconnects, a connection is accepted | [`events`] and [`vtable`] |
//! | wait, lock, and know which IRQL code runs at | [`irql`] |
//! | wait for, reuse or cancel a WSK call | [`request`] ([`block_on`] for `async` helpers) |
//! | hand work that must wait to a `PASSIVE_LEVEL` thread | [`defer`] |
//! | end `DriverUnload`: cancel timers still set, wait for executor threads, flush DPCs | [`shutdown`] |
//! | set socket options | [`options`] |
//! | call what the safe layer does not wrap | [`sys`] (`unsafe`) |
//!
//! # The model in one page
//!
//! **Registration.** A driver registers as a WSK client at `PASSIVE_LEVEL`
//! ([`Registration::register`]) and captures the provider
//! ([`Registration::capture`]); the [`Provider`] creates sockets.
//! Deregistration is explicit ([`Registration::deregister`]): it closes
//! whatever the driver left open (reporting it) and returns once nothing of
//! the registration runs any more; no `Drop` in this crate waits.
//!
//! **IRQL tokens.** Zero-sized, `!Send` proofs of the current IRQL
//! ([`irql::Passive`], [`irql::Dispatch`], [`irql::AtMostDispatch`]).
//! Everything that can wait takes `&Passive`; event callbacks never get one,
//! and no safe code can make one, so blocking inside a callback does not
//! compile. See [`irql`].
//!
//! **Requests.** Every WSK call is a [`request::Request`]: one allocation
//! owning the IRP, its completion state and every buffer and address the
//! provider may touch. Await it, or [`wait`](request::Request::wait) at
//! `PASSIVE_LEVEL`. Buffers come back with the result ([`BufResult`]);
//! dropping a pending request cancels it and frees its memory only once the
//! provider is done. A [`request::RequestSlot`] keeps that memory and its IRP
//! for the next request, so a stream of sends and receives allocates
//! nothing. See [`request`].
//!
//! **Events.** Callbacks are traits ([`events::ConnectionEvents`],
//! [`events::ListenEvents`], [`events::DatagramEvents`]) implemented in a
//! block marked [`#[wsk::vtable]`](vtable); the dispatch tables and event
//! masks are constants derived from the implementation, the trampolines
//! return the statuses the DDI requires, and the [`events::EventContext`]
//! carries the IRQL the provider reported. See [`events`].
//!
//! **Teardown.** A socket owns its handler and frees it only after
//! `WskCloseSocket` completes; dropping a socket closes it in the background.
//! [`Registration::deregister`] then waits for those closes. Last in
//! `DriverUnload`, [`shutdown`] cancels timers still set, waits for the
//! threads of executors dropped without shutdown and flushes DPCs, so no
//! code of the driver runs once it is unloaded.
//!
//! ```
//! # let sim = wsk_sim::Sim::start();
//! # let peer = sim.peer_listen("10.0.0.2:7");
//! # let echo = std::thread::spawn(move || { let c = peer.accept(); let d = c.recv_exact(5); c.send(&d); c });
//! use wsk::events::NoEvents;
//! use wsk::{block_on, Buffer, Registration};
//! use core::time::Duration;
//!
//! # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
//! # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
//! // `passive: Passive` proves PASSIVE_LEVEL: DriverEntry, a system thread or a work item has one.
//! let registration = Registration::register(&passive)?;
//! let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
//!
//! let remote = "10.0.0.2:7".parse().unwrap();
//! let socket = block_on(&passive, wsk::tcp::connect(&provider, remote, NoEvents))?;
//!
//! let (sent, buffer) = socket.send(Buffer::from_slice(b"hello")?).wait(&passive);
//! assert_eq!(sent?, 5);
//! let (received, buffer) = socket.receive(buffer).wait(&passive);
//! assert_eq!((received?, &buffer[..]), (5, &b"hello"[..]));
//!
//! socket.close().wait(&passive)?;
//! drop((buffer, provider));
//! registration.deregister(&passive).expect("no handles left");
//! # drop(echo.join());
//! # Ok::<(), wsk::Error>(())
//! ```
//!
//! # Memory
//!
//! `wsk` is `no_std` + `alloc`. A driver's global allocator must return
//! non-paged memory (as `wdk-alloc` and this project's example runtime do):
//! requests, buffers and socket state are touched by the provider at
//! `DISPATCH_LEVEL`.
//!
//! # Testing
//!
//! The same code runs in host tests against `wsk-sim`, a user-mode WSK
//! provider that checks its client like Driver Verifier.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
// Unit tests spawn threads (races with the completion routine).
#[cfg(test)]
extern crate std;

// Host builds: the user-mode provider supplies the kernel and netio symbols.
#[cfg(not(windows))]
extern crate wsk_sim as _;

// The public face: topic modules (facades over the private implementation
// modules below) and a short root.
pub mod defer;
pub mod events;
pub mod irql;
pub mod options;
pub mod prelude;
pub mod provider;
pub mod request;
pub mod task;
pub mod tcp;
pub mod timer;
pub mod udp;

// Implementation, private: named only through the modules above.
mod addr;
mod block_on;
mod buffer;
mod core_ref;
mod debug;
mod error;
mod irp;
mod mdl;
mod socket;
mod teardown;
mod time;

pub use addr::AddressFamily;
pub use block_on::{block_on, block_on_timeout, block_on_until};
pub use buffer::{BufResult, Buffer};
pub use error::{Error, Result};
pub use provider::client::Provider;
pub use provider::registration::Registration;
pub use teardown::{ShutdownLeftovers, shutdown};

pub use wsk_macros::vtable;

/// The raw bindings this crate is built on.
pub use wsk_sys as sys;
