//! Shared by the benchmark binaries: the allocation-counting global
//! allocator, the harness protocol `cargo xtask bench` speaks, and a raw
//! (`wsk_sys`-only) WSK client for the baselines.
//!
//! # Harness protocol
//!
//! A bench binary run without arguments (or with `--bench`, as `cargo bench`
//! passes) runs every case natively and prints plain counts. `cargo xtask
//! bench` instead calls it with:
//!
//! - `--harness list`: one line per measurement,
//!   `measure group=G role=R case=C toggle=PATTERN iters=N`. `PATTERN` is the
//!   function whose inclusive instruction count callgrind must collect
//!   (`--toggle-collect`); `role` is `safe`, `raw` (the target's baseline),
//!   `raw_sim` (a cross-check of the baseline through the simulator) or
//!   another `raw_*` variant shown for interpretation only.
//! - `--harness run C N`: runs case `C` with `N` iterations (under
//!   callgrind) and prints `ran case=C calls=K`, where `K` is how many times
//!   the toggled function ran; instructions per operation are the collected
//!   total divided by `K`.
//! - `--harness allocs`: counts heap allocations natively and prints
//!   `allocs group=G unit=U ops=N safe=A raw=B` per group: `A` allocations
//!   made while the safe layer handled `N` operations, `B` while the raw
//!   client handled the same `N` operations on the same simulator (the
//!   simulator's own bookkeeping), so `(A - B) / N` is the safe layer's.

#![allow(dead_code)] // each bench binary uses its own subset

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;
use std::time::Duration;

use wsk_sys as sys;

// ---------------------------------------------------------------------------
// Allocation counting
// ---------------------------------------------------------------------------

/// Counts every `alloc`/`alloc_zeroed` and `realloc`, per thread.
///
/// Per thread, because the simulator's worker threads may allocate at any
/// time; the benches run the simulator with inline completions and inline
/// event delivery, so everything measured happens on the bench thread.
struct Counting;

thread_local! {
    // Const-initialised without a destructor: using them never allocates.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static REALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    // `try_with`: a thread being torn down may still allocate.
    let _ = counter.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards every call unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        // SAFETY: the caller's contract is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump(&ALLOCS);
        // SAFETY: the caller's contract is `System::alloc_zeroed`'s.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System::dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump(&REALLOCS);
        // SAFETY: the caller's contract is `System::realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (`alloc` + `alloc_zeroed`; `realloc` is not a new
/// allocation) made by this thread so far.
pub(crate) fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

/// `realloc` calls made by this thread so far.
pub(crate) fn reallocations() -> u64 {
    REALLOCS.with(Cell::get)
}

/// Runs `f`, returning its result and the allocations made meanwhile.
pub(crate) fn counting<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = allocations();
    let r = f();
    (r, allocations() - before)
}

// ---------------------------------------------------------------------------
// Harness protocol
// ---------------------------------------------------------------------------

/// One measurement a bench binary offers.
pub(crate) struct Case {
    /// The report group it belongs to.
    pub(crate) group: &'static str,
    /// `safe`, `raw` (the baseline), `raw_sim` or another `raw_*` variant.
    pub(crate) role: &'static str,
    /// Its name on the command line.
    pub(crate) name: &'static str,
    /// The function callgrind collects inclusively (`--toggle-collect`).
    pub(crate) toggle: &'static str,
    /// Iterations the harness runs.
    pub(crate) iters: u64,
    /// Runs `iters` iterations; returns how often the toggled function ran.
    pub(crate) run: fn(u64) -> u64,
}

/// One allocation comparison a bench binary offers.
pub(crate) struct AllocGroup {
    /// The report group.
    pub(crate) group: &'static str,
    /// `event` or `request`.
    pub(crate) unit: &'static str,
    /// Operations per side.
    pub(crate) ops: u64,
    /// Allocations while the safe layer handled `ops` operations.
    pub(crate) safe: fn(u64) -> u64,
    /// Allocations while the raw client handled `ops` operations.
    pub(crate) raw: fn(u64) -> u64,
}

