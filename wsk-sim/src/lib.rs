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
//!   provider ignores `IoCancelIrp`), [`Sim::set_queued_dpcs_never_run`]
//!   (Wine's `KeInsertQueueDpc` stub), [`Sim::set_provider_version`],
//!   [`Sim::set_provider_ready`], [`Sim::with_seed`], [`Sim::hostile`] and
//!   [`Sim::set_adversary`] (see [the adversary](#the-adversary)).
//! - Faults: [`Sim::fail_next`] (any routine, including pool, IRP and MDL
//!   allocation and MDL mapping), [`Sim::fail_always`] and
//!   [`Sim::clear_faults`] (a routine the provider does not offer),
//!   [`Sim::imitate_wine_netio`] (what Wine's `netio.sys` lacks and how it
//!   answers), [`Sim::hang_next`] (a request that
//!   completes only when cancelled or closed),
//!   [`Sim::indicate_close_required`] (NULL indications, `InspectID` and
//!   `AcceptSocket`).
//! - The network: [`Sim::add_host`], [`Sim::add_name`],
//!   [`Sim::peer_listen`], [`Sim::peer_connect`], [`Sim::peer_udp`].
//! - Kernel: [`Sim::driver_object`], [`Sim::device_object`],
//!   [`Sim::registry_set_dword`], [`Sim::at_irql`].
//! - A whole driver: [`DriverHost`] calls its `DriverEntry` and
//!   `DriverUnload` the way the I/O manager does, with its service key and
//!   `Parameters`, and waits for its `DbgPrint` lines.
//! - Observation: [`Sim::stats`] (every event callback with its flags and
//!   return value, IRPs completed and cancelled, `DbgPrint` lines),
//!   [`Sim::leaks`], [`Sim::take_violations`].
//!
//! # The adversary
//!
//! Within what Microsoft's WSK contract permits, the provider can make the
//! choices that are hardest for its client, drawn from a `u64` seed. Each
//! [`Behaviour`] is one such choice (or a point of the contract a simple
//! provider gets wrong), named by the page that allows or requires it
//! ([`Behaviour::url`]):
//!
//! | Knob ([`Behaviour::name`]) | What the provider does | Microsoft's page |
//! |---|---|---|
//! | `split-indications` | several `WSK_DATA_INDICATION`s per `WskReceiveEvent`, cut at arbitrary bytes (often 1-byte pieces), often only a prefix of the buffered data; a random number of datagrams per `WskReceiveFromEvent` | [`WskReceiveEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event), [`WskReceiveFromEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event) |
//! | `mdl-chains` | every indicated `WSK_BUF` spans up to 4 MDLs (`Mdl->Next`) cut at arbitrary bytes, with a non-zero `Offset`, unrelated bytes before, between and after the data; an empty datagram has a NULL `Mdl` | [`WSK_BUF`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf) |
//! | `unmapped-indications` | indicated MDLs are locked but often not mapped (`MappedSystemVa` NULL) | [`WSK_BUF`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf) |
//! | `mapping-failures` | `MmMapLockedPagesSpecifyCache` (so `MmGetSystemAddressForMdlSafe` of an unmapped MDL) returns NULL on a seeded fraction of calls | [`MmGetSystemAddressForMdlSafe`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-mmgetsystemaddressformdlsafe) |
//! | `indication-flags` | `WSK_FLAG_RELEASE_ASAP` and `WSK_FLAG_ENTIRE_MESSAGE` in receive-event flags | [`WskReceiveEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event) |
//! | `completion-mix` | each IRP completes inside the call (returning the final status or `STATUS_PENDING`) or later on another thread | [Using IRPs with WSK functions](https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions) |
//! | `irql-mix` | callbacks at `PASSIVE_LEVEL`, `APC_LEVEL` or `DISPATCH_LEVEL`, the flag set only at `DISPATCH_LEVEL` and not always there; completion routines at any of the three | [`WskReceiveEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event), [`IoCompletion`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nc-wdm-io_completion_routine) |
//! | `accept-does-not-inherit` | `WskAccept` sockets start with events disabled; only accept-event sockets inherit the listener's connection events | [`WskAccept`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept), [`SO_WSK_EVENT_CALLBACK`](https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback) |
//! | `receive-from-disabled-on-refusal` | `STATUS_DATA_NOT_ACCEPTED` from `WskReceiveFromEvent` disables the event until re-enabled (static events: resumes with the next datagram) | [`WskReceiveFromEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event) |
//! | `socket-failure` | NULL `InspectID` / `AcceptSocket` / indications on command and for a seeded fraction of connections to listeners; the socket then fails every call but `WskCloseSocket` with `STATUS_FILE_FORCED_CLOSED` | [`WskInspectEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_inspect_event), [`WskAcceptEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event) |
//! | `disable-waits-for-callbacks` | disabling an event while its callback runs returns `STATUS_PENDING` (IRP completed when it returns) or `STATUS_EVENT_PENDING` | [`SO_WSK_EVENT_CALLBACK`](https://learn.microsoft.com/windows-hardware/drivers/network/so-wsk-event-callback) |
//! | `fixed-events` | disabling or re-enabling static events, or disabling a listener's connection events, is a violation | [`WSK_SET_STATIC_EVENT_CALLBACKS`](https://learn.microsoft.com/windows-hardware/drivers/network/wsk-set-static-event-callbacks) |
//! | `documented-statuses` | `STATUS_BUFFER_OVERFLOW` for a short transport list and oversize `WskConnectEx` data, `STATUS_INVALID_DEVICE_STATE` for `WskGetRemoteAddress` unconnected, `STATUS_INVALID_DEVICE_REQUEST` for `SIO_WSK_QUERY_INSPECT_ID` on other sockets (and an IRP there is a violation), `STATUS_NO_MATCH` for names that do not resolve | [`WSK_TRANSPORT_LIST_QUERY`](https://learn.microsoft.com/windows-hardware/drivers/network/wsk-transport-list-query), [`SIO_WSK_QUERY_INSPECT_ID`](https://learn.microsoft.com/windows-hardware/drivers/network/sio-wsk-query-inspect-id) |
//! | `listen-pends` | `WskListen` stays pending until the first connection arrives | [`WskListen`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_listen) |
//! | `callbacks-race-requests` | at the rare-event rate: receive, receive-from and accept callbacks called although a request is pending | [`WskReceive`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive), [`WskAccept`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept) |
//! | `graceful-disconnect-stuck` | at the rare-event rate: a graceful `WskDisconnect` completes only when an abortive one or the close forces it | [`WskDisconnect`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_disconnect) |
//! | `abort-after-inspect` | at the rare-event rate: a request the inspect callback accepted is dropped before it is established, and `WskAbortEvent` follows | [`WskAbortEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_abort_event) |
//! | `send-backlog-changes` | the ideal send backlog changes as sends complete, reported by `WskSendBacklogEvent` | [`WskSendBacklogEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send_backlog_event) |
//! | `newer-minor-version` | the provider reports a higher minor WSK version than asked for | [`WSK_PROVIDER_DISPATCH`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_provider_dispatch) |
//! | `control-info` | datagrams carry `IP_PKTINFO`/`IPV6_PKTINFO` control information (in indications and `WskReceiveFrom`, cut with `MSG_CTRUNC`) | [`WSK_DATAGRAM_INDICATION`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_datagram_indication) |
//! | `late-sends` | a `WskSend` completes only once its bytes fit in the receiver's window (its `SO_RCVBUF`, 64 KiB by default), on the thread that reads them | [`WskSend`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send) (remarks: no buffering) |
//! | `concurrent-accepts` | two connections waiting to be offered on a listening socket are offered at once, on two threads, the later one often first (only `WskReceiveEvent` is documented as serial) | [`WskAcceptEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept_event), [`WskReceiveEvent`](https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_event) |
//!
//! The rare events (`callbacks-race-requests`, `graceful-disconnect-stuck`,
//! `abort-after-inspect`) and the listeners that die under `socket-failure`
//! happen at rates a test sets ([`Adversary::rare_events_per_mille`],
//! [`Adversary::listener_failures_per_mille`]; 0 in [`Adversary::all`]):
//! each defeats a test that waits for the benign outcome, so only tests
//! written for them (the interleavings test, `wsk`'s `adversary.rs`) turn
//! them on.
//!
//! Each [`Behaviour`]'s documentation names the rows of
//! `docs/conformance.md` it produces (`A-…` behaviours, the rules they
//! rest on, the `M-…` mismatches they expose).
//!
//! Whatever the setting, the `SOCKADDR`s given to accept and inspect
//! callbacks are overwritten when the callback returns (they are valid only
//! for the call), `WskReceive` with `WSK_FLAG_DRAIN` discards data until
//! the connection ends, accepted sockets inherit `SO_KEEPALIVE` and
//! `SO_RCVBUF` from their listener, `WskDeregister` cancels the client's
//! pending `WSK_TRANSPORT_LIST_CHANGE` requests, `SO_WSK_SECURITY` applies
//! to connection sockets too, `SIO_WSK_SET_TCP_SILENT_MODE` silences the
//! connection (sends and disconnects fail with `STATUS_INVALID_DEVICE_STATE`,
//! what arrives is dropped, nothing goes on the wire), the fixed remote
//! address and fixed destination of a datagram socket are kept apart, and a
//! `WskReceive` or `WskReceiveFrom` made while an indication is out waits
//! for the callback's answer.
//!
//! It is **on by default** ([`ON_BY_DEFAULT`]): every machine
//! [`Sim::start`] (or [`Sim::with_seed`]) makes runs every behaviour,
//! seeded with [`DEFAULT_SEED`], unless the `WSK_SIM_ADVERSARY` environment
//! variable says otherwise (see [`Adversary::from_env`]). A machine made with
//! [`Sim::with_config`] has the adversary its [`Config::adversary`] names
//! (`None` in [`Config::default`]: the benign provider, for a test that
//! pins one path on purpose), [`Sim::hostile`] every behaviour with a seed
//! of the test's choosing, and [`Adversary::none`]`(seed).with(…)` a
//! selection:
//!
//! ```text
//! cargo test                                       # every behaviour, DEFAULT_SEED
//! WSK_SIM_ADVERSARY=1234 cargo test                # every behaviour, seed 1234
//! WSK_SIM_ADVERSARY=1234 cargo test                # every behaviour, seed 1234
//! WSK_SIM_ADVERSARY=7,mdl-chains cargo test        # only mdl-chains, seed 7
//! WSK_SIM_ADVERSARY=random cargo test              # a fresh seed, printed
//! WSK_SIM_ADVERSARY=off cargo test                 # none
//! ```
//!
//! A test that fails with the adversary on prints the setting that
//! reproduces it (`wsk-sim: adversary on (…); a test started with
//! Sim::start reproduces it with WSK_SIM_ADVERSARY=…`). The choices about a
//! socket's data are drawn from a
//! stream of its own (seeded by the seed and the socket's creation order in
//! the machine), so they repeat whatever other tests ran; completion modes
//! and IRQLs come from one stream per machine, so they repeat as long as the
//! test's own threads call in the same order. Settings a test makes with
//! [`Sim::set_completion_mode`], [`Sim::set_completion_irql`] and
//! [`Sim::set_event_irql`] are left alone. [`Stats`] counts what the
//! adversary handed out (indication elements, MDLs, offsets, unmapped MDLs,
//! mapping failures).
//!
//! # The verifier
//!
//! A misuse is a panic `wsk-sim verifier: … (rule: NAME)` naming one of the
//! [`Rule`]s: waits and `PASSIVE_LEVEL`-only routines at `DISPATCH_LEVEL` or
//! inside event callbacks and completion routines, callback return values
//! their contract forbids, IRPs completed twice or reused while pending,
//! double frees, calls on closed sockets, `WskCloseSocket` racing another
//! call, bad `WskRelease`, `WskCloseSocket` with indications still retained,
//! a socket declared no longer functional but never closed, a second
//! system mapping of an MDL, spin lock misuse, reserved `Flags` that are not
//! 0, options and IOCTLs whose page requires an IRP called without one, an
//! `OutputSizeReturned` with an IRP, a socket context for a socket without
//! callbacks, static event callbacks set after a socket exists, events
//! enabled before the bind or connection, conditional accept on a listener
//! whose table lacks `WskInspectEvent` or `WskAbortEvent`, a driver object's
//! work item given to `IoQueueWorkItem`, and everything still held at
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
mod adversary;
mod delivery;
mod exports;
mod host;
mod indication;
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

pub use adversary::{Adversary, Behaviour, DEFAULT_SEED, ON_BY_DEFAULT};
pub use host::{DriverHost, LineMark};
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
    WINE_NETIO_STUBS,
};
pub use semaphore::{KeInitializeSemaphore, KeReleaseSemaphore};
pub use sim::{PeerConn, PeerListener, PeerUdp, Sim};
pub use timer::{
    KeCancelTimer, KeFlushQueuedDpcs, KeInitializeDpc, KeInitializeTimer, KeInsertQueueDpc,
    KeSetTimer,
};
pub use verifier::Rule;
