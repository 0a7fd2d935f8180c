//! `cargo xtask bench`: the performance targets of `docs/performance.md`,
//! measured in instructions (callgrind) and heap allocations, never in time.
//!
//! 1. Builds `wsk`'s benches in release (`cargo bench --no-run -p wsk`) and
//!    finds their executables in cargo's JSON messages.
//! 2. Asks each for its measurements (`--harness list`, see
//!    `wsk/benches/common/mod.rs`), runs each once under
//!    `valgrind --tool=callgrind --toggle-collect=<function>`, so that only
//!    the measured function (inclusive of its callees) is counted, twice:
//!    with `N` and `2N` iterations. Instructions per call are the difference
//!    of the collected totals over the difference of the calls the bench
//!    reports, which cancels one-off costs (first calls, lazy state). The
//!    callgrind files stay in `target/bench/callgrind/` for
//!    `callgrind_annotate`.
//! 3. Runs each natively with `--harness allocs` for the allocation counts.
//! 4. Prints a table and `bench …` lines, compares with [`TARGETS`] and
//!    fails if one is missed.

use crate::{cargo, workspace_root};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A performance target.
enum Target {
    /// Safe instructions per operation ≤ `max` × the raw baseline's.
    Ratio { group: &'static str, max: f64 },
    /// Allocations the safe layer adds per operation (safe minus raw on the
    /// same simulator) ≤ `max`.
    Allocs { group: &'static str, max: f64 },
}

/// The performance targets (issue 7).
const TARGETS: &[Target] = &[
    // Event dispatch: trampoline + handler ≤ 1.1 × a C-style callback.
    Target::Ratio {
        group: "event_dispatch",
        max: 1.10,
    },
    Target::Ratio {
        group: "receive_dispatch",
        max: 1.10,
    },
    // No allocation per event.
    Target::Allocs {
        group: "event_dispatch",
        max: 0.0,
    },
    Target::Allocs {
        group: "receive_dispatch",
        max: 0.0,
    },
    // Reading the indicated bytes through `copy_to` (every MDL of every
    // WSK_BUF) allocates nothing. Its instructions are reported against a
    // C callback reading the chains by hand (`receive_copy`), without a
    // target: see docs/performance.md.
    Target::Allocs {
        group: "receive_copy",
        max: 0.0,
    },
    // Requests ≤ 1.1 × the raw calls, with fresh memory and with reused memory.
    Target::Ratio {
        group: "request_round_trip",
        max: 1.10,
    },
    Target::Ratio {
        group: "reused_request",
        max: 1.10,
    },
    Target::Ratio {
        group: "streaming",
        max: 1.10,
    },
    // A one-shot request allocates once, as a C driver's IRP per request
    // does; a request in a slot and a streaming round allocate nothing.
    Target::Allocs {
        group: "request_round_trip",
        max: 0.0,
    },
    Target::Allocs {
        group: "reused_request",
        max: 0.0,
    },
    Target::Allocs {
        group: "streaming",
        max: 0.0,
    },
    // Issue 14: an echo round through a task ≤ 1.1 × the same round driven
    // by `block_on`; no allocation per round or per wake-and-poll.
    Target::Ratio {
        group: "task_echo",
        max: 1.10,
    },
    Target::Allocs {
        group: "task_echo",
        max: 0.0,
    },
    Target::Allocs {
        group: "task_wake",
        max: 0.0,
    },
    // Issue 14: event-fed reads (`tcp::ReceiveQueue`) allocate nothing per
    // indication, from the callback to the reader's release.
    Target::Allocs {
        group: "queue_read",
        max: 0.0,
    },
];

/// One `measure` line of a bench binary.
struct Measure {
    exe: PathBuf,
    group: String,
    role: String,
    case: String,
    toggle: String,
    iters: u64,
}

/// A measurement's result.
struct Measured {
    m: Measure,
    /// Calls of the second run minus calls of the first.
    calls: u64,
    /// Instructions of the second run minus those of the first.
    instructions: u64,
    /// The one-off part of the first run (its total minus `calls1` times
    /// the per-call cost).
    once: u64,
}

impl Measured {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn per_call(&self) -> f64 {
        self.instructions as f64 / self.calls as f64
    }
}

/// One `allocs` line of a bench binary.
struct Allocs {
    group: String,
    unit: String,
    ops: u64,
    safe: u64,
    raw: u64,
}

impl Allocs {
    /// Allocations the safe layer adds per operation.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn layer_per_op(&self) -> f64 {
        (self.safe as f64 - self.raw as f64) / self.ops as f64
    }

    /// The simulator's own allocations per operation.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn sim_per_op(&self) -> f64 {
        self.raw as f64 / self.ops as f64
    }
}

