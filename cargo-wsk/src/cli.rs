//! The `cargo wsk` command line.

use crate::driver::{self, BuildOptions, Built, Project, relative};
use crate::package;
use crate::template;
use crate::windows::Arch;
use crate::wine::{self, RegValue, Session, Wine};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The first lines of `cargo wsk help`.
const HEADER: &str = "\
cargo wsk <command> [options]   (Windows WSK kernel drivers in Rust, on any host)

Commands:
";

/// Each command's name and usage: its synopsis, then what it does.
const COMMANDS: &[(&str, &str)] = &[
    (
        "new",
        "  new NAME [--registry]
      Create the driver crate NAME/: a TCP echo server using wsk and
      wsk-driver, with host tests through wsk-sim. When cargo-wsk was
      installed from a checkout of the wsk repository, the crate takes wsk's
      crates from that checkout ([patch.crates-io]); --registry: never.
",
    ),
    (
        "build",
        "  build [--target x86_64|aarch64] [--release] [-p NAME] [--manifest-path PATH] [--strict]
      Build the driver crate into <target-dir>/drivers/<arch>/[debug/]NAME.sys
      with the toolchain's rust-lld, and check it: machine, subsystem NATIVE,
      entry point, checksum, NX, imports only from ntoskrnl.exe and netio.sys,
      and every import present on the oldest Windows release the crate
      supports ([package.metadata.wsk] oldest-windows-x86_64 /
      oldest-windows-aarch64; defaults: Vista on x86_64, Windows 10 1709 on
      aarch64). --strict also fails on imports the table does not know.
",
    ),
    (
        "package",
        "  package [--target x86_64|aarch64] [--debug] [-p NAME] [--manifest-path PATH] [--strict]
      Build (release by default), then write
      <target-dir>/wsk/package/<arch>/NAME/: NAME.sys with an embedded test
      signature (osslsigncode, SHA-256), NAME.inf (a legacy kernel service)
      and NAME-test.cer (the generated test certificate); verify the
      signature with osslsigncode verify. --strict as for build. Needs:
      sudo apt-get install osslsigncode openssl.
",
    ),
    (
        "wine",
        "  wine [--param NAME=VALUE]... [--timeout S] [--expect PATTERN]... [--release]
       [--wine-dir DIR] [-p NAME] [--manifest-path PATH] [--strict]
      Build for x86_64 (debug unless --release) and run the driver as a
      kernel service in Wine (Debian's wine64): set its Parameters
      (VALUE: sz:TEXT is a REG_SZ, dword:N a REG_DWORD; without a prefix a
      decimal or 0x number below 2^32 is a REG_DWORD and anything else a
      REG_SZ), sc start it, stream its DbgPrint lines, and on Ctrl-C, after
      S seconds, or once lines matching every --expect pattern (in order; *
      matches any text) have appeared, sc stop it and report whether it
      unloaded cleanly. Without --timeout or --expect it runs until
      Ctrl-C; in a script, give it an end:
        cargo wsk wine --release --timeout 60 --expect \"listening on\"
      Wine's prefix is DIR/prefix, created on first use (~10 s, ~700 MB);
      the Wine logs and the run lock are in DIR (default
      ~/.cache/cargo-wsk/wine, or $XDG_CACHE_HOME/cargo-wsk/wine).
",
    ),
];

/// The usage of `help` itself.
const HELP_USAGE: &str = "  help [COMMAND]
      This text, or only COMMAND's part of it (as cargo wsk COMMAND --help
      or -h prints it).
";

/// `cargo wsk help`: every command's usage.
fn help() -> String {
    let mut text = HEADER.to_string();
    for (_, usage) in COMMANDS {
        text.push_str(usage);
        text.push('\n');
    }
    text.push_str(HELP_USAGE);
    text
}

/// `cargo wsk COMMAND --help`: that command's usage; `None` for an unknown
/// command.
fn help_for(command: &str) -> Option<String> {
    let usage = match command {
        "help" => HELP_USAGE,
        _ => COMMANDS.iter().find(|(name, _)| *name == command)?.1,
    };
    Some(format!("usage: cargo wsk {}", usage.trim_start()))
}

/// Set by the SIGINT handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C set [`INTERRUPTED`] instead of ending the process.
#[cfg(unix)]
fn catch_ctrl_c() {
    extern "C" fn on_sigint(_signal: i32) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }
    unsafe extern "C" {
        /// POSIX `signal(2)`; the handler type is `void (*)(int)`.
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    const SIGINT: i32 = 2;
    // SAFETY: `on_sigint` only stores to an atomic, which is
    // async-signal-safe, and stays valid for the life of the process.
    unsafe { signal(SIGINT, on_sigint) };
}

