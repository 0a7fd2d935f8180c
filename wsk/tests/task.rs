//! The executor (`wsk::task`) and timers (`wsk::timer`) against `wsk-sim`:
//! spawning and joining, wakes from other threads, from simulated
//! `DISPATCH_LEVEL` and from completion routines, timers firing and
//! cancelled, timeouts, abort, shutdown with busy, pending and sleeping
//! tasks, an executor dropped without shutdown, wakers that outlive their
//! task and executor, blocking closures, cooperative budgets, and panics.

mod common;

use std::future::{Future, pending, poll_fn};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use wsk::Error;
use wsk::irql::Passive;
use wsk::task::{Executor, consume_budget, yield_now};
use wsk::timer::{sleep, timeout};
use wsk_sim::{CompletionMode, Irql, Sim};

/// Sizes shrink under Miri, which runs everything far slower.
const fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { native }
}

/// How long `shutdown` may take in these tests.
const SHUTDOWN_BOUND: Duration = if cfg!(miri) {
    Duration::from_secs(60)
} else {
    Duration::from_secs(2)
};

/// The test thread's token.
fn token() -> Passive<'static> {
    // SAFETY: test threads run at PASSIVE_LEVEL, outside any WSK callback,
    // hold no spin lock, and may wait.
    unsafe { Passive::new_unchecked() }
}

fn executor(workers: usize) -> Executor {
    Executor::builder()
        .workers(workers)
        .blocking_threads(1)
        .shutdown_timeout(SHUTDOWN_BOUND)
        .build(&token())
        .expect("executor")
}

/// Counts its drops: proves that a task's future was dropped.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

impl Drops {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    fn guard(&self) -> DropGuard {
        DropGuard(self.clone())
    }
}

struct DropGuard(Drops);

