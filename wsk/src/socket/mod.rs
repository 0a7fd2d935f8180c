//! What every socket kind shares, written once against the socket's core
//! with its handler type erased: the core itself (`core`), the calls
//! common to all kinds (`calls`), creation (`create`) and retained
//! indications (`retain`). The kinds themselves live in [`crate::tcp`] and
//! [`crate::udp`].
//!
//! The soundness argument for the core (its state, run-down, retain gate
//! and slots) is in [`core`]'s module docs, for retained lists in
//! [`retain`]'s. Closing is in [`calls`]: `WskCloseSocket` is submitted by
//! exactly one party — the handle's `close`/drop, the last retained
//! release, or deregistration — when no other call on the socket is in
//! progress and no retained list is left
//! (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>),
//! and its request keeps the core alive until the provider completed it,
//! after which no callback of the socket runs.
//!
//! # The event trampolines
//!
//! The provider calls an `extern "system"` trampoline per callback
//! (`receive_event`, `disconnect_event`, `send_backlog_event` in
//! `tcp::connection::events`; `accept_event`, `inspect_event`,
//! `abort_event` in `tcp::listen::events`; `receive_from_event` in
//! `udp::events`), generic over the handler type `H` whose constant
//! dispatch table installed it. Each one:
//!
//! - turns `SocketContext` into `&SocketCore<H>`: the context is the
//!   address of the core in its `CoreRef` (`SocketCore::context`), given only
//!   with `H`'s own table, and the core lives until the close request that
//!   holds it completes — after the socket's last callback returned;
//! - builds an [`EventContext`](crate::events::EventContext) from `Flags`:
//!   a `Dispatch` token only with `WSK_FLAG_AT_DISPATCH_LEVEL`, never a
//!   `Passive`, so nothing that waits can run inside;
//! - lends the provider's buffers (`Indication`, `DatagramIndication`,
//!   `Incoming`) for the callback's lifetime only, except through
//!   `retain`, which takes a retained slot (see [`retain`]) — refused while
//!   the socket's `PWSK_SOCKET` is unknown or the socket is closing;
//! - answers only statuses the page allows, decided after the handler
//!   returned: `STATUS_PENDING` only if a list it retained is still in its
//!   slot (confirmed then), `STATUS_SUCCESS` if the handle was dropped
//!   before — the provider never held the list for us, so nothing is
//!   released — and the handler's action otherwise;
//! - in the receive, receive-from and accept trampolines, marks the socket
//!   `DEAD` on a NULL indication or socket (the page's "no longer
//!   functional … must close"), so nothing but closing reaches the provider
//!   afterwards;
//! - for an accepted socket (`accept_event`), keeps the socket `ACCEPTING`
//!   until it answered: a handle dropped or closed meanwhile (or a socket
//!   deregistration is closing) makes it answer `STATUS_REQUEST_NOT_ACCEPTED`
//!   and the provider closes the socket — closing it too would close it
//!   twice, so the rejected socket is marked closing before the window
//!   ends and no later drop or deregistration closes it — and event
//!   enabling waits, since the provider learns the
//!   socket's context and table only from the answer. Other calls are
//!   allowed: Microsoft's sample makes some there.
//!
//! Handlers are `Send + Sync`: no callback relies on another's being over
//! (only `WskReceiveEvent` is documented as serial; `docs/conformance.md`
//! G-12), and concurrent retains of one socket take different slots.

pub(crate) mod calls;
pub(crate) mod close;
pub(crate) mod core;
pub(crate) mod create;
pub(crate) mod retain;
