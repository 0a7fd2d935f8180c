//! One driver loaded in a fresh Wine session, and its timed `sc stop`.

use super::{BUFFER_SIZE, WINE_NETIO_RACE, WINE_STARTUP_CRASH};
use crate::peer;
use cargo_wsk::wine::{
    ALWAYS_FORBIDDEN, RegValue, Session, Wine, WineProcess, module_below, page_fault, timestamp,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// Whether `line` is the `+loaddll` line of the driver `name`'s image
/// (`Loaded L"C:\\windows\\system32\\drivers\\<name>.sys" at …`, the
/// backslashes doubled by Wine's `debugstr_w`).
fn is_image_load(line: &str, name: &str) -> bool {
    line.contains("loaddll:build_module Loaded L\"")
        && line.contains(&format!("\\\\drivers\\\\{name}.sys\" at "))
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
    /// `stopped` line, on Wine's clock ([`TIMED_CHANNELS`](super::TIMED_CHANNELS)).
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
    /// the check it fails: [`WINE_STARTUP_CRASH`] for a crash logged before
    /// the driver's image was loaded (a part of Wine that crashed while the
    /// prefix started), [`WINE_NETIO_RACE`] for a page fault with that
    /// race's signature inside Wine's own `netio.sys`, `run` for anything
    /// else. A page fault names the module loaded nearest below the
    /// faulting address.
    pub(crate) fn finish(mut self) -> Vec<(&'static str, String)> {
        self.session.finish();
        let log = self.session.read_log();
        let loaded_at = log.lines().position(|l| is_image_load(l, &self.name));
        let mut crashes = Vec::new();
        for (i, line) in log.lines().enumerate() {
            if !ALWAYS_FORBIDDEN.iter().any(|bad| line.contains(bad)) {
                continue;
            }
            let mut text = line.trim().to_string();
            let mut check = if loaded_at.is_some_and(|at| i < at) {
                WINE_STARTUP_CRASH
            } else {
                "run"
            };
            if let Some(fault) = page_fault(line) {
                if let Some(m) = module_below(&log, fault.address) {
                    let netio_race = m.builtin
                        && m.name.eq_ignore_ascii_case("netio.sys")
                        && fault.access == "write"
                        && fault.target == 0x38;
                    if netio_race {
                        check = WINE_NETIO_RACE;
                    }
                    let kind = if m.builtin {
                        "Wine's builtin"
                    } else {
                        "the PE file"
                    };
                    text = format!(
                        "{text} [in {kind} {}+{:#x}]",
                        m.name,
                        fault.address - m.base
                    );
                }
            }
            crashes.push((check, text));
        }
        crashes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_driver_image_load() {
        let line = r#"7030.085:017c:trace:loaddll:build_module Loaded L"C:\\windows\\system32\\drivers\\raw-echo.sys" at 0000000180000000: native"#;
        assert!(is_image_load(line, "raw-echo"));
        assert!(!is_image_load(line, "echo"));
        assert!(!is_image_load(line, "echo-server"));
    }

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
}
