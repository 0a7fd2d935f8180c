//! What `cargo xtask wine` checks for each example driver: one table entry per
//! example. Adding an example is adding an entry to [`EXAMPLES`].
//!
//! A run (see `wine.rs`) goes: write the entry's `Parameters` registry values,
//! start the loopback peer, `sc start`, run the peer's part, wait until every
//! `expect` line has appeared in the driver's `DbgPrint` output (in order),
//! `sc stop`, and check that the driver unloaded. Any of these lines anywhere
//! in the Wine log fails the run: see [`ALWAYS_FORBIDDEN`].

use crate::peer::Close;

/// A value written under `HKLM\System\CurrentControlSet\Services\<name>\Parameters`
/// before the driver starts; the driver reads it with
/// `wsk_driver_rt::registry::Parameters`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param {
    /// A fixed `REG_DWORD`.
    Dword(u32),
    /// A fixed `REG_SZ`.
    Str(&'static str),
    /// `REG_DWORD`: the port of the peer's echo server (for [`Peer::EchoServer`]).
    PeerPort,
    /// `REG_DWORD`: a free port the driver should listen on (for [`Peer::Client`]).
    ListenPort,
}

/// One connection the peer opens to the driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    /// Bytes the peer sends.
    pub(crate) send: &'static [u8],
    /// Bytes the peer must receive back before closing.
    pub(crate) expect: &'static [u8],
    /// How the peer closes.
    pub(crate) close: Close,
}

/// The peer's part in a run.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Peer {
    /// No network traffic: load, print, unload.
    None,
    /// The peer listens on 127.0.0.1 (port in [`Param::PeerPort`]), accepts
    /// one connection from the driver, echoes everything until the driver
    /// closes, and requires exactly `expect` to have crossed.
    EchoServer { expect: &'static [u8] },
    /// The driver listens (port in [`Param::ListenPort`]); the peer opens
    /// these connections one after the other.
    Client(&'static [Connection]),
}

/// The checks for one example driver.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Example {
    /// The package name under `examples/` (also the service name).
    pub(crate) name: &'static str,
    /// One line for the summary.
    pub(crate) about: &'static str,
    /// Registry values for the service's `Parameters` key.
    pub(crate) params: &'static [(&'static str, Param)],
    /// The peer's part.
    pub(crate) peer: Peer,
    /// Substrings that must appear in the driver's `DbgPrint` lines, in order.
    pub(crate) expect: &'static [&'static str],
    /// Budget for the whole run after `sc start` (peer and `expect` lines).
    pub(crate) timeout_secs: u64,
}

/// Lines that fail any run wherever they appear in the Wine log.
pub(crate) const ALWAYS_FORBIDDEN: &[&str] = &[
    "panicked at",
    "KeBugCheck",
    "Unhandled page fault",
    "Unhandled exception",
    "to unimplemented function",
    "err:ntoskrnl:ZwLoadDriver",
];

/// The entry used for a driver that has none: it must load and unload cleanly.
pub(crate) const SMOKE: Example = Example {
    name: "",
    about: "no table entry: load and unload only",
    params: &[],
    peer: Peer::None,
    expect: &[],
    timeout_secs: 10,
};

/// Every example with checks. Keep in sync with `examples/`.
pub(crate) const EXAMPLES: &[Example] = &[
    // Draft contract for the first example; its author adjusts the lines.
    Example {
        name: "echo-server",
        about: "listens on 127.0.0.1:<Port>, echoes each connection until the client closes",
        params: &[
            ("Port", Param::ListenPort),
            ("Connections", Param::Dword(2)),
        ],
        peer: Peer::Client(&[
            Connection {
                send: b"hello from the loopback peer\n",
                expect: b"hello from the loopback peer\n",
                close: Close::Graceful,
            },
            Connection {
                send: b"and goodbye (abortive)\n",
                expect: b"and goodbye (abortive)\n",
                close: Close::Abortive,
            },
        ]),
        expect: &[],
        timeout_secs: 20,
    },
    // Draft contract for a driver acting as a client.
    Example {
        name: "echo-client",
        about: "connects to <PeerAddress>:<PeerPort>, sends a message, reads the echo, closes",
        params: &[
            ("PeerAddress", Param::Str("127.0.0.1")),
            ("PeerPort", Param::PeerPort),
        ],
        peer: Peer::EchoServer {
            expect: b"hello from the driver\n",
        },
        expect: &[],
        timeout_secs: 20,
    },
];

/// The table entry for `name`, or [`SMOKE`].
pub(crate) fn lookup(name: &str) -> Example {
    EXAMPLES
        .iter()
        .find(|e| e.name == name)
        .copied()
        .unwrap_or(SMOKE)
}