#[cfg(not(unix))]
fn catch_ctrl_c() {}

/// Parsed options.
#[derive(Debug, Default)]
#[allow(clippy::struct_excessive_bools)] // one per flag
struct Args {
    positional: Vec<String>,
    target: Option<String>,
    release: bool,
    debug: bool,
    strict: bool,
    registry: bool,
    help: bool,
    package: Option<String>,
    manifest: Option<PathBuf>,
    params: Vec<(String, RegValue)>,
    expect: Vec<String>,
    timeout: Option<Duration>,
    wine_dir: Option<PathBuf>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--target" => a.target = Some(value("--target")?),
            "--release" | "-r" => a.release = true,
            "--debug" => a.debug = true,
            "--strict" => a.strict = true,
            "--registry" => a.registry = true,
            "--help" | "-h" => a.help = true,
            "-p" | "--package" => a.package = Some(value("--package")?),
            "--manifest-path" => a.manifest = Some(value("--manifest-path")?.into()),
            "--wine-dir" => a.wine_dir = Some(value("--wine-dir")?.into()),
            "--expect" => a.expect.push(value("--expect")?),
            "--param" => {
                let p = value("--param")?;
                let (name, v) = p
                    .split_once('=')
                    .ok_or_else(|| format!("--param {p}: write NAME=VALUE"))?;
                let v = RegValue::parse(v).map_err(|e| format!("--param {name}={e}"))?;
                a.params.push((name.to_string(), v));
            }
            "--timeout" => {
                let t = value("--timeout")?;
                let secs: f64 = t
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--timeout {t}: a number of seconds"))?;
                a.timeout = Some(Duration::from_secs_f64(secs));
            }
            s if s.starts_with('-') => {
                return Err(format!("unknown option `{s}`"));
            }
            _ => a.positional.push(arg),
        }
    }
    Ok(a)
}

/// Runs `cargo wsk` with the process arguments; the exit code.
#[must_use]
pub fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    // `cargo wsk …` runs `cargo-wsk wsk …`.
    if argv.peek().map(String::as_str) == Some("wsk") {
        argv.next();
    }
    match run(argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut argv: impl Iterator<Item = String>) -> Result<(), String> {
    let command = argv.next().unwrap_or_else(|| "help".into());
    let command = match command.as_str() {
        "--help" | "-h" => "help".to_string(),
        _ => command,
    };
    let a = parse(argv).map_err(|e| match help_for(&command) {
        Some(_) => format!("{e}; see `cargo wsk {command} --help`"),
        None => format!("{e}; see `cargo wsk help`"),
    })?;
    if a.help {
        let usage = help_for(&command)
            .ok_or_else(|| format!("unknown command `{command}`; see `cargo wsk help`"))?;
        print!("{usage}");
        return Ok(());
    }
    match command.as_str() {
        "help" => match a.positional.as_slice() {
            [] => {
                print!("{}", help());
                Ok(())
            }
            [topic] => {
                let usage = help_for(topic)
                    .ok_or_else(|| format!("unknown command `{topic}`; see `cargo wsk help`"))?;
                print!("{usage}");
                Ok(())
            }
            _ => Err("usage: cargo wsk help [COMMAND]".into()),
        },
        "new" => new(&a),
        "build" => build(&a).map(drop),
        "package" => package(&a),
        "wine" => run_wine(&a),
        other => Err(format!("unknown command `{other}`; see `cargo wsk help`")),
    }
}

fn new(a: &Args) -> Result<(), String> {
    let [name] = a.positional.as_slice() else {
        return Err("usage: cargo wsk new NAME [--registry] (see `cargo wsk new --help`)".into());
    };
    let checkout = if a.registry {
        None
    } else {
        template::installed_from_checkout()
    };
    let dir = PathBuf::from(name);
    template::create(&dir, name, checkout.as_deref())?;
    println!("created the driver crate `{name}` in {}", dir.display());
    if let Some(repo) = checkout {
        println!(
            "  (wsk's crates come from the checkout {}: see [patch.crates-io] in {name}/Cargo.toml)",
            repo.display()
        );
    }
    print!("{}", template::next_steps(name));
    Ok(())
}

fn locate(a: &Args) -> Result<Project, String> {
    Project::locate(a.manifest.as_deref(), a.package.as_deref())
}

fn arch(a: &Args) -> Result<Arch, String> {
    Arch::parse(a.target.as_deref().unwrap_or("x86_64"))
}

