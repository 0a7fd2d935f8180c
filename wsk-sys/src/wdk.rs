//! Interoperation with [`wdk-sys`](https://docs.rs/wdk-sys) 0.5, the raw
//! layer of [windows-drivers-rs](https://github.com/microsoft/windows-drivers-rs).
//!
//! A windows-drivers-rs driver receives `wdk_sys` pointers (its
//! `DriverEntry`'s `PDRIVER_OBJECT`, the `PIRP`s of its dispatch routines) and
//! may want to hand them to code written against this crate, or the other way
//! round. Both crates mirror the same `wdm.h` structures, so the conversions
//! below are plain pointer casts: they are safe functions (nothing is
//! dereferenced), and what the pointer may be used for is unchanged.
//! [`NTSTATUS`](crate::NTSTATUS) is `i32` in both crates and needs no
//! conversion.
//!
//! The module also checks, at compile time, that both definitions of each
//! structure have the same size and alignment and agree on key field
//! offsets. `DEVICE_OBJECT` is opaque here, so only its pointers convert.
//!
//! # Enabling
//!
//! ```toml
//! [dependencies]
//! wsk-sys = { version = "0.1", features = ["wdk-sys"] }
//! ```
//!
//! The feature only exists on Windows targets, and `wdk-sys` builds only on a
//! Windows host with the Windows Driver Kit installed and a WDM or KMDF driver
//! configuration (`[package.metadata.wdk.driver-model]`), as set up for
//! windows-drivers-rs (`wdk-build`, LLVM/Clang, the eWDK or a WDK install).
//! The default build of this crate needs none of that.

use core::mem::offset_of;

use static_assertions::{assert_eq_align, assert_eq_size, assert_type_eq_all, const_assert_eq};

/// Converts a `wdk_sys::PIRP` to this crate's [`PIRP`](crate::PIRP).
#[inline]
#[must_use]
pub const fn irp_from_wdk(irp: wdk_sys::PIRP) -> crate::PIRP {
    irp.cast()
}

/// Converts this crate's [`PIRP`](crate::PIRP) to a `wdk_sys::PIRP`.
#[inline]
#[must_use]
pub const fn irp_to_wdk(irp: crate::PIRP) -> wdk_sys::PIRP {
    irp.cast()
}

/// Converts a `wdk_sys::PIO_STACK_LOCATION` to this crate's
/// [`PIO_STACK_LOCATION`](crate::PIO_STACK_LOCATION).
#[inline]
#[must_use]
pub const fn io_stack_location_from_wdk(
    location: wdk_sys::PIO_STACK_LOCATION,
) -> crate::PIO_STACK_LOCATION {
    location.cast()
}

/// Converts this crate's [`PIO_STACK_LOCATION`](crate::PIO_STACK_LOCATION) to
/// a `wdk_sys::PIO_STACK_LOCATION`.
#[inline]
#[must_use]
pub const fn io_stack_location_to_wdk(
    location: crate::PIO_STACK_LOCATION,
) -> wdk_sys::PIO_STACK_LOCATION {
    location.cast()
}

/// Converts a `wdk_sys::PMDL` to this crate's [`PMDL`](crate::PMDL).
#[inline]
#[must_use]
pub const fn mdl_from_wdk(mdl: wdk_sys::PMDL) -> crate::PMDL {
    mdl.cast()
}

/// Converts this crate's [`PMDL`](crate::PMDL) to a `wdk_sys::PMDL`.
#[inline]
#[must_use]
pub const fn mdl_to_wdk(mdl: crate::PMDL) -> wdk_sys::PMDL {
    mdl.cast()
}

/// Converts a `wdk_sys::PDRIVER_OBJECT` to this crate's
/// [`PDRIVER_OBJECT`](crate::PDRIVER_OBJECT).
#[inline]
#[must_use]
pub const fn driver_object_from_wdk(driver: wdk_sys::PDRIVER_OBJECT) -> crate::PDRIVER_OBJECT {
    driver.cast()
}

/// Converts this crate's [`PDRIVER_OBJECT`](crate::PDRIVER_OBJECT) to a
/// `wdk_sys::PDRIVER_OBJECT`.
#[inline]
#[must_use]
pub const fn driver_object_to_wdk(driver: crate::PDRIVER_OBJECT) -> wdk_sys::PDRIVER_OBJECT {
    driver.cast()
}

/// Converts a `wdk_sys::PDEVICE_OBJECT` to this crate's
/// [`PDEVICE_OBJECT`](crate::PDEVICE_OBJECT).
#[inline]
#[must_use]
pub const fn device_object_from_wdk(device: wdk_sys::PDEVICE_OBJECT) -> crate::PDEVICE_OBJECT {
    device.cast()
}

/// Converts this crate's [`PDEVICE_OBJECT`](crate::PDEVICE_OBJECT) to a
/// `wdk_sys::PDEVICE_OBJECT`.
#[inline]
#[must_use]
pub const fn device_object_to_wdk(device: crate::PDEVICE_OBJECT) -> wdk_sys::PDEVICE_OBJECT {
    device.cast()
}

/// Converts a `wdk_sys::PUNICODE_STRING` to this crate's
/// [`PUNICODE_STRING`](crate::PUNICODE_STRING).
#[inline]
#[must_use]
pub const fn unicode_string_from_wdk(string: wdk_sys::PUNICODE_STRING) -> crate::PUNICODE_STRING {
    string.cast()
}

