//! Stream sockets (`WSK_FLAG_STREAM_SOCKET`, Windows 10 1703 and later): TCP
//! sockets created before their role is chosen, that then either listen
//! (`WskListen`) or connect (`WskConnect`).
//!
//! See [`StreamSocket`] for the design.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicPtr, Ordering};

use wsk_sys as sys;

use crate::addr::{SockAddr, family_of, wildcard_for};
use crate::connection::{AddressOp, ConnectionSocket, ConnectionVtable};
use crate::events::{ConnectionEvents, NoEvents};
use crate::listen::{ListenEvents, ListenSocket, ListenState, ListenVtable};
use crate::options::SocketOption;
use crate::registration::{LiveHandle, Provider, WindowsVersion};
use crate::request::{Operation, Request};
use crate::socket::{
    BOUND, CloseOp, ControlOp, CreateOp, FromCore, SocketCore, close_in_background, submit_create,
};
use crate::{Error, Result};

/// Connection- and listen-shaped copies of one provider stream table.
pub(crate) struct StreamViews {
    /// The provider's `WSK_PROVIDER_STREAM_DISPATCH`.
    table: *const c_void,
    /// Its routines as a `WSK_PROVIDER_CONNECTION_DISPATCH`.
    pub(crate) connection: sys::WSK_PROVIDER_CONNECTION_DISPATCH,
    /// Its routines as a `WSK_PROVIDER_LISTEN_DISPATCH` (no
    /// `WskInspectComplete`: stream sockets have none).
    pub(crate) listen: sys::WSK_PROVIDER_LISTEN_DISPATCH,
    next: *mut StreamViews,
}

impl StreamViews {
    /// # Safety
    ///
    /// `table` is a provider's stream table on a system running `windows`
    /// (Windows 10 1703 or later).
    unsafe fn new(
        table: *const sys::WSK_PROVIDER_STREAM_DISPATCH,
        windows: WindowsVersion,
    ) -> Self {
        let t = if windows.at_least(WindowsVersion::WINDOWS_10_1803) {
            // SAFETY: 1803 and later tables have every field (caller contract).
            unsafe { table.read() }
        } else {
            // SAFETY: a 1703 stream table has every field up to `WskConnectEx`
            // (caller contract); the prefix type has their layout.
            let rs2 = unsafe { table.cast::<Rs2StreamDispatch>().read() };
            sys::WSK_PROVIDER_STREAM_DISPATCH {
                Basic: rs2.Basic,
                WskBind: rs2.WskBind,
                WskAccept: rs2.WskAccept,
                WskConnect: rs2.WskConnect,
                WskListen: rs2.WskListen,
                WskSend: rs2.WskSend,
                WskReceive: rs2.WskReceive,
                WskDisconnect: rs2.WskDisconnect,
                WskRelease: rs2.WskRelease,
                WskGetLocalAddress: rs2.WskGetLocalAddress,
                WskGetRemoteAddress: rs2.WskGetRemoteAddress,
                WskConnectEx: rs2.WskConnectEx,
                WskSendEx: None,
                WskReceiveEx: None,
            }
        };
        Self {
            table: table.cast(),
            connection: sys::WSK_PROVIDER_CONNECTION_DISPATCH {
                Basic: t.Basic,
                WskBind: t.WskBind,
                WskConnect: t.WskConnect,
                WskGetLocalAddress: t.WskGetLocalAddress,
                WskGetRemoteAddress: t.WskGetRemoteAddress,
                WskSend: t.WskSend,
                WskReceive: t.WskReceive,
                WskDisconnect: t.WskDisconnect,
                WskRelease: t.WskRelease,
                WskConnectEx: t.WskConnectEx,
                WskSendEx: t.WskSendEx,
                WskReceiveEx: t.WskReceiveEx,
            },
            listen: sys::WSK_PROVIDER_LISTEN_DISPATCH {
                Basic: t.Basic,
                WskBind: t.WskBind,
                WskAccept: t.WskAccept,
                WskInspectComplete: None,
                WskGetLocalAddress: t.WskGetLocalAddress,
            },
            next: core::ptr::null_mut(),
        }
    }
}

