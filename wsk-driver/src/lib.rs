//! What a Rust kernel driver built without the WDK needs around
//! [`wsk`](https://docs.rs/wsk): the runtime of `cargo wsk new`'s drivers
//! and of the `wsk` repository's examples.
//!
//! - [`entry!`]: turns `fn driver_entry(driver, registry_path, &mut Passive) ->
//!   Result<impl Driver, E>` and [`Driver::unload`](entry::Driver::unload)
//!   into `DriverEntry` and `DriverUnload`, minting the `PASSIVE_LEVEL`
//!   tokens in the one place each is true; it also installs [`runtime!`].
//! - [`runtime!`]: the non-paged [`pool::KernelAllocator`] as
//!   `#[global_allocator]`, the panic handler (the message through
//!   `DbgPrint`, then `KeBugCheckEx` with [`panic::PANIC_BUGCHECK_CODE`]),
//!   and the symbols the precompiled `core` needs on Windows targets.
//! - [`dbg_print!`] / [`dbg_println!`]: `core::fmt` formatting printed with
//!   `DbgPrint`, safe at any IRQL up to `DISPATCH_LEVEL` ([`print`]).
//! - [`registry::Parameters`]: `REG_DWORD` / `REG_SZ` values of the
//!   service's `Parameters` key.
//! - [`thread::SystemThread`]: a closure on a system thread, with join.
//! - `build` (feature `build`): the link arguments, for the driver's
//!   `build.rs`.
//!
//! # A driver crate
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wsk = "0.1"
//! wsk-driver = "0.1"
//!
//! [build-dependencies]
//! wsk-driver = { version = "0.1", default-features = false, features = ["build"] }
//!
//! [dev-dependencies]
//! wsk-sim = "0.1"
//!
//! # Kernel code cannot unwind (test harnesses still do).
//! [profile.dev]
//! panic = "abort"
//! [profile.release]
//! panic = "abort"
//! ```
//!
//! ```ignore
//! // build.rs
//! fn main() { wsk_driver::build::link_driver(); }
//! ```
//!
//! ```
//! // src/lib.rs (which starts with `#![cfg_attr(not(test), no_std)]`)
//! # use wsk_sim as _;
//! use wsk::irql::Passive;
//! use wsk_driver::entry::{Driver, DriverObject};
//! use wsk_driver::registry::{Parameters, RegistryPath};
//!
//! wsk_driver::entry!(driver_entry, pool_tag: *b"Hllo");
//!
//! struct Hello;
//!
//! fn driver_entry(
//!     _driver: DriverObject,
//!     registry_path: RegistryPath<'_>,
//!     passive: &mut Passive<'_>,
//! ) -> Result<Hello, wsk::Error> {
//!     let params = Parameters::open(registry_path, passive);
//!     let n = params.as_ref().and_then(|p| p.dword("Count")).unwrap_or(1);
//!     wsk_driver::dbg_println!("hello: loaded, count={n}");
//!     Ok(Hello)
//! }
//!
//! impl Driver for Hello {
//!     fn unload(self, _passive: &mut Passive<'_>) {
//!         wsk_driver::dbg_println!("hello: unloaded");
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! `cargo wsk build` then links it with the toolchain's `rust-lld` into a
//! checked `.sys`. Everything kernel-specific the macros add is behind
//! `cfg(all(windows, not(test)))` of the *driver* crate, so its unit tests
//! build with `std` on any host and run against `wsk-sim`.
//!
//! # With windows-drivers-rs instead
//!
//! A driver that uses `wdk`, `wdk-alloc` and `wdk-panic` (and builds with
//! the WDK) already has an allocator, a panic handler and `DbgPrint`: it
//! depends on `wsk` alone, not on this crate (see `docs/building.md`).
#![no_std]

extern crate alloc;

#[cfg(any(feature = "build", test))]
pub mod build;
#[cfg(feature = "runtime")]
pub mod entry;
#[cfg(feature = "runtime")]
pub mod panic;
#[cfg(feature = "runtime")]
pub mod pool;
#[cfg(feature = "runtime")]
pub mod print;
#[cfg(feature = "runtime")]
pub mod registry;
#[cfg(feature = "runtime")]
pub mod thread;

/// `memcmp` for drivers: the `C` runtime comparison `core` and LLVM call,
/// implemented over `RtlCompareMemory` (an `ntoskrnl.exe` routine since
/// Windows 2000,
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcomparememory>),
/// because Microsoft documents no `memcmp` export of `ntoskrnl.exe`.
///
/// # Safety
///
/// `a` and `b` are readable for `n` bytes of non-paged memory (at
/// `DISPATCH_LEVEL`; any memory at `PASSIVE_LEVEL`).
#[cfg(feature = "runtime")]
#[doc(hidden)]
#[must_use]
pub unsafe fn __memcmp(left: *const u8, right: *const u8, len: usize) -> i32 {
    // SAFETY: the caller's contract: both blocks are readable for `len` bytes.
    let equal = unsafe { wsk_sys::RtlCompareMemory(left.cast(), right.cast(), len) };
    if equal >= len {
        return 0;
    }
    // `equal < len`: the bytes at `equal` lie inside both blocks.
    let (l, r) = (left.wrapping_add(equal), right.wrapping_add(equal));
    // SAFETY: `l` is inside the block, which is readable.
    let l = unsafe { l.read() };
    // SAFETY: as above for `r`.
    let r = unsafe { r.read() };
    i32::from(l) - i32::from(r)
}

