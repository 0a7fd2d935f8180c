//! Raw WSK client helpers shared by the integration tests: IRPs with an
//! event-signalling completion routine, buffers with MDLs, socket addresses,
//! and a registered client.
// Raw FFI test code: pointers to locals go straight to C-ABI routines, as
// in a C driver; short names (c = client, s = socket, p = peer, r = request,
// b = buffer) keep the scenarios readable.
#![allow(
    clippy::borrow_as_ptr,
    clippy::ref_as_ptr,
    clippy::many_single_char_names
)]
#![allow(clippy::cast_possible_truncation, clippy::struct_field_names)]
#![allow(
    dead_code,
    clippy::missing_safety_doc,
    clippy::undocumented_unsafe_blocks
)]
#![allow(clippy::multiple_unsafe_ops_per_block, unsafe_op_in_unsafe_fn)]

pub(crate) mod recorder;

use core::ptr;
use std::net::SocketAddr;

use wsk_sys::*;

/// A machine without the adversary, whatever `WSK_SIM_ADVERSARY` says: for
/// scenarios that assert exact, benign provider choices.
pub(crate) fn benign() -> wsk_sim::Sim {
    wsk_sim::Sim::with_config(wsk_sim::Config::default())
}

/// Reads the bytes a `WSK_BUF` describes the way Microsoft defines it
/// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_buf>):
/// `Length` bytes starting `Offset` bytes into the first MDL and
/// continuing through `Mdl->Next`. `None` when an MDL cannot be mapped
/// (`MmGetSystemAddressForMdlSafe` returned NULL).
pub(crate) unsafe fn wsk_buf_bytes(b: &WSK_BUF) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.Length);
    let mut m = b.Mdl;
    let mut skip = b.Offset as usize;
    while out.len() < b.Length {
        assert!(!m.is_null(), "WSK_BUF.Length exceeds its MDL chain");
        let count = MmGetMdlByteCount(m) as usize;
        assert!(skip <= count, "WSK_BUF.Offset beyond the first MDL");
        let base = MmGetSystemAddressForMdlSafe(m, NormalPagePriority | MdlMappingNoExecute);
        if base.is_null() {
            return None;
        }
        let n = (count - skip).min(b.Length - out.len());
        out.extend_from_slice(core::slice::from_raw_parts(base.cast::<u8>().add(skip), n));
        skip = 0;
        m = (*m).Next;
    }
    Some(out)
}

/// Completion routine: signals the `KEVENT` in `ctx`, keeps the IRP.
pub(crate) unsafe extern "system" fn signal_done(
    _dev: PDEVICE_OBJECT,
    _irp: PIRP,
    ctx: PVOID,
) -> NTSTATUS {
    KeSetEvent(ctx.cast(), 0, FALSE);
    STATUS_MORE_PROCESSING_REQUIRED
}

/// An IRP and the event its completion signals.
pub(crate) struct Req {
    pub(crate) irp: PIRP,
    pub(crate) event: Box<KEVENT>,
}

impl Req {
    pub(crate) fn new() -> Req {
        unsafe {
            let irp = IoAllocateIrp(1, FALSE);
            assert!(!irp.is_null());
            let mut event: Box<KEVENT> = Box::new(core::mem::zeroed());
            KeInitializeEvent(&mut *event, NotificationEvent, FALSE);
            Req { irp, event }
        }
    }

    /// Prepares the IRP for a call.
    pub(crate) fn arm(&mut self) -> PIRP {
        unsafe {
            IoReuseIrp(self.irp, STATUS_UNSUCCESSFUL);
            KeClearEvent(&mut *self.event);
            IoSetCompletionRoutine(
                self.irp,
                Some(signal_done),
                (&raw mut *self.event).cast(),
                TRUE,
                TRUE,
                TRUE,
            );
        }
        self.irp
    }

