//! `cargo xtask ci`: every check CI runs, in order, fail-fast. The steps are
//! the table [`STEPS`]; add one there.

use crate::driver::{self, Arch, BuildOpts};
use crate::scenarios::ScenarioOpts;
use crate::wine::{self, WineOpts};
use crate::{cargo, workspace_root};
use std::time::Instant;

/// What a step runs.
pub(crate) enum Action {
    /// `cargo <args>` in the workspace root with extra environment variables.
    Cargo {
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    },
    /// Every example driver through `xtask driver`, both targets, release
    /// and debug.
    Drivers,
    /// `xtask wine` for every example driver, then the load scenarios for
    /// the echo servers.
    Wine,
    /// `xtask wine-bench --smoke`.
    WineBench,
    /// `cargo <args>` once per adversary seed (`WSK_SIM_ADVERSARY`).
    Seeds {
        args: &'static [&'static str],
        seeds: &'static [&'static str],
    },
    /// `xtask stack-frames`: copies of a future in unoptimised frames.
    StackFrames,
    /// `xtask bench`: instruction-count and allocation targets.
    Bench,
    /// A `cargo wsk new` driver outside the workspace (`outside.rs`).
    Outside,
    /// `cargo publish --dry-run` of the published crates, after removing
    /// stale unpacked copies of them from earlier dry runs (see
    /// [`forget_earlier_dry_runs`]).
    Package,
}

/// One CI step.
pub(crate) struct Step {
    /// The name `--skip`/`--only` take.
    pub(crate) name: &'static str,
    /// What it checks.
    pub(crate) about: &'static str,
    pub(crate) action: Action,
}

/// The CI steps, in order.
pub(crate) const STEPS: &[Step] = &[
    Step {
        name: "fmt",
        about: "formatting",
        action: Action::Cargo {
            args: &["fmt", "--all", "--check"],
            env: &[],
        },
    },
    Step {
        name: "clippy",
        about: "lints, all targets, warnings denied",
        action: Action::Cargo {
            args: &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            env: &[],
        },
    },
    Step {
        name: "doc",
        about: "rustdoc, warnings denied",
        action: Action::Cargo {
            args: &["doc", "--workspace", "--no-deps"],
            env: &[("RUSTDOCFLAGS", "-Dwarnings")],
        },
    },
    Step {
        name: "test",
        about: "host tests (wsk-sim)",
        action: Action::Cargo {
            args: &["test", "--workspace"],
            // The Wine-header layout comparison must run in CI, not skip.
            env: &[("WSK_REQUIRE_WINE_HEADERS", "1")],
        },
    },
    Step {
        name: "seeds",
        about: "wsk's soundness tests under further adversary seeds (the test step uses the default one)",
        action: Action::Seeds {
            args: &["test", "-p", "wsk", "--test", "soundness", "-q"],
            // 3 and 30 once deadlocked a test on the simulator's worker
            // thread; the rest split indications and fail mappings.
            seeds: &["1", "2", "3", "5", "8", "11", "30"],
        },
    },
    Step {
        name: "msrv",
        about: "the whole workspace builds with the stated MSRV, Rust 1.85",
        action: Action::Cargo {
            args: &["+1.85.0", "check", "--workspace", "--all-targets"],
            env: &[("RUSTFLAGS", "-Dwarnings")],
        },
    },
    Step {
        name: "miri",
        about: "wsk-sim and wsk host tests under Miri (nightly)",
        action: Action::Cargo {
            args: &["+nightly", "miri", "test", "-p", "wsk-sim", "-p", "wsk"],
            env: &[("MIRIFLAGS", "-Zmiri-disable-isolation")],
        },
    },
    Step {
        name: "cross-x86_64",
        about: "wsk-sys and wsk for x86_64-pc-windows-msvc",
        action: Action::Cargo {
            args: &[
                "build",
                "-p",
                "wsk-sys",
                "-p",
                "wsk",
                "--target",
                "x86_64-pc-windows-msvc",
            ],
            env: &[],
        },
    },
    Step {
        name: "cross-aarch64",
        about: "wsk-sys and wsk for aarch64-pc-windows-msvc",
        action: Action::Cargo {
            args: &[
                "build",
                "-p",
                "wsk-sys",
                "-p",
                "wsk",
                "--target",
                "aarch64-pc-windows-msvc",
            ],
            env: &[],
        },
    },
    Step {
        name: "stack-frames",
        about: "no unoptimised (opt-level 0) frame of wsk copies a spawned or blocked-on future more than allowed",
        action: Action::StackFrames,
    },
    Step {
        name: "drivers",
        about: "every example as a checked .sys (x86_64, aarch64; release, debug)",
        action: Action::Drivers,
    },
    Step {
        name: "wine",
        about: "every example driver under Wine against the loopback peer, then the echo servers through the load scenarios",
        action: Action::Wine,
    },
    Step {
        name: "wine-bench",
        about: "echo-server raced against raw-echo under Wine, one run each (smoke; the full race is manual)",
        action: Action::WineBench,
    },
    Step {
        name: "outside",
        about: "`cargo wsk new` outside the workspace from the packaged crates: test, build x64+arm64 (release, debug), package+verify, Wine",
        action: Action::Outside,
    },
    Step {
        name: "bench",
        about: "performance targets: instructions (callgrind) and allocations",
        action: Action::Bench,
    },
    Step {
        name: "package",
        about: "the published crates package and pass `cargo publish --dry-run` (no upload)",
        action: Action::Package,
    },
];

