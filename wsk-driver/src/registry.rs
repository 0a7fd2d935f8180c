//! Reading the driver's configuration from its service key:
//! `HKLM\System\CurrentControlSet\Services\<name>\Parameters`.
//!
//! `DriverEntry` receives the service key as `RegistryPath`
//! (`\Registry\Machine\System\CurrentControlSet\Services\<name>`), which
//! the [`entry!`](macro@crate::entry) macro hands over as a [`RegistryPath`];
//! [`Parameters::open`] opens its `Parameters` subkey with `ZwOpenKey`, and
//! the getters read values with `ZwQueryValueKey`. Everything returns
//! `Option`, so a missing key or value falls back to the caller's default:
//!
//! ```
//! use wsk::irql::Passive;
//! use wsk_driver::registry::{Parameters, RegistryPath};
//!
//! fn port(registry_path: RegistryPath<'_>, passive: &Passive<'_>) -> u16 {
//!     let params = Parameters::open(registry_path, passive);
//!     params
//!         .as_ref()
//!         .and_then(|p| p.dword("Port"))
//!         .and_then(|p| u16::try_from(p).ok())
//!         .unwrap_or(7007)
//! }
//! # use wsk_sim as _;
//! ```
//!
//! All of it runs at `PASSIVE_LEVEL` only (`Zw*` registry routines): an open
//! [`Parameters`] borrows the [`Passive`] token it was opened with.

use alloc::string::String;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ptr;
use wsk::irql::Passive;
use wsk_sys as sys;

/// The driver's service key, as `DriverEntry` received it
/// (`\Registry\Machine\System\CurrentControlSet\Services\<name>`).
#[derive(Clone, Copy)]
pub struct RegistryPath<'a> {
    path: &'a sys::UNICODE_STRING,
}

impl<'a> RegistryPath<'a> {
    /// Wraps `DriverEntry`'s `RegistryPath` argument.
    ///
    /// # Safety
    ///
    /// `path` is a valid `UNICODE_STRING` (its `Buffer` readable for
    /// `Length` bytes) for `'a`, such as `DriverEntry`'s argument during
    /// `DriverEntry`.
    #[must_use]
    pub unsafe fn from_raw(path: &'a sys::UNICODE_STRING) -> Self {
        Self { path }
    }

    /// The `UNICODE_STRING`.
    #[must_use]
    pub fn as_raw(&self) -> &'a sys::UNICODE_STRING {
        self.path
    }

    /// The path as text (invalid UTF-16 becomes U+FFFD).
    ///
    /// # IRQL
    ///
    /// Any (it only reads the string).
    #[must_use]
    pub fn to_string_lossy(&self) -> String {
        let units = usize::from(self.path.Length) / 2;
        if units == 0 || self.path.Buffer.is_null() {
            return String::new();
        }
        // SAFETY: `from_raw`'s contract: `Buffer` is readable for `Length`
        // bytes for `'a`.
        let text = unsafe { core::slice::from_raw_parts(self.path.Buffer, units) };
        char::decode_utf16(text.iter().copied())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    /// The service name: the last component of the path.
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn service_name(&self) -> String {
        let path = self.to_string_lossy();
        path.rsplit('\\').next().unwrap_or_default().into()
    }
}

impl core::fmt::Debug for RegistryPath<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("RegistryPath")
            .field(&self.to_string_lossy())
            .finish()
    }
}

/// Longest value name accepted, in UTF-16 units.
const MAX_NAME: usize = 64;

/// An open `Parameters` key; closed on drop. It borrows the [`Passive`]
/// token it was opened with, so it is only used (and closed) at
/// `PASSIVE_LEVEL`.
#[derive(Debug)]
pub struct Parameters<'p> {
    key: sys::HANDLE,
    _passive: PhantomData<&'p Passive<'p>>,
}

/// A `UNICODE_STRING` over a stack copy of `name` (None when too long).
struct WideName {
    buf: [u16; MAX_NAME],
    len: usize,
}

impl WideName {
    fn new(name: &str) -> Option<WideName> {
        let mut buf = [0u16; MAX_NAME];
        let mut len = 0;
        for unit in name.encode_utf16() {
            *buf.get_mut(len)? = unit;
            len += 1;
        }
        Some(WideName { buf, len })
    }

