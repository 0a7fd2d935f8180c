//! What `cargo xtask wine` checks for each example driver: one table entry per
//! example. Adding an example is adding an entry to [`EXAMPLES`].
//!
//! A run (see `wine.rs`) goes: write the entry's `Parameters` registry values,
//! start the loopback peer, `sc start`, run the peer's part, wait until every
//! `expect` line has appeared in the driver's `DbgPrint` output (in order),
//! `sc stop`, check that the driver unloaded, and wait for the `after_stop`
//! lines. Any of `cargo_wsk::wine::ALWAYS_FORBIDDEN` anywhere in the Wine
//! log, or any of the entry's `forbidden` substrings in a `DbgPrint` line,
//! fails the run.
//!
//! Patterns (`expect`, `after_stop`) match a line when their parts between
//! `*` appear in it in order (`*` stands for any text); see
//! `cargo_wsk::cli::matches`.

use crate::peer::Close;

/// A value written under `HKLM\System\CurrentControlSet\Services\<name>\Parameters`
/// before the driver starts; the driver reads it with
/// `wsk_driver::registry::Parameters`.
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
    #[allow(dead_code)] // No example uses it at the moment.
    Client(&'static [Connection]),
    /// The driver listens (port in [`Param::ListenPort`]); the peer opens
    /// all these connections first, in order, then runs each one's exchange
    /// and close in reverse order: the driver must serve the last connection
    /// while the earlier ones are open and idle.
    Concurrent(&'static [Connection]),
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
    /// Patterns that must match the driver's `DbgPrint` lines, in order,
    /// while it runs.
    pub(crate) expect: &'static [&'static str],
    /// Patterns that must match, in order, once `sc stop` has unloaded it.
    pub(crate) after_stop: &'static [&'static str],
    /// Substrings no `DbgPrint` line of the driver may contain.
    pub(crate) forbidden: &'static [&'static str],
    /// Budget for the whole run after `sc start` (peer and `expect` lines).
    pub(crate) timeout_secs: u64,
}

/// The entry used for a driver that has none: it must load and unload cleanly.
pub(crate) const SMOKE: Example = Example {
    name: "",
    about: "no table entry: load and unload only",
    params: &[],
    peer: Peer::None,
    expect: &[],
    after_stop: &[],
    forbidden: &[],
    timeout_secs: 10,
};

