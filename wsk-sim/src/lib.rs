//! A user-mode Winsock Kernel provider and kernel subset, so that WSK driver
//! logic runs under `cargo test` on any host — and a verifier that checks
//! the driver the way Driver Verifier would.
//!
//! `wsk-sim` exports, with the C ABI and the exact signatures
//! [`wsk-sys`](wsk_sys) declares, every `ntoskrnl.exe` and `netio.sys`
//! routine a WSK client calls (IRPs and their completion, MDLs, events and
//! waits, spin locks, a per-thread simulated IRQL, pool, work items, system
//! threads, semaphores, timers and DPCs, the registry, `WskRegister`/`WskCaptureProviderNPI`/…), and
//! behind them the provider dispatch tables of `wsk.h` over an in-memory
//! network: listen, connection, datagram, basic and stream sockets,
//! TCP-like streams with graceful and abortive disconnects, UDP-like
//! datagrams, event callbacks, conditional accept and name resolution.
//! The test plays the remote side with [`PeerListener`], [`PeerConn`] and
//! [`PeerUdp`], and scripts the provider through [`Sim`].
//!
//! # Using it
//!
//! Add it as a dev-dependency next to `wsk-sys` (or the safe `wsk` crate):
//!
//! ```toml
//! [dev-dependencies]
//! wsk-sim = "0.1"
//! ```
//!
//! On a host, `wsk-sys` leaves its routines for the final link to resolve;
//! linking `wsk-sim` into the test binary is what provides them. A test that
//! uses any item of this crate (normally [`Sim::start`]) links it; a test
//! binary that does not must still name the crate, with
//! `extern crate wsk_sim;` or `use wsk_sim as _;`, or the link fails with
//! undefined symbols.
//!
//! Each test starts a fresh machine with [`Sim::start`] and keeps the
//! returned guard alive: tests of one binary then run one at a time, and
//! when the guard drops the simulator settles pending work and checks for
//! leaks.
//!
//! # Example: register, capture the provider, open a socket
//!
//! ```
//! use core::ptr;
//! use wsk_sys::*;
//!
//! // IoCompletion routine: wake the waiter, keep the IRP.
//! unsafe extern "system" fn done(_dev: PDEVICE_OBJECT, _irp: PIRP, ctx: PVOID) -> NTSTATUS {
//!     // SAFETY: `ctx` is the KEVENT below.
//!     unsafe { KeSetEvent(ctx.cast(), 0, FALSE) };
//!     STATUS_MORE_PROCESSING_REQUIRED
//! }
//!
//! static CLIENT: WSK_CLIENT_DISPATCH = WSK_CLIENT_DISPATCH {
//!     Version: MAKE_WSK_VERSION(1, 0),
//!     Reserved: 0,
//!     WskClientEvent: None,
//! };
//!
//! let sim = wsk_sim::Sim::start();
//! let peer = sim.peer_listen("192.0.2.10:7");
//! // SAFETY: the usual WSK client contract, followed step by step.
//! unsafe {
//!     let mut npi = WSK_CLIENT_NPI { ClientContext: ptr::null_mut(), Dispatch: &CLIENT };
//!     let mut reg = WSK_REGISTRATION::ZEROED;
//!     assert_eq!(WskRegister(&mut npi, &mut reg), STATUS_SUCCESS);
//!     let mut provider = WSK_PROVIDER_NPI { Client: ptr::null_mut(), Dispatch: ptr::null() };
//!     assert_eq!(WskCaptureProviderNPI(&mut reg, WSK_INFINITE_WAIT, &mut provider), STATUS_SUCCESS);
//!
//!     // The event lives behind a raw pointer: the completion routine writes
//!     // it from whatever thread completes the IRP.
//!     let event: *mut KEVENT = Box::into_raw(Box::new(core::mem::zeroed()));
//!     KeInitializeEvent(event, NotificationEvent, FALSE);
//!     let irp = IoAllocateIrp(1, FALSE);
//!     let wait = |status: NTSTATUS| {
//!         if status == STATUS_PENDING {
//!             KeWaitForSingleObject(event.cast(), Executive, KernelMode, FALSE, ptr::null_mut());
//!         }
//!         KeClearEvent(event);
//!     };
//!
//!     // WskSocketConnect: create, bind and connect in one call.
//!     IoSetCompletionRoutine(irp, Some(done), event.cast(), TRUE, TRUE, TRUE);
//!     let mut local = SOCKADDR_IN { sin_family: AF_INET, ..Default::default() };
//!     let mut remote = SOCKADDR_IN { sin_family: AF_INET, sin_port: 7u16.to_be(), ..Default::default() };
//!     remote.sin_addr.S_un.S_addr = u32::from_ne_bytes([192, 0, 2, 10]);
//!     let status = ((*provider.Dispatch).WskSocketConnect.unwrap())(
//!         provider.Client, SOCK_STREAM, IPPROTO_TCP as ULONG,
//!         (&raw mut local).cast(), (&raw mut remote).cast(), 0,
//!         ptr::null_mut(), ptr::null(), ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), irp,
//!     );
//!     wait(status);
//!     assert_eq!((*irp).IoStatus.Status, STATUS_SUCCESS);
//!     let socket = (*irp).IoStatus.Information as PWSK_SOCKET;
//!     let conn = peer.accept();
//!
//!     // WskCloseSocket (through the basic part of the dispatch table).
//!     IoReuseIrp(irp, STATUS_UNSUCCESSFUL);
//!     IoSetCompletionRoutine(irp, Some(done), event.cast(), TRUE, TRUE, TRUE);
//!     let basic = (*socket).Dispatch.cast::<WSK_PROVIDER_BASIC_DISPATCH>();
//!     wait(((*basic).WskCloseSocket.unwrap())(socket, irp));
//!     assert!(conn.was_reset()); // closing without WskDisconnect is abortive
//!
//!     IoFreeIrp(irp);
//!     drop(Box::from_raw(event));
//!     WskReleaseProviderNPI(&mut reg);
//!     WskDeregister(&mut reg);
//! }
//! // Dropping the guard checks that nothing leaked.
//! ```
//!
//! # Scripting the world
//!
//! - Configuration: [`Sim::set_completion_mode`] (complete inline, inline
//!   but return `STATUS_PENDING` like Wine, on a worker thread, after a
//!   delay, or only when the test calls [`Sim::run_pending`]),
//!   [`Sim::set_event_irql`] / [`Sim::set_completion_irql`] (callbacks at
//!   `PASSIVE_LEVEL` or at `DISPATCH_LEVEL` with
//!   `WSK_FLAG_AT_DISPATCH_LEVEL`), [`Sim::set_ignore_cancel`] (Wine's
//!   provider ignores `IoCancelIrp`), [`Sim::set_provider_version`],
//!   [`Sim::set_provider_ready`], [`Sim::with_seed`].
//! - Faults: [`Sim::fail_next`] (any routine, including pool, IRP and MDL
//!   allocation), [`Sim::hang_next`] (a request that completes only when
//!   cancelled or closed), [`Sim::indicate_close_required`].
//! - The network: [`Sim::add_host`], [`Sim::add_name`],
//!   [`Sim::peer_listen`], [`Sim::peer_connect`], [`Sim::peer_udp`].
//! - Kernel: [`Sim::driver_object`], [`Sim::device_object`],
//!   [`Sim::registry_set_dword`], [`Sim::at_irql`].
//! - Observation: [`Sim::stats`] (every event callback with its flags and
//!   return value, IRPs completed and cancelled, `DbgPrint` lines),
//!   [`Sim::leaks`], [`Sim::take_violations`].
//!
//! # The verifier
//!
//! A misuse is a panic `wsk-sim verifier: … (rule: NAME)` naming one of the
//! [`Rule`]s: waits and `PASSIVE_LEVEL`-only routines at `DISPATCH_LEVEL` or
//! inside event callbacks and completion routines, callback return values
//! their contract forbids, IRPs completed twice or reused while pending,
//! double frees, calls on closed sockets, `WskCloseSocket` racing another
//! call, bad `WskRelease`, spin lock misuse, and everything still held at
//! `WskDeregister` or at the end of the test.
//!
//! A panic cannot unwind out of an `extern "system"` function, so a
//! violation detected inside an exported routine (or inside a client
//! callback the simulator called) is printed, recorded, and the routine goes
//! on as harmlessly as it can; the panic is raised on the test thread by the
//! next [`Sim`] or peer call, or when the guard drops. `#[should_panic(expected
//! = "rule: IRQL")]` therefore works for both kinds. `KeBugCheckEx` is the
//! exception: it cannot return, so it panics in place, which aborts the test
//! process after printing the bug check.
//!
//! # Threads and determinism
//!
//! Client code runs on the threads that call it, on a worker thread
//! (deferred completions and events), on one thread per queued work item
//! and on one thread per system thread. [`CompletionMode::Manual`] makes
//! completions run only when the test asks (or when a thread blocks in a
//! wait), which makes interleavings deterministic; [`Sim::with_seed`] varies
//! completion modes and IRQLs reproducibly. Everything runs under Miri.
// C names for the exported routines and their parameters.
#![allow(non_snake_case)]
// Panics are the verifier's reports; each routine documents its rules.
#![allow(clippy::missing_panics_doc)]
// Kernel structures are reached through byte offsets; every such cast is
// followed by an unaligned access or lands on a documented aligned field.
#![allow(clippy::cast_ptr_alignment)]
// `w` (world), `s` (socket), `c` (connection), `e` (end), `n` (count) are
// used consistently throughout.
#![allow(clippy::many_single_char_names)]

