//! The simulated network: sockets (the provider's objects), TCP-like
//! connections, UDP-like endpoints, peers driven by the test, and event
//! delivery to the client's callbacks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use wsk_sys::{
    NTSTATUS, PWSK_SOCKET, STATUS_CANCELLED, STATUS_CONNECTION_RESET, STATUS_SUCCESS,
    WSK_CLIENT_CONNECTION_DISPATCH, WSK_CLIENT_DATAGRAM_DISPATCH, WSK_CLIENT_LISTEN_DISPATCH,
    WSK_EVENT_ACCEPT, WSK_EVENT_DISCONNECT, WSK_EVENT_RECEIVE, WSK_EVENT_RECEIVE_FROM,
    WSK_EVENT_SEND_BACKLOG, WSK_INSPECT_ID, WSK_SOCKET,
};

use crate::adversary::Behaviour;
use crate::io::{self, Done, Seg};
use crate::pool::raw_free;
use crate::script::EventDelivery;
use crate::world::{self, Rng, World};

/// The provider's socket object: `WSK_SOCKET` followed by the socket id.
#[repr(C)]
pub(crate) struct SocketObj {
    pub(crate) header: WSK_SOCKET,
    pub(crate) id: u64,
}

/// Socket kinds (`WSK_FLAG_*_SOCKET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Basic,
    Listen,
    Connection,
    Datagram,
    Stream,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Basic => "basic",
            Kind::Listen => "listen",
            Kind::Connection => "connection",
            Kind::Datagram => "datagram",
            Kind::Stream => "stream",
        }
    }
}

/// Lifecycle of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Accepted by the provider, waiting in a listen backlog (not yet the
    /// client's).
    Unaccepted,
    Open,
    Closed,
}

/// A `WskSend` waiting for its bytes to fit in the receiver's window
/// ([`Behaviour::LateSends`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UnsentReq {
    pub(crate) irp: usize,
    /// The receiver's `rx_added` once the send's bytes were in.
    pub(crate) mark: u64,
    pub(crate) len: usize,
    /// The receiver's window: how many unread bytes it holds before the
    /// send counts as sent.
    pub(crate) window: u64,
}

/// The receive window of the owner of `(conn, end)`: its `SO_RCVBUF` if a
/// socket set one, else 64 KiB (what the simulator reports as the default)
/// ([`Behaviour::LateSends`]).
pub(crate) fn receive_window(w: &World, conn: u64, end: usize) -> u64 {
    let owner = w.net.conns.get(&conn).map(|c| c.ends[end].owner);
    let set = match owner {
        Some(Owner::Socket(sid)) => w.net.sockets.get(&sid).and_then(|s| {
            s.options
                .get(&(wsk_sys::SOL_SOCKET, wsk_sys::SO_RCVBUF))
                .filter(|v| v.len() >= 4)
                .map(|v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
        }),
        _ => None,
    };
    u64::from(set.unwrap_or(65536))
}

/// A pending `WskReceive`.
#[derive(Clone, Debug)]
pub(crate) struct RecvReq {
    pub(crate) irp: usize,
    pub(crate) segs: Vec<Seg>,
    pub(crate) mdls: Vec<usize>,
    pub(crate) waitall: bool,
    /// `WSK_FLAG_DRAIN`: discard data until the connection ends.
    pub(crate) drain: bool,
    pub(crate) filled: usize,
}

/// A pending `WskReceiveFrom`.
#[derive(Clone, Debug)]
pub(crate) struct RecvFromReq {
    pub(crate) irp: usize,
    pub(crate) segs: Vec<Seg>,
    pub(crate) mdls: Vec<usize>,
    pub(crate) remote: usize,
    pub(crate) control_len: usize,
    /// `ControlInfo`: the client's control buffer (0: none).
    pub(crate) control_info: usize,
    pub(crate) control_flags: usize,
}

/// A pending `WskAccept`.
#[derive(Clone, Debug)]
pub(crate) struct AcceptReq {
    pub(crate) irp: usize,
    pub(crate) context: usize,
    pub(crate) dispatch: usize,
    pub(crate) local: usize,
    pub(crate) remote: usize,
}

/// A received datagram.
#[derive(Clone, Debug)]
pub(crate) struct Datagram {
    pub(crate) from: SocketAddr,
    /// The address it was sent to (for `IP_PKTINFO` control information).
    pub(crate) to: SocketAddr,
    pub(crate) data: Vec<u8>,
}

/// The control information the provider gives with a datagram under
/// [`Behaviour::ControlInfo`]: one `CMSGHDR`-headed `IP_PKTINFO`
/// (`IN_PKTINFO`) or `IPV6_PKTINFO` (`IN6_PKTINFO`) object naming the
/// address the datagram arrived on, as the socket's family sees it
/// (`ws2def.h`/`ws2ipdef.h` layouts from `wsk-sys`), padded to
/// `CMSG_SPACE`. `None` when the behaviour is off.
pub(crate) fn control_info(w: &World, sid: u64, d: &Datagram) -> Option<Vec<u8>> {
    if !w.adversary(Behaviour::ControlInfo) {
        return None;
    }
    let family = w.net.sockets.get(&sid)?.family;
    let to = as_seen_by(family, d.to);
    let (level, kind, data): (i32, u32, Vec<u8>) = match to.ip() {
        IpAddr::V4(ip) => {
            let mut data = ip.octets().to_vec();
            data.extend_from_slice(&1u32.to_ne_bytes()); // ipi_ifindex
            debug_assert_eq!(data.len(), size_of::<wsk_sys::IN_PKTINFO>());
            (wsk_sys::IPPROTO_IP, wsk_sys::IP_PKTINFO, data)
        }
        IpAddr::V6(ip) => {
            let mut data = ip.octets().to_vec();
            data.extend_from_slice(&1u32.to_ne_bytes()); // ipi6_ifindex
            debug_assert_eq!(data.len(), size_of::<wsk_sys::IN6_PKTINFO>());
            (wsk_sys::IPPROTO_IPV6, wsk_sys::IPV6_PKTINFO, data)
        }
    };
    let mut out = vec![0u8; wsk_sys::CMSG_SPACE(data.len())];
    let header = wsk_sys::CMSGHDR {
        cmsg_len: wsk_sys::CMSG_LEN(data.len()),
        cmsg_level: level,
        cmsg_type: i32::try_from(kind).unwrap_or(0),
    };
    // SAFETY: `out` has room for the header (CMSG_SPACE includes it).
    unsafe {
        out.as_mut_ptr()
            .cast::<wsk_sys::CMSGHDR>()
            .write_unaligned(header);
    }
    let at = wsk_sys::CMSG_LEN(0);
    out[at..at + data.len()].copy_from_slice(&data);
    Some(out)
}

/// Queued (discrete) events.
#[derive(Clone, Debug)]
pub(crate) enum Ev {
    Disconnect {
        abortive: bool,
    },
    SendBacklog(usize),
    Accept(u64),
    Inspect(u64),
    Abort(WSK_INSPECT_ID),
    /// A NULL indication: "close this socket".
    CloseRequired,
}

/// One provider socket.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent state flags
pub(crate) struct Socket {
    pub(crate) obj: usize,
    pub(crate) client: usize,
    pub(crate) kind: Kind,
    pub(crate) family: u16,
    pub(crate) socktype: u16,
    pub(crate) context: usize,
    /// Client tables resolved from the socket's dispatch argument.
    pub(crate) conn_dispatch: usize,
    pub(crate) listen_dispatch: usize,
    pub(crate) dgram_dispatch: usize,
    pub(crate) state: State,
    pub(crate) calls_in_progress: u32,
    pub(crate) callbacks_in_progress: u32,
    /// The thread delivering this socket's events right now.
    pub(crate) delivering: Option<std::thread::ThreadId>,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) options: BTreeMap<(u32, u32), Vec<u8>>,
    pub(crate) events: u32,
    /// Events enabled by `WSK_SET_STATIC_EVENT_CALLBACKS` (a subset of
    /// `events`).
    pub(crate) static_events: u32,
    pub(crate) ev_queue: VecDeque<Ev>,
    /// The `WSK_EVENT_*` bit of the callback running now (0: none).
    pub(crate) running_event: u32,
    /// Disables waiting for the running callback to return
    /// (`SO_WSK_EVENT_CALLBACK`, [`Behaviour::DisableWaitsForCallbacks`]):
    /// the events to clear, and the IRP to complete (0: none, the call
    /// returned `STATUS_EVENT_PENDING`).
    pub(crate) deferred_disables: Vec<(u32, usize)>,
    /// The provider declared the socket no longer functional (NULL
    /// indication under [`Behaviour::SocketFailure`]): every call but
    /// `WskCloseSocket` fails with `STATUS_FILE_FORCED_CLOSED`.
    pub(crate) dead: bool,
    /// `SIO_WSK_SET_TCP_SILENT_MODE` succeeded: closing is the only valid
    /// operation left, nothing goes on the wire, what arrives is dropped.
    pub(crate) silent: bool,
    /// The adversary's choices for this socket (indication shapes).
    pub(crate) rng: Rng,
    // Connection side.
    pub(crate) conn: Option<(u64, usize)>,
    pub(crate) connect_irp: Option<usize>,
    pub(crate) connect_data: Vec<u8>,
    /// The pending connect is a `WskSocketConnect` (completes with the
    /// socket pointer).
    pub(crate) connect_is_socket_connect: bool,
    pub(crate) recv_irps: VecDeque<RecvReq>,
    pub(crate) blocked: bool,
    /// How many entries of `retained` belong to the receive indication whose
    /// callback is running (recorded before the call; see
    /// `delivery::deliver_receive`): not retained yet.
    pub(crate) in_callback: usize,
    /// Receive-from indications stopped by a refusal resume with the next
    /// datagram (statically enabled event, [`Behaviour::ReceiveFromDisabledOnRefusal`]).
    pub(crate) resume_on_arrival: bool,
    pub(crate) aborted_locally: bool,
    pub(crate) disconnect_queued: bool,
    // Listen side.
    pub(crate) listening: bool,
    pub(crate) conditional: bool,
    pub(crate) backlog: VecDeque<u64>,
    pub(crate) accept_irps: VecDeque<AcceptReq>,
    pub(crate) inspecting: BTreeMap<(usize, u32), u64>,
    pub(crate) parent: Option<u64>,
    /// An unaccepted socket whose `WskAcceptEvent` is running: the client
    /// holds its `PWSK_SOCKET` and may keep it, so a FIN or RST arriving now
    /// must not withdraw it.
    pub(crate) offered: bool,
    pub(crate) inspect_id: Option<WSK_INSPECT_ID>,
    // Datagram side.
    pub(crate) dgrams: VecDeque<Datagram>,
    pub(crate) recv_from_irps: VecDeque<RecvFromReq>,
    /// The fixed destination of `WskSendTo` without an address
    /// (`SIO_WSK_SET_SENDTO_ADDRESS`).
    pub(crate) fixed_remote: Option<SocketAddr>,
    /// The fixed remote address (`SIO_WSK_SET_REMOTE_ADDRESS`): the
    /// destination of `WskSendTo` without an address, and the only sender
    /// whose datagrams are accepted.
    pub(crate) remote_filter: Option<SocketAddr>,
    // Misc.
    pub(crate) hung: BTreeSet<usize>,
    /// A `WskListen` kept pending until the first connection arrives
    /// ([`Behaviour::ListenPends`]).
    pub(crate) listen_irp: Option<usize>,
    /// Data or datagrams are out in a receive (or receive-from) indication
    /// whose callback has not returned: they are still the connection's
    /// next bytes (or the next datagrams), so a `WskReceive` (or
    /// `WskReceiveFrom`) made meanwhile waits for the callback's answer
    /// instead of taking what comes after them.
    pub(crate) indicating: bool,
    /// The next receive (or receive-from) indication, or accept event, goes
    /// to the callback although a request is pending
    /// ([`Behaviour::CallbacksRaceRequests`]).
    pub(crate) race: bool,
    /// A graceful `WskDisconnect` that never completes on its own
    /// ([`Behaviour::GracefulDisconnectStuck`]).
    pub(crate) stuck_disconnect: Option<usize>,
    /// The ideal send backlog this socket reports, once it changed
    /// ([`Behaviour::SendBacklogChanges`]).
    pub(crate) ideal_send_backlog: Option<usize>,
    /// Sends whose bytes do not fit in the receiver's window yet
    /// ([`Behaviour::LateSends`]), oldest first.
    pub(crate) unsent: VecDeque<UnsentReq>,
    pub(crate) close_irp: Option<usize>,
    /// Retained indications: element address → (allocation size, datagram?).
    pub(crate) retained: BTreeMap<usize, (usize, bool)>,
}

