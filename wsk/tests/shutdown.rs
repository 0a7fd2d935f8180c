//! `wsk::shutdown`, the crate's part of `DriverUnload`: timers still set
//! are cancelled (and the sleeps that own them end), threads of executors
//! dropped without shutdown are waited for, queued DPCs are flushed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use wsk::irql::Passive;
use wsk::task::Executor;
use wsk::timer::{sleep, timeout};
use wsk_sim::Sim;

fn token() -> Passive<'static> {
    // SAFETY: test threads run at PASSIVE_LEVEL, outside any WSK callback,
    // hold no spin lock, and may wait.
    unsafe { Passive::new_unchecked() }
}

const fn scaled(native: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { native }
}

/// How long `wsk::shutdown` may wait in these tests.
const BOUND: Duration = Duration::from_secs(if cfg!(miri) { 60 } else { 5 });

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn poll<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

/// A live sleep (and a live timeout) whose timers `wsk::shutdown` cancels:
/// their owners are woken, they resolve to `CANCELLED` (not `Ok`: they did
/// not last their duration; not pending: teardown ends every wait), they
/// are not "elapsed", and dropping them afterwards frees their blocks (the
/// sim checks no timer is set and nothing is touched after free; Miri, no
/// leak). A sleep created afterwards arms and lasts its duration.
#[test]
fn a_live_sleep_cancelled_by_shutdown_ends_with_cancelled_and_drops_safely() {
    let sim = Sim::start();
    let p = token();
    let woken = Arc::new(Count::default());
    let waker = Waker::from(Arc::clone(&woken));
    let mut live = sleep(Duration::from_secs(3600));
    let mut bounded = timeout(Duration::from_secs(3600), std::future::pending::<()>());
    assert!(poll(&mut live, &waker).is_pending());
    // `Timeout<Pending<()>>` is Unpin: polled in place.
    assert!(poll(&mut bounded, &waker).is_pending());

    let left = wsk::shutdown(&p, BOUND).expect_err("two timers were set");
    assert_eq!(left.timers, 2);
    assert!(left.may_unload());
    assert!(sim.leaks().is_empty(), "{:?}", sim.leaks());
    assert_eq!(woken.0.load(Ordering::SeqCst), 2, "both owners woken");

    assert!(!live.is_elapsed(), "cancelled, not elapsed");
    assert_eq!(
        poll(&mut live, &waker),
        Poll::Ready(Err(wsk::Error::CANCELLED))
    );
    assert_eq!(
        poll(&mut bounded, &waker),
        Poll::Ready(Err(wsk::Error::CANCELLED))
    );
    // Polled again: still ended, nothing re-armed.
    assert_eq!(
        poll(&mut live, &waker),
        Poll::Ready(Err(wsk::Error::CANCELLED))
    );
    drop((live, bounded));

    // Later sleeps arm normally: a task sleeping in a loop waits, not spins.
    let started = Instant::now();
    wsk::block_on(&p, sleep(Duration::from_millis(20))).expect("slept");
    assert!(started.elapsed() >= Duration::from_millis(20));
    // Nothing left the second time.
    wsk::shutdown(&p, BOUND).expect("nothing left");
    sim.finish();
}