/// Windows 10 1703's `WSK_PROVIDER_STREAM_DISPATCH`: the fields up to
/// `WskConnectEx` (104 bytes; `WskSendEx`/`WskReceiveEx` came with 1803).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_snake_case)] // the C field names
struct Rs2StreamDispatch {
    Basic: sys::WSK_PROVIDER_BASIC_DISPATCH,
    WskBind: sys::PFN_WSK_BIND,
    WskAccept: sys::PFN_WSK_ACCEPT,
    WskConnect: sys::PFN_WSK_CONNECT,
    WskListen: sys::PFN_WSK_LISTEN,
    WskSend: sys::PFN_WSK_SEND,
    WskReceive: sys::PFN_WSK_RECEIVE,
    WskDisconnect: sys::PFN_WSK_DISCONNECT,
    WskRelease: sys::PFN_WSK_RELEASE_DATA_INDICATION_LIST,
    WskGetLocalAddress: sys::PFN_WSK_GET_LOCAL_ADDRESS,
    WskGetRemoteAddress: sys::PFN_WSK_GET_REMOTE_ADDRESS,
    WskConnectEx: sys::PFN_WSK_CONNECT_EX,
}

const _: () = assert!(size_of::<Rs2StreamDispatch>() == 104);
const _: () = assert!(
    core::mem::offset_of!(Rs2StreamDispatch, WskConnectEx)
        == core::mem::offset_of!(sys::WSK_PROVIDER_STREAM_DISPATCH, WskConnectEx)
);

/// The stream tables of one provider this crate has seen (normally one),
/// each with its views; a lock-free list that only grows, freed with the
/// provider.
///
/// # Invariants
///
/// `head` is null or the first of a chain of `Box<StreamViews>` leaked with
/// `Box::into_raw`, never modified after being published.
pub(crate) struct StreamTables {
    head: AtomicPtr<StreamViews>,
}

// SAFETY: the published nodes are immutable and only freed on drop.
unsafe impl Send for StreamTables {}
// SAFETY: as above.
unsafe impl Sync for StreamTables {}

impl StreamTables {
    pub(crate) const fn new() -> Self {
        Self {
            head: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// The views of `table`, if it is a stream table this crate learned.
    #[inline]
    pub(crate) fn find(&self, table: *const c_void) -> Option<&StreamViews> {
        let mut node = self.head.load(Ordering::Acquire);
        while !node.is_null() {
            // SAFETY: published nodes stay alive and unchanged until drop.
            let views = unsafe { &*node };
            if views.table == table {
                return Some(views);
            }
            node = views.next;
        }
        None
    }

    /// Records `table` as a stream table (once).
    ///
    /// # Safety
    ///
    /// As [`StreamViews::new`], and `table` stays valid as long as `self`.
    pub(crate) unsafe fn learn(
        &self,
        table: *const sys::WSK_PROVIDER_STREAM_DISPATCH,
        windows: WindowsVersion,
    ) {
        if self.find(table.cast()).is_some() {
            return;
        }
        // SAFETY: per the caller.
        let views = unsafe { StreamViews::new(table, windows) };
        self.publish(views);
    }

    /// The complete copy of a connection socket's table `table`, which on
    /// `windows` may be shorter than `WSK_PROVIDER_CONNECTION_DISPATCH`: it
    /// ends after `WskRelease` before Windows 10 1703 and after
    /// `WskConnectEx` before 1803. Made once per table; the missing fields
    /// are `None`.
    ///
    /// # Safety
    ///
    /// `table` is a provider's connection-socket table on a system running
    /// `windows`, valid as long as `self`.
    pub(crate) unsafe fn connection_copy(
        &self,
        table: *const c_void,
        windows: WindowsVersion,
    ) -> &sys::WSK_PROVIDER_CONNECTION_DISPATCH {
        if let Some(views) = self.find(table) {
            return &views.connection;
        }
        // SAFETY: per the caller.
        let connection = unsafe { copy_connection_table(table.cast(), windows) };
        let node = self.publish(StreamViews {
            table,
            connection,
            listen: sys::WSK_PROVIDER_LISTEN_DISPATCH::default(),
            next: core::ptr::null_mut(),
        });
        &node.connection
    }

    /// Adds `views` unless its table is known already; the views of its
    /// table either way.
    fn publish(&self, views: StreamViews) -> &StreamViews {
        let table = views.table;
        let node = Box::into_raw(Box::new(views));
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            // SAFETY: the node is ours until published.
            unsafe { (*node).next = head };
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire)
            {
                // SAFETY: published: alive and unchanged until drop.
                Ok(_) => return unsafe { &*node },
                Err(current) => {
                    head = current;
                    if let Some(known) = self.find(table) {
                        // Another thread learned it meanwhile.
                        // SAFETY: never published; ours alone.
                        drop(unsafe { Box::from_raw(node) });
                        return known;
                    }
                }
            }
        }
    }
}

