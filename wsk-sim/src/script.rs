//! Test-side configuration, fault injection and observation types.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use wsk_sys::NTSTATUS;

use crate::adversary::Adversary;

/// When and where the provider completes an IRP whose operation is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CompletionMode {
    /// Complete inside the WSK call and return the final status (what
    /// Windows does when the operation can finish at once).
    #[default]
    Inline,
    /// Complete inside the WSK call but return `STATUS_PENDING` anyway (what
    /// Wine's `netio.sys` does).
    InlineReturnPending,
    /// Return `STATUS_PENDING` and complete on the simulator's worker thread.
    Worker,
    /// Return `STATUS_PENDING` and complete on the worker thread after a
    /// delay.
    Delayed(Duration),
    /// Return `STATUS_PENDING` and complete only when the test calls
    /// [`Sim::run_pending`](crate::Sim::run_pending) or a thread blocks in
    /// `KeWaitForSingleObject`/`KeDelayExecutionThread` (fully
    /// deterministic).
    Manual,
}

/// An interrupt request level the simulator can run client code at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Irql {
    /// `PASSIVE_LEVEL` (0).
    #[default]
    Passive,
    /// `APC_LEVEL` (1).
    Apc,
    /// `DISPATCH_LEVEL` (2).
    Dispatch,
}

impl Irql {
    /// Any of the three, drawn from `rng` (the adversary's
    /// [`IrqlMix`](crate::Behaviour::IrqlMix)).
    pub(crate) fn any(rng: &mut crate::world::Rng) -> Irql {
        match rng.below(3) {
            0 => Irql::Passive,
            1 => Irql::Apc,
            _ => Irql::Dispatch,
        }
    }

    /// The `KIRQL` number.
    #[must_use]
    pub const fn level(self) -> u8 {
        match self {
            Irql::Passive => 0,
            Irql::Apc => 1,
            Irql::Dispatch => 2,
        }
    }
}

/// How event callbacks are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EventDelivery {
    /// On the thread whose action caused the event (the peer's test thread,
    /// the client thread that enabled events, the worker…).
    #[default]
    Inline,
    /// Always on the simulator's worker thread.
    Worker,
}

/// Whether `WskCaptureProviderNPI` finds the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Readiness {
    /// Ready at once.
    #[default]
    Ready,
    /// Ready after this much time since the setting was made.
    After(Duration),
    /// Never ready: captures time out with `STATUS_DEVICE_NOT_READY`.
    Never,
}

/// Settings of a simulated machine; change them with the
/// [`Sim`](crate::Sim) setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// How finished IRPs are completed.
    pub completion: CompletionMode,
    /// IRQL completion routines run at.
    pub completion_irql: Irql,
    /// IRQL event callbacks run at (`Dispatch` also sets
    /// `WSK_FLAG_AT_DISPATCH_LEVEL` where the callback has a flags argument).
    pub event_irql: Irql,
    /// Where event callbacks run.
    pub event_delivery: EventDelivery,
    /// `Some(seed)`: completion mode, event IRQL and completion IRQL are
    /// drawn per request from a PRNG seeded with it.
    pub seed: Option<u64>,
    /// Do not set cancel routines on pending IRPs (like Wine): `IoCancelIrp`
    /// then has no effect and only closing the socket completes them.
    pub ignore_cancel: bool,
    /// `WSK_PROVIDER_CHARACTERISTICS.HighestVersion` and the
    /// `WSK_PROVIDER_DISPATCH.Version` reported (default 1.0).
    pub highest_version: u16,
    /// `WSK_PROVIDER_CHARACTERISTICS.LowestVersion` (default 1.0).
    pub lowest_version: u16,
    /// Whether `WSK_FLAG_STREAM_SOCKET` (Windows 10 1703+) is supported.
    pub stream_sockets: bool,
    /// `Some(status)`: `WskSocket` creates listen and connection sockets
    /// only, and completes a request for any other kind (basic, datagram,
    /// stream) with `status` — what Wine's `netio.sys` does (see
    /// [`Sim::imitate_wine_netio`](crate::Sim::imitate_wine_netio)).
    pub other_socket_kinds_refused: Option<NTSTATUS>,
    /// `WskCloseSocket` on a connection not yet closed both ways sends FIN
    /// instead of resetting it — what Wine's `netio.sys` does (it closes a
    /// host socket). Microsoft's providers disconnect abortively
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_close_socket>),
    /// the default.
    pub close_sends_fin: bool,
    /// The Windows version `RtlGetVersion` reports: major, minor, build
    /// (default 10.0.22631, Windows 11 23H2).
    pub windows_version: (u32, u32, u32),
    /// How long `WskDeregister` waits for sockets and captured NPIs before
    /// reporting a [`DEREGISTER`](crate::Rule::Deregister) violation.
    pub deregister_timeout: Duration,
    /// How long blocking peer operations wait before panicking.
    pub peer_timeout: Duration,
    /// Listen backlog length.
    pub backlog: usize,
    /// Ideal send backlog reported by `SIO_WSK_QUERY_IDEAL_SEND_BACKLOG`.
    pub ideal_send_backlog: usize,
    /// The adversary: `Some` makes the provider do, within Microsoft's
    /// contract, what is hardest for the client (see [`Adversary`] and
    /// [`Behaviour`](crate::Behaviour)). `None` in `Config::default()`, for
    /// tests that pin the benign provider; [`Sim::start`](crate::Sim::start)
    /// takes it from `WSK_SIM_ADVERSARY`, and turns every behaviour on when
    /// the variable is not set (see [`Adversary::from_env`]).
    pub adversary: Option<Adversary>,
}