/// `wsk::shutdown` while timers expire around it: some DPCs are queued
/// (the sim runs them up to 3 ms late, on another thread), some running,
/// some timers still set. Owners drop their sleeps on another thread at the
/// same time, some are leaked (not under Miri). Whichever side comes second frees each
/// block: the sim reports a DPC whose memory was freed while queued, a
/// timer left set, a DPC still queued once `shutdown` returned; Miri, a use
/// after free or a double free.
#[test]
fn shutdown_while_dpcs_are_queued_or_running() {
    let sim = Sim::start();
    let p = token();
    let rounds = scaled(20, 2);
    for round in 0..rounds {
        let count = scaled(40, 6);
        let mut kept = Vec::new();
        let mut to_drop = Vec::new();
        for i in 0..count {
            // 0 to ~2 ms: expiring before, during and after the walk.
            let timer = sleep(Duration::from_micros(50 + 50 * u64::try_from(i).unwrap()));
            match i % 3 {
                0 => kept.push(timer),
                1 => to_drop.push(timer),
                // Miri reports the leak itself; the race is the same.
                _ if cfg!(miri) => kept.push(timer),
                _ => std::mem::forget(timer),
            }
        }
        let dropper = std::thread::spawn(move || {
            for timer in to_drop {
                drop(timer);
                std::thread::yield_now();
            }
        });
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_micros(500));
        }
        let cancelled = match wsk::shutdown(&p, BOUND) {
            Ok(()) => 0,
            Err(left) => {
                assert_eq!((left.orphaned_threads, left.running_threads), (0, 0));
                left.timers
            }
        };
        assert!(cancelled <= count);
        assert!(sim.leaks().is_empty(), "round {round}: {:?}", sim.leaks());
        // Every sleep still held has ended: elapsed (its DPC ran: flushed)
        // or cancelled.
        let waker = Waker::from(Arc::new(Count::default()));
        for mut timer in kept {
            let end = poll(&mut timer, &waker);
            assert!(
                matches!(end, Poll::Ready(Ok(()) | Err(wsk::Error::CANCELLED))),
                "round {round}: {end:?}"
            );
        }
        dropper.join().expect("dropper");
    }
    sim.finish();
}

/// An executor dropped without `shutdown` leaves its threads to exit on
/// their own, later — here a blocking closure keeps one busy until after
/// the drop (a flag, not a fixed time: under Miri on a loaded machine a
/// drop may take longer than any short sleep), then 50 ms more.
/// `wsk::shutdown` waits for them (the closure finished, each thread
/// terminated) and reports them; without it, the sim finds a system thread
/// still running at the end of the test.
#[test]
fn shutdown_waits_for_the_threads_of_an_executor_dropped_without_shutdown() {
    let sim = Sim::start();
    let p = token();
    let executor = Executor::builder()
        .workers(2)
        .blocking_threads(1)
        .build(&p)
        .expect("executor");
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let (s, f, r) = (
        Arc::clone(&started),
        Arc::clone(&finished),
        Arc::clone(&release),
    );
    let busy = executor
        .spawn_blocking(move |passive| {
            s.store(true, Ordering::SeqCst);
            while !r.load(Ordering::SeqCst) {
                passive.sleep(Duration::from_millis(1));
            }
            passive.sleep(Duration::from_millis(50));
            f.store(true, Ordering::SeqCst);
        })
        .map_err(|e| e.error())
        .expect("spawned");
    // A task parked on a sleep: the threads cancel it (dropping the sleep).
    let parked = executor
        .spawn(async { sleep(Duration::from_secs(3600)).await })
        .map_err(|e| e.error())
        .expect("spawned");
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    drop((busy, parked));
    drop(executor);
    assert!(!finished.load(Ordering::SeqCst), "the drop did not wait");
    release.store(true, Ordering::SeqCst);

    let left = wsk::shutdown(&p, BOUND).expect_err("three threads were orphaned");
    assert!(
        finished.load(Ordering::SeqCst),
        "shutdown waited for the closure"
    );
    assert_eq!(left.orphaned_threads, 3);
    assert_eq!(left.running_threads, 0);
    assert!(left.may_unload());
    assert!(sim.leaks().is_empty(), "{:?}", sim.leaks());
    sim.finish();
}

