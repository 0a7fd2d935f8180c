//! `cargo wsk package`: the `.sys`, an INF for a legacy (non-Plug-and-Play)
//! kernel service, and an embedded test signature made with a generated
//! test certificate.
//!
//! The tools are Debian's `openssl` (the certificate) and `osslsigncode`
//! (Authenticode signing and verification of PE images). On 64-bit Windows
//! "a non-boot, non-PnP driver must have either an embedded signature or a
//! signed catalog file"
//! (<https://learn.microsoft.com/windows-hardware/drivers/install/installing-a-test-signed-catalog-file-for-a-non-pnp-driver>):
//! the package carries the embedded signature. No Debian tool creates a
//! catalog (`.cat`) file — `osslsigncode` signs and verifies existing ones,
//! and Microsoft's `Inf2Cat`/`MakeCat` run on Windows only — so none is
//! made; `docs/building.md` gives the Windows commands for one.

use crate::driver::{Project, relative};
use crate::windows::Arch;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A finished package.
#[derive(Debug, Clone)]
pub struct Package {
    /// The directory holding everything.
    pub dir: PathBuf,
    /// The signed driver.
    pub sys: PathBuf,
    /// The INF.
    pub inf: PathBuf,
    /// The test certificate (DER), to trust on the test machine.
    pub cer: PathBuf,
    /// What `osslsigncode verify` said.
    pub verified: String,
}

/// The test-signing certificate and key (PEM), made once per target
/// directory and reused, so a test machine trusts one certificate.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, unencrypted: a test key).
    pub key: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e} (install it: sudo apt-get install {what})"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{what} failed ({}):\n{}",
            out.status,
            text.trim_end()
        ))
    }
}

impl TestCertificate {
    /// The certificate in `<target-dir>/wsk/test-signing/`, created with
    /// `openssl req -x509` (RSA 3072, SHA-256, code-signing usage, ten
    /// years) when missing.
    ///
    /// # Errors
    ///
    /// When `openssl` is missing or fails.
    pub fn ensure(project: &Project) -> Result<TestCertificate, String> {
        let dir = project.target_dir.join("wsk").join("test-signing");
        let c = TestCertificate {
            cert: dir.join("test-signing.crt"),
            key: dir.join("test-signing.key"),
        };
        if c.cert.exists() && c.key.exists() {
            return Ok(c);
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let subject = format!("/CN={} test signing (cargo-wsk)", project.name);
        run(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "3650", "-nodes",
                ])
                .args(["-subj", &subject])
                .args(["-addext", "extendedKeyUsage=codeSigning"])
                .args(["-addext", "keyUsage=critical,digitalSignature"])
                .arg("-keyout")
                .arg(&c.key)
                .arg("-out")
                .arg(&c.cert),
            "openssl",
        )?;
        println!(
            "package: created the test certificate {}",
            relative(&c.cert).display()
        );
        Ok(c)
    }
}

/// Signs `unsigned` into `signed` with `cert` (SHA-256, embedded
/// Authenticode signature; `osslsigncode` also rewrites the PE checksum).
///
/// # Errors
///
/// When `osslsigncode` is missing or fails.
pub fn sign(
    unsigned: &Path,
    signed: &Path,
    cert: &TestCertificate,
    description: &str,
) -> Result<(), String> {
    let _ = std::fs::remove_file(signed);
    run(
        Command::new("osslsigncode")
            .args(["sign", "-h", "sha256", "-n", description])
            .arg("-certs")
            .arg(&cert.cert)
            .arg("-key")
            .arg(&cert.key)
            .arg("-in")
            .arg(unsigned)
            .arg("-out")
            .arg(signed),
        "osslsigncode",
    )
    .map(drop)
}

/// `osslsigncode verify` of `signed` against `cert` as the trusted root;
/// returns its report.
///
/// # Errors
///
/// When verification fails.
pub fn verify(signed: &Path, cert: &TestCertificate) -> Result<String, String> {
    let text = run(
        Command::new("osslsigncode")
            .arg("verify")
            .arg("-CAfile")
            .arg(&cert.cert)
            .arg("-in")
            .arg(signed),
        "osslsigncode",
    )?;
    if text.contains("Signature verification: ok") {
        Ok(text)
    } else {
        Err(format!(
            "osslsigncode verify did not report success:\n{text}"
        ))
    }
}

