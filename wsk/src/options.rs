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
//! use wsk::{block_on, ConnectionSocket, NoEvents, Passive, Registration};
//!
//! # // SAFETY: a host test thread: PASSIVE_LEVEL, outside any WSK callback.
//! # let passive = unsafe { wsk::Passive::new_unchecked() };
//! let registration = Registration::register(&passive)?;
//! let provider = registration.capture(&passive, None)?;
//! let socket = block_on(&passive, ConnectionSocket::connect_to(&provider, "10.0.0.2:80".parse().unwrap(), NoEvents))?;
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
//! Options outside this list remain reachable through the untyped
//! `ConnectionSocket::set_option` / `get_option`.

use alloc::sync::Arc;

use wsk_sys as sys;

use crate::Error;
use crate::request::Request;
use crate::socket::{BOUND, ControlOp, ControlValue, SocketCore, submit_control_as};

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
    /// the bind; [`ListenSocket::open`](crate::ListenSocket::open) sets it
    /// for handlers that implement
    /// [`on_inspect`](crate::ListenEvents::on_inspect).
    ConditionalAccept: bool = (sys::SOL_SOCKET, sys::SO_CONDITIONAL_ACCEPT, true);
}

/// Submits `WskSetOption` for `O`.
pub(crate) fn set<H: Send + Sync + 'static, O: SocketOption>(
    core: &Arc<SocketCore<H>>,
    value: O::Value,
) -> Request<ControlOp<H, ()>> {
    if O::BEFORE_BIND && core.has_flags(BOUND) {
        return Request::ready(Err(Error::INVALID_DEVICE_STATE));
    }
    submit_control_as(
        core,
        sys::WskSetOption,
        O::CODE,
        O::LEVEL,
        &value.to_ulong().to_ne_bytes(),
        0,
    )
}

/// Submits `WskGetOption` for `O`.
pub(crate) fn get<H: Send + Sync + 'static, O: SocketOption>(
    core: &Arc<SocketCore<H>>,
) -> Request<ControlOp<H, O::Value>> {
    submit_control_as(
        core,
        sys::WskGetOption,
        O::CODE,
        O::LEVEL,
        &[],
        size_of::<u32>(),
    )
}

/// Submits a `WskIoctl` whose output is a `SIZE_T`.
pub(crate) fn query_size<H: Send + Sync + 'static>(
    core: &Arc<SocketCore<H>>,
    ioctl: u32,
) -> Request<ControlOp<H, usize>> {
    submit_control_as(core, sys::WskIoctl, ioctl, 0, &[], size_of::<usize>())
}
