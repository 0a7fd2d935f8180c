//! What runs inside event callbacks, and what the event queues run under
//! their spin locks:
//!
//! - Wakers are the driver's code. One whose `clone` or `drop` causes an
//!   event on the same socket, on the same thread (the simulator delivers
//!   events inline, on the thread whose action caused them), must not find
//!   the queue's spin lock held by its own thread — the simulator reports
//!   that as a deadlock, or spins.
//! - Allocations made inside callbacks fail cleanly: this binary's global
//!   allocator fails the allocations a test asks it to, on the test's
//!   thread, and a `ReceiveQueue` made without memory for its ring still
//!   delivers every byte (with receive requests), and an accept callback
//!   without memory for the socket's state rejects the connection.
//! - A panic in a callback ends the process rather than unwinding into the
//!   provider.
//! - Accept callbacks overlap (`concurrent-accepts`).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::pin;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread::LocalKey;
use std::time::{Duration, Instant};

use common::passive;
use wsk::tcp::{AcceptQueue, ConnectionSocket, ReceiveQueue};
use wsk::{Buffer, block_on};

// ---------------------------------------------------------------------------
// A global allocator that fails on request

/// The system allocator, failing the next `FAIL_NEXT` allocations made on a
/// thread that asked for it.
struct Failing;

thread_local! {
    /// Allocations this thread still fails.
    static FAIL_NEXT: Cell<usize> = const { Cell::new(0) };
    /// Allocations this thread failed.
    static FAILED: Cell<usize> = const { Cell::new(0) };
}

/// Whether this allocation fails (and counts it).
fn take_failure() -> bool {
    // `try_with`: the allocator may be called while thread-locals are torn down.
    FAIL_NEXT
        .try_with(|n| {
            let left = n.get();
            if left == 0 {
                return false;
            }
            n.set(left - 1);
            let _ = FAILED.try_with(|f| f.set(f.get() + 1));
            true
        })
        .unwrap_or(false)
}

// SAFETY: forwards to `System`, or returns null (a failure `GlobalAlloc`
// allows).
unsafe impl GlobalAlloc for Failing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if take_failure() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if take_failure() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if take_failure() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Failing = Failing;

/// Runs `f` with the next allocation on this thread failing; how many
/// allocations failed (0 or 1).
fn failing_one<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = FAILED.with(Cell::get);
    FAIL_NEXT.with(|n| n.set(1));
    let out = f();
    FAIL_NEXT.with(|n| n.set(0));
    (out, FAILED.with(Cell::get) - before)
}

// ---------------------------------------------------------------------------
// A waker that runs a hook

type Hook = RefCell<Option<Box<dyn FnOnce()>>>;

thread_local! {
    /// Run (once) by the next `clone` of a hooked waker on this thread.
    static ON_CLONE: Hook = const { RefCell::new(None) };
    /// Run (once) by the next `drop` (or `wake`) of a hooked waker on this
    /// thread.
    static ON_DROP: Hook = const { RefCell::new(None) };
}

fn fire(hook: &'static LocalKey<Hook>) {
    let taken = hook
        .try_with(|h| h.try_borrow_mut().ok().and_then(|mut h| h.take()))
        .ok()
        .flatten();
    if let Some(f) = taken {
        f();
    }
}

/// Runs `body` with `f` installed in `hook`; whether `f` ran.
fn with_hook<'a, R>(
    hook: &'static LocalKey<Hook>,
    f: impl FnOnce() + 'a,
    body: impl FnOnce() -> R,
) -> (R, bool) {
    struct Clear(&'static LocalKey<Hook>);
    impl Drop for Clear {
        fn drop(&mut self) {
            let _ = self.0.try_with(|h| h.borrow_mut().take());
        }
    }
    let f: Box<dyn FnOnce() + 'a> = Box::new(f);
    // SAFETY: only the lifetime changes; `Clear` takes the hook out again
    // before this function returns (or unwinds), while `f`'s borrows live.
    let f: Box<dyn FnOnce() + 'static> = unsafe { std::mem::transmute(f) };
    hook.with(|h| *h.borrow_mut() = Some(f));
    let clear = Clear(hook);
    let out = body();
    let ran = hook.with(|h| h.borrow().is_none());
    drop(clear);
    (out, ran)
}

const VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| {
        fire(&ON_CLONE);
        RawWaker::new(data, &VTABLE)
    },
    |_| fire(&ON_DROP),
    |_| {},
    |_| fire(&ON_DROP),
);

