//! `cargo xtask wine`: load example drivers as kernel services in Wine and
//! check their traffic against the loopback peer.
//!
//! The facts this relies on are in the project's Wine notes: `DbgPrint`
//! appears on stderr as `warn:debugstr:vDbgPrintExWithPrefix` lines of the
//! *first* Wine process (services inherit its stderr and `WINEDEBUG`), a user
//! process must stay alive while the driver runs, `sc start` returns when
//! `DriverEntry` does.

use crate::driver::{self, Arch, BuildOpts};
use crate::examples::{self, ALWAYS_FORBIDDEN, Example, Param, Peer, matches};
use crate::peer::{self, Transcript};
use crate::workspace_root;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Debian's `wine64` launcher (not on `PATH`).
const WINE64: &str = "/usr/lib/wine/wine64";
/// Debian's `wineserver64`.
const WINESERVER64: &str = "/usr/lib/wine/wineserver64";
/// The Wine debug channels: `DbgPrint` output as `warn:debugstr` lines.
const WINEDEBUG: &str = "warn+debugstr";
/// Where a `DbgPrint` line starts in Wine's log.
const DBGPRINT_MARK: &str = ":warn:debugstr:vDbgPrintExWithPrefix ";
/// Log lines that are noise in a headless prefix (left out of dumps).
const NOISE: &[&str] = &[
    "fixme:hid:handle_IRP_MN_QUERY_ID",
    "err:winediag:nodrv_CreateWindow",
    "err:systray:initialize_systray",
];

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
}

/// The Wine installation and this project's prefix.
struct Wine {
    launcher: PathBuf,
    server: PathBuf,
    prefix: PathBuf,
    work: PathBuf,
}

/// A finished child process.
struct Finished {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// One line: the exit status and what Wine said (its `err:` lines, else
    /// the last lines of output).
    fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "timed out (killed)".into(),
        };
        let filtered_err = filtered(&self.stderr);
        let mut said: Vec<&str> = filtered_err
            .lines()
            .filter(|l| l.contains(":err:"))
            .map(str::trim)
            .collect();
        if said.is_empty() {
            said = self
                .stdout
                .lines()
                .chain(filtered_err.lines())
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
        }
        let tail = &said[said.len().saturating_sub(3)..];
        if tail.is_empty() {
            status
        } else {
            format!("{status}: {}", tail.join(" | "))
        }
    }
}

/// Waits for `child` at most `timeout`; kills it (it is ours) when the time
/// is up. `None` means it was killed.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The log without the lines in [`NOISE`].
fn filtered(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    for l in log.lines().filter(|l| !NOISE.iter().any(|n| l.contains(n))) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The `DbgPrint` messages in a Wine log, in order, without Wine's
/// `tid:warn:debugstr:vDbgPrintExWithPrefix id:level: ` decoration.
pub(crate) fn dbgprint_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let msg = &l[l.find(DBGPRINT_MARK)? + DBGPRINT_MARK.len()..];
            // "%08lx:%08lx: " (component id and level mask).
            let b = msg.as_bytes();
            let decorated = b.len() >= 19
                && b[8] == b':'
                && b[17] == b':'
                && b[18] == b' '
                && b[..8].iter().chain(&b[9..17]).all(u8::is_ascii_hexdigit);
            Some(if decorated { &msg[19..] } else { msg }.to_string())
        })
        .collect()
}

