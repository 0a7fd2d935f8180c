//! Running a driver as a kernel service in Wine: the prefix, the processes,
//! the service, its `Parameters`, its `DbgPrint` lines.
//!
//! The facts this relies on (Debian's Wine 8): `DbgPrint` appears on stderr
//! as `warn:debugstr:vDbgPrintExWithPrefix` lines of the *first* Wine
//! process (the services inherit its stderr and `WINEDEBUG`), so a
//! [`Session`] starts that process itself and keeps it alive while the
//! driver runs (Wine unloads the driver when the last user process exits);
//! `sc start` returns when `DriverEntry` does and fails when it fails;
//! `sc stop` calls `DriverUnload` and gives up after about 10 s.

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
/// Time limit of each `sc`/`reg` invocation.
const SC: Duration = Duration::from_secs(30);

/// Wine log lines that mean the driver crashed, failed to load or called
/// something Wine lacks, wherever they appear.
pub const ALWAYS_FORBIDDEN: &[&str] = &[
    "panicked at",
    "KeBugCheck",
    "Unhandled page fault",
    "Unhandled exception",
    "to unimplemented function",
    "err:ntoskrnl:ZwLoadDriver",
];

/// A finished child process.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status; `None` when it timed out and was killed.
    pub status: Option<ExitStatus>,
    /// What it printed.
    pub stdout: String,
    /// Its Wine log.
    pub stderr: String,
}

impl Finished {
    /// It exited with status 0.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// One line: the exit status and what Wine said (its `err:` lines, else
    /// the last lines of output).
    #[must_use]
    pub fn describe(&self) -> String {
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
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

/// Whether a Wine process's log says it died while starting, before
/// running its program (see [`Wine::run`]).
fn died_starting(stderr: &str) -> bool {
    stderr.contains("failed to map the shared user data")
}

/// The log without the lines Wine prints in every headless prefix.
#[must_use]
pub fn filtered(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    for l in log.lines().filter(|l| !NOISE.iter().any(|n| l.contains(n))) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The `DbgPrint` messages in a Wine log, in order, without Wine's
/// `tid:warn:debugstr:vDbgPrintExWithPrefix id:level: ` decoration.
#[must_use]
pub fn dbgprint_lines(log: &str) -> Vec<String> {
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

/// The Wine tick count (seconds since boot, millisecond resolution) a log
/// line starts with when the `+timestamp` debug channel is on (`123.456:`
/// before the thread id); `None` otherwise.
#[must_use]
pub fn timestamp(line: &str) -> Option<f64> {
    let head = line.trim_start();
    let (stamp, _) = head.split_once(':')?;
    let (secs, millis) = stamp.split_once('.')?;
    if millis.len() != 3 || secs.is_empty() {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let millis: u64 = millis.parse().ok()?;
    #[allow(clippy::cast_precision_loss)] // tick counts far below 2^52
    Some(secs as f64 + millis as f64 / 1000.0)
}

/// A page fault Wine reported: `wine: Unhandled page fault on <access>
/// access to <target> at address <address> (thread <tid>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageFault {
    /// `read`, `write` or `execute`.
    pub access: String,
    /// The address accessed.
    pub target: u64,
    /// The address of the faulting instruction.
    pub address: u64,
}

/// The page fault a log line reports, if it is Wine's `Unhandled page
/// fault` line.
#[must_use]
pub fn page_fault(line: &str) -> Option<PageFault> {
    let rest = &line[line.find("Unhandled page fault on ")? + "Unhandled page fault on ".len()..];
    let (access, rest) = rest.split_once(" access to ")?;
    let (target, rest) = rest.split_once(" at address ")?;
    let address = rest.split_whitespace().next()?;
    let hex = |t: &str| u64::from_str_radix(t.trim_start_matches("0x"), 16).ok();
    Some(PageFault {
        access: access.to_string(),
        target: hex(target)?,
        address: hex(address)?,
    })
}

/// A module Wine loaded, from a `trace:loaddll:build_module Loaded
/// L"<path>" at <base>: builtin|native` line (the `+loaddll` channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModule {
    /// The file name (`netio.sys`).
    pub name: String,
    /// The load address.
    pub base: u64,
    /// Wine's own implementation rather than a PE file of the prefix.
    pub builtin: bool,
}

/// The module loaded nearest below `address` in `log` (`+loaddll` lines):
/// the module that most likely contains it. Only a guess when processes
/// load different modules at overlapping addresses.
#[must_use]
pub fn module_below(log: &str, address: u64) -> Option<LoadedModule> {
    const MARK: &str = "loaddll:build_module Loaded L\"";
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find(MARK)? + MARK.len()..];
            let (path, rest) = rest.split_once("\" at ")?;
            let (base, kind) = rest.split_once(':')?;
            let base = u64::from_str_radix(base.trim(), 16).ok()?;
            let name = path.rsplit('\\').next().unwrap_or(path).to_string();
            Some(LoadedModule {
                name,
                base,
                builtin: kind.trim() == "builtin",
            })
        })
        .filter(|m| m.base <= address)
        .max_by_key(|m| m.base)
}

