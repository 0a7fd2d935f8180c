//! The test-side API: the [`Sim`] guard, configuration setters, fault
//! injection, observation, and the peers that play the remote side.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use wsk_sys::{
    NTSTATUS, PDEVICE_OBJECT, PDRIVER_OBJECT, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_SZ,
};

use crate::adversary::Adversary;
use crate::net::{
    self, ConnState, Ev, Listener, Out, Owner, PeerListenerState, PeerUdpState, State, UdpEnd,
};
use crate::script::{
    CompletionMode, Config, EventDelivery, EventRecord, Fault, Irql, Readiness, Routine, Stats,
};
use crate::verifier::{self, Rule};
use crate::world::{self, WorldGuard};

/// Serializes tests: one simulated machine per process at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A fresh simulated machine for one test.
///
/// `Sim::start()` takes a process-wide lock (tests of one binary run one at
/// a time while they hold a `Sim`), resets the machine, and returns the
/// guard. Dropping it settles pending work, runs the end-of-test checks and
/// panics with a [`LEAK`](crate::Rule::Leak) report (pool blocks with tags
/// and sizes, IRPs, MDLs, work items, sockets, registrations, captured NPIs,
/// address lists, retained indications, handles) or with the first
/// verifier violation that could not be raised where it happened.
///
/// ```
/// let sim = wsk_sim::Sim::start();
/// sim.add_host("192.0.2.7");
/// drop(sim); // end-of-test checks
/// ```
#[must_use = "the machine is reset when the guard drops"]
pub struct Sim {
    _serial: MutexGuard<'static, ()>,
}

impl core::fmt::Debug for Sim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

impl Sim {
    /// Starts a machine with the default [`Config`] and the adversary that
    /// `WSK_SIM_ADVERSARY` asks for ([`Adversary::from_env`]; every behaviour
    /// with [`DEFAULT_SEED`](crate::DEFAULT_SEED) when the variable is not
    /// set, [`ON_BY_DEFAULT`](crate::ON_BY_DEFAULT)).
    pub fn start() -> Sim {
        Sim::with_config(Config {
            adversary: Adversary::from_env(),
            ..Config::default()
        })
    }

    /// Starts a machine whose completion modes and callback IRQLs are drawn
    /// per request from a PRNG seeded with `seed` (deterministic choices;
    /// OS thread scheduling still varies), with the adversary of
    /// [`start`](Self::start).
    pub fn with_seed(seed: u64) -> Sim {
        let cfg = Config {
            seed: Some(seed),
            adversary: Adversary::from_env(),
            ..Config::default()
        };
        Sim::with_config(cfg)
    }

    /// Starts a machine with every adversarial behaviour on, seeded with
    /// `seed` ([`Config::hostile`]).
    pub fn hostile(seed: u64) -> Sim {
        Sim::with_config(Config::hostile(seed))
    }

    /// Starts a machine with `cfg`.
    pub fn with_config(cfg: Config) -> Sim {
        let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        world::stop_threads();
        world::reset(cfg);
        crate::exports::link_all();
        verifier::set_irql(0);
        Sim { _serial: guard }
    }