/// Every example with checks. Keep in sync with `examples/`.
pub(crate) const EXAMPLES: &[Example] = &[
    // Wine's netio.sys has no event callbacks, so the driver must fall back
    // to its request-driven mode. The peer opens four connections at once
    // and serves them last to first, so the driver must serve each while
    // the earlier ones idle. Every report line precedes what the peer can
    // see of it (the echo, the FIN), so the order below is deterministic.
    Example {
        name: "echo-server",
        about: "listens on 127.0.0.1:<Port>, echoes every connection until the client closes",
        params: &[
            ("Port", Param::ListenPort),
            ("Address", Param::Str("127.0.0.1")),
        ],
        peer: ECHO_PEER,
        expect: &[
            "echo-server: listening on 127.0.0.1:* mode=request-driven buffer=65536",
            "echo-server: connection 1 from 127.0.0.1:",
            "echo-server: connection 2 from 127.0.0.1:",
            "echo-server: connection 3 from 127.0.0.1:",
            "echo-server: connection 4 from 127.0.0.1:",
            "echo-server: connection 3 closed graceful bytes=32768",
            "echo-server: connection 2 closed graceful bytes=29",
            // Abortive on Windows. On Wine the peer's RST completes the
            // pending receive with success and 0 bytes, exactly like a FIN,
            // so the driver cannot tell and reports graceful.
            "echo-server: connection 1 closed * bytes=23",
        ],
        // Connection 4 is still open when the driver stops: the driver
        // must close it, which on Wine is also what completes its pending
        // receive (Wine ignores IoCancelIrp).
        after_stop: &[
            "echo-server: connection 4 closed stopped bytes=33",
            // 23 + 29 + 32768 + 33 bytes (checked by a unit test).
            "echo-server: stopped connections=4 bytes=32853 mode=request-driven",
        ],
        forbidden: &[
            "connection 5 ",
            "failed",
            "deregistered after closing",
            "still running",
        ],
        timeout_secs: 30,
    },
    // The baseline the Wine benchmark races echo-server against: the same
    // peer, the same report lines with its own prefix. A connection the
    // stop closes is reported after the close (a send the stop abandoned
    // may still complete and count).
    Example {
        name: "raw-echo",
        about: "the wsk-sys-only baseline echo server: listens on 127.0.0.1:<Port>, a thread per connection",
        params: &[
            ("Port", Param::ListenPort),
            ("Address", Param::Str("127.0.0.1")),
            ("BufferSize", Param::Dword(65536)),
        ],
        peer: ECHO_PEER,
        expect: &[
            "raw-echo: listening on 127.0.0.1:* buffer=65536",
            "raw-echo: connection 1 from 127.0.0.1:",
            "raw-echo: connection 2 from 127.0.0.1:",
            "raw-echo: connection 3 from 127.0.0.1:",
            "raw-echo: connection 4 from 127.0.0.1:",
            "raw-echo: connection 3 closed graceful bytes=32768",
            "raw-echo: connection 2 closed graceful bytes=29",
            // Graceful under Wine (see echo-server).
            "raw-echo: connection 1 closed * bytes=23",
        ],
        after_stop: &[
            "raw-echo: connection 4 closed stopped bytes=33",
            "raw-echo: stopped connections=4 bytes=32853",
        ],
        forbidden: &["connection 5 ", "failed", "cannot close"],
        timeout_secs: 30,
    },
    // The teaching sample: requests only, one task per connection. The peer
    // opens two connections and serves the second first; the first is still
    // open when the driver stops, which closes it.
    Example {
        name: "echo-minimal",
        about: "listens on 127.0.0.1:<Port>, echoes each connection in a task until the client closes",
        params: &[("Port", Param::ListenPort)],
        peer: Peer::Concurrent(&[
            Connection {
                send: b"held open through the stop\n",
                expect: b"held open through the stop\n",
                close: Close::Hold,
            },
            Connection {
                send: ECHO_BULK,
                expect: ECHO_BULK,
                close: Close::Graceful,
            },
        ]),
        expect: &[
            "echo-minimal: listening on 127.0.0.1:",
            "echo-minimal: connection from 127.0.0.1:",
            "echo-minimal: connection from 127.0.0.1:",
            "echo-minimal: connection closed bytes=32768",
        ],
        after_stop: &["echo-minimal: unloaded"],
        forbidden: &["failed", "deregistered after closing", "closed bytes=27"],
        timeout_secs: 30,
    },
    // The client resolves "localhost" with WskGetAddressInfo (Wine answers
    // with the host's resolver), connects to the peer's echo server, and
    // meets Wine's two stubs: WskControlSocket (so no event callbacks) and
    // WskDisconnect. Both must surface as errors at once, never as hangs.
    Example {
        name: "tcp-client",
        about: "resolves localhost, connects to the peer's echo server, sends a message, reads the echo, closes",
        params: &[("Host", Param::Str("localhost")), ("Port", Param::PeerPort)],
        peer: Peer::EchoServer {
            expect: b"hello from the driver\n",
        },
        expect: &[
            "tcp-client: host=localhost port=* message=22 bytes",
            "tcp-client: resolved localhost to * address(es)",
            "tcp-client: connected to 127.0.0.1:",
            "tcp-client: event callbacks unavailable (STATUS_NOT_IMPLEMENTED",
            "tcp-client: sent 22 bytes",
            "tcp-client: received 22 bytes identical=true",
            "tcp-client: disconnect: STATUS_NOT_IMPLEMENTED",
            "tcp-client: done remote=127.0.0.1:* events=false sent=22 received=22",
        ],
        after_stop: &["tcp-client: unloaded"],
        forbidden: &["failed", "deregistered after closing"],
        timeout_secs: 20,
    },
    // Wine 8's netio.sys refuses datagram sockets, so on Wine the driver
    // can only report that, stay loaded, and unload cleanly when stopped;
    // its echo is covered by the wsk-sim tests in examples/udp-echo.
    Example {
        name: "udp-echo",
        about: "binds 0.0.0.0:<Port> for UDP and echoes every datagram (Wine: reports that datagram sockets are unavailable)",
        params: &[("Port", Param::ListenPort)],
        peer: Peer::None,
        expect: &[
            "udp-echo: datagram sockets unavailable: STATUS_NOT_IMPLEMENTED (0xC0000002)",
            "udp-echo: not serving: STATUS_NOT_IMPLEMENTED (0xC0000002)",
        ],
        after_stop: &["udp-echo: unloaded"],
        forbidden: &[
            "deregistered after closing",
            "close still pending",
            "listening on",
        ],
        timeout_secs: 15,
    },
];

