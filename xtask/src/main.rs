//! `cargo xtask`: project automation for `wsk`, `std` only.
//!
//! Invoked through the alias in `.cargo/config.toml` (`cargo xtask …`).
//!
//! # `cargo xtask driver <name> [--target x86_64|aarch64] [--debug] [--verbose] [--manifest-path PATH]`
//!
//! Builds `examples/<name>` (a `cdylib`, `#![no_std]`, `panic = "abort"`) for
//! `<arch>-pc-windows-msvc` exactly as `cargo wsk build` builds any driver
//! crate: `cargo-wsk`'s library runs cargo with the toolchain's `rust-lld` as
//! the linker, the kernel link arguments come from the example's build script
//! (`wsk_driver::build`), release unless `--debug`. The result is copied to
//! `target/drivers/<arch>/<name>.sys` (`…/<arch>/debug/<name>.sys` for debug
//! builds, with the `.pdb` beside it) and checked: machine matches the
//! target, PE32+, subsystem NATIVE, entry point inside an executable
//! section, imports only from `ntoskrnl.exe` and `netio.sys`, no TLS, no
//! delay-load imports, header checksum valid, NX-compatible, no
//! writable+executable section, and every import known to `cargo-wsk`'s
//! table and present on the oldest supported Windows release of the target.
//! `--verbose` lists every imported function with its availability.
//! `--manifest-path` builds an out-of-tree driver crate instead.
//!
//! # `cargo xtask wine [names…] [--sys PATH] [--debug] [--verbose]`
//!
//! Builds each driver for `x86_64` (or takes `--sys` for a single name) and runs
//! it as a kernel service in Debian's 64-bit Wine (`/usr/lib/wine/wine64`;
//! refuses with instructions when it is missing, never installs) through
//! `cargo_wsk::wine`. Uses its own prefix `target/wine/prefix` (created
//! once), a headless environment and
//! `WINEDEBUG=warn+debugstr` whatever the caller's environment says, kills the
//! prefix's `wineserver` before and after, keeps a `cmd.exe` alive while the
//! driver runs, `sc create`s the service, writes its `Parameters` registry
//! values, `sc start`s it, plays the loopback peer (an echo server the driver
//! connects to, or a client connecting to the driver, with graceful or
//! abortive close) on 127.0.0.1, collects the `DbgPrint` lines, `sc stop`s it
//! and checks that it unloaded. What each example must do is a table in
//! `xtask/src/examples.rs`; drivers without an entry must load and unload
//! cleanly. Prints a summary per driver and fails when any check fails; every
//! wait has a timeout, after which the log is printed. Without names: every
//! driver under `examples/`. The full log stays in `target/wine/<name>.log`.
//!
//! # `cargo xtask wine --scenarios [names…] [--scenario NAME]… [--connections N] [--resets N] [--clients N] [--strict]`
//!
//! Runs the echo servers (default: `echo-server` and `raw-echo`) through
//! load scenarios under Wine, a fresh session each: `many` connections at
//! once with the driver host's thread count, `bulk` transfers, a client
//! that `never-reads`, a `reset-storm`, and `unload` while clients stream.
//! Prints a table per driver per scenario and a summary; fails on a failure
//! or a target missed, except the misses `xtask/src/scenarios/mod.rs` lists as
//! known (all of them with `--strict`). What a driver must print and read
//! is documented there.
//!
//! # `cargo xtask wine-bench [--runs N] [--smoke]`
//!
//! Races `echo-server` against `raw-echo` under Wine, interleaved (A B A B
//! …, at least 5 runs each): bulk throughput through 1 and 16 connections,
//! medians and safe/raw ratios, then the thread count with 512 connections
//! and the unload time under load of each; fails when the safe driver
//! misses an issue-14 target. `--smoke`: one run each, bulk only, no
//! verdict on the numbers (`xtask/src/winebench.rs`).
//!
//! # `cargo xtask ci [--skip STEP]… [--only STEP]… [--list]`
//!
//! Runs the CI steps in order, fail-fast (the table `STEPS` in
//! `xtask/src/ci.rs`; `--list` prints them).
//!
//! # `cargo xtask bench [--verbose]`
//!
//! Builds `wsk`'s benches in release, runs each measurement under callgrind
//! (only the measured function is counted, `--toggle-collect`), counts heap
//! allocations natively, prints a table and `bench …` lines and fails if a
//! target of `docs/performance.md` is missed (`xtask/src/bench.rs`).
//!
//! # `cargo xtask stack-frames`
//!
//! Builds `xtask/fixtures/stack-frames` for `x86_64-pc-windows-msvc` at
//! `opt-level = 0`, reads every function's frame size from its prologue
//! (`llvm-objdump`) and fails if a frame of `wsk` holds more copies of a
//! 16 KiB future than `xtask/src/frames.rs` allows (`__chkstk`, kernel
//! stack size).
//!
//! # `cargo xtask demo`
//!
//! Builds the `echo-server` example (or the first example driver there is),
//! runs it under Wine against the loopback peer and tells what happened.

