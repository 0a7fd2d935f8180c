//! The CI step `outside`: a driver made by `cargo wsk new` in a directory
//! outside the workspace, depending on this repository's crates exactly as
//! a registry would serve them.
//!
//! 1. `cargo package` the published crates (`wsk-sys`, `wsk-macros`, `wsk`,
//!    `wsk-sim`, `wsk-driver`, `cargo-wsk`).
//! 2. Build a directory source (`[source.crates-io] replace-with`) from the
//!    `.crate` files and their registry dependencies (vendored by `cargo
//!    vendor` from a probe crate that patches crates.io with the unpacked
//!    packages): nothing resolves to the workspace.
//! 3. `cargo install cargo-wsk` from that source, then, with that
//!    `cargo-wsk`: `cargo wsk new`, `cargo test`, `cargo wsk build --strict`
//!    for `x86_64` and `aarch64`, release and debug (a debug build that
//!    imports `__chkstk` or another undocumented routine fails), `cargo wsk
//!    package` and `osslsigncode verify`,
//!    and `cargo wsk wine` until the template's lines have appeared.
//!
//! The directory is `<tmp>/wsk-outside-<hash of the workspace path>` (fixed
//! per checkout, so the target directory `target/outside` stays warm between
//! runs); it is recreated on every run.

use crate::wine::wine_dir;
use crate::{cargo, workspace_root};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The published crates, in dependency order.
pub(crate) const PUBLISHED: &[&str] = &[
    "wsk-sys",
    "wsk-macros",
    "wsk",
    "wsk-sim",
    "wsk-driver",
    "cargo-wsk",
];

/// The name of the driver the step creates.
const DRIVER: &str = "outsidedrv";

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let t = Instant::now();
    let quiet = what.starts_with("unpack") || what == "sha256sum";
    if !quiet {
        println!("outside: {what}");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("{what} failed ({}):\n{text}", out.status));
    }
    if !quiet {
        println!("outside:   ok ({:.0} s)", t.elapsed().as_secs_f64());
    }
    Ok(text)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A stable, per-checkout directory under the system's temporary directory.
fn work_dir() -> PathBuf {
    // FNV-1a of the workspace path: distinct checkouts get distinct dirs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in workspace_root().to_string_lossy().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    std::env::temp_dir().join(format!("wsk-outside-{h:016x}"))
}

/// `tar -xzf <crate> -C <dir>`; returns the unpacked `<name>-<version>` dir.
fn unpack(krate: &Path, dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(krate)
            .arg("-C")
            .arg(dir),
        &format!("unpack {}", krate.display()),
    )?;
    let stem = krate
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".crate"))
        .ok_or_else(|| format!("{}: not a .crate", krate.display()))?;
    Ok(dir.join(stem))
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = run(Command::new("sha256sum").arg(path), "sha256sum")?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| "sha256sum printed nothing".into())
}

/// The step.
pub(crate) fn outside() -> Result<(), String> {
    let started = Instant::now();
    let root = workspace_root();
    let work = work_dir();
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    }
    let target_dir = root.join("target").join("outside");
    // Cargo takes a registry (or directory-source) package as immutable per
    // version: artefacts built from an earlier `wsk 0.1.0` would be reused
    // for today's. Build from nothing, as a new user does.
    if target_dir.exists() {
        std::fs::remove_dir_all(&target_dir)
            .map_err(|e| format!("{}: {e}", target_dir.display()))?;
    }

    // 1. The packages, as `cargo publish` would upload them.
    let mut package = cargo();
    package
        .current_dir(&root)
        .args(["package", "--no-verify", "--allow-dirty"]);
    for p in PUBLISHED {
        package.args(["-p", p]);
    }
    run(&mut package, "cargo package (the published crates)")?;
    let version = env!("CARGO_PKG_VERSION");
    let crates: Vec<PathBuf> = PUBLISHED
        .iter()
        .map(|p| {
            root.join("target/package")
                .join(format!("{p}-{version}.crate"))
        })
        .collect();

    // 2a. Registry dependencies of the packages: a probe crate that patches
    // crates.io with the unpacked packages, vendored by cargo.
    let unpacked = work.join("unpacked");
    let mut dirs = Vec::new();
    for c in &crates {
        dirs.push(unpack(c, &unpacked)?);
    }
    let mut probe = String::from(
        "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]\n",
    );
    for p in PUBLISHED {
        let _ = writeln!(probe, "{p} = \"{version}\"");
    }
    probe.push_str("\n[patch.crates-io]\n");
    for (p, d) in PUBLISHED.iter().zip(&dirs) {
        let _ = writeln!(probe, "{p} = {{ path = {:?} }}", d.display().to_string());
    }
    write(&work.join("probe/Cargo.toml"), &probe)?;
    write(&work.join("probe/src/lib.rs"), "")?;
    let vendor = work.join("vendor");
    run(
        cargo()
            .current_dir(work.join("probe"))
            .args(["vendor", "--versioned-dirs"])
            .arg(&vendor),
        "cargo vendor (registry dependencies of the packages)",
    )?;
    // 2b. The packages themselves, as a directory source holds them.
    for c in &crates {
        let dir = unpack(c, &vendor)?;
        write(
            &dir.join(".cargo-checksum.json"),
            &format!("{{\"files\":{{}},\"package\":\"{}\"}}", sha256(c)?),
        )?;
    }
    write(
        &work.join(".cargo/config.toml"),
        &format!(
            "[source.crates-io]\nreplace-with = \"wsk-packages\"\n\n[source.wsk-packages]\ndirectory = {:?}\n",
            vendor.display().to_string()
        ),
    )?;

    let bin = work.join("bin");
    install_and_use(&work, &target_dir, &bin)?;
    println!(
        "outside: passed in {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        work.display()
    );
    Ok(())
}

