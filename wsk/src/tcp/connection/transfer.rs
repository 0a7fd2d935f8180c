//! Sending and receiving on a connection socket (`WskSend`, `WskReceive`):
//! one-shot requests, requests in a reused [`TransferSlot`], and the
//! stream helpers built on them.

use wsk_sys as sys;

use super::ConnectionSocket;
use super::events::ConnectionEvents;
use crate::buffer::{BufResult, Buffer};
use crate::error::Error;
use crate::irp::block::{InFlight, Operation, Payload};
use crate::irp::handle::{Prepared, Request, RequestSlot, SlotRequest};
use crate::socket::core::{SocketCore, SocketRef};

impl<H: ConnectionEvents> ConnectionSocket<H> {
    /// Sends the bytes of `buffer` (`WskSend`); resolves to the bytes sent
    /// and the buffer.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Without calling the provider:
    /// - [`Error::CONNECTION_ABORTED`] once the connection was aborted (by
    ///   the peer, as an abortive disconnect event reported, or by
    ///   [`abort`](Self::abort)).
    /// - [`Error::INVALID_PARAMETER`] for an empty buffer.
    /// - [`Error::INVALID_DEVICE_STATE`] on a socket that is not connected,
    ///   or in TCP silent mode.
    /// - [`Error::FILE_FORCED_CLOSED`] once the socket must be closed
    ///   ([`must_close`](Self::must_close)).
    ///
    /// Provider statuses otherwise, such as [`Error::CONNECTION_RESET`].
    pub fn send(&self, buffer: Buffer) -> Request<TransferOp> {
        self.transfer(buffer, Transfer::Send, 0)
    }

