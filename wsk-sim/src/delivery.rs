//! Event delivery: what a socket's next callback is, at which IRQL and with
//! which flags, the indication chains it carries, and what the client's
//! answer does.
//!
//! One thread at a time delivers a socket's events ("WSK calls this callback
//! serially",
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>),
//! except that under [`Behaviour::ConcurrentAccepts`] a second waiting
//! accept runs on another thread at the same time: no page says the accept
//! callback is serial.

use wsk_sys::{
    NTSTATUS, PVOID, PWSK_SOCKET, STATUS_DATA_NOT_ACCEPTED, STATUS_PENDING,
    STATUS_REQUEST_NOT_ACCEPTED, STATUS_SUCCESS, WSK_CLIENT_CONNECTION_DISPATCH,
    WSK_CLIENT_DATAGRAM_DISPATCH, WSK_CLIENT_LISTEN_DISPATCH, WSK_EVENT_ACCEPT,
    WSK_EVENT_DISCONNECT, WSK_EVENT_RECEIVE, WSK_EVENT_RECEIVE_FROM, WSK_EVENT_SEND_BACKLOG,
    WSK_FLAG_ABORTIVE, WSK_FLAG_AT_DISPATCH_LEVEL, WSK_FLAG_ENTIRE_MESSAGE, WSK_FLAG_RELEASE_ASAP,
};

use crate::adversary::Behaviour;
use crate::indication::{self, BufShape};
use crate::io;
use crate::net::{
    self, ConnState, Datagram, Ev, Kind, Out, State, accept_into, conn_reset, conn_table,
    destroy_socket, dgram_table, establish, listen_table, progress_dgram_socket, refuse,
};
use crate::script::{EventKind, EventRecord, Irql};
use crate::verifier::{CallbackKind, InCallback, IrqlGuard, Rule};
use crate::world::{self, World};

/// What the delivery loop does next.
enum Step {
    Queued(Ev),
    /// Stream data, and the shape of each `WSK_DATA_INDICATION` of the chain.
    Receive(Vec<u8>, Vec<BufShape>),
    /// Datagrams, each with the shape of its `WSK_BUF`.
    ReceiveFrom(Vec<Datagram>, Vec<BufShape>),
}

impl Step {
    /// The `WSK_EVENT_*` bit of the callback this step calls (0 for the
    /// inspect and abort events, which cannot be disabled).
    fn event_bit(&self, kind: Kind) -> u32 {
        match self {
            Step::Receive(..) => WSK_EVENT_RECEIVE,
            Step::ReceiveFrom(..) => WSK_EVENT_RECEIVE_FROM,
            Step::Queued(Ev::Disconnect { .. }) => WSK_EVENT_DISCONNECT,
            Step::Queued(Ev::SendBacklog(_)) => WSK_EVENT_SEND_BACKLOG,
            Step::Queued(Ev::Accept(_)) => WSK_EVENT_ACCEPT,
            Step::Queued(Ev::Inspect(_) | Ev::Abort(_)) => 0,
            Step::Queued(Ev::CloseRequired) => match kind {
                Kind::Datagram => WSK_EVENT_RECEIVE_FROM,
                Kind::Listen => WSK_EVENT_ACCEPT,
                _ => WSK_EVENT_RECEIVE,
            },
        }
    }
}

/// The IRQL a callback runs at and the flags it is told.
#[derive(Clone, Copy, Debug)]
struct Delivery {
    irql: Irql,
    /// `WSK_FLAG_AT_DISPATCH_LEVEL` or 0.
    at_dispatch: u32,
    /// Further `WskReceiveEvent` flags (`WSK_FLAG_RELEASE_ASAP`,
    /// `WSK_FLAG_ENTIRE_MESSAGE`).
    receive_flags: u32,
}

impl Delivery {
    /// The `Flags` argument of every callback that has one.
    fn flags(self) -> u32 {
        self.at_dispatch
    }
}