impl Drop for DropGuard {
    fn drop(&mut self) {
        (self.0).0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A one-shot signal another thread fires; its future registers the waker.
#[derive(Clone, Default)]
struct Signal(Arc<(AtomicBool, Mutex<Option<Waker>>)>);

impl Signal {
    fn fire_with(&self, wake: impl FnOnce(Waker)) {
        self.0.0.store(true, Ordering::SeqCst);
        let waker = self.0.1.lock().unwrap().take();
        if let Some(waker) = waker {
            wake(waker);
        }
    }

    fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        poll_fn(move |cx| {
            *this.0.1.lock().unwrap() = Some(cx.waker().clone());
            if this.0.0.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Waits (bounded) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(if cfg!(miri) { 120 } else { 10 });
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// Spawning, joining, waking

#[test]
fn spawned_tasks_run_and_join() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(2);
    let handle = executor.handle();
    let parent = executor
        .spawn(async move {
            // A task spawns tasks through the handle.
            let children: Vec<_> = (0..4)
                .map(|i| handle.spawn(async move { i * 10 }).expect("spawn"))
                .collect();
            let mut sum = 0;
            for child in children {
                sum += child.await.expect("child");
            }
            sum
        })
        .expect("spawn");
    assert_eq!(parent.join(&p), Ok(60));
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

/// The task holds its future, then its output, in one slot sized for the
/// larger: a future larger than its output and one smaller, each holding a
/// buffer across an `.await`, keep their contents; an output nobody reads is
/// dropped, and so is a future aborted while it waits.
#[test]
fn futures_and_outputs_of_any_size_keep_their_contents_and_are_dropped() {
    const BIG: usize = 4096;
    let sim = Sim::start();
    let p = token();
    let executor = executor(1);
    let large_future = executor
        .spawn(async {
            let buffer: [u8; BIG] = core::array::from_fn(|i| i.to_le_bytes()[0]);
            yield_now().await;
            buffer.iter().map(|&b| usize::from(b)).sum::<usize>()
        })
        .expect("spawn");
    let large_output = executor
        .spawn(async {
            yield_now().await;
            core::array::from_fn::<u8, BIG, _>(|i| (i % 7).to_le_bytes()[0])
        })
        .expect("spawn");
    let expected: usize = (0..BIG).map(|i| i % 256).sum();
    assert_eq!(large_future.join(&p), Ok(expected));
    let output = large_output.join(&p).expect("output");
    assert!(
        output
            .iter()
            .enumerate()
            .all(|(i, &b)| usize::from(b) == i % 7)
    );

    // An output nobody reads, and a future aborted while it waits.
    let drops = Drops::default();
    let guard = drops.guard();
    drop(
        executor
            .spawn(async move { (guard, [0u8; BIG]) })
            .expect("spawn"),
    );
    let guard = drops.guard();
    let aborted = executor
        .spawn(async move {
            let _guard = guard;
            pending::<()>().await;
            [0u8; BIG]
        })
        .expect("spawn");
    aborted.abort();
    assert!(aborted.join(&p) == Err(Error::CANCELLED));
    eventually("both guards dropped", || drops.count() == 2);
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

#[test]
fn many_tasks_interleave_on_few_workers() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(3);
    let tasks = scaled(500, 12);
    let rounds = scaled(20, 3);
    let polls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let polls = Arc::clone(&polls);
            executor
                .spawn(async move {
                    for _ in 0..rounds {
                        polls.fetch_add(1, Ordering::Relaxed);
                        yield_now().await;
                    }
                    i
                })
                .expect("spawn")
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(&p), Ok(i));
    }
    assert_eq!(polls.load(Ordering::Relaxed), tasks * rounds);
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

#[test]
fn a_wake_from_another_thread_runs_the_task() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(2);
    let signal = Signal::default();
    let task = executor.spawn(signal.wait()).expect("spawn");
    std::thread::sleep(Duration::from_millis(5));
    assert!(!task.is_finished());
    let other = signal.clone();
    std::thread::spawn(move || other.fire_with(Waker::wake))
        .join()
        .unwrap();
    assert_eq!(task.join(&p), Ok(()));
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

#[test]
fn a_wake_at_dispatch_level_runs_the_task() {
    // The wake's spin lock and semaphore calls are checked against the
    // simulated IRQL.
    let sim = Sim::start();
    let p = token();
    let executor = executor(1);
    let signal = Signal::default();
    let task = executor.spawn(signal.wait()).expect("spawn");
    eventually("the task to register its waker", || {
        signal.0.1.lock().unwrap().is_some()
    });
    sim.at_irql(Irql::Dispatch, || signal.fire_with(|w| w.wake_by_ref()));
    assert_eq!(task.join(&p), Ok(()));
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

#[test]
fn completion_routines_at_dispatch_level_wake_tasks() {
    // Requests complete on the simulator's worker thread at DISPATCH_LEVEL;
    // their completion routine wakes the task that awaits them.
    let connected = common::connected_with(|sim| {
        sim.set_completion_mode(CompletionMode::Delayed(Duration::from_millis(2)));
        sim.set_completion_irql(Irql::Dispatch);
    });
    let p = token();
    let executor = executor(2);
    let socket = Arc::new(connected.socket);
    let reader = Arc::clone(&socket);
    let task = executor
        .spawn(async move {
            let buffer = wsk::Buffer::with_capacity(5)?;
            let (received, buffer) = reader
                .receive_in(
                    &mut wsk::request::TransferSlot::new()?,
                    buffer,
                    wsk::tcp::ReceiveFlags::WAIT_ALL,
                )
                .await;
            received?;
            Ok::<_, Error>(buffer.as_slice().to_vec())
        })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(5));
    connected.peer.send(b"hello");
    assert_eq!(task.join(&p).expect("joined"), Ok(b"hello".to_vec()));
    executor.shutdown(&p).expect("shutdown");
    let socket = Arc::into_inner(socket).expect("the task dropped its reference");
    socket.close().wait(&p).expect("close");
    common::teardown(&p, connected.registration, connected.provider);
    connected.sim.finish();
}

// ---------------------------------------------------------------------------
// Timers

#[test]
fn sleep_lasts_at_least_its_duration() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(2);
    let wanted = Duration::from_millis(20);
    let task = executor
        .spawn(async move {
            let start = Instant::now();
            sleep(wanted).await?;
            Ok::<_, Error>(start.elapsed())
        })
        .expect("spawn");
    let slept = task.join(&p).expect("joined").expect("slept");
    assert!(
        slept >= wanted,
        "slept {slept:?}, wanted at least {wanted:?}"
    );
    // Also outside the executor: any executor drives it.
    let start = Instant::now();
    wsk::block_on(&p, sleep(wanted)).expect("slept");
    assert!(start.elapsed() >= wanted);
    assert!(wsk::block_on(&p, sleep(Duration::ZERO)).is_ok());
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

#[test]
fn dropped_sleeps_cancel_their_timers_at_every_stage() {
    // Dropped long before, around and after expiry: a timer still queued is
    // cancelled, one whose DPC is queued or running is freed by whichever of
    // the DPC and the drop comes last (the simulator delays DPCs after expiry
    // to widen that window). The verifier reports a timer left set at the
    // end of the test; Miri reports a use after free.
    let sim = Sim::start();
    let p = token();
    drop(sleep(Duration::from_secs(3600)));
    for i in 0..scaled(200, 10) {
        let timer = sleep(Duration::from_micros(50));
        if i % 2 == 0 {
            std::thread::sleep(Duration::from_micros(u64::try_from(i % 40).unwrap() * 500));
        }
        drop(timer);
    }
    // A polled sleep dropped after it fired.
    wsk::block_on(&p, sleep(Duration::from_millis(1))).expect("slept");
    wsk::shutdown(&p, Duration::from_secs(5)).expect("every sleep was dropped");
    sim.finish();
}

#[test]
fn timeout_ends_a_future_that_takes_too_long() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(2);
    let drops = Drops::default();
    let guard = drops.guard();
    let slow = executor
        .spawn(timeout(Duration::from_millis(10), async move {
            let _guard = guard;
            pending::<()>().await;
        }))
        .expect("spawn");
    assert_eq!(slow.join(&p), Ok(Err(Error::IO_TIMEOUT)));
    assert_eq!(drops.count(), 1, "the timed-out future was dropped");
    let quick = executor
        .spawn(timeout(Duration::from_secs(60), async { 5 }))
        .expect("spawn");
    assert_eq!(quick.join(&p), Ok(Ok(5)));
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

// ---------------------------------------------------------------------------
// Abort

#[test]
fn abort_drops_a_waiting_task() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(1);
    let drops = Drops::default();
    let guard = drops.guard();
    let task = executor
        .spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(2));
    task.abort();
    assert_eq!(task.join(&p), Err(Error::CANCELLED));
    assert_eq!(drops.count(), 1);
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

#[test]
fn abort_drops_a_busy_task_after_its_current_poll() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(1);
    let drops = Drops::default();
    let guard = drops.guard();
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&polls);
    let task = executor
        .spawn(async move {
            let _guard = guard;
            loop {
                counted.fetch_add(1, Ordering::Relaxed);
                yield_now().await;
            }
        })
        .expect("spawn");
    eventually("the task to run", || polls.load(Ordering::Relaxed) > 3);
    task.abort();
    let task_result: Result<(), Error> = task.join(&p);
    assert_eq!(task_result, Err(Error::CANCELLED));
    assert_eq!(drops.count(), 1);
    // A detached task that finished: abort is a no-op.
    let done = executor.spawn(async { 1 }).expect("spawn");
    eventually("the task to finish", || done.is_finished());
    done.abort();
    assert_eq!(done.join(&p), Ok(1));
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

// ---------------------------------------------------------------------------
// Shutdown

#[test]
fn shutdown_cancels_busy_pending_and_sleeping_tasks_within_its_bound() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(2);
    let drops = Drops::default();
    let mut handles = Vec::new();
    // 32 tasks that never stop (each poll yields).
    for _ in 0..scaled(32, 6) {
        let guard = drops.guard();
        handles.push(
            executor
                .spawn(async move {
                    let _guard = guard;
                    loop {
                        yield_now().await;
                    }
                })
                .expect("spawn"),
        );
    }
    // Tasks waiting forever, and sleeping for an hour.
    for i in 0..scaled(16, 4) {
        let guard = drops.guard();
        handles.push(
            executor
                .spawn(async move {
                    let _guard = guard;
                    if i % 2 == 0 {
                        pending::<()>().await;
                    } else {
                        let _ = sleep(Duration::from_secs(3600)).await;
                    }
                })
                .expect("spawn"),
        );
    }
    let spawned = handles.len();
    // A blocking closure queued behind a running one (one blocking thread):
    // the running one finishes, the queued one is dropped unrun. The running
    // one returns only once shutdown has cancelled the queued one (or after
    // a bound that fails the test), so no timing decides the outcome.
    let started = Arc::new(AtomicBool::new(false));
    let start_flag = Arc::clone(&started);
    let queued_slot: Arc<Mutex<Option<wsk::task::JoinHandle<()>>>> = Arc::default();
    let watched = Arc::clone(&queued_slot);
    let running = executor
        .spawn_blocking(move |p| {
            start_flag.store(true, Ordering::SeqCst);
            let start = Instant::now();
            while start.elapsed() < SHUTDOWN_BOUND {
                let cancelled = watched
                    .lock()
                    .unwrap()
                    .as_ref()
                    .is_some_and(wsk::task::JoinHandle::is_finished);
                if cancelled {
                    break;
                }
                p.sleep(Duration::from_millis(1));
            }
        })
        .expect("spawn_blocking");
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = Arc::clone(&ran);
    let queued = executor
        .spawn_blocking(move |_| ran2.store(true, Ordering::SeqCst))
        .expect("spawn_blocking");
    *queued_slot.lock().unwrap() = Some(queued);
    eventually("the first closure to start", || {
        started.load(Ordering::SeqCst)
    });
    let handle = executor.handle();
    let start = Instant::now();
    executor.shutdown(&p).expect("shutdown within its bound");
    let took = start.elapsed();
    assert!(took < SHUTDOWN_BOUND, "shutdown took {took:?}");
    assert_eq!(drops.count(), spawned, "every future was dropped");
    for handle in handles {
        assert!(handle.is_finished());
        assert_eq!(handle.join(&p), Err(Error::CANCELLED));
    }
    assert_eq!(running.join(&p), Ok(()), "a running closure finishes");
    let queued = queued_slot.lock().unwrap().take().expect("queued handle");
    assert_eq!(queued.join(&p), Err(Error::CANCELLED));
    assert!(!ran.load(Ordering::SeqCst));
    // After shutdown, spawning hands the future back.
    assert!(handle.is_shut_down());
    let refused = handle.spawn(async { 1 }).expect_err("shut down");
    assert_eq!(refused.error().as_raw(), wsk_sys::STATUS_DELETE_PENDING);
    assert_eq!(wsk::block_on(&p, refused.into_inner()), 1);
    sim.finish();
}

#[test]
fn shutdown_drops_tasks_that_own_pending_requests() {
    // A task waits on a receive the peer never satisfies; shutdown drops it,
    // which cancels the IRP and closes the socket. With a provider that
    // ignores IoCancelIrp (Wine), the close is what completes the IRP. The
    // verifier checks at deregistration that nothing is left.
    for ignore_cancel in [false, true] {
        let connected = common::connected_with(|sim| {
            sim.set_completion_mode(CompletionMode::Worker);
            sim.set_ignore_cancel(ignore_cancel);
        });
        let p = token();
        let executor = executor(2);
        let socket = connected.socket;
        let task = executor
            .spawn(async move {
                let buffer = wsk::Buffer::with_capacity(16)?;
                let (received, _buffer) = socket.receive(buffer).await;
                received
            })
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(5));
        executor.shutdown(&p).expect("shutdown");
        assert_eq!(task.join(&p), Err(Error::CANCELLED));
        common::teardown(&p, connected.registration, connected.provider);
        connected.sim.finish();
    }
}