/// A hooked waker; wakers made with different `id`s are not `will_wake`
/// each other.
fn hooked(id: usize) -> Waker {
    // SAFETY: the vtable's functions ignore the data pointer (never
    // dereferenced) and are callable from any thread.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::without_provenance(id), &VTABLE)) }
}

/// Polls `future` with `waker` until it is ready (events may also come on
/// the simulator's worker thread: polling again finds them).
fn poll_until<F: Future>(future: F, waker: &Waker) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(waker);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Reads exactly `len` bytes with `read_into`.
fn read_exactly(socket: &mut ConnectionSocket<ReceiveQueue>, len: usize) -> Vec<u8> {
    let p = passive();
    let mut got = Vec::new();
    let mut buffer = Buffer::with_capacity(64).unwrap();
    while got.len() < len {
        let (read, back) = block_on(&p, socket.read_into(buffer));
        let n = read.expect("read");
        assert_ne!(n, 0, "ended early");
        got.extend_from_slice(&back);
        buffer = back;
    }
    got
}

// ---------------------------------------------------------------------------
// Wakers outside the queues' locks

/// The first read: a receive request (data from before the events), which
/// takes the peer's first bytes; reads wait for indications from then on.
fn read_first(c: &mut common::Connected<ReceiveQueue>) {
    let (n, back) = {
        let mut read = pin!(c.socket.read_into(Buffer::with_capacity(64).unwrap()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(read.as_mut().poll(&mut cx).is_pending(), "waits for data");
        c.peer.send(b"first");
        poll_until(read, Waker::noop())
    };
    let mut got = back[..n.expect("read")].to_vec();
    drop(back);
    got.extend(read_exactly(&mut c.socket, 5 - got.len()));
    assert_eq!(got, b"first");
}

/// Ends a test whose read returned `read` into `back`: the rest of the
/// peer's `again` is read, then the test finishes.
fn read_again(mut c: common::Connected<ReceiveQueue>, read: wsk::Result<usize>, back: Buffer) {
    let n = read.expect("read");
    let mut got = back[..n].to_vec();
    drop(back); // before the simulator's leak check
    got.extend(read_exactly(&mut c.socket, 5 - n));
    assert_eq!(got, b"again");
    c.finish();
}

/// The reader's waker is cloned outside the queue's lock: its clone makes
/// the peer send, which indicates the data inline, on this thread.
#[test]
fn a_readers_waker_clone_may_cause_a_receive_event() {
    let mut c = common::connected_to(ReceiveQueue::new(), |_| {});
    // The first read is a receive request (data from before the events).
    read_first(&mut c);
    let peer = &c.peer;
    let ((read, back), cloned) = with_hook(
        &ON_CLONE,
        || peer.send(b"again"),
        || {
            poll_until(
                c.socket.read_into(Buffer::with_capacity(64).unwrap()),
                &hooked(1),
            )
        },
    );
    assert!(cloned, "the waker was cloned");
    read_again(c, read, back);
}

/// A waker the reader's next poll replaces is dropped outside the lock:
/// its drop makes the peer send.
#[test]
fn a_replaced_readers_waker_may_cause_a_receive_event() {
    let mut c = common::connected_to(ReceiveQueue::new(), |_| {});
    read_first(&mut c);
    let peer = &c.peer;
    let ((read, back), dropped) = with_hook(
        &ON_DROP,
        || peer.send(b"again"),
        || {
            let mut read = pin!(c.socket.read_into(Buffer::with_capacity(64).unwrap()));
            // The first poll stores a clone (the test's own one is
            // forgotten, so that only the stored one can fire the hook).
            let first = ManuallyDrop::new(hooked(1));
            assert!(
                read.as_mut()
                    .poll(&mut Context::from_waker(&first))
                    .is_pending()
            );
            // Another waker replaces the clone, whose drop sends.
            poll_until(read, &ManuallyDrop::new(hooked(2)))
        },
    );
    assert!(dropped, "the replaced waker was dropped");
    read_again(c, read, back);
}

/// `closed()` registers its waker outside the lock: the clone makes the
/// peer close, whose disconnect event records the end inline.
#[test]
fn a_closed_futures_waker_clone_may_cause_a_disconnect_event() {
    let c = common::connected_to(ReceiveQueue::new(), |_| {});
    let peer = &c.peer;
    let (end, cloned) = with_hook(
        &ON_CLONE,
        || peer.close(),
        || poll_until(c.socket.closed(), &hooked(1)),
    );
    assert!(cloned, "the waker was cloned");
    assert_eq!(end, Ok(()));
    c.finish();
}

/// A listening socket at `local` with accept events into an
/// [`AcceptQueue`] whose connections get `make()`'s queues.
fn listening(
    provider: &wsk::Provider,
    local: &str,
    make: impl Fn() -> ReceiveQueue + Send + Sync + 'static,
) -> wsk::tcp::ListenSocket<AcceptQueue> {
    let listen = wsk::tcp::listen(provider, local.parse().unwrap(), AcceptQueue::new(make));
    let listener = block_on(&passive(), listen).expect("listen");
    assert!(listener.events_enabled());
    listener
}

/// `accept_next` registers its waker outside the lock: the clone makes a
/// peer connect, whose accept event queues the connection inline.
#[test]
fn an_accept_waker_clone_may_cause_an_accept_event() {
    let sim = wsk_sim::Sim::start();
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let mut listener = listening(&provider, "10.0.0.1:9100", ReceiveQueue::new);
    let peer = RefCell::new(None);
    let (accepted, cloned) = with_hook(
        &ON_CLONE,
        || *peer.borrow_mut() = Some(sim.peer_connect("10.0.0.1:9100").expect("connect")),
        || poll_until(listener.accept_next(), &hooked(1)),
    );
    assert!(cloned, "the waker was cloned");
    let (socket, from) = accepted.expect("accepted");
    let peer = peer.into_inner().expect("connected");
    assert_eq!(from, peer.local_addr());
    socket.close().wait(&p).expect("close");
    listener.close().wait(&p).expect("close");
    peer.close();
    common::teardown(&p, registration, provider);
    sim.finish();
}

// ---------------------------------------------------------------------------
// Allocation failures

/// A queue made without memory for its ring refuses every indication and
/// reads with receive requests: every byte arrives, in order.
#[test]
fn a_receive_queue_without_its_ring_reads_with_requests() {
    let (queue, failed) = failing_one(ReceiveQueue::new);
    assert_eq!(failed, 1, "the ring's allocation failed");
    let mut c = common::connected_to(queue, |_| {});
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    for chunk in data.chunks(700) {
        c.peer.send(chunk);
    }
    assert_eq!(read_exactly(&mut c.socket, data.len()), data);
    c.peer.close();
    let (read, _) = block_on(
        &passive(),
        c.socket.read_into(Buffer::with_capacity(8).unwrap()),
    );
    assert_eq!(read, Ok(0), "then the end");
    c.finish();
}

/// Inside the accept callback: the queue made for the connection gets no
/// ring; the connection is accepted and read all the same.
#[test]
fn an_accept_callback_without_memory_for_the_ring_still_accepts() {
    let sim = wsk_sim::Sim::start();
    // Inline: the callback runs on this thread, where the failure is armed.
    sim.set_event_delivery(wsk_sim::EventDelivery::Inline);
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let made = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = made.clone();
    let mut listener = listening(&provider, "10.0.0.1:9101", move || {
        let (queue, failed) = failing_one(ReceiveQueue::new);
        count.fetch_add(failed, std::sync::atomic::Ordering::Relaxed);
        queue
    });
    let peer = sim.peer_connect("10.0.0.1:9101").expect("connect");
    let (mut socket, _) = block_on(&p, listener.accept_next()).expect("accepted");
    assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 1);
    peer.send(b"hello");
    assert_eq!(read_exactly(&mut socket, 5), b"hello");
    socket.close().wait(&p).expect("close");
    listener.close().wait(&p).expect("close");
    peer.close();
    common::teardown(&p, registration, provider);
    sim.finish();
}

/// A listen handler whose next accept finds no memory for the socket's
/// state; it keeps what `accept` answered.
struct Starved {
    fail_next: std::sync::atomic::AtomicBool,
    answers: std::sync::Mutex<Vec<Result<(), wsk::Error>>>,
    kept: std::sync::Mutex<Vec<ConnectionSocket<wsk::events::NoEvents>>>,
}

#[wsk::vtable]
impl wsk::events::ListenEvents for Starved {
    type Connection = wsk::events::NoEvents;

    fn on_accept(
        &self,
        _: &wsk::events::EventContext<'_>,
        incoming: Option<wsk::events::Incoming<'_, wsk::events::NoEvents>>,
    ) {
        let Some(incoming) = incoming else { return };
        let accept = || incoming.accept(wsk::events::NoEvents);
        let accepted = if self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let (accepted, failed) = failing_one(accept);
            assert_eq!(failed, 1, "the socket state's allocation failed");
            accepted
        } else {
            accept()
        };
        let mut answers = self.answers.lock().unwrap();
        match accepted {
            Ok(socket) => {
                answers.push(Ok(()));
                self.kept.lock().unwrap().push(socket);
            }
            Err(e) => answers.push(Err(e)),
        }
    }
}