mod addr;
mod exports;
mod io;
mod ke;
mod names;
mod net;
mod netio;
mod pool;
mod provider;
mod ps;
mod script;
mod semaphore;
mod sim;
mod timer;
mod verifier;
mod world;

pub use io::{
    IoAllocateIrp, IoAllocateMdl, IoAllocateWorkItem, IoCancelIrp, IoFreeIrp, IoFreeMdl,
    IoFreeWorkItem, IoInitializeIrp, IoInitializeWorkItem, IoQueueWorkItem, IoQueueWorkItemEx,
    IoReuseIrp, IoSizeofWorkItem, IoUninitializeWorkItem, IofCallDriver, IofCompleteRequest,
    MmBuildMdlForNonPagedPool, MmMapLockedPagesSpecifyCache, MmProbeAndLockPages, MmUnlockPages,
    MmUnmapLockedPages,
};
pub use ke::{
    DbgPrint, KeAcquireInStackQueuedSpinLock, KeAcquireSpinLockAtDpcLevel,
    KeAcquireSpinLockRaiseToDpc, KeBugCheckEx, KeClearEvent, KeDelayExecutionThread,
    KeGetCurrentIrql, KeInitializeEvent, KeQueryInterruptTimePrecise, KeQueryTimeIncrement,
    KeQueryUnbiasedInterruptTime, KeReadStateEvent, KeReleaseInStackQueuedSpinLock,
    KeReleaseSpinLock, KeReleaseSpinLockFromDpcLevel, KeResetEvent, KeSetEvent,
    KeWaitForMultipleObjects, KeWaitForSingleObject,
};
pub use netio::{
    WskCaptureProviderNPI, WskDeregister, WskQueryProviderCharacteristics, WskRegister,
    WskReleaseProviderNPI,
};
pub use pool::{ExAllocatePool2, ExAllocatePoolWithTag, ExFreePool, ExFreePoolWithTag};
pub use ps::{
    ObReferenceObjectByHandle, ObfDereferenceObject, ObfReferenceObject, PsCreateSystemThread,
    PsTerminateSystemThread, RtlCompareMemory, RtlGetVersion, RtlInitUnicodeString, ZwClose,
    ZwOpenKey, ZwQueryValueKey,
};
pub use script::{
    CompletionMode, Config, EventDelivery, EventKind, EventRecord, Irql, Readiness, Routine, Stats,
};
pub use semaphore::{KeInitializeSemaphore, KeReleaseSemaphore};
pub use sim::{PeerConn, PeerListener, PeerUdp, Sim};
pub use timer::{KeCancelTimer, KeFlushQueuedDpcs, KeInitializeDpc, KeInitializeTimer, KeSetTimer};
pub use verifier::Rule;
