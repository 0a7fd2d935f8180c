//! Typed socket options (`WskControlSocket` with `WskSetOption` /
//! `WskGetOption`) and the WSK query IOCTLs.
//!
//! Each option is a zero-sized type naming its level, code and value type,
//! so a value of the wrong type or an option set after the bind it must
//! precede does not reach the provider:
//!
//! ```
//! # let sim = wsk_sim::Sim::start();
//! # let _peer = sim.peer_listen("10.0.0.2:80");
//! use wsk::options::{KeepAlive, NoDelay, ReceiveBuffer};
//! use wsk::{block_on, Registration};
//! use wsk::events::NoEvents;
//! use wsk::irql::Passive;
//! use wsk::tcp::ConnectionSocket;
//!
//! # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
//! # let passive = unsafe { wsk::irql::Passive::new_unchecked() };
//! let registration = Registration::register(&passive)?;
//! let provider = registration.capture(&passive, None)?;
//! let socket = block_on(&passive, wsk::tcp::connect(&provider, "10.0.0.2:80".parse().unwrap(), NoEvents))?;
//!
//! socket.set::<NoDelay>(true).wait(&passive)?;
//! socket.set::<KeepAlive>(true).wait(&passive)?;
//! assert!(socket.get::<NoDelay>().wait(&passive)?);
//! let rcvbuf: u32 = socket.get::<ReceiveBuffer>().wait(&passive)?;
//! # let _ = rcvbuf;
//! # socket.close().wait(&passive)?;
//! # drop(provider);
//! # registration.deregister(&passive).expect("no handles");
//! # Ok::<(), wsk::Error>(())
//! ```
//!
//! An option outside this list is one zero-sized type and one
//! [`SocketOption`] impl away: its level, code and value type.
//!
//! ```
//! use wsk::options::SocketOption;
//!
//! /// `SO_BROADCAST` (level `SOL_SOCKET`): send datagrams to broadcast addresses.
//! struct Broadcast;
//! impl SocketOption for Broadcast {
//!     type Value = bool;
//!     const LEVEL: u32 = 0xffff; // SOL_SOCKET
//!     const CODE: u32 = 0x0020; // SO_BROADCAST
//! }
//! ```
//!
//! [`ControlValue`] decodes what a control request returns
//! ([`ControlOutput`] are its raw bytes).

use wsk_sys as sys;

use crate::error::{Error, Result};

/// A socket option with a fixed level, code and value type.
///
/// Implement it for options this module lacks; `Value` is `bool` or `u32`
/// (both passed as a `ULONG`).
pub trait SocketOption {
    /// The option's value type.
    type Value: OptionValue;
    /// The `Level` argument (`SOL_SOCKET`, `IPPROTO_TCP`, `IPPROTO_IPV6`).
    const LEVEL: u32;
    /// The `ControlCode` argument (`SO_*`, `TCP_*`, `IPV6_*`).
    const CODE: u32;
    /// Whether the option may only be set before the socket is bound; setting
    /// it afterwards fails with [`Error::INVALID_DEVICE_STATE`] without a
    /// provider call.
    const BEFORE_BIND: bool = false;
}

/// Whether `O` is `SO_CONDITIONAL_ACCEPT`, by its level and code (so an
/// option type defined outside this crate counts too).
pub(crate) const fn is_conditional_accept<O: SocketOption>() -> bool {
    O::LEVEL == sys::SOL_SOCKET && O::CODE == sys::SO_CONDITIONAL_ACCEPT
}

/// A socket option value passed as a `ULONG`.
pub trait OptionValue: ControlValue + Copy {
    /// The `ULONG` passed to the provider.
    fn to_ulong(self) -> u32;
}

impl OptionValue for bool {
    fn to_ulong(self) -> u32 {
        u32::from(self)
    }
}

impl OptionValue for u32 {
    fn to_ulong(self) -> u32 {
        self
    }
}

