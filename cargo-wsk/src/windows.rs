//! Windows releases, the target architectures, and the oldest release each
//! architecture supports.

use std::fmt;

/// A Windows release, named as Microsoft's requirement tables name them.
///
/// Ordered by release: `Win10(1709) < Win10(2004)`. Windows 10 releases are
/// identified by their version number (`YYMM`, 1507 for the first release);
/// later naming schemes (`20H2`, Windows 11) are not needed by any routine
/// in [`crate::imports::TABLE`] and are not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Windows {
    /// Windows 2000 (NT 5.0).
    Win2000,
    /// Windows XP (NT 5.1).
    WinXP,
    /// Windows Vista (NT 6.0): the first release with WSK.
    Vista,
    /// Windows 7 (NT 6.1).
    Win7,
    /// Windows 8 (NT 6.2).
    Win8,
    /// Windows 8.1 (NT 6.3).
    Win81,
    /// Windows 10, by version number (`1507`, `1709`, `2004`, …).
    Win10(u16),
}

impl Windows {
    /// Parses the forms `cargo wsk` accepts in `[package.metadata.wsk]`:
    /// `vista`, `7`, `8`, `8.1`, `10` (= `10-1507`), `10-1709`, with or
    /// without a leading `windows` and with `-`, space or `, version ` before
    /// a Windows 10 version.
    ///
    /// # Errors
    ///
    /// A message naming the accepted forms.
    pub fn parse(text: &str) -> Result<Windows, String> {
        let lower = text.trim().to_ascii_lowercase();
        let s = lower.strip_prefix("windows").unwrap_or(&lower).trim();
        let release = match s {
            "2000" => Some(Windows::Win2000),
            "xp" => Some(Windows::WinXP),
            "vista" => Some(Windows::Vista),
            "7" => Some(Windows::Win7),
            "8" => Some(Windows::Win8),
            "8.1" => Some(Windows::Win81),
            "10" => Some(Windows::Win10(1507)),
            _ => s
                .strip_prefix("10")
                .map(|v| v.trim_start_matches([',', '-', ' ']))
                .map(|v| v.strip_prefix("version").unwrap_or(v).trim())
                .and_then(|v| v.parse::<u16>().ok())
                .filter(|v| (1507..=9912).contains(v) && v % 100 >= 1 && v % 100 <= 12)
                .map(Windows::Win10),
        };
        release.ok_or_else(|| {
            format!(
                "unknown Windows release `{text}`: write vista, 7, 8, 8.1, 10 or 10-YYMM \
                 (for example 10-1709)"
            )
        })
    }
}

impl fmt::Display for Windows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Windows::Win2000 => f.write_str("Windows 2000"),
            Windows::WinXP => f.write_str("Windows XP"),
            Windows::Vista => f.write_str("Windows Vista"),
            Windows::Win7 => f.write_str("Windows 7"),
            Windows::Win8 => f.write_str("Windows 8"),
            Windows::Win81 => f.write_str("Windows 8.1"),
            Windows::Win10(1507) => f.write_str("Windows 10 (version 1507)"),
            Windows::Win10(v) => write!(f, "Windows 10, version {v}"),
        }
    }
}

/// A Windows target architecture of a driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// `x86_64-pc-windows-msvc` (x64, AMD64).
    X86_64,
    /// `aarch64-pc-windows-msvc` (ARM64).
    Aarch64,
}

impl Arch {
    /// Both architectures.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// Parses `x86_64`/`x64`/`amd64` or `aarch64`/`arm64`.
    ///
    /// # Errors
    ///
    /// A message naming the accepted values.
    pub fn parse(s: &str) -> Result<Arch, String> {
        match s {
            "x86_64" | "x64" | "amd64" | "x86_64-pc-windows-msvc" => Ok(Arch::X86_64),
            "aarch64" | "arm64" | "aarch64-pc-windows-msvc" => Ok(Arch::Aarch64),
            _ => Err(format!("unknown target `{s}`: use x86_64 or aarch64")),
        }
    }