fn run_step(step: &Step) -> Result<(), String> {
    match &step.action {
        Action::Cargo { args, env } => {
            // A `+toolchain` argument needs rustup's cargo proxy, not the
            // toolchain's own cargo binary that `$CARGO` names.
            let mut c = if args.first().is_some_and(|a| a.starts_with('+')) {
                std::process::Command::new("cargo")
            } else {
                cargo()
            };
            c.current_dir(workspace_root()).args(*args);
            for (k, v) in *env {
                c.env(k, v);
            }
            let status = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("`cargo {}` failed ({status})", args.join(" ")))
            }
        }
        Action::Seeds { args, seeds } => {
            for seed in *seeds {
                let status = cargo()
                    .current_dir(workspace_root())
                    .args(*args)
                    .env("WSK_SIM_ADVERSARY", seed)
                    .status()
                    .map_err(|e| format!("cannot run cargo: {e}"))?;
                if !status.success() {
                    return Err(format!(
                        "`WSK_SIM_ADVERSARY={seed} cargo {}` failed ({status})",
                        args.join(" ")
                    ));
                }
            }
            Ok(())
        }
        Action::Bench => crate::bench::bench(false),
        Action::StackFrames => crate::frames::stack_frames(),
        Action::Drivers => {
            let names = driver::example_drivers();
            if names.is_empty() {
                println!("no example drivers yet");
            }
            for name in &names {
                for arch in Arch::ALL {
                    for debug in [false, true] {
                        let opts = BuildOpts {
                            arch,
                            debug,
                            verbose: false,
                            manifest: None,
                        };
                        driver::build(name, &opts)?;
                    }
                }
            }
            Ok(())
        }
        Action::Wine => {
            wine::wine(&WineOpts::default())?;
            wine::wine(&WineOpts {
                scenarios: Some(ScenarioOpts::default()),
                ..WineOpts::default()
            })
        }
        Action::WineBench => crate::winebench::wine_bench(&crate::winebench::BenchOpts {
            runs: 1,
            smoke: true,
        }),
        Action::Outside => crate::outside::outside(),
        Action::Package => {
            forget_earlier_dry_runs()?;
            // A target directory of its own, emptied first: cargo treats a
            // registry crate of a given version as immutable, so an rlib of
            // an earlier dry run's `wsk-sys 0.1.0` would be linked unchanged.
            let target = workspace_root().join("target/publish-dry-run");
            if target.exists() {
                std::fs::remove_dir_all(&target)
                    .map_err(|e| format!("cannot remove {}: {e}", target.display()))?;
            }
            let mut c = cargo();
            c.current_dir(workspace_root())
                .env("CARGO_TARGET_DIR", &target)
                .args(["publish", "--dry-run", "--allow-dirty"]);
            for name in PUBLISHED {
                c.args(["-p", name]);
            }
            let status = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("`cargo publish --dry-run` failed ({status})"))
            }
        }
    }
}

/// The crates published to crates.io, in dependency order.
const PUBLISHED: [&str; 6] = [
    "wsk-sys",
    "wsk-macros",
    "wsk",
    "wsk-sim",
    "wsk-driver",
    "cargo-wsk",
];

/// Removes this workspace's crates from the unpacked sources of the
/// temporary registries that earlier `cargo publish --dry-run`s left in
/// `$CARGO_HOME/registry/src/-<hash>/`. Cargo unpacks a `.crate` only when
/// its directory is missing, so a copy from an earlier run of the same
/// version would be compiled instead of today's sources. A fresh machine
/// has none; a developer's has one per checkout path.
fn forget_earlier_dry_runs() -> Result<(), String> {
    let home = std::env::var_os("CARGO_HOME").map_or_else(
        || std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        std::path::PathBuf::from,
    );
    let Ok(registries) = std::fs::read_dir(home.join("registry/src")) else {
        return Ok(());
    };
    let version = env!("CARGO_PKG_VERSION");
    for registry in registries.flatten() {
        // Temporary registries have no name: their directory is `-<hash>`.
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for name in PUBLISHED {
            let unpacked = registry.path().join(format!("{name}-{version}"));
            if unpacked.is_dir() {
                std::fs::remove_dir_all(&unpacked)
                    .map_err(|e| format!("cannot remove {}: {e}", unpacked.display()))?;
            }
        }
    }
    Ok(())
}

/// Runs the steps not skipped (or only those named), fail-fast.
pub(crate) fn ci(skip: &[String], only: &[String]) -> Result<(), String> {
    for name in skip.iter().chain(only) {
        if !STEPS.iter().any(|s| s.name == name) {
            return Err(format!(
                "no CI step named `{name}`; steps: {}",
                step_names()
            ));
        }
    }
    let started = Instant::now();
    let mut ran = Vec::new();
    for step in STEPS {
        let name = step.name.to_string();
        if skip.contains(&name) || (!only.is_empty() && !only.contains(&name)) {
            println!("\n==> {} — skipped", step.name);
            continue;
        }
        println!("\n==> {} — {}", step.name, step.about);
        let t = Instant::now();
        if let Err(e) = run_step(step) {
            println!("\n==> FAILED at step `{}`: {e}", step.name);
            return Err(format!("ci failed at `{}`", step.name));
        }
        ran.push(format!("{} {:.0}s", step.name, t.elapsed().as_secs_f64()));
    }
    println!(
        "\n==> ci passed in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        ran.join(", ")
    );
    Ok(())
}

/// The step names, comma separated.
pub(crate) fn step_names() -> String {
    STEPS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}
