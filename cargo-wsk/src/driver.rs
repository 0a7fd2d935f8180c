//! Building a driver crate into a checked `.sys`.
//!
//! A driver crate is a `cdylib` (`#![no_std]`, `panic = "abort"`) whose
//! build script emits the kernel link arguments (`wsk_driver::build`); this
//! module runs `cargo build` for a Windows target with the toolchain's own
//! `rust-lld` as the linker (`CARGO_TARGET_<TRIPLE>_LINKER`, unless the
//! caller's environment sets it), copies the DLL to
//! `<target-dir>/drivers/<arch>/[debug/]<name>.sys` and checks the image:
//! the PE rules of [`Image::driver_problems`] and the imports against the
//! oldest Windows release the crate supports ([`crate::imports`]).

use crate::imports::{self, ImportCheck};
use crate::json::Value;
use crate::pe::Image;
use crate::windows::{Arch, Windows};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The cargo that runs us (`$CARGO`), else `cargo` from `PATH`.
#[must_use]
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// A driver crate, as `cargo metadata` describes it.
#[derive(Debug, Clone)]
pub struct Project {
    /// The package name (also the `.sys` and service name).
    pub name: String,
    /// Its `Cargo.toml`.
    pub manifest: PathBuf,
    /// The directory holding `Cargo.toml`.
    pub dir: PathBuf,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
    /// The package version.
    pub version: String,
    /// The oldest release supported on `x86_64` and `aarch64`, from
    /// `[package.metadata.wsk]` or the defaults of [`Arch::oldest`].
    pub oldest: [Windows; 2],
}