impl Socket {
    fn new(obj: usize, client: usize, kind: Kind, family: u16, socktype: u16, rng: Rng) -> Self {
        Socket {
            obj,
            client,
            kind,
            family,
            socktype,
            context: 0,
            conn_dispatch: 0,
            listen_dispatch: 0,
            dgram_dispatch: 0,
            state: State::Open,
            calls_in_progress: 0,
            callbacks_in_progress: 0,
            delivering: None,
            local: None,
            remote: None,
            options: BTreeMap::new(),
            events: 0,
            static_events: 0,
            ev_queue: VecDeque::new(),
            running_event: 0,
            deferred_disables: Vec::new(),
            dead: false,
            silent: false,
            rng,
            conn: None,
            connect_irp: None,
            connect_data: Vec::new(),
            connect_is_socket_connect: false,
            recv_irps: VecDeque::new(),
            blocked: false,
            in_callback: 0,
            resume_on_arrival: false,
            aborted_locally: false,
            disconnect_queued: false,
            listening: false,
            conditional: false,
            backlog: VecDeque::new(),
            accept_irps: VecDeque::new(),
            inspecting: BTreeMap::new(),
            parent: None,
            offered: false,
            inspect_id: None,
            dgrams: VecDeque::new(),
            recv_from_irps: VecDeque::new(),
            fixed_remote: None,
            remote_filter: None,
            hung: BTreeSet::new(),
            listen_irp: None,
            indicating: false,
            race: false,
            stuck_disconnect: None,
            ideal_send_backlog: None,
            unsent: VecDeque::new(),
            close_irp: None,
            retained: BTreeMap::new(),
        }
    }

    /// Whether an IPv6 socket also takes IPv4 traffic: `IPV6_V6ONLY` was set
    /// to 0 (the default is 1, as on Windows).
    pub(crate) fn dual_stack(&self) -> bool {
        self.family == wsk_sys::AF_INET6
            && self
                .options
                .get(&(41, wsk_sys::IPV6_V6ONLY))
                .is_some_and(|v| v.len() >= 4 && v[..4] == [0, 0, 0, 0])
    }

    /// [`Kind::Listen`] for listen sockets and listening stream sockets,
    /// otherwise the socket's kind.
    pub(crate) fn listen_kind(&self) -> Kind {
        if self.kind == Kind::Stream && self.listening {
            Kind::Listen
        } else {
            self.kind
        }
    }

    /// Whether the socket acts as a connection (connection kind, or a stream
    /// socket that connected or was accepted).
    pub(crate) fn is_connection(&self) -> bool {
        self.kind == Kind::Connection || (self.kind == Kind::Stream && !self.listening)
    }
}

/// Who owns one end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Socket(u64),
    Peer,
    /// Nobody any more (closed/destroyed).
    Gone,
}

/// One end of a TCP-like connection.
#[derive(Clone, Debug)]
pub(crate) struct End {
    pub(crate) owner: Owner,
    pub(crate) addr: SocketAddr,
    pub(crate) rx: VecDeque<u8>,
    /// Bytes ever added to `rx` (what was read is `rx_added - rx.len()`).
    pub(crate) rx_added: u64,
    /// The other end sent FIN (after `rx` drains, reads see end of stream).
    pub(crate) rx_fin: bool,
    /// The other end reset the connection.
    pub(crate) rx_reset: bool,
    /// This end sent FIN.
    pub(crate) tx_fin: bool,
}

