//! The implementation of requests (documented in [`crate::request`]): the
//! block and its completion routine ([`block`]), and the owner's handles
//! ([`handle`]).
//!
//! # Soundness
//!
//! A request is one heap block — an IRP with one stack location, an atomic
//! `state` word, a waiter's event pointer, a waker, the in-flight counter it
//! was armed with, a link, and the payload (every buffer, MDL and address
//! the provider may touch). Three parties use it:
//!
//! | party | may touch | when |
//! |---|---|---|
//! | the provider | the IRP and whatever the payload's pointers describe | from the WSK call until it completes the IRP |
//! | the completion routine ([`block`]'s `on_complete`) | `state`; the payload by shared reference (the operation's `completed` hook); the waker slot and event pointer if the owner published them (`WAKER`, `WAITER`); `next` | once per armed IRP, at ≤ `DISPATCH_LEVEL` |
//! | the registration's wake DPC ([`block`]'s `wake_foreign`), for a block whose waker is not this crate's | what the completion routine would have touched after its `fetch_or(COMPLETING)`: the waker slot, `state`, `next` | once, after the routine handed the block over, at `DISPATCH_LEVEL` |
//! | the owner (`Request`, `SlotRequest`) | everything, while the block is idle; afterwards only `state` (with atomics), the waker slot while `WAKER` is clear, the event pointer while `WAITER` is clear, the payload once `COMPLETING` is set | from submission until it lets go |
//!
//! Why each hand-over holds:
//!
//! - **Nothing the provider may touch moves or is freed before it completes
//!   the IRP.** The payload lives in the block, the block is freed only by
//!   the party that sees the other one done (`finished`): the owner, or —
//!   if the owner let go first (`RELEASED`) — whoever drains the deferred
//!   list after the completion routine queued the block. A provider that
//!   never completes keeps the block forever: a leak, never a use after
//!   free.
//! - **Exactly one party frees the block.** Every decision is taken on the
//!   value an atomic read-modify-write returned: the routine's
//!   `fetch_or(COMPLETING)` / `fetch_or(COMPLETE)` and the owner's
//!   `fetch_or(RELEASED)` order every pair of accesses.
//! - **No reference outlives the hand-over.** Once `RELEASED` is set the
//!   block may be freed at any moment by another processor, so the owner
//!   lets go through a raw pointer and a reference to the atomic alone
//!   (`Header::release`, `release_taken`), never through a `&Header`, which
//!   as a function argument would stay protected while the block is freed
//!   (issue 11.7; the Miri test in [`block`] frees the block at exactly that
//!   moment). For the same reason the submitting call sees the payload
//!   through a `Payload` handle, not a `&mut O` argument: the provider may
//!   complete the IRP (and the routine read the payload through the
//!   `completed` hook) before the provider call returns, which a protected
//!   `&mut` argument spanning that call would forbid (Miri caught it). The
//!   completion routine likewise reads what it needs before
//!   its `fetch_or(COMPLETE)` and touches only the waiter's event and the
//!   waker afterwards.
//! - **No new WSK call in a completion routine**
//!   (<https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>).
//!   The routine only updates atomics, runs the operation's `completed`
//!   hook (which records what the provider did — a socket it handed over,
//!   a bind that succeeded — and makes no WSK call), signals a waiting
//!   thread's event and wakes `block_on`'s or an executor task's waker
//!   (which only set an event or queue a task, and whose drop frees memory
//!   only). A block whose owner is gone holds a payload whose disposal may
//!   close sockets and drop a handler: the routine queues it on a lock-free
//!   list, which the next submission (from any context where submitting is
//!   legal) or deregistration drains. Any other waker is the driver's code
//!   (it may drop a socket): the routine hands its block to the
//!   registration's wake DPC (`block::InFlight`), which wakes it at
//!   `DISPATCH_LEVEL` outside the routine (queued with `KeInsertQueueDpc`
//!   and, for Wine 8 whose `KeInsertQueueDpc` never runs the DPC, by a
//!   timer due at once: the first run to start does the work). Wakers must not poll or wait.
//! - **No completion routine runs in an unloaded driver.** Arming a block
//!   increments its registration's in-flight count and the routine
//!   decrements it as its very last access outside its stack (a block
//!   handed to the wake DPC is counted once more, until the DPC woke its
//!   waker, and the DPC's run holds one count of its own until it returns;
//!   deregistration then also cancels the DPC's fallback timer and flushes
//!   queued DPCs);
//!   deregistration waits for the count to reach zero after
//!   `WskDeregister`, before which every IRP was completed. That leaves only
//!   the routine's return instructions running when the driver may unload:
//!   `IoSetCompletionRoutine` is meant for drivers that "can guarantee [they]
//!   will not be unloaded before [the] completion routine finishes"
//!   (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-iosetcompletionroutine>),
//!   and no page says whether `WskDeregister` waits for routines to return
//!   (`docs/conformance.md` G-11). `IoSetCompletionRoutineEx`, which
//!   references a device object, applies only to IRPs sent with
//!   `IoCallDriver`, which WSK calls are not.
//! - **The waiter's event outlives every signal.** It lives on the waiting
//!   thread's stack; the routine reads the pointer only if it saw
//!   `WAITER`, and a waiter that times out withdraws `WAITER` with a
//!   compare-exchange, or — if the routine saw it first — waits for the
//!   signal before its frame goes.

pub(crate) mod block;
pub(crate) mod handle;