/// `Incoming::accept` without memory for the socket's state: `Err`, and
/// the connection is rejected (`STATUS_REQUEST_NOT_ACCEPTED`, the peer is
/// reset) instead of a panic; the listener accepts the next connection,
/// and nothing leaks.
#[test]
fn an_accept_without_memory_for_the_socket_rejects_the_connection() {
    let sim = wsk_sim::Sim::start();
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let handler = Starved {
        fail_next: true.into(),
        answers: std::sync::Mutex::new(Vec::new()),
        kept: std::sync::Mutex::new(Vec::new()),
    };
    let listener = block_on(
        &p,
        wsk::tcp::listen(&provider, "10.0.0.1:9103".parse().unwrap(), handler),
    )
    .expect("listen");
    let (refused, peer) = refused_then_accepted(&sim, "10.0.0.1:9103");
    assert_eq!(
        *listener.handler().answers.lock().unwrap(),
        vec![Err(wsk::Error::INSUFFICIENT_RESOURCES), Ok(())]
    );
    let kept = std::mem::take(&mut *listener.handler().kept.lock().unwrap());
    assert_eq!(kept.len(), 1);
    for socket in kept {
        socket.close().wait(&p).expect("close");
    }
    listener.close().wait(&p).expect("close");
    peer.close();
    if let Some(refused) = refused {
        refused.close();
    }
    common::teardown(&p, registration, provider);
    sim.finish();
}

