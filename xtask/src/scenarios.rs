//! `cargo xtask wine --scenarios`: load scenarios any echo-server driver
//! runs through under Wine, each in a fresh Wine session, loopback only.
//!
//! | scenario | what the clients do | fails when | target (a miss is reported) |
//! |---|---|---|---|
//! | `many` | open N (512) connections at once, each echoes a line; then close them all | an echo is wrong or missing, a connection is not closed gracefully, the driver's count differs | the driver adds ≤ 32 threads to its host with N open |
//! | `bulk` | 1 MiB through one connection, then through 16 at once (send all, read all back, compare) | a byte is wrong, lost or late | — (MiB/s reported; `wine-bench` races them) |
//! | `never-reads` | one client sends for 3 s and never reads; another connection is served meanwhile; then the first reads everything back | the writes never block (no back-pressure), the host grows by more than 32 MiB, a byte is lost, the other connection is not served | — |
//! | `reset-storm` | 400 connections send 1 KiB and reset (`SO_LINGER` 0) at once | the host dies, a new connection is not served, the driver does not unload | its threads return to ≤ idle + 32 |
//! | `unload` | 32 clients send and read continuously; `sc stop` | a connection stays open, a byte is wrong, the driver does not unload or takes more than 2 s | — |
//!
//! # What a driver must do to run through them
//!
//! Its only interface is its `Parameters` and its `DbgPrint` lines:
//!
//! - it reads `Port` (`REG_DWORD`), `Address` (`REG_SZ`, here
//!   `127.0.0.1`) and `BufferSize` (`REG_DWORD`, bytes, here 65536; a
//!   driver without the setting ignores it) and echoes every byte of every
//!   TCP connection on that address back, until the client closes, then
//!   closes gracefully;
//! - it prints `<name>: listening on …` once it accepts connections;
//! - its `DriverUnload` closes every connection and prints
//!   `<name>: stopped connections=<accepted> bytes=<echoed>` once they are
//!   closed (more text may follow).
//!
//! `<name>` is the package (and service) name. The host's thread count and
//! resident size come from `/proc` of the `winedevice.exe` that maps the
//! driver (`cargo_wsk::wine::Wine::driver_host`).

use crate::load::{self, Closed, Flood, Streams};
use crate::peer;
use cargo_wsk::driver::relative;
use cargo_wsk::wine::{
    ALWAYS_FORBIDDEN, RegValue, Session, Wine, WineProcess, module_below, page_fault, timestamp,
};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The drivers the scenarios run against when none is named.
pub(crate) const SERVERS: &[&str] = &["echo-server", "raw-echo"];

/// The `BufferSize` every scenario configures.
pub(crate) const BUFFER_SIZE: u32 = 64 * 1024;

/// How many threads a driver may add to its host with the `many`
/// connections open (issue 14).
pub(crate) const MAX_ADDED_THREADS: usize = 32;

/// The longest an unload under load may take (issue 14).
pub(crate) const MAX_UNLOAD: Duration = Duration::from_secs(2);

/// The Wine debug channels of every scenario session: Wine's clock on
/// every log line, and `services.exe`'s trace of the requests it gets, so
/// that the stop request's arrival (`svcctl_OpenServiceW (L"<name>", 0x20)`,
/// `SERVICE_STOP` access) and the driver's `stopped` line can be timed on
/// one clock, without the start-up of `sc.exe` (seconds on a loaded
/// machine); and the load address of every module, so that a crash can be
/// attributed to the driver or to a part of Wine. All three are quiet
/// while connections stream.
pub(crate) const TIMED_CHANNELS: &str = "+timestamp,trace+service,+loaddll";

/// How much the host may grow while a client floods without reading.
const MAX_FLOOD_GROWTH_KIB: u64 = 32 * 1024;

/// A target a driver is known to miss today, and why. Such a miss (or
/// failure) is reported as `known` and does not fail the run, except with
/// `--strict`; when the target is met the run says so, so that the entry
/// can go.
struct Known {
    /// The driver, or `*` for every driver.
    driver: &'static str,
    /// The scenario, or `None` for every scenario.
    scenario: Option<Scenario>,
    /// The check ([`Row::check`]), or `*` for every check of the scenario.
    check: &'static str,
    why: &'static str,
}

