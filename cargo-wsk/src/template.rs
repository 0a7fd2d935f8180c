//! `cargo wsk new`: the files of a new driver crate — a TCP echo server
//! on `wsk`'s executor (a task accepts, a task per connection echoes) that
//! uses `wsk` and `wsk-driver`, with host tests through `wsk-sim`. Its
//! tasks take connections and data from event callbacks where the provider
//! has them and from requests where it does not (Wine), so it runs under
//! `cargo wsk wine` as it is.

use crate::windows::Arch;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `(path in the new crate, contents)`; `{{…}}` placeholders are filled by
/// [`create`].
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../template/Cargo.toml.in")),
    ("README.md", include_str!("../template/README.md.in")),
    (".gitignore", include_str!("../template/gitignore")),
    ("build.rs", include_str!("../template/build.rs")),
    ("src/lib.rs", include_str!("../template/src/lib.rs")),
    ("src/server.rs", include_str!("../template/src/server.rs")),
    ("src/tests.rs", include_str!("../template/src/tests.rs")),
];

/// The pool tag written in the template's `src/lib.rs`, replaced by one
/// made from the crate name.
const TEMPLATE_TAG: &str = "*b\"Mydr\"";

/// `DbgPrint` lines the new driver prints under `cargo wsk wine` while a
/// client connects to its `Port`, sends [`WINE_MESSAGE`] and closes (the
/// patterns of `cargo wsk wine --expect`, in order).
pub const WINE_EXPECT: &[&str] = &[
    ": listening on 127.0.0.1:* mode=request-driven",
    ": connection 1 from 127.0.0.1:",
    ": connection 1 closed graceful bytes=33",
];

/// What the client sends (33 bytes).
pub const WINE_MESSAGE: &[u8] = b"hello from outside the workspace\n";

/// Lines the new driver prints once `sc stop` has unloaded it.
pub const WINE_AFTER_STOP: &[&str] = &[": stopped connections=1 bytes=33", ": unloaded"];

/// What to run in the new crate `name`, as `cargo wsk new` prints it (the
/// generated README and the repository's README list the same steps).
#[must_use]
pub fn next_steps(name: &str) -> String {
    format!(
        "next:
  cd {name}
  cargo test                        # host tests against wsk-sim
  cargo wsk build --release         # target/drivers/x86_64/{name}.sys, checked
  cargo wsk package                 # test-signed .sys, .inf, test certificate
  cargo wsk wine --param Port=7007  # runs until Ctrl-C: load in Wine, stream DbgPrint
in a script, give `cargo wsk wine` an end (it unloads the driver and exits with the verdict):
  cargo wsk wine --release --timeout 60 --expect \"listening on\"
"
    )
}

/// The checkout of the `wsk` repository this binary was built from, if it
/// was built from one (`cargo install --path <repo>/cargo-wsk`) and it is
/// still there; `None` when installed from a registry.
#[must_use]
pub fn installed_from_checkout() -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let is_checkout = CRATES
        .iter()
        .all(|c| repo.join(c).join("Cargo.toml").is_file())
        && std::fs::read_to_string(repo.join("Cargo.toml"))
            .is_ok_and(|t| t.contains("[workspace]"));
    is_checkout.then(|| repo.to_path_buf())
}

/// The crates a new driver takes from a checkout.
const CRATES: [&str; 5] = ["wsk", "wsk-sys", "wsk-macros", "wsk-sim", "wsk-driver"];

/// Whether `name` is a package name cargo accepts and that makes a
/// reasonable service name: ASCII letters, digits, `-` and `_`, starting
/// with a letter, at most 64 characters.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A pool tag from the name: its first four letters or digits, the first
/// one upper-case, padded with `_`.
#[must_use]
pub fn pool_tag(name: &str) -> [u8; 4] {
    let mut tag = [b'_'; 4];
    for (slot, b) in tag
        .iter_mut()
        .zip(name.bytes().filter(u8::is_ascii_alphanumeric))
    {
        *slot = b;
    }
    tag[0] = tag[0].to_ascii_uppercase();
    tag
}