/// Draws a callback's IRQL and flags (unless the test set the IRQL with
/// [`Sim::set_event_irql`](crate::Sim::set_event_irql)).
///
/// [`Behaviour::IrqlMix`]: `PASSIVE_LEVEL`, `APC_LEVEL` or `DISPATCH_LEVEL`,
/// and at `DISPATCH_LEVEL` the flag only two times in three: a clear flag
/// allows any IRQL up to `DISPATCH_LEVEL`
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event>).
fn delivery(w: &mut World) -> Delivery {
    let mix = w.adversary(Behaviour::IrqlMix) && !w.pinned.2;
    let irql = if mix {
        Irql::any(&mut w.adv_rng)
    } else if w.cfg.seed.is_some() {
        if w.rng.below(2) == 0 {
            Irql::Passive
        } else {
            Irql::Dispatch
        }
    } else {
        w.cfg.event_irql
    };
    let flagged = irql == Irql::Dispatch && !(mix && w.adv_rng.below(3) == 0);
    let receive_flags = if w.adversary(Behaviour::IndicationFlags) {
        let r = w.adv_rng.below(4);
        (if r & 1 != 0 { WSK_FLAG_RELEASE_ASAP } else { 0 })
            | (if r & 2 != 0 {
                WSK_FLAG_ENTIRE_MESSAGE
            } else {
                0
            })
    } else {
        0
    };
    Delivery {
        irql,
        at_dispatch: if flagged {
            WSK_FLAG_AT_DISPATCH_LEVEL
        } else {
            0
        },
        receive_flags,
    }
}

/// Whether receive indications can be made now: the callback is enabled,
/// nothing blocks it, and no receive request waits (unless the adversary
/// races one, A-4).
fn can_indicate_receive(w: &World, s: &net::Socket) -> bool {
    s.state == State::Open
        && s.events & WSK_EVENT_RECEIVE != 0
        && !s.blocked
        && (s.recv_irps.is_empty() || s.race)
        && conn_table(s).is_some_and(|t| t.WskReceiveEvent.is_some())
        && s.conn.is_some_and(|(c, e)| {
            w.net
                .conns
                .get(&c)
                .is_some_and(|c| !c.ends[e].rx.is_empty())
        })
}

/// The shapes of the `WSK_BUF`s for `lens`, drawn from the socket's stream.
fn shapes(w: &mut World, sid: u64, lens: &[usize]) -> Vec<BufShape> {
    let chains = w.adversary(Behaviour::MdlChains);
    let unmapped = w.adversary(Behaviour::UnmappedIndications);
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return Vec::new();
    };
    lens.iter()
        .map(|&n| {
            if chains || unmapped {
                BufShape::hostile(&mut s.rng, n, chains, unmapped)
            } else {
                BufShape::plain(n)
            }
        })
        .collect()
}

fn next_step(w: &mut World, sid: u64) -> Option<Step> {
    let s = w.net.sockets.get(&sid)?;
    if s.state != State::Open {
        // Listen sockets still deliver nothing once closed; unaccepted
        // sockets wait for their accept.
        return None;
    }
    let split = w.adversary(Behaviour::SplitIndications);
    // Non-disconnect events first, in order.
    let first_non_disc = s
        .ev_queue
        .iter()
        .position(|e| !matches!(e, Ev::Disconnect { .. }));
    if can_indicate_receive(w, s) {
        // Data before a queued disconnect; other queued events first.
        if let Some(i) = first_non_disc {
            let s = w.net.sockets.get_mut(&sid)?;
            return s.ev_queue.remove(i).map(Step::Queued);
        }
        let (c, e) = s.conn?;
        let chunk = match w.net.indication_chunk {
            0 => 1460,
            n => n,
        };
        let net::Net { sockets, conns, .. } = &mut w.net;
        let s = sockets.get_mut(&sid)?;
        let rx = &mut conns.get_mut(&c)?.ends[e].rx;
        // Up to 64 KiB per indication; the adversary often indicates only a
        // prefix, sometimes all of it however large, and cuts it anywhere.
        let avail = if split && s.rng.below(4) == 0 {
            rx.len()
        } else {
            rx.len().min(65536)
        };
        let n = if split && s.rng.below(2) == 0 {
            1 + indication::below(&mut s.rng, avail)
        } else {
            avail
        };
        let lens: Vec<usize> = if split {
            indication::cut(&mut s.rng, n, 6)
        } else {
            (0..n).step_by(chunk).map(|at| chunk.min(n - at)).collect()
        };
        let data: Vec<u8> = rx.drain(..n).collect();
        s.indicating = true;
        s.race = false;
        let shapes = shapes(w, sid, &lens);
        return Some(Step::Receive(data, shapes));
    }
    if s.kind == Kind::Datagram
        && s.events & WSK_EVENT_RECEIVE_FROM != 0
        && !s.blocked
        && (s.recv_from_irps.is_empty() || s.race)
        && !s.dgrams.is_empty()
        && dgram_table(s).is_some_and(|t| t.WskReceiveFromEvent.is_some())
    {
        let s = w.net.sockets.get_mut(&sid)?;
        let n = if split {
            1 + indication::below(&mut s.rng, s.dgrams.len())
        } else {
            s.dgrams.len()
        };
        let taken: Vec<Datagram> = s.dgrams.drain(..n).collect();
        s.indicating = true;
        s.race = false;
        let lens: Vec<usize> = taken.iter().map(|d| d.data.len()).collect();
        let shapes = shapes(w, sid, &lens);
        return Some(Step::ReceiveFrom(taken, shapes));
    }
    let s = w.net.sockets.get_mut(&sid)?;
    let ev = s.ev_queue.pop_front()?;
    Some(Step::Queued(ev))
}