    /// Raises pending violations, then runs `f` on the locked world.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut WorldGuard) -> R) -> R {
        self.check();
        let mut w = world::lock();
        f(&mut w)
    }

    // -----------------------------------------------------------------
    // Configuration

    /// The adversary of this machine (`None`: off).
    #[must_use]
    pub fn adversary(&self) -> Option<Adversary> {
        self.with(|w| w.cfg.adversary)
    }

    /// Changes the adversary from now on. Sockets that already exist keep
    /// the stream of choices they were created with (seeded by the
    /// adversary then in force, or by 0).
    pub fn set_adversary(&self, adversary: Option<Adversary>) {
        self.with(|w| {
            if let Some(a) = adversary {
                if w.cfg.adversary.is_none() {
                    w.adv_rng = crate::adversary::stream(a.seed(), u64::MAX);
                }
            }
            w.cfg.adversary = adversary;
        });
    }

    /// How finished IRPs are completed (see [`CompletionMode`]); the
    /// adversary's [`CompletionMix`](crate::Behaviour::CompletionMix) then
    /// leaves completions alone.
    pub fn set_completion_mode(&self, mode: CompletionMode) {
        self.with(|w| {
            w.cfg.completion = mode;
            w.pinned.0 = true;
        });
    }

    /// The IRQL completion routines run at; the adversary's
    /// [`IrqlMix`](crate::Behaviour::IrqlMix) then leaves them alone.
    pub fn set_completion_irql(&self, irql: Irql) {
        self.with(|w| {
            w.cfg.completion_irql = irql;
            w.pinned.1 = true;
        });
    }

    /// The IRQL event callbacks run at; `Irql::Dispatch` also sets
    /// `WSK_FLAG_AT_DISPATCH_LEVEL` in their flags. The adversary's
    /// [`IrqlMix`](crate::Behaviour::IrqlMix) then leaves them alone.
    pub fn set_event_irql(&self, irql: Irql) {
        self.with(|w| {
            w.cfg.event_irql = irql;
            w.pinned.2 = true;
        });
    }

    /// Where event callbacks run (see [`EventDelivery`]).
    pub fn set_event_delivery(&self, d: EventDelivery) {
        self.with(|w| w.cfg.event_delivery = d);
    }

    /// Do not install cancel routines on pending IRPs (Wine's behaviour):
    /// `IoCancelIrp` then has no effect until the socket closes.
    pub fn set_ignore_cancel(&self, on: bool) {
        self.with(|w| w.cfg.ignore_cancel = on);
    }

    /// Makes `KeInsertQueueDpc` a stub from now on (`on`), as Wine 8's
    /// `ntoskrnl.exe` has it (`dlls/ntoskrnl.exe/ntoskrnl.c`: it logs a
    /// `FIXME` and returns `TRUE`): the call returns `TRUE` and the DPC never
    /// runs. This is outside Microsoft's contract — the DPC is queued "for
    /// execution"
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinsertqueuedpc>) —
    /// and is for clients that must also run under Wine. A timer's DPC
    /// still runs (Wine runs it from a thread-pool timer callback,
    /// `dlls/ntoskrnl.exe/sync.c`). Wine's `KeFlushQueuedDpcs` is a stub
    /// too; the simulator's still waits for queued timer DPCs.
    pub fn set_queued_dpcs_never_run(&self, on: bool) {
        self.with(|w| crate::timer::set_queued_dpcs_never_run(w, on));
    }

    /// The provider's version range (`MAKE_WSK_VERSION` values; default
    /// 1.0 – 1.0). Clients whose version lies outside get
    /// `STATUS_NOINTERFACE` from `WskCaptureProviderNPI`.
    pub fn set_provider_version(&self, highest: u16, lowest: u16) {
        self.with(|w| {
            w.cfg.highest_version = highest;
            w.cfg.lowest_version = lowest;
            if w.netio.dispatch != 0 {
                // SAFETY: the table is the world's own allocation.
                unsafe {
                    (*(w.netio.dispatch as *mut wsk_sys::WSK_PROVIDER_DISPATCH)).Version = highest;
                };
            }
        });
    }

    /// Whether and when the provider is ready for `WskCaptureProviderNPI`.
    pub fn set_provider_ready(&self, r: Readiness) {
        self.with(|w| crate::netio::set_readiness(w, r));
    }

    /// Whether stream sockets (`WSK_FLAG_STREAM_SOCKET`, Windows 10 1703+)
    /// are supported.
    pub fn set_stream_sockets(&self, on: bool) {
        self.with(|w| w.cfg.stream_sockets = on);
    }

    /// The Windows version `RtlGetVersion` reports (default 10.0.22631,
    /// Windows 11 23H2): for example `(6, 0, 6002)` for Vista SP2,
    /// `(6, 1, 7601)` for Windows 7, `(10, 0, 14393)` for Windows 10 1607.
    /// WSK providers report version 1.0 on every release, so clients learn
    /// which provider-table fields exist from this. Takes effect for the
    /// next `RtlGetVersion` call.
    pub fn set_windows_version(&self, major: u32, minor: u32, build: u32) {
        self.with(|w| w.cfg.windows_version = (major, minor, build));
    }

    /// Reports a change of the transport list: completes every pending
    /// `WSK_TRANSPORT_LIST_CHANGE` request with `STATUS_SUCCESS`.
    pub fn change_transports(&self) {
        let mut out = crate::net::Out::default();
        self.with(|w| {
            let irps = core::mem::take(&mut w.net.transport_change_irps);
            for irp in irps.into_keys() {
                if w.net.client_irps.remove(&irp) {
                    crate::io::finish_pending(w, irp, wsk_sys::STATUS_SUCCESS, 0, &mut out.done);
                }
            }
        });
        crate::net::flush(out);
    }

    /// Whether the client holds cached security descriptors
    /// (`WSK_CACHE_SD` not yet released with `WSK_RELEASE_SD`), and how many.
    #[must_use]
    pub fn cached_security_descriptors(&self) -> usize {
        self.with(|w| w.net.cached_sds.len())
    }

    /// How long `WskDeregister` waits before reporting a violation.
    pub fn set_deregister_timeout(&self, d: Duration) {
        self.with(|w| w.cfg.deregister_timeout = d);
    }

    /// How long blocking peer operations wait before panicking.
    pub fn set_peer_timeout(&self, d: Duration) {
        self.with(|w| w.cfg.peer_timeout = d);
    }

    /// The listen backlog length (connections beyond it are refused).
    pub fn set_backlog(&self, n: usize) {
        self.with(|w| w.cfg.backlog = n);
    }

    /// The size of each element of a receive indication chain (default 1460
    /// bytes; one indication carries up to 64 KiB). Under
    /// [`Behaviour::SplitIndications`](crate::Behaviour::SplitIndications)
    /// the adversary cuts chains its own way instead.
    pub fn set_indication_chunk(&self, n: usize) {
        self.with(|w| w.net.indication_chunk = n.max(1));
    }

    /// Changes the ideal send backlog and indicates it to every connection
    /// socket with `WSK_EVENT_SEND_BACKLOG` enabled.
    pub fn change_ideal_send_backlog(&self, n: usize) {
        let mut out = Out::default();
        self.with(|w| {
            w.cfg.ideal_send_backlog = n;
            let ids: Vec<u64> = w.net.sockets.keys().copied().collect();
            for id in ids {
                if let Some(s) = w.net.sockets.get_mut(&id) {
                    if s.state == State::Open
                        && s.is_connection()
                        && s.events & wsk_sys::WSK_EVENT_SEND_BACKLOG != 0
                    {
                        s.ev_queue.push_back(Ev::SendBacklog(n));
                        out.deliver(id);
                    }
                }
            }
        });
        net::flush(out);
        self.check();
    }

    /// Tells every open socket with an event callback enabled that it is no
    /// longer functional: a NULL `InspectID` in `WskInspectEvent`
    /// (conditional listeners), a NULL `AcceptSocket` in `WskAcceptEvent`
    /// (other listeners), a NULL `DataIndication` in `WskReceiveEvent`, a
    /// NULL datagram indication in `WskReceiveFromEvent`. Under
    /// [`Behaviour::SocketFailure`](crate::Behaviour::SocketFailure) the
    /// sockets then fail every call but `WskCloseSocket` with
    /// `STATUS_FILE_FORCED_CLOSED`, and one never closed is a
    /// [`CLOSE_REQUIRED`](Rule::CloseRequired) violation.
    pub fn indicate_close_required(&self) {
        let mut out = Out::default();
        self.with(|w| {
            let ids: Vec<u64> = w
                .net
                .sockets
                .iter()
                .filter(|(_, s)| s.state == State::Open && net::can_be_told_dead(s))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                net::declare_dead(w, id, &mut out);
            }
        });
        net::flush(out);
        self.check();
    }

    // -----------------------------------------------------------------
    // Faults

    /// Makes the next call of `r` fail with `status` (allocation routines
    /// return NULL; IRP-based routines complete their IRP with `status`).
    pub fn fail_next(&self, r: Routine, status: NTSTATUS) {
        self.with(|w| w.faults.push(r, Fault::Fail(status)));
    }

    /// Makes every call of `r` fail with `status` from now on, once the
    /// faults queued by [`fail_next`](Self::fail_next) and
    /// [`hang_next`](Self::hang_next) are used up, until
    /// [`clear_faults`](Self::clear_faults): a provider that does not offer
    /// `r`, with no count of calls to get right. Allocation routines return
    /// NULL; IRP-based routines complete their IRP with `status`, as
    /// Microsoft's providers do for any non-pending return.
    pub fn fail_always(&self, r: Routine, status: NTSTATUS) {
        self.with(|w| w.faults.fail_always(r, status));
    }

    /// Makes `r` a stub from now on, like Wine's `netio.sys` stubs: every
    /// call returns `status` at once and never completes its IRP (nor
    /// consumes its stack location, nor reads its arguments), until
    /// [`clear_faults`](Self::clear_faults). This is outside Microsoft's
    /// contract — the WSK subsystem completes the IRP of every call
    /// (<https://learn.microsoft.com/windows-hardware/drivers/network/using-irps-with-winsock-kernel-functions>) —
    /// and is for clients that must also run under Wine
    /// (`/work/shared/notes/wine.md`). Faults queued by
    /// [`fail_next`](Self::fail_next) and [`hang_next`](Self::hang_next)
    /// come first; a routine without an IRP just returns `status`;
    /// allocation routines return NULL.
    pub fn stub_out(&self, r: Routine, status: NTSTATUS) {
        self.with(|w| w.faults.stub_out(r, status));
    }

    /// Forgets every fault of `r`: queued ones and a persistent one
    /// ([`fail_always`](Self::fail_always), [`stub_out`](Self::stub_out)).
    pub fn clear_faults(&self, r: Routine) {
        self.with(|w| w.faults.clear(r));
    }

    /// Makes the provider behave like Wine 8's `netio.sys`, as measured in
    /// `/work/shared/notes/wine.md` ("What Wine's `netio.sys` (8.0) does"):
    ///
    /// - every routine of [`WINE_NETIO_STUBS`](crate::WINE_NETIO_STUBS) is
    ///   a stub answering `STATUS_NOT_IMPLEMENTED` without completing its
    ///   IRP ([`stub_out`](Self::stub_out)): no event callbacks
    ///   (`WskControlSocket`), no `WskDisconnect`, no `WskSocketConnect`…;
    /// - `WskSocket` creates listen and connection sockets only: the note
    ///   says other kinds are refused without giving the status; Wine's
    ///   source (`dlls/netio.sys/netio.c`, `wsk_socket`) completes such a
    ///   request with `STATUS_NOT_IMPLEMENTED`, and so does Wine 8 in the
    ///   `wine` CI step (`udp-echo` logs that datagram sockets are
    ///   unavailable with `STATUS_NOT_IMPLEMENTED`)
    ///   ([`Config::other_socket_kinds_refused`](crate::Config::other_socket_kinds_refused));
    /// - `WskCloseSocket` sends FIN where Microsoft's providers reset the
    ///   connection ([`Config::close_sends_fin`](crate::Config::close_sends_fin)):
    ///   with `WskDisconnect` a stub, closing is how a driver ends a
    ///   connection gracefully there;
    /// - every request returns `STATUS_PENDING`, even when complete
    ///   ([`CompletionMode::InlineReturnPending`]);
    /// - `IoCancelIrp` does nothing ([`set_ignore_cancel`](Self::set_ignore_cancel)).
    ///
    /// Later setters override each part (a test may want another
    /// completion mode). The adversary stays as it was.
    pub fn imitate_wine_netio(&self) {
        self.with(|w| {
            for &r in crate::WINE_NETIO_STUBS {
                w.faults.stub_out(r, wsk_sys::STATUS_NOT_IMPLEMENTED);
            }
            w.cfg.other_socket_kinds_refused = Some(wsk_sys::STATUS_NOT_IMPLEMENTED);
            w.cfg.close_sends_fin = true;
            w.cfg.completion = CompletionMode::InlineReturnPending;
            w.pinned.0 = true;
            w.cfg.ignore_cancel = true;
        });
    }

    /// Makes the next call of the IRP-based routine `r` keep its IRP
    /// pending until it is cancelled or its socket closes.
    pub fn hang_next(&self, r: Routine) {
        self.with(|w| w.faults.push(r, Fault::Hang));
    }

    // -----------------------------------------------------------------
    // Kernel helpers

    /// A `DRIVER_OBJECT` for `DriverEntry` and `IoAllocateWorkItem`'s
    /// companions (`IoInitializeWorkItem` takes it as `IoObject`).
    #[must_use]
    pub fn driver_object(&self) -> PDRIVER_OBJECT {
        self.check();
        crate::io::driver_and_device().0 as PDRIVER_OBJECT
    }

    /// A `DEVICE_OBJECT` of [`driver_object`](Self::driver_object), for
    /// `IoAllocateWorkItem` and `IoCallDriver` (whose dispatch routine is the
    /// driver object's `MajorFunction` entry).
    #[must_use]
    pub fn device_object(&self) -> PDEVICE_OBJECT {
        self.check();
        crate::io::driver_and_device().1 as PDEVICE_OBJECT
    }

    /// Sets a `REG_DWORD` value under `path` (e.g.
    /// `\Registry\Machine\System\CurrentControlSet\Services\drv\Parameters`).
    pub fn registry_set_dword(&self, path: &str, name: &str, value: u32) {
        self.check();
        crate::ps::registry_set(path, name, REG_DWORD, value.to_le_bytes().to_vec());
    }

    /// Sets a `REG_SZ` value (stored as NUL-terminated UTF-16).
    pub fn registry_set_sz(&self, path: &str, name: &str, value: &str) {
        self.check();
        let data = value
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        crate::ps::registry_set(path, name, REG_SZ, data);
    }

    /// Sets a `REG_MULTI_SZ` value.
    pub fn registry_set_multi_sz(&self, path: &str, name: &str, values: &[&str]) {
        self.check();
        let mut units: Vec<u16> = Vec::new();
        for v in values {
            units.extend(v.encode_utf16());
            units.push(0);
        }
        units.push(0);
        let data = units.into_iter().flat_map(u16::to_le_bytes).collect();
        crate::ps::registry_set(path, name, REG_MULTI_SZ, data);
    }

    /// Sets a `REG_BINARY` value.
    pub fn registry_set_binary(&self, path: &str, name: &str, value: &[u8]) {
        self.check();
        crate::ps::registry_set(path, name, REG_BINARY, value.to_vec());
    }

    /// Runs `f` with this thread's simulated IRQL at `irql`.
    pub fn at_irql<R>(&self, irql: Irql, f: impl FnOnce() -> R) -> R {
        self.check();
        let old = verifier::set_irql(irql.level());
        let r = f();
        verifier::set_irql(old);
        r
    }

    /// Runs every completion and event delivery queued in
    /// [`CompletionMode::Manual`]; returns how many ran.
    #[must_use]
    pub fn run_pending(&self) -> usize {
        self.check();
        let n = world::run_manual_jobs();
        self.check();
        n
    }

    /// Waits until the worker thread has nothing left to run and queued
    /// work items have finished, and runs the manual jobs.
    pub fn settle(&self) {
        self.check();
        world::run_manual_jobs();
        world::wait_jobs_idle(Duration::from_secs(5));
        crate::io::wait_work_items(Duration::from_secs(5));
        world::run_manual_jobs();
        self.check();
    }

    // -----------------------------------------------------------------
    // Network

    /// Declares a remote host: connections to its closed ports are refused
    /// (`STATUS_CONNECTION_REFUSED`) instead of unreachable.
    pub fn add_host(&self, ip: &str) {
        let ip = crate::addr::parse_ip(ip);
        self.with(|w| {
            w.net.hosts.insert(ip);
        });
    }

    /// Adds an address of the simulated machine itself (defaults, when none
    /// is added: `10.0.0.1` and `fd00::1`, besides loopback).
    pub fn add_local_address(&self, ip: &str) {
        let ip = crate::addr::parse_ip(ip);
        self.with(|w| w.net.local.push(ip));
    }

    /// Makes `WskGetAddressInfo` resolve `name` to `addrs` (and
    /// `WskGetNameInfo` map them back).
    pub fn add_name(&self, name: &str, addrs: &[&str]) {
        let ips = addrs.iter().map(|a| crate::addr::parse_ip(a)).collect();
        self.with(|w| {
            for &ip in &ips {
                w.net.hosts.insert(ip);
            }
            w.net.names.push((name.to_owned(), ips));
        });
    }

    /// Makes `WskGetAddressInfo` resolve service `name` to `port`.
    pub fn add_service(&self, name: &str, port: u16) {
        self.with(|w| {
            w.net.services.insert(name.to_lowercase(), port);
        });
    }

    /// A peer listening at `addr` (`"10.0.0.2:80"`; port 0 picks one).
    ///
    /// # Panics
    ///
    /// If the address is taken.
    #[must_use]
    pub fn peer_listen(&self, addr: &str) -> PeerListener {
        let mut a = crate::addr::parse(addr);
        self.with(|w| {
            if a.port() == 0 {
                let p = w.net.ephemeral(a.ip());
                a.set_port(p);
            }
            assert!(
                !w.net.listeners.contains_key(&a),
                "wsk-sim: peer_listen({a}): address already in use"
            );
            let id = w.net.next();
            w.net.listeners.insert(a, Listener::Peer(id));
            w.net
                .peer_listeners
                .insert(id, PeerListenerState::default());
            w.net.hosts.insert(a.ip());
            PeerListener { id, addr: a }
        })
    }

    /// Connects a peer (from a fresh address of host `10.0.0.2`, or the
    /// address given by [`peer_connect_from`](Self::peer_connect_from)) to
    /// `addr` and waits until the connection is established (a listen
    /// socket of the driver accepted it, possibly after conditional-accept
    /// inspection). `Err` is the refusal status.
    ///
    /// # Errors
    ///
    /// `STATUS_CONNECTION_REFUSED` (no listener, backlog full, rejected),
    /// `STATUS_HOST_UNREACHABLE` (no such host), `STATUS_CONNECTION_RESET`.
    pub fn peer_connect(&self, addr: &str) -> Result<PeerConn, NTSTATUS> {
        self.peer_connect_from("10.0.0.2:0", addr)
    }

    /// [`peer_connect`](Self::peer_connect) from a given address.
    ///
    /// # Errors
    ///
    /// As [`peer_connect`](Self::peer_connect).
    pub fn peer_connect_from(&self, from: &str, addr: &str) -> Result<PeerConn, NTSTATUS> {
        let c = self.peer_connect_start_from(from, addr)?;
        c.established()?;
        Ok(c)
    }

    /// Starts a peer connection without waiting for the driver's
    /// conditional-accept decision; see [`PeerConn::established`].
    ///
    /// # Errors
    ///
    /// As [`peer_connect`](Self::peer_connect), for immediate refusals.
    pub fn peer_connect_start(&self, addr: &str) -> Result<PeerConn, NTSTATUS> {
        self.peer_connect_start_from("10.0.0.2:0", addr)
    }

    fn peer_connect_start_from(&self, from: &str, addr: &str) -> Result<PeerConn, NTSTATUS> {
        let to = crate::addr::parse(addr);
        let mut from = crate::addr::parse(from);
        if from.is_ipv4() != to.is_ipv4() {
            from = SocketAddr::new(
                if to.is_ipv4() {
                    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2))
                } else {
                    std::net::IpAddr::V6(std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2))
                },
                from.port(),
            );
        }
        let mut out = Out::default();
        let r = self.with(|w| {
            if from.port() == 0 {
                let p = w.net.ephemeral(from.ip());
                from.set_port(p);
            }
            w.net.hosts.insert(from.ip());
            net::connect_to(w, Owner::Peer, from, to, &mut out)
        });
        net::flush(out);
        self.check();
        r.map(|conn| PeerConn { conn, end: 0 })
    }

    /// A peer UDP socket bound at `addr` (port 0 picks one).
    ///
    /// # Panics
    ///
    /// If the address is taken.
    #[must_use]
    pub fn peer_udp(&self, addr: &str) -> PeerUdp {
        let mut a = crate::addr::parse(addr);
        self.with(|w| {
            if a.port() == 0 {
                let p = w.net.ephemeral(a.ip());
                a.set_port(p);
            }
            assert!(
                !w.net.udp.contains_key(&a),
                "wsk-sim: peer_udp({a}): address already in use"
            );
            let id = w.net.next();
            w.net.udp.insert(a, UdpEnd::Peer(id));
            w.net.peer_udp.insert(
                id,
                PeerUdpState {
                    queue: std::collections::VecDeque::new(),
                },
            );
            w.net.hosts.insert(a.ip());
            PeerUdp { id, addr: a }
        })
    }

    // -----------------------------------------------------------------
    // Observation

    /// Counters and logs (events delivered with their return values, IRPs
    /// completed, `DbgPrint` output, …).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.with(|w| w.stats.clone())
    }

    /// Every event callback made so far, in order.
    #[must_use]
    pub fn events(&self) -> Vec<EventRecord> {
        self.with(|w| w.stats.events.clone())
    }

    /// Open sockets (created or accepted by the client, not yet closed).
    #[must_use]
    pub fn open_sockets(&self) -> usize {
        self.with(|w| {
            w.net
                .sockets
                .values()
                .filter(|s| s.state == State::Open)
                .count()
        })
    }

    /// Bytes of client pool currently allocated.
    #[must_use]
    pub fn pool_in_use(&self) -> usize {
        self.with(|w| w.pool.blocks.values().map(|b| b.size).sum())
    }

    /// What would be reported as leaked if the test ended now.
    #[must_use]
    pub fn leaks(&self) -> Vec<String> {
        self.with(|w| leak_report(w))
    }

    /// Takes every violation recorded so far (raised or not) so that the
    /// test can assert on them; they are then not raised again.
    #[must_use]
    pub fn take_violations(&self) -> Vec<String> {
        let mut w = world::lock();
        let v = core::mem::take(&mut w.violations);
        v.into_iter().map(|(m, _)| m).collect()
    }

    /// Raises (panics with) the first violation recorded where it could not
    /// be raised (inside an exported routine or a callback). Every `Sim` and
    /// peer method does this first.
    ///
    /// # Panics
    ///
    /// With the violation's message.
    pub fn check(&self) {
        raise_pending();
    }

    /// Ends the test explicitly (same as dropping the guard).
    pub fn finish(self) {
        drop(self);
    }
}