/// The first line of `log` containing one of `patterns`.
#[must_use]
pub fn find_forbidden<'l>(log: &'l str, patterns: &[&str]) -> Option<&'l str> {
    log.lines().find(|l| patterns.iter().any(|p| l.contains(p)))
}

/// A decimal or `0x` hexadecimal number that fits 32 bits.
fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    }
}

/// A value for the service's `Parameters` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_SZ`.
    Sz(String),
}

impl std::fmt::Display for RegValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegValue::Dword(v) => write!(f, "{v} (REG_DWORD)"),
            RegValue::Sz(s) => write!(f, "{s:?} (REG_SZ)"),
        }
    }
}

impl RegValue {
    /// The value of `--param NAME=VALUE`: `sz:TEXT` is the `REG_SZ` `TEXT`
    /// and `dword:N` the `REG_DWORD` `N` (decimal or `0x` hexadecimal);
    /// without either prefix the type is [guessed](Self::guess). A string
    /// that itself starts with `sz:` or `dword:` is written `sz:sz:…`.
    ///
    /// # Errors
    ///
    /// `dword:` followed by anything but a number that fits 32 bits.
    pub fn parse(text: &str) -> Result<RegValue, String> {
        if let Some(s) = text.strip_prefix("sz:") {
            return Ok(RegValue::Sz(s.to_string()));
        }
        if let Some(n) = text.strip_prefix("dword:") {
            return number(n).map(RegValue::Dword).ok_or_else(|| {
                format!("{text}: dword: takes a decimal or 0x hexadecimal number below 2^32")
            });
        }
        Ok(RegValue::guess(text))
    }

    /// A decimal or `0x` hexadecimal number that fits 32 bits is a
    /// `REG_DWORD`; anything else a `REG_SZ`.
    #[must_use]
    pub fn guess(text: &str) -> RegValue {
        number(text).map_or_else(|| RegValue::Sz(text.to_string()), RegValue::Dword)
    }

    fn reg_args(&self) -> (&'static str, String) {
        match self {
            RegValue::Dword(v) => ("REG_DWORD", v.to_string()),
            RegValue::Sz(s) => ("REG_SZ", s.clone()),
        }
    }
}

/// A Wine installation with a prefix of our own.
#[derive(Debug, Clone)]
pub struct Wine {
    launcher: PathBuf,
    server: PathBuf,
    /// `WINEDEBUG` for every process started: [`WINEDEBUG`] and any
    /// channels [`Wine::with_debug_channels`] added.
    debug: String,
    /// The `WINEPREFIX`.
    pub prefix: PathBuf,
    /// Where logs and the run lock live (the prefix's parent).
    pub work: PathBuf,
}