mod bench;
mod ci;
mod driver;
mod examples;
mod frames;
mod load;
mod outside;
mod peer;
mod scenarios;
mod wine;
mod winebench;

use driver::{Arch, BuildOpts};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <command> [options]

Commands:
  driver <name> [--target x86_64|aarch64] [--debug] [--verbose] [--manifest-path PATH]
      Build examples/<name> into a kernel driver for <arch>-pc-windows-msvc
      (release by default), copy it to target/drivers/<arch>/<name>.sys and
      check the PE image: machine, subsystem NATIVE, entry point, imports only
      from ntoskrnl.exe and netio.sys and present on the oldest supported
      Windows, no TLS, checksum (cargo-wsk's checks). --verbose lists the
      imported functions. --manifest-path builds an out-of-tree driver crate.

  wine [names...] [--sys PATH] [--debug] [--verbose]
      Build each driver (x86_64) and run it as a kernel service in Wine
      (/usr/lib/wine/wine64, prefix target/wine/prefix) against a loopback
      peer on 127.0.0.1; check the traffic and DbgPrint lines listed for it in
      xtask/src/examples.rs; print a summary; fail on any mismatch or timeout.
      No names: every example driver. --sys runs a prebuilt .sys (one name).
      --verbose prints the whole Wine log.

  wine --scenarios [names...] [--scenario NAME]... [--connections N]
       [--resets N] [--clients N] [--strict]
      Run echo-server drivers (default: echo-server, raw-echo) through load
      scenarios under Wine: many (N=512 connections at once, the driver
      host's threads), bulk (1 MiB through 1 and 16 connections), never-reads
      (a client that only sends), reset-storm (400 RSTs at once), unload
      (sc stop while 32 clients stream). A table per driver per scenario and
      a summary; fails on a failure or a missed target not listed as known
      in xtask/src/scenarios/mod.rs (any, with --strict).

  wine-bench [--runs N] [--smoke]
      Race echo-server against raw-echo under Wine in one invocation,
      interleaved (at least 5 runs each): bulk MiB/s through 1 and 16
      connections, medians and safe/raw ratios (target >= 0.95), threads
      with 512 connections open, unload time under load. Fails when
      echo-server misses a target. --smoke: one run each, bulk only, no
      verdict (CI).

  ci [--skip STEP]... [--only STEP]... [--list]
      Run the CI steps in order, fail-fast (--list shows them).

  bench [--verbose]
      Build wsk's benches in release and measure them with valgrind's
      callgrind: instructions per event dispatch and per request, safe layer
      vs raw wsk-sys calls, and heap allocations per event and per request.
      Prints a table; fails if a target of docs/performance.md is missed.

  stack-frames
      Build xtask/fixtures/stack-frames (every wsk entry point taking a
      future or closure by value, given one of 16 KiB) for
      x86_64-pc-windows-msvc at opt-level 0, read each function's frame size
      with llvm-objdump, and fail if a frame of wsk holds more copies of the
      future than xtask/src/frames.rs allows.

  demo
      Build the echo-server example, run it under Wine against the loopback
      peer, and show what happened.

  help
      This text.
";

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

pub(crate) use cargo_wsk::driver::cargo;

/// Command-line options after the command name.
#[derive(Default)]
#[allow(clippy::struct_excessive_bools)] // one per flag
struct Args {
    positional: Vec<String>,
    target: Option<String>,
    debug: bool,
    verbose: bool,
    manifest: Option<PathBuf>,
    sys: Option<PathBuf>,
    skip: Vec<String>,
    only: Vec<String>,
    list: bool,
    scenarios: bool,
    scenario: Vec<String>,
    connections: Option<usize>,
    resets: Option<usize>,
    clients: Option<usize>,
    strict: bool,
    runs: Option<usize>,
    smoke: bool,
}

/// A positive count given to `flag`.
fn number(flag: &str, text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} takes a positive number, not `{text}`")),
    }
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--target" => a.target = Some(value("--target")?),
            "--debug" => a.debug = true,
            "--verbose" | "-v" => a.verbose = true,
            "--manifest-path" => a.manifest = Some(value("--manifest-path")?.into()),
            "--sys" => a.sys = Some(value("--sys")?.into()),
            "--skip" => a.skip.push(value("--skip")?),
            "--only" => a.only.push(value("--only")?),
            "--list" => a.list = true,
            "--scenarios" => a.scenarios = true,
            "--scenario" => a.scenario.push(value("--scenario")?),
            "--connections" => {
                a.connections = Some(number("--connections", &value("--connections")?)?);
            }
            "--resets" => a.resets = Some(number("--resets", &value("--resets")?)?),
            "--clients" => a.clients = Some(number("--clients", &value("--clients")?)?),
            "--strict" => a.strict = true,
            "--runs" => a.runs = Some(number("--runs", &value("--runs")?)?),
            "--smoke" => a.smoke = true,
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            _ => a.positional.push(arg),
        }
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let mut argv = std::env::args().skip(1);
    let Some(command) = argv.next() else {
        print!("{HELP}");
        return Ok(());
    };
    if matches!(command.as_str(), "help" | "--help" | "-h") {
        print!("{HELP}");
        return Ok(());
    }
    let a = parse(argv)?;
    match command.as_str() {
        "driver" => {
            let [name] = a.positional.as_slice() else {
                return Err("usage: cargo xtask driver <name> [--target x86_64|aarch64] [--debug] [--verbose]".into());
            };
            let arch = Arch::parse(a.target.as_deref().unwrap_or("x86_64"))?;
            driver::build(
                name,
                &BuildOpts {
                    arch,
                    debug: a.debug,
                    verbose: a.verbose,
                    manifest: a.manifest,
                },
            )
            .map(drop)
        }
        "wine" => {
            let scenarios = scenario_opts(&a)?;
            wine::wine(&wine::WineOpts {
                names: a.positional,
                sys: a.sys,
                debug: a.debug,
                verbose: a.verbose,
                scenarios,
            })
        }
        "wine-bench" => winebench::wine_bench(&winebench::BenchOpts {
            runs: a.runs.unwrap_or(winebench::MIN_RUNS),
            smoke: a.smoke,
        }),
        "ci" => {
            if a.list {
                for s in ci::STEPS {
                    println!("{:<14} {}", s.name, s.about);
                }
                return Ok(());
            }
            ci::ci(&a.skip, &a.only)
        }
        "bench" => bench::bench(a.verbose),
        "stack-frames" => frames::stack_frames(),
        "demo" => demo(a.verbose),
        other => Err(format!("unknown command `{other}`; see `cargo xtask help`")),
    }
}