#[test]
fn shutdown_gives_up_at_its_bound_on_a_closure_that_keeps_waiting() {
    let sim = Sim::start();
    let p = token();
    let bound = Duration::from_millis(if cfg!(miri) { 500 } else { 50 });
    let executor = Executor::builder()
        .workers(1)
        .blocking_threads(1)
        .shutdown_timeout(bound)
        .build(&p)
        .expect("executor");
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let wait = Arc::clone(&release);
    let running = Arc::clone(&started);
    let stuck = executor
        .spawn_blocking(move |p| {
            running.store(true, Ordering::SeqCst);
            while !wait.load(Ordering::SeqCst) {
                p.sleep(Duration::from_millis(1));
            }
        })
        .expect("spawn_blocking");
    // Started, not merely queued: a closure that never started would be
    // dropped by the shutdown, which would then not need its bound.
    eventually("the closure to start", || started.load(Ordering::SeqCst));
    assert!(!stuck.is_finished());
    std::thread::sleep(Duration::from_millis(2));
    let start = Instant::now();
    assert_eq!(executor.shutdown(&p), Err(Error::IO_TIMEOUT));
    // Within the bound, give or take a clock tick (a relative kernel timer
    // may expire a tick early), and long before the closure ends.
    assert!(start.elapsed() < Duration::from_secs(if cfg!(miri) { 60 } else { 5 }));
    assert!(
        sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains("shutdown timed out"))
    );
    // The thread exits once its closure returns; `wsk::shutdown`
    // (DriverUnload's last call) waits for the threads the shutdown gave up
    // on, and drops its references to them.
    release.store(true, Ordering::SeqCst);
    assert_eq!(stuck.join(&p), Ok(()));
    let left = wsk::shutdown(&p, SHUTDOWN_BOUND).expect_err("orphaned threads");
    assert_eq!((left.orphaned_threads, left.running_threads), (2, 0));
    eventually("the blocking thread to exit", || sim.leaks().is_empty());
    sim.finish();
}