/// Converts this crate's [`PUNICODE_STRING`](crate::PUNICODE_STRING) to a
/// `wdk_sys::PUNICODE_STRING`.
#[inline]
#[must_use]
pub const fn unicode_string_to_wdk(string: crate::PUNICODE_STRING) -> wdk_sys::PUNICODE_STRING {
    string.cast()
}

/// Converts a `wdk_sys::PKEVENT` to this crate's [`PKEVENT`](crate::PKEVENT).
#[inline]
#[must_use]
pub const fn kevent_from_wdk(event: wdk_sys::PKEVENT) -> crate::PKEVENT {
    event.cast()
}

/// Converts this crate's [`PKEVENT`](crate::PKEVENT) to a `wdk_sys::PKEVENT`.
#[inline]
#[must_use]
pub const fn kevent_to_wdk(event: crate::PKEVENT) -> wdk_sys::PKEVENT {
    event.cast()
}

// NTSTATUS is the same type (`LONG`, `i32`) in both crates.
assert_type_eq_all!(wdk_sys::NTSTATUS, crate::NTSTATUS);

// The structures agree in size and alignment…
assert_eq_size!(wdk_sys::IRP, crate::IRP);
assert_eq_align!(wdk_sys::IRP, crate::IRP);
assert_eq_size!(wdk_sys::IO_STACK_LOCATION, crate::IO_STACK_LOCATION);
assert_eq_align!(wdk_sys::IO_STACK_LOCATION, crate::IO_STACK_LOCATION);
assert_eq_size!(wdk_sys::IO_STATUS_BLOCK, crate::IO_STATUS_BLOCK);
assert_eq_align!(wdk_sys::IO_STATUS_BLOCK, crate::IO_STATUS_BLOCK);
assert_eq_size!(wdk_sys::MDL, crate::MDL);
assert_eq_align!(wdk_sys::MDL, crate::MDL);
assert_eq_size!(wdk_sys::DRIVER_OBJECT, crate::DRIVER_OBJECT);
assert_eq_align!(wdk_sys::DRIVER_OBJECT, crate::DRIVER_OBJECT);
assert_eq_size!(wdk_sys::UNICODE_STRING, crate::UNICODE_STRING);
assert_eq_align!(wdk_sys::UNICODE_STRING, crate::UNICODE_STRING);
assert_eq_size!(wdk_sys::KEVENT, crate::KEVENT);
assert_eq_align!(wdk_sys::KEVENT, crate::KEVENT);
assert_eq_size!(wdk_sys::OBJECT_ATTRIBUTES, crate::OBJECT_ATTRIBUTES);
assert_eq_align!(wdk_sys::OBJECT_ATTRIBUTES, crate::OBJECT_ATTRIBUTES);

// …and on the offsets of the named fields drivers use.
const_assert_eq!(
    offset_of!(wdk_sys::IRP, MdlAddress),
    offset_of!(crate::IRP, MdlAddress)
);
const_assert_eq!(
    offset_of!(wdk_sys::IRP, IoStatus),
    offset_of!(crate::IRP, IoStatus)
);
const_assert_eq!(
    offset_of!(wdk_sys::IRP, CancelRoutine),
    offset_of!(crate::IRP, CancelRoutine)
);
const_assert_eq!(
    offset_of!(wdk_sys::IRP, UserBuffer),
    offset_of!(crate::IRP, UserBuffer)
);
const_assert_eq!(offset_of!(wdk_sys::IRP, Tail), offset_of!(crate::IRP, Tail));
const_assert_eq!(
    offset_of!(wdk_sys::IO_STACK_LOCATION, Parameters),
    offset_of!(crate::IO_STACK_LOCATION, Parameters)
);
const_assert_eq!(
    offset_of!(wdk_sys::IO_STACK_LOCATION, CompletionRoutine),
    offset_of!(crate::IO_STACK_LOCATION, CompletionRoutine)
);
const_assert_eq!(
    offset_of!(wdk_sys::IO_STACK_LOCATION, Context),
    offset_of!(crate::IO_STACK_LOCATION, Context)
);
const_assert_eq!(
    offset_of!(wdk_sys::IO_STATUS_BLOCK, Information),
    offset_of!(crate::IO_STATUS_BLOCK, Information)
);
const_assert_eq!(
    offset_of!(wdk_sys::MDL, MdlFlags),
    offset_of!(crate::MDL, MdlFlags)
);
const_assert_eq!(
    offset_of!(wdk_sys::MDL, MappedSystemVa),
    offset_of!(crate::MDL, MappedSystemVa)
);
const_assert_eq!(
    offset_of!(wdk_sys::MDL, StartVa),
    offset_of!(crate::MDL, StartVa)
);
const_assert_eq!(
    offset_of!(wdk_sys::MDL, ByteCount),
    offset_of!(crate::MDL, ByteCount)
);
const_assert_eq!(
    offset_of!(wdk_sys::MDL, ByteOffset),
    offset_of!(crate::MDL, ByteOffset)
);
const_assert_eq!(
    offset_of!(wdk_sys::DRIVER_OBJECT, DriverExtension),
    offset_of!(crate::DRIVER_OBJECT, DriverExtension)
);
const_assert_eq!(
    offset_of!(wdk_sys::DRIVER_OBJECT, DriverUnload),
    offset_of!(crate::DRIVER_OBJECT, DriverUnload)
);
const_assert_eq!(
    offset_of!(wdk_sys::DRIVER_OBJECT, MajorFunction),
    offset_of!(crate::DRIVER_OBJECT, MajorFunction)
);
const_assert_eq!(
    offset_of!(wdk_sys::UNICODE_STRING, Buffer),
    offset_of!(crate::UNICODE_STRING, Buffer)
);