/// The check of a crash inside Wine's `netio.sys` with the signature of
/// its completion race ([`KNOWN`]): a write to address `0x38`
/// (`IRP::IoStatus.Information` of a NULL IRP).
pub(crate) const WINE_NETIO_RACE: &str = "wine-netio-race";

impl Known {
    fn applies(&self, driver: &str, scenario: Scenario) -> bool {
        (self.driver == "*" || self.driver == driver) && self.scenario.is_none_or(|s| s == scenario)
    }

    /// Whether the entry covers a row's check. A wildcard covers every
    /// check of the scenario except `run` (the driver did not load, or the
    /// Wine log shows a crash), which is never expected.
    fn covers(&self, check: &str) -> bool {
        !check.is_empty() && (self.check == check || (self.check == "*" && check != "run"))
    }
}

const KNOWN: &[Known] = &[
    Known {
        driver: "*",
        scenario: None,
        check: WINE_NETIO_RACE,
        why: "Wine 8's netio.sys completes an I/O slot whose IRP it already completed: a write to IoStatus.Information of a NULL IRP on one of its thread-pool threads, seen at the close of a listening socket with an accept pending (~1 run in 10 of `many` under raw-echo); Wine's code, not the driver's",
    },
    Known {
        driver: "echo-server",
        scenario: Some(Scenario::Many),
        check: "threads",
        why: "a system thread per connection in request-driven mode (issue 14: tasks on an executor)",
    },
    Known {
        driver: "echo-server",
        scenario: Some(Scenario::Unload),
        check: "*",
        why: "a connection thread checks the stop flag only when its 100 ms wait times out, which does not happen while its requests keep completing sooner: sc stop then gives up after ~10 s; on a loaded machine some waits time out and it unloads (issue 14)",
    },
    Known {
        driver: "raw-echo",
        scenario: Some(Scenario::Many),
        check: "threads",
        why: "one system thread per connection by design: the baseline is the yardstick for throughput, not for threads",
    },
];

/// How big each scenario is.
#[derive(Debug, Clone)]
pub(crate) struct Sizes {
    /// `many`: connections open at once.
    pub(crate) many: usize,
    /// `bulk`: bytes per connection.
    pub(crate) bulk_bytes: u64,
    /// `bulk`: connections of the concurrent transfer.
    pub(crate) bulk_connections: usize,
    /// `never-reads`: how long the client floods.
    pub(crate) flood: Duration,
    /// `reset-storm`: connections reset.
    pub(crate) resets: usize,
    /// `unload`: streaming clients.
    pub(crate) streams: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            many: 512,
            bulk_bytes: 1 << 20,
            bulk_connections: 16,
            flood: Duration::from_secs(3),
            resets: 400,
            streams: 32,
        }
    }
}

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    Many,
    Bulk,
    NeverReads,
    ResetStorm,
    Unload,
}

impl Scenario {
    pub(crate) const ALL: [Scenario; 5] = [
        Scenario::Many,
        Scenario::Bulk,
        Scenario::NeverReads,
        Scenario::ResetStorm,
        Scenario::Unload,
    ];

    /// The name `--scenario` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Many => "many",
            Scenario::Bulk => "bulk",
            Scenario::NeverReads => "never-reads",
            Scenario::ResetStorm => "reset-storm",
            Scenario::Unload => "unload",
        }
    }

    pub(crate) fn parse(name: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("no scenario `{name}`; scenarios: {}", names.join(", "))
            })
    }

    fn title(self, sizes: &Sizes) -> String {
        match self {
            Scenario::Many => format!("{} connections open at once", sizes.many),
            Scenario::Bulk => format!(
                "bulk: {} through 1 connection, then through {} at once",
                mib(sizes.bulk_bytes),
                sizes.bulk_connections
            ),
            Scenario::NeverReads => format!(
                "a client that sends for {} s and never reads",
                sizes.flood.as_secs()
            ),
            Scenario::ResetStorm => format!("{} connections reset at once", sizes.resets),
            Scenario::Unload => format!("sc stop while {} clients stream", sizes.streams),
        }
    }
}