impl Wine {
    /// Finds Wine; refuses clearly when it is not installed.
    fn locate() -> Result<Wine, String> {
        let wine =
            std::env::var_os("XTASK_WINE64").map_or_else(|| PathBuf::from(WINE64), PathBuf::from);
        let server = std::env::var_os("XTASK_WINESERVER64")
            .map_or_else(|| PathBuf::from(WINESERVER64), PathBuf::from);
        if !wine.exists() || !server.exists() {
            return Err(format!(
                "Wine is not installed: {} or {} is missing.\n\
                 `cargo xtask wine` needs Debian's 64-bit Wine (8.0 tested); install it yourself, e.g.\n\
                 \x20   sudo apt-get install wine64\n\
                 or point XTASK_WINE64 and XTASK_WINESERVER64 at your wine64 and wineserver.",
                wine.display(),
                server.display()
            ));
        }
        let work = workspace_root().join("target").join("wine");
        Ok(Wine {
            launcher: wine,
            server,
            prefix: work.join("prefix"),
            work,
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("WINEPREFIX", &self.prefix)
            .env("DISPLAY", "")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env("WINEDEBUG", WINEDEBUG)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WINESERVER")
            .env_remove("WINELOADER")
            .stdin(Stdio::null());
        c
    }

    /// Runs `wine64 args…` with a time limit; output goes through files so
    /// that a grandchild keeping a pipe open cannot hang us.
    fn run(&self, args: &[&str], timeout: Duration) -> Result<Finished, String> {
        let out_path = self.work.join("cmd.out");
        let err_path = self.work.join("cmd.err");
        let out = File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let err = File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
        let mut child = self
            .command(&self.launcher)
            .args(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.launcher.display()))?;
        let status = wait_timeout(&mut child, timeout);
        Ok(Finished {
            status,
            stdout: String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default())
                .into_owned(),
            stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default())
                .into_owned(),
        })
    }

    /// `wineserver -k` then `wineserver -w`: every process of our prefix ends.
    fn kill_server(&self) {
        for flag in ["-k", "-w"] {
            if let Ok(mut c) = self
                .command(&self.server)
                .arg(flag)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                let _ = wait_timeout(&mut c, Duration::from_secs(30));
            }
        }
    }

    /// Creates the prefix on first use (`wineboot -i`, 5–12 s, ~700 MB).
    fn ensure_prefix(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.work).map_err(|e| format!("{}: {e}", self.work.display()))?;
        if self.prefix.join("system.reg").exists()
            && self
                .prefix
                .join("drive_c/windows/system32/drivers")
                .is_dir()
        {
            return Ok(());
        }
        println!(
            "wine: creating the prefix {} (once; ~10 s, ~700 MB)",
            driver::rel(&self.prefix).display()
        );
        self.kill_server();
        let r = self.run(&["wineboot", "-i"], Duration::from_secs(300))?;
        self.kill_server();
        if !r.ok() || !self.prefix.join("system.reg").exists() {
            return Err(format!("wineboot -i failed: {}", r.describe()));
        }
        Ok(())
    }
}

/// Only one run per prefix at a time: a lock file holding our pid.
struct RunLock(PathBuf);