/// Delivers every pending event of a socket, one callback at a time.
pub(crate) fn deliver_events(sid: u64) {
    loop {
        let mut w = world::lock();
        let Some(s) = w.net.sockets.get_mut(&sid) else {
            return;
        };
        match s.delivering {
            // Re-entered from one of our own callbacks: the outer loop
            // delivers what this call queued.
            Some(t) if t == std::thread::current().id() => return,
            // Another thread is delivering. A test-side action waits for it,
            // so that an inline delivery has happened when the action
            // returns; client callbacks and the worker never wait (that
            // could deadlock), the other thread delivers for them.
            Some(_) => {
                if crate::verifier::current_callback().is_some() || world::is_worker_thread() {
                    return;
                }
                w.wait(Some(std::time::Duration::from_millis(20)));
                continue;
            }
            None => {}
        }
        let Some(step) = next_step(&mut w, sid) else {
            return;
        };
        let d = delivery(&mut w);
        let second = second_accept(&mut w, sid, &step);
        let Some(s) = w.net.sockets.get_mut(&sid) else {
            return;
        };
        s.delivering = Some(std::thread::current().id());
        s.callbacks_in_progress += 1;
        s.running_event = step.event_bit(s.listen_kind());
        let snapshot = CallbackTarget {
            context: s.context,
            conn: conn_table(s),
            listen: listen_table(s),
            dgram: dgram_table(s),
        };
        drop(w);
        // The second accept runs on its own thread, at the same time; when
        // it leads, this thread's callback starts only once it has begun, so
        // the later connection's callback is often the first to act.
        let concurrent = second.map(|(child, d, leads)| {
            let snapshot = snapshot.clone();
            let (entered, begun) = std::sync::mpsc::sync_channel(1);
            let thread = std::thread::spawn(move || {
                let mut out = Out::default();
                {
                    let _no_unwind = crate::verifier::NoUnwind::enter();
                    deliver_accept(child, d, &snapshot, &mut out, || {
                        let _ = entered.try_send(());
                    });
                }
                out
            });
            if leads {
                // Err once the thread ended without calling back: no wait.
                let _ = begun.recv();
            }
            thread
        });
        let mut out = Out::default();
        {
            // Violations found while delivering are recorded and raised by
            // the caller once the socket's delivery state is consistent.
            let _no_unwind = crate::verifier::NoUnwind::enter();
            run_step(sid, step, d, &snapshot, &mut out);
        }
        if let Some(thread) = concurrent {
            // Its actions run with this thread's, once both callbacks
            // returned (it counted as a callback in progress until then).
            let theirs = thread.join().unwrap_or_default();
            out.done.extend(theirs.done);
            out.deliver.extend(theirs.deliver);
            out.deliver_later.extend(theirs.deliver_later);
            if let Some(s) = world::lock().net.sockets.get_mut(&sid) {
                s.callbacks_in_progress -= 1;
            }
        }
        let mut w = world::lock();
        let mut close_done = None;
        if let Some(s) = w.net.sockets.get_mut(&sid) {
            s.delivering = None;
            s.callbacks_in_progress -= 1;
            s.running_event = 0;
            crate::world::CHANGED.notify_all();
            if s.callbacks_in_progress == 0 && s.state == State::Closed {
                close_done = s.close_irp.take();
            }
        }
        net::finish_deferred_disables(&mut w, sid, &mut out);
        if let Some(irp) = close_done {
            io::finish_pending(&mut w, irp, STATUS_SUCCESS, 0, &mut out.done);
        }
        drop(w);
        net::flush(out);
    }
}