/// Connection setup state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Waiting for a conditional-accept decision.
    Inspecting,
    Established,
    Refused(NTSTATUS),
}

/// A TCP-like connection: `ends[0]` connected to `ends[1]` (the listening
/// side).
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub(crate) ends: [End; 2],
    pub(crate) state: ConnState,
    /// Listen socket that received it (for inspect/abort).
    pub(crate) listener: Option<u64>,
    pub(crate) inspect_id: Option<WSK_INSPECT_ID>,
}

/// A listening endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listener {
    Socket(u64),
    Peer(u64),
}

/// A UDP-like endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UdpEnd {
    Socket(u64),
    Peer(u64),
}

/// A test-side listener.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerListenerState {
    pub(crate) backlog: VecDeque<u64>,
    pub(crate) closed: bool,
}

/// A test-side UDP socket.
#[derive(Clone, Debug)]
pub(crate) struct PeerUdpState {
    pub(crate) queue: VecDeque<Datagram>,
}

/// An address list handed out by `WskGetAddressInfo`.
#[derive(Clone, Debug)]
pub(crate) struct AddrInfoAlloc {
    /// Node addresses and sizes.
    pub(crate) nodes: Vec<(usize, usize)>,
}

/// Network state.
#[derive(Default)]
pub(crate) struct Net {
    pub(crate) next_id: u64,
    pub(crate) sockets: BTreeMap<u64, Socket>,
    pub(crate) by_ptr: BTreeMap<usize, u64>,
    pub(crate) conns: BTreeMap<u64, Conn>,
    pub(crate) listeners: BTreeMap<SocketAddr, Listener>,
    pub(crate) bound: BTreeSet<SocketAddr>,
    pub(crate) udp: BTreeMap<SocketAddr, UdpEnd>,
    pub(crate) peer_listeners: BTreeMap<u64, PeerListenerState>,
    pub(crate) peer_udp: BTreeMap<u64, PeerUdpState>,
    pub(crate) hosts: BTreeSet<IpAddr>,
    pub(crate) local: Vec<IpAddr>,
    pub(crate) names: Vec<(String, Vec<IpAddr>)>,
    pub(crate) services: BTreeMap<String, u16>,
    pub(crate) next_port: u16,
    pub(crate) static_events: BTreeMap<usize, u32>,
    pub(crate) addrinfos: BTreeMap<usize, AddrInfoAlloc>,
    pub(crate) inspect_serial: u32,
    pub(crate) indication_chunk: usize,
    /// Sockets created in this machine (seeds each socket's adversary
    /// stream, independently of other tests in the process).
    pub(crate) sockets_made: u64,
    /// Client-level pending IRPs (`WSK_TRANSPORT_LIST_CHANGE`, hung calls).
    pub(crate) client_irps: BTreeSet<usize>,
    /// The pending `WSK_TRANSPORT_LIST_CHANGE` IRPs (also in `client_irps`,
    /// which cancellation removes them from), each with the `PWSK_CLIENT`
    /// that made it.
    pub(crate) transport_change_irps: BTreeMap<usize, usize>,
    /// A send was ever held for the receiver's window
    /// ([`Behaviour::LateSends`]): until then [`acknowledge`] has nothing to
    /// do (it runs on every data movement).
    pub(crate) sends_held: bool,
    /// Cached security descriptors (`WSK_CACHE_SD`) not yet released
    /// (`WSK_RELEASE_SD`), by address.
    pub(crate) cached_sds: BTreeMap<usize, Box<u64>>,
}

impl Net {
    /// A new id, unique for the whole process (peers may outlive a world).
    pub(crate) fn next(&mut self) -> u64 {
        static NEXT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);
        let _ = self.next_id;
        NEXT.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
    }

    /// Local addresses of the simulated machine.
    pub(crate) fn local_addrs(&self) -> Vec<IpAddr> {
        let mut v = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        if self.local.is_empty() {
            v.push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
            v.push(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)));
        } else {
            v.extend(self.local.iter().copied());
        }
        v
    }

    pub(crate) fn is_local(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.local_addrs().contains(&ip)
    }

    /// The local address a socket bound to `ip` uses towards `remote`.
    pub(crate) fn source_for(&self, ip: IpAddr, remote: IpAddr) -> IpAddr {
        if !ip.is_unspecified() {
            return ip;
        }
        if remote.is_loopback() {
            return remote;
        }
        if self.is_local(remote) {
            return remote;
        }
        self.local_addrs()
            .into_iter()
            .find(|a| a.is_ipv4() == remote.is_ipv4() && !a.is_loopback())
            .unwrap_or(remote)
    }

    /// A free ephemeral port on `ip`.
    pub(crate) fn ephemeral(&mut self, ip: IpAddr) -> u16 {
        if self.next_port < 49152 {
            self.next_port = 49152;
        }
        loop {
            let p = self.next_port;
            self.next_port = if p == u16::MAX { 49152 } else { p + 1 };
            let a = SocketAddr::new(ip, p);
            if !self.bound.contains(&a)
                && !self.listeners.contains_key(&a)
                && !self.udp.contains_key(&a)
            {
                return p;
            }
        }
    }

    /// The listener a connection to `to` reaches.
    pub(crate) fn find_listener(&self, to: SocketAddr) -> Option<Listener> {
        if let Some(l) = self.listeners.get(&to) {
            return Some(*l);
        }
        if self.is_local(to.ip()) {
            let any = SocketAddr::new(
                if to.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                },
                to.port(),
            );
            if let Some(l) = self.listeners.get(&any) {
                return Some(*l);
            }
            // Dual stack: an IPv6 wildcard listener with IPV6_V6ONLY = 0 also
            // receives IPv4 connections (its addresses become v4-mapped).
            if to.is_ipv4() {
                let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), to.port());
                if let Some(Listener::Socket(sid)) = self.listeners.get(&any6) {
                    if self.sockets.get(sid).is_some_and(Socket::dual_stack) {
                        return Some(Listener::Socket(*sid));
                    }
                }
            }
        }
        None
    }

    /// The UDP endpoint a datagram to `to` reaches.
    pub(crate) fn find_udp(&self, to: SocketAddr) -> Option<UdpEnd> {
        if let Some(u) = self.udp.get(&to) {
            return Some(*u);
        }
        if self.is_local(to.ip()) {
            let any = SocketAddr::new(
                crate::addr::unspecified(crate::addr::family(&to)),
                to.port(),
            );
            return self.udp.get(&any).copied();
        }
        None
    }

    /// Whether `ip` is a host of the simulated network.
    pub(crate) fn host_exists(&self, ip: IpAddr) -> bool {
        self.is_local(ip)
            || self.hosts.contains(&ip)
            || self.listeners.keys().any(|a| a.ip() == ip)
            || self.udp.keys().any(|a| a.ip() == ip)
    }
}

/// Actions to run once the world lock is released.
#[derive(Default)]
pub(crate) struct Out {
    pub(crate) done: Vec<Done>,
    pub(crate) deliver: Vec<u64>,
    pub(crate) deliver_later: Vec<u64>,
}

impl Out {
    pub(crate) fn deliver(&mut self, sid: u64) {
        if !self.deliver.contains(&sid) {
            self.deliver.push(sid);
        }
    }
}

/// Runs `out` (no lock held).
pub(crate) fn flush(out: Out) {
    io::run_done(out.done);
    let delivery = world::lock().cfg.event_delivery;
    let mut later = out.deliver_later;
    match delivery {
        EventDelivery::Inline => {
            for sid in out.deliver {
                crate::delivery::deliver_events(sid);
            }
        }
        EventDelivery::Worker => later.extend(out.deliver),
    }
    if !later.is_empty() {
        let mut w = world::lock();
        for sid in later {
            let delay = match w.cfg.completion {
                crate::script::CompletionMode::Manual => None,
                _ => Some(std::time::Duration::ZERO),
            };
            world::queue_job(
                &mut w,
                delay,
                Box::new(move || crate::delivery::deliver_events(sid)),
            );
        }
    }
}

