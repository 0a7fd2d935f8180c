//! Network Module Registrar (NMR): the registration layer under WSK.
//!
//! C headers (Windows Driver Kit): `km/netioddk.h` (unchanged from WDK
//! 10.0.14393 to 10.0.22621) and the NMR part of `shared/netiodef.h`
//! (`NPIID`, `NPI_MODULEID`). A WSK client normally uses only [`NPIID`]
//! (`NPI_WSK_INTERFACE_ID` in [`crate::wsk`]) and registers through
//! `WskRegister`; the NMR routines are declared for clients that attach to the
//! WSK provider through the NMR directly.
//!
//! The `Nmr*` routines are exported by `netio.sys` (Microsoft's import library
//! is `netio.lib`).
//!
//! Reference: <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/>,
//! <https://learn.microsoft.com/windows-hardware/drivers/network/network-module-registrar2>

use core::fmt;

use crate::ntdef::{GUID, HANDLE, LONG, NTSTATUS, PCVOID, PHANDLE, PVOID, ULONG, USHORT};

/// `NPIID` (`netiodef.h`): a Network Programming Interface identifier.
pub type NPIID = GUID;
/// `PNPIID`: pointer to a constant [`NPIID`].
pub type PNPIID = *const NPIID;

/// `LUID` (`ntdef.h`): a locally unique identifier, used by
/// [`NPI_MODULEID`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LUID {
    /// `LowPart`.
    pub LowPart: ULONG,
    /// `HighPart`.
    pub HighPart: LONG,
}
/// `PLUID`: pointer to [`LUID`].
pub type PLUID = *mut LUID;

/// `NPI_MODULEID_TYPE` (`netiodef.h`): which member of [`NPI_MODULEID`]'s
/// union is valid (a C `enum`).
pub type NPI_MODULEID_TYPE = i32;
/// `MIT_GUID`: the module is identified by a GUID.
pub const MIT_GUID: NPI_MODULEID_TYPE = 1;
/// `MIT_IF_LUID`: the module is identified by an interface LUID.
pub const MIT_IF_LUID: NPI_MODULEID_TYPE = 2;

/// The anonymous union of [`NPI_MODULEID`].
#[repr(C)]
#[derive(Clone, Copy)]
pub union NPI_MODULEID_U {
    /// `Guid`: valid for [`MIT_GUID`].
    pub Guid: GUID,
    /// `IfLuid`: valid for [`MIT_IF_LUID`].
    pub IfLuid: LUID,
}

/// `NPI_MODULEID` (`netiodef.h`): identifies a network module (a WSK client
/// or provider) to the NMR. Persistable.
///
/// See [`NPI_REGISTRATION_INSTANCE`]'s `ModuleId` on
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/ns-netioddk-_npi_registration_instance>.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NPI_MODULEID {
    /// `Length`: `sizeof(NPI_MODULEID)`.
    pub Length: USHORT,
    /// `Type`: [`MIT_GUID`] or [`MIT_IF_LUID`].
    pub Type: NPI_MODULEID_TYPE,
    /// The anonymous union: `Guid` or `IfLuid`, chosen by `Type`.
    pub u: NPI_MODULEID_U,
}
/// `PNPI_MODULEID`: pointer to a constant [`NPI_MODULEID`].
pub type PNPI_MODULEID = *const NPI_MODULEID;

impl NPI_MODULEID {
    /// A GUID module id ([`MIT_GUID`]) with `Length` filled in.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)]
    pub const fn from_guid(guid: GUID) -> Self {
        Self {
            Length: core::mem::size_of::<Self>() as USHORT,
            Type: MIT_GUID,
            u: NPI_MODULEID_U { Guid: guid },
        }
    }
}

impl fmt::Debug for NPI_MODULEID {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("NPI_MODULEID");
        d.field("Length", &self.Length).field("Type", &self.Type);
        match self.Type {
            // SAFETY: `Type` says the GUID member is the valid one, and any
            // bit pattern is a valid GUID.
            MIT_GUID => d.field("Guid", &unsafe { self.u.Guid }),
            // SAFETY: `Type` says the LUID member is the valid one, and any
            // bit pattern is a valid LUID.
            MIT_IF_LUID => d.field("IfLuid", &unsafe { self.u.IfLuid }),
            _ => &mut d,
        };
        d.finish()
    }
}

