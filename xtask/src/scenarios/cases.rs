//! The scenarios' bodies: what the clients do and what is checked.

use super::report::{Report, Verdict};
use super::session::Run;
use super::{MAX_ADDED_THREADS, MAX_FLOOD_GROWTH_KIB, MAX_UNLOAD, Sizes, mib, mib_per_s};
use crate::load::{self, Closed, Flood, Streams};
use cargo_wsk::wine::WineProcess;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn threads_text(t: Option<usize>) -> String {
    t.map_or_else(|| "?".into(), |t| t.to_string())
}

fn rss_text(kib: Option<u64>) -> String {
    #[allow(clippy::cast_precision_loss)] // sizes far below 2^52
    kib.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// `sc stop` after the clients are done, and the driver's count of what it
/// echoed against `expect_bytes` (when the scenario knows it exactly).
fn stop_idle(run: &Run<'_>, r: &mut Report, expect: Option<(u64, u64)>) {
    let stop = run.stop();
    r.check(
        "unloaded",
        "sc stop with every connection closed",
        stop.describe(),
        "unloads",
        stop.unloaded(),
        Verdict::Fail,
    );
    if let Some(t) = stop.unload_time() {
        r.value("unload_idle_s", t.as_secs_f64());
    }
    match (stop.counts, expect) {
        (Some((c, b)), Some((ec, eb))) => r.check(
            "count",
            "the driver's count (connections, bytes echoed)",
            format!("{c}, {b}"),
            format!("{ec}, {eb}"),
            (c, b) == (ec, eb),
            Verdict::Fail,
        ),
        (Some((c, b)), None) => r.info(
            "the driver's count (connections, bytes echoed)",
            format!("{c}, {b}"),
        ),
        (None, _) => {}
    }
}

/// `many`: N connections open at once.
pub(super) fn many(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
    let n = sizes.many;
    let idle = run.threads();
    let idle_rss = run.rss_kib();
    let deadline = Instant::now() + Duration::from_secs(180);
    let t = Instant::now();
    let streams = match load::open_many(run.port, n, deadline) {
        Ok(s) => s,
        Err(e) => {
            r.fail(format!("{n} connections open, each echoing"), e);
            return;
        }
    };
    r.check(
        "echoed",
        "connections open at once, each echoed",
        format!("{n}/{n} in {:.2} s", t.elapsed().as_secs_f64()),
        "all",
        true,
        Verdict::Fail,
    );
    let open = run.threads_peak(5);
    let open_rss = run.rss_kib();
    let (closed, problem) = load::close_all(streams, deadline);
    r.check(
        "closed",
        "closed gracefully by the driver after the client's FIN",
        format!(
            "{closed}/{n}{}",
            problem.map(|p| format!(" ({p})")).unwrap_or_default()
        ),
        "all",
        closed == n,
        Verdict::Fail,
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = run.threads();
    r.info(
        "host threads: idle / with all open / after closing",
        format!(
            "{} / {} / {}",
            threads_text(idle),
            threads_text(open),
            threads_text(after)
        ),
    );
    let added = open.zip(idle).map(|(o, i)| o.saturating_sub(i));
    r.check(
        "threads",
        format!("threads the driver added with {n} open"),
        threads_text(added),
        format!("<= {MAX_ADDED_THREADS}"),
        added.is_some_and(|a| a <= MAX_ADDED_THREADS),
        Verdict::Miss,
    );
    #[allow(clippy::cast_precision_loss)]
    if let (Some(i), Some(o), Some(a)) = (idle, open, after) {
        r.value("threads_idle", i as f64);
        r.value("threads_open", o as f64);
        r.value("threads_after", a as f64);
    }
    r.info(
        "host RSS: idle / with all open",
        format!("{} / {}", rss_text(idle_rss), rss_text(open_rss)),
    );
    let bytes: usize = (0..n)
        .map(|i| format!("connection {} of many\n", i + 1).len())
        .sum();
    stop_idle(run, r, Some((n as u64, bytes as u64)));
}

/// Connects `n` clients.
fn connect_n(port: u16, n: usize, deadline: Instant) -> Result<Vec<std::net::TcpStream>, String> {
    (0..n).map(|_| load::connect(port, deadline)).collect()
}

/// One bulk transfer: `conns` connections each echoing `bytes`; MiB/s over
/// all of them.
pub(crate) fn bulk_once(port: u16, conns: usize, first: u32, bytes: u64) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let streams = connect_n(port, conns, deadline)?;
    let t = load::bulk(streams, first, bytes, deadline)?;
    Ok(mib_per_s(bytes * conns as u64, t))
}

/// What [`bulk_phase`] measured: MiB/s of each repetition, and the CPU
/// time the driver's host and the `wineserver` spent per MiB echoed over
/// all of them.
pub(crate) struct BulkPhase {
    pub(crate) rates: Vec<f64>,
    pub(crate) cpu_ms_per_mib: Option<f64>,
}

/// `reps` bulk transfers through `conns` connections each (fresh
/// connections each time).
pub(crate) fn bulk_phase(
    run: &Run<'_>,
    conns: usize,
    first: u32,
    bytes: u64,
    reps: usize,
) -> Result<BulkPhase, String> {
    let cpu0 = run.cpu_seconds();
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        rates.push(bulk_once(run.port, conns, first, bytes)?);
    }
    #[allow(clippy::cast_precision_loss)] // small counts
    let mib = (bytes * conns as u64 * reps as u64) as f64 / f64::from(1u32 << 20);
    // A zero difference means less than one clock tick (10 ms): no figure.
    let cpu_ms_per_mib = cpu0
        .zip(run.cpu_seconds())
        .filter(|(a, b)| b > a)
        .map(|(a, b)| (b - a) * 1000.0 / mib);
    Ok(BulkPhase {
        rates,
        cpu_ms_per_mib,
    })
}

