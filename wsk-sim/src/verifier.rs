//! The Driver-Verifier-like checks: rules, per-thread context, and how a
//! violation is reported.
//!
//! A violation is a panic whose message starts with `wsk-sim verifier:` and
//! ends with `(rule: NAME)`. Code running under an exported `extern "system"`
//! routine (or inside a client callback the simulator called) cannot unwind
//! — Rust aborts a panic that leaves an `extern "system"` function — so there
//! the violation is printed at once, recorded, and raised as a panic on the
//! test thread at the next [`Sim`](crate::Sim) call or when the `Sim` guard
//! drops. Code called directly by the test (peer actions, `Sim` methods)
//! panics at once.

use core::cell::Cell;
use core::fmt;

use crate::world;

/// A rule the verifier checks; its [`name`](Rule::name) appears in every
/// violation message as `(rule: NAME)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// `IRQL`: a routine called above its maximum IRQL, a wait with a
    /// non-zero timeout at `DISPATCH_LEVEL`, or a wait / `PASSIVE_LEVEL`-only
    /// routine inside a WSK event callback or an IRP completion routine.
    Irql,
    /// `CALLBACK_STATUS`: an event callback returned a status its contract
    /// forbids (disconnect, send-backlog and abort must return
    /// `STATUS_SUCCESS`; receive: `STATUS_SUCCESS`, `STATUS_PENDING` or
    /// `STATUS_DATA_NOT_ACCEPTED` with `BytesAccepted <= BytesIndicated`;
    /// accept: `STATUS_SUCCESS` or `STATUS_REQUEST_NOT_ACCEPTED`; inspect: a
    /// `WSK_INSPECT_ACTION` below `WskInspectMax`), or a `DriverEntry` that
    /// [`DriverHost`](crate::DriverHost) called returned neither
    /// `STATUS_SUCCESS` nor an error status.
    CallbackStatus,
    /// `IRP`: an IRP completed twice, completed with `STATUS_PENDING` or with
    /// a cancel routine still set, passed to WSK while a previous WSK call
    /// still owns it, freed or re-initialized while the provider owns it,
    /// without a free stack location or without a completion routine that is
    /// invoked on success, error and cancel.
    Irp,
    /// `DOUBLE_FREE`: an IRP, MDL, pool block, work item or address list freed
    /// twice, or one the simulator never handed out.
    DoubleFree,
    /// `POOL`: a pool call with a bad tag, zero tag, or bad flags.
    Pool,
    /// `MDL`: an MDL passed to WSK whose pages are neither locked nor built
    /// for non-paged pool, or a `WSK_BUF` whose offset/length exceed its MDL
    /// chain.
    Mdl,
    /// `SOCKET_CLOSED`: a call on a socket after `WskCloseSocket`.
    SocketClosed,
    /// `CLOSE_IN_PROGRESS`: `WskCloseSocket` while another call on the same
    /// socket has not returned yet.
    CloseInProgress,
    /// `RELEASE`: `WskRelease` of an indication twice or of one the client
    /// never retained (by returning `STATUS_PENDING`).
    Release,
    /// `RETAINED_AT_CLOSE`: `WskCloseSocket` while indications retained from
    /// the socket are not released (closing releases nothing; the client
    /// must release every retained list first,
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_data_indication_list>).
    RetainedAtClose,
    /// `CLOSE_REQUIRED`: a socket the provider declared no longer functional
    /// (a NULL `InspectID`, `AcceptSocket` or indication) was never closed,
    /// though the client must close it as soon as possible
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event>).
    CloseRequired,
    /// `NPI`: registration misuse: `WskReleaseProviderNPI` without a capture,
    /// a call through a released provider NPI, an unknown or deregistered
    /// `WSK_REGISTRATION`, `WskRegister` twice on one block.
    Npi,
    /// `DEREGISTER`: `WskDeregister` while provider NPIs are captured or
    /// sockets are open (the real routine would wait forever).
    Deregister,
    /// `SPIN_LOCK`: a spin lock acquired twice by one thread, released by a
    /// thread that does not hold it, or `…AtDpcLevel` below `DISPATCH_LEVEL`.
    SpinLock,
    /// `WORK_ITEM`: a work item queued while already queued, freed while
    /// queued, or not initialized.
    WorkItem,
    /// `PARAMETER`: an argument the DDI forbids (null required pointer,
    /// reserved flags, wrong socket kind for the call, wrong `NpiId`, …).
    Parameter,
    /// `LEAK`: IRPs, MDLs, pool, work items, sockets, captured NPIs,
    /// registrations, address lists, retained indications or handles still
    /// held at `WskDeregister` or at the end of a test.
    Leak,
    /// `BUGCHECK`: the client called `KeBugCheckEx`.
    BugCheck,
    /// `CALL_IN_COMPLETION`: a WSK routine called inside an IRP completion
    /// routine: "A WSK application should not call new WSK functions in the
    /// context of the `IoCompletion` routine"
    /// (<https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>).
    CallInCompletion,
    /// `SOCKET_STATE`: a socket routine called in a state its page does not
    /// allow: before the bind or the connection it requires, with an
    /// address of another family than the socket's, or after
    /// `SIO_WSK_SET_TCP_SILENT_MODE` (`docs/conformance.md` M-13, M-14,
    /// M-20).
    SocketState,
}

