//! Raw bindings to the Windows **Winsock Kernel** (WSK) DDI.
//!
//! This crate mirrors Microsoft's C headers one module per header, keeping the
//! C names so that the DDI reference on Microsoft Learn applies verbatim:
//!
//! | module | C header | contents |
//! |---|---|---|
//! | [`ntdef`] | `ntdef.h`, `minwindef.h`, `guiddef.h` | base types (`ULONG`, `PVOID`, `GUID`, `UNICODE_STRING`, …) |
//! | [`ntstatus`] | `ntstatus.h` | the `NTSTATUS` codes WSK and the I/O manager return |
//! | [`km`] | `wdm.h` | the kernel subset a WSK client needs: `IRP`, `IO_STACK_LOCATION`, `MDL`, `KEVENT`, work items, pool, IRQL, and the `ntoskrnl.exe` routines |
//! | [`ws2def`] | `ws2def.h`, `ws2ipdef.h`, `mswsockdef.h` | socket addresses, `ADDRINFOEXW`, `CMSGHDR`, address families, socket types, protocols and options |
//! | [`netioddk`] | `netioddk.h` | Network Module Registrar types (`NPIID`, `NPI_CLIENT_CHARACTERISTICS`, …) |
//! | [`wsk`] | `wsk.h` | every WSK structure, dispatch table, `PFN_WSK_*` type and constant, and the four `netio.sys` exports |
//!
//! Everything is re-exported at the crate root, as the C headers put it in one
//! namespace.
//!
//! # Linking
//!
//! On Windows targets the routines are imported from `ntoskrnl.exe` and
//! `netio.sys` with `raw-dylib`, so no WDK import library is needed. On any
//! other target — and on Windows when the `sim` feature is on — the symbols are
//! left for the final link to resolve: [`wsk-sim`](https://docs.rs/wsk-sim)
//! exports every one of them from user mode so that WSK code runs in host tests.
//!
//! # Features
//!
//! - `sim`: turned on by `wsk-sim`; drops the kernel imports so that the host
//!   provider supplies the symbols (also in Windows user-mode tests).
//! - `wdk-sys` (Windows hosts with the WDK only): conversions and layout
//!   agreement checks between these types and `wdk_sys`'s for windows-drivers-rs
//!   drivers; see the `wdk` module.
//!
//! # Layout
//!
//! Every structure's size, alignment and field offsets are checked at compile
//! time for 64-bit Windows (`x86_64` and `aarch64`, which share the LLP64 data
//! model) against the values Microsoft's headers give, and a CI test compares
//! them with Wine's independent `ddk/wsk.h` compiled by a C compiler.
//!
//! All routines and callback types are `unsafe`: this crate checks nothing.
//! The [`wsk`](https://docs.rs/wsk) crate is the safe layer.
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![allow(clippy::upper_case_acronyms)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod km;
pub mod netioddk;
pub mod ntdef;
pub mod ntstatus;
pub mod ws2def;
pub mod wsk;

#[cfg(all(windows, feature = "wdk-sys"))]
pub mod wdk;

pub use km::*;
pub use netioddk::*;
pub use ntdef::*;
pub use ntstatus::*;
pub use ws2def::*;
pub use wsk::*;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("wsk-sys supports 64-bit Windows (x86_64, aarch64) and 64-bit hosts only");
