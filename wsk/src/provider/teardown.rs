//! What deregistration must wind down, and how: the sockets a
//! registration's providers created (tracked from the moment the provider
//! hands one over until its close is submitted), the run-down of
//! client-level calls, and the report of what the driver left behind.
//!
//! # Why deregistration closes what the driver leaked
//!
//! `WskDeregister` "will wait to return until … all captured instances of
//! the provider NPI are released, … outstanding calls to functions pointed
//! to by `WSK_PROVIDER_DISPATCH` members have returned, [and] all sockets
//! are closed" (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskderegister>),
//! and a driver must not unload before it returned
//! (<https://learn.microsoft.com/windows-hardware/drivers/network/unregistering-a-winsock-kernel-application>).
//! A handle that safe code leaked (`mem::forget`, `Box::leak`, a reference
//! cycle) would make that wait endless — a hung `DriverUnload` — and
//! unloading without it lets the provider call into freed code. So
//! [`Registration::deregister`](crate::Registration::deregister) closes
//! every socket still open itself, releases its retained indication lists
//! first (closing a socket does not release them and they must be released
//! before `WskCloseSocket`,
//! <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_release_data_indication_list>),
//! releases the NPI captures still held, and reports each with a
//! `DbgPrint` line and in its `Err`.
//!
//! That is sound only if nothing can use those objects afterwards, or
//! while they are being torn down. Every provider call on a socket, and
//! every read of a retained list, runs under the socket's run-down
//! (`SocketCore::enter`), which deregistration shuts and drains first: a
//! leaked handle's later calls fail with `Error::FILE_FORCED_CLOSED`, and
//! retained bytes are only lent to a closure (`with_segments`), never
//! borrowed past it. Client-level calls (`WskSocket`, `WskControlClient`,
//! name resolution) run under the registration's run-down, shut before the
//! captures are released; a leaked `Provider` then gets
//! `Error::DEVICE_NOT_READY`, the status of a capture after `WskDeregister`.

use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

use crate::core_ref::{CoreRef, RcInner};
use crate::error::{Error, Result};
use crate::irql::{AtMostDispatch, Passive, SpinLock};

/// A socket the registration tracks until its close is submitted.
pub(crate) trait Tracked: Send + Sync + 'static {
    /// The intrusive links of the registration's list.
    fn links(&self) -> &Links;

    /// Closes the socket under its handle: shuts its run-down and waits
    /// for calls in progress, releases its retained lists, and submits
    /// `WskCloseSocket` (or leaves it to the last release, or to the accept
    /// callback that will reject it). Returns how many retained lists were
    /// released.
    ///
    /// `this` is a reference to `self` (the receiver only selects the
    /// implementation: stable Rust has no `self: CoreRef<Self>`).
    ///
    /// # Safety
    ///
    /// `this` points to `self`.
    unsafe fn shut_down(&self, this: CoreRef<dyn Tracked>, passive: &Passive<'_>) -> usize;

    /// What to call the socket in a diagnostic: its handler's type.
    fn describe(&self) -> &'static str;
}

/// Closes `socket` under its handle ([`Tracked::shut_down`]); how many
/// retained lists were released.
pub(crate) fn shut_down(socket: &CoreRef<dyn Tracked>, passive: &Passive<'_>) -> usize {
    let this = CoreRef::clone(socket);
    // SAFETY: `this` is a reference to the value `socket` derefs to.
    unsafe { socket.shut_down(this, passive) }
}

/// A socket's place in its registration's list.
///
/// # Invariants
///
/// Read and written only under the lock of the registration's
/// [`SocketList`]. While `this` is set, the list owns one strong reference
/// to the socket (`this` came from `CoreRef::into_inner`).
pub(crate) struct Links(UnsafeCell<LinkState>);

#[derive(Clone, Copy)]
struct LinkState {
    this: Option<NonNull<RcInner<dyn Tracked>>>,
    prev: Option<NonNull<RcInner<dyn Tracked>>>,
    next: Option<NonNull<RcInner<dyn Tracked>>>,
}