/// Copies a connection socket's provider table, reading only the fields
/// `windows` has.
///
/// # Safety
///
/// As [`StreamTables::connection_copy`].
unsafe fn copy_connection_table(
    table: *const sys::WSK_PROVIDER_CONNECTION_DISPATCH,
    windows: WindowsVersion,
) -> sys::WSK_PROVIDER_CONNECTION_DISPATCH {
    if windows.at_least(WindowsVersion::WINDOWS_10_1803) {
        // SAFETY: 1803 and later tables have every field (caller contract).
        return unsafe { table.read() };
    }
    // SAFETY: every connection table has the fields up to `WskRelease`
    // (caller contract); the prefix type has their layout.
    let v1 = unsafe { table.cast::<V1ConnectionDispatch>().read() };
    let connect_ex = if windows.at_least(WindowsVersion::WINDOWS_10_1703) {
        // SAFETY: 1703 tables end with `WskConnectEx`; the field is read alone.
        unsafe { (*table).WskConnectEx }
    } else {
        None
    };
    sys::WSK_PROVIDER_CONNECTION_DISPATCH {
        Basic: v1.Basic,
        WskBind: v1.WskBind,
        WskConnect: v1.WskConnect,
        WskGetLocalAddress: v1.WskGetLocalAddress,
        WskGetRemoteAddress: v1.WskGetRemoteAddress,
        WskSend: v1.WskSend,
        WskReceive: v1.WskReceive,
        WskDisconnect: v1.WskDisconnect,
        WskRelease: v1.WskRelease,
        WskConnectEx: connect_ex,
        WskSendEx: None,
        WskReceiveEx: None,
    }
}

/// WSK 1.0's `WSK_PROVIDER_CONNECTION_DISPATCH`: the fields up to
/// `WskRelease` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_snake_case)] // the C field names
struct V1ConnectionDispatch {
    Basic: sys::WSK_PROVIDER_BASIC_DISPATCH,
    WskBind: sys::PFN_WSK_BIND,
    WskConnect: sys::PFN_WSK_CONNECT,
    WskGetLocalAddress: sys::PFN_WSK_GET_LOCAL_ADDRESS,
    WskGetRemoteAddress: sys::PFN_WSK_GET_REMOTE_ADDRESS,
    WskSend: sys::PFN_WSK_SEND,
    WskReceive: sys::PFN_WSK_RECEIVE,
    WskDisconnect: sys::PFN_WSK_DISCONNECT,
    WskRelease: sys::PFN_WSK_RELEASE_DATA_INDICATION_LIST,
}

const _: () = assert!(size_of::<V1ConnectionDispatch>() == 80);
const _: () = assert!(
    core::mem::offset_of!(V1ConnectionDispatch, WskRelease)
        == core::mem::offset_of!(sys::WSK_PROVIDER_CONNECTION_DISPATCH, WskRelease)
);

impl Drop for StreamTables {
    fn drop(&mut self) {
        let mut node = *self.head.get_mut();
        while !node.is_null() {
            // SAFETY: every node came from Box::into_raw and is freed once.
            let views = unsafe { Box::from_raw(node) };
            node = views.next;
        }
    }
}

/// The `WSK_CLIENT_STREAM_DISPATCH` of a stream socket with connection
/// handler `H`, as a constant.
struct StreamVtable<H>(PhantomData<H>);

impl<H: ConnectionEvents> StreamVtable<H> {
    /// The table to pass with the socket: a promoted, `'static` constant.
    fn dispatch_ptr() -> *const sys::WSK_CLIENT_STREAM_DISPATCH {
        &Self::DISPATCH
    }

    const DISPATCH: sys::WSK_CLIENT_STREAM_DISPATCH = sys::WSK_CLIENT_STREAM_DISPATCH {
        Listen: core::ptr::null(),
        Connect: if ConnectionVtable::<H>::EVENT_MASK == 0 {
            core::ptr::null()
        } else {
            &ConnectionVtable::<H>::DISPATCH
        },
    };
}

