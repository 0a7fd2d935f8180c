//! `cargo xtask stack-frames`: how many copies of a large future `wsk`'s
//! unoptimised frames hold.
//!
//! In a debug build (`opt-level = 0`) every by-value argument and every
//! temporary is a slot of its own on the stack, so a function that moves a
//! future through a chain of helpers holds a copy of it in each frame. A
//! kernel stack is small (24 KB on x64, see `docs/building.md`), and a frame
//! larger than a page makes the compiler call the stack probe `__chkstk`,
//! which `cargo wsk build --strict` refuses. The check builds
//! `xtask/fixtures/stack-frames` (every entry point of `wsk` that takes a
//! future or closure by value, given one of 16 KiB) for
//! `x86_64-pc-windows-msvc` at `opt-level = 0` as an object file,
//! disassembles it with `llvm-objdump`, reads each function's frame size
//! from its prologue (`sub rsp, N`, or `mov eax, N` before a `__chkstk`
//! call) and divides it by the future's size. Every function of `wsk` or
//! `core` instantiated there must hold no copy, except those [`ALLOWED`]
//! names; the fixture's own functions (the caller's side) are printed, not
//! checked.

use crate::{cargo, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The size of the fixture's futures and closures (`BIG` in its `lib.rs`).
const BIG: u64 = 16384;

/// The functions allowed to hold copies of the future, how many, and why.
const ALLOWED: &[(&str, u64, &str)] = &[
    (
        "wsk::task::executor::Handle::spawn",
        2,
        "the move into the task's memory, and the SpawnError of a failed allocation",
    ),
    (
        "wsk::task::executor::Executor::spawn",
        2,
        "as Handle::spawn",
    ),
    (
        "wsk::task::executor::Handle::spawn_blocking",
        2,
        "as Handle::spawn",
    ),
    (
        "wsk::task::executor::Executor::spawn_blocking",
        2,
        "as Handle::spawn",
    ),
    (
        "wsk::task::executor::refused",
        2,
        "the future read back out of a refused task, and its SpawnError (cold)",
    ),
    (
        "wsk::task::raw::BlockingTask<F,R>::call",
        2,
        "the closure read out of the task, and called by value (FnOnce)",
    ),
    (
        "wsk::timer::timeout",
        2,
        "IntoFuture::into_future's argument and result, moved into the Timeout",
    ),
];

/// One function of the object: its name (hash removed) and frame size.
struct Frame {
    name: String,
    size: u64,
    probe: bool,
}

/// The step.
pub(crate) fn stack_frames() -> Result<(), String> {
    let objdump = llvm_objdump()?;
    let object = build()?;
    let out = Command::new(&objdump)
        .args(["-d", "-r", "-C", "--no-show-raw-insn"])
        .arg(&object)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", objdump.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            objdump.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let frames = parse(&String::from_utf8_lossy(&out.stdout));
    if !frames
        .iter()
        .any(|f| f.name.starts_with("wsk::task::executor::Handle::spawn"))
    {
        return Err("the object has no Handle::spawn: the fixture did not instantiate it".into());
    }
    let mut failures = Vec::new();
    println!("frames of at least half a future ({BIG} bytes), opt-level 0, x86_64:");
    for f in frames.iter().filter(|f| f.size >= BIG / 2) {
        let copies = f.size / BIG;
        let caller = f.name.starts_with("stack_frames::");
        let allowed = ALLOWED
            .iter()
            .find(|(name, _, _)| f.name == *name)
            .map_or(0, |(_, n, _)| *n);
        let verdict = if caller {
            "caller (not checked)"
        } else if copies <= allowed {
            "ok"
        } else {
            failures.push(format!(
                "{}: {} bytes, {copies} copies of the future (allowed {allowed})",
                f.name, f.size
            ));
            "TOO MANY COPIES"
        };
        println!(
            "  {:>7} bytes  {copies} cop{}{}  {}  — {verdict}",
            f.size,
            if copies == 1 { "y  " } else { "ies" },
            if f.probe { "  __chkstk" } else { "" },
            f.name
        );
    }
    if failures.is_empty() {
        println!("stack-frames: every frame of wsk holds at most the copies allowed");
        Ok(())
    } else {
        Err(format!(
            "frames copying the future (see xtask/src/frames.rs):\n  {}",
            failures.join("\n  ")
        ))
    }
}

/// `llvm-objdump`: `$LLVM_OBJDUMP`, the one on `PATH`, or rustup's
/// `llvm-tools` component.
fn llvm_objdump() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LLVM_OBJDUMP") {
        return Ok(path.into());
    }
    let on_path = Command::new("llvm-objdump").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Ok("llvm-objdump".into());
    }
    let rustc = |args: &[&str]| {
        Command::new("rustc")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .map_err(|e| format!("cannot run rustc: {e}"))
    };
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?.trim());
    let version = rustc(&["-vV"])?;
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_default();
    let tool = sysroot
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-objdump");
    if tool.is_file() {
        return Ok(tool);
    }
    Err(
        "no llvm-objdump: install LLVM (`apt-get install llvm`) or `rustup component add \
         llvm-tools`, or set LLVM_OBJDUMP"
            .into(),
    )
}