/// `cargo xtask demo`.
fn demo(verbose: bool) -> Result<(), String> {
    let found = driver::example_drivers();
    let name = if found.iter().any(|n| n == "echo-server") {
        "echo-server".to_string()
    } else {
        found
            .first()
            .cloned()
            .ok_or("no example drivers under examples/ yet")?
    };
    let ex = examples::lookup(&name);
    println!("demo: `{name}` — {}", ex.about);
    println!("  1. build it as a Windows x86_64 kernel driver (.sys) with rust-lld, on this host");
    println!("  2. load it into Wine's kernel (ntoskrnl.exe + netio.sys) as a service");
    println!("  3. talk to it over 127.0.0.1 from this process and compare the bytes");
    println!("  4. stop the service and check that the driver unloaded\n");
    wine::wine(&wine::WineOpts {
        names: vec![name],
        sys: None,
        debug: false,
        verbose,
        scenarios: None,
    })
}

/// The scenario options of `cargo xtask wine`, when `--scenarios` or a
/// `--scenario` was given.
fn scenario_opts(a: &Args) -> Result<Option<scenarios::ScenarioOpts>, String> {
    let sizing_flags =
        a.connections.is_some() || a.resets.is_some() || a.clients.is_some() || a.strict;
    if !a.scenarios && a.scenario.is_empty() {
        if sizing_flags {
            return Err(
                "--connections, --resets, --clients and --strict go with --scenarios".into(),
            );
        }
        return Ok(None);
    }
    let defaults = scenarios::Sizes::default();
    let sizes = scenarios::Sizes {
        many: a.connections.unwrap_or(defaults.many),
        resets: a.resets.unwrap_or(defaults.resets),
        streams: a.clients.unwrap_or(defaults.streams),
        ..defaults
    };
    Ok(Some(scenarios::ScenarioOpts {
        scenarios: a
            .scenario
            .iter()
            .map(|s| scenarios::Scenario::parse(s))
            .collect::<Result<_, _>>()?,
        sizes,
        strict: a.strict,
    }))
}

/// The `outside` CI step's client: one echo exchange with the driver made
/// by `cargo wsk new`, listening on `port` under Wine.
pub(crate) fn template_peer(port: u16) -> Result<String, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let message = cargo_wsk::template::WINE_MESSAGE;
    let t = peer::client(port, message, message, peer::Close::Graceful, deadline);
    if t.problems.is_empty() {
        Ok(t.events.join("; "))
    } else {
        Err(t.problems.join("; "))
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