/// Panics with an unraised violation, if any.
pub(crate) fn raise_pending() {
    if std::thread::panicking() {
        return;
    }
    if let Some(msg) = world::take_unraised_violation() {
        panic!("{msg}");
    }
}

/// What of the driver's code can still run: timers still set, DPCs queued
/// or running, system threads not terminated. None may be left when
/// `DriverUnload` returns: "Drivers must cancel any active timers in their
/// Unload routines"
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettimer>),
/// and a driver-created thread must have called `PsTerminateSystemThread`
/// "before the driver is unloaded"
/// (<https://learn.microsoft.com/windows-hardware/drivers/kernel/releasing-driver-allocated-resources>).
pub(crate) fn code_outliving_unload() -> Vec<String> {
    let w = world::lock();
    let mut out = crate::timer::leaks(&w);
    out.extend(crate::ps::running_threads(&w.ob));
    out
}

fn leak_report(w: &WorldGuard) -> Vec<String> {
    let mut out = Vec::new();
    for (addr, b) in &w.pool.blocks {
        out.push(format!(
            "pool block {addr:#x}: {} bytes, tag {}{} not freed",
            b.size,
            crate::pool::tag_string(b.tag),
            if b.paged { " (paged)" } else { "" }
        ));
    }
    for (addr, r) in &w.io.irps {
        if r.allocated {
            out.push(format!(
                "IRP {addr:#x} from IoAllocateIrp not freed (IoFreeIrp)"
            ));
        }
    }
    for (addr, size) in &w.io.mdls {
        out.push(format!(
            "MDL {addr:#x} ({size} bytes) from IoAllocateMdl not freed (IoFreeMdl)"
        ));
    }
    for (addr, r) in &w.io.work_items {
        if r.allocated {
            out.push(format!(
                "work item {addr:#x} from IoAllocateWorkItem not freed (IoFreeWorkItem)"
            ));
        }
    }
    out.extend(net::leaks(&w.net, &w.io));
    out.extend(crate::netio::leaks(&w.netio));
    out.extend(crate::ps::leaks(&w.ob));
    out.extend(crate::timer::leaks(w));
    out
}