impl Project {
    /// Finds the driver crate: the package `package` of the workspace at
    /// `manifest` (or of the current directory), else the one package of it
    /// that is a `cdylib`, else the one whose directory holds the current
    /// directory.
    ///
    /// # Errors
    ///
    /// When `cargo metadata` fails, or no single driver package matches.
    pub fn locate(manifest: Option<&Path>, package: Option<&str>) -> Result<Project, String> {
        let mut cmd = cargo();
        cmd.args(["metadata", "--no-deps", "--format-version", "1"])
            .stderr(Stdio::inherit());
        if let Some(m) = manifest {
            cmd.arg("--manifest-path").arg(m);
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err("`cargo metadata` failed: is this a cargo project?".into());
        }
        let meta = Value::parse(&String::from_utf8_lossy(&out.stdout))?;
        let target_dir = meta
            .get("target_directory")
            .and_then(Value::as_str)
            .ok_or("cargo metadata: no target_directory")?;
        let packages = meta.get("packages").map(Value::items).unwrap_or_default();
        let is_cdylib = |p: &Value| {
            p.get("targets")
                .map(Value::items)
                .unwrap_or_default()
                .iter()
                .any(|t| {
                    t.get("crate_types")
                        .map(Value::items)
                        .unwrap_or_default()
                        .iter()
                        .any(|k| k.as_str() == Some("cdylib"))
                })
        };
        let name_of = |p: &Value| {
            p.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let chosen = if let Some(want) = package {
            packages
                .iter()
                .find(|p| name_of(p) == want)
                .ok_or_else(|| format!("no package `{want}` in this workspace"))?
        } else {
            let drivers: Vec<&Value> = packages.iter().filter(|p| is_cdylib(p)).collect();
            let cwd = std::env::current_dir().unwrap_or_default();
            let here = drivers
                .iter()
                .copied()
                .filter(|p| {
                    p.get("manifest_path")
                        .and_then(Value::as_str)
                        .and_then(|m| Path::new(m).parent())
                        .is_some_and(|d| cwd.starts_with(d))
                })
                .max_by_key(|p| {
                    p.get("manifest_path")
                        .and_then(Value::as_str)
                        .map_or(0, str::len)
                });
            match (here, drivers.as_slice()) {
                (Some(p), _) => p,
                (None, [p]) => *p,
                (None, []) => {
                    return Err(
                        "no `crate-type = [\"cdylib\"]` package here: is this a driver crate?"
                            .into(),
                    );
                }
                (None, many) => {
                    let names: Vec<String> = many.iter().map(|p| name_of(p)).collect();
                    return Err(format!(
                        "several driver packages ({}); choose one with -p NAME",
                        names.join(", ")
                    ));
                }
            }
        };
        if !is_cdylib(chosen) {
            return Err(format!(
                "package `{}` is not a driver: its [lib] needs crate-type = [\"cdylib\"]",
                name_of(chosen)
            ));
        }
        let manifest = PathBuf::from(
            chosen
                .get("manifest_path")
                .and_then(Value::as_str)
                .ok_or("cargo metadata: no manifest_path")?,
        );
        let oldest = oldest_from_metadata(chosen.get("metadata").and_then(|m| m.get("wsk")))?;
        Ok(Project {
            name: name_of(chosen),
            dir: manifest.parent().unwrap_or(Path::new(".")).to_path_buf(),
            manifest,
            target_dir: PathBuf::from(target_dir),
            version: chosen
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("0.0.0")
                .to_string(),
            oldest,
        })
    }

    /// The oldest release supported on `arch`.
    #[must_use]
    pub fn oldest(&self, arch: Arch) -> Windows {
        match arch {
            Arch::X86_64 => self.oldest[0],
            Arch::Aarch64 => self.oldest[1],
        }
    }

    /// Where [`build`] puts the `.sys` for `arch`.
    #[must_use]
    pub fn sys_path(&self, arch: Arch, release: bool) -> PathBuf {
        let mut dir = self.target_dir.join("drivers").join(arch.name());
        if !release {
            dir.push("debug");
        }
        dir.join(format!("{}.sys", self.name))
    }
}

/// The oldest supported releases from `[package.metadata.wsk]`, defaults
/// where a key is absent.
fn oldest_from_metadata(wsk: Option<&Value>) -> Result<[Windows; 2], String> {
    let mut oldest = [Arch::X86_64.oldest(), Arch::Aarch64.oldest()];
    for (slot, arch) in oldest.iter_mut().zip(Arch::ALL) {
        let key = format!("oldest-windows-{}", arch.name());
        if let Some(text) = wsk.and_then(|w| w.get(&key)).and_then(Value::as_str) {
            let release =
                Windows::parse(text).map_err(|e| format!("[package.metadata.wsk] {key}: {e}"))?;
            if release < arch.oldest() {
                return Err(format!(
                    "[package.metadata.wsk] {key} = \"{text}\": {} drivers cannot support \
                     releases before {}",
                    arch.name(),
                    arch.oldest()
                ));
            }
            *slot = release;
        }
    }
    Ok(oldest)
}

/// What to build.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// The target architecture.
    pub arch: Arch,
    /// `--release` (else the dev profile).
    pub release: bool,
    /// Fail on imports [`crate::imports::TABLE`] does not know (else they
    /// are only listed).
    pub strict_imports: bool,
}

/// A built and checked driver.
#[derive(Debug, Clone)]
pub struct Built {
    /// The `.sys` file.
    pub sys: PathBuf,
    /// What the image says.
    pub image: Image,
    /// The import check against the oldest supported release.
    pub imports: ImportCheck,
    /// That release.
    pub oldest: Windows,
}

impl Built {
    /// A one-line summary and the import check, for a terminal.
    #[must_use]
    pub fn describe(&self, name: &str, arch: Arch, release: bool) -> String {
        let mut s = format!(
            "{name}: {} {} -> {} ({} bytes)\n  {}\n  imports: {} checked against {} (oldest supported on {arch})",
            arch.triple(),
            if release { "release" } else { "debug" },
            relative(&self.sys).display(),
            self.image.file_size,
            self.image.summary(),
            self.imports.checked,
            self.oldest,
        );
        for u in &self.imports.unknown {
            let _ = write!(
                s,
                "\n  warning: {u} is not in cargo-wsk's import table: its minimum Windows version is unchecked"
            );
            if let Some(hint) = imports::unknown_hint(u) {
                let _ = write!(s, "\n    ({hint})");
            }
        }
        s
    }
}