/// The INF of a legacy kernel service for `name.sys` on `arch`: copies the
/// driver to the drivers directory (DIRID 12) and adds a demand-start
/// kernel service with an empty `Parameters` key
/// (<https://learn.microsoft.com/windows-hardware/drivers/install/inf-defaultinstall-section>,
/// <https://learn.microsoft.com/windows-hardware/drivers/install/inf-addservice-directive>).
/// The `DefaultInstall`/`DefaultUninstall` sections are decorated with the
/// architecture, and `LegacyUninstall=1` keeps the uninstall section for
/// releases before Windows 10 version 1903
/// (<https://learn.microsoft.com/windows-hardware/drivers/develop/creating-a-primitive-driver>).
#[must_use]
pub fn inf(name: &str, version: &str, arch: Arch) -> String {
    let p = arch.inf_platform();
    // DriverVer wants w.x.y.z; a semver "1.2.3-pre" becomes 1.2.3.0.
    let mut parts: Vec<&str> = version
        .split(['-', '+'])
        .next()
        .unwrap_or("0.0.0")
        .split('.')
        .collect();
    parts.resize(4, "0");
    let driver_ver = parts.join(".");
    format!(
        "\
; {name}.inf: a legacy (non-Plug-and-Play) kernel service, made by cargo-wsk.
; Install (test-signing machine, elevated prompt):
;   rundll32.exe setupapi.dll,InstallHinfSection DefaultInstall.{p} 132 .\\{name}.inf
; or without the INF: see docs/building.md (sc create).

[Version]
Signature   = \"$WINDOWS NT$\"
Class       = System
ClassGuid   = {{4d36e97d-e325-11ce-bfc1-08002be10318}}
Provider    = %Provider%
DriverVer   = 01/01/2025,{driver_ver}
PnpLockdown = 1

[DestinationDirs]
DefaultDestDir = 12

[SourceDisksNames]
1 = %DiskName%

[SourceDisksFiles]
{name}.sys = 1

[DefaultInstall.{p}]
CopyFiles = Driver.Files

[DefaultInstall.{p}.Services]
AddService = {name},,Service.Install

[DefaultUninstall.{p}]
LegacyUninstall = 1
DelFiles = Driver.Files

[DefaultUninstall.{p}.Services]
DelService = {name},0x200

[Driver.Files]
{name}.sys

[Service.Install]
DisplayName   = %ServiceName%
ServiceType   = 1 ; SERVICE_KERNEL_DRIVER
StartType     = 3 ; SERVICE_DEMAND_START
ErrorControl  = 1 ; SERVICE_ERROR_NORMAL
ServiceBinary = %12%\\{name}.sys
AddReg        = Service.Parameters

[Service.Parameters]
HKR, Parameters, , 0x00000010

[Strings]
Provider    = \"{name} developers\"
DiskName    = \"{name} driver files\"
ServiceName = \"{name} (WSK driver)\"
"
    )
}

/// Packages an already built `.sys` for `arch` into
/// `<target-dir>/wsk/package/<arch>/<name>/`: the signed driver, the INF and
/// the certificate (`.cer`, DER); verifies the signature, and checks the
/// signed image again as [`crate::driver::check`] does.
///
/// # Errors
///
/// What failed: a tool, a file, or the verification.
pub fn package(project: &Project, arch: Arch, built_sys: &Path) -> Result<Package, String> {
    let cert = TestCertificate::ensure(project)?;
    let dir = project
        .target_dir
        .join("wsk")
        .join("package")
        .join(arch.name())
        .join(&project.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let sys = dir.join(format!("{}.sys", project.name));
    sign(built_sys, &sys, &cert, &project.name)?;
    let inf_path = dir.join(format!("{}.inf", project.name));
    // INF files are conventionally CRLF.
    let text = inf(&project.name, &project.version, arch).replace('\n', "\r\n");
    std::fs::write(&inf_path, text).map_err(|e| format!("{}: {e}", inf_path.display()))?;
    let cer = dir.join(format!("{}-test.cer", project.name));
    run(
        Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(&cert.cert)
            .arg("-out")
            .arg(&cer),
        "openssl",
    )?;
    let verified = verify(&sys, &cert)?;
    // The signature must leave a valid kernel image (osslsigncode rewrites
    // the header checksum over the signed file).
    crate::driver::check(&sys, arch, project.oldest(arch), false)?;
    Ok(Package {
        dir,
        sys,
        inf: inf_path,
        cer,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inf_names_the_service_and_the_platform() {
        let text = inf("mydrv", "0.1.0-alpha", Arch::Aarch64);
        assert!(text.contains("[DefaultInstall.NTarm64]"));
        assert!(
            text.contains("[DefaultInstall.NTarm64.Services]\nAddService = mydrv,,Service.Install")
        );
        assert!(text.contains("ServiceBinary = %12%\\mydrv.sys"));
        assert!(text.contains("DriverVer   = 01/01/2025,0.1.0.0"));
        assert!(
            !text.contains("[DefaultInstall]\n"),
            "undecorated sections are not allowed"
        );
    }
}