fn mib(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} B")
    }
}

/// MiB/s of `bytes` in `t`.
pub(crate) fn mib_per_s(bytes: u64, t: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)] // bytes far below 2^52
    let mib = bytes as f64 / f64::from(1u32 << 20);
    mib / t.as_secs_f64().max(1e-9)
}

/// A row's verdict, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verdict {
    /// A measurement without a target.
    Info,
    Pass,
    /// A known miss or failure ([`KNOWN`]).
    Known,
    /// A target missed.
    Miss,
    /// Broken: wrong or lost bytes, a hang, a crash.
    Fail,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Info => "",
            Verdict::Pass => "pass",
            Verdict::Known => "known",
            Verdict::Miss => "MISS",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One line of a scenario's table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The check this row is (matched by [`KNOWN`]), empty for a plain
    /// measurement.
    pub(crate) check: &'static str,
    pub(crate) what: String,
    pub(crate) value: String,
    pub(crate) target: String,
    pub(crate) verdict: Verdict,
    /// Why a verdict is `known`.
    pub(crate) note: String,
}

/// The rows of one driver's run through one scenario.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) driver: String,
    pub(crate) scenario: Scenario,
    pub(crate) title: String,
    pub(crate) rows: Vec<Row>,
    pub(crate) elapsed: Duration,
    pub(crate) log: PathBuf,
    /// Values for the summary and `wine-bench`, by name.
    pub(crate) values: Vec<(&'static str, f64)>,
}

impl Report {
    fn new(driver: &str, scenario: Scenario, sizes: &Sizes) -> Report {
        Report {
            driver: driver.to_string(),
            scenario,
            title: scenario.title(sizes),
            rows: Vec::new(),
            elapsed: Duration::ZERO,
            log: PathBuf::new(),
            values: Vec::new(),
        }
    }

    /// A measurement.
    pub(crate) fn info(&mut self, what: impl Into<String>, value: impl Into<String>) {
        self.rows.push(Row {
            check: "",
            what: what.into(),
            value: value.into(),
            target: String::new(),
            verdict: Verdict::Info,
            note: String::new(),
        });
    }

    /// A check: `ok` passes, else `bad` (a [`Verdict::Miss`] or
    /// [`Verdict::Fail`]).
    pub(crate) fn check(
        &mut self,
        check: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        ok: bool,
        bad: Verdict,
    ) {
        self.rows.push(Row {
            check,
            what: what.into(),
            value: value.into(),
            target: target.into(),
            verdict: if ok { Verdict::Pass } else { bad },
            note: String::new(),
        });
    }

    /// A failure that ends the scenario early.
    pub(crate) fn fail(&mut self, what: impl Into<String>, problem: impl Into<String>) {
        self.check("run", what, problem, "", false, Verdict::Fail);
    }

    pub(crate) fn value(&mut self, name: &'static str, v: f64) {
        self.values.push((name, v));
    }

    pub(crate) fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// Marks the misses and failures [`KNOWN`] lists (unless `strict`),
    /// and notes known entries whose checks passed.
    fn apply_known(&mut self, strict: bool) {
        let (driver, scenario) = (self.driver.clone(), self.scenario);
        for k in KNOWN.iter().filter(|k| k.applies(&driver, scenario)) {
            let mut listed = false;
            for row in &mut self.rows {
                if !k.covers(row.check) {
                    continue;
                }
                listed = true;
                if row.verdict >= Verdict::Miss && !strict {
                    row.verdict = Verdict::Known;
                    row.note = k.why.to_string();
                }
            }
            let all_pass = self
                .rows
                .iter()
                .filter(|r| k.covers(r.check))
                .all(|r| r.verdict == Verdict::Pass);
            if listed && all_pass {
                self.info(
                    "NOTE",
                    format!(
                        "listed as a known miss ({}) but met in this run; once it is met every time, remove the entry from KNOWN in xtask/src/scenarios.rs",
                        k.check
                    ),
                );
            }
        }
    }