impl Drop for Sim {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        let adversary = world::lock().cfg.adversary;
        let reproduce = adversary.map_or_else(String::new, |a| {
            format!(
                "\nwsk-sim: adversary on ({a}); a test started with Sim::start reproduces it \
                 with WSK_SIM_ADVERSARY={a}"
            )
        });
        if panicking && !reproduce.is_empty() {
            eprintln!("{}", reproduce.trim_start());
        }
        if !panicking {
            world::run_manual_jobs();
            world::wait_jobs_idle(Duration::from_secs(5));
            world::run_manual_jobs();
            crate::io::wait_work_items(Duration::from_secs(5));
        }
        let (leaks, unraised, not_closed) = {
            let mut w = world::lock();
            let leaks = leak_report(&w);
            let not_closed: Vec<String> = w
                .net
                .sockets
                .iter()
                .filter(|(_, s)| s.dead && s.state == State::Open)
                .map(|(id, s)| format!("{} socket #{id}", s.kind.name()))
                .collect();
            let unraised: Vec<String> = w
                .violations
                .iter()
                .filter(|(_, raised)| !raised)
                .map(|(m, _)| m.clone())
                .collect();
            for v in &mut w.violations {
                v.1 = true;
            }
            (leaks, unraised, not_closed)
        };
        world::stop_threads();
        {
            let mut w = world::lock();
            crate::pool::free_all(&mut w.pool);
            crate::io::free_all(&mut w.io);
            net::free_all(&mut w.net);
            crate::netio::free_all(&mut w.netio);
            crate::ps::free_all(&mut w.ob);
        }
        verifier::set_irql(0);
        if panicking {
            return;
        }
        if let Some(first) = unraised.first() {
            let more = if unraised.len() > 1 {
                format!(" (and {} more violation(s))", unraised.len() - 1)
            } else {
                String::new()
            };
            panic!("{first}{more}{reproduce}");
        }
        if !not_closed.is_empty() {
            let msg = verifier::message(
                Rule::CloseRequired,
                format_args!(
                    "{} told it is no longer functional (NULL indication) but never closed \
                     (WskCloseSocket)",
                    not_closed.join(", ")
                ),
            );
            panic!("{msg}{reproduce}");
        }
        if !leaks.is_empty() {
            let msg = verifier::message(
                Rule::Leak,
                format_args!(
                    "still held at the end of the test:\n  {}\n",
                    leaks.join("\n  ")
                ),
            );
            panic!("{msg}{reproduce}");
        }
    }
}