    fn unicode_string(&mut self) -> sys::UNICODE_STRING {
        let bytes = u16::try_from(self.len * 2).expect("MAX_NAME is small");
        sys::UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: self.buf.as_mut_ptr(),
        }
    }
}

/// `ZwOpenKey` of `name` relative to `root` (absolute when `root` is null).
///
/// # Safety
///
/// `name` is a valid `UNICODE_STRING`; `root` is null or an open key handle;
/// the caller runs at `PASSIVE_LEVEL`.
unsafe fn open_key(root: sys::HANDLE, name: &sys::UNICODE_STRING) -> Option<sys::HANDLE> {
    let mut attributes = sys::OBJECT_ATTRIBUTES {
        Length: u32::try_from(size_of::<sys::OBJECT_ATTRIBUTES>()).expect("small"),
        RootDirectory: root,
        ObjectName: ptr::from_ref(name).cast_mut(),
        Attributes: sys::OBJ_CASE_INSENSITIVE | sys::OBJ_KERNEL_HANDLE,
        SecurityDescriptor: ptr::null_mut(),
        SecurityQualityOfService: ptr::null_mut(),
    };
    let mut key: sys::HANDLE = ptr::null_mut();
    // SAFETY: `key` and `attributes` are live locals, `attributes` is fully
    // initialised and names a valid string (caller's contract).
    let status = unsafe { sys::ZwOpenKey(&raw mut key, sys::KEY_READ, &raw mut attributes) };
    sys::NT_SUCCESS(status).then_some(key)
}

impl<'p> Parameters<'p> {
    /// Opens `<registry_path>\Parameters`; `None` when it does not exist or
    /// cannot be opened.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL`.
    #[must_use]
    pub fn open(registry_path: RegistryPath<'_>, passive: &'p Passive<'_>) -> Option<Self> {
        let _ = passive;
        // SAFETY: `RegistryPath` holds a valid string; PASSIVE_LEVEL proven by
        // the token; a null root means an absolute path.
        let service = unsafe { open_key(ptr::null_mut(), registry_path.as_raw()) }?;
        let mut sub = WideName::new("Parameters")?;
        let sub = sub.unicode_string();
        // SAFETY: `service` is the key just opened, `sub` a valid string.
        let key = unsafe { open_key(service, &sub) };
        // SAFETY: `service` is open and closed once, here.
        unsafe { sys::ZwClose(service) };
        key.map(|key| Parameters {
            key,
            _passive: PhantomData,
        })
    }

    /// The value's type and raw data (`KEY_VALUE_PARTIAL_INFORMATION`).
    fn query(&self, name: &str) -> Option<(u32, Vec<u8>)> {
        const HEADER: usize = 12; // TitleIndex, Type, DataLength
        let mut name = WideName::new(name)?;
        let mut name = name.unicode_string();
        let mut buf: Vec<u8> = alloc::vec![0; HEADER + 64];
        for _ in 0..3 {
            let mut needed: u32 = 0;
            let len = u32::try_from(buf.len()).ok()?;
            // SAFETY: `self.key` is open; `name` is a valid string; `buf` is
            // writable for `len` bytes; `needed` is a live local.
            let status = unsafe {
                sys::ZwQueryValueKey(
                    self.key,
                    &raw mut name,
                    sys::KeyValuePartialInformation,
                    buf.as_mut_ptr().cast(),
                    len,
                    &raw mut needed,
                )
            };
            if status == sys::STATUS_BUFFER_OVERFLOW || status == sys::STATUS_BUFFER_TOO_SMALL {
                buf.resize(usize::try_from(needed).ok()?.max(buf.len() * 2), 0);
                continue;
            }
            if !sys::NT_SUCCESS(status) {
                return None;
            }
            return parse_partial(&buf);
        }
        None
    }