#[test]
fn an_executor_dropped_without_shutdown_stops_without_waiting() {
    let sim = Sim::start();
    let executor = executor(2);
    let drops = Drops::default();
    let tasks = scaled(8, 3);
    for _ in 0..tasks {
        let guard = drops.guard();
        // Detached: the JoinHandle is dropped at once.
        drop(executor.spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        }));
    }
    let start = Instant::now();
    drop(executor);
    assert!(start.elapsed() < Duration::from_secs(1), "drop never waits");
    assert!(
        sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains("dropped without shutdown")),
        "a DbgPrint line says what happened"
    );
    // The workers drop the tasks and exit on their own.
    eventually("the workers to drop every task", || drops.count() == tasks);
    // `wsk::shutdown` (DriverUnload's last call) waits for them and drops
    // the references the executor held.
    let left = wsk::shutdown(&token(), SHUTDOWN_BOUND).expect_err("orphaned threads");
    assert_eq!((left.orphaned_threads, left.running_threads), (3, 0));
    eventually("the threads to exit", || sim.leaks().is_empty());
    sim.finish();
}

// ---------------------------------------------------------------------------
// Wakers that outlive things

#[test]
fn a_waker_outlives_its_task_and_the_executor() {
    let sim = Sim::start();
    let p = token();
    let executor = executor(1);
    let (tx, rx) = mpsc::channel();
    let task = executor
        .spawn(poll_fn(move |cx| {
            tx.send(cx.waker().clone()).unwrap();
            Poll::Ready(7)
        }))
        .expect("spawn");
    assert_eq!(task.join(&p), Ok(7));
    let waker = rx.recv().unwrap();
    waker.wake_by_ref(); // the task is complete: nothing happens
    let (tx, rx) = mpsc::channel();
    let pending_task = executor
        .spawn(poll_fn(move |cx| {
            tx.send(cx.waker().clone()).unwrap();
            Poll::<()>::Pending
        }))
        .expect("spawn");
    let late = rx.recv().unwrap();
    executor.shutdown(&p).expect("shutdown");
    assert_eq!(pending_task.join(&p), Err(Error::CANCELLED));
    // After shutdown: from this thread and at DISPATCH_LEVEL, by reference
    // and by value; the last drop frees the task.
    late.wake_by_ref();
    let by_value = late.clone();
    sim.at_irql(Irql::Dispatch, move || by_value.wake());
    drop(late);
    waker.wake();
    sim.finish();
}

