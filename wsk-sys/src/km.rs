//! Kernel subset (`wdm.h`). Being written: see issue 2.
use crate::ntdef::*;
/// `IRP` (placeholder until the full definition lands).
#[repr(C)]
pub struct IRP { _p: [u8; 0] }
/// `PIRP`.
pub type PIRP = *mut IRP;
/// `MDL`.
#[repr(C)]
pub struct MDL { _p: [u8; 0] }
/// `PMDL`.
pub type PMDL = *mut MDL;
/// `PEPROCESS`.
pub type PEPROCESS = PVOID;
/// `PETHREAD`.
pub type PETHREAD = PVOID;
/// `PSECURITY_DESCRIPTOR`.
pub type PSECURITY_DESCRIPTOR = PVOID;
/// `KSPIN_LOCK`.
pub type KSPIN_LOCK = ULONG_PTR;