fn build_with(project: &Project, arch: Arch, release: bool, strict: bool) -> Result<Built, String> {
    let built = driver::build(
        project,
        &BuildOptions {
            arch,
            release,
            strict_imports: strict,
        },
    )?;
    println!("{}", built.describe(&project.name, arch, release));
    Ok(built)
}

fn build(a: &Args) -> Result<Built, String> {
    let project = locate(a)?;
    build_with(&project, arch(a)?, a.release, a.strict)
}

fn package(a: &Args) -> Result<(), String> {
    let project = locate(a)?;
    let arch = arch(a)?;
    let built = build_with(&project, arch, !a.debug, a.strict)?;
    let p = package::package(&project, arch, &built.sys)?;
    println!("package: {}", relative(&p.dir).display());
    for f in [&p.sys, &p.inf, &p.cer] {
        println!("  {}", f.file_name().unwrap_or_default().to_string_lossy());
    }
    let summary: Vec<&str> = p
        .verified
        .lines()
        .filter(|l| {
            l.contains("Signature verification")
                || l.starts_with("Subject:")
                || l.contains("Message digest algorithm")
        })
        .map(str::trim)
        .collect();
    println!("  osslsigncode verify: {}", summary.join("; "));
    println!(
        "  to install it on a Windows test machine: the steps head {}",
        relative(&p.inf).display()
    );
    Ok(())
}

/// `~/.cache/cargo-wsk/wine` (or `$XDG_CACHE_HOME/cargo-wsk/wine`).
fn default_wine_dir() -> Result<PathBuf, String> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or("neither XDG_CACHE_HOME nor HOME is set: pass --wine-dir DIR")?;
    Ok(cache.join("cargo-wsk").join("wine"))
}