/// The `WSK_CLIENT_STREAM_DISPATCH` of a stream socket created to listen
/// with listen handler `L` ([`ListenSocket::open_stream`]): `L`'s listen
/// callbacks, no connection callbacks.
struct StreamListenVtable<L>(PhantomData<L>);

impl<L: ListenEvents> StreamListenVtable<L> {
    /// The table to pass with the socket: a promoted, `'static` constant.
    fn dispatch_ptr() -> *const sys::WSK_CLIENT_STREAM_DISPATCH {
        &Self::DISPATCH
    }

    const DISPATCH: sys::WSK_CLIENT_STREAM_DISPATCH = sys::WSK_CLIENT_STREAM_DISPATCH {
        Listen: if ListenVtable::<L>::IS_EMPTY {
            core::ptr::null()
        } else {
            &ListenVtable::<L>::DISPATCH
        },
        Connect: core::ptr::null(),
    };
}

impl<L: ListenEvents> ListenSocket<L> {
    /// Creates a *stream* socket (`WskSocket` with `WSK_FLAG_STREAM_SOCKET`,
    /// Windows 10 1703 and later) whose context is `handler`'s listen state,
    /// binds it to `local`, starts listening (`WskListen`) and enables the
    /// accept events (and the accepted connections' events) `L` implements.
    ///
    /// The result is an ordinary [`ListenSocket`]: accept events go to
    /// `handler` as on a `WSK_FLAG_LISTEN_SOCKET` socket, and
    /// [`accept`](Self::accept) works too. Stream sockets have no
    /// `WskInspectComplete`, so a handler with
    /// [`on_inspect`](ListenEvents::on_inspect) is refused; and
    /// [`inspect_complete`](Self::inspect_complete) fails with
    /// [`Error::NOT_IMPLEMENTED`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (block on it with [`crate::block_on`]).
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_SUPPORTED`] without calling the provider if `L`
    ///   implements [`on_inspect`](ListenEvents::on_inspect), before Windows
    ///   10 1703, or when the provider does not know stream sockets (as
    ///   [`StreamSocket::create`]) or its table lacks `WskListen`.
    /// - As [`bind`](Self::bind) (for example
    ///   [`Error::ADDRESS_ALREADY_EXISTS`]), `WskListen` and
    ///   [`enable_events`](Self::enable_events); on failure the socket is
    ///   closed (and the close awaited, so the address is free again) before
    ///   the error is returned.
    pub async fn open_stream(provider: &Provider, local: SocketAddr, handler: L) -> Result<Self> {
        if L::HAS_INSPECT {
            return Err(Error::NOT_SUPPORTED);
        }
        let state = ListenState::new(provider, handler);
        let core = Arc::new(SocketCore::new(Arc::clone(&provider.inner), state));
        let socket: Self = submit_create(
            core,
            provider.live_handle(),
            family_of(&local),
            sys::SOCK_STREAM,
            sys::IPPROTO_TCP as u32,
            sys::WSK_FLAG_STREAM_SOCKET,
            StreamListenVtable::<L>::dispatch_ptr().cast(),
            ListenVtable::<L>::EVENT_MASK,
        )
        .await?;
        let listening = match socket.bind(local).await {
            Ok(_) => match submit_listen(socket.core()).await {
                Ok(()) => socket.enable_events(),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match listening {
            Ok(()) => Ok(socket),
            Err(e) => {
                let _ = socket.close().await;
                Err(e)
            }
        }
    }
}

/// `WskListen` on a stream socket whose context is `core`.
fn submit_listen<T: Send + Sync + 'static>(core: &Arc<SocketCore<T>>) -> Request<ListenOnlyOp<T>> {
    let socket = core.socket();
    let op = ListenOnlyOp {
        _core: Arc::clone(core),
    };
    // SAFETY: the socket exists (created by the caller's request).
    let table = unsafe { (*socket).Dispatch }.cast::<sys::WSK_PROVIDER_STREAM_DISPATCH>();
    // SAFETY: a stream socket (created with WSK_FLAG_STREAM_SOCKET, Windows
    // 10 1703+, checked at creation): its table is a
    // WSK_PROVIDER_STREAM_DISPATCH, which has `WskListen`; the field is
    // read alone.
    let listen = unsafe { (*table).WskListen };
    let Some(listen) = listen else {
        return Request::failed(op, Error::NOT_SUPPORTED);
    };
    Request::submit(op, |irp, _| {
        // SAFETY: the socket exists; the payload keeps its core (and the
        // socket, which closes only after the core's handle) until completion.
        unsafe { listen(socket, irp) }
    })
}

/// `WskListen` for [`ListenSocket::open_stream`].
struct ListenOnlyOp<T> {
    _core: Arc<SocketCore<T>>,
}

impl<T: Send + Sync + 'static> Operation for ListenOnlyOp<T> {
    type Output = Result<()>;
    fn complete(self, status: sys::NTSTATUS, _information: usize) -> Result<()> {
        Error::check(status).map(drop)
    }
}

/// A stream socket (`WSK_FLAG_STREAM_SOCKET`, Windows 10 1703 and later)
/// whose connection events go to `H`, before it has chosen its role.
///
/// Bind it, then either [`connect`](Self::connect) and
/// [`into_connection`](Self::into_connection), or [`listen`](Self::listen).
/// Dropping it closes the socket in the background.
///
/// # Design
///
/// The provider gives a stream socket one `SocketContext` for both its
/// listen and its connection callbacks, and one table,
/// `WSK_PROVIDER_STREAM_DISPATCH`, whose routines are those of a listening
/// and of a connection socket in another order. This binding therefore
/// reuses the connection code unchanged:
///
/// - A `StreamSocket` owns a socket whose context is the connection
///   state of handler `H` and whose `WSK_CLIENT_STREAM_DISPATCH` installs
///   `H`'s connection callbacks (the same constant table and trampolines as
///   [`ConnectionSocket<H>`]).
/// - Once connected, [`StreamSocket::into_connection`] turns it into a
///   plain [`ConnectionSocket<H>`]: send, receive, disconnect, options and
///   close work as for a connection socket.
/// - [`StreamSocket::listen`] turns it into a [`StreamListener`], which
///   accepts connections by request ([`StreamListener::accept`]), each with
///   its own handler, as [`ConnectionSocket`]s.
///
/// The connection code reads the provider's table through a *view*: when
/// this crate creates a stream socket it copies the provider's stream table
/// once per provider into a connection-shaped and a listen-shaped table,
/// and every socket whose table is that stream table —
/// the stream socket itself and the connections its listener accepts — is
/// read through them. Fields the running Windows lacks (`WskSendEx` and
/// `WskReceiveEx` before 1803) are never read.
///
/// Accept *events* on a stream listener (`WSK_CLIENT_STREAM_DISPATCH.Listen`)
/// need the socket's context to be the listen state of a
/// [`ListenEvents`] handler from the start, which a `StreamSocket` (whose
/// context is connection state) cannot change into: use
/// [`ListenSocket::open_stream`], which creates a stream socket with that
/// context, binds it, listens and enables the accept events.
///
/// ```
/// # let sim = wsk_sim::Sim::start();
/// use wsk::{block_on, Buffer, NoEvents, Passive, Registration, StreamSocket};
/// use core::time::Duration;
///
/// # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
/// # let passive = unsafe { wsk::Passive::new_unchecked() };
/// let registration = Registration::register(&passive)?;
/// let provider = registration.capture(&passive, Some(Duration::from_secs(5)))?;
///
/// let local = "10.0.0.1:9000".parse().unwrap();
/// let listener = block_on(&passive, StreamSocket::listen_on(&provider, local, NoEvents))?;
/// let accept = listener.accept(NoEvents);
/// # let peer = sim.peer_connect("10.0.0.1:9000").expect("accepted");
/// let (connection, _remote) = accept.wait(&passive)?;
/// # peer.send(b"hi");
/// let (received, buffer) = connection.receive(Buffer::with_capacity(16)?).wait(&passive);
/// assert_eq!(&buffer.as_slice()[..received?], b"hi");
///
/// connection.close().wait(&passive)?;
/// listener.close().wait(&passive)?;
/// drop((buffer, provider));
/// registration.deregister(&passive).expect("no handles left");
/// # sim.finish();
/// # Ok::<(), wsk::Error>(())
/// ```
pub struct StreamSocket<H: ConnectionEvents = NoEvents> {
    /// The same socket seen as a connection socket (through the
    /// connection view of its table).
    socket: ConnectionSocket<H>,
    core: Arc<SocketCore<H>>,
}

impl<H: ConnectionEvents> FromCore<H> for StreamSocket<H> {
    #[allow(private_interfaces)]
    fn from_core(core: Arc<SocketCore<H>>, live: LiveHandle) -> Self {
        Self {
            socket: ConnectionSocket::from_core(Arc::clone(&core), live),
            core,
        }
    }
}

impl<H: ConnectionEvents> StreamSocket<H> {
    /// Creates a stream socket for `family` (`WskSocket` with
    /// `WSK_FLAG_STREAM_SOCKET`), installing `handler`'s connection
    /// callbacks.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_SUPPORTED`] without calling the provider before
    ///   Windows 10 1703 ([`Provider::windows_version`]), and when the
    ///   provider does not know stream sockets (it answers
    ///   `STATUS_INVALID_PARAMETER`).
    /// - Other statuses of `WskSocket`, for example
    ///   [`Error::INSUFFICIENT_RESOURCES`].
    pub fn create(
        provider: &Provider,
        family: sys::ADDRESS_FAMILY,
        handler: H,
    ) -> Request<CreateOp<H, Self>> {
        let core = Arc::new(SocketCore::new(Arc::clone(&provider.inner), handler));
        submit_create(
            core,
            provider.live_handle(),
            family,
            sys::SOCK_STREAM,
            sys::IPPROTO_TCP as u32,
            sys::WSK_FLAG_STREAM_SOCKET,
            StreamVtable::<H>::dispatch_ptr().cast(),
            ConnectionVtable::<H>::EVENT_MASK,
        )
    }