// SAFETY: only touched under the list's lock (invariant).
unsafe impl Send for Links {}
// SAFETY: as above.
unsafe impl Sync for Links {}

impl Links {
    pub(crate) const fn new() -> Self {
        Self(UnsafeCell::new(LinkState {
            this: None,
            prev: None,
            next: None,
        }))
    }
}

/// The sockets of one registration whose close was not submitted, as an
/// intrusive doubly linked list (O(1) insertion and removal, no allocation).
pub(crate) struct SocketList {
    head: Option<NonNull<RcInner<dyn Tracked>>>,
}

// SAFETY: the pointers are strong references to `Send + Sync` sockets,
// used only under the lock that holds the list.
unsafe impl Send for SocketList {}

impl SocketList {
    pub(crate) const fn new() -> Self {
        Self { head: None }
    }
}

/// Shorthand: state of a tracked node. Callers hold the list's lock.
///
/// # Safety
///
/// `node` is in the list (or is being inserted), alive because the list
/// holds a strong reference; the caller holds the list's lock.
unsafe fn state<'a>(node: NonNull<RcInner<dyn Tracked>>) -> &'a mut LinkState {
    // SAFETY: alive (caller contract).
    let links = unsafe { node.as_ref() }.value().links().0.get();
    // SAFETY: the links are only touched under the lock, which the caller
    // holds, so the access is exclusive.
    unsafe { &mut *links }
}

/// The registration's sockets and client-level run-down.
pub(crate) struct Teardown {
    sockets: SpinLock<SocketList>,
    /// Client-level calls in progress (`WskSocket`, `WskControlClient`,
    /// name resolution, captures), plus [`SHUT`] once deregistration began.
    calls: AtomicU32,
}

/// `calls` bit: deregistration began; no new client-level call starts.
pub(crate) const SHUT: u32 = 1 << 31;

impl Teardown {
    pub(crate) const fn new() -> Self {
        Self {
            sockets: SpinLock::new(SocketList::new()),
            calls: AtomicU32::new(0),
        }
    }

    fn locked<R>(&self, f: impl FnOnce(&mut SocketList) -> R) -> R {
        // SAFETY: callers run at <= DISPATCH_LEVEL (completion routines,
        // callbacks, owners); the closure only relinks nodes.
        let context = unsafe { AtMostDispatch::new_unchecked() };
        self.sockets
            .with_at_most_dispatch(&context, |list, _| f(list))
    }

    /// Tracks `socket` until [`untrack`](Self::untrack) (its close is
    /// submitted) or deregistration closes it.
    pub(crate) fn track(&self, socket: CoreRef<dyn Tracked>) {
        let node = CoreRef::into_inner(socket);
        self.locked(|list| {
            // SAFETY: the list now owns the reference just made; lock held.
            let s = unsafe { state(node) };
            debug_assert!(s.this.is_none(), "tracked twice");
            *s = LinkState {
                this: Some(node),
                prev: None,
                next: list.head,
            };
            if let Some(head) = list.head {
                // SAFETY: in the list; lock held.
                unsafe { state(head) }.prev = Some(node);
            }
            list.head = Some(node);
        });
    }

    /// Stops tracking `socket` (its close is being submitted); returns the
    /// list's reference, to be dropped by the caller outside the lock.
    pub(crate) fn untrack(&self, links: &Links) -> Option<CoreRef<dyn Tracked>> {
        self.locked(|list| {
            // SAFETY: lock held; `links` belongs to a live socket.
            let s = unsafe { &mut *links.0.get() };
            let node = s.this?;
            // SAFETY: `node` is in the list; lock held.
            unsafe { unlink(list, node) };
            // SAFETY: the list's strong reference, given to the caller.
            Some(unsafe { CoreRef::from_inner(node) })
        })
    }

    /// Takes one tracked socket out of the list (deregistration).
    pub(crate) fn pop(&self) -> Option<CoreRef<dyn Tracked>> {
        self.locked(|list| {
            let node = list.head?;
            // SAFETY: in the list; lock held.
            unsafe { unlink(list, node) };
            // SAFETY: the list's strong reference, given to the caller.
            Some(unsafe { CoreRef::from_inner(node) })
        })
    }