    /// Waits for completion (if the call returned `STATUS_PENDING`) and
    /// returns `(IoStatus.Status, IoStatus.Information)`.
    pub(crate) fn wait(&mut self, returned: NTSTATUS) -> (NTSTATUS, usize) {
        unsafe {
            if returned == STATUS_PENDING {
                let mut timeout: i64 = -50_000_000; // 5 s
                let st = KeWaitForSingleObject(
                    (&raw mut *self.event).cast(),
                    Executive,
                    KernelMode,
                    FALSE,
                    &mut timeout,
                );
                assert_eq!(st, STATUS_SUCCESS, "request did not complete in 5 s");
            } else {
                assert_ne!(
                    KeReadStateEvent(&mut *self.event),
                    0,
                    "non-pending return but not completed"
                );
                assert_eq!(
                    (*self.irp).IoStatus.Status,
                    returned,
                    "returned status != IoStatus.Status"
                );
            }
            (
                (*self.irp).IoStatus.Status,
                (*self.irp).IoStatus.Information,
            )
        }
    }

    pub(crate) fn done(&self) -> bool {
        unsafe { KeReadStateEvent((&raw const *self.event).cast_mut()) != 0 }
    }

    pub(crate) fn result(&self) -> (NTSTATUS, usize) {
        unsafe {
            (
                (*self.irp).IoStatus.Status,
                (*self.irp).IoStatus.Information,
            )
        }
    }
}

impl Drop for Req {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            unsafe { IoFreeIrp(self.irp) };
        }
    }
}

/// A buffer described by an MDL and a `WSK_BUF`.
pub(crate) struct Buf {
    pub data: Vec<u8>,
    pub mdl: PMDL,
    pub wsk: Box<WSK_BUF>,
}

impl Buf {
    pub(crate) fn new(data: &[u8]) -> Buf {
        let mut data = data.to_vec();
        if data.is_empty() {
            data.reserve(1);
        }
        unsafe {
            let len = data.len();
            let mdl = IoAllocateMdl(
                data.as_mut_ptr().cast(),
                len as ULONG,
                FALSE,
                FALSE,
                ptr::null_mut(),
            );
            assert!(!mdl.is_null());
            MmBuildMdlForNonPagedPool(mdl);
            let wsk = Box::new(WSK_BUF {
                Mdl: mdl,
                Offset: 0,
                Length: len,
            });
            Buf { data, mdl, wsk }
        }
    }

    pub(crate) fn zeroed(n: usize) -> Buf {
        Buf::new(&vec![0u8; n])
    }

    pub(crate) fn ptr(&mut self) -> PWSK_BUF {
        &raw mut *self.wsk
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            unsafe { IoFreeMdl(self.mdl) };
        }
    }
}

/// A socket address in a buffer large enough for any family.
pub(crate) struct Sa(pub Box<[u8; 128]>);

impl Sa {
    pub(crate) fn new(s: &str) -> Sa {
        let a: SocketAddr = s.parse().unwrap();
        let mut b = Box::new([0u8; 128]);
        match a {
            SocketAddr::V4(v) => {
                b[0..2].copy_from_slice(&AF_INET.to_ne_bytes());
                b[2..4].copy_from_slice(&v.port().to_be_bytes());
                b[4..8].copy_from_slice(&v.ip().octets());
            }
            SocketAddr::V6(v) => {
                b[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
                b[2..4].copy_from_slice(&v.port().to_be_bytes());
                b[8..24].copy_from_slice(&v.ip().octets());
            }
        }
        Sa(b)
    }

    pub(crate) fn empty() -> Sa {
        Sa(Box::new([0u8; 128]))
    }

    pub(crate) fn ptr(&mut self) -> PSOCKADDR {
        self.0.as_mut_ptr().cast()
    }

    pub(crate) fn get(&self) -> SocketAddr {
        let fam = u16::from_ne_bytes([self.0[0], self.0[1]]);
        let port = u16::from_be_bytes([self.0[2], self.0[3]]);
        if fam == AF_INET {
            let ip: [u8; 4] = self.0[4..8].try_into().unwrap();
            SocketAddr::from((ip, port))
        } else {
            let ip: [u8; 16] = self.0[8..24].try_into().unwrap();
            SocketAddr::from((ip, port))
        }
    }
}

pub(crate) static CLIENT_DISPATCH: WSK_CLIENT_DISPATCH = WSK_CLIENT_DISPATCH {
    Version: MAKE_WSK_VERSION(1, 0),
    Reserved: 0,
    WskClientEvent: None,
};

/// A registered WSK client with a captured provider NPI.
pub(crate) struct Client {
    pub reg: Box<WSK_REGISTRATION>,
    pub npi: WSK_PROVIDER_NPI,
}

impl Client {
    pub(crate) fn new() -> Client {
        unsafe {
            let mut reg = Box::new(WSK_REGISTRATION::ZEROED);
            let mut cnpi = WSK_CLIENT_NPI {
                ClientContext: ptr::null_mut(),
                Dispatch: &CLIENT_DISPATCH,
            };
            assert_eq!(WskRegister(&mut cnpi, &mut *reg), STATUS_SUCCESS);
            let mut npi = WSK_PROVIDER_NPI {
                Client: ptr::null_mut(),
                Dispatch: ptr::null(),
            };
            assert_eq!(
                WskCaptureProviderNPI(&mut *reg, WSK_INFINITE_WAIT, &mut npi),
                STATUS_SUCCESS
            );
            Client { reg, npi }
        }
    }