    /// The worst verdict of its rows.
    pub(crate) fn verdict(&self) -> Verdict {
        self.rows
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Info)
            .max(Verdict::Pass)
    }

    pub(crate) fn print(&self) {
        println!(
            "\n=== {} · {}: {}  [{}] ({:.1} s; log {})",
            self.driver,
            self.scenario.name(),
            self.title,
            self.verdict().word(),
            self.elapsed.as_secs_f64(),
            relative(&self.log).display()
        );
        let w = self
            .rows
            .iter()
            .map(|r| r.what.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let v = self
            .rows
            .iter()
            .map(|r| r.value.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(5, 60);
        println!(
            "  {:<w$}  {:<v$}  {:<12}  verdict",
            "what", "value", "target"
        );
        for r in &self.rows {
            let mut line = format!(
                "  {:<w$}  {:<v$}  {:<12}  {}",
                r.what,
                r.value,
                r.target,
                r.verdict.word()
            );
            if !r.note.is_empty() {
                let _ = write!(line, " ({})", r.note);
            }
            println!("{}", line.trim_end());
        }
    }
}

/// How `sc stop` went.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stop {
    /// On Wine's clock, from the stop request's arrival at `services.exe`
    /// to the driver's `stopped` line: how long `DriverUnload` took, up to
    /// the line (which comes just before the driver deregisters).
    pub(crate) unload: Option<Duration>,
    /// From issuing `sc stop` to seeing the driver's `stopped` line.
    pub(crate) line: Option<Duration>,
    /// From `sc stop` to the end of the driver's host process.
    pub(crate) host_exit: Option<Duration>,
    /// `sc stop`'s own complaint, if it failed.
    pub(crate) sc_error: Option<String>,
    /// `connections=` and `bytes=` of the `stopped` line.
    pub(crate) counts: Option<(u64, u64)>,
}

impl Stop {
    /// Unloaded: the line appeared and the host process ended.
    pub(crate) fn unloaded(&self) -> bool {
        self.line.is_some() && self.host_exit.is_some()
    }

    pub(crate) fn describe(&self) -> String {
        let secs = |d: Option<Duration>| d.map(|d| format!("{:.2} s", d.as_secs_f64()));
        let mut parts = Vec::new();
        if let Some(u) = secs(self.unload) {
            parts.push(format!("DriverUnload {u}"));
        }
        match secs(self.line) {
            Some(l) => parts.push(format!("sc stop to stopped line {l}")),
            None => parts.push("no stopped line".into()),
        }
        match secs(self.host_exit) {
            Some(h) => parts.push(format!("host exit {h}")),
            None => parts.push("the host did not exit".into()),
        }
        if let Some(e) = &self.sc_error {
            parts.push(format!("sc stop: {e}"));
        }
        parts.join("; ")
    }

    /// The unload time a target is checked against: [`Stop::unload`], or
    /// without Wine's timestamps, [`Stop::line`].
    pub(crate) fn unload_time(&self) -> Option<Duration> {
        self.unload.or(self.line)
    }
}

/// `connections=N bytes=M` of a `stopped` line.
fn parse_counts(line: &str) -> Option<(u64, u64)> {
    let field = |key: &str| -> Option<u64> {
        let at = line.find(key)? + key.len();
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some((field("connections=")?, field("bytes=")?))
}

/// One driver loaded in a fresh Wine session, listening on a free port.
pub(crate) struct Run<'w> {
    wine: &'w Wine,
    session: Session<'w>,
    name: String,
    pub(crate) port: u16,
    pub(crate) host: Option<WineProcess>,
    server: Option<WineProcess>,
}

