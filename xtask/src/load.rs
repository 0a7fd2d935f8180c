//! The clients the Wine scenarios and the Wine benchmark run against an
//! echo driver: `std::net` on 127.0.0.1, a thread per direction where a
//! connection must send and receive at once, every wait bounded by a
//! deadline, every byte that comes back checked against what was sent.
//!
//! Each connection sends a pattern that depends on the connection's number
//! and repeats only every 251 bytes, so lost, repeated, reordered or
//! crossed-over chunks show.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes per `write` call.
const CHUNK: usize = 64 * 1024;

/// The byte at `offset` of connection `stream`'s pattern.
pub(crate) fn pattern(stream: u32, offset: u64) -> u8 {
    let v = (offset + u64::from(stream) * 31) % 251;
    u8::try_from(v).expect("below 251")
}

fn fill(buf: &mut [u8], stream: u32, offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(stream, offset + i as u64);
    }
}

/// The offset of the first byte of `buf` (received at `offset`) that is not
/// connection `stream`'s pattern.
fn first_wrong(buf: &[u8], stream: u32, offset: u64) -> Option<u64> {
    buf.iter()
        .enumerate()
        .find(|&(i, &b)| b != pattern(stream, offset + i as u64))
        .map(|(i, _)| offset + i as u64)
}

/// Time left until `deadline`, `None` once it has passed.
pub(crate) fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// Connects to `127.0.0.1:port`, retrying while the connection is refused
/// or times out (a full accept backlog drops the handshake); `TCP_NODELAY`
/// on.
///
/// # Errors
///
/// Any other error, or the deadline.
pub(crate) fn connect(port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let Some(left) = remaining(deadline) else {
            return Err(format!("timed out connecting to {addr}"));
        };
        match TcpStream::connect_timeout(&addr, left.min(Duration::from_secs(3))) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("connect {addr}: {e}")),
        }
    }
}

/// Reads exactly `n` bytes and checks them against connection `stream`'s
/// pattern from `offset`.
fn read_pattern(
    s: &mut TcpStream,
    stream: u32,
    offset: u64,
    n: u64,
    deadline: Instant,
) -> Result<(), String> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < n {
        let Some(left) = remaining(deadline) else {
            return Err(format!("timed out: {got} of {n} bytes echoed"));
        };
        let _ = s.set_read_timeout(Some(left));
        let want = usize::try_from(n - got).unwrap_or(usize::MAX).min(CHUNK);
        match s.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("closed by the driver after {got} of {n} bytes")),
            Ok(k) => {
                if let Some(at) = first_wrong(&buf[..k], stream, offset + got) {
                    return Err(format!("wrong byte echoed at offset {at}"));
                }
                got += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {got} of {n} bytes: {e}")),
        }
    }
    Ok(())
}

/// Writes `n` bytes of connection `stream`'s pattern from `offset`.
fn write_pattern(
    s: &mut TcpStream,
    stream: u32,
    offset: u64,
    n: u64,
    deadline: Instant,
) -> Result<(), String> {
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    while sent < n {
        let Some(left) = remaining(deadline) else {
            return Err(format!("timed out: {sent} of {n} bytes sent"));
        };
        let _ = s.set_write_timeout(Some(left));
        let k = usize::try_from(n - sent).unwrap_or(usize::MAX).min(CHUNK);
        fill(&mut buf[..k], stream, offset + sent);
        s.write_all(&buf[..k])
            .map_err(|e| format!("write after {sent} of {n} bytes: {e}"))?;
        sent += k as u64;
    }
    Ok(())
}

/// Sends FIN and waits for the driver's: `Ok` when it closes gracefully,
/// an error if it sends data, resets or does not close by `deadline`.
pub(crate) fn close_gracefully(s: &mut TcpStream, deadline: Instant) -> Result<(), String> {
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    await_close(s, deadline).and_then(|how| match how {
        Closed::Fin => Ok(()),
        Closed::Reset => Err("the driver reset the connection after our FIN".into()),
    })
}

/// How the driver closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// End of stream.
    Fin,
    /// `ECONNRESET`.
    Reset,
}