    pub(crate) fn dispatch(&self) -> WSK_PROVIDER_DISPATCH {
        unsafe { *self.npi.Dispatch }
    }

    /// Creates a socket; returns the status and the socket.
    pub(crate) fn try_socket(
        &self,
        family: u16,
        ty: u16,
        proto: u32,
        flags: u32,
        ctx: PVOID,
        dispatch: PCVOID,
    ) -> (NTSTATUS, PWSK_SOCKET) {
        let mut r = Req::new();
        let irp = r.arm();
        let st = unsafe {
            (self.dispatch().WskSocket.unwrap())(
                self.npi.Client,
                family,
                ty,
                proto,
                flags,
                ctx,
                dispatch,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                irp,
            )
        };
        let (st, info) = r.wait(st);
        (st, info as PWSK_SOCKET)
    }

    pub(crate) fn socket(&self, flags: u32, ctx: PVOID, dispatch: PCVOID) -> PWSK_SOCKET {
        let (ty, proto) = if flags == WSK_FLAG_DATAGRAM_SOCKET {
            (SOCK_DGRAM, IPPROTO_UDP as u32)
        } else {
            (SOCK_STREAM, IPPROTO_TCP as u32)
        };
        let (st, s) = self.try_socket(AF_INET, ty, proto, flags, ctx, dispatch);
        assert_eq!(st, STATUS_SUCCESS, "WskSocket failed");
        s
    }

    pub(crate) fn finish(mut self) {
        unsafe {
            WskReleaseProviderNPI(&mut *self.reg);
            WskDeregister(&mut *self.reg);
        }
    }
}

pub(crate) fn basic(s: PWSK_SOCKET) -> WSK_PROVIDER_BASIC_DISPATCH {
    unsafe { *(*s).Dispatch.cast::<WSK_PROVIDER_BASIC_DISPATCH>() }
}

pub(crate) fn conn(s: PWSK_SOCKET) -> WSK_PROVIDER_CONNECTION_DISPATCH {
    unsafe { *(*s).Dispatch.cast::<WSK_PROVIDER_CONNECTION_DISPATCH>() }
}

pub(crate) fn listen(s: PWSK_SOCKET) -> WSK_PROVIDER_LISTEN_DISPATCH {
    unsafe { *(*s).Dispatch.cast::<WSK_PROVIDER_LISTEN_DISPATCH>() }
}

pub(crate) fn dgram(s: PWSK_SOCKET) -> WSK_PROVIDER_DATAGRAM_DISPATCH {
    unsafe { *(*s).Dispatch.cast::<WSK_PROVIDER_DATAGRAM_DISPATCH>() }
}

pub(crate) fn stream(s: PWSK_SOCKET) -> WSK_PROVIDER_STREAM_DISPATCH {
    unsafe { *(*s).Dispatch.cast::<WSK_PROVIDER_STREAM_DISPATCH>() }
}

pub(crate) fn close(s: PWSK_SOCKET) -> NTSTATUS {
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe { (basic(s).WskCloseSocket.unwrap())(s, irp) };
    r.wait(st).0
}

/// `WskBind` with a fresh request.
pub(crate) fn bind(s: PWSK_SOCKET, bind_fn: PFN_WSK_BIND, addr: &str) -> NTSTATUS {
    let mut r = Req::new();
    let mut a = Sa::new(addr);
    let irp = r.arm();
    let st = unsafe { (bind_fn.unwrap())(s, a.ptr(), 0, irp) };
    r.wait(st).0
}

pub(crate) fn local_addr(s: PWSK_SOCKET, f: PFN_WSK_GET_LOCAL_ADDRESS) -> SocketAddr {
    let mut r = Req::new();
    let mut a = Sa::empty();
    let irp = r.arm();
    let st = unsafe { (f.unwrap())(s, a.ptr(), irp) };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);
    a.get()
}