/// The bench binary's `main`: dispatches on the harness protocol.
pub(crate) fn main(cases: &[Case], allocs: &[AllocGroup]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--harness", "list"] => {
            for c in cases {
                println!(
                    "measure group={} role={} case={} toggle={} iters={}",
                    c.group, c.role, c.name, c.toggle, c.iters
                );
            }
        }
        ["--harness", "run", name, iters] => {
            let case = cases
                .iter()
                .find(|c| c.name == *name)
                .unwrap_or_else(|| panic!("unknown case `{name}`"));
            let iters = iters.parse().expect("iterations: a number");
            let calls = (case.run)(iters);
            println!("ran case={} calls={calls}", case.name);
        }
        ["--harness", "allocs"] => run_allocs(allocs),
        // Alone: `cargo bench` passes `--bench` and maybe a filter.
        _ => {
            println!("# plain counts and wall-clock time (informational, machine-dependent);");
            println!(
                "# instructions per operation, the measure the targets use: `cargo xtask bench`"
            );
            for c in cases {
                let start = std::time::Instant::now();
                let calls = (c.run)(c.iters);
                let elapsed = start.elapsed();
                // Includes each case's set-up and teardown, so an upper bound.
                let ns_per_iter = elapsed.as_nanos() / u128::from(c.iters.max(1));
                println!(
                    "ran case={} iters={} calls={calls} wall_ns_per_iter<={ns_per_iter}",
                    c.name, c.iters
                );
            }
            run_allocs(allocs);
        }
    }
}

fn run_allocs(allocs: &[AllocGroup]) {
    for g in allocs {
        let safe = (g.safe)(g.ops);
        let raw = (g.raw)(g.ops);
        println!(
            "allocs group={} unit={} ops={} safe={safe} raw={raw}",
            g.group, g.unit, g.ops
        );
    }
}

// ---------------------------------------------------------------------------
// The simulated network and the safe client
// ---------------------------------------------------------------------------

/// The simulated peer every bench connects to.
pub(crate) const PEER: &str = "10.0.0.2:80";

/// A machine with the benign provider: the benches pin it, because they
/// count the instructions and allocations of one path (inline completions,
/// one mapped MDL per indication, no split) for the safe layer and the raw
/// calls alike; the adversary's choices are drawn per run and would make
/// the two sides take different paths. The adversarial paths are tested,
/// not measured (`wsk/tests/adversary.rs`, the interleavings test).
pub(crate) fn benign_sim() -> wsk_sim::Sim {
    wsk_sim::Sim::with_config(wsk_sim::Config::default())
}

/// Waits in the simulator never last this long.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The `PASSIVE_LEVEL` token of a bench thread.
pub(crate) fn passive() -> wsk::irql::Passive<'static> {
    // SAFETY: a bench thread runs at PASSIVE_LEVEL (the simulator raises a
    // thread's IRQL only inside its own calls and callbacks), never inside a
    // WSK callback, and the benches never hold a spin lock while they wait.
    unsafe { wsk::irql::Passive::new_unchecked() }
}

/// A registered safe client with its captured provider.
pub(crate) struct SafeClient {
    pub(crate) registration: wsk::Registration,
    pub(crate) provider: wsk::Provider,
}

impl SafeClient {
    pub(crate) fn new() -> Self {
        let p = passive();
        let registration = wsk::Registration::register(&p).expect("WskRegister");
        let provider = registration
            .capture(&p, Some(TIMEOUT))
            .expect("WskCaptureProviderNPI");
        Self {
            registration,
            provider,
        }
    }

    /// Connects to [`PEER`] with `handler`'s events enabled.
    pub(crate) fn connect<H: wsk::events::ConnectionEvents>(
        &self,
        handler: H,
    ) -> wsk::tcp::ConnectionSocket<H> {
        wsk::block_on(
            &passive(),
            wsk::tcp::connect(&self.provider, PEER.parse().expect("address"), handler),
        )
        .expect("connect")
    }

