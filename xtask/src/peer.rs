//! The loopback peer `cargo xtask wine` runs against a driver: plain
//! `std::net` on 127.0.0.1, every wait bounded by a deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How the peer ends a connection it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// `shutdown(SHUT_WR)` (FIN), then wait for the driver to close too.
    Graceful,
    /// `SO_LINGER` {on, 0} and close: the kernel sends RST.
    Abortive,
    /// Keep the connection open while the driver stops: the driver must
    /// close it (see [`await_driver_close`]).
    Hold,
}

/// What happened on one connection, for the summary.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    /// One line per step, in order.
    pub(crate) events: Vec<String>,
    /// The bytes the peer sent.
    pub(crate) sent: Vec<u8>,
    /// The bytes the peer received.
    pub(crate) received: Vec<u8>,
    /// Why this connection did not go as required (empty: it did).
    pub(crate) problems: Vec<String>,
}

impl Transcript {
    fn fail(&mut self, what: impl Into<String>) {
        let what = what.into();
        self.events.push(format!("FAILED: {what}"));
        self.problems.push(what);
    }
}

/// Renders bytes as a short quoted string (escaped, long input elided).
pub(crate) fn show(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let mut s: String = bytes
        .iter()
        .take(MAX)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > MAX {
        s.push('…');
    }
    format!("\"{s}\" ({} B)", bytes.len())
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// A listening socket on 127.0.0.1 with a port chosen by the OS.
pub(crate) fn listen() -> io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0))
}

/// A currently free 127.0.0.1 port for the driver to listen on.
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(listen()?.local_addr()?.port())
}

/// Echo server: accepts one connection, echoes everything until the driver
/// closes its sending side, records the bytes, then closes gracefully.
/// Gives up at `deadline`, or while waiting for a connection once `cancel`
/// is set.
pub(crate) fn echo_server(
    listener: &TcpListener,
    deadline: Instant,
    cancel: &AtomicBool,
) -> Transcript {
    let mut t = Transcript::default();
    if let Err(e) = listener.set_nonblocking(true) {
        t.fail(format!("set_nonblocking: {e}"));
        return t;
    }
    let (mut stream, from) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if cancel.load(Ordering::Relaxed) {
                    t.fail("cancelled before the driver connected");
                    return t;
                }
                if remaining(deadline).is_none() {
                    t.fail("timed out waiting for the driver to connect");
                    return t;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                t.fail(format!("accept: {e}"));
                return t;
            }
        }
    };
    t.events.push(format!("accepted a connection from {from}"));
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(remaining(deadline));
    let mut buf = [0u8; 4096];
    loop {
        let Some(left) = remaining(deadline) else {
            t.fail("timed out: the driver kept the connection open");
            return t;
        };
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => {
                t.events.push(format!(
                    "driver closed its side after sending {}",
                    show(&t.received)
                ));
                break;
            }
            Ok(n) => {
                t.received.extend_from_slice(&buf[..n]);
                if let Err(e) = stream.write_all(&buf[..n]) {
                    t.fail(format!("echo write: {e}"));
                    return t;
                }
                t.sent.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                t.events.push(format!(
                    "driver reset the connection after sending {}",
                    show(&t.received)
                ));
                return t;
            }
            Err(e) => {
                t.fail(format!("read: {e}"));
                return t;
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    t.events
        .push("echoed everything and closed gracefully".into());
    t
}

/// Client: connects to the driver at `127.0.0.1:port` (retrying until it
/// listens), sends `send`, reads back `expect.len()` bytes and closes as
/// `close` says.
pub(crate) fn client(
    port: u16,
    send: &[u8],
    expect: &[u8],
    close: Close,
    deadline: Instant,
) -> Transcript {
    let mut t = Transcript::default();
    if let Some(stream) = connect(port, deadline, &mut t) {
        if let Some(held) = exchange(stream, send, expect, close, deadline, &mut t) {
            // Sequential clients cannot hold a connection past their turn.
            drop(held);
            t.fail("Close::Hold needs Peer::Concurrent");
        }
    }
    t
}

/// Concurrent clients: opens one connection per entry of `conns`, in order,
/// then runs each one's exchange and close in reverse order, so the driver
/// must serve later connections while earlier ones are open and idle.
/// Returns one transcript (events in the order they happened, each tagged
/// `#n` with the connection's number) and the connections kept open
/// ([`Close::Hold`]) with their index.
pub(crate) fn concurrent_clients(
    port: u16,
    conns: &[(&[u8], &[u8], Close)],
    deadline: Instant,
) -> (Transcript, Vec<(usize, TcpStream)>) {
    let mut all = Transcript::default();
    let mut streams = Vec::new();
    let mut held = Vec::new();
    // Runs one step on a connection's own transcript and merges it.
    let step = |all: &mut Transcript, i: usize, f: &mut dyn FnMut(&mut Transcript)| {
        let mut t = Transcript::default();
        f(&mut t);
        all.events
            .extend(t.events.into_iter().map(|e| format!("#{} {e}", i + 1)));
        all.problems
            .extend(t.problems.into_iter().map(|p| format!("#{} {p}", i + 1)));
        all.sent.extend(t.sent);
        all.received.extend(t.received);
    };
    for i in 0..conns.len() {
        step(&mut all, i, &mut |t| {
            if let Some(s) = connect(port, deadline, t) {
                streams.push(s);
            }
        });
        if !all.problems.is_empty() {
            return (all, held);
        }
    }
    all.events.push(format!(
        "all {} connected; exchanging from the last to the first",
        conns.len()
    ));
    for (i, stream) in streams.into_iter().enumerate().rev() {
        let (send, expect, close) = conns[i];
        let mut stream = Some(stream);
        step(&mut all, i, &mut |t| {
            if let Some(s) = stream.take() {
                if let Some(kept) = exchange(s, send, expect, close, deadline, t) {
                    held.push((i, kept));
                }
            }
        });
        if !all.problems.is_empty() {
            break;
        }
    }
    (all, held)
}

/// Connects to the driver at `127.0.0.1:port`, retrying while it refuses.
fn connect(port: u16, deadline: Instant, t: &mut Transcript) -> Option<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = loop {
        let Some(left) = remaining(deadline) else {
            t.fail(format!("timed out connecting to the driver at {addr}"));
            return None;
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => break s,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                t.fail(format!("connect {addr}: {e}"));
                return None;
            }
        }
    };
    let local = stream
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    t.events
        .push(format!("connected to the driver at {addr} from {local}"));
    Some(stream)
}

