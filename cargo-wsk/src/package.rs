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
//! made; the `wsk` repository's `docs/building.md` gives the Windows
//! commands for one.

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

/// How to install and run `name`'s package on a Windows test machine, one
/// command or remark a line (`::` starts a remark, as in a batch file): the
/// header of the package's INF, and the generated crate's README. The long
/// form, with the reasons, is "Installing on a Windows test machine" in the
/// `wsk` repository's `docs/building.md`.
#[must_use]
pub fn install_steps(name: &str, arch: Arch) -> String {
    let p = arch.inf_platform();
    format!(
        "\
:: A test machine only, never a production one: an elevated Command Prompt
:: in the package directory ({name}.sys, {name}.inf, {name}-test.cer).
:: 1. Allow test-signed kernel code (Secure Boot must be off), then reboot.
bcdedit /set testsigning on
:: 2. Optional: trust the test certificate (tools that check the publisher).
certutil -addstore Root {name}-test.cer
certutil -addstore TrustedPublisher {name}-test.cer
:: 3. Optional: let DbgPrint through to a debugger or DebugView (next boot).
reg add \"HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Debug Print Filter\" /v DEFAULT /t REG_DWORD /d 0xF /f
:: 4. Install the service: with the INF before Windows 10 version 1903 ...
rundll32.exe setupapi.dll,InstallHinfSection DefaultInstall.{p} 132 %CD%\\{name}.inf
:: ... or without it, on any release (from 1903 on, InstallHinfSection hands
:: this INF to the driver-store installer, and the package has no catalog).
copy {name}.sys %SystemRoot%\\System32\\drivers\\
sc create {name} type= kernel start= demand binPath= %SystemRoot%\\System32\\drivers\\{name}.sys
:: 5. Configure (values under the service's Parameters key, such as the
::    template's Port), start, stop.
reg add HKLM\\System\\CurrentControlSet\\Services\\{name}\\Parameters /v Port /t REG_DWORD /d 7007 /f
sc start {name}
sc stop {name}
:: 6. Remove.
sc delete {name}
del %SystemRoot%\\System32\\drivers\\{name}.sys
"
    )
}

/// The `DriverVer` value of the INF, `mm/dd/yyyy,w.x.y.z`
/// (<https://learn.microsoft.com/windows-hardware/drivers/install/inf-driverver-directive>):
/// the date of the package, `unix_seconds` (UTC) — the page wants the most
/// recent date of any file in it, and the signed `.sys` is written when
/// packaging — and the crate's `version`, a semver `1.2.3-pre+meta` becoming
/// `1.2.3.0`.
///
/// # Errors
///
/// When the version is not `a.b.c` of integers below 65535, or is
/// `0.0.0` (the page: each part must be below 65535, and `0.0.0.0` is not
/// valid).
pub fn driver_ver(version: &str, unix_seconds: u64) -> Result<String, String> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<u16> = core
        .split('.')
        .map(|p| p.parse::<u16>().ok().filter(|&n| n < u16::MAX))
        .collect::<Option<_>>()
        .filter(|p: &Vec<u16>| p.len() == 3 && p.iter().any(|&n| n != 0))
        .ok_or_else(|| {
            format!(
                "version {version}: an INF DriverVer needs a.b.c, each below 65535 and not \
                 all 0 (https://learn.microsoft.com/windows-hardware/drivers/install/inf-driverver-directive)"
            )
        })?;
    let (year, month, day) = civil_date(unix_seconds);
    Ok(format!(
        "{month:02}/{day:02}/{year:04},{}.{}.{}.0",
        parts[0], parts[1], parts[2]
    ))
}

/// The UTC calendar date of a Unix time: `(year, month, day)`, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_date(unix_seconds: u64) -> (u64, u64, u64) {
    let days = unix_seconds / 86_400;
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The package's date: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else now.
fn package_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
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
/// `driver_ver` is the `DriverVer` value ([`driver_ver`]); the header
/// comment carries [`install_steps`].
#[must_use]
pub fn inf(name: &str, driver_ver: &str, arch: Arch) -> String {
    let p = arch.inf_platform();
    let steps: String = install_steps(name, arch)
        .lines()
        .map(|l| match l.strip_prefix(":: ") {
            Some(remark) => format!("; {remark}\n"),
            None => format!(";     {l}\n"),
        })
        .collect();
    format!(
        "\
; {name}.inf: a legacy (non-Plug-and-Play) kernel service, made by cargo-wsk.
;
{steps}
[Version]
Signature   = \"$WINDOWS NT$\"
Class       = System
ClassGuid   = {{4d36e97d-e325-11ce-bfc1-08002be10318}}
Provider    = %Provider%
DriverVer   = {driver_ver}
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
    let driver_ver = driver_ver(&project.version, package_time())?;
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
    let text = inf(&project.name, &driver_ver, arch).replace('\n', "\r\n");
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
    fn driver_ver_is_the_package_date_and_the_crate_version() {
        // 2025-03-01 00:00:00 UTC, a day after a non-leap February.
        assert_eq!(
            driver_ver("0.1.0-alpha", 1_740_787_200).unwrap(),
            "03/01/2025,0.1.0.0"
        );
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(951_782_400), (2000, 2, 29)); // a leap day
        assert_eq!(civil_date(1_767_225_599), (2025, 12, 31)); // 23:59:59
        assert_eq!(
            driver_ver("2.10.3+build.7", 0).unwrap(),
            "01/01/1970,2.10.3.0"
        );
        for bad in ["0.0.0", "1.2", "1.2.3.4", "1.65535.0", "x.1.0", ""] {
            assert!(driver_ver(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn install_steps_head_the_inf() {
        let text = inf("mydrv", "03/01/2025,0.1.0.0", Arch::X86_64);
        assert!(text.contains(";     bcdedit /set testsigning on\n"));
        assert!(text.contains(
            ";     rundll32.exe setupapi.dll,InstallHinfSection DefaultInstall.NTamd64 132 %CD%\\mydrv.inf\n"
        ));
        assert!(text.contains(";     sc create mydrv type= kernel start= demand"));
        // Every line before [Version] is a comment.
        let header = &text[..text.find("[Version]").unwrap()];
        assert!(
            header.lines().all(|l| l.is_empty() || l.starts_with(';')),
            "{header}"
        );
    }

    #[test]
    fn inf_names_the_service_and_the_platform() {
        let text = inf("mydrv", "03/01/2025,0.1.0.0", Arch::Aarch64);
        assert!(text.contains("[DefaultInstall.NTarm64]"));
        assert!(
            text.contains("[DefaultInstall.NTarm64.Services]\nAddService = mydrv,,Service.Install")
        );
        assert!(text.contains("ServiceBinary = %12%\\mydrv.sys"));
        assert!(text.contains("DriverVer   = 03/01/2025,0.1.0.0"));
        assert!(
            !text.contains("[DefaultInstall]\n"),
            "undecorated sections are not allowed"
        );
    }
}
