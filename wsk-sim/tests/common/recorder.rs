//! A recording event client: one context shared by a listener and the
//! sockets it accepts, whose callbacks log what they see, read indications
//! the careful way (`WSK_BUF` as an MDL chain, mapping failures handled) and
//! answer as the test configured.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

use wsk_sys::*;

use super::{Client, bind, listen, set_conditional_accept, wsk_buf_bytes};

/// How the receive callbacks answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Answer {
    /// `STATUS_SUCCESS`, every byte taken.
    Take = 0,
    /// `STATUS_PENDING`: retained until the test releases it.
    Retain = 1,
    /// `STATUS_DATA_NOT_ACCEPTED`.
    Refuse = 2,
}

/// What a test does inside the accept callback (before it returns).
pub(crate) type Hook = Box<dyn FnMut(PWSK_SOCKET) + Send>;

/// The recording context.
pub(crate) struct Recorder {
    log: Mutex<Vec<String>>,
    data: Mutex<Vec<u8>>,
    dgrams: Mutex<Vec<Vec<u8>>>,
    accepted: Mutex<Vec<usize>>,
    retained: Mutex<Vec<usize>>,
    /// `(IRQL seen, Flags)` of every callback with a `Flags` argument.
    irqls: Mutex<Vec<(u8, u32)>>,
    answer: AtomicU32,
    inspect_action: AtomicI32,
    accept_hook: Mutex<Option<Hook>>,
    receive_hook: Mutex<Option<Box<dyn FnMut() + Send>>>,
    /// The last data or datagram indication seen, whatever the answer.
    last_indication: AtomicUsize,
}

impl Recorder {
    pub(crate) fn new() -> Box<Recorder> {
        Box::new(Recorder {
            log: Mutex::default(),
            data: Mutex::default(),
            dgrams: Mutex::default(),
            accepted: Mutex::default(),
            retained: Mutex::default(),
            irqls: Mutex::default(),
            answer: AtomicU32::new(Answer::Take as u32),
            inspect_action: AtomicI32::new(WskInspectAccept),
            accept_hook: Mutex::new(None),
            receive_hook: Mutex::new(None),
            last_indication: AtomicUsize::new(0),
        })
    }

    pub(crate) fn ptr(&self) -> PVOID {
        core::ptr::from_ref(self).cast_mut().cast()
    }

    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn push(&self, s: String) {
        self.log.lock().unwrap().push(s);
    }

    pub(crate) fn data(&self) -> Vec<u8> {
        self.data.lock().unwrap().clone()
    }

    pub(crate) fn dgrams(&self) -> Vec<Vec<u8>> {
        self.dgrams.lock().unwrap().clone()
    }

