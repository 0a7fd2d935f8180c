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
/// their own, later — here a blocking closure keeps one busy for 200 ms.
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
    let (s, f) = (Arc::clone(&started), Arc::clone(&finished));
    let busy = executor
        .spawn_blocking(move |passive| {
            s.store(true, Ordering::SeqCst);
            passive.sleep(Duration::from_millis(200));
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

/// An executor still alive at `wsk::shutdown` (neither shut down nor
/// dropped): its threads still run the driver's code, which `shutdown`
/// reports (after its bound) rather than pretending the driver may unload.
#[test]
fn shutdown_reports_threads_of_an_executor_still_alive() {
    let sim = Sim::start();
    let p = token();
    let executor = Executor::builder()
        .workers(1)
        .blocking_threads(0)
        .build(&p)
        .expect("executor");
    let left = wsk::shutdown(&p, Duration::from_millis(50)).expect_err("a thread runs");
    assert_eq!((left.orphaned_threads, left.running_threads), (0, 1));
    assert!(!left.may_unload());
    executor.shutdown(&p).expect("shut down");
    wsk::shutdown(&p, BOUND).expect("nothing left");
    sim.finish();
}