    pub(crate) fn finish(self) {
        drop(self.provider);
        self.registration
            .deregister(&passive())
            .unwrap_or_else(|_| panic!("handles left at deregistration"));
    }
}

// ---------------------------------------------------------------------------
// The raw client: what a C driver writes
// ---------------------------------------------------------------------------

static RAW_CLIENT_DISPATCH: sys::WSK_CLIENT_DISPATCH = sys::WSK_CLIENT_DISPATCH {
    Version: sys::MAKE_WSK_VERSION(1, 0),
    Reserved: 0,
    WskClientEvent: None,
};

/// `NPI_WSK_INTERFACE_ID` at a fixed address.
static NPI_ID: sys::NPIID = sys::NPI_WSK_INTERFACE_ID;

/// The completion routine of the raw client's IRP: signal the event, keep
/// the IRP.
unsafe extern "system" fn raw_done(
    _device: sys::PDEVICE_OBJECT,
    _irp: sys::PIRP,
    context: sys::PVOID,
) -> sys::NTSTATUS {
    // SAFETY: the context is the client's KEVENT, alive while its IRP is out.
    unsafe { sys::KeSetEvent(context.cast(), 0, sys::FALSE) };
    sys::STATUS_MORE_PROCESSING_REQUIRED
}

/// Sets `raw_done` as `irp`'s completion routine with `event` as its
/// context, starts `f(irp)`, waits on `event` only if it pended, and returns
/// the IRP's final `IoStatus`.
///
/// # Safety
///
/// `irp` is an initialised IRP with a free stack location that nobody owns;
/// `event` is an initialised, non-signalled `KEVENT` that outlives the call;
/// `PASSIVE_LEVEL`.
#[inline]
unsafe fn issue(
    irp: sys::PIRP,
    event: *mut sys::KEVENT,
    f: impl FnOnce(sys::PIRP) -> sys::NTSTATUS,
) -> (sys::NTSTATUS, usize) {
    // SAFETY: the IRP has one stack location; the event outlives the call.
    unsafe {
        sys::IoSetCompletionRoutine(
            irp,
            Some(raw_done),
            event.cast(),
            sys::TRUE,
            sys::TRUE,
            sys::TRUE,
        );
    };
    if f(irp) == sys::STATUS_PENDING {
        // SAFETY: PASSIVE_LEVEL; the event outlives the wait (caller contract).
        unsafe {
            sys::KeWaitForSingleObject(
                event.cast(),
                sys::Executive,
                sys::KernelMode,
                sys::FALSE,
                ptr::null_mut(),
            )
        };
    }
    // SAFETY: the IRP completed, so its IoStatus is final.
    let io = unsafe { (*irp).IoStatus };
    (io.Status, io.Information)
}

/// Heap-pinned state of the raw client (the provider keeps these addresses).
struct RawState {
    registration: sys::WSK_REGISTRATION,
    client_npi: sys::WSK_CLIENT_NPI,
    provider: sys::WSK_PROVIDER_NPI,
    event: sys::KEVENT,
}

/// A WSK client written directly against `wsk_sys`, as a C driver would:
/// one IRP from `IoAllocateIrp`, reused with `IoReuseIrp` for every call,
/// a `KEVENT` its completion routine signals.
pub(crate) struct RawClient {
    state: Box<RawState>,
    irp: sys::PIRP,
}