/// [`Behaviour::ConcurrentAccepts`]: when `step` offers a connection and
/// the next queued event of the listening socket offers another, takes that
/// one too (counted as a callback in progress), to be offered at the same
/// time on another thread, with its own IRQL and flags, and whether it
/// leads (one time in two: its callback begins first).
fn second_accept(w: &mut World, sid: u64, step: &Step) -> Option<(u64, Delivery, bool)> {
    if !matches!(step, Step::Queued(Ev::Accept(_))) || !w.adversary(Behaviour::ConcurrentAccepts) {
        return None;
    }
    let s = w.net.sockets.get_mut(&sid)?;
    let Some(Ev::Accept(child)) = s.ev_queue.front() else {
        return None;
    };
    let child = *child;
    s.ev_queue.pop_front();
    s.callbacks_in_progress += 1;
    let leads = w.adv_rng.below(2) == 0;
    Some((child, delivery(w), leads))
}

/// What a callback needs from its socket.
#[derive(Clone)]
struct CallbackTarget {
    context: usize,
    conn: Option<WSK_CLIENT_CONNECTION_DISPATCH>,
    listen: Option<WSK_CLIENT_LISTEN_DISPATCH>,
    dgram: Option<WSK_CLIENT_DATAGRAM_DISPATCH>,
}

/// Records a callback in [`Stats::events`](crate::Stats::events).
fn record(kind: EventKind, flags: u32, d: Delivery, status: NTSTATUS, counts: (usize, usize)) {
    record_full(kind, flags, d, status, counts, false);
}

fn record_full(
    kind: EventKind,
    flags: u32,
    d: Delivery,
    status: NTSTATUS,
    (indicated, accepted): (usize, usize),
    null: bool,
) {
    let mut w = world::lock();
    w.stats.events.push(EventRecord {
        kind,
        flags,
        at_dispatch: d.irql == Irql::Dispatch,
        irql: d.irql,
        status,
        indicated,
        accepted,
        null_indication: null,
    });
    w.notify();
}

fn callback_violation(args: core::fmt::Arguments<'_>) {
    crate::verifier::report(Rule::CallbackStatus, args);
}

/// Runs `f` as the client callback `name` at the delivery's IRQL.
fn in_callback<R>(name: &'static str, d: Delivery, f: impl FnOnce() -> R) -> R {
    let _cb = InCallback::enter(CallbackKind::Event(name));
    let _i = IrqlGuard::raise_to(d.irql.level());
    f()
}

fn run_step(sid: u64, step: Step, d: Delivery, t: &CallbackTarget, out: &mut Out) {
    let ctx = t.context as PVOID;
    match step {
        Step::Receive(data, shapes) => {
            deliver_receive(sid, &data, &shapes, d, t, out);
            net::end_indication(&mut world::lock(), sid, out);
        }
        Step::ReceiveFrom(dgrams, shapes) => {
            deliver_receive_from(sid, dgrams, &shapes, d, t, out);
            net::end_indication(&mut world::lock(), sid, out);
        }
        Step::Queued(Ev::Disconnect { abortive }) => {
            let Some(f) = t.conn.and_then(|c| c.WskDisconnectEvent) else {
                return;
            };
            let flags = d.flags() | if abortive { WSK_FLAG_ABORTIVE } else { 0 };
            // SAFETY: the client installed this callback for the socket.
            let st = in_callback("WskDisconnectEvent", d, || unsafe { f(ctx, flags) });
            record(EventKind::Disconnect, flags, d, st, (0, 0));
            if st != STATUS_SUCCESS {
                callback_violation(format_args!(
                    "WskDisconnectEvent returned {st:#x}; STATUS_SUCCESS is the only allowed value"
                ));
            }
        }
        Step::Queued(Ev::SendBacklog(n)) => {
            let Some(f) = t.conn.and_then(|c| c.WskSendBacklogEvent) else {
                return;
            };
            // SAFETY: the client installed this callback for the socket.
            let st = in_callback("WskSendBacklogEvent", d, || unsafe { f(ctx, n) });
            record(EventKind::SendBacklog, 0, d, st, (n, 0));
            if st != STATUS_SUCCESS {
                callback_violation(format_args!(
                    "WskSendBacklogEvent returned {st:#x}; STATUS_SUCCESS is the only allowed value"
                ));
            }
        }
        Step::Queued(Ev::Accept(child)) => deliver_accept(child, d, t, out, || ()),
        Step::Queued(Ev::Inspect(conn)) => deliver_inspect(sid, conn, d, t, out),
        Step::Queued(Ev::Abort(id)) => {
            let Some(f) = t.listen.and_then(|l| l.WskAbortEvent) else {
                // Conditional accept with a NULL WskAbortEvent (INS-6, M-08).
                crate::verifier::report(
                    Rule::Parameter,
                    format_args!(
                        "WskAbortEvent is NULL on listening socket #{sid} in conditional accept mode"
                    ),
                );
                return;
            };
            let mut id = id;
            // SAFETY: the client installed this callback; `id` lives for the
            // call.
            let st = in_callback("WskAbortEvent", d, || unsafe { f(ctx, &raw mut id) });
            record(EventKind::Abort, 0, d, st, (0, 0));
            if st != STATUS_SUCCESS {
                callback_violation(format_args!(
                    "WskAbortEvent returned {st:#x}; STATUS_SUCCESS is the only allowed value"
                ));
            }
        }
        Step::Queued(Ev::CloseRequired) => deliver_close_required(sid, d, t),
    }
}