// ---------------------------------------------------------------------------
// Blocking closures, budgets, errors

#[test]
fn blocking_closures_wait_and_are_bounded() {
    let sim = Sim::start();
    let p = token();
    let executor = Executor::builder()
        .workers(1)
        .blocking_threads(2)
        .build(&p)
        .expect("executor");
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..scaled(6, 3))
        .map(|i| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            executor
                .spawn_blocking(move |p| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    p.sleep(Duration::from_millis(3)); // waiting is allowed here
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
                .expect("spawn_blocking")
        })
        .collect();
    // A task awaits a blocking closure.
    let first = executor.spawn_blocking(|_| 40).expect("spawn_blocking");
    let task = executor
        .spawn(async move { first.await.map(|v| v + 2) })
        .expect("spawn");
    assert_eq!(task.join(&p), Ok(Ok(42)));
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join(&p), Ok(i));
    }
    assert!(most.load(Ordering::SeqCst) <= 2, "at most two at once");
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

#[test]
fn a_task_that_never_pends_yields_through_its_budget() {
    // One worker: without the budget, the spinning task would keep it forever.
    let sim = Sim::start();
    let p = token();
    let executor = executor(1);
    let spins = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&spins);
    let spinner = executor
        .spawn(poll_fn(move |cx| {
            loop {
                ready!(consume_budget(cx));
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }))
        .expect("spawn");
    eventually("the spinner to run", || spins.load(Ordering::Relaxed) > 0);
    let other = executor.spawn(async { 3 }).expect("spawn");
    assert_eq!(other.join(&p), Ok(3));
    // Outside a task the budget is unlimited.
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(consume_budget(&mut cx), Poll::Ready(()));
    executor.shutdown(&p).expect("shutdown");
    let spun: Result<(), Error> = spinner.join(&p);
    assert_eq!(spun, Err(Error::CANCELLED));
    sim.finish();
}

