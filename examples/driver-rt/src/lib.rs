//! What every Rust kernel driver built without the WDK needs, and nothing
//! WSK-specific: the support crate of this repository's example drivers.
//!
//! - [`pool::KernelAllocator`]: a `#[global_allocator]` over the non-paged
//!   pool (`ExAllocatePoolWithTag(NonPagedPoolNx)`), alignments above 16
//!   handled;
//! - a panic handler that prints the message with `DbgPrint` and calls
//!   `KeBugCheckEx` ([`mod@panic`]);
//! - [`dbg_print!`] / [`dbg_println!`]: `core::fmt` formatting into a stack
//!   buffer, printed with `DbgPrint("%s", buf)`;
//! - [`registry::Parameters`]: `REG_DWORD` / `REG_SZ` values of the service's
//!   `Parameters` key, as `Option`s;
//! - [`thread::SystemThread`]: a closure on a system thread, joined at unload;
//! - [`driver_runtime!`]: one line at a driver's crate root that installs the
//!   allocator and panic handler and, on Windows targets, the symbols the
//!   precompiled `core` references (`_fltused`, `__CxxFrameHandler3`,
//!   the C runtime routines from `ntoskrnl.exe`).
//!
//! # A driver crate
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [package]
//! build = "../driver-rt/driver-build.rs"   # /DRIVER /SUBSYSTEM:NATIVE /ENTRY:DriverEntry …
//! ```
//!
//! ```ignore
//! #![cfg_attr(not(test), no_std)]
//! wsk_driver_rt::driver_runtime!(pool_tag: *b"Echo");
//!
//! #[unsafe(no_mangle)]
//! pub unsafe extern "system" fn DriverEntry(driver: *mut DRIVER_OBJECT, path: *mut UNICODE_STRING) -> NTSTATUS {
//!     wsk_driver_rt::dbg_println!("hello from Rust");
//!     STATUS_SUCCESS
//! }
//! ```
//!
//! Everything kernel-specific in [`driver_runtime!`] is behind
//! `cfg(not(test))` of the *driver* crate, so its unit tests build with `std`
//! on any host. The crate itself builds and tests on any host; its routines
//! call into `ntoskrnl.exe` only when used.
#![no_std]

extern crate alloc;

pub mod panic;
pub mod pool;
pub mod print;
pub mod registry;
use wsk_sys as sys;
pub mod thread;

/// Installs the driver runtime in the calling crate: the pool allocator as
/// `#[global_allocator]` (tagged `pool_tag`, default `*b"Rust"`) and the
/// `DbgPrint` + `KeBugCheckEx` panic handler, both for non-test builds; on
/// Windows targets also `_fltused`, a `__CxxFrameHandler3` stub (referenced
/// by unwind tables in the precompiled `core`, never called with
/// `panic = "abort"`) and imports from `ntoskrnl.exe` of the C runtime
/// routines that the precompiled `core` and `alloc` and LLVM's code may call:
/// `memcpy`, `memmove`, `memset`, `memcmp`, `strlen` (lld-link resolves every
/// referenced symbol, even in code it later discards) and `__chkstk` (stack
/// frames above 4 KiB). Only those actually referenced end up imported.
///
/// Use it once, at the crate root of a driver built with `panic = "abort"`.
#[macro_export]
macro_rules! driver_runtime {
    () => {
        $crate::driver_runtime!(pool_tag: *b"Rust");
    };
    (pool_tag: $tag:expr $(,)?) => {
        #[cfg(not(test))]
        #[global_allocator]
        static __WSK_DRIVER_RT_ALLOCATOR: $crate::pool::KernelAllocator =
            $crate::pool::KernelAllocator::new($tag);

        #[cfg(not(test))]
        #[panic_handler]
        fn __wsk_driver_rt_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::panic::bugcheck(info)
        }

        #[cfg(all(target_os = "windows", not(test)))]
        $crate::__windows_runtime_symbols!();
    };
}

/// The Windows-only part of [`driver_runtime!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __windows_runtime_symbols {
    () => {
        /// Referenced by objects that use floating point (MSVC convention).
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        static _fltused: i32 = 0;

        /// C++ EH personality named by unwind tables in the precompiled
        /// `core`; with `panic = "abort"` nothing unwinds, so it only ever
        /// answers `ExceptionContinueSearch`.
        #[allow(non_snake_case)]
        #[unsafe(no_mangle)]
        extern "C" fn __CxxFrameHandler3(
            _record: *mut ::core::ffi::c_void,
            _frame: *mut ::core::ffi::c_void,
            _context: *mut ::core::ffi::c_void,
            _dispatcher: *mut ::core::ffi::c_void,
        ) -> i32 {
            1
        }

        #[allow(dead_code)]
        #[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
        unsafe extern "C" {
            fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
            fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
            fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8;
            fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32;
            fn strlen(s: *const u8) -> usize;
            fn __chkstk();
        }
    };
}
