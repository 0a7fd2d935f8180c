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

mod cases;
mod report;
mod session;

use cases::{bulk, many, never_reads, reset_storm, unload};
pub(crate) use cases::{bulk_once, bulk_phase};
pub(crate) use report::{Report, Verdict};
pub(crate) use session::Run;

use cargo_wsk::wine::Wine;
use std::fmt::Write as _;
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
    /// The check ([`Row::check`](report::Row::check)), or `*` for every check of the scenario.
    check: &'static str,
    why: &'static str,
}

/// The check of a crash inside Wine's `netio.sys` with the signature of
/// its completion race ([`KNOWN`]): a write to address `0x38`
/// (`IRP::IoStatus.Information` of a NULL IRP).
pub(crate) const WINE_NETIO_RACE: &str = "wine-netio-race";

/// The check of a crash logged before the driver's image was loaded: a
/// part of Wine (its plug-and-play drivers start with every prefix) that
/// crashed while the session started ([`KNOWN`]).
pub(crate) const WINE_STARTUP_CRASH: &str = "wine-startup-crash";

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
        check: WINE_STARTUP_CRASH,
        why: "a part of Wine crashed while the session started, before the driver was loaded (seen twice, each time Wine's ntoskrnl.exe loading its own wineusb.sys); not the driver's",
    },
    Known {
        driver: "*",
        scenario: None,
        check: WINE_NETIO_RACE,
        why: "Wine 8's netio.sys completes an I/O slot whose IRP it already completed: a write to IoStatus.Information of a NULL IRP on one of its thread-pool threads, seen when sockets close with requests pending: a listening socket with an accept pending (~1 run in 10 of `many` under raw-echo) and connections closed by sc stop while clients stream (1 of 17 `unload` runs under echo-server, 1 of 4 under raw-echo); Wine's code, not the driver's",
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
    fn scenario_names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Ok(s));
        }
        assert!(Scenario::parse("nope").is_err());
    }
}