/// Waits until the driver closes `s`, discarding nothing: any byte that
/// arrives is an error.
pub(crate) fn await_close(s: &mut TcpStream, deadline: Instant) -> Result<Closed, String> {
    let mut buf = [0u8; 512];
    loop {
        let Some(left) = remaining(deadline) else {
            return Err("the driver did not close the connection".into());
        };
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => return Ok(Closed::Fin),
            Ok(n) => return Err(format!("{n} unexpected bytes before the close")),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Closed::Reset),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Echoes `bytes` through each of `streams` at once (connection `i` sends
/// pattern `first + i`): per connection one thread writes everything while
/// another reads it back and checks it. Returns the time from the common
/// start to the last byte read back, then closes every connection
/// gracefully (not timed).
///
/// # Errors
///
/// The first connection's problem: a wrong byte, an early close, a
/// timeout.
pub(crate) fn bulk(
    streams: Vec<TcpStream>,
    first: u32,
    bytes: u64,
    deadline: Instant,
) -> Result<Duration, String> {
    let start = Arc::new(Barrier::new(streams.len() * 2 + 1));
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for (i, s) in streams.into_iter().enumerate() {
        let id = first + u32::try_from(i).expect("few connections");
        let mut w = s.try_clone().map_err(|e| format!("clone: {e}"))?;
        let mut r = s;
        let (gw, gr) = (Arc::clone(&start), Arc::clone(&start));
        writers.push(std::thread::spawn(move || {
            gw.wait();
            write_pattern(&mut w, id, 0, bytes, deadline)
        }));
        readers.push(std::thread::spawn(move || {
            gr.wait();
            let r_result = read_pattern(&mut r, id, 0, bytes, deadline);
            (r_result, Instant::now(), r)
        }));
    }
    start.wait();
    let t0 = Instant::now();
    let mut problem = None;
    for w in writers {
        if let Err(e) = w.join().unwrap_or_else(|_| Err("writer panicked".into())) {
            problem.get_or_insert(e);
        }
    }
    let mut end = t0;
    let mut open = Vec::new();
    for r in readers {
        match r.join() {
            Ok((Ok(()), at, s)) => {
                end = end.max(at);
                open.push(s);
            }
            Ok((Err(e), _, _)) => {
                problem.get_or_insert(e);
            }
            Err(_) => {
                problem.get_or_insert("reader panicked".into());
            }
        }
    }
    if let Some(p) = problem {
        return Err(p);
    }
    for mut s in open {
        close_gracefully(&mut s, deadline)?;
    }
    Ok(end - t0)
}

/// Opens `n` connections one after the other, each sending a short line
/// of its own right away; then reads every echo back (so that all `n` are
/// open while the driver serves them) and returns the open connections.
///
/// # Errors
///
/// Which connection failed and how.
pub(crate) fn open_many(port: u16, n: usize, deadline: Instant) -> Result<Vec<TcpStream>, String> {
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = connect(port, deadline).map_err(|e| format!("connection {}: {e}", i + 1))?;
        s.write_all(message(i).as_bytes())
            .map_err(|e| format!("connection {}: send: {e}", i + 1))?;
        streams.push(s);
    }
    for (i, s) in streams.iter_mut().enumerate() {
        let want = message(i);
        let mut got = vec![0u8; want.len()];
        let Some(left) = remaining(deadline) else {
            return Err(format!(
                "connection {}: timed out waiting for the echo",
                i + 1
            ));
        };
        let _ = s.set_read_timeout(Some(left));
        s.read_exact(&mut got)
            .map_err(|e| format!("connection {}: echo: {e}", i + 1))?;
        if got != want.as_bytes() {
            return Err(format!(
                "connection {}: echoed {:?}, sent {want:?}",
                i + 1,
                String::from_utf8_lossy(&got)
            ));
        }
    }
    Ok(streams)
}

fn message(i: usize) -> String {
    format!("connection {} of many\n", i + 1)
}

/// Closes every stream gracefully, all FINs first, then waits for each of
/// the driver's; returns how many closed gracefully and the first problem.
pub(crate) fn close_all(streams: Vec<TcpStream>, deadline: Instant) -> (usize, Option<String>) {
    let mut problem = None;
    for s in &streams {
        if let Err(e) = s.shutdown(Shutdown::Write) {
            problem.get_or_insert(format!("shutdown: {e}"));
        }
    }
    let mut closed = 0;
    for mut s in streams {
        match await_close(&mut s, deadline) {
            Ok(Closed::Fin) => closed += 1,
            Ok(Closed::Reset) => {
                problem.get_or_insert("the driver reset a connection after our FIN".into());
            }
            Err(e) => {
                problem.get_or_insert(e);
            }
        }
    }
    (closed, problem)
}

/// A connection that sends its pattern as fast as the driver takes it and
/// never reads: the driver must stop reading once it cannot send the echo
/// back (TCP's flow control then stops the writer), losing nothing.
pub(crate) struct Flood {
    stream: TcpStream,
    id: u32,
    /// Bytes written so far.
    pub(crate) written: u64,
    /// When the last write made progress.
    pub(crate) last_progress: Instant,
    buf: Vec<u8>,
}

impl Flood {
    /// Connects, non-blocking.
    pub(crate) fn connect(port: u16, id: u32, deadline: Instant) -> Result<Flood, String> {
        let stream = connect(port, deadline)?;
        stream
            .set_nonblocking(true)
            .map_err(|e| format!("set_nonblocking: {e}"))?;
        Ok(Flood {
            stream,
            id,
            written: 0,
            last_progress: Instant::now(),
            buf: vec![0u8; CHUNK],
        })
    }

    /// Writes for `duration` whenever the socket takes more.
    pub(crate) fn push_for(&mut self, duration: Duration) -> Result<(), String> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            fill(&mut self.buf, self.id, self.written);
            match self.stream.write(&self.buf) {
                Ok(n) => {
                    self.written += n as u64;
                    self.last_progress = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write after {} bytes: {e}", self.written)),
            }
        }
        Ok(())
    }

    /// Reads back everything written, checking it, then closes gracefully.
    pub(crate) fn drain(mut self, deadline: Instant) -> Result<u64, String> {
        self.stream
            .set_nonblocking(false)
            .map_err(|e| format!("set_nonblocking: {e}"))?;
        read_pattern(&mut self.stream, self.id, 0, self.written, deadline)?;
        close_gracefully(&mut self.stream, deadline)?;
        Ok(self.written)
    }
}

