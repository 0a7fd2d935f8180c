//! Event callbacks as traits: every event trait, the [`EventContext`] a
//! callback gets, and what callbacks are handed and answer.
//!
//! | socket kind | trait | table | handler without events |
//! |---|---|---|---|
//! | [`ConnectionSocket`](crate::tcp::ConnectionSocket), [`StreamSocket`](crate::tcp::StreamSocket) | [`ConnectionEvents`] | `WSK_CLIENT_CONNECTION_DISPATCH` | [`NoEvents`] |
//! | [`ListenSocket`](crate::tcp::ListenSocket) | [`ListenEvents`] (with conditional accept) | `WSK_CLIENT_LISTEN_DISPATCH` | [`NoListenEvents`] |
//! | [`DatagramSocket`](crate::udp::DatagramSocket) | [`DatagramEvents`] | `WSK_CLIENT_DATAGRAM_DISPATCH` | [`NoDatagramEvents`] |
//!
//! Each trait is defined next to its socket type, trampolines and constant
//! dispatch table (one module per socket kind); this module is where they
//! are named, so that a handler imports everything it needs from one place:
//! `use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};`.
//! [`StaticEvents`] are the events [`Provider::set_static_events`](crate::Provider::set_static_events)
//! enables on every socket.
//!
//! The WSK provider calls a client's event callbacks — data arrived, the peer
//! disconnected, a connection was accepted — through `WSK_CLIENT_*_DISPATCH`
//! tables, with the socket's context pointer, in arbitrary thread context at
//! IRQL ≤ `DISPATCH_LEVEL`. This crate generates those tables from trait
//! implementations:
//!
//! - Each trait method has a default; a `HAS_*` associated constant says
//!   whether the implementation provides it. The dispatch table and the event
//!   mask passed with `SO_WSK_EVENT_CALLBACK` are `const` items computed from
//!   those constants, so only implemented callbacks are installed and enabled,
//!   nothing is allocated per event, and the provider's call lands in a
//!   monomorphised trampoline that calls the method directly.
//! - Callbacks get an [`EventContext`]: the IRQL knowledge the provider gave
//!   (`WSK_FLAG_AT_DISPATCH_LEVEL`), as a [`Dispatch`](crate::irql::Dispatch)
//!   or [`AtMostDispatch`](crate::irql::AtMostDispatch) token — never a
//!   [`Passive`](crate::irql::Passive), because the DDI forbids
//!   waiting in a callback at any IRQL. Work that must wait goes to a work item
//!   ([`crate::defer`]).
//! - Callbacks whose only legal result is `STATUS_SUCCESS` (disconnect, send
//!   backlog, abort) return `()`: the trampoline returns `STATUS_SUCCESS`, so
//!   the contract holds by construction.
//!
//! # What a callback may do
//!
//! The provider waits for the callback's answer, at up to
//! `DISPATCH_LEVEL`, so a callback must not wait (next section), and
//! should not fail in ways it cannot answer:
//!
//! - **Panics end the system.** The trampolines are `extern "system"`
//!   functions: a panic cannot unwind through them into the provider. A
//!   driver builds with `panic = "abort"`, so its panic handler runs where
//!   the handler panicked — `wsk-driver`'s bug-checks — and a host build
//!   aborts the process ("panic in a function that cannot unwind";
//!   `wsk/tests/callbacks.rs`). The crate does not catch panics: a
//!   callback that can fail should answer the provider instead — refuse the
//!   data ([`ReceiveAction::Refuse`], [`DatagramAction::Refuse`]), reject
//!   the connection (do not call [`Incoming::accept`]) — and leave the
//!   rest to a task or a work item.
//! - **Allocation failures are panics** with `Box::new`, `Arc::new` or
//!   `Vec::push` (Rust's allocation-error handler panics), so allocate
//!   fallibly in callbacks ([`Buffer::with_capacity`](crate::Buffer::with_capacity),
//!   `Vec::try_reserve`) and refuse when it fails. The crate's own callback
//!   paths allocate nothing per event; the exceptions allocate fallibly:
//!   [`Incoming::accept`] allocates the accepted socket's state and, without
//!   memory, returns [`Error::INSUFFICIENT_RESOURCES`](crate::Error::INSUFFICIENT_RESOURCES)
//!   and rejects the connection, and [`tcp::ReceiveQueue::new`](crate::tcp::ReceiveQueue::new)
//!   survives a failed allocation of its ring.
//! - **Wakers run driver code.** A waker's `wake`, `clone` and `drop` may
//!   do anything, including causing another callback of the same socket on
//!   the same thread: call them outside spin locks that a callback takes,
//!   as the crate's queues do.
//!
//! # `#[wsk::vtable]` is required
//!
//! An impl block of an event trait without [`#[wsk::vtable]`](crate::vtable)
//! does not compile: the attribute supplies a hidden item the traits require,
//! so a forgotten attribute cannot leave every `HAS_*` constant false and
//! every callback silently uninstalled.
//!
//! ```compile_fail,E0046
//! use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
//! struct Peer;
//! impl ConnectionEvents for Peer { // missing #[wsk::vtable]
//!     fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {}
//! }
//! ```
//!
//! # Callbacks cannot wait
//!
//! Everything that can block takes `&Passive`, which no callback has. Waiting
//! on a request inside `on_disconnect` does not compile:
//!
//! ```compile_fail,E0308
//! use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
//! use wsk::irql::SpinLock;
//! use wsk::request::{Request, ops::CloseOp};
//! struct H { closing: SpinLock<Option<Request<CloseOp>>> }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let request = self.closing.with_in_callback(cx, |slot, _| slot.take());
//!         if let Some(request) = request {
//!             let _ = request.wait(cx.at_most_dispatch()); // expected `&Passive`
//!         }
//!     }
//! }
//! ```
//!
//! Nor does capturing the provider with a time-out:
//!
//! ```compile_fail,E0308
//! use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
//! use wsk::Registration;
//! struct H { registration: Registration }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let timeout = Some(core::time::Duration::from_secs(1));
//!         let _ = self.registration.capture(cx.at_most_dispatch(), timeout); // expected `&Passive`
//!     }
//! }
//! ```
//!
//! Nor does deregistering:
//!
//! ```compile_fail,E0308
//! use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
//! use wsk::irql::SpinLock;
//! use wsk::Registration;
//! struct H { registration: SpinLock<Option<Registration>> }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let registration = self.registration.with_in_callback(cx, |slot, _| slot.take());
//!         if let Some(r) = registration {
//!             let _ = r.deregister(cx.at_most_dispatch()); // expected `&Passive`
//!         }
//!     }
//! }
//! ```
//!
//! The non-blocking variant of the same capture compiles, and so does the
//! waiting code once it is deferred to a work item, where a `Passive` exists:
//!
//! ```
//! use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
//! use wsk::Registration;
//! struct H { registration: Registration }
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _: DisconnectFlags) {
//!         let _ = self.registration.try_capture(cx.at_most_dispatch()); // WSK_NO_WAIT
//!     }
//! }
//! ```

pub use crate::irql::context::EventContext;
pub use crate::provider::control::StaticEvents;
pub use crate::tcp::connection::events::{
    ConnectionEvents, DisconnectFlags, Indication, IndicationFlags, NoEvents, ReceiveAction,
    RetainedIndication, Segments,
};
pub use crate::tcp::inspect::{InspectAction, InspectId};
pub use crate::tcp::listen::events::{ConnectionRequest, Incoming, ListenEvents, NoListenEvents};
pub use crate::udp::events::{
    Datagram, DatagramAction, DatagramEvents, DatagramIndication, DatagramSegments, Datagrams,
    NoDatagramEvents, RetainedDatagrams,
};