/// `cargo xtask bench`.
pub(crate) fn bench(verbose: bool) -> Result<(), String> {
    let version = Command::new("valgrind").arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err(
            "valgrind not found: install it (Debian: `apt-get install valgrind`); \
             the benches count instructions with callgrind"
                .into(),
        );
    }
    let exes = build()?;
    let out_dir = workspace_root().join("target/bench/callgrind");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    let mut measures = Vec::new();
    let mut allocs = Vec::new();
    for exe in &exes {
        measures.extend(list(exe)?);
        allocs.extend(count_allocs(exe)?);
    }
    let mut results = Vec::new();
    for m in measures {
        results.push(measure(m, &out_dir, verbose)?);
    }

    print_table(&results, &allocs);
    let (lines, missed) = evaluate(&results, &allocs);
    println!();
    for l in &lines {
        println!("{l}");
    }
    println!(
        "\ncallgrind files: {} (callgrind_annotate --inclusive=yes FILE)",
        rel(&out_dir).display()
    );
    if missed.is_empty() {
        println!("all targets met");
        Ok(())
    } else {
        Err(format!("targets missed: {}", missed.join("; ")))
    }
}

/// `cargo bench --no-run -p wsk`; the bench executables.
fn build() -> Result<Vec<PathBuf>, String> {
    let out = cargo()
        .current_dir(workspace_root())
        .args([
            "bench",
            "--no-run",
            "-p",
            "wsk",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err("cargo bench --no-run -p wsk failed".into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut exes = Vec::new();
    for line in stdout.lines() {
        if line.contains("\"reason\":\"compiler-artifact\"")
            && line.contains("\"kind\":[\"bench\"]")
        {
            if let Some(exe) = json_string(line, "executable") {
                exes.push(PathBuf::from(exe));
            }
        }
    }
    if exes.is_empty() {
        return Err("cargo built no bench executables for `wsk`".into());
    }
    exes.sort();
    Ok(exes)
}

/// Runs `exe args…` natively; its stdout.
fn run_native(exe: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(exe)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!("{} {} failed", exe.display(), args.join(" ")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `exe --harness list`.
fn list(exe: &Path) -> Result<Vec<Measure>, String> {
    let out = run_native(exe, &["--harness", "list"])?;
    let mut v = Vec::new();
    for line in out.lines().filter(|l| l.starts_with("measure ")) {
        let get = |k: &str| field(line, k).ok_or_else(|| format!("`{line}`: no {k}="));
        v.push(Measure {
            exe: exe.to_path_buf(),
            group: get("group")?,
            role: get("role")?,
            case: get("case")?,
            toggle: get("toggle")?,
            iters: number(&get("iters")?)?,
        });
    }
    Ok(v)
}

/// `exe --harness allocs`.
fn count_allocs(exe: &Path) -> Result<Vec<Allocs>, String> {
    let out = run_native(exe, &["--harness", "allocs"])?;
    let mut v = Vec::new();
    for line in out.lines().filter(|l| l.starts_with("allocs ")) {
        let get = |k: &str| field(line, k).ok_or_else(|| format!("`{line}`: no {k}="));
        v.push(Allocs {
            group: get("group")?,
            unit: get("unit")?,
            ops: number(&get("ops")?)?,
            safe: number(&get("safe")?)?,
            raw: number(&get("raw")?)?,
        });
    }
    Ok(v)
}

/// Measures `m` with `iters` and with twice as many iterations; the
/// difference cancels whatever the toggled function costs only once (first
/// calls, lazily initialised state).
fn measure(m: Measure, out_dir: &Path, verbose: bool) -> Result<Measured, String> {
    let (calls1, instr1) = callgrind(&m, m.iters, out_dir, verbose)?;
    let (calls2, instr2) = callgrind(&m, 2 * m.iters, out_dir, verbose)?;
    if calls2 <= calls1 || instr2 < instr1 {
        return Err(format!(
            "{}: {calls1} calls/{instr1} instructions, then {calls2}/{instr2}: \
             the measurement does not scale with the iterations",
            m.case
        ));
    }
    Ok(Measured {
        m,
        calls: calls2 - calls1,
        instructions: instr2 - instr1,
        once: instr1.saturating_sub((instr2 - instr1) * calls1 / (calls2 - calls1)),
    })
}

/// Runs `m` with `iters` iterations under callgrind; the calls the bench
/// reports and the instructions collected.
fn callgrind(m: &Measure, iters: u64, out_dir: &Path, verbose: bool) -> Result<(u64, u64), String> {
    let out_file = out_dir.join(format!("{}.{iters}.out", m.case));
    let _ = std::fs::remove_file(&out_file);
    let iters = iters.to_string();
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg("--quiet")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={}", m.toggle))
        .arg(&m.exe)
        .args(["--harness", "run", &m.case, &iters]);
    if verbose {
        println!("$ {cmd:?}");
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !out.status.success() {
        return Err(format!("{}: `{cmd:?}` failed", m.case));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let calls = stdout
        .lines()
        .find(|l| l.starts_with("ran "))
        .and_then(|l| field(l, "calls"))
        .ok_or_else(|| format!("{}: no `ran … calls=` line", m.case))?;
    let calls = number(&calls)?;
    let text =
        std::fs::read_to_string(&out_file).map_err(|e| format!("{}: {e}", out_file.display()))?;
    let instructions = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .ok_or_else(|| format!("{}: no totals", out_file.display()))
        .and_then(|t| number(t.trim()))?;
    if calls == 0 || instructions == 0 {
        return Err(format!(
            "{}: nothing measured ({calls} calls, {instructions} instructions): \
             does `{}` name a function of the binary?",
            m.case, m.toggle
        ));
    }
    Ok((calls, instructions))
}

fn print_table(results: &[Measured], allocs: &[Allocs]) {
    println!(
        "\n{:<20} {:<13} {:<24} {:>7} {:>12} {:>8} {:>10}",
        "group", "role", "case", "Δcalls", "Δinstr", "one-off", "per call"
    );
    for r in results {
        println!(
            "{:<20} {:<13} {:<24} {:>7} {:>12} {:>8} {:>10.1}",
            r.m.group,
            r.m.role,
            r.m.case,
            r.calls,
            r.instructions,
            r.once,
            r.per_call()
        );
    }
    println!(
        "\n{:<20} {:<8} {:>6} {:>11} {:>11} {:>16} {:>16}",
        "allocations", "unit", "ops", "safe+sim", "raw+sim", "safe layer / op", "simulator / op"
    );
    for a in allocs {
        println!(
            "{:<20} {:<8} {:>6} {:>11} {:>11} {:>16.3} {:>16.3}",
            a.group,
            a.unit,
            a.ops,
            a.safe,
            a.raw,
            a.layer_per_op(),
            a.sim_per_op()
        );
    }
}

/// The `bench …` lines and the targets missed.
fn evaluate(results: &[Measured], allocs: &[Allocs]) -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut missed = Vec::new();
    let role = |group: &str, role: &str| {
        results
            .iter()
            .find(|r| r.m.group == group && r.m.role == role)
    };
    let mut groups: Vec<&str> = results.iter().map(|r| r.m.group.as_str()).collect();
    groups.dedup();
    for group in groups {
        let (Some(safe), Some(raw)) = (role(group, "safe"), role(group, "raw")) else {
            continue;
        };
        let ratio = safe.per_call() / raw.per_call();
        let mut line = format!(
            "bench {group} safe_instructions={:.1} raw_instructions={:.1} ratio={ratio:.3}",
            safe.per_call(),
            raw.per_call()
        );
        for other in results
            .iter()
            .filter(|r| r.m.group == group && !matches!(r.m.role.as_str(), "safe" | "raw"))
        {
            let _ = write!(
                line,
                " {}_instructions={:.1}",
                other.m.role,
                other.per_call()
            );
        }
        for t in TARGETS {
            if let Target::Ratio { group: g, max } = t {
                if *g == group {
                    let ok = ratio <= *max;
                    let _ = write!(line, " target<={max:.2} {}", verdict(ok));
                    if !ok {
                        missed.push(format!("{group}: ratio {ratio:.3} > {max:.2}"));
                    }
                }
            }
        }
        lines.push(line);
    }
    for a in allocs {
        let per = a.layer_per_op();
        let mut line = format!(
            "bench {}_allocations safe_layer_per_{}={per:.3} simulator_per_{}={:.3} ops={}",
            a.group,
            a.unit,
            a.unit,
            a.sim_per_op(),
            a.ops
        );
        for t in TARGETS {
            if let Target::Allocs { group: g, max } = t {
                if *g == a.group {
                    // Counts are whole numbers over `ops` operations.
                    let ok = per <= *max + 1e-9;
                    let _ = write!(line, " target<={max} {}", verdict(ok));
                    if !ok {
                        missed.push(format!(
                            "{}: {per:.3} allocations per {} > {max}",
                            a.group, a.unit
                        ));
                    }
                }
            }
        }
        lines.push(line);
    }
    (lines, missed)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// `key=value` in a space-separated line.
fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
}

fn number(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("`{s}` is not a count"))
}

/// The string value of the first `"key":"…"` in a JSON line.
fn json_string(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// `path` relative to the workspace root when inside it.
fn rel(path: &Path) -> PathBuf {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_json() {
        let l = "measure group=g role=safe case=c toggle=a::b* iters=10";
        assert_eq!(field(l, "toggle").as_deref(), Some("a::b*"));
        assert_eq!(field(l, "role").as_deref(), Some("safe"));
        assert_eq!(field(l, "missing"), None);
        let j =
            r#"{"target":{"kind":["bench"],"name":"x"},"executable":"C:\\t\\x.exe","fresh":true}"#;
        assert_eq!(json_string(j, "executable").as_deref(), Some(r"C:\t\x.exe"));
        assert_eq!(json_string(j, "name").as_deref(), Some("x"));
    }
}