impl Wine {
    /// Finds Debian's 64-bit Wine (`/usr/lib/wine/wine64`, or
    /// `CARGO_WSK_WINE64`/`CARGO_WSK_WINESERVER64`) and uses the prefix
    /// `<work>/prefix`; refuses, with the package to install, when Wine is
    /// missing.
    ///
    /// # Errors
    ///
    /// When Wine is not installed.
    pub fn locate(work: &Path) -> Result<Wine, String> {
        let from_env = |var: &str, default: &str| {
            std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        let launcher = from_env("CARGO_WSK_WINE64", WINE64);
        let server = from_env("CARGO_WSK_WINESERVER64", WINESERVER64);
        if !launcher.exists() || !server.exists() {
            return Err(format!(
                "Wine is not installed: {} or {} is missing.\n\
                 Running a driver needs Debian's 64-bit Wine (8.0 tested); install it with\n\
                 \x20   sudo apt-get install wine64\n\
                 or point CARGO_WSK_WINE64 and CARGO_WSK_WINESERVER64 at your wine64 and wineserver.",
                launcher.display(),
                server.display()
            ));
        }
        Ok(Wine {
            launcher,
            server,
            debug: WINEDEBUG.to_string(),
            prefix: work.join("prefix"),
            work: work.to_path_buf(),
        })
    }

    /// The same installation, with more Wine debug channels in the log of
    /// every session (`WINEDEBUG` syntax, e.g. `+timestamp,trace+service`:
    /// every line then starts with Wine's tick count in seconds, see
    /// [`timestamp`], and `services.exe` traces the requests it gets).
    #[must_use]
    pub fn with_debug_channels(mut self, channels: &str) -> Wine {
        self.debug.push(',');
        self.debug.push_str(channels);
        self
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env("WINEPREFIX", &self.prefix)
            .env("DISPLAY", "")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env("WINEDEBUG", &self.debug)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WINESERVER")
            .env_remove("WINELOADER")
            .stdin(Stdio::null());
        // Our own process group: a Ctrl-C in the terminal reaches only us,
        // and we stop the driver in order.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        c
    }

    /// Runs `wine64 args…` with a time limit; output goes through files so
    /// that a grandchild keeping a pipe open cannot hang us.
    ///
    /// A Wine process sometimes dies while it starts, before it runs the
    /// program, because an address it needs is taken (`failed to map the
    /// shared user data: c0000018`, seen about once in a few hundred
    /// launches on a busy machine): such a launch is retried, twice at most.
    ///
    /// # Errors
    ///
    /// When the process cannot be started.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Result<Finished, String> {
        let mut attempt = 0;
        loop {
            let finished = self.run_once(args, timeout)?;
            attempt += 1;
            if finished.ok() || attempt == 3 || !died_starting(&finished.stderr) {
                return Ok(finished);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn run_once(&self, args: &[&str], timeout: Duration) -> Result<Finished, String> {
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
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        Ok(Finished {
            status,
            stdout: read(&out_path),
            stderr: read(&err_path),
        })
    }

    /// `wineserver -k` then `wineserver -w`: every process of our prefix ends.
    pub fn kill_server(&self) {
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
    ///
    /// # Errors
    ///
    /// When `wineboot` fails.
    pub fn ensure_prefix(&self) -> Result<(), String> {
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
            crate::driver::relative(&self.prefix).display()
        );
        self.kill_server();
        let r = self.run(&["wineboot", "-i"], Duration::from_secs(300))?;
        self.kill_server();
        if !r.ok() || !self.prefix.join("system.reg").exists() {
            return Err(format!("wineboot -i failed: {}", r.describe()));
        }
        Ok(())
    }

    /// Takes the prefix for this process: one run per prefix at a time.
    ///
    /// # Errors
    ///
    /// When another live process holds it.
    pub fn lock(&self) -> Result<RunLock, String> {
        RunLock::take(&self.work)
    }

    /// Copies `sys` into the prefix and creates (or keeps) the demand-start
    /// kernel service `name` for it; clears its old `Parameters`.
    ///
    /// # Errors
    ///
    /// What failed: the copy or `sc create`.
    pub fn install(&self, name: &str, sys: &Path) -> Result<(), String> {
        let dest = self
            .prefix
            .join("drive_c/windows/system32/drivers")
            .join(format!("{name}.sys"));
        std::fs::copy(sys, &dest).map_err(|e| format!("copy to {}: {e}", dest.display()))?;
        // The prefix is reused: the service may exist from an earlier run (its
        // binPath is always the same); its old Parameters are cleared.
        let bin_path = format!("C:\\windows\\system32\\drivers\\{name}.sys");
        let create = [
            "sc", "create", name, "type=", "kernel", "start=", "demand", "binPath=", &bin_path,
        ];
        match self.run(&create, SC)? {
            // 1073: ERROR_SERVICE_EXISTS.
            f if f.ok() || f.stderr.contains(" 1073") || f.stdout.contains("1073") => {}
            f => return Err(format!("sc create: {}", f.describe())),
        }
        let _ = self.run(&["reg", "delete", &parameters_key(name), "/f"], SC);
        Ok(())
    }

    /// Writes one value of the service's `Parameters` key.
    ///
    /// # Errors
    ///
    /// When `reg add` fails.
    pub fn set_parameter(
        &self,
        service: &str,
        value_name: &str,
        value: &RegValue,
    ) -> Result<(), String> {
        let (ty, data) = value.reg_args();
        let key = parameters_key(service);
        let args = [
            "reg", "add", &key, "/v", value_name, "/t", ty, "/d", &data, "/f",
        ];
        match self.run(&args, SC)? {
            f if f.ok() => Ok(()),
            f => Err(format!("reg add {value_name}: {}", f.describe())),
        }
    }

    /// `sc start`: returns when `DriverEntry` has returned, with how long it
    /// took.
    ///
    /// # Errors
    ///
    /// When `DriverEntry` failed (Wine's `err:` line says with which status)
    /// or `sc` timed out.
    pub fn start(&self, service: &str) -> Result<Duration, String> {
        let t = Instant::now();
        match self.run(&["sc", "start", service], SC)? {
            f if f.ok() => Ok(t.elapsed()),
            f => Err(f.describe()),
        }
    }

    /// `sc query` says STOPPED.
    #[must_use]
    pub fn is_stopped(&self, service: &str) -> bool {
        self.run(&["sc", "query", service], SC)
            .is_ok_and(|r| r.stdout.contains("STOPPED"))
    }

    /// `sc stop`, then waits up to `limit` until the service reports STOPPED
    /// (the driver unloaded); returns how long it took.
    ///
    /// # Errors
    ///
    /// When `sc stop` fails or the service still runs after `limit`
    /// (`DriverUnload` missing or blocked).
    pub fn stop(&self, service: &str, limit: Duration) -> Result<Duration, String> {
        let t = Instant::now();
        match self.run(&["sc", "stop", service], SC)? {
            f if f.ok() || f.stdout.contains("STOP") => {}
            f => return Err(format!("sc stop: {}", f.describe())),
        }
        let deadline = Instant::now() + limit;
        loop {
            if self.is_stopped(service) {
                return Ok(t.elapsed());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "still RUNNING {} s after sc stop (no DriverUnload set, or it blocked)",
                    limit.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Wine {
    /// The processes of this prefix named `comm` (`/proc/<pid>/comm`) whose
    /// environment has our `WINEPREFIX`, each with its `/proc/<pid>` path.
    fn prefix_processes(&self, comm: &[&str]) -> Vec<(u32, PathBuf)> {
        let mut prefixes = vec![self.prefix.to_string_lossy().into_owned()];
        if let Ok(real) = self.prefix.canonicalize() {
            prefixes.push(real.to_string_lossy().into_owned());
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            // Other users' processes and processes that just ended are
            // unreadable: skipped.
            let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
                continue;
            };
            if !comm.iter().any(|c| name.trim().eq_ignore_ascii_case(c)) {
                continue;
            }
            let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
            let ours = environ.split(|&b| b == 0).any(|var| {
                var.strip_prefix(b"WINEPREFIX=")
                    .is_some_and(|p| prefixes.iter().any(|w| w.as_bytes() == p))
            });
            if ours {
                found.push((pid, dir));
            }
        }
        found
    }

    /// The host process of the kernel service `service` while it runs:
    /// Wine starts one `winedevice.exe` per kernel service, and it is the
    /// process of this prefix that has the service's `.sys` mapped. `None`
    /// when no such process exists (the driver is not loaded) or on a host
    /// without Linux's `/proc`.
    #[must_use]
    pub fn driver_host(&self, service: &str) -> Option<WineProcess> {
        let sys = self
            .prefix
            .join("drive_c/windows/system32/drivers")
            .join(format!("{service}.sys"));
        let mut wanted = vec![sys.to_string_lossy().into_owned()];
        if let Ok(real) = sys.canonicalize() {
            wanted.push(real.to_string_lossy().into_owned());
        }
        self.prefix_processes(&["winedevice.exe"])
            .into_iter()
            .find(|(_, dir)| {
                let maps = std::fs::read_to_string(dir.join("maps")).unwrap_or_default();
                maps.lines()
                    .any(|l| wanted.iter().any(|w| l.ends_with(w.as_str())))
            })
            .map(|(pid, _)| WineProcess { pid })
    }

    /// The `wineserver` of this prefix, while it runs. It does the socket
    /// work of every Wine process (asynchronous I/O goes through it), so a
    /// driver's network cost is its host's CPU time plus some of this one's.
    #[must_use]
    pub fn server_process(&self) -> Option<WineProcess> {
        self.prefix_processes(&["wineserver", "wineserver64"])
            .into_iter()
            .next()
            .map(|(pid, _)| WineProcess { pid })
    }
}

/// A Linux process of a Wine prefix: the `winedevice.exe` hosting a driver
/// ([`Wine::driver_host`]) or the `wineserver` ([`Wine::server_process`]).
/// A driver host's threads are Wine's own (a handful at idle) plus the
/// driver's system threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WineProcess {
    pid: u32,
}

impl WineProcess {
    fn proc_file(self, name: &str) -> PathBuf {
        Path::new("/proc").join(self.pid.to_string()).join(name)
    }

    /// The process id.
    #[must_use]
    pub fn pid(self) -> u32 {
        self.pid
    }

    /// Whether the process still exists.
    #[must_use]
    pub fn is_alive(self) -> bool {
        Path::new("/proc").join(self.pid.to_string()).exists()
    }

    /// Its number of threads (the entries of `/proc/<pid>/task`); `None`
    /// once it has exited.
    #[must_use]
    pub fn threads(self) -> Option<usize> {
        Some(std::fs::read_dir(self.proc_file("task")).ok()?.count())
    }

    /// Its resident set size in KiB (`VmRSS` of `/proc/<pid>/status`);
    /// `None` once it has exited.
    #[must_use]
    pub fn rss_kib(self) -> Option<u64> {
        let status = std::fs::read_to_string(self.proc_file("status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The CPU time it has used, user and system, its ended threads
    /// included (`utime` + `stime` of `/proc/<pid>/stat`, in clock ticks of
    /// `sysconf(_SC_CLK_TCK)`, see proc(5)); `None` once it has exited.
    #[must_use]
    pub fn cpu_seconds(self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.proc_file("stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces:
        // fields are counted after its closing parenthesis, which is field
        // 3 (`state`); utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        let utime: u64 = fields.next()?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        #[allow(clippy::cast_precision_loss)] // tick counts far below 2^52
        Some((utime + stime) as f64 / clock_ticks_per_second()?)
    }
}

/// `sysconf(_SC_CLK_TCK)`: the unit of the CPU times in `/proc`.
#[cfg(target_os = "linux")]
fn clock_ticks_per_second() -> Option<f64> {
    /// `_SC_CLK_TCK` of glibc's `<bits/confname.h>` (the third `_SC_` name).
    const SC_CLK_TCK: i32 = 2;
    unsafe extern "C" {
        fn sysconf(name: i32) -> i64;
    }
    // SAFETY: sysconf takes any name and returns -1 for an unknown one.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    #[allow(clippy::cast_precision_loss)] // a small number (100)
    (ticks > 0).then_some(ticks as f64)
}

#[cfg(not(target_os = "linux"))]
fn clock_ticks_per_second() -> Option<f64> {
    None
}

/// `HKLM\System\CurrentControlSet\Services\<service>\Parameters`.
#[must_use]
pub fn parameters_key(service: &str) -> String {
    format!("HKLM\\System\\CurrentControlSet\\Services\\{service}\\Parameters")
}

/// Only one run per prefix at a time: a lock file holding our pid, removed
/// on drop.
#[derive(Debug)]
pub struct RunLock(PathBuf);

impl RunLock {
    fn take(work: &Path) -> Result<RunLock, String> {
        std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
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
                    "another Wine run (pid {holder}) is using {}",
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
#[derive(Debug)]
pub struct Session<'w> {
    wine: &'w Wine,
    keeper: Option<Child>,
    keeper_stdin: Option<ChildStdin>,
    /// The Wine log of this session (`<work>/<name>.log`).
    pub log: PathBuf,
}

impl<'w> Session<'w> {
    /// Kills any server of our prefix, then starts `cmd.exe` reading our
    /// pipe: it starts the Wine services (which inherit its stderr, the log)
    /// and keeps `winedevice.exe` alive while the driver runs.
    ///
    /// # Errors
    ///
    /// When Wine does not come up within 60 s.
    pub fn start(wine: &'w Wine, name: &str) -> Result<Session<'w>, String> {
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

    /// The Wine log so far.
    #[must_use]
    pub fn read_log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The driver's `DbgPrint` lines so far.
    #[must_use]
    pub fn dbgprint_lines(&self) -> Vec<String> {
        dbgprint_lines(&self.read_log())
    }

    /// Ends the keeper and the server; every Wine process of the prefix is
    /// gone afterwards.
    pub fn finish(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_dbgprint_messages() {
        let log = "0128:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: hello 5\n\
                   0090:fixme:hid:handle_IRP_MN_QUERY_ID Unhandled type 00000005\n\
                   0128:warn:debugstr:vDbgPrintExWithPrefix odd\n";
        assert_eq!(dbgprint_lines(log), ["hello 5", "odd"]);
        let stamped = " 6677.134:0138:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: x 1";
        assert_eq!(dbgprint_lines(stamped), ["x 1"]);
        assert_eq!(timestamp(stamped), Some(6677.134));
        assert_eq!(timestamp("0128:warn:debugstr:vDbgPrintExWithPrefix"), None);
        let fault = "wine: Unhandled page fault on write access to 0000000000000038 at address 00000001D826436E (thread 0be4), starting debugger...";
        assert_eq!(
            page_fault(fault),
            Some(PageFault {
                access: "write".into(),
                target: 0x38,
                address: 0x1_D826_436E
            })
        );
        let loads = "7030.085:017c:trace:loaddll:build_module Loaded L\"C:\\windows\\system32\\drivers\\netio.sys\" at 00000001D8260000: builtin\n\
                     7030.085:017c:trace:loaddll:build_module Loaded L\"C:\\windows\\system32\\drivers\\raw-echo.sys\" at 0000000180000000: native\n";
        let m = module_below(loads, 0x1_D826_436E).unwrap();
        assert_eq!(
            (m.name.as_str(), m.base, m.builtin),
            ("netio.sys", 0x1_D826_0000, true)
        );
        assert_eq!(module_below(loads, 0x1000), None);
        assert!(died_starting(
            "err:virtual:virtual_alloc_first_teb wine: failed to map the shared user data: c0000018"
        ));
        assert!(!filtered(log).contains("hid"));
        assert_eq!(
            find_forbidden("a\nb KeBugCheckEx\n", ALWAYS_FORBIDDEN),
            Some("b KeBugCheckEx")
        );
    }

    #[test]
    fn parameter_types() {
        assert_eq!(RegValue::guess("7007"), RegValue::Dword(7007));
        assert_eq!(RegValue::guess("0x10"), RegValue::Dword(16));
        assert_eq!(
            RegValue::guess("127.0.0.1"),
            RegValue::Sz("127.0.0.1".into())
        );
        assert_eq!(
            RegValue::guess("99999999999"),
            RegValue::Sz("99999999999".into())
        );
        assert_eq!(RegValue::guess(""), RegValue::Sz(String::new()));
    }

    #[test]
    fn parameter_types_can_be_named() {
        // A number that must stay a string (a REG_SZ port, a PIN).
        assert_eq!(RegValue::parse("sz:7007"), Ok(RegValue::Sz("7007".into())));
        assert_eq!(RegValue::parse("sz:"), Ok(RegValue::Sz(String::new())));
        assert_eq!(RegValue::parse("sz:sz:x"), Ok(RegValue::Sz("sz:x".into())));
        assert_eq!(RegValue::parse("dword:0x1F"), Ok(RegValue::Dword(31)));
        assert_eq!(
            RegValue::parse("dword:4294967295"),
            Ok(RegValue::Dword(u32::MAX))
        );
        for bad in [
            "dword:",
            "dword:4294967296",
            "dword:-1",
            "dword:12ab",
            "dword:0x",
        ] {
            assert!(RegValue::parse(bad).is_err(), "{bad}");
        }
        // Without a prefix, as before.
        assert_eq!(RegValue::parse("7007"), Ok(RegValue::Dword(7007)));
        assert_eq!(
            RegValue::parse("DWORD:1"),
            Ok(RegValue::Sz("DWORD:1".into()))
        );
    }
}