/// Counts what the client is handed (for [`Stats`](crate::Stats)).
fn count_shapes(shapes: &[BufShape]) {
    let mut w = world::lock();
    for s in shapes {
        w.stats.indication_elements += 1;
        w.stats.indication_mdls += s.pieces.len() as u64;
        w.stats.indication_offsets += u64::from(s.offset != 0);
        w.stats.indication_unmapped_mdls += s.mapped.iter().filter(|m| !**m).count() as u64;
    }
}

fn deliver_receive(
    sid: u64,
    data: &[u8],
    shapes: &[BufShape],
    d: Delivery,
    t: &CallbackTarget,
    out: &mut Out,
) {
    let Some(f) = t.conn.and_then(|c| c.WskReceiveEvent) else {
        net::put_back(sid, data, true, out);
        return;
    };
    let mut at = 0;
    let pieces = shapes.iter().map(|shape| {
        let len: usize = shape.pieces.iter().sum();
        at += len;
        (&data[at - len..at], shape)
    });
    let (head, elems) = indication::build_chain::<wsk_sys::WSK_DATA_INDICATION>(pieces, |_, _| 0);
    count_shapes(shapes);
    let total = data.len();
    let flags = d.flags() | d.receive_flags;
    let mut accepted: usize = total;
    // Recorded as retained before the call: a `WskRelease` made on another
    // processor once the callback has returned `STATUS_PENDING` may reach
    // us before we have seen that status, and the simulator cannot tell it
    // from one made earlier. A callback that does not answer
    // `STATUS_PENDING` must not have released the list (checked below).
    retain_elements(sid, &elems);
    // SAFETY: the client installed this callback; the chain and `accepted`
    // live for the call.
    let st = in_callback("WskReceiveEvent", d, || unsafe {
        f(t.context as PVOID, flags, head, total, &raw mut accepted)
    });
    if !end_callback(sid, &elems, st == STATUS_PENDING) {
        callback_violation(format_args!(
            "WskRelease of an indication during its WskReceiveEvent, which then returned \
             {st:#x}, not STATUS_PENDING: the list was not retained"
        ));
        return;
    }
    let valid = matches!(
        st,
        STATUS_SUCCESS | STATUS_PENDING | STATUS_DATA_NOT_ACCEPTED
    );
    let took = if st == STATUS_SUCCESS {
        accepted.min(total)
    } else {
        0
    };
    record(EventKind::Receive, flags, d, st, (total, took));
    if !valid {
        callback_violation(format_args!(
            "WskReceiveEvent returned {st:#x}; allowed: STATUS_SUCCESS, STATUS_PENDING, \
             STATUS_DATA_NOT_ACCEPTED"
        ));
    }
    match st {
        STATUS_SUCCESS => {
            if accepted > total {
                callback_violation(format_args!(
                    "WskReceiveEvent accepted {accepted} bytes of {total} indicated \
                     (BytesAccepted > BytesIndicated)"
                ));
                accepted = total;
            }
            indication::free_elements(&elems);
            if accepted < total {
                // No further receive event until the client calls
                // WskReceive (the STATUS_SUCCESS row of the page).
                net::put_back(sid, &data[accepted..], true, out);
            }
        }
        // Recorded before the call.
        STATUS_PENDING => {}
        _ => {
            // STATUS_DATA_NOT_ACCEPTED (or a forbidden status): the data
            // stays buffered and indications stop until a WskReceive.
            indication::free_elements(&elems);
            net::put_back(sid, data, true, out);
        }
    }
}

