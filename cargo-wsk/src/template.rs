//! `cargo wsk new`: the files of a new driver crate.

use std::path::{Path, PathBuf};

/// The checkout of the `wsk` repository this binary was built from, if it
/// was built from one (`cargo install --path <repo>/cargo-wsk`) and it is
/// still there; `None` when installed from a registry.
#[must_use]
pub fn installed_from_checkout() -> Option<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let is_checkout = ["wsk", "wsk-sys", "wsk-macros", "wsk-sim", "wsk-driver"]
        .iter()
        .all(|c| repo.join(c).join("Cargo.toml").is_file())
        && std::fs::read_to_string(repo.join("Cargo.toml"))
            .is_ok_and(|t| t.contains("[workspace]"));
    is_checkout.then(|| repo.to_path_buf())
}

/// Creates the driver crate `name` in `dir` (which must not exist).
///
/// # Errors
///
/// When `name` is not a valid package name, `dir` exists, or a file cannot
/// be written.
pub fn create(dir: &Path, name: &str, checkout: Option<&Path>) -> Result<(), String> {
    let _ = (dir, name, checkout);
    Err("not written yet".into())
}