/// Installs the driver runtime in the calling crate, for non-test builds on
/// Windows targets: [`pool::KernelAllocator`] (tagged `pool_tag`, default
/// `*b"Rust"`) as `#[global_allocator]`; the panic handler
/// ([`panic::bugcheck`]); `_fltused`; a `__CxxFrameHandler3` stub
/// (referenced by unwind tables in the precompiled `core`, never called
/// with `panic = "abort"`); `memcmp` ([`__memcmp`]); and `raw-dylib`
/// imports from `ntoskrnl.exe` of `memcpy`, `memmove` and `memset`, which
/// `core`, `alloc` and LLVM's code call, and of `strlen` and `__chkstk`,
/// which only discarded code references (lld-link resolves every referenced
/// symbol, even in code it later discards; only those actually used end up
/// imported, and `cargo wsk build` checks them).
///
/// [`entry!`] includes it; use it alone in a driver that writes its own
/// `DriverEntry`. Use it once, at the crate root of a driver built with
/// `panic = "abort"`.
#[cfg(feature = "runtime")]
#[macro_export]
macro_rules! runtime {
    () => {
        $crate::runtime!(pool_tag: *b"Rust");
    };
    (pool_tag: $tag:expr $(,)?) => {
        #[cfg(all(target_os = "windows", not(test)))]
        #[global_allocator]
        static __WSK_DRIVER_ALLOCATOR: $crate::pool::KernelAllocator =
            $crate::pool::KernelAllocator::new($tag);

        #[cfg(all(target_os = "windows", not(test)))]
        #[panic_handler]
        fn __wsk_driver_panic(info: &::core::panic::PanicInfo<'_>) -> ! {
            $crate::panic::bugcheck(info)
        }

        #[cfg(all(target_os = "windows", not(test)))]
        $crate::__windows_runtime_symbols!();
    };
}

/// The Windows-only symbols of [`runtime!`].
#[cfg(feature = "runtime")]
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

        /// `memcmp` over `RtlCompareMemory`.
        ///
        /// # Safety
        ///
        /// As `memcmp`: both blocks readable for `n` bytes.
        #[unsafe(no_mangle)]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: forwarded from the caller.
            unsafe { $crate::__memcmp(a, b, n) }
        }

        #[allow(dead_code)]
        #[link(name = "ntoskrnl.exe", kind = "raw-dylib", modifiers = "+verbatim")]
        unsafe extern "C" {
            fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
            fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
            fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8;
            // Referenced only by code the linker discards (`CString`, frames
            // above 4 KiB): declared so that the link resolves, never seen
            // imported. `cargo wsk build` lists them if they ever are (no
            // Microsoft page documents these exports).
            fn strlen(s: *const u8) -> usize;
            fn __chkstk();
        }
    };
}

/// Defines `DriverEntry` (and, through it, `DriverUnload`) for a driver
/// written as a start function and a [`Driver`](entry::Driver), and
/// installs [`runtime!`]:
///
/// ```ignore
/// wsk_driver::entry!(driver_entry);                   // pool tag "Rust"
/// wsk_driver::entry!(driver_entry, pool_tag: *b"Echo");
///
/// fn driver_entry(driver: DriverObject, registry_path: RegistryPath<'_>, passive: &mut Passive<'_>)
///     -> Result<impl Driver, E>            // E: Into<NTSTATUS>, e.g. wsk::Error
/// ```
///
/// The generated `DriverEntry` is a plain `extern "system"` function, also
/// in host builds, so a host test loads and unloads the whole driver
/// through `wsk_sim::DriverHost` (`docs/testing.md`;
/// [`entry::driver_entry`] documents what it does).
#[cfg(feature = "runtime")]
#[macro_export]
macro_rules! entry {
    ($start:path $(, pool_tag: $tag:expr)? $(,)?) => {
        $crate::runtime!($(pool_tag: $tag)?);

        /// The driver's entry point, called by the I/O manager.
        ///
        /// # Safety
        ///
        /// Called once per load, at `PASSIVE_LEVEL`, with the driver's valid
        /// `DRIVER_OBJECT` and service key path.
        #[unsafe(no_mangle)]
        pub unsafe extern "system" fn DriverEntry(
            driver: *mut $crate::__sys::DRIVER_OBJECT,
            registry_path: *mut $crate::__sys::UNICODE_STRING,
        ) -> $crate::__sys::NTSTATUS {
            // SAFETY: forwarded from the I/O manager's contract above.
            unsafe { $crate::entry::driver_entry(driver, registry_path, $start) }
        }
    };
}

/// `wsk-sys`, for the macros.
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub use wsk_sys as __sys;