/// Counts its drops: what a task owns, dropped when it is cancelled.
struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An executor still alive at `wsk::shutdown` (neither shut down nor
/// dropped) is stopped as a drop would stop it: a `Handle` kept across
/// teardown refuses spawns, the executor's later `shutdown` is quick and
/// succeeds (its threads were `wsk::shutdown`'s to wait for), and an
/// executor built afterwards works and is stopped by the next call.
#[test]
fn shutdown_stops_an_executor_still_alive_and_its_handle_refuses_spawns() {
    let sim = Sim::start();
    let p = token();
    let executor = Executor::builder()
        .workers(1)
        .blocking_threads(1)
        .build(&p)
        .expect("executor");
    let handle = executor.handle();
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropGuard(Arc::clone(&drops));
    let waiting = handle
        .spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        })
        .map_err(|e| e.error())
        .expect("spawned");

    let left = wsk::shutdown(&p, BOUND).expect_err("an executor was alive");
    assert_eq!(
        (
            left.executors_stopped,
            left.orphaned_threads,
            left.running_threads
        ),
        (1, 2, 0)
    );
    assert!(left.may_unload());
    assert!(sim.leaks().is_empty(), "{:?}", sim.leaks());
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the task was dropped");
    assert_eq!(waiting.join(&p), Err(wsk::Error::CANCELLED));
    assert!(handle.is_shut_down());
    let refused = handle.spawn(async {}).expect_err("the executor is stopped");
    assert_eq!(refused.error().as_raw(), wsk_sys::STATUS_DELETE_PENDING);
    let refused = executor
        .spawn_blocking(|_| ())
        .expect_err("the executor is stopped");
    assert_eq!(refused.error().as_raw(), wsk_sys::STATUS_DELETE_PENDING);
    assert!(
        format!("{executor:?}").contains("threads: 0"),
        "{executor:?}"
    );
    executor.shutdown(&p).expect("nothing left to wait for");
    drop(handle);
    wsk::shutdown(&p, BOUND).expect("nothing left");

    // Built afterwards: runs tasks, and is stopped by the next call.
    let later = Executor::builder()
        .workers(1)
        .blocking_threads(0)
        .build(&p)
        .expect("executor");
    let answer = later
        .spawn(async { 42 })
        .map_err(|e| e.error())
        .expect("spawned");
    assert_eq!(answer.join(&p), Ok(42));
    let left = wsk::shutdown(&p, BOUND).expect_err("an executor was alive");
    assert_eq!((left.executors_stopped, left.orphaned_threads), (1, 1));
    drop(later);
    wsk::shutdown(&p, BOUND).expect("nothing left");
    sim.finish();
}

