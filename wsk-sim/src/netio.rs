//! The `netio.sys` exports: `WskRegister`, `WskCaptureProviderNPI`,
//! `WskReleaseProviderNPI`, `WskQueryProviderCharacteristics`,
//! `WskDeregister`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wsk_sys::{
    NTSTATUS, PWSK_CLIENT, PWSK_CLIENT_NPI, PWSK_PROVIDER_CHARACTERISTICS, PWSK_PROVIDER_NPI,
    PWSK_REGISTRATION, STATUS_DEVICE_NOT_READY, STATUS_INVALID_PARAMETER, STATUS_NOINTERFACE,
    STATUS_SUCCESS, ULONG, WSK_INFINITE_WAIT, WSK_NO_WAIT, WSK_PROVIDER_CHARACTERISTICS,
    WSK_PROVIDER_DISPATCH, WSK_PROVIDER_NPI,
};

use crate::script::{Readiness, Routine};
use crate::verifier::{self, NoUnwind, Rule, violation};
use crate::world::{self, World, wviolation};

/// Marks a registration block the simulator initialized ("WSKSIM").
const REGISTRATION_MAGIC: u64 = 0x5753_4B53_494D;

/// One `WskRegister` instance.
#[derive(Clone, Debug)]
pub(crate) struct RegRec {
    /// The `PWSK_CLIENT` handed out for this registration.
    pub(crate) client: usize,
    /// `WSK_CLIENT_DISPATCH.Version` the client asked for.
    pub(crate) version: u16,
    pub(crate) captures: u32,
    pub(crate) deregistered: bool,
}

/// Registration state.
#[derive(Default)]
pub(crate) struct NetioState {
    /// By `WSK_REGISTRATION` address.
    pub(crate) regs: BTreeMap<usize, RegRec>,
    /// `PWSK_CLIENT` → registration address.
    pub(crate) clients: BTreeMap<usize, usize>,
    /// When the provider becomes ready (`None`: never).
    pub(crate) ready_at: Option<Instant>,
    pub(crate) ready_set: bool,
    /// This world's `WSK_PROVIDER_DISPATCH` (allocated on first capture).
    pub(crate) dispatch: usize,
}

impl NetioState {
    fn ready(&self) -> bool {
        if !self.ready_set {
            return true;
        }
        self.ready_at.is_some_and(|t| Instant::now() >= t)
    }
}

/// Applies a [`Readiness`] setting.
pub(crate) fn set_readiness(w: &mut World, r: Readiness) {
    w.netio.ready_set = true;
    w.netio.ready_at = match r {
        Readiness::Ready => Some(Instant::now()),
        Readiness::After(d) => Some(Instant::now() + d),
        Readiness::Never => None,
    };
    w.notify();
}

fn provider_dispatch(w: &mut World) -> *const WSK_PROVIDER_DISPATCH {
    if w.netio.dispatch == 0 {
        let mut table = crate::provider::provider_dispatch_template();
        table.Version = w.cfg.highest_version;
        w.netio.dispatch = Box::into_raw(Box::new(table)) as usize;
    }
    w.netio.dispatch as *const WSK_PROVIDER_DISPATCH
}

/// Validates a `PWSK_CLIENT` for a provider-level call; returns its
/// registration address.
pub(crate) fn check_client(w: &mut World, client: PWSK_CLIENT, routine: &str) -> Option<usize> {
    let Some(&reg) = w.netio.clients.get(&(client as usize)) else {
        wviolation!(
            w,
            Rule::Npi,
            "{routine}: {client:p} is not a PWSK_CLIENT from WskCaptureProviderNPI"
        );
        return None;
    };
    let rec = w.netio.regs.get(&reg).cloned();
    match rec {
        Some(r) if r.captures > 0 && !r.deregistered => Some(reg),
        _ => {
            wviolation!(
                w,
                Rule::Npi,
                "{routine} through a provider NPI that is not captured (released or deregistered)"
            );
            None
        }
    }
}