impl<'w> Run<'w> {
    /// Starts a session (its log `target/wine/<label>.log`), installs the
    /// driver, writes `Port`, `Address` and `BufferSize`, `sc start`s it and
    /// waits for its `listening on` line and its host process.
    pub(crate) fn start(
        wine: &'w Wine,
        name: &str,
        sys: &Path,
        label: &str,
    ) -> Result<Run<'w>, String> {
        let session = Session::start(wine, label)?;
        wine.install(name, sys)?;
        let port = peer::free_port().map_err(|e| format!("no free port: {e}"))?;
        wine.set_parameter(name, "Port", &RegValue::Dword(u32::from(port)))?;
        wine.set_parameter(name, "Address", &RegValue::Sz("127.0.0.1".into()))?;
        wine.set_parameter(name, "BufferSize", &RegValue::Dword(BUFFER_SIZE))?;
        wine.start(name).map_err(|e| format!("sc start: {e}"))?;
        let mut run = Run {
            wine,
            session,
            name: name.to_string(),
            port,
            host: None,
            server: wine.server_process(),
        };
        run.await_line(&format!("{name}: listening on "), Duration::from_secs(15))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while run.host.is_none() && Instant::now() < deadline {
            run.host = wine.driver_host(name);
            if run.host.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if run.host.is_none() {
            return Err("no winedevice.exe process maps the driver".into());
        }
        // Let the host's thread pool settle before anyone counts threads.
        std::thread::sleep(Duration::from_millis(300));
        Ok(run)
    }

    /// The log of this session.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.session.log.clone()
    }

    /// The host's thread count now.
    pub(crate) fn threads(&self) -> Option<usize> {
        self.host.and_then(WineProcess::threads)
    }

    /// The highest thread count seen in `samples` samples 100 ms apart.
    pub(crate) fn threads_peak(&self, samples: u32) -> Option<usize> {
        let mut peak = None;
        for i in 0..samples {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            peak = peak.max(self.threads());
        }
        peak
    }

    /// The CPU time the driver's host and the `wineserver` (which does the
    /// socket work) have used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        Some(self.host?.cpu_seconds()? + self.server?.cpu_seconds()?)
    }

    /// The host's resident size in KiB now.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        self.host.and_then(WineProcess::rss_kib)
    }

    /// Waits until a `DbgPrint` line contains `text`.
    pub(crate) fn await_line(&self, text: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .session
                .dbgprint_lines()
                .into_iter()
                .find(|l| l.contains(text))
            {
                return Ok(l);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no line containing {text:?} within {} s",
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `sc stop`, timed from the moment it is issued: to the driver's
    /// `stopped` line and to the exit of its host (Wine ends a driver's
    /// `winedevice.exe` after its unload), both polled every 10 ms. `sc
    /// stop` itself gives up after about 10 s of a blocked `DriverUnload`.
    pub(crate) fn stop(&self) -> Stop {
        let mut stop = Stop::default();
        let t0 = Instant::now();
        let sc = {
            let (wine, name) = (self.wine.clone(), self.name.clone());
            std::thread::spawn(move || wine.run(&["sc", "stop", &name], Duration::from_secs(30)))
        };
        let pattern = format!("{}: stopped connections=", self.name);
        let mut sc_done: Option<Instant> = None;
        loop {
            if stop.line.is_none() {
                if let Some(l) = self
                    .session
                    .dbgprint_lines()
                    .into_iter()
                    .find(|l| l.contains(&pattern))
                {
                    stop.line = Some(t0.elapsed());
                    stop.counts = parse_counts(&l);
                }
            }
            if stop.host_exit.is_none() && !self.host.is_some_and(WineProcess::is_alive) {
                stop.host_exit = Some(t0.elapsed());
            }
            if sc_done.is_none() && sc.is_finished() {
                sc_done = Some(Instant::now());
            }
            let settled = stop.line.is_some() && stop.host_exit.is_some();
            // After sc returns, allow a second for the host to exit.
            let given_up = sc_done.is_some_and(|t| t.elapsed() > Duration::from_secs(8));
            if settled || given_up || t0.elapsed() > Duration::from_secs(45) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.unload = self.unload_on_wine_clock();
        match sc.join() {
            Ok(Ok(f)) if f.ok() || f.stdout.contains("STOP") => {}
            Ok(Ok(f)) => stop.sc_error = Some(f.describe()),
            Ok(Err(e)) => stop.sc_error = Some(e),
            Err(_) => stop.sc_error = Some("sc stop thread panicked".into()),
        }
        stop
    }

    /// From the stop request's arrival at `services.exe` to the driver's
    /// `stopped` line, on Wine's clock ([`TIMED_CHANNELS`]).
    fn unload_on_wine_clock(&self) -> Option<Duration> {
        let log = self.session.read_log();
        let request = format!(
            "trace:service:svcctl_OpenServiceW (L\"{}\", 0x20)",
            self.name
        );
        let stopped = format!("{}: stopped connections=", self.name);
        let asked = log
            .lines()
            .rev()
            .find(|l| l.contains(&request))
            .and_then(timestamp)?;
        let done = log
            .lines()
            .find(|l| l.contains(":warn:debugstr:") && l.contains(&stopped))
            .and_then(timestamp)?;
        (done >= asked).then(|| Duration::from_secs_f64(done - asked))
    }

    /// Ends the session; returns the log lines that mean a crash (a panic,
    /// an unhandled exception, a call to something Wine lacks), each with
    /// the check it fails: [`WINE_NETIO_RACE`] for a page fault with that
    /// race's signature inside Wine's own `netio.sys`, `run` for anything
    /// else. A page fault names the module loaded nearest below the
    /// faulting address.
    pub(crate) fn finish(mut self) -> Vec<(&'static str, String)> {
        self.session.finish();
        let log = self.session.read_log();
        let mut crashes = Vec::new();
        for line in log.lines() {
            if !ALWAYS_FORBIDDEN.iter().any(|bad| line.contains(bad)) {
                continue;
            }
            let line = line.trim().to_string();
            let Some(fault) = page_fault(&line) else {
                crashes.push(("run", line));
                continue;
            };
            match module_below(&log, fault.address) {
                Some(m) => {
                    let netio_race = m.builtin
                        && m.name.eq_ignore_ascii_case("netio.sys")
                        && fault.access == "write"
                        && fault.target == 0x38;
                    let text = format!(
                        "{line} [in {} {}+{:#x}]",
                        if m.builtin {
                            "Wine's builtin"
                        } else {
                            "the PE file"
                        },
                        m.name,
                        fault.address - m.base
                    );
                    crashes.push((if netio_race { WINE_NETIO_RACE } else { "run" }, text));
                }
                None => crashes.push(("run", line)),
            }
        }
        crashes
    }
}

/// Options of `cargo xtask wine --scenarios`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScenarioOpts {
    /// Scenarios; empty: all.
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) sizes: Sizes,
    /// Known misses fail too.
    pub(crate) strict: bool,
}