/// `NPI_REGISTRATION_INSTANCE`: a network module's registration of one
/// implementation of an NPI. All pointed-to data must stay valid and resident
/// while the module is registered.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/ns-netioddk-_npi_registration_instance>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NPI_REGISTRATION_INSTANCE {
    /// `Version`: NMR version; set to 0.
    pub Version: USHORT,
    /// `Size`: `sizeof(NPI_REGISTRATION_INSTANCE)`.
    pub Size: USHORT,
    /// `NpiId`: the NPI registered for (e.g. `&NPI_WSK_INTERFACE_ID`).
    pub NpiId: PNPIID,
    /// `ModuleId`: the registering module.
    pub ModuleId: PNPI_MODULEID,
    /// `Number`: implementation number of the NPI, usually 0.
    pub Number: ULONG,
    /// `NpiSpecificCharacteristics` (optional): NPI-specific characteristics
    /// (for the WSK provider, a `WSK_PROVIDER_CHARACTERISTICS`).
    pub NpiSpecificCharacteristics: PCVOID,
}
/// `PNPI_REGISTRATION_INSTANCE`: pointer to a constant
/// [`NPI_REGISTRATION_INSTANCE`].
pub type PNPI_REGISTRATION_INSTANCE = *const NPI_REGISTRATION_INSTANCE;

/// `NPI`: a generic Network Programming Interface — a binding handle and a
/// dispatch table. `WSK_CLIENT_NPI`/`WSK_PROVIDER_NPI` have the same shape.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NPI {
    /// `Handle`: caller-specific handle passed to the functions.
    pub Handle: HANDLE,
    /// `Dispatch`: the NPI's function table.
    pub Dispatch: PCVOID,
}

/// `PNPI_CLIENT_ATTACH_PROVIDER_FN`: a client module's `ClientAttachProvider`
/// callback. Called by the NMR at IRQL = `PASSIVE_LEVEL`; returns
/// `STATUS_SUCCESS` (attached) or `STATUS_NOINTERFACE` (not attaching).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nc-netioddk-npi_client_attach_provider_fn>
pub type PNPI_CLIENT_ATTACH_PROVIDER_FN = Option<
    unsafe extern "system" fn(
        NmrBindingHandle: HANDLE,
        ClientContext: PVOID,
        ProviderRegistrationInstance: PNPI_REGISTRATION_INSTANCE,
    ) -> NTSTATUS,
>;

/// `PNPI_CLIENT_DETACH_PROVIDER_FN`: a client module's `ClientDetachProvider`
/// callback. Returns `STATUS_SUCCESS` or `STATUS_PENDING` (then the client
/// calls [`NmrClientDetachProviderComplete`] later).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nc-netioddk-npi_client_detach_provider_fn>
pub type PNPI_CLIENT_DETACH_PROVIDER_FN =
    Option<unsafe extern "system" fn(ClientBindingContext: PVOID) -> NTSTATUS>;

/// `PNPI_CLIENT_CLEANUP_BINDING_CONTEXT_FN`: a client module's
/// `ClientCleanupBindingContext` callback, after detach completes.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nc-netioddk-npi_client_cleanup_binding_context_fn>
pub type PNPI_CLIENT_CLEANUP_BINDING_CONTEXT_FN =
    Option<unsafe extern "system" fn(ClientBindingContext: PVOID)>;

/// `NPI_CLIENT_CHARACTERISTICS`: a client module's registration with the
/// NMR ([`NmrRegisterClient`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/ns-netioddk-_npi_client_characteristics>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NPI_CLIENT_CHARACTERISTICS {
    /// `Version`: set to 0.
    pub Version: USHORT,
    /// `Length`: `sizeof(NPI_CLIENT_CHARACTERISTICS)`.
    pub Length: USHORT,
    /// `ClientAttachProvider`.
    pub ClientAttachProvider: PNPI_CLIENT_ATTACH_PROVIDER_FN,
    /// `ClientDetachProvider`.
    pub ClientDetachProvider: PNPI_CLIENT_DETACH_PROVIDER_FN,
    /// `ClientCleanupBindingContext` (optional).
    pub ClientCleanupBindingContext: PNPI_CLIENT_CLEANUP_BINDING_CONTEXT_FN,
    /// `ClientRegistrationInstance`.
    pub ClientRegistrationInstance: NPI_REGISTRATION_INSTANCE,
}
/// `PNPI_CLIENT_CHARACTERISTICS`: pointer to a constant
/// [`NPI_CLIENT_CHARACTERISTICS`].
pub type PNPI_CLIENT_CHARACTERISTICS = *const NPI_CLIENT_CHARACTERISTICS;

/// `PNPI_PROVIDER_ATTACH_CLIENT_FN`: a provider module's
/// `ProviderAttachClient` callback.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nc-netioddk-npi_provider_attach_client_fn>
pub type PNPI_PROVIDER_ATTACH_CLIENT_FN = Option<
    unsafe extern "system" fn(
        NmrBindingHandle: HANDLE,
        ProviderContext: PVOID,
        ClientRegistrationInstance: PNPI_REGISTRATION_INSTANCE,
        ClientBindingContext: PVOID,
        ClientDispatch: PCVOID,
        ProviderBindingContext: *mut PVOID,
        ProviderDispatch: *mut PCVOID,
    ) -> NTSTATUS,