/// `WskRegister`: registers a WSK client (`PASSIVE_LEVEL`).
///
/// # Safety
///
/// `WskClientNpi` must be valid and `WskRegistration` writable and kept alive
/// until [`WskDeregister`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn WskRegister(
    WskClientNpi: PWSK_CLIENT_NPI,
    WskRegistration: PWSK_REGISTRATION,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_passive("WskRegister");
    if WskClientNpi.is_null() || WskRegistration.is_null() {
        violation!(Rule::Parameter, "WskRegister with a NULL argument");
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller passes a valid WSK_CLIENT_NPI.
    let npi = unsafe { WskClientNpi.read() };
    if npi.Dispatch.is_null() {
        violation!(
            Rule::Parameter,
            "WskRegister: WSK_CLIENT_NPI.Dispatch is NULL"
        );
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `Dispatch` points to the client's WSK_CLIENT_DISPATCH.
    let version = unsafe { (*npi.Dispatch).Version };
    let mut w = world::lock();
    if let Some(crate::script::Fault::Fail(st)) = w.faults.take(Routine::WskRegister) {
        return st;
    }
    let key = WskRegistration as usize;
    if w.netio.regs.get(&key).is_some_and(|r| !r.deregistered) {
        wviolation!(
            w,
            Rule::Npi,
            "WskRegister twice on WSK_REGISTRATION {WskRegistration:p} without WskDeregister"
        );
        return STATUS_INVALID_PARAMETER;
    }
    // The PWSK_CLIENT is a small simulator-owned object.
    let client = Box::into_raw(Box::new(key)) as usize;
    w.netio.clients.insert(client, key);
    w.netio.regs.insert(
        key,
        RegRec {
            client,
            version,
            captures: 0,
            deregistered: false,
        },
    );
    drop(w);
    let block = wsk_sys::WSK_REGISTRATION {
        ReservedRegistrationState: REGISTRATION_MAGIC,
        ReservedRegistrationContext: client as *mut core::ffi::c_void,
        ReservedRegistrationLock: 0,
    };
    // SAFETY: the caller passes a writable WSK_REGISTRATION.
    unsafe { WskRegistration.write(block) };
    STATUS_SUCCESS
}

/// `WskCaptureProviderNPI`: waits up to `WaitTimeout` ms (`WSK_NO_WAIT`,
/// `WSK_INFINITE_WAIT`) for the provider and returns its NPI.
/// `STATUS_DEVICE_NOT_READY` when it is not ready in time or the
/// registration is deregistered; `STATUS_NOINTERFACE` when the client's
/// version is outside the provider's range.
///
/// # Safety
///
/// `WskRegistration` must come from [`WskRegister`]; `WskProviderNpi` must be
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn WskCaptureProviderNPI(
    WskRegistration: PWSK_REGISTRATION,
    WaitTimeout: ULONG,
    WskProviderNpi: PWSK_PROVIDER_NPI,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    if WaitTimeout == WSK_NO_WAIT {
        verifier::check_irql_max(
            "WskCaptureProviderNPI(WSK_NO_WAIT)",
            verifier::DISPATCH_LEVEL,
        );
    } else {
        verifier::check_passive("WskCaptureProviderNPI with a timeout");
    }
    if WskProviderNpi.is_null() {
        violation!(
            Rule::Parameter,
            "WskCaptureProviderNPI with a NULL WskProviderNpi"
        );
        return STATUS_INVALID_PARAMETER;
    }
    let key = WskRegistration as usize;
    let deadline = match WaitTimeout {
        WSK_INFINITE_WAIT => None,
        ms => Some(Instant::now() + Duration::from_millis(u64::from(ms))),
    };
    let mut w = world::lock();
    let Some(rec) = w.netio.regs.get(&key).cloned() else {
        wviolation!(
            w,
            Rule::Npi,
            "WskCaptureProviderNPI({WskRegistration:p}): not a block initialized by WskRegister"
        );
        return STATUS_INVALID_PARAMETER;
    };
    if let Some(crate::script::Fault::Fail(st)) = w.faults.take(Routine::WskCaptureProviderNPI) {
        return st;
    }
    loop {
        let deregistered = w.netio.regs.get(&key).is_none_or(|r| r.deregistered);
        if deregistered {
            return STATUS_DEVICE_NOT_READY;
        }
        if w.netio.ready() {
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return STATUS_DEVICE_NOT_READY;
        }
        let slice = Duration::from_millis(50);
        let d = deadline.map_or(slice, |d| (d - now).min(slice));
        w.wait(Some(d));
    }
    if rec.version < w.cfg.lowest_version || rec.version > w.cfg.highest_version {
        return STATUS_NOINTERFACE;
    }
    let dispatch = provider_dispatch(&mut w);
    if let Some(r) = w.netio.regs.get_mut(&key) {
        r.captures += 1;
    }
    drop(w);
    let npi = WSK_PROVIDER_NPI {
        Client: rec.client as PWSK_CLIENT,
        Dispatch: dispatch,
    };
    // SAFETY: the caller passes a writable WSK_PROVIDER_NPI.
    unsafe { WskProviderNpi.write(npi) };
    STATUS_SUCCESS
}

/// `WskReleaseProviderNPI`: releases one capture.
///
/// # Safety
///
/// `WskRegistration` must come from [`WskRegister`] and hold a capture.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn WskReleaseProviderNPI(WskRegistration: PWSK_REGISTRATION) {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("WskReleaseProviderNPI", verifier::DISPATCH_LEVEL);
    let mut w = world::lock();
    match w.netio.regs.get_mut(&(WskRegistration as usize)) {
        None => wviolation!(
            w,
            Rule::Npi,
            "WskReleaseProviderNPI({WskRegistration:p}): not a block initialized by WskRegister"
        ),
        Some(r) if r.captures == 0 => wviolation!(
            w,
            Rule::Npi,
            "WskReleaseProviderNPI without a matching successful WskCaptureProviderNPI"
        ),
        Some(r) => {
            r.captures -= 1;
            w.notify();
        }
    }
}