/// Records the elements of an indication as retained by the client.
fn retain_elements(sid: u64, elems: &[(usize, usize)]) {
    let mut w = world::lock();
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        for &(p, size) in elems {
            s.retained.insert(p, (size, false));
        }
        s.in_callback = elems.len();
    }
}

/// The callback returned: its elements are retained if `kept`, else taken
/// back (in the same lock hold, so that a close never sees them counted);
/// false if the client released any of them without keeping them (then
/// `WskRelease` freed those, and the rest stay recorded as leaks).
fn end_callback(sid: u64, elems: &[(usize, usize)], kept: bool) -> bool {
    let mut w = world::lock();
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return true;
    };
    s.in_callback = 0;
    if kept {
        return true;
    }
    if elems.iter().any(|(p, _)| !s.retained.contains_key(p)) {
        return false;
    }
    for (p, _) in elems {
        s.retained.remove(p);
    }
    true
}

fn deliver_receive_from(
    sid: u64,
    dgrams: Vec<Datagram>,
    shapes: &[BufShape],
    d: Delivery,
    t: &CallbackTarget,
    out: &mut Out,
) {
    let Some(f) = t.dgram.and_then(|d| d.WskReceiveFromEvent) else {
        return;
    };
    let controls: Vec<Option<Vec<u8>>> = {
        let w = world::lock();
        dgrams
            .iter()
            .map(|dg| net::control_info(&w, sid, dg))
            .collect()
    };
    let pieces = dgrams.iter().map(|dg| dg.data.as_slice()).zip(shapes);
    let (head, elems) =
        indication::build_chain::<wsk_sys::WSK_DATAGRAM_INDICATION>(pieces, |i, extra| {
            let sa = crate::addr::to_bytes(dgrams[i].from);
            // SAFETY: `extra` has `Link::EXTRA` bytes inside the element:
            // room for any socket address, then for the control
            // information at `CONTROL_AT`.
            unsafe { core::ptr::copy_nonoverlapping(sa.as_ptr(), extra, sa.len()) };
            let control = controls[i].as_deref().unwrap_or_default();
            let n = control.len().min(64);
            // SAFETY: as above.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    control.as_ptr(),
                    extra.wrapping_add(indication::CONTROL_AT),
                    n,
                );
            }
            n
        });
    count_shapes(shapes);
    let flags = d.flags();
    // SAFETY: the client installed this callback; the chain lives for the
    // call.
    let st = in_callback("WskReceiveFromEvent", d, || unsafe {
        f(t.context as PVOID, flags, head)
    });
    record(EventKind::ReceiveFrom, flags, d, st, (dgrams.len(), 0));
    match st {
        STATUS_SUCCESS => indication::free_elements(&elems),
        STATUS_PENDING => {
            let mut w = world::lock();
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                for &(p, size) in &elems {
                    s.retained.insert(p, (size, true));
                }
            }
        }
        other => {
            if other != STATUS_DATA_NOT_ACCEPTED {
                callback_violation(format_args!(
                    "WskReceiveFromEvent returned {other:#x}; allowed: STATUS_SUCCESS, \
                     STATUS_PENDING, STATUS_DATA_NOT_ACCEPTED"
                ));
            }
            indication::free_elements(&elems);
            let mut w = world::lock();
            net::refused_datagrams(&mut w, sid, dgrams);
            progress_dgram_socket(&mut w, sid, out);
        }
    }
}