/// Whether the parts of `pattern` between `*` occur in `line` in order.
#[must_use]
pub fn matches(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for part in pattern.split('*') {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

fn run_wine(a: &Args) -> Result<(), String> {
    let project = locate(a)?;
    let built = build_with(&project, Arch::X86_64, a.release, a.strict)?;
    let work = match &a.wine_dir {
        Some(d) => d.clone(),
        None => default_wine_dir()?,
    };
    let wine = Wine::locate(&work)?;
    wine.ensure_prefix()?;
    let _lock = wine.lock()?;
    let name = project.name.as_str();
    let mut session = Session::start(&wine, name)?;
    wine.install(name, &built.sys)?;
    for (value, v) in &a.params {
        wine.set_parameter(name, value, v)?;
        println!("wine: Parameters\\{value} = {v}");
    }
    catch_ctrl_c();
    let mut shown = 0;
    let mut show_new = |session: &Session<'_>| {
        let lines = session.dbgprint_lines();
        for l in lines.iter().skip(shown) {
            println!("  | {}", l.trim_end());
        }
        shown = shown.max(lines.len());
        lines
    };
    match wine.start(name) {
        Ok(t) => println!(
            "wine: {name} started (DriverEntry returned after {:.2} s)",
            t.as_secs_f64()
        ),
        Err(e) => {
            show_new(&session);
            session.finish();
            return Err(format!("sc start {name}: DriverEntry failed: {e}"));
        }
    }
    println!(
        "wine: streaming DbgPrint; stopping {}",
        match (a.timeout, a.expect.is_empty()) {
            (Some(t), true) => format!("after {} s or on Ctrl-C", t.as_secs_f64()),
            (Some(t), false) => format!(
                "when every --expect line has appeared, after {} s, or on Ctrl-C",
                t.as_secs_f64()
            ),
            (None, false) => "when every --expect line has appeared, or on Ctrl-C".into(),
            (None, true) => "on Ctrl-C".into(),
        }
    );
    let mut problems = Vec::new();
    let expected_all = stream(a, &session, &mut show_new, &mut problems);
    if !expected_all {
        let lines = session.dbgprint_lines();
        if let Some(missing) = a
            .expect
            .iter()
            .find(|p| !lines.iter().any(|l| matches(l, p)))
        {
            problems.push(format!("no DbgPrint line matched --expect {missing:?}"));
        }
    }
    println!("wine: sc stop {name}");
    match wine.stop(name, Duration::from_secs(20)) {
        Ok(t) => println!(
            "wine: {name} stopped, driver unloaded ({:.2} s)",
            t.as_secs_f64()
        ),
        Err(e) => problems.push(format!("unload failed: {e}")),
    }
    std::thread::sleep(Duration::from_millis(300));
    show_new(&session);
    session.finish();
    let log = session.read_log();
    if let Some(bad) = wine::find_forbidden(&log, wine::ALWAYS_FORBIDDEN) {
        let bad = format!("the driver failed: {}", bad.trim());
        if !problems.contains(&bad) {
            problems.push(bad);
        }
    }
    if problems.is_empty() {
        println!(
            "wine: {name}: clean run and unload (full Wine log: {})",
            relative(&session.log).display()
        );
        Ok(())
    } else {
        Err(format!(
            "wine: {name}:\n  - {}\n  full Wine log: {}",
            problems.join("\n  - "),
            session.log.display()
        ))
    }
}

/// Streams the driver's lines until every `--expect` pattern has matched
/// (true), the driver failed, Ctrl-C, or the timeout (true when nothing was
/// expected).
fn stream(
    a: &Args,
    session: &Session<'_>,
    show_new: &mut dyn FnMut(&Session<'_>) -> Vec<String>,
    problems: &mut Vec<String>,
) -> bool {
    let started = Instant::now();
    loop {
        let lines = show_new(session);
        let mut next = 0;
        for l in &lines {
            if next < a.expect.len() && matches(l, &a.expect[next]) {
                next += 1;
            }
        }
        if !a.expect.is_empty() && next == a.expect.len() {
            return true;
        }
        if let Some(bad) = wine::find_forbidden(&session.read_log(), wine::ALWAYS_FORBIDDEN) {
            problems.push(format!("the driver failed: {}", bad.trim()));
            return false;
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            println!("wine: Ctrl-C");
            return a.expect.is_empty();
        }
        if a.timeout.is_some_and(|t| started.elapsed() >= t) {
            return a.expect.is_empty();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_options() {
        let a = args(
            "--param Port=7007 --param Address=127.0.0.1 --timeout 2.5 --expect a*b -p x --release",
        )
        .unwrap();
        assert_eq!(
            a.params,
            [
                ("Port".to_string(), RegValue::Dword(7007)),
                ("Address".to_string(), RegValue::Sz("127.0.0.1".into()))
            ]
        );
        assert_eq!(a.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(a.expect, ["a*b"]);
        assert_eq!(a.package.as_deref(), Some("x"));
        assert!(a.release);
        assert!(args("--param Port").is_err());
        let typed = args("--param Pin=sz:0042 --param Flags=dword:0x10").unwrap();
        assert_eq!(
            typed.params,
            [
                ("Pin".to_string(), RegValue::Sz("0042".into())),
                ("Flags".to_string(), RegValue::Dword(16))
            ]
        );
        let bad = args("--param Port=dword:big").unwrap_err();
        assert!(bad.contains("--param Port=dword:big"), "{bad}");
        assert!(args("--timeout -1").is_err());
        assert!(args("--bogus").is_err());
    }

    #[test]
    fn every_command_has_its_own_help() {
        for command in ["new", "build", "package", "wine", "help"] {
            let usage = help_for(command).unwrap();
            assert!(
                usage.starts_with(&format!("usage: cargo wsk {command}")),
                "{usage}"
            );
            assert!(
                help().contains(
                    usage
                        .trim_start_matches("usage: cargo wsk ")
                        .lines()
                        .next()
                        .unwrap()
                )
            );
        }
        assert!(
            help().contains("\nCommands:\n  new NAME") && help().contains("\n\n  help [COMMAND]")
        );
        assert_eq!(help_for("bogus"), None);
        assert!(args("--help").unwrap().help);
        assert!(args("-p x -h").unwrap().help);
        // An option's value is not a request for help.
        let a = args("--expect --help").unwrap();
        assert!(!a.help);
        assert_eq!(a.expect, ["--help"]);
        // Help is printed before the command runs: nothing is created.
        let run_with = |s: &str| run(s.split_whitespace().map(String::from));
        assert_eq!(run_with("new --help"), Ok(()));
        assert_eq!(run_with("new -h"), Ok(()));
        assert!(!std::path::Path::new("--help").exists() && !std::path::Path::new("-h").exists());
        assert_eq!(run_with("help wine"), Ok(()));
        assert!(run_with("help bogus").is_err());
        assert!(run_with("bogus --help").is_err());
        let unknown = run_with("build --bogus").unwrap_err();
        assert!(unknown.contains("cargo wsk build --help"), "{unknown}");
    }

    #[test]
    fn patterns() {
        assert!(matches(
            "x: connection 2 closed graceful bytes=23",
            "connection 2 closed * bytes=23"
        ));
        assert!(matches("abc", "a*c"));
        assert!(!matches("acb", "b*c"));
    }
}