/// Connects to `addr` twice, where the listener's accept callback finds no
/// memory for the first connection: asserts that it was rejected (the
/// peer reset, the callback answered `STATUS_REQUEST_NOT_ACCEPTED`) and the
/// second accepted; the peers (the first if it got as far as connecting).
fn refused_then_accepted(
    sim: &wsk_sim::Sim,
    addr: &str,
) -> (Option<wsk_sim::PeerConn>, wsk_sim::PeerConn) {
    let refused = sim.peer_connect(addr).ok();
    assert!(
        refused.as_ref().is_none_or(wsk_sim::PeerConn::wait_closed),
        "the first connection was reset"
    );
    let peer = sim.peer_connect(addr).expect("the next is accepted");
    sim.settle();
    assert_eq!(
        sim.stats().statuses(wsk_sim::EventKind::Accept),
        vec![
            wsk_sys::STATUS_REQUEST_NOT_ACCEPTED,
            wsk_sys::STATUS_SUCCESS
        ]
    );
    (refused, peer)
}

/// An [`AcceptQueue`] whose accept callback finds no memory for a
/// connection's state rejects that connection; `accept_next` hands out the
/// next one.
#[test]
fn an_accept_queue_without_memory_for_a_connection_rejects_it_and_takes_the_next() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let sim = wsk_sim::Sim::start();
    // Inline: the callback runs on this thread, where the failure is armed.
    sim.set_event_delivery(wsk_sim::EventDelivery::Inline);
    let p = passive();
    let (registration, provider) = common::setup(&p);
    let starve = std::sync::Arc::new(AtomicBool::new(true));
    let first = std::sync::Arc::clone(&starve);
    let queue = AcceptQueue::new(move || {
        if first.swap(false, SeqCst) {
            // The next allocation on this thread is the socket state's.
            FAIL_NEXT.with(|n| n.set(1));
        }
        wsk::events::NoEvents
    });
    let listen = wsk::tcp::listen(&provider, "10.0.0.1:9104".parse().unwrap(), queue);
    let mut listener = block_on(&p, listen).expect("listen");
    let before = FAILED.with(Cell::get);
    let (refused, peer) = refused_then_accepted(&sim, "10.0.0.1:9104");
    assert_eq!(
        FAILED.with(Cell::get) - before,
        1,
        "the state's allocation failed"
    );
    let (socket, from) = block_on(&p, listener.accept_next()).expect("the next connection");
    assert_eq!(from, peer.local_addr());
    socket.close().wait(&p).expect("close");
    listener.close().wait(&p).expect("close");
    peer.close();
    if let Some(refused) = refused {
        refused.close();
    }
    common::teardown(&p, registration, provider);
    sim.finish();
}

// ---------------------------------------------------------------------------
// Panics in callbacks

/// A handler whose disconnect callback panics.
struct Panicking;

