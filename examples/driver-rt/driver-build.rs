//! Build script shared by the example drivers (`build = "../driver-rt/driver-build.rs"`
//! in their `Cargo.toml`): the link arguments that make a Windows `cdylib` a
//! kernel driver. Only the `cdylib` of a Windows MSVC target gets them, so host
//! builds and test binaries are untouched.
//!
//! - `/DRIVER`: a kernel-mode image (no user-mode DLL entry conventions);
//! - `/SUBSYSTEM:NATIVE`: subsystem 1, what the kernel loader expects;
//! - `/ENTRY:DriverEntry`: the image entry point;
//! - `/NODEFAULTLIB`: no C runtime; everything comes from `ntoskrnl.exe` and
//!   `netio.sys` through `raw-dylib` imports;
//! - `/RELEASE`: writes the header checksum that kernel images carry.
//!
//! The linker itself (`rust-lld`) is set in `.cargo/config.toml`.

fn main() {
    // Cargo reruns a build script whose source changed; naming a file here
    // stops it from rescanning the whole package on every build.
    println!("cargo:rerun-if-changed=Cargo.toml");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "windows" && env == "msvc" {
        for arg in [
            "/DRIVER",
            "/SUBSYSTEM:NATIVE",
            "/ENTRY:DriverEntry",
            "/NODEFAULTLIB",
            "/RELEASE",
        ] {
            println!("cargo:rustc-link-arg-cdylib={arg}");
        }
    }
}