fn cpu_text(ms: Option<f64>) -> String {
    ms.map_or_else(
        || "below one clock tick".into(),
        |ms| format!("{ms:.1} ms/MiB"),
    )
}

/// `bulk`: 1 MiB through one connection, then through 16 at once.
pub(super) fn bulk(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
    let n = sizes.bulk_connections;
    let mut total = 0u64;
    for (conns, first, name) in [(1, 0, "bulk1_mib_s"), (n, 1, "bulk16_mib_s")] {
        let what = format!(
            "{} through {conns} connection(s), echoed and compared",
            mib(sizes.bulk_bytes)
        );
        match bulk_phase(run, conns, first, sizes.bulk_bytes, 1) {
            Ok(phase) => {
                let rate = phase.rates[0];
                r.check(
                    "echoed",
                    what,
                    format!(
                        "{rate:.1} MiB/s; host + wineserver CPU {}",
                        cpu_text(phase.cpu_ms_per_mib)
                    ),
                    "all bytes back",
                    true,
                    Verdict::Fail,
                );
                r.value(name, rate);
                total += sizes.bulk_bytes * conns as u64;
            }
            Err(e) => {
                r.fail(what, e);
                return;
            }
        }
    }
    stop_idle(run, r, Some((1 + n as u64, total)));
}

/// `never-reads`: a client floods without reading.
pub(super) fn never_reads(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let before = run.rss_kib();
    let mut flood = match Flood::connect(run.port, 7, deadline) {
        Ok(f) => f,
        Err(e) => return r.fail("connect", e),
    };
    if let Err(e) = flood.push_for(sizes.flood / 2) {
        return r.fail("flood", e);
    }
    let other = serve_one(
        run.port,
        b"served while another client never reads\n",
        deadline,
    );
    r.check(
        "served",
        "another connection served meanwhile",
        other
            .clone()
            .err()
            .unwrap_or_else(|| "echoed, closed gracefully".into()),
        "served",
        other.is_ok(),
        Verdict::Fail,
    );
    if let Err(e) = flood.push_for(sizes.flood.saturating_sub(sizes.flood / 2)) {
        return r.fail("flood", e);
    }
    let blocked = flood.last_progress.elapsed();
    let during = run.rss_kib();
    let written = flood.written;
    r.check(
        "back-pressure",
        "the flood's writes blocked (TCP flow control reached the client)",
        format!(
            "after {} B; blocked for the last {:.1} s",
            written,
            blocked.as_secs_f64()
        ),
        ">= 1 s",
        blocked >= Duration::from_secs(1),
        Verdict::Fail,
    );
    let growth = during.zip(before).map(|(d, b)| d.saturating_sub(b));
    r.check(
        "memory",
        "host RSS before / while flooded",
        format!("{} / {}", rss_text(before), rss_text(during)),
        format!("+<= {} MiB", MAX_FLOOD_GROWTH_KIB / 1024),
        growth.is_some_and(|g| g <= MAX_FLOOD_GROWTH_KIB),
        Verdict::Fail,
    );
    let drained = flood.drain(deadline);
    r.check(
        "lossless",
        "everything sent echoed back once the client reads",
        match &drained {
            Ok(n) => format!("{n}/{written} B"),
            Err(e) => e.clone(),
        },
        "all",
        drained.is_ok(),
        Verdict::Fail,
    );
    r.info("host RSS after reading", rss_text(run.rss_kib()));
    let served = u64::try_from(b"served while another client never reads\n".len()).unwrap_or(0);
    stop_idle(run, r, drained.ok().map(|n| (2, n + served)));
}

/// Connects, echoes `message`, closes gracefully.
fn serve_one(port: u16, message: &[u8], deadline: Instant) -> Result<(), String> {
    let mut s = load::connect(port, deadline)?;
    s.write_all(message).map_err(|e| format!("send: {e}"))?;
    let mut back = vec![0u8; message.len()];
    let _ = s.set_read_timeout(load::remaining(deadline));
    s.read_exact(&mut back).map_err(|e| format!("echo: {e}"))?;
    if back != message {
        return Err(format!("echoed {:?}", String::from_utf8_lossy(&back)));
    }
    load::close_gracefully(&mut s, deadline)
}

