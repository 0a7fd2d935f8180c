//! `cargo xtask driver`: build an example `cdylib` into a `.sys` and check it,
//! through `cargo-wsk`'s library (the same code as `cargo wsk build`).

use crate::workspace_root;
use cargo_wsk::driver::{self as wsk_driver, BuildOptions, Project};
pub(crate) use cargo_wsk::windows::Arch;
use std::path::PathBuf;

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
/// `cdylib`.
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
/// `opts.manifest`) with `cargo_wsk::driver::build`: the `.sys` lands in
/// `target/drivers/<arch>/[debug/]<name>.sys`, checked, with every import
/// in `cargo-wsk`'s table and present on the oldest supported Windows.
/// Prints the summary (and the imports when verbose). Returns the `.sys`.
pub(crate) fn build(name: &str, opts: &BuildOpts) -> Result<PathBuf, String> {
    let project = match &opts.manifest {
        Some(m) => Project::locate(Some(m), None)?,
        None => Project::locate(Some(&workspace_root().join("Cargo.toml")), Some(name))?,
    };
    let release = !opts.debug;
    let built = wsk_driver::build(
        &project,
        &BuildOptions {
            arch: opts.arch,
            release,
            strict_imports: true,
        },
    )?;
    println!("{}", built.describe(&project.name, opts.arch, release));
    if opts.verbose {
        for imp in &built.image.imports {
            println!("  {}:", imp.dll);
            for f in &imp.functions {
                let since = cargo_wsk::imports::lookup(&imp.dll, f)
                    .map_or_else(|| "?".to_string(), |r| format!("{:?}", r.availability));
                println!("    {f:<34} {since}");
            }
        }
    }
    Ok(built.sys)
}

/// Checks a prebuilt `.sys` for `arch` against the default oldest release.
pub(crate) fn check(sys: &std::path::Path, arch: Arch) -> Result<(), String> {
    wsk_driver::check(sys, arch, arch.oldest(), true).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_package_name() {
        let m = "[package]\nname = \"echo-server\"\n[lib]\nname = \"x\"\n";
        assert_eq!(package_name(m).as_deref(), Some("echo-server"));
    }

    /// Every routine `wsk-sys` imports from `ntoskrnl.exe` or `netio.sys`
    /// has a row (with Microsoft sources) in `cargo-wsk`'s import table.
    #[test]
    fn the_import_table_covers_wsk_sys() {
        let root = workspace_root().join("wsk-sys/src");
        let mut declared = Vec::new();
        for file in ["km.rs", "wsk.rs", "netioddk.rs"] {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let mut in_imports = false;
            for line in text.lines() {
                if line.contains("kind = \"raw-dylib\"") {
                    in_imports = true;
                } else if in_imports && line.starts_with('}') {
                    in_imports = false;
                } else if in_imports {
                    if let Some(rest) = line.trim().strip_prefix("pub fn ") {
                        declared.push(rest.split('(').next().unwrap().to_string());
                    }
                }
            }
        }
        assert!(declared.len() > 50, "found {declared:?}");
        for name in &declared {
            assert!(
                cargo_wsk::imports::TABLE.iter().any(|r| r.name == name),
                "{name} is imported by wsk-sys but missing from cargo-wsk's import table"
            );
        }
    }
}
