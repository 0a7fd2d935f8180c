//! Views of the provider's socket dispatch tables.
//!
//! A provider's tables grew with Windows releases, and a stream socket's
//! table (`WSK_PROVIDER_STREAM_DISPATCH`) holds the routines of a connection
//! and of a listening socket in another order. This module is the one place
//! that knows those layouts: it copies short tables into complete ones
//! (missing routines `None`), makes connection- and listen-shaped views of
//! stream tables, and reads single routines of tables that may be shorter
//! than their structure. Socket code asks
//! [`SocketCore::dispatch`](crate::socket::core::SocketCore::dispatch) for
//! a table of its kind and never reads a provider table directly.

use alloc::boxed::Box;
use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};

use wsk_sys as sys;

use super::version::WindowsVersion;

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

/// A provider socket dispatch table type, and its view of a stream socket's
/// table (`None`: not applicable to stream sockets).
pub(crate) trait ProviderTable: Sized {
    /// This table as a view of a stream socket's table.
    fn stream_view(views: &StreamViews) -> Option<&Self>;

    /// A complete copy of `table` when the running Windows' tables of this
    /// type are shorter than the structure (so that no reference to the
    /// whole structure is made over a shorter table); `None` when `table`
    /// can be used directly.
    fn short_table_copy(
        tables: &StreamTables,
        windows: WindowsVersion,
        table: *const c_void,
    ) -> Option<&Self> {
        let _ = (tables, windows, table);
        None
    }
}

impl ProviderTable for sys::WSK_PROVIDER_BASIC_DISPATCH {
    fn stream_view(views: &StreamViews) -> Option<&Self> {
        Some(&views.connection.Basic)
    }
}

impl ProviderTable for sys::WSK_PROVIDER_CONNECTION_DISPATCH {
    fn stream_view(views: &StreamViews) -> Option<&Self> {
        Some(&views.connection)
    }

    /// Before Windows 10 1803 connection tables end before `WskSendEx`
    /// (before 1703, before `WskConnectEx`).
    fn short_table_copy(
        tables: &StreamTables,
        windows: WindowsVersion,
        table: *const c_void,
    ) -> Option<&Self> {
        if windows.at_least(WindowsVersion::WINDOWS_10_1803) {
            return None;
        }
        // SAFETY: only connection sockets' tables are read as connection
        // tables (stream tables were found first); valid while the NPI is
        // captured, which the caller's provider keeps.
        Some(unsafe { tables.connection_copy(table, windows) })
    }
}

impl ProviderTable for sys::WSK_PROVIDER_LISTEN_DISPATCH {
    fn stream_view(views: &StreamViews) -> Option<&Self> {
        Some(&views.listen)
    }
}

impl ProviderTable for sys::WSK_PROVIDER_DATAGRAM_DISPATCH {
    fn stream_view(_views: &StreamViews) -> Option<&Self> {
        None
    }
}

/// Reads one routine of a provider table, the field alone — never the whole
/// table, which may be shorter than its structure on an older provider
/// (datagram tables grew `WskSendMessages` in Windows 8).
///
/// # Safety
///
/// `table` is a provider's socket table, valid while the socket is;
/// `offset` is the offset of a field of type `F` that the running
/// provider's table has.
pub(crate) unsafe fn read_routine<F: Copy>(table: *const c_void, offset: usize) -> F {
    let field = table.cast::<u8>().wrapping_add(offset).cast::<F>();
    // SAFETY: the field lies within the provider's table (caller contract),
    // which is aligned, initialised and valid while the socket is.
    unsafe { field.read() }
}

/// `WskListen` of a stream socket's provider table.
///
/// # Safety
///
/// `table` is the provider table of a stream socket (created with
/// `WSK_FLAG_STREAM_SOCKET`, so on Windows 10 1703 or later, whose stream
/// tables all have `WskListen`), valid while the socket is.
pub(crate) unsafe fn stream_listen(table: *const c_void) -> sys::PFN_WSK_LISTEN {
    let offset = core::mem::offset_of!(sys::WSK_PROVIDER_STREAM_DISPATCH, WskListen);
    // SAFETY: per the caller, the table has the field.
    unsafe { read_routine(table, offset) }
}