// ---------------------------------------------------------------------------
// Peers

fn peer_wait<T>(what: &str, mut f: impl FnMut(&mut WorldGuard) -> Option<T>) -> T {
    raise_pending();
    let mut w = world::lock();
    let deadline = Instant::now() + w.cfg.peer_timeout;
    loop {
        if let Some(v) = f(&mut w) {
            return v;
        }
        if !w.manual.is_empty() {
            drop(w);
            world::run_manual_jobs();
            raise_pending();
            w = world::lock();
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            drop(w);
            panic!("wsk-sim: peer timed out waiting for {what}");
        }
        w.wait(Some((deadline - now).min(Duration::from_millis(50))));
    }
}

/// A listening peer (the remote side of the driver's connects).
#[derive(Debug)]
pub struct PeerListener {
    id: u64,
    addr: SocketAddr,
}

impl PeerListener {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the driver's next connection.
    ///
    /// # Panics
    ///
    /// After the peer timeout.
    #[must_use]
    pub fn accept(&self) -> PeerConn {
        let id = self.id;
        peer_wait("a connection", |w| {
            let conn = w.net.peer_listeners.get_mut(&id)?.backlog.pop_front()?;
            Some(PeerConn { conn, end: 1 })
        })
    }

    /// The next connection, if one is waiting.
    #[must_use]
    pub fn try_accept(&self) -> Option<PeerConn> {
        raise_pending();
        let mut w = world::lock();
        let conn = w
            .net
            .peer_listeners
            .get_mut(&self.id)?
            .backlog
            .pop_front()?;
        Some(PeerConn { conn, end: 1 })
    }

