//! Base types of the Windows kernel headers.
//!
//! C headers: `ntdef.h`, `basetsd.h`, `guiddef.h` (Windows Driver Kit,
//! `Include/<version>/shared`). Windows is LLP64 on every 64-bit target:
//! `LONG`/`ULONG` are 32 bits, pointers and `SIZE_T`/`ULONG_PTR` are 64 bits.
//!
//! Reference: <https://learn.microsoft.com/windows/win32/winprog/windows-data-types>

use core::ffi::c_void;

/// `VOID`/`void` behind a pointer.
pub type VOID = c_void;
/// `PVOID`: untyped pointer.
pub type PVOID = *mut c_void;
/// `PCVOID`: untyped pointer to constant data.
pub type PCVOID = *const c_void;
/// `CHAR`: 8-bit character (signed in MSVC).
pub type CHAR = i8;
/// `UCHAR`: unsigned 8-bit integer.
pub type UCHAR = u8;
/// `PUCHAR`: pointer to [`UCHAR`].
pub type PUCHAR = *mut UCHAR;
/// `CCHAR`: 8-bit count (signed).
pub type CCHAR = i8;
/// `BOOLEAN`: 8-bit boolean, [`TRUE`] or [`FALSE`].
pub type BOOLEAN = u8;
/// `SHORT`: signed 16-bit integer.
pub type SHORT = i16;
/// `CSHORT`: signed 16-bit count.
pub type CSHORT = i16;
/// `USHORT`: unsigned 16-bit integer.
pub type USHORT = u16;
/// `PUSHORT`: pointer to [`USHORT`].
pub type PUSHORT = *mut USHORT;
/// `WCHAR`: UTF-16 code unit.
pub type WCHAR = u16;
/// `PWCHAR`/`PWSTR`: pointer to UTF-16 code units.
pub type PWSTR = *mut WCHAR;
/// `PCWSTR`: pointer to constant, NUL-terminated UTF-16.
pub type PCWSTR = *const WCHAR;
/// `PCSTR`: pointer to constant, NUL-terminated 8-bit string.
pub type PCSTR = *const CHAR;
/// `PCHAR`/`PSTR`: pointer to 8-bit characters.
pub type PCHAR = *mut CHAR;
/// `LONG`: signed 32-bit integer (LLP64).
pub type LONG = i32;
/// `PLONG`: pointer to [`LONG`].
pub type PLONG = *mut LONG;
/// `ULONG`: unsigned 32-bit integer (LLP64).
pub type ULONG = u32;
/// `PULONG`: pointer to [`ULONG`].
pub type PULONG = *mut ULONG;
/// `INT`: signed 32-bit integer.
pub type INT = i32;
/// `UINT`: unsigned 32-bit integer.
pub type UINT = u32;
/// `DWORD`: unsigned 32-bit integer.
pub type DWORD = u32;
/// `LONG64`/`LONGLONG`: signed 64-bit integer.
pub type LONGLONG = i64;
/// `ULONG64`/`ULONGLONG`: unsigned 64-bit integer.
pub type ULONGLONG = u64;
/// `ULONG64`: unsigned 64-bit integer.
pub type ULONG64 = u64;
/// `ULONG_PTR`: pointer-sized unsigned integer.
pub type ULONG_PTR = usize;
/// `LONG_PTR`: pointer-sized signed integer.
pub type LONG_PTR = isize;
/// `SIZE_T`: pointer-sized byte count.
pub type SIZE_T = usize;
/// `PSIZE_T`: pointer to [`SIZE_T`].
pub type PSIZE_T = *mut SIZE_T;
/// `HANDLE`: opaque object handle.
pub type HANDLE = *mut c_void;
/// `PHANDLE`: pointer to [`HANDLE`].
pub type PHANDLE = *mut HANDLE;
/// `NTSTATUS`: status code; values ≥ 0 are success or information.
///
/// The codes are in [`crate::ntstatus`].
pub type NTSTATUS = i32;
/// `KIRQL`: an interrupt request level.
pub type KIRQL = UCHAR;
/// `PKIRQL`: pointer to [`KIRQL`].
pub type PKIRQL = *mut KIRQL;
/// `KPROCESSOR_MODE`: [`KernelMode`] or [`UserMode`].
pub type KPROCESSOR_MODE = CCHAR;
/// `ACCESS_MASK`: access rights bit mask.
pub type ACCESS_MASK = ULONG;