impl RunLock {
    fn take(work: &Path) -> Result<RunLock, String> {
        let path = work.join("run.lock");
        for _ in 0..2 {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                let _ = write!(f, "{}", std::process::id());
                return Ok(RunLock(path));
            }
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            if !holder.is_empty() && Path::new("/proc").join(holder).exists() {
                return Err(format!(
                    "another `cargo xtask wine` (pid {holder}) is using {}",
                    work.display()
                ));
            }
            // A stale lock from a run that was killed.
            let _ = std::fs::remove_file(&path);
        }
        Err(format!("cannot take {}", path.display()))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One driver's Wine session: the keeper process (first Wine process, owner
/// of the log) and cleanup on every exit path.
struct Session<'w> {
    wine: &'w Wine,
    keeper: Option<Child>,
    keeper_stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl<'w> Session<'w> {
    /// Kills any server of our prefix, then starts `cmd.exe` reading our
    /// pipe: it starts the Wine services (which inherit its stderr, the log)
    /// and keeps `winedevice.exe` alive while the driver runs.
    fn start(wine: &'w Wine, name: &str) -> Result<Session<'w>, String> {
        wine.kill_server();
        let log = wine.work.join(format!("{name}.log"));
        let keeper_out = wine.work.join("keeper.out");
        let err = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let out =
            File::create(&keeper_out).map_err(|e| format!("{}: {e}", keeper_out.display()))?;
        let mut child = wine
            .command(&wine.launcher)
            .arg("cmd.exe")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", wine.launcher.display()))?;
        let stdin = child.stdin.take();
        let mut s = Session {
            wine,
            keeper: Some(child),
            keeper_stdin: stdin,
            log,
        };
        // Wait until cmd.exe runs: Wine and its services are then up, and
        // later processes no longer become the services' parent.
        if let Some(i) = s.keeper_stdin.as_mut() {
            let _ = i.write_all(b"echo WSK-KEEPER-READY\r\n");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = std::fs::read_to_string(&keeper_out).unwrap_or_default();
            if out.contains("WSK-KEEPER-READY") {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Wine did not start within 60 s; log:\n{}",
                    filtered(&s.read_log())
                ));
            }
            if let Some(Ok(Some(st))) = s.keeper.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "the keeper process (wine64 cmd.exe) exited: {st}; log:\n{}",
                    filtered(&s.read_log())
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn read_log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Ends the keeper and the server; every Wine process of the prefix is
    /// gone afterwards.
    fn finish(&mut self) {
        drop(self.keeper_stdin.take());
        if let Some(mut k) = self.keeper.take() {
            let _ = wait_timeout(&mut k, Duration::from_secs(10));
        }
        self.wine.kill_server();
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.finish();
    }
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
                driver::rel(&self.log_path).display()
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

/// `sc query NAME` says STOPPED.
fn is_stopped(wine: &Wine, name: &str) -> bool {
    wine.run(&["sc", "query", name], Duration::from_secs(30))
        .is_ok_and(|r| r.stdout.contains("STOPPED"))
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
        format!("{} ({size} bytes)", driver::rel(sys).display()),
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

/// Time limit of each `sc`/`reg` invocation.
const SC: Duration = Duration::from_secs(30);

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

/// Copies the driver, creates the service and writes its `Parameters`.
fn install(wine: &Wine, name: &str, ex: &Example, sys: &Path, r: &mut Report) -> Option<Ports> {
    let dest = wine
        .prefix
        .join("drive_c/windows/system32/drivers")
        .join(format!("{name}.sys"));
    if let Err(e) = std::fs::copy(sys, &dest) {
        r.fail("copy", format!("{}: {e}", dest.display()));
        return None;
    }
    // The prefix is reused: the service may exist from an earlier run (its
    // binPath is always the same); its old Parameters are cleared.
    let bin_path = format!("C:\\windows\\system32\\drivers\\{name}.sys");
    let create = [
        "sc", "create", name, "type=", "kernel", "start=", "demand", "binPath=", &bin_path,
    ];
    match wine.run(&create, SC) {
        Ok(f) if f.ok() || f.stderr.contains(" 1073") => {}
        Ok(f) => {
            r.fail("sc create", f.describe());
            return None;
        }
        Err(e) => {
            r.fail("sc create", e);
            return None;
        }
    }
    let key = format!("HKLM\\System\\CurrentControlSet\\Services\\{name}\\Parameters");
    let _ = wine.run(&["reg", "delete", &key, "/f"], SC);

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
        let (ty, data) = match param {
            Param::Dword(v) => ("REG_DWORD", v.to_string()),
            Param::Str(s) => ("REG_SZ", (*s).to_string()),
            Param::PeerPort => ("REG_DWORD", peer_port.to_string()),
            Param::ListenPort => ("REG_DWORD", ports.listen.to_string()),
        };
        shown.push(format!("{value}={data}"));
        let args = ["reg", "add", &key, "/v", value, "/t", ty, "/d", &data, "/f"];
        match wine.run(&args, SC) {
            Ok(f) if f.ok() => {}
            Ok(f) => {
                r.fail("registry", format!("{value}: {}", f.describe()));
                return None;
            }
            Err(e) => {
                r.fail("registry", e);
                return None;
            }
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
    let t = Instant::now();
    let started = match wine.run(&["sc", "start", name], SC) {
        Ok(f) if f.ok() => {
            r.step(
                "sc start",
                format!(
                    "running (DriverEntry returned after {:.2} s)",
                    t.elapsed().as_secs_f64()
                ),
            );
            true
        }
        Ok(f) => {
            r.fail("sc start", f.describe());
            false
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
        let lines = dbgprint_lines(&session.read_log());
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
    let t = Instant::now();
    match wine.run(&["sc", "stop", name], SC) {
        Ok(f) if f.ok() || f.stdout.contains("STOP") => {}
        Ok(f) => {
            r.fail("sc stop", f.describe());
            return false;
        }
        Err(e) => {
            r.fail("sc stop", e);
            return false;
        }
    }
    let stop_deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if is_stopped(wine, name) {
            r.step(
                "sc stop",
                format!(
                    "stopped, driver unloaded ({:.2} s)",
                    t.elapsed().as_secs_f64()
                ),
            );
            return true;
        }
        if Instant::now() > stop_deadline {
            r.fail(
                "sc stop",
                "still RUNNING after 20 s (no DriverUnload set, or it blocked)",
            );
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `cargo xtask wine`: builds (unless `--sys`) and runs each driver; prints a
/// summary per driver. The error lists the drivers that failed.
pub(crate) fn wine(opts: &WineOpts) -> Result<(), String> {
    let wine = Wine::locate()?;
    let names = if opts.names.is_empty() {
        let found = driver::example_drivers();
        if found.is_empty() {
            println!("wine: no example drivers under examples/ yet; nothing to run");
            return Ok(());
        }
        found
    } else {
        opts.names.clone()
    };
    if opts.sys.is_some() && names.len() != 1 {
        return Err("--sys needs exactly one driver name".into());
    }
    let mut drivers = Vec::new();
    for name in &names {
        let sys = if let Some(sys) = &opts.sys {
            driver::check(sys, Arch::X86_64)?;
            sys.clone()
        } else {
            driver::build(
                name,
                &BuildOpts {
                    arch: Arch::X86_64,
                    debug: opts.debug,
                    verbose: opts.verbose,
                    manifest: None,
                },
            )?
        };
        drivers.push((name.clone(), sys));
    }

    wine.ensure_prefix()?;
    let _lock = RunLock::take(&wine.work)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_dbgprint_messages() {
        let log = "0128:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: hello 5\n\
                   0090:fixme:hid:handle_IRP_MN_QUERY_ID Unhandled type 00000005\n\
                   0128:warn:debugstr:vDbgPrintExWithPrefix odd\n";
        assert_eq!(dbgprint_lines(log), ["hello 5", "odd"]);
        assert!(!filtered(log).contains("hid"));
    }
}