    /// Stops listening: later connects are refused, waiting ones reset.
    pub fn close(&self) {
        let mut out = Out::default();
        {
            let mut w = world::lock();
            let Some(pl) = w.net.peer_listeners.get_mut(&self.id) else {
                return;
            };
            if pl.closed {
                return;
            }
            pl.closed = true;
            let waiting: Vec<u64> = pl.backlog.drain(..).collect();
            if w.net.listeners.get(&self.addr) == Some(&Listener::Peer(self.id)) {
                w.net.listeners.remove(&self.addr);
            }
            for c in waiting {
                net::conn_reset(&mut w, c, 1, &mut out);
            }
        }
        net::flush(out);
    }
}

impl Drop for PeerListener {
    fn drop(&mut self) {
        self.close();
    }
}

/// The remote end of a TCP-like connection, driven by the test.
///
/// Blocking methods wait at most the peer timeout
/// ([`Sim::set_peer_timeout`]) and then panic; while waiting they run the
/// jobs of [`CompletionMode::Manual`].
#[derive(Debug)]
pub struct PeerConn {
    conn: u64,
    end: usize,
}

impl PeerConn {
    #[allow(clippy::unused_self)] // reads as an action of this connection
    fn act(&self, f: impl FnOnce(&mut WorldGuard, &mut Out)) {
        raise_pending();
        let mut out = Out::default();
        {
            let mut w = world::lock();
            f(&mut w, &mut out);
        }
        net::flush(out);
        raise_pending();
    }