/// `TRUE` for [`BOOLEAN`].
pub const TRUE: BOOLEAN = 1;
/// `FALSE` for [`BOOLEAN`].
pub const FALSE: BOOLEAN = 0;

/// `MODE::KernelMode`.
pub const KernelMode: KPROCESSOR_MODE = 0;
/// `MODE::UserMode`.
pub const UserMode: KPROCESSOR_MODE = 1;

/// `NT_SUCCESS(Status)`: success and informational codes.
#[inline]
#[must_use]
pub const fn NT_SUCCESS(status: NTSTATUS) -> bool {
    status >= 0
}

/// `NT_INFORMATION(Status)`: severity "informational" (`0x4…`).
#[inline]
#[must_use]
#[allow(clippy::cast_sign_loss)]
pub const fn NT_INFORMATION(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 1
}

/// `NT_WARNING(Status)`: severity "warning" (`0x8…`).
#[inline]
#[must_use]
#[allow(clippy::cast_sign_loss)]
pub const fn NT_WARNING(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 2
}

/// `NT_ERROR(Status)`: severity "error" (`0xC…`).
#[inline]
#[must_use]
#[allow(clippy::cast_sign_loss)]
pub const fn NT_ERROR(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 3
}

/// `GUID` (`guiddef.h`): a 128-bit identifier.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct GUID {
    /// `Data1`.
    pub Data1: ULONG,
    /// `Data2`.
    pub Data2: USHORT,
    /// `Data3`.
    pub Data3: USHORT,
    /// `Data4`.
    pub Data4: [UCHAR; 8],
}

/// `PGUID`: pointer to [`GUID`].
pub type PGUID = *mut GUID;

/// `LIST_ENTRY`: a node of a doubly linked list.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    /// `Flink`: next entry.
    pub Flink: *mut LIST_ENTRY,
    /// `Blink`: previous entry.
    pub Blink: *mut LIST_ENTRY,
}

/// `PLIST_ENTRY`: pointer to [`LIST_ENTRY`].
pub type PLIST_ENTRY = *mut LIST_ENTRY;

/// `UNICODE_STRING`: a counted UTF-16 string.
///
/// `Length` and `MaximumLength` are in **bytes**, not characters; the buffer
/// need not be NUL-terminated.
///
/// <https://learn.microsoft.com/windows/win32/api/ntdef/ns-ntdef-_unicode_string>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    /// `Length`: bytes in use, without any terminating NUL.
    pub Length: USHORT,
    /// `MaximumLength`: bytes allocated at `Buffer`.
    pub MaximumLength: USHORT,
    /// `Buffer`: the UTF-16 code units.
    pub Buffer: PWSTR,
}

/// `PUNICODE_STRING`: pointer to [`UNICODE_STRING`].
pub type PUNICODE_STRING = *mut UNICODE_STRING;
/// `PCUNICODE_STRING`: pointer to constant [`UNICODE_STRING`].
pub type PCUNICODE_STRING = *const UNICODE_STRING;

/// `SINGLE_LIST_ENTRY`: a node of a singly linked list.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SINGLE_LIST_ENTRY {
    /// `Next`: next entry.
    pub Next: *mut SINGLE_LIST_ENTRY,
}

/// `PSINGLE_LIST_ENTRY`: pointer to [`SINGLE_LIST_ENTRY`].
pub type PSINGLE_LIST_ENTRY = *mut SINGLE_LIST_ENTRY;

/// `LARGE_INTEGER`: a 64-bit signed integer (the C union's `QuadPart`).
///
/// Time-outs in kernel waits are `LARGE_INTEGER`s in 100 ns units, negative
/// for relative times.
pub type LARGE_INTEGER = LONGLONG;
/// `PLARGE_INTEGER`: pointer to [`LARGE_INTEGER`].
pub type PLARGE_INTEGER = *mut LARGE_INTEGER;

/// `ULARGE_INTEGER`: a 64-bit unsigned integer (the C union's `QuadPart`).
pub type ULARGE_INTEGER = ULONGLONG;

static_assertions::assert_eq_size!(GUID, [u8; 16]);
static_assertions::assert_eq_align!(GUID, u32);
static_assertions::assert_eq_size!(UNICODE_STRING, [usize; 2]);
static_assertions::const_assert_eq!(core::mem::offset_of!(UNICODE_STRING, Buffer), 8);
static_assertions::assert_eq_size!(LIST_ENTRY, [usize; 2]);
static_assertions::assert_eq_size!(SINGLE_LIST_ENTRY, usize);