/// The echo servers' peer (`echo-server`, `raw-echo`): four connections
/// opened at once and served last to first, so the driver must serve each
/// while the earlier ones idle.
const ECHO_PEER: Peer = Peer::Concurrent(&[
    // Exchanged last: nothing the peer does afterwards can race the
    // driver's report of the reset.
    Connection {
        send: b"and goodbye (abortive)\n",
        expect: b"and goodbye (abortive)\n",
        close: Close::Abortive,
    },
    Connection {
        send: b"hello from the loopback peer\n",
        expect: b"hello from the loopback peer\n",
        close: Close::Graceful,
    },
    Connection {
        send: ECHO_BULK,
        expect: ECHO_BULK,
        close: Close::Graceful,
    },
    // Exchanged first, then kept open through the stop.
    Connection {
        send: b"still here when the driver stops\n",
        expect: b"still here when the driver stops\n",
        close: Close::Hold,
    },
]);

/// The echo server's bulk payload: 32 KiB of a pattern that repeats only
/// every 251 bytes, so lost, repeated or reordered chunks show.
pub(crate) const ECHO_BULK: &[u8; 32 * 1024] = &{
    let mut b = [0u8; 32 * 1024];
    let mut i = 0;
    while i < b.len() {
        #[allow(clippy::cast_possible_truncation)] // i % 251 < 256
        {
            b[i] = (i % 251) as u8;
        }
        i += 1;
    }
    b
};

/// The table entry for `name`, or [`SMOKE`].
pub(crate) fn lookup(name: &str) -> Example {
    EXAMPLES
        .iter()
        .find(|e| e.name == name)
        .copied()
        .unwrap_or(SMOKE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_servers_stopped_line_counts_the_peer_traffic() {
        for (name, tail) in [("echo-server", " mode=request-driven"), ("raw-echo", "")] {
            let ex = lookup(name);
            let Peer::Concurrent(conns) = ex.peer else {
                panic!("{name} uses concurrent clients");
            };
            let bytes: usize = conns.iter().map(|c| c.send.len()).sum();
            let line = format!(
                "{name}: stopped connections={} bytes={bytes}{tail}",
                conns.len()
            );
            assert_eq!(ex.after_stop.last(), Some(&line.as_str()));
            for (i, c) in conns.iter().enumerate() {
                assert_eq!(c.send, c.expect, "an echo returns what was sent");
                let n = i + 1;
                let closed = format!("connection {n} closed ");
                let line = ex
                    .expect
                    .iter()
                    .chain(ex.after_stop)
                    .find(|l| l.contains(&closed))
                    .unwrap_or_else(|| panic!("no close line for {name}'s connection {n}"));
                assert!(
                    line.ends_with(&format!(" bytes={}", c.send.len())),
                    "{line}"
                );
            }
        }
    }
}
