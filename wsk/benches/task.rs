//! The executor (`wsk::task`): what a wake and a poll cost, and what an echo
//! round costs through a task compared with the same round driven by
//! `block_on`. Everything runs on the simulator with inline completions.
//!
//! - `task_echo`: one round of an echo loop — the peer sends 1 KiB before
//!   the round; the client receives it (`WSK_FLAG_WAITALL`) and sends it back
//!   through a `TransferSlot` and one `Buffer` (the `echo_round` future).
//!   *Task*: one task on a one-worker executor runs the rounds; after each
//!   round it yields, so every round is one scheduling round of the worker:
//!   pop the task, run it (state transitions, poll), requeue it when the poll
//!   returns. Callgrind collects `wsk::task::executor::run_next` (one
//!   scheduling round, inclusive) minus the peer's side, which runs inside
//!   the poll in `peer_side_outside_run_next` — named so that the case's
//!   toggle pattern `*run_next*` also matches it, which switches collection
//!   off while it runs. *`block_on`* (the baseline): `block_on(&passive,
//!   echo_round(…))` on the bench thread, the peer's side outside.
//! - `task_wake`: a wake from another thread of a task whose worker is
//!   parked. The waker's side (`wake_task`: the state update, the push, the
//!   `KeReleaseSemaphore` that unparks the worker) on the bench thread; the
//!   worker's side (`wsk::task::raw::run`: state transitions and the poll of
//!   a future that is ready) on the worker. The baseline is what
//!   `block_on`'s waker does: `KeSetEvent` on an event another thread waits
//!   on.
//!
//! Allocations are counted per thread, on the thread that makes them: the
//! waker's on the bench thread, the worker's inside the task between its
//! polls (which spans the worker's pop, run and requeue), the peer's side
//! excluded.

mod common;

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Waker};

use wsk::Buffer;
use wsk::events::NoEvents;
use wsk::irql::Passive;
use wsk::request::TransferSlot;
use wsk::task::{Executor, yield_now};
use wsk::tcp::{ConnectionSocket, ReceiveFlags, SendFlags};
use wsk_sim::{PeerConn, Sim};
use wsk_sys as sys;

use common::{AllocGroup, Case, PEER, SafeClient, allocations, counting};

/// Bytes per direction per round.
const CHUNK: usize = 1024;

/// How long the bench thread leaves a woken thread to park again before the
/// next wake.
const PARK: std::time::Duration = std::time::Duration::from_micros(100);

/// The peer's chunk of round `i`: distinct per round, so a stale buffer shows.
fn chunk(i: u64) -> Vec<u8> {
    (0..CHUNK)
        .map(|k| u8::try_from((k as u64 + i) % 251).expect("< 251"))
        .collect()
}

/// One echo round: receive a chunk, send it back.
async fn echo_round(
    socket: &ConnectionSocket<NoEvents>,
    slot: &mut TransferSlot,
    buffer: Buffer,
) -> Buffer {
    let (received, buffer) = socket
        .receive_in(slot, buffer, ReceiveFlags::WAIT_ALL)
        .await;
    assert_eq!(received, Ok(CHUNK), "WskReceive");
    let (sent, buffer) = socket.send_in(slot, buffer, SendFlags::empty()).await;
    assert_eq!(sent, Ok(CHUNK), "WskSend");
    buffer
}

/// A connected safe socket, its peer, and a one-worker executor.
struct Side {
    sim: Sim,
    client: SafeClient,
    socket: Arc<ConnectionSocket<NoEvents>>,
    peer: PeerConn,
    executor: Executor,
}

impl Side {
    fn new() -> Self {
        let sim = common::benign_sim();
        let listener = sim.peer_listen(PEER);
        let client = SafeClient::new();
        let socket = Arc::new(client.connect(NoEvents));
        let peer = listener.accept();
        let executor = Executor::builder()
            .workers(1)
            .blocking_threads(0)
            .build(&common::passive())
            .expect("executor");
        Self {
            sim,
            client,
            socket,
            peer,
            executor,
        }
    }

    fn finish(self) {
        let p = common::passive();
        self.executor.shutdown(&p).expect("shutdown");
        let socket = Arc::into_inner(self.socket).expect("tasks are gone");
        socket.close().wait(&p).expect("close");
        self.client.finish();
        self.sim.finish();
    }
}

// ---------------------------------------------------------------------------
// task_echo