macro_rules! options {
    ($($(#[$doc:meta])* $name:ident: $value:ty = ($level:expr, $code:expr, $before:expr);)*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
            pub struct $name;

            impl SocketOption for $name {
                type Value = $value;
                const LEVEL: u32 = $level;
                const CODE: u32 = $code;
                const BEFORE_BIND: bool = $before;
            }
        )*
    };
}

options! {
    /// `SO_REUSEADDR`: allow binding to an address already in use. Must be
    /// set before the bind.
    ReuseAddress: bool = (sys::SOL_SOCKET, sys::SO_REUSEADDR, true);
    /// `SO_EXCLUSIVEADDRUSE`: reserve the local address exclusively for this
    /// socket. Must be set before the bind.
    ExclusiveAddressUse: bool = (sys::SOL_SOCKET, sys::SO_EXCLUSIVEADDRUSE, true);
    /// `SO_KEEPALIVE`: send TCP keep-alive probes.
    KeepAlive: bool = (sys::SOL_SOCKET, sys::SO_KEEPALIVE, false);
    /// `SO_RCVBUF`: the receive buffer size in bytes.
    ReceiveBuffer: u32 = (sys::SOL_SOCKET, sys::SO_RCVBUF, false);
    /// `SO_SNDBUF`: the send buffer size in bytes.
    SendBuffer: u32 = (sys::SOL_SOCKET, sys::SO_SNDBUF, false);
    /// `TCP_NODELAY` (level `IPPROTO_TCP`): disable the Nagle algorithm.
    NoDelay: bool = (sys::IPPROTO_TCP as u32, sys::TCP_NODELAY, false);
    /// `IPV6_V6ONLY` (level `IPPROTO_IPV6`): an IPv6 socket bound to the
    /// wildcard address accepts IPv6 only. Must be set before the bind.
    Ipv6Only: bool = (sys::IPPROTO_IPV6 as u32, sys::IPV6_V6ONLY, true);
    /// `SO_CONDITIONAL_ACCEPT`: listening sockets inspect each connection
    /// request before the handshake (`WskInspectEvent`). Must be set before
    /// the bind; [`tcp::listen`](crate::tcp::listen) sets it for handlers
    /// that implement [`on_inspect`](crate::events::ListenEvents::on_inspect).
    ///
    /// In conditional accept mode the provider calls `WskInspectEvent` and
    /// `WskAbortEvent`, which may be NULL only when the mode is off
    /// (<https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/ns-wsk-_wsk_client_listen_dispatch>):
    /// so setting it does not compile on a
    /// [`ListenSocket`](crate::tcp::ListenSocket) whose handler lacks
    /// `on_inspect`, nor on any other socket kind (the option is for
    /// listening sockets only,
    /// <https://learn.microsoft.com/windows-hardware/drivers/network/so-conditional-accept>).
    ///
    /// ```compile_fail,E0080
    /// use wsk::options::ConditionalAccept;
    /// fn turn_on(listener: &wsk::tcp::ListenSocket) {
    ///     // `NoListenEvents` has no `on_inspect`: its table has no inspect callback.
    ///     let _ = listener.set::<ConditionalAccept>(true);
    /// }
    /// # let _ = turn_on as fn(&wsk::tcp::ListenSocket);
    /// ```
    ConditionalAccept: bool = (sys::SOL_SOCKET, sys::SO_CONDITIONAL_ACCEPT, true);
}

/// A value a socket control request's output decodes to.
pub trait ControlValue: Sized + Send + 'static {
    /// Decodes the output bytes.
    ///
    /// # Errors
    ///
    /// [`Error::BUFFER_TOO_SMALL`] if the provider returned too few bytes.
    fn from_output(output: &ControlOutput) -> Result<Self>;
}

impl ControlValue for ControlOutput {
    fn from_output(output: &ControlOutput) -> Result<Self> {
        Ok(*output)
    }
}

impl ControlValue for () {
    fn from_output(_output: &ControlOutput) -> Result<Self> {
        Ok(())
    }
}

impl ControlValue for u32 {
    fn from_output(output: &ControlOutput) -> Result<Self> {
        output.as_u32()
    }
}

impl ControlValue for bool {
    fn from_output(output: &ControlOutput) -> Result<Self> {
        output.as_u32().map(|v| v != 0)
    }
}

impl ControlValue for usize {
    /// A `SIZE_T`; a provider that writes only a `ULONG` is accepted too.
    fn from_output(output: &ControlOutput) -> Result<Self> {
        if output.len >= size_of::<usize>() {
            let mut bytes = [0u8; size_of::<usize>()];
            bytes.copy_from_slice(&output.bytes[..size_of::<usize>()]);
            Ok(usize::from_ne_bytes(bytes))
        } else {
            output.as_u32().map(|v| v as usize)
        }
    }
}

/// What a socket control request returned: up to 32
/// bytes.
#[derive(Clone, Copy, Debug)]
pub struct ControlOutput {
    bytes: [u8; CONTROL_BYTES],
    len: usize,
}

/// Room for the option values and control structures passed inline in a
/// socket control request, in each direction.
pub(crate) const CONTROL_BYTES: usize = 32;

impl ControlOutput {
    /// The output of a control request that returned `len` bytes of
    /// `bytes` (clamped to their size).
    pub(crate) fn new(bytes: [u8; CONTROL_BYTES], len: usize) -> Self {
        Self {
            bytes,
            len: len.min(CONTROL_BYTES),
        }
    }

    /// The output bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The output as a `ULONG` option value.
    ///
    /// # Errors
    ///
    /// [`Error::BUFFER_TOO_SMALL`] if fewer than 4 bytes were returned.
    pub fn as_u32(&self) -> Result<u32> {
        let bytes: [u8; 4] = self.bytes[..4]
            .try_into()
            .map_err(|_| Error::BUFFER_TOO_SMALL)?;
        if self.len < 4 {
            return Err(Error::BUFFER_TOO_SMALL);
        }
        Ok(u32::from_ne_bytes(bytes))
    }
}
