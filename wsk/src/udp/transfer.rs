//! Sending and receiving datagrams (`WskSendTo`, `WskReceiveFrom`,
//! `WskSendMessages`): one-shot requests and requests in reused slots.

use alloc::vec::Vec;
use core::mem::offset_of;
use core::net::SocketAddr;

use wsk_sys as sys;

use super::events::{DatagramEvents, DatagramFlags};
use super::socket::DatagramSocket;
use crate::addr::SockAddr;
use crate::buffer::{BufResult, Buffer};
use crate::error::{Error, Result};
use crate::irp::block::{InFlight, Operation, Payload};
use crate::irp::handle::{Prepared, Request, RequestSlot, SlotRequest};
use crate::provider::version::WindowsVersion;
use crate::socket::core::{BOUND, FIXED_REMOTE, FIXED_SENDTO, SocketCore, SocketRef};

/// Bytes of control information (`CMSGHDR` objects) a
/// [`receive_from`](DatagramSocket::receive_from) request can return, kept
/// inline in the request.
pub const RECEIVE_CONTROL_BYTES: usize = 64;

impl<H: DatagramEvents> DatagramSocket<H> {
    /// Sends the bytes of `buffer` as one datagram to `remote` (`WskSendTo`);
    /// resolves to the bytes sent and the buffer.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - [`Error::INVALID_PARAMETER`] for an empty buffer.
    /// - Provider statuses such as [`Error::INVALID_ADDRESS`] (a `remote` of
    ///   another family) or [`Error::HOST_UNREACHABLE`].
    pub fn send_to(&self, buffer: Buffer, remote: SocketAddr) -> Request<SendToOp> {
        Request::prepared(self.prepare_send_to(buffer, Some(remote)))
    }