/// Offers `child` to the listening socket's `WskAcceptEvent`; `entering`
/// runs just before the callback (not at all without one).
fn deliver_accept(
    child: u64,
    d: Delivery,
    t: &CallbackTarget,
    out: &mut Out,
    entering: impl FnOnce(),
) {
    let Some(f) = t.listen.and_then(|l| l.WskAcceptEvent) else {
        return;
    };
    let (obj, local, remote) = {
        let mut w = world::lock();
        let Some(c) = w.net.sockets.get_mut(&child) else {
            return;
        };
        if c.state != State::Unaccepted {
            return;
        }
        c.offered = true;
        (c.obj, c.local, c.remote)
    };
    let unspecified = || std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let mut local_b = crate::addr::to_bytes(local.unwrap_or_else(unspecified));
    let mut remote_b = crate::addr::to_bytes(remote.unwrap_or_else(unspecified));
    local_b.resize(128, 0);
    remote_b.resize(128, 0);
    let mut ctx_out: PVOID = core::ptr::null_mut();
    let mut disp_out: *const WSK_CLIENT_CONNECTION_DISPATCH = core::ptr::null();
    let flags = d.flags();
    entering();
    // SAFETY: the client installed this callback; every pointer argument
    // lives for the call.
    let st = in_callback("WskAcceptEvent", d, || unsafe {
        f(
            t.context as PVOID,
            flags,
            local_b.as_mut_ptr().cast(),
            remote_b.as_mut_ptr().cast(),
            obj as PWSK_SOCKET,
            &raw mut ctx_out,
            &raw mut disp_out,
        )
    });
    record(EventKind::Accept, flags, d, st, (0, 0));
    poison(&mut [&mut local_b, &mut remote_b]);
    let mut w = world::lock();
    if st == STATUS_SUCCESS {
        crate::provider::check_context(&mut w, "WskAcceptEvent", ctx_out, disp_out.cast(), false);
    }
    match st {
        STATUS_SUCCESS => {
            // Connection events enabled on the listener are inherited here
            // (and only here).
            accept_into(&mut w, child, ctx_out as usize, disp_out as usize, true);
            out.deliver(child);
        }
        other => {
            if other != STATUS_REQUEST_NOT_ACCEPTED {
                drop(w);
                callback_violation(format_args!(
                    "WskAcceptEvent returned {other:#x}; allowed: STATUS_SUCCESS, \
                     STATUS_REQUEST_NOT_ACCEPTED"
                ));
                w = world::lock();
            }
            // The provider closes the rejected socket: reset the connector.
            let conn = w.net.sockets.get(&child).and_then(|c| c.conn);
            destroy_socket(&mut w, child);
            if let Some((c, e)) = conn {
                conn_reset(&mut w, c, e, out);
            }
        }
    }
}

fn deliver_inspect(l: u64, conn: u64, d: Delivery, t: &CallbackTarget, out: &mut Out) {
    let Some(f) = t.listen.and_then(|d| d.WskInspectEvent) else {
        // Conditional accept with a NULL WskInspectEvent (INS-6, M-08): the
        // request would wait forever.
        crate::verifier::report(
            Rule::Parameter,
            format_args!(
                "WskInspectEvent is NULL on listening socket #{l} in conditional accept mode"
            ),
        );
        refuse(
            &mut world::lock(),
            conn,
            wsk_sys::STATUS_CONNECTION_REFUSED,
            out,
        );
        return;
    };
    let (id, local, remote) = {
        let w = world::lock();
        let Some(c) = w.net.conns.get(&conn) else {
            return;
        };
        if c.state != ConnState::Inspecting {
            return;
        }
        let Some(id) = c.inspect_id else {
            return;
        };
        let family = w.net.sockets.get(&l).map_or(0, |s| s.family);
        (
            id,
            net::as_seen_by(family, c.ends[1].addr),
            net::as_seen_by(family, c.ends[0].addr),
        )
    };
    let mut local_b = crate::addr::to_bytes(local);
    let mut remote_b = crate::addr::to_bytes(remote);
    local_b.resize(128, 0);
    remote_b.resize(128, 0);
    let mut id_copy = id;
    // SAFETY: the client installed this callback; the arguments live for the
    // call.
    let action = in_callback("WskInspectEvent", d, || unsafe {
        f(
            t.context as PVOID,
            local_b.as_mut_ptr().cast(),
            remote_b.as_mut_ptr().cast(),
            &raw mut id_copy,
        )
    });
    record(EventKind::Inspect, 0, d, action, (0, 0));
    poison(&mut [&mut local_b, &mut remote_b]);
    let mut w = world::lock();
    match action {
        wsk_sys::WskInspectAccept if w.rare_event(crate::Behaviour::AbortAfterInspect) => {
            // The peer gives up before the connection is established: the
            // request is dropped and the abort event follows (A-9, ABT-1).
            refuse(&mut w, conn, wsk_sys::STATUS_CONNECTION_RESET, out);
            if let Some(ls) = w.net.sockets.get_mut(&l) {
                ls.ev_queue.push_back(Ev::Abort(id));
            }
            out.deliver(l);
        }
        wsk_sys::WskInspectAccept => establish(&mut w, conn, out),
        wsk_sys::WskInspectReject => refuse(&mut w, conn, wsk_sys::STATUS_CONNECTION_REFUSED, out),
        wsk_sys::WskInspectPend => {
            if let Some(ls) = w.net.sockets.get_mut(&l) {
                ls.inspecting.insert((id.Key, id.SerialNumber), conn);
            }
        }
        other => {
            crate::world::wviolation!(
                w,
                Rule::CallbackStatus,
                "WskInspectEvent returned WSK_INSPECT_ACTION {other}; allowed: WskInspectReject, \
                 WskInspectAccept, WskInspectPend"
            );
            refuse(&mut w, conn, wsk_sys::STATUS_CONNECTION_REFUSED, out);
        }
    }
}