impl Config {
    /// The default configuration with every adversarial behaviour on,
    /// seeded with `seed` ([`Adversary::all`]).
    #[must_use]
    pub fn hostile(seed: u64) -> Config {
        Config {
            adversary: Some(Adversary::all(seed)),
            ..Config::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            completion: CompletionMode::Inline,
            completion_irql: Irql::Passive,
            event_irql: Irql::Passive,
            event_delivery: EventDelivery::Inline,
            seed: None,
            ignore_cancel: false,
            highest_version: 0x0100,
            lowest_version: 0x0100,
            stream_sockets: true,
            other_socket_kinds_refused: None,
            close_sends_fin: false,
            windows_version: (10, 0, 22631),
            deregister_timeout: Duration::from_secs(2),
            peer_timeout: Duration::from_secs(10),
            backlog: 16,
            ideal_send_backlog: 65536,
            adversary: None,
        }
    }
}

/// A routine whose calls a test can make fail or hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the routine of the same name
pub enum Routine {
    ExAllocatePoolWithTag,
    ExAllocatePool2,
    IoAllocateIrp,
    IoAllocateMdl,
    /// (Returns NULL: `MmGetSystemAddressForMdlSafe` fails to map.)
    MmMapLockedPagesSpecifyCache,
    IoAllocateWorkItem,
    PsCreateSystemThread,
    ZwOpenKey,
    WskRegister,
    WskCaptureProviderNPI,
    WskSocket,
    WskSocketConnect,
    WskControlClient,
    WskGetAddressInfo,
    WskGetNameInfo,
    WskControlSocket,
    WskCloseSocket,
    WskBind,
    WskListen,
    WskAccept,
    WskInspectComplete,
    WskConnect,
    WskConnectEx,
    WskSend,
    WskReceive,
    WskDisconnect,
    WskSendTo,
    WskSendMessages,
    WskReceiveFrom,
    WskGetLocalAddress,
    WskGetRemoteAddress,
}

impl Routine {
    /// The routine's C name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Routine::ExAllocatePoolWithTag => "ExAllocatePoolWithTag",
            Routine::ExAllocatePool2 => "ExAllocatePool2",
            Routine::IoAllocateIrp => "IoAllocateIrp",
            Routine::IoAllocateMdl => "IoAllocateMdl",
            Routine::MmMapLockedPagesSpecifyCache => "MmMapLockedPagesSpecifyCache",
            Routine::IoAllocateWorkItem => "IoAllocateWorkItem",
            Routine::PsCreateSystemThread => "PsCreateSystemThread",
            Routine::ZwOpenKey => "ZwOpenKey",
            Routine::WskRegister => "WskRegister",
            Routine::WskCaptureProviderNPI => "WskCaptureProviderNPI",
            Routine::WskSocket => "WskSocket",
            Routine::WskSocketConnect => "WskSocketConnect",
            Routine::WskControlClient => "WskControlClient",
            Routine::WskGetAddressInfo => "WskGetAddressInfo",
            Routine::WskGetNameInfo => "WskGetNameInfo",
            Routine::WskControlSocket => "WskControlSocket",
            Routine::WskCloseSocket => "WskCloseSocket",
            Routine::WskBind => "WskBind",
            Routine::WskListen => "WskListen",
            Routine::WskAccept => "WskAccept",
            Routine::WskInspectComplete => "WskInspectComplete",
            Routine::WskConnect => "WskConnect",
            Routine::WskConnectEx => "WskConnectEx",
            Routine::WskSend => "WskSend",
            Routine::WskReceive => "WskReceive",
            Routine::WskDisconnect => "WskDisconnect",
            Routine::WskSendTo => "WskSendTo",
            Routine::WskSendMessages => "WskSendMessages",
            Routine::WskReceiveFrom => "WskReceiveFrom",
            Routine::WskGetLocalAddress => "WskGetLocalAddress",
            Routine::WskGetRemoteAddress => "WskGetRemoteAddress",
        }
    }
}