    /// This end's address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        world::lock().net.conns[&self.conn].ends[self.end].addr
    }

    /// The driver's address.
    #[must_use]
    pub fn remote_addr(&self) -> SocketAddr {
        world::lock().net.conns[&self.conn].ends[1 - self.end].addr
    }

    /// Waits until the driver's listen socket decided on a connection
    /// started with [`Sim::peer_connect_start`].
    ///
    /// # Errors
    ///
    /// The refusal status.
    pub fn established(&self) -> Result<(), NTSTATUS> {
        let conn = self.conn;
        peer_wait("the driver to accept the connection", |w| {
            match w.net.conns.get(&conn)?.state {
                ConnState::Inspecting => None,
                ConnState::Established => Some(Ok(())),
                ConnState::Refused(st) => Some(Err(st)),
            }
        })
    }

    /// Sends bytes to the driver (delivered at once: pending receives
    /// complete, receive events fire).
    ///
    /// # Panics
    ///
    /// After this end closed or aborted.
    pub fn send(&self, data: &[u8]) {
        let (conn, end) = (self.conn, self.end);
        self.act(|w, out| {
            let tx_fin = w.net.conns.get(&conn).is_some_and(|c| c.ends[end].tx_fin);
            assert!(!tx_fin, "wsk-sim: PeerConn::send after close/abort");
            net::conn_send(w, conn, end, data, out);
        });
    }

    /// Bytes received so far, without waiting.
    #[must_use]
    pub fn try_recv(&self) -> Vec<u8> {
        raise_pending();
        let mut w = world::lock();
        let Some(c) = w.net.conns.get_mut(&self.conn) else {
            return Vec::new();
        };
        let data = c.ends[self.end].rx.drain(..).collect();
        drop(w);
        self.read_some();
        data
    }

    /// Waits for data and returns up to `max` bytes; empty at end of stream
    /// (the driver disconnected gracefully or reset).
    #[must_use]
    pub fn recv(&self, max: usize) -> Vec<u8> {
        let (conn, end) = (self.conn, self.end);
        let data = peer_wait("data from the driver", |w| {
            let e = &mut w.net.conns.get_mut(&conn)?.ends[end];
            if !e.rx.is_empty() {
                let n = e.rx.len().min(max);
                return Some(e.rx.drain(..n).collect());
            }
            (e.rx_fin || e.rx_reset).then(Vec::new)
        });
        self.read_some();
        data
    }

    /// The peer read bytes: the driver's sends waiting for room complete
    /// ([`Behaviour::LateSends`](crate::Behaviour::LateSends)).
    fn read_some(&self) {
        let (conn, end) = (self.conn, self.end);
        self.act(|w, out| net::acknowledge(w, conn, end, out));
    }

    /// Waits for exactly `n` bytes.
    ///
    /// # Panics
    ///
    /// If the stream ends first, or after the peer timeout.
    #[must_use]
    pub fn recv_exact(&self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let chunk = self.recv(n - v.len());
            assert!(
                !chunk.is_empty(),
                "wsk-sim: PeerConn::recv_exact({n}): stream ended after {} bytes",
                v.len()
            );
            v.extend(chunk);
        }
        v
    }

    /// Waits until the driver disconnects (gracefully or not) and returns
    /// everything received.
    #[must_use]
    pub fn recv_until_closed(&self) -> Vec<u8> {
        let mut v = Vec::new();
        loop {
            let chunk = self.recv(usize::MAX);
            if chunk.is_empty() {
                return v;
            }
            v.extend(chunk);
        }
    }

    /// Whether the driver sent FIN (graceful disconnect or close).
    #[must_use]
    pub fn is_closed_by_driver(&self) -> bool {
        let w = world::lock();
        w.net
            .conns
            .get(&self.conn)
            .is_some_and(|c| c.ends[self.end].rx_fin || c.ends[self.end].rx_reset)
    }

    /// Whether the driver reset the connection (abortive disconnect, or
    /// `WskCloseSocket` without a prior graceful disconnect).
    #[must_use]
    pub fn was_reset(&self) -> bool {
        let w = world::lock();
        w.net
            .conns
            .get(&self.conn)
            .is_some_and(|c| c.ends[self.end].rx_reset)
    }

    /// Waits until the driver disconnects; returns whether it was a reset.
    #[must_use]
    pub fn wait_closed(&self) -> bool {
        let (conn, end) = (self.conn, self.end);
        peer_wait("the driver to disconnect", |w| {
            let e = &w.net.conns.get(&conn)?.ends[end];
            (e.rx_fin || e.rx_reset).then_some(e.rx_reset)
        })
    }

    /// Graceful disconnect (FIN): the driver's pending receive completes
    /// with 0 bytes, or its disconnect event fires; the driver may still
    /// send.
    pub fn close(&self) {
        let (conn, end) = (self.conn, self.end);
        self.act(|w, out| net::conn_fin(w, conn, end, out));
    }

    /// Abortive disconnect (RST): the driver's pending receives complete
    /// with `STATUS_CONNECTION_RESET`, or its disconnect event fires with
    /// `WSK_FLAG_ABORTIVE`.
    pub fn abort(&self) {
        let (conn, end) = (self.conn, self.end);
        self.act(|w, out| net::conn_reset(w, conn, end, out));
    }

    /// Indicates a new ideal send backlog to the driver's socket of this
    /// connection (if it enabled `WSK_EVENT_SEND_BACKLOG`).
    pub fn indicate_send_backlog(&self, n: usize) {
        let (conn, end) = (self.conn, self.end);
        self.act(|w, out| {
            let owner = w.net.conns.get(&conn).map(|c| c.ends[1 - end].owner);
            if let Some(Owner::Socket(sid)) = owner {
                if let Some(s) = w.net.sockets.get_mut(&sid) {
                    if s.events & wsk_sys::WSK_EVENT_SEND_BACKLOG != 0 {
                        s.ev_queue.push_back(Ev::SendBacklog(n));
                        out.deliver(sid);
                    }
                }
            }
        });
    }
}