    /// [`send_to`](Self::send_to) with the memory of `slot` instead of a new
    /// allocation: a stream of datagrams sent through one slot allocates
    /// nothing. The request borrows the slot until it completes; see
    /// [`RequestSlot`](crate::request::RequestSlot).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to); [`Error::INSUFFICIENT_RESOURCES`] if
    /// the slot lost its memory (a request in it was dropped while pending)
    /// and allocating it again failed.
    #[inline]
    pub fn send_to_in<'s>(
        &self,
        slot: &'s mut SendToSlot,
        buffer: Buffer,
        remote: SocketAddr,
    ) -> SlotRequest<'s, SendToOp> {
        SlotRequest::prepared(slot, self.prepare_send_to(buffer, Some(remote)))
    }

    /// Sends the bytes of `buffer` as one datagram to the socket's fixed
    /// destination (`WskSendTo` without a `RemoteAddress`), set with
    /// [`connect`](Self::connect) or
    /// [`set_destination`](Self::set_destination); resolves to the
    /// bytes sent and the buffer.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - [`Error::INVALID_DEVICE_STATE`] without calling the provider while
    ///   no fixed destination is set (none was, or it was cleared).
    /// - As [`send_to`](Self::send_to).
    pub fn send(&self, buffer: Buffer) -> Request<SendToOp> {
        Request::prepared(self.prepare_send_to(buffer, None))
    }

    /// The payload of a `WskSendTo` and the call that starts it, or the
    /// payload and why the provider must not be called.
    #[inline]
    #[allow(clippy::result_large_err)] // the payload goes back whole; boxing it would allocate
    fn prepare_send_to(
        &self,
        buffer: Buffer,
        remote: Option<SocketAddr>,
    ) -> Prepared<
        SendToOp,
        impl FnOnce(sys::PIRP, Payload<'_, SendToOp>) -> sys::NTSTATUS + use<'_, H>,
    > {
        let core = self.core();
        let op = SendToOp {
            core: SocketCore::erase(core),
            wsk_buf: buffer.wsk_buf_data(),
            buffer,
            remote: remote.map_or(SockAddr::UNSPECIFIED, SockAddr::from),
            has_remote: remote.is_some(),
        };
        if op.buffer.is_empty() {
            return Err((op, Error::INVALID_PARAMETER));
        }
        if !core.has_flags(BOUND) {
            return Err((op, Error::ADDRESS_NOT_ASSOCIATED));
        }
        if remote.is_none() && !core.has_flags(FIXED_REMOTE | FIXED_SENDTO) {
            return Err((op, Error::INVALID_DEVICE_STATE));
        }
        if let Some(Err(e)) = remote.map(|r| core.check_family(&r)) {
            return Err((op, e));
        }
        let entered = match core.enter(BOUND) {
            Ok(entered) => entered,
            Err(e) => return Err((op, e)),
        };
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskSendTo);
        // SAFETY: the socket exists; a datagram table; `WskSendTo` exists in
        // every version.
        let send: sys::PFN_WSK_SEND_TO = unsafe { self.routine(offset) };
        let Some(send) = send else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        let socket = core.socket();
        Ok((op, move |irp, op: Payload<'_, SendToOp>| {
            let op = op.into_mut();
            // The provider call runs inside the socket's run-down.
            let _entered = entered;
            let remote = if op.has_remote {
                op.remote.as_mut_ptr()
            } else {
                core::ptr::null_mut()
            };
            // SAFETY: the socket exists; the WSK_BUF, the memory it describes
            // and the address live in the payload until completion; no
            // control information.
            unsafe {
                send(
                    socket,
                    &raw mut op.wsk_buf,
                    0,
                    remote,
                    0,
                    core::ptr::null_mut(),
                    irp,
                )
            }
        }))
    }

    /// Receives one datagram into `buffer`'s whole capacity
    /// (`WskReceiveFrom`); resolves to what was received — its length,
    /// sender, flags ([`DatagramFlags::TRUNC`] if it did not fit) and up to
    /// [`RECEIVE_CONTROL_BYTES`] of control information — and the buffer,
    /// whose length is set accordingly.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - Provider statuses such as [`Error::CANCELLED`] (the request was
    ///   dropped or the socket closed).
    pub fn receive_from(&self, buffer: Buffer) -> Request<ReceiveFromOp> {
        Request::prepared(self.prepare_receive_from(buffer))
    }

    /// [`receive_from`](Self::receive_from) with the memory of `slot` instead
    /// of a new allocation; see [`send_to_in`](Self::send_to_in).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`receive_from`](Self::receive_from) and
    /// [`send_to_in`](Self::send_to_in).
    #[inline]
    pub fn receive_from_in<'s>(
        &self,
        slot: &'s mut ReceiveFromSlot,
        buffer: Buffer,
    ) -> SlotRequest<'s, ReceiveFromOp> {
        SlotRequest::prepared(slot, self.prepare_receive_from(buffer))
    }

    /// The payload of a `WskReceiveFrom` and the call that starts it, or the
    /// payload and why the provider must not be called.
    #[inline]
    #[allow(clippy::result_large_err)] // the payload goes back whole; boxing it would allocate
    fn prepare_receive_from(
        &self,
        buffer: Buffer,
    ) -> Prepared<
        ReceiveFromOp,
        impl FnOnce(sys::PIRP, Payload<'_, ReceiveFromOp>) -> sys::NTSTATUS + use<'_, H>,
    > {
        let core = self.core();
        let op = ReceiveFromOp {
            core: SocketCore::erase(core),
            wsk_buf: buffer.wsk_buf_capacity(),
            buffer,
            remote: SockAddr::UNSPECIFIED,
            #[allow(clippy::cast_possible_truncation)] // a small constant
            control_len: RECEIVE_CONTROL_BYTES as u32,
            control_flags: 0,
            control: ControlStorage([0; RECEIVE_CONTROL_BYTES]),
        };
        if !core.has_flags(BOUND) {
            return Err((op, Error::ADDRESS_NOT_ASSOCIATED));
        }
        let entered = match core.enter(BOUND) {
            Ok(entered) => entered,
            Err(e) => return Err((op, e)),
        };
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskReceiveFrom);
        // SAFETY: the socket exists; a datagram table; `WskReceiveFrom`
        // exists in every version.
        let receive: sys::PFN_WSK_RECEIVE_FROM = unsafe { self.routine(offset) };
        let Some(receive) = receive else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        let socket = core.socket();
        Ok((op, move |irp, op: Payload<'_, ReceiveFromOp>| {
            let op = op.into_mut();
            // The provider call runs inside the socket's run-down.
            let _entered = entered;
            let remote = op.remote.as_mut_ptr();
            let control = (&raw mut op.control).cast::<sys::CMSGHDR>();
            // SAFETY: the socket exists; the WSK_BUF, the buffer, the address,
            // the control length, storage (aligned for CMSGHDR) and flags all
            // live in the payload until completion.
            unsafe {
                receive(
                    socket,
                    &raw mut op.wsk_buf,
                    0,
                    remote,
                    &raw mut op.control_len,
                    control,
                    &raw mut op.control_flags,
                    irp,
                )
            }
        }))
    }

    /// Sends each buffer of `datagrams` as one datagram to `remote`, in one
    /// call (`WskSendMessages`, Windows 8 and later, over a `WSK_BUF_LIST`
    /// chain owned by the request); resolves to the total bytes sent and the
    /// buffers.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::NOT_SUPPORTED`] without calling the provider before
    ///   Windows 8 ([`Provider::windows_version`](crate::Provider::windows_version);
    ///   older providers' tables end before the routine), or if the provider
    ///   leaves it null.
    /// - [`Error::ADDRESS_NOT_ASSOCIATED`] without calling the provider
    ///   before [`bind`](Self::bind) succeeded.
    /// - [`Error::INVALID_PARAMETER`] for no buffers or an empty one.
    /// - [`Error::INSUFFICIENT_RESOURCES`] if the list cannot be allocated.
    /// - Provider statuses, as [`send_to`](Self::send_to).
    pub fn send_messages(
        &self,
        datagrams: Vec<Buffer>,
        remote: SocketAddr,
    ) -> Request<SendMessagesOp> {
        let core = self.core();
        let mut op = SendMessagesOp {
            core: SocketCore::erase(core),
            buffers: datagrams,
            list: Vec::new(),
            remote: SockAddr::from(remote),
        };
        if op.buffers.is_empty() || op.buffers.iter().any(Buffer::is_empty) {
            return Request::failed(op, Error::INVALID_PARAMETER);
        }
        if !core.has_flags(BOUND) {
            return Request::failed(op, Error::ADDRESS_NOT_ASSOCIATED);
        }
        if !core.provider.windows().at_least(WindowsVersion::WINDOWS_8) {
            return Request::failed(op, Error::NOT_SUPPORTED);
        }
        if let Err(e) = core.check_family(&remote) {
            return Request::failed(op, e);
        }
        let entered = match core.enter(BOUND) {
            Ok(entered) => entered,
            Err(e) => return Request::failed(op, e),
        };
        let offset = offset_of!(sys::WSK_PROVIDER_DATAGRAM_DISPATCH, WskSendMessages);
        // SAFETY: the socket exists; a datagram table, which has its Windows 8
        // field `WskSendMessages` (the system is Windows 8 or later).
        let send: sys::PFN_WSK_SEND_MESSAGES = unsafe { self.routine(offset) };
        let Some(send) = send else {
            return Request::failed(op, Error::NOT_SUPPORTED);
        };
        if op.list.try_reserve_exact(op.buffers.len()).is_err() {
            return Request::failed(op, Error::INSUFFICIENT_RESOURCES);
        }
        op.list
            .extend(op.buffers.iter().map(|buffer| sys::WSK_BUF_LIST {
                Next: core::ptr::null_mut(),
                Buffer: buffer.wsk_buf_data(),
            }));
        // Chain the nodes in place: the list's heap block never moves again
        // (nothing is pushed after this), moving the Vec does not move it.
        let base = op.list.as_mut_ptr();
        let count = op.list.len();
        for (i, node) in op.list.iter_mut().enumerate() {
            if i + 1 < count {
                node.Next = base.wrapping_add(i + 1);
            }
        }
        let socket = core.socket();
        let _entered = entered;
        Request::submit(op, |irp, op| {
            let op = op.into_mut();
            let head = op.list.as_mut_ptr();
            let remote = op.remote.as_mut_ptr();
            // SAFETY: the socket exists; the list, the buffers it describes
            // and the address live in the payload until completion; no
            // control information.
            unsafe { send(socket, head, 0, remote, 0, core::ptr::null_mut(), irp) }
        })
    }
}