impl RawClient {
    /// Registers, captures the provider and allocates the IRP.
    pub(crate) fn new() -> Self {
        let mut state = Box::new(RawState {
            registration: sys::WSK_REGISTRATION::ZEROED,
            client_npi: sys::WSK_CLIENT_NPI {
                ClientContext: ptr::null_mut(),
                Dispatch: &raw const RAW_CLIENT_DISPATCH,
            },
            provider: sys::WSK_PROVIDER_NPI {
                Client: ptr::null_mut(),
                Dispatch: ptr::null(),
            },
            // SAFETY: KEVENT is plain data; KeInitializeEvent initialises it below.
            event: unsafe { core::mem::zeroed() },
        });
        let s = &mut *state;
        // SAFETY: the NPI and registration live in the box until `finish`.
        let st = unsafe { sys::WskRegister(&raw mut s.client_npi, &raw mut s.registration) };
        assert_eq!(st, sys::STATUS_SUCCESS, "WskRegister");
        // SAFETY: registered above; PASSIVE_LEVEL.
        let st = unsafe {
            sys::WskCaptureProviderNPI(
                &raw mut s.registration,
                sys::WSK_INFINITE_WAIT,
                &raw mut s.provider,
            )
        };
        assert_eq!(st, sys::STATUS_SUCCESS, "WskCaptureProviderNPI");
        // SAFETY: writable KEVENT storage that outlives every wait on it.
        unsafe { sys::KeInitializeEvent(&raw mut s.event, sys::NotificationEvent, sys::FALSE) };
        // SAFETY: PASSIVE_LEVEL; one stack location is what WSK needs.
        let irp = unsafe { sys::IoAllocateIrp(1, sys::FALSE) };
        assert!(!irp.is_null(), "IoAllocateIrp");
        Self { state, irp }
    }

    /// Makes one IRP-based WSK call and waits for it: `IoReuseIrp`,
    /// `IoSetCompletionRoutine`, the call, a wait only if it pended,
    /// `KeClearEvent`. Returns the IRP's final `IoStatus`.
    #[inline]
    pub(crate) fn call(
        &mut self,
        f: impl FnOnce(sys::PIRP) -> sys::NTSTATUS,
    ) -> (sys::NTSTATUS, usize) {
        let irp = self.irp;
        let event = &raw mut self.state.event;
        // SAFETY: our IRP, not in use (the previous call completed).
        unsafe { sys::IoReuseIrp(irp, sys::STATUS_UNSUCCESSFUL) };
        // SAFETY: the event lives in our box, initialised in `new`.
        let io = unsafe { issue(irp, event, f) };
        // SAFETY: as above; not waited on by anyone else.
        unsafe { sys::KeClearEvent(event) };
        io
    }

    /// Makes one IRP-based WSK call with an IRP of its own, as a C driver's
    /// synchronous helper does: `IoAllocateIrp`, a `KEVENT` on the stack,
    /// `IoSetCompletionRoutine`, the call, a wait only if it pended,
    /// `IoFreeIrp`. Returns the IRP's final `IoStatus`.
    #[inline]
    pub(crate) fn call_once(f: impl FnOnce(sys::PIRP) -> sys::NTSTATUS) -> (sys::NTSTATUS, usize) {
        // SAFETY: <= DISPATCH_LEVEL; one stack location is what WSK needs.
        let irp = unsafe { sys::IoAllocateIrp(1, sys::FALSE) };
        assert!(!irp.is_null(), "IoAllocateIrp");
        let mut event = core::mem::MaybeUninit::<sys::KEVENT>::uninit();
        let event = event.as_mut_ptr();
        // SAFETY: KEVENT storage on this stack, alive until the IRP is freed.
        unsafe { sys::KeInitializeEvent(event, sys::NotificationEvent, sys::FALSE) };
        // SAFETY: a fresh IRP; the event is initialised and outlives the call.
        let io = unsafe { issue(irp, event, f) };
        // SAFETY: our IRP, completed; nothing refers to it any more.
        unsafe { sys::IoFreeIrp(irp) };
        io
    }