/// A bound and connected connection socket.
pub(crate) fn connected(c: &Client, to: &str, ctx: PVOID, dispatch: PCVOID) -> PWSK_SOCKET {
    let s = c.socket(WSK_FLAG_CONNECTION_SOCKET, ctx, dispatch);
    let d = conn(s);
    assert_eq!(bind(s, d.WskBind, "0.0.0.0:0"), STATUS_SUCCESS);
    let mut r = Req::new();
    let mut a = Sa::new(to);
    let irp = r.arm();
    let st = unsafe { (d.WskConnect.unwrap())(s, a.ptr(), 0, irp) };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS, "WskConnect failed");
    s
}

/// A registered client with a bound connection socket (no callbacks)
/// connected to a peer that `sim` makes listen at `addr`: the client, the
/// socket and the peer's end of the connection.
pub(crate) fn client_connected_to_peer(
    sim: &wsk_sim::Sim,
    addr: &str,
) -> (Client, PWSK_SOCKET, wsk_sim::PeerConn) {
    let peer = sim.peer_listen(addr);
    let c = Client::new();
    let s = connected(&c, addr, ptr::null_mut(), ptr::null());
    let p = peer.accept();
    (c, s, p)
}

pub(crate) fn send(s: PWSK_SOCKET, data: &[u8]) -> (NTSTATUS, usize) {
    let mut r = Req::new();
    let mut b = Buf::new(data);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskSend.unwrap())(s, b.ptr(), 0, irp) };
    r.wait(st)
}

pub(crate) fn recv(s: PWSK_SOCKET, n: usize) -> (NTSTATUS, Vec<u8>) {
    let mut r = Req::new();
    let mut b = Buf::zeroed(n);
    let irp = r.arm();
    let st = unsafe { (conn(s).WskReceive.unwrap())(s, b.ptr(), 0, irp) };
    let (st, info) = r.wait(st);
    (st, b.data[..info.min(n)].to_vec())
}

pub(crate) fn disconnect(s: PWSK_SOCKET, flags: u32) -> NTSTATUS {
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe { (conn(s).WskDisconnect.unwrap())(s, ptr::null_mut(), flags, irp) };
    r.wait(st).0
}

/// `WskControlSocket` to enable events (no IRP).
pub(crate) fn enable_events(s: PWSK_SOCKET, mask: u32) -> NTSTATUS {
    event_callback(s, mask, ptr::null_mut())
}

/// `SO_WSK_EVENT_CALLBACK` with `EventMask` `mask` (add `WSK_EVENT_DISABLE`
/// to disable) and an optional IRP.
pub(crate) fn event_callback(s: PWSK_SOCKET, mask: u32, irp: PIRP) -> NTSTATUS {
    let ctl = WSK_EVENT_CALLBACK_CONTROL {
        NpiId: &NPI_WSK_INTERFACE_ID,
        EventMask: mask,
    };
    unsafe {
        (basic(s).WskControlSocket.unwrap())(
            s,
            WskSetOption,
            SO_WSK_EVENT_CALLBACK,
            SOL_SOCKET,
            core::mem::size_of_val(&ctl),
            (&raw const ctl).cast_mut().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    }
}

/// Sets `SO_CONDITIONAL_ACCEPT` on a listen socket (before its bind), with
/// the IRP its page requires.
pub(crate) fn set_conditional_accept(l: PWSK_SOCKET) {
    let on: u32 = 1;
    let mut r = Req::new();
    let irp = r.arm();
    let st = unsafe {
        (basic(l).WskControlSocket.unwrap())(
            l,
            WskSetOption,
            SO_CONDITIONAL_ACCEPT,
            SOL_SOCKET,
            4,
            (&raw const on).cast_mut().cast(),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            irp,
        )
    };
    assert_eq!(r.wait(st).0, STATUS_SUCCESS);
}