/// A task whose requests always complete inline (the simulator's default)
/// never returns `Pending` on its own: `Request::poll` spends the task's
/// budget, so the task yields, other tasks run on its only worker, and abort
/// reaches it between two requests.
#[test]
fn a_task_of_inline_requests_yields_and_can_be_aborted() {
    let connected = common::connected_with(|sim| sim.set_completion_mode(CompletionMode::Inline));
    let p = token();
    let executor = executor(1);
    let socket = Arc::new(connected.socket);
    let requests = Arc::new(AtomicUsize::new(0));
    let (looping, counted) = (Arc::clone(&socket), Arc::clone(&requests));
    let spinner = executor
        .spawn(async move {
            loop {
                looping.local_addr().await.expect("WskGetLocalAddress");
                counted.fetch_add(1, Ordering::Relaxed);
            }
        })
        .expect("spawn");
    eventually("the requests to run", || {
        requests.load(Ordering::Relaxed) > 0
    });
    let other = executor.spawn(async { 5 }).expect("spawn");
    assert_eq!(other.join(&p), Ok(5), "the only worker was shared");
    spinner.abort();
    let aborted: Result<(), Error> = spinner.join(&p);
    assert_eq!(aborted, Err(Error::CANCELLED));
    executor.shutdown(&p).expect("shutdown");
    let socket = Arc::into_inner(socket).expect("the task is gone");
    common::Connected {
        socket,
        ..connected
    }
    .finish();
}

#[test]
fn bad_configurations_are_refused() {
    let sim = Sim::start();
    let p = token();
    for builder in [
        Executor::builder().workers(0),
        Executor::builder().workers(wsk::task::MAX_THREADS + 1),
        Executor::builder().blocking_threads(wsk::task::MAX_THREADS + 1),
    ] {
        assert_eq!(builder.build(&p).err(), Some(Error::INVALID_PARAMETER));
    }
    let executor = Executor::builder()
        .workers(1)
        .blocking_threads(0)
        .build(&p)
        .expect("executor");
    let refused = executor
        .spawn_blocking(|_| ())
        .expect_err("no blocking threads");
    assert_eq!(refused.error(), Error::NOT_SUPPORTED);
    executor.shutdown(&p).expect("shutdown");
    sim.finish();
}

// ---------------------------------------------------------------------------
// Panics

/// Set in the child process of [`a_panicking_task_aborts_the_host_process`].
const PANIC_CHILD: &str = "WSK_TASK_PANIC_CHILD";

#[test]
#[cfg_attr(miri, ignore = "spawns a process")]
fn a_panicking_task_aborts_the_host_process() {
    if std::env::var_os(PANIC_CHILD).is_some() {
        let _sim = Sim::start();
        let p = token();
        let executor = executor(1);
        let task = executor
            .spawn(async { panic!("task panicked on purpose") })
            .expect("spawn");
        // Never returns: the worker's panic cannot unwind out of its
        // `extern "system"` start routine and aborts the process.
        let _ = task.join(&p);
        unreachable!("the process aborted");
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_panicking_task_aborts_the_host_process",
            "--exact",
            "--nocapture",
        ])
        .env(PANIC_CHILD, "1")
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the child aborted: {stderr}");
    assert!(stderr.contains("task panicked on purpose"), "{stderr}");
    assert!(
        stderr.contains("panic in a function that cannot unwind"),
        "{stderr}"
    );
}

#[test]
fn executor_handles_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Executor>();
    send_sync::<wsk::task::Handle>();
    send_sync::<wsk::task::JoinHandle<Vec<u8>>>();
    send_sync::<wsk::timer::Sleep>();
    send_sync::<wsk::timer::Timeout<std::future::Ready<u8>>>();
    send_sync::<wsk::task::SpawnError<std::future::Ready<u8>>>();
}