/// Allocates the provider object of a new socket and registers it.
pub(crate) fn create_socket(
    w: &mut World,
    client: usize,
    kind: Kind,
    family: u16,
    socktype: u16,
    protocol: u32,
) -> u64 {
    let id = w.net.next();
    let dispatch = crate::provider::dispatch_for(kind);
    let obj = Box::into_raw(Box::new(SocketObj {
        header: WSK_SOCKET { Dispatch: dispatch },
        id,
    })) as usize;
    let _ = protocol;
    w.net.sockets_made += 1;
    let seed = w.cfg.adversary.map_or(0, |a| a.seed());
    let rng = crate::adversary::stream(seed, w.net.sockets_made);
    let mut s = Socket::new(obj, client, kind, family, socktype, rng);
    if let Some(mask) = w.net.static_events.get(&client) {
        s.static_events = *mask & valid_events(kind);
        s.events = s.static_events;
    }
    w.net.sockets.insert(id, s);
    w.net.by_ptr.insert(obj, id);
    w.stats.sockets_created += 1;
    id
}

/// Events valid for a socket kind.
#[allow(clippy::match_same_arms)] // one arm per kind reads best
pub(crate) fn valid_events(kind: Kind) -> u32 {
    match kind {
        Kind::Listen => {
            WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG
        }
        Kind::Connection => WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG,
        Kind::Datagram => WSK_EVENT_RECEIVE_FROM,
        Kind::Stream => {
            WSK_EVENT_ACCEPT | WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG
        }
        Kind::Basic => 0,
    }
}

/// Frees a socket object's memory (end of test).
///
/// # Safety
///
/// `obj` came from [`create_socket`] and is no longer used.
unsafe fn free_socket_obj(obj: usize) {
    // SAFETY: caller's contract.
    drop(unsafe { Box::from_raw(obj as *mut SocketObj) });
}

/// Removes a pending IRP from a socket's queues (cancel routine).
pub(crate) fn forget_irp(w: &mut World, sid: u64, irp: usize) {
    if sid == 0 {
        w.net.client_irps.remove(&irp);
        w.net.transport_change_irps.remove(&irp);
        return;
    }
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    s.recv_irps.retain(|r| r.irp != irp);
    s.recv_from_irps.retain(|r| r.irp != irp);
    s.accept_irps.retain(|r| r.irp != irp);
    s.hung.remove(&irp);
    if s.connect_irp == Some(irp) {
        s.connect_irp = None;
    }
    if s.listen_irp == Some(irp) {
        s.listen_irp = None;
    }
    if s.stuck_disconnect == Some(irp) {
        s.stuck_disconnect = None;
    }
    s.unsent.retain(|u| u.irp != irp);
}

/// Which pending request still uses an MDL, if any.
pub(crate) fn mdl_in_use(w: &World, mdl: usize) -> Option<&'static str> {
    for s in w.net.sockets.values() {
        if s.recv_irps.iter().any(|r| r.mdls.contains(&mdl)) {
            return Some("WskReceive");
        }
        if s.recv_from_irps.iter().any(|r| r.mdls.contains(&mdl)) {
            return Some("WskReceiveFrom");
        }
    }
    None
}