/// The environment variable naming the linker for `arch`'s target.
#[must_use]
pub fn linker_variable(arch: Arch) -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        arch.triple().to_ascii_uppercase().replace('-', "_")
    )
}

/// Builds `project` for `opts.arch`, copies it to [`Project::sys_path`] (the
/// `.pdb` beside it) and checks it.
///
/// # Panics
///
/// Never: [`Project::sys_path`] always has a parent directory.
///
/// # Errors
///
/// When cargo fails, produces no DLL, or the image fails a check (every
/// problem is listed).
pub fn build(project: &Project, opts: &BuildOptions) -> Result<Built, String> {
    let mut cmd = cargo();
    cmd.args(["build", "--lib", "--target", opts.arch.triple()])
        .arg("--manifest-path")
        .arg(&project.manifest)
        .args(["-p", &project.name])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    if opts.release {
        cmd.arg("--release");
    }
    let linker = linker_variable(opts.arch);
    if std::env::var_os(&linker).is_none() {
        cmd.env(&linker, "rust-lld");
    }
    let out = cmd
        .spawn()
        .and_then(std::process::Child::wait_with_output)
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build of `{}` for {} failed",
            project.name,
            opts.arch.triple()
        ));
    }
    let mut dll = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = Value::parse(line) else {
            continue;
        };
        if msg.get("reason").and_then(Value::as_str) != Some("compiler-artifact") {
            continue;
        }
        let manifest = msg
            .get("manifest_path")
            .and_then(Value::as_str)
            .map(PathBuf::from);
        if manifest.as_deref() != Some(project.manifest.as_path()) {
            continue;
        }
        for f in msg.get("filenames").map(Value::items).unwrap_or_default() {
            if let Some(f) = f.as_str().filter(|f| {
                Path::new(f)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("dll"))
            }) {
                dll = Some(PathBuf::from(f));
            }
        }
    }
    let dll = dll.ok_or_else(|| {
        format!(
            "`{}` produced no .dll: is it a `crate-type = [\"cdylib\"]` crate?",
            project.name
        )
    })?;
    let sys = project.sys_path(opts.arch, opts.release);
    let dir = sys.parent().expect("sys_path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::copy(&dll, &sys).map_err(|e| format!("copy to {}: {e}", sys.display()))?;
    let pdb = dll.with_extension("pdb");
    if pdb.exists() {
        // Best effort: symbols next to the driver for WinDbg.
        let _ = std::fs::copy(&pdb, sys.with_extension("pdb"));
    }
    let oldest = project.oldest(opts.arch);
    let (image, imports) = check(&sys, opts.arch, oldest, opts.strict_imports)?;
    Ok(Built {
        sys,
        image,
        imports,
        oldest,
    })
}

/// Parses and checks a `.sys`: the PE rules for `arch` and its imports
/// against `oldest`. The error lists every problem.
///
/// # Errors
///
/// When the file cannot be read or parsed, or fails a check.
pub fn check(
    sys: &Path,
    arch: Arch,
    oldest: Windows,
    strict_imports: bool,
) -> Result<(Image, ImportCheck), String> {
    let bytes = std::fs::read(sys).map_err(|e| format!("{}: {e}", sys.display()))?;
    let image = Image::parse(&bytes).map_err(|e| format!("{}: {e}", sys.display()))?;
    let mut problems = image.driver_problems(arch.machine());
    let imports = imports::check(&image.imports, oldest);
    problems.extend(imports.problems.iter().cloned());
    if strict_imports {
        problems.extend(imports.unknown.iter().map(|u| {
            let hint = imports::unknown_hint(u).map_or_else(String::new, |h| format!(" ({h})"));
            format!(
                "{u}: not in cargo-wsk's import table, so its minimum Windows version is unknown{hint}"
            )
        }));
    }
    if problems.is_empty() {
        Ok((image, imports))
    } else {
        Err(format!(
            "{} is not a valid {} kernel driver for {oldest} and later:\n  - {}",
            sys.display(),
            arch.name(),
            problems.join("\n  - ")
        ))
    }
}

/// `path` relative to the current directory when it is below it.
#[must_use]
pub fn relative(path: &Path) -> &Path {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .unwrap_or(path)
}