/// `WskQueryProviderCharacteristics`: the provider's version range.
///
/// # Safety
///
/// `WskRegistration` must come from [`WskRegister`]; the output writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn WskQueryProviderCharacteristics(
    WskRegistration: PWSK_REGISTRATION,
    WskProviderCharacteristics: PWSK_PROVIDER_CHARACTERISTICS,
) -> NTSTATUS {
    let _g = NoUnwind::enter();
    verifier::check_irql_max("WskQueryProviderCharacteristics", verifier::DISPATCH_LEVEL);
    let mut w = world::lock();
    if !w.netio.regs.contains_key(&(WskRegistration as usize)) {
        wviolation!(
            w,
            Rule::Npi,
            "WskQueryProviderCharacteristics({WskRegistration:p}): not a registered block"
        );
        return STATUS_INVALID_PARAMETER;
    }
    if !w.netio.ready() {
        return STATUS_DEVICE_NOT_READY;
    }
    let c = WSK_PROVIDER_CHARACTERISTICS {
        HighestVersion: w.cfg.highest_version,
        LowestVersion: w.cfg.lowest_version,
    };
    drop(w);
    if WskProviderCharacteristics.is_null() {
        violation!(
            Rule::Parameter,
            "WskQueryProviderCharacteristics with a NULL output"
        );
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller passes a writable structure.
    unsafe { WskProviderCharacteristics.write(c) };
    STATUS_SUCCESS
}

/// `WskDeregister`: deregisters; wakes blocked captures, then waits for every
/// capture to be released and every socket to be closed. The simulator
/// waits [`Config::deregister_timeout`](crate::Config::deregister_timeout)
/// and then reports a [`DEREGISTER`](crate::Rule::Deregister) violation
/// (the real routine would hang).
///
/// # Safety
///
/// `WskRegistration` must come from [`WskRegister`].
#[unsafe(no_mangle)]
pub unsafe extern "system" fn WskDeregister(WskRegistration: PWSK_REGISTRATION) {
    let _g = NoUnwind::enter();
    verifier::check_passive("WskDeregister");
    let key = WskRegistration as usize;
    let mut w = world::lock();
    let Some(rec) = w.netio.regs.get_mut(&key) else {
        wviolation!(
            w,
            Rule::Npi,
            "WskDeregister({WskRegistration:p}): not a block initialized by WskRegister"
        );
        return;
    };
    if rec.deregistered {
        wviolation!(
            w,
            Rule::Npi,
            "WskDeregister({WskRegistration:p}) called twice"
        );
        return;
    }
    rec.deregistered = true;
    let client = rec.client;
    // "The WSK subsystem will cancel any pending IRPs if the WSK application
    // calls WskDeregister"
    // (<https://learn.microsoft.com/windows-hardware/drivers/network/wsk-transport-list-change>).
    let changes: Vec<usize> = w
        .net
        .transport_change_irps
        .iter()
        .filter(|&(_, &c)| c == client)
        .map(|(&irp, _)| irp)
        .collect();
    if !changes.is_empty() {
        let mut out = crate::net::Out::default();
        for irp in changes {
            w.net.transport_change_irps.remove(&irp);
            if w.net.client_irps.remove(&irp) {
                crate::io::finish_pending(&mut w, irp, wsk_sys::STATUS_CANCELLED, 0, &mut out.done);
            }
        }
        drop(w);
        crate::net::flush(out);
        w = world::lock();
    }
    w.notify();
    let deadline = Instant::now() + w.cfg.deregister_timeout;
    loop {
        let captures = w.netio.regs.get(&key).map_or(0, |r| r.captures);
        let sockets = crate::net::open_sockets_of(&w, client);
        if captures == 0 && sockets.is_empty() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            let mut what = Vec::new();
            if captures > 0 {
                what.push(format!("{captures} captured provider NPI(s) not released"));
            }
            what.extend(sockets);
            wviolation!(
                w,
                Rule::Deregister,
                "WskDeregister would wait forever: {}",
                what.join("; ")
            );
            break;
        }
        if !w.manual.is_empty() {
            drop(w);
            world::run_manual_jobs();
            w = world::lock();
            continue;
        }
        w.wait(Some((deadline - now).min(Duration::from_millis(50))));
    }
}

/// Leaks: captures not released, registrations not deregistered.
pub(crate) fn leaks(n: &NetioState) -> Vec<String> {
    let mut out = Vec::new();
    for (addr, r) in &n.regs {
        if !r.deregistered {
            out.push(format!(
                "WSK registration {addr:#x} not deregistered (WskDeregister)"
            ));
        }
        if r.captures > 0 {
            out.push(format!(
                "WSK registration {addr:#x}: {} captured provider NPI(s) not released",
                r.captures
            ));
        }
    }
    out
}

/// Frees the client objects and dispatch table (end of test).
pub(crate) fn free_all(n: &mut NetioState) {
    for (client, _) in core::mem::take(&mut n.clients) {
        // SAFETY: created by `Box::into_raw(Box::new(usize))` in WskRegister.
        drop(unsafe { Box::from_raw(client as *mut usize) });
    }
    if n.dispatch != 0 {
        // SAFETY: created by `Box::into_raw` in `provider_dispatch`.
        drop(unsafe { Box::from_raw(n.dispatch as *mut WSK_PROVIDER_DISPATCH) });
        n.dispatch = 0;
    }
    n.regs.clear();
}