/// The contents of the new crate's files, placeholders filled.
#[must_use]
pub fn files(name: &str, checkout: Option<&Path>) -> Vec<(&'static str, String)> {
    let patch = checkout.map_or_else(String::new, |repo| {
        let mut s = format!(
            "\n# cargo-wsk was installed from the wsk checkout at {}:\n\
             # until wsk's crates are on crates.io, take them from there.\n\
             # Delete this section to use crates.io.\n[patch.crates-io]\n",
            repo.display()
        );
        for c in CRATES {
            let _ = writeln!(
                s,
                "{c} = {{ path = {:?} }}",
                repo.join(c).display().to_string()
            );
        }
        s
    });
    let install = crate::package::install_steps(name, Arch::X86_64);
    let tag = pool_tag(name);
    let tag = format!("*b\"{}\"", String::from_utf8_lossy(&tag));
    FILES
        .iter()
        .map(|(path, text)| {
            let text = text
                .replace("{{name}}", name)
                .replace("{{version}}", env!("CARGO_PKG_VERSION"))
                .replace("{{patch}}", &patch)
                .replace("{{install}}", &install)
                .replace(TEMPLATE_TAG, &tag);
            (*path, text)
        })
        .collect()
}

/// Creates the driver crate `name` in `dir` (which must not exist).
///
/// # Errors
///
/// When `name` is not a valid package name, `dir` exists, or a file cannot
/// be written.
pub fn create(dir: &Path, name: &str, checkout: Option<&Path>) -> Result<(), String> {
    if !valid_name(name) {
        return Err(format!(
            "`{name}` is not a valid driver name: use ASCII letters, digits, - and _, \
             starting with a letter"
        ));
    }
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    for (path, text) in files(name, checkout) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert!(valid_name("mydrv"));
        assert!(valid_name("my-drv_2"));
        assert!(!valid_name("2drv"));
        assert!(!valid_name("my drv"));
        assert!(!valid_name(""));
        assert_eq!(&pool_tag("mydrv"), b"Mydr");
        assert_eq!(&pool_tag("a-b"), b"Ab__");
    }

    #[test]
    fn next_steps_end_in_a_script() {
        let steps = next_steps("netmon");
        assert!(steps.contains("cd netmon\n"));
        assert!(steps.contains("--timeout 60 --expect \"listening on\""));
        // The generated README shows the same commands.
        let readme = &files("netmon", None)
            .into_iter()
            .find(|(p, _)| *p == "README.md")
            .unwrap()
            .1;
        for line in steps.lines().filter(|l| l.starts_with("  cargo")) {
            let command = line.split('#').next().unwrap().trim();
            assert!(readme.contains(command), "README lacks {command:?}");
        }
    }

    /// `docs/building.md` shows the generated `Cargo.toml` verbatim (the
    /// test runs where the repository is, and is skipped in a packaged
    /// crate, which has no `docs/`).
    #[test]
    fn the_guide_shows_the_generated_manifest() {
        let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/building.md");
        let Ok(guide) = std::fs::read_to_string(guide) else {
            return;
        };
        let start = "### The crate, complete\n";
        let shown = guide[guide.find(start).expect("the section")..]
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml block");
        let generated = files("mydrv", None)
            .into_iter()
            .find(|(p, _)| *p == "Cargo.toml")
            .unwrap()
            .1;
        assert_eq!(shown.trim_end(), generated.trim_end());
    }

    #[test]
    fn fills_the_template() {
        let plain = files("netmon", None);
        let manifest = &plain.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(manifest.contains("name = \"netmon\""));
        assert!(manifest.contains(&format!("wsk = \"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(!manifest.contains("[patch"));
        assert!(!manifest.contains("{{"));
        let readme = &plain.iter().find(|(p, _)| *p == "README.md").unwrap().1;
        assert!(readme.contains("sc create netmon type= kernel"));
        let lib = &plain.iter().find(|(p, _)| *p == "src/lib.rs").unwrap().1;
        assert!(lib.contains("pool_tag: *b\"Netm\""));
        let patched = files("netmon", Some(Path::new("/src/wsk")));
        let manifest = &patched.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1;
        assert!(manifest.contains("[patch.crates-io]\nwsk = { path = \"/src/wsk/wsk\" }"));
    }
}