/// A peer UDP socket.
#[derive(Debug)]
pub struct PeerUdp {
    id: u64,
    addr: SocketAddr,
}

impl PeerUdp {
    /// Its address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a datagram to `to` (`"10.0.0.1:53"`).
    pub fn send_to(&self, to: &str, data: &[u8]) {
        raise_pending();
        let to = crate::addr::parse(to);
        let mut out = Out::default();
        {
            let mut w = world::lock();
            net::udp_deliver(&mut w, self.addr, to, data.to_vec(), &mut out);
        }
        net::flush(out);
        raise_pending();
    }

    /// Waits for a datagram.
    ///
    /// # Panics
    ///
    /// After the peer timeout.
    #[must_use]
    pub fn recv_from(&self) -> (SocketAddr, Vec<u8>) {
        let id = self.id;
        peer_wait("a datagram", |w| {
            let d = w.net.peer_udp.get_mut(&id)?.queue.pop_front()?;
            Some((d.from, d.data))
        })
    }

    /// A datagram, if one is waiting.
    #[must_use]
    pub fn try_recv_from(&self) -> Option<(SocketAddr, Vec<u8>)> {
        raise_pending();
        let mut w = world::lock();
        let d = w.net.peer_udp.get_mut(&self.id)?.queue.pop_front()?;
        Some((d.from, d.data))
    }
}

impl Drop for PeerUdp {
    fn drop(&mut self) {
        let mut w = world::lock();
        if w.net.udp.get(&self.addr) == Some(&UdpEnd::Peer(self.id)) {
            w.net.udp.remove(&self.addr);
        }
        w.net.peer_udp.remove(&self.id);
    }
}