/// The peer's side of round `round`, inside the task's poll: check the echo
/// of the previous round, send this round's chunk. Not measured (see the
/// module docs for the name).
#[inline(never)]
fn peer_side_outside_run_next(peer: &PeerConn, round: u64) {
    if round > 0 {
        assert_eq!(peer.recv_exact(CHUNK), chunk(round - 1), "round echoed");
    }
    peer.send(&chunk(round));
}

/// `n` echo rounds in a task; returns the rounds and the allocations the
/// worker made for them (the peer's side excluded).
fn echo_task(n: u64) -> (u64, u64) {
    let side = Side::new();
    let socket = Arc::clone(&side.socket);
    let peer = side.peer;
    let task = side
        .executor
        .spawn(async move {
            let mut slot = TransferSlot::new().expect("slot");
            let mut buffer = Buffer::with_capacity(CHUNK).expect("buffer");
            let (start, mut excluded) = (allocations(), 0);
            for round in 0..n {
                let before = allocations();
                peer_side_outside_run_next(&peer, round);
                excluded += allocations() - before;
                buffer = echo_round(&socket, &mut slot, buffer).await;
                yield_now().await;
            }
            let made = allocations() - start - excluded;
            assert_eq!(peer.recv_exact(CHUNK), chunk(n - 1), "last round echoed");
            assert!(slot.is_ready(), "the slot kept its memory");
            (peer, made)
        })
        .expect("spawn");
    let (peer, made) = task.join(&common::passive()).expect("the echo task ran");
    Side { peer, ..side }.finish();
    (n, made)
}

/// One round driven by `block_on`.
#[inline(never)]
fn block_on_round(
    socket: &ConnectionSocket<NoEvents>,
    slot: &mut TransferSlot,
    buffer: Buffer,
    passive: &Passive<'_>,
) -> Buffer {
    wsk::block_on(passive, echo_round(socket, slot, buffer))
}

/// One round polled once, with no executor and a no-op waker (the requests
/// complete inline): the allocation baseline, what the round itself
/// allocates.
#[inline(never)]
fn polled_round(
    socket: &ConnectionSocket<NoEvents>,
    slot: &mut TransferSlot,
    buffer: Buffer,
    _passive: &Passive<'_>,
) -> Buffer {
    let mut round = std::pin::pin!(echo_round(socket, slot, buffer));
    match round.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(buffer) => buffer,
        Poll::Pending => panic!("the simulator completes inline"),
    }
}