    /// Creates a stream socket, binds it to the wildcard address of
    /// `remote`'s family, connects it to `remote` and enables the handler's
    /// events; the result is a [`ConnectionSocket`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (block on it with [`crate::block_on`]).
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) (notably [`Error::NOT_SUPPORTED`]),
    /// [`bind`](Self::bind), [`connect`](Self::connect) and
    /// [`ConnectionSocket::enable_events`]; on failure the socket is closed
    /// (and the close awaited) before the error is returned.
    pub async fn connect_to(
        provider: &Provider,
        remote: SocketAddr,
        handler: H,
    ) -> Result<ConnectionSocket<H>> {
        let socket = Self::create(provider, family_of(&remote), handler).await?;
        let connected = match socket.bind(wildcard_for(&remote)).await {
            Ok(_) => socket.connect(remote).await.map(drop),
            Err(e) => Err(e),
        };
        let connection = socket.into_connection();
        match connected.and_then(|()| connection.enable_events()) {
            Ok(()) => Ok(connection),
            Err(e) => {
                let _ = connection.close().await;
                Err(e)
            }
        }
    }

    /// Creates a stream socket, binds it to `local` and starts listening
    /// (`WskListen`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (block on it with [`crate::block_on`]).
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create) (notably [`Error::NOT_SUPPORTED`]),
    /// [`bind`](Self::bind) and [`listen`](Self::listen); on failure the
    /// socket is closed (and the close awaited, so the address is free
    /// again) before the error is returned.
    pub async fn listen_on(
        provider: &Provider,
        local: SocketAddr,
        handler: H,
    ) -> Result<StreamListener<H>> {
        let socket = Self::create(provider, family_of(&local), handler).await?;
        if let Err(e) = socket.bind(local).await {
            let _ = socket.into_connection().close().await;
            return Err(e);
        }
        match socket.listen().await {
            Ok(listener) => Ok(listener),
            Err((e, socket)) => {
                let _ = socket.into_connection().close().await;
                Err(e)
            }
        }
    }

    /// The handler.
    #[must_use]
    pub fn handler(&self) -> &H {
        self.socket.handler()
    }

    /// Binds to a local address (`WskBind`); required before
    /// [`connect`](Self::connect) and [`listen`](Self::listen).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::bind`], for example
    /// [`Error::ADDRESS_ALREADY_EXISTS`].
    pub fn bind(&self, local: SocketAddr) -> Request<AddressOp<H>> {
        self.socket.bind(local)
    }

    /// Sets the typed socket option `O` (`WskControlSocket`), for example
    /// `socket.set::<Ipv6Only>(false)` before binding an IPv6 socket that
    /// should also take IPv4 traffic; see [`options`](crate::options).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::set`].
    pub fn set<O: SocketOption>(&self, value: O::Value) -> Request<ControlOp<H, ()>> {
        self.socket.set::<O>(value)
    }

    /// Reads the typed socket option `O` (`WskControlSocket`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::get`].
    pub fn get<O: SocketOption>(&self) -> Request<ControlOp<H, O::Value>> {
        self.socket.get::<O>()
    }

    /// Connects to `remote` (`WskConnect`); then use
    /// [`into_connection`](Self::into_connection).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::connect`], for example
    /// [`Error::CONNECTION_REFUSED`].
    pub fn connect(&self, remote: SocketAddr) -> Request<AddressOp<H>> {
        self.socket.connect(remote)
    }

    /// The socket as a connection socket, for sending, receiving,
    /// disconnecting and closing once [`connect`](Self::connect) succeeded
    /// (enable its events with [`ConnectionSocket::enable_events`]).
    #[must_use]
    pub fn into_connection(self) -> ConnectionSocket<H> {
        self.socket
    }

    /// Starts listening on the bound address (`WskListen`); resolves to the
    /// listener, or to the error and this socket.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses, for example [`Error::INVALID_DEVICE_STATE`] when
    /// not bound or already connected; [`Error::NOT_SUPPORTED`] if the
    /// provider's table lacks `WskListen`.
    pub fn listen(self) -> Request<StreamListenOp<H>> {
        let socket = self.core.socket();
        // SAFETY: the socket exists.
        let table = unsafe { (*socket).Dispatch }.cast::<sys::WSK_PROVIDER_STREAM_DISPATCH>();
        // SAFETY: a stream socket's table is a WSK_PROVIDER_STREAM_DISPATCH,
        // which has `WskListen` (Windows 10 1703+, checked at creation); the
        // field is read alone.
        let listen = unsafe { (*table).WskListen };
        let op = StreamListenOp { socket: Some(self) };
        let Some(listen) = listen else {
            return Request::failed(op, Error::NOT_SUPPORTED);
        };
        Request::submit(op, |irp, _| {
            // SAFETY: the socket exists; the payload keeps it open until
            // completion.
            unsafe { listen(socket, irp) }
        })
    }

    /// Closes the socket (`WskCloseSocket`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`ConnectionSocket::close`].
    pub fn close(self) -> Request<CloseOp<H>> {
        self.socket.close()
    }
}

