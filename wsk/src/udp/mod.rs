//! UDP: datagram sockets.
//!
//! A [`DatagramSocket`] (`WSK_FLAG_DATAGRAM_SOCKET`) is bound, then sends
//! with [`send_to`](DatagramSocket::send_to) and receives with
//! [`receive_from`](DatagramSocket::receive_from) requests, or through
//! receive-from *events* ([`DatagramEvents`],
//! in [`crate::events`]). [`bind`] opens one in a call, as std's
//! `UdpSocket::bind` does; [`DatagramSocket::connect`] fixes the remote
//! address as std's `UdpSocket::connect` does (`SIO_WSK_SET_REMOTE_ADDRESS`).
//!
//! The type keeps the DDI's name, as the TCP types do (see [`crate::tcp`]).

pub(crate) mod events;
pub(crate) mod socket;
pub(crate) mod transfer;

use core::net::SocketAddr;

pub use events::DatagramFlags;
pub use socket::DatagramSocket;
pub use transfer::{RECEIVE_CONTROL_BYTES, ReceivedFrom};

use self::events::{DatagramEvents, DatagramVtable};
use crate::addr::AddressFamily;
use crate::error::Result;
use crate::provider::client::Provider;
use crate::socket::calls::enable_events_if_supported;
use crate::socket::core::BOUND;
use crate::socket::create::open;

/// Binds a datagram socket to `local`: creates one for its family
/// (`WskSocket`), binds it (`WskBind`; port 0 lets the stack choose) and
/// enables `handler`'s callback.
///
/// A provider without event support (Wine's) does not fail it:
/// [`events_enabled`](DatagramSocket::events_enabled) is then `false`, and
/// datagrams are taken with [`receive_from`](DatagramSocket::receive_from)
/// requests.
///
/// # IRQL
///
/// ≤ `DISPATCH_LEVEL` (poll it there; block on it with
/// [`block_on`](crate::block_on) at `PASSIVE_LEVEL`).
///
/// # Errors
///
/// As [`DatagramSocket::new`], [`DatagramSocket::bind`] and (other than
/// `NOT_IMPLEMENTED`) [`DatagramSocket::enable_events`]; on failure the
/// socket is closed (and the close awaited) before the error is returned.
pub async fn bind<H: DatagramEvents>(
    provider: &Provider,
    local: SocketAddr,
    handler: H,
) -> Result<DatagramSocket<H>> {
    let created = DatagramSocket::new(provider, AddressFamily::of(&local), handler);
    open(created, async |socket: &DatagramSocket<H>| {
        socket.bind(local).await?;
        enable_events_if_supported(&**socket.core(), DatagramVtable::<H>::EVENT_MASK, BOUND)
    })
    .await
}