    /// A `REG_DWORD` value.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (guaranteed by the borrowed token).
    #[must_use]
    pub fn dword(&self, name: &str) -> Option<u32> {
        let (ty, data) = self.query(name)?;
        (ty == sys::REG_DWORD && data.len() == 4)
            .then(|| u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
    }

    /// A `REG_SZ` (or `REG_EXPAND_SZ`, unexpanded) value, without its
    /// terminating NUL; invalid UTF-16 becomes U+FFFD.
    ///
    /// # IRQL
    ///
    /// `PASSIVE_LEVEL` (guaranteed by the borrowed token).
    #[must_use]
    pub fn string(&self, name: &str) -> Option<String> {
        let (ty, data) = self.query(name)?;
        (ty == sys::REG_SZ || ty == sys::REG_EXPAND_SZ).then(|| utf16_value(&data))
    }
}

impl Drop for Parameters<'_> {
    fn drop(&mut self) {
        // SAFETY: `key` was opened by `open` and is closed once, here, at
        // PASSIVE_LEVEL (the token is still borrowed).
        unsafe { sys::ZwClose(self.key) };
    }
}

/// Splits a `KEY_VALUE_PARTIAL_INFORMATION` into (type, data).
fn parse_partial(buf: &[u8]) -> Option<(u32, Vec<u8>)> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
    };
    let ty = word(4)?;
    let len = usize::try_from(word(8)?).ok()?;
    Some((ty, buf.get(12..12 + len)?.to_vec()))
}

/// Decodes registry string data (UTF-16LE, NUL-terminated or not).
fn utf16_value(data: &[u8]) -> String {
    let units = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn partial(ty: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_dword_and_string() {
        let buf = partial(sys::REG_DWORD, &7007u32.to_le_bytes());
        assert_eq!(
            parse_partial(&buf),
            Some((sys::REG_DWORD, 7007u32.to_le_bytes().to_vec()))
        );
        let text: Vec<u8> = "127.0.0.1\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let (ty, data) = parse_partial(&partial(sys::REG_SZ, &text)).unwrap();
        assert_eq!(ty, sys::REG_SZ);
        assert_eq!(utf16_value(&data), "127.0.0.1");
        assert_eq!(parse_partial(&buf[..10]), None);
    }

    fn path(text: &str) -> (Vec<u16>, sys::UNICODE_STRING) {
        let mut units: Vec<u16> = text.encode_utf16().collect();
        let bytes = u16::try_from(units.len() * 2).unwrap();
        let s = sys::UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: units.as_mut_ptr(),
        };
        (units, s)
    }

    #[test]
    fn reads_the_service_parameters() {
        let sim = wsk_sim::Sim::start();
        let service = r"\Registry\Machine\System\CurrentControlSet\Services\regtest";
        sim.registry_set_dword(&format!(r"{service}\Parameters"), "Port", 7100);
        sim.registry_set_sz(&format!(r"{service}\Parameters"), "Address", "10.0.0.1");
        let long: String = "x".repeat(300);
        sim.registry_set_sz(&format!(r"{service}\Parameters"), "Long", &long);
        let (_units, raw) = path(service);
        // SAFETY: `raw` describes `_units`, alive for the whole test.
        let registry_path = unsafe { RegistryPath::from_raw(&raw) };
        assert_eq!(registry_path.service_name(), "regtest");
        // SAFETY: a test thread runs at PASSIVE_LEVEL.
        let passive = unsafe { Passive::new_unchecked() };
        let params = Parameters::open(registry_path, &passive).expect("the key exists");
        assert_eq!(params.dword("Port"), Some(7100));
        assert_eq!(params.string("Address").as_deref(), Some("10.0.0.1"));
        assert_eq!(params.string("Long"), Some(long), "grows its buffer");
        assert_eq!(params.dword("Address"), None, "wrong type");
        assert_eq!(params.dword("Missing"), None);
        drop(params);
        let (_u, other) = path(r"\Registry\Machine\System\CurrentControlSet\Services\none");
        // SAFETY: as above.
        let none = unsafe { RegistryPath::from_raw(&other) };
        assert!(Parameters::open(none, &passive).is_none());
        sim.finish();
    }

    #[test]
    fn value_names_fit_on_the_stack() {
        let mut n = WideName::new("Port").unwrap();
        let us = n.unicode_string();
        assert_eq!(us.Length, 8);
        assert!(WideName::new(&"x".repeat(MAX_NAME + 1)).is_none());
    }
}