impl<H: ConnectionEvents> core::fmt::Debug for StreamSocket<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamSocket").finish_non_exhaustive()
    }
}

/// `WskListen`.
pub struct StreamListenOp<H: ConnectionEvents> {
    socket: Option<StreamSocket<H>>,
}

impl<H: ConnectionEvents> Operation for StreamListenOp<H> {
    /// The listener, or the error and the socket (still bound, not
    /// listening).
    type Output = core::result::Result<StreamListener<H>, (Error, StreamSocket<H>)>;
    fn complete(mut self, status: sys::NTSTATUS, _information: usize) -> Self::Output {
        let Some(socket) = self.socket.take() else {
            unreachable!("completed once")
        };
        match Error::check(status) {
            Ok(_) => Ok(StreamListener { socket }),
            Err(e) => Err((e, socket)),
        }
    }
}

/// A stream socket listening for connections (after `WskListen`); accepts
/// them by request, each with its own handler.
///
/// `H` is the handler the stream socket was created with; a listening
/// socket receives no connection events, so [`NoEvents`] is the usual
/// choice.
///
/// Dropping it closes the socket in the background; pending accepts then
/// complete with [`Error::CANCELLED`].
pub struct StreamListener<H: ConnectionEvents = NoEvents> {
    socket: StreamSocket<H>,
}