    pub(crate) fn accepted(&self) -> Vec<PWSK_SOCKET> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|&a| a as PWSK_SOCKET)
            .collect()
    }

    pub(crate) fn take_retained(&self) -> Vec<usize> {
        core::mem::take(&mut *self.retained.lock().unwrap())
    }

    pub(crate) fn irqls(&self) -> Vec<(u8, u32)> {
        self.irqls.lock().unwrap().clone()
    }

    pub(crate) fn answer(&self, a: Answer) {
        self.answer.store(a as u32, Ordering::SeqCst);
    }

    pub(crate) fn inspect(&self, action: WSK_INSPECT_ACTION) {
        self.inspect_action.store(action, Ordering::SeqCst);
    }

    pub(crate) fn on_accept(&self, hook: Hook) {
        *self.accept_hook.lock().unwrap() = Some(hook);
    }

    /// The last indication a receive callback saw (released or not).
    pub(crate) fn last_indication(&self) -> usize {
        self.last_indication.load(Ordering::SeqCst)
    }

    /// Runs `hook` inside the next receive or receive-from callbacks.
    pub(crate) fn on_receive(&self, hook: Box<dyn FnMut() + Send>) {
        *self.receive_hook.lock().unwrap() = Some(hook);
    }

    fn run_receive_hook(&self) {
        if let Some(hook) = self.receive_hook.lock().unwrap().as_mut() {
            hook();
        }
    }

    fn current_answer(&self) -> Answer {
        match self.answer.load(Ordering::SeqCst) {
            1 => Answer::Retain,
            2 => Answer::Refuse,
            _ => Answer::Take,
        }
    }

    fn saw(&self, flags: u32) {
        // SAFETY: always safe to call.
        let irql = unsafe { KeGetCurrentIrql() };
        self.irqls.lock().unwrap().push((irql, flags));
    }

    /// A listen socket with this recorder's dispatch, bound at `addr`.
    pub(crate) fn listener(&self, c: &Client, addr: &str) -> PWSK_SOCKET {
        let l = c.socket(WSK_FLAG_LISTEN_SOCKET, self.ptr(), listen_dispatch());
        assert_eq!(bind(l, listen(l).WskBind, addr), STATUS_SUCCESS);
        l
    }

    /// A conditional-accept listen socket bound at `addr`.
    pub(crate) fn conditional_listener(&self, c: &Client, addr: &str) -> PWSK_SOCKET {
        let l = c.socket(WSK_FLAG_LISTEN_SOCKET, self.ptr(), listen_dispatch());
        set_conditional_accept(l);
        assert_eq!(bind(l, listen(l).WskBind, addr), STATUS_SUCCESS);
        l
    }
}

unsafe fn rec<'a>(p: PVOID) -> &'a Recorder {
    &*p.cast::<Recorder>()
}