#[wsk::vtable]
impl wsk::events::ConnectionEvents for Panicking {
    fn on_disconnect(&self, _: &wsk::events::EventContext<'_>, _: wsk::events::DisconnectFlags) {
        panic!("the handler panicked");
    }
}

/// A panic in an event callback does not unwind into the provider: the
/// trampoline is `extern "system"`, so the process aborts (in a driver,
/// built with `panic = "abort"`, the panic handler runs first: a bug
/// check). Observed in a child process running this test.
#[test]
#[cfg_attr(miri, ignore = "spawns a process")]
fn a_panic_in_a_callback_ends_the_process_instead_of_unwinding() {
    const CHILD: &str = "WSK_TEST_PANIC_IN_CALLBACK";
    if std::env::var_os(CHILD).is_some() {
        let c = common::connected_to(Panicking, |s| {
            s.set_event_delivery(wsk_sim::EventDelivery::Inline);
        });
        c.peer.close(); // the disconnect event runs on this thread
        c.sim.check();
        eprintln!("survived the panic");
        c.finish();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_panic_in_a_callback_ends_the_process_instead_of_unwinding",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("the handler panicked"), "{stderr}");
    assert!(
        stderr.contains("panic in a function that cannot unwind"),
        "{stderr}"
    );
    assert!(!stderr.contains("survived the panic"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(6), "SIGABRT: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// Overlapping accept callbacks

/// A listen handler that records how many of its accept callbacks ran at
/// once; each waits (briefly: a test) until two have begun.
struct Overlap {
    begun: std::sync::atomic::AtomicUsize,
    inside: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    kept: wsk::irql::SpinLock<Vec<ConnectionSocket<wsk::events::NoEvents>>>,
}

#[wsk::vtable]
impl wsk::events::ListenEvents for Overlap {
    type Connection = wsk::events::NoEvents;

    fn on_accept(
        &self,
        cx: &wsk::events::EventContext<'_>,
        incoming: Option<wsk::events::Incoming<'_, wsk::events::NoEvents>>,
    ) {
        use std::sync::atomic::Ordering::SeqCst;
        let Some(incoming) = incoming else { return };
        let inside = self.inside.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(inside, SeqCst);
        self.begun.fetch_add(1, SeqCst);
        let until = Instant::now() + Duration::from_secs(2);
        while self.begun.load(SeqCst) < 2 && Instant::now() < until {
            std::hint::spin_loop();
        }
        let socket = incoming
            .accept(wsk::events::NoEvents)
            .expect("memory for the socket");
        // (The Vec has room: no allocation here.)
        self.kept.with_in_callback(cx, |kept, _| kept.push(socket));
        self.inside.fetch_sub(1, SeqCst);
    }
}

/// `concurrent-accepts`: two connections waiting to be offered are offered
/// at once, on two threads (only the receive event is documented as
/// serial); both are accepted.
#[test]
fn two_waiting_connections_are_offered_at_once() {
    let sim = wsk_sim::Sim::start();
    sim.set_adversary(Some(
        wsk_sim::Adversary::none(wsk_sim::DEFAULT_SEED).with(wsk_sim::Behaviour::ConcurrentAccepts),
    ));
    let mut p = passive();
    let (registration, provider) = common::setup(&p);
    let handler = Overlap {
        begun: 0.into(),
        inside: 0.into(),
        most: 0.into(),
        kept: wsk::irql::SpinLock::new(Vec::with_capacity(4)),
    };
    let listener = block_on(
        &p,
        wsk::tcp::listen(&provider, "10.0.0.1:9102".parse().unwrap(), handler),
    )
    .expect("listen");
    // Both connections wait for the worker, which this thread runs.
    sim.set_event_delivery(wsk_sim::EventDelivery::Worker);
    sim.set_completion_mode(wsk_sim::CompletionMode::Manual);
    let peers: Vec<_> = (0..2)
        .map(|_| sim.peer_connect_start("10.0.0.1:9102").expect("connect"))
        .collect();
    let _ = sim.run_pending();
    for peer in &peers {
        peer.established().expect("accepted");
    }
    let overlap = &listener.handler().most;
    assert_eq!(overlap.load(std::sync::atomic::Ordering::SeqCst), 2);
    let kept: Vec<_> = listener
        .handler()
        .kept
        .with(&mut p, |kept, _| std::mem::take(kept));
    assert_eq!(kept.len(), 2);
    for socket in kept {
        socket.close().wait(&p).expect("close");
    }
    listener.close().wait(&p).expect("close");
    for peer in peers {
        peer.close();
    }
    common::teardown(&p, registration, provider);
    sim.finish();
}
