//! The WSK version a client asks for and the Windows version that decides
//! which provider routines exist.

use wsk_sys as sys;

use crate::irql::Passive;

/// A WSK version (`MAKE_WSK_VERSION(major, minor)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16);

impl Version {
    /// WSK 1.0: Windows Vista and later; every provider supports it.
    pub const V1_0: Self = Self::new(1, 0);

    /// `MAKE_WSK_VERSION(major, minor)`.
    #[must_use]
    pub const fn new(major: u8, minor: u8) -> Self {
        Self(sys::MAKE_WSK_VERSION(major, minor))
    }

    /// `WSK_MAJOR_VERSION`.
    #[must_use]
    pub const fn major(self) -> u8 {
        sys::WSK_MAJOR_VERSION(self.0)
    }

    /// `WSK_MINOR_VERSION`.
    #[must_use]
    pub const fn minor(self) -> u8 {
        sys::WSK_MINOR_VERSION(self.0)
    }
}

/// The running Windows version, as `RtlGetVersion` reports it.
///
/// WSK providers report WSK version 1.0 on every Windows release, yet their
/// dispatch tables grew: `WskGetAddressInfo`, `WskFreeAddressInfo` and
/// `WskGetNameInfo` exist from Windows 7, `WskSendMessages` from Windows 8,
/// stream sockets (`WSK_PROVIDER_STREAM_DISPATCH`, `WskConnectEx`,
/// `WskListen`) from Windows 10 1703, `WskSendEx`/`WskReceiveEx` from
/// Windows 10 1803. Reading a field past the end of an older provider's
/// table would read unrelated memory, so this crate gates every such field
/// on the version recorded at [`Registration::register`](crate::Registration::register) and answers
/// [`Error::NOT_SUPPORTED`](crate::Error::NOT_SUPPORTED) without touching the provider when it is too old.
///
/// Ordered by `(major, minor, build)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowsVersion {
    /// `dwMajorVersion`: 6 for Vista to 8.1, 10 for Windows 10 and 11.
    pub major: u32,
    /// `dwMinorVersion`.
    pub minor: u32,
    /// `dwBuildNumber`.
    pub build: u32,
}

impl WindowsVersion {
    /// Windows Vista (6.0): WSK 1.0, the oldest WSK provider.
    pub const VISTA: Self = Self::new(6, 0, 0);
    /// Windows 7 (6.1): `WskGetAddressInfo`, `WskFreeAddressInfo`,
    /// `WskGetNameInfo` (`NTDDI_WIN7`).
    pub const WINDOWS_7: Self = Self::new(6, 1, 0);
    /// Windows 8 (6.2): `WskSendMessages` (`NTDDI_WIN8`).
    pub const WINDOWS_8: Self = Self::new(6, 2, 0);
    /// Windows 10 1703 (10.0.15063): stream sockets, `WskConnectEx`,
    /// `WskListen` (`NTDDI_WIN10_RS2`).
    pub const WINDOWS_10_1703: Self = Self::new(10, 0, 15063);
    /// Windows 10 1803 (10.0.17134): `WskSendEx`, `WskReceiveEx`.
    pub const WINDOWS_10_1803: Self = Self::new(10, 0, 17134);

    /// A version from its parts.
    #[must_use]
    pub const fn new(major: u32, minor: u32, build: u32) -> Self {
        Self {
            major,
            minor,
            build,
        }
    }

    /// Whether this version is `other` or later.
    #[must_use]
    pub const fn at_least(self, other: Self) -> bool {
        if self.major != other.major {
            return self.major > other.major;
        }
        if self.minor != other.minor {
            return self.minor > other.minor;
        }
        self.build >= other.build
    }

    /// Asks `RtlGetVersion`; the oldest WSK system ([`VISTA`](Self::VISTA))
    /// if it fails, so that nothing newer is assumed.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (`RtlGetVersion`'s requirement).
    pub(crate) fn query(passive: &Passive<'_>) -> Self {
        let _ = passive;
        let mut info = sys::RTL_OSVERSIONINFOW::default();
        // SAFETY: PASSIVE_LEVEL proven; the structure is writable and its
        // size field set.
        let status = unsafe { sys::RtlGetVersion(&raw mut info) };
        if sys::NT_SUCCESS(status) {
            Self::new(info.dwMajorVersion, info.dwMinorVersion, info.dwBuildNumber)
        } else {
            Self::VISTA
        }
    }
}

impl core::fmt::Display for WindowsVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}