/// The memory of one `WskSendTo` at a time, reused by
/// [`DatagramSocket::send_to_in`] of any datagram socket.
pub type SendToSlot = RequestSlot<SendToOp>;

/// The memory of one `WskReceiveFrom` at a time, reused by
/// [`DatagramSocket::receive_from_in`] of any datagram socket.
pub type ReceiveFromSlot = RequestSlot<ReceiveFromOp>;

/// `WskSendTo`.
pub struct SendToOp {
    core: SocketRef,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    remote: SockAddr,
    /// Whether `remote` is passed (otherwise the fixed destination is used).
    has_remote: bool,
}

// SAFETY: the WSK_BUF points into the owned buffer; moving the op between
// threads moves both.
unsafe impl Send for SendToOp {}

impl Operation for SendToOp {
    /// Bytes sent, and the buffer.
    type Output = BufResult<usize>;
    fn complete(self, status: i32, information: usize) -> Self::Output {
        self.core.note_status(status);
        match Error::check(status) {
            Ok(_) => (Ok(information.min(self.buffer.len())), self.buffer),
            Err(e) => (Err(e), self.buffer),
        }
    }
    #[inline]
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}

/// Inline storage for received control information, aligned for `CMSGHDR`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlStorage([u8; RECEIVE_CONTROL_BYTES]);