/// Runs `scenario` against the driver `name` (built at `sys`).
pub(crate) fn run_scenario(
    wine: &Wine,
    name: &str,
    sys: &Path,
    scenario: Scenario,
    sizes: &Sizes,
    strict: bool,
) -> Report {
    let t0 = Instant::now();
    let mut r = Report::new(name, scenario, sizes);
    let label = format!("{name}.{}", scenario.name());
    match Run::start(wine, name, sys, &label) {
        Ok(run) => {
            r.log = run.log_path();
            match scenario {
                Scenario::Many => many(&run, sizes, &mut r),
                Scenario::Bulk => bulk(&run, sizes, &mut r),
                Scenario::NeverReads => never_reads(&run, sizes, &mut r),
                Scenario::ResetStorm => reset_storm(&run, sizes, &mut r),
                Scenario::Unload => unload(&run, sizes, &mut r),
            }
            for (check, line) in run.finish() {
                r.check(
                    check,
                    "crash in the Wine log",
                    line,
                    "none",
                    false,
                    Verdict::Fail,
                );
            }
        }
        Err(e) => {
            r.log = wine.work.join(format!("{label}.log"));
            r.fail("load", e);
        }
    }
    r.apply_known(strict);
    r.elapsed = t0.elapsed();
    r
}

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
fn many(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
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
fn bulk(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
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
fn never_reads(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
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
fn reset_storm(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
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
fn unload(run: &Run<'_>, sizes: &Sizes, r: &mut Report) {
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

/// `cargo xtask wine --scenarios`: builds the drivers, runs every scenario
/// against each (a fresh session per scenario), prints a table per driver
/// per scenario and a summary. Fails on a failure or a miss not listed in
/// [`KNOWN`] (every one with `strict`).
pub(crate) fn scenarios(
    wine: &Wine,
    drivers: &[(String, PathBuf)],
    opts: &ScenarioOpts,
) -> Result<Vec<Report>, String> {
    let scenarios = if opts.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        opts.scenarios.clone()
    };
    let wine = wine.clone().with_debug_channels(TIMED_CHANNELS);
    let mut reports = Vec::new();
    for scenario in &scenarios {
        for (name, sys) in drivers {
            let report = run_scenario(&wine, name, sys, *scenario, &opts.sizes, opts.strict);
            report.print();
            reports.push(report);
        }
    }
    print_summary(&reports, drivers, &scenarios);
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| r.verdict() >= Verdict::Miss)
        .map(|r| format!("{} · {}", r.driver, r.scenario.name()))
        .collect();
    if bad.is_empty() {
        Ok(reports)
    } else {
        Err(format!(
            "wine scenarios: failed or missed: {}",
            bad.join(", ")
        ))
    }
}

fn print_summary(reports: &[Report], drivers: &[(String, PathBuf)], scenarios: &[Scenario]) {
    println!("\n=== wine scenarios: summary");
    let mut header = format!("  {:<13}", "scenario");
    for (name, _) in drivers {
        let _ = write!(header, "  {name:<32}");
    }
    println!("{}", header.trim_end());
    for s in scenarios {
        let mut line = format!("  {:<13}", s.name());
        for (name, _) in drivers {
            let cell = reports
                .iter()
                .find(|r| r.scenario == *s && &r.driver == name)
                .map_or_else(String::new, summary_cell);
            let _ = write!(line, "  {cell:<32}");
        }
        println!("{}", line.trim_end());
    }
}

/// The verdict and the headline numbers of one report.
fn summary_cell(r: &Report) -> String {
    let numbers = match r.scenario {
        Scenario::Many => r
            .get("threads_open")
            .zip(r.get("threads_idle"))
            .map(|(o, i)| format!("+{:.0} threads", o - i)),
        Scenario::Bulk => r
            .get("bulk1_mib_s")
            .zip(r.get("bulk16_mib_s"))
            .map(|(a, b)| format!("{a:.0} / {b:.0} MiB/s")),
        Scenario::Unload => r.get("unload_s").map(|s| format!("{s:.2} s")),
        Scenario::NeverReads | Scenario::ResetStorm => None,
    };
    let word = match r.verdict() {
        Verdict::Info | Verdict::Pass => "pass",
        Verdict::Known => "known",
        Verdict::Miss => "MISS",
        Verdict::Fail => "FAIL",
    };
    match numbers {
        Some(n) => format!("{word} ({n})"),
        None => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stopped_line() {
        assert_eq!(
            parse_counts("echo-server: stopped connections=4 bytes=32853 mode=request-driven"),
            Some((4, 32853))
        );
        assert_eq!(
            parse_counts("raw-echo: stopped connections=0 bytes=0"),
            Some((0, 0))
        );
        assert_eq!(parse_counts("raw-echo: stopped"), None);
    }

    #[test]
    fn known_misses_are_marked_and_met_ones_noted() {
        let sizes = Sizes::default();
        let mut r = Report::new("raw-echo", Scenario::Many, &sizes);
        r.check("threads", "t", "513", "<= 32", false, Verdict::Miss);
        r.check("echoed", "e", "512/512", "all", true, Verdict::Fail);
        r.apply_known(false);
        assert_eq!(r.verdict(), Verdict::Known);
        let mut strict = Report::new("raw-echo", Scenario::Many, &sizes);
        strict.check("threads", "t", "513", "<= 32", false, Verdict::Miss);
        strict.apply_known(true);
        assert_eq!(strict.verdict(), Verdict::Miss);
        let mut met = Report::new("raw-echo", Scenario::Many, &sizes);
        met.check("threads", "t", "3", "<= 32", true, Verdict::Miss);
        met.apply_known(false);
        assert_eq!(met.verdict(), Verdict::Pass);
        assert!(met.rows.iter().any(|r| r.what == "NOTE"));
    }

    #[test]
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Ok(s));
        }
        assert!(Scenario::parse("nope").is_err());
    }
}