/// Sends `send`, reads back `expect.len()` bytes, compares, closes; returns
/// the stream when `close` is [`Close::Hold`] and all went well.
fn exchange(
    mut stream: TcpStream,
    send: &[u8],
    expect: &[u8],
    close: Close,
    deadline: Instant,
    t: &mut Transcript,
) -> Option<TcpStream> {
    let _ = stream.set_write_timeout(remaining(deadline));
    if let Err(e) = stream.write_all(send) {
        t.fail(format!("send: {e}"));
        return None;
    }
    t.sent.extend_from_slice(send);
    let mut buf = [0u8; 4096];
    while t.received.len() < expect.len() {
        let Some(left) = remaining(deadline) else {
            t.fail(format!(
                "timed out waiting for the echo: got {} of {}",
                show(&t.received),
                show(expect)
            ));
            return None;
        };
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => {
                t.fail(format!(
                    "driver closed before echoing everything: got {}",
                    show(&t.received)
                ));
                return None;
            }
            Ok(n) => t.received.extend_from_slice(&buf[..n]),
            Err(e) => {
                t.fail(format!("read: {e}"));
                return None;
            }
        }
    }
    if t.received == expect {
        t.events.push(format!("sent {}, echoed back", show(send)));
    } else {
        t.fail(format!(
            "sent {} but received {}, expected {}",
            show(send),
            show(&t.received),
            show(expect)
        ));
    }
    match close {
        Close::Graceful => close_gracefully(&mut stream, t, deadline),
        Close::Abortive => match set_linger_zero(&stream) {
            Ok(()) => {
                drop(stream);
                t.events.push("closed abortively (RST)".into());
            }
            Err(e) => t.fail(format!("SO_LINGER: {e}")),
        },
        Close::Hold => {
            t.events
                .push("keeps the connection open while the driver stops".into());
            return Some(stream);
        }
    }
    None
}