const _: () = assert!(align_of::<ControlStorage>() >= align_of::<sys::CMSGHDR>());

/// `WskReceiveFrom`.
pub struct ReceiveFromOp {
    core: SocketRef,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    remote: SockAddr,
    control_len: sys::ULONG,
    control_flags: sys::ULONG,
    control: ControlStorage,
}

// SAFETY: as SendToOp.
unsafe impl Send for ReceiveFromOp {}

impl Operation for ReceiveFromOp {
    /// What was received, and the buffer.
    type Output = BufResult<ReceivedFrom>;
    #[inline]
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
    fn complete(mut self, status: i32, information: usize) -> Self::Output {
        self.core.note_status(status);
        // Truncation is documented as MSG_TRUNC in the flags; a provider
        // that reports it as STATUS_BUFFER_OVERFLOW instead is tolerated, an
        // assumption, not contract (the WskReceiveFrom page does not name
        // that status).
        let overflow = status == sys::STATUS_BUFFER_OVERFLOW;
        if !overflow {
            if let Err(e) = Error::check(status) {
                return (Err(e), self.buffer);
            }
        }
        let len = information.min(self.buffer.capacity());
        self.buffer.set_len(len);
        let remote = match self.remote.to_socket_addr() {
            Ok(remote) => remote,
            Err(e) => return (Err(e), self.buffer),
        };
        let mut flags = DatagramFlags::from_bits_retain(self.control_flags);
        if overflow {
            flags |= DatagramFlags::TRUNC;
        }
        let received = ReceivedFrom {
            len,
            remote,
            flags,
            control_len: (self.control_len as usize).min(RECEIVE_CONTROL_BYTES),
            control: self.control,
        };
        (Ok(received), self.buffer)
    }
}

/// What a [`receive_from`](DatagramSocket::receive_from) request received.
#[derive(Clone, Copy)]
pub struct ReceivedFrom {
    len: usize,
    remote: SocketAddr,
    flags: DatagramFlags,
    control_len: usize,
    control: ControlStorage,
}

impl ReceivedFrom {
    /// Bytes received into the buffer (at most its capacity).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the datagram was empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sender.
    #[must_use]
    pub fn peer_addr(&self) -> SocketAddr {
        self.remote
    }

    /// The `*ControlFlags` the provider reported: [`DatagramFlags::TRUNC`]
    /// (the datagram did not fit the buffer), [`DatagramFlags::CTRUNC`] (nor
    /// did its control information), [`DatagramFlags::BCAST`],
    /// [`DatagramFlags::MCAST`].
    #[must_use]
    pub fn flags(&self) -> DatagramFlags {
        self.flags
    }

    /// The control information received: `CMSGHDR`-headed control data
    /// objects, at most [`RECEIVE_CONTROL_BYTES`] (empty when there is none).
    #[must_use]
    pub fn control_info(&self) -> &[u8] {
        &self.control.0[..self.control_len]
    }
}

impl core::fmt::Debug for ReceivedFrom {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReceivedFrom")
            .field("len", &self.len)
            .field("remote", &self.remote)
            .field("flags", &self.flags)
            .field("control_len", &self.control_len)
            .finish_non_exhaustive()
    }
}

/// `WskSendMessages`.
pub struct SendMessagesOp {
    core: SocketRef,
    buffers: Vec<Buffer>,
    /// One node per buffer, chained through `Next`; points into `buffers`.
    list: Vec<sys::WSK_BUF_LIST>,
    remote: SockAddr,
}

// SAFETY: the list points into itself and the owned buffers; moving the op
// between threads moves all of them (their heap blocks stay put).
unsafe impl Send for SendMessagesOp {}

impl Operation for SendMessagesOp {
    /// Total bytes sent, and the buffers.
    type Output = (Result<usize>, Vec<Buffer>);
    fn complete(self, status: i32, information: usize) -> Self::Output {
        self.core.note_status(status);
        match Error::check(status) {
            Ok(_) => (Ok(information), self.buffers),
            Err(e) => (Err(e), self.buffers),
        }
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}