/// The routines Wine 8's `netio.sys` only stubs: each returns
/// `STATUS_NOT_IMPLEMENTED` without completing its IRP (the project's Wine
/// notes, `/work/shared/notes/wine.md`, "What Wine's `netio.sys` (8.0)
/// does"; the `wine` CI step logs that status for `WskControlSocket` and
/// `WskDisconnect`). Wine's `WskRelease` is a stub too; it has
/// no [`Routine`] because only retained indications, which need the event
/// callbacks `WskControlSocket` refuses, reach it.
pub const WINE_NETIO_STUBS: &[Routine] = &[
    Routine::WskDisconnect,
    Routine::WskControlSocket,
    Routine::WskSocketConnect,
    Routine::WskControlClient,
    Routine::WskGetNameInfo,
    Routine::WskGetLocalAddress,
    Routine::WskGetRemoteAddress,
    Routine::WskInspectComplete,
];

/// A scripted outcome for the next call of a routine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Fail with this status (allocations return NULL).
    Fail(NTSTATUS),
    /// Keep the IRP pending until it is cancelled or its socket closed.
    Hang,
}

/// Faults per routine: one-shot faults queued for the next calls, then a
/// persistent failure for every call after them.
#[derive(Default, Debug)]
pub(crate) struct Faults {
    queue: BTreeMap<Routine, VecDeque<Fault>>,
    always: BTreeMap<Routine, Persistent>,
}

/// A failure of every call of a routine.
#[derive(Clone, Copy, Debug)]
struct Persistent {
    status: NTSTATUS,
    /// `false`: the routine returns `status` without touching its IRP (a
    /// stub), rather than completing the IRP with it.
    completes: bool,
}

impl Faults {
    pub(crate) fn push(&mut self, r: Routine, f: Fault) {
        self.queue.entry(r).or_default().push_back(f);
    }

    /// Makes every call of `r` fail with `status` once its queued faults are
    /// used up.
    pub(crate) fn fail_always(&mut self, r: Routine, status: NTSTATUS) {
        self.always.insert(
            r,
            Persistent {
                status,
                completes: true,
            },
        );
    }

    /// Makes `r` a stub: every call returns `status` at once, before
    /// anything else (its IRP untouched), once its queued faults are used up.
    pub(crate) fn stub_out(&mut self, r: Routine, status: NTSTATUS) {
        self.always.insert(
            r,
            Persistent {
                status,
                completes: false,
            },
        );
    }

    /// The status a stubbed `r` returns without taking its IRP, if it is a
    /// stub and no queued fault comes first.
    pub(crate) fn stubbed(&self, r: Routine) -> Option<NTSTATUS> {
        if self.queue.contains_key(&r) {
            return None;
        }
        self.always
            .get(&r)
            .filter(|p| !p.completes)
            .map(|p| p.status)
    }

    /// Forgets every fault of `r`, queued or persistent.
    pub(crate) fn clear(&mut self, r: Routine) {
        self.queue.remove(&r);
        self.always.remove(&r);
    }

    /// The fault of the call of `r` being made: the oldest queued one, else
    /// the persistent failure.
    pub(crate) fn take(&mut self, r: Routine) -> Option<Fault> {
        if let Some(q) = self.queue.get_mut(&r) {
            let f = q.pop_front();
            if q.is_empty() {
                self.queue.remove(&r);
            }
            if f.is_some() {
                return f;
            }
        }
        self.always.get(&r).map(|p| Fault::Fail(p.status))
    }