    /// [`send`](Self::send) with `WskSend` flags (`WSK_FLAG_NODELAY`,
    /// `WSK_FLAG_OOB`).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_with(&self, buffer: Buffer, flags: SendFlags) -> Request<TransferOp> {
        self.transfer(buffer, Transfer::Send, flags.bits())
    }

    /// Receives into `buffer`'s whole capacity (`WskReceive`); resolves to
    /// the bytes received and the buffer, whose length is set accordingly.
    /// 0 bytes is taken to mean that the peer closed its side (the usual
    /// sockets semantics; the `WskReceive` page does not say it, the
    /// disconnect event is the documented signal).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_DEVICE_STATE`] without calling the provider on a
    ///   socket that is not connected, or in TCP silent mode;
    ///   [`Error::FILE_FORCED_CLOSED`] once the socket must be closed.
    /// - Provider statuses such as [`Error::CONNECTION_RESET`] (abortive
    ///   disconnect) or [`Error::CANCELLED`] (the socket closed).
    pub fn receive(&self, buffer: Buffer) -> Request<TransferOp> {
        self.transfer(buffer, Transfer::Receive, 0)
    }

    /// [`receive`](Self::receive) with `WskReceive` flags
    /// (`WSK_FLAG_WAITALL`: complete only when the buffer is full or the
    /// connection ends). To discard data (`WSK_FLAG_DRAIN`), see
    /// [`drain`](Self::drain).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// - [`Error::INVALID_PARAMETER`] without calling the provider if
    ///   `flags` holds `WSK_FLAG_DRAIN` (from
    ///   [`ReceiveFlags::from_bits_retain`]): it requires a zero-length
    ///   buffer and excludes `WSK_FLAG_WAITALL`.
    /// - As [`receive`](Self::receive).
    pub fn receive_with(&self, buffer: Buffer, flags: ReceiveFlags) -> Request<TransferOp> {
        self.transfer(buffer, Transfer::Receive, flags.bits())
    }

    /// Sends `buffer`'s data as [`send_with`](Self::send_with) does, with
    /// the memory of `slot` instead of a new allocation: a stream of sends
    /// through one slot allocates nothing. The request borrows the slot until
    /// it completes; see [`RequestSlot`](crate::request::RequestSlot).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send); [`Error::INSUFFICIENT_RESOURCES`] if the slot
    /// lost its memory (a request in it was dropped while pending) and
    /// allocating it again failed.
    // Inlined into the caller's loop: the streaming path stays within 1.1×
    // the raw calls (docs/performance.md).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn send_in<'s>(
        &self,
        slot: &'s mut TransferSlot,
        buffer: Buffer,
        flags: SendFlags,
    ) -> SlotRequest<'s, TransferOp> {
        SlotRequest::prepared(
            slot,
            self.prepare_transfer(buffer, Transfer::Send, flags.bits()),
        )
    }

    /// Receives into `buffer` as [`receive_with`](Self::receive_with) does,
    /// with the memory of `slot` instead of a new allocation; see
    /// [`send_in`](Self::send_in).
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`receive`](Self::receive) and [`send_in`](Self::send_in).
    #[allow(clippy::inline_always)] // as `send_in`
    #[inline(always)]
    pub fn receive_in<'s>(
        &self,
        slot: &'s mut TransferSlot,
        buffer: Buffer,
        flags: ReceiveFlags,
    ) -> SlotRequest<'s, TransferOp> {
        SlotRequest::prepared(
            slot,
            self.prepare_transfer(buffer, Transfer::Receive, flags.bits()),
        )
    }

    /// Sends every valid byte of `buffer`, with as many sends (`WskSend`) as
    /// it takes: after a short send the rest goes out from the same memory,
    /// the `WSK_BUF` starting where the last send ended (no copy). Resolves
    /// to the outcome and the buffer as it was given (all its bytes still
    /// valid, for reuse). An empty buffer is sent at once (nothing to do).
    ///
    /// The sends share one [`TransferSlot`]: one allocation however many
    /// sends it takes; [`send_all_in`](Self::send_all_in) reuses the
    /// caller's.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (poll it there; block on it with
    /// [`block_on`](crate::block_on) at `PASSIVE_LEVEL`).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send) (how much was sent before an error is not
    /// reported); [`Error::INSUFFICIENT_RESOURCES`] if the slot cannot be
    /// allocated; [`Error::CONNECTION_DISCONNECTED`] if a send completes
    /// with nothing sent.
    pub async fn send_all(&self, buffer: Buffer) -> BufResult<()> {
        match TransferSlot::new() {
            Ok(mut slot) => self.send_all_in(&mut slot, buffer).await,
            Err(e) => (Err(e), buffer),
        }
    }

    /// [`send_all`](Self::send_all) with the memory of `slot`: allocates
    /// nothing.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`send_all`](Self::send_all) and [`send_in`](Self::send_in).
    pub async fn send_all_in(&self, slot: &mut TransferSlot, mut buffer: Buffer) -> BufResult<()> {
        let span = buffer.span();
        let result = loop {
            if buffer.is_empty() {
                break Ok(());
            }
            let (sent, back) = self.send_in(slot, buffer, SendFlags::empty()).await;
            buffer = back;
            match sent {
                Ok(0) => break Err(Error::CONNECTION_DISCONNECTED),
                Ok(n) => buffer.advance(n.min(buffer.len())),
                Err(e) => break Err(e),
            }
        };
        buffer.set_span(span);
        (result, buffer)
    }

    /// Receives until `buffer` is full: its spare capacity (after the valid
    /// bytes) is filled with `WSK_FLAG_WAITALL` receives, each writing where
    /// the last ended (the `WSK_BUF`'s `Offset`; no copy). Resolves to the
    /// outcome and the buffer, whose valid bytes are everything received.
    ///
    /// The receives share one [`TransferSlot`];
    /// [`receive_exact_in`](Self::receive_exact_in) reuses the caller's.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL` (poll it there; block on it with
    /// [`block_on`](crate::block_on) at `PASSIVE_LEVEL`).
    ///
    /// # Errors
    ///
    /// - [`Error::GRACEFUL_DISCONNECT`] if the peer closed its side before
    ///   the buffer was full; the buffer holds what arrived.
    /// - As [`receive`](Self::receive); [`Error::INSUFFICIENT_RESOURCES`] if
    ///   the slot cannot be allocated.
    pub async fn receive_exact(&self, buffer: Buffer) -> BufResult<()> {
        match TransferSlot::new() {
            Ok(mut slot) => self.receive_exact_in(&mut slot, buffer).await,
            Err(e) => (Err(e), buffer),
        }
    }

    /// [`receive_exact`](Self::receive_exact) with the memory of `slot`:
    /// allocates nothing.
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// As [`receive_exact`](Self::receive_exact) and
    /// [`receive_in`](Self::receive_in).
    pub async fn receive_exact_in(
        &self,
        slot: &mut TransferSlot,
        mut buffer: Buffer,
    ) -> BufResult<()> {
        let result = loop {
            if buffer.len() == buffer.capacity() {
                break Ok(());
            }
            let flags = ReceiveFlags::WAIT_ALL.bits();
            let request = SlotRequest::prepared(
                slot,
                self.prepare_transfer(buffer, Transfer::ReceiveMore, flags),
            );
            let (received, back) = request.await;
            buffer = back;
            match received {
                Ok(0) => break Err(Error::GRACEFUL_DISCONNECT),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        (result, buffer)
    }

    /// Discards incoming data until the connection ends (`WskReceive` with
    /// `WSK_FLAG_DRAIN` and a zero-length `WSK_BUF`, as Microsoft requires);
    /// resolves when the peer disconnects (gracefully or abortively), when
    /// either side aborts, or when the request is dropped (cancelled) or the
    /// socket closes.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    ///
    /// # IRQL
    ///
    /// ≤ `DISPATCH_LEVEL`.
    ///
    /// # Errors
    ///
    /// Provider statuses: [`Error::NOT_SUPPORTED`] from a transport without
    /// `WSK_FLAG_DRAIN` (Microsoft's TCP has it), [`Error::CANCELLED`] when
    /// the socket closes.
    pub fn drain(&self) -> Request<DrainOp> {
        let core = self.core();
        let op = DrainOp {
            core: SocketCore::erase(core),
            wsk_buf: sys::WSK_BUF {
                Mdl: core::ptr::null_mut(),
                Offset: 0,
                Length: 0,
            },
        };
        let Some(receive) = self.transfer.receive else {
            return Request::failed(op, Error::NOT_IMPLEMENTED);
        };
        let entered = match core.enter_transfer(false) {
            Ok(entered) => entered,
            Err(e) => return Request::failed(op, e),
        };
        let socket = core.socket();
        Request::submit(op, |irp, op| {
            let op = op.into_mut();
            // The provider call runs inside the socket's run-down.
            let _entered = entered;
            // SAFETY: the socket exists; the zero-length WSK_BUF (no MDL, as
            // a zero length allows) lives in the payload until completion.
            unsafe { receive(socket, &raw mut op.wsk_buf, sys::WSK_FLAG_DRAIN, irp) }
        })
    }

    #[inline]
    fn transfer(&self, buffer: Buffer, transfer: Transfer, flags: u32) -> Request<TransferOp> {
        Request::prepared(self.prepare_transfer(buffer, transfer, flags))
    }

    /// The payload of a `WskSend` or `WskReceive` and the call that starts
    /// it, or the payload and why the provider must not be called.
    #[allow(clippy::inline_always)] // as `send_in`
    #[inline(always)]
    fn prepare_transfer(
        &self,
        buffer: Buffer,
        transfer: Transfer,
        flags: u32,
    ) -> Prepared<
        TransferOp,
        impl FnOnce(sys::PIRP, Payload<'_, TransferOp>) -> sys::NTSTATUS + use<'_, H>,
    > {
        let core = self.core();
        let wsk_buf = match transfer {
            Transfer::Send => buffer.wsk_buf_data(),
            Transfer::Receive => buffer.wsk_buf_capacity(),
            Transfer::ReceiveMore => buffer.wsk_buf_spare(),
        };
        let send = matches!(transfer, Transfer::Send);
        let mut op = TransferOp {
            core: SocketCore::erase(core),
            buffer,
            wsk_buf,
            transfer,
            counted: false,
        };
        if send && op.buffer.is_empty() {
            return Err((op, Error::INVALID_PARAMETER));
        }
        if !send && flags & sys::WSK_FLAG_DRAIN != 0 {
            // DRAIN takes a zero-length buffer and excludes WAITALL
            // (https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive):
            // `drain` is its request.
            return Err((op, Error::INVALID_PARAMETER));
        }
        let Some(call) = (if send {
            self.transfer.send
        } else {
            self.transfer.receive
        }) else {
            return Err((op, Error::NOT_IMPLEMENTED));
        };
        // A send stays counted pending until its output is taken (silent
        // mode waits for none).
        let entered = match core.enter_transfer(send) {
            Ok(entered) => entered,
            Err(e) => return Err((op, e)),
        };
        op.counted = send;
        let socket = core.socket();
        Ok((op, move |irp, op: Payload<'_, TransferOp>| {
            let op = op.into_mut();
            // The provider call runs inside the socket's run-down.
            let _entered = entered;
            // SAFETY: the socket exists and is connected; the WSK_BUF and
            // the memory it describes live in the payload until completion.
            unsafe { call(socket, &raw mut op.wsk_buf, flags, irp) }
        }))
    }
}

/// The memory of one `WskSend` or `WskReceive` at a time, reused by
/// [`ConnectionSocket::send_in`] and [`ConnectionSocket::receive_in`] of
/// any connection socket, whatever its handler.
pub type TransferSlot = RequestSlot<TransferOp>;

/// `WskSend` and `WskReceive`.
pub struct TransferOp {
    core: SocketRef,
    buffer: Buffer,
    wsk_buf: sys::WSK_BUF,
    transfer: Transfer,
    /// A send counted as pending until its output is taken or disposed of.
    counted: bool,
}

/// `WskReceive` with `WSK_FLAG_DRAIN` ([`ConnectionSocket::drain`]).
pub struct DrainOp {
    core: SocketRef,
    wsk_buf: sys::WSK_BUF,
}

// SAFETY: the WSK_BUF describes no memory (no MDL).
unsafe impl Send for DrainOp {}

impl Operation for DrainOp {
    /// The connection ended.
    type Output = crate::error::Result<()>;
    fn complete(self, status: i32, _information: usize) -> Self::Output {
        self.core.note_status(status);
        Error::check(status).map(drop)
    }
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}

/// What a [`TransferOp`] does with its buffer.
#[derive(Clone, Copy)]
enum Transfer {
    /// Sends the valid bytes.
    Send,
    /// Receives into the whole capacity; the length becomes what arrived.
    Receive,
    /// Receives into the spare capacity after the valid bytes, which grow
    /// by what arrived.
    ReceiveMore,
}

// SAFETY: the WSK_BUF points into the owned buffer; moving the op between
// threads moves both.
unsafe impl Send for TransferOp {}

impl Operation for TransferOp {
    /// Bytes transferred, and the buffer.
    type Output = BufResult<usize>;
    fn complete(mut self, status: i32, information: usize) -> BufResult<usize> {
        if self.counted {
            self.core.end_send();
        }
        self.core.note_status(status);
        match Error::check(status) {
            Ok(_) => {
                let n = information.min(self.wsk_buf.Length);
                match self.transfer {
                    Transfer::Send => {}
                    Transfer::Receive => self.buffer.set_len(n),
                    Transfer::ReceiveMore => {
                        let len = self.buffer.len() + n;
                        self.buffer.set_len(len);
                    }
                }
                (Ok(n), self.buffer)
            }
            Err(e) => (Err(e), self.buffer),
        }
    }
    fn abandon(self, _status: i32, _information: usize) {
        if self.counted {
            self.core.end_send();
        }
    }
    #[inline]
    fn inflight(&self) -> &InFlight {
        self.core.inflight()
    }
}

bitflags::bitflags! {
    /// The `Flags` of a send request (`PFN_WSK_SEND`).
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_send>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SendFlags: u32 {
        /// `WSK_FLAG_NODELAY`: send this and queued data at once (no Nagle delay).
        const NO_DELAY = sys::WSK_FLAG_NODELAY;
        /// `WSK_FLAG_OOB`: send as out-of-band data (WDK 10.0.16299 and later).
        const OUT_OF_BAND = sys::WSK_FLAG_OOB;
    }
}

bitflags::bitflags! {
    /// The `Flags` of a receive request (`PFN_WSK_RECEIVE`). (The flags of a
    /// receive *event* are [`IndicationFlags`](crate::events::IndicationFlags).)
    /// `WSK_FLAG_DRAIN` has a request of its own,
    /// [`ConnectionSocket::drain`](crate::tcp::ConnectionSocket::drain): it
    /// takes no buffer.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nc-wsk-pfn_wsk_receive>
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ReceiveFlags: u32 {
        /// `WSK_FLAG_WAITALL`: complete only when the buffer is full or the
        /// connection ends.
        const WAIT_ALL = sys::WSK_FLAG_WAITALL;
    }
}