/// Overwrites the `SOCKADDR`s an accept or inspect callback was given: they
/// are valid only for the call
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event>,
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event>),
/// so a client that kept a pointer reads garbage (and Miri reports the read
/// once the buffer is freed).
fn poison(addrs: &mut [&mut Vec<u8>]) {
    for a in addrs {
        a.fill(0xDD);
    }
}

/// Tells the client a socket is no longer functional: a NULL `InspectID`
/// (conditional listeners), a NULL `AcceptSocket` (other listeners), a
/// NULL datagram or data indication.
fn deliver_close_required(sid: u64, d: Delivery, t: &CallbackTarget) {
    let ctx = t.context as PVOID;
    let (kind, inspects) = world::lock()
        .net
        .sockets
        .get(&sid)
        .map_or((None, false), |s| (Some(s.listen_kind()), net::inspects(s)));
    let flags = d.flags();
    let null = true;
    match kind {
        Some(Kind::Listen) => {
            if let Some(f) = t
                .listen
                .and_then(|l| l.WskInspectEvent)
                .filter(|_| inspects)
            {
                let mut zero = [0u8; 128];
                let mut zero2 = [0u8; 128];
                // SAFETY: the client installed this callback; a NULL
                // InspectID means "close the listening socket"
                // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event).
                let action = in_callback("WskInspectEvent", d, || unsafe {
                    f(
                        ctx,
                        zero.as_mut_ptr().cast(),
                        zero2.as_mut_ptr().cast(),
                        core::ptr::null_mut(),
                    )
                });
                record_full(EventKind::Inspect, 0, d, action, (0, 0), null);
                return;
            }
            let Some(f) = t.listen.and_then(|l| l.WskAcceptEvent) else {
                return;
            };
            let mut c: PVOID = core::ptr::null_mut();
            let mut dp: *const WSK_CLIENT_CONNECTION_DISPATCH = core::ptr::null();
            let mut zero = [0u8; 128];
            let mut zero2 = [0u8; 128];
            // SAFETY: the client installed this callback; a NULL
            // AcceptSocket means "close the listening socket"
            // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event).
            let st = in_callback("WskAcceptEvent", d, || unsafe {
                f(
                    ctx,
                    flags,
                    zero.as_mut_ptr().cast(),
                    zero2.as_mut_ptr().cast(),
                    core::ptr::null_mut(),
                    &raw mut c,
                    &raw mut dp,
                )
            });
            record_full(EventKind::Accept, flags, d, st, (0, 0), null);
        }
        Some(Kind::Datagram) => {
            let Some(f) = t.dgram.and_then(|d| d.WskReceiveFromEvent) else {
                return;
            };
            // SAFETY: the client installed this callback.
            let st = in_callback("WskReceiveFromEvent", d, || unsafe {
                f(ctx, flags, core::ptr::null_mut())
            });
            record_full(EventKind::ReceiveFrom, flags, d, st, (0, 0), null);
        }
        Some(_) => {
            let Some(f) = t.conn.and_then(|d| d.WskReceiveEvent) else {
                return;
            };
            let mut acc = 0usize;
            // SAFETY: the client installed this callback; a NULL
            // DataIndication means "close the socket".
            let st = in_callback("WskReceiveEvent", d, || unsafe {
                f(ctx, flags, core::ptr::null_mut(), 0, &raw mut acc)
            });
            record_full(EventKind::Receive, flags, d, st, (0, 0), null);
        }
        None => {}
    }
}