>;

/// `PNPI_PROVIDER_DETACH_CLIENT_FN`: a provider module's
/// `ProviderDetachClient` callback; returns `STATUS_SUCCESS` or
/// `STATUS_PENDING`.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nc-netioddk-npi_provider_detach_client_fn>
pub type PNPI_PROVIDER_DETACH_CLIENT_FN =
    Option<unsafe extern "system" fn(ProviderBindingContext: PVOID) -> NTSTATUS>;

/// `PNPI_PROVIDER_CLEANUP_BINDING_CONTEXT_FN`: a provider module's
/// `ProviderCleanupBindingContext` callback.
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nc-netioddk-npi_provider_cleanup_binding_context_fn>
pub type PNPI_PROVIDER_CLEANUP_BINDING_CONTEXT_FN =
    Option<unsafe extern "system" fn(ProviderBindingContext: PVOID)>;

/// `NPI_PROVIDER_CHARACTERISTICS`: a provider module's registration with the
/// NMR ([`NmrRegisterProvider`]).
///
/// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/ns-netioddk-_npi_provider_characteristics>
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NPI_PROVIDER_CHARACTERISTICS {
    /// `Version`: set to 0.
    pub Version: USHORT,
    /// `Length`: `sizeof(NPI_PROVIDER_CHARACTERISTICS)`.
    pub Length: USHORT,
    /// `ProviderAttachClient`.
    pub ProviderAttachClient: PNPI_PROVIDER_ATTACH_CLIENT_FN,
    /// `ProviderDetachClient`.
    pub ProviderDetachClient: PNPI_PROVIDER_DETACH_CLIENT_FN,
    /// `ProviderCleanupBindingContext` (optional).
    pub ProviderCleanupBindingContext: PNPI_PROVIDER_CLEANUP_BINDING_CONTEXT_FN,
    /// `ProviderRegistrationInstance`.
    pub ProviderRegistrationInstance: NPI_REGISTRATION_INSTANCE,
}
/// `PNPI_PROVIDER_CHARACTERISTICS`: pointer to a constant
/// [`NPI_PROVIDER_CHARACTERISTICS`].
pub type PNPI_PROVIDER_CHARACTERISTICS = *const NPI_PROVIDER_CHARACTERISTICS;

// The C prototypes carry no calling-convention keyword; on the 64-bit targets
// this crate supports "system" and "C" are the same convention.
#[cfg_attr(
    all(windows, not(feature = "sim")),
    link(name = "netio.sys", kind = "raw-dylib", modifiers = "+verbatim")
)]
unsafe extern "system" {
    /// `NmrRegisterClient`: registers a client module with the NMR.
    ///
    /// IRQL = `PASSIVE_LEVEL`. `ClientCharacteristics` and `ClientContext`
    /// must stay valid until deregistration completes.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrregisterclient>
    pub fn NmrRegisterClient(
        ClientCharacteristics: PNPI_CLIENT_CHARACTERISTICS,
        ClientContext: PVOID,
        NmrClientHandle: PHANDLE,
    ) -> NTSTATUS;

    /// `NmrDeregisterClient`: starts deregistering a client module; returns
    /// `STATUS_PENDING` while bindings remain.
    ///
    /// IRQL = `PASSIVE_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrderegisterclient>
    pub fn NmrDeregisterClient(NmrClientHandle: HANDLE) -> NTSTATUS;

    /// `NmrWaitForClientDeregisterComplete`: waits until a client's
    /// deregistration has completed.
    ///
    /// IRQL = `PASSIVE_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrwaitforclientderegistercomplete>
    pub fn NmrWaitForClientDeregisterComplete(NmrClientHandle: HANDLE) -> NTSTATUS;

    /// `NmrClientAttachProvider`: attaches a client module to a provider,
    /// from within its `ClientAttachProvider` callback.
    ///
    /// IRQL = `PASSIVE_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrclientattachprovider>
    pub fn NmrClientAttachProvider(
        NmrBindingHandle: HANDLE,
        ClientBindingContext: PVOID,
        ClientDispatch: PCVOID,
        ProviderBindingContext: *mut PVOID,
        ProviderDispatch: *mut PCVOID,
    ) -> NTSTATUS;

    /// `NmrClientDetachProviderComplete`: reports that a detach for which
    /// `ClientDetachProvider` returned `STATUS_PENDING` has completed.
    ///
    /// IRQL ≤ `DISPATCH_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrclientdetachprovidercomplete>
    pub fn NmrClientDetachProviderComplete(NmrBindingHandle: HANDLE);

    /// `NmrRegisterProvider`: registers a provider module with the NMR.
    ///
    /// IRQL = `PASSIVE_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrregisterprovider>
    pub fn NmrRegisterProvider(
        ProviderCharacteristics: PNPI_PROVIDER_CHARACTERISTICS,
        ProviderContext: PVOID,
        NmrProviderHandle: PHANDLE,
    ) -> NTSTATUS;

    /// `NmrDeregisterProvider`: starts deregistering a provider module.
    ///
    /// IRQL = `PASSIVE_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrderegisterprovider>
    pub fn NmrDeregisterProvider(NmrProviderHandle: HANDLE) -> NTSTATUS;

    /// `NmrWaitForProviderDeregisterComplete`: waits until a provider's
    /// deregistration has completed.
    ///
    /// IRQL = `PASSIVE_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrwaitforproviderderegistercomplete>
    pub fn NmrWaitForProviderDeregisterComplete(NmrProviderHandle: HANDLE) -> NTSTATUS;

    /// `NmrProviderDetachClientComplete`: reports that a detach for which
    /// `ProviderDetachClient` returned `STATUS_PENDING` has completed.
    ///
    /// IRQL ≤ `DISPATCH_LEVEL`.
    ///
    /// <https://learn.microsoft.com/windows-hardware/drivers/ddi/netioddk/nf-netioddk-nmrproviderdetachclientcomplete>
    pub fn NmrProviderDetachClientComplete(NmrBindingHandle: HANDLE);
}