/// Open sockets of a client, as leak lines.
pub(crate) fn open_sockets_of(w: &World, client: usize) -> Vec<String> {
    w.net
        .sockets
        .iter()
        .filter(|(_, s)| s.client == client && s.state == State::Open)
        .map(|(id, s)| {
            format!(
                "{} socket #{id} (PWSK_SOCKET {:#x}) not closed",
                s.kind.name(),
                s.obj
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Connections

/// Creates a connection from `from` (end 0) to `to` (end 1).
pub(crate) fn new_conn(w: &mut World, from: (Owner, SocketAddr), to: (Owner, SocketAddr)) -> u64 {
    let id = w.net.next();
    let end = |o: Owner, a: SocketAddr| End {
        owner: o,
        addr: a,
        rx: VecDeque::new(),
        rx_added: 0,
        rx_fin: false,
        rx_reset: false,
        tx_fin: false,
    };
    w.net.conns.insert(
        id,
        Conn {
            ends: [end(from.0, from.1), end(to.0, to.1)],
            state: ConnState::Established,
            listener: None,
            inspect_id: None,
        },
    );
    id
}

/// Something changed for the owner of `(conn, end)`: progress it.
pub(crate) fn notify_end(w: &mut World, conn: u64, end: usize, out: &mut Out) {
    // A reset empties a receive queue and fails the sends waiting on it.
    acknowledge(w, conn, end, out);
    acknowledge(w, conn, 1 - end, out);
    let owner = w.net.conns.get(&conn).map(|c| c.ends[end].owner);
    match owner {
        Some(Owner::Socket(sid)) => progress_conn_socket(w, sid, out),
        _ => w.notify(),
    }
}

/// Sends `data` from `(conn, end)` to the other end.
/// Whether the receiving end of a packet from `(conn, end)` is a socket in
/// silent mode, which drops every data or control packet
/// (`SIO_WSK_SET_TCP_SILENT_MODE`, SIO-3).
fn silent_receiver(w: &World, conn: u64, end: usize) -> bool {
    match w.net.conns.get(&conn).map(|c| c.ends[1 - end].owner) {
        Some(Owner::Socket(sid)) => w.net.sockets.get(&sid).is_some_and(|s| s.silent),
        _ => false,
    }
}

pub(crate) fn conn_send(w: &mut World, conn: u64, end: usize, data: &[u8], out: &mut Out) {
    if silent_receiver(w, conn, end) {
        return;
    }
    if let Some(c) = w.net.conns.get_mut(&conn) {
        let other = &mut c.ends[1 - end];
        if !other.rx_reset && other.owner != Owner::Gone {
            other.rx.extend(data);
            other.rx_added += data.len() as u64;
        }
    }
    notify_end(w, conn, 1 - end, out);
}

/// The receiving end `(conn, rx_end)` read bytes, or went away: the sends
/// of the other end's socket whose bytes now fit in its window complete,
/// from this thread ([`Behaviour::LateSends`], A-22, SND-4). A reset fails
/// them; a receiver that is gone takes everything.
pub(crate) fn acknowledge(w: &mut World, conn: u64, rx_end: usize, out: &mut Out) {
    if !w.net.sends_held {
        return;
    }
    let Some(c) = w.net.conns.get(&conn) else {
        return;
    };
    let Owner::Socket(sender) = c.ends[1 - rx_end].owner else {
        return;
    };
    let rx = &c.ends[rx_end];
    let gone = rx.owner == Owner::Gone;
    let reset = c.ends[1 - rx_end].rx_reset;
    let read = rx.rx_added - rx.rx.len() as u64;
    let Some(s) = w.net.sockets.get_mut(&sender) else {
        return;
    };
    let mut done = Vec::new();
    while let Some(&u) = s.unsent.front() {
        if !(gone || reset || u.mark.saturating_sub(read) <= u.window) {
            break;
        }
        s.unsent.pop_front();
        done.push(u);
    }
    for u in done {
        if reset {
            io::finish_pending(w, u.irp, STATUS_CONNECTION_RESET, 0, &mut out.done);
        } else {
            io::finish_pending(w, u.irp, STATUS_SUCCESS, u.len, &mut out.done);
        }
    }
}

/// Sends FIN from `(conn, end)`.
pub(crate) fn conn_fin(w: &mut World, conn: u64, end: usize, out: &mut Out) {
    if silent_receiver(w, conn, end) {
        return;
    }
    let Some(c) = w.net.conns.get_mut(&conn) else {
        return;
    };
    if c.ends[end].tx_fin {
        return;
    }
    c.ends[end].tx_fin = true;
    c.ends[1 - end].rx_fin = true;
    let other = c.ends[1 - end].owner;
    if let Owner::Socket(sid) = other {
        queue_disconnect_event(w, sid, false);
    }
    notify_end(w, conn, 1 - end, out);
}

/// Resets the connection from `(conn, end)`.
pub(crate) fn conn_reset(w: &mut World, conn: u64, end: usize, out: &mut Out) {
    if silent_receiver(w, conn, end) {
        return;
    }
    let Some(c) = w.net.conns.get_mut(&conn) else {
        return;
    };
    let other = &mut c.ends[1 - end];
    if other.rx_reset {
        return;
    }
    other.rx_reset = true;
    other.rx.clear();
    c.ends[end].tx_fin = true;
    let owner = c.ends[1 - end].owner;
    let state = c.state;
    if state == ConnState::Inspecting {
        // The connector gave up while the listener was inspecting it.
        abort_inspect(w, conn, out);
        return;
    }
    if let Owner::Socket(sid) = owner {
        // A connection reset before its accept event runs is withdrawn; one
        // reset while the event runs is the client's to learn of (see
        // `accept_into`).
        let unaccepted = w
            .net
            .sockets
            .get(&sid)
            .is_some_and(|s| s.state == State::Unaccepted && !s.offered);
        if unaccepted {
            drop_unaccepted(w, sid);
            return;
        }
        queue_disconnect_event(w, sid, true);
    }
    notify_end(w, conn, 1 - end, out);
}

fn queue_disconnect_event(w: &mut World, sid: u64, abortive: bool) {
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    if s.events & WSK_EVENT_DISCONNECT != 0 && s.conn_dispatch != 0 && s.state == State::Open {
        if abortive {
            // An abortive disconnect supersedes a graceful one not yet
            // delivered.
            s.ev_queue.retain(|e| !matches!(e, Ev::Disconnect { .. }));
        } else if s.disconnect_queued {
            return;
        }
        s.disconnect_queued = true;
        s.ev_queue.push_back(Ev::Disconnect { abortive });
    }
}

/// Removes an unaccepted backlog socket (its connector reset).
fn drop_unaccepted(w: &mut World, sid: u64) {
    if let Some(s) = w.net.sockets.get(&sid) {
        let parent = s.parent;
        if let Some(p) = parent.and_then(|p| w.net.sockets.get_mut(&p)) {
            p.backlog.retain(|&x| x != sid);
            p.ev_queue
                .retain(|e| !matches!(e, Ev::Accept(x) if *x == sid));
        }
    }
    destroy_socket(w, sid);
}

/// Forgets a provider-internal socket entirely (never the client's).
pub(crate) fn destroy_socket(w: &mut World, sid: u64) {
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.state = State::Closed;
        s.offered = false;
        if let Some((c, e)) = s.conn {
            if let Some(conn) = w.net.conns.get_mut(&c) {
                conn.ends[e].owner = Owner::Gone;
            }
        }
    }
}

/// Progresses a connection socket: satisfies pending receives and queues
/// what event delivery has to do.
pub(crate) fn progress_conn_socket(w: &mut World, sid: u64, out: &mut Out) {
    let Some(s) = w.net.sockets.get(&sid) else {
        return;
    };
    let Some((cid, end)) = s.conn else {
        return;
    };
    loop {
        let Some(s) = w.net.sockets.get_mut(&sid) else {
            return;
        };
        if s.indicating || s.race {
            // The indication's answer decides which bytes come next.
            break;
        }
        let Some(req) = s.recv_irps.front().cloned() else {
            break;
        };
        if race_receive(w, sid) {
            break;
        }
        let Some(s) = w.net.sockets.get_mut(&sid) else {
            return;
        };
        let Some(c) = w.net.conns.get_mut(&cid) else {
            break;
        };
        let e = &mut c.ends[end];
        if e.rx_reset {
            s.recv_irps.pop_front();
            let (irp, filled) = (req.irp, req.filled);
            let st = if filled > 0 {
                STATUS_SUCCESS
            } else {
                STATUS_CONNECTION_RESET
            };
            io::finish_pending(w, irp, st, filled, &mut out.done);
            continue;
        }
        if req.drain {
            e.rx.clear();
            if !e.rx_fin {
                break;
            }
            s.recv_irps.pop_front();
            io::finish_pending(w, req.irp, STATUS_SUCCESS, 0, &mut out.done);
            continue;
        }
        if e.rx.is_empty() && !e.rx_fin {
            break;
        }
        let cap: usize = req.segs.iter().map(|sg| sg.len).sum();
        let want = cap - req.filled;
        let n = want.min(e.rx.len());
        let chunk: Vec<u8> = e.rx.drain(..n).collect();
        let fin = e.rx_fin && e.rx.is_empty();
        let filled = req.filled + n;
        // Write into the client's buffer after the already-filled part.
        write_at(&req.segs, req.filled, &chunk);
        let complete = !req.waitall || filled == cap || fin || cap == 0;
        if complete {
            s.recv_irps.pop_front();
            s.blocked = false;
            io::finish_pending(w, req.irp, STATUS_SUCCESS, filled, &mut out.done);
            // At end of stream every further receive completes with 0.
        } else if let Some(r) = s.recv_irps.front_mut() {
            r.filled = filled;
            break;
        }
    }
    acknowledge(w, cid, end, out);
    out.deliver(sid);
}

/// Writes `data` into segments starting `offset` bytes in.
fn write_at(segs: &[Seg], offset: usize, data: &[u8]) {
    let mut skip = offset;
    let mut done = 0;
    for s in segs {
        if done == data.len() {
            break;
        }
        if skip >= s.len {
            skip -= s.len;
            continue;
        }
        let room = s.len - skip;
        let n = room.min(data.len() - done);
        // SAFETY: each segment is writable client memory of `s.len` bytes;
        // `skip + n <= s.len`.
        unsafe {
            core::ptr::copy_nonoverlapping(data[done..].as_ptr(), s.ptr.wrapping_add(skip), n);
        }
        done += n;
        skip = 0;
    }
}

/// Returns bytes the client did not take to the front of the receive queue;
/// `block`: no receive indication until a `WskReceive`.
pub(crate) fn put_back(sid: u64, data: &[u8], block: bool, out: &mut Out) {
    let mut w = world::lock();
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    if block {
        s.blocked = true;
    }
    let Some((c, e)) = s.conn else {
        return;
    };
    if let Some(conn) = w.net.conns.get_mut(&c) {
        let rx = &mut conn.ends[e].rx;
        for &b in data.iter().rev() {
            rx.push_front(b);
        }
    }
    progress_conn_socket(&mut w, sid, out);
}

/// [`Behaviour::CallbacksRaceRequests`]: whether the data (or datagrams)
/// waiting for a pending receive request of `sid` go to the enabled receive
/// callback instead, this once (A-4, EV-GEN-7). The request stays pending.
fn race_receive(w: &mut World, sid: u64) -> bool {
    let Some(s) = w.net.sockets.get(&sid) else {
        return false;
    };
    let eligible = !s.blocked
        && if s.kind == Kind::Datagram {
            s.events & WSK_EVENT_RECEIVE_FROM != 0
                && !s.dgrams.is_empty()
                && dgram_table(s).is_some_and(|t| t.WskReceiveFromEvent.is_some())
        } else {
            s.events & WSK_EVENT_RECEIVE != 0
                && s.conn.is_some_and(|(c, e)| {
                    w.net
                        .conns
                        .get(&c)
                        .is_some_and(|c| !c.ends[e].rx.is_empty())
                })
                && conn_table(s).is_some_and(|t| t.WskReceiveEvent.is_some())
        };
    if !eligible || !w.rare_event(Behaviour::CallbacksRaceRequests) {
        return false;
    }
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.race = true;
    }
    true
}

/// Ends an indication of `sid` (its callback returned and its answer was
/// applied): pending receive requests may take data again.
pub(crate) fn end_indication(w: &mut World, sid: u64, out: &mut Out) {
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    s.indicating = false;
    if s.kind == Kind::Datagram {
        progress_dgram_socket(w, sid, out);
    } else {
        progress_conn_socket(w, sid, out);
    }
}

/// Datagrams a `WskReceiveFromEvent` answered `STATUS_DATA_NOT_ACCEPTED`:
/// they stay buffered, in order, for `WskReceiveFrom`; then
///
/// - under [`Behaviour::ReceiveFromDisabledOnRefusal`], as
///   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive_from_event>
///   says: an event enabled with `SO_WSK_EVENT_CALLBACK` is disabled until
///   the client enables it again; a statically enabled one stays enabled and
///   is called again when the next datagram arrives;
/// - otherwise indications pause until a `WskReceiveFrom` completes or the
///   event is enabled again.
pub(crate) fn refused_datagrams(w: &mut World, sid: u64, dgrams: Vec<Datagram>) {
    let contract = w.adversary(Behaviour::ReceiveFromDisabledOnRefusal);
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    for d in dgrams.into_iter().rev() {
        s.dgrams.push_front(d);
    }
    if !contract {
        s.blocked = true;
    } else if s.static_events & WSK_EVENT_RECEIVE_FROM != 0 {
        s.blocked = true;
        s.resume_on_arrival = true;
    } else {
        s.events &= !WSK_EVENT_RECEIVE_FROM;
    }
}

/// Applies the disables that waited for the callback that just returned,
/// completing their IRPs with `STATUS_SUCCESS`.
pub(crate) fn finish_deferred_disables(w: &mut World, sid: u64, out: &mut Out) {
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    if s.callbacks_in_progress > 0 {
        return;
    }
    let waiting = core::mem::take(&mut s.deferred_disables);
    for &(mask, _) in &waiting {
        s.events &= !mask;
    }
    for (_, irp) in waiting {
        if irp != 0 {
            io::finish_pending(w, irp, STATUS_SUCCESS, 0, &mut out.done);
        }
    }
}

/// Queues a NULL indication telling the client socket `sid` is no longer
/// functional (under [`Behaviour::SocketFailure`] the socket then fails
/// every call but `WskCloseSocket`).
pub(crate) fn declare_dead(w: &mut World, sid: u64, out: &mut Out) {
    let dead = w.adversary(Behaviour::SocketFailure);
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    if s.state != State::Open || s.dead {
        return;
    }
    s.dead = dead;
    s.ev_queue.push_back(Ev::CloseRequired);
    out.deliver(sid);
}

/// Whether the client can be told socket `s` is no longer functional: the
/// callback that would carry the NULL is enabled (a conditional listener's
/// inspect event, a listener's accept event, a connection's receive event,
/// a datagram socket's receive-from event).
pub(crate) fn can_be_told_dead(s: &Socket) -> bool {
    match s.listen_kind() {
        Kind::Listen => {
            inspects(s) || (s.events & WSK_EVENT_ACCEPT != 0 && listen_table(s).is_some())
        }
        Kind::Datagram => s.events & WSK_EVENT_RECEIVE_FROM != 0,
        Kind::Basic => false,
        Kind::Connection | Kind::Stream => s.events & WSK_EVENT_RECEIVE != 0,
    }
}

/// Whether a listen socket is in conditional-accept mode with an inspect
/// callback (inspect events are on without `SO_WSK_EVENT_CALLBACK`).
pub(crate) fn inspects(s: &Socket) -> bool {
    s.conditional && listen_table(s).is_some_and(|t| t.WskInspectEvent.is_some())
}

/// Establishes a connection that was waiting (inspect accepted).
pub(crate) fn establish(w: &mut World, conn: u64, out: &mut Out) {
    let Some(c) = w.net.conns.get_mut(&conn) else {
        return;
    };
    c.state = ConnState::Established;
    let listener = c.listener;
    let connector = c.ends[0].owner;
    if let Some(l) = listener {
        incoming_to_socket(w, l, conn, out);
    }
    connector_result(w, conn, connector, STATUS_SUCCESS, out);
}

/// Refuses a connection that was waiting.
pub(crate) fn refuse(w: &mut World, conn: u64, status: NTSTATUS, out: &mut Out) {
    let Some(c) = w.net.conns.get_mut(&conn) else {
        return;
    };
    c.state = ConnState::Refused(status);
    let connector = c.ends[0].owner;
    connector_result(w, conn, connector, status, out);
}

/// Tells the connecting side how its connect ended.
fn connector_result(w: &mut World, conn: u64, connector: Owner, status: NTSTATUS, out: &mut Out) {
    match connector {
        Owner::Socket(sid) => {
            let Some(s) = w.net.sockets.get_mut(&sid) else {
                return;
            };
            let irp = s.connect_irp.take();
            let returns_socket = s.connect_is_socket_connect;
            let obj = s.obj;
            if status == STATUS_SUCCESS {
                s.conn = Some((conn, 0));
                let data = core::mem::take(&mut s.connect_data);
                if !data.is_empty() {
                    conn_send(w, conn, 0, &data, out);
                }
            } else {
                s.remote = None;
                if returns_socket {
                    // WskSocketConnect: the client never gets the socket.
                    destroy_socket(w, sid);
                }
            }
            if let Some(irp) = irp {
                let info = if returns_socket && status == STATUS_SUCCESS {
                    obj
                } else {
                    0
                };
                io::finish_pending(w, irp, status, info, &mut out.done);
            }
        }
        _ => w.notify(),
    }
}

/// `addr` as a socket of `family` sees it: an IPv4 address on an IPv6
/// (dual-stack) socket is v4-mapped (`::ffff:a.b.c.d`).
pub(crate) fn as_seen_by(family: u16, addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if family == wsk_sys::AF_INET6 => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        other => other,
    }
}

/// An established connection arrives at listen socket `l`.
pub(crate) fn incoming_to_socket(w: &mut World, l: u64, conn: u64, out: &mut Out) {
    let Some(ls) = w.net.sockets.get(&l) else {
        return;
    };
    let (client, family, kind) = (ls.client, ls.family, ls.kind);
    let inherited = ls.events & (WSK_EVENT_RECEIVE | WSK_EVENT_DISCONNECT | WSK_EVENT_SEND_BACKLOG);
    // SO_KEEPALIVE and SO_RCVBUF set on a listening socket are inherited by
    // the sockets it accepts (docs/conformance.md OPT-2, OPT-3, A-24,
    // https://learn.microsoft.com/windows-hardware/drivers/network/so-keepalive,
    // https://learn.microsoft.com/windows-hardware/drivers/network/so-rcvbuf).
    let inherited_options: Vec<((u32, u32), Vec<u8>)> = ls
        .options
        .iter()
        .filter(|((level, code), _)| {
            *level == wsk_sys::SOL_SOCKET
                && (*code == wsk_sys::SO_KEEPALIVE || *code == wsk_sys::SO_RCVBUF)
        })
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let child_kind = if kind == Kind::Stream {
        Kind::Stream
    } else {
        Kind::Connection
    };
    let sid = create_socket(w, client, child_kind, family, 1, 6);
    // Accepted sockets do not count as created by the client until accepted.
    let (local, remote, inspect) = {
        let c = &w.net.conns[&conn];
        (
            as_seen_by(family, c.ends[1].addr),
            as_seen_by(family, c.ends[0].addr),
            c.inspect_id,
        )
    };
    if let Some(s) = w.net.sockets.get_mut(&sid) {
        s.state = State::Unaccepted;
        s.parent = Some(l);
        s.conn = Some((conn, 1));
        s.local = Some(local);
        s.remote = Some(remote);
        s.events = s.static_events | inherited;
        s.inspect_id = inspect;
        s.options.extend(inherited_options);
    }
    if let Some(c) = w.net.conns.get_mut(&conn) {
        c.ends[1].owner = Owner::Socket(sid);
    }
    let race = {
        let ls = &w.net.sockets[&l];
        !ls.accept_irps.is_empty() && ls.events & WSK_EVENT_ACCEPT != 0 && ls.listen_dispatch != 0
    } && w.rare_event(Behaviour::CallbacksRaceRequests);
    let Some(ls) = w.net.sockets.get_mut(&l) else {
        return;
    };
    if race {
        // The accept event is called although a WskAccept is pending.
        ls.ev_queue.push_back(Ev::Accept(sid));
        out.deliver(l);
    } else if let Some(req) = ls.accept_irps.pop_front() {
        let inherit = !w.adversary(Behaviour::AcceptDoesNotInherit);
        accept_into(w, sid, req.context, req.dispatch, inherit);
        // SAFETY: the client keeps the optional address buffers valid until
        // the accept completes.
        unsafe {
            crate::addr::write(req.local as wsk_sys::PSOCKADDR, local);
        }
        // SAFETY: as above.
        unsafe {
            crate::addr::write(req.remote as wsk_sys::PSOCKADDR, remote);
        }
        let obj = w.net.sockets[&sid].obj;
        io::finish_pending(w, req.irp, STATUS_SUCCESS, obj, &mut out.done);
        out.deliver(sid);
    } else if ls.events & WSK_EVENT_ACCEPT != 0 && ls.listen_dispatch != 0 {
        ls.ev_queue.push_back(Ev::Accept(sid));
        out.deliver(l);
    } else {
        ls.backlog.push_back(sid);
    }
}

/// Makes an unaccepted socket the client's; `inherit`: keep the connection
/// events enabled on the listener (an accept event's socket), otherwise only
/// the statically enabled ones (a `WskAccept` socket under
/// [`Behaviour::AcceptDoesNotInherit`]: a socket `WskAccept` returns starts
/// with its event callbacks disabled,
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_accept>).
///
/// A FIN or RST that reached the connection while the socket waited in the
/// backlog or while its accept event ran is indicated now: its disconnect
/// event (when enabled) is queued as if it had arrived after the accept.
pub(crate) fn accept_into(w: &mut World, sid: u64, context: usize, dispatch: usize, inherit: bool) {
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    s.state = State::Open;
    s.offered = false;
    s.context = context;
    s.conn_dispatch = dispatch;
    if !inherit {
        s.events = s.static_events;
    }
    if dispatch == 0 {
        s.events = 0;
    }
    let end = s
        .conn
        .and_then(|(c, e)| w.net.conns.get(&c).map(|c| &c.ends[e]));
    if let Some(end) = end {
        if end.rx_reset {
            queue_disconnect_event(w, sid, true);
        } else if end.rx_fin {
            queue_disconnect_event(w, sid, false);
        }
    }
}

