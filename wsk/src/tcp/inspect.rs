//! Conditional accept's vocabulary (`WSK_INSPECT_ID`,
//! `WSK_INSPECT_ACTION`): shared by listening sockets, their inspect and
//! abort events, and the connections they accept (`SIO_WSK_QUERY_INSPECT_ID`).
//! Exported from [`crate::events`].

use wsk_sys as sys;

/// Identifies a connection request inspected by
/// [`ListenEvents::on_inspect`](crate::events::ListenEvents::on_inspect) (`WSK_INSPECT_ID`, compared by content).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InspectId {
    key: usize,
    serial: u32,
}

impl InspectId {
    pub(crate) fn from_raw(raw: &sys::WSK_INSPECT_ID) -> Self {
        Self {
            key: raw.Key,
            serial: raw.SerialNumber,
        }
    }

    pub(crate) fn to_raw(self) -> sys::WSK_INSPECT_ID {
        sys::WSK_INSPECT_ID {
            Key: self.key,
            SerialNumber: self.serial,
        }
    }
}

impl core::fmt::Debug for InspectId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "InspectId({:#x}:{})", self.key, self.serial)
    }
}

/// What to do with an inspected connection request (`WSK_INSPECT_ACTION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InspectAction {
    /// Refuse the connection (`WskInspectReject`).
    Reject,
    /// Proceed with the handshake (`WskInspectAccept`).
    Accept,
    /// Decide later with [`ListenSocket::inspect_complete`](crate::tcp::ListenSocket::inspect_complete)
    /// (`WskInspectPend`; only as [`ListenEvents::on_inspect`](crate::events::ListenEvents::on_inspect)'s answer).
    Pend,
}

impl InspectAction {
    pub(crate) fn raw(self) -> sys::WSK_INSPECT_ACTION {
        match self {
            InspectAction::Reject => sys::WskInspectReject,
            InspectAction::Accept => sys::WskInspectAccept,
            InspectAction::Pend => sys::WskInspectPend,
        }
    }
}