    /// `x86_64` or `aarch64`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The Rust target triple.
    #[must_use]
    pub fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-pc-windows-msvc",
            Arch::Aarch64 => "aarch64-pc-windows-msvc",
        }
    }

    /// The INF platform extension (`ntamd64`, `ntarm64`).
    #[must_use]
    pub fn inf_platform(self) -> &'static str {
        match self {
            Arch::X86_64 => "NTamd64",
            Arch::Aarch64 => "NTarm64",
        }
    }

    /// The PE machine type (`IMAGE_FILE_MACHINE_*`).
    #[must_use]
    pub fn machine(self) -> u16 {
        match self {
            Arch::X86_64 => crate::pe::MACHINE_AMD64,
            Arch::Aarch64 => crate::pe::MACHINE_ARM64,
        }
    }

    /// The oldest Windows release a driver for this architecture can
    /// support, and why (see [`oldest_supported`]).
    #[must_use]
    pub fn oldest(self) -> Windows {
        oldest_supported(self).0
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The oldest Windows release a `wsk` driver supports on `arch`, with the
/// Microsoft source of that limit. A driver crate may raise it (never lower
/// it) with `[package.metadata.wsk] oldest-windows-x86_64` /
/// `oldest-windows-aarch64`.
///
/// - `x86_64`: **Windows Vista**. WSK first shipped there ("Kernel-mode
///   network modules targeted for Windows Vista and later … should use
///   WSK",
///   <https://learn.microsoft.com/windows-hardware/drivers/network/introduction-to-winsock-kernel>),
///   and every `netio.sys` routine's page says "Available in Windows Vista
///   and later" (for example
///   <https://learn.microsoft.com/windows-hardware/drivers/ddi/wsk/nf-wsk-wskregister>).
/// - `aarch64`: **Windows 10, version 1709**, the first ARM64 release: INF
///   `.ntarm64` sections apply to "Arm64-based systems that are supported
///   by Windows 10 version 1709 and later"
///   (<https://learn.microsoft.com/windows-hardware/drivers/install/creating-inf-files-for-multiple-platforms-and-operating-systems>),
///   and `Inf2Cat`'s oldest ARM64 OS is `10_RS3_ARM64`, "Windows 10,
///   version 1709 Arm64 Edition"
///   (<https://learn.microsoft.com/windows-hardware/drivers/devtest/inf2cat>).
#[must_use]
pub fn oldest_supported(arch: Arch) -> (Windows, &'static str) {
    match arch {
        Arch::X86_64 => (
            Windows::Vista,
            "https://learn.microsoft.com/windows-hardware/drivers/network/introduction-to-winsock-kernel",
        ),
        Arch::Aarch64 => (
            Windows::Win10(1709),
            "https://learn.microsoft.com/windows-hardware/drivers/install/creating-inf-files-for-multiple-platforms-and-operating-systems",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_releases() {
        assert_eq!(Windows::parse("Vista"), Ok(Windows::Vista));
        assert_eq!(Windows::parse("windows 8.1"), Ok(Windows::Win81));
        assert_eq!(Windows::parse("10"), Ok(Windows::Win10(1507)));
        assert_eq!(Windows::parse("10-1709"), Ok(Windows::Win10(1709)));
        assert_eq!(
            Windows::parse("Windows 10, version 2004"),
            Ok(Windows::Win10(2004))
        );
        assert!(Windows::parse("10-20H2").is_err());
        assert!(Windows::parse("11").is_err());
        assert!(Windows::Vista < Windows::Win7);
        assert!(Windows::Win81 < Windows::Win10(1507));
        assert!(Windows::Win10(1709) < Windows::Win10(2004));
        assert_eq!(Windows::Win10(2004).to_string(), "Windows 10, version 2004");
    }

    #[test]
    fn oldest_per_arch() {
        assert_eq!(Arch::X86_64.oldest(), Windows::Vista);
        assert_eq!(Arch::Aarch64.oldest(), Windows::Win10(1709));
    }
}