/// `n` rounds on the bench thread with `round`; returns the rounds and the
/// allocations of the rounds.
fn echo_on_thread(
    n: u64,
    round: fn(&ConnectionSocket<NoEvents>, &mut TransferSlot, Buffer, &Passive<'_>) -> Buffer,
) -> (u64, u64) {
    let side = Side::new();
    let p = common::passive();
    let mut slot = TransferSlot::new().expect("slot");
    let mut buffer = Some(Buffer::with_capacity(CHUNK).expect("buffer"));
    let mut made = 0;
    for i in 0..n {
        let data = chunk(i);
        side.peer.send(&data);
        let b = buffer.take().expect("buffer");
        let (b, allocs) = counting(|| round(&side.socket, &mut slot, b, &p));
        made += allocs;
        buffer = Some(b);
        assert_eq!(side.peer.recv_exact(CHUNK), data, "round {i} echoed");
    }
    assert!(slot.is_ready(), "the slot kept its memory");
    drop((slot, buffer));
    side.finish();
    (n, made)
}

fn echo_block_on(n: u64) -> (u64, u64) {
    echo_on_thread(n, block_on_round)
}

fn echo_polled(n: u64) -> (u64, u64) {
    echo_on_thread(n, polled_round)
}

// ---------------------------------------------------------------------------
// task_wake

/// Wakes the task (the waker's side of a wake).
#[inline(never)]
fn wake_task(waker: &Waker) {
    waker.wake_by_ref();
}

/// `n` wakes from the bench thread of a task whose worker parks between
/// them; returns the wakes and the allocations of both sides.
fn wake_and_poll(n: u64) -> (u64, u64) {
    let side = Side::new();
    let pings = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let (task_pings, task_seen) = (Arc::clone(&pings), Arc::clone(&seen));
    let task = side
        .executor
        .spawn(async move {
            std::future::poll_fn(|cx| {
                tx.send(cx.waker().clone()).expect("send the waker");
                Poll::Ready(())
            })
            .await;
            let start = allocations();
            for round in 1..=n {
                std::future::poll_fn(|_| {
                    if task_pings.load(Ordering::Acquire) >= round {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
                task_seen.store(round, Ordering::Release);
            }
            allocations() - start
        })
        .expect("spawn");
    let waker = rx.recv().expect("the task's waker");
    let mut waker_side = 0;
    for round in 1..=n {
        pings.store(round, Ordering::Release);
        waker_side += counting(|| wake_task(&waker)).1;
        while seen.load(Ordering::Acquire) < round {
            std::thread::yield_now();
        }
        // Let the worker go back to its semaphore, so that every wake
        // measured is a wake of a parked worker.
        std::thread::sleep(PARK);
    }
    let worker_side = task.join(&common::passive()).expect("the task ran");
    drop(waker);
    side.finish();
    (n, waker_side + worker_side)
}

/// Signals the event (the waker's side of `block_on`'s wake).
#[inline(never)]
fn set_event(event: *mut sys::KEVENT) {
    // SAFETY: an initialised event that outlives the call.
    unsafe { sys::KeSetEvent(event, 0, sys::FALSE) };
}

/// A `KEVENT` shared with a waiting thread.
struct SharedEvent(*mut sys::KEVENT);

// SAFETY: a kernel event is usable from any thread.
unsafe impl Send for SharedEvent {}

/// `n` `KeSetEvent`s from the bench thread to a thread blocked on the event
/// between them; returns the signals and the allocations of both sides.
fn event_wakes(n: u64) -> (u64, u64) {
    let sim = common::benign_sim();
    let event: *mut sys::KEVENT = Box::into_raw(Box::new(
        // SAFETY: KEVENT is plain data; KeInitializeEvent initialises it.
        unsafe { core::mem::zeroed() },
    ));
    // SAFETY: writable storage that outlives every use below.
    unsafe { sys::KeInitializeEvent(event, sys::SynchronizationEvent, sys::FALSE) };
    let seen = Arc::new(AtomicU64::new(0));
    let waiter_seen = Arc::clone(&seen);
    let shared = SharedEvent(event);
    let waiter = std::thread::spawn(move || {
        let shared = shared;
        let ((), made) = counting(|| {
            for round in 1..=n {
                // SAFETY: the event outlives the thread (joined below);
                // PASSIVE_LEVEL.
                unsafe {
                    sys::KeWaitForSingleObject(
                        shared.0.cast(),
                        sys::Executive,
                        sys::KernelMode,
                        sys::FALSE,
                        std::ptr::null_mut(),
                    );
                }
                waiter_seen.store(round, Ordering::Release);
            }
        });
        made
    });
    let mut made = 0;
    for round in 1..=n {
        made += counting(|| set_event(event)).1;
        while seen.load(Ordering::Acquire) < round {
            std::thread::yield_now();
        }
        // As in `wake_and_poll`: the waiter goes back to its wait.
        std::thread::sleep(PARK);
    }
    made += waiter.join().expect("waiter");
    // SAFETY: allocated above; nobody uses it any more.
    drop(unsafe { Box::from_raw(event) });
    sim.finish();
    black_box(n);
    (n, made)
}

// ---------------------------------------------------------------------------

fn calls(f: fn(u64) -> (u64, u64)) -> impl Fn(u64) -> u64 {
    move |n| f(n).0
}

fn main() {
    common::main(
        &[
            Case {
                group: "task_echo",
                role: "safe",
                name: "echo_task",
                toggle: "*run_next*",
                iters: 500,
                run: |n| calls(echo_task)(n),
            },
            Case {
                group: "task_echo",
                role: "raw",
                name: "echo_block_on",
                toggle: "task::block_on_round",
                iters: 500,
                run: |n| calls(echo_block_on)(n),
            },
            Case {
                group: "task_wake",
                role: "safe",
                name: "wake_task",
                toggle: "task::wake_task",
                iters: 2_000,
                run: |n| calls(wake_and_poll)(n),
            },
            Case {
                group: "task_wake",
                role: "raw",
                name: "set_event",
                toggle: "task::set_event",
                iters: 2_000,
                run: |n| calls(event_wakes)(n),
            },
            Case {
                group: "task_wake",
                role: "poll",
                name: "wake_task_poll",
                toggle: "wsk::task::raw::run",
                iters: 2_000,
                run: |n| calls(wake_and_poll)(n),
            },
        ],
        &[
            AllocGroup {
                group: "task_echo",
                unit: "round",
                ops: 500,
                safe: |n| echo_task(n).1,
                raw: |n| echo_polled(n).1,
            },
            AllocGroup {
                group: "task_wake",
                unit: "wake",
                ops: 2_000,
                safe: |n| wake_and_poll(n).1,
                raw: |n| event_wakes(n).1,
            },
        ],
    );
}
