//! The link arguments that make a Windows `cdylib` a kernel driver, for the
//! driver crate's build script (enable the `build` feature in
//! `[build-dependencies]`):
//!
//! ```toml
//! [build-dependencies]
//! wsk-driver = { version = "0.1", default-features = false, features = ["build"] }
//! ```
//!
//! ```ignore
//! // build.rs
//! fn main() {
//!     wsk_driver::build::link_driver();
//! }
//! ```
//!
//! Only the `cdylib` of a Windows MSVC target gets them, so host builds and
//! test binaries are untouched:
//!
//! - `/DRIVER`: a kernel-mode image;
//! - `/SUBSYSTEM:NATIVE`: subsystem 1, what the kernel loader expects;
//! - `/ENTRY:DriverEntry`: the image entry point;
//! - `/NODEFAULTLIB`: no C runtime; everything comes from `ntoskrnl.exe` and
//!   `netio.sys` through `raw-dylib` imports;
//! - `/RELEASE`: writes the header checksum kernel images carry.
//!
//! The linker is the toolchain's own `rust-lld`: `cargo wsk build` sets it
//! (`CARGO_TARGET_<TRIPLE>_LINKER=rust-lld`); a build script cannot.

extern crate std;

use std::println;

/// The arguments [`link_driver`] passes to the linker.
pub const LINK_ARGS: [&str; 5] = [
    "/DRIVER",
    "/SUBSYSTEM:NATIVE",
    "/ENTRY:DriverEntry",
    "/NODEFAULTLIB",
    "/RELEASE",
];

/// The cargo instructions for a target: [`LINK_ARGS`] as
/// `cargo:rustc-link-arg-cdylib=…` when `target_os` is `windows` and
/// `target_env` is `msvc`, nothing otherwise.
#[must_use]
pub fn instructions(target_os: &str, target_env: &str) -> std::vec::Vec<std::string::String> {
    if target_os == "windows" && target_env == "msvc" {
        LINK_ARGS
            .iter()
            .map(|a| std::format!("cargo:rustc-link-arg-cdylib={a}"))
            .collect()
    } else {
        std::vec::Vec::new()
    }
}

/// Prints the instructions for the target cargo is building for (from
/// `CARGO_CFG_TARGET_OS` and `CARGO_CFG_TARGET_ENV`). Call it from the
/// driver's `build.rs`.
pub fn link_driver() {
    // Naming one file stops cargo from rerunning the script on every change
    // in the package.
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    for line in instructions(&os, &env) {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_windows_msvc_gets_kernel_link_arguments() {
        let windows = instructions("windows", "msvc");
        assert_eq!(windows.len(), 5);
        assert!(windows.contains(&"cargo:rustc-link-arg-cdylib=/DRIVER".into()));
        assert!(instructions("linux", "gnu").is_empty());
        assert!(instructions("windows", "gnu").is_empty());
    }
}