fn abort_inspect(w: &mut World, conn: u64, out: &mut Out) {
    let Some(c) = w.net.conns.get_mut(&conn) else {
        return;
    };
    c.state = ConnState::Refused(STATUS_CONNECTION_RESET);
    let (Some(l), Some(id)) = (c.listener, c.inspect_id) else {
        return;
    };
    if let Some(ls) = w.net.sockets.get_mut(&l) {
        let was_pended = ls.inspecting.remove(&(id.Key, id.SerialNumber)).is_some();
        let queued = ls
            .ev_queue
            .iter()
            .any(|e| matches!(e, Ev::Inspect(x) if *x == conn));
        if queued {
            ls.ev_queue
                .retain(|e| !matches!(e, Ev::Inspect(x) if *x == conn));
        } else if was_pended {
            ls.ev_queue.push_back(Ev::Abort(id));
            out.deliver(l);
        }
    }
}

/// A connection attempt from `from` to `to`. Returns the connection, or the
/// failure status.
pub(crate) fn connect_to(
    w: &mut World,
    from_owner: Owner,
    from: SocketAddr,
    to: SocketAddr,
    out: &mut Out,
) -> Result<u64, NTSTATUS> {
    match w.net.find_listener(to) {
        Some(Listener::Peer(pid)) => {
            let conn = new_conn(w, (from_owner, from), (Owner::Peer, to));
            match w.net.peer_listeners.get_mut(&pid) {
                Some(pl) if !pl.closed => {
                    pl.backlog.push_back(conn);
                    w.notify();
                    Ok(conn)
                }
                _ => {
                    w.net.conns.remove(&conn);
                    Err(wsk_sys::STATUS_CONNECTION_REFUSED)
                }
            }
        }
        Some(Listener::Socket(l)) => {
            let Some(ls) = w.net.sockets.get(&l) else {
                return Err(wsk_sys::STATUS_CONNECTION_REFUSED);
            };
            if ls.state != State::Open || !ls.listening || ls.dead {
                return Err(wsk_sys::STATUS_CONNECTION_REFUSED);
            }
            // Behaviour::SocketFailure: now and then the listener stops
            // working under this connection (NULL InspectID / AcceptSocket).
            let rate = w
                .cfg
                .adversary
                .filter(|a| a.has(Behaviour::SocketFailure))
                .map_or(0, |a| a.listener_failure_rate());
            if rate != 0 && can_be_told_dead(ls) && w.adversary_chance(rate) {
                declare_dead(w, l, out);
                return Err(wsk_sys::STATUS_CONNECTION_REFUSED);
            }
            // A WskListen kept pending completes with the first connection
            // (Behaviour::ListenPends).
            if let Some(irp) = w.net.sockets.get_mut(&l).and_then(|s| s.listen_irp.take()) {
                io::finish_pending(w, irp, STATUS_SUCCESS, 0, &mut out.done);
            }
            let ls = &w.net.sockets[&l];
            let backlog_full = ls.backlog.len() >= w.cfg.backlog;
            if backlog_full {
                return Err(wsk_sys::STATUS_CONNECTION_REFUSED);
            }
            let local_addr = to;
            let conn = new_conn(w, (from_owner, from), (Owner::Gone, local_addr));
            if let Some(c) = w.net.conns.get_mut(&conn) {
                c.listener = Some(l);
            }
            let inspect = inspects(&w.net.sockets[&l]);
            if inspect {
                w.net.inspect_serial += 1;
                let id = WSK_INSPECT_ID {
                    Key: usize::try_from(conn).unwrap_or(usize::MAX),
                    SerialNumber: w.net.inspect_serial,
                };
                if let Some(c) = w.net.conns.get_mut(&conn) {
                    c.state = ConnState::Inspecting;
                    c.inspect_id = Some(id);
                }
                if let Some(ls) = w.net.sockets.get_mut(&l) {
                    ls.ev_queue.push_back(Ev::Inspect(conn));
                }
                out.deliver(l);
            } else {
                incoming_to_socket(w, l, conn, out);
            }
            Ok(conn)
        }
        None => {
            if w.net.host_exists(to.ip()) {
                Err(wsk_sys::STATUS_CONNECTION_REFUSED)
            } else {
                Err(wsk_sys::STATUS_HOST_UNREACHABLE)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Datagrams

/// Delivers a datagram to the endpoint at `to`.
pub(crate) fn udp_deliver(
    w: &mut World,
    from: SocketAddr,
    to: SocketAddr,
    data: Vec<u8>,
    out: &mut Out,
) {
    match w.net.find_udp(to) {
        Some(UdpEnd::Socket(sid)) => {
            if let Some(s) = w.net.sockets.get_mut(&sid) {
                // SIO_WSK_SET_REMOTE_ADDRESS: datagrams from other
                // addresses are not accepted.
                if s.state == State::Open && s.remote_filter.is_none_or(|f| f == from) {
                    if s.resume_on_arrival {
                        s.resume_on_arrival = false;
                        s.blocked = false;
                    }
                    s.dgrams.push_back(Datagram { from, to, data });
                    progress_dgram_socket(w, sid, out);
                }
            }
        }
        Some(UdpEnd::Peer(pid)) => {
            if let Some(p) = w.net.peer_udp.get_mut(&pid) {
                p.queue.push_back(Datagram { from, to, data });
            }
            w.notify();
        }
        None => {}
    }
}

/// Satisfies pending `WskReceiveFrom` requests.
pub(crate) fn progress_dgram_socket(w: &mut World, sid: u64, out: &mut Out) {
    loop {
        let Some(s) = w.net.sockets.get_mut(&sid) else {
            return;
        };
        if s.indicating || s.race || s.recv_from_irps.is_empty() || s.dgrams.is_empty() {
            break;
        }
        if race_receive(w, sid) {
            break;
        }
        let Some(s) = w.net.sockets.get_mut(&sid) else {
            return;
        };
        let (Some(req), Some(d)) = (s.recv_from_irps.pop_front(), s.dgrams.pop_front()) else {
            break;
        };
        s.blocked = false;
        let n = io::copy_to_segs(&req.segs, &d.data);
        let control = control_info(w, sid, &d);
        write_recv_from_outputs(&req, d.from, n < d.data.len(), control.as_deref());
        io::finish_pending(w, req.irp, STATUS_SUCCESS, n, &mut out.done);
    }
    out.deliver(sid);
}

/// Writes the optional outputs of a `WskReceiveFrom`.
///
/// `control`: the control information to return (what fits the client's
/// `ControlInfo` buffer, whose size `*ControlLength` gives on input; cut
/// with `MSG_CTRUNC` otherwise), or `None`.
pub(crate) fn write_recv_from_outputs(
    req: &RecvFromReq,
    from: SocketAddr,
    truncated: bool,
    control: Option<&[u8]>,
) {
    // SAFETY: the client keeps these outputs valid until completion.
    unsafe { crate::addr::write(req.remote as wsk_sys::PSOCKADDR, from) };
    let mut flags = if truncated { wsk_sys::MSG_TRUNC } else { 0 };
    if req.control_len != 0 {
        let control = control.unwrap_or_default();
        // SAFETY: as above (a ULONG holding the buffer's size).
        let room = unsafe { (req.control_len as *const u32).read_unaligned() } as usize;
        let room = if req.control_info == 0 { 0 } else { room };
        let n = control.len().min(room);
        if n < control.len() {
            flags |= wsk_sys::MSG_CTRUNC;
        }
        // SAFETY: the client's ControlInfo buffer has `room` writable bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(control.as_ptr(), req.control_info as *mut u8, n);
        }
        // SAFETY: as above (a ULONG).
        unsafe { (req.control_len as *mut u32).write_unaligned(u32::try_from(n).unwrap_or(0)) };
    }
    if req.control_flags != 0 {
        // SAFETY: as above (a ULONG).
        unsafe { (req.control_flags as *mut u32).write_unaligned(flags) };
    }
}

// ---------------------------------------------------------------------------
// Client dispatch tables

/// The socket's client listen table.
pub(crate) fn listen_table(s: &Socket) -> Option<WSK_CLIENT_LISTEN_DISPATCH> {
    if s.listen_dispatch == 0 {
        return None;
    }
    // SAFETY: the client's dispatch tables stay valid while the socket is
    // open (a WskSocket/WskAccept contract).
    Some(unsafe { (s.listen_dispatch as *const WSK_CLIENT_LISTEN_DISPATCH).read() })
}

/// The socket's client connection table.
pub(crate) fn conn_table(s: &Socket) -> Option<WSK_CLIENT_CONNECTION_DISPATCH> {
    if s.conn_dispatch == 0 {
        return None;
    }
    // SAFETY: as in `listen_table`.
    Some(unsafe { (s.conn_dispatch as *const WSK_CLIENT_CONNECTION_DISPATCH).read() })
}

/// The socket's client datagram table.
pub(crate) fn dgram_table(s: &Socket) -> Option<WSK_CLIENT_DATAGRAM_DISPATCH> {
    if s.dgram_dispatch == 0 {
        return None;
    }
    // SAFETY: as in `listen_table`.
    Some(unsafe { (s.dgram_dispatch as *const WSK_CLIENT_DATAGRAM_DISPATCH).read() })
}

// ---------------------------------------------------------------------------
// Closing

/// Closes a socket: cancels its pending IRPs and tears down its transport.
/// Returns whether event callbacks are still running (the close IRP then
/// completes when they return).
pub(crate) fn close_socket(w: &mut World, sid: u64, out: &mut Out) {
    let Some(s) = w.net.sockets.get_mut(&sid) else {
        return;
    };
    s.state = State::Closed;
    s.ev_queue.clear();
    let mut irps: Vec<usize> = Vec::new();
    irps.extend(s.recv_irps.drain(..).map(|r| r.irp));
    irps.extend(s.recv_from_irps.drain(..).map(|r| r.irp));
    irps.extend(s.accept_irps.drain(..).map(|r| r.irp));
    irps.extend(core::mem::take(&mut s.hung));
    irps.extend(s.connect_irp.take());
    irps.extend(s.listen_irp.take());
    irps.extend(s.stuck_disconnect.take());
    irps.extend(s.unsent.drain(..).map(|u| u.irp));
    let conn = s.conn;
    let backlog: Vec<u64> = s.backlog.drain(..).collect();
    let inspecting: Vec<u64> = core::mem::take(&mut s.inspecting).into_values().collect();
    let local = s.local;
    let kind = s.kind;
    let listening = s.listening;
    for irp in irps {
        io::finish_pending(w, irp, STATUS_CANCELLED, 0, &mut out.done);
    }
    // Transport teardown.
    if let Some((c, e)) = conn {
        let fully = w
            .net
            .conns
            .get(&c)
            .is_some_and(|c| c.ends[e].tx_fin && (c.ends[e].rx_fin || c.ends[e].rx_reset));
        let silent = w.net.sockets.get(&sid).is_some_and(|s| s.silent);
        if !fully && !silent {
            if w.cfg.close_sends_fin {
                conn_fin(w, c, e, out);
            } else {
                conn_reset(w, c, e, out);
            }
        }
        if let Some(cc) = w.net.conns.get_mut(&c) {
            cc.ends[e].owner = Owner::Gone;
        }
        acknowledge(w, c, e, out);
    }
    for child in backlog {
        let conn = w.net.sockets.get(&child).and_then(|c| c.conn);
        destroy_socket(w, child);
        if let Some((c, e)) = conn {
            conn_reset(w, c, e, out);
        }
    }
    for conn in inspecting {
        refuse(w, conn, wsk_sys::STATUS_CONNECTION_REFUSED, out);
    }
    // Unaccepted children whose accept event never got delivered.
    let orphans: Vec<u64> = w
        .net
        .sockets
        .iter()
        .filter(|(_, c)| c.parent == Some(sid) && c.state == State::Unaccepted && !c.offered)
        .map(|(id, _)| *id)
        .collect();
    for child in orphans {
        let conn = w.net.sockets.get(&child).and_then(|c| c.conn);
        destroy_socket(w, child);
        if let Some((c, e)) = conn {
            conn_reset(w, c, e, out);
        }
    }
    if let Some(a) = local {
        if (kind == Kind::Listen || kind == Kind::Stream) && listening {
            w.net.listeners.remove(&a);
        }
        if kind == Kind::Datagram {
            w.net.udp.remove(&a);
        }
        w.net.bound.remove(&a);
    }
    w.stats.sockets_closed += 1;
    w.notify();
}

/// Leak lines for the network (end of test).
pub(crate) fn leaks(net: &Net, io: &io::IoState) -> Vec<String> {
    let mut out = Vec::new();
    for addr in net.cached_sds.keys() {
        out.push(format!(
            "cached security descriptor {addr:#x} from WSK_CACHE_SD not released (WSK_RELEASE_SD)"
        ));
    }
    for (id, s) in &net.sockets {
        if s.state == State::Open {
            out.push(format!(
                "{} socket #{id} not closed (WskCloseSocket)",
                s.kind.name()
            ));
        }
        if !s.retained.is_empty() {
            out.push(format!(
                "{} indication(s) retained on socket #{id} never released (WskRelease)",
                s.retained.len()
            ));
        }
    }
    for (head, a) in &net.addrinfos {
        out.push(format!(
            "address list {head:#x} ({} node(s)) from WskGetAddressInfo not freed (WskFreeAddressInfo)",
            a.nodes.len()
        ));
    }
    for (irp, p) in &io.pending {
        out.push(format!("IRP {irp:#x} still pending in {}", p.routine));
    }
    out
}

/// Frees everything the network allocated (end of test).
pub(crate) fn free_all(net: &mut Net) {
    for (_, s) in core::mem::take(&mut net.sockets) {
        for (p, (size, _)) in s.retained {
            // SAFETY: allocated by `alloc_element` with this size.
            unsafe { raw_free(p as *mut u8, size) };
        }
        // SAFETY: created by `create_socket`; the test is over.
        unsafe { free_socket_obj(s.obj) };
    }
    for (_, a) in core::mem::take(&mut net.addrinfos) {
        for (p, size) in a.nodes {
            // SAFETY: allocated by the name resolver with this size.
            unsafe { raw_free(p as *mut u8, size) };
        }
    }
    net.by_ptr.clear();
}

/// Looks up the socket behind a `PWSK_SOCKET`.
pub(crate) fn socket_id(w: &World, p: PWSK_SOCKET) -> Option<u64> {
    w.net.by_ptr.get(&(p as usize)).copied()
}