unsafe extern "system" fn on_receive(
    sc: PVOID,
    flags: ULONG,
    ind: PWSK_DATA_INDICATION,
    indicated: SIZE_T,
    _accepted: PSIZE_T,
) -> NTSTATUS {
    let r = rec(sc);
    r.saw(flags);
    if ind.is_null() {
        r.push("receive(null)".into());
        return STATUS_SUCCESS;
    }
    r.last_indication.store(ind as usize, Ordering::SeqCst);
    r.run_receive_hook();
    let answer = r.current_answer();
    if answer == Answer::Refuse {
        r.push(format!("receive {indicated} refused"));
        return STATUS_DATA_NOT_ACCEPTED;
    }
    let mut bytes = Vec::new();
    let mut p = ind;
    while !p.is_null() {
        let Some(b) = wsk_buf_bytes(&(*p).Buffer) else {
            // Not mapped: leave every byte with the provider.
            r.push(format!("receive {indicated} unmapped"));
            return STATUS_DATA_NOT_ACCEPTED;
        };
        bytes.extend(b);
        p = (*p).Next;
    }
    assert_eq!(bytes.len(), indicated, "BytesIndicated");
    r.data.lock().unwrap().extend(bytes);
    r.push(format!("receive {indicated}"));
    if answer == Answer::Retain {
        r.retained.lock().unwrap().push(ind as usize);
        return STATUS_PENDING;
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn on_disconnect(sc: PVOID, flags: ULONG) -> NTSTATUS {
    let r = rec(sc);
    r.saw(flags);
    let kind = if flags & WSK_FLAG_ABORTIVE != 0 {
        "abortive"
    } else {
        "graceful"
    };
    r.push(format!("disconnect {kind}"));
    STATUS_SUCCESS
}

unsafe extern "system" fn on_backlog(sc: PVOID, n: SIZE_T) -> NTSTATUS {
    rec(sc).push(format!("backlog {n}"));
    STATUS_SUCCESS
}

unsafe extern "system" fn on_accept(
    sc: PVOID,
    flags: ULONG,
    _local: PSOCKADDR,
    _remote: PSOCKADDR,
    socket: PWSK_SOCKET,
    actx: *mut PVOID,
    adisp: *mut *const WSK_CLIENT_CONNECTION_DISPATCH,
) -> NTSTATUS {
    let r = rec(sc);
    r.saw(flags);
    if socket.is_null() {
        r.push("accept(null)".into());
        return STATUS_REQUEST_NOT_ACCEPTED;
    }
    r.push("accept".into());
    r.accepted.lock().unwrap().push(socket as usize);
    if let Some(hook) = r.accept_hook.lock().unwrap().as_mut() {
        hook(socket);
    }
    *actx = sc;
    *adisp = &CONNECTION_DISPATCH;
    STATUS_SUCCESS
}

unsafe extern "system" fn on_inspect(
    sc: PVOID,
    _l: PSOCKADDR,
    _r: PSOCKADDR,
    id: PWSK_INSPECT_ID,
) -> WSK_INSPECT_ACTION {
    let r = rec(sc);
    if id.is_null() {
        r.push("inspect(null)".into());
        return WskInspectReject;
    }
    r.push("inspect".into());
    r.inspect_action.load(Ordering::SeqCst)
}

unsafe extern "system" fn on_abort(sc: PVOID, _id: PWSK_INSPECT_ID) -> NTSTATUS {
    rec(sc).push("abort".into());
    STATUS_SUCCESS
}

unsafe extern "system" fn on_receive_from(
    sc: PVOID,
    flags: ULONG,
    ind: PWSK_DATAGRAM_INDICATION,
) -> NTSTATUS {
    let r = rec(sc);
    r.saw(flags);
    if ind.is_null() {
        r.push("receive_from(null)".into());
        return STATUS_SUCCESS;
    }
    r.last_indication.store(ind as usize, Ordering::SeqCst);
    r.run_receive_hook();
    let answer = r.current_answer();
    let mut n = 0;
    let mut p = ind;
    while !p.is_null() {
        n += 1;
        p = (*p).Next;
    }
    if answer == Answer::Refuse {
        r.push(format!("receive_from {n} refused"));
        return STATUS_DATA_NOT_ACCEPTED;
    }
    let mut got = Vec::new();
    let mut p = ind;
    while !p.is_null() {
        let Some(b) = wsk_buf_bytes(&(*p).Buffer) else {
            r.push(format!("receive_from {n} unmapped"));
            return STATUS_DATA_NOT_ACCEPTED;
        };
        got.push(b);
        p = (*p).Next;
    }
    r.dgrams.lock().unwrap().extend(got);
    r.push(format!("receive_from {n}"));
    if answer == Answer::Retain {
        r.retained.lock().unwrap().push(ind as usize);
        return STATUS_PENDING;
    }
    STATUS_SUCCESS
}

/// The recorder's connection callbacks.
pub(crate) static CONNECTION_DISPATCH: WSK_CLIENT_CONNECTION_DISPATCH =
    WSK_CLIENT_CONNECTION_DISPATCH {
        WskReceiveEvent: Some(on_receive),
        WskDisconnectEvent: Some(on_disconnect),
        WskSendBacklogEvent: Some(on_backlog),
    };

static LISTEN_DISPATCH: WSK_CLIENT_LISTEN_DISPATCH = WSK_CLIENT_LISTEN_DISPATCH {
    WskAcceptEvent: Some(on_accept),
    WskInspectEvent: Some(on_inspect),
    WskAbortEvent: Some(on_abort),
};

static DATAGRAM_DISPATCH: WSK_CLIENT_DATAGRAM_DISPATCH = WSK_CLIENT_DATAGRAM_DISPATCH {
    WskReceiveFromEvent: Some(on_receive_from),
};

pub(crate) fn connection_dispatch() -> PCVOID {
    (&raw const CONNECTION_DISPATCH).cast()
}

pub(crate) fn listen_dispatch() -> PCVOID {
    (&raw const LISTEN_DISPATCH).cast()
}

pub(crate) fn datagram_dispatch() -> PCVOID {
    (&raw const DATAGRAM_DISPATCH).cast()
}
