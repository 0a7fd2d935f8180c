//! Safe Rust for the Windows **Winsock Kernel** (WSK): TCP, UDP and name
//! resolution for kernel drivers.
//!
//! # The model in one page
//!
//! **Registration.** A driver registers as a WSK client at `PASSIVE_LEVEL`
//! ([`Registration::register`]) and captures the provider
//! ([`Registration::capture`]); the [`Provider`] creates sockets.
//! Deregistration refuses while handles are alive and happens on drop, so it
//! cannot be forgotten.
//!
//! **IRQL tokens.** Zero-sized, `!Send` proofs of the current IRQL
//! ([`Passive`], [`Dispatch`], [`AtMostDispatch`]). Everything that can wait
//! takes `&Passive`; event callbacks never get one, so blocking inside a
//! callback does not compile. See [`irql`].
//!
//! **Requests.** Every WSK call is a [`Request`]: one allocation owning the
//! IRP, its completion state and every buffer and address the provider may
//! touch. Await it, or [`wait`](Request::wait) at `PASSIVE_LEVEL`. Buffers
//! come back with the result; dropping a pending request cancels it and frees
//! its memory only once the provider is done. A [`RequestSlot`] keeps that
//! memory and its IRP for the next request, so a stream of sends and receives
//! ([`ConnectionSocket::send_in`]) allocates nothing. See [`request`].
//!
//! **Events.** Callbacks are traits ([`ConnectionEvents`], [`ListenEvents`]);
//! the dispatch tables and event masks are constants derived from the
//! implementation, the trampolines return the statuses the DDI requires, and
//! the [`EventContext`] carries the IRQL the provider reported. See [`events`].
//!
//! **Teardown.** A socket owns its handler and frees it only after
//! `WskCloseSocket` completes; dropping a socket closes it in the background.
//! [`Registration::deregister`] then waits for those closes.
//!
//! ```
//! # let sim = wsk_sim::Sim::start();
//! # let peer = sim.peer_listen("10.0.0.2:7");
//! # let echo = std::thread::spawn(move || { let c = peer.accept(); let d = c.recv_exact(5); c.send(&d); c });
//! use wsk::{block_on, Buffer, ConnectionSocket, NoEvents, Passive, Registration};
//! use core::time::Duration;
//!
//! // In a driver, DriverEntry or a system thread proves PASSIVE_LEVEL.
//! let passive = Passive::current().expect("PASSIVE_LEVEL");
//! let registration = Registration::register(&passive)?;
//! let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
//!
//! let remote = "10.0.0.2:7".parse().unwrap();
//! let socket = block_on(&passive, ConnectionSocket::connect_to(&provider, remote, NoEvents))?;
//!
//! let (sent, buffer) = socket.send(Buffer::from_slice(b"hello")?).wait(&passive);
//! assert_eq!(sent?, 5);
//! let (received, buffer) = socket.receive(buffer).wait(&passive);
//! assert_eq!(&buffer.as_slice()[..received?], b"hello");
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

// Host builds: the user-mode provider supplies the kernel and netio symbols.
#[cfg(not(windows))]
extern crate wsk_sim as _;

mod addr;
mod block_on;
mod buffer;
mod client_control;
mod connection;
mod datagram;
pub mod defer;
mod error;
pub mod events;
pub mod irql;
mod listen;
mod mdl;
pub mod options;
mod registration;
pub mod request;
mod resolve;
mod socket;
mod stream;
pub mod task;
mod time;
pub mod timer;

pub use addr::SockAddr;
pub use block_on::{block_on, block_on_timeout};
pub use buffer::{Buffer, MAX_BUFFER_LEN};
pub use client_control::{CachedSecurityDescriptor, SecurityOp, StaticEvents, TransportChangeOp};
pub use connection::{
    AddressOp, ConnectionSocket, DisconnectOp, ReceiveRequestFlags, SendFlags, TransferOp,
    TransferSlot,
};
pub use datagram::{
    DatagramAddressOp, DatagramSocket, FixedAddressOp, RECEIVE_CONTROL_BYTES, ReceiveFromOp,
    ReceiveFromSlot, ReceivedFrom, SendMessagesOp, SendToOp, SendToSlot,
};
pub use error::{Error, Result};
pub use events::{
    ConnectionEvents, Datagram, DatagramAction, DatagramEvents, DatagramFlags, DatagramIndication,
    DatagramSegments, Datagrams, DisconnectFlags, EventContext, Indication, NoDatagramEvents,
    NoEvents, ReceiveAction, ReceiveFlags, RetainedDatagrams, RetainedIndication, Segments,
};
pub use irql::{AtMostDispatch, Dispatch, Passive, SpinLock, SpinLockGuard};
pub use listen::{
    AcceptOp, Incoming, InspectAction, InspectCompleteOp, InspectId, ListenAddressOp, ListenEvents,
    ListenSocket, ListenState, NoListenEvents,
};
pub use registration::{Provider, Registration, Transport, Version, WindowsVersion};
pub use request::{Operation, Request, RequestSlot, SlotRequest, Waitable};
pub use resolve::Family;
pub use socket::{CloseOp, ControlOp, ControlOutput, ControlValue, CreateOp};
pub use stream::{StreamAcceptOp, StreamListenOp, StreamListener, StreamSocket};

pub use wsk_macros::vtable;

/// The raw bindings this crate is built on.
pub use wsk_sys as sys;