    /// Starts a client-level call (a routine of `WSK_PROVIDER_DISPATCH`, or
    /// a capture); the returned guard ends it.
    ///
    /// # Errors
    ///
    /// [`Error::DEVICE_NOT_READY`] once deregistration began (the status a
    /// capture gets after `WskDeregister`).
    pub(crate) fn enter(&self) -> Result<ClientCall<'_>> {
        if self.calls.fetch_add(1, Ordering::Acquire) & SHUT != 0 {
            self.calls.fetch_sub(1, Ordering::Release);
            return Err(Error::DEVICE_NOT_READY);
        }
        Ok(ClientCall(&self.calls))
    }

    /// Refuses client-level calls from now on and waits until those in
    /// progress have returned.
    pub(crate) fn shut(&self, passive: &Passive<'_>) {
        self.calls.fetch_or(SHUT, Ordering::AcqRel);
        drain(&self.calls, passive);
    }
}

/// Removes `node` from `list`.
///
/// # Safety
///
/// `node` is in `list`; the caller holds the list's lock.
unsafe fn unlink(list: &mut SocketList, node: NonNull<RcInner<dyn Tracked>>) {
    // SAFETY: per the caller.
    let s = unsafe { state(node) };
    let (prev, next) = (s.prev, s.next);
    *s = LinkState {
        this: None,
        prev: None,
        next: None,
    };
    match prev {
        // SAFETY: a neighbour is in the list; lock held.
        Some(prev) => unsafe { state(prev) }.next = next,
        None => list.head = next,
    }
    if let Some(next) = next {
        // SAFETY: as above.
        unsafe { state(next) }.prev = prev;
    }
}

/// A client-level call in progress; dropping it ends the call.
pub(crate) struct ClientCall<'a>(&'a AtomicU32);

impl Drop for ClientCall<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// Waits at `PASSIVE_LEVEL` until the count in `calls` (the bits below
/// [`SHUT`]) is zero: the calls run down. Calls never wait, so this is
/// short; it polls, first spinning, then sleeping a millisecond at a time.
pub(crate) fn drain(calls: &AtomicU32, passive: &Passive<'_>) {
    let mut spins = 0_u32;
    while calls.load(Ordering::Acquire) & !SHUT != 0 {
        if spins < 64 {
            spins += 1;
            core::hint::spin_loop();
        } else {
            passive.sleep(Duration::from_millis(1));
        }
    }
}

/// What [`Registration::deregister`](crate::Registration::deregister)
/// found still open and closed or released itself: the driver leaked these
/// handles (`mem::forget`, `Box::leak`, a reference cycle), or still held
/// them. Each was also reported with a `DbgPrint` line. The client is
/// deregistered either way.
///
/// Handles that outlive deregistration stay memory-safe: calls on a socket
/// closed this way fail with [`Error::FILE_FORCED_CLOSED`], reads of a
/// retained list released this way fail with it too, and calls through a
/// `Provider` fail with [`Error::DEVICE_NOT_READY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leftovers {
    /// Sockets whose close had not been submitted: closed.
    pub sockets: usize,
    /// Retained indication lists (`RetainedIndication`,
    /// `RetainedDatagrams`) not dropped: released (`WskRelease`) before
    /// their socket was closed.
    pub retained: usize,
    /// Provider NPI captures still held (by `Provider` handles, or by
    /// sockets and requests of the driver not yet dropped): released
    /// (`WskReleaseProviderNPI`).
    pub providers: usize,
    /// Cached security descriptors (`CachedSecurityDescriptor`) not
    /// dropped: released (`WSK_RELEASE_SD`).
    pub security_descriptors: usize,
}

impl Leftovers {
    /// Whether nothing was left behind.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for Leftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deregistered after closing {} socket(s) and releasing {} retained indication list(s), {} cached security descriptor(s) and {} provider capture(s) the driver still held",
            self.sockets, self.retained, self.security_descriptors, self.providers
        )
    }
}