impl Rule {
    /// The name printed as `(rule: NAME)`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Irql => "IRQL",
            Rule::CallbackStatus => "CALLBACK_STATUS",
            Rule::Irp => "IRP",
            Rule::DoubleFree => "DOUBLE_FREE",
            Rule::Pool => "POOL",
            Rule::Mdl => "MDL",
            Rule::SocketClosed => "SOCKET_CLOSED",
            Rule::CloseInProgress => "CLOSE_IN_PROGRESS",
            Rule::Release => "RELEASE",
            Rule::RetainedAtClose => "RETAINED_AT_CLOSE",
            Rule::CloseRequired => "CLOSE_REQUIRED",
            Rule::Npi => "NPI",
            Rule::Deregister => "DEREGISTER",
            Rule::SpinLock => "SPIN_LOCK",
            Rule::WorkItem => "WORK_ITEM",
            Rule::Parameter => "PARAMETER",
            Rule::Leak => "LEAK",
            Rule::BugCheck => "BUGCHECK",
            Rule::CallInCompletion => "CALL_IN_COMPLETION",
            Rule::SocketState => "SOCKET_STATE",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a thread is inside client code the simulator called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallbackKind {
    /// A WSK event callback (`WskReceiveEvent`, …): no waits, no
    /// `PASSIVE_LEVEL`-only routines, even when delivered at `PASSIVE_LEVEL`.
    Event(&'static str),
    /// An IRP completion routine (may run at `DISPATCH_LEVEL`).
    Completion,
    /// Other client code (work item routine, system thread, cancel routine).
    Other,
}

thread_local! {
    /// Simulated IRQL of this thread.
    pub(crate) static IRQL: Cell<u8> = const { Cell::new(0) };
    /// Nesting of frames that cannot unwind: exported routines and client
    /// callbacks.
    static NO_UNWIND: Cell<u32> = const { Cell::new(0) };
    /// Innermost callback kind and nesting.
    static CALLBACK: Cell<Option<CallbackKind>> = const { Cell::new(None) };
}

/// Marks a frame that must not unwind (an exported `extern "system"` routine).
pub(crate) struct NoUnwind(());

impl NoUnwind {
    pub(crate) fn enter() -> Self {
        NO_UNWIND.with(|d| d.set(d.get() + 1));
        NoUnwind(())
    }
}

impl Drop for NoUnwind {
    fn drop(&mut self) {
        NO_UNWIND.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// While alive, this thread is inside a client callback of `kind`.
pub(crate) struct InCallback {
    prev: Option<CallbackKind>,
    _no_unwind: NoUnwind,
}

impl InCallback {
    pub(crate) fn enter(kind: CallbackKind) -> Self {
        let prev = CALLBACK.with(|c| c.replace(Some(kind)));
        InCallback {
            prev,
            _no_unwind: NoUnwind::enter(),
        }
    }
}

impl Drop for InCallback {
    fn drop(&mut self) {
        CALLBACK.with(|c| c.set(self.prev));
    }
}

/// The innermost callback this thread is running, if any.
pub(crate) fn current_callback() -> Option<CallbackKind> {
    CALLBACK.with(Cell::get)
}

/// Reports a violation of `rule`.
///
/// Panics at once when the thread can unwind; otherwise prints and records
/// the message and returns, so that the caller can fall back to a harmless
/// behaviour.
pub(crate) fn report(rule: Rule, args: fmt::Arguments<'_>) {
    let msg = message(rule, args);
    if can_unwind() {
        // Recorded as raised, so that `Sim::drop` does not raise it again.
        world::note_violation(&msg, true);
        panic!("{msg}");
    }
    eprintln!("{msg}");
    world::note_violation(&msg, false);
}

/// The full violation message.
pub(crate) fn message(rule: Rule, args: fmt::Arguments<'_>) -> String {
    format!("wsk-sim verifier: {args} (rule: {})", rule.name())
}

/// Whether a panic on this thread would unwind into test code (no
/// `extern "system"` frame of the simulator or the client on the stack).
pub(crate) fn can_unwind() -> bool {
    NO_UNWIND.with(Cell::get) == 0 && !std::thread::panicking()
}

/// `violation!(Rule::X, "fmt", args…)`.
macro_rules! violation {
    ($rule:expr, $($arg:tt)*) => {
        $crate::verifier::report($rule, format_args!($($arg)*))
    };
}
pub(crate) use violation;

/// IRQL levels the simulator knows.
pub(crate) const PASSIVE_LEVEL: u8 = 0;
pub(crate) const APC_LEVEL: u8 = 1;
pub(crate) const DISPATCH_LEVEL: u8 = 2;

/// Current simulated IRQL of this thread.
pub(crate) fn irql() -> u8 {
    IRQL.with(Cell::get)
}

/// Sets the simulated IRQL of this thread, returning the previous one.
pub(crate) fn set_irql(new: u8) -> u8 {
    IRQL.with(|c| c.replace(new))
}

/// Checks that `routine` is called at or below `max` IRQL.
pub(crate) fn check_irql_max(routine: &str, max: u8) -> bool {
    let cur = irql();
    if cur > max {
        violation!(
            Rule::Irql,
            "{routine} called at IRQL {} (maximum {})",
            irql_name(cur),
            irql_name(max)
        );
        return false;
    }
    true
}

/// Checks a `PASSIVE_LEVEL`-only routine: IRQL and callback context.
pub(crate) fn check_passive(routine: &str) -> bool {
    if !check_irql_max(routine, PASSIVE_LEVEL) {
        return false;
    }
    check_not_in_callback(routine)
}

/// Checks that the thread is not inside a WSK event callback or completion
/// routine (where waits and `PASSIVE_LEVEL`-only routines are forbidden).
pub(crate) fn check_not_in_callback(routine: &str) -> bool {
    match current_callback() {
        Some(CallbackKind::Event(cb)) => {
            violation!(
                Rule::Irql,
                "{routine} called inside the {cb} callback, which may run at DISPATCH_LEVEL"
            );
            false
        }
        Some(CallbackKind::Completion) => {
            violation!(
                Rule::Irql,
                "{routine} called inside an IRP completion routine, which may run at DISPATCH_LEVEL"
            );
            false
        }
        _ => true,
    }
}

/// Checks that a WSK routine is not called inside an IRP completion
/// routine.
pub(crate) fn check_not_in_completion(routine: &str) {
    if current_callback() == Some(CallbackKind::Completion) {
        violation!(
            Rule::CallInCompletion,
            "{routine} called inside an IRP completion routine (new WSK calls belong outside it)"
        );
    }
}

/// `PASSIVE_LEVEL`, `APC_LEVEL`, `DISPATCH_LEVEL` or the number.
pub(crate) fn irql_name(irql: u8) -> String {
    match irql {
        PASSIVE_LEVEL => "PASSIVE_LEVEL".into(),
        APC_LEVEL => "APC_LEVEL".into(),
        DISPATCH_LEVEL => "DISPATCH_LEVEL".into(),
        n => format!("{n}"),
    }
}

/// Raises the IRQL to `DISPATCH_LEVEL` (if lower) for the guard's life.
pub(crate) struct IrqlGuard {
    old: u8,
}

impl IrqlGuard {
    pub(crate) fn raise_to(level: u8) -> Self {
        let old = irql();
        if level > old {
            set_irql(level);
        }
        IrqlGuard { old }
    }
}

impl Drop for IrqlGuard {
    fn drop(&mut self) {
        set_irql(self.old);
    }
}