/// `reset-storm`: many connections send and reset at once.
pub(super) fn reset_storm(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let idle = run.threads();
    match load::reset_storm(run.port, sizes.resets, deadline) {
        Ok(n) => r.info("connections opened, sent 1 KiB, reset", n.to_string()),
        Err(e) => return r.fail("storm", e),
    }
    std::thread::sleep(Duration::from_secs(1));
    let alive = run.host.is_some_and(WineProcess::is_alive);
    r.check(
        "survived",
        "the driver's host survived",
        if alive { "alive" } else { "gone" },
        "alive",
        alive,
        Verdict::Fail,
    );
    if !alive {
        return;
    }
    let after = serve_one(run.port, b"served after the storm\n", deadline);
    r.check(
        "served",
        "a new connection served afterwards",
        after
            .clone()
            .err()
            .unwrap_or_else(|| "echoed, closed gracefully".into()),
        "served",
        after.is_ok(),
        Verdict::Fail,
    );
    // The connection threads (if any) end as their resets arrive.
    let settle = Instant::now() + Duration::from_secs(5);
    let mut now = run.threads();
    while now
        .zip(idle)
        .is_some_and(|(n, i)| n > i + MAX_ADDED_THREADS)
        && Instant::now() < settle
    {
        std::thread::sleep(Duration::from_millis(200));
        now = run.threads();
    }
    r.check(
        "threads",
        "host threads: idle / after the storm",
        format!("{} / {}", threads_text(idle), threads_text(now)),
        format!("<= idle + {MAX_ADDED_THREADS}"),
        now.zip(idle)
            .is_some_and(|(n, i)| n <= i + MAX_ADDED_THREADS),
        Verdict::Miss,
    );
    stop_idle(run, r, None);
}

/// `unload`: `sc stop` while every client streams.
pub(super) fn unload(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
    const FLOWING: u64 = 256 * 1024;
    let n = sizes.streams;
    let deadline = Instant::now() + Duration::from_secs(60);
    let streams = match Streams::start(run.port, n, 100, deadline) {
        Ok(s) => s,
        Err(e) => return r.fail("clients", e),
    };
    while streams.received().iter().any(|&b| b < FLOWING) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let flowing = streams.received().iter().filter(|&&b| b >= FLOWING).count();
    r.check(
        "streaming",
        format!(
            "clients streaming (>= {} KiB echoed each) at sc stop",
            FLOWING / 1024
        ),
        format!("{flowing}/{n}"),
        "all",
        flowing == n,
        Verdict::Fail,
    );
    let threads = run.threads();
    let stop = run.stop();
    let bound = MAX_UNLOAD.as_secs_f64();
    r.check(
        "unload-time",
        "sc stop while streaming",
        stop.describe(),
        format!("<= {bound:.0} s"),
        stop.unloaded() && stop.unload_time().is_some_and(|t| t <= MAX_UNLOAD),
        Verdict::Fail,
    );
    if let Some(t) = stop.unload_time() {
        r.value("unload_s", t.as_secs_f64());
    }
    // Every connection must be closed by the driver soon after its unload.
    let wait_until = Instant::now() + Duration::from_secs(5);
    while streams.ended().0 < n && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ends = streams.finish();
    let fin = ends
        .iter()
        .filter(|e| e.closed == Some(Closed::Fin))
        .count();
    let rst = ends
        .iter()
        .filter(|e| e.closed == Some(Closed::Reset))
        .count();
    let wrong: Vec<_> = ends.iter().filter_map(|e| e.problem.clone()).collect();
    // Without the driver's stopped line the connections may have been
    // closed by the end of its host (a crash, or Wine giving up), not by it.
    let by = if stop.unloaded() {
        "by the driver's unload"
    } else {
        "though the driver did not unload"
    };
    r.check(
        "closed",
        "connections closed after sc stop",
        format!("{}/{n} (FIN {fin}, RST {rst}), {by}", fin + rst),
        "all",
        fin + rst == n,
        Verdict::Fail,
    );
    r.check(
        "echoed",
        "bytes echoed correctly until the close",
        if wrong.is_empty() {
            format!("{:.1} MiB in all", total_mib(&ends))
        } else {
            wrong[0].clone()
        },
        "no wrong byte",
        wrong.is_empty(),
        Verdict::Fail,
    );
    r.info("host threads while streaming", threads_text(threads));
    if let Some((c, b)) = stop.counts {
        r.info(
            "the driver's count (connections, bytes echoed)",
            format!("{c}, {b}"),
        );
    }
}

fn total_mib(ends: &[load::StreamEnd]) -> f64 {
    let bytes: u64 = ends.iter().map(|e| e.received).sum();
    #[allow(clippy::cast_precision_loss)]
    let mib = bytes as f64 / f64::from(1u32 << 20);
    mib
}