/// Builds the fixture and returns its object file.
fn build() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = root.join("target/stack-frames");
    let status = cargo()
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_INCREMENTAL", "0")
        .env_remove("RUSTFLAGS")
        .args(["rustc", "--lib", "--manifest-path"])
        .arg(root.join("xtask/fixtures/stack-frames/Cargo.toml"))
        .args(["--target", "x86_64-pc-windows-msvc", "--", "--emit=obj"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the stack-frames fixture failed ({status})"
        ));
    }
    newest_object(&target_dir.join("x86_64-pc-windows-msvc/debug/deps"))
}

fn newest_object(dir: &Path) -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("stack_frames-") && name.ends_with(".o")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| format!("no stack_frames-*.o in {}", dir.display()))
}

/// The frame of every function in `llvm-objdump -d -r` output (AT&T syntax).
fn parse(disassembly: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut lines = disassembly.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .split_once(" <")
            .and_then(|(_, rest)| rest.strip_suffix(">:"))
        else {
            continue;
        };
        let mut body = Vec::new();
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() || next.ends_with(">:") {
                break;
            }
            body.push(*next);
            lines.next();
        }
        let (size, probe) = prologue(&body);
        frames.push(Frame {
            name: demangle(name),
            size,
            probe,
        });
    }
    frames.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    frames
}

/// The frame size a prologue reserves, and whether it calls `__chkstk`.
fn prologue(body: &[&str]) -> (u64, bool) {
    for (i, line) in body.iter().take(24).enumerate() {
        if let Some(n) = immediate(line, "subq", "%rsp") {
            return (n, false);
        }
        if let Some(n) = immediate(line, "movl", "%eax") {
            if body[i..].iter().take(4).any(|l| l.contains("__chkstk")) {
                return (n, true);
            }
        }
    }
    (0, false)
}

/// `N` in `<op>\t$N, <register>` (before any `# imm = …` comment).
fn immediate(line: &str, op: &str, register: &str) -> Option<u64> {
    let code = line.split_once('#').map_or(line, |(code, _)| code);
    let (_, rest) = code.split_once(op)?;
    let operand = rest.trim_start().strip_prefix('$')?;
    let (value, reg) = operand.split_once(',')?;
    if reg.trim() != register {
        return None;
    }
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// A readable name from a legacy-mangled one `llvm-objdump -C` left as it
/// was, without the hash.
fn demangle(name: &str) -> String {
    let mut s = name.strip_prefix('_').unwrap_or(name).to_string();
    for (from, to) in [
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$u20$", " "),
        ("$C$", ","),
        ("$RF$", "&"),
        ("$BP$", "*"),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("..", "::"),
    ] {
        s = s.replace(from, to);
    }
    match s.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::{demangle, parse};

    #[test]
    fn reads_both_prologues() {
        let text = "\
0000000000000000 <wsk::a::hc26f284becb86505>:
       0:      \tsubq\t$0x48, %rsp
       4:      \tretq

0000000000000000 <_$LT$wsk..b$LT$F$GT$$GT$::poll::h0123456789abcdef>:
       0:      \tmovl\t$32840, %eax            # imm = 0x8048
       5:      \tcallq\t0xa <x+0xa>
\t\t0000000000000006:  IMAGE_REL_AMD64_REL32\t__chkstk
       a:      \tsubq\t%rax, %rsp
";
        let frames = parse(text);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].name, "<wsk::b<F>>::poll");
        assert_eq!((frames[0].size, frames[0].probe), (0x8048, true));
        assert_eq!(frames[1].name, "wsk::a");
        assert_eq!((frames[1].size, frames[1].probe), (0x48, false));
        assert_eq!(demangle("core::x::h01"), "core::x::h01");
    }
}