/// Waits until the driver closes a held connection: end of stream or a
/// reset (either is a close); any data or a timeout is a failure.
pub(crate) fn await_driver_close(
    stream: &mut TcpStream,
    deadline: Instant,
) -> Result<&'static str, String> {
    let mut buf = [0u8; 256];
    let Some(left) = remaining(deadline) else {
        return Err("no time left to see the driver close".into());
    };
    let _ = stream.set_read_timeout(Some(left));
    match stream.read(&mut buf) {
        Ok(0) => Ok("the driver closed it (FIN)"),
        Ok(n) => Err(format!("unexpected bytes: {}", show(&buf[..n]))),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok("the driver reset it (RST)"),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err("the driver did not close it".into())
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

fn close_gracefully(stream: &mut TcpStream, t: &mut Transcript, deadline: Instant) {
    if let Err(e) = stream.shutdown(Shutdown::Write) {
        t.fail(format!("shutdown: {e}"));
        return;
    }
    let mut buf = [0u8; 256];
    let Some(left) = remaining(deadline) else {
        t.fail("sent FIN, but no time was left to see the driver close");
        return;
    };
    let _ = stream.set_read_timeout(Some(left));
    match stream.read(&mut buf) {
        Ok(0) => t.events.push("closed gracefully (FIN both ways)".into()),
        Ok(n) => t.fail(format!(
            "unexpected bytes after the echo: {}",
            show(&buf[..n])
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            t.fail("sent FIN, and the driver reset the connection");
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            t.fail("sent FIN, but the driver did not close its side in time");
        }
        Err(e) => t.fail(format!("read after FIN: {e}")),
    }
}

/// Sets `SO_LINGER` to {on, 0 s}, so that closing the socket sends RST.
///
/// `std`'s `TcpStream::set_linger` is unstable, and one `setsockopt` call does
/// not earn a dependency, so this declares the libc routine itself.
#[cfg(unix)]
pub(crate) fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const SOL_SOCKET: i32 = 1;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const SO_LINGER: i32 = 13;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const SOL_SOCKET: i32 = 0xFFFF;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const SO_LINGER: i32 = 0x0080;
    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let len = u32::try_from(size_of::<Linger>()).expect("small");
    // SAFETY: `fd` is an open socket owned by `stream`, `linger` is a live
    // `struct linger` and `len` is its size, as setsockopt(2) requires.
    let rc = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &raw const linger,
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Abortive close needs `setsockopt`; `cargo xtask wine` runs on Unix hosts.
#[cfg(not(unix))]
pub(crate) fn set_linger_zero(_stream: &TcpStream) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abortive close is implemented for Unix hosts only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn client_against_a_local_echo() {
        let l = listen().unwrap();
        let port = l.local_addr().unwrap().port();
        let server =
            std::thread::spawn(move || echo_server(&l, deadline(), &AtomicBool::new(false)));
        let t = client(port, b"ping\n", b"ping\n", Close::Graceful, deadline());
        assert!(t.problems.is_empty(), "{t:?}");
        let s = server.join().unwrap();
        assert!(s.problems.is_empty(), "{s:?}");
        assert_eq!(s.received, b"ping\n");
    }

    #[test]
    fn abortive_close_resets() {
        let l = listen().unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 3];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            s.read(&mut buf).map_err(|e| e.kind())
        });
        let t = client(port, b"abc", b"abc", Close::Abortive, deadline());
        assert!(t.problems.is_empty(), "{t:?}");
        assert_eq!(server.join().unwrap(), Err(io::ErrorKind::ConnectionReset));
    }

    #[test]
    fn concurrent_clients_against_a_threaded_echo() {
        let l = listen().unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                handlers.push(std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => s.write_all(&buf[..n]).unwrap(),
                        }
                    }
                }));
            }
            for h in handlers {
                h.join().unwrap();
            }
        });
        let conns: [(&[u8], &[u8], Close); 2] = [
            (b"one", b"one", Close::Graceful),
            (b"two", b"two", Close::Abortive),
        ];
        let (t, held) = concurrent_clients(port, &conns, deadline());
        assert!(t.problems.is_empty(), "{t:?}");
        // Exchanged from the last connection to the first.
        assert_eq!(t.received, b"twoone");
        assert!(held.is_empty());
        server.join().unwrap();
    }

    #[test]
    fn show_escapes() {
        assert_eq!(show(b"a\n"), "\"a\\n\" (2 B)");
    }
}
