//! `cargo xtask driver`: build an example `cdylib` into a `.sys` and check it.

use crate::pe::{self, Image};
use crate::{cargo, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A Windows target architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub(crate) const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    pub(crate) fn parse(s: &str) -> Result<Arch, String> {
        match s {
            "x86_64" | "x64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            _ => Err(format!("unknown target `{s}`: use x86_64 or aarch64")),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    pub(crate) fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-pc-windows-msvc",
            Arch::Aarch64 => "aarch64-pc-windows-msvc",
        }
    }

    fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => pe::MACHINE_AMD64,
            Arch::Aarch64 => pe::MACHINE_ARM64,
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub(crate) struct BuildOpts {
    pub(crate) arch: Arch,
    pub(crate) debug: bool,
    pub(crate) verbose: bool,
    /// Build an out-of-tree crate instead of `examples/<name>`.
    pub(crate) manifest: Option<PathBuf>,
}

/// The example driver crates: every `examples/*/Cargo.toml` building a
/// `cdylib` (the support library `driver-rt` is not one).
pub(crate) fn example_drivers() -> Vec<String> {
    let dir = workspace_root().join("examples");
    let mut names = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let manifest = e.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            let is_cdylib = text
                .lines()
                .any(|l| l.trim_start().starts_with("crate-type") && l.contains("cdylib"));
            if is_cdylib {
                names.push(
                    package_name(&text)
                        .unwrap_or_else(|| e.file_name().to_string_lossy().into_owned()),
                );
            }
        }
    }
    names.sort();
    names
}

/// The `name = "…"` of the `[package]` table (a line-based read is enough
/// for this repository's manifests).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(v) = line.strip_prefix("name") {
                let v = v.trim_start().strip_prefix('=')?.trim();
                return Some(v.trim_matches('"').to_string());
            }
        }
    }
    None
}

/// Builds `name` (a package of the workspace, or the crate at
/// `opts.manifest`), copies it to `target/drivers/<arch>/[debug/]<name>.sys`
/// and checks the image. Prints one summary line (and the imports when
/// verbose). Returns the `.sys` path.
pub(crate) fn build(name: &str, opts: &BuildOpts) -> Result<PathBuf, String> {
    let mut cmd = cargo();
    cmd.arg("build")
        .args(["--target", opts.arch.triple()])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    if !opts.debug {
        cmd.arg("--release");
    }
    match &opts.manifest {
        Some(m) => cmd.arg("--manifest-path").arg(m),
        None => cmd.current_dir(workspace_root()).args(["-p", name]),
    };
    let out = cmd
        .spawn()
        .and_then(std::process::Child::wait_with_output)
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build of `{name}` for {} failed",
            opts.arch.triple()
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut dll = None;
    for line in stdout.lines() {
        if line.contains("\"reason\":\"compiler-artifact\"") {
            for f in json_string_array(line, "filenames") {
                if Path::new(&f)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("dll"))
                {
                    dll = Some(PathBuf::from(f));
                }
            }
        }
    }
    let dll = dll.ok_or_else(|| {
        format!("`{name}` produced no .dll: is it a `crate-type = [\"cdylib\"]` crate?")
    })?;

    // <target-dir>/<triple>/<profile>/<file>
    let target_dir = dll
        .ancestors()
        .nth(3)
        .ok_or("unexpected artifact path")?
        .to_path_buf();
    let mut out_dir = target_dir.join("drivers").join(opts.arch.name());
    if opts.debug {
        out_dir.push("debug");
    }
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let sys = out_dir.join(format!("{name}.sys"));
    std::fs::copy(&dll, &sys).map_err(|e| format!("copy to {}: {e}", sys.display()))?;
    let pdb = dll.with_extension("pdb");
    if pdb.exists() {
        // Best effort: symbols next to the driver for WinDbg.
        let _ = std::fs::copy(&pdb, out_dir.join(format!("{name}.pdb")));
    }

    let image = check(&sys, opts.arch)?;
    println!(
        "{name}: {} {} -> {} ({} bytes)",
        opts.arch.triple(),
        if opts.debug { "debug" } else { "release" },
        rel(&sys).display(),
        image.file_size
    );
    println!("  {}", image.summary());
    if opts.verbose {
        for imp in &image.imports {
            println!("  {}:", imp.dll);
            for f in &imp.functions {
                println!("    {f}");
            }
        }
    }
    Ok(sys)
}

/// Parses and checks a `.sys` file; the error lists every problem.
pub(crate) fn check(sys: &Path, arch: Arch) -> Result<Image, String> {
    let bytes = std::fs::read(sys).map_err(|e| format!("{}: {e}", sys.display()))?;
    let image = Image::parse(&bytes).map_err(|e| format!("{}: {e}", sys.display()))?;
    let problems = image.driver_problems(arch.machine());
    if problems.is_empty() {
        Ok(image)
    } else {
        Err(format!(
            "{} is not a valid {} kernel driver:\n  - {}",
            sys.display(),
            arch.name(),
            problems.join("\n  - ")
        ))
    }
}

/// `path` relative to the current directory when it is below it.
pub(crate) fn rel(path: &Path) -> &Path {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .unwrap_or(path)
}

/// The strings of the JSON array `"key":[…]` in one line of cargo's JSON
/// output (a targeted reader: cargo's messages are machine-generated).
pub(crate) fn json_string_array(line: &str, key: &str) -> Vec<String> {
    let pat = format!("\"{key}\":[");
    let Some(start) = line.find(&pat) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut chars = line[start + pat.len()..].chars();
    let mut cur: Option<String> = None;
    while let Some(c) = chars.next() {
        match (&mut cur, c) {
            (None, ']') => break,
            (None, '"') => cur = Some(String::new()),
            (None, _) => {}
            (Some(s), '"') => {
                out.push(std::mem::take(s));
                cur = None;
            }
            (Some(s), '\\') => match chars.next() {
                Some('n') => s.push('\n'),
                Some('t') => s.push('\t'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        s.push(ch);
                    }
                }
                Some(other) => s.push(other),
                None => break,
            },
            (Some(s), _) => s.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_filenames() {
        let line = r#"{"reason":"compiler-artifact","filenames":["C:\\t\\a.dll","/x/b \"q\".pdb"],"fresh":true}"#;
        assert_eq!(
            json_string_array(line, "filenames"),
            ["C:\\t\\a.dll", "/x/b \"q\".pdb"]
        );
        assert!(json_string_array(line, "missing").is_empty());
    }

    #[test]
    fn reads_package_name() {
        let m = "[package]\nname = \"echo-server\"\n[lib]\nname = \"x\"\n";
        assert_eq!(package_name(m).as_deref(), Some("echo-server"));
    }
}