impl<H: ConnectionEvents> StreamListener<H> {
    /// Accepts the next connection (`WskAccept`) with `handler` for its
    /// events (enable them with [`ConnectionSocket::enable_events`]);
    /// resolves to the connection and its remote address.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`] without calling the provider if static
    ///   event callbacks ([`Provider::set_static_events`]) enable a
    ///   connection event `C` does not implement.
    /// - Provider statuses, for example [`Error::CANCELLED`] when the
    ///   listener closed; [`Error::NOT_SUPPORTED`] if the provider's table
    ///   lacks `WskAccept`.
    pub fn accept<C: ConnectionEvents>(&self, handler: C) -> Request<StreamAcceptOp<C>> {
        let listen = &self.socket.core;
        let core = Arc::new(SocketCore::new(Arc::clone(&listen.provider), handler));
        let op = StreamAcceptOp {
            core: Some(core),
            live: Some(listen.provider.live_handle()),
            local: SockAddr::UNSPECIFIED,
            remote: SockAddr::UNSPECIFIED,
            _listener: Arc::clone(listen) as Arc<dyn Send + Sync>,
        };
        // Static event callbacks apply to accepted sockets too: `C` must have them.
        if let Err(e) = crate::registration::check_static(
            listen.provider.reg().static_events(),
            crate::socket::CONNECTION_EVENTS,
            ConnectionVtable::<C>::EVENT_MASK,
        ) {
            return Request::failed(op, e);
        }
        // SAFETY: the socket exists; a stream socket, seen through its listen view.
        let Some(accept) =
            (unsafe { listen.dispatch::<sys::WSK_PROVIDER_LISTEN_DISPATCH>() }).WskAccept
        else {
            return Request::failed(op, Error::NOT_SUPPORTED);
        };
        let socket = listen.socket();
        Request::submit(op, |irp, op| {
            let context = op
                .core
                .as_ref()
                .map_or(core::ptr::null_mut(), SocketCore::context);
            // SAFETY: the socket exists; the context (the new core) and the
            // addresses live in the payload until completion; the dispatch
            // table is a 'static constant.
            unsafe {
                accept(
                    socket,
                    0,
                    context,
                    ConnectionVtable::<C>::dispatch_ptr(),
                    op.local.as_mut_ptr(),
                    op.remote.as_mut_ptr(),
                    irp,
                )
            }
        })
    }