    /// `WskSocketConnect` to [`PEER`] with `context`/`dispatch` as the
    /// socket's event callbacks, then enables `mask` (`SO_WSK_EVENT_CALLBACK`)
    /// if it is not 0.
    pub(crate) fn connect(
        &mut self,
        context: sys::PVOID,
        dispatch: *const sys::WSK_CLIENT_CONNECTION_DISPATCH,
        mask: u32,
    ) -> sys::PWSK_SOCKET {
        let mut local = sys::SOCKADDR_IN {
            sin_family: sys::AF_INET,
            ..Default::default()
        };
        let mut remote = sys::SOCKADDR_IN {
            sin_family: sys::AF_INET,
            sin_port: 80u16.to_be(),
            ..Default::default()
        };
        remote.sin_addr.S_un.S_addr = u32::from_ne_bytes([10, 0, 0, 2]);
        let provider = self.state.provider;
        // SAFETY: a captured provider's dispatch table.
        let socket_connect = unsafe { (*provider.Dispatch).WskSocketConnect }.expect("table");
        let (st, info) = self.call(|irp| {
            // SAFETY: the addresses live across the call (it completes
            // before `call` returns); context and dispatch outlive the socket.
            unsafe {
                socket_connect(
                    provider.Client,
                    sys::SOCK_STREAM,
                    sys::IPPROTO_TCP as sys::ULONG,
                    (&raw mut local).cast(),
                    (&raw mut remote).cast(),
                    0,
                    context,
                    dispatch,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                    irp,
                )
            }
        });
        assert_eq!(st, sys::STATUS_SUCCESS, "WskSocketConnect");
        let socket = info as sys::PWSK_SOCKET;
        if mask != 0 {
            let mut input = sys::WSK_EVENT_CALLBACK_CONTROL {
                NpiId: (&raw const NPI_ID).cast_mut(),
                EventMask: mask,
            };
            // SAFETY: the socket exists; the input lives across this
            // synchronous call, which takes no IRP.
            let st = unsafe {
                (basic(socket).WskControlSocket.expect("table"))(
                    socket,
                    sys::WskSetOption,
                    sys::SO_WSK_EVENT_CALLBACK,
                    sys::SOL_SOCKET,
                    size_of::<sys::WSK_EVENT_CALLBACK_CONTROL>(),
                    (&raw mut input).cast(),
                    0,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
            assert_eq!(st, sys::STATUS_SUCCESS, "SO_WSK_EVENT_CALLBACK");
        }
        socket
    }

    /// `WskCloseSocket`.
    pub(crate) fn close(&mut self, socket: sys::PWSK_SOCKET) {
        let close = basic(socket).WskCloseSocket.expect("table");
        // SAFETY: the socket exists and nothing else is in progress on it.
        let (st, _) = self.call(|irp| unsafe { close(socket, irp) });
        assert_eq!(st, sys::STATUS_SUCCESS, "WskCloseSocket");
    }

    /// Frees the IRP, releases the provider and deregisters.
    pub(crate) fn finish(mut self) {
        // SAFETY: our IRP, completed and not in use.
        unsafe { sys::IoFreeIrp(self.irp) };
        // SAFETY: captured in `new`; every socket is closed.
        unsafe { sys::WskReleaseProviderNPI(&raw mut self.state.registration) };
        // SAFETY: registered in `new`; nothing captured any more.
        unsafe { sys::WskDeregister(&raw mut self.state.registration) };
    }
}

/// The basic part of a socket's provider dispatch table.
fn basic(socket: sys::PWSK_SOCKET) -> sys::WSK_PROVIDER_BASIC_DISPATCH {
    // SAFETY: the socket exists.
    let table = unsafe { (*socket).Dispatch };
    // SAFETY: every provider table starts with the basic one.
    unsafe { *table.cast::<sys::WSK_PROVIDER_BASIC_DISPATCH>() }
}

/// The connection dispatch table of a connection socket.
pub(crate) fn connection_table(socket: sys::PWSK_SOCKET) -> sys::WSK_PROVIDER_CONNECTION_DISPATCH {
    // SAFETY: the socket exists.
    let table = unsafe { (*socket).Dispatch };
    // SAFETY: a connection socket's table is a connection table.
    unsafe { *table.cast::<sys::WSK_PROVIDER_CONNECTION_DISPATCH>() }
}
