//! Requests: one IRP-based WSK call, owned until the provider completes it.
//!
//! Every WSK routine takes an IRP and completes it later (or at once). A
//! [`Request`] owns, in **one** non-paged heap allocation (the *block*), the IRP
//! with its single stack location, the completion state, a `KEVENT` for
//! blocking waits, a waker slot for `async` callers, and every buffer, MDL and
//! address the provider may touch (the operation's payload). The IRP comes
//! first in the block and its completion-routine context points at the block.
//!
//! # Lifecycle
//!
//! ```text
//!   submit ──► pending ──completion routine──► completed ──wait/poll──► output (block freed or reused)
//!                │
//!                └─ Request dropped: IoCancelIrp, then released ──completion routine──► block freed
//! ```
//!
//! - The completion routine always returns `STATUS_MORE_PROCESSING_REQUIRED`:
//!   the IRP is this crate's memory, never the I/O manager's to free.
//! - Dropping a pending request cancels its IRP and hands the block to the
//!   completion routine, which frees it — buffers included — only when the
//!   provider is done. A provider that never completes (Wine ignores
//!   `IoCancelIrp`; closing the socket is what releases its IRPs) keeps the
//!   block alive forever rather than risk a use after free.
//! - A provider that returns a status other than `STATUS_PENDING` without
//!   completing the IRP (as Wine's stubs do) is treated as having completed it
//!   with that status, so waits end.
//! - Buffers come back to the caller with the result, on success and failure
//!   alike ([`BufResult`](crate::BufResult), `(Result<T>, Buffer)`), as in
//!   other completion-based I/O APIs.
//!
//! # Reuse
//!
//! A [`RequestSlot`] keeps one block from one request to the next: the same
//! memory, the same IRP (reinitialised with `IoReuseIrp`, which
//! [Microsoft allows](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ioreuseirp)
//! for IRPs a driver "allocated … as raw memory"), so a stream of sends or
//! receives through a slot allocates nothing. A request made in a slot
//! ([`SlotRequest`]) borrows the slot until it completes; dropping it while
//! the provider still owns the IRP behaves as for a [`Request`] and leaves
//! the slot empty, so that its next request allocates a fresh block instead
//! of reusing memory the provider may still touch. [`Waitable`] covers what
//! both kinds of request offer, for helpers that wait for either.
//!
//! # Completion without a lock
//!
//! The block's state is one atomic word. The completion routine marks the
//! IRP completed with one atomic OR; if the owner had registered a waker or
//! was blocked in a wait by then, the routine takes the waker and the
//! waiter's event, marks itself finished with a second OR, and only then
//! wakes the task or signals the event — so whoever it wakes finds the block
//! free to reuse. The waiter's `KEVENT` lives on the waiting thread's stack
//! (the classic pattern of a synchronous IRP), so a request that is never
//! waited on never initialises one. The owner never spins on the routine:
//! once the IRP is marked completed it takes the output, and if the routine
//! is still finishing, whichever of the two is last frees the block. An
//! inline completion therefore costs the completion routine one atomic
//! operation and the owner one load, with no kernel call.
//!
//! # Where wakers run
//!
//! The completion routine wakes [`block_on`](crate::block_on)'s and
//! [`task`](crate::task)'s wakers itself: they only set an event or queue a
//! task. Any other waker is the driver's code, which may make WSK calls
//! (drop a socket, send), and "a WSK application should not call new WSK
//! functions in the context of the `IoCompletion` routine"
//! ([Using IRPs with Winsock Kernel Functions](https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions)):
//! it is woken by a DPC of the registration instead, at `DISPATCH_LEVEL`,
//! after the routine returned (the owner sees the completion at once; the
//! request's block goes back to it once the wake was handed over), and
//! [`Registration::deregister`](crate::Registration::deregister) waits for
//! those wakes. A waker must be callable at `DISPATCH_LEVEL`, must not wait
//! or poll, and should be brief.
//!
//! # What is here
//!
//! - [`Request`], [`RequestSlot`], [`SlotRequest`]: the handles; [`Waitable`]
//!   for code that waits for either kind; [`Operation`], the trait of every
//!   payload.
//! - [`TransferSlot`], [`SendToSlot`], [`ReceiveFromSlot`]: the slots the
//!   sockets' `*_in` methods reuse.
//! - [`ops`]: the payload types, which name what a request resolves to
//!   (`Request<ops::TransferOp>` resolves to `BufResult<usize>`). None is
//!   generic over a socket's event handler, so a helper that sends bytes is
//!   not either; only the requests that *produce* a typed socket
//!   ([`ops::CreateOp`], [`ops::AcceptOp`]) name it.
//!
//! The machinery lives in a private module; this module only names it
//! (the implementation files are split by what they do, not by who uses
//! them).

pub use crate::irp::block::Operation;
pub use crate::irp::handle::{Request, RequestSlot, SlotRequest, Waitable};
pub use crate::tcp::connection::transfer::TransferSlot;
pub use crate::udp::transfer::{ReceiveFromSlot, SendToSlot};

/// The payload types of requests: what each WSK call keeps alive until the
/// provider completes it, and what it resolves to (see each type's
/// [`Operation::Output`]).
pub mod ops {
    pub use crate::provider::control::TransportChangeOp;
    pub use crate::socket::calls::{AddressOp, ControlOp, SecurityOp};
    pub use crate::socket::close::CloseOp;
    pub use crate::socket::create::CreateOp;
    pub use crate::tcp::connection::transfer::{DrainOp, TransferOp};
    pub use crate::tcp::connection::{ConnectExOp, DisconnectOp};
    pub use crate::tcp::listen::{AcceptOp, InspectCompleteOp};
    pub use crate::udp::socket::FixedAddressOp;
    pub use crate::udp::transfer::{ReceiveFromOp, SendMessagesOp, SendToOp};
}