    /// The local address listened on (`WskGetLocalAddress`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses.
    pub fn local_address(&self) -> Request<AddressOp<H>> {
        self.socket.socket.local_address()
    }

    /// Closes the listener (`WskCloseSocket`); pending accepts complete with
    /// [`Error::CANCELLED`].
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// The status of `WskCloseSocket`.
    pub fn close(self) -> Request<CloseOp<H>> {
        self.socket.close()
    }
}

impl<H: ConnectionEvents> core::fmt::Debug for StreamListener<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamListener").finish_non_exhaustive()
    }
}

/// `WskAccept` on a [`StreamListener`].
pub struct StreamAcceptOp<C> {
    core: Option<Arc<SocketCore<C>>>,
    live: Option<LiveHandle>,
    local: SockAddr,
    remote: SockAddr,
    /// Keeps the listener's state (and its provider) alive until completion.
    _listener: Arc<dyn Send + Sync>,
}

impl<C: ConnectionEvents> Operation for StreamAcceptOp<C> {
    /// The accepted connection and its remote address.
    type Output = Result<(ConnectionSocket<C>, SocketAddr)>;

    fn complete(mut self, status: sys::NTSTATUS, information: usize) -> Self::Output {
        Error::check(status)?;
        let socket = information as sys::PWSK_SOCKET;
        if socket.is_null() {
            return Err(Error::UNSUCCESSFUL);
        }
        let (Some(core), Some(live)) = (self.core.take(), self.live.take()) else {
            unreachable!("completed once")
        };
        core.set_socket(socket);
        core.set_flags(BOUND);
        let remote = self.remote.to_socket_addr();
        let connection = ConnectionSocket::from_core(core, live);
        Ok((connection, remote?))
    }

    fn abandon(mut self, status: sys::NTSTATUS, information: usize) {
        if sys::NT_SUCCESS(status) && information != 0 {
            if let Some(core) = self.core.take() {
                core.set_socket(information as sys::PWSK_SOCKET);
                close_in_background(core);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Receiver;
    #[crate::vtable]
    impl ConnectionEvents for Receiver {
        fn on_receive(
            &self,
            _: &crate::EventContext<'_>,
            _: Option<crate::Indication<'_>>,
        ) -> crate::ReceiveAction {
            crate::ReceiveAction::Accept
        }
    }

    #[test]
    fn client_stream_tables_are_static_and_install_only_connection_callbacks() {
        let a = StreamVtable::<Receiver>::dispatch_ptr();
        // SAFETY: a pointer to a promoted ('static) constant.
        let table = unsafe { &*a };
        assert!(table.Listen.is_null());
        assert!(!table.Connect.is_null());
        // SAFETY: as above (a constant `ConnectionVtable` table).
        let connect = unsafe { &*table.Connect };
        assert!(connect.WskReceiveEvent.is_some());
        assert!(connect.WskDisconnectEvent.is_none());
        // SAFETY: as above.
        let none = unsafe { &*StreamVtable::<NoEvents>::dispatch_ptr() };
        assert!(none.Connect.is_null() && none.Listen.is_null());
    }
}