// ---------------------------------------------------------------------------
// Layout checks: 64-bit Windows (LLP64), numbers derived from the C headers.
// ---------------------------------------------------------------------------

#[cfg(target_pointer_width = "64")]
mod layout {
    #[allow(clippy::wildcard_imports)]
    use super::*;
    use core::mem::{align_of, offset_of, size_of};
    use static_assertions::const_assert_eq;

    const_assert_eq!(size_of::<LUID>(), 8);
    const_assert_eq!(size_of::<NPI_MODULEID>(), 24);
    const_assert_eq!(align_of::<NPI_MODULEID>(), 4);
    const_assert_eq!(offset_of!(NPI_MODULEID, Type), 4);
    const_assert_eq!(offset_of!(NPI_MODULEID, u), 8);

    const_assert_eq!(size_of::<NPI_REGISTRATION_INSTANCE>(), 40);
    const_assert_eq!(offset_of!(NPI_REGISTRATION_INSTANCE, Size), 2);
    const_assert_eq!(offset_of!(NPI_REGISTRATION_INSTANCE, NpiId), 8);
    const_assert_eq!(offset_of!(NPI_REGISTRATION_INSTANCE, ModuleId), 16);
    const_assert_eq!(offset_of!(NPI_REGISTRATION_INSTANCE, Number), 24);
    const_assert_eq!(
        offset_of!(NPI_REGISTRATION_INSTANCE, NpiSpecificCharacteristics),
        32
    );

    const_assert_eq!(size_of::<NPI>(), 16);
    const_assert_eq!(offset_of!(NPI, Dispatch), 8);

    const_assert_eq!(size_of::<NPI_CLIENT_CHARACTERISTICS>(), 72);
    const_assert_eq!(offset_of!(NPI_CLIENT_CHARACTERISTICS, Length), 2);
    const_assert_eq!(
        offset_of!(NPI_CLIENT_CHARACTERISTICS, ClientAttachProvider),
        8
    );
    const_assert_eq!(
        offset_of!(NPI_CLIENT_CHARACTERISTICS, ClientDetachProvider),
        16
    );
    const_assert_eq!(
        offset_of!(NPI_CLIENT_CHARACTERISTICS, ClientCleanupBindingContext),
        24
    );
    const_assert_eq!(
        offset_of!(NPI_CLIENT_CHARACTERISTICS, ClientRegistrationInstance),
        32
    );

    const_assert_eq!(size_of::<NPI_PROVIDER_CHARACTERISTICS>(), 72);
    const_assert_eq!(
        offset_of!(NPI_PROVIDER_CHARACTERISTICS, ProviderAttachClient),
        8
    );
    const_assert_eq!(
        offset_of!(NPI_PROVIDER_CHARACTERISTICS, ProviderDetachClient),
        16
    );
    const_assert_eq!(
        offset_of!(NPI_PROVIDER_CHARACTERISTICS, ProviderCleanupBindingContext),
        24
    );
    const_assert_eq!(
        offset_of!(NPI_PROVIDER_CHARACTERISTICS, ProviderRegistrationInstance),
        32
    );
}
