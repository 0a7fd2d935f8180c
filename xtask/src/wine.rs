//! `cargo xtask wine`: load example drivers as kernel services in Wine and
//! check their traffic against the loopback peer.
//!
//! The facts this relies on are in the project's Wine notes: `DbgPrint`
//! appears on stderr as `warn:debugstr:vDbgPrintExWithPrefix` lines of the
//! *first* Wine process (services inherit its stderr and `WINEDEBUG`), a user
//! process must stay alive while the driver runs, `sc start` returns when
//! `DriverEntry` does.

use crate::driver::{self, Arch, BuildOpts};
use crate::examples::{self, Example, Param, Peer};
use crate::peer::{self, Transcript};
use crate::scenarios::{self, ScenarioOpts};
use crate::workspace_root;
use cargo_wsk::cli::matches;
use cargo_wsk::driver::relative;
use cargo_wsk::wine::{ALWAYS_FORBIDDEN, RegValue, Session, Wine, dbgprint_lines, filtered};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of `cargo xtask wine` (and `demo`).
#[derive(Debug, Default)]
pub(crate) struct WineOpts {
    /// Drivers to run; empty: every example with a crate under `examples/`.
    pub(crate) names: Vec<String>,
    /// Use this `.sys` instead of building `examples/<name>` (one name only).
    pub(crate) sys: Option<PathBuf>,
    /// Build debug instead of release drivers.
    pub(crate) debug: bool,
    /// Print the whole filtered Wine log and the driver's imports.
    pub(crate) verbose: bool,
    /// Run the load scenarios (`scenarios/`) instead of the example
    /// checks; `None`: the checks.
    pub(crate) scenarios: Option<ScenarioOpts>,
}

/// The directory of this workspace's Wine prefix and logs: `target/wine`
/// (the prefix is `target/wine/prefix`).
pub(crate) fn wine_dir() -> PathBuf {
    workspace_root().join("target").join("wine")
}

/// Everything learnt in one run, for the summary.
struct Report {
    name: String,
    about: &'static str,
    steps: Vec<(&'static str, String)>,
    problems: Vec<String>,
    dbg: Vec<String>,
    log: String,
    log_path: PathBuf,
    elapsed: Duration,
}

impl Report {
    fn step(&mut self, label: &'static str, text: impl Into<String>) {
        self.steps.push((label, text.into()));
    }

    fn fail(&mut self, label: &'static str, text: impl Into<String>) {
        let text = text.into();
        self.steps.push((label, format!("FAILED: {text}")));
        self.problems.push(text);
    }

    fn transcript(&mut self, t: Transcript) {
        for e in t.events {
            self.steps.push(("peer", e));
        }
        self.problems.extend(t.problems);
    }

    fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    fn print(&self, verbose: bool) {
        println!("=== wine: {} — {}", self.name, self.about);
        for (label, text) in &self.steps {
            println!("  {label:<9} {text}");
        }
        println!("  dbgprint  {} line(s)", self.dbg.len());
        for l in &self.dbg {
            println!("    | {l}");
        }
        if !self.passed() || verbose {
            let log = filtered(&self.log);
            let lines: Vec<&str> = log.lines().collect();
            let skip = lines.len().saturating_sub(200);
            println!(
                "  --- Wine log ({} lines{}; full log: {}) ---",
                lines.len(),
                if skip > 0 { ", last 200 shown" } else { "" },
                relative(&self.log_path).display()
            );
            for l in &lines[skip..] {
                println!("  {l}");
            }
            println!("  --- end of log ---");
        }
        for p in &self.problems {
            println!("  problem   {p}");
        }
        println!(
            "  {}  {} ({:.1} s)",
            if self.passed() { "PASS" } else { "FAIL" },
            self.name,
            self.elapsed.as_secs_f64()
        );
    }
}

/// Runs one driver in a fresh session and reports.
fn run_one(wine: &Wine, name: &str, ex: &Example, sys: &Path) -> Report {
    let started = Instant::now();
    let mut r = Report {
        name: name.to_string(),
        about: ex.about,
        steps: Vec::new(),
        problems: Vec::new(),
        dbg: Vec::new(),
        log: String::new(),
        log_path: wine.work.join(format!("{name}.log")),
        elapsed: Duration::ZERO,
    };
    let size = std::fs::metadata(sys).map_or(0, |m| m.len());
    r.step(
        "driver",
        format!("{} ({size} bytes)", relative(sys).display()),
    );
    let log = match Session::start(wine, name) {
        Ok(mut session) => {
            drive(wine, &session, name, ex, sys, &mut r);
            session.finish();
            session.read_log()
        }
        Err(e) => {
            r.fail("wine", e);
            String::new()
        }
    };
    r.dbg = dbgprint_lines(&log);
    for bad in ALWAYS_FORBIDDEN {
        if let Some(line) = log.lines().find(|l| l.contains(bad)) {
            r.problems
                .push(format!("forbidden log line: {}", line.trim()));
        }
    }
    for bad in ex.forbidden {
        if let Some(line) = r.dbg.iter().find(|l| l.contains(bad)) {
            r.problems.push(format!(
                "forbidden DbgPrint line ({bad:?}): {}",
                line.trim()
            ));
        }
    }
    r.log = log;
    r.elapsed = started.elapsed();
    r
}

/// Ports handed to the driver through the registry.
struct Ports {
    /// The peer's echo server, when the example has one.
    listener: Option<std::net::TcpListener>,
    /// The port the driver listens on ([`Param::ListenPort`]), else 0.
    listen: u16,
}

/// The steps between starting Wine and stopping it.
fn drive(wine: &Wine, session: &Session<'_>, name: &str, ex: &Example, sys: &Path, r: &mut Report) {
    let Some(ports) = install(wine, name, ex, sys, r) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(ex.timeout_secs);
    if let Some(mut held) = exercise(wine, name, ex, ports, deadline, r) {
        await_lines(session, ex.expect, "dbgprint", deadline, r);
        if stop(wine, name, r) {
            let deadline = Instant::now() + Duration::from_secs(10);
            for (i, stream) in &mut held {
                match peer::await_driver_close(stream, deadline) {
                    Ok(how) => r.step(
                        "peer",
                        format!("#{} held open through the stop: {how}", *i + 1),
                    ),
                    Err(e) => r.fail(
                        "peer",
                        format!("#{} held open through the stop: {e}", *i + 1),
                    ),
                }
            }
            await_lines(session, ex.after_stop, "unload", deadline, r);
        }
    }
}

/// Installs the service and writes its `Parameters`.
fn install(wine: &Wine, name: &str, ex: &Example, sys: &Path, r: &mut Report) -> Option<Ports> {
    if let Err(e) = wine.install(name, sys) {
        r.fail("install", e);
        return None;
    }
    let mut ports = Ports {
        listener: None,
        listen: 0,
    };
    if matches!(ex.peer, Peer::EchoServer { .. }) {
        match peer::listen() {
            Ok(l) => ports.listener = Some(l),
            Err(e) => {
                r.fail("peer", format!("cannot listen on 127.0.0.1: {e}"));
                return None;
            }
        }
    }
    if ex
        .params
        .iter()
        .any(|(_, p)| matches!(p, Param::ListenPort))
    {
        match peer::free_port() {
            Ok(p) => ports.listen = p,
            Err(e) => {
                r.fail("peer", format!("no free port: {e}"));
                return None;
            }
        }
    }
    let peer_port = ports
        .listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or(0, |a| a.port());
    let mut shown = Vec::new();
    for (value, param) in ex.params {
        let v = match param {
            Param::Dword(v) => RegValue::Dword(*v),
            Param::Str(s) => RegValue::Sz((*s).to_string()),
            Param::PeerPort => RegValue::Dword(u32::from(peer_port)),
            Param::ListenPort => RegValue::Dword(u32::from(ports.listen)),
        };
        shown.push(match &v {
            RegValue::Dword(d) => format!("{value}={d}"),
            RegValue::Sz(s) => format!("{value}={s}"),
        });
        if let Err(e) = wine.set_parameter(name, value, &v) {
            r.fail("registry", e);
            return None;
        }
    }
    if !shown.is_empty() {
        r.step("registry", shown.join(" "));
    }
    Some(ports)
}

/// `sc start`, then the peer's part. `None` when the driver did not start;
/// else the connections the peer keeps open through the stop.
fn exercise(
    wine: &Wine,
    name: &str,
    ex: &Example,
    ports: Ports,
    deadline: Instant,
    r: &mut Report,
) -> Option<Vec<(usize, std::net::TcpStream)>> {
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = ports.listener.map(|l| {
        let cancel = cancel.clone();
        std::thread::spawn(move || peer::echo_server(&l, deadline, &cancel))
    });
    let started = match wine.start(name) {
        Ok(t) => {
            r.step(
                "sc start",
                format!(
                    "running (DriverEntry returned after {:.2} s)",
                    t.as_secs_f64()
                ),
            );
            true
        }
        Err(e) => {
            r.fail("sc start", e);
            false
        }
    };
    if !started {
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(s) = server {
            let _ = s.join();
        }
        return None;
    }
    let mut held = Vec::new();
    match ex.peer {
        Peer::None => {}
        Peer::EchoServer { expect } => {
            let t = server
                .map(|s| s.join().unwrap_or_default())
                .unwrap_or_default();
            let wrong = t.problems.is_empty() && t.received != expect;
            let received = peer::show(&t.received);
            r.transcript(t);
            if wrong {
                r.fail(
                    "peer",
                    format!("driver sent {received}, expected {}", peer::show(expect)),
                );
            }
        }
        Peer::Client(conns) => {
            for c in conns {
                let t = peer::client(ports.listen, c.send, c.expect, c.close, deadline);
                let failed = !t.problems.is_empty();
                r.transcript(t);
                if failed {
                    break;
                }
            }
        }
        Peer::Concurrent(conns) => {
            let plan: Vec<_> = conns.iter().map(|c| (c.send, c.expect, c.close)).collect();
            let (t, open) = peer::concurrent_clients(ports.listen, &plan, deadline);
            r.transcript(t);
            held = open;
        }
    }
    Some(held)
}

/// Waits until lines matching `patterns` have appeared, in order.
fn await_lines(
    session: &Session<'_>,
    patterns: &[&str],
    label: &'static str,
    deadline: Instant,
    r: &mut Report,
) {
    if patterns.is_empty() {
        return;
    }
    loop {
        let lines = session.dbgprint_lines();
        let mut next = 0;
        for l in &lines {
            if next < patterns.len() && matches(l, patterns[next]) {
                next += 1;
            }
        }
        if next == patterns.len() {
            r.step(
                label,
                format!("all {} expected line(s) seen", patterns.len()),
            );
            return;
        }
        if Instant::now() > deadline {
            r.fail(
                label,
                format!("timed out waiting for a line matching {:?}", patterns[next]),
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sc stop`, then waits until the service reports STOPPED. False when it
/// did not stop.
fn stop(wine: &Wine, name: &str, r: &mut Report) -> bool {
    match wine.stop(name, Duration::from_secs(20)) {
        Ok(t) => {
            r.step(
                "sc stop",
                format!("stopped, driver unloaded ({:.2} s)", t.as_secs_f64()),
            );
            true
        }
        Err(e) => {
            r.fail("sc stop", e);
            false
        }
    }
}

/// Builds each driver for `x86_64` (or checks the `--sys` given for one
/// name); returns the names and the `.sys` paths.
pub(crate) fn build_drivers(
    names: &[String],
    sys: Option<&Path>,
    debug: bool,
    verbose: bool,
) -> Result<Vec<(String, PathBuf)>, String> {
    if sys.is_some() && names.len() != 1 {
        return Err("--sys needs exactly one driver name".into());
    }
    let mut drivers = Vec::new();
    for name in names {
        let built = if let Some(sys) = sys {
            driver::check(sys, Arch::X86_64)?;
            sys.to_path_buf()
        } else {
            driver::build(
                name,
                &BuildOpts {
                    arch: Arch::X86_64,
                    debug,
                    verbose,
                    manifest: None,
                },
            )?
        };
        drivers.push((name.clone(), built));
    }
    Ok(drivers)
}

/// The example echo servers the scenarios and `wine-bench` run by default:
/// [`scenarios::SERVERS`] that exist under `examples/`.
pub(crate) fn default_servers() -> Vec<String> {
    let found = driver::example_drivers();
    scenarios::SERVERS
        .iter()
        .filter(|s| found.iter().any(|f| f == *s))
        .map(|s| (*s).to_string())
        .collect()
}

/// `cargo xtask wine`: builds (unless `--sys`) and runs each driver; prints a
/// summary per driver. The error lists the drivers that failed. With
/// scenarios, runs those instead (`scenarios/`; default drivers: the echo
/// servers).
pub(crate) fn wine(opts: &WineOpts) -> Result<(), String> {
    let wine = Wine::locate(&wine_dir())?;
    let names = if !opts.names.is_empty() {
        opts.names.clone()
    } else if opts.scenarios.is_some() {
        default_servers()
    } else {
        driver::example_drivers()
    };
    if names.is_empty() {
        println!("wine: no example drivers under examples/ yet; nothing to run");
        return Ok(());
    }
    let drivers = build_drivers(&names, opts.sys.as_deref(), opts.debug, opts.verbose)?;
    wine.ensure_prefix()?;
    let _lock = wine.lock()?;
    if let Some(scenario_opts) = &opts.scenarios {
        return scenarios::scenarios(&wine, &drivers, scenario_opts).map(drop);
    }
    let mut failed = Vec::new();
    for (name, sys) in &drivers {
        let ex = examples::lookup(name);
        let report = run_one(&wine, name, &ex, sys);
        report.print(opts.verbose);
        if !report.passed() {
            failed.push(name.clone());
        }
    }
    if failed.is_empty() {
        println!("wine: {} driver(s) passed", drivers.len());
        Ok(())
    } else {
        Err(format!("wine: failed: {}", failed.join(", ")))
    }
}
