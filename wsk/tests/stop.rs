//! Stoppable waits and deadlines against `wsk-sim`: `StopSignal` ending a
//! blocked thread (`block_on_until`) from another thread and from
//! `DISPATCH_LEVEL`, ending tasks that await it, a request cancelled by a
//! stop, and `block_on_timeout` as a total deadline for a future that keeps
//! making progress.

mod common;

use std::future::pending;
use std::time::{Duration, Instant};

use wsk::task::StopSignal;
use wsk::timer::sleep;
use wsk::{Buffer, Error, block_on, block_on_timeout, block_on_until};
use wsk_sim::{CompletionMode, Irql, Sim};

/// A bound far above the latencies measured, far below a polling interval
/// times the iterations a polling implementation would need.
const PROMPT: Duration = if cfg!(miri) {
    Duration::from_secs(30)
} else {
    Duration::from_secs(2)
};

#[test]
fn block_on_until_ends_when_another_thread_stops() {
    let sim = Sim::start();
    let p = common::passive();
    let stop = StopSignal::new();
    let remote = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        remote.stop();
        Instant::now()
    });
    assert_eq!(block_on_until(&p, &stop, pending::<()>()), None);
    let woke = Instant::now();
    let stopped_at = stopper.join().unwrap();
    assert!(woke.duration_since(stopped_at) < PROMPT);
    // Set signals end every later wait at once, but a ready future wins.
    assert_eq!(block_on_until(&p, &stop, pending::<()>()), None);
    assert_eq!(block_on_until(&p, &stop, async { 7 }), Some(7));
    stop.stop(); // twice is harmless
    assert!(stop.is_stopped());
    sim.finish();
}

#[test]
fn a_stop_at_dispatch_level_ends_the_wait() {
    let sim = Sim::start();
    let stop = StopSignal::new();
    let waiting = stop.clone();
    let waiter =
        std::thread::spawn(move || block_on_until(&common::passive(), &waiting, pending::<()>()));
    std::thread::sleep(Duration::from_millis(10));
    // The simulator checks that KeSetEvent and the wakes are legal there.
    sim.at_irql(Irql::Dispatch, || stop.stop());
    assert_eq!(waiter.join().unwrap(), None);
    sim.finish();
}

#[test]
fn a_stop_cancels_the_request_a_thread_waits_for() {
    let connected = common::connected_with(|sim| sim.set_ignore_cancel(true));
    let p = common::passive();
    let stop = StopSignal::new();
    let remote = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        remote.stop();
    });
    let buffer = Buffer::with_capacity(64).unwrap();
    let received = block_on_until(&p, &stop, connected.socket.receive(buffer));
    assert!(
        received.is_none(),
        "nothing arrived: the receive was dropped"
    );
    stopper.join().unwrap();
    // The provider ignores cancellation: the close completes the abandoned
    // receive, whose memory the simulator's leak check then finds freed.
    connected.finish();
}

#[test]
fn tasks_awaiting_a_stop_signal_all_finish() {
    let sim = Sim::start();
    let p = common::passive();
    let executor = common::executor(&p, 2);
    let stop = StopSignal::new();
    let waiting: Vec<_> = (0..12)
        .map(|i| {
            let stop = stop.clone();
            executor
                .spawn(async move {
                    stop.stopped().await;
                    i
                })
                .unwrap()
        })
        .collect();
    // One waiter gives up before the stop: its place in the list goes.
    let impatient = {
        let stop = stop.clone();
        executor
            .spawn(async move {
                wsk::timer::timeout(Duration::from_millis(5), stop.stopped())
                    .await
                    .map_err(|e| e == Error::IO_TIMEOUT)
            })
            .unwrap()
    };
    assert_eq!(impatient.join(&p), Ok(Err(true)));
    std::thread::sleep(Duration::from_millis(10));
    stop.stop();
    for (i, task) in waiting.into_iter().enumerate() {
        assert_eq!(task.join(&p), Ok(i));
    }
    // Already set: resolves at the first poll.
    assert_eq!(block_on(&p, stop.stopped()), ());
    executor.shutdown(&p).unwrap();
    sim.finish();
}

/// A future that wakes itself every millisecond forever: with a limit per
/// wait (the old `block_on_timeout`) it would never time out.
#[test]
fn block_on_timeout_is_a_total_deadline() {
    let sim = Sim::start();
    let p = common::passive();
    let started = Instant::now();
    let busy = async {
        loop {
            sleep(Duration::from_millis(1)).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), Error>(())
    };
    let limit = Duration::from_millis(30);
    assert_eq!(block_on_timeout(&p, busy, limit), Err(Error::IO_TIMEOUT));
    let took = started.elapsed();
    assert!(took >= limit, "{took:?}");
    assert!(took < limit + PROMPT, "{took:?}");
    // A future that finishes in time is not cut off.
    let quick = async {
        sleep(Duration::from_millis(1)).await?;
        Ok::<_, Error>(3)
    };
    assert_eq!(block_on_timeout(&p, quick, Duration::from_secs(5)), Ok(3));
    sim.finish();
}

#[test]
fn a_deadline_and_a_stop_signal_are_told_apart() {
    let sim = Sim::start();
    sim.set_completion_mode(CompletionMode::Inline);
    let p = common::passive();
    // Both at once: the stop signal alone is not a deadline.
    let stop = StopSignal::new();
    let remote = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        remote.stop();
    });
    let waited = block_on_until(&p, &stop, async {
        sleep(Duration::from_secs(30)).await.unwrap();
        1
    });
    assert_eq!(waited, None);
    stopper.join().unwrap();
    // With no stop signal involved, the deadline wins.
    let timed_out = block_on_timeout(&p, pending::<Result<(), Error>>(), Duration::from_millis(5));
    assert_eq!(timed_out, Err(Error::IO_TIMEOUT));
    sim.finish();
}
