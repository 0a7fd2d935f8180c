//! IRQL and blocking as types.
//!
//! Windows runs kernel code at an *interrupt request level* (IRQL). Code at
//! `PASSIVE_LEVEL` may wait; code at `DISPATCH_LEVEL` may not, and touches only
//! non-paged memory. The WSK DDI adds a rule of its own: an event callback must
//! never wait, even when the provider happens to call it at `PASSIVE_LEVEL`.
//!
//! This module turns those rules into zero-sized context tokens, in the style
//! of the `critical-section` crate:
//!
//! | token | proves | obtained from |
//! |---|---|---|
//! | [`Passive`] | IRQL is `PASSIVE_LEVEL` **and** this context may wait | work items ([`crate::defer`], `&mut Passive`), or [`Passive::new_unchecked`] in `DriverEntry`, `DriverUnload` and system-thread routines (which run at `PASSIVE_LEVEL`) — normally done once by the driver's runtime |
//! | [`Dispatch`] | IRQL is exactly `DISPATCH_LEVEL` | the closure of a [`SpinLock`] method, an event callback invoked with `WSK_FLAG_AT_DISPATCH_LEVEL`, or [`Dispatch::new_unchecked`] |
//! | [`AtMostDispatch`] | IRQL ≤ `DISPATCH_LEVEL`, no waiting | every event callback, and any of the above |
//!
//! Every operation that can wait takes `&Passive`. Event callbacks receive an
//! [`EventContext`](crate::events::EventContext), which yields a `&Dispatch` or an
//! `&AtMostDispatch` but never a `Passive`, so a wait inside a callback does not
//! compile:
//!
//! ```compile_fail,E0599
//! use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
//! use wsk::irql::Passive;
//! struct H;
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, cx: &EventContext<'_>, _flags: DisconnectFlags) {
//!         let p: &Passive<'_> = cx.passive(); // no such method: callbacks never wait
//!     }
//! }
//! ```
//!
//! Nor can a callback make one: there is no safe constructor (a run-time
//! IRQL check cannot see that it runs inside a callback the provider called
//! at `PASSIVE_LEVEL`):
//!
//! ```compile_fail,E0599
//! use wsk::events::{ConnectionEvents, DisconnectFlags, EventContext};
//! use wsk::irql::Passive;
//! struct H;
//! #[wsk::vtable]
//! impl ConnectionEvents for H {
//!     fn on_disconnect(&self, _: &EventContext<'_>, _: DisconnectFlags) {
//!         let p = Passive::current(); // no such function
//!     }
//! }
//! ```
//!
//! A `Passive` is neither `Clone` nor `Copy`, so a second token cannot be
//! made from one that is lent out; while [`Passive::at_most_dispatch`] (or a
//! [`SpinLock`]) borrows it, it cannot be used to wait:
//!
//! ```compile_fail,E0502
//! # use wsk::irql::Passive;
//! fn wait_while_lent(passive: &mut Passive<'_>) {
//!     let no_wait = passive.at_most_dispatch();
//!     passive.sleep(core::time::Duration::from_millis(1)); // `passive` is still lent
//!     drop(no_wait);
//! }
//! ```
//!
//! ```compile_fail,E0382
//! # use wsk::irql::Passive;
//! fn two_tokens(passive: Passive<'_>) -> (Passive<'_>, Passive<'_>) {
//!     (passive, passive) // `Passive` is neither `Copy` nor `Clone`
//! }
//! ```
//!
//! Tokens are `!Send` and `!Sync`: IRQL is a property of the current processor
//! and thread, so a token may not travel to another thread.
//!
//! # What the tokens cannot prove
//!
//! Raw `wsk-sys` calls and the `unsafe` constructors are unchecked: whoever
//! calls [`Passive::new_unchecked`] promises the conditions in its `# Safety`
//! section for the token's whole lifetime. See `docs/irql.md` for the full
//! argument.

pub(crate) mod context;
mod lock;
mod token;

pub use lock::SpinLock;
pub use token::{AtMostDispatch, Dispatch, Passive};