/// Step 3: the user's side, with only the directory source: install
/// `cargo-wsk`, then create, test, build, package and run the driver.
fn install_and_use(work: &Path, target_dir: &Path, bin: &Path) -> Result<(), String> {
    run(
        cargo()
            .current_dir(work)
            .env("CARGO_TARGET_DIR", target_dir.join("install"))
            // `cargo install` ignores the configuration of the current
            // directory: name the source replacement explicitly.
            .arg("--config")
            .arg(work.join(".cargo/config.toml"))
            .args(["install", "cargo-wsk", "--offline", "--root"])
            .arg(bin),
        "cargo install cargo-wsk (from the packaged crates)",
    )?;
    let path = std::env::join_paths(
        std::iter::once(bin.join("bin")).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .map_err(|e| e.to_string())?;
    let user = |dir: &Path| {
        let mut c = Command::new("cargo");
        c.current_dir(dir)
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", target_dir.join("driver"))
            .env_remove("CARGO")
            .env_remove("RUSTFLAGS")
            .arg("--offline");
        c
    };
    run(user(work).args(["wsk", "new", DRIVER]), "cargo wsk new")?;
    let project = work.join(DRIVER);
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap_or_default();
    if manifest.contains("[patch") || manifest.contains("path =") {
        return Err(format!(
            "the new crate depends on paths, not on the registry:\n{manifest}"
        ));
    }
    run(
        user(&project).arg("test"),
        "cargo test (host tests through wsk-sim)",
    )?;
    for target in ["x86_64", "aarch64"] {
        let out = run(
            user(&project).args(["wsk", "build", "--release", "--strict", "--target", target]),
            &format!("cargo wsk build --release --target {target}"),
        )?;
        print_indented(&out);
    }
    // The debug builds a user makes first (`cargo wsk build`): unoptimised
    // code has larger frames, and a frame over a page imports the stack
    // probe `__chkstk`, which no Microsoft page documents as an ntoskrnl.exe
    // export; `--strict` fails on it as on any undocumented import.
    for target in ["x86_64", "aarch64"] {
        let out = run(
            user(&project).args(["wsk", "build", "--strict", "--target", target]),
            &format!("cargo wsk build --target {target} (debug)"),
        )?;
        print_indented(&out);
    }
    let out = run(user(&project).args(["wsk", "package"]), "cargo wsk package")?;
    print_indented(&out);
    let packaged = target_dir.join(format!("driver/wsk/package/x86_64/{DRIVER}"));
    let cert = target_dir.join("driver/wsk/test-signing/test-signing.crt");
    let verified = run(
        Command::new("osslsigncode")
            .arg("verify")
            .arg("-CAfile")
            .arg(&cert)
            .arg("-in")
            .arg(packaged.join(format!("{DRIVER}.sys"))),
        "osslsigncode verify (the packaged .sys)",
    )?;
    if !verified.contains("Signature verification: ok") {
        return Err(format!("osslsigncode verify:\n{verified}"));
    }
    for f in [format!("{DRIVER}.inf"), format!("{DRIVER}-test.cer")] {
        if !packaged.join(&f).is_file() {
            return Err(format!("the package lacks {f}"));
        }
    }
    let mut wine = user(&project);
    wine.args(["wsk", "wine", "--release", "--timeout", "60", "--wine-dir"])
        .arg(wine_dir());
    let port = crate::peer::free_port().map_err(|e| format!("no free port: {e}"))?;
    wine.args(["--param", &format!("Port={port}")]);
    for line in cargo_wsk::template::WINE_EXPECT {
        wine.args(["--expect", line]);
    }
    // The loopback peer: one connection, an echo, a graceful close, while
    // `cargo wsk wine` streams the driver's lines.
    let peer = std::thread::spawn(move || crate::template_peer(port));
    let out = run(
        &mut wine,
        "cargo wsk wine (under Wine, with a loopback client)",
    );
    let peer = peer
        .join()
        .unwrap_or_else(|_| Err("the peer thread panicked".into()));
    let out = out?;
    print_indented(&out);
    println!("outside: peer: {}", peer?);
    for line in cargo_wsk::template::WINE_AFTER_STOP {
        if !out.lines().any(|l| l.contains(line)) {
            return Err(format!(
                "cargo wsk wine: no line containing {line:?} after the stop"
            ));
        }
    }
    Ok(())
}

fn print_indented(text: &str) {
    for l in text
        .lines()
        .filter(|l| !l.trim_start().starts_with("Compiling"))
    {
        println!("    {l}");
    }
}