/// Opens `n` connections, sends 1 KiB on each, then resets them all
/// (`SO_LINGER` 0), as fast as possible. Returns how many were opened.
pub(crate) fn reset_storm(port: u16, n: usize, deadline: Instant) -> Result<usize, String> {
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        streams.push(connect(port, deadline).map_err(|e| format!("connection {}: {e}", i + 1))?);
    }
    let payload = [0x5Au8; 1024];
    for (i, s) in streams.iter_mut().enumerate() {
        // The driver may already have reset it; that is fine.
        let _ = s.write_all(&payload);
        crate::peer::set_linger_zero(s)
            .map_err(|e| format!("connection {}: SO_LINGER: {e}", i + 1))?;
    }
    let opened = streams.len();
    drop(streams);
    Ok(opened)
}

/// What one streaming connection saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamEnd {
    /// Bytes read back (checked).
    pub(crate) received: u64,
    /// How the driver closed it, if it did.
    pub(crate) closed: Option<Closed>,
    /// What went wrong (a wrong byte, a read error).
    pub(crate) problem: Option<String>,
}

/// `n` connections that send and read back continuously, each with a
/// writer and a reader thread, until the driver closes them or
/// [`Streams::finish`].
pub(crate) struct Streams {
    stop: Arc<AtomicBool>,
    received: Vec<Arc<AtomicU64>>,
    threads: Vec<(JoinHandle<()>, JoinHandle<StreamEnd>)>,
    ends: Arc<Mutex<Vec<Option<Instant>>>>,
}