/// An executor leaked (here in a `ManuallyDrop`, so that the test can give
/// its memory back afterwards; `review.rs` forgets one for real) with a
/// task that is always ready, one pending forever, one sleeping an hour,
/// and a blocking closure busy for 200 ms. `wsk::shutdown` stops it: every
/// task is dropped (on its threads), the closure finishes, every thread
/// ends, no timer is left (the sleep was dropped with its task), and a
/// drop of the executor afterwards touches nothing `wsk::shutdown` freed
/// (Miri: no use after free).
#[test]
fn shutdown_stops_a_forgotten_executor_with_running_pending_and_sleeping_tasks() {
    let sim = Sim::start();
    let p = token();
    let executor = Executor::builder()
        .workers(2)
        .blocking_threads(1)
        .build(&p)
        .expect("executor");
    let drops = Arc::new(AtomicUsize::new(0));
    let polled = Arc::new(AtomicUsize::new(0));
    let guard = DropGuard(Arc::clone(&drops));
    let counter = Arc::clone(&polled);
    let running = executor
        .spawn(async move {
            let _guard = guard;
            loop {
                counter.fetch_add(1, Ordering::SeqCst);
                wsk::task::yield_now().await;
            }
        })
        .map_err(|e| e.error())
        .expect("spawned");
    let guard = DropGuard(Arc::clone(&drops));
    let pending = executor
        .spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        })
        .map_err(|e| e.error())
        .expect("spawned");
    let guard = DropGuard(Arc::clone(&drops));
    let asleep = Arc::new(AtomicBool::new(false));
    let sleeping = executor
        .spawn({
            let asleep = Arc::clone(&asleep);
            async move {
                let _guard = guard;
                let hour = sleep(Duration::from_secs(3600));
                asleep.store(true, Ordering::SeqCst);
                hour.await
            }
        })
        .map_err(|e| e.error())
        .expect("spawned");
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (s, f) = (Arc::clone(&started), Arc::clone(&finished));
    let busy = executor
        .spawn_blocking(move |passive| {
            s.store(true, Ordering::SeqCst);
            passive.sleep(Duration::from_millis(200));
            f.store(true, Ordering::SeqCst);
        })
        .map_err(|e| e.error())
        .expect("spawned");
    while !(started.load(Ordering::SeqCst)
        && asleep.load(Ordering::SeqCst)
        && polled.load(Ordering::SeqCst) > 0)
    {
        std::thread::yield_now();
    }
    let forgotten = std::mem::ManuallyDrop::new(executor);

    let left = wsk::shutdown(&p, BOUND).expect_err("an executor was forgotten");
    assert_eq!(
        (
            left.executors_stopped,
            left.orphaned_threads,
            left.running_threads,
            left.timers
        ),
        (1, 3, 0, 0),
        "{left}"
    );
    assert!(left.may_unload());
    assert!(
        finished.load(Ordering::SeqCst),
        "the closure finished first"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 3, "every task was dropped");
    assert!(sim.leaks().is_empty(), "{:?}", sim.leaks());
    assert!(
        sim.stats()
            .debug_output
            .iter()
            .any(|l| l.contains("neither shut down nor dropped")),
        "a DbgPrint line says what happened"
    );
    for task in [running, pending] {
        assert_eq!(task.join(&p), Err(wsk::Error::CANCELLED));
    }
    assert_eq!(sleeping.join(&p), Err(wsk::Error::CANCELLED));
    assert_eq!(busy.join(&p), Ok(()));
    // Nothing may touch what `wsk::shutdown` took: a late drop does not.
    drop(std::mem::ManuallyDrop::into_inner(forgotten));
    wsk::shutdown(&p, BOUND).expect("nothing left");
    sim.finish();
}

/// `Executor::shutdown` (or a drop) on another thread at the same time as
/// `wsk::shutdown`: exactly one side takes the executor's threads — the
/// executor's shutdown waits for them, or `wsk::shutdown` stops the
/// executor and does — and neither touches the thread set after the other
/// took it (the sim: every thread object dereferenced once, no thread
/// left; Miri: no use after free, no double free).
#[test]
fn executor_shutdown_racing_wsk_shutdown_takes_the_threads_once() {
    let sim = Sim::start();
    let p = token();
    let rounds = scaled(20, 3);
    for round in 0..rounds {
        let executor = Executor::builder()
            .workers(2)
            .blocking_threads(1)
            .build(&p)
            .expect("executor");
        let task = executor
            .spawn(async { sleep(Duration::from_secs(3600)).await })
            .map_err(|e| e.error())
            .expect("spawned");
        let other = std::thread::spawn(move || {
            if round % 2 == 0 {
                executor.shutdown(&token())
            } else {
                drop(executor);
                Ok(())
            }
        });
        if round % 4 < 2 {
            std::thread::yield_now();
        }
        let left = wsk::shutdown(&p, BOUND);
        assert_eq!(other.join().expect("no panic"), Ok(()), "round {round}");
        let left = left.err().unwrap_or_default();
        assert!(left.may_unload(), "round {round}: {left}");
        assert_eq!(left.running_threads, 0, "round {round}: {left}");
        match left.executors_stopped {
            0 => {}
            1 => assert_eq!(left.orphaned_threads, 3, "round {round}: {left}"),
            n => panic!("round {round}: {n} executors stopped"),
        }
        assert_eq!(task.join(&p), Err(wsk::Error::CANCELLED), "round {round}");
        // Whoever took the threads waited for them (a drop's go to the
        // next call).
        wsk::shutdown(&p, BOUND).ok();
        assert!(sim.leaks().is_empty(), "round {round}: {:?}", sim.leaks());
    }
    sim.finish();
}