    /// Whether the next allocation by `r` must fail.
    pub(crate) fn take_alloc_failure(&mut self, r: Routine) -> bool {
        self.take(r).is_some()
    }
}

/// A WSK event callback kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// `WskReceiveEvent`.
    Receive,
    /// `WskDisconnectEvent`.
    Disconnect,
    /// `WskSendBacklogEvent`.
    SendBacklog,
    /// `WskAcceptEvent`.
    Accept,
    /// `WskInspectEvent`.
    Inspect,
    /// `WskAbortEvent`.
    Abort,
    /// `WskReceiveFromEvent`.
    ReceiveFrom,
}

impl EventKind {
    /// The callback's name.
    #[must_use]
    pub const fn callback_name(self) -> &'static str {
        match self {
            EventKind::Receive => "WskReceiveEvent",
            EventKind::Disconnect => "WskDisconnectEvent",
            EventKind::SendBacklog => "WskSendBacklogEvent",
            EventKind::Accept => "WskAcceptEvent",
            EventKind::Inspect => "WskInspectEvent",
            EventKind::Abort => "WskAbortEvent",
            EventKind::ReceiveFrom => "WskReceiveFromEvent",
        }
    }
}

/// One event callback the simulator made, with what it returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventRecord {
    /// Which callback.
    pub kind: EventKind,
    /// The `Flags` argument (0 for callbacks without one).
    pub flags: u32,
    /// Whether it ran at `DISPATCH_LEVEL` (with or without
    /// `WSK_FLAG_AT_DISPATCH_LEVEL` in `flags`).
    pub at_dispatch: bool,
    /// The IRQL it ran at.
    pub irql: Irql,
    /// Its return value (for `WskInspectEvent`, the `WSK_INSPECT_ACTION`).
    pub status: NTSTATUS,
    /// Bytes indicated (receive events), datagrams indicated (receive-from),
    /// the ideal backlog (send-backlog), 0 otherwise.
    pub indicated: usize,
    /// Bytes the client accepted (receive events returning success).
    pub accepted: usize,
    /// Whether the indication was NULL ("close the socket").
    pub null_indication: bool,
}

/// Counters and logs a test can assert on; see [`Sim::stats`](crate::Sim::stats).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Every event callback made, in order.
    pub events: Vec<EventRecord>,
    /// IRPs the provider completed.
    pub irps_completed: u64,
    /// `IoInitializeIrp` calls.
    pub irps_initialized: u64,
    /// `IoReuseIrp` calls.
    pub irps_reused: u64,
    /// IRPs completed with `STATUS_CANCELLED`.
    pub irps_cancelled: u64,
    /// `IoCancelIrp` calls.
    pub cancel_calls: u64,
    /// Pool allocations made.
    pub pool_allocations: u64,
    /// Sockets created (including accepted ones).
    pub sockets_created: u64,
    /// Sockets closed with `WskCloseSocket`.
    pub sockets_closed: u64,
    /// Work items run.
    pub work_items_run: u64,
    /// `DbgPrint` output, one entry per call.
    pub debug_output: Vec<String>,
    /// `MmMapLockedPagesSpecifyCache` calls made to fail (injected or by
    /// the adversary).
    pub mapping_failures: u64,
    /// Indication elements (`WSK_DATA_INDICATION`s and
    /// `WSK_DATAGRAM_INDICATION`s) handed to the client.
    pub indication_elements: u64,
    /// MDLs in those elements' `WSK_BUF`s.
    pub indication_mdls: u64,
    /// Elements whose `WSK_BUF.Offset` is not zero.
    pub indication_offsets: u64,
    /// MDLs handed out unmapped (`MappedSystemVa` NULL).
    pub indication_unmapped_mdls: u64,
}

impl Stats {
    /// How many callbacks of `kind` were made.
    #[must_use]
    pub fn count(&self, kind: EventKind) -> usize {
        self.events.iter().filter(|e| e.kind == kind).count()
    }

    /// Statuses returned by callbacks of `kind`, in order.
    #[must_use]
    pub fn statuses(&self, kind: EventKind) -> Vec<NTSTATUS> {
        self.events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.status)
            .collect()
    }
}