impl Streams {
    /// Connects `clients` clients and starts them (connection `first + i`
    /// sends pattern `first + i`).
    pub(crate) fn start(
        port: u16,
        clients: usize,
        first: u32,
        deadline: Instant,
    ) -> Result<Streams, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let ends = Arc::new(Mutex::new(vec![None; clients]));
        let mut received = Vec::new();
        let mut threads = Vec::new();
        for i in 0..clients {
            let id = first + u32::try_from(i).expect("few connections");
            let stream = connect(port, deadline).map_err(|e| format!("client {}: {e}", i + 1))?;
            let writing = stream.try_clone().map_err(|e| format!("clone: {e}"))?;
            let count = Arc::new(AtomicU64::new(0));
            received.push(Arc::clone(&count));
            let writer = {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || stream_writer(writing, id, &stop))
            };
            let reader = {
                let (stop, ends) = (Arc::clone(&stop), Arc::clone(&ends));
                std::thread::spawn(move || {
                    let mut reading = stream;
                    let end = stream_reader(&mut reading, id, &count, &stop);
                    if let Ok(mut ends) = ends.lock() {
                        ends[i] = Some(Instant::now());
                    }
                    end
                })
            };
            threads.push((writer, reader));
        }
        Ok(Streams {
            stop,
            received,
            threads,
            ends,
        })
    }

    /// Bytes read back so far, per connection.
    pub(crate) fn received(&self) -> Vec<u64> {
        self.received
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// How many connections the driver has closed (or that failed) so far,
    /// and when the last of them did.
    pub(crate) fn ended(&self) -> (usize, Option<Instant>) {
        let ends = self.ends.lock().map(|e| e.clone()).unwrap_or_default();
        (
            ends.iter().flatten().count(),
            ends.iter().flatten().max().copied(),
        )
    }

    /// Stops every client still running and returns what each saw.
    pub(crate) fn finish(self) -> Vec<StreamEnd> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|(w, r)| {
                let _ = w.join();
                r.join().unwrap_or_else(|_| StreamEnd {
                    problem: Some("reader panicked".into()),
                    ..StreamEnd::default()
                })
            })
            .collect()
    }
}

/// Sends connection `id`'s pattern until the connection fails or `stop`.
fn stream_writer(mut w: TcpStream, id: u32, stop: &AtomicBool) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0u64;
    let _ = w.set_write_timeout(Some(Duration::from_millis(100)));
    while !stop.load(Ordering::Relaxed) {
        // A timed-out write may have sent part of the chunk: the pattern
        // continues from what was sent.
        fill(&mut buf, id, sent);
        match w.write(&buf) {
            Ok(n) => sent += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

fn stream_reader(r: &mut TcpStream, id: u32, count: &AtomicU64, stop: &AtomicBool) -> StreamEnd {
    let mut end = StreamEnd::default();
    let mut buf = vec![0u8; CHUNK];
    let _ = r.set_read_timeout(Some(Duration::from_millis(100)));
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                end.closed = Some(Closed::Fin);
                return end;
            }
            Ok(n) => {
                if let Some(at) = first_wrong(&buf[..n], id, end.received) {
                    end.problem = Some(format!("wrong byte echoed at offset {at}"));
                    return end;
                }
                end.received += n as u64;
                count.store(end.received, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                end.closed = Some(Closed::Reset);
                return end;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return end;
                }
            }
            Err(e) => {
                end.problem = Some(format!("read: {e}"));
                return end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A threaded echo server on the host, for the clients' own tests.
    fn echo_server() -> u16 {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        port
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(20)
    }

    #[test]
    fn patterns_differ_per_connection() {
        assert_ne!(pattern(0, 0), pattern(1, 0));
        assert_eq!(pattern(3, 7), pattern(3, 7 + 251));
        let mut b = [0u8; 600];
        fill(&mut b, 2, 100);
        assert_eq!(first_wrong(&b, 2, 100), None);
        assert_eq!(first_wrong(&b, 2, 101), Some(101));
    }

    #[test]
    fn bulk_many_and_flood_against_a_host_echo() {
        let port = echo_server();
        let streams: Vec<_> = (0..4).map(|_| connect(port, deadline()).unwrap()).collect();
        bulk(streams, 0, 300_000, deadline()).unwrap();
        let open = open_many(port, 20, deadline()).unwrap();
        assert_eq!(close_all(open, deadline()), (20, None));
        let mut f = Flood::connect(port, 9, deadline()).unwrap();
        f.push_for(Duration::from_millis(200)).unwrap();
        assert!(f.written > 0);
        let written = f.written;
        assert_eq!(f.drain(deadline()).unwrap(), written);
        assert_eq!(reset_storm(port, 10, deadline()).unwrap(), 10);
    }

    #[test]
    fn streams_stream_until_finished() {
        let port = echo_server();
        let s = Streams::start(port, 3, 0, deadline()).unwrap();
        let t = Instant::now();
        while s.received().iter().any(|&r| r < 100_000) {
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", s.received());
            std::thread::sleep(Duration::from_millis(10));
        }
        for end in s.finish() {
            assert!(end.problem.is_none(), "{end:?}");
            assert!(end.received >= 100_000);
        }
    }
}
